//! The public record of an ended meeting (`/m/{id}/record`): what was asked and what was done
//! with each question, as the organizer chose to publish it. A view over the log, like the
//! export, but for everyone: anonymous questions never carry their author, questions nobody
//! moderated are left out, rejections and comments only when published.

use crate::calendar;
use crate::export::question_times;
use jiff::tz::TimeZone;
use serde::Serialize;
use townhall_core::{
    Meeting, Publication, QuestionId, QuestionStatus, Recorded, Schedule, Timestamp,
};
use townhall_store::MeetingRecord;

/// The JSON the record page reads.
#[derive(Debug, Serialize)]
pub struct PublicRecord {
    pub format: &'static str,
    pub meeting: MeetingPart,
    /// Answered questions in the order they were answered, then those not reached, merged
    /// and (if published) rejected.
    pub questions: Vec<PublicQuestion>,
    /// The chat's visible comments, if published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<Vec<PublicComment>>,
    pub polls: Vec<PublicPoll>,
    pub published: Publication,
}

#[derive(Debug, Serialize)]
pub struct MeetingPart {
    pub id: String,
    pub title: String,
    /// The zone the times below are given in (their offsets are that zone's).
    pub time_zone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub agenda: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
}

/// What became of a question, as the record tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered on air (or marked answered).
    Answered,
    /// On air when the meeting ended; nobody marked it answered.
    Ended,
    /// Approved but not reached.
    NotAnswered,
    Merged,
    Rejected,
}

#[derive(Debug, Serialize)]
pub struct PublicQuestion {
    pub id: QuestionId,
    pub text: String,
    /// Absent for anonymous questions, and when the author set no name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
    pub anonymous: bool,
    pub votes: u32,
    pub outcome: Outcome,
    pub asked_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_air_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<QuestionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PublicComment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
    pub text: String,
    pub at: String,
}

#[derive(Debug, Serialize)]
pub struct PublicPoll {
    pub question: String,
    pub options: Vec<String>,
    pub counts: Vec<u32>,
}

/// The public record of `meeting` from its log, in the schedule's time zone (or `default_tz`).
pub fn build(meeting: &MeetingRecord, events: &[Recorded], default_tz: &str) -> PublicRecord {
    let state = Meeting::replay(meeting.id.clone(), events);
    let published = state.publication;
    let zone_name = meeting
        .schedule
        .as_ref()
        .map_or(default_tz, |s: &Schedule| s.time_zone.as_str());
    let tz = calendar::zone(zone_name).unwrap_or(TimeZone::UTC);
    let at = |t: Timestamp| calendar::rfc3339(t, &tz);
    let times = question_times(events);

    let mut answered = Vec::new();
    let mut rest = Vec::new();
    for q in state.questions.values() {
        let t = times.get(&q.id).copied().unwrap_or_default();
        let (outcome, merged_into, reason) = match &q.status {
            QuestionStatus::Answered => (Outcome::Answered, None, None),
            QuestionStatus::Ended => (Outcome::Ended, None, None),
            QuestionStatus::Approved | QuestionStatus::Queued | QuestionStatus::OnAir => {
                (Outcome::NotAnswered, None, None)
            }
            QuestionStatus::Merged { into } => (Outcome::Merged, Some(*into), None),
            QuestionStatus::Rejected { reason } if published.rejections => {
                (Outcome::Rejected, None, Some(reason.clone()))
            }
            // Never moderated, or rejected without publishing rejections: not public.
            QuestionStatus::Pending | QuestionStatus::Rejected { .. } => continue,
        };
        let view = PublicQuestion {
            id: q.id,
            text: q.text.clone(),
            author_name: if q.anonymous {
                None
            } else {
                q.author_name.clone()
            },
            anonymous: q.anonymous,
            votes: q.votes(),
            outcome,
            asked_at: at(q.asked_at),
            on_air_at: t.on_air_at.map(at),
            answered_at: t.answered_at.or(t.ended_at).map(at),
            merged_into,
            reason,
        };
        match outcome {
            Outcome::Answered | Outcome::Ended => {
                let order = t.on_air_at.or(t.answered_at).or(t.ended_at);
                answered.push((order, view));
            }
            _ => rest.push(view),
        }
    }
    answered.sort_by_key(|(order, view)| (*order, view.id));
    rest.sort_by_key(|v| {
        let rank = match v.outcome {
            Outcome::NotAnswered => 0,
            Outcome::Merged => 1,
            _ => 2,
        };
        (rank, v.id)
    });
    let questions = answered.into_iter().map(|(_, v)| v).chain(rest).collect();

    let comments = published.comments.then(|| {
        state
            .comments
            .values()
            .filter(|c| !c.hidden)
            .map(|c| PublicComment {
                author_name: c.author_name.clone(),
                text: c.text.clone(),
                at: at(c.at),
            })
            .collect()
    });
    let schedule = meeting.schedule.as_ref();
    PublicRecord {
        format: "townhall-public-record/1",
        meeting: MeetingPart {
            id: meeting.id.to_string(),
            title: meeting.title.clone(),
            time_zone: zone_name.to_owned(),
            starts_at: schedule.map(|s| at(s.starts_at)),
            ends_at: schedule.map(|s| at(s.ends_at)),
            description: schedule.and_then(|s| s.description.clone()),
            agenda: schedule.map(|s| s.agenda.clone()).unwrap_or_default(),
            ended_at: meeting.ended_at.map(at),
        },
        questions,
        comments,
        polls: state
            .polls
            .values()
            .map(|p| PublicPoll {
                question: p.question.clone(),
                options: p.options.clone(),
                counts: p.counts(),
            })
            .collect(),
        published,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use townhall_core::command::*;
    use townhall_core::{Actor, Command, MeetingId, ParticipantId, Role};

    fn actor(id: &str, role: Role) -> Actor {
        Actor {
            participant: ParticipantId::parse(id).unwrap(),
            role,
        }
    }

    /// Runs commands through the real rules and returns the log.
    fn log(commands: Vec<(Actor, Command)>) -> (Meeting, Vec<Recorded>) {
        let mut m = Meeting::new(MeetingId::parse("m1").unwrap());
        let mut log = Vec::new();
        for (i, (actor, cmd)) in commands.into_iter().enumerate() {
            let now = Timestamp(1_773_334_800_000 + 60_000 * i as u64);
            for event in m.decide(&actor, &cmd, now).expect("command accepted") {
                let rec = Recorded {
                    offset: m.offset + 1,
                    event,
                };
                m.apply(&rec);
                log.push(rec);
            }
        }
        (m, log)
    }

    #[test]
    fn answered_first_in_order_anonymous_without_author_unpublished_left_out() {
        let org = actor("organizer", Role::Organizer);
        let modr = actor("mod", Role::Moderator);
        let anna = actor("anna", Role::Citizen);
        let ask = |text: &str, anonymous| {
            Command::AskQuestion(AskQuestion {
                text: text.into(),
                anonymous,
            })
        };
        let q = |n| townhall_core::QuestionId(n);
        let (m, events) = log(vec![
            (
                org.clone(),
                Command::CreateMeeting(CreateMeeting {
                    title: "Møde".into(),
                }),
            ),
            (org.clone(), Command::StartMeeting(StartMeeting)),
            (
                anna.clone(),
                Command::SetName(SetName {
                    name: "Anna".into(),
                }),
            ),
            (anna.clone(), ask("Først stillet, sidst besvaret", false)),
            (anna.clone(), ask("Anonymt spørgsmål", true)),
            (anna.clone(), ask("Afvist", false)),
            (anna.clone(), ask("Dublet", false)),
            (anna.clone(), ask("Aldrig behandlet", false)),
            (
                modr.clone(),
                Command::ApproveQuestion(ApproveQuestion { question: q(1) }),
            ),
            (
                modr.clone(),
                Command::ApproveQuestion(ApproveQuestion { question: q(2) }),
            ),
            (
                modr.clone(),
                Command::RejectQuestion(RejectQuestion {
                    question: q(3),
                    reason: "Uden for emnet".into(),
                }),
            ),
            (
                modr.clone(),
                Command::MergeQuestion(MergeQuestion {
                    question: q(4),
                    into: q(2),
                }),
            ),
            (modr.clone(), Command::PutOnAir(PutOnAir { question: q(2) })),
            (modr.clone(), Command::PutOnAir(PutOnAir { question: q(1) })),
            (org.clone(), Command::EndMeeting(EndMeeting)),
        ]);
        let mut record = MeetingRecord {
            id: m.id.clone(),
            title: m.title.clone(),
            status: m.status,
            created_at: m.created_at,
            ended_at: Some(Timestamp(1)),
            moderator_token_hash: String::new(),
            studio_token_hash: String::new(),
            last_offset: m.offset,
            schedule: None,
            publication: Publication::default(),
        };
        let r = build(&record, &events, "Europe/Copenhagen");
        let ids: Vec<_> = r.questions.iter().map(|q| (q.id.0, q.outcome)).collect();
        assert_eq!(
            ids,
            vec![
                (2, Outcome::Answered),
                (1, Outcome::Ended),
                (4, Outcome::Merged)
            ]
        );
        let anonymous = &r.questions[0];
        assert!(anonymous.anonymous && anonymous.author_name.is_none());
        assert_eq!(r.questions[1].author_name.as_deref(), Some("Anna"));
        assert_eq!(r.questions[2].merged_into, Some(q(2)));
        assert!(r.comments.is_none());
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("anna\""), "no participant ids: {json}");
        assert!(!json.contains("Aldrig behandlet") && !json.contains("Uden for emnet"));
        assert!(
            r.questions[0]
                .answered_at
                .as_deref()
                .unwrap()
                .ends_with("+01:00")
        );

        // With rejections published, the rejection and its reason appear last.
        let (_, mut events) = (m.clone(), events);
        let publish = Command::PublishRecord(PublishRecord {
            record: true,
            rejections: true,
            comments: true,
            replay: false,
        });
        let mut m2 = Meeting::replay(m.id.clone(), &events);
        for event in m2
            .decide(&org, &publish, Timestamp(2_000_000_000_000))
            .unwrap()
        {
            let rec = Recorded {
                offset: m2.offset + 1,
                event,
            };
            m2.apply(&rec);
            events.push(rec);
        }
        record.publication = m2.publication;
        let r = build(&record, &events, "Europe/Copenhagen");
        let last = r.questions.last().unwrap();
        assert_eq!(
            (last.outcome, last.reason.as_deref()),
            (Outcome::Rejected, Some("Uden for emnet"))
        );
        assert_eq!(r.comments.as_ref().map(Vec::len), Some(0));
    }
}
