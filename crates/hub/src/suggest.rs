//! Merge suggestions for moderators, beside the room's log: which open questions a pending one
//! probably duplicates (`townhall-suggest` does the text similarity).
//!
//! The room tells the [`Suggester`] about every committed event ([`Suggester::observe`], cheap:
//! it only updates the index and notes what to compute); the suggestions themselves are
//! computed in the room's tick ([`Suggester::work`]), a bounded number of questions per tick,
//! after the commands of the turn have been answered, so they never delay an acknowledgement.
//! The result goes to staff sessions as a `suggestions` frame — advice, never an event in the
//! log — and a moderator who joins gets all current ones ([`Suggester::all`]).

use std::collections::{BTreeMap, VecDeque};
use townhall_core::wire::{ServerMessage, Similar, SuggestionItem};
use townhall_core::{EventKind, Meeting, QuestionId, QuestionStatus, Recorded};
use townhall_suggest::{Config, Index};

/// Questions whose suggestions are computed per tick at most (a burst of questions is spread
/// over ticks instead of holding one).
pub const PER_TICK: usize = 8;

/// The index of a meeting's open questions and the suggestions of its pending ones.
#[derive(Debug)]
pub struct Suggester {
    index: Index,
    /// Suggestions of each pending question, as last sent.
    current: BTreeMap<QuestionId, Vec<Similar>>,
    /// Pending questions whose suggestions are still to be computed, oldest first.
    todo: VecDeque<QuestionId>,
}

/// Questions a duplicate can be merged into (`merge_question`'s rule) and that a moderator
/// would still want to see beside a new one.
fn indexed(status: &QuestionStatus) -> bool {
    matches!(
        status,
        QuestionStatus::Pending
            | QuestionStatus::Approved
            | QuestionStatus::Queued
            | QuestionStatus::OnAir
    )
}

impl Suggester {
    /// The index for a meeting as loaded; its pending questions are queued for computing.
    pub fn new(m: &Meeting) -> Self {
        let mut s = Self {
            index: Index::new(Config::default()),
            current: BTreeMap::new(),
            todo: VecDeque::new(),
        };
        for q in m.questions.values().filter(|q| indexed(&q.status)) {
            s.index.insert(q.id.0, &q.text);
            if q.status == QuestionStatus::Pending {
                s.todo.push_back(q.id);
            }
        }
        s
    }

    /// Follows one committed event, already applied to `m`.
    pub fn observe(&mut self, m: &Meeting, rec: &Recorded) {
        let ids: &[QuestionId] = match &rec.event.kind {
            EventKind::QuestionAsked(e) => &[e.question],
            EventKind::QuestionApproved(e) => &[e.question],
            EventKind::QuestionRejected(e) => &[e.question],
            EventKind::QuestionMerged(e) => &[e.question],
            EventKind::QuestionAnswered(e) => &[e.question],
            _ => return,
        };
        for &id in ids {
            let Some(q) = m.questions.get(&id) else {
                continue;
            };
            if !indexed(&q.status) {
                self.index.remove(id.0);
            } else if !self.index.contains(id.0) {
                self.index.insert(id.0, &q.text);
            }
            if q.status == QuestionStatus::Pending {
                self.todo.push_back(id);
            } else if self.current.remove(&id).is_some() {
                // No longer pending: its suggestions are done with. Clients drop them by the
                // question's status; the map only stays small.
            }
        }
    }

    /// Computes the suggestions of up to `budget` waiting questions; the frame for staff, if
    /// any changed.
    pub fn work(&mut self, m: &Meeting, budget: usize) -> Option<ServerMessage> {
        let mut items = Vec::new();
        while items.len() < budget {
            let Some(id) = self.todo.pop_front() else {
                break;
            };
            if m.questions.get(&id).map(|q| &q.status) != Some(&QuestionStatus::Pending) {
                continue;
            }
            let (found, _) = self.index.suggest(id.0);
            let similar: Vec<Similar> = found
                .iter()
                .map(|s| Similar {
                    id: QuestionId(s.id),
                    score: (s.score * 100.0).round().clamp(0.0, 100.0) as u8,
                })
                .collect();
            // A new question that duplicates a pending one is offered beside that one too.
            for s in &similar {
                if let Some(other) = self.current.get_mut(&s.id)
                    && !other.iter().any(|o| o.id == id)
                {
                    other.push(Similar { id, ..*s });
                    other.sort_by_key(|o| std::cmp::Reverse(o.score));
                    items.push(SuggestionItem {
                        question: s.id,
                        similar: other.clone(),
                    });
                }
            }
            if similar.is_empty() && !self.current.contains_key(&id) {
                continue;
            }
            self.current.insert(id, similar.clone());
            items.push(SuggestionItem {
                question: id,
                similar,
            });
        }
        (!items.is_empty()).then_some(ServerMessage::Suggestions { items })
    }

    /// Every current suggestion, for a moderator who joins.
    pub fn all(&self) -> Option<ServerMessage> {
        let items: Vec<SuggestionItem> = self
            .current
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(&question, similar)| SuggestionItem {
                question,
                similar: similar.clone(),
            })
            .collect();
        (!items.is_empty()).then_some(ServerMessage::Suggestions { items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use townhall_core::command::{ApproveQuestion, AskQuestion, CreateMeeting, StartMeeting};
    use townhall_core::{Actor, Command, MeetingId, ParticipantId, Role, Timestamp};

    struct Meet {
        m: Meeting,
        s: Suggester,
    }

    impl Meet {
        fn new() -> Self {
            let mut me = Self {
                m: Meeting::new(MeetingId::parse("m1").unwrap()),
                s: Suggester::new(&Meeting::new(MeetingId::parse("m1").unwrap())),
            };
            me.run(
                "org",
                Role::Organizer,
                CreateMeeting {
                    title: "Møde".into(),
                }
                .into(),
            );
            me.run("org", Role::Organizer, StartMeeting.into());
            me
        }

        fn run(&mut self, who: &str, role: Role, cmd: Command) {
            let actor = Actor {
                participant: ParticipantId::parse(who).unwrap(),
                role,
            };
            for event in self.m.decide(&actor, &cmd, Timestamp(1)).unwrap() {
                let rec = Recorded {
                    offset: self.m.offset + 1,
                    event,
                };
                self.m.apply(&rec);
                self.s.observe(&self.m, &rec);
            }
        }

        fn ask(&mut self, who: &str, text: &str) {
            let cmd = AskQuestion {
                text: text.into(),
                anonymous: false,
            };
            self.run(who, Role::Citizen, cmd.into());
        }
    }

    fn items(msg: Option<ServerMessage>) -> Vec<SuggestionItem> {
        match msg {
            Some(ServerMessage::Suggestions { items }) => items,
            None => Vec::new(),
            Some(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_new_duplicate_gets_the_open_question_and_the_pending_one_gets_it_back() {
        let mut t = Meet::new();
        t.ask(
            "a",
            "Hvornår bliver cykelstien langs Usserød Kongevej færdig?",
        );
        t.ask("b", "Hvad skal den gamle skolegrund bruges til?");
        t.ask("c", "Hvor mange ældreboliger bygger I?");
        t.ask("d", "Hvorfor stiger prisen på SFO?");
        t.run(
            "mod",
            Role::Moderator,
            ApproveQuestion {
                question: QuestionId(1),
            }
            .into(),
        );
        assert!(
            items(t.s.work(&t.m, PER_TICK)).is_empty(),
            "nothing alike yet"
        );
        t.ask("e", "Hvornår er cykelstien på Usserød Kongevej klar?");
        let got = items(t.s.work(&t.m, PER_TICK));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].question, QuestionId(5));
        assert_eq!(got[0].similar[0].id, QuestionId(1));
        assert_eq!(items(t.s.all()), got);
        // Decided: its suggestions are gone.
        t.run(
            "mod",
            Role::Moderator,
            ApproveQuestion {
                question: QuestionId(5),
            }
            .into(),
        );
        assert!(t.s.all().is_none());
    }

    #[test]
    fn the_work_per_tick_is_bounded() {
        let mut t = Meet::new();
        for i in 0..20 {
            t.ask(&format!("p{i}"), "Hvornår åbner svømmehallen igen?");
        }
        let first = items(t.s.work(&t.m, 3));
        let asked: std::collections::BTreeSet<_> = first
            .iter()
            .map(|i| i.question)
            .filter(|q| q.0 <= 3)
            .collect();
        assert!(asked.len() <= 3, "{first:?}");
        let mut rounds = 1;
        while t.s.work(&t.m, 3).is_some() {
            rounds += 1;
        }
        assert!(
            rounds >= 6,
            "20 questions at 3 per tick take several ticks: {rounds}"
        );
    }
}
