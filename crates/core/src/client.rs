//! A client's model of the meeting, built from the frames it receives.
//!
//! Used by the Rust test clients and the load tester, and the reference for what the pages do:
//! after applying every frame up to offset N, the model equals the [`Snapshot`] of the log at N
//! for that participant ([`ClientView::from_snapshot`]).

use crate::ids::{CommentId, Offset, ParticipantId, PollId, QuestionId};
use crate::view::{
    CommentView, MeetingView, ParticipantView, PollView, QuestionView, SNAPSHOT_COMMENTS, Snapshot,
    YouView,
};
use crate::wire::ServerMessage;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientView {
    /// Highest offset reflected.
    pub offset: Offset,
    pub meeting: Option<MeetingView>,
    pub you: Option<YouView>,
    pub questions: BTreeMap<QuestionId, QuestionView>,
    pub comments: BTreeMap<CommentId, CommentView>,
    pub voted: BTreeSet<QuestionId>,
    pub participants: BTreeMap<ParticipantId, ParticipantView>,
    pub polls: BTreeMap<PollId, PollView>,
    /// This participant's answer per poll.
    pub answered: BTreeMap<PollId, u32>,
    pub online: u32,
    /// Staff: the word filter in force.
    pub word_filter: Vec<String>,
    /// A snapshot arrived in parts and not all of them yet.
    pub snapshot_pending: bool,
}

impl ClientView {
    pub fn from_snapshot(s: &Snapshot) -> Self {
        let mut v = Self::default();
        v.reset(s);
        v
    }

    fn reset(&mut self, s: &Snapshot) {
        let online = self.online;
        *self = Self {
            offset: s.offset,
            meeting: Some(s.meeting.clone()),
            you: Some(s.you.clone()),
            questions: s.questions.iter().map(|q| (q.id, q.clone())).collect(),
            comments: s.comments.iter().map(|c| (c.id, c.clone())).collect(),
            voted: s.voted.iter().copied().collect(),
            participants: s
                .participants
                .iter()
                .map(|p| (p.id.clone(), p.clone()))
                .collect(),
            polls: s.polls.iter().map(|p| (p.id, p.clone())).collect(),
            answered: s.answered.iter().map(|a| (a.poll, a.option)).collect(),
            online,
            word_filter: s.word_filter.clone(),
            snapshot_pending: s.more,
        };
    }

    /// Folds one frame into the view. Frames that are not view updates are ignored.
    pub fn apply(&mut self, msg: &ServerMessage) {
        if let Some(offset) = msg.offset() {
            self.offset = self.offset.max(offset);
        }
        match msg {
            ServerMessage::Snapshot(s) => self.reset(s),
            ServerMessage::SnapshotMore(part) => {
                self.questions
                    .extend(part.questions.iter().map(|q| (q.id, q.clone())));
                self.comments
                    .extend(part.comments.iter().map(|c| (c.id, c.clone())));
                self.participants
                    .extend(part.participants.iter().map(|p| (p.id.clone(), p.clone())));
                self.snapshot_pending = part.more;
            }
            ServerMessage::Event(e) => {
                for q in &e.questions {
                    // A merge moves the votes of the duplicate to its target, ours included; the
                    // frame does not say so per voter, so follow it here.
                    if let Some(into) = q.merged_into
                        && e.kind == "question_merged"
                        && self.voted.contains(&q.id)
                    {
                        self.voted.insert(into);
                    }
                    self.questions.insert(q.id, q.clone());
                }
                if let Some(c) = &e.comment {
                    self.comments.insert(c.id, c.clone());
                }
                if let Some(id) = &e.comment_removed {
                    self.comments.remove(id);
                }
                if let Some(m) = &e.meeting {
                    self.meeting = Some(m.clone());
                }
                if let Some(p) = &e.participant {
                    self.participants.insert(p.id.clone(), p.clone());
                }
                if let Some(p) = &e.poll {
                    self.polls.insert(p.id, p.clone());
                }
                if let Some(w) = &e.word_filter {
                    self.word_filter.clone_from(w);
                }
                if let Some(a) = e.answered {
                    self.answered.insert(a.poll, a.option);
                }
                if let Some(you) = &e.you {
                    self.you = Some(you.clone());
                }
                if let Some(v) = e.voted {
                    if v.voted {
                        self.voted.insert(v.question);
                    } else {
                        self.voted.remove(&v.question);
                    }
                }
            }
            ServerMessage::Votes { tallies, .. } => {
                for (id, votes) in tallies {
                    if let Some(q) = self.questions.get_mut(id) {
                        q.votes = *votes;
                    }
                }
            }
            ServerMessage::PollResults { results, .. } => {
                for r in results {
                    if let Some(p) = self.polls.get_mut(&r.id) {
                        p.counts.clone_from(&r.counts);
                    }
                }
            }
            ServerMessage::Presence { online, .. } => self.online = *online,
            _ => {}
        }
    }

    /// The view without what a snapshot leaves out (older comments, presence), for comparing a
    /// client that followed along with one that joined later.
    pub fn comparable(&self) -> Self {
        let mut v = self.clone();
        let excess = v.comments.len().saturating_sub(SNAPSHOT_COMMENTS);
        v.comments = v.comments.into_iter().skip(excess).collect();
        v.online = 0;
        v
    }
}
