//! A WHIP publisher: one sendonly VP8 track and one sendonly Opus track with synthetic RTP.

use crate::rtc::http::{self, IceServer, RtcError, SdpAnswer};
use crate::rtc::peer::{self, Events, OPUS_PAYLOAD_TYPE, RtcContext, VP8_PAYLOAD_TYPE};
use crate::rtc::source::{RtpSink, send_audio, send_video};
use crate::rtc::{opus, vp8};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};
use webrtc::rtp_transceiver::RtpSender;

/// What the publisher sends.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub video: bool,
    pub audio: bool,
    pub fps: u32,
    pub packets_per_frame: usize,
    /// VP8 RTP payload size in bytes.
    pub video_payload: usize,
    /// Opus RTP payload size in bytes.
    pub audio_payload: usize,
    /// A keyframe every this many frames (and whenever the relay asks for one).
    pub keyframe_interval: u64,
    /// How long to wait for ICE + DTLS before giving up.
    pub connect_timeout: Duration,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            video: true,
            audio: true,
            fps: 30,
            packets_per_frame: 3,
            video_payload: 1100,
            audio_payload: 100,
            keyframe_interval: 60,
            connect_timeout: Duration::from_secs(20),
        }
    }
}

/// Counts of what was handed to the peer connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherStats {
    pub video_packets: u64,
    pub video_bytes: u64,
    pub video_frames: u64,
    pub keyframes: u64,
    /// PLI/FIR received from the relay.
    pub keyframe_requests: u64,
    pub audio_packets: u64,
    pub audio_bytes: u64,
    /// Trailer index of the last packet sent on each track (see `rtc::trailer`).
    pub last_video_index: Option<u64>,
    pub last_audio_index: Option<u64>,
}

/// Send-side counters (also used by the load tester's plain-RTP sender).
#[derive(Debug, Default)]
pub struct Counters {
    pub video_packets: AtomicU64,
    pub video_bytes: AtomicU64,
    pub video_frames: AtomicU64,
    pub keyframes: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub audio_packets: AtomicU64,
    pub audio_bytes: AtomicU64,
    pub keyframe_wanted: AtomicBool,
    pub paused: AtomicBool,
}

impl Counters {
    /// Stops the senders after the packet or frame they are sending (they hold `gate` for
    /// it); when this returns the counts no longer move.
    pub async fn pause(&self, gate: &RwLock<()>) {
        self.paused.store(true, Relaxed);
        drop(gate.write().await);
    }
}

impl Counters {
    pub fn stats(&self) -> PublisherStats {
        let video_packets = self.video_packets.load(Relaxed);
        let audio_packets = self.audio_packets.load(Relaxed);
        PublisherStats {
            video_packets,
            video_bytes: self.video_bytes.load(Relaxed),
            video_frames: self.video_frames.load(Relaxed),
            keyframes: self.keyframes.load(Relaxed),
            keyframe_requests: self.keyframe_requests.load(Relaxed),
            audio_packets,
            audio_bytes: self.audio_bytes.load(Relaxed),
            last_video_index: video_packets.checked_sub(1),
            last_audio_index: audio_packets.checked_sub(1),
        }
    }
}

/// A live WHIP session. Close it with [`WhipPublisher::close`] (DELETE) or
/// [`WhipPublisher::drop_abruptly`] (no DELETE, like a crashed encoder).
pub struct WhipPublisher {
    pc: Arc<dyn PeerConnection>,
    session: SdpAnswer,
    token: Option<String>,
    http: reqwest::Client,
    counters: Arc<Counters>,
    /// Send loops hold a read guard per frame; `pause` takes the write guard once so that no
    /// frame is half sent when it returns.
    gate: Arc<RwLock<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for WhipPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhipPublisher")
            .field("session", &self.session.location.as_str())
            .finish()
    }
}

struct Sending {
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
}

impl WhipPublisher {
    /// POSTs the offer to `whip_url` (with `Bearer token` if given), applies the answer, waits
    /// for the connection and starts sending.
    pub async fn connect(
        ctx: &RtcContext,
        whip_url: &str,
        token: Option<&str>,
        config: PublisherConfig,
    ) -> Result<Self, RtcError> {
        let events = Events::new(None);
        let pc = ctx.peer(events.clone(), true).await?;
        match Self::negotiate(ctx, &pc, &events, whip_url, token, config).await {
            Ok(p) => Ok(p),
            Err(e) => {
                let _ = pc.close().await;
                Err(e)
            }
        }
    }

    async fn negotiate(
        ctx: &RtcContext,
        pc: &Arc<dyn PeerConnection>,
        events: &Events,
        whip_url: &str,
        token: Option<&str>,
        config: PublisherConfig,
    ) -> Result<Self, RtcError> {
        let video = if config.video {
            Some(add_track(pc, RtpCodecKind::Video).await?)
        } else {
            None
        };
        let audio = if config.audio {
            Some(add_track(pc, RtpCodecKind::Audio).await?)
        } else {
            None
        };
        let offer = peer::complete_offer(pc, events).await?;
        let session = http::post_offer(ctx.http(), whip_url, token, offer).await?;
        let started = async {
            pc.set_remote_description(RTCSessionDescription::answer(session.sdp.clone())?)
                .await?;
            events.connected(config.connect_timeout).await
        };
        if let Err(e) = started.await {
            let _ = http::delete_session(ctx.http(), &session.location, token).await;
            return Err(e);
        }
        let counters = Arc::new(Counters::default());
        let gate = Arc::new(RwLock::new(()));
        let mut tasks = Vec::new();
        if let Some(v) = video {
            check_payload_type(&v, VP8_PAYLOAD_TYPE).await?;
            tasks.push(tokio::spawn(keyframe_requests(
                v.track.clone(),
                counters.clone(),
            )));
            let sink = TrackSink {
                sending: v,
                pt: VP8_PAYLOAD_TYPE,
            };
            tasks.push(tokio::spawn(send_video(
                sink,
                config.clone(),
                counters.clone(),
                gate.clone(),
            )));
        }
        if let Some(a) = audio {
            check_payload_type(&a, OPUS_PAYLOAD_TYPE).await?;
            let sink = TrackSink {
                sending: a,
                pt: OPUS_PAYLOAD_TYPE,
            };
            tasks.push(tokio::spawn(send_audio(
                sink,
                config.audio_payload,
                counters.clone(),
                gate.clone(),
            )));
        }
        Ok(Self {
            pc: pc.clone(),
            session,
            token: token.map(str::to_owned),
            http: ctx.http().clone(),
            counters,
            gate,
            tasks,
        })
    }

    pub fn stats(&self) -> PublisherStats {
        self.counters.stats()
    }

    /// Stops sending after the current frame; when this returns the counts no longer move.
    pub async fn pause(&self) {
        self.counters.pause(&self.gate).await;
    }

    /// Sends again (starting with a keyframe).
    pub fn resume(&self) {
        self.counters.keyframe_wanted.store(true, Relaxed);
        self.counters.paused.store(false, Relaxed);
    }

    /// Makes the next frame a keyframe.
    pub fn request_keyframe(&self) {
        self.counters.keyframe_wanted.store(true, Relaxed);
    }

    /// The session URL from `Location`.
    pub fn session_url(&self) -> &reqwest::Url {
        &self.session.location
    }

    /// ICE servers announced in the answer's `Link` headers.
    pub fn ice_servers(&self) -> &[IceServer] {
        &self.session.ice_servers
    }

    /// Ends the session: DELETE, then closes the peer connection.
    pub async fn close(mut self) -> Result<(), RtcError> {
        self.stop_tasks();
        let deleted =
            http::delete_session(&self.http, &self.session.location, self.token.as_deref()).await;
        let _ = self.pc.close().await;
        deleted
    }

    /// Closes the peer connection without telling the server (no DELETE).
    pub async fn drop_abruptly(mut self) {
        self.stop_tasks();
        let _ = self.pc.close().await;
    }

    fn stop_tasks(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for WhipPublisher {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

/// A local VP8 or Opus track with one fixed SSRC.
pub(crate) fn local_track(kind: RtpCodecKind, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    let (mime, clock_rate, channels) = match kind {
        RtpCodecKind::Audio => (MIME_TYPE_OPUS, opus::AUDIO_CLOCK_RATE, 2),
        _ => (MIME_TYPE_VP8, vp8::VIDEO_CLOCK_RATE, 0),
    };
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "townhall-load".to_owned(),
        format!("townhall-load-{kind}"),
        format!("townhall-load-{kind}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate,
                channels,
                ..Default::default()
            },
            ..Default::default()
        }],
    )))
}

async fn add_track(pc: &Arc<dyn PeerConnection>, kind: RtpCodecKind) -> Result<Sending, RtcError> {
    let ssrc = rand::random::<u32>();
    let track = local_track(kind, ssrc);
    let transceiver = pc
        .add_transceiver_from_track(
            track.clone() as Arc<dyn TrackLocal>,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                ..Default::default()
            }),
        )
        .await?;
    let sender = transceiver
        .sender()
        .await?
        .ok_or_else(|| RtcError::WebRtc("transceiver without sender".into()))?;
    Ok(Sending {
        track,
        sender,
        ssrc,
    })
}

/// webrtc 0.21 drops (and only logs) packets whose payload type is not negotiated, so check
/// once that the answer kept ours instead of counting packets that never left.
async fn check_payload_type(s: &Sending, pt: u8) -> Result<(), RtcError> {
    let params = s.sender.get_parameters().await?;
    if params
        .rtp_parameters
        .codecs
        .iter()
        .any(|c| c.payload_type == pt)
    {
        Ok(())
    } else {
        Err(RtcError::Protocol(format!(
            "answer did not accept payload type {pt}"
        )))
    }
}

fn packet(
    pt: u8,
    ssrc: u32,
    seq: u16,
    ts: u32,
    marker: bool,
    payload: bytes::Bytes,
) -> rtp::Packet {
    rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            marker,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            ..Default::default()
        },
        payload,
    }
}

/// The WHIP publisher's packets go to its webrtc-rs track.
struct TrackSink {
    sending: Sending,
    pt: u8,
}

impl RtpSink for TrackSink {
    async fn send(&mut self, marker: bool, seq: u16, ts: u32, payload: bytes::Bytes) -> bool {
        let pkt = packet(self.pt, self.sending.ssrc, seq, ts, marker, payload);
        // An error means the track is unbound: the peer connection is gone.
        self.sending.track.write_rtp(pkt).await.is_ok()
    }
}

/// Turns PLI/FIR from the relay into "next frame is a keyframe".
async fn keyframe_requests(track: Arc<TrackLocalStaticRTP>, c: Arc<Counters>) {
    while let Some(event) = track.poll().await {
        if let TrackLocalEvent::OnRtcpPacket(packets) = event
            && packets
                .iter()
                .any(|p| peer::is_keyframe_request(p.as_ref()))
        {
            c.keyframe_requests.fetch_add(1, Relaxed);
            c.keyframe_wanted.store(true, Relaxed);
        }
    }
}
