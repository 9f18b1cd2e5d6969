//! Before the meeting: its date, expected end, time zone, description and agenda, and whether
//! citizens may send questions before it starts. Organizer only (through the organizer API);
//! changing it is allowed until the meeting ends.

use crate::command::{Context, Permission, Rule, one};
use crate::event::{Change, EventKind};
use crate::fanout::Fanout;
use crate::ids::{ParticipantId, Timestamp};
use crate::meeting::Meeting;
use crate::rejection::Rejection;
use crate::text::{TextKind, clean, clean_optional};
use serde::{Deserialize, Serialize};

/// Most agenda points a meeting may have.
pub const MAX_AGENDA_ITEMS: usize = 30;

/// Longest time zone name accepted (IANA names are far shorter).
const MAX_TIME_ZONE_CHARS: usize = 64;

/// When and what a meeting is, as citizens see it before it starts.
///
/// Times are instants (milliseconds since the epoch, UTC); `time_zone` (an IANA name such as
/// `Europe/Copenhagen`) says how to show them. Whether the zone exists is checked where the
/// time zone database lives (the server); here only its shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub starts_at: Timestamp,
    /// The expected end; always after `starts_at`.
    pub ends_at: Timestamp,
    pub time_zone: String,
    pub description: Option<String>,
    pub agenda: Vec<String>,
    /// Citizens may ask questions (to moderation, as always) before the meeting goes live.
    pub qa_before_start: bool,
}

/// Set or replace the meeting's schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleMeeting {
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub time_zone: String,
    /// Empty for none.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub agenda: Vec<String>,
    #[serde(default)]
    pub qa_before_start: bool,
}

impl ScheduleMeeting {
    /// The schedule this command sets, with its texts cleaned, or why it is invalid.
    pub fn check(&self) -> Result<Schedule, Rejection> {
        if self.ends_at <= self.starts_at {
            return Err(Rejection::InvalidSchedule(
                "ends_at must be after starts_at",
            ));
        }
        let zone_ok = !self.time_zone.is_empty()
            && self.time_zone.len() <= MAX_TIME_ZONE_CHARS
            && self
                .time_zone
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
        if !zone_ok {
            return Err(Rejection::InvalidSchedule(
                "time_zone is not a time zone name",
            ));
        }
        if self.agenda.len() > MAX_AGENDA_ITEMS {
            return Err(Rejection::InvalidSchedule("at most 30 agenda points"));
        }
        let agenda = self
            .agenda
            .iter()
            .map(|item| clean(TextKind::AgendaItem, item))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Schedule {
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            time_zone: self.time_zone.clone(),
            description: clean_optional(TextKind::Description, &self.description)?,
            agenda,
            qa_before_start: self.qa_before_start,
        })
    }
}

impl Rule for ScheduleMeeting {
    const PERMISSION: Permission = Permission::Organizer;

    fn decide(&self, _: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        one(MeetingScheduled(self.check()?))
    }
}

/// The meeting's schedule was set or replaced (the whole of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MeetingScheduled(pub Schedule);

impl Change for MeetingScheduled {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.schedule = Some(self.0.clone());
    }

    /// Everyone gets the meeting view, so pages know to show the new schedule (they read it
    /// from the record; the view stays small for the frames that carry it often).
    fn fanout(&self, out: &mut Fanout<'_>) {
        out.meeting_changed();
    }
}

impl Meeting {
    /// Whether citizens are held back from asking because the meeting has not started and its
    /// schedule does not open questions in advance. A meeting without a schedule takes
    /// questions in advance, as it always did.
    pub(crate) fn waiting_for_start(&self) -> bool {
        self.status == crate::meeting::MeetingStatus::Scheduled
            && self.schedule.as_ref().is_some_and(|s| !s.qa_before_start)
    }
}
