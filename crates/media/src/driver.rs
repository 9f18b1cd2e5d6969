//! The I/O around the relay: shards, sockets, timers, and the command channel of the HTTP
//! handlers.
//!
//! The relay runs as `media.threads` shards, each a thread with its own [`Relay`], its own
//! UDP port (`udp_port + shard`, one socket per local address) and ICE-TCP port. A meeting's
//! publishers live on the meeting's home shard (a hash of its id); a new viewer goes to the
//! shard with the fewest viewers; the [`Shared`] directory says which shard holds a session.
//! The home shard passes each publisher packet, once and shared, to every other shard
//! ([`ShardMessage`]), and keyframe requests travel back. Within a shard one task owns the
//! relay and never waits on a peer: datagrams reach it from one reader task per UDP socket and
//! per ICE-TCP connection (RFC 4571 framing); it sends with `try_send_to`, so a full kernel
//! buffer drops a datagram (as a congested network would) instead of stalling other viewers.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use str0m::Candidate;
use str0m::bwe::Bitrate;
use str0m::net::{Protocol, TcpType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use townhall_core::MeetingId;

use crate::metrics::MediaMetrics;
use crate::relay::{Answer, Outgoing, Relay, RelayConfig, ShardMessage, Shared};
use crate::types::{IceServer, MediaError, Route, SessionId, SourceKind, StageSource};

/// The `[media]` section of the configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Serve live video at all.
    pub enabled: bool,
    /// Local address for WebRTC; `0.0.0.0` binds every interface's address.
    pub bind_ip: IpAddr,
    /// The one UDP port every peer uses (open it in the firewall); 0 picks a free one.
    pub udp_port: u16,
    /// ICE-TCP port, the fallback for networks that block UDP; 0 picks a free one.
    pub tcp_port: u16,
    /// Offer ICE-TCP candidates at all.
    pub ice_tcp: bool,
    /// Addresses to announce instead of the local ones (1:1 NAT, or to pick interfaces).
    pub public_ips: Vec<IpAddr>,
    /// STUN/TURN servers handed to browsers (e.g. coturn), in WHIP/WHEP `Link` headers.
    pub ice_servers: Vec<IceServer>,
    /// Viewers this node serves at most; more get 503 `media_full`.
    pub max_viewers: usize,
    /// Least time between two keyframe requests to one publisher layer, in milliseconds.
    pub keyframe_interval_ms: u64,
    /// Media sessions one client address may hold at once; more get 429.
    pub max_sessions_per_ip: usize,
    /// Open ICE-TCP connections one remote address may hold; more are closed at accept.
    pub ice_tcp_max_per_ip: usize,
    /// An ICE-TCP connection that carries no frame for this long is closed (a live peer's
    /// consent checks arrive every few seconds).
    pub ice_tcp_idle_secs: u64,
    /// Relay shards (threads), each on its own ports `udp_port + i` and `tcp_port + i`;
    /// 0: one per core.
    pub threads: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            enabled: true,
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            udp_port: 50000,
            tcp_port: 50000,
            ice_tcp: true,
            public_ips: Vec::new(),
            ice_servers: Vec::new(),
            max_viewers: 2000,
            keyframe_interval_ms: 500,
            max_sessions_per_ip: 50,
            ice_tcp_max_per_ip: 50,
            ice_tcp_idle_secs: 15,
            threads: 0,
        }
    }
}

impl MediaConfig {
    /// The number of relay shards: `threads`, or with 0 the number of cores.
    pub fn shards(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .clamp(1, 64)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.max_sessions_per_ip == 0 {
            return Err("media.max_sessions_per_ip must be at least 1".into());
        }
        if self.threads > 64 {
            return Err("media.threads must be at most 64 (0: one per core)".into());
        }
        for (port, name) in [(self.udp_port, "udp_port"), (self.tcp_port, "tcp_port")] {
            if port != 0 && usize::from(port) + self.shards() - 1 > usize::from(u16::MAX) {
                return Err(format!("media.{name} + media.threads goes past port 65535"));
            }
        }
        if self.ice_tcp_max_per_ip == 0 {
            return Err("media.ice_tcp_max_per_ip must be at least 1".into());
        }
        if self.ice_tcp_idle_secs == 0 || self.ice_tcp_idle_secs > 3600 {
            return Err("media.ice_tcp_idle_secs must be between 1 and 3600".into());
        }
        if self.max_viewers == 0 {
            return Err("media.max_viewers must be at least 1".into());
        }
        if self.keyframe_interval_ms == 0 || self.keyframe_interval_ms > 10_000 {
            return Err("media.keyframe_interval_ms must be between 1 and 10000".into());
        }
        for s in &self.ice_servers {
            let ok = ["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|p| s.url.starts_with(p));
            if !ok || s.url.contains(['<', '>', '"', ',', ';']) {
                return Err(format!(
                    "media.ice_servers: {:?} is not a stun:, stuns:, turn: or turns: URL",
                    s.url
                ));
            }
        }
        Ok(())
    }
}

/// A datagram (or a TCP frame) that arrived for the relay.
struct Datagram {
    proto: Protocol,
    source: SocketAddr,
    destination: SocketAddr,
    data: Vec<u8>,
}

enum Command {
    Publish {
        ip: IpAddr,
        meeting: MeetingId,
        source: SourceKind,
        label: Option<String>,
        offer: String,
        reply: oneshot::Sender<Result<Answer, MediaError>>,
    },
    View {
        ip: IpAddr,
        meeting: MeetingId,
        offer: String,
        reply: oneshot::Sender<Result<Answer, MediaError>>,
    },
    Trickle {
        route: Route,
        meeting: MeetingId,
        session: SessionId,
        fragment: String,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    Close {
        route: Route,
        meeting: MeetingId,
        session: SessionId,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    Layer {
        meeting: MeetingId,
        session: SessionId,
        rid: Option<String>,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    Stage {
        meeting: MeetingId,
        reply: oneshot::Sender<Vec<StageSource>>,
    },
    EndMeeting {
        meeting: MeetingId,
    },
    ClosePublishers {
        meeting: MeetingId,
    },
}

/// TCP connections by remote address, so the relay task can answer over the right one.
type TcpWriters = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>;

/// Handle to the running relay shards; cheap to clone.
#[derive(Debug, Clone)]
pub struct Media {
    /// Each shard's command channel.
    shards: Arc<[mpsc::Sender<Command>]>,
    shared: Arc<Shared>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    ice_servers: Vec<IceServer>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// Remote ICE candidates a session may trickle: a browser gathers a few per interface.
pub const MAX_CANDIDATES: usize = 50;

/// Frames over 1500 bytes are not WebRTC; the cap also bounds what a TCP peer can make us hold.
const MAX_FRAME: usize = 2048;

impl Media {
    /// Binds every shard's sockets and starts one thread per shard. The relay stops when the
    /// last `Media` handle is dropped.
    pub fn start(config: &MediaConfig, metrics: MediaMetrics) -> io::Result<Media> {
        let ips = local_ips(config.bind_ip)?;
        let n = config.shards();
        let shared = Arc::new(Shared::default());
        let tcp_per_ip: TcpPerIp = Arc::default();
        let tcp_limits = TcpLimits {
            per_ip: config.ice_tcp_max_per_ip,
            idle: Duration::from_secs(config.ice_tcp_idle_secs),
        };
        let port = |base: u16, i: usize| if base == 0 { 0 } else { base + i as u16 };
        let mut bound = Vec::new();
        for i in 0..n {
            let udp = bind_each(&ips, port(config.udp_port, i), "media UDP", bind_udp, |s| {
                s.local_addr()
            })?;
            let tcp = if config.ice_tcp {
                bind_each(&ips, port(config.tcp_port, i), "ICE-TCP", bind_tcp, |l| {
                    l.local_addr()
                })?
            } else {
                Vec::new()
            };
            bound.push((udp, tcp));
        }
        let mesh: Vec<_> = (0..n)
            .map(|_| mpsc::channel::<Arc<[ShardMessage]>>(SHARD_QUEUE))
            .collect();
        let senders: Vec<_> = mesh.iter().map(|(tx, _)| tx.clone()).collect();
        let (mut shards, mut udp_all, mut tcp_all) = (Vec::new(), Vec::new(), Vec::new());
        for (i, ((udp, tcp), (_, from_shards))) in bound.into_iter().zip(mesh).enumerate() {
            let udp_addrs: Vec<SocketAddr> = udp
                .iter()
                .map(|s| s.local_addr())
                .collect::<io::Result<_>>()?;
            let tcp_addrs: Vec<SocketAddr> = tcp
                .iter()
                .map(|l| l.local_addr())
                .collect::<io::Result<_>>()?;
            let relay = Relay::new(
                RelayConfig {
                    shard: i as u16,
                    shards: n as u16,
                    shared: shared.clone(),
                    candidates: candidates(&udp_addrs, &tcp_addrs, &config.public_ips),
                    max_viewers: config.max_viewers,
                    keyframe_interval: Duration::from_millis(config.keyframe_interval_ms),
                    initial_viewer_bitrate: Bitrate::kbps(1_000),
                    idle_source: Duration::from_secs(2),
                    max_sessions_per_ip: config.max_sessions_per_ip,
                    connect_timeout: Duration::from_secs(20),
                    max_candidates: MAX_CANDIDATES,
                    trickle_per_second: 5.0,
                    trickle_burst: 30,
                },
                metrics.clone(),
                std::time::Instant::now(),
            );
            let (commands, command_rx) = mpsc::channel(1024);
            let peers: Vec<(u16, mpsc::Sender<Arc<[ShardMessage]>>)> = senders
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, tx)| (j as u16, tx.clone()))
                .collect();
            let io = ShardIo {
                udp,
                tcp,
                tcp_limits: tcp_limits.clone(),
                tcp_per_ip: tcp_per_ip.clone(),
                commands: command_rx,
                from_shards,
                to_shards: peers,
                metrics: metrics.clone(),
            };
            std::thread::Builder::new()
                .name(format!("media-{i}"))
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    match runtime {
                        Ok(rt) => rt.block_on(serve(relay, io)),
                        Err(e) => tracing::error!(error = %e, "media shard cannot start"),
                    }
                })?;
            tracing::info!(shard = i, udp = ?udp_addrs, tcp = ?tcp_addrs, "media relay shard listening");
            shards.push(commands);
            udp_all.extend(udp_addrs);
            tcp_all.extend(tcp_addrs);
        }
        Ok(Media {
            shards: shards.into(),
            shared,
            udp_addrs: udp_all,
            tcp_addrs: tcp_all,
            ice_servers: config.ice_servers.clone(),
        })
    }

    /// The shard holding a meeting's publishers (and answering for its stage).
    fn home(&self, meeting: &MeetingId) -> usize {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        meeting.hash(&mut h);
        (h.finish() % self.shards.len() as u64) as usize
    }

    /// The shard holding a session; `None` once it ended (or if it never existed).
    fn holder(&self, session: &SessionId) -> Option<usize> {
        self.shared.shard_of(session).map(usize::from)
    }

    /// Number of relay shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    pub fn ice_servers(&self) -> &[IceServer] {
        &self.ice_servers
    }

    async fn ask<T>(
        &self,
        shard: usize,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, MediaError> {
        let (reply, answer) = oneshot::channel();
        self.shards[shard]
            .send(make(reply))
            .await
            .map_err(|_| MediaError::Stopped)?;
        answer.await.map_err(|_| MediaError::Stopped)
    }

    /// WHIP: a publisher's offer for `meeting`.
    pub async fn publish(
        &self,
        ip: IpAddr,
        meeting: MeetingId,
        source: SourceKind,
        label: Option<String>,
        offer: String,
    ) -> Result<Answer, MediaError> {
        self.ask(self.home(&meeting), |reply| Command::Publish {
            ip,
            meeting,
            source,
            label,
            offer,
            reply,
        })
        .await?
    }

    /// WHEP: a viewer's offer for `meeting` (which the caller checked is live).
    pub async fn view(
        &self,
        ip: IpAddr,
        meeting: MeetingId,
        offer: String,
    ) -> Result<Answer, MediaError> {
        let shard = usize::from(self.shared.least_loaded(self.shards.len() as u16));
        self.ask(shard, |reply| Command::View {
            ip,
            meeting,
            offer,
            reply,
        })
        .await?
    }

    /// Trickled candidates for a session made on `route` under `meeting` (else `NoSession`).
    pub async fn trickle(
        &self,
        route: Route,
        meeting: MeetingId,
        session: SessionId,
        fragment: String,
    ) -> Result<(), MediaError> {
        let shard = self.holder(&session).ok_or(MediaError::NoSession)?;
        self.ask(shard, |reply| Command::Trickle {
            route,
            meeting,
            session,
            fragment,
            reply,
        })
        .await?
    }

    /// Ends a session made on `route` under `meeting` (else `NoSession`).
    pub async fn close(
        &self,
        route: Route,
        meeting: MeetingId,
        session: SessionId,
    ) -> Result<(), MediaError> {
        if let Some(shard) = self.holder(&session) {
            return self
                .ask(shard, |reply| Command::Close {
                    route,
                    meeting,
                    session,
                    reply,
                })
                .await?;
        }
        // Ended already: the shard that held it still answers 200 for a while.
        for shard in 0..self.shards.len() {
            let closed = self
                .ask(shard, |reply| Command::Close {
                    route,
                    meeting: meeting.clone(),
                    session: session.clone(),
                    reply,
                })
                .await?;
            if closed.is_ok() {
                return Ok(());
            }
        }
        Err(MediaError::NoSession)
    }

    /// Chooses a WHEP session's layer (`None`: automatic).
    pub async fn set_layer(
        &self,
        meeting: MeetingId,
        session: SessionId,
        rid: Option<String>,
    ) -> Result<(), MediaError> {
        let shard = self.holder(&session).ok_or(MediaError::NoSession)?;
        self.ask(shard, |reply| Command::Layer {
            meeting,
            session,
            rid,
            reply,
        })
        .await?
    }

    pub async fn stage(&self, meeting: MeetingId) -> Result<Vec<StageSource>, MediaError> {
        self.ask(self.home(&meeting), |reply| Command::Stage {
            meeting,
            reply,
        })
        .await
    }

    /// Closes the meeting's publishers (its studio link was replaced).
    pub async fn close_publishers(&self, meeting: MeetingId) {
        let shard = self.home(&meeting);
        let _ = self.shards[shard]
            .send(Command::ClosePublishers { meeting })
            .await;
    }

    /// Closes every media session of the meeting.
    pub async fn end_meeting(&self, meeting: MeetingId) {
        for shard in self.shards.iter() {
            let _ = shard
                .send(Command::EndMeeting {
                    meeting: meeting.clone(),
                })
                .await;
        }
    }
}

fn with_context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The addresses to bind: the one configured, or every interface's when it is unspecified
/// (one socket per address, so the relay knows which address each datagram came in on).
fn local_ips(bind: IpAddr) -> io::Result<Vec<IpAddr>> {
    if !bind.is_unspecified() {
        return Ok(vec![bind]);
    }
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()?
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() == bind.is_ipv4())
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_link_local(),
            IpAddr::V6(v6) => !v6.is_unicast_link_local(),
        })
        .collect();
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no network interface to bind media to",
        ));
    }
    Ok(ips)
}

/// Binds every address on one port: the configured one, or with 0 the one the first bind
/// picked, so all of a node's candidates share a port.
fn bind_each<T>(
    ips: &[IpAddr],
    port: u16,
    what: &str,
    bind: impl Fn(SocketAddr) -> io::Result<T>,
    local: impl Fn(&T) -> io::Result<SocketAddr>,
) -> io::Result<Vec<T>> {
    let mut port = port;
    let mut bound = Vec::new();
    for ip in ips {
        let socket = bind(SocketAddr::new(*ip, port))
            .map_err(|e| with_context(e, format!("cannot bind {what} {ip}:{port}")))?;
        port = local(&socket)?.port();
        bound.push(socket);
    }
    Ok(bound)
}

fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Batches of shard messages one shard may have waiting for another; more are dropped (as a
/// congested network would drop packets) rather than slowing the sending shard.
const SHARD_QUEUE: usize = 4096;

/// One shard's sockets and channels.
struct ShardIo {
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
    tcp_limits: TcpLimits,
    tcp_per_ip: TcpPerIp,
    commands: mpsc::Receiver<Command>,
    from_shards: mpsc::Receiver<Arc<[ShardMessage]>>,
    to_shards: Vec<(u16, mpsc::Sender<Arc<[ShardMessage]>>)>,
    metrics: MediaMetrics,
}

/// One shard's tasks: socket readers, ICE-TCP, and the relay loop.
async fn serve(relay: Relay, io: ShardIo) {
    let metrics = io.metrics.clone();
    let (to_relay, datagrams) = mpsc::channel::<Datagram>(8192);
    let tcp_writers: TcpWriters = Arc::default();
    for listener in io.tcp {
        match TcpListener::from_std(listener) {
            Ok(l) => {
                tokio::spawn(accept_tcp(
                    l,
                    to_relay.clone(),
                    tcp_writers.clone(),
                    io.tcp_per_ip.clone(),
                    io.tcp_limits.clone(),
                    metrics.clone(),
                ));
            }
            Err(e) => tracing::error!(error = %e, "ICE-TCP listener failed"),
        }
    }
    let mut sockets = Vec::new();
    for socket in io.udp {
        match UdpSocket::from_std(socket) {
            Ok(s) => {
                let s = Arc::new(s);
                tokio::spawn(read_udp(s.clone(), to_relay.clone(), metrics.clone()));
                sockets.push(s);
            }
            Err(e) => tracing::error!(error = %e, "media UDP socket failed"),
        }
    }
    drop(to_relay);
    let channels = Channels {
        datagrams,
        commands: io.commands,
        from_shards: io.from_shards,
        to_shards: io.to_shards,
    };
    run(relay, sockets, tcp_writers, channels, metrics).await;
}

/// Host candidates for each socket, or server-reflexive ones for the public addresses (NAT).
fn candidates(udp: &[SocketAddr], tcp: &[SocketAddr], public: &[IpAddr]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (addrs, proto) in [(udp, "udp"), (tcp, "tcp")] {
        for &local in addrs {
            let made = if public.is_empty() {
                vec![host(local, proto)]
            } else {
                public
                    .iter()
                    .filter(|ip| ip.is_ipv4() == local.is_ipv4())
                    .map(|ip| {
                        Candidate::server_reflexive(
                            SocketAddr::new(*ip, local.port()),
                            local,
                            proto,
                        )
                    })
                    .collect()
            };
            for c in made {
                match c {
                    Ok(c) => out.push(c),
                    Err(e) => tracing::warn!(%local, error = %e, "cannot announce candidate"),
                }
            }
        }
    }
    out
}

fn host(addr: SocketAddr, proto: &str) -> Result<Candidate, str0m::error::IceError> {
    if proto == "tcp" {
        Candidate::builder()
            .tcp()
            .host(addr)
            .tcptype(TcpType::Passive)
            .build()
    } else {
        Candidate::host(addr, proto)
    }
}

async fn read_udp(socket: Arc<UdpSocket>, to_relay: mpsc::Sender<Datagram>, metrics: MediaMetrics) {
    let Ok(local) = socket.local_addr() else {
        return;
    };
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let (n, source) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP port unreachable from a peer that left shows up here on Linux; not fatal.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => {
                tracing::error!(%local, error = %e, "media UDP socket failed");
                return;
            }
        };
        let datagram = Datagram {
            proto: Protocol::Udp,
            source,
            destination: local,
            data: buf[..n].to_vec(),
        };
        match to_relay.try_send(datagram) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics
                    .dropped_datagrams
                    .with_label_values(&["relay_busy"])
                    .inc();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// Bounds on ICE-TCP connections, which cost a file descriptor and a task each.
#[derive(Debug, Clone)]
struct TcpLimits {
    per_ip: usize,
    idle: Duration,
}

/// Open ICE-TCP connections per remote address.
type TcpPerIp = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Holds one of an address's ICE-TCP slots; gives it back when the connection ends.
struct TcpSlot {
    ip: IpAddr,
    per_ip: TcpPerIp,
}

impl TcpSlot {
    fn take(per_ip: &TcpPerIp, ip: IpAddr, max: usize) -> Option<TcpSlot> {
        let mut map = per_ip.lock().expect("tcp per-ip lock");
        let n = map.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(TcpSlot {
            ip,
            per_ip: per_ip.clone(),
        })
    }
}

impl Drop for TcpSlot {
    fn drop(&mut self) {
        let mut map = self.per_ip.lock().expect("tcp per-ip lock");
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

async fn accept_tcp(
    listener: TcpListener,
    to_relay: mpsc::Sender<Datagram>,
    writers: TcpWriters,
    per_ip: TcpPerIp,
    limits: TcpLimits,
    metrics: MediaMetrics,
) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                // Over the cap the connection is dropped (closed) at once.
                let Some(slot) = TcpSlot::take(&per_ip, remote.ip(), limits.per_ip) else {
                    metrics
                        .dropped_datagrams
                        .with_label_values(&["tcp_per_ip"])
                        .inc();
                    continue;
                };
                tokio::spawn(serve_tcp(
                    stream,
                    remote,
                    to_relay.clone(),
                    writers.clone(),
                    slot,
                    limits.idle,
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One ICE-TCP connection: RFC 4571 frames (16-bit length, then the packet) both ways.
/// Closed after `idle` without a complete frame from the peer.
async fn serve_tcp(
    stream: TcpStream,
    remote: SocketAddr,
    to_relay: mpsc::Sender<Datagram>,
    writers: TcpWriters,
    _slot: TcpSlot,
    idle: Duration,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    writers.lock().expect("tcp writers lock").insert(remote, tx);
    let write = async move {
        while let Some(frame) = rx.recv().await {
            let len = (frame.len() as u16).to_be_bytes();
            if writer.write_all(&len).await.is_err() || writer.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    let read = async {
        let mut len = [0u8; 2];
        loop {
            let frame = async {
                reader.read_exact(&mut len).await?;
                let n = usize::from(u16::from_be_bytes(len));
                if n == 0 || n > MAX_FRAME {
                    return Err(io::ErrorKind::InvalidData.into());
                }
                let mut data = vec![0u8; n];
                reader.read_exact(&mut data).await?;
                io::Result::Ok(data)
            };
            let Ok(Ok(data)) = tokio::time::timeout(idle, frame).await else {
                break;
            };
            let d = Datagram {
                proto: Protocol::Tcp,
                source: remote,
                destination: local,
                data,
            };
            if to_relay.send(d).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = write => {}
        _ = read => {}
    }
    writers.lock().expect("tcp writers lock").remove(&remote);
}

/// What one shard's relay loop listens to and sends on.
struct Channels {
    datagrams: mpsc::Receiver<Datagram>,
    commands: mpsc::Receiver<Command>,
    from_shards: mpsc::Receiver<Arc<[ShardMessage]>>,
    to_shards: Vec<(u16, mpsc::Sender<Arc<[ShardMessage]>>)>,
}

/// The relay task: commands, other shards' messages, datagrams and timers, one at a time.
async fn run(
    mut relay: Relay,
    udp: Vec<Arc<UdpSocket>>,
    tcp: TcpWriters,
    mut channels: Channels,
    metrics: MediaMetrics,
) {
    let udp: Vec<(SocketAddr, Arc<UdpSocket>)> = udp
        .into_iter()
        .filter_map(|s| Some((s.local_addr().ok()?, s)))
        .collect();
    let to_shards = std::mem::take(&mut channels.to_shards);
    let send = |relay: &mut Relay| {
        for out in relay.drain_outgoing() {
            transmit(&udp, &tcp, out, &metrics);
        }
        export(relay, &to_shards, &metrics);
    };
    loop {
        let wake = relay
            .next_timeout()
            .map(Instant::from_std)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        // Not biased: under load, neither a stream of other shards' batches nor of datagrams
        // may starve the other (viewers' consent checks and RTCP arrive as datagrams).
        tokio::select! {
            command = channels.commands.recv() => {
                let Some(command) = command else { break };
                handle(&mut relay, command);
            }
            batch = channels.from_shards.recv() => {
                let Some(mut batch) = batch else { break };
                for _ in 0..64 {
                    let now = Instant::now().into_std();
                    for message in batch.iter() {
                        relay.ingest(now, message);
                    }
                    match channels.from_shards.try_recv() {
                        Ok(next) => batch = next,
                        Err(_) => break,
                    }
                }
            }
            datagram = channels.datagrams.recv() => {
                let Some(mut d) = datagram else { break };
                // Take what else is already waiting before sending, up to a bound.
                for _ in 0..64 {
                    relay.receive(Instant::now().into_std(), d.proto, d.source, d.destination, &d.data);
                    match channels.datagrams.try_recv() {
                        Ok(next) => d = next,
                        Err(_) => break,
                    }
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                relay.handle_timeout(Instant::now().into_std());
            }
        }
        send(&mut relay);
    }
}

/// Hands the relay's messages for other shards over: one shared batch for all of them, and
/// keyframe requests to the one shard each is for.
fn export(
    relay: &mut Relay,
    to_shards: &[(u16, mpsc::Sender<Arc<[ShardMessage]>>)],
    metrics: &MediaMetrics,
) {
    let mut all = Vec::new();
    let mut one = Vec::new();
    for message in relay.drain_exports() {
        match message.target() {
            Some(shard) => one.push((shard, message)),
            None => all.push(message),
        }
    }
    let deliver = |tx: &mpsc::Sender<Arc<[ShardMessage]>>, batch: Arc<[ShardMessage]>| {
        if tx.try_send(batch).is_err() {
            metrics
                .dropped_datagrams
                .with_label_values(&["shard_busy"])
                .inc();
        }
    };
    if !all.is_empty() {
        let batch: Arc<[ShardMessage]> = all.into();
        for (_, tx) in to_shards {
            deliver(tx, Arc::clone(&batch));
        }
    }
    for (shard, message) in one {
        if let Some((_, tx)) = to_shards.iter().find(|(s, _)| *s == shard) {
            deliver(tx, Arc::from(vec![message]));
        }
    }
}

fn handle(relay: &mut Relay, command: Command) {
    let now = Instant::now().into_std();
    match command {
        Command::Publish {
            ip,
            meeting,
            source,
            label,
            offer,
            reply,
        } => {
            let _ = reply.send(relay.publish(now, ip, meeting, source, label, &offer));
        }
        Command::View {
            ip,
            meeting,
            offer,
            reply,
        } => {
            let _ = reply.send(relay.view(now, ip, meeting, &offer));
        }
        Command::Trickle {
            route,
            meeting,
            session,
            fragment,
            reply,
        } => {
            let _ = reply.send(relay.trickle(now, route, &meeting, &session, &fragment));
        }
        Command::Close {
            route,
            meeting,
            session,
            reply,
        } => {
            let _ = reply.send(relay.close(route, &meeting, &session));
        }
        Command::Layer {
            meeting,
            session,
            rid,
            reply,
        } => {
            let _ = reply.send(relay.set_layer(&meeting, &session, rid.as_deref()));
        }
        Command::Stage { meeting, reply } => {
            let _ = reply.send(relay.stage(now, &meeting));
        }
        Command::EndMeeting { meeting } => relay.end_meeting(&meeting),
        Command::ClosePublishers { meeting } => relay.close_publishers(&meeting),
    }
}

fn transmit(
    udp: &[(SocketAddr, Arc<UdpSocket>)],
    tcp: &TcpWriters,
    out: Outgoing,
    metrics: &MediaMetrics,
) {
    match out.proto {
        Protocol::Udp => {
            let socket = match udp {
                [(_, only)] => only,
                many => match many.iter().find(|(addr, _)| *addr == out.source) {
                    Some((_, s)) => s,
                    None => return,
                },
            };
            if socket.try_send_to(&out.data, out.destination).is_err() {
                metrics
                    .dropped_datagrams
                    .with_label_values(&["send_failed"])
                    .inc();
            }
        }
        Protocol::Tcp => {
            let writer = tcp
                .lock()
                .expect("tcp writers lock")
                .get(&out.destination)
                .cloned();
            let sent = writer.is_some_and(|w| w.try_send(out.data).is_ok());
            if !sent {
                metrics
                    .dropped_datagrams
                    .with_label_values(&["send_failed"])
                    .inc();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::CandidateKind;

    #[test]
    fn local_addresses_are_announced_as_host_candidates_for_udp_and_tcp() {
        let udp: SocketAddr = "10.1.2.3:50000".parse().unwrap();
        let tcp: SocketAddr = "10.1.2.3:50001".parse().unwrap();
        let made = candidates(&[udp], &[tcp], &[]);
        let summary: Vec<_> = made
            .iter()
            .map(|c| (c.kind(), c.proto(), c.addr()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (CandidateKind::Host, Protocol::Udp, udp),
                (CandidateKind::Host, Protocol::Tcp, tcp)
            ]
        );
        assert_eq!(made[1].tcptype(), Some(TcpType::Passive));
    }

    #[test]
    fn behind_nat_the_public_address_is_announced_with_the_local_one_as_base() {
        let local: SocketAddr = "10.1.2.3:50000".parse().unwrap();
        let public: IpAddr = "203.0.113.10".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let made = candidates(&[local], &[], &[public, v6]);
        assert_eq!(
            made.len(),
            1,
            "an IPv6 public address cannot front an IPv4 socket"
        );
        assert_eq!(made[0].kind(), CandidateKind::ServerReflexive);
        assert_eq!(made[0].addr(), SocketAddr::new(public, 50000));
        assert_eq!(made[0].local(), local);
    }

    #[test]
    fn bad_settings_are_refused_with_the_setting_named() {
        let mut c = MediaConfig::default();
        assert!(c.validate().is_ok());
        c.ice_servers.push(IceServer {
            url: "http://example.org".into(),
            username: None,
            credential: None,
        });
        assert!(c.validate().unwrap_err().contains("media.ice_servers"));
        let c = MediaConfig {
            max_viewers: 0,
            ..MediaConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("media.max_viewers"));
    }
}
