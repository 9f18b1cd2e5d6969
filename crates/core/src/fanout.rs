//! Who hears of an event, and in which form.
//!
//! After the room applies an event, [`updates`] lists the frames to send, each with its
//! [`Audience`] (each event says which, in its subject's module under `rules/`, with the shapes
//! of frame several events share here). The audiences of one event never overlap, so every session receives at most one
//! `event` frame per offset, which is what makes resuming from an offset exact. The hub
//! serialises every frame once and shares the bytes with every session in its audience. Vote
//! tallies are only marked ([`Update::Tally`]) so the hub can coalesce them per tick into one
//! [`tally_frame`].

use crate::event::Recorded;
use crate::ids::{ParticipantId, PollId, QuestionId};
use crate::meeting::{Meeting, Question};
use crate::view::{MeetingView, ParticipantView, Perspective, QuestionView, Viewer, YouView};
use crate::wire::{EventFrame, PollResults, ServerMessage};
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
    let mut out = Fanout {
        meeting: m,
        rec,
        updates: Vec::new(),
    };
    rec.event.kind.fanout(&mut out);
    out.updates
}

/// What an event's [`Change::fanout`](crate::event::Change::fanout) works with: the meeting just
/// after the event, the event, and the updates so far, with the shapes of frame several events
/// share.
#[derive(Debug)]
pub(crate) struct Fanout<'a> {
    pub meeting: &'a Meeting,
    pub rec: &'a Recorded,
    updates: Vec<Update>,
}

impl Fanout<'_> {
    /// Who caused the event.
    pub fn by(&self) -> &ParticipantId {
        &self.rec.event.by
    }

    /// An empty `event` frame for this event: its offset and kind.
    pub fn frame(&self) -> EventFrame {
        EventFrame {
            offset: self.rec.offset,
            kind: self.rec.event.kind.name().to_owned(),
            ..EventFrame::default()
        }
    }

    pub fn send(&mut self, audience: Audience, frame: EventFrame) {
        self.updates.push(Update::Send(
            audience,
            ServerMessage::Event(Box::new(frame)),
        ));
    }

    pub fn push(&mut self, update: Update) {
        self.updates.push(update);
    }

    /// The frame only the author of the event gets, whatever their role (their own vote or
    /// poll answer).
    pub fn send_to_author(&mut self, frame: EventFrame) {
        let only = Target::Only(self.by().clone());
        self.send(Audience::new(Class::All, only), frame);
    }

    /// Everyone gets the new meeting view (status, settings, announcement).
    pub fn meeting_changed(&mut self) {
        let frame = EventFrame {
            meeting: Some(MeetingView::of(self.meeting)),
            ..self.frame()
        };
        self.send(Audience::EVERYONE, frame);
    }

    /// Asking or commenting makes the author a known participant (staff snapshots list them, and
    /// moderators may now mute them), so the staff frame carries their state too.
    pub fn staff_learn_of(&mut self, p: &ParticipantId) {
        let view = self
            .meeting
            .participant(p)
            .map(|state| ParticipantView::of(p, state));
        for u in &mut self.updates {
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
    pub fn participant_changed(&mut self, p: &ParticipantId) {
        let m = self.meeting;
        let participant = m.participant(p).map(|state| ParticipantView::of(p, state));
        let you = Some(YouView::of(m, p));
        self.send(
            Audience::new(Class::Staff, Target::Except(vec![p.clone()])),
            EventFrame {
                participant: participant.clone(),
                ..self.frame()
            },
        );
        self.send(
            Audience::new(Class::Staff, Target::Only(p.clone())),
            EventFrame {
                participant,
                you: you.clone(),
                ..self.frame()
            },
        );
        self.send(
            Audience::new(Class::Citizens, Target::Only(p.clone())),
            EventFrame {
                you,
                ..self.frame()
            },
        );
    }

    /// Staff see every change of a question; its author sees their own view; other citizens see
    /// it only once it has been approved. `with_meeting` adds the meeting view (queue, on air).
    pub fn questions_changed(&mut self, ids: &[QuestionId], with_meeting: bool) {
        let m = self.meeting;
        let qs: Vec<&Question> = ids.iter().filter_map(|id| m.questions.get(id)).collect();
        let meeting = with_meeting.then(|| MeetingView::of(m));
        let views = |p: &dyn Fn(&Question) -> Option<Perspective>| -> Vec<QuestionView> {
            qs.iter()
                .filter_map(|q| p(q).map(|p| QuestionView::of(q, p)))
                .collect()
        };
        self.send(
            Audience::new(Class::Staff, Target::Any),
            EventFrame {
                questions: views(&|_| Some(Perspective::Staff)),
                meeting: meeting.clone(),
                ..self.frame()
            },
        );
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
            self.send(
                Audience::new(Class::Citizens, Target::Only(a.clone())),
                EventFrame {
                    questions: own,
                    meeting: meeting.clone(),
                    ..self.frame()
                },
            );
        }
        // Queue and on-air slot only ever hold public questions, so when none of these
        // questions is public, nothing other citizens see has changed: they don't even learn
        // that it happened.
        let public = views(&|q| q.public.then_some(Perspective::Public));
        if !public.is_empty() {
            self.send(
                Audience::new(Class::Citizens, Target::Except(authors)),
                EventFrame {
                    questions: public,
                    meeting,
                    ..self.frame()
                },
            );
        }
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
