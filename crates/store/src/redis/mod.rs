//! Redis engine: several nodes share meetings through one Redis (or Valkey).
//!
//! Each meeting is a hash (its record) and a stream (its events, entry id `<offset>-0`), both
//! under the meeting's hash tag. Writes are Lua scripts ([`scripts`]): an append checks the
//! expected offset, adds the events, moves the record and publishes the batch with its offsets
//! on the meeting's channel, all in one atomic step, so what is published is exactly what was
//! committed, in commit order. Requests go through redis-rs' `ConnectionManager` (one
//! multiplexed connection that reconnects by itself); the feed of committed batches uses one
//! pub/sub connection per node ([`pubsub`]).
//!
//! `Ok` from `append` means Redis executed the script: durable as far as Redis' persistence
//! goes (README: `appendonly yes` with `appendfsync everysec` loses at most the last second if
//! Redis itself crashes; `always` loses nothing acknowledged).

mod keys;
mod presence;
mod pubsub;
mod scripts;

pub use presence::RedisPresence;

use crate::codec::{decode, decode_detail, encode_all, encode_detail, parse_status, status_str};
use crate::feed::{Registry, Subscription};
use crate::status::{DetailsChange, details_after, status_after};
use crate::{EventLog, MeetingRecord, StoreError};
use async_trait::async_trait;
use keys::{Keys, MeetingKeys};
use pubsub::FeedStatus;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, ErrorKind, RedisError, ServerErrorKind, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use townhall_core::{Event, MeetingId, MeetingStatus, Offset, Recorded, Timestamp};

/// How to reach Redis and where in it to keep things.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user[:password]@]host[:port][/db]` or `unix:///path/to/socket`.
    pub url: String,
    /// First part of every key and channel name: one deployment per prefix.
    pub prefix: String,
    /// How long a request may take before it fails (an append then checks whether it was
    /// committed after all).
    pub response_timeout: Duration,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
}

impl RedisConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "townhall".into(),
            response_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        }
    }

    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// Checks a Redis URL without connecting (for config validation). TLS (`rediss://`) is not built
/// in: this build has no TLS client; run Redis on a private network or a unix socket.
pub fn check_redis_url(url: &str) -> Result<(), String> {
    if url.starts_with("rediss://") || url.starts_with("valkeys://") {
        return Err(format!(
            "{}: TLS to Redis is not supported by this build; use redis:// on a private network \
             or unix:///path",
            redact_redis_url(url)
        ));
    }
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| format!("invalid redis url {}: {e}", redact_redis_url(url)))
}

/// The URL with its password (or whole user part without one) replaced, for logs and
/// `--print-config`.
pub fn redact_redis_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let shown = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:<redacted>"),
        None => "<redacted>".to_owned(),
    };
    format!("{scheme}://{shown}{}", &rest[at..])
}

/// A value the nodes share, created by the first node that asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedValue {
    pub value: String,
    /// Whether this call created it (this node was first).
    pub created: bool,
}

/// The event log in Redis. Cheap to clone; clones share the connections and the feed.
#[derive(Clone)]
pub struct RedisLog {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    keys: Keys,
    /// The URL with its password hidden, for messages.
    shown_url: String,
    feed: Arc<Registry>,
    feed_status: Arc<FeedStatus>,
    feed_task: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.feed_task.abort();
    }
}

impl fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLog")
            .field("url", &self.inner.shown_url)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

impl RedisLog {
    /// Connects (one attempt, failing with `Unavailable` when Redis does not answer) and starts
    /// the node's pub/sub connection for the feed.
    pub async fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        let keys = Keys::new(&config.prefix).map_err(StoreError::Backend)?;
        check_redis_url(&config.url).map_err(StoreError::Backend)?;
        let shown_url = redact_redis_url(&config.url);
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| StoreError::Backend(format!("invalid redis url {shown_url}: {e}")))?;
        // Few, quick reconnection attempts per request: while Redis is down a request should
        // fail fast with `Unavailable` (the room refuses commands with a retryable code), and
        // the next request tries again.
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(|e| redis_error(e, format_args!("connecting to redis at {shown_url}")))?;
        let (changes_tx, changes_rx) = tokio::sync::mpsc::unbounded_channel();
        let feed = Registry::with_transport(changes_tx);
        let feed_status = Arc::new(FeedStatus::default());
        let feed_task = tokio::spawn(pubsub::run(
            client,
            keys.clone(),
            Arc::clone(&feed),
            changes_rx,
            Arc::clone(&feed_status),
            config.connect_timeout,
        ));
        tracing::info!(url = %shown_url, prefix = %config.prefix, "connected to redis event log");
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                keys,
                shown_url,
                feed,
                feed_status,
                feed_task,
            }),
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn keys(&self, meeting: &MeetingId) -> MeetingKeys {
        self.inner.keys.meeting(meeting)
    }

    /// The value named `name` that every node of this deployment shares: `candidate` if this
    /// call is the first to ask (`SET NX`), else the one stored by whoever was.
    pub async fn shared_value(
        &self,
        name: &str,
        candidate: &str,
    ) -> Result<SharedValue, StoreError> {
        let key = self.inner.keys.shared(name);
        let mut conn = self.conn();
        let doing = || format!("reading the shared {name}");
        // Twice at most: if the value vanishes between the SET NX and the GET (someone deleted
        // it), the second SET NX creates it.
        for _ in 0..2 {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(candidate)
                .arg("NX")
                .query_async(&mut conn)
                .await
                .map_err(|e| redis_error(e, doing()))?;
            if set.is_some() {
                return Ok(SharedValue {
                    value: candidate.to_owned(),
                    created: true,
                });
            }
            let stored: Option<String> =
                conn.get(&key).await.map_err(|e| redis_error(e, doing()))?;
            if let Some(value) = stored {
                return Ok(SharedValue {
                    value,
                    created: false,
                });
            }
        }
        Err(StoreError::Backend(format!(
            "the shared {name} keeps disappearing from redis"
        )))
    }

    /// Bytes Redis uses for the meeting's keys (`MEMORY USAGE` of its record, log and
    /// presence, all samples), for sizing.
    pub async fn memory_usage(&self, meeting: &MeetingId) -> Result<u64, StoreError> {
        let keys = self.keys(meeting);
        let mut conn = self.conn();
        let mut total = 0;
        for key in [&keys.meta, &keys.log, &keys.presence] {
            let bytes: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0)
                .query_async(&mut conn)
                .await
                .map_err(|e| redis_error(e, "measuring memory"))?;
            total += bytes.unwrap_or(0);
        }
        Ok(total)
    }

    /// Deletes every key under this log's prefix. For tests, which take a prefix each.
    pub async fn delete_everything(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let mut scan = conn
            .scan_match::<_, String>(self.inner.keys.pattern())
            .await
            .map_err(|e| redis_error(e, "listing keys"))?;
        let mut found = Vec::new();
        while let Some(key) = futures_util::StreamExt::next(&mut scan).await {
            found.push(key.map_err(|e| redis_error(e, "listing keys"))?);
        }
        drop(scan);
        let mut deleted = 0;
        for key in found {
            let n: u64 = conn
                .del(&key)
                .await
                .map_err(|e| redis_error(e, "deleting keys"))?;
            deleted += n;
        }
        Ok(deleted)
    }

    /// After an append failed with the request possibly sent: is the batch in the log? `true`
    /// only when the entry after `expected` carries our batch id. `false` proves nothing: the
    /// request may still be queued in Redis (a timeout) and run later.
    async fn committed_after_all(
        &self,
        keys: &MeetingKeys,
        expected: Offset,
        batch: &str,
    ) -> Result<bool, StoreError> {
        let doing = "checking whether an interrupted append was committed";
        let Some(next) = expected.checked_add(1) else {
            return Ok(false);
        };
        let id = format!("{next}-0");
        let entries: Value = redis::cmd("XRANGE")
            .arg(&keys.log)
            .arg(&id)
            .arg(&id)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| redis_error(e, doing))?;
        Ok(stream_entries(entries, doing)?
            .into_iter()
            .next()
            .is_some_and(|(_, fields)| fields.get("b").map(String::as_str) == Some(batch)))
    }

    async fn exists(&self, keys: &MeetingKeys) -> Result<bool, StoreError> {
        self.conn()
            .exists(&keys.meta)
            .await
            .map_err(|e| redis_error(e, "looking up a meeting"))
    }
}

#[async_trait]
impl EventLog for RedisLog {
    async fn create_meeting(
        &self,
        record: &MeetingRecord,
        first: &[Event],
    ) -> Result<Offset, StoreError> {
        let bodies = encode_all(first)?;
        let (status, ended_at) = match status_after(first) {
            Some(change) => (change.status, change.ended_at),
            None => (record.status, record.ended_at),
        };
        let keys = self.keys(&record.id);
        let index = self.inner.keys.index();
        let mut conn = self.conn();
        let doing = || format!("creating meeting {}", record.id);
        let score = record.created_at.0 as f64;
        // Listed before it exists and again after, so a crash in between leaves at worst an
        // index entry without a record (skipped by listing), never a meeting nobody can list.
        let _: i64 = redis::cmd("ZADD")
            .arg(&index)
            .arg("NX")
            .arg(score)
            .arg(record.id.as_str())
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error(e, doing()))?;
        let mut call = scripts::CREATE.key(&keys.meta);
        call.key(&keys.log)
            .arg(&keys.channel)
            .arg(batch_id())
            .arg(&record.title)
            .arg(status_str(status))
            .arg(record.created_at.0)
            .arg(ended_at.map(|t| t.0.to_string()).unwrap_or_default())
            .arg(&record.moderator_token_hash)
            .arg(&record.studio_token_hash);
        let (schedule, publication) = stored_details(&details_after(first))?;
        call.arg(schedule).arg(publication).arg(&bodies);
        let reply: (i64, String) = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error(e, doing()))?;
        let last = match reply {
            (0, last) => parse_u64(&last, "last offset")?,
            (3, _) => return Err(StoreError::AlreadyExists),
            other => return Err(unexpected_reply(&other, doing())),
        };
        let _: i64 = conn
            .zadd(&index, record.id.as_str(), score)
            .await
            .map_err(|e| redis_error(e, doing()))?;
        tracing::debug!(meeting = %record.id, last, "created meeting");
        Ok(last)
    }

    async fn append(
        &self,
        meeting: &MeetingId,
        expected: Offset,
        events: &[Event],
    ) -> Result<Offset, StoreError> {
        let bodies = encode_all(events)?;
        let (status, ended_at) = match status_after(events) {
            Some(change) => (
                status_str(change.status).to_owned(),
                change.ended_at.map(|t| t.0.to_string()).unwrap_or_default(),
            ),
            None => (String::new(), String::new()),
        };
        let keys = self.keys(meeting);
        let batch = batch_id();
        let mut call = scripts::APPEND.key(&keys.meta);
        call.key(&keys.log)
            .arg(expected.to_string())
            .arg(&keys.channel)
            .arg(&batch)
            .arg(status)
            .arg(ended_at);
        let (schedule, publication) = stored_details(&details_after(events))?;
        call.arg(schedule).arg(publication).arg(&bodies);
        let reply: Result<(i64, String), RedisError> = call.invoke_async(&mut self.conn()).await;
        let doing = || format!("appending to meeting {meeting}");
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) if may_have_run(&e) && !events.is_empty() => {
                // The script may have run although its reply was lost: if the batch is in the
                // log, it is committed and says so. Otherwise the outcome stays unknown (the
                // request may still be queued in Redis); the caller learns it from a `Conflict`
                // or a read once Redis answers again.
                let failure = redis_error(e, doing());
                return match self.committed_after_all(&keys, expected, &batch).await {
                    Ok(true) => {
                        tracing::info!(%meeting, "an interrupted append had been committed");
                        Ok(expected + events.len() as Offset)
                    }
                    Ok(false) | Err(_) => Err(StoreError::Unavailable(format!(
                        "{failure}; the batch may still be committed (outcome unknown)"
                    ))),
                };
            }
            Err(e) => return Err(redis_error(e, doing())),
        };
        match reply {
            (0, last) => {
                let last = parse_u64(&last, "last offset")?;
                tracing::debug!(%meeting, after = expected, last, "appended events");
                Ok(last)
            }
            (1, actual) => Err(StoreError::Conflict {
                expected,
                actual: parse_u64(&actual, "last offset")?,
            }),
            (2, _) => Err(StoreError::UnknownMeeting),
            other => Err(unexpected_reply(&other, doing())),
        }
    }

    async fn read(
        &self,
        meeting: &MeetingId,
        after: Offset,
        limit: usize,
    ) -> Result<Vec<Recorded>, StoreError> {
        let keys = self.keys(meeting);
        let doing = || format!("reading events of meeting {meeting}");
        let start = after.checked_add(1);
        let entries = match (start, limit) {
            (Some(start), 1..) => {
                let value: Value = redis::cmd("XRANGE")
                    .arg(&keys.log)
                    .arg(format!("{start}-0"))
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit.min(i64::MAX as usize))
                    .query_async(&mut self.conn())
                    .await
                    .map_err(|e| redis_error(e, doing()))?;
                stream_entries(value, &doing())?
            }
            _ => Vec::new(),
        };
        if entries.is_empty() {
            return if self.exists(&keys).await? {
                Ok(Vec::new())
            } else {
                Err(StoreError::UnknownMeeting)
            };
        }
        let mut out = Vec::with_capacity(entries.len());
        let mut expected = after;
        for (id, fields) in entries {
            let corrupt = |why: &str| {
                StoreError::Corrupt(format!("meeting {meeting}: stream entry {id}: {why}"))
            };
            let offset = id
                .strip_suffix("-0")
                .and_then(|n| n.parse::<Offset>().ok())
                .ok_or_else(|| corrupt("not an offset"))?;
            expected += 1;
            if offset != expected {
                return Err(corrupt(&format!("expected offset {expected}")));
            }
            let body = fields.get("e").ok_or_else(|| corrupt("no event"))?;
            out.push(Recorded {
                offset,
                event: decode(meeting, offset, body)?,
            });
        }
        Ok(out)
    }

    async fn meeting(&self, id: &MeetingId) -> Result<Option<MeetingRecord>, StoreError> {
        let keys = self.keys(id);
        let fields: HashMap<String, String> = self
            .conn()
            .hgetall(&keys.meta)
            .await
            .map_err(|e| redis_error(e, format_args!("reading meeting {id}")))?;
        if fields.is_empty() {
            return Ok(None);
        }
        parse_record(id, &fields).map(Some)
    }

    async fn list_meetings(&self) -> Result<Vec<MeetingRecord>, StoreError> {
        let mut conn = self.conn();
        let ids: Vec<String> = conn
            .zrange(self.inner.keys.index(), 0, -1)
            .await
            .map_err(|e| redis_error(e, "listing meetings"))?;
        let ids = ids
            .into_iter()
            .map(|id| {
                MeetingId::parse(id.as_str())
                    .map_err(|e| StoreError::Corrupt(format!("meeting index: {id:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.keys(id).meta);
        }
        let all: Vec<HashMap<String, String>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error(e, "listing meetings"))?;
        let mut records = ids
            .iter()
            .zip(all)
            // An index entry without a record: a creation under way, or one that crashed.
            .filter(|(_, fields)| !fields.is_empty())
            .map(|(id, fields)| parse_record(id, &fields))
            .collect::<Result<Vec<_>, _>>()?;
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
        let keys = self.keys(id);
        let changed: i64 = scripts::SET_TOKENS
            .key(&keys.meta)
            .arg(moderator)
            .arg(studio)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| redis_error(e, format_args!("replacing the token hashes of {id}")))?;
        if changed == 0 {
            Err(StoreError::UnknownMeeting)
        } else {
            Ok(())
        }
    }

    async fn delete_meeting(&self, id: &MeetingId) -> Result<bool, StoreError> {
        let keys = self.keys(id);
        let mut conn = self.conn();
        let doing = || format!("deleting meeting {id}");
        let existed: i64 = scripts::DELETE
            .key(&keys.meta)
            .key(&keys.log)
            .key(&keys.presence)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error(e, doing()))?;
        // After the keys: a crash in between leaves an index entry that listing skips.
        let _: i64 = conn
            .zrem(self.inner.keys.index(), id.as_str())
            .await
            .map_err(|e| redis_error(e, doing()))?;
        if existed == 1 {
            tracing::debug!(meeting = %id, "deleted meeting");
        }
        Ok(existed == 1)
    }

    async fn health(&self) -> Result<(), StoreError> {
        let pong: String = redis::cmd("PING")
            .query_async(&mut self.conn())
            .await
            .map_err(|e| redis_error(e, format_args!("redis at {}", self.inner.shown_url)))?;
        if pong != "PONG" {
            return Err(StoreError::Backend(format!(
                "redis answered PING with {pong:?}"
            )));
        }
        self.inner.feed_status.check()
    }

    fn subscribe(&self, meeting: &MeetingId) -> Option<Subscription> {
        Some(self.inner.feed.subscribe(meeting))
    }
}

/// A random id per append, stored with each event, so an append whose reply was lost can tell
/// whether it was committed.
fn batch_id() -> String {
    rand::random::<u64>().to_string()
}

/// Whether a failed request may still have run on the server (it was sent, the reply is lost).
fn may_have_run(e: &RedisError) -> bool {
    e.is_io_error() && !e.is_connection_refusal()
}

/// Maps a redis error to a store error: what comes back by itself is `Unavailable`.
fn redis_error(e: RedisError, doing: impl fmt::Display) -> StoreError {
    let message = format!("{doing}: {e}");
    let transient = e.is_io_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
        || matches!(e.code(), Some("OOM" | "BUSY" | "NOREPLICAS"));
    if transient {
        StoreError::Unavailable(message)
    } else {
        StoreError::Backend(message)
    }
}

fn unexpected_reply(reply: &(i64, String), doing: String) -> StoreError {
    StoreError::Backend(format!(
        "{doing}: unexpected reply from the script: {reply:?}"
    ))
}

fn parse_u64(s: &str, what: &str) -> Result<u64, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not a number: {s:?}")))
}

/// A stream entry: its id and its fields.
type StreamEntry = (String, HashMap<String, String>);

/// Stream entries `[[id, [field, value, …]], …]` as ids with their fields.
fn stream_entries(value: Value, doing: &str) -> Result<Vec<StreamEntry>, StoreError> {
    let bad = |why: &str| StoreError::Backend(format!("{doing}: unexpected stream reply: {why}"));
    let Value::Array(entries) = value else {
        return Err(bad("not an array"));
    };
    entries
        .into_iter()
        .map(|entry| {
            let (id, fields): (String, HashMap<String, String>) =
                redis::from_redis_value(entry).map_err(|e| bad(&e.to_string()))?;
            Ok((id, fields))
        })
        .collect()
}

/// A batch's schedule and publication as the scripts take them: JSON, or '' for unchanged.
fn stored_details(change: &DetailsChange) -> Result<(String, String), StoreError> {
    Ok((
        change
            .schedule
            .as_ref()
            .map(encode_detail)
            .transpose()?
            .unwrap_or_default(),
        change
            .publication
            .as_ref()
            .map(encode_detail)
            .transpose()?
            .unwrap_or_default(),
    ))
}

fn parse_record(
    id: &MeetingId,
    fields: &HashMap<String, String>,
) -> Result<MeetingRecord, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt(format!("meeting {id}: {why}"));
    let field = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| corrupt(format!("no {name}")))
    };
    let number = |name: &str| -> Result<u64, StoreError> {
        let raw = field(name)?;
        raw.parse()
            .map_err(|_| corrupt(format!("{name} is not a number: {raw:?}")))
    };
    match fields.get("v").map(String::as_str) {
        Some("1") => {}
        other => return Err(corrupt(format!("unknown record version {other:?}"))),
    }
    let status = field("status")?;
    let status: MeetingStatus =
        parse_status(status).ok_or_else(|| corrupt(format!("unknown status {status:?}")))?;
    let ended_at = match field("ended_at")? {
        "" => None,
        _ => Some(Timestamp(number("ended_at")?)),
    };
    // Records written before schedules existed have neither field.
    let schedule = match fields.get("schedule").map(String::as_str) {
        None | Some("") => None,
        Some(raw) => Some(decode_detail(raw, || format!("schedule of {id}"))?),
    };
    let publication = match fields.get("publication").map(String::as_str) {
        None | Some("") => Default::default(),
        Some(raw) => decode_detail(raw, || format!("publication of {id}"))?,
    };
    Ok(MeetingRecord {
        schedule,
        publication,
        id: id.clone(),
        title: field("title")?.to_owned(),
        status,
        created_at: Timestamp(number("created_at")?),
        ended_at,
        moderator_token_hash: field("moderator_token_hash")?.to_owned(),
        studio_token_hash: field("studio_token_hash")?.to_owned(),
        last_offset: number("last_offset")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_redis_url("redis://user:s3cret@redis.internal:6379/2"),
            "redis://user:<redacted>@redis.internal:6379/2"
        );
        assert_eq!(
            redact_redis_url("redis://:s3cret@10.0.0.5"),
            "redis://:<redacted>@10.0.0.5"
        );
        assert_eq!(
            redact_redis_url("redis://s3cret@host/0"),
            "redis://<redacted>@host/0"
        );
        assert_eq!(
            redact_redis_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_redis_url("not a url"), "not a url");
    }

    #[test]
    fn urls_are_checked_without_connecting() {
        assert!(check_redis_url("redis://127.0.0.1:6379/3").is_ok());
        assert!(check_redis_url("unix:///run/redis.sock").is_ok());
        let tls = check_redis_url("rediss://u:pw@host").unwrap_err();
        assert!(tls.contains("TLS") && !tls.contains("pw"), "{tls}");
        let bad = check_redis_url("http://u:pw@host").unwrap_err();
        assert!(!bad.contains("pw"), "{bad}");
    }

    #[test]
    fn records_missing_fields_are_corrupt() {
        let id = MeetingId::parse("m").expect("valid id");
        let mut fields: HashMap<String, String> = [
            ("v", "1"),
            ("title", "T"),
            ("status", "live"),
            ("created_at", "5"),
            ("ended_at", ""),
            ("moderator_token_hash", "a"),
            ("studio_token_hash", "b"),
            ("last_offset", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let record = parse_record(&id, &fields).expect("parses");
        assert_eq!(
            (record.status, record.last_offset),
            (MeetingStatus::Live, 3)
        );
        for (field, value) in [
            ("status", "sleeping"),
            ("last_offset", "-1"),
            ("v", "2"),
            ("ended_at", "x"),
        ] {
            let mut bad = fields.clone();
            bad.insert(field.into(), value.into());
            assert!(
                matches!(parse_record(&id, &bad), Err(StoreError::Corrupt(_))),
                "{field}={value}"
            );
        }
        fields.remove("title");
        assert!(matches!(
            parse_record(&id, &fields),
            Err(StoreError::Corrupt(_))
        ));
    }
}
