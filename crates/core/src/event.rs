//! Events: what happened, in the past tense. The log of a meeting is a sequence of these, and
//! the stored form is versioned by the store.
//!
//! Each event is a struct in the module of its subject under `rules/`, beside the commands that
//! cause it, with its `Change`: how it folds into the state and who hears of it. The list
//! below only names them (see [`crate::command`] for the same shape on the command side).

use crate::fanout::Fanout;
use crate::ids::{Offset, ParticipantId, Timestamp};
use crate::meeting::Meeting;
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

/// One event's effect.
pub(crate) trait Change {
    /// Folds the event, caused by `by` at `at`, into the state.
    ///
    /// Events come from `decide` or from the log, so they are valid for this state; an event
    /// that refers to something unknown is ignored rather than trusted.
    fn apply(&self, m: &mut Meeting, by: &ParticipantId, at: Timestamp);

    /// The frames the event causes, each with its audience, once it has been applied.
    fn fanout(&self, out: &mut Fanout<'_>);
}

/// Declares [`EventKind`] from the list of event structs: the serde tag (the stored `type`,
/// also the `kind` of event frames), the dispatch to each [`Change`], `From` for each struct,
/// and the re-export of the struct from its subject's module.
macro_rules! events {
    ($($name:ident in $subject:ident = $wire:literal,)*) => {
        $(pub use crate::rules::$subject::$name;)*

        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum EventKind {
            $(#[serde(rename = $wire)] $name($name),)*
        }

        impl EventKind {
            /// Short bounded name (the stored `type`), used in frames, exports and metrics.
            pub fn name(&self) -> &'static str {
                match self {
                    $(EventKind::$name(_) => $wire,)*
                }
            }

            pub(crate) fn apply(&self, m: &mut Meeting, by: &ParticipantId, at: Timestamp) {
                match self {
                    $(EventKind::$name(e) => e.apply(m, by, at),)*
                }
            }

            pub(crate) fn fanout(&self, out: &mut Fanout<'_>) {
                match self {
                    $(EventKind::$name(e) => e.fanout(out),)*
                }
            }
        }

        $(impl From<$name> for EventKind {
            fn from(e: $name) -> Self {
                EventKind::$name(e)
            }
        })*
    };
}

events! {
    MeetingCreated in lifecycle = "meeting_created",
    MeetingStarted in lifecycle = "meeting_started",
    MeetingEnded in lifecycle = "meeting_ended",
    ParticipantRenamed in participants = "participant_renamed",
    QuestionAsked in questions = "question_asked",
    QuestionApproved in questions = "question_approved",
    QuestionRejected in questions = "question_rejected",
    QuestionMerged in questions = "question_merged",
    QuestionQueued in questions = "question_queued",
    QuestionUnqueued in questions = "question_unqueued",
    QuestionOnAir in questions = "question_on_air",
    QuestionAnswered in questions = "question_answered",
    VoteCast in votes = "vote_cast",
    VoteRetracted in votes = "vote_retracted",
    CommentPosted in comments = "comment_posted",
    CommentHidden in comments = "comment_hidden",
    ParticipantMuted in participants = "participant_muted",
    ParticipantUnmuted in participants = "participant_unmuted",
    ParticipantBanned in participants = "participant_banned",
    ParticipantUnbanned in participants = "participant_unbanned",
    SlowModeSet in settings = "slow_mode_set",
    QaOpened in settings = "qa_opened",
    QaClosed in settings = "qa_closed",
    ChatOpened in settings = "chat_opened",
    ChatClosed in settings = "chat_closed",
    AnnouncementPinned in settings = "announcement_pinned",
    PollOpened in polls = "poll_opened",
    PollClosed in polls = "poll_closed",
    PollAnswered in polls = "poll_answered",
    MeetingScheduled in schedule = "meeting_scheduled",
    QuestionEnded in questions = "question_ended",
    RecordPublished in record = "record_published",
}
