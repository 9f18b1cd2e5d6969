//! How events move a meeting's status, shared by every engine so records never need a replay.

use townhall_core::event::{MeetingEnded, MeetingStarted};
use townhall_core::{Event, EventKind, MeetingStatus, Timestamp};

/// A meeting's status and end time after a batch of events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StatusChange {
    pub status: MeetingStatus,
    pub ended_at: Option<Timestamp>,
}

/// The status the record must take after `events`, or `None` if none of them changes it.
///
/// Mirrors `Meeting::apply`: the last lifecycle event wins. A meeting that starts again after
/// ending has not ended, so `ended_at` is cleared; it is set only by `MeetingEnded`.
pub(crate) fn status_after(events: &[Event]) -> Option<StatusChange> {
    events.iter().fold(None, |change, event| match event.kind {
        EventKind::MeetingCreated(_) => Some(StatusChange {
            status: MeetingStatus::Scheduled,
            ended_at: None,
        }),
        EventKind::MeetingStarted(MeetingStarted) => Some(StatusChange {
            status: MeetingStatus::Live,
            ended_at: None,
        }),
        EventKind::MeetingEnded(MeetingEnded) => Some(StatusChange {
            status: MeetingStatus::Ended,
            ended_at: Some(event.at),
        }),
        _ => change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use townhall_core::ParticipantId;
    use townhall_core::event::{QaClosed, QaOpened};

    fn ev(at: u64, kind: EventKind) -> Event {
        Event {
            at: Timestamp(at),
            by: ParticipantId::parse("p").expect("valid id"),
            kind,
        }
    }

    #[test]
    fn last_lifecycle_event_wins() {
        assert_eq!(status_after(&[ev(1, EventKind::QaOpened(QaOpened))]), None);
        assert_eq!(
            status_after(&[
                ev(1, EventKind::MeetingStarted(MeetingStarted)),
                ev(2, EventKind::QaClosed(QaClosed))
            ]),
            Some(StatusChange {
                status: MeetingStatus::Live,
                ended_at: None
            })
        );
        assert_eq!(
            status_after(&[
                ev(1, EventKind::MeetingStarted(MeetingStarted)),
                ev(5, EventKind::MeetingEnded(MeetingEnded))
            ]),
            Some(StatusChange {
                status: MeetingStatus::Ended,
                ended_at: Some(Timestamp(5))
            })
        );
        assert_eq!(
            status_after(&[
                ev(5, EventKind::MeetingEnded(MeetingEnded)),
                ev(6, EventKind::MeetingStarted(MeetingStarted))
            ]),
            Some(StatusChange {
                status: MeetingStatus::Live,
                ended_at: None
            })
        );
    }
}
