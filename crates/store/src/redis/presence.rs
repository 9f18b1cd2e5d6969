//! Presence summed over the nodes: each node's count lives in the meeting's presence hash with
//! an expiry on Redis' clock, refreshed by every report; a node that stops reporting (it died)
//! drops out after `ttl`.

use super::{RedisLog, redis_error, scripts};
use crate::StoreError;
use crate::presence::PresenceBoard;
use async_trait::async_trait;
use std::time::Duration;
use townhall_core::MeetingId;

/// This node's presence reports, through a [`RedisLog`]'s connection.
#[derive(Clone, Debug)]
pub struct RedisPresence {
    log: RedisLog,
    node: String,
    ttl_ms: u64,
}

impl RedisPresence {
    /// Reports as `node` (unique per process: two processes with one name would overwrite each
    /// other's counts). `ttl` should be a few presence ticks, so one late tick does not make a
    /// node's viewers vanish.
    pub fn new(log: RedisLog, node: impl Into<String>, ttl: Duration) -> Self {
        Self {
            log,
            node: node.into(),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }
}

#[async_trait]
impl PresenceBoard for RedisPresence {
    async fn report(&self, meeting: &MeetingId, online: u32) -> Result<u32, StoreError> {
        let keys = self.log.keys(meeting);
        let total: i64 = scripts::PRESENCE
            .key(&keys.presence)
            .arg(&self.node)
            .arg(online)
            .arg(self.ttl_ms)
            .invoke_async(&mut self.log.conn())
            .await
            .map_err(|e| redis_error(e, format_args!("reporting presence in {meeting}")))?;
        Ok(u32::try_from(total).unwrap_or(u32::MAX))
    }
}
