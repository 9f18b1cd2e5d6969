//! The stored form of events and statuses, shared by every engine that writes bytes (SQLite,
//! Redis), so a meeting moved between engines reads back the same.

use crate::{EVENT_FORMAT_VERSION, StoreError};
use townhall_core::{Event, MeetingId, MeetingStatus, Offset};

pub(crate) fn encode_all(events: &[Event]) -> Result<Vec<String>, StoreError> {
    events.iter().map(encode).collect()
}

/// The stored form: the event's JSON object with `"v"` added.
pub(crate) fn encode(event: &Event) -> Result<String, StoreError> {
    let fail =
        |why: String| StoreError::Backend(format!("encoding a {} event: {why}", event.kind.name()));
    let mut value = serde_json::to_value(event).map_err(|e| fail(e.to_string()))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| fail("not a json object".into()))?;
    if object
        .insert("v".to_owned(), EVENT_FORMAT_VERSION.into())
        .is_some()
    {
        return Err(fail("it already has a \"v\" field".into()));
    }
    serde_json::to_string(&value).map_err(|e| fail(e.to_string()))
}

/// Reads the stored form back, refusing any version this build does not know.
pub(crate) fn decode(meeting: &MeetingId, offset: Offset, body: &str) -> Result<Event, StoreError> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        StoreError::Corrupt(format!(
            "event {offset} of meeting {meeting}: invalid json: {e}"
        ))
    })?;
    decode_value(meeting, offset, value)
}

/// [`decode`] for a stored event already parsed as part of a larger document (a published batch).
pub(crate) fn decode_value(
    meeting: &MeetingId,
    offset: Offset,
    mut value: serde_json::Value,
) -> Result<Event, StoreError> {
    let corrupt =
        |why: String| StoreError::Corrupt(format!("event {offset} of meeting {meeting}: {why}"));
    let object = value
        .as_object_mut()
        .ok_or_else(|| corrupt("not a json object".into()))?;
    match object.remove("v") {
        Some(v) if v.as_u64() == Some(u64::from(EVENT_FORMAT_VERSION)) => {}
        Some(v) => {
            return Err(corrupt(format!(
                "unknown format version {v} (this build reads {EVENT_FORMAT_VERSION})"
            )));
        }
        None => return Err(corrupt("no format version".into())),
    }
    serde_json::from_value(value).map_err(|e| corrupt(format!("not a valid event: {e}")))
}

pub(crate) fn status_str(status: MeetingStatus) -> &'static str {
    match status {
        MeetingStatus::Draft => "draft",
        MeetingStatus::Scheduled => "scheduled",
        MeetingStatus::Live => "live",
        MeetingStatus::Ended => "ended",
    }
}

pub(crate) fn parse_status(s: &str) -> Option<MeetingStatus> {
    Some(match s {
        "draft" => MeetingStatus::Draft,
        "scheduled" => MeetingStatus::Scheduled,
        "live" => MeetingStatus::Live,
        "ended" => MeetingStatus::Ended,
        _ => return None,
    })
}

/// The stored form of a record's schedule or publication (JSON), for the engines that store
/// bytes.
pub(crate) fn encode_detail<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("encoding a meeting's details: {e}")))
}

/// Reads a stored schedule or publication back; `what` names it in the error.
pub(crate) fn decode_detail<T: serde::de::DeserializeOwned>(
    raw: &str,
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("{}: {e}", what())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use townhall_core::event::QuestionAsked;
    use townhall_core::{EventKind, ParticipantId, QuestionId, Timestamp};

    #[test]
    fn encoded_events_carry_the_version_and_round_trip() {
        let meeting = MeetingId::parse("m").expect("valid id");
        let event = Event {
            at: Timestamp(7),
            by: ParticipantId::parse("p").expect("valid id"),
            kind: EventKind::QuestionAsked(QuestionAsked {
                question: QuestionId(3),
                text: "why?".into(),
                anonymous: true,
                author_name: None,
            }),
        };
        let body = encode(&event).expect("encodes");
        let value: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(value["v"], EVENT_FORMAT_VERSION);
        assert_eq!(value["type"], "question_asked");
        assert_eq!(decode(&meeting, 1, &body).expect("decodes"), event);
    }

    #[test]
    fn bad_bodies_are_corrupt_with_their_place() {
        let meeting = MeetingId::parse("m").expect("valid id");
        for body in [
            "nope",
            "[1]",
            r#"{"type":"qa_opened","at":1,"by":"p"}"#,
            r#"{"v":99,"type":"qa_opened","at":1,"by":"p"}"#,
            r#"{"v":1,"type":"nonsense"}"#,
        ] {
            match decode(&meeting, 42, body) {
                Err(StoreError::Corrupt(msg)) => {
                    assert!(msg.contains("event 42 of meeting m"), "{msg}")
                }
                other => panic!("{body}: expected corrupt, got {other:?}"),
            }
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in [
            MeetingStatus::Draft,
            MeetingStatus::Scheduled,
            MeetingStatus::Live,
            MeetingStatus::Ended,
        ] {
            assert_eq!(parse_status(status_str(s)), Some(s));
            assert_eq!(serde_json::to_value(s).expect("serializes"), status_str(s));
        }
    }
}
