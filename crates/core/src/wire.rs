//! The WebSocket protocol: one JSON object per text frame, tagged by `"t"`.
//! `docs/protocol.md` documents it with examples; this module is its source of truth.

use crate::command::Command;
use crate::ids::{CommentId, MeetingId, Offset, ParticipantId, PollId, QuestionId, Role};
use crate::view::{
    CommentView, MeetingView, ParticipantView, PollAnswer, PollView, QuestionView, Snapshot,
    SnapshotMore, YouView,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Protocol version announced in `welcome`; bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// A frame from a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First frame on a connection: which meeting, and from which offset to resume.
    Hello {
        meeting: MeetingId,
        /// Last offset this client saw; absent for a fresh join.
        #[serde(default)]
        since: Option<Offset>,
        /// Secret moderator or studio token from the link's fragment.
        #[serde(default)]
        token: Option<String>,
        /// Signed session from an earlier `welcome`, for clients without cookies.
        #[serde(default)]
        session: Option<String>,
    },
    /// A command; answered by `ack` or `error` with the same `ref`.
    Cmd {
        #[serde(rename = "ref")]
        reference: u64,
        cmd: Command,
    },
    /// Application-level keep-alive (browsers cannot send WebSocket pings); answered by `pong`.
    /// A struct variant, not a unit one: serde ignores unknown fields of an internally tagged
    /// unit variant, and every client frame is parsed strictly (`{"t":"ping","x":1}` is
    /// `malformed`). On the wire it is `{"t":"ping"}` either way.
    Ping {},
}

/// A frame from the server.
///
/// Ordering guarantee: a session receives at most one `event` frame per log offset, in
/// increasing order. `votes` and `presence` carry absolute values (not deltas), so resending
/// them is harmless; a client that resumes with `since` gets exactly the `event` frames after
/// it, then fresh `votes` and `presence`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        protocol: u32,
        participant: ParticipantId,
        role: Role,
        /// Signed session token; send it back in `hello.session` to keep the same identity.
        session: String,
    },
    Snapshot(Box<Snapshot>),
    /// The next part of a snapshot whose `more` was true.
    SnapshotMore(Box<SnapshotMore>),
    /// What one logged event changed, as this session may see it.
    Event(Box<EventFrame>),
    /// Current vote tallies of the questions whose votes changed, coalesced per tick.
    Votes {
        offset: Offset,
        #[serde(deserialize_with = "tally_keys")]
        tallies: BTreeMap<QuestionId, u32>,
    },
    /// Current answer counts of the polls answered since the last tick, coalesced like votes.
    PollResults {
        offset: Offset,
        results: Vec<PollResults>,
    },
    Presence {
        offset: Offset,
        online: u32,
    },
    /// Staff only: questions that probably ask the same as a pending one (merge suggestions).
    /// Advice computed beside the log, never an event; each item replaces what the client
    /// held for its question (an empty `similar` clears it).
    Suggestions {
        items: Vec<SuggestionItem>,
    },
    Ack {
        #[serde(rename = "ref")]
        reference: u64,
        /// The command's events are durable up to this offset.
        offset: Offset,
    },
    Error {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<u64>,
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// The connection fell behind; a fresh `snapshot` follows.
    Resync {
        reason: String,
    },
    Pong,
    /// The server is closing this connection, and why.
    Bye {
        code: String,
        message: String,
    },
}

/// The projection of one event for one audience: the new versions of whatever it changed.
/// Clients upsert each present field; absent fields did not change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFrame {
    pub offset: Offset,
    /// The event's type (`question_approved`, …), so pages can announce what happened.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<QuestionView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<CommentView>,
    /// A comment citizens should no longer show (it was hidden by a moderator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_removed: Option<CommentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting: Option<MeetingView>,
    /// For staff: a participant's moderation state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<ParticipantView>,
    /// For the participant concerned: their own state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub you: Option<YouView>,
    /// For the voter: whether they now upvote this question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voted: Option<Voted>,
    /// A poll that was opened or closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<PollView>,
    /// For the participant who answered: their answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<PollAnswer>,
    /// For staff: the word filter in force, after it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_filter: Option<Vec<String>>,
}

/// The merge suggestions for one pending question, best first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestionItem {
    pub question: QuestionId,
    pub similar: Vec<Similar>,
}

/// A question that probably asks the same thing, with its similarity in percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Similar {
    pub id: QuestionId,
    pub score: u8,
}

/// Current answer counts of one poll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResults {
    pub id: PollId,
    pub counts: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voted {
    pub question: QuestionId,
    pub voted: bool,
}

/// JSON object keys are strings. Inside an internally tagged enum serde buffers the frame first
/// and then no longer parses string keys as numbers, so `votes` frames could not be read back;
/// read the keys as strings and parse them here.
fn tally_keys<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<QuestionId, u32>, D::Error> {
    BTreeMap::<String, u32>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| {
            k.parse()
                .map(|id| (QuestionId(id), v))
                .map_err(serde::de::Error::custom)
        })
        .collect()
}

impl ServerMessage {
    /// The log offset this update reflects, if it is a view update.
    pub fn offset(&self) -> Option<Offset> {
        match self {
            ServerMessage::Snapshot(s) => Some(s.offset),
            ServerMessage::SnapshotMore(s) => Some(s.offset),
            ServerMessage::Event(e) => Some(e.offset),
            ServerMessage::Votes { offset, .. }
            | ServerMessage::PollResults { offset, .. }
            | ServerMessage::Presence { offset, .. } => Some(*offset),
            _ => None,
        }
    }

    /// The frames that carry `snapshot`: one, or a first part and `snapshot_more` parts, at
    /// most `max_frames` in all.
    pub fn snapshot_frames(snapshot: Snapshot, max_frames: usize) -> Vec<ServerMessage> {
        let (first, rest) = snapshot.into_parts(max_frames);
        std::iter::once(ServerMessage::Snapshot(Box::new(first)))
            .chain(
                rest.into_iter()
                    .map(|p| ServerMessage::SnapshotMore(Box::new(p))),
            )
            .collect()
    }

    pub fn error(reference: Option<u64>, code: &str, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            reference,
            code: code.to_owned(),
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::AskQuestion;

    #[test]
    fn commands_read_as_documented() {
        let m: ClientMessage = serde_json::from_str(
            r#"{"t":"cmd","ref":7,"cmd":{"type":"ask_question","text":"Hvornår?","anonymous":true}}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            ClientMessage::Cmd {
                reference: 7,
                cmd: Command::AskQuestion(AskQuestion {
                    text: "Hvornår?".into(),
                    anonymous: true
                })
            }
        );
        let hello: ClientMessage =
            serde_json::from_str(r#"{"t":"hello","meeting":"m1","since":4}"#).unwrap();
        assert!(matches!(hello, ClientMessage::Hello { since: Some(4), .. }));
        assert!(
            serde_json::from_str::<ClientMessage>(r#"{"t":"cmd","ref":1,"cmd":{"type":"nope"}}"#)
                .is_err()
        );
    }

    /// Every client frame is parsed strictly, `ping` and field-less commands included.
    #[test]
    fn unknown_fields_are_refused_in_every_client_frame() {
        let ping: ClientMessage = serde_json::from_str(r#"{"t":"ping"}"#).unwrap();
        assert_eq!(ping, ClientMessage::Ping {});
        assert_eq!(serde_json::to_string(&ping).unwrap(), r#"{"t":"ping"}"#);
        for bad in [
            r#"{"t":"ping","x":1}"#,
            r#"{"t":"hello","meeting":"m1","x":1}"#,
            r#"{"t":"cmd","ref":1,"cmd":{"type":"upvote","question":1},"x":1}"#,
            r#"{"t":"cmd","ref":1,"cmd":{"type":"upvote","question":1,"x":1}}"#,
            r#"{"t":"cmd","ref":1,"cmd":{"type":"start_meeting","x":1}}"#,
            r#"{"t":"cmd","ref":-1,"cmd":{"type":"start_meeting"}}"#,
        ] {
            assert!(serde_json::from_str::<ClientMessage>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn updates_serialise_with_their_tag_and_offset() {
        let s = serde_json::to_string(&ServerMessage::Ack {
            reference: 3,
            offset: 9,
        })
        .unwrap();
        assert_eq!(s, r#"{"t":"ack","ref":3,"offset":9}"#);
        let mut tallies = BTreeMap::new();
        tallies.insert(QuestionId(2), 5);
        let s = serde_json::to_string(&ServerMessage::Votes {
            offset: 10,
            tallies,
        })
        .unwrap();
        assert_eq!(s, r#"{"t":"votes","offset":10,"tallies":{"2":5}}"#);
    }
}
