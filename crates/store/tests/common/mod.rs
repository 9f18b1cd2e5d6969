//! Redis for the tests: the shared one at `REDIS_URL` (a key prefix per test), or a private
//! `redis-server` started by the test on an ephemeral port (for restarting it).

#![allow(dead_code)]

use std::time::Duration;
use townhall_store::testing::{redis_required, redis_url};
use townhall_store::{RedisConfig, RedisLog};

/// Generous: the machine may be busy; waits end as soon as the condition holds.
pub const WAIT: Duration = Duration::from_secs(30);

/// A key prefix no other test (or run) uses.
pub fn unique_prefix() -> String {
    townhall_store::testing::unique_prefix("store")
}

/// A log on the shared Redis under a fresh prefix, or `None` (the test is skipped, saying so)
/// when Redis does not answer — unless `TOWNHALL_REQUIRE_REDIS=1`, which makes that a failure.
pub async fn shared_redis() -> Option<RedisLog> {
    shared_redis_with_config().await.map(|(log, _)| log)
}

/// [`shared_redis`] with its config, to connect more handles (nodes) to the same prefix.
pub async fn shared_redis_with_config() -> Option<(RedisLog, RedisConfig)> {
    let config = RedisConfig::new(redis_url()).with_prefix(unique_prefix());
    match RedisLog::connect(&config).await {
        Ok(log) => Some((log, config)),
        Err(e) if redis_required() => {
            panic!(
                "TOWNHALL_REQUIRE_REDIS=1 but redis at {} does not answer: {e}",
                redis_url()
            )
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: redis at {} does not answer ({e}); set TOWNHALL_REQUIRE_REDIS=1 to fail instead",
                redis_url()
            );
            None
        }
    }
}

// Used by tests/redis.rs, not by every test binary that includes this module.
#[allow(unused_imports)]
pub use townhall_store::testing::{Fsync, OwnRedis};
