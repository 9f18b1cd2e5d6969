//! Identifiers and small value types shared by every crate.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Position of an event in its meeting's log: 1, 2, 3, … (0 means "nothing yet").
pub type Offset = u64;

/// Wall-clock time in milliseconds since the Unix epoch. Always passed in, never read here.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// An id was empty, too long or had characters outside its alphabet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id: use 1 to 64 characters from a-z, A-Z, 0-9, '-' and '_'")]
pub struct InvalidId {
    kind: &'static str,
}

fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks the alphabet and length; ids appear in URLs, logs and keys.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                if valid_token(&s) { Ok(Self(s)) } else { Err(InvalidId { kind: $kind }) }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A meeting, as it appears in `/m/{meeting}`.
    MeetingId,
    "meeting"
);
string_id!(
    /// A participant (one browser with its session cookie, or the organizer).
    ParticipantId,
    "participant"
);

macro_rules! number_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

number_id!(
    /// A question, numbered 1, 2, 3, … within its meeting.
    QuestionId
);
number_id!(
    /// A chat comment, numbered 1, 2, 3, … within its meeting.
    CommentId
);
number_id!(
    /// A poll, numbered 1, 2, 3, … within its meeting.
    PollId
);

/// What a participant may do in a meeting; decided by the server from the link used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Citizen,
    Moderator,
    Speaker,
    Organizer,
}

impl Role {
    /// Moderators, speakers and the organizer see pending questions and authors' identities.
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Citizen)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::Moderator => "moderator",
            Role::Speaker => "speaker",
            Role::Organizer => "organizer",
        }
    }
}

/// Who issues a command: a participant acting in a role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub participant: ParticipantId,
    pub role: Role,
}

impl Actor {
    pub fn new(participant: ParticipantId, role: Role) -> Self {
        Self { participant, role }
    }

    /// The organizer acting through the admin API.
    pub fn organizer() -> Self {
        Self::new(ParticipantId("organizer".into()), Role::Organizer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_url_safe_tokens_only() {
        assert!(MeetingId::parse("borgermode-2026").is_ok());
        assert!(MeetingId::parse("").is_err());
        assert!(MeetingId::parse("a/b").is_err());
        assert!(MeetingId::parse("x".repeat(65)).is_err());
        assert!(serde_json::from_str::<ParticipantId>("\"a b\"").is_err());
    }
}
