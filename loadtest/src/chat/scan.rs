//! A cheap scanner for server frames: finds the few values the generator needs (frame type,
//! offset, event kind, command ref, latency marker) with substring searches instead of a full
//! JSON parse, because at 10,000 connections the generator parses millions of frames a second.
//!
//! It relies on what the protocol guarantees (docs/protocol.md): keys are unique JSON strings, user
//! text is JSON-escaped (so a quote inside text is `\"` and can never form `"key":`), and the
//! top-level `t`, `offset`, `kind` and `ref` keys appear in no nested object. Rare frames
//! (`welcome`, `error`, `bye`, a moderator's `question_asked`) are parsed fully by the caller.

/// The marker put into generated text: `#L` then the send sequence number.
pub const MARKER: &str = "#L";

/// Text of a generated comment or question carrying the sequence number `seq`.
pub fn marked_text(kind: &str, seq: u64) -> String {
    format!("Belastningstest {kind} {MARKER}{seq} – tak for et godt møde")
}

/// Finds `needle` in `hay` (short needles; `memchr` is not worth a dependency here).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where the value of the first `"key":` starts (no allocation: this runs per frame).
fn value_start(b: &[u8], key: &str) -> Option<usize> {
    let k = key.as_bytes();
    let n = k.len();
    (0..(b.len() + 1).saturating_sub(n + 3)).find_map(|i| {
        (b[i] == b'"' && &b[i + 1..i + 1 + n] == k && b[i + 1 + n] == b'"' && b[i + 2 + n] == b':')
            .then_some(i + n + 3)
    })
}

/// The unsigned integer right after the first `"key":` (e.g. `offset`), if any.
pub fn uint_after(frame: &str, key: &str) -> Option<u64> {
    let b = frame.as_bytes();
    digits(&b[value_start(b, key)?..])
}

/// The string value right after the first `"key":"` (values without escapes only: types and
/// kinds are plain identifiers).
pub fn str_after<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let b = frame.as_bytes();
    let start = value_start(b, key)?;
    if b.get(start) != Some(&b'"') {
        return None;
    }
    let len = b[start + 1..].iter().position(|&c| c == b'"')?;
    frame.get(start + 1..start + 1 + len)
}

/// The sequence number of the first latency marker in the frame, if any.
pub fn marker(frame: &str) -> Option<u64> {
    let b = frame.as_bytes();
    let start = find(b, MARKER.as_bytes())? + MARKER.len();
    digits(&b[start..])
}

/// Leading ASCII digits as a number; `None` when there are none or they overflow.
fn digits(b: &[u8]) -> Option<u64> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    b[..n].iter().try_fold(0u64, |acc, &c| {
        acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// What a townhall server frame is, with the fields the generator reads from each kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Event {
        offset: u64,
        kind: &'a str,
    },
    Votes {
        offset: u64,
    },
    PollResults,
    Presence,
    Ack {
        reference: u64,
        offset: u64,
    },
    Snapshot {
        offset: u64,
    },
    SnapshotMore,
    /// Merge suggestions for moderators: advice, not part of the measured load.
    Suggestions,
    Resync,
    Pong,
    /// `welcome`, `error`, `bye`: rare, parsed fully by the caller.
    Rare(&'a str),
    Unknown,
}

/// Classifies a townhall frame, reading only the fields its type needs.
pub fn townhall(frame: &str) -> Frame<'_> {
    let Some(t) = str_after(frame, "t") else {
        return Frame::Unknown;
    };
    let offset = || uint_after(frame, "offset");
    match t {
        "event" => match (offset(), str_after(frame, "kind")) {
            (Some(offset), Some(kind)) => Frame::Event { offset, kind },
            _ => Frame::Unknown,
        },
        "votes" => offset().map_or(Frame::Unknown, |offset| Frame::Votes { offset }),
        "poll_results" => Frame::PollResults,
        "presence" => Frame::Presence,
        "ack" => match (uint_after(frame, "ref"), offset()) {
            (Some(reference), Some(offset)) => Frame::Ack { reference, offset },
            _ => Frame::Unknown,
        },
        "snapshot" => offset().map_or(Frame::Unknown, |offset| Frame::Snapshot { offset }),
        "snapshot_more" => Frame::SnapshotMore,
        "suggestions" => Frame::Suggestions,
        "resync" => Frame::Resync,
        "pong" => Frame::Pong,
        "welcome" | "error" | "bye" => Frame::Rare(t),
        _ => Frame::Unknown,
    }
}

/// Event kinds every connection of the meeting receives (so each one can be counted as
/// missed when a client lacks it): comments and approvals are what the generator causes.
pub fn is_broadcast_kind(kind: &str) -> bool {
    matches!(kind, "comment_posted" | "question_approved")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_event_frames_without_parsing() {
        let f = r#"{"t":"event","offset":21,"kind":"comment_posted","comment":{"id":3,"text":"Belastningstest kommentar #L4711 – tak","at":1}}"#;
        assert_eq!(
            townhall(f),
            Frame::Event {
                offset: 21,
                kind: "comment_posted"
            }
        );
        assert_eq!(marker(f), Some(4711));
    }

    #[test]
    fn user_text_cannot_fake_a_key() {
        // A quote inside text is escaped, so `"offset":` inside it is `\"offset\":`.
        let f = r#"{"t":"votes","offset":9,"tallies":{"1":2}}"#;
        assert_eq!(townhall(f), Frame::Votes { offset: 9 });
        let tricky = r#"{"t":"event","offset":5,"kind":"comment_posted","comment":{"text":"say \"offset\":99"}}"#;
        assert_eq!(uint_after(tricky, "offset"), Some(5));
    }

    #[test]
    fn reads_acks_snapshots_and_rare_frames() {
        assert_eq!(
            townhall(r#"{"t":"ack","ref":7,"offset":21}"#),
            Frame::Ack {
                reference: 7,
                offset: 21
            }
        );
        assert_eq!(
            townhall(r#"{"t":"snapshot","offset":22,"meeting":{"id":"x"},"more":true}"#),
            Frame::Snapshot { offset: 22 }
        );
        assert_eq!(
            townhall(r#"{"t":"error","ref":8,"code":"slow_mode","message":"m"}"#),
            Frame::Rare("error")
        );
        assert_eq!(townhall(r#"{"t":"pong"}"#), Frame::Pong);
        assert_eq!(
            townhall(r#"{"t":"suggestions","question":4,"similar":[]}"#),
            Frame::Suggestions
        );
        assert_eq!(townhall(r#"{"t":"resync","reason":"r"}"#), Frame::Resync);
    }

    #[test]
    fn malformed_frames_are_unknown_not_panics() {
        for f in [
            "",
            "{",
            r#"{"t":"event"}"#,
            r#"{"t":"ack","ref":1}"#,
            r#"{"t":"votes","offset":-1}"#,
            r#"{"t":"nope"}"#,
            r#"{"t":"event","offset":99999999999999999999999,"kind":"x"}"#,
        ] {
            assert!(matches!(townhall(f), Frame::Unknown), "{f}");
        }
        assert_eq!(marker("#L"), None);
        assert_eq!(marker("no marker"), None);
    }

    #[test]
    fn marked_text_round_trips() {
        assert_eq!(marker(&marked_text("spørgsmål", 123)), Some(123));
        assert!(is_broadcast_kind("question_approved"));
        assert!(!is_broadcast_kind("question_asked"));
    }
}
