//! The server on Redis (`redis` set): nodes share meetings and secrets through it, `/readyz`
//! follows Redis' reachability by itself, and a node started before Redis answers waits for it.
//!
//! Uses the shared Redis at `REDIS_URL` under a key prefix per test (skipped, saying so, when it
//! does not answer, unless `TOWNHALL_REQUIRE_REDIS=1`). Redis going away is simulated with a TCP
//! proxy in the test that cuts every connection, never by touching the shared Redis.

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use townhall_core::Command;
use townhall_core::command::PostComment;
use townhall_testkit::{Client, TestServer, WAIT, http};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "th-server-test-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether the shared Redis answers; a failure instead of a skip when it is required.
async fn redis_answers() -> bool {
    let authority = split_url(&redis_url()).1;
    let up = matches!(
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&authority)).await,
        Ok(Ok(_))
    );
    if !up {
        assert!(
            std::env::var("TOWNHALL_REQUIRE_REDIS").as_deref() != Ok("1"),
            "TOWNHALL_REQUIRE_REDIS=1 but redis at {} does not answer",
            redis_url()
        );
        eprintln!("SKIPPED: redis at {} does not answer", redis_url());
    }
    up
}

/// Deletes every key the test wrote under `prefix`.
async fn clean_up(prefix: &str) {
    let config = townhall_store::RedisConfig::new(redis_url()).with_prefix(prefix);
    let log = townhall_store::RedisLog::connect(&config).await.unwrap();
    log.delete_everything().await.unwrap();
}

/// `redis://[userinfo@]host:port[/db]` → (`redis://[userinfo@]`, `host:port`, `[/db]`).
fn split_url(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").expect("a redis:// url");
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((u, r)) => (format!("{u}@"), r),
        None => (String::new(), rest),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    (
        format!("{scheme}://{userinfo}"),
        authority.to_owned(),
        path.to_owned(),
    )
}

/// A TCP proxy in front of the shared Redis that can cut every connection and refuse new ones
/// (a network partition or a Redis restart, as far as the node can tell).
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let accepted = Arc::new(AtomicU64::new(0));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        tokio::spawn({
            let (up, accepted) = (up.clone(), accepted.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    if !up.load(Ordering::Acquire) {
                        continue; // dropped: the client sees its connection closed at once
                    }
                    let (target, mut cuts) = (target.clone(), cuts.clone());
                    cuts.mark_unchanged();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(&target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cuts.changed() => {}
                        }
                    });
                }
            }
        });
        Self {
            addr,
            up,
            cut,
            accepted,
        }
    }

    fn url(&self) -> String {
        let (head, _, path) = split_url(&redis_url());
        format!("{head}{}{path}", self.addr)
    }

    fn go_down(&self) {
        self.up.store(false, Ordering::Release);
        self.cut.send_modify(|n| *n += 1);
    }

    fn come_back(&self) {
        self.up.store(true, Ordering::Release);
    }
}

async fn readyz(base: &str) -> (u16, String) {
    let res = http().get(format!("{base}/readyz")).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn wait_for_readyz(base: &str, status: u16) -> String {
    let deadline = Instant::now() + WAIT * 3;
    loop {
        let (got, body) = readyz(base).await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "readyz never became {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_redis_share_meetings_and_secrets() {
    if !redis_answers().await {
        return;
    }
    let prefix = unique_prefix();
    let on_redis = |node: &'static str| {
        let prefix = prefix.clone();
        move |c: &mut townhall_server::config::Config| {
            c.redis = Some(redis_url());
            c.redis_prefix = prefix;
            c.node_id = Some(node.into());
        }
    };
    let a = TestServer::start_with(on_redis("node-a")).await;
    let b = TestServer::start_with(on_redis("node-b")).await;
    assert_eq!(readyz(&a.base).await.0, 200);
    assert_eq!(a.app.node_id, "node-a");

    // Created through node A, listed by node B and joined there: the log is in Redis.
    let m = townhall_testkit::live_meeting(&a.base).await;
    let listed: Value = http()
        .get(format!("{}/api/meetings", b.base))
        .bearer_auth(townhall_testkit::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed.to_string().contains(&m.id),
        "node B lists the meeting: {listed}"
    );
    let mut citizen = Client::join(&b.ws_url(), &m.id, None).await;
    citizen
        .run(Command::PostComment(PostComment {
            text: "hej fra node B".into(),
        }))
        .await
        .unwrap();
    let id = townhall_core::MeetingId::parse(m.id.as_str()).unwrap();
    let log = a.app.hub.log().read(&id, 0, 100).await;
    assert!(
        log.unwrap()
            .iter()
            .any(|r| format!("{:?}", r.event.kind).contains("hej fra node B")),
        "node A reads node B's comment from the shared log"
    );

    // One session key and one admin token for both (here the admin token is configured; the
    // generated case is below).
    assert_eq!(a.app.admin_token_hash, b.app.admin_token_hash);
    // Presence is summed over both nodes through Redis.
    a.app.presence.report(&id, 3).await.unwrap();
    assert_eq!(b.app.presence.report(&id, 2).await.unwrap(), 5);

    // Without a configured admin token, the first node generates one and the others read it.
    let generated_prefix = unique_prefix();
    let no_token = |c: &mut townhall_server::config::Config, p: &str| {
        c.redis = Some(redis_url());
        c.redis_prefix = p.to_owned();
        c.admin_token = None;
    };
    let mut first = townhall_server::config::Config::default();
    no_token(&mut first, &generated_prefix);
    first.media.enabled = false;
    let (first, token) = townhall_server::build(first.clone()).await.unwrap();
    let token = token.expect("the first node generates and prints the token");
    let mut second = townhall_server::config::Config::default();
    no_token(&mut second, &generated_prefix);
    second.media.enabled = false;
    let (second, again) = townhall_server::build(second).await.unwrap();
    assert_eq!(again, None, "only the first node prints it");
    assert_eq!(first.admin_token_hash, second.admin_token_hash);
    assert_eq!(
        first.admin_token_hash,
        townhall_hub::auth::hash_token(&token)
    );

    citizen.close().await;
    a.stop().await;
    b.stop().await;
    clean_up(&prefix).await;
    clean_up(&generated_prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_waits_for_redis_at_start_and_readyz_follows_it() {
    if !redis_answers().await {
        return;
    }
    let proxy = Proxy::start(split_url(&redis_url()).1).await;
    proxy.go_down();
    let url = proxy.url();
    let prefix = unique_prefix();
    let cleanup = prefix.clone();
    let starting = tokio::spawn(async move {
        TestServer::start_with(move |c| {
            c.redis = Some(url);
            c.redis_prefix = prefix;
        })
        .await
    });
    // It keeps trying (each attempt reaches the proxy) rather than giving up.
    let deadline = Instant::now() + WAIT;
    while proxy.accepted.load(Ordering::Relaxed) < 3 {
        assert!(Instant::now() < deadline, "the node stopped trying");
        assert!(!starting.is_finished(), "the node must wait for redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!starting.is_finished());
    proxy.come_back();
    let server = tokio::time::timeout(WAIT * 2, starting)
        .await
        .expect("the node starts once redis answers")
        .unwrap();
    wait_for_readyz(&server.base, 200).await;
    let m = townhall_testkit::live_meeting(&server.base).await;

    // Redis goes away: not ready, with the reason as JSON.
    proxy.go_down();
    let went_down = Instant::now();
    let body = wait_for_readyz(&server.base, 503).await;
    let reason: Value = serde_json::from_str(&body).expect("a json reason");
    assert_eq!(reason["status"], "unavailable", "{body}");
    assert!(
        reason["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    let not_ready_after = went_down.elapsed();

    // It comes back by itself, and the meeting is still there.
    proxy.come_back();
    let came_back = Instant::now();
    wait_for_readyz(&server.base, 200).await;
    let ready_after = came_back.elapsed();
    let mut citizen = Client::join(&server.ws_url(), &m.id, None).await;
    citizen
        .run(Command::PostComment(PostComment {
            text: "efter pausen".into(),
        }))
        .await
        .unwrap();
    eprintln!(
        "readyz: 503 {not_ready_after:?} after redis went away, 200 again {ready_after:?} after \
         it came back"
    );
    citizen.close().await;
    server.stop().await;
    clean_up(&cleanup).await;
}
