//! Who hears of an event, and in which form.
//!
//! After the room applies an event, [`updates`] lists the frames to send, each with its
//! [`Audience`]. The audiences of one event never overlap, so every session receives at most one
//! `event` frame per offset, which is what makes resuming from an offset exact. The hub
//! serialises every frame once and shares the bytes with every session in its audience. Vote
//! tallies are only marked ([`Update::Tally`]) so the hub can coalesce them per tick into one
//! [`tally_frame`].

use crate::event::{EventKind, Recorded};
use crate::ids::{ParticipantId, PollId, QuestionId};
use crate::meeting::{Meeting, Question};
use crate::view::{
    CommentView, MeetingView, ParticipantView, Perspective, PollAnswer, PollView, QuestionView,
    Viewer, YouView,
};
use crate::wire::{EventFrame, PollResults, ServerMessage, Voted};
use std::collections::BTreeMap;

/// Which kind of session: staff (moderators, speakers, organizer) or citizens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    All,
    Staff,
    Citizens,
}

/// Which participants within the class.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Any,
    Only(ParticipantId),
    Except(Vec<ParticipantId>),
}

/// The sessions a frame is meant for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Audience {
    pub class: Class,
    pub target: Target,
}

impl Audience {
    pub const EVERYONE: Audience = Audience {
        class: Class::All,
        target: Target::Any,
    };

    pub fn new(class: Class, target: Target) -> Self {
        Self { class, target }
    }

    pub fn includes(&self, viewer: &Viewer) -> bool {
        let class = match self.class {
            Class::All => true,
            Class::Staff => viewer.role.is_staff(),
            Class::Citizens => !viewer.role.is_staff(),
        };
        class
            && match &self.target {
                Target::Any => true,
                Target::Only(p) => *p == viewer.participant,
                Target::Except(ps) => !ps.contains(&viewer.participant),
            }
    }

    /// The one participant this audience is limited to, if any (lets the hub skip a full scan).
    pub fn only(&self) -> Option<&ParticipantId> {
        match &self.target {
            Target::Only(p) => Some(p),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    Send(Audience, ServerMessage),
    /// The tally of this question changed; send it with the tick's [`tally_frame`].
    Tally(QuestionId),
    /// This poll's counts changed; send them with the tick's [`poll_results_frame`].
    PollTally(PollId),
    /// Close the citizen sessions of this participant (they were banned).
    Disconnect(ParticipantId),
}

/// The frames caused by `rec`, which has just been applied to `m`.
pub fn updates(m: &Meeting, rec: &Recorded) -> Vec<Update> {
    let frame = || EventFrame {
        offset: rec.offset,
        kind: rec.event.kind.name().to_owned(),
        ..EventFrame::default()
    };
    let send = |aud: Audience, f: EventFrame| Update::Send(aud, ServerMessage::Event(Box::new(f)));
    let mut out = Vec::new();
    match &rec.event.kind {
        EventKind::PollOpened { poll, .. } | EventKind::PollClosed { poll } => {
            if let Some(p) = m.polls.get(poll) {
                out.push(send(
                    Audience::EVERYONE,
                    EventFrame {
                        poll: Some(PollView::of(p)),
                        ..frame()
                    },
                ));
            }
        }
        EventKind::PollAnswered { poll, option } => {
            out.push(Update::PollTally(*poll));
            out.push(send(
                Audience::new(Class::All, Target::Only(rec.event.by.clone())),
                EventFrame {
                    answered: Some(PollAnswer {
                        poll: *poll,
                        option: *option,
                    }),
                    ..frame()
                },
            ));
        }
        EventKind::MeetingCreated { .. }
        | EventKind::MeetingStarted
        | EventKind::MeetingEnded
        | EventKind::SlowModeSet { .. }
        | EventKind::QaOpened
        | EventKind::QaClosed
        | EventKind::ChatOpened
        | EventKind::ChatClosed
        | EventKind::AnnouncementPinned { .. } => out.push(send(
            Audience::EVERYONE,
            EventFrame {
                meeting: Some(MeetingView::of(m)),
                ..frame()
            },
        )),
        EventKind::ParticipantRenamed { .. } => {
            participant_frames(m, &rec.event.by, frame, &mut out)
        }
        EventKind::ParticipantMuted { participant: p }
        | EventKind::ParticipantUnmuted { participant: p }
        | EventKind::ParticipantUnbanned { participant: p } => {
            participant_frames(m, p, frame, &mut out)
        }
        EventKind::ParticipantBanned { participant: p } => {
            participant_frames(m, p, frame, &mut out);
            out.push(Update::Disconnect(p.clone()));
        }
        EventKind::QuestionAsked { question, .. } => {
            question_frames(m, &[*question], false, frame, &mut out);
            staff_learn_of(m, &rec.event.by, &mut out);
        }
        EventKind::QuestionApproved { question } => {
            question_frames(m, &[*question], false, frame, &mut out)
        }
        EventKind::QuestionRejected { question, .. }
        | EventKind::QuestionQueued { question, .. }
        | EventKind::QuestionUnqueued { question }
        | EventKind::QuestionOnAir { question }
        | EventKind::QuestionAnswered { question } => {
            question_frames(m, &[*question], true, frame, &mut out)
        }
        EventKind::QuestionMerged { question, into } => {
            question_frames(m, &[*question, *into], true, frame, &mut out)
        }
        EventKind::VoteCast { question } | EventKind::VoteRetracted { question } => {
            out.push(Update::Tally(*question));
            let voted = Voted {
                question: *question,
                voted: matches!(rec.event.kind, EventKind::VoteCast { .. }),
            };
            out.push(send(
                Audience::new(Class::All, Target::Only(rec.event.by.clone())),
                EventFrame {
                    voted: Some(voted),
                    ..frame()
                },
            ));
        }
        EventKind::CommentPosted { comment, .. } | EventKind::CommentHidden { comment } => {
            if let Some(c) = m.comments.get(comment) {
                out.push(send(
                    Audience::new(Class::Staff, Target::Any),
                    EventFrame {
                        comment: Some(CommentView::of(c, true)),
                        ..frame()
                    },
                ));
                let public = if c.hidden {
                    EventFrame {
                        comment_removed: Some(c.id),
                        ..frame()
                    }
                } else {
                    EventFrame {
                        comment: Some(CommentView::of(c, false)),
                        ..frame()
                    }
                };
                out.push(send(Audience::new(Class::Citizens, Target::Any), public));
                if matches!(rec.event.kind, EventKind::CommentPosted { .. }) {
                    staff_learn_of(m, &rec.event.by, &mut out);
                }
            }
        }
    }
    out
}

/// Asking or commenting makes the author a known participant (staff snapshots list them, and
/// moderators may now mute them), so the staff frame carries their state too.
fn staff_learn_of(m: &Meeting, p: &ParticipantId, out: &mut [Update]) {
    let view = m.participant(p).map(|state| ParticipantView::of(p, state));
    for u in out {
        if let Update::Send(
            Audience {
                class: Class::Staff,
                target: Target::Any,
            },
            ServerMessage::Event(e),
        ) = u
        {
            e.participant.clone_from(&view);
        }
    }
}

/// Staff see the participant's moderation state; the participant sees their own.
fn participant_frames(
    m: &Meeting,
    p: &ParticipantId,
    frame: impl Fn() -> EventFrame,
    out: &mut Vec<Update>,
) {
    let send = |aud: Audience, f: EventFrame| Update::Send(aud, ServerMessage::Event(Box::new(f)));
    let participant = m.participant(p).map(|state| ParticipantView::of(p, state));
    let you = Some(YouView::of(m, p));
    out.push(send(
        Audience::new(Class::Staff, Target::Except(vec![p.clone()])),
        EventFrame {
            participant: participant.clone(),
            ..frame()
        },
    ));
    out.push(send(
        Audience::new(Class::Staff, Target::Only(p.clone())),
        EventFrame {
            participant,
            you: you.clone(),
            ..frame()
        },
    ));
    out.push(send(
        Audience::new(Class::Citizens, Target::Only(p.clone())),
        EventFrame { you, ..frame() },
    ));
}

/// Staff see every change of a question; its author sees their own view; other citizens see it
/// only once it has been approved. `with_meeting` adds the meeting view (queue, on air).
fn question_frames(
    m: &Meeting,
    ids: &[QuestionId],
    with_meeting: bool,
    frame: impl Fn() -> EventFrame,
    out: &mut Vec<Update>,
) {
    let send = |aud: Audience, f: EventFrame| Update::Send(aud, ServerMessage::Event(Box::new(f)));
    let qs: Vec<&Question> = ids.iter().filter_map(|id| m.questions.get(id)).collect();
    let meeting = with_meeting.then(|| MeetingView::of(m));
    let views = |p: &dyn Fn(&Question) -> Option<Perspective>| -> Vec<QuestionView> {
        qs.iter()
            .filter_map(|q| p(q).map(|p| QuestionView::of(q, p)))
            .collect()
    };
    out.push(send(
        Audience::new(Class::Staff, Target::Any),
        EventFrame {
            questions: views(&|_| Some(Perspective::Staff)),
            meeting: meeting.clone(),
            ..frame()
        },
    ));
    let mut authors: Vec<ParticipantId> = Vec::with_capacity(qs.len());
    for q in &qs {
        if !authors.contains(&q.author) {
            authors.push(q.author.clone());
        }
    }
    for a in &authors {
        let own = views(&|q| {
            if q.author == *a {
                Some(Perspective::Author)
            } else {
                q.public.then_some(Perspective::Public)
            }
        });
        out.push(send(
            Audience::new(Class::Citizens, Target::Only(a.clone())),
            EventFrame {
                questions: own,
                meeting: meeting.clone(),
                ..frame()
            },
        ));
    }
    // Queue and on-air slot only ever hold public questions, so when none of these questions
    // is public, nothing other citizens see has changed: they don't even learn that it happened.
    let public = views(&|q| q.public.then_some(Perspective::Public));
    if !public.is_empty() {
        out.push(send(
            Audience::new(Class::Citizens, Target::Except(authors)),
            EventFrame {
                questions: public,
                meeting,
                ..frame()
            },
        ));
    }
}

/// One `votes` frame with the current tallies of `questions` (those everyone may see), for
/// [`Audience::EVERYONE`]; `None` if there is nothing to tell.
pub fn tally_frame(
    m: &Meeting,
    questions: impl IntoIterator<Item = QuestionId>,
) -> Option<ServerMessage> {
    let tallies: BTreeMap<QuestionId, u32> = questions
        .into_iter()
        .filter_map(|id| m.questions.get(&id))
        .filter(|q| q.public)
        .map(|q| (q.id, q.votes()))
        .collect();
    (!tallies.is_empty()).then_some(ServerMessage::Votes {
        offset: m.offset,
        tallies,
    })
}

/// One `poll_results` frame with the current counts of `polls`, for [`Audience::EVERYONE`];
/// `None` if there is nothing to tell.
pub fn poll_results_frame(
    m: &Meeting,
    polls: impl IntoIterator<Item = PollId>,
) -> Option<ServerMessage> {
    let results: Vec<PollResults> = polls
        .into_iter()
        .filter_map(|id| m.polls.get(&id))
        .map(|p| PollResults {
            id: p.id,
            counts: p.counts(),
        })
        .collect();
    (!results.is_empty()).then_some(ServerMessage::PollResults {
        offset: m.offset,
        results,
    })
}
