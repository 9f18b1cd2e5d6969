//! Test support for townhall's integration tests and the load tester's tests: the real server
//! on `127.0.0.1:0` — in-process ([`TestServer`]) or as the real binary ([`Process`], for
//! `kill -9` and process limits) — and a WebSocket protocol client ([`Client`]) that folds what
//! it receives into a `townhall_core::client::ClientView`. The organizer API and `/metrics`
//! helpers here panic on failure (they are for tests); the fallible ones are
//! `townhall-client`'s, which the load tester uses.
//!
//! Several nodes: [`Cluster`] starts real binaries on one Redis ([`SharedRedis`] under a prefix
//! per test, or an [`OwnRedis`] the test may kill), [`Roamer`] is a client that moves to another
//! node when its own dies, and [`expected_event_offsets`] says from the log what each
//! participant was owed.
//!
//! Every wait is bounded by [`WAIT`] and waits on a condition, never a sleep.

#![forbid(unsafe_code)]

pub mod cluster;
mod process;
pub mod redis;
mod server;
mod ws;

pub use cluster::{Cluster, Delivery, Outcome, Roamer, expected_event_offsets};
pub use process::{Launch, Process};
pub use redis::{Fsync, OwnRedis, SharedRedis};
pub use server::{TestServer, loopback_media, without_address_limits, without_rate_limits};
pub use townhall_client::api::CreatedMeeting as TestMeeting;
pub use ws::{Client, said_bye};

use std::future::Future;
use std::time::Duration;
use townhall_client::{api, metrics};

/// The admin token every test server is started with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Generous bound for a condition that should hold almost at once; never a sleep.
pub const WAIT: Duration = Duration::from_secs(10);

/// An HTTP client whose requests give up after [`WAIT`].
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

/// Waits until `check` holds, asking again every 20 ms; panics naming `what` after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what} after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server's `/metrics` text.
pub async fn metrics_text(base: &str) -> String {
    metrics::fetch(&http(), base).await.unwrap()
}

/// The value of one series in `/metrics`, named as printed (with its labels); `None` if absent.
pub async fn metric(base: &str, series: &str) -> Option<f64> {
    metrics::series(&metrics_text(base).await, series)
}

/// A scheduled meeting, created through the organizer API.
pub async fn create_meeting(base: &str, title: &str) -> TestMeeting {
    api::create_meeting(&http(), base, ADMIN_TOKEN, title)
        .await
        .unwrap_or_else(|e| panic!("create meeting: {e}"))
}

pub async fn start_meeting(base: &str, id: &str) {
    api::start_meeting(&http(), base, ADMIN_TOKEN, id)
        .await
        .unwrap_or_else(|e| panic!("start meeting: {e}"));
}

/// A live meeting, created and started through the organizer API.
pub async fn live_meeting(base: &str) -> TestMeeting {
    let m = create_meeting(base, "Borgermøde om den nye skole").await;
    start_meeting(base, &m.id).await;
    m
}
