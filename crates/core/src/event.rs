//! Events: what happened, in the past tense. The log of a meeting is a sequence of these, and
//! the stored form is versioned by the store.

use crate::ids::{CommentId, Offset, ParticipantId, PollId, QuestionId, Timestamp};
use serde::{Deserialize, Serialize};

/// One change to a meeting: when, by whom, and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    /// The participant who caused it (the author of a question, the moderator who approved it).
    pub by: ParticipantId,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// An event with its position in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub offset: Offset,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    MeetingCreated {
        title: String,
    },
    MeetingStarted,
    MeetingEnded,
    ParticipantRenamed {
        name: Option<String>,
    },
    QuestionAsked {
        question: QuestionId,
        text: String,
        anonymous: bool,
        /// The author's display name when asking, kept for the record.
        author_name: Option<String>,
    },
    QuestionApproved {
        question: QuestionId,
    },
    QuestionRejected {
        question: QuestionId,
        reason: String,
    },
    QuestionMerged {
        question: QuestionId,
        into: QuestionId,
    },
    QuestionQueued {
        question: QuestionId,
        position: u32,
    },
    QuestionUnqueued {
        question: QuestionId,
    },
    QuestionOnAir {
        question: QuestionId,
    },
    QuestionAnswered {
        question: QuestionId,
    },
    VoteCast {
        question: QuestionId,
    },
    VoteRetracted {
        question: QuestionId,
    },
    CommentPosted {
        comment: CommentId,
        text: String,
        author_name: Option<String>,
    },
    CommentHidden {
        comment: CommentId,
    },
    ParticipantMuted {
        participant: ParticipantId,
    },
    ParticipantUnmuted {
        participant: ParticipantId,
    },
    ParticipantBanned {
        participant: ParticipantId,
    },
    ParticipantUnbanned {
        participant: ParticipantId,
    },
    SlowModeSet {
        seconds: u32,
    },
    QaOpened,
    QaClosed,
    ChatOpened,
    ChatClosed,
    AnnouncementPinned {
        text: Option<String>,
    },
    PollOpened {
        poll: PollId,
        question: String,
        options: Vec<String>,
    },
    PollClosed {
        poll: PollId,
    },
    PollAnswered {
        poll: PollId,
        option: u32,
    },
}

impl EventKind {
    /// Short bounded name, used in exports and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::MeetingCreated { .. } => "meeting_created",
            EventKind::MeetingStarted => "meeting_started",
            EventKind::MeetingEnded => "meeting_ended",
            EventKind::ParticipantRenamed { .. } => "participant_renamed",
            EventKind::QuestionAsked { .. } => "question_asked",
            EventKind::QuestionApproved { .. } => "question_approved",
            EventKind::QuestionRejected { .. } => "question_rejected",
            EventKind::QuestionMerged { .. } => "question_merged",
            EventKind::QuestionQueued { .. } => "question_queued",
            EventKind::QuestionUnqueued { .. } => "question_unqueued",
            EventKind::QuestionOnAir { .. } => "question_on_air",
            EventKind::QuestionAnswered { .. } => "question_answered",
            EventKind::VoteCast { .. } => "vote_cast",
            EventKind::VoteRetracted { .. } => "vote_retracted",
            EventKind::CommentPosted { .. } => "comment_posted",
            EventKind::CommentHidden { .. } => "comment_hidden",
            EventKind::ParticipantMuted { .. } => "participant_muted",
            EventKind::ParticipantUnmuted { .. } => "participant_unmuted",
            EventKind::ParticipantBanned { .. } => "participant_banned",
            EventKind::ParticipantUnbanned { .. } => "participant_unbanned",
            EventKind::SlowModeSet { .. } => "slow_mode_set",
            EventKind::QaOpened => "qa_opened",
            EventKind::QaClosed => "qa_closed",
            EventKind::ChatOpened => "chat_opened",
            EventKind::ChatClosed => "chat_closed",
            EventKind::AnnouncementPinned { .. } => "announcement_pinned",
            EventKind::PollOpened { .. } => "poll_opened",
            EventKind::PollClosed { .. } => "poll_closed",
            EventKind::PollAnswered { .. } => "poll_answered",
        }
    }
}
