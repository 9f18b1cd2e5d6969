//! After the meeting: what the organizer publishes of it. The public record page and (once
//! meetings are recorded) the replay read this; nothing is public before it is published.

use crate::command::{Context, Permission, Phase, Rule, one};
use crate::event::{Change, EventKind};
use crate::fanout::Fanout;
use crate::ids::{ParticipantId, Timestamp};
use crate::meeting::{Meeting, MeetingStatus};
use crate::rejection::Rejection;
use serde::{Deserialize, Serialize};

/// What of an ended meeting is public. All `false` withdraws a publication.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publication {
    /// The public record: the questions and what was done with them, and the poll results.
    #[serde(default)]
    pub record: bool,
    /// Rejected questions with their reasons, in the record.
    #[serde(default)]
    pub rejections: bool,
    /// The visible comments of the chat, in the record.
    #[serde(default)]
    pub comments: bool,
    /// The recording, for replay. Whether one exists is the server's to check.
    #[serde(default)]
    pub replay: bool,
}

/// Publish (or withdraw) what citizens may see of an ended meeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRecord {
    #[serde(default)]
    pub record: bool,
    #[serde(default)]
    pub rejections: bool,
    #[serde(default)]
    pub comments: bool,
    #[serde(default)]
    pub replay: bool,
}

impl Rule for PublishRecord {
    const PERMISSION: Permission = Permission::Organizer;
    const PHASE: Phase = Phase::AfterEnd;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if m.status != MeetingStatus::Ended {
            return Err(Rejection::NotEnded);
        }
        let p = Publication {
            record: self.record,
            rejections: self.rejections,
            comments: self.comments,
            replay: self.replay,
        };
        if (p.rejections || p.comments) && !p.record {
            return Err(Rejection::InvalidState(
                "rejections and comments are published as part of the record",
            ));
        }
        one(RecordPublished(p))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordPublished(pub Publication);

impl Change for RecordPublished {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.publication = self.0;
    }

    /// Nobody connected needs it: the record page reads the publication from the record.
    fn fanout(&self, _: &mut Fanout<'_>) {}
}
