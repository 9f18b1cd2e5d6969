//! The event log: one ordered log per meeting, the source of truth for everything.
//!
//! [`EventLog`] is the one interface; engines are SQLite in WAL mode ([`SqliteLog`], the default:
//! one file under the data dir) and in-memory ([`MemoryLog`], for tests and benchmarks). Every
//! engine passes the same conformance suite (`tests/conformance.rs`).
//!
//! Appends are optimistic: the caller names the offset it last saw, and the append fails with
//! [`StoreError::Conflict`] if the log has moved on. An `Ok` from `append` means durable: the
//! events survive a crash of the process.
//!
//! Deliberately absent: deciding or validating commands (that is `townhall-core`), caching
//! state, and any network protocol.

#![forbid(unsafe_code)]

mod memory;
mod sqlite;
mod status;

pub use memory::MemoryLog;
pub use sqlite::{Durability, SqliteLog};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use townhall_core::{Event, MeetingId, MeetingStatus, Offset, Recorded, Timestamp};

/// Version of the stored event envelope (`{"v":1, ...event}`); bumped with a migration.
pub const EVENT_FORMAT_VERSION: u32 = 1;

/// What the store keeps about a meeting besides its log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingRecord {
    pub id: MeetingId,
    pub title: String,
    /// Kept in step with `MeetingStarted`/`MeetingEnded` events by `append`, so listing meetings
    /// needs no replay.
    pub status: MeetingStatus,
    pub created_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// SHA-256 (hex) of the secret moderator link token.
    pub moderator_token_hash: String,
    /// SHA-256 (hex) of the secret studio link token.
    pub studio_token_hash: String,
    /// Offset of the last event in the log.
    pub last_offset: Offset,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the log has moved on: expected offset {expected}, but it is at {actual}")]
    Conflict { expected: Offset, actual: Offset },
    #[error("no such meeting")]
    UnknownMeeting,
    #[error("a meeting with this id already exists")]
    AlreadyExists,
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("storage failed: {0}")]
    Backend(String),
}

/// One ordered log of events per meeting, plus the meeting's record.
#[async_trait]
pub trait EventLog: Send + Sync + std::fmt::Debug + 'static {
    /// Creates the meeting's record and appends its first events (offsets 1..) atomically.
    async fn create_meeting(
        &self,
        record: &MeetingRecord,
        first: &[Event],
    ) -> Result<Offset, StoreError>;

    /// Appends `events` after offset `expected`; returns the offset of the last one.
    /// Durable when it returns `Ok`. Fails with `Conflict` if the log's last offset is not
    /// `expected`, and with `UnknownMeeting` if there is no such meeting.
    async fn append(
        &self,
        meeting: &MeetingId,
        expected: Offset,
        events: &[Event],
    ) -> Result<Offset, StoreError>;

    /// Events with offsets greater than `after`, in order, at most `limit` of them.
    async fn read(
        &self,
        meeting: &MeetingId,
        after: Offset,
        limit: usize,
    ) -> Result<Vec<Recorded>, StoreError>;

    async fn meeting(&self, id: &MeetingId) -> Result<Option<MeetingRecord>, StoreError>;

    /// All meetings, newest first.
    async fn list_meetings(&self) -> Result<Vec<MeetingRecord>, StoreError>;

    /// Replaces the token hashes (rotating the secret links).
    async fn set_token_hashes(
        &self,
        id: &MeetingId,
        moderator: &str,
        studio: &str,
    ) -> Result<(), StoreError>;

    /// Deletes the meeting and its whole log; `false` if there was none.
    async fn delete_meeting(&self, id: &MeetingId) -> Result<bool, StoreError>;
}

/// Reads a meeting's whole log, page by page.
pub async fn read_all(
    log: &dyn EventLog,
    meeting: &MeetingId,
) -> Result<Vec<Recorded>, StoreError> {
    const PAGE: usize = 10_000;
    let mut out = Vec::new();
    loop {
        let after = out.last().map_or(0, |r: &Recorded| r.offset);
        let page = log.read(meeting, after, PAGE).await?;
        let done = page.len() < PAGE;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}
