//! Pings are frames like any other (issue 8, rows 1 and 4): a client that floods WebSocket
//! pings and never reads is closed with a code while the server's memory stays flat, and pings
//! never keep a connection that has not sent `hello` past its handshake deadline.

use futures_util::{SinkExt, StreamExt};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use townhall_core::Command;
use townhall_core::command::PostComment;
use townhall_core::wire::ServerMessage;
use townhall_testkit::*;

const TOWNHALL: &str = env!("CARGO_BIN_EXE_townhall");

/// The server process's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A WebSocket upgrade on a raw socket from `from`: the attacker reads the `101` and from then
/// on only writes.
async fn raw_websocket(server: SocketAddr, from: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut s = socket.connect(server).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).await.unwrap(), 1, "closed during upgrade");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    s
}

/// A masked client text frame (payload under 126 bytes).
fn text_frame(text: &str) -> Vec<u8> {
    assert!(text.len() < 126);
    let mut f = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
    f.extend_from_slice(text.as_bytes());
    f
}

/// Writes masked empty pings as fast as the socket takes them, never reading, for at most
/// `limit`; returns how long until the server closed the connection (`None`: still open) and
/// the highest RSS of the server seen meanwhile.
async fn ping_flood(mut s: TcpStream, limit: Duration, pid: u32) -> (Option<Duration>, u64) {
    // 64 KiB of 6-byte pings (FIN+ping, masked, length 0, zero mask) per write.
    let pings: Vec<u8> = [0x89u8, 0x80, 0, 0, 0, 0].repeat(64 * 1024 / 6);
    let start = Instant::now();
    let mut peak = 0;
    let mut last_sample = start;
    while start.elapsed() < limit {
        let write = tokio::time::timeout(Duration::from_millis(100), s.write_all(&pings)).await;
        if let Ok(Err(_)) = write {
            return (Some(start.elapsed()), peak.max(rss_kib(pid)));
        }
        if last_sample.elapsed() > Duration::from_millis(100) {
            peak = peak.max(rss_kib(pid));
            last_sample = Instant::now();
        }
    }
    (None, peak.max(rss_kib(pid)))
}

/// Row 1: pings as fast as possible, never reading, took the server from 15 to 187 MB in 3 s
/// (a pong queued per ping, pings outside the rate limit). Now a flooder is closed — before
/// `hello` at once (`rate_limited`), after it once its refusals in a row reach the violation
/// limit (`protocol_violation`) — the server's memory stays flat, and an honest citizen of the
/// same meeting, on another address, is served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_that_never_reads_is_closed_and_costs_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(TOWNHALL, dir.path()).spawn();
    let pid = server.child.id();
    let addr: SocketAddr = server.addr.parse().unwrap();
    let meeting = live_meeting(&server.base).await;
    let honest_from: IpAddr = "127.0.0.2".parse().unwrap();
    let mut honest = Client::connect_from(addr, honest_from, &[]).await;
    honest.hello(&meeting.id, None, None, None).await;
    let before = rss_kib(pid);

    let attacker: IpAddr = "127.0.0.1".parse().unwrap();
    // Never says hello.
    let s = raw_websocket(addr, attacker).await;
    let (closed, peak) = ping_flood(s, Duration::from_secs(3), pid).await;
    assert!(
        closed.is_some(),
        "a ping flood before hello was kept for 3 s"
    );
    assert!(
        peak < before + 40 * 1024,
        "RSS grew from {before} KiB to {peak} KiB under a ping flood"
    );

    // Joins, then floods without ever reading what it is sent.
    let mut s = raw_websocket(addr, attacker).await;
    let hello = format!(r#"{{"t":"hello","meeting":"{}"}}"#, meeting.id);
    s.write_all(&text_frame(&hello)).await.unwrap();
    let (closed, peak) = ping_flood(s, Duration::from_secs(5), pid).await;
    assert!(closed.is_some(), "a joined ping flood was kept for 5 s");
    assert!(
        peak < before + 40 * 1024,
        "RSS grew from {before} KiB to {peak} KiB under a joined ping flood"
    );

    let rejected = |code: &str| {
        let series = format!("townhall_hub_rejections_total{{code=\"{code}\"}}");
        let base = server.base.clone();
        async move { metric(&base, &series).await.unwrap_or(0.0) }
    };
    assert!(rejected("rate_limited").await >= 1.0);
    assert!(rejected("protocol_violation").await >= 1.0);

    // The honest citizen was never disturbed.
    let cmd = Command::PostComment(PostComment {
        text: "Stadig her".into(),
    });
    assert!(honest.run(cmd).await.is_ok());
    honest.close().await;
}

/// Row 4: a ping every 4 s without `hello` kept a connection open past 30 s, each ping
/// restarting the 10 s hello timer. Now the handshake has one deadline that no frame moves: a
/// connection pinging well within it is still closed `not_joined` when it passes.
#[tokio::test]
async fn pings_do_not_move_the_handshake_deadline() {
    let server = TestServer::start_with(|c| c.hub.hello_timeout_secs = 2).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .unwrap();
    let start = Instant::now();
    let mut bye = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(400));
    while start.elapsed() < WAIT {
        tokio::select! {
            _ = ticker.tick() => {
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(ServerMessage::Bye { code, .. }) = serde_json::from_str(&t) {
                        bye = Some(code);
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(bye.as_deref(), Some("not_joined"));
    assert!(
        elapsed >= Duration::from_millis(1800) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}, the handshake deadline is 2 s"
    );
    server.stop().await;
}
