//! Votes on open questions. A vote changes a tally: the hub sends tallies coalesced per tick
//! (`Update::Tally`), and only the voter gets an `event` frame (that they voted).
//!
//! Toggling (upvote, retract, upvote, …) is bounded rather than coalesced: every vote stays an
//! event of the record, and a participant may cast at most `Limits::max_votes_per_question`
//! upvotes on one question (`vote_limit` after that), so one participant adds at most twice
//! that many events per question. The hub's per-address vote rate bounds the speed.

use crate::command::{Context, Permission, Rule, one};
use crate::event::{Change, EventKind};
use crate::fanout::{Fanout, Update};
use crate::ids::{ParticipantId, QuestionId, Timestamp};
use crate::meeting::Meeting;
use crate::rejection::Rejection;
use crate::wire::{EventFrame, Voted};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upvote {
    pub question: QuestionId,
}

impl Rule for Upvote {
    const PERMISSION: Permission = Permission::Anyone;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let q = m.open_question(self.question)?;
        if q.voters.contains(&cx.actor.participant) {
            return Err(Rejection::AlreadyVoted);
        }
        let max = m.limits.max_votes_per_question;
        if q.casts.get(&cx.actor.participant).copied().unwrap_or(0) >= max {
            return Err(Rejection::VoteLimit { max });
        }
        one(VoteCast {
            question: self.question,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetractUpvote {
    pub question: QuestionId,
}

impl Rule for RetractUpvote {
    const PERMISSION: Permission = Permission::Anyone;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let q = m.open_question(self.question)?;
        if !q.voters.contains(&cx.actor.participant) {
            return Err(Rejection::NotVoted);
        }
        one(VoteRetracted {
            question: self.question,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteCast {
    pub question: QuestionId,
}

impl Change for VoteCast {
    fn apply(&self, m: &mut Meeting, by: &ParticipantId, _: Timestamp) {
        if let Some(q) = m.questions.get_mut(&self.question) {
            q.voters.insert(by.clone());
            *q.casts.entry(by.clone()).or_default() += 1;
        }
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        voted(out, self.question, true);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRetracted {
    pub question: QuestionId,
}

impl Change for VoteRetracted {
    fn apply(&self, m: &mut Meeting, by: &ParticipantId, _: Timestamp) {
        if let Some(q) = m.questions.get_mut(&self.question) {
            q.voters.remove(by);
        }
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        voted(out, self.question, false);
    }
}

/// The tally is marked for the tick; the voter learns whether they now vote for it.
fn voted(out: &mut Fanout<'_>, question: QuestionId, voted: bool) {
    out.push(Update::Tally(question));
    let frame = EventFrame {
        voted: Some(Voted { question, voted }),
        ..out.frame()
    };
    out.send_to_author(frame);
}
