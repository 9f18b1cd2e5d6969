//! One WebSocket connection: the I/O around [`Inbound`] (what the client may send) and the
//! session's [`Outbox`] (what the room sends it).
//!
//! The reader passes each client frame through `Inbound` and does what the verdict says; the
//! writer takes what the room queued and writes it with one flush per batch. A kick (ban,
//! deletion, shutdown, abuse, too slow) ends both, even while a write is blocked on a client
//! that stopped reading.

use crate::actor::{RoomHandle, RoomMsg};
use crate::inbound::{Hello, Inbound, Incoming, Verdict};
use crate::outbox::{Kick, Next, Outbox, Outgoing};
use crate::room::{Join, JoinError, SessionId};
use crate::{Hub, HubError};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::{Instant, sleep_until, timeout};
use townhall_core::ParticipantId;
use townhall_core::wire::ServerMessage;
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
/// How long a goodbye may take on a client that is not reading.
const BYE_TIMEOUT: Duration = Duration::from_secs(2);

fn frame(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(msg).expect("wire types always serialise"))
}

/// Says why and closes, not waiting long for a client that may not be reading.
async fn bye_and_close(sink: &mut SplitSink<WebSocket, Message>, kick: &Kick, close_code: u16) {
    let bye = frame(&ServerMessage::Bye {
        code: kick.code.into(),
        message: kick.message.clone(),
    });
    let close = CloseFrame {
        code: close_code,
        reason: Utf8Bytes::from(kick.code.to_owned()),
    };
    let _ = timeout(BYE_TIMEOUT, async {
        sink.feed(Message::Text(bye)).await?;
        sink.send(Message::Close(Some(close))).await
    })
    .await;
}

/// Refuses a connection before it joined: an `error` (for clients that only read errors) and
/// a `bye`.
async fn refuse(hub: &Hub, sink: &mut SplitSink<WebSocket, Message>, kick: Kick) {
    if kick.code != "closed" {
        hub.metrics.rejections.with_label_values(&[kick.code]).inc();
    }
    let error = frame(&ServerMessage::error(None, kick.code, kick.message.clone()));
    let _ = timeout(BYE_TIMEOUT, sink.feed(Message::Text(error))).await;
    bye_and_close(sink, &kick, CLOSE_POLICY).await;
}

/// Serves one WebSocket until it closes.
pub async fn serve(hub: Arc<Hub>, socket: WebSocket, identity: Identity) {
    let session_id = hub.next_session_id();
    let span = info_span!("session", session_id);
    serve_inner(hub, socket, identity, session_id)
        .instrument(span)
        .await
}

async fn serve_inner(hub: Arc<Hub>, socket: WebSocket, identity: Identity, session: SessionId) {
    let (mut sink, mut stream) = socket.split();
    if !hub.admit_ip(identity.ip) {
        let kick = Kick::new(
            "too_many_connections",
            "too many connections from your network",
        );
        refuse(&hub, &mut sink, kick).await;
        return;
    }
    hub.metrics.connections.inc();
    let _guard = ConnectionGuard {
        hub: hub.clone(),
        ip: identity.ip,
    };
    let mut inbound = Inbound::new(&hub.config, Instant::now());
    let hello = match read_hello(&hub, &mut stream, &mut inbound, identity.ip).await {
        Ok(hello) => hello,
        Err(kick) => {
            refuse(&hub, &mut sink, kick).await;
            return;
        }
    };
    // A client without cookies proves an earlier identity with the signed session token.
    let participant = hello
        .session
        .as_deref()
        .and_then(|s| hub.session_key.verify(s))
        .unwrap_or(identity.participant);
    let outbox = Arc::new(Outbox::new(hub.config.outbox_frames));
    let session_token = hub.session_key.sign(&participant);
    let joined = hub
        .ask_room(&hello.meeting, |reply| RoomMsg::Join {
            join: Box::new(Join {
                session,
                participant: participant.clone(),
                session_token: session_token.clone(),
                token: hello.token.clone(),
                since: hello.since,
                address: Some(identity.ip),
                outbox: outbox.clone(),
            }),
            reply,
        })
        .await;
    let room = match joined {
        Ok((room, Ok(_role))) => room,
        Ok((_, Err(JoinError::BadToken))) => {
            let kick = Kick::new("bad_token", "this moderator or studio link is not valid");
            refuse(&hub, &mut sink, kick).await;
            return;
        }
        Ok((_, Err(JoinError::Banned))) => {
            let kick = Kick::new("banned", "a moderator has removed you from this meeting");
            refuse(&hub, &mut sink, kick).await;
            return;
        }
        Err(HubError::NoMeeting) => {
            let kick = Kick::new("no_meeting", "there is no meeting with this link");
            refuse(&hub, &mut sink, kick).await;
            return;
        }
        Err(e) => {
            warn!(error = %e, "could not join meeting");
            let kick = Kick::new("unavailable", "the meeting cannot be loaded right now");
            refuse(&hub, &mut sink, kick).await;
            return;
        }
    };
    inbound.joined(Instant::now());
    debug!(meeting_id = %hello.meeting, "joined");

    let writer =
        tokio::spawn(write_loop(sink, outbox.clone(), room.clone(), session).in_current_span());
    read_loop(
        &hub,
        &mut stream,
        &room,
        &outbox,
        inbound,
        session,
        identity.ip,
    )
    .await;
    let _ = room.send(RoomMsg::Leave { session }).await;
    // The writer ends once the room has let the session go (and it wrote the rest), or on a
    // kick; a room that is gone has kicked it on the way.
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

fn incoming(msg: &Message) -> Option<Incoming<'_>> {
    match msg {
        Message::Text(t) => Some(Incoming::Text(t.as_str())),
        Message::Binary(_) => Some(Incoming::Binary),
        Message::Ping(_) | Message::Pong(_) => Some(Incoming::Control),
        Message::Close(_) => None,
    }
}

/// Reads until the client's `hello`, within the one deadline of the handshake.
async fn read_hello(
    hub: &Hub,
    stream: &mut SplitStream<WebSocket>,
    inbound: &mut Inbound,
    ip: IpAddr,
) -> Result<Hello, Kick> {
    let closed = || Kick::new("closed", "connection closed");
    loop {
        let msg = tokio::select! {
            _ = sleep_until(inbound.deadline()) => return Err(inbound.on_deadline()),
            msg = stream.next() => msg,
        };
        let msg = match msg {
            None | Some(Err(_)) => return Err(closed()),
            Some(Ok(msg)) => msg,
        };
        let Some(frame) = incoming(&msg) else {
            return Err(closed());
        };
        match inbound.on_frame(frame, Instant::now(), || hub.take_ip_command(ip)) {
            Verdict::Join(hello) => return Ok(hello),
            Verdict::Close(kick) => return Err(kick),
            Verdict::Ignore => {}
            // Before joining every refusal closes; nothing else is answered.
            Verdict::Reply(_) | Verdict::Command { .. } => {}
        }
    }
}

/// Reads client frames until the connection ends, is kicked, or misbehaves too long.
async fn read_loop(
    hub: &Hub,
    stream: &mut SplitStream<WebSocket>,
    room: &RoomHandle,
    outbox: &Outbox,
    mut inbound: Inbound,
    session: SessionId,
    ip: IpAddr,
) {
    let mut kicked = outbox.watch_kick();
    loop {
        let msg = tokio::select! {
            _ = kicked.changed() => return,
            _ = sleep_until(inbound.deadline()) => {
                debug!("idle timeout");
                outbox.kick(inbound.on_deadline());
                return;
            }
            msg = stream.next() => msg,
        };
        let msg = match msg {
            None | Some(Err(_)) => return,
            Some(Ok(msg)) => msg,
        };
        let Some(incoming) = incoming(&msg) else {
            return;
        };
        let verdict = inbound.on_frame(incoming, Instant::now(), || hub.take_ip_command(ip));
        let verdict = match verdict {
            Verdict::Command { reference, command } => {
                let msg = RoomMsg::Command {
                    session,
                    reference,
                    command,
                };
                match room.try_send(msg) {
                    Ok(()) => continue,
                    Err(TrySendError::Full(_)) => inbound.overloaded(reference),
                    Err(TrySendError::Closed(_)) => return,
                }
            }
            other => other,
        };
        match verdict {
            Verdict::Reply(reply) => {
                if let ServerMessage::Error { code, .. } = &reply {
                    hub.metrics.rejections.with_label_values(&[code]).inc();
                }
                outbox.push(Outgoing::Reply(frame(&reply)));
            }
            Verdict::Close(kick) => {
                hub.metrics.rejections.with_label_values(&[kick.code]).inc();
                warn!(code = kick.code, "closing connection");
                outbox.kick(kick);
                return;
            }
            Verdict::Ignore => {}
            Verdict::Join(_) | Verdict::Command { .. } => {
                unreachable!("a joined connection's hello is refused; commands were sent")
            }
        }
    }
}

/// Writes what the room queued: everything available at one wake-up goes out with a single
/// flush. A kick ends the connection with a `bye`, even while a write is blocked on a client
/// that stopped reading.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    room: RoomHandle,
    session: SessionId,
) {
    let mut kicked = outbox.watch_kick();
    // Starts empty: most connections never need a large batch.
    let mut batch = Vec::new();
    loop {
        match outbox.next(&mut batch, WRITE_BATCH).await {
            Next::Write => {}
            Next::Resync => {
                if !room.send(RoomMsg::Resync { session }).await {
                    break;
                }
                continue;
            }
            Next::Kicked(kick) => {
                bye_and_close(&mut sink, &kick, 1000).await;
                return;
            }
            Next::Closed => {
                let _ = timeout(BYE_TIMEOUT, sink.close()).await;
                return;
            }
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
    if let Some(kick) = outbox.kicked() {
        bye_and_close(&mut sink, &kick, 1000).await;
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
