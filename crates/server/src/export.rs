//! The meeting's record for the organizer: the whole event log, and the final state of every
//! question, as JSON and CSV. Views over the log, nothing else.

use serde_json::{Value, json};
use townhall_core::event::{
    AnnouncementPinned, ChatClosed, ChatOpened, CommentHidden, CommentPosted, CommentUnhidden,
    MeetingCreated, MeetingEnded, MeetingStarted, ParticipantBanned, ParticipantMuted,
    ParticipantRenamed, ParticipantUnbanned, ParticipantUnmuted, PollAnswered, PollClosed,
    PollOpened, QaClosed, QaOpened, QuestionAnswered, QuestionApproved, QuestionAsked,
    QuestionClaimed, QuestionMerged, QuestionOnAir, QuestionQueued, QuestionRejected,
    QuestionReleased, QuestionUnqueued, SlowModeSet, VoteCast, VoteRetracted, WordFilterSet,
};
use townhall_core::{EventKind, Meeting, Recorded, Timestamp};
use townhall_store::MeetingRecord;

#[derive(Debug)]
pub struct Record {
    meeting: MeetingRecord,
    events: Vec<Recorded>,
    exported_at: Timestamp,
}

/// ISO 8601 (UTC) for a timestamp in milliseconds.
fn iso(t: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0) * 1_000_000)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Spreadsheets run cells starting with these as formulas; prefix them so text stays text.
fn csv_safe(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

impl Record {
    pub fn new(meeting: MeetingRecord, events: Vec<Recorded>, exported_at: Timestamp) -> Self {
        Self {
            meeting,
            events,
            exported_at,
        }
    }

    pub fn filename(&self, ext: &str) -> String {
        format!("townhall-{}-record.{ext}", self.meeting.id)
    }

    pub fn to_json(&self) -> Value {
        let state = Meeting::replay(self.meeting.id.clone(), &self.events);
        let questions: Vec<Value> = state
            .questions
            .values()
            .map(|q| {
                json!({
                    "id": q.id,
                    "text": q.text,
                    "author": q.author,
                    "author_name": q.author_name,
                    "anonymous": q.anonymous,
                    "asked_at": iso(q.asked_at),
                    "status": q.status.name(),
                    "reason": match &q.status { townhall_core::QuestionStatus::Rejected { reason } => Some(reason.clone()), _ => None },
                    "merged_into": match &q.status { townhall_core::QuestionStatus::Merged { into } => Some(*into), _ => None },
                    "votes": q.votes(),
                })
            })
            .collect();
        json!({
            "format": "townhall-record/1",
            "exported_at": iso(self.exported_at),
            "meeting": {
                "id": self.meeting.id,
                "title": self.meeting.title,
                "status": self.meeting.status,
                "created_at": iso(self.meeting.created_at),
                "ended_at": self.meeting.ended_at.map(iso),
            },
            "questions": questions,
            "comments": state.comments.len(),
            "polls": state.polls.values().map(|p| json!({
                "id": p.id,
                "question": p.question,
                "options": p.options,
                "counts": p.counts(),
                "open": p.open,
                "opened_at": iso(p.opened_at),
            })).collect::<Vec<_>>(),
            "events": self.events,
        })
    }

    /// One row per event: when, what, by whom, about which question or comment.
    pub fn to_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "offset",
            "time",
            "event",
            "by",
            "question",
            "comment",
            "participant",
            "text",
        ])?;
        for rec in &self.events {
            let (question, comment, participant, text) = match &rec.event.kind {
                EventKind::MeetingCreated(MeetingCreated { title }) => {
                    (None, None, None, Some(title.clone()))
                }
                EventKind::ParticipantRenamed(ParticipantRenamed { name }) => {
                    (None, None, None, name.clone())
                }
                EventKind::QuestionAsked(QuestionAsked { question, text, .. }) => {
                    (Some(*question), None, None, Some(text.clone()))
                }
                EventKind::QuestionRejected(QuestionRejected { question, reason }) => {
                    (Some(*question), None, None, Some(reason.clone()))
                }
                EventKind::QuestionMerged(QuestionMerged { question, into }) => {
                    (Some(*question), None, None, Some(format!("into {into}")))
                }
                EventKind::QuestionQueued(QuestionQueued { question, position }) => (
                    Some(*question),
                    None,
                    None,
                    Some(format!("position {position}")),
                ),
                EventKind::QuestionApproved(QuestionApproved { question })
                | EventKind::QuestionUnqueued(QuestionUnqueued { question })
                | EventKind::QuestionOnAir(QuestionOnAir { question })
                | EventKind::QuestionAnswered(QuestionAnswered { question })
                | EventKind::VoteCast(VoteCast { question })
                | EventKind::VoteRetracted(VoteRetracted { question }) => {
                    (Some(*question), None, None, None)
                }
                EventKind::CommentPosted(CommentPosted { comment, text, .. }) => {
                    (None, Some(*comment), None, Some(text.clone()))
                }
                EventKind::CommentHidden(CommentHidden { comment })
                | EventKind::CommentUnhidden(CommentUnhidden { comment }) => {
                    (None, Some(*comment), None, None)
                }
                EventKind::QuestionClaimed(QuestionClaimed { question })
                | EventKind::QuestionReleased(QuestionReleased { question }) => {
                    (Some(*question), None, None, None)
                }
                EventKind::WordFilterSet(WordFilterSet { words }) => (
                    None,
                    None,
                    None,
                    Some(
                        words
                            .as_ref()
                            .map_or("(defaults)".to_owned(), |w| w.join(", ")),
                    ),
                ),
                EventKind::ParticipantMuted(ParticipantMuted { participant })
                | EventKind::ParticipantUnmuted(ParticipantUnmuted { participant })
                | EventKind::ParticipantBanned(ParticipantBanned { participant })
                | EventKind::ParticipantUnbanned(ParticipantUnbanned { participant }) => {
                    (None, None, Some(participant.to_string()), None)
                }
                EventKind::SlowModeSet(SlowModeSet { seconds }) => {
                    (None, None, None, Some(format!("{seconds} s")))
                }
                EventKind::AnnouncementPinned(AnnouncementPinned { text }) => {
                    (None, None, None, text.clone())
                }
                EventKind::PollOpened(PollOpened {
                    poll,
                    question,
                    options,
                }) => (
                    None,
                    None,
                    None,
                    Some(format!("poll {poll}: {question} [{}]", options.join(" | "))),
                ),
                EventKind::PollClosed(PollClosed { poll }) => {
                    (None, None, None, Some(format!("poll {poll}")))
                }
                EventKind::PollAnswered(PollAnswered { poll, option }) => (
                    None,
                    None,
                    None,
                    Some(format!("poll {poll}: option {option}")),
                ),
                EventKind::MeetingStarted(MeetingStarted)
                | EventKind::MeetingEnded(MeetingEnded)
                | EventKind::QaOpened(QaOpened)
                | EventKind::QaClosed(QaClosed)
                | EventKind::ChatOpened(ChatOpened)
                | EventKind::ChatClosed(ChatClosed) => (None, None, None, None),
            };
            w.write_record([
                rec.offset.to_string(),
                iso(rec.event.at),
                rec.event.kind.name().to_owned(),
                rec.event.by.to_string(),
                question.map(|q| q.to_string()).unwrap_or_default(),
                comment.map(|c| c.to_string()).unwrap_or_default(),
                participant.unwrap_or_default(),
                csv_safe(&text.unwrap_or_default()),
            ])?;
        }
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_stay_text() {
        assert_eq!(csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_safe("Hvornår?"), "Hvornår?");
    }

    #[test]
    fn times_are_iso_utc() {
        assert_eq!(iso(Timestamp(0)), "1970-01-01T00:00:00Z");
    }
}
