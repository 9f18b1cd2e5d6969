//! What publishers and viewers share: one runtime, crypto provider and HTTP client per process
//! ([`RtcContext`]), the codec set (VP8 + Opus only, so the answer cannot pick anything else),
//! the event handler that turns callbacks into watch channels, and the interceptor that hands
//! keyframe requests to the application.

use crate::rtc::http::{IceServer, RtcError};
use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState,
    SettingEngineBuilder, crypto, register_default_interceptors,
};
use webrtc::runtime::Runtime;

pub const VP8_PAYLOAD_TYPE: u8 = 96;
pub const OPUS_PAYLOAD_TYPE: u8 = 111;

/// Process-wide pieces every peer connection reuses, so a thousand viewers do not build a
/// thousand runtimes, crypto providers or HTTP connection pools.
#[derive(Clone)]
pub struct RtcContext {
    runtime: Arc<dyn Runtime>,
    crypto: Arc<dyn crypto::RTCCryptoProvider>,
    http: reqwest::Client,
    bind_ip: IpAddr,
    ice_servers: Vec<IceServer>,
}

impl std::fmt::Debug for RtcContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcContext")
            .field("bind_ip", &self.bind_ip)
            .field("ice_servers", &self.ice_servers)
            .finish()
    }
}

impl RtcContext {
    /// Peers bind UDP on `bind_ip` (port 0); `127.0.0.1` for a server on this machine, an
    /// unspecified address for every interface.
    pub fn new(bind_ip: IpAddr) -> Result<Self, RtcError> {
        let runtime = webrtc::runtime::default_runtime()
            .ok_or_else(|| RtcError::WebRtc("no async runtime".into()))?;
        let crypto = crypto::default_provider().map_err(|e| RtcError::WebRtc(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            runtime,
            crypto,
            http,
            bind_ip,
            ice_servers: Vec::new(),
        })
    }

    /// Binds loopback when the server's host is a loopback address, else every interface.
    pub fn for_url(url: &str) -> Result<Self, RtcError> {
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let ip: IpAddr = if loopback {
            [127, 0, 0, 1].into()
        } else {
            [0, 0, 0, 0].into()
        };
        Self::new(ip)
    }

    /// ICE servers (STUN/TURN) given to every peer connection built from now on.
    pub fn with_ice_servers(mut self, servers: Vec<IceServer>) -> Self {
        self.ice_servers = servers;
        self
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Builds a peer connection with VP8 + Opus, the default interceptors (NACK, reports,
    /// TWCC) and optionally the keyframe-request forwarder.
    pub(crate) async fn peer(
        &self,
        events: Arc<Events>,
        forward_keyframe_requests: bool,
    ) -> Result<Arc<dyn PeerConnection>, RtcError> {
        let mut media = media_engine()?;
        let mut registry = register_default_interceptors(Registry::new(), &mut media)?;
        if forward_keyframe_requests {
            // Last in the chain, so the other interceptors have seen the RTCP first.
            registry = registry.with(Slot::from(14_000usize), KeyframeRequestForwarder::default());
        }
        let config = RTCConfigurationBuilder::new()
            .with_ice_servers(
                self.ice_servers
                    .iter()
                    .map(|s| RTCIceServer {
                        urls: vec![s.url.clone()],
                        username: s.username.clone().unwrap_or_default(),
                        credential: s.credential.clone().unwrap_or_default(),
                    })
                    .collect(),
            )
            .build();
        let settings = SettingEngineBuilder::new()
            .with_crypto_provider(self.crypto.clone())
            // No mDNS socket per peer; host candidates carry plain IPs.
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(config)
            .with_media_engine(media)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .with_runtime(self.runtime.clone())
            .with_handler(events)
            .with_udp_addrs(vec![std::net::SocketAddr::new(self.bind_ip, 0)])
            .build()
            .await?;
        Ok(Arc::new(pc))
    }
}

fn media_engine() -> Result<MediaEngine, RtcError> {
    let fb = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    let mut media = MediaEngine::default();
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: crate::rtc::vp8::VIDEO_CLOCK_RATE,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![fb("ccm", "fir")],
            },
            payload_type: VP8_PAYLOAD_TYPE,
        },
        RtpCodecKind::Video,
    )?;
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: crate::rtc::opus::AUDIO_CLOCK_RATE,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: OPUS_PAYLOAD_TYPE,
        },
        RtpCodecKind::Audio,
    )?;
    Ok(media)
}

/// Called with each remote track as it opens.
pub(crate) type TrackSink = Box<dyn Fn(Arc<dyn TrackRemote>) + Send + Sync>;

/// Peer connection callbacks as watch channels, plus an optional track sink.
pub(crate) struct Events {
    pub state: watch::Sender<RTCPeerConnectionState>,
    pub gathered: watch::Sender<bool>,
    pub on_track: Option<TrackSink>,
}

impl Events {
    pub fn new(on_track: Option<TrackSink>) -> Arc<Self> {
        Arc::new(Self {
            state: watch::channel(RTCPeerConnectionState::New).0,
            gathered: watch::channel(false).0,
            on_track,
        })
    }

    /// Waits for ICE gathering to complete (non-trickle WHIP/WHEP sends every candidate in the
    /// offer).
    pub async fn gathered(&self, timeout: Duration) -> Result<(), RtcError> {
        let mut rx = self.gathered.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|g| *g))
            .await
            .map_err(|_| RtcError::Protocol("ICE gathering did not complete".into()))?
            .map(|_| ())
            .map_err(|_| RtcError::Protocol("peer connection gone".into()))
    }

    /// Waits until the peer connection is connected; fails early on failed/closed.
    pub async fn connected(&self, timeout: Duration) -> Result<(), RtcError> {
        let mut rx = self.state.subscribe();
        let state = tokio::time::timeout(
            timeout,
            rx.wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                )
            }),
        )
        .await
        .map_err(|_| RtcError::Protocol(format!("not connected after {timeout:?}")))?
        .map_err(|_| RtcError::Protocol("peer connection gone".into()))?
        .to_owned();
        match state {
            RTCPeerConnectionState::Connected => Ok(()),
            s => Err(RtcError::Protocol(format!("peer connection {s}"))),
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(sink) = &self.on_track {
            sink(track);
        }
    }
}

/// Creates the offer, waits for gathering and returns the SDP with every candidate in it.
pub(crate) async fn complete_offer(
    pc: &Arc<dyn PeerConnection>,
    events: &Events,
) -> Result<String, RtcError> {
    let offer = pc.create_offer(None).await?;
    pc.set_local_description(offer).await?;
    events.gathered(Duration::from_secs(10)).await?;
    pc.local_description()
        .await
        .map(|d| d.sdp)
        .ok_or_else(|| RtcError::Protocol("no local description".into()))
}

/// Marks inbound PLI and FIR for the application, so the publisher's video track sees them
/// (webrtc 0.21 stops inbound RTCP at the end of the interceptor chain otherwise), and drops
/// the rest of the inbound RTCP at this last stage.
#[derive(Default)]
struct KeyframeRequestForwarder {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

pub(crate) fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestForwarder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| is_keyframe_request(p.as_ref()))
                .cloned()
                .collect();
            if requests.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequestForwarder {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}
