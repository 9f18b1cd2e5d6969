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

impl TrackStats {
    /// One m-line's figures from what its RTP account counted (the full viewer and the load
    /// tester's light viewer report alike).
    pub fn of(kind: MediaKind, slot: usize, a: &super::stats::RtpAccount) -> Self {
        Self {
            kind,
            slot,
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
    }
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

/// A live WHEP session (or a viewer whose offer came from elsewhere, see
/// [`WhepViewer::answer_offer`]).
pub struct WhepViewer {
    pc: Arc<dyn PeerConnection>,
    events: Arc<Events>,
    /// The WHEP answer; `None` for a viewer that answered someone else's offer.
    session: Option<SdpAnswer>,
    location: reqwest::Url,
    http: reqwest::Client,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WhepViewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhepViewer")
            .field("session", &self.location.as_str())
            .finish()
    }
}

fn shared_for(kinds: Vec<MediaKind>, started: Instant) -> Arc<Shared> {
    let lines = kinds
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
    Arc::new(Shared {
        started,
        lines,
        transceivers: OnceLock::new(),
        tasks: Mutex::new(Vec::new()),
        connected_after: Mutex::new(None),
    })
}

/// The track sink that starts a counting task per remote track.
fn counting_sink(shared: &Arc<Shared>) -> peer::TrackSink {
    let shared = Arc::downgrade(shared);
    Box::new(move |track: Arc<dyn TrackRemote>| {
        if let Some(s) = shared.upgrade() {
            let task = tokio::spawn(count(Arc::downgrade(&s), track));
            s.tasks.lock().unwrap().push(task);
        }
    })
}

/// The audio and video m-lines of an SDP, in order (other m-lines are not counted).
pub fn offered_kinds(sdp: &str) -> Vec<Option<MediaKind>> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("m="))
        .map(|m| match m.split_whitespace().next() {
            Some("video") => Some(MediaKind::Video),
            Some("audio") => Some(MediaKind::Audio),
            _ => None,
        })
        .collect()
}

/// The `a=mid` of each m-line of an SDP, in order.
fn offered_mids(sdp: &str) -> Vec<Option<String>> {
    let mut mids = Vec::new();
    for line in sdp.lines() {
        if line.starts_with("m=") {
            mids.push(None);
        } else if let (Some(mid), Some(last)) = (line.strip_prefix("a=mid:"), mids.last_mut()) {
            *last = Some(mid.trim().to_owned());
        }
    }
    mids
}

impl WhepViewer {
    /// The answering side, for servers that send the offer (Janus's streaming plugin): applies
    /// `offer`, gathers, hands the complete answer to `deliver` and counts what arrives on each
    /// audio/video m-line of the offer. `location` names the session (it is not DELETEd on
    /// close; ending the server's session is the caller's business). Times (connected, first
    /// packet, first keyframe) count from `started`, when the caller began signaling.
    pub async fn answer_offer<F, Fut>(
        ctx: &RtcContext,
        started: Instant,
        offer: &str,
        location: reqwest::Url,
        deliver: F,
    ) -> Result<Self, RtcError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<(), RtcError>>,
    {
        let offered = offered_kinds(offer);
        if offered.iter().any(Option::is_none) {
            return Err(RtcError::Protocol(
                "offer has m-lines other than audio and video".into(),
            ));
        }
        let shared = shared_for(offered.into_iter().flatten().collect(), started);
        let events = Events::new(Some(counting_sink(&shared)));
        let pc = ctx.peer(events.clone(), false).await?;
        let result = async {
            pc.set_remote_description(RTCSessionDescription::offer(offer.to_owned())?)
                .await?;
            // Transceivers in m-line order, matched by mid (get_transceivers' order is not it).
            let mids = offered_mids(offer);
            let mut ids = vec![None; mids.len()];
            for t in pc.get_transceivers().await {
                let mid = t.mid().await?;
                if let Some(i) = mids.iter().position(|m| m.is_some() && *m == mid) {
                    ids[i] = Some(t.id());
                }
            }
            let ids = ids
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| RtcError::Protocol("an offered m-line has no transceiver".into()))?;
            let _ = shared.transceivers.set(ids);
            let answer = pc.create_answer(None).await?;
            pc.set_local_description(answer).await?;
            events.gathered(Duration::from_secs(10)).await?;
            let sdp = pc
                .local_description()
                .await
                .map(|d| d.sdp)
                .ok_or_else(|| RtcError::Protocol("no local description".into()))?;
            deliver(sdp).await
        }
        .await;
        match result {
            Ok(()) => {
                let noting = tokio::spawn(note_connected(events.clone(), Arc::downgrade(&shared)));
                shared.tasks.lock().unwrap().push(noting);
                Ok(Self {
                    pc,
                    events,
                    session: None,
                    location,
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

    /// POSTs a recvonly offer to `whep_url` and applies the answer. Media counting starts at
    /// once; [`WhepViewer::wait_connected`] waits for ICE + DTLS.
    pub async fn connect(
        ctx: &RtcContext,
        whep_url: &str,
        config: &ViewerConfig,
    ) -> Result<Self, RtcError> {
        let shared = shared_for(config.kinds(), Instant::now());
        let events = Events::new(Some(counting_sink(&shared)));
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
                    location: session.location.clone(),
                    session: Some(session),
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
            .map(|l| TrackStats::of(l.kind, l.slot, &l.account.lock().unwrap()))
            .collect();
        ViewerStats {
            connected_after: *self.shared.connected_after.lock().unwrap(),
            state: *self.events.state.borrow(),
            tracks,
        }
    }

    pub fn session_url(&self) -> &reqwest::Url {
        &self.location
    }

    pub fn ice_servers(&self) -> &[IceServer] {
        self.session.as_ref().map_or(&[], |s| &s.ice_servers)
    }

    /// Chooses a simulcast layer (`Some("q"|"h"|"f")`) or automatic (`None`) through the
    /// layer link of the answer.
    pub async fn set_layer(&self, layer: Option<&str>) -> Result<(), RtcError> {
        let url = match self.session.as_ref().and_then(|s| s.layer_url.as_ref()) {
            Some(u) => u.clone(),
            None => reqwest::Url::parse(&format!("{}/layer", self.location))
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
        let deleted = match &self.session {
            Some(s) => http::delete_session(&self.http, &s.location, None).await,
            None => Ok(()),
        };
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

    #[test]
    fn reads_kinds_and_mids_of_an_offer() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a\r\n";
        assert_eq!(
            offered_kinds(sdp),
            vec![Some(MediaKind::Video), Some(MediaKind::Audio)]
        );
        assert_eq!(offered_mids(sdp), vec![Some("v".into()), Some("a".into())]);
        assert_eq!(offered_kinds("m=application 9 x\r\n"), vec![None]);
    }
}
