//! The event log: one ordered log per meeting, the source of truth for everything, and what
//! several nodes share.
//!
//! [`EventLog`] is the one interface; engines are SQLite in WAL mode ([`SqliteLog`], the default:
//! one file under the data dir), Redis ([`RedisLog`], several nodes on one Redis: a stream per
//! meeting) and in-memory ([`MemoryLog`], for tests and benchmarks). Every engine passes the same
//! conformance suite (`tests/conformance.rs`).
//!
//! Appends are optimistic: the caller names the offset it last saw, and the append fails with
//! [`StoreError::Conflict`] if the log has moved on. An `Ok` from `append` means durable: the
//! events survive a crash of the process.
//!
//! Beside the log, for several nodes: [`EventLog::subscribe`] is the feed of batches committed by
//! any node ([`feed`], with the pure gap logic [`feed::next_step`]), and [`PresenceBoard`] sums
//! the viewers of a meeting over the nodes.
//!
//! Deliberately absent: deciding or validating commands (that is `townhall-core`), caching
//! state, and any client-facing network protocol.

#![forbid(unsafe_code)]

mod codec;
pub mod feed;
mod memory;
pub mod presence;
mod redis;
mod sqlite;
mod status;
/// Redis helpers for tests (this crate's and townhall-testkit's).
#[cfg(feature = "test-support")]
pub mod testing;

pub use feed::{CommittedBatch, FeedItem, Subscription};
pub use memory::MemoryLog;
pub use presence::{LocalPresence, PresenceBoard};
pub use redis::{
    RedisConfig, RedisLog, RedisPresence, SharedValue, check_redis_url, redact_redis_url,
};
pub use sqlite::{Durability, SqliteLog};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use townhall_core::{
    Event, MeetingId, MeetingStatus, Offset, Publication, Recorded, Schedule, Timestamp,
};

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
    /// Kept in step with `MeetingScheduled` events, so public pages (the waiting page, the
    /// calendar file) read it without a replay.
    pub schedule: Option<Schedule>,
    /// Kept in step with `RecordPublished` events: what of the ended meeting is public.
    pub publication: Publication,
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
    /// The storage cannot be reached now (Redis down, restarting or failing over). Retryable:
    /// it comes back by itself. For `append`, the batch was not committed, except when the
    /// request was sent and its reply lost and the batch could not be found in the log (the
    /// message says "outcome unknown"): then it may still be committed, which a later
    /// `Conflict` or read tells.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the same operation may succeed later without anything changing on our side.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
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

    /// Whether the store answers now (for `/readyz`); the error says why not.
    async fn health(&self) -> Result<(), StoreError> {
        let probe = MeetingId::parse("health-probe").expect("a valid meeting id");
        self.meeting(&probe).await.map(drop)
    }

    /// The batches committed to `meeting`'s log from now on, by any writer (this process
    /// included), as they are published. `None` when the engine has no such feed: a
    /// [`SqliteLog`] is written by one process only, so its room has seen every commit already.
    ///
    /// The feed is at-most-once (a reconnect or a slow subscriber loses batches); it says
    /// [`FeedItem::CatchUp`] whenever batches may have been lost, and [`feed::next_step`]
    /// turns every batch into "apply", "duplicate" or "read this range from the log first".
    fn subscribe(&self, meeting: &MeetingId) -> Option<Subscription> {
        let _ = meeting;
        None
    }
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
