//! Settings of the hub. The server reads them from its config file (`[hub]`), env and flags.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// How often coalesced vote tallies are sent, in milliseconds.
    pub tick_ms: u64,
    /// How often the online count is sent when it changed, in milliseconds.
    pub presence_ms: u64,
    /// Frames queued for one connection before it counts as too slow and is resynced.
    pub outbox_frames: usize,
    /// Recent event frames a room keeps for clients that reconnect.
    pub history_frames: usize,
    /// Largest client frame accepted, in bytes; larger ones get `frame_too_large`.
    pub max_frame_bytes: usize,
    /// Commands per second one connection may send on average, and in a burst.
    pub commands_per_sec: f64,
    pub command_burst: u32,
    /// Frames of any kind per second one connection may send (pings, junk), and in a burst.
    pub frames_per_sec: f64,
    pub frame_burst: u32,
    /// Commands per second from one IP address over all its connections, and in a burst.
    pub ip_commands_per_sec: f64,
    pub ip_command_burst: u32,
    /// Open connections allowed from one IP address (a town hall's office may share one).
    pub max_connections_per_ip: usize,
    /// Refused frames in a row after which a connection is closed as abusive.
    pub max_violations: u32,
    /// Seconds a new connection has to send `hello`.
    pub hello_timeout_secs: u64,
    /// Seconds without any frame from a client before it is considered gone.
    pub idle_timeout_secs: u64,
    /// Seconds a room with no connections stays loaded.
    pub room_idle_secs: u64,
    /// Commands a room decides and commits together at most.
    pub max_batch: usize,
    /// Milliseconds a room gathers the frames of several turns before waking the writers, so
    /// a connection gets them in one write. 0 wakes them at the end of each turn (one batch of
    /// commands, one tick): the frames of one turn always share a write.
    pub flush_ms: u64,
    /// How many people one client address may stand for (a town hall, library or school
    /// behind one NAT address): slow mode lets an address post this many times per interval,
    /// and it may have this many times a citizen's pending questions. 0 turns both off.
    pub people_per_address: u32,
    /// Questions, comments, votes (upvote or retract) and name changes per minute from one
    /// address in one meeting over all its participants; each is also the burst. 0: no limit.
    pub address_questions_per_min: u32,
    pub address_comments_per_min: u32,
    pub address_votes_per_min: u32,
    pub address_renames_per_min: u32,
    /// A banned participant's addresses cannot join that meeting as citizens with a new
    /// cookie (while the room stays loaded on the node). Off for meetings where many citizens
    /// share one address and a ban must not touch the others.
    pub ban_by_address: bool,
    /// Events in one meeting's log after which citizens' commands get `too_many_events`
    /// (staff keep a reserve of 10,000 to moderate and end the meeting).
    pub max_events_per_meeting: u64,
    /// Participants (anyone who did something) in one meeting after which new citizens'
    /// commands get `too_many_participants`.
    pub max_participants_per_meeting: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            tick_ms: 20,
            presence_ms: 1000,
            outbox_frames: 1024,
            history_frames: 8192,
            max_frame_bytes: 8 * 1024,
            commands_per_sec: 5.0,
            command_burst: 20,
            frames_per_sec: 20.0,
            frame_burst: 60,
            ip_commands_per_sec: 500.0,
            ip_command_burst: 1000,
            max_connections_per_ip: 5000,
            max_violations: 50,
            hello_timeout_secs: 10,
            idle_timeout_secs: 90,
            room_idle_secs: 60,
            max_batch: 2048,
            flush_ms: 0,
            people_per_address: 10,
            address_questions_per_min: 30,
            address_comments_per_min: 60,
            address_votes_per_min: 600,
            address_renames_per_min: 30,
            ban_by_address: true,
            max_events_per_meeting: 2_000_000,
            max_participants_per_meeting: 100_000,
        }
    }
}

impl HubConfig {
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_ms.max(1))
    }

    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_ms)
    }

    /// The meeting limits these settings change (the rest stay core's defaults).
    pub fn meeting_limits(&self) -> townhall_core::Limits {
        townhall_core::Limits {
            max_events: self.max_events_per_meeting,
            max_participants: self.max_participants_per_meeting,
            ..townhall_core::Limits::default()
        }
    }

    pub fn presence_interval(&self) -> Duration {
        Duration::from_millis(self.presence_ms.max(1))
    }

    /// Checks values that would make the hub misbehave; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("hub.outbox_frames", self.outbox_frames),
            ("hub.history_frames", self.history_frames),
            ("hub.max_frame_bytes", self.max_frame_bytes),
            ("hub.max_batch", self.max_batch),
            ("hub.max_connections_per_ip", self.max_connections_per_ip),
            (
                "hub.max_participants_per_meeting",
                self.max_participants_per_meeting,
            ),
            (
                "hub.max_events_per_meeting",
                self.max_events_per_meeting as usize,
            ),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        for (name, v) in [
            ("hub.commands_per_sec", self.commands_per_sec),
            ("hub.frames_per_sec", self.frames_per_sec),
            ("hub.ip_commands_per_sec", self.ip_commands_per_sec),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a positive number"));
            }
        }
        if self.flush_ms > 1000 {
            return Err("hub.flush_ms must be at most 1000".into());
        }
        Ok(())
    }
}
