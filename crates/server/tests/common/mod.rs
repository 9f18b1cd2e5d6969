//! Test harness: the real server on 127.0.0.1:0 (in-process, or as the real binary for crash
//! tests) and real WebSocket clients that keep a `ClientView` of what they received.

#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use townhall_core::client::ClientView;
use townhall_core::wire::ServerMessage;
use townhall_core::{Command, Offset};
use townhall_server::App;
use townhall_server::config::{Config, Durability};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// Generous bound for a condition that should hold almost at once; never a sleep.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
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

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

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

/// A meeting created through the organizer API.
#[derive(Clone, Debug)]
pub struct TestMeeting {
    pub id: String,
    pub moderator_token: String,
    pub studio_token: String,
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

/// The server's `/metrics` text.
pub async fn metrics_text(base: &str) -> String {
    http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one series in `/metrics`, named as printed (with its labels); `None` if absent.
pub async fn metric(base: &str, series: &str) -> Option<f64> {
    let prefix = format!("{series} ");
    metrics_text(base)
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
}

pub async fn create_meeting(base: &str, title: &str) -> TestMeeting {
    let res = http()
        .post(format!("{base}/api/meetings"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "title": title }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "create meeting");
    let body: Value = res.json().await.unwrap();
    let fragment = |key: &str| {
        body[key]
            .as_str()
            .unwrap()
            .rsplit_once('#')
            .unwrap()
            .1
            .to_owned()
    };
    TestMeeting {
        id: body["id"].as_str().unwrap().to_owned(),
        moderator_token: fragment("moderator_url"),
        studio_token: fragment("studio_url"),
    }
}

pub async fn start_meeting(base: &str, id: &str) {
    let res = http()
        .post(format!("{base}/api/meetings/{id}/start"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "start meeting");
}

pub async fn live_meeting(base: &str) -> TestMeeting {
    let m = create_meeting(base, "Borgermøde om den nye skole").await;
    start_meeting(base, &m.id).await;
    m
}

/// Lifts every rate limit, for tests that flood the server on purpose.
pub fn without_rate_limits(c: &mut Config) {
    let h = &mut c.hub;
    (h.frames_per_sec, h.frame_burst) = (100_000.0, 100_000);
    (h.commands_per_sec, h.command_burst) = (100_000.0, 100_000);
    (h.ip_commands_per_sec, h.ip_command_burst) = (100_000.0, 100_000);
}

/// Whether the frames include a `bye` with this code.
pub fn said_bye(frames: &[ServerMessage], code: &str) -> bool {
    frames
        .iter()
        .any(|f| matches!(f, ServerMessage::Bye { code: c, .. } if c == code))
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that folds what it receives into a `ClientView`.
pub struct Client {
    ws: Ws,
    pub view: ClientView,
    /// Every frame received, in order.
    pub received: Vec<ServerMessage>,
    pub participant: Option<String>,
    pub session: Option<String>,
    next_ref: u64,
}

impl Client {
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self::from_stream(ws)
    }

    /// Connects with a tiny receive buffer, so that the server's socket fills as soon as the
    /// client stops reading.
    pub async fn connect_slow_reader(server: &TestServer) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(server.addr).await.unwrap();
        let (ws, _) =
            tokio_tungstenite::client_async(server.ws_url(), MaybeTlsStream::Plain(stream))
                .await
                .unwrap();
        Self::from_stream(ws)
    }

    pub fn from_stream(ws: Ws) -> Self {
        Self {
            ws,
            view: ClientView::default(),
            received: Vec::new(),
            participant: None,
            session: None,
            next_ref: 1,
        }
    }

    /// Connects and joins; waits for the welcome and the snapshot or missed frames.
    pub async fn join(url: &str, meeting: &str, token: Option<&str>) -> Self {
        let mut c = Self::connect(url).await;
        c.hello(meeting, token, None, None).await;
        c
    }

    pub async fn hello(
        &mut self,
        meeting: &str,
        token: Option<&str>,
        since: Option<Offset>,
        session: Option<&str>,
    ) {
        let mut hello = json!({ "t": "hello", "meeting": meeting });
        if let Some(t) = token {
            hello["token"] = json!(t);
        }
        if let Some(s) = since {
            hello["since"] = json!(s);
        }
        if let Some(s) = session {
            hello["session"] = json!(s);
        }
        self.send_json(&hello).await;
        let welcome = self
            .next_where(|m| matches!(m, ServerMessage::Welcome { .. }))
            .await;
        if let ServerMessage::Welcome {
            participant,
            session,
            ..
        } = welcome
        {
            self.participant = Some(participant.to_string());
            self.session = Some(session);
        }
    }

    pub async fn send_json(&mut self, v: &Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_raw(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Sends a command and returns its `ref`.
    pub async fn send(&mut self, cmd: Command) -> u64 {
        let reference = self.next_ref;
        self.next_ref += 1;
        let frame = json!({ "t": "cmd", "ref": reference, "cmd": cmd });
        self.send_json(&frame).await;
        reference
    }

    /// Sends a command and waits for its ack (Ok(offset)) or error (Err(code)).
    pub async fn run(&mut self, cmd: Command) -> Result<Offset, String> {
        let r = self.send(cmd).await;
        self.reply_to(r).await
    }

    pub async fn reply_to(&mut self, r: u64) -> Result<Offset, String> {
        // Errors from the session (rate limits) can overtake acks from the room.
        let answered = self.received.iter().find_map(|m| match m {
            ServerMessage::Ack { reference, offset } if *reference == r => Some(Ok(*offset)),
            ServerMessage::Error {
                reference, code, ..
            } if *reference == Some(r) => Some(Err(code.clone())),
            _ => None,
        });
        if let Some(answer) = answered {
            return answer;
        }
        match self
            .next_where(|m| match m {
                ServerMessage::Ack { reference, .. } => *reference == r,
                ServerMessage::Error { reference, .. } => *reference == Some(r),
                _ => false,
            })
            .await
        {
            ServerMessage::Ack { offset, .. } => Ok(offset),
            ServerMessage::Error { code, .. } => Err(code),
            _ => unreachable!(),
        }
    }

    /// Receives one frame (or `None` when the connection closed), folding it into the view.
    pub async fn recv(&mut self) -> Option<ServerMessage> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match msg {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Text(t))) => {
                    let m: ServerMessage =
                        serde_json::from_str(&t).unwrap_or_else(|e| panic!("bad frame {t}: {e}"));
                    self.view.apply(&m);
                    self.received.push(m.clone());
                    return Some(m);
                }
                Some(Ok(Message::Close(_))) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Receives until a frame matches.
    pub async fn next_where(&mut self, pred: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            let m = self.recv().await.expect("connection closed while waiting");
            if pred(&m) {
                return m;
            }
        }
    }

    /// Receives until the view satisfies `pred` (and no snapshot is half received).
    pub async fn until(&mut self, pred: impl Fn(&ClientView) -> bool) {
        while self.view.snapshot_pending || !pred(&self.view) {
            self.recv().await.expect("connection closed while waiting");
        }
    }

    /// Receives until the connection closes; returns the frames seen.
    pub async fn until_closed(&mut self) -> Vec<ServerMessage> {
        let mut seen = Vec::new();
        while let Some(m) = self.recv().await {
            seen.push(m);
        }
        seen
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Offsets of the `event` frames received, in order.
    pub fn event_offsets(&self) -> Vec<Offset> {
        self.received
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Event(e) => Some(e.offset),
                _ => None,
            })
            .collect()
    }
}

/// The real binary, for tests that kill the process.
pub struct Process {
    pub child: std::process::Child,
    pub base: String,
    pub addr: String,
}

impl Process {
    pub fn spawn(data_dir: &Path) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_townhall"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args([
                "--media-bind-ip",
                "127.0.0.1",
                "--media-udp-port",
                "0",
                "--media-tcp-port",
                "0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("TOWNHALL_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("TOWNHALL_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        // Keep reading so the server never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let base = line
            .trim()
            .strip_prefix("townhall listening on ")
            .expect("first line names the address")
            .to_owned();
        let addr = base.trim_start_matches("http://").to_owned();
        Self { child, base, addr }
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill(); // SIGKILL on unix
        let _ = self.child.wait();
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
