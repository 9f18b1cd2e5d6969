//! `Meeting::decide`: checks one command against the state and says what happens.

use crate::command::Command;
use crate::event::{Event, EventKind};
use crate::ids::{Actor, ParticipantId, QuestionId, Role, Timestamp};
use crate::meeting::{Meeting, MeetingStatus, Question, QuestionStatus};
use crate::rejection::Rejection;
use crate::text::{TextKind, clean, clean_optional};

/// Most options a poll may offer: more do not fit a phone screen.
pub const MAX_POLL_OPTIONS: usize = 6;

/// Which roles may issue a command.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Permission {
    Anyone,
    /// Moderators, and speakers (who answer questions on air).
    Presenters,
    Moderators,
    Organizer,
}

fn permission(cmd: &Command) -> Permission {
    use Command::*;
    match cmd {
        SetName { .. }
        | AskQuestion { .. }
        | Upvote { .. }
        | RetractUpvote { .. }
        | PostComment { .. }
        | AnswerPoll { .. } => Permission::Anyone,
        MarkAnswered { .. } => Permission::Presenters,
        CreateMeeting { .. } | StartMeeting | EndMeeting => Permission::Organizer,
        _ => Permission::Moderators,
    }
}

fn allowed(role: Role, p: Permission) -> bool {
    match p {
        Permission::Anyone => true,
        Permission::Presenters => matches!(role, Role::Moderator | Role::Speaker | Role::Organizer),
        Permission::Moderators => matches!(role, Role::Moderator | Role::Organizer),
        Permission::Organizer => role == Role::Organizer,
    }
}

impl Meeting {
    /// Decides what `cmd` from `actor` at time `now` does: the events to append, or why not.
    ///
    /// Pure: the same state, actor, command and time always give the same answer.
    pub fn decide(
        &self,
        actor: &Actor,
        cmd: &Command,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        if !allowed(actor.role, permission(cmd)) {
            return Err(Rejection::Forbidden);
        }
        match (self.status, cmd) {
            (MeetingStatus::Draft, Command::CreateMeeting { .. }) => {}
            (MeetingStatus::Draft, _) => return Err(Rejection::NoMeeting),
            (_, Command::CreateMeeting { .. }) => return Err(Rejection::AlreadyCreated),
            (MeetingStatus::Ended, _) => return Err(Rejection::Ended),
            _ => {}
        }
        let me = self.participants.get(&actor.participant);
        if me.is_some_and(|p| p.banned) && !actor.role.is_staff() {
            return Err(Rejection::Banned);
        }

        let event = |kind| Event {
            at: now,
            by: actor.participant.clone(),
            kind,
        };
        let one = |kind| Ok(vec![event(kind)]);
        use Command as C;
        use EventKind as E;
        match cmd {
            C::CreateMeeting { title } => one(E::MeetingCreated {
                title: clean(TextKind::Title, title)?,
            }),
            C::StartMeeting => match self.status {
                MeetingStatus::Scheduled => one(E::MeetingStarted),
                _ => Err(Rejection::InvalidState("the meeting is already live")),
            },
            C::EndMeeting => {
                // The question on air counts as answered and open polls close, in the record too.
                let answered = self
                    .on_air
                    .map(|q| event(E::QuestionAnswered { question: q }));
                let closed = self
                    .polls
                    .values()
                    .filter(|p| p.open)
                    .map(|p| event(E::PollClosed { poll: p.id }));
                Ok(answered
                    .into_iter()
                    .chain(closed)
                    .chain([event(E::MeetingEnded)])
                    .collect())
            }

            C::SetName { name } => {
                let name = clean_optional(TextKind::DisplayName, name)?;
                one(E::ParticipantRenamed { name })
            }
            C::AskQuestion { text, anonymous } => {
                self.check_may_post(actor, now)?;
                if !self.qa_open && !actor.role.is_staff() {
                    return Err(Rejection::QaClosed);
                }
                let text = clean(TextKind::Question, text)?;
                let max = self.limits.max_pending_per_participant;
                if !actor.role.is_staff() && me.is_some_and(|p| p.pending >= max) {
                    return Err(Rejection::TooManyPending { max });
                }
                if self.questions.len() >= self.limits.max_questions {
                    return Err(Rejection::MeetingFull {
                        max: self.limits.max_questions,
                    });
                }
                one(E::QuestionAsked {
                    question: self.next_question_id(),
                    text,
                    anonymous: *anonymous,
                    author_name: self.name_of(&actor.participant),
                })
            }
            C::Upvote { question } => {
                let q = self.open_question(*question)?;
                if q.voters.contains(&actor.participant) {
                    return Err(Rejection::AlreadyVoted);
                }
                one(E::VoteCast {
                    question: *question,
                })
            }
            C::RetractUpvote { question } => {
                let q = self.open_question(*question)?;
                if !q.voters.contains(&actor.participant) {
                    return Err(Rejection::NotVoted);
                }
                one(E::VoteRetracted {
                    question: *question,
                })
            }
            C::PostComment { text } => {
                self.check_may_post(actor, now)?;
                if self.status != MeetingStatus::Live && !actor.role.is_staff() {
                    return Err(Rejection::NotLive);
                }
                if !self.chat_open && !actor.role.is_staff() {
                    return Err(Rejection::ChatClosed);
                }
                let text = clean(TextKind::Comment, text)?;
                if self.comments.len() >= self.limits.max_comments {
                    return Err(Rejection::MeetingFull {
                        max: self.limits.max_comments,
                    });
                }
                one(E::CommentPosted {
                    comment: self.next_comment_id(),
                    text,
                    author_name: self.name_of(&actor.participant),
                })
            }

            C::ApproveQuestion { question } => match self.question(*question)?.status {
                QuestionStatus::Pending | QuestionStatus::Rejected { .. } => {
                    one(E::QuestionApproved {
                        question: *question,
                    })
                }
                _ => Err(Rejection::InvalidState(
                    "only pending or rejected questions can be approved",
                )),
            },
            C::RejectQuestion { question, reason } => {
                let reason = clean(TextKind::Reason, reason)?;
                match self.question(*question)?.status {
                    QuestionStatus::Pending | QuestionStatus::Approved | QuestionStatus::Queued => {
                        one(E::QuestionRejected {
                            question: *question,
                            reason,
                        })
                    }
                    _ => Err(Rejection::InvalidState(
                        "this question can no longer be rejected",
                    )),
                }
            }
            C::MergeQuestion { question, into } => {
                let from = self.question(*question)?;
                let target = self.question(*into)?;
                let from_ok = matches!(
                    from.status,
                    QuestionStatus::Pending | QuestionStatus::Approved | QuestionStatus::Queued
                );
                // A question citizens have seen (and voted on) must not disappear into one they
                // cannot see: its votes and its `merged_into` would point at a hidden question.
                let target_ok = !matches!(
                    target.status,
                    QuestionStatus::Rejected { .. } | QuestionStatus::Merged { .. }
                ) && (target.public || !from.public);
                if question == into || !from_ok || !target_ok {
                    return Err(Rejection::InvalidMerge);
                }
                one(E::QuestionMerged {
                    question: *question,
                    into: *into,
                })
            }
            C::QueueQuestion { question, position } => {
                match self.question(*question)?.status {
                    QuestionStatus::Approved | QuestionStatus::Queued => {}
                    _ => {
                        return Err(Rejection::InvalidState(
                            "only approved questions can be queued",
                        ));
                    }
                }
                let others = self.queue.iter().filter(|&&x| x != *question).count();
                let position = position.map_or(others, |p| (p as usize).min(others)) as u32;
                one(E::QuestionQueued {
                    question: *question,
                    position,
                })
            }
            C::UnqueueQuestion { question } => match self.question(*question)?.status {
                QuestionStatus::Queued => one(E::QuestionUnqueued {
                    question: *question,
                }),
                _ => Err(Rejection::InvalidState("the question is not in the queue")),
            },
            C::PutOnAir { question } => {
                match self.question(*question)?.status {
                    QuestionStatus::Approved | QuestionStatus::Queued => {}
                    _ => {
                        return Err(Rejection::InvalidState(
                            "only approved questions can go on air",
                        ));
                    }
                }
                if self.status != MeetingStatus::Live {
                    return Err(Rejection::NotLive);
                }
                let mut events = Vec::with_capacity(2);
                if let Some(current) = self.on_air {
                    events.push(event(E::QuestionAnswered { question: current }));
                }
                events.push(event(E::QuestionOnAir {
                    question: *question,
                }));
                Ok(events)
            }
            C::MarkAnswered { question } => {
                if actor.role == Role::Speaker && self.on_air != Some(*question) {
                    return Err(Rejection::InvalidState(
                        "speakers answer the question on air",
                    ));
                }
                match self.question(*question)?.status {
                    QuestionStatus::Approved | QuestionStatus::Queued | QuestionStatus::OnAir => {
                        one(E::QuestionAnswered {
                            question: *question,
                        })
                    }
                    _ => Err(Rejection::InvalidState(
                        "only approved questions can be answered",
                    )),
                }
            }
            C::HideComment { comment } => {
                let c = self
                    .comments
                    .get(comment)
                    .ok_or(Rejection::UnknownComment)?;
                if c.hidden {
                    return Err(Rejection::InvalidState("the comment is already hidden"));
                }
                one(E::CommentHidden { comment: *comment })
            }
            C::MuteParticipant { participant } => {
                let muted = self.known(participant)?.muted;
                if muted {
                    return Err(Rejection::InvalidState("the participant is already muted"));
                }
                one(E::ParticipantMuted {
                    participant: participant.clone(),
                })
            }
            C::UnmuteParticipant { participant } => {
                if !self.known(participant)?.muted {
                    return Err(Rejection::InvalidState("the participant is not muted"));
                }
                one(E::ParticipantUnmuted {
                    participant: participant.clone(),
                })
            }
            C::BanParticipant { participant } => {
                if self.known(participant)?.banned {
                    return Err(Rejection::InvalidState(
                        "the participant is already removed",
                    ));
                }
                one(E::ParticipantBanned {
                    participant: participant.clone(),
                })
            }
            C::UnbanParticipant { participant } => {
                if !self.known(participant)?.banned {
                    return Err(Rejection::InvalidState("the participant is not removed"));
                }
                one(E::ParticipantUnbanned {
                    participant: participant.clone(),
                })
            }
            C::SetSlowMode { seconds } => {
                if *seconds > 3600 {
                    return Err(Rejection::InvalidState("slow mode is at most 3600 seconds"));
                }
                one(E::SlowModeSet { seconds: *seconds })
            }
            C::SetQaOpen { open } => one(if *open { E::QaOpened } else { E::QaClosed }),
            C::SetChatOpen { open } => one(if *open { E::ChatOpened } else { E::ChatClosed }),
            C::OpenPoll { question, options } => {
                if self.status != MeetingStatus::Live {
                    return Err(Rejection::NotLive);
                }
                let question = clean(TextKind::PollQuestion, question)?;
                let options = options
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
                if self.polls.len() >= self.limits.max_polls {
                    return Err(Rejection::MeetingFull {
                        max: self.limits.max_polls,
                    });
                }
                one(E::PollOpened {
                    poll: self.next_poll_id(),
                    question,
                    options,
                })
            }
            C::ClosePoll { poll } => {
                if !self.polls.get(poll).ok_or(Rejection::UnknownPoll)?.open {
                    return Err(Rejection::InvalidState("the poll is already closed"));
                }
                one(E::PollClosed { poll: *poll })
            }
            C::AnswerPoll { poll, option } => {
                let p = self.polls.get(poll).ok_or(Rejection::UnknownPoll)?;
                if !p.open {
                    return Err(Rejection::InvalidState("the poll has closed"));
                }
                if *option as usize >= p.options.len() {
                    return Err(Rejection::InvalidState("the poll has no such option"));
                }
                if p.answers.contains_key(&actor.participant) {
                    return Err(Rejection::AlreadyAnswered);
                }
                one(E::PollAnswered {
                    poll: *poll,
                    option: *option,
                })
            }
            C::PinAnnouncement { text } => one(E::AnnouncementPinned {
                text: clean_optional(TextKind::Announcement, text)?,
            }),
        }
    }

    fn question(&self, id: QuestionId) -> Result<&Question, Rejection> {
        self.questions.get(&id).ok_or(Rejection::UnknownQuestion)
    }

    /// A question citizens can vote on. Questions they cannot see are "unknown" to them, so a
    /// vote cannot probe for pending questions.
    fn open_question(&self, id: QuestionId) -> Result<&Question, Rejection> {
        match self.questions.get(&id) {
            Some(q) if q.is_open() => Ok(q),
            Some(q) if q.public => Err(Rejection::InvalidState(
                "voting on this question has closed",
            )),
            _ => Err(Rejection::UnknownQuestion),
        }
    }

    fn known(&self, id: &ParticipantId) -> Result<&crate::Participant, Rejection> {
        self.participants
            .get(id)
            .ok_or(Rejection::UnknownParticipant)
    }

    /// Mute and slow mode apply to citizens; staff are never held back.
    fn check_may_post(&self, actor: &Actor, now: Timestamp) -> Result<(), Rejection> {
        if actor.role.is_staff() {
            return Ok(());
        }
        let Some(p) = self.participants.get(&actor.participant) else {
            return Ok(());
        };
        if p.muted {
            return Err(Rejection::Muted);
        }
        if let (Some(last), secs) = (p.last_post_at, self.slow_mode_secs) {
            let wait = u64::from(secs) * 1000;
            let since = now.millis_since(last);
            if since < wait {
                return Err(Rejection::SlowMode {
                    retry_after_ms: wait - since,
                });
            }
        }
        Ok(())
    }
}
