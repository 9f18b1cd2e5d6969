//! SQLite engine: one file in WAL mode, the default store of a townhall server.
//!
//! rusqlite is synchronous, so every operation runs on tokio's blocking pool. There is one
//! writer connection (SQLite allows one writer at a time anyway, and holding it in a mutex makes
//! appends queue here instead of spinning on `SQLITE_BUSY`) and a few reader connections, which
//! WAL lets run alongside the writer. Each event is stored as the JSON of [`Event`] plus
//! `"v": EVENT_FORMAT_VERSION`, so the format can change later with a migration.

use crate::codec::{decode, decode_detail, encode_all, encode_detail, parse_status, status_str};
use crate::status::{DetailsChange, StatusChange, details_after, status_after};
use crate::{EventLog, MeetingRecord, StoreError};
use async_trait::async_trait;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior,
    params,
};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;
use townhall_core::{Event, MeetingId, Offset, Recorded, Timestamp};

/// Version of the schema below, kept in `PRAGMA user_version`; bump it with a migration.
const SCHEMA_VERSION: i64 = 2;

/// How long a statement waits for a lock held by another connection (a checkpoint, a backup
/// tool) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reader connections; with WAL they read in parallel with each other and with the writer.
const READERS: usize = 4;

const SCHEMA: &str = r#"
CREATE TABLE meetings (
    id TEXT PRIMARY KEY NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'live', 'ended')),
    created_at INTEGER NOT NULL,
    ended_at INTEGER,
    moderator_token_hash TEXT NOT NULL,
    studio_token_hash TEXT NOT NULL,
    last_offset INTEGER NOT NULL CHECK (last_offset >= 0),
    schedule TEXT,
    publication TEXT
);
CREATE INDEX meetings_newest_first ON meetings (created_at DESC, id);
CREATE TABLE events (
    meeting TEXT NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    "offset" INTEGER NOT NULL CHECK ("offset" >= 1),
    body TEXT NOT NULL,
    PRIMARY KEY (meeting, "offset")
) WITHOUT ROWID;
"#;

const RECORD_COLUMNS: &str = "id, title, status, created_at, ended_at, moderator_token_hash, \
                              studio_token_hash, last_offset, schedule, publication";

/// Version 1 → 2: the schedule and the publication, as JSON (NULL: none).
const MIGRATE_TO_2: &str = "ALTER TABLE meetings ADD COLUMN schedule TEXT;
ALTER TABLE meetings ADD COLUMN publication TEXT;";

/// A batch's [`DetailsChange`] in its stored form, encoded before the write starts.
#[derive(Default)]
struct StoredDetails {
    schedule: Option<String>,
    publication: Option<String>,
}

impl StoredDetails {
    fn of(change: &DetailsChange) -> Result<Self, StoreError> {
        Ok(Self {
            schedule: change.schedule.as_ref().map(encode_detail).transpose()?,
            publication: change.publication.as_ref().map(encode_detail).transpose()?,
        })
    }
}

/// When a committed append reaches the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is synced, so it survives a power loss as well as a crash
    /// of the process.
    #[default]
    Full,
    /// `synchronous=NORMAL`: commits survive a crash of the process; the last ones before a
    /// power loss or OS crash may be lost. Much faster on slow disks.
    Normal,
}

impl Durability {
    fn pragma_value(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// The event log in one SQLite file. Cheap to clone; clones share the connections.
///
/// Its methods must be called from within a tokio runtime, which runs the blocking work. An
/// operation whose future is dropped still runs to completion: an append may have committed,
/// which the caller then learns from a `Conflict` on its next append.
#[derive(Clone)]
pub struct SqliteLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    durability: Durability,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    /// Which reader to wait for when all are busy, so waiters spread over them.
    next_reader: AtomicUsize,
}

impl fmt::Debug for SqliteLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteLog")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .finish_non_exhaustive()
    }
}

impl SqliteLog {
    /// Opens the log at `path`, creating the file and its schema if needed.
    ///
    /// Fails if the file was written by a newer townhall (a higher schema version) or is some
    /// other SQLite database, rather than touching data it does not understand.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let shown = path.display();
        let mut writer = open_connection(path, OpenFlags::SQLITE_OPEN_CREATE)?;
        // Check before changing anything, even the journal mode, in a file we may not understand.
        check_version(&writer, path)?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .during(format_args!("enabling WAL mode on {shown}"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "{shown} does not support WAL mode (journal mode is {mode})"
            )));
        }
        writer
            .pragma_update(None, "synchronous", durability.pragma_value())
            .during(format_args!("setting synchronous on {shown}"))?;
        migrate(&mut writer, path)?;

        let readers = (0..READERS)
            .map(|_| {
                let reader = open_connection(path, OpenFlags::empty())?;
                reader
                    .pragma_update(None, "query_only", true)
                    .during(format_args!("opening a reader of {shown}"))?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;

        tracing::info!(path = %shown, ?durability, "opened sqlite event log");
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                durability,
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// Runs `op` on the writer connection on the blocking pool.
    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || op(&mut lock(&inner.writer))).await
    }

    /// Runs `op` on a free reader connection (or waits for one) on the blocking pool.
    async fn read_with<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            for reader in &inner.readers {
                match reader.try_lock() {
                    Ok(conn) => return op(&conn),
                    Err(TryLockError::Poisoned(poisoned)) => return op(&poisoned.into_inner()),
                    Err(TryLockError::WouldBlock) => {}
                }
            }
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            op(&lock(&inner.readers[i]))
        })
        .await
    }
}

#[async_trait]
impl EventLog for SqliteLog {
    async fn create_meeting(
        &self,
        record: &MeetingRecord,
        first: &[Event],
    ) -> Result<Offset, StoreError> {
        let bodies = encode_all(first)?;
        let change = status_after(first);
        let details = StoredDetails::of(&details_after(first))?;
        let owned = record.clone();
        let last = self
            .write(move |conn| {
                let record = owned;
                let tx = begin_immediate(conn)?;
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO meetings (id, title, status, created_at, ended_at, \
                         moderator_token_hash, studio_token_hash, last_offset) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0) ON CONFLICT (id) DO NOTHING",
                    )
                    .and_then(|mut insert| {
                        insert.execute(params![
                            record.id.as_str(),
                            record.title,
                            status_str(record.status),
                            to_sql_int(record.created_at.0, "created_at")?,
                            record
                                .ended_at
                                .map(|t| to_sql_int(t.0, "ended_at"))
                                .transpose()?,
                            record.moderator_token_hash,
                            record.studio_token_hash,
                        ])
                    })
                    .during(format_args!("creating meeting {}", record.id))?;
                if inserted == 0 {
                    return Err(StoreError::AlreadyExists);
                }
                let last = write_events(&tx, &record.id, 0, &bodies, change, &details)?;
                tx.commit()
                    .during(format_args!("committing meeting {}", record.id))?;
                Ok(last)
            })
            .await?;
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
        let change = status_after(events);
        let details = StoredDetails::of(&details_after(events))?;
        let id = meeting.clone();
        let last = self
            .write(move |conn| {
                let tx = begin_immediate(conn)?;
                let actual = tx
                    .prepare_cached("SELECT last_offset FROM meetings WHERE id = ?1")
                    .and_then(|mut select| {
                        select
                            .query_row([id.as_str()], |row| row.get::<_, i64>(0))
                            .optional()
                    })
                    .during(format_args!("reading the last offset of meeting {id}"))?
                    .ok_or(StoreError::UnknownMeeting)?;
                let actual = from_sql_int(actual, || format!("last offset of meeting {id}"))?;
                if actual != expected {
                    // Dropping the transaction rolls it back; it has written nothing.
                    return Err(StoreError::Conflict { expected, actual });
                }
                if bodies.is_empty() {
                    return Ok(expected);
                }
                let last = write_events(&tx, &id, expected, &bodies, change, &details)?;
                tx.commit()
                    .during(format_args!("committing events of meeting {id}"))?;
                Ok(last)
            })
            .await?;
        tracing::debug!(%meeting, after = expected, last, "appended events");
        Ok(last)
    }

    async fn read(
        &self,
        meeting: &MeetingId,
        after: Offset,
        limit: usize,
    ) -> Result<Vec<Recorded>, StoreError> {
        let id = meeting.clone();
        // Offsets beyond i64 cannot exist, and a limit beyond it is no limit.
        let after_sql = i64::try_from(after).unwrap_or(i64::MAX);
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_with(move |conn| {
            let mut select = conn
                .prepare_cached(
                    r#"SELECT "offset", body FROM events
                       WHERE meeting = ?1 AND "offset" > ?2 ORDER BY "offset" LIMIT ?3"#,
                )
                .during("preparing to read events")?;
            let rows = select
                .query_map(params![id.as_str(), after_sql, limit_sql], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)))
                })
                .during(format_args!("reading events of meeting {id}"))?;
            let mut out = Vec::with_capacity(limit.min(1024));
            for row in rows {
                let (offset, body) = row.during(format_args!("reading events of meeting {id}"))?;
                let offset = from_sql_int(offset, || format!("an event offset of meeting {id}"))?;
                let body = body.map_err(|e| {
                    StoreError::Corrupt(format!("event {offset} of meeting {id}: {e}"))
                })?;
                out.push(Recorded {
                    offset,
                    event: decode(&id, offset, &body)?,
                });
            }
            if out.is_empty() && !meeting_exists(conn, &id)? {
                return Err(StoreError::UnknownMeeting);
            }
            Ok(out)
        })
        .await
    }

    async fn meeting(&self, id: &MeetingId) -> Result<Option<MeetingRecord>, StoreError> {
        let id = id.clone();
        self.read_with(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM meetings WHERE id = ?1"
            ))
            .and_then(|mut select| {
                select
                    .query_row([id.as_str()], RawRecord::from_row)
                    .optional()
            })
            .during(format_args!("reading meeting {id}"))?
            .map(RawRecord::into_record)
            .transpose()
        })
        .await
    }

    async fn list_meetings(&self) -> Result<Vec<MeetingRecord>, StoreError> {
        self.read_with(|conn| {
            let raw = conn
                .prepare_cached(&format!(
                    "SELECT {RECORD_COLUMNS} FROM meetings ORDER BY created_at DESC, id"
                ))
                .and_then(|mut select| {
                    select
                        .query_map([], RawRecord::from_row)?
                        .collect::<Result<Vec<_>, _>>()
                })
                .during("listing meetings")?;
            raw.into_iter().map(RawRecord::into_record).collect()
        })
        .await
    }

    async fn set_token_hashes(
        &self,
        id: &MeetingId,
        moderator: &str,
        studio: &str,
    ) -> Result<(), StoreError> {
        let (id, moderator, studio) = (id.clone(), moderator.to_owned(), studio.to_owned());
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE meetings SET moderator_token_hash = ?2, studio_token_hash = ?3 \
                     WHERE id = ?1",
                )
                .and_then(|mut update| update.execute(params![id.as_str(), moderator, studio]))
                .during(format_args!("replacing the token hashes of meeting {id}"))?;
            if changed == 0 {
                Err(StoreError::UnknownMeeting)
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn delete_meeting(&self, id: &MeetingId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            let tx = begin_immediate(conn)?;
            // Explicit rather than relying on the cascade, which needs foreign keys enabled.
            tx.prepare_cached("DELETE FROM events WHERE meeting = ?1")
                .and_then(|mut delete| delete.execute([id.as_str()]))
                .during(format_args!("deleting events of meeting {id}"))?;
            let deleted = tx
                .prepare_cached("DELETE FROM meetings WHERE id = ?1")
                .and_then(|mut delete| delete.execute([id.as_str()]))
                .during(format_args!("deleting meeting {id}"))?;
            tx.commit()
                .during(format_args!("committing the deletion of meeting {id}"))?;
            // With `secure_delete` the freed pages were overwritten, but the WAL still holds
            // their old versions: copy it into the file and truncate it, so the erased text is
            // in neither.
            let (busy, _, _): (i64, i64, i64) = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .during(format_args!("checkpointing after deleting meeting {id}"))?;
            if busy != 0 {
                tracing::warn!(meeting = %id, "the WAL could not be truncated after a deletion; it will be at the next checkpoint");
            }
            if deleted > 0 {
                tracing::debug!(meeting = %id, "deleted meeting");
            }
            Ok(deleted > 0)
        })
        .await
    }
}

/// Inserts the encoded events at offsets `after + 1..` and moves the record in step with them.
fn write_events(
    tx: &Transaction<'_>,
    meeting: &MeetingId,
    after: Offset,
    bodies: &[String],
    change: Option<StatusChange>,
    details: &StoredDetails,
) -> Result<Offset, StoreError> {
    let context = || format!("appending events to meeting {meeting}");
    let mut insert = tx
        .prepare_cached(r#"INSERT INTO events (meeting, "offset", body) VALUES (?1, ?2, ?3)"#)
        .during(context())?;
    let mut offset = after;
    for body in bodies {
        offset = offset
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend(format!("meeting {meeting} has no offsets left")))?;
        insert
            .execute(params![
                meeting.as_str(),
                to_sql_int(offset, "offset").during(context())?,
                body
            ])
            .during(context())?;
    }
    let last = to_sql_int(offset, "offset").during(context())?;
    let updated = match change {
        Some(change) => tx
            .prepare_cached(
                "UPDATE meetings SET last_offset = ?2, status = ?3, ended_at = ?4 WHERE id = ?1",
            )
            .and_then(|mut update| {
                update.execute(params![
                    meeting.as_str(),
                    last,
                    status_str(change.status),
                    change
                        .ended_at
                        .map(|t| to_sql_int(t.0, "ended_at"))
                        .transpose()?,
                ])
            }),
        None => tx
            .prepare_cached("UPDATE meetings SET last_offset = ?2 WHERE id = ?1")
            .and_then(|mut update| update.execute(params![meeting.as_str(), last])),
    }
    .during(context())?;
    if updated != 1 {
        return Err(StoreError::Backend(format!(
            "meeting {meeting} vanished while appending"
        )));
    }
    for (column, value) in [
        ("schedule", &details.schedule),
        ("publication", &details.publication),
    ] {
        if let Some(value) = value {
            tx.prepare_cached(&format!("UPDATE meetings SET {column} = ?2 WHERE id = ?1"))
                .and_then(|mut update| update.execute(params![meeting.as_str(), value]))
                .during(context())?;
        }
    }
    Ok(offset)
}

fn meeting_exists(conn: &Connection, id: &MeetingId) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM meetings WHERE id = ?1")
        .and_then(|mut select| select.exists([id.as_str()]))
        .during(format_args!("looking up meeting {id}"))
}

fn begin_immediate(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    // IMMEDIATE takes the write lock up front, so the offset check and the insert cannot be
    // separated by another writer (another process on the same file included).
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .during("starting a write transaction")
}

/// Opens one connection with the settings every connection needs.
fn open_connection(path: &Path, extra: OpenFlags) -> Result<Connection, StoreError> {
    let shown = path.display();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | extra;
    let conn = Connection::open_with_flags(path, flags).during(format_args!("opening {shown}"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .during(format_args!("setting the busy timeout on {shown}"))?;
    conn.pragma_update(None, "foreign_keys", true)
        .during(format_args!("enabling foreign keys on {shown}"))?;
    // Deleted rows are overwritten, not only unlinked: a deleted meeting's text must not stay
    // readable in the file (GDPR erasure; the WAL is checkpointed after each deletion).
    conn.pragma_update(None, "secure_delete", true)
        .during(format_args!("enabling secure_delete on {shown}"))?;
    Ok(conn)
}

fn check_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .during(format_args!(
            "reading the schema version of {}",
            path.display()
        ))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "{} has schema version {version}, newer than the {SCHEMA_VERSION} this build of \
             townhall understands; run a newer townhall or restore a backup",
            path.display()
        )));
    }
    if version < 0 {
        return Err(StoreError::Corrupt(format!(
            "{} has an invalid schema version {version}",
            path.display()
        )));
    }
    Ok(version)
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let shown = path.display();
    let tx = begin_immediate(conn)?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let version = check_version(&tx, path)?;
    if version == 0 {
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |row| row.get(0),
            )
            .during(format_args!("inspecting {shown}"))?;
        if tables > 0 {
            return Err(StoreError::Backend(format!(
                "{shown} is not a townhall database: it has tables but no schema version"
            )));
        }
        tx.execute_batch(SCHEMA)
            .during(format_args!("creating the schema in {shown}"))?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .during(format_args!("setting the schema version of {shown}"))?;
        tracing::info!(path = %shown, version = SCHEMA_VERSION, "created event log schema");
    } else if version == 1 {
        tx.execute_batch(MIGRATE_TO_2)
            .during(format_args!("migrating {shown} to schema version 2"))?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .during(format_args!("setting the schema version of {shown}"))?;
        tracing::info!(path = %shown, version = SCHEMA_VERSION, "migrated event log schema");
    }
    tx.commit()
        .during(format_args!("committing the schema of {shown}"))
}

/// Runs blocking work on tokio's blocking pool.
async fn blocking<T, F>(op: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(op).await.map_err(|e| {
        tracing::error!(error = %e, "sqlite task failed");
        StoreError::Backend(format!("storage task failed: {e}"))
    })?
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while a connection was held cannot leave it mid-transaction: dropping the
    // `Transaction` during unwinding rolls it back. So a poisoned connection is still usable.
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SQLite integers are signed 64-bit; larger values are refused rather than wrapped.
fn to_sql_int(value: u64, what: &str) -> rusqlite::Result<i64> {
    i64::try_from(value).map_err(|_| {
        rusqlite::Error::ToSqlConversionFailure(
            format!("{what} {value} is too large to store").into(),
        )
    })
}

fn from_sql_int(value: i64, what: impl FnOnce() -> String) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{} is negative: {value}", what())))
}

/// A `meetings` row as stored, checked by [`RawRecord::into_record`].
struct RawRecord {
    id: String,
    title: String,
    status: String,
    created_at: i64,
    ended_at: Option<i64>,
    moderator_token_hash: String,
    studio_token_hash: String,
    last_offset: i64,
    schedule: Option<String>,
    publication: Option<String>,
}

impl RawRecord {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            title: row.get(1)?,
            status: row.get(2)?,
            created_at: row.get(3)?,
            ended_at: row.get(4)?,
            moderator_token_hash: row.get(5)?,
            studio_token_hash: row.get(6)?,
            last_offset: row.get(7)?,
            schedule: row.get(8)?,
            publication: row.get(9)?,
        })
    }

    fn into_record(self) -> Result<MeetingRecord, StoreError> {
        let id = MeetingId::parse(self.id.as_str())
            .map_err(|e| StoreError::Corrupt(format!("meeting {:?}: {e}", self.id)))?;
        let status = parse_status(&self.status).ok_or_else(|| {
            StoreError::Corrupt(format!("meeting {id}: unknown status {:?}", self.status))
        })?;
        let created_at = Timestamp(from_sql_int(self.created_at, || {
            format!("created_at of {id}")
        })?);
        let ended_at = self
            .ended_at
            .map(|t| from_sql_int(t, || format!("ended_at of {id}")).map(Timestamp))
            .transpose()?;
        let last_offset =
            from_sql_int(self.last_offset, || format!("last offset of meeting {id}"))?;
        let schedule = self
            .schedule
            .map(|raw| decode_detail(&raw, || format!("schedule of {id}")))
            .transpose()?;
        let publication = self
            .publication
            .map(|raw| decode_detail(&raw, || format!("publication of {id}")))
            .transpose()?
            .unwrap_or_default();
        Ok(MeetingRecord {
            id,
            schedule,
            publication,
            title: self.title,
            status,
            created_at,
            ended_at,
            moderator_token_hash: self.moderator_token_hash,
            studio_token_hash: self.studio_token_hash,
            last_offset,
        })
    }
}

/// Adds what was being done to a rusqlite error.
trait During<T> {
    fn during(self, what: impl fmt::Display) -> Result<T, StoreError>;
}

impl<T> During<T> for rusqlite::Result<T> {
    fn during(self, what: impl fmt::Display) -> Result<T, StoreError> {
        self.map_err(|e| {
            let message = format!("{what}: {e}");
            match &e {
                rusqlite::Error::SqliteFailure(failure, _)
                    if matches!(
                        failure.code,
                        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase
                    ) =>
                {
                    StoreError::Corrupt(message)
                }
                rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(message),
                _ => StoreError::Backend(message),
            }
        })
    }
}
