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

pub mod actor;
pub mod auth;
mod config;
mod history;
pub mod inbound;
mod limits;
mod metrics;
pub mod outbox;
pub mod room;
pub mod session;
mod suggest;

pub use actor::{RoomHandle, RoomMsg};
pub use config::HubConfig;
pub use limits::{AddressCost, AddressLimits, TokenBucket};
pub use metrics::HubMetrics;
pub use outbox::{Kick, Outbox};
pub use room::{CommandError, Room};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, oneshot};
use townhall_core::command::{CreateMeeting, ScheduleMeeting};
use townhall_core::{Actor, Command, Meeting, MeetingId, Offset, Timestamp};
use townhall_store::{EventLog, LocalPresence, MeetingRecord, PresenceBoard, StoreError};

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

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("no such meeting")]
    NoMeeting,
    #[error("storage is unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("the meeting's room keeps stopping")]
    Unavailable,
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
    presence: Arc<dyn PresenceBoard>,
    config: Arc<HubConfig>,
    metrics: HubMetrics,
    session_key: auth::SessionKey,
    rooms: Mutex<HashMap<MeetingId, RoomCell>>,
    ips: Mutex<HashMap<IpAddr, IpState>>,
    next_session: AtomicU64,
    room_runtime: RoomRuntime,
}

/// The rooms' own thread. A room's commit resumes when its append finishes; on the shared
/// runtime that wake-up would queue behind every session writer woken by the previous fan-out
/// (10,000 of them in a big meeting), so commits would wait for whole fan-outs to be written.
/// On its own thread a room decides, commits and fans out without waiting for the writers.
#[derive(Debug)]
struct RoomRuntime(Option<tokio::runtime::Runtime>);

impl RoomRuntime {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("townhall-rooms")
            .enable_all()
            .build()
            .expect("the rooms' runtime starts");
        RoomRuntime(Some(runtime))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("present until dropped").handle()
    }
}

impl Drop for RoomRuntime {
    fn drop(&mut self) {
        // Dropping a runtime may not block inside another runtime (tests, shutdown).
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Hub {
    pub fn new(
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        config: HubConfig,
        metrics: HubMetrics,
        session_key: auth::SessionKey,
    ) -> Arc<Self> {
        Self::with_presence(
            log,
            clock,
            Arc::new(LocalPresence),
            config,
            metrics,
            session_key,
        )
    }

    /// A hub whose rooms count sessions over every node on `presence`.
    pub fn with_presence(
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        presence: Arc<dyn PresenceBoard>,
        config: HubConfig,
        metrics: HubMetrics,
        session_key: auth::SessionKey,
    ) -> Arc<Self> {
        Arc::new(Self {
            log,
            clock,
            presence,
            config: Arc::new(config),
            metrics,
            session_key,
            rooms: Mutex::new(HashMap::new()),
            ips: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            room_runtime: RoomRuntime::new(),
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
            let handle = cell.get_or_try_init(|| self.start_room(id)).await;
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

    /// Replays a meeting's log into a room and starts its actor on the rooms' thread.
    async fn start_room(&self, id: &MeetingId) -> Result<RoomHandle, HubError> {
        // Subscribed before reading, so no other node's commit falls between the two.
        let feed = self.log.subscribe(id);
        let record = self.log.meeting(id).await?.ok_or(HubError::NoMeeting)?;
        let events = townhall_store::read_all(self.log.as_ref(), id).await?;
        let mut meeting = Meeting::replay(id.clone(), &events);
        meeting.limits = self.config.meeting_limits();
        let room = Room::new(
            meeting,
            &record,
            self.config.clone(),
            self.metrics.clone(),
            tokio::time::Instant::now(),
        );
        let services = actor::Services {
            log: self.log.clone(),
            clock: self.clock.clone(),
            presence: self.presence.clone(),
            metrics: self.metrics.clone(),
            max_batch: self.config.max_batch,
            presence_interval: self.config.presence_interval(),
        };
        Ok(actor::spawn(
            room,
            feed,
            services,
            self.room_runtime.handle(),
        ))
    }

    /// The running room, if the meeting is loaded on this node.
    fn loaded_room(&self, id: &MeetingId) -> Option<RoomHandle> {
        let rooms = self.rooms.lock().expect("rooms lock is never poisoned");
        rooms
            .get(id)
            .and_then(|c| c.get().cloned())
            .filter(|h| !h.is_closed())
    }

    /// Sends the meeting's room a message that expects an answer, and waits for it. A room
    /// that stops meanwhile (idle, just now) is loaded again, a few times.
    pub async fn ask_room<T>(
        &self,
        id: &MeetingId,
        message: impl Fn(oneshot::Sender<T>) -> RoomMsg,
    ) -> Result<(RoomHandle, T), HubError> {
        for _ in 0..3 {
            let room = self.room(id).await?;
            let (reply, answer) = oneshot::channel();
            if !room.send(message(reply)).await {
                continue;
            }
            if let Ok(answer) = answer.await {
                return Ok((room, answer));
            }
        }
        Err(HubError::Unavailable)
    }

    /// Runs a command for the organizer API through the meeting's room, so connected sessions
    /// see its effect; returns once it is durable.
    pub async fn command(
        &self,
        meeting: &MeetingId,
        actor: Actor,
        command: Command,
    ) -> Result<Offset, CommandError> {
        let asked = self
            .ask_room(meeting, |reply| RoomMsg::Api {
                actor: actor.clone(),
                command: command.clone(),
                reply,
            })
            .await;
        match asked {
            Ok((_, result)) => result,
            Err(HubError::NoMeeting) => Err(CommandError::NoMeeting),
            Err(e) => Err(CommandError::Unavailable(e.to_string())),
        }
    }

    /// Creates a meeting with fresh secret links.
    pub async fn create_meeting(&self, title: &str) -> Result<CreatedMeeting, CommandError> {
        self.create_scheduled_meeting(title, None).await
    }

    /// Creates a meeting with fresh secret links and, if given, its schedule: both events are
    /// the log's first batch, so a meeting never exists half-scheduled.
    pub async fn create_scheduled_meeting(
        &self,
        title: &str,
        schedule: Option<ScheduleMeeting>,
    ) -> Result<CreatedMeeting, CommandError> {
        let id = auth::new_meeting_id();
        let now = self.clock.now();
        let organizer = Actor::organizer();
        let mut meeting = Meeting::new(id.clone());
        let mut commands = vec![Command::CreateMeeting(CreateMeeting {
            title: title.to_owned(),
        })];
        commands.extend(schedule.map(Command::ScheduleMeeting));
        let mut events = Vec::new();
        for command in &commands {
            let decided = meeting
                .decide(&organizer, command, now)
                .map_err(CommandError::Rejected)?;
            for event in decided {
                let offset = meeting.offset + 1;
                meeting.apply(&townhall_core::Recorded {
                    offset,
                    event: event.clone(),
                });
                events.push(event);
            }
        }
        let title = meeting.title.clone();
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
            schedule: meeting.schedule.clone(),
            publication: meeting.publication,
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
            room.close(Kick::new(
                "meeting_deleted",
                "the organizer deleted this meeting",
            ))
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
            room.close(Kick::new(
                "shutdown",
                "the server is restarting; reconnecting",
            ))
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
