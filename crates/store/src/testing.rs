//! Redis for tests (feature `test-support`): the shared one at `REDIS_URL` under a key prefix
//! per test, or a private `redis-server` a test starts, kills and restarts ([`OwnRedis`]),
//! never touching the shared one. Used by this crate's tests and by townhall-testkit.
//!
//! Without a Redis the tests are skipped, saying so, unless `TOWNHALL_REQUIRE_REDIS=1` (as in
//! `.ci/run`), which makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a private `redis-server` may take to answer (it may replay its AOF on a busy
/// machine); the wait ends as soon as it answers.
const START_WAIT: Duration = Duration::from_secs(30);

/// `REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Whether a missing Redis fails the test instead of skipping it.
pub fn redis_required() -> bool {
    std::env::var("TOWNHALL_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

/// A key prefix no other test, process or run uses (Redis key prefixes allow letters, digits,
/// `-`, `_` and `.`).
pub fn unique_prefix(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let test: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(24)
        .collect();
    format!(
        "th-{test}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// How a private Redis keeps its data on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// `appendfsync always`: nothing acknowledged is lost even by `kill -9`.
    Always,
    /// `appendfsync everysec`: the recommended production setting.
    EverySec,
}

/// A `redis-server` of the test's own, on an ephemeral port, with AOF on in a temporary dir,
/// so it can be killed and restarted in the middle of a meeting.
#[derive(Debug)]
pub struct OwnRedis {
    pub port: u16,
    fsync: Fsync,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    /// `None` (skipped) when there is no `redis-server` binary, unless Redis is required.
    pub fn start(fsync: Fsync) -> Option<Self> {
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
        let mut redis = Self {
            port: free_port(),
            fsync,
            dir: tempfile::tempdir().unwrap(),
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
        let fsync = match self.fsync {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
        };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--appendonly", "yes", "--appendfsync", fsync, "--save", ""])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + START_WAIT;
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer; see {}",
                self.port,
                log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it answers `PING` (also false while it is still loading its AOF).
    pub fn answers(&self) -> bool {
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

    /// Starts it again on the same port and dir (it replays its AOF); returns once it answers.
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
