//! Why a command was refused. Each rejection has a stable code that clients can rely on and
//! translate, and an English message for people reading logs or raw frames.

use crate::text::TextError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the meeting does not exist")]
    NoMeeting,
    #[error("the meeting already exists")]
    AlreadyCreated,
    #[error("your role may not do this")]
    Forbidden,
    #[error("the meeting has not started yet")]
    NotLive,
    #[error("the meeting has ended")]
    Ended,
    #[error("you have been removed from this meeting")]
    Banned,
    #[error("a moderator has muted you")]
    Muted,
    #[error("questions are closed")]
    QaClosed,
    #[error("the chat is closed")]
    ChatClosed,
    #[error("slow mode is on: wait {} s before posting again", retry_after_ms.div_ceil(1000))]
    SlowMode { retry_after_ms: u64 },
    #[error("{0}")]
    Text(#[from] TextError),
    #[error("no such question")]
    UnknownQuestion,
    #[error("no such comment")]
    UnknownComment,
    #[error("no such participant")]
    UnknownParticipant,
    #[error("no such poll")]
    UnknownPoll,
    #[error("you have already answered this poll")]
    AlreadyAnswered,
    #[error("a poll needs 2 to {max} different options")]
    InvalidPoll { max: usize },
    #[error("not possible now: {0}")]
    InvalidState(&'static str),
    #[error("you have already upvoted this question")]
    AlreadyVoted,
    #[error("you have not upvoted this question")]
    NotVoted,
    #[error(
        "a question cannot be merged into itself or a closed question, nor an approved one into an unapproved one"
    )]
    InvalidMerge,
    #[error("you have {max} questions waiting for moderation; wait for a decision first")]
    TooManyPending { max: usize },
    #[error("this meeting has reached its limit of {max} items")]
    MeetingFull { max: usize },
    /// Upvote and retract toggled past the limit: the log must not grow without bound.
    #[error("you have changed your vote on this question {max} times; it stays as it is")]
    VoteLimit { max: u32 },
    #[error("this meeting has reached its limit of {max} events")]
    TooManyEvents { max: u64 },
    #[error("this meeting has reached its limit of {max} participants")]
    TooManyParticipants { max: usize },
    /// A limit per client address (the hub's, across every participant of that address).
    #[error("too many {what} from your network; wait {} s", retry_after_ms.div_ceil(1000))]
    AddressLimited {
        what: &'static str,
        retry_after_ms: u64,
    },
    /// Slow mode, counted over every participant of one client address.
    #[error("slow mode is on and your network has posted often: wait {} s", retry_after_ms.div_ceil(1000))]
    AddressSlowMode { retry_after_ms: u64 },
    #[error(
        "{max} questions from your network are waiting for moderation; wait for a decision first"
    )]
    AddressPending { max: usize },
    #[error("invalid schedule: {0}")]
    InvalidSchedule(&'static str),
    #[error("the meeting has not ended yet")]
    NotEnded,
    #[error("another moderator has claimed this question")]
    Claimed,
    #[error("a filter list holds at most {max} words of 1 to {chars} characters", max = crate::filter::MAX_WORDS, chars = crate::filter::MAX_WORD_CHARS)]
    InvalidFilter,
}

impl Rejection {
    /// Stable machine-readable code, part of the wire protocol (docs/protocol.md).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NoMeeting => "no_meeting",
            Rejection::AlreadyCreated => "already_created",
            Rejection::Forbidden => "forbidden",
            Rejection::NotLive => "not_live",
            Rejection::Ended => "meeting_ended",
            Rejection::Banned => "banned",
            Rejection::Muted => "muted",
            Rejection::QaClosed => "qa_closed",
            Rejection::ChatClosed => "chat_closed",
            Rejection::SlowMode { .. } => "slow_mode",
            Rejection::Text(e) => e.code(),
            Rejection::UnknownQuestion => "unknown_question",
            Rejection::UnknownComment => "unknown_comment",
            Rejection::UnknownParticipant => "unknown_participant",
            Rejection::UnknownPoll => "unknown_poll",
            Rejection::AlreadyAnswered => "already_answered",
            Rejection::InvalidPoll { .. } => "invalid_poll",
            Rejection::InvalidState(_) => "invalid_state",
            Rejection::AlreadyVoted => "already_voted",
            Rejection::NotVoted => "not_voted",
            Rejection::InvalidMerge => "invalid_merge",
            Rejection::TooManyPending { .. } => "too_many_pending",
            Rejection::MeetingFull { .. } => "meeting_full",
            Rejection::VoteLimit { .. } => "vote_limit",
            Rejection::TooManyEvents { .. } => "too_many_events",
            Rejection::TooManyParticipants { .. } => "too_many_participants",
            Rejection::AddressLimited { .. } => "rate_limited",
            Rejection::AddressSlowMode { .. } => "slow_mode",
            Rejection::AddressPending { .. } => "too_many_pending",
            Rejection::InvalidSchedule(_) => "invalid_schedule",
            Rejection::NotEnded => "not_ended",
            Rejection::Claimed => "claimed",
            Rejection::InvalidFilter => "invalid_filter",
        }
    }

    /// How long the client should wait before trying again, where that is known.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Rejection::SlowMode { retry_after_ms }
            | Rejection::AddressSlowMode { retry_after_ms }
            | Rejection::AddressLimited { retry_after_ms, .. } => Some(*retry_after_ms),
            _ => None,
        }
    }
}
