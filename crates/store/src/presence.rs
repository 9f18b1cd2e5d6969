//! How many people are in a meeting, summed over the nodes that serve it.
//!
//! Presence is not logged: it is a count each node reports on its presence tick, kept with an
//! expiry so that a node that dies stops counting by itself. The sum is what every node shows.
//! Vote tallies need nothing of the kind: votes are events in the log, so every node's replica
//! folds the same tallies.

use crate::StoreError;
use async_trait::async_trait;
use townhall_core::MeetingId;

/// Per-node viewer counts of meetings, summed on read.
#[async_trait]
pub trait PresenceBoard: Send + Sync + std::fmt::Debug + 'static {
    /// Records that this node has `online` sessions in `meeting` now, and returns the sum over
    /// every node whose last report has not expired (this one included). Reporting 0 withdraws
    /// this node at once (its room is closing). Call it on every presence tick, also when the
    /// count did not change: a report is what keeps this node's count alive.
    async fn report(&self, meeting: &MeetingId, online: u32) -> Result<u32, StoreError>;
}

/// One node alone: the sum is its own count. For the SQLite and memory engines.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalPresence;

#[async_trait]
impl PresenceBoard for LocalPresence {
    async fn report(&self, _meeting: &MeetingId, online: u32) -> Result<u32, StoreError> {
        Ok(online)
    }
}
