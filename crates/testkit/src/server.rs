//! The server in-process on `127.0.0.1:0`, with its data in a temporary folder.

use crate::{ADMIN_TOKEN, WAIT};
use std::net::SocketAddr;
use std::sync::Arc;
use townhall_server::App;
use townhall_server::config::{Config, Durability};

/// The real server (`townhall_server::build` and `run`) on an ephemeral port; [`stop`] shuts
/// it down as the binary would.
///
/// [`stop`]: TestServer::stop
#[derive(Debug)]
pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub data_dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The relay on loopback with free ports, so parallel tests never collide.
pub fn loopback_media() -> townhall_media::MediaConfig {
    townhall_media::MediaConfig {
        bind_ip: std::net::Ipv4Addr::LOCALHOST.into(),
        udp_port: 0,
        tcp_port: 0,
        ..Default::default()
    }
}

/// Lifts every rate limit (and the per-address limits), for tests that flood the server on purpose (and for simulated
/// citizens who all share 127.0.0.1).
pub fn without_rate_limits(c: &mut Config) {
    let h = &mut c.hub;
    (h.frames_per_sec, h.frame_burst) = (100_000.0, 100_000);
    (h.commands_per_sec, h.command_burst) = (100_000.0, 100_000);
    (h.ip_commands_per_sec, h.ip_command_burst) = (100_000.0, 100_000);
    without_address_limits(c);
}

/// Lifts the limits per client address over every participant behind it (rates, slow mode
/// per address, pending questions per address), for tests whose many citizens share
/// 127.0.0.1.
pub fn without_address_limits(c: &mut Config) {
    let h = &mut c.hub;
    h.people_per_address = 0;
    h.address_questions_per_min = 0;
    h.address_comments_per_min = 0;
    h.address_votes_per_min = 0;
    h.address_renames_per_min = 0;
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with the test defaults ([`ADMIN_TOKEN`], `Durability::Normal`, the relay on
    /// loopback) changed by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: data_dir.path().to_path_buf(),
            admin_token: Some(ADMIN_TOKEN.into()),
            durability: Durability::Normal,
            media: loopback_media(),
            ..Config::default()
        };
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (app, _) = townhall_server::build(config).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let app = app.clone();
            async move {
                townhall_server::run(listener, app, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            }
        });
        Self {
            base: format!("http://{addr}"),
            addr,
            app,
            data_dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, task).await;
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}
