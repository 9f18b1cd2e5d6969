//! The meeting's settings: slow mode, Q&A and chat open or closed, the pinned announcement.
//! Moderators change them; everyone gets the new meeting view.

use crate::command::{Context, Permission, Rule, one};
use crate::event::{Change, EventKind};
use crate::fanout::Fanout;
use crate::ids::{ParticipantId, Timestamp};
use crate::meeting::Meeting;
use crate::rejection::Rejection;
use crate::text::{TextKind, clean_optional};
use serde::{Deserialize, Serialize};

/// Longest slow mode: an hour between two posts.
const MAX_SLOW_MODE_SECS: u32 = 3600;

/// Minimum seconds between two posts of one citizen; 0 turns slow mode off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSlowMode {
    pub seconds: u32,
}

impl Rule for SetSlowMode {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, _: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if self.seconds > MAX_SLOW_MODE_SECS {
            return Err(Rejection::InvalidState("slow mode is at most 3600 seconds"));
        }
        one(SlowModeSet {
            seconds: self.seconds,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetQaOpen {
    pub open: bool,
}

impl Rule for SetQaOpen {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, _: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if self.open {
            one(QaOpened)
        } else {
            one(QaClosed)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetChatOpen {
    pub open: bool,
}

impl Rule for SetChatOpen {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, _: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if self.open {
            one(ChatOpened)
        } else {
            one(ChatClosed)
        }
    }
}

/// Pin an announcement above the chat; empty text removes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinAnnouncement {
    pub text: String,
}

impl Rule for PinAnnouncement {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, _: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        one(AnnouncementPinned {
            text: clean_optional(TextKind::Announcement, &self.text)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowModeSet {
    pub seconds: u32,
}

impl Change for SlowModeSet {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.slow_mode_secs = self.seconds;
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.meeting_changed();
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QaOpened;

impl Change for QaOpened {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.qa_open = true;
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.meeting_changed();
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QaClosed;

impl Change for QaClosed {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.qa_open = false;
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.meeting_changed();
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatOpened;

impl Change for ChatOpened {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.chat_open = true;
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.meeting_changed();
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatClosed;

impl Change for ChatClosed {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.chat_open = false;
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.meeting_changed();
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncementPinned {
    pub text: Option<String>,
}

impl Change for AnnouncementPinned {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.announcement = self.text.clone();
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.meeting_changed();
    }
}
