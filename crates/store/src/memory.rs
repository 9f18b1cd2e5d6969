//! In-memory engine: the reference semantics of [`EventLog`] without a disk, for tests and
//! benchmarks. Nothing survives the process.
//!
//! Its feed is local: every committed batch goes to the subscribers in this process, so two hubs
//! sharing one `MemoryLog` behave like two nodes sharing one Redis (without the losses).

use crate::feed::{CommittedBatch, Registry, Subscription};
use crate::status::{details_after, status_after};
use crate::{EventLog, MeetingRecord, StoreError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use townhall_core::{Event, MeetingId, Offset, Recorded};

/// Every meeting's record and log, behind one lock that is never held across an `.await`.
#[derive(Debug)]
pub struct MemoryLog {
    meetings: Mutex<HashMap<MeetingId, Stored>>,
    feed: Arc<Registry>,
}

impl Default for MemoryLog {
    fn default() -> Self {
        Self {
            meetings: Mutex::default(),
            feed: Registry::local(),
        }
    }
}

#[derive(Debug)]
struct Stored {
    /// `record.last_offset` always equals `events.len()`.
    record: MeetingRecord,
    /// The event at offset `n` is `events[n - 1]`.
    events: Vec<Event>,
}

impl Stored {
    /// Appends `events` and keeps the record in step; callers have already checked the offset.
    fn push(&mut self, events: &[Event]) -> Offset {
        if let Some(change) = status_after(events) {
            self.record.status = change.status;
            self.record.ended_at = change.ended_at;
        }
        details_after(events).apply(&mut self.record);
        self.events.extend_from_slice(events);
        self.record.last_offset = offset_of(self.events.len());
        self.record.last_offset
    }
}

fn offset_of(len: usize) -> Offset {
    // usize is at most 64 bits on every supported target.
    Offset::try_from(len).expect("a log length always fits in an offset")
}

impl MemoryLog {
    pub fn new() -> Self {
        Self::default()
    }

    fn publish(&self, meeting: &MeetingId, after: Offset, events: &[Event]) {
        if !events.is_empty() {
            self.feed
                .publish(meeting, &CommittedBatch::new(after, events.to_vec()));
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<MeetingId, Stored>> {
        // Every mutation checks first and writes last, without a step that can panic in between,
        // so a panic elsewhere while the lock was held cannot have left a half-written meeting.
        self.meetings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn create_meeting(
        &self,
        record: &MeetingRecord,
        first: &[Event],
    ) -> Result<Offset, StoreError> {
        let mut meetings = self.lock();
        if meetings.contains_key(&record.id) {
            return Err(StoreError::AlreadyExists);
        }
        let mut stored = Stored {
            record: MeetingRecord {
                last_offset: 0,
                ..record.clone()
            },
            events: Vec::new(),
        };
        let last = stored.push(first);
        meetings.insert(record.id.clone(), stored);
        self.publish(&record.id, 0, first);
        Ok(last)
    }

    async fn append(
        &self,
        meeting: &MeetingId,
        expected: Offset,
        events: &[Event],
    ) -> Result<Offset, StoreError> {
        let mut meetings = self.lock();
        let stored = meetings
            .get_mut(meeting)
            .ok_or(StoreError::UnknownMeeting)?;
        let actual = stored.record.last_offset;
        if actual != expected {
            return Err(StoreError::Conflict { expected, actual });
        }
        let last = stored.push(events);
        // Still under the lock, so batches are published in the order they were committed.
        self.publish(meeting, expected, events);
        Ok(last)
    }

    async fn read(
        &self,
        meeting: &MeetingId,
        after: Offset,
        limit: usize,
    ) -> Result<Vec<Recorded>, StoreError> {
        let meetings = self.lock();
        let stored = meetings.get(meeting).ok_or(StoreError::UnknownMeeting)?;
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(stored.events.len());
        Ok(stored.events[start..]
            .iter()
            .take(limit)
            .enumerate()
            .map(|(i, event)| Recorded {
                offset: offset_of(start + i + 1),
                event: event.clone(),
            })
            .collect())
    }

    async fn meeting(&self, id: &MeetingId) -> Result<Option<MeetingRecord>, StoreError> {
        Ok(self.lock().get(id).map(|stored| stored.record.clone()))
    }

    async fn list_meetings(&self) -> Result<Vec<MeetingRecord>, StoreError> {
        let mut records: Vec<MeetingRecord> = self
            .lock()
            .values()
            .map(|stored| stored.record.clone())
            .collect();
        records.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(records)
    }

    async fn set_token_hashes(
        &self,
        id: &MeetingId,
        moderator: &str,
        studio: &str,
    ) -> Result<(), StoreError> {
        let mut meetings = self.lock();
        let stored = meetings.get_mut(id).ok_or(StoreError::UnknownMeeting)?;
        stored.record.moderator_token_hash = moderator.to_owned();
        stored.record.studio_token_hash = studio.to_owned();
        Ok(())
    }

    async fn delete_meeting(&self, id: &MeetingId) -> Result<bool, StoreError> {
        Ok(self.lock().remove(id).is_some())
    }

    fn subscribe(&self, meeting: &MeetingId) -> Option<Subscription> {
        Some(self.feed.subscribe(meeting))
    }
}
