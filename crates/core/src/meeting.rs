//! The state of one meeting and how events fold into it.

use crate::event::Recorded;
use crate::ids::{CommentId, MeetingId, Offset, ParticipantId, PollId, QuestionId, Timestamp};
use crate::rules::record::Publication;
use crate::rules::schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeetingStatus {
    /// Before `MeetingCreated`: the meeting does not exist yet.
    Draft,
    Scheduled,
    Live,
    Ended,
}

/// Where a question is in moderation. `Queued` questions are ordered by [`Meeting::queue`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionStatus {
    Pending,
    Approved,
    Rejected {
        reason: String,
    },
    Queued,
    OnAir,
    Answered,
    /// It was on air when the meeting ended: not known to be answered.
    Ended,
    Merged {
        into: QuestionId,
    },
}

impl QuestionStatus {
    pub fn name(&self) -> &'static str {
        match self {
            QuestionStatus::Pending => "pending",
            QuestionStatus::Approved => "approved",
            QuestionStatus::Rejected { .. } => "rejected",
            QuestionStatus::Queued => "queued",
            QuestionStatus::OnAir => "on_air",
            QuestionStatus::Answered => "answered",
            QuestionStatus::Ended => "ended",
            QuestionStatus::Merged { .. } => "merged",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub id: QuestionId,
    pub author: ParticipantId,
    pub author_name: Option<String>,
    pub anonymous: bool,
    pub text: String,
    pub asked_at: Timestamp,
    pub status: QuestionStatus,
    /// Whether citizens have ever seen it (approved at some point); decides who hears of changes.
    pub public: bool,
    pub voters: BTreeSet<ParticipantId>,
    /// The filter word the text matched when asked, for moderators.
    pub flagged: Option<String>,
    /// The moderator who claimed it while pending ("I am on this one").
    pub claimed_by: Option<ParticipantId>,
    /// Upvotes each participant has cast on it (retracting does not give one back), so
    /// toggling a vote adds a bounded number of events to the log.
    pub casts: BTreeMap<ParticipantId, u32>,
}

impl Question {
    /// Approved, queued or on air: open for votes and shown to everyone as current.
    pub fn is_open(&self) -> bool {
        matches!(
            self.status,
            QuestionStatus::Approved | QuestionStatus::Queued | QuestionStatus::OnAir
        )
    }

    pub fn votes(&self) -> u32 {
        self.voters.len() as u32
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub id: CommentId,
    pub author: ParticipantId,
    pub author_name: Option<String>,
    pub text: String,
    pub at: Timestamp,
    pub hidden: bool,
    /// Held by the word filter (this word) until a moderator releases it; hidden meanwhile.
    pub held: Option<String>,
}

/// A multiple-choice question to everyone; each participant answers once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poll {
    pub id: PollId,
    pub question: String,
    pub options: Vec<String>,
    pub open: bool,
    pub opened_at: Timestamp,
    /// The option each participant chose.
    pub answers: BTreeMap<ParticipantId, u32>,
}

impl Poll {
    /// Answers per option, in option order.
    pub fn counts(&self) -> Vec<u32> {
        let mut counts = vec![0; self.options.len()];
        for &option in self.answers.values() {
            if let Some(c) = counts.get_mut(option as usize) {
                *c += 1;
            }
        }
        counts
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Participant {
    pub name: Option<String>,
    pub muted: bool,
    pub banned: bool,
    /// Time of the last question or comment, for slow mode.
    pub last_post_at: Option<Timestamp>,
    /// Questions of this participant still waiting for moderation.
    pub pending: usize,
}

/// Limits that keep one meeting's state and log bounded whatever clients send. They decide
/// what is accepted, never how an event folds, so a log replays the same under other limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_questions: usize,
    pub max_comments: usize,
    pub max_pending_per_participant: usize,
    pub max_polls: usize,
    /// Upvotes one participant may cast on one question, counting re-votes after a retract.
    pub max_votes_per_question: u32,
    /// Events in the log past which citizens' commands are refused; staff keep
    /// [`Limits::STAFF_RESERVE`] more so they can still moderate and end the meeting.
    pub max_events: u64,
    /// Distinct participants (anyone who caused an event) past which new citizens' commands
    /// are refused; staff are never refused.
    pub max_participants: usize,
}

impl Limits {
    /// Events staff may add past `max_events`.
    pub const STAFF_RESERVE: u64 = 10_000;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_questions: 20_000,
            max_comments: 200_000,
            max_pending_per_participant: 5,
            max_polls: 100,
            max_votes_per_question: 3,
            max_events: 2_000_000,
            max_participants: 100_000,
        }
    }
}

/// One meeting: the fold of its log up to [`Meeting::offset`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meeting {
    pub id: MeetingId,
    pub title: String,
    pub status: MeetingStatus,
    pub created_at: Timestamp,
    /// Offset of the last applied event.
    pub offset: Offset,
    pub qa_open: bool,
    pub chat_open: bool,
    pub slow_mode_secs: u32,
    pub announcement: Option<String>,
    pub participants: HashMap<ParticipantId, Participant>,
    /// Everyone who caused an event: the participants the participant limit counts.
    pub actors: HashSet<ParticipantId>,
    pub questions: BTreeMap<QuestionId, Question>,
    /// Queued questions, next first.
    pub queue: Vec<QuestionId>,
    pub on_air: Option<QuestionId>,
    pub comments: BTreeMap<CommentId, Comment>,
    pub polls: BTreeMap<PollId, Poll>,
    /// Date, agenda and the rest of the before; `None` until the organizer sets it.
    pub schedule: Option<Schedule>,
    /// What of the ended meeting is public.
    pub publication: Publication,
    /// The organizer's filter words; `None`: [`crate::filter::DEFAULT_WORDS`].
    pub word_filter: Option<Vec<String>>,
    pub limits: Limits,
}

impl Meeting {
    /// The state before any event: a meeting that does not exist yet.
    pub fn new(id: MeetingId) -> Self {
        Self {
            id,
            title: String::new(),
            status: MeetingStatus::Draft,
            created_at: Timestamp(0),
            offset: 0,
            qa_open: true,
            chat_open: true,
            slow_mode_secs: 0,
            announcement: None,
            participants: HashMap::new(),
            actors: HashSet::new(),
            questions: BTreeMap::new(),
            queue: Vec::new(),
            on_air: None,
            comments: BTreeMap::new(),
            polls: BTreeMap::new(),
            schedule: None,
            publication: Publication::default(),
            word_filter: None,
            limits: Limits::default(),
        }
    }

    /// Folds a whole log into a fresh meeting.
    pub fn replay<'a>(id: MeetingId, log: impl IntoIterator<Item = &'a Recorded>) -> Self {
        let mut m = Self::new(id);
        for rec in log {
            m.apply(rec);
        }
        m
    }

    pub fn next_question_id(&self) -> QuestionId {
        QuestionId(
            self.questions
                .last_key_value()
                .map_or(1, |(id, _)| id.0 + 1),
        )
    }

    pub fn next_comment_id(&self) -> CommentId {
        CommentId(self.comments.last_key_value().map_or(1, |(id, _)| id.0 + 1))
    }

    pub fn next_poll_id(&self) -> PollId {
        PollId(self.polls.last_key_value().map_or(1, |(id, _)| id.0 + 1))
    }

    /// The filter words in force.
    pub fn filter_words(&self) -> Vec<&str> {
        match &self.word_filter {
            Some(words) => words.iter().map(String::as_str).collect(),
            None => crate::filter::DEFAULT_WORDS.to_vec(),
        }
    }

    /// The filter word `text` contains, if any.
    pub fn filter_hit(&self, text: &str) -> Option<String> {
        crate::filter::matched_word(self.filter_words(), text).map(str::to_owned)
    }

    pub fn participant(&self, id: &ParticipantId) -> Option<&Participant> {
        self.participants.get(id)
    }

    /// Display name shown for `id`, if they set one.
    pub fn name_of(&self, id: &ParticipantId) -> Option<String> {
        self.participants.get(id).and_then(|p| p.name.clone())
    }

    /// Folds one recorded event into the state (each event's rule is in its subject's module).
    ///
    /// Events come from `decide` or from the log, so they are valid for this state; an event
    /// that refers to something unknown is ignored rather than trusted.
    pub fn apply(&mut self, rec: &Recorded) {
        debug_assert!(
            rec.offset > self.offset,
            "events must be applied in log order"
        );
        self.offset = rec.offset;
        if !self.actors.contains(&rec.event.by) {
            self.actors.insert(rec.event.by.clone());
        }
        rec.event.kind.apply(self, &rec.event.by, rec.event.at);
    }
}
