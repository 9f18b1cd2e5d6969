//! The meeting's record for the organizer: the whole event log, and the final state of every
//! question, as JSON and CSV. Views over the log, nothing else.

use crate::calendar;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use townhall_core::event::{
    AnnouncementPinned, ChatClosed, ChatOpened, CommentHidden, CommentPosted, MeetingCreated,
    MeetingEnded, MeetingStarted, ParticipantBanned, ParticipantMuted, ParticipantRenamed,
    ParticipantUnbanned, ParticipantUnmuted, PollAnswered, PollClosed, PollOpened, QaClosed,
    QaOpened, QuestionAnswered, QuestionApproved, QuestionAsked, QuestionMerged, QuestionOnAir,
    QuestionQueued, QuestionRejected, QuestionUnqueued, SlowModeSet, VoteCast, VoteRetracted,
};
use townhall_core::event::{MeetingScheduled, QuestionEnded, RecordPublished};
use townhall_core::{EventKind, Meeting, QuestionId, QuestionStatus, Recorded, Timestamp};
use townhall_store::MeetingRecord;

/// When a question moved through moderation, read from the log (the state keeps only where it
/// is now).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuestionTimes {
    /// The first approval (a question may be rejected and approved again).
    pub approved_at: Option<Timestamp>,
    /// The last time it went on air.
    pub on_air_at: Option<Timestamp>,
    pub answered_at: Option<Timestamp>,
    /// The meeting ended while it was on air.
    pub ended_at: Option<Timestamp>,
    pub rejected_at: Option<Timestamp>,
    pub merged_at: Option<Timestamp>,
}

/// Every question's times, by question.
pub fn question_times(events: &[Recorded]) -> BTreeMap<QuestionId, QuestionTimes> {
    let mut times: BTreeMap<QuestionId, QuestionTimes> = BTreeMap::new();
    for rec in events {
        let at = Some(rec.event.at);
        match &rec.event.kind {
            EventKind::QuestionApproved(QuestionApproved { question }) => {
                let t = times.entry(*question).or_default();
                t.approved_at = t.approved_at.or(at);
            }
            EventKind::QuestionOnAir(QuestionOnAir { question }) => {
                times.entry(*question).or_default().on_air_at = at;
            }
            EventKind::QuestionAnswered(QuestionAnswered { question }) => {
                times.entry(*question).or_default().answered_at = at;
            }
            EventKind::QuestionEnded(QuestionEnded { question }) => {
                times.entry(*question).or_default().ended_at = at;
            }
            EventKind::QuestionRejected(QuestionRejected { question, .. }) => {
                times.entry(*question).or_default().rejected_at = at;
            }
            EventKind::QuestionMerged(QuestionMerged { question, .. }) => {
                times.entry(*question).or_default().merged_at = at;
            }
            _ => {}
        }
    }
    times
}

/// Who reads a questions export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The municipality itself: authors of anonymous questions are named, marked anonymous.
    Clerk,
    /// A freedom-of-information request: authors of anonymous questions are left out.
    FreedomOfInformation,
}

/// The language of a questions export's headings and statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Da,
    En,
}

impl Lang {
    fn headings(self) -> [&'static str; 12] {
        match self {
            Lang::Da => [
                "nr",
                "spørgsmål",
                "spørger",
                "anonym",
                "stemmer",
                "status",
                "sammenlagt med",
                "begrundelse",
                "stillet",
                "godkendt",
                "i udsendelsen",
                "besvaret",
            ],
            Lang::En => [
                "no",
                "question",
                "author",
                "anonymous",
                "votes",
                "status",
                "merged into",
                "reason",
                "asked",
                "approved",
                "on air",
                "answered",
            ],
        }
    }

    fn yes_no(self, yes: bool) -> &'static str {
        match (self, yes) {
            (Lang::Da, true) => "ja",
            (Lang::Da, false) => "nej",
            (Lang::En, true) => "yes",
            (Lang::En, false) => "no",
        }
    }

    fn anonymous(self) -> &'static str {
        match self {
            Lang::Da => "anonym",
            Lang::En => "anonymous",
        }
    }

    /// A status as a clerk reads it.
    fn status(self, status: &QuestionStatus) -> &'static str {
        match (self, status) {
            (Lang::Da, QuestionStatus::Pending) => "ikke behandlet",
            (Lang::Da, QuestionStatus::Approved) => "godkendt, ikke besvaret",
            (Lang::Da, QuestionStatus::Rejected { .. }) => "afvist",
            (Lang::Da, QuestionStatus::Queued) => "i kø, ikke besvaret",
            (Lang::Da, QuestionStatus::OnAir) => "i udsendelsen",
            (Lang::Da, QuestionStatus::Answered) => "besvaret",
            (Lang::Da, QuestionStatus::Ended) => "i udsendelsen da mødet sluttede",
            (Lang::Da, QuestionStatus::Merged { .. }) => "sammenlagt",
            (Lang::En, QuestionStatus::Pending) => "not moderated",
            (Lang::En, QuestionStatus::Approved) => "approved, not answered",
            (Lang::En, QuestionStatus::Rejected { .. }) => "rejected",
            (Lang::En, QuestionStatus::Queued) => "queued, not answered",
            (Lang::En, QuestionStatus::OnAir) => "on air",
            (Lang::En, QuestionStatus::Answered) => "answered",
            (Lang::En, QuestionStatus::Ended) => "on air when the meeting ended",
            (Lang::En, QuestionStatus::Merged { .. }) => "merged",
        }
    }
}

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
        let times = question_times(&self.events);
        let questions: Vec<Value> = state
            .questions
            .values()
            .map(|q| {
                let t = times.get(&q.id).copied().unwrap_or_default();
                json!({
                    "approved_at": t.approved_at.map(iso),
                    "on_air_at": t.on_air_at.map(iso),
                    "answered_at": t.answered_at.map(iso),
                    "ended_at": t.ended_at.map(iso),
                    "rejected_at": t.rejected_at.map(iso),
                    "merged_at": t.merged_at.map(iso),
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

    pub fn questions_filename(&self, audience: Audience) -> String {
        match audience {
            Audience::Clerk => format!("townhall-{}-questions.csv", self.meeting.id),
            Audience::FreedomOfInformation => {
                format!("townhall-{}-questions-foi.csv", self.meeting.id)
            }
        }
    }

    /// One row per question for a clerk: text, author (or "anonymous"), votes, what became of
    /// it and when, in local time of `tz`. UTF-8 with a byte order mark, so spreadsheets
    /// (Excel) read æøå right.
    pub fn questions_csv(
        &self,
        audience: Audience,
        lang: Lang,
        tz: &jiff::tz::TimeZone,
    ) -> Result<Vec<u8>, csv::Error> {
        let state = Meeting::replay(self.meeting.id.clone(), &self.events);
        let times = question_times(&self.events);
        let mut w = csv::Writer::from_writer("\u{feff}".as_bytes().to_vec());
        w.write_record(lang.headings())?;
        let local = |t: Option<Timestamp>| t.map(|t| calendar::local(t, tz)).unwrap_or_default();
        for q in state.questions.values() {
            let t = times.get(&q.id).copied().unwrap_or_default();
            let author = match (q.anonymous, audience) {
                (true, Audience::FreedomOfInformation) => lang.anonymous().to_owned(),
                _ => q.author_name.clone().unwrap_or_default(),
            };
            let (merged_into, reason) = match &q.status {
                QuestionStatus::Merged { into } => (into.to_string(), String::new()),
                QuestionStatus::Rejected { reason } => (String::new(), reason.clone()),
                _ => (String::new(), String::new()),
            };
            w.write_record([
                q.id.to_string(),
                csv_safe(&q.text),
                csv_safe(&author),
                lang.yes_no(q.anonymous).to_owned(),
                q.votes().to_string(),
                lang.status(&q.status).to_owned(),
                merged_into,
                csv_safe(&reason),
                local(Some(q.asked_at)),
                local(t.approved_at),
                local(t.on_air_at),
                local(t.answered_at),
            ])?;
        }
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
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
                | EventKind::QuestionEnded(QuestionEnded { question })
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
                EventKind::CommentHidden(CommentHidden { comment }) => {
                    (None, Some(*comment), None, None)
                }
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
                EventKind::MeetingScheduled(MeetingScheduled(schedule)) => (
                    None,
                    None,
                    None,
                    Some(format!(
                        "{} – {} ({})",
                        iso(schedule.starts_at),
                        iso(schedule.ends_at),
                        schedule.time_zone
                    )),
                ),
                EventKind::RecordPublished(RecordPublished(p)) => (
                    None,
                    None,
                    None,
                    Some(format!(
                        "record {}, rejections {}, comments {}, replay {}",
                        p.record, p.rejections, p.comments, p.replay
                    )),
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
