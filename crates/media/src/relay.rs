//! The relay state machine: every WebRTC peer of a node, grouped by meeting.
//!
//! Sans-IO like str0m underneath it: the driver feeds datagrams and timeouts in and takes the
//! datagrams to send from [`Relay::drain_outgoing`]. A publisher's RTP packet is forwarded to
//! each viewer of its meeting right away (write into the viewer's str0m stream, poll it), so
//! forwarding adds no queueing of its own.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::SdpOffer;
use str0m::format::{Codec, CodecSpec};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Ssrc, Vp8Descriptor};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use townhall_core::MeetingId;

use crate::keyframe::starts_keyframe;
use crate::layers::{RIDS, RateMeter, choose_layer};
use crate::metrics::MediaMetrics;
use crate::rewrite::{Rewriter, Vp8Ids};
use crate::types::{MediaError, Route, SLOTS, SessionId, SourceKind, StageSource};

/// Limits and network facts the relay needs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// This relay's shard number, and how many shards the node runs (1: no fan-out).
    pub shard: u16,
    pub shards: u16,
    /// What every shard of the node shares: per-node limits and the session directory.
    pub shared: Arc<Shared>,
    /// ICE candidates every peer is offered (the node's UDP and TCP addresses).
    pub candidates: Vec<Candidate>,
    /// Viewers this node serves at most, over all meetings.
    pub max_viewers: usize,
    /// Least time between two keyframe requests to one publisher layer, so that a thousand
    /// viewers joining at once cost the publisher one keyframe, not a thousand.
    pub keyframe_interval: Duration,
    /// Bandwidth a viewer is assumed to have before its estimate arrives.
    pub initial_viewer_bitrate: Bitrate,
    /// A source without packets for this long leaves the stage (the meeting shows as paused).
    pub idle_source: Duration,
    /// Sessions one client address may hold at once (WHIP and WHEP together).
    pub max_sessions_per_ip: usize,
    /// A session whose peer has not connected by then is dropped (an offer nobody follows up).
    pub connect_timeout: Duration,
    /// Remote ICE candidates one session may trickle in all; each one makes str0m's ICE
    /// agent (and so every later request) slower, so an unbounded number is an attack.
    pub max_candidates: usize,
    /// Trickle (`PATCH`) requests one session may make per second on average, and in a burst.
    pub trickle_per_second: f64,
    pub trickle_burst: u32,
}

/// What the shards of one node share: the limits that hold per node rather than per shard
/// (viewers, sessions per address) and which shard holds each session, so the HTTP side can
/// route a session's requests. Locked when a session starts or ends, never per packet.
#[derive(Debug, Default)]
pub struct Shared {
    inner: Mutex<Directory>,
}

#[derive(Debug, Default)]
struct Directory {
    per_ip: HashMap<IpAddr, usize>,
    viewers: usize,
    shard_viewers: HashMap<u16, usize>,
    sessions: HashMap<SessionId, u16>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Directory> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shard holding a live session.
    pub fn shard_of(&self, session: &SessionId) -> Option<u16> {
        self.lock().sessions.get(session).copied()
    }

    /// The shard (of `0..shards`) with the fewest viewers, for a new one.
    pub fn least_loaded(&self, shards: u16) -> u16 {
        let d = self.lock();
        (0..shards.max(1))
            .min_by_key(|s| d.shard_viewers.get(s).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Viewers over all shards.
    pub fn viewers(&self) -> usize {
        self.lock().viewers
    }

    /// Refuses what a new session would exceed, without taking anything.
    fn check(&self, ip: IpAddr, viewer: bool, config: &RelayConfig) -> Result<(), MediaError> {
        let d = self.lock();
        if viewer && d.viewers >= config.max_viewers {
            return Err(MediaError::MediaFull);
        }
        if d.per_ip.get(&ip).copied().unwrap_or(0) >= config.max_sessions_per_ip {
            return Err(MediaError::TooManySessions);
        }
        Ok(())
    }

    /// Checks and takes a new session's share of the limits, in one step.
    fn admit(
        &self,
        session: &SessionId,
        ip: IpAddr,
        viewer: bool,
        config: &RelayConfig,
    ) -> Result<(), MediaError> {
        let mut d = self.lock();
        if viewer && d.viewers >= config.max_viewers {
            return Err(MediaError::MediaFull);
        }
        let held = d.per_ip.entry(ip).or_default();
        if *held >= config.max_sessions_per_ip {
            return Err(MediaError::TooManySessions);
        }
        *held += 1;
        if viewer {
            d.viewers += 1;
            *d.shard_viewers.entry(config.shard).or_default() += 1;
        }
        d.sessions.insert(session.clone(), config.shard);
        Ok(())
    }

    fn release(&self, session: &SessionId, ip: IpAddr, viewer: bool, shard: u16) {
        let mut d = self.lock();
        if let Some(n) = d.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                d.per_ip.remove(&ip);
            }
        }
        if viewer {
            d.viewers -= 1;
            if let Some(n) = d.shard_viewers.get_mut(&shard) {
                *n -= 1;
            }
        }
        d.sessions.remove(session);
    }
}

/// A publisher's packet (or news of it) for the node's other shards, which forward it to their
/// own viewers. The packet's payload is shared, never copied per shard or viewer.
// The packet variant is the common one; boxing it would cost an allocation per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ShardMessage {
    Packet {
        meeting: Arc<MeetingId>,
        /// The publisher's key, unique over the node (its shard is in the top bits).
        publisher: u64,
        slot: usize,
        kind: MediaKind,
        layer: usize,
        layer_rates: [u64; 3],
        simulcast: bool,
        packet: Packet,
    },
    /// The publisher left: its slot is free.
    Gone {
        meeting: Arc<MeetingId>,
        publisher: u64,
    },
    /// A viewer on another shard wants a keyframe of the publisher's layer.
    KeyframeRequest { publisher: u64, layer: usize },
}

impl ShardMessage {
    /// The one shard this message is for, or `None` for every other shard.
    pub fn target(&self) -> Option<u16> {
        match self {
            ShardMessage::KeyframeRequest { publisher, .. } => Some(shard_of_key(*publisher)),
            _ => None,
        }
    }
}

/// Peer keys carry their shard in the top 16 bits, so a publisher's key names it node-wide.
fn shard_of_key(key: PeerKey) -> u16 {
    (key >> 48) as u16
}

/// A publisher of another shard, as this shard knows it: from its packets.
#[derive(Debug)]
struct Remote {
    meeting: Arc<MeetingId>,
    has_video: bool,
    simulcast: bool,
    layers: [InLayer; 3],
}

/// The relay's housekeeping (unconnected sessions, idle sources) runs at least this often,
/// however far away every peer's own timer is.
pub const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// A datagram the driver must send.
#[derive(Debug)]
pub struct Outgoing {
    pub proto: Protocol,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub data: Vec<u8>,
}

/// One publisher RTP packet as forwarding needs it, looked at once: owned and cheap to clone
/// (the payload is shared, never copied), so it can wait in a keyframe cache for viewers who
/// join later.
#[derive(Debug, Clone)]
pub struct Packet {
    pub seq: u64,
    pub ts: u32,
    pub marker: bool,
    pub pt: Pt,
    /// The publisher's codec for `pt`.
    pub spec: CodecSpec,
    pub payload: Arc<[u8]>,
    /// When it arrived.
    pub received: Instant,
    /// The header extensions a viewer gets (audio level, voice activity, orientation).
    pub ext: ExtensionValues,
    /// The first packet of a keyframe.
    pub keyframe: bool,
    pub vp8: Vp8Ids,
    /// The parsed VP8 descriptor (VP8 video only), so patching it costs no parse per viewer.
    pub vp8_descriptor: Option<Vp8Descriptor>,
}

/// Packets one publisher layer's keyframe cache holds at most (≈ 1 MB of 1,100-byte packets,
/// several seconds of a camera); a longer group of pictures is not kept, and viewers joining
/// then wait for a requested keyframe instead.
pub const MAX_GOP_PACKETS: usize = 1000;

/// How often cached packets are replayed to starting viewers, how many per round in all, and
/// how many per viewer: many joins at once cost a bounded burst per round instead of one
/// cache per viewer at the same instant (which a socket buffer would drop).
pub const REPLAY_TICK: Duration = Duration::from_millis(5);
pub const REPLAY_BUDGET: usize = 256;
pub const REPLAY_PER_VIEWER: usize = 32;

/// A new session's id and SDP answer.
#[derive(Debug)]
pub struct Answer {
    pub session: SessionId,
    pub sdp: String,
}

type PeerKey = u64;

/// See the module doc.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    metrics: MediaMetrics,
    epoch: Instant,
    next_key: PeerKey,
    peers: HashMap<PeerKey, Peer>,
    sessions: HashMap<SessionId, PeerKey>,
    rooms: HashMap<MeetingId, Room>,
    /// Remote address → peer, so a datagram finds its peer without asking every `Rtc`.
    routes: HashMap<(Protocol, SocketAddr), PeerKey>,
    viewers: usize,
    sinks: Sinks,
    /// Sessions that ended lately (ICE gone, meeting ended), so a client's `DELETE` that comes
    /// after its peer connection closed still gets 200, not 404 (under its own meeting and
    /// route only).
    recently_closed: std::collections::VecDeque<(SessionId, Arc<MeetingId>, Route)>,
    last_sweep: Instant,
    /// Viewers with a track starting from a publisher's keyframe cache, in turn order.
    replaying: Vec<PeerKey>,
    last_replay: Option<Instant>,
    /// Reused buffer of cached packets being replayed (no allocation per round).
    replay_scratch: Vec<Packet>,
    /// Publishers of other shards whose packets reach this one.
    remotes: HashMap<PeerKey, Remote>,
    /// Messages for the other shards, taken by the driver.
    exports: Vec<ShardMessage>,
}

/// How many ended sessions [`Relay::close`] still recognises.
const RECENTLY_CLOSED: usize = 4096;

/// What polling peers produces, kept apart from the peers so both can be borrowed at once.
#[derive(Debug, Default)]
struct Sinks {
    /// Peer wake-up times, earliest first. An entry is stale when the peer has since been
    /// given another time (or is gone); stale entries are skipped when they come due. This
    /// keeps a timer tick O(log n) instead of scanning every peer.
    timers: BinaryHeap<Reverse<(Instant, PeerKey)>>,
    outgoing: Vec<Outgoing>,
    /// RTP packets polled from publishers, forwarded once their poll is done.
    to_forward: Vec<(PeerKey, RtpPacket)>,
    /// Keyframe requests gathered while forwarding: (publisher, layer).
    to_request: Vec<(PeerKey, usize)>,
    /// Viewers that started a track from a keyframe cache while forwarding.
    to_replay: Vec<PeerKey>,
    to_remove: Vec<PeerKey>,
}

#[derive(Debug, Default)]
struct Room {
    slots: [Option<PeerKey>; SLOTS],
    viewers: Vec<PeerKey>,
}

#[derive(Debug)]
struct Peer {
    session: SessionId,
    /// Shared, so forwarding a packet looks up its room without copying the id.
    meeting: Arc<MeetingId>,
    rtc: Rtc,
    timeout: Instant,
    created: Instant,
    ip: IpAddr,
    connected: bool,
    role: Role,
    /// Remote candidates trickled so far, against `max_candidates`.
    candidates: usize,
    trickles: Bucket,
}

/// A token bucket: `rate` per second on average, `burst` at once. Time is passed in.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(burst: u32, now: Instant) -> Self {
        Bucket {
            tokens: f64::from(burst),
            last: now,
        }
    }

    fn take(&mut self, now: Instant, rate: f64, burst: u32) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
enum Role {
    /// Boxed: a publisher carries its layers' keyframe caches; viewers are the many.
    Publisher(Box<Publisher>),
    Viewer(Viewer),
}

#[derive(Debug)]
struct Publisher {
    slot: usize,
    source: SourceKind,
    label: Option<String>,
    tracks: HashMap<Ssrc, InTrack>,
    /// Per simulcast layer (index into `RIDS`; layer 0 without simulcast).
    layers: [InLayer; 3],
    simulcast: bool,
    has_video: bool,
    last_video: Option<Instant>,
    last_audio: Option<Instant>,
}

#[derive(Debug, Default)]
struct InLayer {
    rate: RateMeter,
    last_keyframe_request: Option<Instant>,
    /// The latest keyframe and every packet after it, while that is at most
    /// `MAX_GOP_PACKETS`; empty otherwise. A new viewer starts from it without asking the
    /// publisher for a keyframe.
    gop: Vec<Packet>,
    /// Counts keyframes cached, so a viewer replaying an older cache notices it was replaced.
    gop_generation: u64,
}

impl InLayer {
    /// Keeps `packet` in the cache: a keyframe starts a new one; a cache that grows too long
    /// is dropped until the next keyframe.
    fn cache(&mut self, packet: &Packet) {
        if packet.keyframe {
            self.gop.clear();
            self.gop_generation += 1;
        } else if self.gop.is_empty() {
            return;
        } else if self.gop.len() >= MAX_GOP_PACKETS {
            self.gop = Vec::new();
            return;
        }
        self.gop.push(packet.clone());
    }
}

#[derive(Debug, Clone)]
struct InTrack {
    kind: MediaKind,
    mid: Mid,
    layer: usize,
}

#[derive(Debug)]
struct Viewer {
    /// Video and audio m-lines in offer order; the k-th of each kind shows slot k.
    video: Vec<OutTrack>,
    audio: Vec<OutTrack>,
    estimate: Bitrate,
    manual_layer: Option<usize>,
    first_frame_seen: bool,
    /// Cumulative NACK counts str0m reported per m-line, to count only what is new.
    nacks_seen: Vec<(Mid, u64)>,
}

#[derive(Debug)]
struct OutTrack {
    mid: Mid,
    /// The publisher currently feeding this m-line, and the layer forwarded (once started).
    source: Option<PeerKey>,
    layer: Option<usize>,
    rewriter: Rewriter,
    /// Publisher payload type → this viewer's payload type, for the current source.
    pt_map: Option<(Pt, Pt)>,
    /// When this m-line last asked for a keyframe, so a waiting viewer asks once per
    /// interval rather than on every packet.
    keyframe_asked: Option<Instant>,
    /// Set while this m-line is fed from its source's keyframe cache rather than live.
    replay: Option<Replay>,
}

/// Where a starting viewer's m-line stands in a keyframe cache.
#[derive(Debug, Clone, Copy)]
struct Replay {
    generation: u64,
    /// Index of the next cached packet to write.
    next: usize,
}

/// What forwarding needs to know about one incoming packet, looked up once for all viewers.
struct Incoming {
    publisher: PeerKey,
    slot: usize,
    kind: MediaKind,
    layer: usize,
    layer_rates: [u64; 3],
    /// Per layer: whether a keyframe cache is there to start a viewer from.
    cached: [bool; 3],
    video_sources: u64,
    keyframe_interval: Duration,
    packet: Packet,
}

impl Relay {
    pub fn new(config: RelayConfig, metrics: MediaMetrics, now: Instant) -> Self {
        let shard = config.shard;
        Relay {
            config,
            metrics,
            epoch: now,
            next_key: (u64::from(shard) << 48) | 1,
            peers: HashMap::new(),
            sessions: HashMap::new(),
            rooms: HashMap::new(),
            routes: HashMap::new(),
            viewers: 0,
            sinks: Sinks::default(),
            recently_closed: std::collections::VecDeque::new(),
            last_sweep: now,
            replaying: Vec::new(),
            last_replay: None,
            replay_scratch: Vec::new(),
            remotes: HashMap::new(),
            exports: Vec::new(),
        }
    }

    /// `estimate_bandwidth` turns on str0m's bandwidth estimation, and with it its pacer.
    fn new_rtc(&self, now: Instant, estimate_bandwidth: bool) -> Rtc {
        let mut config = RtcConfig::new()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true)
            .set_stats_interval(Some(Duration::from_secs(1)));
        if estimate_bandwidth {
            config = config.enable_bwe(Some(self.config.initial_viewer_bitrate));
        }
        let mut rtc = config.build(now);
        for c in &self.config.candidates {
            rtc.add_local_candidate(c.clone());
        }
        rtc
    }

    /// Accepts a WHIP offer: the publisher takes the lowest free stage slot.
    pub fn publish(
        &mut self,
        now: Instant,
        ip: IpAddr,
        meeting: MeetingId,
        source: SourceKind,
        label: Option<String>,
        offer: &str,
    ) -> Result<Answer, MediaError> {
        self.check_ip(ip)?;
        let room = self.rooms.entry(meeting.clone()).or_default();
        let slot = room
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(MediaError::StageFull)?;
        if let Some(rid) = crate::sdp::offered_rids(offer)
            .into_iter()
            .find(|r| !RIDS.contains(&r.as_str()))
        {
            return Err(MediaError::BadSdp(format!(
                "simulcast layer {rid:?}: name the layers q, h and f (quarter, half, full)"
            )));
        }
        let mut rtc = self.new_rtc(now, false);
        let sdp = accept(&mut rtc, offer)?;
        let (video, audio) = media_lines(&sdp, Direction::RecvOnly);
        if video.len() + audio.len() == 0 {
            return Err(MediaError::BadSdp(
                "the offer has no audio or video to send (WHIP needs sendonly m-lines)".into(),
            ));
        }
        if video.len() > 1 || audio.len() > 1 {
            return Err(MediaError::BadSdp(
                "a WHIP session carries at most one video and one audio track; \
                 publish a screen share as its own session"
                    .into(),
            ));
        }
        let role = Role::Publisher(Box::new(Publisher {
            slot,
            source,
            label,
            tracks: HashMap::new(),
            layers: Default::default(),
            // Known from the offer already, so viewers joining before its first packet get a
            // bandwidth estimate.
            simulcast: offer
                .lines()
                .any(|l| l.trim_start().starts_with("a=simulcast:")),
            has_video: !video.is_empty(),
            last_video: None,
            last_audio: None,
        }));
        let key = self.insert(now, ip, meeting.clone(), rtc, role)?;
        if let Some(room) = self.rooms.get_mut(&meeting) {
            room.slots[slot] = Some(key);
        }
        Ok(Answer {
            session: self.peers[&key].session.clone(),
            sdp,
        })
    }

    /// Accepts a WHEP offer. The caller has checked that the meeting is live.
    pub fn view(
        &mut self,
        now: Instant,
        ip: IpAddr,
        meeting: MeetingId,
        offer: &str,
    ) -> Result<Answer, MediaError> {
        self.config.shared.check(ip, true, &self.config)?;
        // The estimate is only worth its pacer when there are layers to choose between: a pacer
        // held to an estimate below a single-layer stream's rate only queues it (up to 2 s),
        // which is delay and no help. So viewers of a meeting without simulcast (OBS, most
        // WHIP tools) get packets straight through; with simulcast the layer follows the
        // estimate and the stream stays below it.
        let simulcast = self.rooms.get(&meeting).is_some_and(|room| {
            room.slots.iter().flatten().any(|k| {
                matches!(self.peers.get(k), Some(Peer { role: Role::Publisher(p), .. }) if p.simulcast)
                    || self.remotes.get(k).is_some_and(|r| r.simulcast)
            })
        });
        let mut rtc = self.new_rtc(now, simulcast);
        let sdp = accept(&mut rtc, offer)?;
        let (video, audio) = media_lines(&sdp, Direction::SendOnly);
        if video.len() + audio.len() == 0 {
            return Err(MediaError::BadSdp(
                "the offer receives no audio or video (WHEP needs recvonly m-lines)".into(),
            ));
        }
        let track = |mid| OutTrack {
            mid,
            source: None,
            layer: None,
            rewriter: Rewriter::new(rand::random::<u16>() & 0x3fff),
            pt_map: None,
            keyframe_asked: None,
            replay: None,
        };
        // Ask for more than the initial estimate so the estimator probes up to the top layer.
        if simulcast {
            rtc.bwe().set_bitrate(
                Bitrate::kbps(150),
                Bitrate::kbps(2_500 * video.len().max(1) as u64),
            );
        }
        let role = Role::Viewer(Viewer {
            video: video.into_iter().map(track).collect(),
            audio: audio.into_iter().map(track).collect(),
            // Without an estimate, a simulcast source that appears later is shown at its best.
            estimate: if simulcast {
                self.config.initial_viewer_bitrate
            } else {
                Bitrate::gbps(1)
            },
            manual_layer: None,
            first_frame_seen: false,
            nacks_seen: Vec::new(),
        });
        let key = self.insert(now, ip, meeting.clone(), rtc, role)?;
        self.viewers += 1;
        // The first packet of each source asks its publisher for a keyframe for this viewer.
        self.rooms.entry(meeting).or_default().viewers.push(key);
        Ok(Answer {
            session: self.peers[&key].session.clone(),
            sdp,
        })
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), MediaError> {
        self.config.shared.check(ip, false, &self.config)
    }

    fn insert(
        &mut self,
        now: Instant,
        ip: IpAddr,
        meeting: MeetingId,
        rtc: Rtc,
        role: Role,
    ) -> Result<PeerKey, MediaError> {
        let session = SessionId::random();
        let viewer = matches!(role, Role::Viewer(_));
        self.config
            .shared
            .admit(&session, ip, viewer, &self.config)?;
        let key = self.next_key;
        self.next_key += 1;
        self.metrics.peers.with_label_values(&[role.label()]).inc();
        self.sessions.insert(session.clone(), key);
        self.peers.insert(
            key,
            Peer {
                session,
                meeting: Arc::new(meeting),
                rtc,
                timeout: now,
                created: now,
                ip,
                connected: false,
                role,
                candidates: 0,
                trickles: Bucket::new(self.config.trickle_burst, now),
            },
        );
        self.sinks.timers.push(Reverse((now, key)));
        self.poll(key, now);
        Ok(key)
    }

    /// Trickled candidates (`application/trickle-ice-sdpfrag`): only `a=candidate` lines matter
    /// to an ICE-lite server; an ICE restart is refused.
    pub fn trickle(
        &mut self,
        now: Instant,
        route: Route,
        meeting: &MeetingId,
        session: &SessionId,
        frag: &str,
    ) -> Result<(), MediaError> {
        let key = self.find(session, meeting, route)?;
        let (rate, burst) = (self.config.trickle_per_second, self.config.trickle_burst);
        let peer = self.peers.get_mut(&key).ok_or(MediaError::NoSession)?;
        if !peer.trickles.take(now, rate, burst) {
            return Err(MediaError::RateLimited);
        }
        let mut candidates = Vec::new();
        for line in frag.lines().map(str::trim) {
            if line.starts_with("a=ice-ufrag") || line.starts_with("a=ice-pwd") {
                // Same credentials are fine; new ones would be an ICE restart.
                continue;
            }
            if let Some(c) = line.strip_prefix("a=candidate:") {
                let c = Candidate::from_sdp_string(&format!("candidate:{c}"))
                    .map_err(|e| MediaError::BadRequest(format!("bad candidate line: {e}")))?;
                candidates.push(c);
            }
        }
        let peer = self.peers.get_mut(&key).ok_or(MediaError::NoSession)?;
        let max = self.config.max_candidates;
        if peer.candidates + candidates.len() > max {
            return Err(MediaError::TooManyCandidates(max));
        }
        peer.candidates += candidates.len();
        for c in candidates {
            peer.rtc.add_remote_candidate(c);
        }
        self.poll(key, now);
        Ok(())
    }

    /// The peer of a session, if it was made under this meeting and route; any mismatch is
    /// `NoSession`, exactly as for an id that never existed.
    fn find(
        &self,
        session: &SessionId,
        meeting: &MeetingId,
        route: Route,
    ) -> Result<PeerKey, MediaError> {
        let key = *self.sessions.get(session).ok_or(MediaError::NoSession)?;
        let peer = self.peers.get(&key).ok_or(MediaError::NoSession)?;
        if *peer.meeting != *meeting || peer.role.route() != route {
            return Err(MediaError::NoSession);
        }
        Ok(key)
    }

    /// Ends a session (WHIP/WHEP `DELETE`).
    pub fn close(
        &mut self,
        route: Route,
        meeting: &MeetingId,
        session: &SessionId,
    ) -> Result<(), MediaError> {
        match self.find(session, meeting, route) {
            Ok(key) => {
                self.remove(key);
                Ok(())
            }
            Err(_)
                if self
                    .recently_closed
                    .iter()
                    .any(|(s, m, r)| s == session && **m == *meeting && *r == route) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Sets a viewer's simulcast layer by rid, or automatic with `None`.
    pub fn set_layer(
        &mut self,
        meeting: &MeetingId,
        session: &SessionId,
        rid: Option<&str>,
    ) -> Result<(), MediaError> {
        let layer = match rid {
            None => None,
            Some(r) => Some(RIDS.iter().position(|x| *x == r).ok_or_else(|| {
                MediaError::BadRequest(format!("unknown encodingId {r:?}; use q, h or f"))
            })?),
        };
        let key = self.find(session, meeting, Route::Whep)?;
        match self.peers.get_mut(&key).map(|p| &mut p.role) {
            Some(Role::Viewer(v)) => {
                v.manual_layer = layer;
                Ok(())
            }
            _ => Err(MediaError::NoSession),
        }
    }

    /// The meeting's occupied slots whose media flows.
    pub fn stage(&mut self, now: Instant, meeting: &MeetingId) -> Vec<StageSource> {
        let Some(room) = self.rooms.get(meeting) else {
            return Vec::new();
        };
        let idle = self.config.idle_source;
        let now_ms = self.ms(now);
        let mut out = Vec::new();
        for key in room.slots.iter().flatten() {
            let Some(Peer {
                role: Role::Publisher(p),
                ..
            }) = self.peers.get_mut(key)
            else {
                continue;
            };
            let fresh = |t: Option<Instant>| t.is_some_and(|t| now.duration_since(t) < idle);
            let (video, audio) = (fresh(p.last_video), fresh(p.last_audio));
            if !video && !audio {
                continue;
            }
            let layers = if p.simulcast {
                (0..RIDS.len())
                    .filter(|&i| p.layers[i].rate.bps(now_ms) > 0)
                    .map(|i| RIDS[i])
                    .collect()
            } else {
                Vec::new()
            };
            out.push(StageSource {
                slot: p.slot,
                source: p.source,
                label: p.label.clone(),
                video,
                audio,
                layers,
            });
        }
        out.sort_by_key(|s| s.slot);
        out
    }

    /// Closes a meeting's publishers (its studio link was replaced: the old token must not
    /// keep a stream on air).
    pub fn close_publishers(&mut self, meeting: &MeetingId) {
        if let Some(room) = self.rooms.get(meeting) {
            let keys: Vec<PeerKey> = room.slots.iter().flatten().copied().collect();
            for key in keys {
                self.remove(key);
            }
        }
    }

    /// Closes every session of a meeting (it ended or was deleted).
    pub fn end_meeting(&mut self, meeting: &MeetingId) {
        if let Some(room) = self.rooms.get(meeting) {
            let keys: Vec<PeerKey> = room
                .slots
                .iter()
                .flatten()
                .chain(&room.viewers)
                .copied()
                .collect();
            for key in keys {
                self.remove(key);
            }
        }
        self.rooms.remove(meeting);
        self.remotes.retain(|_, r| *r.meeting != *meeting);
    }

    /// Number of peers (publishers, viewers).
    pub fn peer_counts(&self) -> (usize, usize) {
        (self.peers.len() - self.viewers, self.viewers)
    }

    /// A datagram arrived on one of the node's sockets.
    pub fn receive(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let Ok(contents) = Receive::new(proto, source, destination, data) else {
            self.metrics
                .dropped_datagrams
                .with_label_values(&["unparsable"])
                .inc();
            return;
        };
        let input = Input::Receive(now, contents);
        let known = self
            .routes
            .get(&(proto, source))
            .copied()
            .filter(|k| self.peers.get(k).is_some_and(|p| p.rtc.accepts(&input)));
        let key = match known {
            Some(k) => k,
            None => {
                // Only a STUN binding request (first byte 0..=3, RFC 7983) can open a new
                // route; anything else from an unknown address is dropped without asking
                // every peer, so junk traffic costs O(1).
                let stun = data.first().is_some_and(|b| *b <= 3);
                let found = if stun {
                    self.peers.iter().find(|(_, p)| p.rtc.accepts(&input))
                } else {
                    None
                };
                let Some((&k, _)) = found else {
                    self.metrics
                        .dropped_datagrams
                        .with_label_values(&["unknown_peer"])
                        .inc();
                    return;
                };
                self.routes.insert((proto, source), k);
                k
            }
        };
        let peer = self.peers.get_mut(&key).expect("routed peer exists");
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(peer = key, error = %e, "peer failed on input; closing");
            self.remove(key);
            return;
        }
        self.poll(key, now);
        self.after_poll(now);
    }

    /// When the relay next needs [`Relay::handle_timeout`]: the earliest peer timer, and never
    /// later than the next housekeeping while any peer exists (str0m may not wake an
    /// unconnected peer for a long time, yet its session must still be dropped on time).
    pub fn next_timeout(&mut self) -> Option<Instant> {
        let mut housekeeping = (!self.peers.is_empty()).then(|| self.last_sweep + HOUSEKEEPING);
        if !self.replaying.is_empty() {
            let next = self.last_replay.map_or(self.epoch, |at| at + REPLAY_TICK);
            housekeeping = housekeeping.map(|h| h.min(next));
        }
        while let Some(&Reverse((at, key))) = self.sinks.timers.peek() {
            if self.peers.get(&key).is_some_and(|p| p.timeout == at) {
                return Some(housekeeping.map_or(at, |h| h.min(at)));
            }
            self.sinks.timers.pop();
        }
        housekeeping
    }

    /// Advances every peer whose timer is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_sweep) >= HOUSEKEEPING {
            self.last_sweep = now;
            self.sweep_unconnected(now);
        }
        let mut due = Vec::new();
        while let Some(&Reverse((at, key))) = self.sinks.timers.peek() {
            if at > now {
                break;
            }
            self.sinks.timers.pop();
            if self.peers.get(&key).is_some_and(|p| p.timeout == at) && due.last() != Some(&key) {
                due.push(key);
            }
        }
        for key in due {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(peer = key, error = %e, "peer failed on timeout; closing");
                self.remove(key);
                continue;
            }
            self.poll(key, now);
        }
        self.after_poll(now);
    }

    /// Drops sessions whose offer was never followed by a connection.
    fn sweep_unconnected(&mut self, now: Instant) {
        let limit = self.config.connect_timeout;
        let stale: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.connected && now.duration_since(p.created) > limit)
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            tracing::debug!("media session never connected; closing");
            self.remove(key);
        }
    }

    /// Datagrams to send, in order.
    pub fn drain_outgoing(&mut self) -> std::vec::Drain<'_, Outgoing> {
        self.sinks.outgoing.drain(..)
    }

    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Polls one peer until it has nothing more to say.
    fn poll(&mut self, key: PeerKey, now: Instant) {
        if let Some(peer) = self.peers.get_mut(&key) {
            drain_peer(peer, key, now, &mut self.sinks, &self.metrics);
        }
    }

    /// Forwards what the polls produced, sends keyframe requests, removes dead peers.
    fn after_poll(&mut self, now: Instant) {
        while !self.sinks.to_forward.is_empty() {
            let mut batch = std::mem::take(&mut self.sinks.to_forward);
            for (publisher, packet) in &batch {
                self.forward(now, *publisher, packet);
            }
            batch.clear();
            if self.sinks.to_forward.is_empty() {
                self.sinks.to_forward = batch;
            }
        }
        self.flush_requests(now);
        self.replaying.append(&mut self.sinks.to_replay);
        self.replay(now);
        while let Some(key) = self.sinks.to_remove.pop() {
            self.remove(key);
        }
    }

    /// One round of keyframe-cache replay, at most every `REPLAY_TICK`: each starting viewer
    /// in turn gets up to `REPLAY_PER_VIEWER` cached packets, `REPLAY_BUDGET` in all.
    fn replay(&mut self, now: Instant) {
        if self.replaying.is_empty()
            || self
                .last_replay
                .is_some_and(|at| now.saturating_duration_since(at) < REPLAY_TICK)
        {
            return;
        }
        self.last_replay = Some(now);
        let mut budget = REPLAY_BUDGET;
        let queue = std::mem::take(&mut self.replaying);
        let (mut done, mut waiting) = (Vec::new(), Vec::new());
        for viewer in queue {
            if budget == 0 {
                waiting.push(viewer);
                continue;
            }
            if self.replay_viewer(viewer, now, &mut budget) {
                done.push(viewer);
            }
        }
        // Those not served this round go first in the next.
        waiting.append(&mut done);
        self.replaying = waiting;
    }

    /// Writes the next cached packets to one viewer's starting m-lines. True while it has more.
    fn replay_viewer(&mut self, viewer: PeerKey, now: Instant, budget: &mut usize) -> bool {
        let now_ms = self.ms(now);
        let Some(Peer {
            role: Role::Viewer(v),
            ..
        }) = self.peers.get(&viewer)
        else {
            return false;
        };
        let starting: Vec<(usize, PeerKey, usize, Replay)> = v
            .video
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((i, t.source?, t.layer?, t.replay?)))
            .collect();
        let mut more = false;
        for (index, publisher, layer, mut replay) in starting {
            // Copy the next packets (shared payloads) out of the publisher's cache.
            let mut scratch = std::mem::take(&mut self.replay_scratch);
            scratch.clear();
            let cache = match self.peers.get(&publisher) {
                Some(Peer {
                    role: Role::Publisher(p),
                    ..
                }) => Some(&p.layers[layer]),
                _ => self.remotes.get(&publisher).map(|r| &r.layers[layer]),
            }
            .filter(|c| !c.gop.is_empty());
            let mut first = false;
            let mut caught_up = false;
            let has_cache = cache.is_some();
            if let Some(c) = cache {
                if c.gop_generation != replay.generation {
                    // A newer keyframe replaced the cache: start over from it.
                    replay = Replay {
                        generation: c.gop_generation,
                        next: 0,
                    };
                }
                first = replay.next == 0;
                let end = (replay.next + REPLAY_PER_VIEWER.min(*budget)).min(c.gop.len());
                scratch.extend_from_slice(&c.gop[replay.next..end]);
                *budget -= end - replay.next;
                replay.next = end;
                caught_up = end == c.gop.len();
            }
            let Some(peer) = self.peers.get_mut(&viewer) else {
                self.replay_scratch = scratch;
                return false;
            };
            let Role::Viewer(v) = &mut peer.role else {
                unreachable!("checked above")
            };
            let track = &mut v.video[index];
            if !has_cache {
                // The cache is gone (too long, or the publisher left): wait for a keyframe.
                track.replay = None;
                track.layer = None;
                self.replay_scratch = scratch;
                continue;
            }
            for (i, packet) in scratch.iter().enumerate() {
                if i == 0 && first {
                    // The cached keyframe: the m-line starts (or starts over) here.
                    track.rewriter.switch(
                        packet.seq,
                        packet.ts,
                        packet.vp8,
                        now_ms,
                        packet.spec.clock_rate.get(),
                    );
                    if !v.first_frame_seen {
                        v.first_frame_seen = true;
                        self.metrics
                            .time_to_first_frame
                            .observe(now.duration_since(peer.created).as_secs_f64());
                    }
                }
                write_packet(&mut peer.rtc, track, packet, true, now_ms, &self.metrics);
            }
            if caught_up {
                // From here on the m-line is fed live.
                track.replay = None;
                self.metrics.replayed_starts.inc();
            } else {
                track.replay = Some(replay);
                more = true;
            }
            self.replay_scratch = scratch;
            drain_peer(peer, viewer, now, &mut self.sinks, &self.metrics);
        }
        more
    }

    fn forward(&mut self, now: Instant, publisher: PeerKey, packet: &RtpPacket) {
        let now_ms = self.ms(now);
        let Some(peer) = self.peers.get_mut(&publisher) else {
            return;
        };
        let Some(incoming) = inspect(peer, publisher, packet, now, now_ms) else {
            return;
        };
        self.metrics.received_packets.inc();
        self.metrics
            .received_bytes
            .inc_by(packet.payload.len() as u64);
        let meeting = Arc::clone(&peer.meeting);
        if self.config.shards > 1 {
            let simulcast = matches!(&peer.role, Role::Publisher(p) if p.simulcast);
            self.exports.push(ShardMessage::Packet {
                meeting: Arc::clone(&meeting),
                publisher,
                slot: incoming.slot,
                kind: incoming.kind,
                layer: incoming.layer,
                layer_rates: incoming.layer_rates,
                simulcast,
                packet: incoming.packet.clone(),
            });
        }
        self.deliver(now, now_ms, &meeting, incoming);
    }

    /// Forwards one publisher packet (of this shard or another) to this shard's viewers.
    fn deliver(&mut self, now: Instant, now_ms: u64, meeting: &MeetingId, mut incoming: Incoming) {
        let Some(room) = self.rooms.get(meeting) else {
            return;
        };
        incoming.keyframe_interval = self.config.keyframe_interval;
        incoming.video_sources = room
            .slots
            .iter()
            .flatten()
            .filter(|k| {
                matches!(self.peers.get(k), Some(Peer { role: Role::Publisher(p), .. }) if p.has_video)
                    || self.remotes.get(k).is_some_and(|r| r.has_video)
            })
            .count()
            .max(1) as u64;
        for &viewer in &room.viewers {
            // Nothing is queued for a viewer before it connects: an offer that is never
            // followed up must not pile up seconds of video in its send buffers.
            let Some(peer) = self.peers.get_mut(&viewer).filter(|p| p.connected) else {
                continue;
            };
            if forward_to(
                peer,
                viewer,
                &incoming,
                now,
                now_ms,
                &self.metrics,
                &mut self.sinks,
            ) {
                // Poll right away: the viewer's packet leaves now, not at its next timer.
                drain_peer(peer, viewer, now, &mut self.sinks, &self.metrics);
            }
        }
    }

    /// A message from another shard of the node: a publisher's packet to forward to this
    /// shard's viewers (and keep in this shard's keyframe cache), a publisher gone, or a
    /// keyframe request for a publisher of this shard.
    pub fn ingest(&mut self, now: Instant, message: &ShardMessage) {
        match message {
            ShardMessage::Packet {
                meeting,
                publisher,
                slot,
                kind,
                layer,
                layer_rates,
                simulcast,
                packet,
            } => {
                if *slot >= SLOTS || *layer >= RIDS.len() {
                    return;
                }
                let remote = self.remotes.entry(*publisher).or_insert_with(|| Remote {
                    meeting: Arc::clone(meeting),
                    has_video: false,
                    simulcast: false,
                    layers: Default::default(),
                });
                remote.simulcast = *simulcast;
                let mut cached = [false; 3];
                if *kind == MediaKind::Video {
                    remote.has_video = true;
                    remote.layers[*layer].cache(packet);
                    for (i, l) in remote.layers.iter().enumerate() {
                        cached[i] = !l.gop.is_empty();
                    }
                }
                let room = self.rooms.entry((**meeting).clone()).or_default();
                room.slots[*slot] = Some(*publisher);
                let incoming = Incoming {
                    publisher: *publisher,
                    slot: *slot,
                    kind: *kind,
                    layer: *layer,
                    layer_rates: *layer_rates,
                    cached,
                    video_sources: 1,
                    keyframe_interval: Duration::ZERO,
                    packet: packet.clone(),
                };
                let now_ms = self.ms(now);
                self.deliver(now, now_ms, meeting, incoming);
            }
            ShardMessage::Gone { meeting, publisher } => {
                self.remotes.remove(publisher);
                if let Some(room) = self.rooms.get_mut(&**meeting) {
                    for s in room.slots.iter_mut().filter(|s| **s == Some(*publisher)) {
                        *s = None;
                    }
                    if room.viewers.is_empty() && room.slots.iter().all(Option::is_none) {
                        self.rooms.remove(&**meeting);
                    }
                }
            }
            ShardMessage::KeyframeRequest { publisher, layer } => {
                if *layer < RIDS.len() {
                    self.sinks.to_request.push((*publisher, *layer));
                }
            }
        }
        self.after_poll(now);
    }

    /// Messages for the node's other shards (see [`ShardMessage::target`]).
    pub fn drain_exports(&mut self) -> std::vec::Drain<'_, ShardMessage> {
        self.exports.drain(..)
    }

    /// Asks publishers for keyframes, at most once per layer per `keyframe_interval`.
    fn flush_requests(&mut self, now: Instant) {
        let interval = self.config.keyframe_interval;
        for (publisher, layer) in self.sinks.to_request.drain(..) {
            let Some(peer) = self.peers.get_mut(&publisher) else {
                // A publisher of another shard: that shard sends the request (and throttles
                // it too); this one throttles what it passes on.
                if let Some(remote) = self.remotes.get_mut(&publisher) {
                    let state = &mut remote.layers[layer];
                    if state
                        .last_keyframe_request
                        .is_some_and(|t| now.duration_since(t) < interval)
                    {
                        self.metrics
                            .keyframe_requests
                            .with_label_values(&["throttled"])
                            .inc();
                    } else {
                        state.last_keyframe_request = Some(now);
                        self.exports
                            .push(ShardMessage::KeyframeRequest { publisher, layer });
                    }
                }
                continue;
            };
            let Role::Publisher(p) = &mut peer.role else {
                continue;
            };
            let state = &mut p.layers[layer];
            if state
                .last_keyframe_request
                .is_some_and(|t| now.duration_since(t) < interval)
            {
                self.metrics
                    .keyframe_requests
                    .with_label_values(&["throttled"])
                    .inc();
                continue;
            }
            state.last_keyframe_request = Some(now);
            let rid = p.simulcast.then(|| RIDS[layer].into());
            let video_mid = p
                .tracks
                .values()
                .find(|t| t.kind == MediaKind::Video)
                .map(|t| t.mid);
            let mut api = peer.rtc.direct_api();
            if let Some(stream) = video_mid.and_then(|mid| api.stream_rx_by_mid(mid, rid)) {
                stream.request_keyframe(KeyframeRequestKind::Pli);
                self.metrics
                    .keyframe_requests
                    .with_label_values(&["sent"])
                    .inc();
            }
            // The request leaves with the publisher's next poll.
            set_timeout(peer, publisher, now, &mut self.sinks.timers);
        }
    }

    fn remove(&mut self, key: PeerKey) {
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        peer.rtc.disconnect();
        self.sessions.remove(&peer.session);
        let viewer = matches!(peer.role, Role::Viewer(_));
        self.config
            .shared
            .release(&peer.session, peer.ip, viewer, self.config.shard);
        if !viewer && self.config.shards > 1 {
            self.exports.push(ShardMessage::Gone {
                meeting: Arc::clone(&peer.meeting),
                publisher: key,
            });
        }
        if self.recently_closed.len() == RECENTLY_CLOSED {
            self.recently_closed.pop_front();
        }
        self.recently_closed.push_back((
            peer.session.clone(),
            Arc::clone(&peer.meeting),
            peer.role.route(),
        ));
        self.routes.retain(|_, k| *k != key);
        self.metrics
            .peers
            .with_label_values(&[peer.role.label()])
            .dec();
        if let Some(room) = self.rooms.get_mut(&*peer.meeting) {
            match &peer.role {
                Role::Publisher(p) => {
                    if room.slots[p.slot] == Some(key) {
                        room.slots[p.slot] = None;
                    }
                }
                Role::Viewer(_) => {
                    room.viewers.retain(|k| *k != key);
                    self.viewers -= 1;
                }
            }
            if room.viewers.is_empty() && room.slots.iter().all(Option::is_none) {
                self.rooms.remove(&*peer.meeting);
            }
        } else if matches!(peer.role, Role::Viewer(_)) {
            self.viewers -= 1;
        }
        // Never the session id: it is the capability to end the session.
        tracing::debug!(peer = key, meeting = %peer.meeting, "media session closed");
    }
}

impl Role {
    fn route(&self) -> Route {
        match self {
            Role::Publisher(_) => Route::Whip,
            Role::Viewer(_) => Route::Whep,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Role::Publisher(_) => "publisher",
            Role::Viewer(_) => "viewer",
        }
    }
}

/// Applies an SDP offer; any refusal is the client's fault and says why.
fn accept(rtc: &mut Rtc, offer: &str) -> Result<String, MediaError> {
    let offer = SdpOffer::from_sdp_string(offer)
        .map_err(|e| MediaError::BadSdp(format!("the body is not a valid SDP offer: {e}")))?;
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| MediaError::BadSdp(format!("the SDP offer cannot be accepted: {e}")))?;
    Ok(answer.to_sdp_string())
}

/// The mids of the negotiated video and audio m-lines on which our side receives
/// (`RecvOnly`) or sends (anything else), in SDP order.
fn media_lines(answer: &str, direction: Direction) -> (Vec<Mid>, Vec<Mid>) {
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    for line in crate::sdp::answer_lines(answer) {
        let usable = match direction {
            Direction::RecvOnly => line.receives,
            _ => line.sends,
        };
        if usable {
            let mid = Mid::from(line.mid.as_str());
            if line.video {
                video.push(mid)
            } else {
                audio.push(mid)
            }
        }
    }
    (video, audio)
}

/// Decides whether one viewer gets this packet, and writes it if so. True if written.
fn forward_to(
    peer: &mut Peer,
    key: PeerKey,
    incoming: &Incoming,
    now: Instant,
    now_ms: u64,
    metrics: &MediaMetrics,
    sinks: &mut Sinks,
) -> bool {
    let Role::Viewer(viewer) = &mut peer.role else {
        return false;
    };
    let is_video = incoming.kind == MediaKind::Video;
    let tracks = if is_video {
        &mut viewer.video
    } else {
        &mut viewer.audio
    };
    let Some(track) = tracks.get_mut(incoming.slot) else {
        return false;
    };
    let packet = &incoming.packet;
    let clock = packet.spec.clock_rate.get();
    if track.source != Some(incoming.publisher) {
        track.source = Some(incoming.publisher);
        track.layer = None;
        track.pt_map = None;
        track.keyframe_asked = None;
        track.replay = None;
    }
    if is_video {
        if track.replay.is_some() {
            // Catching up from the keyframe cache, which holds this packet too.
            return false;
        }
        let budget = viewer.estimate.as_u64() * 85 / 100 / incoming.video_sources;
        let target = choose_layer(&incoming.layer_rates, budget, viewer.manual_layer)
            .unwrap_or(incoming.layer);
        if track.layer.is_none() && incoming.cached[target] {
            // Start from the latest keyframe the relay holds: no request to the publisher,
            // no wait for its next keyframe.
            track.layer = Some(target);
            track.replay = Some(Replay {
                generation: 0,
                next: 0,
            });
            sinks.to_replay.push(key);
            return false;
        }
        let asked_lately = track
            .keyframe_asked
            .is_some_and(|at| now.duration_since(at) < incoming.keyframe_interval);
        if track.layer != Some(target) && !asked_lately {
            track.keyframe_asked = Some(now);
            sinks.to_request.push((incoming.publisher, target));
        }
        if incoming.layer == target && packet.keyframe && track.layer != Some(target) {
            if track.layer.is_some() {
                metrics.layer_switches.inc();
            }
            track.layer = Some(target);
            track
                .rewriter
                .switch(packet.seq, packet.ts, packet.vp8, now_ms, clock);
            if !viewer.first_frame_seen {
                viewer.first_frame_seen = true;
                metrics
                    .time_to_first_frame
                    .observe(now.duration_since(peer.created).as_secs_f64());
            }
        }
        if track.layer != Some(incoming.layer) {
            return false;
        }
    } else if track.layer.is_none() {
        track.layer = Some(0);
        track
            .rewriter
            .switch(packet.seq, packet.ts, Vp8Ids::default(), now_ms, clock);
    }
    write_packet(&mut peer.rtc, track, packet, is_video, now_ms, metrics)
}

/// Rewrites one packet for a viewer's m-line and hands it to the viewer's str0m stream.
/// True if written (false for a packet from before the m-line's last switch).
fn write_packet(
    rtc: &mut Rtc,
    track: &mut OutTrack,
    packet: &Packet,
    is_video: bool,
    now_ms: u64,
    metrics: &MediaMetrics,
) -> bool {
    let Some(out) = track
        .rewriter
        .rewrite(packet.seq, packet.ts, packet.vp8, now_ms)
    else {
        return false;
    };
    let out_pt = match track.pt_map {
        Some((from, to)) if from == packet.pt => to,
        _ => {
            let Some(to) = matching_pt(rtc, track.mid, &packet.spec) else {
                return false;
            };
            track.pt_map = Some((packet.pt, to));
            to
        }
    };
    let mut write = RtpWrite::new(
        out_pt,
        out.seq.into(),
        out.ts,
        packet.received,
        Arc::clone(&packet.payload),
    )
    .marker(packet.marker)
    .nackable(is_video)
    .ext_vals(packet.ext.clone());
    if let (Some(pid), Some(d)) = (out.picture_id, packet.vp8_descriptor) {
        let mut patch = d.patch().picture_id(pid);
        if let Some(tl0) = out.tl0_pic_idx {
            patch = patch.tl0_pic_idx(tl0);
        }
        if let Ok(patch) = patch.build() {
            write = write.vp8_patch(patch);
        }
    }
    let mut api = rtc.direct_api();
    let Some(stream) = api.stream_tx_by_mid(track.mid, None) else {
        return false;
    };
    stream.write_rtp(write);
    metrics.forwarded_packets.inc();
    metrics.forwarded_bytes.inc_by(packet.payload.len() as u64);
    true
}

/// This viewer's payload type for the publisher's codec on m-line `mid`.
fn matching_pt(rtc: &Rtc, mid: Mid, spec: &CodecSpec) -> Option<Pt> {
    let media = rtc.media(mid)?;
    let offered = media.remote_pts();
    rtc.codec_config()
        .params()
        .iter()
        .filter(|p| offered.contains(&p.pt()))
        .map(|p| (p.pt(), p.spec()))
        .filter(|(_, s)| s.codec == spec.codec && s.clock_rate == spec.clock_rate)
        .max_by_key(|(_, s)| {
            // For H.264 prefer the same profile and packetization mode.
            (s.format.profile_level_id == spec.format.profile_level_id) as u8
                + (s.format.packetization_mode == spec.format.packetization_mode) as u8
        })
        .map(|(pt, _)| pt)
}

fn set_timeout(
    peer: &mut Peer,
    key: PeerKey,
    at: Instant,
    timers: &mut BinaryHeap<Reverse<(Instant, PeerKey)>>,
) {
    if peer.timeout != at {
        peer.timeout = at;
        timers.push(Reverse((at, key)));
    }
}

/// Polls a peer until it waits for time; RTP packets and requests go to `sinks`.
fn drain_peer(
    peer: &mut Peer,
    key: PeerKey,
    now: Instant,
    sinks: &mut Sinks,
    metrics: &MediaMetrics,
) {
    loop {
        match peer.rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                set_timeout(peer, key, t, &mut sinks.timers);
                break;
            }
            Ok(Output::Transmit(t)) => sinks.outgoing.push(Outgoing {
                proto: t.proto,
                source: t.source,
                destination: t.destination,
                data: t.contents.into(),
            }),
            Ok(Output::Event(event)) => match event {
                Event::RtpPacket(packet) => sinks.to_forward.push((key, packet)),
                Event::Connected => peer.connected = true,
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    sinks.to_remove.push(key);
                }
                Event::KeyframeRequest(req) => {
                    if let Role::Viewer(v) = &peer.role
                        && let Some(t) = v.video.iter().find(|t| t.mid == req.mid)
                        && let (Some(p), Some(layer)) = (t.source, t.layer)
                    {
                        sinks.to_request.push((p, layer));
                    }
                }
                Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                    if let Role::Viewer(v) = &mut peer.role {
                        v.estimate = estimate;
                    }
                }
                Event::MediaEgressStats(stats) => {
                    if let Role::Viewer(v) = &mut peer.role {
                        let seen = match v.nacks_seen.iter_mut().find(|(m, _)| *m == stats.mid) {
                            Some((_, n)) => n,
                            None => {
                                v.nacks_seen.push((stats.mid, 0));
                                &mut v.nacks_seen.last_mut().expect("just pushed").1
                            }
                        };
                        metrics.nacks.inc_by(stats.nacks.saturating_sub(*seen));
                        *seen = (*seen).max(stats.nacks);
                    }
                }
                _ => {}
            },
            Err(e) => {
                tracing::debug!(peer = key, error = %e, "peer failed; closing");
                sinks.to_remove.push(key);
                set_timeout(
                    peer,
                    key,
                    now + Duration::from_secs(3600),
                    &mut sinks.timers,
                );
                break;
            }
        }
    }
    if !peer.rtc.is_alive() {
        sinks.to_remove.push(key);
    }
}

/// Looks up what every viewer's forwarding needs about a publisher's packet, and updates the
/// publisher's per-layer rates, keyframe cache and liveness. `None` for a packet of no known
/// stream or codec.
fn inspect(
    peer: &mut Peer,
    publisher: PeerKey,
    packet: &RtpPacket,
    now: Instant,
    now_ms: u64,
) -> Option<Incoming> {
    let Role::Publisher(p) = &mut peer.role else {
        return None;
    };
    let ssrc = packet.header.ssrc;
    let track = match p.tracks.get(&ssrc) {
        Some(t) => t.clone(),
        None => {
            let mut api = peer.rtc.direct_api();
            let rx = api.stream_rx(&ssrc)?;
            let (mid, rid) = (rx.mid(), rx.rid());
            let kind = peer.rtc.media(mid)?.kind();
            let layer = match rid {
                Some(r) => {
                    p.simulcast = true;
                    RIDS.iter().position(|x| **x == *r).unwrap_or(0)
                }
                None => 0,
            };
            let t = InTrack { kind, mid, layer };
            p.tracks.insert(ssrc, t.clone());
            t
        }
    };
    let pt = packet.header.payload_type;
    let spec = peer
        .rtc
        .codec_config()
        .params()
        .iter()
        .find(|params| params.pt() == pt)?
        .spec();
    let is_video = track.kind == MediaKind::Video;
    let ext = &packet.header.ext_vals;
    let mut out = Packet {
        seq: *packet.seq_no,
        ts: packet.header.timestamp,
        marker: packet.header.marker,
        pt,
        spec,
        payload: Arc::clone(&packet.payload),
        received: packet.timestamp,
        ext: ExtensionValues {
            audio_level: ext.audio_level,
            voice_activity: ext.voice_activity,
            video_orientation: ext.video_orientation,
            ..Default::default()
        },
        keyframe: false,
        vp8: Vp8Ids::default(),
        vp8_descriptor: None,
    };
    let mut layer_rates = [0; 3];
    let mut cached = [false; 3];
    if is_video {
        p.last_video = Some(now);
        p.layers[track.layer].rate.add(now_ms, packet.payload.len());
        for (i, l) in p.layers.iter_mut().enumerate() {
            layer_rates[i] = l.rate.bps(now_ms);
        }
        out.keyframe = starts_keyframe(spec.codec, &packet.payload);
        if spec.codec == Codec::Vp8
            && let Ok(d) = Vp8Descriptor::parse(&packet.payload)
        {
            out.vp8 = Vp8Ids {
                picture_id: d.picture_id(),
                tl0_pic_idx: d.tl0_pic_idx(),
            };
            out.vp8_descriptor = Some(d);
        }
        p.layers[track.layer].cache(&out);
        for (i, l) in p.layers.iter().enumerate() {
            cached[i] = !l.gop.is_empty();
        }
    } else {
        p.last_audio = Some(now);
    }
    Some(Incoming {
        publisher,
        slot: p.slot,
        kind: track.kind,
        layer: track.layer,
        layer_rates,
        cached,
        video_sources: 1,
        keyframe_interval: Duration::ZERO,
        packet: out,
    })
}
