//! Commands: what an actor asks the meeting to do. Imperative names; they arrive over the wire
//! (`{"type": "ask_question", "text": "…"}`) or from the organizer API.

use crate::ids::{CommentId, ParticipantId, PollId, QuestionId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    // Anyone in the meeting.
    /// Set or clear (empty text) the display name shown with questions and comments.
    SetName {
        name: String,
    },
    AskQuestion {
        text: String,
        /// Hide the author's name from other citizens (moderators still see it).
        #[serde(default)]
        anonymous: bool,
    },
    Upvote {
        question: QuestionId,
    },
    RetractUpvote {
        question: QuestionId,
    },
    PostComment {
        text: String,
    },
    /// Answer an open poll with the index of one of its options (once).
    AnswerPoll {
        poll: PollId,
        option: u32,
    },

    // Moderators (mark_answered also speakers).
    ApproveQuestion {
        question: QuestionId,
    },
    RejectQuestion {
        question: QuestionId,
        reason: String,
    },
    /// Merge a duplicate `question` into `into`, which keeps the union of both votes.
    MergeQuestion {
        question: QuestionId,
        into: QuestionId,
    },
    /// Put an approved question in the speakers' queue, or move a queued one; `position` 0 is
    /// next, absent means last.
    QueueQuestion {
        question: QuestionId,
        #[serde(default)]
        position: Option<u32>,
    },
    UnqueueQuestion {
        question: QuestionId,
    },
    PutOnAir {
        question: QuestionId,
    },
    MarkAnswered {
        question: QuestionId,
    },
    HideComment {
        comment: CommentId,
    },
    MuteParticipant {
        participant: ParticipantId,
    },
    UnmuteParticipant {
        participant: ParticipantId,
    },
    BanParticipant {
        participant: ParticipantId,
    },
    UnbanParticipant {
        participant: ParticipantId,
    },
    /// Minimum seconds between two posts of one citizen; 0 turns slow mode off.
    SetSlowMode {
        seconds: u32,
    },
    SetQaOpen {
        open: bool,
    },
    SetChatOpen {
        open: bool,
    },
    /// Pin an announcement above the chat; empty text removes it.
    PinAnnouncement {
        text: String,
    },

    /// Ask everyone a multiple-choice question (2 to 6 options).
    OpenPoll {
        question: String,
        options: Vec<String>,
    },
    ClosePoll {
        poll: PollId,
    },

    // Organizer.
    CreateMeeting {
        title: String,
    },
    StartMeeting,
    EndMeeting,
}

impl Command {
    /// Short bounded name, used as a metrics label and in logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::SetName { .. } => "set_name",
            Command::AskQuestion { .. } => "ask_question",
            Command::Upvote { .. } => "upvote",
            Command::RetractUpvote { .. } => "retract_upvote",
            Command::PostComment { .. } => "post_comment",
            Command::AnswerPoll { .. } => "answer_poll",
            Command::OpenPoll { .. } => "open_poll",
            Command::ClosePoll { .. } => "close_poll",
            Command::ApproveQuestion { .. } => "approve_question",
            Command::RejectQuestion { .. } => "reject_question",
            Command::MergeQuestion { .. } => "merge_question",
            Command::QueueQuestion { .. } => "queue_question",
            Command::UnqueueQuestion { .. } => "unqueue_question",
            Command::PutOnAir { .. } => "put_on_air",
            Command::MarkAnswered { .. } => "mark_answered",
            Command::HideComment { .. } => "hide_comment",
            Command::MuteParticipant { .. } => "mute_participant",
            Command::UnmuteParticipant { .. } => "unmute_participant",
            Command::BanParticipant { .. } => "ban_participant",
            Command::UnbanParticipant { .. } => "unban_participant",
            Command::SetSlowMode { .. } => "set_slow_mode",
            Command::SetQaOpen { .. } => "set_qa_open",
            Command::SetChatOpen { .. } => "set_chat_open",
            Command::PinAnnouncement { .. } => "pin_announcement",
            Command::CreateMeeting { .. } => "create_meeting",
            Command::StartMeeting => "start_meeting",
            Command::EndMeeting => "end_meeting",
        }
    }
}
