//! The room: one live meeting on this node, as a synchronous state machine (sans-IO).
//!
//! It holds the meeting's state and the sessions that follow it. Inputs come in as method
//! calls with the time passed in; what the room wants done comes out as values: an [`Append`]
//! to make durable (its outcome goes back in through [`Room::committed`]), replies to API
//! commands ([`Room::take_api_replies`]), and frames pushed into each session's [`Outbox`]
//! (which never blocks). The async actor in `actor.rs` does the I/O around it; tests drive it
//! directly on virtual time (`tests/room.rs`).
//!
//! Invariants:
//! - A command is answered only after its events are durable (or its batch failed).
//! - A session's view always equals the log's projection for its role at the offset its
//!   frames carry: frames are pushed in offset order, and a session that fell behind gets a
//!   fresh snapshot, never a gap.
//! - Every frame is serialised once per audience; the bytes are shared by every session.
//! - The room never waits on a session: a full outbox marks it lagging.
//! - `committed` keeps the state as of the log's last known offset, so a failed or conflicting
//!   append is undone without reading the whole log again.

use crate::history::{Frame, History};
use crate::limits::AddressLimits;
use crate::outbox::{Kick, Outbox, Outgoing, Pushed};
use crate::suggest::{self, Suggester};
use crate::{HubConfig, HubMetrics};
use axum::extract::ws::Utf8Bytes;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use townhall_core::fanout::{self, Audience, Update};
use townhall_core::view::{Snapshot, Viewer};
use townhall_core::wire::{PROTOCOL_VERSION, ServerMessage};
use townhall_core::{
    Actor, Command, Event, Meeting, MeetingId, Offset, ParticipantId, PollId, QuestionId, Recorded,
    Rejection, Role, Timestamp,
};
use townhall_store::MeetingRecord;
use tracing::debug;

pub type SessionId = u64;

/// Why a session could not join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinError {
    BadToken,
    Banned,
}

/// Why an API command failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Rejected(Rejection),
    #[error("no such meeting")]
    NoMeeting,
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
}

/// A session asking to follow the meeting.
#[derive(Debug)]
pub struct Join {
    pub session: SessionId,
    pub participant: ParticipantId,
    /// Signed participant id, handed back in `welcome` for cookie-less clients.
    pub session_token: String,
    /// A moderator or studio link's token; none for citizens.
    pub token: Option<String>,
    /// The last offset the client saw, to resume exactly.
    pub since: Option<Offset>,
    /// The client's address, for the limits per address ([`AddressLimits`]); none in tests
    /// that do not need them.
    pub address: Option<IpAddr>,
    pub outbox: Arc<Outbox>,
}

/// An API caller waiting for its command, named by the actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ApiTicket(pub u64);

/// Who gets the answer to a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Session {
        session: SessionId,
        reference: u64,
    },
    /// The organizer API (its actor is given with the command).
    Api(ApiTicket),
}

/// A command waiting for its turn.
#[derive(Clone, Debug)]
pub struct Pending {
    pub origin: Origin,
    /// For API commands; a session's actor is its participant in its role.
    pub actor: Option<Actor>,
    pub command: Command,
}

/// Events to make durable: the log must be at `base` (optimistic concurrency).
#[derive(Clone, Debug, PartialEq)]
pub struct Append {
    pub base: Offset,
    pub events: Vec<Event>,
}

/// What became of an [`Append`].
#[derive(Debug)]
pub enum Committed {
    Durable,
    /// Another writer moved the log first; these are its events after `base`, in order.
    Conflict {
        missed: Vec<Recorded>,
    },
    /// Not written (or not known to be); nothing of the batch was acknowledged.
    Failed(String),
}

/// What became of events committed by another writer (another node).
#[derive(Debug, PartialEq, Eq)]
pub enum Foreign {
    Applied,
    /// Already applied (our own, or delivered twice).
    Duplicate,
    /// Events are missing before this batch: read the log after `after`, then hand them in.
    Gap {
        after: Offset,
    },
}

/// Commands decided against the state, waiting for their append.
#[derive(Debug)]
struct InFlight {
    pending: Vec<Pending>,
    results: Vec<Result<Offset, Rejection>>,
    updates: Vec<(Offset, Update)>,
    events: Vec<Event>,
    attempt: u32,
    now: Timestamp,
}

/// Conflicts in a row after which a batch is refused as unavailable. Each conflict means
/// another node committed (the meeting as a whole progressed), so this bounds only how long
/// one batch may keep losing the race: with three busy nodes a batch loses a round about two
/// times in three, and four attempts refused a few percent of commands (tests/cluster.rs).
const MAX_ATTEMPTS: u32 = 32;

#[derive(Debug)]
struct Slot {
    id: SessionId,
    viewer: Viewer,
    address: Option<IpAddr>,
    outbox: Arc<Outbox>,
}

/// One live meeting on this node.
pub struct Room {
    meeting: Meeting,
    /// The state as of the log's last known offset: `meeting` minus the batch in flight.
    committed: Meeting,
    moderator_token_hash: String,
    studio_token_hash: String,
    config: Arc<HubConfig>,
    metrics: HubMetrics,
    slots: Vec<Slot>,
    index: HashMap<SessionId, usize>,
    by_participant: HashMap<ParticipantId, Vec<SessionId>>,
    history: History,
    /// Citizens' limits per client address, over every participant behind one.
    addresses: AddressLimits,
    in_flight: Option<InFlight>,
    api_replies: Vec<(ApiTicket, Result<Offset, CommandError>)>,
    dirty_tallies: BTreeSet<QuestionId>,
    dirty_polls: BTreeSet<PollId>,
    presence_sent: Option<u32>,
    /// Sessions of this meeting on other nodes, as the presence board last said.
    online_elsewhere: u32,
    /// Tallies of all public questions and counts of all polls at an offset, serialised once
    /// for resuming sessions.
    all_tallies: Option<(Offset, Vec<Utf8Bytes>)>,
    next_tick: Instant,
    next_presence: Instant,
    /// Writers owed a wake-up for frames queued since the last flush.
    to_wake: Vec<Arc<Outbox>>,
    /// When the owed wake-ups go out, if `hub.flush_ms` gathers several turns.
    next_flush: Option<Instant>,
    empty_since: Option<Instant>,
    closed: bool,
    /// Merge suggestions for staff, computed in the tick (`suggest.rs`).
    suggester: Suggester,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("meeting", &self.meeting.id)
            .field("offset", &self.meeting.offset)
            .field("sessions", &self.slots.len())
            .finish()
    }
}

fn serialise(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(msg).expect("wire types always serialise"))
}

fn rejection_frame(reference: u64, r: &Rejection) -> ServerMessage {
    ServerMessage::Error {
        reference: Some(reference),
        code: r.code().into(),
        message: r.to_string(),
        retry_after_ms: r.retry_after_ms(),
    }
}

fn unavailable_frame(reference: u64, message: &str) -> ServerMessage {
    ServerMessage::Error {
        reference: Some(reference),
        code: "unavailable".into(),
        message: message.into(),
        retry_after_ms: Some(1000),
    }
}

impl Room {
    /// A room for `meeting` as replayed from the log, with the record's link hashes.
    pub fn new(
        meeting: Meeting,
        record: &MeetingRecord,
        config: Arc<HubConfig>,
        metrics: HubMetrics,
        now: Instant,
    ) -> Self {
        let history = History::new(config.history_frames, meeting.offset);
        let suggester = Suggester::new(&meeting);
        Self {
            committed: meeting.clone(),
            meeting,
            moderator_token_hash: record.moderator_token_hash.clone(),
            studio_token_hash: record.studio_token_hash.clone(),
            metrics,
            slots: Vec::new(),
            index: HashMap::new(),
            by_participant: HashMap::new(),
            history,
            addresses: AddressLimits::new(&config),
            in_flight: None,
            api_replies: Vec::new(),
            dirty_tallies: BTreeSet::new(),
            dirty_polls: BTreeSet::new(),
            presence_sent: None,
            online_elsewhere: 0,
            all_tallies: None,
            next_tick: now + config.tick(),
            next_presence: now + config.presence_interval(),
            to_wake: Vec::new(),
            next_flush: None,
            empty_since: Some(now),
            closed: false,
            suggester,
            config,
        }
    }

    pub fn id(&self) -> &MeetingId {
        &self.meeting.id
    }

    /// The state as the sessions see it (committed events only, once no append is in flight).
    pub fn meeting(&self) -> &Meeting {
        &self.meeting
    }

    pub fn sessions(&self) -> usize {
        self.slots.len()
    }

    pub fn has_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    // ---- sessions -------------------------------------------------------------------------

    fn role_for(&self, token: Option<&str>) -> Result<Role, JoinError> {
        match token {
            None => Ok(Role::Citizen),
            Some(t) if crate::auth::token_matches(t, &self.moderator_token_hash) => {
                Ok(Role::Moderator)
            }
            Some(t) if crate::auth::token_matches(t, &self.studio_token_hash) => Ok(Role::Speaker),
            Some(_) => Err(JoinError::BadToken),
        }
    }

    /// Adds a session: queues `welcome`, then exactly the frames it missed since `join.since`
    /// (when the history still has them) or a snapshot, then the online count.
    pub fn join(&mut self, join: Join) -> Result<Role, JoinError> {
        debug_assert!(self.in_flight.is_none(), "joins wait for the append");
        let role = self.role_for(join.token.as_deref())?;
        let banned = self
            .meeting
            .participant(&join.participant)
            .is_some_and(|p| p.banned);
        if banned && !role.is_staff() {
            return Err(JoinError::Banned);
        }
        let citizen_address = join.address.filter(|_| !role.is_staff());
        if let Some(ip) = citizen_address {
            // A new cookie from a banned participant's address is the same person, as far as
            // this meeting can tell (`hub.ban_by_address`).
            if self.addresses.barred(ip, &self.meeting) {
                return Err(JoinError::Banned);
            }
            self.addresses.joined(ip, &join.participant, &self.meeting);
        }
        let slot = Slot {
            id: join.session,
            viewer: Viewer {
                participant: join.participant.clone(),
                role,
            },
            address: join.address,
            outbox: join.outbox,
        };
        let welcome = ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            participant: join.participant.clone(),
            role,
            session: join.session_token,
        };
        let mut frames = vec![serialise(&welcome)];
        let missed: Option<Vec<Utf8Bytes>> = join
            .since
            .filter(|&s| s <= self.meeting.offset)
            .and_then(|s| self.history.after(s))
            .map(|missed| {
                missed
                    .filter(|f| f.audience.includes(&slot.viewer))
                    .map(|f| f.bytes.clone())
                    .collect()
            });
        match missed {
            Some(missed) => {
                frames.extend(missed);
                frames.extend(self.all_tallies());
            }
            None => {
                let snapshot = Snapshot::of(&self.meeting, &slot.viewer);
                frames.extend(
                    ServerMessage::snapshot_frames(snapshot, self.config.outbox_frames / 2)
                        .iter()
                        .map(serialise),
                );
            }
        }
        if role.is_staff() {
            frames.extend(self.suggester.all().as_ref().map(serialise));
        }
        frames.push(self.presence_frame(self.online() + 1));
        // A join's first frames may exceed the queue (a long resume): deliver what fits, and
        // the overflow makes the session resync like any other.
        for bytes in frames {
            let pushed = push(
                &slot,
                Outgoing::Update(bytes),
                &self.metrics,
                &mut self.to_wake,
            );
            if !matches!(pushed, Pushed::Queued { .. }) {
                break;
            }
        }
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
        self.empty_since = None;
        Ok(role)
    }

    /// Removes a session; its writer ends once it has written what is queued.
    pub fn leave(&mut self, session: SessionId, now: Instant) {
        let Some(i) = self.index.remove(&session) else {
            return;
        };
        let slot = self.slots.swap_remove(i);
        if let Some(moved) = self.slots.get(i) {
            self.index.insert(moved.id, i);
        }
        let mut still_here = false;
        if let Some(list) = self.by_participant.get_mut(&slot.viewer.participant) {
            list.retain(|&s| s != session);
            still_here = !list.is_empty();
            if !still_here {
                self.by_participant.remove(&slot.viewer.participant);
            }
        }
        if let Some(ip) = slot.address.filter(|_| !slot.viewer.role.is_staff()) {
            let participant = &slot.viewer.participant;
            self.addresses
                .left(ip, participant, still_here, &self.meeting);
        }
        slot.outbox.close();
        if self.slots.is_empty() {
            self.empty_since = Some(now);
        }
        debug!(session_id = session, "session left");
    }

    /// A lagging session's writer has drained: send it the truth afresh.
    pub fn resync(&mut self, session: SessionId) {
        debug_assert!(self.in_flight.is_none(), "resyncs wait for the append");
        let Some(&i) = self.index.get(&session) else {
            return;
        };
        let slot = &self.slots[i];
        if !slot.outbox.is_lagging() {
            return;
        }
        let notice = serialise(&ServerMessage::Resync {
            reason: "your connection fell behind".into(),
        });
        let snapshot = Snapshot::of(&self.meeting, &slot.viewer);
        let parts = ServerMessage::snapshot_frames(snapshot, self.config.outbox_frames / 2);
        let frames = std::iter::once(notice).chain(parts.iter().map(serialise));
        let presence = self.presence_frame(self.online());
        slot.outbox.resync(frames, presence);
    }

    /// New secret links: whoever joined with an old one loses their role now.
    pub fn set_token_hashes(&mut self, moderator: String, studio: String) {
        self.moderator_token_hash = moderator;
        self.studio_token_hash = studio;
        for slot in self.slots.iter().filter(|s| s.viewer.role.is_staff()) {
            slot.outbox.kick(Kick::new(
                "links_replaced",
                "the organizer issued new links for this meeting",
            ));
        }
    }

    /// Says goodbye to every session; the room is done.
    pub fn close(&mut self, kick: Kick) {
        for slot in &self.slots {
            slot.outbox.kick(kick.clone());
        }
        self.closed = true;
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    // ---- commands -------------------------------------------------------------------------

    /// Decides a batch of commands at `now` against the state as it evolves within the batch.
    /// Returns the events to append, or `None` when nothing is to be written (every command
    /// was refused; the refusals are sent at once).
    pub fn decide(&mut self, batch: Vec<Pending>, now: Timestamp) -> Option<Append> {
        assert!(self.in_flight.is_none(), "one append at a time");
        self.metrics.batch_size.observe(batch.len() as f64);
        for p in &batch {
            self.metrics
                .commands
                .with_label_values(&[p.command.name()])
                .inc();
        }
        self.decide_again(batch, 0, now)
    }

    fn decide_again(
        &mut self,
        batch: Vec<Pending>,
        attempt: u32,
        now: Timestamp,
    ) -> Option<Append> {
        let base = self.meeting.offset;
        let mut pending = Vec::with_capacity(batch.len());
        let mut results = Vec::with_capacity(batch.len());
        let mut updates = Vec::new();
        let mut events = Vec::new();
        for p in batch {
            let (actor, address) = match (&p.origin, &p.actor) {
                (Origin::Api(_), Some(actor)) => (actor.clone(), None),
                (Origin::Session { session, .. }, _) => {
                    // A session that left before its turn gets no answer.
                    let Some(&i) = self.index.get(session) else {
                        continue;
                    };
                    let slot = &self.slots[i];
                    let viewer = &slot.viewer;
                    let address = slot.address.filter(|_| !viewer.role.is_staff());
                    (Actor::new(viewer.participant.clone(), viewer.role), address)
                }
                (Origin::Api(_), None) => (Actor::organizer(), None),
            };
            let decided = match address {
                Some(ip) => self
                    .addresses
                    .check(ip, &p.command, &self.meeting, now)
                    .and_then(|()| self.meeting.decide(&actor, &p.command, now)),
                None => self.meeting.decide(&actor, &p.command, now),
            };
            if let (Some(ip), Ok(new)) = (address, &decided) {
                let asked = new.iter().find_map(|e| match &e.kind {
                    townhall_core::EventKind::QuestionAsked(q) => Some(q.question),
                    _ => None,
                });
                self.addresses
                    .spend(ip, &p.command, &self.meeting, now, asked);
            }
            let result = decided.map(|new| {
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
            pending.push(p);
        }
        debug_assert_eq!(self.meeting.offset, base + events.len() as Offset);
        if events.is_empty() {
            self.reply(pending, results);
            return None;
        }
        let append = Append {
            base,
            events: events.clone(),
        };
        self.in_flight = Some(InFlight {
            pending,
            results,
            updates,
            events,
            attempt,
            now,
        });
        Some(append)
    }

    /// The outcome of the last [`Append`]. Durable: the batch's frames go out, then its
    /// answers. Conflict: the other writer's events are applied and sent, and the batch is
    /// decided again (the returned append). Failed: the batch is undone and refused as
    /// `unavailable`, a retryable answer.
    pub fn committed(&mut self, outcome: Committed) -> Option<Append> {
        let flight = self
            .in_flight
            .take()
            .expect("committed answers an append in flight");
        match outcome {
            Committed::Durable => {
                self.metrics.events.inc_by(flight.events.len() as u64);
                let first = self.committed.offset + 1;
                for (offset, event) in (first..).zip(flight.events) {
                    let rec = Recorded { offset, event };
                    self.committed.apply(&rec);
                    self.suggester.observe(&self.committed, &rec);
                }
                self.publish(flight.updates);
                self.reply(flight.pending, flight.results);
                None
            }
            Committed::Conflict { missed } => {
                self.meeting = self.committed.clone();
                if self.apply_foreign(missed) != Foreign::Applied
                    || flight.attempt + 1 >= MAX_ATTEMPTS
                {
                    self.fail(
                        flight.pending,
                        flight.results,
                        "the meeting is very busy, please try again",
                    );
                    return None;
                }
                let batch = flight.pending;
                self.decide_again(batch, flight.attempt + 1, flight.now)
            }
            Committed::Failed(reason) => {
                debug!(reason, "append failed; batch undone");
                self.meeting = self.committed.clone();
                self.fail(
                    flight.pending,
                    flight.results,
                    "storage is unavailable, please try again",
                );
                None
            }
        }
    }

    /// Events another writer committed, in order, starting right after `after` is expected.
    /// Applied and sent to the sessions as if decided here.
    pub fn apply_foreign(&mut self, events: Vec<Recorded>) -> Foreign {
        assert!(
            self.in_flight.is_none(),
            "foreign events wait for the append"
        );
        let mut updates = Vec::new();
        let mut outcome = Foreign::Duplicate;
        for rec in events {
            if rec.offset <= self.meeting.offset {
                continue;
            }
            if rec.offset != self.meeting.offset + 1 {
                outcome = Foreign::Gap {
                    after: self.meeting.offset,
                };
                break;
            }
            self.meeting.apply(&rec);
            self.committed.apply(&rec);
            self.suggester.observe(&self.committed, &rec);
            updates.extend(
                fanout::updates(&self.meeting, &rec)
                    .into_iter()
                    .map(|u| (rec.offset, u)),
            );
            outcome = Foreign::Applied;
        }
        self.publish(updates);
        outcome
    }

    /// Answers to API commands, for the actor to send.
    pub fn take_api_replies(&mut self) -> Vec<(ApiTicket, Result<Offset, CommandError>)> {
        std::mem::take(&mut self.api_replies)
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
            for sid in self.by_participant.get(&p).into_iter().flatten() {
                if let Some(&i) = self.index.get(sid) {
                    let slot = &self.slots[i];
                    if !slot.viewer.role.is_staff() {
                        slot.outbox.kick(Kick::new(
                            "banned",
                            "a moderator has removed you from this meeting",
                        ));
                    }
                }
            }
        }
    }

    fn reply(&mut self, pending: Vec<Pending>, results: Vec<Result<Offset, Rejection>>) {
        for (p, result) in pending.into_iter().zip(results) {
            if let Err(rejection) = &result {
                self.metrics
                    .rejections
                    .with_label_values(&[rejection.code()])
                    .inc();
                debug!(code = rejection.code(), "command rejected");
            }
            match p.origin {
                Origin::Api(ticket) => self
                    .api_replies
                    .push((ticket, result.map_err(CommandError::Rejected))),
                Origin::Session { session, reference } => {
                    let msg = match result {
                        Ok(offset) => ServerMessage::Ack { reference, offset },
                        Err(rejection) => rejection_frame(reference, &rejection),
                    };
                    self.send_reply(session, serialise(&msg));
                }
            }
        }
    }

    /// Answers every command of a batch that could not be committed: refusals as such, the
    /// rest as `unavailable` (nothing was acknowledged, so nothing is lost).
    fn fail(
        &mut self,
        pending: Vec<Pending>,
        results: Vec<Result<Offset, Rejection>>,
        message: &str,
    ) {
        for (p, result) in pending.into_iter().zip(results) {
            match (p.origin, result) {
                (Origin::Api(ticket), Err(r)) => self
                    .api_replies
                    .push((ticket, Err(CommandError::Rejected(r)))),
                (Origin::Api(ticket), Ok(_)) => self
                    .api_replies
                    .push((ticket, Err(CommandError::Unavailable(message.into())))),
                (Origin::Session { session, reference }, Err(r)) => {
                    self.send_reply(session, serialise(&rejection_frame(reference, &r)));
                }
                (Origin::Session { session, reference }, Ok(_)) => {
                    self.metrics
                        .rejections
                        .with_label_values(&["unavailable"])
                        .inc();
                    self.send_reply(session, serialise(&unavailable_frame(reference, message)));
                }
            }
        }
    }

    fn deliver(&mut self, audience: &Audience, bytes: &Utf8Bytes) {
        let mut delivered = 0u64;
        let to_wake = &mut self.to_wake;
        let mut send = |slot: &Slot| {
            let pushed = push(
                slot,
                Outgoing::Update(bytes.clone()),
                &self.metrics,
                to_wake,
            );
            delivered += u64::from(matches!(pushed, Pushed::Queued { .. }));
        };
        if let Some(p) = audience.only() {
            // Only this participant's sessions, looked up instead of scanning every slot.
            for sid in self.by_participant.get(p).into_iter().flatten() {
                if let Some(&i) = self.index.get(sid) {
                    let slot = &self.slots[i];
                    if audience.includes(&slot.viewer) {
                        send(slot);
                    }
                }
            }
        } else {
            for slot in &self.slots {
                if audience.includes(&slot.viewer) {
                    send(slot);
                }
            }
        }
        self.metrics.deliveries.inc_by(delivered);
    }

    /// A reply to one session; held back (never dropped) while it is lagging.
    fn send_reply(&mut self, session: SessionId, bytes: Utf8Bytes) {
        if let Some(&i) = self.index.get(&session) {
            push(
                &self.slots[i],
                Outgoing::Reply(bytes),
                &self.metrics,
                &mut self.to_wake,
            );
        }
    }

    // ---- time -----------------------------------------------------------------------------

    /// When [`Room::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Instant {
        let next = self.next_tick.min(self.next_presence);
        self.next_flush.map_or(next, |f| f.min(next))
    }

    /// The end of a turn (a batch, the feed, a timeout): wakes the writers owed a wake-up, so
    /// each writes this turn's frames at once — or, with `hub.flush_ms`, at the next flush.
    pub fn end_turn(&mut self, now: Instant) {
        if self.to_wake.is_empty() {
            return;
        }
        let gather = self.config.flush_interval();
        if gather.is_zero() {
            self.flush_writes();
        } else if self.next_flush.is_none() {
            self.next_flush = Some(now + gather);
        }
    }

    /// Whether some writer is still owed a wake-up for frames queued in an ended turn (only
    /// while `hub.flush_ms` gathers turns).
    pub fn owes_wakes(&self) -> bool {
        !self.to_wake.is_empty()
    }

    fn flush_writes(&mut self) {
        self.next_flush = None;
        for outbox in self.to_wake.drain(..) {
            outbox.wake();
        }
    }

    /// Sends coalesced tallies every tick and the online count when it changed, and wakes the
    /// writers whose gathered frames are due. A timeout is a turn of its own: it ends with
    /// [`Room::end_turn`], so a tick's frames reach their writers without waiting for the next
    /// command, and every deadline [`Room::poll_timeout`] answers afterwards lies ahead of `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_flush.is_some_and(|at| now >= at) {
            self.flush_writes();
        }
        if self.in_flight.is_none() {
            if now >= self.next_tick {
                self.flush_tallies();
                if let Some(frame) = self.suggester.work(&self.meeting, suggest::PER_TICK) {
                    let staff = Audience::new(fanout::Class::Staff, fanout::Target::Any);
                    self.deliver(&staff, &serialise(&frame));
                }
                self.next_tick = next_after(self.next_tick, self.config.tick(), now);
            }
            if now >= self.next_presence {
                self.flush_presence();
                self.next_presence =
                    next_after(self.next_presence, self.config.presence_interval(), now);
            }
        }
        self.end_turn(now);
    }

    /// Whether the room has had no sessions for `room_idle_secs` and may stop.
    pub fn idle_expired(&self, now: Instant) -> bool {
        self.empty_since.is_some_and(|since| {
            now.saturating_duration_since(since) >= Duration::from_secs(self.config.room_idle_secs)
        })
    }

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

    /// Sessions on this node and, as last reported, on the others.
    pub fn online(&self) -> u32 {
        (self.slots.len() as u32).saturating_add(self.online_elsewhere)
    }

    /// The presence board's sum over every node, when this node had `local` sessions.
    pub fn set_online_total(&mut self, total: u32, local: u32) {
        self.online_elsewhere = total.saturating_sub(local);
    }

    fn flush_presence(&mut self) {
        let online = self.online();
        if self.presence_sent != Some(online) {
            self.presence_sent = Some(online);
            let frame = self.presence_frame(online);
            self.deliver(&Audience::EVERYONE, &frame);
        }
    }

    fn presence_frame(&self, online: u32) -> Utf8Bytes {
        serialise(&ServerMessage::Presence {
            offset: self.meeting.offset,
            online,
        })
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
}

impl Drop for Room {
    /// A room that goes away for any reason (closed, idle, a bug) lets its sessions go, so no
    /// writer waits for frames that will never come.
    fn drop(&mut self) {
        for slot in &self.slots {
            slot.outbox.kick(Kick::new(
                "unavailable",
                "the meeting closed on this server; reconnecting",
            ));
        }
    }
}

/// The first deadline after `now` on the grid `last + k * period`, so a late wake-up does not
/// fire a burst of ticks.
fn next_after(last: Instant, period: Duration, now: Instant) -> Instant {
    let next = last + period;
    if next > now { next } else { now + period }
}

/// Queues a frame for a session; its writer's wake-up goes on `to_wake`, owed at the end of
/// the turn (or the next flush), so one turn's frames leave in one write.
fn push(
    slot: &Slot,
    frame: Outgoing,
    metrics: &HubMetrics,
    to_wake: &mut Vec<Arc<Outbox>>,
) -> Pushed {
    let pushed = slot.outbox.push_later(frame);
    if let Pushed::Queued { wake: true } = pushed {
        to_wake.push(slot.outbox.clone());
    }
    if pushed == Pushed::NowLagging {
        metrics.resyncs.inc();
        debug!(session_id = slot.id, "session fell behind; will resync");
    }
    if pushed == Pushed::Kicked {
        metrics.rejections.with_label_values(&["too_slow"]).inc();
    }
    pushed
}
