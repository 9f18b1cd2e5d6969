//! The signaling and chat hub: everything between a WebSocket and the event log.
//!
//! [`Hub`] keeps one [room actor](room) per loaded meeting. Sessions ([`session::serve`]) parse
//! and rate-limit client frames and pass commands to their room; the room decides them with
//! `townhall-core`, commits them to the [`EventLog`] in batches, and fans the resulting frames
//! out through each session's bounded outbox.
//!
//! Invariants: a command is acknowledged only after its events are durable; every frame is
//! serialised once per audience, never per connection; the room never waits on a session (a
//! full outbox marks the session for resync instead).
//!
//! Deliberately absent: HTTP routing, cookies and configuration files (the server crate), and
//! any knowledge of media.

#![forbid(unsafe_code)]

pub mod auth;
mod config;
mod history;
mod limits;
mod metrics;
pub mod room;
pub mod session;

pub use config::HubConfig;
pub use limits::TokenBucket;
pub use metrics::HubMetrics;
pub use room::CommandError;

use room::{Room, RoomMsg};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, mpsc, oneshot};
use townhall_core::command::CreateMeeting;
use townhall_core::event::MeetingCreated;
use townhall_core::{Actor, Command, Meeting, MeetingId, Offset, Timestamp};
use townhall_store::{EventLog, MeetingRecord, StoreError};

/// Wall-clock time for events; a trait so tests can fix it.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_millis() as u64)
    }
}

/// A handle to a running room.
#[derive(Clone, Debug)]
pub struct RoomHandle {
    tx: mpsc::Sender<RoomMsg>,
}

impl RoomHandle {
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Sends a message to the room; `false` if it has stopped. Sessions use this; so do
    /// benchmarks that drive a room without sockets.
    /// Closes the room: every session gets `bye` with `code`; returns once all were kicked.
    pub async fn close(&self, code: &'static str, message: &str) {
        let (done, kicked) = oneshot::channel();
        let msg = RoomMsg::Close {
            code,
            message: message.into(),
            done: Some(done),
        };
        if self.tx.send(msg).await.is_ok() {
            let _ = kicked.await;
        }
    }

    pub async fn send(&self, msg: RoomMsg) -> bool {
        self.tx.send(msg).await.is_ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("no such meeting")]
    NoMeeting,
    #[error("storage is unavailable: {0}")]
    Store(#[from] StoreError),
}

/// A meeting just created, with its secret tokens (shown once; only hashes are kept).
#[derive(Clone, Debug)]
pub struct CreatedMeeting {
    pub record: MeetingRecord,
    pub moderator_token: String,
    pub studio_token: String,
}

/// Per-IP bookkeeping: open connections and a shared command budget.
#[derive(Debug)]
struct IpState {
    connections: usize,
    commands: TokenBucket,
}

type RoomCell = Arc<OnceCell<RoomHandle>>;

/// Addresses without connections kept for their rate budget before pruning.
const MAX_IDLE_IPS: usize = 10_000;

#[derive(Debug)]
pub struct Hub {
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    config: Arc<HubConfig>,
    metrics: HubMetrics,
    session_key: auth::SessionKey,
    rooms: Mutex<HashMap<MeetingId, RoomCell>>,
    ips: Mutex<HashMap<IpAddr, IpState>>,
    next_session: AtomicU64,
}

impl Hub {
    pub fn new(
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        config: HubConfig,
        metrics: HubMetrics,
        session_key: auth::SessionKey,
    ) -> Arc<Self> {
        Arc::new(Self {
            log,
            clock,
            config: Arc::new(config),
            metrics,
            session_key,
            rooms: Mutex::new(HashMap::new()),
            ips: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
        })
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    pub fn session_key(&self) -> &auth::SessionKey {
        &self.session_key
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// The running room of a meeting, loading it from the log if needed.
    pub async fn room(&self, id: &MeetingId) -> Result<RoomHandle, HubError> {
        loop {
            let cell = {
                let mut rooms = self.rooms.lock().expect("rooms lock is never poisoned");
                let stale = rooms
                    .get(id)
                    .is_some_and(|c| c.get().is_some_and(RoomHandle::is_closed));
                if stale {
                    rooms.remove(id);
                }
                rooms.entry(id.clone()).or_default().clone()
            };
            let handle = cell
                .get_or_try_init(|| async {
                    let room = Room::load(
                        id,
                        self.log.clone(),
                        self.clock.clone(),
                        self.config.clone(),
                        self.metrics.clone(),
                    )
                    .await?
                    .ok_or(HubError::NoMeeting)?;
                    let (tx, rx) = mpsc::channel(8192);
                    let span = tracing::info_span!("meeting", meeting_id = %id);
                    tokio::spawn(tracing::Instrument::instrument(room.run(rx), span));
                    Ok::<_, HubError>(RoomHandle { tx })
                })
                .await;
            match handle {
                Ok(h) if !h.is_closed() => return Ok(h.clone()),
                Ok(_) => continue,
                Err(e) => {
                    // Forget the failed cell so the next attempt loads again.
                    let mut rooms = self.rooms.lock().expect("rooms lock is never poisoned");
                    if rooms.get(id).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                        rooms.remove(id);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// The running room, if the meeting is loaded on this node.
    fn loaded_room(&self, id: &MeetingId) -> Option<RoomHandle> {
        let rooms = self.rooms.lock().expect("rooms lock is never poisoned");
        rooms
            .get(id)
            .and_then(|c| c.get().cloned())
            .filter(|h| !h.is_closed())
    }

    /// Runs a command for the organizer API through the meeting's room, so connected sessions
    /// see its effect; returns once it is durable.
    pub async fn command(
        &self,
        meeting: &MeetingId,
        actor: Actor,
        command: Command,
    ) -> Result<Offset, CommandError> {
        for _ in 0..3 {
            let room = self.room(meeting).await.map_err(|e| match e {
                HubError::NoMeeting => CommandError::NoMeeting,
                HubError::Store(e) => CommandError::Unavailable(e.to_string()),
            })?;
            let (reply, rx) = oneshot::channel();
            if room
                .tx
                .send(RoomMsg::Api {
                    actor: actor.clone(),
                    command: command.clone(),
                    reply,
                })
                .await
                .is_err()
            {
                continue; // the room stopped just now; load it again
            }
            match rx.await {
                Ok(result) => return result,
                Err(_) => continue,
            }
        }
        Err(CommandError::Unavailable(
            "the meeting's room keeps stopping".into(),
        ))
    }

    /// Creates a meeting with fresh secret links.
    pub async fn create_meeting(&self, title: &str) -> Result<CreatedMeeting, CommandError> {
        let id = auth::new_meeting_id();
        let now = self.clock.now();
        let events = Meeting::new(id.clone())
            .decide(
                &Actor::organizer(),
                &Command::CreateMeeting(CreateMeeting {
                    title: title.to_owned(),
                }),
                now,
            )
            .map_err(CommandError::Rejected)?;
        let title = match &events[0].kind {
            townhall_core::EventKind::MeetingCreated(MeetingCreated { title }) => title.clone(),
            _ => unreachable!("creating a meeting records MeetingCreated first"),
        };
        let moderator_token = auth::new_secret_token();
        let studio_token = auth::new_secret_token();
        let mut record = MeetingRecord {
            id,
            title,
            status: townhall_core::MeetingStatus::Scheduled,
            created_at: now,
            ended_at: None,
            moderator_token_hash: auth::hash_token(&moderator_token),
            studio_token_hash: auth::hash_token(&studio_token),
            last_offset: 0,
        };
        record.last_offset = self
            .log
            .create_meeting(&record, &events)
            .await
            .map_err(|e| CommandError::Unavailable(e.to_string()))?;
        Ok(CreatedMeeting {
            record,
            moderator_token,
            studio_token,
        })
    }

    /// Issues new secret links; the old ones stop working at once, also for the running room.
    pub async fn rotate_links(&self, id: &MeetingId) -> Result<(String, String), CommandError> {
        let moderator = auth::new_secret_token();
        let studio = auth::new_secret_token();
        let (mh, sh) = (auth::hash_token(&moderator), auth::hash_token(&studio));
        self.log
            .set_token_hashes(id, &mh, &sh)
            .await
            .map_err(|e| match e {
                StoreError::UnknownMeeting => CommandError::NoMeeting,
                e => CommandError::Unavailable(e.to_string()),
            })?;
        if let Some(room) = self.loaded_room(id) {
            let _ = room
                .tx
                .send(RoomMsg::SetTokenHashes {
                    moderator: mh,
                    studio: sh,
                })
                .await;
        }
        Ok((moderator, studio))
    }

    /// Disconnects everyone and deletes the meeting and its whole log.
    pub async fn delete_meeting(&self, id: &MeetingId) -> Result<bool, StoreError> {
        if let Some(room) = self.loaded_room(id) {
            room.close("meeting_deleted", "the organizer deleted this meeting")
                .await;
        }
        self.rooms
            .lock()
            .expect("rooms lock is never poisoned")
            .remove(id);
        self.log.delete_meeting(id).await
    }

    /// Tells every connected session that the node is going away.
    pub async fn shutdown(&self) {
        let rooms: Vec<RoomHandle> = {
            let rooms = self.rooms.lock().expect("rooms lock is never poisoned");
            rooms.values().filter_map(|c| c.get().cloned()).collect()
        };
        for room in rooms {
            room.close("shutdown", "the server is restarting; reconnecting")
                .await;
        }
        // Give the writers a moment to say goodbye before the process goes away.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.metrics.connections.get() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Counts a new connection from `ip`; `false` if that IP has too many already.
    fn admit_ip(&self, ip: IpAddr) -> bool {
        let mut ips = self.ips.lock().expect("ips lock is never poisoned");
        let state = ips.entry(ip).or_insert_with(|| IpState {
            connections: 0,
            commands: TokenBucket::new(
                self.config.ip_commands_per_sec,
                self.config.ip_command_burst,
                tokio::time::Instant::now(),
            ),
        });
        if state.connections >= self.config.max_connections_per_ip {
            return false;
        }
        state.connections += 1;
        true
    }

    fn release_ip(&self, ip: IpAddr) {
        let mut ips = self.ips.lock().expect("ips lock is never poisoned");
        if let Some(state) = ips.get_mut(&ip) {
            state.connections = state.connections.saturating_sub(1);
        }
        // Entries outlive their last connection, so reconnecting does not refill the budget;
        // idle ones are dropped once the map grows.
        if ips.len() > MAX_IDLE_IPS {
            ips.retain(|_, s| s.connections > 0);
        }
    }

    /// Takes one command from the IP's shared budget.
    fn take_ip_command(&self, ip: IpAddr) -> Result<(), std::time::Duration> {
        let mut ips = self.ips.lock().expect("ips lock is never poisoned");
        match ips.get_mut(&ip) {
            Some(state) => state.commands.try_take(tokio::time::Instant::now()),
            None => Ok(()),
        }
    }
}
