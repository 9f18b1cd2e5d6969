//! Shared test harness: a meeting with its log, deciding and applying commands in order.

#![allow(dead_code)]

use townhall_core::client::ClientView;
use townhall_core::command::{ApproveQuestion, AskQuestion, CreateMeeting, SetName, StartMeeting};
use townhall_core::fanout::{self, Update};
use townhall_core::view::{Snapshot, Viewer};
use townhall_core::{
    Actor, Command, Meeting, MeetingId, ParticipantId, Question, QuestionId, QuestionStatus,
    Recorded, Rejection, Role, Timestamp,
};

/// A fixed start time, so tests read like a clock.
pub const T0: u64 = 1_760_000_000_000;

pub fn pid(s: &str) -> ParticipantId {
    ParticipantId::parse(s).unwrap()
}

pub fn citizen(s: &str) -> Actor {
    Actor::new(pid(s), Role::Citizen)
}

pub fn moderator() -> Actor {
    Actor::new(pid("moderator-1"), Role::Moderator)
}

pub fn speaker() -> Actor {
    Actor::new(pid("speaker-1"), Role::Speaker)
}

pub fn organizer() -> Actor {
    Actor::organizer()
}

pub fn viewer(a: &Actor) -> Viewer {
    Viewer {
        participant: a.participant.clone(),
        role: a.role,
    }
}

/// A meeting, its log and a clock. Offsets are assigned as `meeting.offset + 1` per event.
#[derive(Debug)]
pub struct Harness {
    pub meeting: Meeting,
    pub log: Vec<Recorded>,
    pub now: Timestamp,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A meeting that does not exist yet (draft).
    pub fn new() -> Self {
        Self {
            meeting: Meeting::new(MeetingId::parse("test-meeting").unwrap()),
            log: Vec::new(),
            now: Timestamp(T0),
        }
    }

    /// A created (scheduled) meeting.
    pub fn scheduled() -> Self {
        let mut h = Self::new();
        h.ok(
            &organizer(),
            Command::CreateMeeting(CreateMeeting {
                title: "Borgermøde om havnen".into(),
            }),
        );
        h
    }

    /// A created and started meeting.
    pub fn live() -> Self {
        let mut h = Self::scheduled();
        h.ok(&organizer(), Command::StartMeeting(StartMeeting));
        h
    }

    /// Decides `cmd` at `now`, then applies and records each event, calling `on_applied` right
    /// after each one is applied (for fanout, which must see the state of that very event).
    pub fn run_with(
        &mut self,
        actor: &Actor,
        cmd: &Command,
        now: Timestamp,
        mut on_applied: impl FnMut(&Meeting, &Recorded),
    ) -> Result<Vec<Recorded>, Rejection> {
        let events = self.meeting.decide(actor, cmd, now)?;
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let rec = Recorded {
                offset: self.meeting.offset + 1,
                event,
            };
            self.meeting.apply(&rec);
            on_applied(&self.meeting, &rec);
            self.log.push(rec.clone());
            out.push(rec);
        }
        Ok(out)
    }

    pub fn run(
        &mut self,
        actor: &Actor,
        cmd: Command,
        now: Timestamp,
    ) -> Result<Vec<Recorded>, Rejection> {
        self.run_with(actor, &cmd, now, |_, _| {})
    }

    /// Runs `cmd` at the harness clock.
    pub fn act(&mut self, actor: &Actor, cmd: Command) -> Result<Vec<Recorded>, Rejection> {
        let now = self.now;
        self.run(actor, cmd, now)
    }

    /// Runs `cmd`, which must be accepted.
    #[track_caller]
    pub fn ok(&mut self, actor: &Actor, cmd: Command) -> Vec<Recorded> {
        let name = cmd.name();
        match self.act(actor, cmd) {
            Ok(recs) => recs,
            Err(r) => panic!("{name} by {:?} was rejected: {r:?}", actor.role),
        }
    }

    /// Runs `cmd`, which must be rejected without changing anything; returns the rejection.
    #[track_caller]
    pub fn err(&mut self, actor: &Actor, cmd: Command) -> Rejection {
        let before = self.meeting.clone();
        let name = cmd.name();
        match self.act(actor, cmd) {
            Ok(recs) => panic!("{name} by {:?} was accepted: {recs:?}", actor.role),
            Err(r) => {
                assert_eq!(self.meeting, before, "a rejected command changed the state");
                r
            }
        }
    }

    /// The code of the rejection of `cmd`.
    #[track_caller]
    pub fn code(&mut self, actor: &Actor, cmd: Command) -> &'static str {
        self.err(actor, cmd).code()
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = Timestamp(self.now.0 + ms);
    }

    /// Asks a question and returns its id.
    #[track_caller]
    pub fn ask(&mut self, actor: &Actor, text: &str) -> QuestionId {
        let id = self.meeting.next_question_id();
        self.ok(
            actor,
            Command::AskQuestion(AskQuestion {
                text: text.into(),
                anonymous: false,
            }),
        );
        id
    }

    #[track_caller]
    pub fn ask_anonymous(&mut self, actor: &Actor, text: &str) -> QuestionId {
        let id = self.meeting.next_question_id();
        self.ok(
            actor,
            Command::AskQuestion(AskQuestion {
                text: text.into(),
                anonymous: true,
            }),
        );
        id
    }

    /// Asks a question and has the moderator approve it.
    #[track_caller]
    pub fn ask_approved(&mut self, actor: &Actor, text: &str) -> QuestionId {
        let id = self.ask(actor, text);
        self.ok(
            &moderator(),
            Command::ApproveQuestion(ApproveQuestion { question: id }),
        );
        id
    }

    pub fn question(&self, id: QuestionId) -> &Question {
        &self.meeting.questions[&id]
    }

    pub fn status(&self, id: QuestionId) -> QuestionStatus {
        self.question(id).status.clone()
    }

    /// Makes a participant known to the meeting (so they can be muted or banned).
    #[track_caller]
    pub fn name(&mut self, actor: &Actor, name: &str) {
        self.ok(actor, Command::SetName(SetName { name: name.into() }));
    }
}

/// A client following the live frames of one viewer, as the hub would deliver them.
#[derive(Debug)]
pub struct Follower {
    pub viewer: Viewer,
    pub client: ClientView,
}

impl Follower {
    /// Joins now, from a snapshot.
    pub fn join(m: &Meeting, actor: &Actor) -> Self {
        let viewer = viewer(actor);
        let client = ClientView::from_snapshot(&Snapshot::of(m, &viewer));
        Self { viewer, client }
    }

    /// Applies the frames of `rec` (just applied to `m`) that reach this viewer, with tallies sent
    /// at once.
    pub fn deliver(&mut self, m: &Meeting, rec: &Recorded) {
        for u in fanout::updates(m, rec) {
            match u {
                Update::Send(aud, msg) if aud.includes(&self.viewer) => self.client.apply(&msg),
                Update::Tally(q) => {
                    if let Some(msg) = fanout::tally_frame(m, [q]) {
                        self.client.apply(&msg);
                    }
                }
                Update::PollTally(p) => {
                    if let Some(msg) = fanout::poll_results_frame(m, [p]) {
                        self.client.apply(&msg);
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether the followed view equals a fresh join (offsets aside: a session does not hear of
    /// events it may not see).
    pub fn matches_snapshot(&self, m: &Meeting) -> bool {
        let mut followed = self.client.comparable();
        followed.offset = m.offset;
        followed == ClientView::from_snapshot(&Snapshot::of(m, &self.viewer)).comparable()
    }
}

impl Harness {
    /// Runs `cmd` (which must be accepted) and delivers its frames to `followers`.
    #[track_caller]
    pub fn ok_followed(
        &mut self,
        actor: &Actor,
        cmd: Command,
        followers: &mut [Follower],
    ) -> Vec<Recorded> {
        let now = self.now;
        let name = cmd.name();
        self.run_with(actor, &cmd, now, |m, rec| {
            for f in followers.iter_mut() {
                f.deliver(m, rec);
            }
        })
        .unwrap_or_else(|r| panic!("{name} was rejected: {r:?}"))
    }
}
