//! Several moderators at once: claiming a pending question (the others see who is on it),
//! deciding a selection of questions in one command, and the meeting's word filter. Claims and
//! filter lists are staff business: citizens never hear of them.

use crate::command::{Context, Permission, Rule, one};
use crate::event::{Change, EventKind};
use crate::fanout::{Audience, Class, Fanout, Target};
use crate::filter::{MAX_WORD_CHARS, MAX_WORDS};
use crate::ids::{ParticipantId, QuestionId, Timestamp};
use crate::meeting::{Meeting, Question, QuestionStatus};
use crate::rejection::Rejection;
use crate::rules::questions::{QuestionApproved, QuestionRejected};
use crate::text::{TextKind, clean};
use crate::view::{Perspective, QuestionView};
use crate::wire::EventFrame;
use serde::{Deserialize, Serialize};

/// At most this many questions in one `approve_questions` or `reject_questions`.
pub const MAX_BULK: usize = 50;

impl Question {
    /// A question another moderator has claimed is theirs to decide.
    pub(crate) fn check_claim(&self, cx: &Context<'_>) -> Result<(), Rejection> {
        match &self.claimed_by {
            Some(by) if *by != cx.actor.participant => Err(Rejection::Claimed),
            _ => Ok(()),
        }
    }
}

/// "I am on this one": marks a pending question as this moderator's until it is decided or
/// released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimQuestion {
    pub question: QuestionId,
}

impl Rule for ClaimQuestion {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let q = m.question(self.question)?;
        q.check_claim(cx)?;
        if q.status != QuestionStatus::Pending {
            return Err(Rejection::InvalidState(
                "only pending questions can be claimed",
            ));
        }
        if q.claimed_by.is_some() {
            return Err(Rejection::InvalidState("you have claimed it already"));
        }
        one(QuestionClaimed {
            question: self.question,
        })
    }
}

/// Gives a claimed question back; any moderator may (a claim must not outlive its moderator).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseQuestion {
    pub question: QuestionId,
}

impl Rule for ReleaseQuestion {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if m.question(self.question)?.claimed_by.is_none() {
            return Err(Rejection::InvalidState("the question is not claimed"));
        }
        one(QuestionReleased {
            question: self.question,
        })
    }
}

/// The questions of a bulk decision that can still take it: those another moderator claimed,
/// or that someone decided meanwhile, are left out; an unknown id refuses the whole command.
fn selection<'a>(
    m: &'a Meeting,
    cx: &Context<'_>,
    ids: &[QuestionId],
    ok: impl Fn(&QuestionStatus) -> bool,
) -> Result<Vec<&'a Question>, Rejection> {
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(Rejection::InvalidState("select 1 to 50 questions"));
    }
    let mut out: Vec<&Question> = Vec::with_capacity(ids.len());
    for &id in ids {
        let q = m.question(id)?;
        if ok(&q.status) && q.check_claim(cx).is_ok() && !out.iter().any(|o| o.id == id) {
            out.push(q);
        }
    }
    if out.is_empty() {
        return Err(Rejection::InvalidState(
            "none of these questions can take this decision any more",
        ));
    }
    Ok(out)
}

/// Approve a selection of pending (or rejected) questions at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveQuestions {
    pub questions: Vec<QuestionId>,
}

impl Rule for ApproveQuestions {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let qs = selection(m, cx, &self.questions, |s| {
            matches!(s, QuestionStatus::Pending | QuestionStatus::Rejected { .. })
        })?;
        Ok(qs
            .into_iter()
            .map(|q| QuestionApproved { question: q.id }.into())
            .collect())
    }
}

/// Reject a selection of pending, approved or queued questions with one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectQuestions {
    pub questions: Vec<QuestionId>,
    pub reason: String,
}

impl Rule for RejectQuestions {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let reason = clean(TextKind::Reason, &self.reason)?;
        let qs = selection(m, cx, &self.questions, |s| {
            matches!(
                s,
                QuestionStatus::Pending | QuestionStatus::Approved | QuestionStatus::Queued
            )
        })?;
        Ok(qs
            .into_iter()
            .map(|q| {
                QuestionRejected {
                    question: q.id,
                    reason: reason.clone(),
                }
                .into()
            })
            .collect())
    }
}

/// Replace the meeting's filter words (organizer or moderators); `null` restores the defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetWordFilter {
    pub words: Option<Vec<String>>,
}

impl Rule for SetWordFilter {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, _: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let words = match &self.words {
            None => None,
            Some(list) if list.len() > MAX_WORDS => return Err(Rejection::InvalidFilter),
            Some(list) => {
                let mut out: Vec<String> = Vec::with_capacity(list.len());
                for w in list {
                    let w =
                        clean(TextKind::DisplayName, w).map_err(|_| Rejection::InvalidFilter)?;
                    if w.is_empty() || w.chars().count() > MAX_WORD_CHARS {
                        return Err(Rejection::InvalidFilter);
                    }
                    let w = w.to_lowercase();
                    if !out.contains(&w) {
                        out.push(w);
                    }
                }
                Some(out)
            }
        };
        one(WordFilterSet { words })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionClaimed {
    pub question: QuestionId,
}

impl Change for QuestionClaimed {
    fn apply(&self, m: &mut Meeting, by: &ParticipantId, _: Timestamp) {
        if let Some(q) = m.questions.get_mut(&self.question) {
            q.claimed_by = Some(by.clone());
        }
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        staff_see_question(out, self.question);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionReleased {
    pub question: QuestionId,
}

impl Change for QuestionReleased {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        if let Some(q) = m.questions.get_mut(&self.question) {
            q.claimed_by = None;
        }
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        staff_see_question(out, self.question);
    }
}

/// A claim is staff business: only staff get the question's new version.
fn staff_see_question(out: &mut Fanout<'_>, id: QuestionId) {
    let Some(q) = out.meeting.questions.get(&id) else {
        return;
    };
    let frame = EventFrame {
        questions: vec![QuestionView::of(q, Perspective::Staff)],
        ..out.frame()
    };
    out.send(Audience::new(Class::Staff, Target::Any), frame);
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordFilterSet {
    /// The new list; `None`: the defaults.
    pub words: Option<Vec<String>>,
}

impl Change for WordFilterSet {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.word_filter.clone_from(&self.words);
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        let frame = EventFrame {
            word_filter: Some(word_filter_view(out.meeting)),
            ..out.frame()
        };
        out.send(Audience::new(Class::Staff, Target::Any), frame);
    }
}

/// The words in force, as staff see them.
pub(crate) fn word_filter_view(m: &Meeting) -> Vec<String> {
    m.filter_words().into_iter().map(str::to_owned).collect()
}
