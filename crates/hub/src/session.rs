//! One WebSocket connection: handshake, reading and rate-limiting client frames, and writing
//! the room's frames in batches (one flush per wake-up, not per frame).

use crate::room::{Join, JoinError, Kick, Lagged, Outbox, RoomMsg, SessionId};
use crate::{Hub, HubError, RoomHandle, TokenBucket};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, timeout};
use townhall_core::wire::{ClientMessage, ServerMessage};
use townhall_core::{MeetingId, Offset, ParticipantId};
use tracing::{Instrument, debug, info_span, warn};

/// Who is on the other end, as the server established it from the HTTP request.
#[derive(Clone, Debug)]
pub struct Identity {
    /// From the signed session cookie, or fresh.
    pub participant: ParticipantId,
    pub ip: IpAddr,
}

/// WebSocket close code for a policy violation (RFC 6455).
const CLOSE_POLICY: u16 = 1008;
/// Frames a writer takes from its outbox per flush.
const WRITE_BATCH: usize = 256;

fn frame(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(msg).expect("wire types always serialise"))
}

async fn bye_and_close(sink: &mut SplitSink<WebSocket, Message>, code: &str, message: &str) {
    let _ = sink
        .feed(Message::Text(frame(&ServerMessage::error(
            None, code, message,
        ))))
        .await;
    let _ = sink
        .feed(Message::Text(frame(&ServerMessage::Bye {
            code: code.into(),
            message: message.into(),
        })))
        .await;
    let close = CloseFrame {
        code: CLOSE_POLICY,
        reason: Utf8Bytes::from(code.to_owned()),
    };
    let _ = sink.send(Message::Close(Some(close))).await;
}

struct Hello {
    meeting: MeetingId,
    since: Option<Offset>,
    token: Option<String>,
    session: Option<String>,
}

/// Serves one WebSocket until it closes.
pub async fn serve(hub: Arc<Hub>, socket: WebSocket, identity: Identity) {
    let session_id = hub.next_session_id();
    let span = info_span!("session", session_id);
    serve_inner(hub, socket, identity, session_id)
        .instrument(span)
        .await
}

async fn serve_inner(hub: Arc<Hub>, socket: WebSocket, identity: Identity, session_id: SessionId) {
    let (mut sink, mut stream) = socket.split();
    if !hub.admit_ip(identity.ip) {
        hub.metrics
            .rejections
            .with_label_values(&["too_many_connections"])
            .inc();
        bye_and_close(
            &mut sink,
            "too_many_connections",
            "too many connections from your network",
        )
        .await;
        return;
    }
    hub.metrics.connections.inc();
    let _guard = ConnectionGuard {
        hub: hub.clone(),
        ip: identity.ip,
    };

    let hello = match read_hello(&hub, &mut stream).await {
        Ok(h) => h,
        Err((code, message)) => {
            if code != "closed" {
                hub.metrics.rejections.with_label_values(&[code]).inc();
            }
            bye_and_close(&mut sink, code, &message).await;
            return;
        }
    };
    // A client without cookies proves an earlier identity with the signed session token.
    let participant = hello
        .session
        .as_deref()
        .and_then(|s| hub.session_key.verify(s))
        .unwrap_or(identity.participant);
    let (tx, rx) = mpsc::channel(hub.config.outbox_frames);
    let lagged = Arc::new(Lagged::default());
    let (kick, kicked) = watch::channel(None);
    let kick = Arc::new(kick);
    let outbox = Outbox {
        tx: tx.clone(),
        lagged: lagged.clone(),
        kick: kick.clone(),
    };
    let session_token = hub.session_key.sign(&participant);
    // A room that has just stopped for being idle is loaded again: try a few times.
    let mut joined_room = None;
    for _ in 0..3 {
        let room = match hub.room(&hello.meeting).await {
            Ok(room) => room,
            Err(HubError::NoMeeting) => {
                bye_and_close(
                    &mut sink,
                    "no_meeting",
                    "there is no meeting with this link",
                )
                .await;
                return;
            }
            Err(HubError::Store(e)) => {
                warn!(error = %e, "could not load meeting");
                bye_and_close(
                    &mut sink,
                    "unavailable",
                    "the meeting cannot be loaded right now",
                )
                .await;
                return;
            }
        };
        let (reply, joined) = oneshot::channel();
        let join = Join {
            session: session_id,
            participant: participant.clone(),
            session_token: session_token.clone(),
            token: hello.token.clone(),
            since: hello.since,
            outbox: outbox.clone(),
            reply,
        };
        if !room.send(RoomMsg::Join(Box::new(join))).await {
            continue;
        }
        match joined.await {
            Ok(Ok(_role)) => {
                joined_room = Some(room);
                break;
            }
            Ok(Err(JoinError::BadToken)) => {
                hub.metrics
                    .rejections
                    .with_label_values(&["bad_token"])
                    .inc();
                bye_and_close(
                    &mut sink,
                    "bad_token",
                    "this moderator or studio link is not valid",
                )
                .await;
                return;
            }
            Ok(Err(JoinError::Banned)) => {
                bye_and_close(
                    &mut sink,
                    "banned",
                    "a moderator has removed you from this meeting",
                )
                .await;
                return;
            }
            Err(_) => continue,
        }
    }
    let Some(room) = joined_room else {
        bye_and_close(&mut sink, "unavailable", "the meeting closed; try again").await;
        return;
    };
    debug!(meeting_id = %hello.meeting, "joined");

    let writer = tokio::spawn(
        write_loop(
            sink,
            rx,
            lagged,
            kicked.clone(),
            room.clone(),
            session_id,
            hub.config.write_delay(),
        )
        .in_current_span(),
    );
    read_loop(
        &hub,
        &mut stream,
        &room,
        &tx,
        &outbox,
        kicked,
        session_id,
        identity.ip,
    )
    .await;
    let _ = room
        .send(RoomMsg::Leave {
            session: session_id,
        })
        .await;
    drop(tx);
    drop(outbox);
    // The writer ends when the room has dropped its end of the outbox too, or on a kick.
    if timeout(Duration::from_secs(5), writer).await.is_err() {
        debug!("writer did not finish in time");
    }
}

struct ConnectionGuard {
    hub: Arc<Hub>,
    ip: IpAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.hub.metrics.connections.dec();
        self.hub.release_ip(self.ip);
    }
}

/// Waits for the first frame, which must be `hello`.
async fn read_hello(
    hub: &Hub,
    stream: &mut SplitStream<WebSocket>,
) -> Result<Hello, (&'static str, String)> {
    let deadline = Duration::from_secs(hub.config.hello_timeout_secs);
    loop {
        let msg = match timeout(deadline, stream.next()).await {
            Err(_) => return Err(("not_joined", "send hello first".into())),
            Ok(None) | Ok(Some(Err(_))) => return Err(("closed", "connection closed".into())),
            Ok(Some(Ok(msg))) => msg,
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return Err(("closed", "connection closed".into())),
            Message::Binary(_) => {
                return Err(("malformed", "binary frames are not supported".into()));
            }
        };
        if text.len() > hub.config.max_frame_bytes {
            return Err((
                "frame_too_large",
                format!("frames are limited to {} bytes", hub.config.max_frame_bytes),
            ));
        }
        return match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Hello {
                meeting,
                since,
                token,
                session,
            }) => Ok(Hello {
                meeting,
                since,
                token,
                session,
            }),
            Ok(_) => Err(("not_joined", "send hello first".into())),
            Err(e) => Err(("malformed", malformed_message(&e))),
        };
    }
}

fn malformed_message(e: &serde_json::Error) -> String {
    let mut s = format!("malformed frame: {e}");
    s.truncate(300);
    s
}

/// Why a client frame was refused; sent back as an `error` frame.
struct Refusal {
    code: &'static str,
    message: String,
    retry: Option<Duration>,
    reference: Option<u64>,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry: None,
            reference: None,
        }
    }

    fn retry_after(mut self, wait: Duration) -> Self {
        self.retry = Some(wait);
        self
    }

    fn for_ref(mut self, reference: Option<u64>) -> Self {
        self.reference = reference;
        self
    }

    fn into_frame(self) -> ServerMessage {
        ServerMessage::Error {
            reference: self.reference,
            code: self.code.into(),
            message: self.message,
            retry_after_ms: self.retry.map(|d| d.as_millis() as u64 + 1),
        }
    }
}

/// What became of an accepted client frame.
enum Handled {
    /// Passed on to the room, which answers it.
    Forwarded,
    Ping,
    /// The room has stopped; the connection ends.
    RoomGone,
}

/// The checks one joined connection applies to its client's frames.
struct Reader<'a> {
    hub: &'a Hub,
    room: &'a RoomHandle,
    session: SessionId,
    ip: IpAddr,
    frames: TokenBucket,
    commands: TokenBucket,
}

impl Reader<'_> {
    /// Checks one text frame (`None` for a binary one) and passes a command on to the room.
    fn handle(&mut self, text: Option<&str>) -> Result<Handled, Refusal> {
        let max = self.hub.config.max_frame_bytes;
        let text =
            text.ok_or_else(|| Refusal::new("malformed", "binary frames are not supported"))?;
        if text.len() > max {
            return Err(Refusal::new(
                "frame_too_large",
                format!("frames are limited to {max} bytes"),
            ));
        }
        // Parsed before rate limiting, so a refused command still names its `ref`.
        let msg: ClientMessage = serde_json::from_str(text)
            .map_err(|e| Refusal::new("malformed", malformed_message(&e)))?;
        let reference = match &msg {
            ClientMessage::Cmd { reference, .. } => Some(*reference),
            _ => None,
        };
        self.frames.try_take(Instant::now()).map_err(|wait| {
            Refusal::new("rate_limited", "too many frames; slow down")
                .retry_after(wait)
                .for_ref(reference)
        })?;
        match msg {
            ClientMessage::Ping => Ok(Handled::Ping),
            ClientMessage::Hello { .. } => Err(Refusal::new(
                "already_joined",
                "this connection has already joined",
            )),
            ClientMessage::Cmd { reference, cmd } => {
                let limited = |wait| {
                    Refusal::new("rate_limited", "too many commands; slow down")
                        .retry_after(wait)
                        .for_ref(Some(reference))
                };
                self.commands.try_take(Instant::now()).map_err(limited)?;
                self.hub.take_ip_command(self.ip).map_err(limited)?;
                let command = RoomMsg::Command {
                    session: self.session,
                    reference,
                    command: cmd,
                };
                match self.room.tx.try_send(command) {
                    Ok(()) => Ok(Handled::Forwarded),
                    Err(mpsc::error::TrySendError::Full(_)) => Err(Refusal::new(
                        "overloaded",
                        "the meeting is very busy; try again",
                    )
                    .retry_after(Duration::from_secs(1))
                    .for_ref(Some(reference))),
                    Err(mpsc::error::TrySendError::Closed(_)) => Ok(Handled::RoomGone),
                }
            }
        }
    }
}

/// Reads client frames until the connection ends, is kicked, or misbehaves too long.
#[allow(clippy::too_many_arguments)]
async fn read_loop(
    hub: &Hub,
    stream: &mut SplitStream<WebSocket>,
    room: &RoomHandle,
    tx: &mpsc::Sender<Utf8Bytes>,
    outbox: &Outbox,
    mut kicked: watch::Receiver<Option<Kick>>,
    session: SessionId,
    ip: IpAddr,
) {
    let config = &hub.config;
    let now = Instant::now();
    let mut reader = Reader {
        hub,
        room,
        session,
        ip,
        frames: TokenBucket::new(config.frames_per_sec, config.frame_burst, now),
        commands: TokenBucket::new(config.commands_per_sec, config.command_burst, now),
    };
    let mut violations = 0u32;
    let idle = Duration::from_secs(config.idle_timeout_secs);
    // If the outbox is full the client is being resynced anyway; such a reply can go.
    let reply = |msg: ServerMessage| {
        let _ = tx.try_send(frame(&msg));
    };
    loop {
        let next = tokio::select! {
            _ = kicked.changed() => return,
            next = timeout(idle, stream.next()) => next,
        };
        let msg = match next {
            Err(_) => {
                debug!("idle timeout");
                outbox.kick("idle", "no frames for too long");
                return;
            }
            Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(msg))) => msg,
        };
        let text = match msg {
            Message::Text(t) => Some(t),
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => None,
        };
        match reader.handle(text.as_ref().map(Utf8Bytes::as_str)) {
            Ok(Handled::Forwarded) => violations = 0,
            Ok(Handled::Ping) => {
                violations = 0;
                reply(ServerMessage::Pong);
            }
            Ok(Handled::RoomGone) => return,
            Err(refusal) => {
                hub.metrics
                    .rejections
                    .with_label_values(&[refusal.code])
                    .inc();
                reply(refusal.into_frame());
                violations += 1;
                if violations >= config.max_violations {
                    warn!("closing connection after repeated refused frames");
                    outbox.kick("protocol_violation", "too many refused frames in a row");
                    return;
                }
            }
        }
    }
}

/// Whether a queued frame is a reply to a command; replies survive a resync.
fn is_reply(frame: &Utf8Bytes) -> bool {
    let s = frame.as_str();
    s.starts_with("{\"t\":\"ack\"") || s.starts_with("{\"t\":\"error\"")
}

/// Writes queued frames: everything available at one wake-up goes out with a single flush.
/// A kick ends the connection with a `bye`, even while a write is blocked on a client that
/// stopped reading.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Utf8Bytes>,
    lagged: Arc<Lagged>,
    mut kicked: watch::Receiver<Option<Kick>>,
    room: RoomHandle,
    session: SessionId,
    write_delay: Duration,
) {
    // Starts empty: `recv_many` reserves a small block, and most connections never need more.
    let mut batch = Vec::new();
    loop {
        let n = tokio::select! {
            biased;
            _ = kicked.changed() => break,
            n = rx.recv_many(&mut batch, WRITE_BATCH) => n,
            // Told to resync while nothing was queued: handled below with an empty batch.
            _ = lagged.wait() => usize::MAX,
        };
        if n == 0 {
            let _ = sink.close().await;
            return;
        }
        if !write_delay.is_zero() && !batch.is_empty() && batch.len() < WRITE_BATCH {
            // Let the frames of the same burst join this write: one syscall for all of them.
            tokio::select! {
                biased;
                _ = kicked.changed() => break,
                _ = tokio::time::sleep(write_delay) => {}
            }
            while batch.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(frame) => batch.push(frame),
                    Err(_) => break,
                }
            }
        }
        if lagged.is_set() {
            // What is queued has a gap; drop it (but not replies to commands) and ask for a
            // fresh snapshot. The room queues nothing more for us until it has answered.
            batch.retain(is_reply);
            while let Ok(frame) = rx.try_recv() {
                if is_reply(&frame) {
                    batch.push(frame);
                }
            }
            if !room.send(RoomMsg::Resync { session }).await {
                break;
            }
        }
        if batch.is_empty() {
            continue;
        }
        let written = tokio::select! {
            biased;
            _ = kicked.changed() => None,
            result = write_all(&mut sink, &mut batch) => Some(result),
        };
        match written {
            None => break,
            Some(Ok(())) => {}
            Some(Err(_)) => return,
        }
    }
    // Kicked: say why, but don't wait long for a client that may not be reading.
    let kick = kicked.borrow().clone();
    if let Some(kick) = kick {
        let bye = frame(&ServerMessage::Bye {
            code: kick.code.into(),
            message: kick.message,
        });
        let close = CloseFrame {
            code: 1000,
            reason: Utf8Bytes::from(kick.code.to_owned()),
        };
        let _ = timeout(Duration::from_secs(2), async {
            sink.feed(Message::Text(bye)).await?;
            sink.send(Message::Close(Some(close))).await
        })
        .await;
    }
}

async fn write_all(
    sink: &mut SplitSink<WebSocket, Message>,
    batch: &mut Vec<Utf8Bytes>,
) -> Result<(), axum::Error> {
    for frame in batch.drain(..) {
        sink.feed(Message::Text(frame)).await?;
    }
    sink.flush().await
}
