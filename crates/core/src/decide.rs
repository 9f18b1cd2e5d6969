//! `Meeting::decide`: the checks every command shares, then the command's own [`Rule`].
//!
//! [`Rule`]: crate::command::Rule

use crate::command::{Command, Context, Phase};
use crate::event::Event;
use crate::ids::{Actor, Timestamp};
use crate::meeting::{Limits, Meeting, MeetingStatus};
use crate::rejection::Rejection;

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
        if !cmd.permission().allows(actor.role) {
            return Err(Rejection::Forbidden);
        }
        let creates = matches!(cmd, Command::CreateMeeting(_));
        match self.status {
            MeetingStatus::Draft if !creates => return Err(Rejection::NoMeeting),
            MeetingStatus::Draft => {}
            _ if creates => return Err(Rejection::AlreadyCreated),
            MeetingStatus::Ended if cmd.phase() == Phase::UntilEnd => return Err(Rejection::Ended),
            _ => {}
        }
        let me = self.participants.get(&actor.participant);
        if me.is_some_and(|p| p.banned) && !actor.role.is_staff() {
            return Err(Rejection::Banned);
        }
        self.check_size(actor)?;
        let cx = Context { actor, now, me };
        let kinds = cmd.decide(self, &cx)?;
        Ok(kinds
            .into_iter()
            .map(|kind| Event {
                at: now,
                by: actor.participant.clone(),
                kind,
            })
            .collect())
    }

    /// The caps on the log and on participants: citizens are refused at the limits, staff
    /// keep a reserve of events (to moderate and end the meeting) and are never counted out.
    fn check_size(&self, actor: &Actor) -> Result<(), Rejection> {
        let staff = actor.role.is_staff();
        let max = self.limits.max_events;
        let allowed = if staff {
            max.saturating_add(Limits::STAFF_RESERVE)
        } else {
            max
        };
        if self.offset >= allowed {
            return Err(Rejection::TooManyEvents { max });
        }
        let max = self.limits.max_participants;
        if !staff && self.actors.len() >= max && !self.actors.contains(&actor.participant) {
            return Err(Rejection::TooManyParticipants { max });
        }
        Ok(())
    }
}
