//! The light viewer (`townhall-load media --light`) against the real server on loopback, with
//! two relay shards: it connects, starts at a keyframe, and counts every packet the WHIP
//! publisher sent from there on, as the full viewer does.

use std::time::Duration;
use townhall_client::rtc::{MediaKind, PublisherConfig, RtcContext, ViewerConfig, WhipPublisher};
use townhall_loadtest::light::LightViewer;
use townhall_testkit::{TestServer, live_meeting};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_viewer_counts_what_the_publisher_sent() {
    let server = TestServer::start_with(|config| config.media.threads = 2).await;
    let base = server.base.clone();
    let m = live_meeting(&base).await;
    let ctx = RtcContext::new(std::net::Ipv4Addr::LOCALHOST.into()).unwrap();
    let whip = format!("{base}/api/meetings/{}/whip", m.id);
    let publisher = WhipPublisher::connect(
        &ctx,
        &whip,
        Some(&m.studio_token),
        PublisherConfig::default(),
    )
    .await
    .unwrap();
    let whep = format!("{base}/api/meetings/{}/whep", m.id);
    let mut viewers = Vec::new();
    // Two, so that both shards serve one (viewers go to the least loaded shard).
    for _ in 0..2 {
        let v = LightViewer::connect(
            ctx.http(),
            &whep,
            std::net::Ipv4Addr::LOCALHOST.into(),
            &ViewerConfig::default(),
        )
        .await
        .unwrap();
        v.wait_connected(Duration::from_secs(30)).await.unwrap();
        viewers.push(v);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = viewers.iter().all(|v| {
            let s = v.stats();
            let video = s.track(MediaKind::Video, 0).unwrap();
            let audio = s.track(MediaKind::Audio, 0).unwrap();
            video.first_keyframe.is_some() && video.packets >= 90 && audio.packets >= 50
        });
        if ready {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            viewers.iter().map(|v| v.stats()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publisher.pause().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = publisher.stats();
    for (i, v) in viewers.iter().enumerate() {
        let s = v.stats();
        let video = s.track(MediaKind::Video, 0).unwrap();
        let want = sent.last_video_index.unwrap() + 1 - video.first_keyframe_index.unwrap();
        assert!(
            video.indexed_since_keyframe * 100 >= want * 95,
            "viewer {i}: {} of {want}",
            video.indexed_since_keyframe
        );
        assert_eq!(video.duplicates, 0);
        assert!(s.connected_after.is_some());
    }
    for v in viewers {
        v.close().await.unwrap();
    }
    publisher.close().await.unwrap();
    server.stop().await;
}
