//! What one participant may see of the meeting: the projections sent over the wire.
//!
//! Citizens never see pending or rejected questions of others, nor who asked an anonymous
//! question; staff (moderators, speakers) see everything.

use crate::ids::{
    CommentId, MeetingId, Offset, ParticipantId, PollId, QuestionId, Role, Timestamp,
};
use crate::meeting::{
    Comment, Meeting, MeetingStatus, Participant, Poll, Question, QuestionStatus,
};
use serde::{Deserialize, Serialize};

/// How a question is shown: to staff, to its author, or to the other citizens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perspective {
    Staff,
    Author,
    Public,
}

/// Who is looking: a participant in a role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Viewer {
    pub participant: ParticipantId,
    pub role: Role,
}

impl Viewer {
    /// The perspective this viewer has on `q`, or `None` if they may not see it at all.
    pub fn perspective_on(&self, q: &Question) -> Option<Perspective> {
        if self.role.is_staff() {
            Some(Perspective::Staff)
        } else if q.author == self.participant {
            Some(Perspective::Author)
        } else if q.public {
            Some(Perspective::Public)
        } else {
            None
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionView {
    pub id: QuestionId,
    pub text: String,
    /// Shown name; absent when anonymous (to citizens) or never set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
    pub anonymous: bool,
    /// The author's participant id, for moderators only (to mute or ban).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<ParticipantId>,
    pub status: String,
    /// Rejection reason, for the author and staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<QuestionId>,
    pub votes: u32,
    pub asked_at: Timestamp,
    /// True in the author's own view.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mine: bool,
    /// Staff only: the filter word the text matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged: Option<String>,
    /// Staff only: the moderator who claimed the pending question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<ParticipantId>,
}

impl QuestionView {
    pub fn of(q: &Question, p: Perspective) -> Self {
        let staff = p == Perspective::Staff;
        let author = p == Perspective::Author;
        let show_name = staff || author || !q.anonymous;
        let (reason, merged_into) = match &q.status {
            QuestionStatus::Rejected { reason } if staff || author => (Some(reason.clone()), None),
            QuestionStatus::Merged { into } => (None, Some(*into)),
            _ => (None, None),
        };
        Self {
            id: q.id,
            text: q.text.clone(),
            author_name: if show_name {
                q.author_name.clone()
            } else {
                None
            },
            anonymous: q.anonymous,
            author: staff.then(|| q.author.clone()),
            status: q.status.name().to_owned(),
            reason,
            merged_into,
            votes: q.votes(),
            asked_at: q.asked_at,
            mine: author,
            flagged: if staff { q.flagged.clone() } else { None },
            claimed_by: if staff { q.claimed_by.clone() } else { None },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentView {
    pub id: CommentId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
    /// For moderators only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<ParticipantId>,
    pub text: String,
    pub at: Timestamp,
    /// Staff still see hidden comments, marked; citizens are told to remove them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// Staff only: held by the word filter, which matched this word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

impl CommentView {
    pub fn of(c: &Comment, staff: bool) -> Self {
        Self {
            id: c.id,
            author_name: c.author_name.clone(),
            author: staff.then(|| c.author.clone()),
            text: c.text.clone(),
            at: c.at,
            hidden: c.hidden,
            held: if staff { c.held.clone() } else { None },
        }
    }
}

/// The meeting-wide settings every participant sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingView {
    pub id: MeetingId,
    pub title: String,
    pub status: MeetingStatus,
    pub qa_open: bool,
    pub chat_open: bool,
    pub slow_mode_secs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announcement: Option<String>,
    /// Queued questions in order, next first.
    pub queue: Vec<QuestionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_air: Option<QuestionId>,
}

impl MeetingView {
    pub fn of(m: &Meeting) -> Self {
        Self {
            id: m.id.clone(),
            title: m.title.clone(),
            status: m.status,
            qa_open: m.qa_open,
            chat_open: m.chat_open,
            slow_mode_secs: m.slow_mode_secs,
            announcement: m.announcement.clone(),
            queue: m.queue.clone(),
            on_air: m.on_air,
        }
    }
}

/// A participant as moderators see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantView {
    pub id: ParticipantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub muted: bool,
    pub banned: bool,
}

impl ParticipantView {
    pub fn of(id: &ParticipantId, p: &Participant) -> Self {
        Self {
            id: id.clone(),
            name: p.name.clone(),
            muted: p.muted,
            banned: p.banned,
        }
    }
}

/// A poll with its results so far (results are public).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollView {
    pub id: PollId,
    pub question: String,
    pub options: Vec<String>,
    pub open: bool,
    /// Answers per option, in option order.
    pub counts: Vec<u32>,
}

impl PollView {
    pub fn of(p: &Poll) -> Self {
        Self {
            id: p.id,
            question: p.question.clone(),
            options: p.options.clone(),
            open: p.open,
            counts: p.counts(),
        }
    }
}

/// The option one participant chose in a poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollAnswer {
    pub poll: PollId,
    pub option: u32,
}

/// What a participant knows about themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct YouView {
    pub participant: ParticipantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub muted: bool,
    pub banned: bool,
}

impl YouView {
    pub fn of(m: &Meeting, participant: &ParticipantId) -> Self {
        let p = m.participant(participant);
        Self {
            participant: participant.clone(),
            name: p.and_then(|p| p.name.clone()),
            muted: p.is_some_and(|p| p.muted),
            banned: p.is_some_and(|p| p.banned),
        }
    }
}

/// The whole view of one participant at one offset; sent on join and on resync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub offset: Offset,
    pub meeting: MeetingView,
    pub you: YouView,
    pub questions: Vec<QuestionView>,
    /// The most recent visible comments, oldest first.
    pub comments: Vec<CommentView>,
    /// Questions this participant has upvoted.
    pub voted: Vec<QuestionId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub polls: Vec<PollView>,
    /// The poll answers of this participant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answered: Vec<PollAnswer>,
    /// Participants known to the meeting (staff only; empty for citizens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<ParticipantView>,
    /// Staff only: the word filter in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub word_filter: Vec<String>,
    /// More parts follow as `snapshot_more` frames; the view is complete after the last one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

/// The rest of a snapshot sent in parts: more questions, comments and participants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMore {
    pub offset: Offset,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<QuestionView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<CommentView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<ParticipantView>,
    /// Another part follows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

/// How many recent comments a snapshot carries.
pub const SNAPSHOT_COMMENTS: usize = 200;

/// Items of each list per snapshot frame. Frames of bounded size keep every connection's
/// write buffer small: a buffer keeps the capacity of the largest frame it ever wrote.
pub const SNAPSHOT_PART_ITEMS: usize = 16;

impl Snapshot {
    pub fn of(m: &Meeting, viewer: &Viewer) -> Self {
        let staff = viewer.role.is_staff();
        let questions = m
            .questions
            .values()
            .filter_map(|q| viewer.perspective_on(q).map(|p| QuestionView::of(q, p)))
            .collect();
        let mut comments: Vec<CommentView> = m
            .comments
            .values()
            .rev()
            .filter(|c| staff || !c.hidden)
            .take(SNAPSHOT_COMMENTS)
            .map(|c| CommentView::of(c, staff))
            .collect();
        comments.reverse();
        let voted = m
            .questions
            .values()
            .filter(|q| q.voters.contains(&viewer.participant))
            .map(|q| q.id)
            .collect();
        let mut participants: Vec<ParticipantView> = if staff {
            m.participants
                .iter()
                .map(|(id, p)| ParticipantView::of(id, p))
                .collect()
        } else {
            Vec::new()
        };
        participants.sort_by(|a, b| a.id.cmp(&b.id));
        Self {
            offset: m.offset,
            meeting: MeetingView::of(m),
            you: YouView::of(m, &viewer.participant),
            questions,
            comments,
            voted,
            polls: m.polls.values().map(PollView::of).collect(),
            answered: m
                .polls
                .values()
                .filter_map(|p| {
                    let option = *p.answers.get(&viewer.participant)?;
                    Some(PollAnswer { poll: p.id, option })
                })
                .collect(),
            participants,
            word_filter: if staff {
                crate::rules::moderation::word_filter_view(m)
            } else {
                Vec::new()
            },
            more: false,
        }
    }

    /// Splits into a first part and `snapshot_more` parts of [`SNAPSHOT_PART_ITEMS`] items
    /// per list, or more per part where that is needed to stay within `max_frames` frames.
    pub fn into_parts(mut self, max_frames: usize) -> (Snapshot, Vec<SnapshotMore>) {
        let longest = self
            .questions
            .len()
            .max(self.comments.len())
            .max(self.participants.len());
        let per_part = SNAPSHOT_PART_ITEMS.max(longest.div_ceil(max_frames.max(1)));
        fn chunk<T>(items: Vec<T>, per_part: usize) -> Vec<Vec<T>> {
            let mut items = items.into_iter().peekable();
            let mut chunks = Vec::new();
            while items.peek().is_some() {
                chunks.push(items.by_ref().take(per_part).collect());
            }
            chunks
        }
        let mut questions = chunk(std::mem::take(&mut self.questions), per_part).into_iter();
        let mut comments = chunk(std::mem::take(&mut self.comments), per_part).into_iter();
        let mut participants = chunk(std::mem::take(&mut self.participants), per_part).into_iter();
        self.questions = questions.next().unwrap_or_default();
        self.comments = comments.next().unwrap_or_default();
        self.participants = participants.next().unwrap_or_default();
        let mut parts: Vec<SnapshotMore> = Vec::new();
        loop {
            let part = SnapshotMore {
                offset: self.offset,
                questions: questions.next().unwrap_or_default(),
                comments: comments.next().unwrap_or_default(),
                participants: participants.next().unwrap_or_default(),
                more: true,
            };
            if part.questions.is_empty() && part.comments.is_empty() && part.participants.is_empty()
            {
                break;
            }
            parts.push(part);
        }
        if let Some(last) = parts.last_mut() {
            last.more = false;
        }
        self.more = !parts.is_empty();
        (self, parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientView;
    use crate::command::{CreateMeeting, PostComment, StartMeeting};
    use crate::wire::ServerMessage;
    use crate::{Actor, Command, Recorded, Timestamp};

    fn busy_meeting(comments: usize) -> Meeting {
        let mut m = Meeting::new(MeetingId::parse("m").unwrap());
        let org = Actor::organizer();
        let run = |m: &mut Meeting, actor: &Actor, cmd: Command| {
            for event in m.decide(actor, &cmd, Timestamp(1)).unwrap() {
                m.apply(&Recorded {
                    offset: m.offset + 1,
                    event,
                });
            }
        };
        run(
            &mut m,
            &org,
            Command::CreateMeeting(CreateMeeting { title: "t".into() }),
        );
        run(&mut m, &org, Command::StartMeeting(StartMeeting));
        for i in 0..comments {
            run(
                &mut m,
                &org,
                Command::PostComment(PostComment {
                    text: format!("kommentar {i}"),
                }),
            );
        }
        m
    }

    #[test]
    fn a_snapshot_in_parts_folds_into_the_whole() {
        let m = busy_meeting(150);
        let viewer = Viewer {
            participant: ParticipantId::parse("c").unwrap(),
            role: Role::Citizen,
        };
        let whole = Snapshot::of(&m, &viewer);
        let frames = ServerMessage::snapshot_frames(whole.clone(), 100);
        assert_eq!(frames.len(), 150_usize.div_ceil(SNAPSHOT_PART_ITEMS));
        let mut view = ClientView::default();
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(view.snapshot_pending, i > 0, "pending until the last part");
            view.apply(f);
        }
        assert!(!view.snapshot_pending);
        assert_eq!(view, ClientView::from_snapshot(&whole));
    }

    #[test]
    fn parts_grow_rather_than_exceed_the_frame_budget() {
        let m = busy_meeting(150);
        let viewer = Viewer {
            participant: ParticipantId::parse("c").unwrap(),
            role: Role::Citizen,
        };
        let frames = ServerMessage::snapshot_frames(Snapshot::of(&m, &viewer), 4);
        assert!(frames.len() <= 4, "{} frames", frames.len());
        let small = busy_meeting(3);
        assert_eq!(
            ServerMessage::snapshot_frames(Snapshot::of(&small, &viewer), 4).len(),
            1
        );
    }
}
