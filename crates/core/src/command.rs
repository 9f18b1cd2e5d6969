//! Commands: what an actor asks the meeting to do. Imperative names; they arrive over the wire
//! (`{"type": "ask_question", "text": "…"}`) or from the organizer API.
//!
//! Each command is a struct in the module of its subject under `rules/` (`questions.rs`,
//! `polls.rs`, …), next to its `Rule` — who may issue it and what it decides — and next to the
//! events it causes, whose `Change` says how they fold into the state
//! and who hears of them. The list below only names them: adding a command is writing its struct
//! and its `impl Rule` in that module, plus one line here. A rule has no default permission, so
//! a new command is never moderator-only (or open to all) by accident.

use crate::event::EventKind;
use crate::ids::{Actor, Role, Timestamp};
use crate::meeting::{Meeting, Participant};
use crate::rejection::Rejection;
use serde::{Deserialize, Serialize};

/// Which roles may issue a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Every participant, citizens included.
    Anyone,
    /// Moderators, and speakers (who answer questions on air), and the organizer.
    Presenters,
    /// Moderators and the organizer.
    Moderators,
    /// The organizer only (through the organizer API).
    Organizer,
}

impl Permission {
    pub fn allows(self, role: Role) -> bool {
        match self {
            Permission::Anyone => true,
            Permission::Presenters => {
                matches!(role, Role::Moderator | Role::Speaker | Role::Organizer)
            }
            Permission::Moderators => matches!(role, Role::Moderator | Role::Organizer),
            Permission::Organizer => role == Role::Organizer,
        }
    }
}

/// When a command may be issued, relative to the meeting's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Until the meeting ends (almost every command).
    UntilEnd,
    /// Also after the meeting has ended (publishing its record).
    AfterEnd,
}

/// What a rule decides with: who asks, when, and their state in the meeting (if known yet).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Context<'a> {
    pub actor: &'a Actor,
    pub now: Timestamp,
    pub me: Option<&'a Participant>,
}

/// One command's rule. `decide` runs after the checks every command shares (permission, the
/// meeting exists and has not ended, the actor is not banned), and is pure: the same state,
/// context and command always give the same events, stamped by the caller with `now` and the
/// actor.
pub(crate) trait Rule {
    /// Who may issue the command. Deliberately without a default.
    const PERMISSION: Permission;

    /// Whether the command is also possible after the meeting has ended.
    const PHASE: Phase = Phase::UntilEnd;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection>;
}

/// The one event a rule decides, as `decide` returns it.
pub(crate) fn one(kind: impl Into<EventKind>) -> Result<Vec<EventKind>, Rejection> {
    Ok(vec![kind.into()])
}

/// Declares [`Command`] from the list of command structs: the serde tag (the wire's `type`,
/// also the bounded name in metrics), the dispatch to each [`Rule`], `From` for each struct,
/// and the re-export of the struct from its subject's module.
macro_rules! commands {
    ($($name:ident in $subject:ident = $wire:literal,)*) => {
        $(pub use crate::rules::$subject::$name;)*

        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum Command {
            $(#[serde(rename = $wire)] $name($name),)*
        }

        impl Command {
            /// Short bounded name (the wire's `type`), used as a metrics label and in logs.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Command::$name(_) => $wire,)*
                }
            }

            /// Which roles may issue this command.
            pub fn permission(&self) -> Permission {
                match self {
                    $(Command::$name(_) => <$name as Rule>::PERMISSION,)*
                }
            }

            /// Whether the command is also possible after the meeting has ended.
            pub fn phase(&self) -> Phase {
                match self {
                    $(Command::$name(_) => <$name as Rule>::PHASE,)*
                }
            }

            pub(crate) fn decide(
                &self,
                m: &Meeting,
                cx: &Context<'_>,
            ) -> Result<Vec<EventKind>, Rejection> {
                match self {
                    $(Command::$name(c) => c.decide(m, cx),)*
                }
            }
        }

        $(impl From<$name> for Command {
            fn from(c: $name) -> Self {
                Command::$name(c)
            }
        })*
    };
}

commands! {
    // Anyone in the meeting.
    SetName in participants = "set_name",
    AskQuestion in questions = "ask_question",
    Upvote in votes = "upvote",
    RetractUpvote in votes = "retract_upvote",
    PostComment in comments = "post_comment",
    AnswerPoll in polls = "answer_poll",

    // Moderators (mark_answered also speakers).
    ApproveQuestion in questions = "approve_question",
    RejectQuestion in questions = "reject_question",
    MergeQuestion in questions = "merge_question",
    QueueQuestion in questions = "queue_question",
    UnqueueQuestion in questions = "unqueue_question",
    PutOnAir in questions = "put_on_air",
    MarkAnswered in questions = "mark_answered",
    HideComment in comments = "hide_comment",
    MuteParticipant in participants = "mute_participant",
    UnmuteParticipant in participants = "unmute_participant",
    BanParticipant in participants = "ban_participant",
    UnbanParticipant in participants = "unban_participant",
    SetSlowMode in settings = "set_slow_mode",
    SetQaOpen in settings = "set_qa_open",
    SetChatOpen in settings = "set_chat_open",
    PinAnnouncement in settings = "pin_announcement",
    OpenPoll in polls = "open_poll",
    ClosePoll in polls = "close_poll",

    // Organizer.
    CreateMeeting in lifecycle = "create_meeting",
    StartMeeting in lifecycle = "start_meeting",
    EndMeeting in lifecycle = "end_meeting",
    ScheduleMeeting in schedule = "schedule_meeting",
    PublishRecord in record = "publish_record",
}
