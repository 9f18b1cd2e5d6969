//! The queue between a room and one session's writer.
//!
//! The room pushes frames without ever waiting; the writer takes them in batches. All of the
//! queue's state — frames, lagging, the resync request, the kick — lives under one lock, and
//! every change the writer must see is followed by a wake-up of the writer, so a wake-up can
//! not be lost between a check and a wait (the writer always checks under the lock before it
//! waits, and [`Notify::notify_one`] keeps a permit when nobody waits yet).
//!
//! Entries are typed: a reply to a command is never dropped when the session falls behind (it
//! is held back until after the resync snapshot, so an `ack` still arrives after its effect);
//! view updates are dropped, because the snapshot replaces them.

use axum::extract::ws::Utf8Bytes;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::{Notify, watch};

/// Why the server ends a connection: sent to the client as `bye`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kick {
    pub code: &'static str,
    pub message: String,
}

impl Kick {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// One frame for a session, by what happens to it when the session falls behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Part of the session's view of the meeting (events, tallies, presence); a resync
    /// snapshot replaces it.
    Update(Utf8Bytes),
    /// The answer to one of the session's commands (`ack` or `error`); never dropped.
    Reply(Utf8Bytes),
}

impl Outgoing {
    pub fn bytes(&self) -> &Utf8Bytes {
        match self {
            Outgoing::Update(b) | Outgoing::Reply(b) => b,
        }
    }
}

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// `wake`: the writer is owed a wake-up for it (the first frame since its last one).
    Queued { wake: bool },
    /// The queue overflowed with this push: queued updates were dropped and the session waits
    /// for a resync.
    NowLagging,
    /// The session is lagging (an update is dropped, a reply held back) or gone.
    Skipped,
    /// A lagging session held back more replies than allowed: it was kicked as too slow.
    Kicked,
}

/// What the writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Write the frames put into the batch.
    Write,
    /// Everything queued before the session fell behind has been handed over: ask the room for
    /// a resync (once).
    Resync,
    /// Say goodbye with this and close.
    Kicked(Kick),
    /// The room let the session go and everything queued has been handed over.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Outgoing>,
    /// Replies that arrived while lagging, sent after the resync snapshot.
    deferred: Vec<Utf8Bytes>,
    lagging: bool,
    resync_requested: bool,
    closed: bool,
    /// Frames were queued without waking the writer; the room wakes it at its next flush.
    wake_owed: bool,
}

/// Bounded frames for one session, shared by its room (pushes) and its writer (takes).
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    capacity: usize,
    /// Wakes the writer.
    wake: Notify,
    /// Ends the connection whatever is queued; the reader and the writer both watch it, so it
    /// works even while a write is blocked on a client that stopped reading.
    kick: watch::Sender<Option<Kick>>,
}

/// Replies held back for a lagging session: as many as its queue holds, but at least this many
/// (a small queue must not cut off a client at its second command). Past that it is kicked
/// rather than losing an answer: it keeps sending commands without reading their answers.
const MIN_DEFERRED: usize = 16;

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity: capacity.max(2),
            wake: Notify::new(),
            kick: watch::channel(None).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("outbox lock is never poisoned")
    }

    /// Queues a frame and wakes the writer (for frames outside a room's turn: a pong, a
    /// refusal). Never waits.
    pub fn push(&self, frame: Outgoing) -> Pushed {
        let pushed = self.push_later(frame);
        if let Pushed::Queued { wake: true } = pushed {
            self.wake();
        }
        pushed
    }

    /// Queues a frame without waking the writer, unless something it must react to at once
    /// happened (overflow, kick): `Queued { wake: true }` means a wake-up is owed, and the
    /// caller owes it — [`Outbox::wake`] at the end of its turn, so the frames of one turn (or
    /// one flush interval) leave in one write. Never waits.
    ///
    /// On overflow the session is marked lagging: queued updates are dropped, queued replies
    /// held back, and its writer is woken to ask for a resync once it has written what it
    /// already took.
    pub fn push_later(&self, frame: Outgoing) -> Pushed {
        let mut s = self.lock();
        if s.closed || self.kick.borrow().is_some() {
            return Pushed::Skipped;
        }
        if s.lagging {
            return match frame {
                Outgoing::Update(_) => Pushed::Skipped,
                Outgoing::Reply(bytes) => self.defer(s, bytes),
            };
        }
        if s.frames.len() < self.capacity {
            s.frames.push_back(frame);
            let wake = !s.wake_owed;
            s.wake_owed = true;
            return Pushed::Queued { wake };
        }
        s.lagging = true;
        s.resync_requested = false;
        let queued = std::mem::take(&mut s.frames);
        let mut replies: Vec<Utf8Bytes> = queued
            .into_iter()
            .filter_map(|f| match f {
                Outgoing::Reply(b) => Some(b),
                Outgoing::Update(_) => None,
            })
            .collect();
        if let Outgoing::Reply(b) = frame {
            replies.push(b);
        }
        s.deferred.extend(replies);
        let too_many = s.deferred.len() > self.max_deferred();
        drop(s);
        if too_many {
            self.kick(Kick::new(
                "too_slow",
                "your connection cannot keep up with the meeting",
            ));
            return Pushed::Kicked;
        }
        self.wake.notify_one();
        Pushed::NowLagging
    }

    /// Wakes the writer for the frames queued with [`Outbox::push_later`].
    pub fn wake(&self) {
        self.lock().wake_owed = false;
        self.wake.notify_one();
    }

    fn max_deferred(&self) -> usize {
        self.capacity.max(MIN_DEFERRED)
    }

    fn defer(&self, mut s: MutexGuard<'_, State>, reply: Utf8Bytes) -> Pushed {
        s.deferred.push(reply);
        let too_many = s.deferred.len() > self.max_deferred();
        drop(s);
        if too_many {
            self.kick(Kick::new(
                "too_slow",
                "your connection cannot keep up with the meeting",
            ));
            return Pushed::Kicked;
        }
        Pushed::Skipped
    }

    /// Whether the session waits for a resync.
    pub fn is_lagging(&self) -> bool {
        self.lock().lagging
    }

    /// Brings a lagging session back: queues `frames` (the resync notice and the snapshot),
    /// then the held-back replies, then `after` (presence). Bypasses the capacity: the caller
    /// bounds the snapshot's parts.
    pub fn resync(&self, frames: impl IntoIterator<Item = Utf8Bytes>, after: Utf8Bytes) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        s.lagging = false;
        s.resync_requested = false;
        s.frames.extend(frames.into_iter().map(Outgoing::Update));
        let deferred = std::mem::take(&mut s.deferred);
        s.frames.extend(deferred.into_iter().map(Outgoing::Reply));
        s.frames.push_back(Outgoing::Update(after));
        drop(s);
        self.wake.notify_one();
    }

    /// Ends the connection with `kick` (the first kick wins).
    pub fn kick(&self, kick: Kick) {
        self.kick.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(kick);
            true
        });
        self.wake.notify_one();
    }

    pub fn kicked(&self) -> Option<Kick> {
        self.kick.borrow().clone()
    }

    /// A receiver that changes when the session is kicked.
    pub fn watch_kick(&self) -> watch::Receiver<Option<Kick>> {
        self.kick.subscribe()
    }

    /// The room has let the session go: the writer ends once it has handed over the rest.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// Frames queued now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Without waiting: moves up to `max` queued frames into `batch`, or says what else to do;
    /// `None` when there is nothing to do yet.
    pub fn try_next(&self, batch: &mut Vec<Utf8Bytes>, max: usize) -> Option<Next> {
        if let Some(kick) = self.kicked() {
            return Some(Next::Kicked(kick));
        }
        let mut s = self.lock();
        s.wake_owed = false;
        if !s.frames.is_empty() {
            let n = s.frames.len().min(max.max(1));
            batch.extend(s.frames.drain(..n).map(|f| match f {
                Outgoing::Update(b) | Outgoing::Reply(b) => b,
            }));
            return Some(Next::Write);
        }
        if s.lagging && !s.resync_requested {
            s.resync_requested = true;
            return Some(Next::Resync);
        }
        if s.closed {
            return Some(Next::Closed);
        }
        None
    }

    /// Moves up to `max` queued frames into `batch` and nothing else; how many it moved.
    pub fn take_frames(&self, batch: &mut Vec<Utf8Bytes>, max: usize) -> usize {
        let mut s = self.lock();
        let n = s.frames.len().min(max);
        batch.extend(s.frames.drain(..n).map(|f| match f {
            Outgoing::Update(b) | Outgoing::Reply(b) => b,
        }));
        n
    }

    /// Waits until there is something for the writer to do.
    pub async fn next(&self, batch: &mut Vec<Utf8Bytes>, max: usize) -> Next {
        loop {
            if let Some(next) = self.try_next(batch, max) {
                return next;
            }
            // A push between the check and here left a permit: this returns at once.
            self.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Utf8Bytes {
        Utf8Bytes::from(s.to_owned())
    }

    fn take(o: &Outbox) -> (Option<Next>, Vec<String>) {
        let mut batch = Vec::new();
        let next = o.try_next(&mut batch, 100);
        (next, batch.iter().map(|b| b.as_str().to_owned()).collect())
    }

    #[test]
    fn frames_come_out_in_order() {
        let o = Outbox::new(4);
        assert_eq!(
            o.push(Outgoing::Update(b("1"))),
            Pushed::Queued { wake: true }
        );
        assert_eq!(
            o.push(Outgoing::Reply(b("2"))),
            Pushed::Queued { wake: true }
        );
        assert_eq!(take(&o), (Some(Next::Write), vec!["1".into(), "2".into()]));
        assert_eq!(take(&o), (None, vec![]));
    }

    #[test]
    fn overflow_drops_updates_keeps_replies_and_asks_for_one_resync() {
        let o = Outbox::new(4);
        o.push(Outgoing::Update(b("u1")));
        o.push(Outgoing::Reply(b("r1")));
        o.push(Outgoing::Update(b("u2")));
        o.push(Outgoing::Update(b("u3")));
        assert_eq!(o.push(Outgoing::Update(b("u4"))), Pushed::NowLagging);
        assert_eq!(o.push(Outgoing::Update(b("u5"))), Pushed::Skipped);
        assert_eq!(o.push(Outgoing::Reply(b("r2"))), Pushed::Skipped);
        assert_eq!(take(&o), (Some(Next::Resync), vec![]));
        assert_eq!(take(&o), (None, vec![]), "the resync is asked for once");
        o.resync([b("resync"), b("snapshot")], b("presence"));
        assert_eq!(
            take(&o),
            (
                Some(Next::Write),
                vec![
                    "resync".into(),
                    "snapshot".into(),
                    "r1".into(),
                    "r2".into(),
                    "presence".into()
                ]
            )
        );
        assert!(!o.is_lagging());
    }

    #[test]
    fn a_lagging_session_that_keeps_commanding_is_kicked_not_silently_unanswered() {
        let o = Outbox::new(16);
        for i in 0..17 {
            o.push(Outgoing::Update(b(&i.to_string())));
        }
        assert!(o.is_lagging());
        for r in 0..16 {
            assert_eq!(
                o.push(Outgoing::Reply(b(&format!("r{r}")))),
                Pushed::Skipped
            );
        }
        assert_eq!(o.push(Outgoing::Reply(b("r16"))), Pushed::Kicked);
        assert_eq!(o.kicked().unwrap().code, "too_slow");
        assert!(matches!(take(&o).0, Some(Next::Kicked(_))));
    }

    #[test]
    fn a_kick_wins_over_queued_frames_and_the_first_kick_stays() {
        let o = Outbox::new(4);
        o.push(Outgoing::Update(b("1")));
        o.kick(Kick::new("banned", "x"));
        o.kick(Kick::new("shutdown", "y"));
        assert_eq!(take(&o).0, Some(Next::Kicked(Kick::new("banned", "x"))));
        assert_eq!(o.push(Outgoing::Update(b("2"))), Pushed::Skipped);
    }

    #[test]
    fn closed_after_the_rest_is_written() {
        let o = Outbox::new(4);
        o.push(Outgoing::Update(b("1")));
        o.close();
        assert_eq!(take(&o).0, Some(Next::Write));
        assert_eq!(take(&o).0, Some(Next::Closed));
    }

    #[tokio::test(start_paused = true)]
    async fn frames_pushed_later_wait_for_the_wake_and_leave_together() {
        let o = std::sync::Arc::new(Outbox::new(16));
        assert_eq!(
            o.push_later(Outgoing::Update(b("1"))),
            Pushed::Queued { wake: true }
        );
        assert_eq!(
            o.push_later(Outgoing::Update(b("2"))),
            Pushed::Queued { wake: false }
        );
        let writer = {
            let o = o.clone();
            tokio::spawn(async move {
                let mut batch = Vec::new();
                let next = o.next(&mut batch, 64).await;
                (next, batch.len())
            })
        };
        // The writer may find them by itself; what it must never do is wait for a wake it is
        // owed. After the wake it has both, in one batch.
        o.wake();
        let (next, n) = writer.await.unwrap();
        assert_eq!((next, n), (Next::Write, 2));
        assert_eq!(
            o.push_later(Outgoing::Update(b("3"))),
            Pushed::Queued { wake: true }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_never_misses_a_push_from_another_thread() {
        // Pushes race the writer's check-then-wait from another thread; every frame arrives.
        for round in 0..200 {
            let o = std::sync::Arc::new(Outbox::new(1 << 16));
            let n = 500 + round;
            let pusher = {
                let o = o.clone();
                std::thread::spawn(move || {
                    for i in 0..n {
                        o.push(Outgoing::Update(b(&i.to_string())));
                        if i % 7 == 0 {
                            std::thread::yield_now();
                        }
                    }
                    o.close();
                })
            };
            let mut got = 0;
            let mut batch = Vec::new();
            loop {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(30),
                    o.next(&mut batch, 64),
                )
                .await
                .expect("the writer was not woken")
                {
                    Next::Write => {
                        got += batch.len();
                        batch.clear();
                    }
                    Next::Closed => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            pusher.join().unwrap();
            assert_eq!(got, n);
        }
    }
}
