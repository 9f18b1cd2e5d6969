//! The room's actor: the thin async loop around the sans-IO [`Room`].
//!
//! It takes everything queued in the room's channel at once, hands the commands to the room
//! as one batch, makes the room's append durable, and hands the outcome back; then it passes
//! on joins, leaves, resyncs and the rest, and wakes the room at its deadlines. All decisions
//! are the room's; the actor only does I/O (the channel, the event log, the timers, replies).

use crate::outbox::Kick;
use crate::room::{
    ApiTicket, Append, CommandError, Committed, Join, JoinError, Origin, Pending, Room, SessionId,
};
use crate::{Clock, HubMetrics};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use townhall_core::{Actor, Command, MeetingId, Offset, Role};
use townhall_store::{EventLog, StoreError};
use tracing::{error, info, warn};

/// Messages a room's actor takes.
#[derive(Debug)]
pub enum RoomMsg {
    Join {
        join: Box<Join>,
        reply: oneshot::Sender<Result<Role, JoinError>>,
    },
    Leave {
        session: SessionId,
    },
    Command {
        session: SessionId,
        reference: u64,
        command: Command,
    },
    /// From the organizer API; answered when durable.
    Api {
        actor: Actor,
        command: Command,
        reply: oneshot::Sender<Result<Offset, CommandError>>,
    },
    /// The session's writer drained after falling behind and wants a fresh snapshot.
    Resync {
        session: SessionId,
    },
    /// New secret links were issued.
    SetTokenHashes {
        moderator: String,
        studio: String,
    },
    /// Say goodbye to every session and stop (meeting deleted, node shutting down).
    Close {
        kick: Kick,
        /// Told once every session has been kicked.
        done: Option<oneshot::Sender<()>>,
    },
}

/// A handle to a running room.
#[derive(Clone, Debug)]
pub struct RoomHandle {
    tx: mpsc::Sender<RoomMsg>,
}

/// Messages a room's channel holds before senders are told the room is busy.
pub const ROOM_QUEUE: usize = 8192;

impl RoomHandle {
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Sends a message, waiting for room in the channel; `false` if the room has stopped.
    pub async fn send(&self, msg: RoomMsg) -> bool {
        self.tx.send(msg).await.is_ok()
    }

    /// Sends without waiting: a full channel gives the message back.
    pub fn try_send(&self, msg: RoomMsg) -> Result<(), mpsc::error::TrySendError<RoomMsg>> {
        self.tx.try_send(msg)
    }

    /// Closes the room: every session gets `bye` with the kick; returns once all were kicked.
    pub async fn close(&self, kick: Kick) {
        let (done, kicked) = oneshot::channel();
        if self
            .tx
            .send(RoomMsg::Close {
                kick,
                done: Some(done),
            })
            .await
            .is_ok()
        {
            let _ = kicked.await;
        }
    }
}

/// Starts the actor of `room` on `runtime`.
pub fn spawn(
    room: Room,
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    metrics: HubMetrics,
    max_batch: usize,
    runtime: &tokio::runtime::Handle,
) -> RoomHandle {
    let (tx, rx) = mpsc::channel(ROOM_QUEUE);
    let span = tracing::info_span!("meeting", meeting_id = %room.id());
    let actor = RoomActor {
        room,
        log,
        clock,
        metrics,
        max_batch: max_batch.max(1),
        api: HashMap::new(),
        next_ticket: 0,
    };
    runtime.spawn(tracing::Instrument::instrument(actor.run(rx), span));
    RoomHandle { tx }
}

struct RoomActor {
    room: Room,
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    metrics: HubMetrics,
    max_batch: usize,
    api: HashMap<ApiTicket, oneshot::Sender<Result<Offset, CommandError>>>,
    next_ticket: u64,
}

impl RoomActor {
    async fn run(mut self, mut rx: mpsc::Receiver<RoomMsg>) {
        let id = self.room.id().clone();
        info!(meeting_id = %id, offset = self.room.meeting().offset, "room started");
        self.metrics.rooms.inc();
        let mut batch = Vec::with_capacity(64);
        loop {
            let deadline = self.room.poll_timeout();
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    self.room.handle_timeout(now);
                    if self.room.idle_expired(now) {
                        break;
                    }
                }
                n = rx.recv_many(&mut batch, self.max_batch) => {
                    if n == 0 {
                        break;
                    }
                    self.handle(&mut batch).await;
                    if self.room.is_closed() {
                        break;
                    }
                }
            }
        }
        self.metrics.rooms.dec();
        info!(meeting_id = %id, offset = self.room.meeting().offset, "room stopped");
    }

    /// One turn: decide and commit all commands of the batch, then the rest in order.
    async fn handle(&mut self, batch: &mut Vec<RoomMsg>) {
        let mut commands = Vec::new();
        let mut control = Vec::new();
        for msg in batch.drain(..) {
            match msg {
                RoomMsg::Command {
                    session,
                    reference,
                    command,
                } => commands.push(Pending {
                    origin: Origin::Session { session, reference },
                    actor: None,
                    command,
                }),
                RoomMsg::Api {
                    actor,
                    command,
                    reply,
                } => {
                    let ticket = ApiTicket(self.next_ticket);
                    self.next_ticket += 1;
                    self.api.insert(ticket, reply);
                    commands.push(Pending {
                        origin: Origin::Api(ticket),
                        actor: Some(actor),
                        command,
                    });
                }
                other => control.push(other),
            }
        }
        if !commands.is_empty() {
            let mut append = self.room.decide(commands, self.clock.now());
            while let Some(a) = append {
                let outcome = self.append(a).await;
                append = self.room.committed(outcome);
            }
            for (ticket, result) in self.room.take_api_replies() {
                if let Some(reply) = self.api.remove(&ticket) {
                    let _ = reply.send(result);
                }
            }
        }
        for msg in control {
            match msg {
                RoomMsg::Join { join, reply } => {
                    let _ = reply.send(self.room.join(*join));
                }
                RoomMsg::Leave { session } => self.room.leave(session, Instant::now()),
                RoomMsg::Resync { session } => self.room.resync(session),
                RoomMsg::SetTokenHashes { moderator, studio } => {
                    self.room.set_token_hashes(moderator, studio)
                }
                RoomMsg::Close { kick, done } => {
                    self.room.close(kick);
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
                RoomMsg::Command { .. } | RoomMsg::Api { .. } => {
                    unreachable!("commands were split off")
                }
            }
        }
    }

    /// Makes an append durable and says what became of it; on a conflict reads the other
    /// writer's events so the room can catch up and decide again.
    async fn append(&self, append: Append) -> Committed {
        let id = self.room.id();
        let started = Instant::now();
        match self.log.append(id, append.base, &append.events).await {
            Ok(_) => {
                self.metrics
                    .append_seconds
                    .observe(started.elapsed().as_secs_f64());
                Committed::Durable
            }
            Err(StoreError::Conflict { actual, .. }) => {
                warn!(meeting_id = %id, expected = append.base, actual, "log moved on; deciding the batch again");
                match read_after(self.log.as_ref(), id, append.base, actual).await {
                    Ok(missed) => Committed::Conflict { missed },
                    Err(e) => Committed::Failed(e.to_string()),
                }
            }
            Err(e) => {
                error!(meeting_id = %id, error = %e, "append failed; commands not acknowledged");
                Committed::Failed(e.to_string())
            }
        }
    }
}

/// Reads the events after `after` up to `until` (inclusive).
async fn read_after(
    log: &dyn EventLog,
    id: &MeetingId,
    after: Offset,
    until: Offset,
) -> Result<Vec<townhall_core::Recorded>, StoreError> {
    let mut events = Vec::new();
    let mut next = after;
    while next < until {
        let page = log.read(id, next, 1024).await?;
        let Some(last) = page.last() else { break };
        next = last.offset;
        events.extend(page);
    }
    Ok(events)
}
