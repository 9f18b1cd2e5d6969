//! What one connection accepts from its client: the session's decisions, without I/O.
//!
//! Every frame the client sends — text, binary, WebSocket ping or pong — passes through
//! [`Inbound::on_frame`] with the time it arrived, and comes out as a [`Verdict`]: join with a
//! `hello`, pass a command to the room, answer, ignore, or close. Frames of every kind count
//! against one budget, so a client cannot make the server work for free (a ping flood is
//! refused like any other flood). A connection has one deadline for its whole handshake,
//! which no frame moves, and after joining an idle deadline that every frame moves.

use crate::outbox::Kick;
use crate::{HubConfig, TokenBucket};
use std::time::Duration;
use tokio::time::Instant;
use townhall_core::wire::{ClientMessage, ServerMessage};
use townhall_core::{Command, MeetingId, Offset};

/// A frame as the client sent it.
#[derive(Clone, Copy, Debug)]
pub enum Incoming<'a> {
    Text(&'a str),
    Binary,
    /// A WebSocket ping or pong (the WebSocket layer answers pings itself).
    Control,
}

/// The `hello` a connection joins with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub meeting: MeetingId,
    pub since: Option<Offset>,
    pub token: Option<String>,
    pub session: Option<String>,
}

/// What to do with one client frame.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Join(Hello),
    /// Pass on to the room (after the address's shared budget allowed it).
    Command {
        reference: u64,
        command: Command,
    },
    /// Answer with this frame.
    Reply(ServerMessage),
    Ignore,
    /// Say why and close.
    Close(Kick),
}

/// Why a frame was refused.
struct Refusal {
    code: &'static str,
    message: String,
    retry: Option<Duration>,
    reference: Option<u64>,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry: None,
            reference: None,
        }
    }

    fn retry_after(mut self, wait: Duration) -> Self {
        self.retry = Some(wait);
        self
    }

    fn for_ref(mut self, reference: Option<u64>) -> Self {
        self.reference = reference;
        self
    }

    fn into_frame(self) -> ServerMessage {
        ServerMessage::Error {
            reference: self.reference,
            code: self.code.into(),
            message: self.message,
            retry_after_ms: self.retry.map(|d| d.as_millis() as u64 + 1),
        }
    }
}

/// The checks one connection applies to its client's frames.
#[derive(Debug)]
pub struct Inbound {
    max_frame_bytes: usize,
    max_violations: u32,
    idle: Duration,
    frames: TokenBucket,
    commands: TokenBucket,
    /// Refused frames in a row.
    violations: u32,
    joined: bool,
    /// Until `hello`: the one deadline of the handshake. After: moved by every frame.
    deadline: Instant,
}

fn malformed(e: &serde_json::Error) -> String {
    let mut s = format!("malformed frame: {e}");
    s.truncate(300);
    s
}

impl Inbound {
    pub fn new(config: &HubConfig, now: Instant) -> Self {
        Self {
            max_frame_bytes: config.max_frame_bytes,
            max_violations: config.max_violations.max(1),
            idle: Duration::from_secs(config.idle_timeout_secs),
            frames: TokenBucket::new(config.frames_per_sec, config.frame_burst, now),
            commands: TokenBucket::new(config.commands_per_sec, config.command_burst, now),
            violations: 0,
            joined: false,
            deadline: now + Duration::from_secs(config.hello_timeout_secs),
        }
    }

    /// When the connection must be closed unless something happens first.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The deadline passed: why the connection ends.
    pub fn on_deadline(&self) -> Kick {
        if self.joined {
            Kick::new("idle", "no frames for too long")
        } else {
            Kick::new("not_joined", "send hello first")
        }
    }

    /// The room took the `hello`: from now on the idle deadline applies.
    pub fn joined(&mut self, now: Instant) {
        self.joined = true;
        self.deadline = now + self.idle;
    }

    /// Decides about one client frame. `ip_budget` takes a command from the client address's
    /// shared budget (or says how long to wait).
    pub fn on_frame(
        &mut self,
        frame: Incoming<'_>,
        now: Instant,
        ip_budget: impl FnOnce() -> Result<(), Duration>,
    ) -> Verdict {
        if self.joined {
            self.deadline = now + self.idle;
        }
        match self.check(frame, now, ip_budget) {
            Ok(verdict) => {
                if !matches!(verdict, Verdict::Ignore) {
                    self.violations = 0;
                }
                verdict
            }
            Err(refusal) if !self.joined => {
                Verdict::Close(Kick::new(refusal.code, refusal.message))
            }
            Err(refusal) => {
                self.violations += 1;
                if self.violations >= self.max_violations {
                    return Verdict::Close(Kick::new(
                        "protocol_violation",
                        "too many refused frames in a row",
                    ));
                }
                Verdict::Reply(refusal.into_frame())
            }
        }
    }

    fn check(
        &mut self,
        frame: Incoming<'_>,
        now: Instant,
        ip_budget: impl FnOnce() -> Result<(), Duration>,
    ) -> Result<Verdict, Refusal> {
        let text = match frame {
            Incoming::Control => {
                // Pings cost the server a pong: they spend the frame budget like any frame.
                self.frames.try_take(now).map_err(|wait| {
                    Refusal::new("rate_limited", "too many frames; slow down").retry_after(wait)
                })?;
                return Ok(Verdict::Ignore);
            }
            Incoming::Binary => {
                return Err(Refusal::new("malformed", "binary frames are not supported"));
            }
            Incoming::Text(text) => text,
        };
        if text.len() > self.max_frame_bytes {
            return Err(Refusal::new(
                "frame_too_large",
                format!("frames are limited to {} bytes", self.max_frame_bytes),
            ));
        }
        // Parsed before rate limiting, so a refused command still names its `ref`.
        let msg: ClientMessage =
            serde_json::from_str(text).map_err(|e| Refusal::new("malformed", malformed(&e)))?;
        let reference = match &msg {
            ClientMessage::Cmd { reference, .. } => Some(*reference),
            _ => None,
        };
        self.frames.try_take(now).map_err(|wait| {
            Refusal::new("rate_limited", "too many frames; slow down")
                .retry_after(wait)
                .for_ref(reference)
        })?;
        match (msg, self.joined) {
            (
                ClientMessage::Hello {
                    meeting,
                    since,
                    token,
                    session,
                },
                false,
            ) => Ok(Verdict::Join(Hello {
                meeting,
                since,
                token,
                session,
            })),
            (ClientMessage::Hello { .. }, true) => Err(Refusal::new(
                "already_joined",
                "this connection has already joined",
            )),
            (_, false) => Err(Refusal::new("not_joined", "send hello first")),
            (ClientMessage::Ping {}, true) => Ok(Verdict::Reply(ServerMessage::Pong)),
            (ClientMessage::Cmd { reference, cmd }, true) => {
                let limited = |wait| {
                    Refusal::new("rate_limited", "too many commands; slow down")
                        .retry_after(wait)
                        .for_ref(Some(reference))
                };
                self.commands.try_take(now).map_err(limited)?;
                ip_budget().map_err(limited)?;
                Ok(Verdict::Command {
                    reference,
                    command: cmd,
                })
            }
        }
    }

    /// The room's channel was full: the command is refused, retryable.
    pub fn overloaded(&mut self, reference: u64) -> Verdict {
        Verdict::Reply(
            Refusal::new("overloaded", "the meeting is very busy; try again")
                .retry_after(Duration::from_secs(1))
                .for_ref(Some(reference))
                .into_frame(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HubConfig {
        HubConfig {
            frames_per_sec: 2.0,
            frame_burst: 3,
            commands_per_sec: 1.0,
            command_burst: 2,
            max_violations: 4,
            hello_timeout_secs: 10,
            idle_timeout_secs: 90,
            ..HubConfig::default()
        }
    }

    const HELLO: &str = r#"{"t":"hello","meeting":"abcdefghij"}"#;
    const CMD: &str = r#"{"t":"cmd","ref":1,"cmd":{"type":"post_comment","text":"hej"}}"#;

    fn ok() -> Result<(), Duration> {
        Ok(())
    }

    fn code(v: &Verdict) -> Option<&str> {
        match v {
            Verdict::Reply(ServerMessage::Error { code, .. }) => Some(code),
            Verdict::Close(k) => Some(k.code),
            _ => None,
        }
    }

    #[test]
    fn pings_never_move_the_handshake_deadline_and_spend_the_budget() {
        let t0 = Instant::now();
        let mut i = Inbound::new(&config(), t0);
        let deadline = i.deadline();
        for s in 0..3 {
            let v = i.on_frame(Incoming::Control, t0 + Duration::from_secs(s), ok);
            assert_eq!(v, Verdict::Ignore);
        }
        assert_eq!(i.deadline(), deadline, "pings do not extend the handshake");
        assert_eq!(i.on_deadline().code, "not_joined");
        // A ping flood before hello: the budget runs out and the connection closes.
        let flood = (0..10)
            .map(|_| i.on_frame(Incoming::Control, t0 + Duration::from_secs(3), ok))
            .find(|v| matches!(v, Verdict::Close(_)));
        assert_eq!(code(&flood.unwrap()), Some("rate_limited"));
    }

    #[test]
    fn a_joined_ping_flood_is_closed_as_a_violation() {
        let t0 = Instant::now();
        let mut i = Inbound::new(&config(), t0);
        assert!(matches!(
            i.on_frame(Incoming::Text(HELLO), t0, ok),
            Verdict::Join(_)
        ));
        i.joined(t0);
        let verdicts: Vec<Verdict> = (0..10)
            .map(|_| i.on_frame(Incoming::Control, t0, ok))
            .collect();
        assert!(
            verdicts
                .iter()
                .any(|v| code(v) == Some("protocol_violation")),
            "{verdicts:?}"
        );
    }

    #[test]
    fn only_hello_before_joining_and_no_second_hello() {
        let t0 = Instant::now();
        let mut i = Inbound::new(&config(), t0);
        assert_eq!(
            code(&i.on_frame(Incoming::Text(CMD), t0, ok)),
            Some("not_joined")
        );
        let mut i = Inbound::new(&config(), t0);
        assert!(matches!(
            i.on_frame(Incoming::Text(HELLO), t0, ok),
            Verdict::Join(_)
        ));
        i.joined(t0);
        assert_eq!(
            code(&i.on_frame(Incoming::Text(HELLO), t0, ok)),
            Some("already_joined")
        );
    }

    #[test]
    fn commands_spend_their_own_budget_and_the_address_budget() {
        let t0 = Instant::now();
        let mut i = Inbound::new(&config(), t0);
        i.on_frame(Incoming::Text(HELLO), t0, ok);
        i.joined(t0);
        let t1 = t0 + Duration::from_secs(5);
        assert!(matches!(
            i.on_frame(Incoming::Text(CMD), t1, ok),
            Verdict::Command { .. }
        ));
        let v = i.on_frame(Incoming::Text(CMD), t1, || Err(Duration::from_millis(300)));
        match v {
            Verdict::Reply(ServerMessage::Error {
                code,
                reference,
                retry_after_ms,
                ..
            }) => {
                assert_eq!(code, "rate_limited");
                assert_eq!(reference, Some(1));
                assert!(retry_after_ms.unwrap() >= 300);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_idle_deadline_moves_with_every_frame_after_joining() {
        let t0 = Instant::now();
        let mut i = Inbound::new(&config(), t0);
        i.on_frame(Incoming::Text(HELLO), t0, ok);
        i.joined(t0);
        assert_eq!(i.deadline(), t0 + Duration::from_secs(90));
        let t1 = t0 + Duration::from_secs(60);
        i.on_frame(Incoming::Text(r#"{"t":"ping"}"#), t1, ok);
        assert_eq!(i.deadline(), t1 + Duration::from_secs(90));
        assert_eq!(i.on_deadline().code, "idle");
    }

    #[test]
    fn refusals_in_a_row_close_and_an_accepted_frame_resets_the_count() {
        let t0 = Instant::now();
        let mut i = Inbound::new(&config(), t0);
        i.on_frame(Incoming::Text(HELLO), t0, ok);
        i.joined(t0);
        for n in 0..3 {
            let t = t0 + Duration::from_secs(10 + n);
            assert_eq!(
                code(&i.on_frame(Incoming::Binary, t, ok)),
                Some("malformed")
            );
        }
        let t = t0 + Duration::from_secs(20);
        assert_eq!(
            i.on_frame(Incoming::Text(r#"{"t":"ping"}"#), t, ok),
            Verdict::Reply(ServerMessage::Pong)
        );
        for n in 0..3 {
            let t = t0 + Duration::from_secs(30 + n);
            assert_eq!(
                code(&i.on_frame(Incoming::Binary, t, ok)),
                Some("malformed")
            );
        }
        let t = t0 + Duration::from_secs(40);
        assert_eq!(
            code(&i.on_frame(Incoming::Binary, t, ok)),
            Some("protocol_violation")
        );
    }
}
