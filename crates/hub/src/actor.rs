//! The room's actor: the thin async loop around the sans-IO [`Room`].
//!
//! It takes everything queued in the room's channel at once, hands the commands to the room
//! as one batch, makes the room's append durable, and hands the outcome back; then it passes
//! on joins, leaves, resyncs and the rest, and wakes the room at its deadlines. All decisions
//! are the room's; the actor only does I/O (the channel, the event log, the timers, replies).

use crate::outbox::Kick;
use crate::room::{
    ApiTicket, Append, CommandError, Committed, Foreign, Join, JoinError, Origin, Pending, Room,
    SessionId,
};
use crate::{Clock, HubMetrics};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use townhall_core::{Actor, Command, MeetingId, Offset, Recorded, Role};
use townhall_store::feed::{self, FeedItem, Step};
use townhall_store::{EventLog, PresenceBoard, StoreError, Subscription};
use tracing::{debug, error, info, warn};

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
    /// The presence board's count over every node, reported when this node had `local`.
    OnlineTotal {
        total: u32,
        local: u32,
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

/// What a room's actor talks to besides its room.
#[derive(Clone, Debug)]
pub struct Services {
    pub log: Arc<dyn EventLog>,
    pub clock: Arc<dyn Clock>,
    pub presence: Arc<dyn PresenceBoard>,
    pub metrics: HubMetrics,
    pub max_batch: usize,
    pub presence_interval: Duration,
}

/// Starts the actor of `room` on `runtime`. `feed` brings the events other nodes commit
/// (subscribed before the room's state was read, so none falls between).
pub fn spawn(
    room: Room,
    feed: Option<Subscription>,
    services: Services,
    runtime: &tokio::runtime::Handle,
) -> RoomHandle {
    let (tx, rx) = mpsc::channel(ROOM_QUEUE);
    let span = tracing::info_span!("meeting", meeting_id = %room.id());
    let local = Arc::new(AtomicU32::new(0));
    let handle = RoomHandle { tx };
    let reporter = report_presence(
        room.id().clone(),
        services.presence.clone(),
        local.clone(),
        handle.clone(),
        services.presence_interval,
    );
    runtime.spawn(tracing::Instrument::instrument(reporter, span.clone()));
    let actor = RoomActor {
        room,
        feed,
        local,
        services,
        api: HashMap::new(),
        next_ticket: 0,
    };
    runtime.spawn(tracing::Instrument::instrument(actor.run(rx), span));
    handle
}

/// Tells the presence board how many sessions this node has, every presence interval, and
/// the room how many there are over all nodes; withdraws this node when the room stops.
async fn report_presence(
    meeting: MeetingId,
    board: Arc<dyn PresenceBoard>,
    local: Arc<AtomicU32>,
    room: RoomHandle,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if room.is_closed() {
            break;
        }
        let now = local.load(Ordering::Relaxed);
        match board.report(&meeting, now).await {
            Ok(total) => {
                let msg = RoomMsg::OnlineTotal { total, local: now };
                if room.try_send(msg).is_err() && room.is_closed() {
                    break;
                }
            }
            Err(e) => debug!(error = %e, "presence not reported"),
        }
    }
    let _ = board.report(&meeting, 0).await;
}

struct RoomActor {
    room: Room,
    feed: Option<Subscription>,
    /// This node's sessions, for the presence reporter.
    local: Arc<AtomicU32>,
    services: Services,
    api: HashMap<ApiTicket, oneshot::Sender<Result<Offset, CommandError>>>,
    next_ticket: u64,
}

impl RoomActor {
    async fn run(mut self, mut rx: mpsc::Receiver<RoomMsg>) {
        let id = self.room.id().clone();
        info!(meeting_id = %id, offset = self.room.meeting().offset, "room started");
        self.services.metrics.rooms.inc();
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
                item = next_item(&mut self.feed) => {
                    match item {
                        Some(item) => self.follow(item).await,
                        None => {
                            warn!(meeting_id = %id, "the log's feed ended; other nodes' events arrive only with conflicts now");
                            self.feed = None;
                        }
                    }
                    self.room.end_turn(Instant::now());
                }
                n = rx.recv_many(&mut batch, self.services.max_batch) => {
                    if n == 0 {
                        break;
                    }
                    self.handle(&mut batch).await;
                    self.room.end_turn(Instant::now());
                    self.local.store(self.room.sessions() as u32, Ordering::Relaxed);
                    if self.room.is_closed() {
                        break;
                    }
                }
            }
        }
        self.services.metrics.rooms.dec();
        info!(meeting_id = %id, offset = self.room.meeting().offset, "room stopped");
    }

    /// Applies what another node committed, reading from the log what the feed skipped.
    async fn follow(&mut self, item: FeedItem) {
        let applied = self.room.meeting().offset;
        let events: Vec<Recorded> = match item {
            FeedItem::CatchUp => match self.read_after(applied, Offset::MAX).await {
                Some(events) => events,
                None => return,
            },
            FeedItem::Committed(batch) => match feed::next_step(applied, &batch) {
                Step::Duplicate => return,
                Step::Apply { skip } => batch.events.into_iter().skip(skip).collect(),
                Step::Fill { after, through } => {
                    let Some(mut events) = self.read_after(after, through).await else {
                        return;
                    };
                    events.extend(batch.events);
                    events
                }
            },
        };
        match self.room.apply_foreign(events) {
            Foreign::Applied | Foreign::Duplicate => {}
            Foreign::Gap { after } => {
                // Still a hole (the log was read before the other node's commit landed):
                // read everything after it.
                if let Some(events) = self.read_after(after, Offset::MAX).await {
                    self.room.apply_foreign(events);
                }
            }
        }
    }

    /// A client resuming here may have seen commits this room has not applied yet: it was on
    /// another node, and this room's feed is a moment behind (or, without a feed, learns only
    /// from the log). Read up to its offset first, so it resumes exactly rather than from a
    /// snapshot older than what it already shows.
    async fn catch_up_to(&mut self, since: Option<Offset>) {
        let applied = self.room.meeting().offset;
        let Some(since) = since.filter(|&s| s > applied) else {
            return;
        };
        if let Some(events) = self.read_after(applied, since).await {
            self.room.apply_foreign(events);
        }
    }

    async fn read_after(&self, after: Offset, through: Offset) -> Option<Vec<Recorded>> {
        match read_after(self.services.log.as_ref(), self.room.id(), after, through).await {
            Ok(events) => Some(events),
            Err(e) => {
                warn!(meeting_id = %self.room.id(), error = %e, "cannot read the log to catch up; the next commit will");
                None
            }
        }
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
            let mut append = self.room.decide(commands, self.services.clock.now());
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
                    self.catch_up_to(join.since).await;
                    let _ = reply.send(self.room.join(*join));
                }
                RoomMsg::Leave { session } => self.room.leave(session, Instant::now()),
                RoomMsg::Resync { session } => self.room.resync(session),
                RoomMsg::SetTokenHashes { moderator, studio } => {
                    self.room.set_token_hashes(moderator, studio)
                }
                RoomMsg::OnlineTotal { total, local } => self.room.set_online_total(total, local),
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
        let log = self.services.log.as_ref();
        match log.append(id, append.base, &append.events).await {
            Ok(_) => {
                self.services
                    .metrics
                    .append_seconds
                    .observe(started.elapsed().as_secs_f64());
                Committed::Durable
            }
            Err(StoreError::Conflict { actual, .. }) => {
                // Routine with several nodes on one meeting: counted, logged at debug only.
                self.services.metrics.conflict_retries.inc();
                debug!(meeting_id = %id, expected = append.base, actual, "log moved on; deciding the batch again");
                match read_after(log, id, append.base, actual).await {
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

async fn next_item(feed: &mut Option<Subscription>) -> Option<FeedItem> {
    match feed {
        Some(feed) => feed.recv().await,
        None => std::future::pending().await,
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
