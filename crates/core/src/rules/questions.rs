//! Questions: citizens ask; moderators approve, reject, merge and queue them; a question goes on
//! air and is answered. Staff see every change; the author sees their own question; other
//! citizens see a question once it has been approved (it is then `public`).

use crate::command::{Context, Permission, Rule, one};
use crate::event::{Change, EventKind};
use crate::fanout::Fanout;
use crate::ids::{ParticipantId, QuestionId, Role, Timestamp};
use crate::meeting::{Meeting, MeetingStatus, Question, QuestionStatus};
use crate::rejection::Rejection;
use crate::text::{TextKind, clean};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

impl Meeting {
    pub(crate) fn question(&self, id: QuestionId) -> Result<&Question, Rejection> {
        self.questions.get(&id).ok_or(Rejection::UnknownQuestion)
    }

    /// A question citizens can vote on. Questions they cannot see are "unknown" to them, so a
    /// vote cannot probe for pending questions.
    pub(crate) fn open_question(&self, id: QuestionId) -> Result<&Question, Rejection> {
        match self.questions.get(&id) {
            Some(q) if q.is_open() => Ok(q),
            Some(q) if q.public => Err(Rejection::InvalidState(
                "voting on this question has closed",
            )),
            _ => Err(Rejection::UnknownQuestion),
        }
    }

    /// Moves a question to `status`, keeping the queue, the on-air slot and the author's pending
    /// count consistent with it.
    fn set_status(&mut self, id: QuestionId, status: QuestionStatus) {
        let Some(q) = self.questions.get_mut(&id) else {
            return;
        };
        if q.status == QuestionStatus::Pending
            && status != QuestionStatus::Pending
            && let Some(p) = self.participants.get_mut(&q.author)
        {
            p.pending = p.pending.saturating_sub(1);
        }
        if matches!(status, QuestionStatus::Approved) {
            q.public = true;
        }
        if status != QuestionStatus::Pending {
            q.claimed_by = None;
        }
        q.status = status;
        self.queue.retain(|&x| x != id);
        if self.on_air == Some(id) {
            self.on_air = None;
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskQuestion {
    pub text: String,
    /// Hide the author's name from other citizens (moderators still see it).
    #[serde(default)]
    pub anonymous: bool,
}

impl Rule for AskQuestion {
    const PERMISSION: Permission = Permission::Anyone;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        m.check_may_post(cx.actor, cx.now)?;
        let staff = cx.actor.role.is_staff();
        if (!m.qa_open || m.waiting_for_start()) && !staff {
            return Err(Rejection::QaClosed);
        }
        let text = clean(TextKind::Question, &self.text)?;
        let max = m.limits.max_pending_per_participant;
        if !staff && cx.me.is_some_and(|p| p.pending >= max) {
            return Err(Rejection::TooManyPending { max });
        }
        if m.questions.len() >= m.limits.max_questions {
            return Err(Rejection::MeetingFull {
                max: m.limits.max_questions,
            });
        }
        let flagged = if staff { None } else { m.filter_hit(&text) };
        one(QuestionAsked {
            question: m.next_question_id(),
            text,
            anonymous: self.anonymous,
            author_name: m.name_of(&cx.actor.participant),
            flagged,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveQuestion {
    pub question: QuestionId,
}

impl Rule for ApproveQuestion {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let q = m.question(self.question)?;
        q.check_claim(cx)?;
        match q.status {
            QuestionStatus::Pending | QuestionStatus::Rejected { .. } => one(QuestionApproved {
                question: self.question,
            }),
            _ => Err(Rejection::InvalidState(
                "only pending or rejected questions can be approved",
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectQuestion {
    pub question: QuestionId,
    pub reason: String,
}

impl Rule for RejectQuestion {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let reason = clean(TextKind::Reason, &self.reason)?;
        let q = m.question(self.question)?;
        q.check_claim(cx)?;
        match q.status {
            QuestionStatus::Pending | QuestionStatus::Approved | QuestionStatus::Queued => {
                one(QuestionRejected {
                    question: self.question,
                    reason,
                })
            }
            _ => Err(Rejection::InvalidState(
                "this question can no longer be rejected",
            )),
        }
    }
}

/// Merge a duplicate `question` into `into`, which keeps the union of both votes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeQuestion {
    pub question: QuestionId,
    pub into: QuestionId,
}

impl Rule for MergeQuestion {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let from = m.question(self.question)?;
        from.check_claim(cx)?;
        let target = m.question(self.into)?;
        let from_ok = matches!(
            from.status,
            QuestionStatus::Pending | QuestionStatus::Approved | QuestionStatus::Queued
        );
        // A question citizens have seen (and voted on) must not disappear into one they cannot
        // see: its votes and its `merged_into` would point at a hidden question.
        let target_ok = !matches!(
            target.status,
            QuestionStatus::Rejected { .. } | QuestionStatus::Merged { .. }
        ) && (target.public || !from.public);
        if self.question == self.into || !from_ok || !target_ok {
            return Err(Rejection::InvalidMerge);
        }
        one(QuestionMerged {
            question: self.question,
            into: self.into,
        })
    }
}

/// Put an approved question in the speakers' queue, or move a queued one; `position` 0 is next,
/// absent means last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuestion {
    pub question: QuestionId,
    #[serde(default)]
    pub position: Option<u32>,
}

impl Rule for QueueQuestion {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        match m.question(self.question)?.status {
            QuestionStatus::Approved | QuestionStatus::Queued => {}
            _ => {
                return Err(Rejection::InvalidState(
                    "only approved questions can be queued",
                ));
            }
        }
        let others = m.queue.iter().filter(|&&x| x != self.question).count();
        let position = self.position.map_or(others, |p| (p as usize).min(others)) as u32;
        one(QuestionQueued {
            question: self.question,
            position,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnqueueQuestion {
    pub question: QuestionId,
}

impl Rule for UnqueueQuestion {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        match m.question(self.question)?.status {
            QuestionStatus::Queued => one(QuestionUnqueued {
                question: self.question,
            }),
            _ => Err(Rejection::InvalidState("the question is not in the queue")),
        }
    }
}

/// Put an approved or queued question on air; the one on air before counts as answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutOnAir {
    pub question: QuestionId,
}

impl Rule for PutOnAir {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        match m.question(self.question)?.status {
            QuestionStatus::Approved | QuestionStatus::Queued => {}
            _ => {
                return Err(Rejection::InvalidState(
                    "only approved questions can go on air",
                ));
            }
        }
        if m.status != MeetingStatus::Live {
            return Err(Rejection::NotLive);
        }
        let answered = m.on_air.map(|q| QuestionAnswered { question: q }.into());
        let on_air = QuestionOnAir {
            question: self.question,
        };
        Ok(answered.into_iter().chain([on_air.into()]).collect())
    }
}

/// Moderators mark any approved question answered; speakers the one on air.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkAnswered {
    pub question: QuestionId,
}

impl Rule for MarkAnswered {
    const PERMISSION: Permission = Permission::Presenters;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if cx.actor.role == Role::Speaker && m.on_air != Some(self.question) {
            return Err(Rejection::InvalidState(
                "speakers answer the question on air",
            ));
        }
        match m.question(self.question)?.status {
            QuestionStatus::Approved | QuestionStatus::Queued | QuestionStatus::OnAir => {
                one(QuestionAnswered {
                    question: self.question,
                })
            }
            _ => Err(Rejection::InvalidState(
                "only approved questions can be answered",
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionAsked {
    pub question: QuestionId,
    pub text: String,
    pub anonymous: bool,
    /// The author's display name when asking, kept for the record.
    pub author_name: Option<String>,
    /// The filter word the text matched (shown to moderators); absent when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged: Option<String>,
}

impl Change for QuestionAsked {
    fn apply(&self, m: &mut Meeting, by: &ParticipantId, at: Timestamp) {
        let p = m.participants.entry(by.clone()).or_default();
        p.last_post_at = Some(at);
        p.pending += 1;
        m.questions.insert(
            self.question,
            Question {
                id: self.question,
                author: by.clone(),
                author_name: self.author_name.clone(),
                anonymous: self.anonymous,
                text: self.text.clone(),
                asked_at: at,
                status: QuestionStatus::Pending,
                public: false,
                voters: BTreeSet::new(),
                flagged: self.flagged.clone(),
                claimed_by: None,
                casts: Default::default(),
            },
        );
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.questions_changed(&[self.question], false);
        let by = out.by().clone();
        out.staff_learn_of(&by);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionApproved {
    pub question: QuestionId,
}

impl Change for QuestionApproved {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.set_status(self.question, QuestionStatus::Approved);
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.questions_changed(&[self.question], false);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionRejected {
    pub question: QuestionId,
    pub reason: String,
}

impl Change for QuestionRejected {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        let reason = self.reason.clone();
        m.set_status(self.question, QuestionStatus::Rejected { reason });
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.questions_changed(&[self.question], true);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionMerged {
    pub question: QuestionId,
    pub into: QuestionId,
}

impl Change for QuestionMerged {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        let voters = m
            .questions
            .get(&self.question)
            .map(|q| q.voters.clone())
            .unwrap_or_default();
        if let Some(target) = m.questions.get_mut(&self.into) {
            target.voters.extend(voters);
        }
        m.set_status(self.question, QuestionStatus::Merged { into: self.into });
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.questions_changed(&[self.question, self.into], true);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionQueued {
    pub question: QuestionId,
    pub position: u32,
}

impl Change for QuestionQueued {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.set_status(self.question, QuestionStatus::Queued);
        let at = (self.position as usize).min(m.queue.len());
        m.queue.insert(at, self.question);
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.questions_changed(&[self.question], true);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionUnqueued {
    pub question: QuestionId,
}

impl Change for QuestionUnqueued {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.set_status(self.question, QuestionStatus::Approved);
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.questions_changed(&[self.question], true);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionOnAir {
    pub question: QuestionId,
}

impl Change for QuestionOnAir {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.set_status(self.question, QuestionStatus::OnAir);
        m.on_air = Some(self.question);
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.questions_changed(&[self.question], true);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionAnswered {
    pub question: QuestionId,
}

impl Change for QuestionAnswered {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.set_status(self.question, QuestionStatus::Answered);
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.questions_changed(&[self.question], true);
    }
}

/// The meeting ended while the question was on air: recorded as ended, since nobody said it was
/// answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionEnded {
    pub question: QuestionId,
}

impl Change for QuestionEnded {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.set_status(self.question, QuestionStatus::Ended);
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.questions_changed(&[self.question], true);
    }
}
