//! Names shared by the relay, its driver and the HTTP layer.

use std::fmt;

/// Stage slots per meeting: e.g. two speakers' cameras, a screen share and an interpreter.
pub const SLOTS: usize = 4;

/// What a publisher shows; decides the layout on the viewer page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Camera,
    Screen,
    Interpreter,
}

impl SourceKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "camera" => Some(Self::Camera),
            "screen" => Some(Self::Screen),
            "interpreter" => Some(Self::Interpreter),
            _ => None,
        }
    }
}

/// A WHIP or WHEP session: 128 random bits, hex. Its URL is the capability to end it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn random() -> Self {
        let bits: u128 = rand::random();
        SessionId(format!("{bits:032x}"))
    }

    /// Accepts only the shape `random` makes, so a path segment can't smuggle anything.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| SessionId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which route a session was made on: a session id works only under its own meeting and route,
/// so a viewer's URL cannot end a publisher and one meeting's path cannot reach another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// WHIP: a publisher.
    Whip,
    /// WHEP: a viewer.
    Whep,
}

/// One occupied slot of a meeting's stage, as `GET /stage` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StageSource {
    pub slot: usize,
    pub source: SourceKind,
    pub label: Option<String>,
    pub video: bool,
    pub audio: bool,
    /// Simulcast rids that are flowing, lowest first; empty without simulcast.
    pub layers: Vec<&'static str>,
}

/// A STUN or TURN server announced to clients (WHIP/WHEP `Link` headers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, `turns:…`.
    pub url: String,
    pub username: Option<String>,
    pub credential: Option<String>,
}

/// Why a media request was refused; `code` is stable (docs/protocol.md §14).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("{0}")]
    BadSdp(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("no such media session (it ended or never existed)")]
    NoSession,
    #[error("all {SLOTS} stage slots are taken; stop another source first")]
    StageFull,
    #[error("this server serves as many viewers as it is configured for; try again later")]
    MediaFull,
    #[error("this address already holds as many media sessions as allowed; end one first")]
    TooManySessions,
    #[error("this session already has {0} ICE candidates; no more are taken")]
    TooManyCandidates(usize),
    #[error("too many trickle requests for this session; slow down")]
    RateLimited,
    #[error("the media relay is not running")]
    Stopped,
}

impl MediaError {
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::BadSdp(_) => "bad_sdp",
            MediaError::BadRequest(_) => "bad_request",
            MediaError::NoSession => "no_session",
            MediaError::StageFull => "stage_full",
            MediaError::MediaFull => "media_full",
            MediaError::TooManySessions => "too_many_sessions",
            MediaError::TooManyCandidates(_) => "too_many_candidates",
            MediaError::RateLimited => "rate_limited",
            MediaError::Stopped => "unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_and_reject_other_shapes() {
        let id = SessionId::random();
        assert_eq!(SessionId::parse(id.as_str()), Some(id.clone()));
        assert_ne!(SessionId::random(), id);
        assert_eq!(SessionId::parse("../etc"), None);
        assert_eq!(SessionId::parse(&"A".repeat(32)), None);
        assert_eq!(SessionId::parse(&"a".repeat(31)), None);
    }
}
