//! The room actor: one task per loaded meeting on this node.
//!
//! It owns the meeting's state, decides the commands that arrive during one turn together,
//! appends their events in one batch (group commit), and only then acknowledges them and fans
//! out the frames. Each frame is serialised once and the bytes are shared by every session in
//! its audience. Sessions that cannot keep up are marked lagging, skipped, and resynced with a
//! fresh snapshot when they drain, so one slow client never stalls the room.

use crate::history::{Frame, History};
use crate::{Clock, HubConfig, HubMetrics};
use axum::extract::ws::Utf8Bytes;
use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior, interval};
use townhall_core::fanout::{self, Audience, Update};
use townhall_core::view::{Snapshot, Viewer};
use townhall_core::wire::{PROTOCOL_VERSION, ServerMessage};
use townhall_core::{
    Actor, Command, Event, Meeting, MeetingId, Offset, ParticipantId, PollId, QuestionId, Recorded,
    Rejection, Role,
};
use townhall_store::{EventLog, MeetingRecord, StoreError};
use tracing::{debug, error, info, warn};

pub type SessionId = u64;

/// Why the server ends a connection: sent to the client as `bye`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kick {
    pub code: &'static str,
    pub message: String,
}

/// The room's end of one session: its bounded outgoing queue and its controls.
#[derive(Clone, Debug)]
pub struct Outbox {
    pub tx: mpsc::Sender<Utf8Bytes>,
    /// Set by the room when the queue overflowed: the writer drops what is queued and asks for
    /// a resync.
    pub lagged: Arc<Lagged>,
    /// Ends the connection whatever is queued (ban, deletion, shutdown, new links); works even
    /// when the queue is full or the client has stopped reading.
    pub kick: Arc<watch::Sender<Option<Kick>>>,
}

/// Set by the room when a session's queue overflowed. It also wakes the session's writer: the
/// writer may have emptied the queue just before the flag was set (the room runs on its own
/// thread), and would otherwise wait forever for a frame the room no longer sends it.
#[derive(Debug, Default)]
pub struct Lagged {
    flag: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Lagged {
    pub fn set(&self) {
        self.flag.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn clear(&self) {
        self.flag.store(false, Ordering::Release);
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Returns once `set` was called (at once if it was called since the last wait).
    pub async fn wait(&self) {
        self.wake.notified().await;
    }
}

impl Outbox {
    pub fn kick(&self, code: &'static str, message: impl Into<String>) {
        self.kick.send_replace(Some(Kick {
            code,
            message: message.into(),
        }));
    }
}

/// Replies kept for a lagging session until its resync, as a share of its queue (the rest of
/// the queue holds the resync notice, the snapshot parts and presence).
const DEFERRED_SHARE: usize = 4;

/// Why a session could not join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinError {
    BadToken,
    Banned,
}

/// Why an API command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Rejected(Rejection),
    #[error("no such meeting")]
    NoMeeting,
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug)]
pub struct Join {
    pub session: SessionId,
    pub participant: ParticipantId,
    pub session_token: String,
    pub token: Option<String>,
    pub since: Option<Offset>,
    pub outbox: Outbox,
    pub reply: oneshot::Sender<Result<Role, JoinError>>,
}

#[derive(Debug)]
pub enum RoomMsg {
    Join(Box<Join>),
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
        code: &'static str,
        message: String,
        /// Told once every session has been kicked.
        done: Option<oneshot::Sender<()>>,
    },
}

#[derive(Debug)]
struct Slot {
    id: SessionId,
    viewer: Viewer,
    outbox: Outbox,
    lagging: bool,
    /// Acks and errors that arrived while lagging; sent after the resync snapshot.
    deferred: Vec<Utf8Bytes>,
}

enum ReplyTo {
    Session(SessionId, u64),
    Api(oneshot::Sender<Result<Offset, CommandError>>),
}

pub struct Room {
    meeting: Meeting,
    record: MeetingRecord,
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    config: Arc<HubConfig>,
    metrics: HubMetrics,
    slots: Vec<Slot>,
    index: HashMap<SessionId, usize>,
    by_participant: HashMap<ParticipantId, Vec<SessionId>>,
    history: History,
    dirty_tallies: BTreeSet<QuestionId>,
    dirty_polls: BTreeSet<PollId>,
    presence_sent: Option<u32>,
    /// Tallies of all public questions and counts of all polls at an offset, serialised once
    /// for resuming sessions.
    all_tallies: Option<(Offset, Vec<Utf8Bytes>)>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("meeting", &self.meeting.id)
            .field("sessions", &self.slots.len())
            .finish()
    }
}

fn serialise(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(msg).expect("wire types always serialise"))
}

impl Room {
    /// Loads a meeting from the log; `Ok(None)` if it does not exist.
    pub async fn load(
        id: &MeetingId,
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        config: Arc<HubConfig>,
        metrics: HubMetrics,
    ) -> Result<Option<Self>, StoreError> {
        let Some(record) = log.meeting(id).await? else {
            return Ok(None);
        };
        let events = townhall_store::read_all(log.as_ref(), id).await?;
        let meeting = Meeting::replay(id.clone(), &events);
        let history = History::new(config.history_frames, meeting.offset);
        Ok(Some(Self {
            meeting,
            record,
            log,
            clock,
            config,
            metrics,
            slots: Vec::new(),
            index: HashMap::new(),
            by_participant: HashMap::new(),
            history,
            dirty_tallies: BTreeSet::new(),
            dirty_polls: BTreeSet::new(),
            presence_sent: None,
            all_tallies: None,
        }))
    }

    /// The actor loop; returns when the room is closed or has been idle long enough.
    pub async fn run(mut self, mut rx: mpsc::Receiver<RoomMsg>) {
        let id = self.meeting.id.clone();
        info!(meeting_id = %id, offset = self.meeting.offset, "room started");
        self.metrics.rooms.inc();
        let mut tick = interval(self.config.tick());
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut presence = interval(self.config.presence_interval());
        presence.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut empty_since = Some(Instant::now());
        let idle = std::time::Duration::from_secs(self.config.room_idle_secs);
        let mut batch = Vec::with_capacity(64);
        loop {
            tokio::select! {
                biased;
                _ = tick.tick() => self.flush_tallies(),
                _ = presence.tick() => {
                    self.flush_presence();
                    if self.slots.is_empty() {
                        let since = *empty_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= idle {
                            break;
                        }
                    } else {
                        empty_since = None;
                    }
                }
                n = rx.recv_many(&mut batch, self.config.max_batch) => {
                    if n == 0 {
                        break;
                    }
                    if self.handle(&mut batch).await.is_break() {
                        break;
                    }
                }
            }
        }
        self.metrics.rooms.dec();
        info!(meeting_id = %id, offset = self.meeting.offset, "room stopped");
    }

    /// One turn: decide and commit all commands of the batch, then handle the rest in order.
    async fn handle(&mut self, batch: &mut Vec<RoomMsg>) -> ControlFlow<()> {
        let mut commands = Vec::new();
        let mut control = Vec::new();
        for msg in batch.drain(..) {
            match msg {
                RoomMsg::Command { .. } | RoomMsg::Api { .. } => commands.push(msg),
                other => control.push(other),
            }
        }
        if !commands.is_empty() && self.commit(commands).await.is_break() {
            return ControlFlow::Break(());
        }
        for msg in control {
            match msg {
                RoomMsg::Join(join) => self.join(*join),
                RoomMsg::Leave { session } => self.leave(session),
                RoomMsg::Resync { session } => self.resync(session),
                RoomMsg::SetTokenHashes { moderator, studio } => {
                    self.record.moderator_token_hash = moderator;
                    self.record.studio_token_hash = studio;
                    // Whoever joined with an old link loses its role now, not at their next join.
                    for slot in self.slots.iter().filter(|s| s.viewer.role.is_staff()) {
                        slot.outbox.kick(
                            "links_replaced",
                            "the organizer issued new links for this meeting",
                        );
                    }
                }
                RoomMsg::Close {
                    code,
                    message,
                    done,
                } => {
                    self.close_all(code, &message);
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return ControlFlow::Break(());
                }
                RoomMsg::Command { .. } | RoomMsg::Api { .. } => {
                    unreachable!("commands were split off")
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Group commit: decide every command against the state as it evolves within the batch,
    /// append all events at once, then publish and reply. On a conflict (another writer moved
    /// the log) the state is reloaded and the batch decided again.
    async fn commit(&mut self, commands: Vec<RoomMsg>) -> ControlFlow<()> {
        self.metrics.batch_size.observe(commands.len() as f64);
        let mut pending: Vec<(Actor, Command, ReplyTo)> = Vec::with_capacity(commands.len());
        for msg in commands {
            match msg {
                RoomMsg::Command {
                    session,
                    reference,
                    command,
                } => {
                    // A session that left before its turn gets no answer.
                    let Some(&i) = self.index.get(&session) else {
                        continue;
                    };
                    let viewer = &self.slots[i].viewer;
                    let actor = Actor::new(viewer.participant.clone(), viewer.role);
                    pending.push((actor, command, ReplyTo::Session(session, reference)));
                }
                RoomMsg::Api {
                    actor,
                    command,
                    reply,
                } => pending.push((actor, command, ReplyTo::Api(reply))),
                _ => unreachable!("only commands are committed"),
            }
        }
        for (_, command, _) in &pending {
            self.metrics
                .commands
                .with_label_values(&[command.name()])
                .inc();
        }
        let mut attempt = 0;
        loop {
            let base = self.meeting.offset;
            let now = self.clock.now();
            let mut events: Vec<Event> = Vec::new();
            let mut updates: Vec<(Offset, Update)> = Vec::new();
            let mut results: Vec<Result<Offset, Rejection>> = Vec::with_capacity(pending.len());
            for (actor, command, _) in &pending {
                let result = self.meeting.decide(actor, command, now).map(|new| {
                    for event in new {
                        let rec = Recorded {
                            offset: self.meeting.offset + 1,
                            event,
                        };
                        self.meeting.apply(&rec);
                        updates.extend(
                            fanout::updates(&self.meeting, &rec)
                                .into_iter()
                                .map(|u| (rec.offset, u)),
                        );
                        events.push(rec.event);
                    }
                    self.meeting.offset
                });
                results.push(result);
            }
            if !events.is_empty() {
                let started = Instant::now();
                match self.log.append(&self.meeting.id, base, &events).await {
                    Ok(_) => {
                        self.metrics
                            .append_seconds
                            .observe(started.elapsed().as_secs_f64());
                        self.metrics.events.inc_by(events.len() as u64);
                    }
                    Err(StoreError::Conflict { actual, .. }) if attempt < 3 => {
                        warn!(meeting_id = %self.meeting.id, expected = base, actual, "log moved on; deciding the batch again");
                        attempt += 1;
                        if self.reload().await.is_ok() {
                            // Another writer's events were never published here: start the
                            // history afresh and bring every session up to date.
                            self.history =
                                History::new(self.config.history_frames, self.meeting.offset);
                            let sessions: Vec<SessionId> =
                                self.slots.iter().map(|s| s.id).collect();
                            for session in sessions {
                                self.resync(session);
                            }
                            continue;
                        }
                        return self.give_up(pending, results);
                    }
                    Err(e) => {
                        error!(meeting_id = %self.meeting.id, error = %e, "append failed; commands not acknowledged");
                        // The state holds the batch's uncommitted events: read the log again.
                        if self.reload().await.is_err() {
                            return self.give_up(pending, results);
                        }
                        self.fail(pending, results, "storage is unavailable, please try again");
                        return ControlFlow::Continue(());
                    }
                }
            }
            self.publish(updates);
            self.reply(pending, results);
            return ControlFlow::Continue(());
        }
    }

    /// The state can no longer be trusted: refuse the batch and stop; the next session that
    /// joins loads the meeting afresh from the log.
    fn give_up(
        &mut self,
        pending: Vec<(Actor, Command, ReplyTo)>,
        results: Vec<Result<Offset, Rejection>>,
    ) -> ControlFlow<()> {
        error!(meeting_id = %self.meeting.id, "log unreadable; closing the room");
        self.fail(pending, results, "storage is unavailable, please try again");
        self.close_all(
            "unavailable",
            "the server cannot reach its storage; reconnecting",
        );
        ControlFlow::Break(())
    }

    /// Sends the frames of committed events and remembers them for resuming sessions.
    fn publish(&mut self, updates: Vec<(Offset, Update)>) {
        let mut disconnect = Vec::new();
        for (offset, update) in updates {
            match update {
                Update::Send(audience, msg) => {
                    let bytes = serialise(&msg);
                    self.deliver(&audience, &bytes);
                    self.history.push(Frame {
                        offset,
                        audience,
                        bytes,
                    });
                }
                Update::Tally(q) => {
                    self.dirty_tallies.insert(q);
                }
                Update::PollTally(p) => {
                    self.dirty_polls.insert(p);
                }
                Update::Disconnect(p) => disconnect.push(p),
            }
        }
        for p in disconnect {
            for sid in self.by_participant.get(&p).cloned().unwrap_or_default() {
                if let Some(&i) = self.index.get(&sid) {
                    let slot = &self.slots[i];
                    if !slot.viewer.role.is_staff() {
                        slot.outbox
                            .kick("banned", "a moderator has removed you from this meeting");
                    }
                }
            }
        }
    }

    fn reply(
        &mut self,
        pending: Vec<(Actor, Command, ReplyTo)>,
        results: Vec<Result<Offset, Rejection>>,
    ) {
        for ((_, _, reply), result) in pending.into_iter().zip(results) {
            if let Err(rejection) = &result {
                self.metrics
                    .rejections
                    .with_label_values(&[rejection.code()])
                    .inc();
                debug!(code = rejection.code(), "command rejected");
            }
            match reply {
                ReplyTo::Api(tx) => {
                    let _ = tx.send(result.map_err(CommandError::Rejected));
                }
                ReplyTo::Session(session, reference) => {
                    let msg = match result {
                        Ok(offset) => ServerMessage::Ack { reference, offset },
                        Err(rejection) => rejection_frame(reference, &rejection),
                    };
                    self.send_to(session, serialise(&msg));
                }
            }
        }
    }

    /// Answers every command of a batch that could not be committed: rejections as such, the
    /// rest as `unavailable` (nothing was acknowledged, so nothing is lost).
    fn fail(
        &mut self,
        pending: Vec<(Actor, Command, ReplyTo)>,
        results: Vec<Result<Offset, Rejection>>,
        message: &str,
    ) {
        for ((_, _, reply), result) in pending.into_iter().zip(results) {
            match (reply, result) {
                (ReplyTo::Api(tx), Err(r)) => {
                    let _ = tx.send(Err(CommandError::Rejected(r)));
                }
                (ReplyTo::Api(tx), Ok(_)) => {
                    let _ = tx.send(Err(CommandError::Unavailable(message.into())));
                }
                (ReplyTo::Session(session, reference), Err(r)) => {
                    self.send_to(session, serialise(&rejection_frame(reference, &r)));
                }
                (ReplyTo::Session(session, reference), Ok(_)) => {
                    self.metrics
                        .rejections
                        .with_label_values(&["unavailable"])
                        .inc();
                    let msg = ServerMessage::Error {
                        reference: Some(reference),
                        code: "unavailable".into(),
                        message: message.into(),
                        retry_after_ms: Some(1000),
                    };
                    self.send_to(session, serialise(&msg));
                }
            }
        }
    }

    /// Throws away what was decided but not committed by reading the log again.
    async fn reload(&mut self) -> Result<(), StoreError> {
        let events = townhall_store::read_all(self.log.as_ref(), &self.meeting.id).await?;
        let mut fresh = Meeting::replay(self.meeting.id.clone(), &events);
        fresh.limits = self.meeting.limits;
        self.meeting = fresh;
        Ok(())
    }

    fn deliver(&mut self, audience: &Audience, bytes: &Utf8Bytes) {
        let mut delivered = 0u64;
        if let Some(p) = audience.only() {
            // Only this participant's sessions, looked up instead of scanning every slot.
            for sid in self.by_participant.get(p).into_iter().flatten() {
                if let Some(&i) = self.index.get(sid) {
                    let slot = &mut self.slots[i];
                    if audience.includes(&slot.viewer) {
                        delivered += u64::from(push(slot, bytes, &self.metrics));
                    }
                }
            }
        } else {
            for slot in &mut self.slots {
                if audience.includes(&slot.viewer) {
                    delivered += u64::from(push(slot, bytes, &self.metrics));
                }
            }
        }
        self.metrics.deliveries.inc_by(delivered);
    }

    /// A reply to one session. Replies are never dropped for lagging: they wait for the resync,
    /// including the one whose push found the queue full.
    fn send_to(&mut self, session: SessionId, bytes: Utf8Bytes) {
        if let Some(&i) = self.index.get(&session) {
            let slot = &mut self.slots[i];
            if !slot.lagging && push(slot, &bytes, &self.metrics) {
                return;
            }
            if slot.lagging && slot.deferred.len() < self.config.outbox_frames / DEFERRED_SHARE {
                slot.deferred.push(bytes);
            }
        }
    }

    /// Sends the coalesced vote tallies and poll counts of this tick.
    fn flush_tallies(&mut self) {
        let questions = std::mem::take(&mut self.dirty_tallies);
        let polls = std::mem::take(&mut self.dirty_polls);
        let frames = [
            fanout::tally_frame(&self.meeting, questions),
            fanout::poll_results_frame(&self.meeting, polls),
        ];
        for frame in frames.into_iter().flatten() {
            self.deliver(&Audience::EVERYONE, &serialise(&frame));
        }
    }

    fn flush_presence(&mut self) {
        let online = self.slots.len() as u32;
        if self.presence_sent != Some(online) {
            self.presence_sent = Some(online);
            let frame = serialise(&ServerMessage::Presence {
                offset: self.meeting.offset,
                online,
            });
            self.deliver(&Audience::EVERYONE, &frame);
        }
    }

    fn role_for(&self, token: Option<&str>) -> Result<Role, JoinError> {
        match token {
            None => Ok(Role::Citizen),
            Some(t) if crate::auth::token_matches(t, &self.record.moderator_token_hash) => {
                Ok(Role::Moderator)
            }
            Some(t) if crate::auth::token_matches(t, &self.record.studio_token_hash) => {
                Ok(Role::Speaker)
            }
            Some(_) => Err(JoinError::BadToken),
        }
    }

    fn join(&mut self, join: Join) {
        let role = match self.role_for(join.token.as_deref()) {
            Ok(role) => role,
            Err(e) => {
                let _ = join.reply.send(Err(e));
                return;
            }
        };
        let banned = self
            .meeting
            .participant(&join.participant)
            .is_some_and(|p| p.banned);
        if banned && !role.is_staff() {
            let _ = join.reply.send(Err(JoinError::Banned));
            return;
        }
        let viewer = Viewer {
            participant: join.participant.clone(),
            role,
        };
        let mut slot = Slot {
            id: join.session,
            viewer,
            outbox: join.outbox,
            lagging: false,
            deferred: Vec::new(),
        };
        let welcome = ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            participant: join.participant.clone(),
            role,
            session: join.session_token,
        };
        push(&mut slot, &serialise(&welcome), &self.metrics);
        let missed: Option<Vec<Utf8Bytes>> = join
            .since
            .filter(|&s| s <= self.meeting.offset)
            .and_then(|s| self.history.after(s))
            .map(|frames| {
                frames
                    .filter(|f| f.audience.includes(&slot.viewer))
                    .map(|f| f.bytes.clone())
                    .collect()
            });
        match missed {
            Some(frames) => {
                for bytes in &frames {
                    push(&mut slot, bytes, &self.metrics);
                }
                for tallies in self.all_tallies() {
                    push(&mut slot, &tallies, &self.metrics);
                }
            }
            None => {
                let snapshot = Snapshot::of(&self.meeting, &slot.viewer);
                for frame in ServerMessage::snapshot_frames(snapshot, self.config.outbox_frames / 2)
                {
                    push(&mut slot, &serialise(&frame), &self.metrics);
                }
            }
        }
        let online = self.slots.len() as u32 + 1;
        let presence = serialise(&ServerMessage::Presence {
            offset: self.meeting.offset,
            online,
        });
        push(&mut slot, &presence, &self.metrics);
        debug!(
            session_id = slot.id,
            role = role.as_str(),
            resumed = join.since.is_some(),
            "session joined"
        );
        self.by_participant
            .entry(join.participant)
            .or_default()
            .push(slot.id);
        self.index.insert(slot.id, self.slots.len());
        self.slots.push(slot);
        let _ = join.reply.send(Ok(role));
    }

    /// Current tallies of every public question, cached per offset.
    fn all_tallies(&mut self) -> Vec<Utf8Bytes> {
        let offset = self.meeting.offset;
        if self.all_tallies.as_ref().is_none_or(|(o, _)| *o != offset) {
            let questions: Vec<QuestionId> = self.meeting.questions.keys().copied().collect();
            let polls: Vec<PollId> = self.meeting.polls.keys().copied().collect();
            let frames = [
                fanout::tally_frame(&self.meeting, questions),
                fanout::poll_results_frame(&self.meeting, polls),
            ];
            let frames = frames.iter().flatten().map(serialise).collect();
            self.all_tallies = Some((offset, frames));
        }
        self.all_tallies
            .as_ref()
            .map(|(_, f)| f.clone())
            .unwrap_or_default()
    }

    fn leave(&mut self, session: SessionId) {
        let Some(i) = self.index.remove(&session) else {
            return;
        };
        let slot = self.slots.swap_remove(i);
        if let Some(moved) = self.slots.get(i) {
            self.index.insert(moved.id, i);
        }
        if let Some(list) = self.by_participant.get_mut(&slot.viewer.participant) {
            list.retain(|&s| s != session);
            if list.is_empty() {
                self.by_participant.remove(&slot.viewer.participant);
            }
        }
        debug!(session_id = session, "session left");
    }

    fn resync(&mut self, session: SessionId) {
        let Some(&i) = self.index.get(&session) else {
            return;
        };
        let snapshot = Snapshot::of(&self.meeting, &self.slots[i].viewer);
        let slot = &mut self.slots[i];
        // Clear the flag before queueing, so the writer does not discard the snapshot.
        slot.lagging = false;
        slot.outbox.lagged.clear();
        let notice = serialise(&ServerMessage::Resync {
            reason: "your connection fell behind".into(),
        });
        push(slot, &notice, &self.metrics);
        for frame in ServerMessage::snapshot_frames(snapshot, self.config.outbox_frames / 2) {
            push(slot, &serialise(&frame), &self.metrics);
        }
        for reply in std::mem::take(&mut slot.deferred) {
            push(slot, &reply, &self.metrics);
        }
        let online = self.slots.len() as u32;
        let presence = serialise(&ServerMessage::Presence {
            offset: self.meeting.offset,
            online,
        });
        push(&mut self.slots[i], &presence, &self.metrics);
    }

    fn close_all(&mut self, code: &'static str, message: &str) {
        for slot in &self.slots {
            slot.outbox.kick(code, message);
        }
    }
}

fn rejection_frame(reference: u64, r: &Rejection) -> ServerMessage {
    ServerMessage::Error {
        reference: Some(reference),
        code: r.code().into(),
        message: r.to_string(),
        retry_after_ms: r.retry_after_ms(),
    }
}

/// Queues a frame for one session; on overflow marks it lagging instead of waiting.
/// Returns whether the frame was queued.
fn push(slot: &mut Slot, bytes: &Utf8Bytes, metrics: &HubMetrics) -> bool {
    if slot.lagging {
        return false;
    }
    match slot.outbox.tx.try_send(bytes.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            slot.lagging = true;
            slot.outbox.lagged.set();
            metrics.resyncs.inc();
            debug!(session_id = slot.id, "session fell behind; will resync");
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
