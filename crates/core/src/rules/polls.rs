//! Polls: moderators ask everyone a multiple-choice question while the meeting is live; each
//! participant answers once. Counts are sent coalesced per tick (`Update::PollTally`).

use crate::command::{Context, Permission, Rule, one};
use crate::event::{Change, EventKind};
use crate::fanout::{Audience, Fanout, Update};
use crate::ids::{ParticipantId, PollId, Timestamp};
use crate::meeting::{Meeting, MeetingStatus, Poll};
use crate::rejection::Rejection;
use crate::text::{TextKind, clean};
use crate::view::{PollAnswer, PollView};
use crate::wire::EventFrame;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most options a poll may offer: more do not fit a phone screen.
pub const MAX_POLL_OPTIONS: usize = 6;

/// Ask everyone a multiple-choice question (2 to 6 distinct options).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenPoll {
    pub question: String,
    pub options: Vec<String>,
}

impl Rule for OpenPoll {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if m.status != MeetingStatus::Live {
            return Err(Rejection::NotLive);
        }
        let question = clean(TextKind::PollQuestion, &self.question)?;
        let options = self
            .options
            .iter()
            .map(|o| clean(TextKind::PollOption, o))
            .collect::<Result<Vec<_>, _>>()?;
        let distinct = options
            .iter()
            .enumerate()
            .all(|(i, o)| !options[..i].contains(o));
        if !(2..=MAX_POLL_OPTIONS).contains(&options.len()) || !distinct {
            return Err(Rejection::InvalidPoll {
                max: MAX_POLL_OPTIONS,
            });
        }
        if m.polls.len() >= m.limits.max_polls {
            return Err(Rejection::MeetingFull {
                max: m.limits.max_polls,
            });
        }
        one(PollOpened {
            poll: m.next_poll_id(),
            question,
            options,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosePoll {
    pub poll: PollId,
}

impl Rule for ClosePoll {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if !m.polls.get(&self.poll).ok_or(Rejection::UnknownPoll)?.open {
            return Err(Rejection::InvalidState("the poll is already closed"));
        }
        one(PollClosed { poll: self.poll })
    }
}

/// Answer an open poll with the index of one of its options (once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerPoll {
    pub poll: PollId,
    pub option: u32,
}

impl Rule for AnswerPoll {
    const PERMISSION: Permission = Permission::Anyone;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let p = m.polls.get(&self.poll).ok_or(Rejection::UnknownPoll)?;
        if !p.open {
            return Err(Rejection::InvalidState("the poll has closed"));
        }
        if self.option as usize >= p.options.len() {
            return Err(Rejection::InvalidState("the poll has no such option"));
        }
        if p.answers.contains_key(&cx.actor.participant) {
            return Err(Rejection::AlreadyAnswered);
        }
        one(PollAnswered {
            poll: self.poll,
            option: self.option,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollOpened {
    pub poll: PollId,
    pub question: String,
    pub options: Vec<String>,
}

impl Change for PollOpened {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, at: Timestamp) {
        m.polls.insert(
            self.poll,
            Poll {
                id: self.poll,
                question: self.question.clone(),
                options: self.options.clone(),
                open: true,
                opened_at: at,
                answers: BTreeMap::new(),
            },
        );
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        poll_changed(out, self.poll);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollClosed {
    pub poll: PollId,
}

impl Change for PollClosed {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        if let Some(p) = m.polls.get_mut(&self.poll) {
            p.open = false;
        }
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        poll_changed(out, self.poll);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollAnswered {
    pub poll: PollId,
    pub option: u32,
}

impl Change for PollAnswered {
    fn apply(&self, m: &mut Meeting, by: &ParticipantId, _: Timestamp) {
        if let Some(p) = m.polls.get_mut(&self.poll) {
            p.answers.insert(by.clone(), self.option);
        }
    }

    /// The counts go with the tick; only the participant learns what they answered.
    fn fanout(&self, out: &mut Fanout<'_>) {
        out.push(Update::PollTally(self.poll));
        let frame = EventFrame {
            answered: Some(PollAnswer {
                poll: self.poll,
                option: self.option,
            }),
            ..out.frame()
        };
        out.send_to_author(frame);
    }
}

/// Everyone sees the poll (opened or closed).
fn poll_changed(out: &mut Fanout<'_>, id: PollId) {
    if let Some(p) = out.meeting.polls.get(&id) {
        let frame = EventFrame {
            poll: Some(PollView::of(p)),
            ..out.frame()
        };
        out.send(Audience::EVERYONE, frame);
    }
}
