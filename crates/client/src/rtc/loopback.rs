//! End-to-end check of the clients without the townhall server: a tiny HTTP endpoint in front
//! of a relay built with webrtc-rs itself (answerer peers, RTP forwarded through a broadcast
//! channel). The real relay is tested in `crates/server/tests/media.rs`.

use super::http::RtcError;
use super::peer::{Events, RtcContext};
use super::publisher::{PublisherConfig, WhipPublisher};
use super::viewer::{MediaKind, ViewerConfig, WhepViewer};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

#[derive(Clone)]
struct Relay {
    ctx: RtcContext,
    video: broadcast::Sender<rtp::Packet>,
    audio: broadcast::Sender<rtp::Packet>,
    /// The publisher's video track, to ask it for keyframes.
    publisher_video: Arc<std::sync::Mutex<Option<Arc<dyn TrackRemote>>>>,
    peers: Arc<std::sync::Mutex<Vec<Arc<dyn PeerConnection>>>>,
}

impl Relay {
    async fn answer(&self, path: &str, offer: String) -> Result<String, RtcError> {
        let whip = path.ends_with("/whip");
        let relay = self.clone();
        let sink = Box::new(move |track: Arc<dyn TrackRemote>| {
            let relay = relay.clone();
            tokio::spawn(async move {
                let mut tx = None;
                while let Some(e) = track.poll().await {
                    match e {
                        TrackRemoteEvent::OnOpen(_) => {
                            if track.kind().await == RtpCodecKind::Video {
                                *relay.publisher_video.lock().unwrap() = Some(track.clone());
                                tx = Some(relay.video.clone());
                            } else {
                                tx = Some(relay.audio.clone());
                            }
                        }
                        TrackRemoteEvent::OnRtpPacket(p) => {
                            if let Some(tx) = &tx {
                                let _ = tx.send(p);
                            }
                        }
                        _ => {}
                    }
                }
            });
        }) as super::peer::TrackSink;
        let events = Events::new(whip.then_some(sink));
        let pc = self.ctx.peer(events.clone(), false).await?;
        if !whip {
            let mut tracks = Vec::new();
            for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
                let ssrc = rand::random::<u32>();
                let track = super::publisher::local_track(kind, ssrc);
                pc.add_track(track.clone() as Arc<dyn TrackLocal>).await?;
                tracks.push((kind, track, ssrc));
            }
            // Once the viewer is connected: forward, and ask the publisher for a keyframe.
            let (relay, events) = (self.clone(), events.clone());
            tokio::spawn(async move {
                if events.connected(Duration::from_secs(20)).await.is_err() {
                    return;
                }
                for (kind, track, ssrc) in tracks {
                    let rx = match kind {
                        RtpCodecKind::Video => relay.video.subscribe(),
                        _ => relay.audio.subscribe(),
                    };
                    tokio::spawn(forward(rx, track, ssrc));
                }
                let publisher = relay.publisher_video.lock().unwrap().clone();
                if let Some(t) = publisher {
                    let ssrc = t.ssrcs().await.first().copied().unwrap_or(0);
                    let pli = PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc: ssrc,
                    };
                    let _ = t.write_rtcp(vec![Box::new(pli)]).await;
                }
            });
        }
        pc.set_remote_description(RTCSessionDescription::offer(offer)?)
            .await?;
        let answer = pc.create_answer(None).await?;
        pc.set_local_description(answer).await?;
        events.gathered(Duration::from_secs(10)).await?;
        let sdp = pc.local_description().await.unwrap().sdp;
        self.peers.lock().unwrap().push(pc);
        Ok(sdp)
    }
}

/// Forwards from the broadcast channel, waiting for a keyframe first for video.
async fn forward(
    mut rx: broadcast::Receiver<rtp::Packet>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
) {
    let video = track.kind().await == RtpCodecKind::Video;
    let mut started = !video;
    loop {
        match rx.recv().await {
            Ok(mut p) => {
                started |= super::vp8::is_keyframe(&p.payload);
                if !started {
                    continue;
                }
                p.header.ssrc = ssrc;
                p.header.extensions.clear();
                p.header.extension = false;
                // Not bound until the answer is applied; drop until then.
                let _ = track.write_rtp(p).await;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        }
    }
}

/// Serves `POST …/whip`, `POST …/whep` and `DELETE` on 127.0.0.1, one request per connection.
async fn serve(relay: Relay) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            n += 1;
            let relay = relay.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let k = sock.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..k]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break (head.to_owned(), body.to_owned());
                        }
                    }
                    if k == 0 {
                        return;
                    }
                };
                let line = head.lines().next().unwrap().to_owned();
                let mut parts = line.split(' ');
                let (method, path) = (parts.next().unwrap(), parts.next().unwrap());
                let authorized = head.contains("Bearer good") || path.ends_with("/whep");
                let response = match method {
                    "POST" if !authorized => {
                        let body = r#"{"code":"bad_token","message":"no"}"#;
                        format!(
                            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    "POST" => {
                        let sdp = relay.answer(path, body).await.unwrap();
                        format!(
                            "HTTP/1.1 201 Created\r\ncontent-type: application/sdp\r\nlocation: {path}/{n}\r\nlink: <stun:stun.invalid:3478>; rel=\"ice-server\"\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{sdp}",
                            sdp.len()
                        )
                    }
                    _ => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_owned(),
                };
                let _ = sock.write_all(response.as_bytes()).await;
            });
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_to_viewers_through_a_webrtc_rs_relay() {
    let ctx = RtcContext::new([127, 0, 0, 1].into()).unwrap();
    let relay = Relay {
        ctx: ctx.clone(),
        video: broadcast::channel(1024).0,
        audio: broadcast::channel(1024).0,
        publisher_video: Default::default(),
        peers: Default::default(),
    };
    let base = serve(relay.clone()).await;
    let whip = format!("{base}/m/whip");
    let whep = format!("{base}/m/whep");

    let err = WhipPublisher::connect(&ctx, &whip, Some("bad"), PublisherConfig::default())
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(401), Some("bad_token")));

    let config = PublisherConfig {
        keyframe_interval: 100_000, // keyframes only on request
        ..PublisherConfig::default()
    };
    let publisher = WhipPublisher::connect(&ctx, &whip, Some("good"), config)
        .await
        .unwrap();
    assert!(publisher.session_url().as_str().starts_with(&whip));
    assert_eq!(publisher.ice_servers()[0].url, "stun:stun.invalid:3478");

    let mut viewers = Vec::new();
    for _ in 0..3 {
        let v = WhepViewer::connect(&ctx, &whep, &ViewerConfig::default())
            .await
            .unwrap();
        v.wait_connected(Duration::from_secs(20)).await.unwrap();
        viewers.push(v);
    }
    // Every viewer gets a keyframe (asked for by the relay's PLI) and audio.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ok = viewers.iter().all(|v| {
            let s = v.stats();
            let video = s.track(MediaKind::Video, 0).unwrap();
            let audio = s.track(MediaKind::Audio, 0).unwrap();
            video.first_keyframe.is_some() && video.packets > 30 && audio.packets > 20
        });
        if ok {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "viewers: {:#?}, publisher {:?}",
            viewers.iter().map(|v| v.stats()).collect::<Vec<_>>(),
            publisher.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        publisher.stats().keyframe_requests >= 1,
        "{:?}",
        publisher.stats()
    );

    // After a pause every packet sent from the viewer's first keyframe on has arrived.
    publisher.pause().await;
    let sent = publisher.stats();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for v in &viewers {
        loop {
            let s = v.stats();
            let video = s.track(MediaKind::Video, 0).unwrap().clone();
            let audio = s.track(MediaKind::Audio, 0).unwrap().clone();
            let want_video =
                sent.last_video_index.unwrap() + 1 - video.first_keyframe_index.unwrap();
            let want_audio = sent.last_audio_index.unwrap() + 1 - audio.first_index.unwrap();
            if video.indexed_since_keyframe == want_video && audio.packets == want_audio {
                assert_eq!(video.last_index, sent.last_video_index);
                assert_eq!(video.lost, 0);
                assert_eq!(video.duplicates, 0);
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{video:?} {audio:?} {sent:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    publisher.resume();
    for v in viewers {
        v.close().await.unwrap();
    }
    publisher.close().await.unwrap();
}
