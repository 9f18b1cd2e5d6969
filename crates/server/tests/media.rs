//! The relay against an independent WebRTC stack: a WHIP publisher and WHEP viewers built with
//! the `webrtc` crate (townhall-loadtest's `rtc` module) against the real server on loopback.
//!
//! "Received what was sent" is counted by the publisher's packet numbers (a trailer in every
//! payload, which a relay must not touch): for video, every packet from the viewer's first
//! keyframe on; for audio, every packet from the viewer's first one on. The publisher pauses
//! before the comparison, so the counts are final; waits are convergence loops, never sleeps.

use std::future::Future;
use std::time::Duration;
use townhall_client::rtc::{
    MediaKind, PublisherConfig, PublisherStats, RtcContext, RtcError, TrackStats, ViewerConfig,
    WhepViewer, WhipPublisher, post_offer,
};
use townhall_testkit::*;

/// Generous: connection setup and convergence on a slow, busy 2-core machine.
const SLOW: Duration = Duration::from_secs(60);

fn ctx() -> RtcContext {
    RtcContext::new(std::net::Ipv4Addr::LOCALHOST.into()).unwrap()
}

fn whip_url(base: &str, id: &str) -> String {
    format!("{base}/api/meetings/{id}/whip")
}

fn whep_url(base: &str, id: &str) -> String {
    format!("{base}/api/meetings/{id}/whep")
}

/// Polls `check` until it returns `Ok`, failing with its last `Err` after `limit`.
async fn converge<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match check().await {
            Ok(()) => return,
            Err(why) if tokio::time::Instant::now() >= deadline => {
                panic!("did not converge within {limit:?}: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// `townhall_media_peers{role=…}` from /metrics.
async fn peers(base: &str, role: &str) -> i64 {
    let series = format!("townhall_media_peers{{role=\"{role}\"}}");
    metric(base, &series).await.map_or(0, |v| v as i64)
}

async fn peer_counts(base: &str) -> (i64, i64) {
    (peers(base, "publisher").await, peers(base, "viewer").await)
}

async fn stage_sources(base: &str, id: &str) -> usize {
    let stage: serde_json::Value = http()
        .get(format!("{base}/api/meetings/{id}/stage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stage["sources"].as_array().unwrap().len()
}

fn video(v: &WhepViewer) -> TrackStats {
    v.stats().track(MediaKind::Video, 0).unwrap().clone()
}

fn audio(v: &WhepViewer) -> TrackStats {
    v.stats().track(MediaKind::Audio, 0).unwrap().clone()
}

/// Packets the viewer should have, and has, of what was sent: (video expected, video received,
/// audio expected, audio received). None while it has no keyframe or no audio yet.
fn completeness(v: &WhepViewer, sent: &PublisherStats) -> Option<(u64, u64, u64, u64)> {
    let (vt, at) = (video(v), audio(v));
    let want_video = sent.last_video_index? + 1 - vt.first_keyframe_index?;
    let want_audio = sent.last_audio_index? + 1 - at.first_index?;
    Some((
        want_video,
        vt.indexed_since_keyframe,
        want_audio,
        at.packets,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_viewer_receives_the_rtp_the_publisher_sent() {
    let server = TestServer::start().await;
    let base = server.base.clone();
    let m = live_meeting(&base).await;
    let ctx = ctx();

    // Keyframes only at the start and when asked: a viewer's first frame then comes from the
    // relay's keyframe cache (that first keyframe) or from a keyframe the relay asked for.
    let config = PublisherConfig {
        keyframe_interval: u64::MAX,
        ..PublisherConfig::default()
    };
    let publisher =
        WhipPublisher::connect(&ctx, &whip_url(&base, &m.id), Some(&m.studio_token), config)
            .await
            .expect("WHIP publish");
    assert!(
        publisher
            .session_url()
            .path()
            .starts_with(&format!("/api/meetings/{}/whip/", m.id)),
        "{}",
        publisher.session_url()
    );

    let mut viewers = Vec::new();
    for _ in 0..4 {
        let v = WhepViewer::connect(&ctx, &whep_url(&base, &m.id), &ViewerConfig::default())
            .await
            .expect("WHEP view");
        v.wait_connected(SLOW).await.expect("viewer connects");
        viewers.push(v);
    }
    converge(SLOW, || async {
        for (i, v) in viewers.iter().enumerate() {
            let (vt, at) = (video(v), audio(v));
            if vt.first_keyframe.is_none() || vt.packets < 30 || at.packets < 25 {
                return Err(format!(
                    "viewer {i}: {vt:?} {at:?}; {:?}",
                    publisher.stats()
                ));
            }
        }
        Ok(())
    })
    .await;
    let replayed = metric(&base, "townhall_media_replayed_starts_total")
        .await
        .unwrap_or(0.0);
    assert!(
        replayed >= 1.0 || publisher.stats().keyframe_requests >= 1,
        "{replayed} {:?}",
        publisher.stats()
    );
    assert_eq!(peer_counts(&base).await, (1, 4));
    assert_eq!(stage_sources(&base, &m.id).await, 1);

    // One viewer vanishes without a DELETE; the others keep receiving.
    let gone = viewers.pop().unwrap();
    gone.drop_abruptly().await;
    let before: Vec<(u64, u64)> = viewers
        .iter()
        .map(|v| (video(v).packets, audio(v).packets))
        .collect();
    converge(SLOW, || async {
        for (i, (v, (video0, audio0))) in viewers.iter().zip(&before).enumerate() {
            let (vt, at) = (video(v).packets, audio(v).packets);
            if vt < video0 + 90 || at < audio0 + 50 {
                return Err(format!(
                    "viewer {i} stalled: video {video0}→{vt}, audio {audio0}→{at}"
                ));
            }
        }
        Ok(())
    })
    .await;
    // The relay notices the dead peer by itself (ICE consent) and drops it.
    converge(SLOW, || async {
        match peer_counts(&base).await {
            (1, 3) => Ok(()),
            counts => Err(format!("peers (publisher, viewer) = {counts:?}")),
        }
    })
    .await;

    // Freeze the publisher; every packet from each viewer's first keyframe on arrives.
    publisher.pause().await;
    let sent = publisher.stats();
    for (i, v) in viewers.iter().enumerate() {
        let complete = || async {
            match completeness(v, &sent) {
                Some((wv, rv, wa, ra)) if rv == wv && ra == wa => Ok(()),
                c => Err(format!(
                    "viewer {i}: (video want, got, audio want, got) {c:?}"
                )),
            }
        };
        // Wait for every packet; a loss on loopback is rare but possible, 95 % is the bar.
        let _ = tokio::time::timeout(Duration::from_secs(20), async {
            while complete().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let (wv, rv, wa, ra) = completeness(v, &sent).unwrap();
        assert!(
            rv * 100 >= wv * 95 && ra * 100 >= wa * 95,
            "viewer {i}: video {rv} of {wv}, audio {ra} of {wa}; sent {sent:?}"
        );
        assert!(
            wv >= 90 && wa >= 50,
            "viewer {i} watched too little: {wv} {wa}"
        );
        let vt = video(v);
        assert_eq!(vt.duplicates, 0, "viewer {i}: {vt:?}");
    }
    publisher.resume();

    for v in viewers {
        v.close().await.expect("WHEP DELETE");
    }
    converge(SLOW, || async {
        match peer_counts(&base).await {
            (1, 0) => Ok(()),
            counts => Err(format!("after DELETEs: {counts:?}")),
        }
    })
    .await;
    publisher.close().await.expect("WHIP DELETE");
    converge(SLOW, || async {
        match (peer_counts(&base).await, stage_sources(&base, &m.id).await) {
            ((0, 0), 0) => Ok(()),
            other => Err(format!("after the publisher left: {other:?}")),
        }
    })
    .await;
    server.stop().await;
}

/// The status and JSON `code` of a refused request.
fn refusal<T: std::fmt::Debug>(r: Result<T, RtcError>) -> (Option<u16>, Option<String>) {
    let err = r.expect_err("the server should refuse");
    (err.status(), err.code().map(str::to_owned))
}

fn refused(status: u16, code: &str) -> (Option<u16>, Option<String>) {
    (Some(status), Some(code.to_owned()))
}

async fn publish(
    ctx: &RtcContext,
    url: &str,
    token: Option<&str>,
) -> Result<WhipPublisher, RtcError> {
    WhipPublisher::connect(ctx, url, token, PublisherConfig::default()).await
}

async fn view(ctx: &RtcContext, url: &str) -> Result<WhepViewer, RtcError> {
    WhepViewer::connect(ctx, url, &ViewerConfig::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_leave_no_peer_behind() {
    let server = TestServer::start().await;
    let base = server.base.clone();
    let live = live_meeting(&base).await;
    let scheduled = create_meeting(&base, "Ikke startet endnu").await;
    let ctx = ctx();
    let (whip, whep) = (whip_url(&base, &live.id), whep_url(&base, &live.id));

    let anonymous = publish(&ctx, &whip, None).await;
    assert_eq!(refusal(anonymous), refused(401, "unauthorized"));
    let wrong = publish(&ctx, &whip, Some("not-the-token")).await;
    assert_eq!(refusal(wrong), refused(401, "bad_token"));
    // The moderator's token is not the studio's.
    let moderator = publish(&ctx, &whip, Some(&live.moderator_token)).await;
    assert_eq!(refusal(moderator), refused(401, "bad_token"));

    let garbage = [
        "v=0\r\nthis is not an offer\r\n",
        "",
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
    ];
    for sdp in garbage {
        let studio = Some(live.studio_token.as_str());
        let answer = post_offer(ctx.http(), &whip, studio, sdp.to_owned()).await;
        assert_eq!(refusal(answer), refused(400, "bad_sdp"), "{sdp:?}");
    }
    let answer = post_offer(ctx.http(), &whep, None, "v=0\r\nnope\r\n".into()).await;
    assert_eq!(refusal(answer), refused(400, "bad_sdp"));

    let unknown = view(&ctx, &whep_url(&base, "zzzzzzzzzz")).await;
    assert_eq!(refusal(unknown), refused(404, "no_meeting"));
    let not_started = view(&ctx, &whep_url(&base, &scheduled.id)).await;
    assert_eq!(refusal(not_started), refused(409, "meeting_not_live"));

    assert_eq!(peer_counts(&base).await, (0, 0));
    assert_eq!(stage_sources(&base, &live.id).await, 0);

    // And a valid request still works afterwards.
    let v = view(&ctx, &whep).await.unwrap();
    v.wait_connected(SLOW).await.unwrap();
    assert_eq!(peer_counts(&base).await, (0, 1));
    v.close().await.unwrap();
    converge(SLOW, || async {
        match peer_counts(&base).await {
            (0, 0) => Ok(()),
            c => Err(format!("{c:?}")),
        }
    })
    .await;
    server.stop().await;
}

/// Status and JSON `code` of a raw request.
async fn answer(req: reqwest::RequestBuilder) -> (u16, String) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    (status, body["code"].as_str().unwrap_or("").to_owned())
}

/// Issue 8 row 11: a media session id works only under its own meeting and route. DELETE (or
/// PATCH) through another meeting's path, or of a WHIP session through the public WHEP route,
/// is 404 `no_session` and leaves the session alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_session_works_only_under_its_own_meeting_and_route() {
    let server = TestServer::start().await;
    let base = server.base.clone();
    let (a, b) = (live_meeting(&base).await, live_meeting(&base).await);
    let ctx = ctx();
    let publisher = publish(&ctx, &whip_url(&base, &a.id), Some(&a.studio_token))
        .await
        .unwrap();
    let viewer = view(&ctx, &whep_url(&base, &a.id)).await.unwrap();
    let whip_session = publisher.session_url().path().rsplit('/').next().unwrap();
    let whep_session = viewer.session_url().path().rsplit('/').next().unwrap();
    let http = http();
    let url = |meeting: &str, route: &str, session: &str| {
        format!("{base}/api/meetings/{meeting}/{route}/{session}")
    };
    let trickle = "a=candidate:1 1 udp 2130706431 192.0.2.7 40000 typ host\r\n";
    let not_found = (404, "no_session".to_owned());
    // Another meeting's path, with that meeting's own studio token.
    let deletes = [
        http.delete(url(&b.id, "whep", whep_session)),
        http.delete(url(&b.id, "whip", whip_session))
            .bearer_auth(&b.studio_token),
        // A WHIP session through the public WHEP route, and the other way round.
        http.delete(url(&a.id, "whep", whip_session)),
        http.delete(url(&a.id, "whip", whep_session))
            .bearer_auth(&a.studio_token),
        http.patch(url(&b.id, "whep", whep_session))
            .header("content-type", "application/trickle-ice-sdpfrag")
            .body(trickle),
        http.post(format!("{}/layer", url(&b.id, "whep", whep_session)))
            .body("{}"),
    ];
    for req in deletes {
        assert_eq!(answer(req).await, not_found);
    }
    assert_eq!(peer_counts(&base).await, (1, 1), "nothing was closed");
    // Under its own meeting and route, each still works.
    let own = http
        .delete(url(&a.id, "whip", whip_session))
        .bearer_auth(&a.studio_token);
    assert_eq!(answer(own).await.0, 200);
    let own = http.delete(url(&a.id, "whep", whep_session));
    assert_eq!(answer(own).await.0, 200);
    converge(SLOW, || async {
        match peer_counts(&base).await {
            (0, 0) => Ok(()),
            c => Err(format!("{c:?}")),
        }
    })
    .await;
    server.stop().await;
}
