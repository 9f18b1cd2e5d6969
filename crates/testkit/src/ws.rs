//! A WebSocket client of the meeting protocol that folds what it receives into a `ClientView`.

use crate::{TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use townhall_core::client::ClientView;
use townhall_core::wire::ServerMessage;
use townhall_core::{Command, Offset};

/// Whether the frames include a `bye` with this code.
pub fn said_bye(frames: &[ServerMessage], code: &str) -> bool {
    frames
        .iter()
        .any(|f| matches!(f, ServerMessage::Bye { code: c, .. } if c == code))
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that folds what it receives into a `ClientView`. Its waits panic after
/// [`WAIT`], so a test never hangs.
#[derive(Debug)]
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

    /// Connects, or `None` when nothing accepts at `url` (a node that was killed).
    pub async fn try_connect(url: &str) -> Option<Self> {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .ok()?
            .ok()?;
        Some(Self::from_stream(ws))
    }

    /// Connects from the local address `from` (any of 127.0.0.0/8 on loopback) with extra
    /// request headers (`X-Forwarded-For`, say).
    pub async fn connect_from(server: SocketAddr, from: IpAddr, headers: &[(&str, &str)]) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        let stream = socket.connect(server).await.unwrap();
        let mut request = format!("ws://{server}/ws").into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
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

    /// Sends a citizen's `hello` and waits for `welcome` (`Ok`) or `bye` (`Err` with its code,
    /// or `closed`). A connection the server refuses at once may already be closing, so the
    /// `hello` itself may fail to send.
    pub async fn try_join(&mut self, meeting: &str) -> Result<(), String> {
        let hello = json!({ "t": "hello", "meeting": meeting });
        let _ = self.ws.send(Message::text(hello.to_string())).await;
        loop {
            match self.recv().await {
                None => return Err("closed".into()),
                Some(ServerMessage::Welcome {
                    participant,
                    session,
                    ..
                }) => {
                    self.participant = Some(participant.to_string());
                    self.session = Some(session);
                    return Ok(());
                }
                Some(ServerMessage::Bye { code, .. }) => return Err(code),
                Some(_) => {}
            }
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

    /// Sends a command and returns its `ref`, or `None` when the connection is gone.
    pub async fn send_or_lost(&mut self, cmd: Command) -> Option<u64> {
        let reference = self.next_ref;
        self.next_ref += 1;
        let frame = json!({ "t": "cmd", "ref": reference, "cmd": cmd });
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .ok()
            .map(|()| reference)
    }

    /// Sends a command and waits for its ack (Ok(offset)) or error (Err(code)).
    pub async fn run(&mut self, cmd: Command) -> Result<Offset, String> {
        let r = self.send(cmd).await;
        self.reply_to(r).await
    }

    /// The answer to command `r`: `Some(Ok(offset))` for its ack, `Some(Err(code))` for its
    /// error, `None` when the connection closed first (the outcome is unknown).
    pub async fn try_reply_to(&mut self, r: u64) -> Option<Result<Offset, String>> {
        let answer = |m: &ServerMessage| match m {
            ServerMessage::Ack { reference, offset } if *reference == r => Some(Ok(*offset)),
            ServerMessage::Error {
                reference, code, ..
            } if *reference == Some(r) => Some(Err(code.clone())),
            _ => None,
        };
        if let Some(a) = self.received.iter().rev().find_map(answer) {
            return Some(a);
        }
        loop {
            let m = self.recv().await?;
            if let Some(a) = answer(&m) {
                return Some(a);
            }
        }
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
