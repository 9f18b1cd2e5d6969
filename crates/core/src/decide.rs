//! `Meeting::decide`: the checks every command shares, then the command's own [`Rule`].
//!
//! [`Rule`]: crate::command::Rule

use crate::command::{Command, Context, Phase};
use crate::event::Event;
use crate::ids::{Actor, Timestamp};
use crate::meeting::{Meeting, MeetingStatus};
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
}
