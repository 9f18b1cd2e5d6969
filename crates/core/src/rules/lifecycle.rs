//! The meeting itself: created (scheduled), started (live), ended. Organizer only.

use crate::command::{Context, Permission, Rule, one};
use crate::event::{Change, EventKind};
use crate::fanout::Fanout;
use crate::ids::{ParticipantId, Timestamp};
use crate::meeting::{Meeting, MeetingStatus};
use crate::rejection::Rejection;
use crate::rules::polls::PollClosed;
use crate::rules::questions::QuestionEnded;
use crate::text::{TextKind, clean};
use serde::{Deserialize, Serialize};

/// Create the meeting (the first event of every log); it is scheduled until started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMeeting {
    pub title: String,
}

impl Rule for CreateMeeting {
    const PERMISSION: Permission = Permission::Organizer;

    fn decide(&self, _: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        one(MeetingCreated {
            title: clean(TextKind::Title, &self.title)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartMeeting;

impl Rule for StartMeeting {
    const PERMISSION: Permission = Permission::Organizer;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        match m.status {
            MeetingStatus::Scheduled => one(MeetingStarted),
            _ => Err(Rejection::InvalidState("the meeting is already live")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndMeeting;

impl Rule for EndMeeting {
    const PERMISSION: Permission = Permission::Organizer;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        // The question on air is recorded as ended (not known to be answered) and open polls
        // close, in the record too.
        let answered = m.on_air.map(|q| QuestionEnded { question: q }.into());
        let closed = m
            .polls
            .values()
            .filter(|p| p.open)
            .map(|p| PollClosed { poll: p.id }.into());
        Ok(answered
            .into_iter()
            .chain(closed)
            .chain([MeetingEnded.into()])
            .collect())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingCreated {
    pub title: String,
}

impl Change for MeetingCreated {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, at: Timestamp) {
        m.title = self.title.clone();
        m.status = MeetingStatus::Scheduled;
        m.created_at = at;
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.meeting_changed();
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingStarted;

impl Change for MeetingStarted {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.status = MeetingStatus::Live;
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.meeting_changed();
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingEnded;

impl Change for MeetingEnded {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.status = MeetingStatus::Ended;
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.meeting_changed();
    }
}
