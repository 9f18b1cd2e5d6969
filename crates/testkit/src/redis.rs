//! Redis for multi-node tests: the shared one at `REDIS_URL` under a key prefix per test
//! ([`SharedRedis`]), or a private `redis-server` the test starts, kills and restarts
//! ([`OwnRedis`]), never touching the shared one.
//!
//! Without a Redis the tests are skipped, saying so, unless `TOWNHALL_REQUIRE_REDIS=1` (as in
//! `.ci/run`), which makes that a failure.

use townhall_store::testing::redis_required;
use townhall_store::{RedisConfig, RedisLog};

pub use townhall_store::testing::{Fsync, OwnRedis, redis_url, unique_prefix};

/// The shared Redis under a prefix of this test's own. Its keys are deleted by
/// [`clean_up`](SharedRedis::clean_up) (a failed test leaves them for inspection).
#[derive(Debug, Clone)]
pub struct SharedRedis {
    pub url: String,
    pub prefix: String,
}

impl SharedRedis {
    /// `None` (skipped, saying so) when Redis does not answer, unless it is required.
    pub async fn for_test(test: &str) -> Option<Self> {
        let url = redis_url();
        let probe = RedisConfig::new(url.clone()).with_prefix("th-probe");
        match RedisLog::connect(&probe).await {
            Ok(_) => Some(Self {
                url,
                prefix: unique_prefix(test),
            }),
            Err(e) => {
                assert!(
                    !redis_required(),
                    "TOWNHALL_REQUIRE_REDIS=1 but redis at {url} does not answer: {e}"
                );
                eprintln!("SKIPPED: redis at {url} does not answer ({e})");
                None
            }
        }
    }

    /// A log handle on this prefix: the test reads what the nodes committed.
    pub async fn log(&self) -> RedisLog {
        RedisLog::connect(&RedisConfig::new(self.url.clone()).with_prefix(self.prefix.clone()))
            .await
            .unwrap()
    }

    /// Deletes every key under the prefix.
    pub async fn clean_up(&self) {
        self.log().await.delete_everything().await.unwrap();
    }
}
