//! How events move a meeting's record (status, schedule, publication), shared by every engine
//! so records never need a replay.

use townhall_core::event::{MeetingEnded, MeetingScheduled, MeetingStarted, RecordPublished};
use townhall_core::{Event, EventKind, MeetingStatus, Publication, Schedule, Timestamp};

/// The schedule and publication a record must take after a batch; `None`: unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DetailsChange {
    pub schedule: Option<Schedule>,
    pub publication: Option<Publication>,
}

impl DetailsChange {
    /// Folds the change into a record.
    pub fn apply(self, record: &mut crate::MeetingRecord) {
        if let Some(schedule) = self.schedule {
            record.schedule = Some(schedule);
        }
        if let Some(publication) = self.publication {
            record.publication = publication;
        }
    }
}

/// The details after `events`: the last `MeetingScheduled` and `RecordPublished` win.
pub(crate) fn details_after(events: &[Event]) -> DetailsChange {
    let mut change = DetailsChange::default();
    for event in events {
        match &event.kind {
            EventKind::MeetingScheduled(MeetingScheduled(s)) => change.schedule = Some(s.clone()),
            EventKind::RecordPublished(RecordPublished(p)) => change.publication = Some(*p),
            _ => {}
        }
    }
    change
}

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
