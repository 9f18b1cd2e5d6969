//! A WHEP viewer: recvonly m-lines (video, audio, video, audio, …) that count what arrives.

use crate::rtc::http::{self, IceServer, RtcError, SdpAnswer};
use crate::rtc::peer::{self, Events, RtcContext};
use crate::rtc::stats::RtpAccount;
use crate::rtc::{opus, trailer, vp8};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{
    RTCRtpTransceiverDirection, RTCRtpTransceiverId, RTCRtpTransceiverInit,
};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState, RTCSessionDescription};

/// Which m-lines to offer.
#[derive(Debug, Clone)]
pub struct ViewerConfig {
    /// Video m-lines (slot 0, 1, …).
    pub video: usize,
    /// Audio m-lines.
    pub audio: usize,
}

impl Default for ViewerConfig {
    fn default() -> Self {
        Self { video: 1, audio: 1 }
    }
}

impl ViewerConfig {
    /// The m-line kinds in offer order: video 0, audio 0, video 1, audio 1, …
    pub fn kinds(&self) -> Vec<MediaKind> {
        let mut kinds = Vec::with_capacity(self.video + self.audio);
        for i in 0..self.video.max(self.audio) {
            if i < self.video {
                kinds.push(MediaKind::Video);
            }
            if i < self.audio {
                kinds.push(MediaKind::Audio);
            }
        }
        kinds
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Video,
    Audio,
}

/// One m-line's counts.
#[derive(Debug, Clone)]
pub struct TrackStats {
    pub kind: MediaKind,
    /// The stage slot: the n-th video (or audio) m-line gets slot n.
    pub slot: usize,
    pub packets: u64,
    pub duplicates: u64,
    /// Lost by RTP sequence number.
    pub lost: u64,
    pub bytes: u64,
    pub keyframes: u64,
    pub jitter_ms: f64,
    /// Since the WHEP POST started.
    pub first_packet: Option<Duration>,
    pub first_keyframe: Option<Duration>,
    /// Trailer indices (the publisher's packet numbers) of the first/last packet received,
    /// the first keyframe, and how many unique packets arrived from that keyframe on.
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    pub first_keyframe_index: Option<u64>,
    pub indexed_since_keyframe: u64,
    /// Keyframe requests this viewer sent because its first packets were not a keyframe.
    pub plis_sent: u64,
}

#[derive(Debug, Clone)]
pub struct ViewerStats {
    /// From the WHEP POST to ICE+DTLS connected.
    pub connected_after: Option<Duration>,
    pub state: RTCPeerConnectionState,
    /// In m-line order.
    pub tracks: Vec<TrackStats>,
}

impl ViewerStats {
    /// The track of this kind on this slot.
    pub fn track(&self, kind: MediaKind, slot: usize) -> Option<&TrackStats> {
        self.tracks
            .iter()
            .find(|t| t.kind == kind && t.slot == slot)
    }
}

struct Line {
    kind: MediaKind,
    slot: usize,
    account: Mutex<RtpAccount>,
}

struct Shared {
    started: Instant,
    lines: Vec<Line>,
    /// Transceiver ids in m-line order, set before the offer goes out (so before any track).
    transceivers: OnceLock<Vec<RTCRtpTransceiverId>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    connected_after: Mutex<Option<Duration>>,
}

/// A live WHEP session.
pub struct WhepViewer {
    pc: Arc<dyn PeerConnection>,
    events: Arc<Events>,
    session: SdpAnswer,
    http: reqwest::Client,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WhepViewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhepViewer")
            .field("session", &self.session.location.as_str())
            .finish()
    }
}

impl WhepViewer {
    /// POSTs a recvonly offer to `whep_url` and applies the answer. Media counting starts at
    /// once; [`WhepViewer::wait_connected`] waits for ICE + DTLS.
    pub async fn connect(
        ctx: &RtcContext,
        whep_url: &str,
        config: &ViewerConfig,
    ) -> Result<Self, RtcError> {
        let started = Instant::now();
        let lines = config
            .kinds()
            .into_iter()
            .scan((0, 0), |(v, a), kind| {
                let n = match kind {
                    MediaKind::Video => v,
                    MediaKind::Audio => a,
                };
                *n += 1;
                let clock = match kind {
                    MediaKind::Video => vp8::VIDEO_CLOCK_RATE,
                    MediaKind::Audio => opus::AUDIO_CLOCK_RATE,
                };
                Some(Line {
                    kind,
                    slot: *n - 1,
                    account: Mutex::new(RtpAccount::new(clock)),
                })
            })
            .collect();
        let shared = Arc::new(Shared {
            started,
            lines,
            transceivers: OnceLock::new(),
            tasks: Mutex::new(Vec::new()),
            connected_after: Mutex::new(None),
        });
        let sink = {
            let shared = Arc::downgrade(&shared);
            Box::new(move |track: Arc<dyn TrackRemote>| {
                if let Some(s) = shared.upgrade() {
                    let task = tokio::spawn(count(Arc::downgrade(&s), track));
                    s.tasks.lock().unwrap().push(task);
                }
            }) as peer::TrackSink
        };
        let events = Events::new(Some(sink));
        let pc = ctx.peer(events.clone(), false).await?;
        let result = async {
            let mut ids = Vec::new();
            for line in &shared.lines {
                let kind = match line.kind {
                    MediaKind::Video => RtpCodecKind::Video,
                    MediaKind::Audio => RtpCodecKind::Audio,
                };
                let t = pc
                    .add_transceiver_from_kind(
                        kind,
                        Some(RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Recvonly,
                            ..Default::default()
                        }),
                    )
                    .await?;
                ids.push(t.id());
            }
            let _ = shared.transceivers.set(ids);
            let offer = peer::complete_offer(&pc, &events).await?;
            let session = http::post_offer(ctx.http(), whep_url, None, offer).await?;
            let applied = async {
                pc.set_remote_description(RTCSessionDescription::answer(session.sdp.clone())?)
                    .await
            };
            if let Err(e) = applied.await {
                let _ = http::delete_session(ctx.http(), &session.location, None).await;
                return Err(RtcError::from(e));
            }
            Ok(session)
        }
        .await;
        match result {
            Ok(session) => {
                let noting = tokio::spawn(note_connected(events.clone(), Arc::downgrade(&shared)));
                shared.tasks.lock().unwrap().push(noting);
                Ok(Self {
                    pc,
                    events,
                    session,
                    http: ctx.http().clone(),
                    shared,
                })
            }
            Err(e) => {
                let _ = pc.close().await;
                Err(e)
            }
        }
    }

    /// Waits for ICE + DTLS; fails on `failed`/`closed` or after `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), RtcError> {
        self.events.connected(timeout).await
    }

    pub fn stats(&self) -> ViewerStats {
        let tracks = self
            .shared
            .lines
            .iter()
            .map(|l| {
                let a = l.account.lock().unwrap();
                TrackStats {
                    kind: l.kind,
                    slot: l.slot,
                    packets: a.packets,
                    duplicates: a.duplicates,
                    lost: a.lost(),
                    bytes: a.bytes,
                    keyframes: a.keyframes,
                    jitter_ms: a.jitter_ms(),
                    first_packet: a.first_packet,
                    first_keyframe: a.first_keyframe,
                    first_index: a.first_index,
                    last_index: a.last_index,
                    first_keyframe_index: a.first_keyframe_index,
                    indexed_since_keyframe: a.indexed_since_keyframe,
                    plis_sent: a.plis_sent,
                }
            })
            .collect();
        ViewerStats {
            connected_after: *self.shared.connected_after.lock().unwrap(),
            state: *self.events.state.borrow(),
            tracks,
        }
    }

    pub fn session_url(&self) -> &reqwest::Url {
        &self.session.location
    }

    pub fn ice_servers(&self) -> &[IceServer] {
        &self.session.ice_servers
    }

    /// Chooses a simulcast layer (`Some("q"|"h"|"f")`) or automatic (`None`) through the
    /// layer link of the answer.
    pub async fn set_layer(&self, layer: Option<&str>) -> Result<(), RtcError> {
        let url = match &self.session.layer_url {
            Some(u) => u.clone(),
            None => reqwest::Url::parse(&format!("{}/layer", self.session.location))
                .map_err(|e| RtcError::Protocol(e.to_string()))?,
        };
        let body = match layer {
            Some(l) => serde_json::json!({ "encodingId": l }),
            None => serde_json::json!({}),
        };
        let res = self.http.post(url).json(&body).send().await?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(RtcError::Http {
                status: res.status().as_u16(),
                code: None,
                message: res.text().await.ok(),
            })
        }
    }

    /// Ends the session: DELETE, then closes the peer connection.
    pub async fn close(self) -> Result<(), RtcError> {
        let deleted = http::delete_session(&self.http, &self.session.location, None).await;
        self.shutdown().await;
        deleted
    }

    /// Closes the peer connection without a DELETE (a viewer whose tab crashed).
    pub async fn drop_abruptly(self) {
        self.shutdown().await;
    }

    async fn shutdown(&self) {
        let _ = self.pc.close().await;
        for t in self.shared.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

impl Drop for WhepViewer {
    fn drop(&mut self) {
        for t in self.shared.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

async fn note_connected(events: Arc<Events>, shared: std::sync::Weak<Shared>) {
    if events.connected(Duration::from_secs(3600)).await.is_ok()
        && let Some(s) = shared.upgrade()
    {
        *s.connected_after.lock().unwrap() = Some(s.started.elapsed());
    }
}

/// Reads one remote track until it ends, counting into its m-line's account. Holds only a weak
/// reference, so a dropped viewer frees its memory even if the track lingers.
///
/// webrtc 0.21 may drop a stream's first packets (they can reach the driver before the track
/// exists), so the keyframe a relay starts a viewer with can be lost. Like a browser whose
/// decoder has nothing to start from, the viewer then asks for one with a PLI (at most every
/// 500 ms until a keyframe arrives).
async fn count(shared: std::sync::Weak<Shared>, track: Arc<dyn TrackRemote>) {
    let mut line = None;
    let mut last_pli: Option<Instant> = None;
    while let Some(event) = track.poll().await {
        let Some(s) = shared.upgrade() else { return };
        match event {
            TrackRemoteEvent::OnOpen(init) => {
                let id = RTCRtpTransceiverId::from(init.receiver_id);
                line = s
                    .transceivers
                    .get()
                    .and_then(|ids| ids.iter().position(|t| *t == id));
            }
            TrackRemoteEvent::OnRtpPacket(p) => {
                let Some(l) = line.and_then(|i| s.lines.get(i)) else {
                    continue;
                };
                let video = l.kind == MediaKind::Video;
                let keyframe = video && vp8::is_keyframe(&p.payload);
                let at = s.started.elapsed();
                let waiting = {
                    let mut a = l.account.lock().unwrap();
                    a.record(
                        at,
                        p.header.sequence_number,
                        p.header.timestamp,
                        p.payload.len(),
                        keyframe,
                        trailer::read(&p.payload),
                    );
                    video && a.first_keyframe.is_none()
                };
                if waiting && last_pli.is_none_or(|t| t.elapsed() >= Duration::from_millis(500)) {
                    last_pli = Some(Instant::now());
                    let pli = PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc: p.header.ssrc,
                    };
                    if track.write_rtcp(vec![Box::new(pli)]).await.is_ok() {
                        l.account.lock().unwrap().plis_sent += 1;
                    }
                }
            }
            TrackRemoteEvent::OnEnded => return,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m_lines_alternate_video_and_audio() {
        use MediaKind::*;
        let k = |video, audio| ViewerConfig { video, audio }.kinds();
        assert_eq!(k(1, 1), vec![Video, Audio]);
        assert_eq!(
            k(4, 4),
            vec![Video, Audio, Video, Audio, Video, Audio, Video, Audio]
        );
        assert_eq!(k(2, 1), vec![Video, Audio, Video]);
        assert_eq!(k(0, 2), vec![Audio, Audio]);
    }
}
