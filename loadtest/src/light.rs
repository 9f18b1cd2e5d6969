//! A light WHEP viewer for load runs: str0m (sans-IO) in RTP mode on one UDP socket, no
//! depacketizing, decoding or jitter buffer. It still does ICE, DTLS, SRTP and RTCP (receiver
//! reports, NACKs) like a browser, and counts what the full webrtc-rs viewer counts (packets,
//! loss, duplicates, keyframes, time to first packet and keyframe, trailer indices), so
//! `townhall-load media --light` measures the same things at a fraction of the generator's
//! CPU, and a 2-core run reaches the relay's own limit instead of the load generator's.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::media::{Direction, MediaKind as Kind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use townhall_client::rtc::stats::RtpAccount;
use townhall_client::rtc::{
    MediaKind, RtcError, TrackStats, ViewerConfig, ViewerStats, delete_session, post_offer,
    trailer, vp8,
};
use webrtc::peer_connection::RTCPeerConnectionState;

/// One receive-only m-line and what arrived on it.
struct Line {
    kind: MediaKind,
    slot: usize,
    mid: Mid,
    account: RtpAccount,
}

struct State {
    lines: Vec<Line>,
    connected_after: Option<Duration>,
    state: RTCPeerConnectionState,
}

/// See the module doc. Dropping it stops its task; [`LightViewer::close`] also ends the
/// session on the server.
pub struct LightViewer {
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
    location: reqwest::Url,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for LightViewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightViewer")
            .field("location", &self.location.path())
            .finish_non_exhaustive()
    }
}

impl Drop for LightViewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn protocol(why: impl std::fmt::Display) -> RtcError {
    RtcError::Protocol(why.to_string())
}

impl LightViewer {
    /// Opens a WHEP session at `url` from a socket on `ip` (a host candidate: use the address
    /// the server can reach, loopback for a local server).
    pub async fn connect(
        http: &reqwest::Client,
        url: &str,
        ip: IpAddr,
        config: &ViewerConfig,
    ) -> Result<LightViewer, RtcError> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(protocol)?;
        let local = socket.local_addr().map_err(protocol)?;
        let started = Instant::now();
        let mut rtc = Rtc::builder().set_rtp_mode(true).build(started);
        rtc.add_local_candidate(Candidate::host(local, "udp").map_err(protocol)?);
        let mut change = rtc.sdp_api();
        let mut lines = Vec::new();
        for slot in 0..config.video.max(config.audio) {
            let wanted = [
                (slot < config.video, Kind::Video, MediaKind::Video, 90_000),
                (slot < config.audio, Kind::Audio, MediaKind::Audio, 48_000),
            ];
            for (want, kind, ours, clock) in wanted {
                if want {
                    let mid = change.add_media(kind, Direction::RecvOnly, None, None, None);
                    lines.push(Line {
                        kind: ours,
                        slot,
                        mid,
                        account: RtpAccount::new(clock),
                    });
                }
            }
        }
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| protocol("no m-lines to offer"))?;
        let answer = post_offer(http, url, None, offer.to_sdp_string()).await?;
        let sdp = str0m::change::SdpAnswer::from_sdp_string(&answer.sdp).map_err(protocol)?;
        rtc.sdp_api()
            .accept_answer(pending, sdp)
            .map_err(protocol)?;
        let state = Arc::new(Mutex::new(State {
            lines,
            connected_after: None,
            state: RTCPeerConnectionState::Connecting,
        }));
        let task = tokio::spawn(drive(rtc, socket, local, started, state.clone()));
        Ok(LightViewer {
            state,
            http: http.clone(),
            location: answer.location,
            task,
        })
    }

    /// Waits until ICE and DTLS are up.
    pub async fn wait_connected(&self, limit: Duration) -> Result<(), RtcError> {
        let deadline = Instant::now() + limit;
        loop {
            {
                let s = self.state.lock().unwrap();
                match s.state {
                    RTCPeerConnectionState::Connected => return Ok(()),
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        return Err(protocol("the light viewer's connection failed"));
                    }
                    _ => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(protocol(format!("not connected within {limit:?}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The same figures as the full viewer's `stats()`.
    pub fn stats(&self) -> ViewerStats {
        let s = self.state.lock().unwrap();
        let tracks = s
            .lines
            .iter()
            .map(|l| TrackStats::of(l.kind, l.slot, &l.account))
            .collect();
        ViewerStats {
            connected_after: s.connected_after,
            state: s.state,
            tracks,
        }
    }

    /// Stops receiving and ends the session (WHEP `DELETE`).
    pub async fn close(self) -> Result<(), RtcError> {
        self.task.abort();
        delete_session(&self.http, &self.location, None).await
    }
}

/// Runs one viewer's `Rtc`: datagrams in, datagrams out, time.
async fn drive(
    mut rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    started: Instant,
    state: Arc<Mutex<State>>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let wake = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(event)) => on_event(&mut rtc, event, started, &state),
                Err(_) => {
                    state.lock().unwrap().state = RTCPeerConnectionState::Failed;
                    return;
                }
            }
        };
        if !rtc.is_alive() {
            state.lock().unwrap().state = RTCPeerConnectionState::Closed;
            return;
        }
        let wait = wake.saturating_duration_since(Instant::now());
        let input = tokio::select! {
            read = socket.recv_from(&mut buf) => match read {
                Ok((n, source)) => Receive::new(Protocol::Udp, source, local, &buf[..n])
                    .ok()
                    .map(|r| Input::Receive(Instant::now(), r)),
                Err(_) => None,
            },
            _ = tokio::time::sleep(wait) => Some(Input::Timeout(Instant::now())),
        };
        if let Some(input) = input
            && rtc.handle_input(input).is_err()
        {
            state.lock().unwrap().state = RTCPeerConnectionState::Failed;
            return;
        }
    }
}

fn on_event(rtc: &mut Rtc, event: Event, started: Instant, state: &Mutex<State>) {
    match event {
        Event::Connected => {
            let mut s = state.lock().unwrap();
            s.state = RTCPeerConnectionState::Connected;
            s.connected_after = Some(started.elapsed());
        }
        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
            state.lock().unwrap().state = RTCPeerConnectionState::Disconnected;
        }
        Event::RtpPacket(p) => {
            let Some(mid) = rtc.direct_api().stream_rx(&p.header.ssrc).map(|s| s.mid()) else {
                return;
            };
            let mut s = state.lock().unwrap();
            let Some(line) = s.lines.iter_mut().find(|l| l.mid == mid) else {
                return;
            };
            let keyframe = line.kind == MediaKind::Video && vp8::is_keyframe(&p.payload);
            line.account.record(
                started.elapsed(),
                *p.seq_no as u16,
                p.header.timestamp,
                p.payload.len(),
                keyframe,
                trailer::read(&p.payload),
            );
        }
        _ => {}
    }
}
