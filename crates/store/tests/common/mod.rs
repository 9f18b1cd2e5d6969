//! Redis for the tests: the shared one at `REDIS_URL` (a key prefix per test), or a private
//! `redis-server` started by the test on an ephemeral port (for restarting it).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use townhall_store::{RedisConfig, RedisLog};

/// Generous: the machine may be busy; waits end as soon as the condition holds.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn redis_required() -> bool {
    std::env::var("TOWNHALL_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "th-test-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    )
}

fn rand_suffix() -> u32 {
    // Enough to keep reruns apart; no need for a crate.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id().rotate_left(16)
}

/// A log on the shared Redis under a fresh prefix, or `None` (the test is skipped, saying so)
/// when Redis does not answer — unless `TOWNHALL_REQUIRE_REDIS=1`, which makes that a failure.
pub async fn shared_redis() -> Option<RedisLog> {
    shared_redis_with_config().await.map(|(log, _)| log)
}

/// [`shared_redis`] with its config, to connect more handles (nodes) to the same prefix.
pub async fn shared_redis_with_config() -> Option<(RedisLog, RedisConfig)> {
    let config = RedisConfig::new(redis_url()).with_prefix(unique_prefix());
    match RedisLog::connect(&config).await {
        Ok(log) => Some((log, config)),
        Err(e) if redis_required() => {
            panic!(
                "TOWNHALL_REQUIRE_REDIS=1 but redis at {} does not answer: {e}",
                redis_url()
            )
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: redis at {} does not answer ({e}); set TOWNHALL_REQUIRE_REDIS=1 to fail instead",
                redis_url()
            );
            None
        }
    }
}

/// A `redis-server` of the test's own, on an ephemeral port, with AOF fsynced on every write
/// in a temporary dir, so it can be killed and restarted without touching the shared one.
pub struct OwnRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    /// `None` (skipped) when there is no `redis-server` binary, unless Redis is required.
    pub fn start() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                !redis_required(),
                "TOWNHALL_REQUIRE_REDIS=1 but redis-server is not installed"
            );
            eprintln!("SKIPPED: no redis-server binary");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut redis = Self {
            port,
            dir,
            child: None,
        };
        redis.spawn();
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let log: PathBuf = self.dir.path().join("redis.log");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--dir", &self.dir.path().display().to_string()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--logfile", &log.display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + WAIT;
        while !self.answers() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on port {} did not answer; see {}",
                self.port,
                log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// `kill -9`: Redis itself crashes, keeping only what its AOF has.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill redis-server");
            child.wait().expect("reap redis-server");
        }
    }

    /// Starts it again on the same port and dir (it replays its AOF).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
