//! The room on virtual time: no sockets, no runtime, no log engine. Each test drives the
//! sans-IO [`Room`] and plays every session's writer and client by hand, in orders a seeded
//! scheduler (proptest) picks: who reads and when, who never reads, commits that succeed,
//! fail or conflict with another node's events, joins, resumes, leaves, bans, ticks.
//!
//! The invariants of docs/ARCHITECTURE.md that concern the hub are checked as properties:
//! the room's state is the fold of the log; every connected client ends with exactly the
//! view a fresh snapshot gives its role; every command is answered once, after its effect;
//! no client sees an offset twice; queues stay bounded; a banned citizen is cut off.

use proptest::prelude::*;
use proptest::sample::select;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use townhall_core::client::ClientView;
use townhall_core::command::{
    AnswerPoll, ApproveQuestion, AskQuestion, BanParticipant, CreateMeeting, HideComment,
    MarkAnswered, MergeQuestion, MuteParticipant, OpenPoll, PostComment, PutOnAir, QueueQuestion,
    RejectQuestion, RetractUpvote, SetName, StartMeeting, Upvote,
};
use townhall_core::view::{Snapshot, Viewer};
use townhall_core::wire::ServerMessage;
use townhall_core::{
    Actor, Command, Meeting, MeetingId, Offset, ParticipantId, QuestionId, Recorded, Role,
    Timestamp,
};
use townhall_hub::outbox::{Kick, Next};
use townhall_hub::room::{Append, Committed, Foreign, Join, JoinError, Origin, Pending, SessionId};
use townhall_hub::{HubConfig, HubMetrics, Outbox, Room, auth};
use townhall_store::MeetingRecord;

const MODERATOR_TOKEN: &str = "moderator-token-0123456789";
const STUDIO_TOKEN: &str = "studio-token-0123456789ab";
const T0: u64 = 1_760_000_000_000;

fn pid(s: &str) -> ParticipantId {
    ParticipantId::parse(s).unwrap()
}

/// Three citizens, a moderator and a speaker.
fn world() -> Vec<Actor> {
    vec![
        Actor::new(pid("pid-citizen-a"), Role::Citizen),
        Actor::new(pid("pid-citizen-b"), Role::Citizen),
        Actor::new(pid("pid-citizen-c"), Role::Citizen),
        Actor::new(pid("pid-moderator"), Role::Moderator),
        Actor::new(pid("pid-speaker"), Role::Speaker),
    ]
}

fn token_for(role: Role) -> Option<String> {
    match role {
        Role::Moderator => Some(MODERATOR_TOKEN.into()),
        Role::Speaker => Some(STUDIO_TOKEN.into()),
        _ => None,
    }
}

/// How a client reads its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reads {
    /// Everything, whenever the scheduler lets it.
    Always,
    /// A few frames at a time.
    Slowly,
    /// Nothing until the end of the test (a phone in a pocket, a broken client).
    Never,
}

#[derive(Debug)]
struct Client {
    session: SessionId,
    actor: Actor,
    outbox: Arc<Outbox>,
    view: ClientView,
    reads: Reads,
    /// Why the connection ended, if it did.
    gone: Option<String>,
    /// Commands sent and not answered yet.
    waiting: BTreeSet<u64>,
    answered: BTreeSet<u64>,
    next_ref: u64,
    /// Event offsets seen since the last snapshot: each at most once, in order.
    last_event: Offset,
    most_queued: usize,
}

/// A room, its log, and the clients that follow it.
struct World {
    room: Room,
    log: Vec<Recorded>,
    clients: Vec<Client>,
    /// Commands waiting for the next commit, in arrival order.
    batch: Vec<Pending>,
    now: Instant,
    clock: Timestamp,
    next_session: SessionId,
    config: Arc<HubConfig>,
}

fn record(meeting: &Meeting) -> MeetingRecord {
    MeetingRecord {
        id: meeting.id.clone(),
        title: "Borgermøde".into(),
        status: meeting.status,
        created_at: Timestamp(T0),
        ended_at: None,
        moderator_token_hash: auth::hash_token(MODERATOR_TOKEN),
        studio_token_hash: auth::hash_token(STUDIO_TOKEN),
        last_offset: meeting.offset,
        schedule: None,
        publication: Default::default(),
    }
}

impl World {
    fn new(config: HubConfig) -> Self {
        let id = MeetingId::parse("roomtest01").unwrap();
        let mut meeting = Meeting::new(id);
        let mut log = Vec::new();
        let org = Actor::organizer();
        for cmd in [
            Command::CreateMeeting(CreateMeeting {
                title: "Borgermøde".into(),
            }),
            Command::StartMeeting(StartMeeting),
        ] {
            for event in meeting.decide(&org, &cmd, Timestamp(T0)).unwrap() {
                let rec = Recorded {
                    offset: meeting.offset + 1,
                    event,
                };
                meeting.apply(&rec);
                log.push(rec);
            }
        }
        let config = Arc::new(config);
        let now = Instant::now();
        let room = Room::new(
            meeting.clone(),
            &record(&meeting),
            config.clone(),
            HubMetrics::unregistered(),
            now,
        );
        Self {
            room,
            log,
            clients: Vec::new(),
            batch: Vec::new(),
            now,
            clock: Timestamp(T0 + 1000),
            next_session: 1,
            config,
        }
    }

    fn join(
        &mut self,
        actor: &Actor,
        reads: Reads,
        since: Option<Offset>,
    ) -> Result<usize, JoinError> {
        let session = self.next_session;
        self.next_session += 1;
        let outbox = Arc::new(Outbox::new(self.config.outbox_frames));
        self.room.join(Join {
            session,
            participant: actor.participant.clone(),
            session_token: format!("signed-{}", actor.participant),
            token: token_for(actor.role),
            since,
            address: None,
            outbox: outbox.clone(),
        })?;
        self.clients.push(Client {
            session,
            actor: actor.clone(),
            outbox,
            view: ClientView::default(),
            reads,
            gone: None,
            waiting: BTreeSet::new(),
            answered: BTreeSet::new(),
            next_ref: 1,
            last_event: 0,
            most_queued: 0,
        });
        Ok(self.clients.len() - 1)
    }

    /// A client that left comes back with the offset it saw last, keeping its view.
    fn resume(&mut self, c: usize) -> Result<usize, JoinError> {
        let old = &self.clients[c];
        let (actor, view, since) = (old.actor.clone(), old.view.clone(), old.view.offset);
        let last_event = old.last_event;
        let n = self.join(&actor, Reads::Always, Some(since))?;
        self.clients[n].view = view;
        self.clients[n].last_event = last_event;
        Ok(n)
    }

    fn leave(&mut self, c: usize) {
        let client = &mut self.clients[c];
        if client.gone.is_none() {
            client.gone = Some("left".into());
            client.waiting.clear();
            self.room.leave(client.session, self.now);
        }
    }

    fn send(&mut self, c: usize, command: Command) {
        let client = &mut self.clients[c];
        if client.gone.is_some() {
            return;
        }
        let reference = client.next_ref;
        client.next_ref += 1;
        client.waiting.insert(reference);
        self.batch.push(Pending {
            origin: Origin::Session {
                session: client.session,
                reference,
            },
            actor: None,
            command,
        });
    }

    fn append_to_log(&mut self, append: &Append) {
        assert_eq!(
            append.base,
            self.log.len() as Offset,
            "appends start at the log's end"
        );
        for event in &append.events {
            let offset = self.log.len() as Offset + 1;
            self.log.push(Recorded {
                offset,
                event: event.clone(),
            });
        }
    }

    /// Events another node commits: `command` decided against the log's state by `actor`.
    fn foreign_events(&mut self, actor: &Actor, command: &Command) -> Vec<Recorded> {
        let state = Meeting::replay(self.room.id().clone(), &self.log);
        let Ok(events) = state.decide(actor, command, self.clock) else {
            return Vec::new();
        };
        let mut recorded = Vec::new();
        for event in events {
            let rec = Recorded {
                offset: self.log.len() as Offset + 1,
                event,
            };
            self.log.push(rec.clone());
            recorded.push(rec);
        }
        recorded
    }

    /// Decides the waiting commands and commits them with `outcome`.
    fn commit(&mut self, outcome: Outcome) {
        let batch = std::mem::take(&mut self.batch);
        self.clock.0 += 1;
        let Some(mut append) = self.room.decide(batch, self.clock) else {
            return;
        };
        match outcome {
            Outcome::Durable => {}
            Outcome::Failed => {
                assert!(
                    self.room
                        .committed(Committed::Failed("disk full".into()))
                        .is_none()
                );
                return;
            }
            Outcome::Conflict(ref actor, ref command) => {
                let missed = self.foreign_events(actor, command);
                if missed.is_empty() {
                    // The other node's command was refused: no conflict after all.
                } else {
                    match self.room.committed(Committed::Conflict { missed }) {
                        Some(again) => append = again,
                        None => return,
                    }
                }
            }
        }
        self.append_to_log(&append);
        assert!(self.room.committed(Committed::Durable).is_none());
    }

    fn advance(&mut self, ms: u64) {
        let until = self.now + Duration::from_millis(ms);
        while self.room.poll_timeout() <= until {
            self.now = self.room.poll_timeout();
            self.room.handle_timeout(self.now);
            assert!(
                self.room.poll_timeout() > self.now,
                "a handled timeout leaves its deadlines ahead (else the actor spins)"
            );
            if self.config.flush_ms == 0 {
                assert!(
                    !self.room.owes_wakes(),
                    "a tick's frames wake their writers in the same turn"
                );
            }
        }
        self.now = until;
        self.clock.0 += ms;
    }

    /// Plays client `c`'s writer and reader for up to `max` frames.
    fn drain(&mut self, c: usize, max: usize) {
        let mut read = 0;
        let mut batch = Vec::new();
        while read < max {
            let client = &mut self.clients[c];
            client.most_queued = client.most_queued.max(client.outbox.len());
            if client.gone.is_some() {
                return;
            }
            match client.outbox.try_next(&mut batch, max - read) {
                None => return,
                Some(Next::Resync) => {
                    let session = client.session;
                    self.room.resync(session);
                }
                Some(Next::Kicked(kick)) => {
                    client.gone = Some(kick.code.into());
                    client.waiting.clear();
                    return;
                }
                Some(Next::Closed) => return,
                Some(Next::Write) => {
                    for bytes in batch.drain(..) {
                        read += 1;
                        let msg: ServerMessage = serde_json::from_str(bytes.as_str())
                            .unwrap_or_else(|e| panic!("bad frame {}: {e}", bytes.as_str()));
                        client.read(&msg);
                    }
                }
            }
        }
    }

    /// Everyone reads everything until nothing moves: the end of a test.
    fn settle(&mut self) {
        self.commit(Outcome::Durable);
        for c in &mut self.clients {
            c.reads = Reads::Always;
        }
        for _ in 0..50 {
            self.advance(self.config.tick_ms + self.config.presence_ms);
            for c in 0..self.clients.len() {
                self.drain(c, usize::MAX);
            }
            let quiet = self
                .clients
                .iter()
                .filter(|c| c.gone.is_none())
                .all(|c| c.outbox.is_empty() && !c.outbox.is_lagging());
            if quiet {
                return;
            }
        }
        panic!("the room did not settle");
    }

    /// The invariants, checked once the world has settled.
    fn check(&self) {
        let replayed = Meeting::replay(self.room.id().clone(), &self.log);
        assert_eq!(
            &replayed,
            self.room.meeting(),
            "the room's state is the fold of the log"
        );
        for c in &self.clients {
            if c.gone.is_some() {
                continue;
            }
            assert!(
                c.waiting.is_empty(),
                "{:?} has unanswered commands {:?}",
                c.actor,
                c.waiting
            );
            let viewer = Viewer {
                participant: c.actor.participant.clone(),
                role: c.actor.role,
            };
            let expected = ClientView::from_snapshot(&Snapshot::of(&replayed, &viewer));
            // A client's offset moves with the frames it may see; events it may not see
            // (others' pending questions) leave it behind the log, with the same view.
            assert!(c.view.offset <= replayed.offset);
            assert_eq!(
                ClientView {
                    offset: replayed.offset,
                    ..c.view.comparable()
                },
                expected.comparable(),
                "{:?} sees what a fresh snapshot shows",
                c.actor
            );
            // A resync queues its notice, the snapshot's parts (at most half the queue), the
            // held-back replies (at most a queue's worth, or 16) and presence.
            let cap = self.config.outbox_frames;
            let bound = cap.max(2 + cap / 2 + cap.max(16));
            assert!(
                c.most_queued <= bound,
                "queue {} over {}",
                c.most_queued,
                bound
            );
        }
        // A banned citizen follows no more.
        for c in &self.clients {
            let banned = replayed
                .participant(&c.actor.participant)
                .is_some_and(|p| p.banned);
            if banned && c.actor.role == Role::Citizen {
                assert!(c.gone.is_some(), "banned {:?} still connected", c.actor);
            }
        }
    }
}

impl Client {
    fn read(&mut self, msg: &ServerMessage) {
        match msg {
            ServerMessage::Snapshot(s) => self.last_event = s.offset,
            ServerMessage::Event(e) => {
                assert!(
                    e.offset > self.last_event,
                    "{:?} got offset {} after {}",
                    self.actor,
                    e.offset,
                    self.last_event
                );
                self.last_event = e.offset;
            }
            ServerMessage::Ack { reference, offset } => {
                assert!(
                    self.waiting.remove(reference),
                    "ack for {reference} unexpected or twice"
                );
                assert!(self.answered.insert(*reference));
                assert!(
                    *offset <= self.view.offset.max(self.last_event),
                    "{:?}: ack at {offset} before its effect (view at {})",
                    self.actor,
                    self.view.offset
                );
            }
            ServerMessage::Error {
                reference: Some(reference),
                ..
            } => {
                assert!(
                    self.waiting.remove(reference),
                    "error for {reference} unexpected or twice"
                );
                assert!(self.answered.insert(*reference));
            }
            _ => {}
        }
        self.view.apply(msg);
    }
}

#[derive(Clone, Debug)]
enum Outcome {
    Durable,
    Failed,
    /// Another node commits `command` by `actor` first.
    Conflict(Actor, Command),
}

// ---------------------------------------------------------------------------------------------
// Scenarios

fn small_config() -> HubConfig {
    HubConfig {
        outbox_frames: 16,
        history_frames: 32,
        tick_ms: 20,
        presence_ms: 1000,
        ..HubConfig::default()
    }
}

/// The scenario that "stalled" over sockets (docs/ARCHITECTURE.md, "The slow-reader stall"):
/// one client never reads while a moderator posts thousands of comments; the reading client
/// has everything at once, and the stuck one, once it reads, is resynced to the same view.
#[test]
fn a_client_that_never_reads_stalls_nobody_and_is_resynced() {
    let mut w = World::new(HubConfig {
        outbox_frames: 64,
        ..small_config()
    });
    let people = world();
    let stuck = w.join(&people[0], Reads::Never, None).unwrap();
    let fast = w.join(&people[1], Reads::Always, None).unwrap();
    let moderator = w.join(&people[3], Reads::Always, None).unwrap();
    for round in 0..800 {
        for _ in 0..10 {
            w.send(
                moderator,
                Command::PostComment(PostComment {
                    text: format!("Et langt indlæg om trafikken i byen, nummer {round}."),
                }),
            );
        }
        w.commit(Outcome::Durable);
        w.advance(5);
        w.drain(fast, usize::MAX);
        w.drain(moderator, usize::MAX);
        // The reading clients are never behind, whatever the stuck one does.
        assert_eq!(w.clients[fast].view.offset, w.room.meeting().offset);
        assert!(w.clients[moderator].waiting.is_empty());
        assert!(w.clients[stuck].outbox.len() <= 64);
    }
    assert!(w.clients[stuck].outbox.is_lagging());
    w.settle();
    w.check();
    let stuck_view = w.clients[stuck].view.comparable();
    let fast_view = w.clients[fast].view.comparable();
    assert_eq!(
        ClientView {
            you: None,
            ..stuck_view
        },
        ClientView {
            you: None,
            ..fast_view
        }
    );
}

/// With `hub.flush_ms`, a room gathers several turns' frames before waking the writers: the
/// wake-ups go out when the flush is due (not only at the next command), the deadline moves
/// ahead once it fired, and a tick's tallies are woken like a command's frames.
#[test]
fn gathered_flushes_wake_writers_and_keep_deadlines_ahead() {
    let mut w = World::new(HubConfig {
        flush_ms: 50,
        ..small_config()
    });
    let people = world();
    let citizen = w.join(&people[0], Reads::Always, None).unwrap();
    let other = w.join(&people[1], Reads::Always, None).unwrap();
    let moderator = w.join(&people[3], Reads::Always, None).unwrap();
    w.send(
        moderator,
        Command::PostComment(PostComment {
            text: "Velkommen til borgermødet.".into(),
        }),
    );
    w.commit(Outcome::Durable);
    w.room.end_turn(w.now);
    assert!(w.room.owes_wakes(), "the frames wait for the flush");
    let due = w.room.poll_timeout();
    assert!(due <= w.now + Duration::from_millis(50));
    w.advance(50);
    assert!(!w.room.owes_wakes(), "the flush woke every writer");
    assert!(w.room.poll_timeout() > w.now);
    w.drain(citizen, usize::MAX);
    w.drain(other, usize::MAX);
    assert_eq!(w.clients[citizen].view.offset, w.room.meeting().offset);

    // A question reaches the moderators by time alone: no later command ends a turn.
    w.send(
        citizen,
        Command::AskQuestion(AskQuestion {
            text: "Hvornår bliver cykelstien færdig?".into(),
            anonymous: false,
        }),
    );
    w.commit(Outcome::Durable);
    w.room.end_turn(w.now);
    w.advance(200);
    assert!(!w.room.owes_wakes());
    w.settle();
    w.check();
}

/// A session that overflows at exactly its capacity, one below and one above.
#[test]
fn overflow_at_every_boundary() {
    for capacity in [2usize, 3, 8, 16] {
        for extra in 0..capacity + 2 {
            let mut w = World::new(HubConfig {
                outbox_frames: capacity,
                ..small_config()
            });
            let people = world();
            let slow = w.join(&people[0], Reads::Never, None).unwrap();
            let moderator = w.join(&people[3], Reads::Always, None).unwrap();
            w.drain(moderator, usize::MAX);
            let already = w.clients[slow].outbox.len();
            for i in 0..(capacity.saturating_sub(already) + extra) {
                w.send(
                    moderator,
                    Command::PostComment(PostComment {
                        text: format!("kommentar {i}"),
                    }),
                );
                w.commit(Outcome::Durable);
                w.drain(moderator, usize::MAX);
            }
            w.settle();
            w.check();
        }
    }
}

/// Banned while stuck: the kick reaches the session though its queue is full.
#[test]
fn a_ban_cuts_off_a_stuck_citizen() {
    let mut w = World::new(small_config());
    let people = world();
    let stuck = w.join(&people[0], Reads::Never, None).unwrap();
    let moderator = w.join(&people[3], Reads::Always, None).unwrap();
    w.send(
        stuck,
        Command::PostComment(PostComment { text: "hej".into() }),
    );
    w.commit(Outcome::Durable);
    for i in 0..100 {
        w.send(
            moderator,
            Command::PostComment(PostComment {
                text: format!("fyld {i}"),
            }),
        );
        w.commit(Outcome::Durable);
        w.drain(moderator, usize::MAX);
    }
    w.send(
        moderator,
        Command::BanParticipant(BanParticipant {
            participant: people[0].participant.clone(),
        }),
    );
    w.commit(Outcome::Durable);
    assert_eq!(
        w.clients[stuck].outbox.kicked().map(|k| k.code),
        Some("banned")
    );
    w.settle();
    w.check();
    assert!(matches!(
        w.join(&people[0], Reads::Always, None),
        Err(JoinError::Banned)
    ));
}

/// A failed append answers `unavailable` and leaves no trace; the next one goes through.
#[test]
fn a_failed_append_is_undone_and_refused_retryably() {
    let mut w = World::new(small_config());
    let people = world();
    let citizen = w.join(&people[0], Reads::Always, None).unwrap();
    let other = w.join(&people[1], Reads::Always, None).unwrap();
    w.send(
        citizen,
        Command::AskQuestion(AskQuestion {
            text: "Hvornår?".into(),
            anonymous: false,
        }),
    );
    w.commit(Outcome::Failed);
    w.drain(citizen, usize::MAX);
    w.drain(other, usize::MAX);
    let errors: Vec<_> = w.clients[citizen].answered.iter().copied().collect();
    assert_eq!(errors, vec![1]);
    assert!(
        w.room.meeting().questions.is_empty(),
        "nothing of the batch stays"
    );
    w.send(
        citizen,
        Command::AskQuestion(AskQuestion {
            text: "Hvornår?".into(),
            anonymous: false,
        }),
    );
    w.commit(Outcome::Durable);
    w.settle();
    w.check();
    assert_eq!(w.room.meeting().questions.len(), 1);
    assert_eq!(w.room.meeting().questions[&QuestionId(1)].text, "Hvornår?");
}

/// Another node committed first: its events reach our sessions and our batch is decided
/// again on top of them.
#[test]
fn a_conflict_applies_the_other_nodes_events_then_decides_again() {
    let mut w = World::new(small_config());
    let people = world();
    let citizen = w.join(&people[0], Reads::Always, None).unwrap();
    w.send(
        citizen,
        Command::AskQuestion(AskQuestion {
            text: "Vores spørgsmål".into(),
            anonymous: false,
        }),
    );
    let other_node = Actor::new(pid("pid-elsewhere"), Role::Citizen);
    w.commit(Outcome::Conflict(
        other_node,
        Command::AskQuestion(AskQuestion {
            text: "Deres spørgsmål".into(),
            anonymous: false,
        }),
    ));
    w.settle();
    w.check();
    let m = w.room.meeting();
    assert_eq!(m.questions[&QuestionId(1)].text, "Deres spørgsmål");
    assert_eq!(m.questions[&QuestionId(2)].text, "Vores spørgsmål");
}

/// Events from another node arrive out of order: the room asks for the gap, drops repeats.
#[test]
fn foreign_events_in_order_gaps_asked_for_duplicates_dropped() {
    let mut w = World::new(small_config());
    let people = world();
    let c = w.join(&people[0], Reads::Always, None).unwrap();
    let elsewhere = Actor::new(pid("pid-elsewhere"), Role::Citizen);
    let first = w.foreign_events(
        &elsewhere,
        &Command::PostComment(PostComment { text: "en".into() }),
    );
    let second = w.foreign_events(
        &elsewhere,
        &Command::PostComment(PostComment { text: "to".into() }),
    );
    let base = first[0].offset - 1;
    assert_eq!(
        w.room.apply_foreign(second.clone()),
        Foreign::Gap { after: base }
    );
    assert_eq!(w.room.apply_foreign(first.clone()), Foreign::Applied);
    assert_eq!(w.room.apply_foreign(first), Foreign::Duplicate);
    assert_eq!(w.room.apply_foreign(second), Foreign::Applied);
    w.drain(c, usize::MAX);
    w.settle();
    w.check();
}

/// Closing the room mid-burst kicks everyone, stuck or not, and answers no one twice.
#[test]
fn closing_mid_burst_kicks_every_session() {
    let mut w = World::new(small_config());
    let people = world();
    let stuck = w.join(&people[0], Reads::Never, None).unwrap();
    let reader = w.join(&people[1], Reads::Always, None).unwrap();
    let moderator = w.join(&people[3], Reads::Always, None).unwrap();
    for i in 0..12 {
        w.send(
            moderator,
            Command::PostComment(PostComment {
                text: format!("k {i}"),
            }),
        );
    }
    w.commit(Outcome::Durable);
    w.room
        .close(Kick::new("shutdown", "the server is restarting"));
    for c in [stuck, reader, moderator] {
        w.drain(c, usize::MAX);
        assert_eq!(w.clients[c].gone.as_deref(), Some("shutdown"));
    }
}

/// Deleting (closing) a room whose sessions are all stuck: each is kicked, none waits.
#[test]
fn a_room_dropped_for_any_reason_lets_its_sessions_go() {
    let mut w = World::new(small_config());
    let people = world();
    let stuck = w.join(&people[0], Reads::Never, None).unwrap();
    let outbox = w.clients[stuck].outbox.clone();
    drop(w);
    assert_eq!(outbox.kicked().map(|k| k.code), Some("unavailable"));
}

/// Resuming with the last offset seen gives exactly what was missed (or a snapshot when the
/// history no longer has it), and the view ends as if the client never left.
#[test]
fn resume_by_offset_after_short_and_long_absences() {
    for absent in [1usize, 5, 40] {
        let mut w = World::new(small_config());
        let people = world();
        let c = w.join(&people[0], Reads::Always, None).unwrap();
        let moderator = w.join(&people[3], Reads::Always, None).unwrap();
        w.send(
            c,
            Command::AskQuestion(AskQuestion {
                text: "Før".into(),
                anonymous: true,
            }),
        );
        w.commit(Outcome::Durable);
        w.drain(c, usize::MAX);
        w.leave(c);
        for i in 0..absent {
            w.send(
                moderator,
                Command::PostComment(PostComment {
                    text: format!("mens du var væk {i}"),
                }),
            );
            w.commit(Outcome::Durable);
        }
        w.send(
            moderator,
            Command::ApproveQuestion(ApproveQuestion {
                question: QuestionId(1),
            }),
        );
        w.commit(Outcome::Durable);
        let back = w.resume(c).unwrap();
        w.settle();
        w.check();
        let q = &w.clients[back].view.questions[&QuestionId(1)];
        assert_eq!(q.status, "approved");
    }
}

// ---------------------------------------------------------------------------------------------
// The property: any order of inputs

#[derive(Clone, Debug)]
enum Op {
    Join { who: usize, reads: Reads },
    Resume { client: usize },
    Leave { client: usize },
    Send { client: usize, command: Command },
    Commit(Outcome),
    Foreign { command: Command },
    Drain { client: usize, frames: usize },
    Advance { ms: u64 },
}

fn question() -> impl Strategy<Value = QuestionId> {
    prop_oneof![3 => 1u64..=3, 1 => 4u64..=6].prop_map(QuestionId)
}

fn text() -> impl Strategy<Value = String> {
    select(vec![
        "Hvornår åbner svømmehallen?".to_owned(),
        "Cykelstien!".to_owned(),
        "<b>markup er tekst</b>".to_owned(),
        String::new(),
        "z".repeat(400),
    ])
}

fn command() -> impl Strategy<Value = Command> {
    use Command as C;
    let participant = select(
        world()
            .into_iter()
            .map(|a| a.participant)
            .collect::<Vec<_>>(),
    );
    prop_oneof![
        6 => (text(), any::<bool>()).prop_map(|(text, anonymous)| C::AskQuestion(AskQuestion { text, anonymous })),
        6 => question().prop_map(|question| C::Upvote(Upvote { question })),
        2 => question().prop_map(|question| C::RetractUpvote(RetractUpvote { question })),
        5 => text().prop_map(|text| C::PostComment(PostComment { text })),
        5 => question().prop_map(|question| C::ApproveQuestion(ApproveQuestion { question })),
        1 => question().prop_map(|question| C::RejectQuestion(RejectQuestion { question, reason: "dublet".into() })),
        2 => (question(), question()).prop_map(|(question, into)| C::MergeQuestion(MergeQuestion { question, into })),
        2 => question().prop_map(|question| C::QueueQuestion(QueueQuestion { question, position: None })),
        2 => question().prop_map(|question| C::PutOnAir(PutOnAir { question })),
        1 => question().prop_map(|question| C::MarkAnswered(MarkAnswered { question })),
        1 => (1u64..=4).prop_map(|c| C::HideComment(HideComment { comment: townhall_core::CommentId(c) })),
        1 => participant.clone().prop_map(|participant| C::MuteParticipant(MuteParticipant { participant })),
        1 => participant.prop_map(|participant| C::BanParticipant(BanParticipant { participant })),
        1 => text().prop_map(|name| C::SetName(SetName { name })),
        1 => Just(C::OpenPoll(OpenPoll { question: "Ja eller nej?".into(), options: vec!["Ja".into(), "Nej".into()] })),
        2 => (0u32..=2).prop_map(|option| C::AnswerPoll(AnswerPoll { poll: townhall_core::PollId(1), option })),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    let elsewhere = Actor::new(pid("pid-elsewhere"), Role::Citizen);
    let foreign_moderator = Actor::new(pid("pid-moderator-2"), Role::Moderator);
    prop_oneof![
        8 => Just(Outcome::Durable),
        1 => Just(Outcome::Failed),
        1 => command().prop_map(move |c| Outcome::Conflict(elsewhere.clone(), c)),
        1 => command().prop_map(move |c| Outcome::Conflict(foreign_moderator.clone(), c)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0usize..8;
    prop_oneof![
        3 => (0usize..5, select(vec![Reads::Always, Reads::Always, Reads::Slowly, Reads::Never]))
            .prop_map(|(who, reads)| Op::Join { who, reads }),
        1 => client.clone().prop_map(|client| Op::Resume { client }),
        1 => client.clone().prop_map(|client| Op::Leave { client }),
        12 => (client.clone(), command()).prop_map(|(client, command)| Op::Send { client, command }),
        6 => outcome().prop_map(Op::Commit),
        1 => command().prop_map(|command| Op::Foreign { command }),
        8 => (client, 1usize..40).prop_map(|(client, frames)| Op::Drain { client, frames }),
        3 => select(vec![1u64, 20, 250, 1000, 5000]).prop_map(|ms| Op::Advance { ms }),
    ]
}

fn run(ops: Vec<Op>, config: HubConfig) {
    let mut w = World::new(config);
    let people = world();
    let elsewhere = Actor::new(pid("pid-elsewhere"), Role::Citizen);
    for op in ops {
        w.turn(op, &people, &elsewhere);
    }
    w.settle();
    w.check();
}

impl World {
    /// One input, then the end of the room's turn: no writer may be left owed a wake-up.
    fn turn(&mut self, op: Op, people: &[Actor], elsewhere: &Actor) {
        let w = self;
        match op {
            Op::Join { who, reads } => {
                let _ = w.join(&people[who], reads, None);
            }
            Op::Resume { client } => {
                if client < w.clients.len() && w.clients[client].gone.is_some() {
                    w.commit(Outcome::Durable);
                    let _ = w.resume(client);
                }
            }
            Op::Leave { client } => {
                if client < w.clients.len() {
                    w.leave(client);
                }
            }
            Op::Send { client, command } => {
                if client < w.clients.len() {
                    w.send(client, command);
                }
            }
            Op::Commit(outcome) => w.commit(outcome),
            Op::Foreign { command } => {
                w.commit(Outcome::Durable);
                let events = w.foreign_events(elsewhere, &command);
                if !events.is_empty() {
                    assert_eq!(w.room.apply_foreign(events), Foreign::Applied);
                }
            }
            Op::Drain { client, frames } => {
                if client < w.clients.len() {
                    let max = match w.clients[client].reads {
                        Reads::Always => frames,
                        Reads::Slowly => frames.min(3),
                        Reads::Never => 0,
                    };
                    w.drain(client, max);
                }
            }
            Op::Advance { ms } => w.advance(ms),
        }
        w.room.end_turn(w.now);
        assert!(
            !w.room.owes_wakes(),
            "a writer was left without its wake-up"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_order_of_inputs_keeps_every_invariant(ops in prop::collection::vec(op(), 1..120)) {
        run(ops, small_config());
    }

    #[test]
    fn tiny_queues_and_history_keep_every_invariant(
        ops in prop::collection::vec(op(), 1..120),
        capacity in 2usize..6,
        history in 1usize..6,
    ) {
        run(ops, HubConfig { outbox_frames: capacity, history_frames: history, ..small_config() });
    }
}
