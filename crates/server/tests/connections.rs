//! Every connection is bounded before it costs anything (issue 8): connections that send
//! nothing, send their headers a byte at a time, or trickle a body are closed by the timeouts;
//! one address cannot hold more than its share of connections; the process survives running
//! out of file descriptors; and honest clients are served throughout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use townhall_testkit::*;

const TOWNHALL: &str = env!("CARGO_BIN_EXE_townhall");

/// A second loopback address, for an honest client that does not share the attacker's.
fn other_address() -> IpAddr {
    "127.0.0.2".parse().unwrap()
}

async fn connect_from(server: SocketAddr, from: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(server).await.unwrap()
}

/// Whether the server closes `stream` within `limit` (reading what it sends until then).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// One series of `/metrics`, read from [`other_address`] so that the reading does not take one
/// of the attacker's places. Its own connection is open while the server answers, so
/// `townhall_http_connections` includes it.
async fn metric_from_elsewhere(base: &str, series: &str) -> Option<f64> {
    let client = reqwest::Client::builder()
        .local_address(other_address())
        .timeout(WAIT)
        .build()
        .unwrap();
    let text = townhall_client::metrics::fetch(&client, base)
        .await
        .unwrap();
    townhall_client::metrics::series(&text, series)
}

/// `GET /healthz` answered `200`, from the given local address.
async fn healthy_from(base: &str, from: IpAddr) -> bool {
    let client = reqwest::Client::builder()
        .local_address(from)
        .timeout(WAIT)
        .build()
        .unwrap();
    match client.get(format!("{base}/healthz")).send().await {
        Ok(res) => res.status() == 200,
        Err(_) => false,
    }
}

/// Row 2: 60 silent TCP connections and 60 slowloris requests stayed open for 40 s. Now the
/// header timeout closes them all, and a kept-alive connection that goes idle too, while an
/// honest client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slowloris_and_idle_connections_are_closed_by_the_header_timeout() {
    let server = TestServer::start_with(|c| c.http.header_timeout_secs = 1).await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // Slowloris: a request line, then one more header line every 200 ms, never the end.
    let mut slow = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: townhall\r\n")
            .await
            .unwrap();
        slow.push(tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                n += 1;
                let line = format!("X-Slow-{i}-{n}: a\r\n");
                if s.write_all(line.as_bytes()).await.is_err() {
                    return n; // closed by the server
                }
                if n > 500 {
                    panic!("a slowloris connection was kept for 100 s");
                }
            }
        }));
    }
    // A kept-alive connection that made one request and then says nothing more.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: townhall\r\n\r\n")
        .await
        .unwrap();

    assert!(healthy_from(&server.base, other_address()).await);
    for s in &mut silent {
        assert!(closed_within(s, WAIT).await, "a silent connection is open");
    }
    for task in slow {
        tokio::time::timeout(WAIT, task)
            .await
            .expect("a slowloris connection is still open")
            .unwrap();
    }
    // It got its answer, then the connection was closed for idling.
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, idle.read_to_end(&mut answer))
        .await
        .expect("an idle kept-alive connection is still open")
        .ok();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    eventually(
        "the server to hold no connection but the one asking",
        || async {
            metric_from_elsewhere(&server.base, "townhall_http_connections").await == Some(1.0)
        },
    )
    .await;
    assert!(healthy_from(&server.base, other_address()).await);
    server.stop().await;
}

/// One address may hold `http.max_connections_per_ip` connections, WebSockets included; more
/// are closed at accept, before a byte is read. Other addresses are served, and a freed place
/// can be taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_connections() {
    let server = TestServer::start_with(|c| c.http.max_connections_per_ip = 3).await;
    let meeting = live_meeting(&server.base).await;
    let me: IpAddr = "127.0.0.1".parse().unwrap();
    // A WebSocket keeps its place after the upgrade.
    let citizen = Client::join(&server.ws_url(), &meeting.id, None).await;
    // The organizer API's connections have closed: the citizen's is the one left (plus the
    // one asking).
    let open = || metric_from_elsewhere(&server.base, "townhall_http_connections");
    eventually("only the WebSocket to be open", || async {
        open().await == Some(2.0)
    })
    .await;
    let mut held = vec![
        connect_from(server.addr, me).await,
        connect_from(server.addr, me).await,
    ];
    let mut extra = connect_from(server.addr, me).await;
    assert!(
        closed_within(&mut extra, WAIT).await,
        "a fourth connection from one address was kept"
    );
    assert_eq!(
        metric_from_elsewhere(
            &server.base,
            "townhall_http_refused_total{reason=\"per_ip\"}"
        )
        .await,
        Some(1.0)
    );
    assert!(healthy_from(&server.base, other_address()).await);

    // Freeing a place lets the address in again.
    held.pop();
    eventually("the freed place to be counted", || async {
        open().await == Some(3.0)
    })
    .await;
    assert!(healthy_from(&server.base, me).await);
    citizen.close().await;
    server.stop().await;
}

/// A body sent a byte at a time gets `408 request_timeout` after `http.request_timeout_secs`
/// instead of holding the connection and its handler for as long as the client likes.
#[tokio::test]
async fn a_body_trickled_slowly_gets_a_request_timeout() {
    let server = TestServer::start_with(|c| c.http.request_timeout_secs = 1).await;
    let meeting = live_meeting(&server.base).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /api/meetings/{}/whep HTTP/1.1\r\nHost: townhall\r\n\
         Content-Type: application/sdp\r\nContent-Length: 4000\r\n\r\nv=0\r\n",
        meeting.id
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut answer))
        .await
        .expect("the trickled request is still waiting")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(healthy_from(&server.base, other_address()).await);
    server.stop().await;
}

/// Row 3: with the open-files limit at 200, 195 idle connections made `/healthz` time out and
/// nobody else was served. Now the accept loop backs off while descriptors run out, the header
/// timeout frees them, and `/healthz` answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_at_the_open_files_limit_do_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("townhall.toml");
    std::fs::write(&config, "[http]\nheader_timeout_secs = 2\n").unwrap();
    let server = Launch::new(TOWNHALL, dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .wrapped_in(["prlimit", "--nofile=200:200", "--"])
        .spawn();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.split_whitespace().nth(3) == Some("200")),
        "{limits}"
    );
    let addr: SocketAddr = server.addr.parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..195 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let res = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("/healthz did not answer with the open files used up");
    assert_eq!(res.status(), 200);
    // And the server is still whole: the organizer API (storage included) answers.
    let meeting = create_meeting(&server.base, "Efter angrebet").await;
    assert!(!meeting.id.is_empty());
    drop(idle);
}

/// The process raises its open-files soft limit to the hard limit at start, so connections and
/// not a conservative default decide how many fit.
#[tokio::test]
async fn the_server_raises_its_open_files_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(TOWNHALL, dir.path())
        .wrapped_in(["prlimit", "--nofile=256:4096", "--"])
        .spawn();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&fields[3..5], ["4096", "4096"], "{line}");
}
