//! Participants: display names, and moderators muting, removing (banning) and restoring them.
//! Staff see a participant's moderation state; the participant sees their own.

use crate::command::{Context, Permission, Rule, one};
use crate::event::{Change, EventKind};
use crate::fanout::{Fanout, Update};
use crate::ids::{Actor, ParticipantId, Timestamp};
use crate::meeting::{Meeting, Participant};
use crate::rejection::Rejection;
use crate::text::{TextKind, clean_optional};
use serde::{Deserialize, Serialize};

impl Meeting {
    /// A participant the meeting knows (who asked, commented or set a name).
    pub(crate) fn known(&self, id: &ParticipantId) -> Result<&Participant, Rejection> {
        self.participants
            .get(id)
            .ok_or(Rejection::UnknownParticipant)
    }

    /// Mute and slow mode apply to citizens; staff are never held back.
    pub(crate) fn check_may_post(&self, actor: &Actor, now: Timestamp) -> Result<(), Rejection> {
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

/// Set or clear (empty text) the display name shown with questions and comments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetName {
    pub name: String,
}

impl Rule for SetName {
    const PERMISSION: Permission = Permission::Anyone;

    fn decide(&self, _: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        one(ParticipantRenamed {
            name: clean_optional(TextKind::DisplayName, &self.name)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuteParticipant {
    pub participant: ParticipantId,
}

impl Rule for MuteParticipant {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if m.known(&self.participant)?.muted {
            return Err(Rejection::InvalidState("the participant is already muted"));
        }
        one(ParticipantMuted {
            participant: self.participant.clone(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnmuteParticipant {
    pub participant: ParticipantId,
}

impl Rule for UnmuteParticipant {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if !m.known(&self.participant)?.muted {
            return Err(Rejection::InvalidState("the participant is not muted"));
        }
        one(ParticipantUnmuted {
            participant: self.participant.clone(),
        })
    }
}

/// Remove a participant: their citizen sessions are closed and they cannot rejoin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanParticipant {
    pub participant: ParticipantId,
}

impl Rule for BanParticipant {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if m.known(&self.participant)?.banned {
            return Err(Rejection::InvalidState(
                "the participant is already removed",
            ));
        }
        one(ParticipantBanned {
            participant: self.participant.clone(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnbanParticipant {
    pub participant: ParticipantId,
}

impl Rule for UnbanParticipant {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        if !m.known(&self.participant)?.banned {
            return Err(Rejection::InvalidState("the participant is not removed"));
        }
        one(ParticipantUnbanned {
            participant: self.participant.clone(),
        })
    }
}

/// The author of the event (`by`) set or cleared their name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantRenamed {
    pub name: Option<String>,
}

impl Change for ParticipantRenamed {
    fn apply(&self, m: &mut Meeting, by: &ParticipantId, _: Timestamp) {
        m.participants.entry(by.clone()).or_default().name = self.name.clone();
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        let by = out.by().clone();
        out.participant_changed(&by);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantMuted {
    pub participant: ParticipantId,
}

impl Change for ParticipantMuted {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.participants
            .entry(self.participant.clone())
            .or_default()
            .muted = true;
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.participant_changed(&self.participant);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantUnmuted {
    pub participant: ParticipantId,
}

impl Change for ParticipantUnmuted {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.participants
            .entry(self.participant.clone())
            .or_default()
            .muted = false;
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.participant_changed(&self.participant);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantBanned {
    pub participant: ParticipantId,
}

impl Change for ParticipantBanned {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.participants
            .entry(self.participant.clone())
            .or_default()
            .banned = true;
    }

    /// Besides the frames, the hub closes the participant's citizen sessions.
    fn fanout(&self, out: &mut Fanout<'_>) {
        out.participant_changed(&self.participant);
        out.push(Update::Disconnect(self.participant.clone()));
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantUnbanned {
    pub participant: ParticipantId,
}

impl Change for ParticipantUnbanned {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        m.participants
            .entry(self.participant.clone())
            .or_default()
            .banned = false;
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        out.participant_changed(&self.participant);
    }
}
