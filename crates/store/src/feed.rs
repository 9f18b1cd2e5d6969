//! The feed of committed batches: how a node learns what other nodes appended to a meeting.
//!
//! An engine that several writers share publishes every committed batch with its offsets
//! ([`RedisLog`](crate::RedisLog): on the meeting's Redis channel, from the same Lua script that
//! appends; [`MemoryLog`](crate::MemoryLog): to the subscribers in the same process). A
//! [`Subscription`] receives them as [`FeedItem`]s.
//!
//! The feed is at-most-once: pub/sub drops what is published while a node is disconnected, and a
//! subscriber that does not keep up loses batches rather than slowing the others. It is made
//! exactly-once by the log: [`next_step`] says for each batch whether to apply it, drop it as a
//! duplicate, or first read a missing range from the log; and whenever batches may have been lost
//! without a later batch showing the gap (a reconnect, an overflow, the start of a subscription),
//! the feed sends [`FeedItem::CatchUp`]: read the log after the last applied offset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use tokio::sync::mpsc;
use townhall_core::{Event, MeetingId, Offset, Recorded};

/// How many items a subscription holds before it counts as lagging (and gets a `CatchUp`).
const SUBSCRIPTION_CAPACITY: usize = 1024;

/// The events one append committed: offsets `after + 1 ..= after + events.len()`, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedBatch {
    /// The offset the log was at before this batch.
    pub after: Offset,
    /// Each with its offset: `events[i].offset == after + 1 + i`.
    pub events: Vec<Recorded>,
}

impl CommittedBatch {
    /// Numbers `events` from `after + 1`.
    pub fn new(after: Offset, events: Vec<Event>) -> Self {
        let events = (after + 1..)
            .zip(events)
            .map(|(offset, event)| Recorded { offset, event })
            .collect();
        Self { after, events }
    }

    /// The offset of the last event (`after` for an empty batch).
    pub fn last(&self) -> Offset {
        self.events.last().map_or(self.after, |r| r.offset)
    }
}

/// What a subscription receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedItem {
    /// A batch committed by some writer (possibly this node: its own appends come back too).
    Committed(CommittedBatch),
    /// Batches may have been lost before this point (the subscription just became live, the
    /// connection was re-established, or this subscriber fell behind): read the log after the
    /// last applied offset.
    CatchUp,
}

/// What to do with a published batch, given the offset applied so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Apply `batch.events[skip..]`: they follow the applied offset directly. `skip` is non-zero
    /// when the start of the batch was already applied (read from the log in other pages).
    Apply { skip: usize },
    /// Every event of the batch is applied already: the node's own append coming back, or a
    /// batch it read from the log while filling a gap.
    Duplicate,
    /// Offsets `after + 1 ..= through` were published but not received: read them from the log
    /// (`EventLog::read(meeting, after, ..)` until `through`), apply them, then take this step
    /// again for the batch (which is then `Apply { skip: 0 }`).
    Fill { after: Offset, through: Offset },
}

/// The pure decision for one published batch: apply, drop as duplicate, or fill a gap first.
pub fn next_step(applied: Offset, batch: &CommittedBatch) -> Step {
    if batch.last() <= applied {
        Step::Duplicate
    } else if batch.after > applied {
        Step::Fill {
            after: applied,
            through: batch.after,
        }
    } else {
        let skip = usize::try_from(applied - batch.after)
            .expect("the skipped part is shorter than the batch, whose length is a usize");
        Step::Apply { skip }
    }
}

/// A live subscription to one meeting's committed batches. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    meeting: MeetingId,
    id: u64,
    rx: mpsc::Receiver<FeedItem>,
    registry: Weak<Registry>,
}

impl Subscription {
    pub fn meeting(&self) -> &MeetingId {
        &self.meeting
    }

    /// The next item; `None` once the log that fed it is gone.
    pub async fn recv(&mut self) -> Option<FeedItem> {
        self.rx.recv().await
    }

    /// The next item if one is waiting (for a caller that polls, like a sans-IO room).
    pub fn try_recv(&mut self) -> Option<FeedItem> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.remove(&self.meeting, self.id);
        }
    }
}

/// The subscribers of one process, by meeting: the part of a feed every engine shares. The
/// engine's transport (Redis pub/sub) tells it which meetings are live and hands it batches.
#[derive(Debug)]
pub(crate) struct Registry {
    topics: Mutex<HashMap<MeetingId, Topic>>,
    next_id: AtomicU64,
    /// Told the meeting whenever it gains its first or loses its last subscriber, so the
    /// transport can subscribe or unsubscribe. `None`: there is no transport, every meeting is
    /// live at once (the in-process feed).
    changes: Option<mpsc::UnboundedSender<MeetingId>>,
}

#[derive(Debug)]
struct Topic {
    /// Whether published batches reach this process now (the transport is subscribed).
    live: bool,
    subs: Vec<Subscriber>,
}

#[derive(Debug)]
struct Subscriber {
    id: u64,
    tx: mpsc::Sender<FeedItem>,
    /// An item could not be queued: a `CatchUp` is owed.
    missed: bool,
}

impl Subscriber {
    /// Queues `item`, first the `CatchUp` owed if any; marks the subscriber as missing items when
    /// its queue is full.
    fn offer(&mut self, item: FeedItem) {
        if self.missed && self.tx.try_send(FeedItem::CatchUp).is_ok() {
            self.missed = false;
        }
        if self.missed {
            return;
        }
        if self.tx.try_send(item).is_err() {
            self.missed = true;
        }
    }
}

impl Registry {
    /// A registry whose meetings are live at once, with no transport to tell.
    pub(crate) fn local() -> Arc<Self> {
        Arc::new(Self::new(None))
    }

    /// A registry that tells `changes` when a meeting needs subscribing or unsubscribing.
    pub(crate) fn with_transport(changes: mpsc::UnboundedSender<MeetingId>) -> Arc<Self> {
        Arc::new(Self::new(Some(changes)))
    }

    fn new(changes: Option<mpsc::UnboundedSender<MeetingId>>) -> Self {
        Self {
            topics: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            changes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<MeetingId, Topic>> {
        // Every change is a single insert or remove, never left half done by a panic.
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn subscribe(self: &Arc<Self>, meeting: &MeetingId) -> Subscription {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut sub = Subscriber {
            id,
            tx,
            missed: false,
        };
        let mut topics = self.lock();
        let topic = topics.entry(meeting.clone()).or_insert_with(|| {
            if let Some(changes) = &self.changes {
                // The transport task ends only when the registry is dropped.
                let _ = changes.send(meeting.clone());
            }
            Topic {
                live: self.changes.is_none(),
                subs: Vec::new(),
            }
        });
        if topic.live {
            sub.offer(FeedItem::CatchUp);
        }
        topic.subs.push(sub);
        Subscription {
            meeting: meeting.clone(),
            id,
            rx,
            registry: Arc::downgrade(self),
        }
    }

    fn remove(&self, meeting: &MeetingId, id: u64) {
        let mut topics = self.lock();
        let Some(topic) = topics.get_mut(meeting) else {
            return;
        };
        topic.subs.retain(|s| s.id != id);
        if topic.subs.is_empty() {
            topics.remove(meeting);
            if let Some(changes) = &self.changes {
                let _ = changes.send(meeting.clone());
            }
        }
    }

    /// Whether anyone in this process subscribes to `meeting`.
    pub(crate) fn wanted(&self, meeting: &MeetingId) -> bool {
        self.lock().contains_key(meeting)
    }

    /// Every meeting someone subscribes to.
    pub(crate) fn wanted_all(&self) -> Vec<MeetingId> {
        self.lock().keys().cloned().collect()
    }

    /// The transport is now subscribed to `meeting`: from here on nothing published is lost
    /// without notice, so every subscriber catches up once from the log.
    pub(crate) fn set_live(&self, meeting: &MeetingId) {
        if let Some(topic) = self.lock().get_mut(meeting) {
            topic.live = true;
            for sub in &mut topic.subs {
                sub.offer(FeedItem::CatchUp);
            }
        }
    }

    /// The transport lost its connection: nothing is live until it is back.
    pub(crate) fn set_all_down(&self) {
        for topic in self.lock().values_mut() {
            topic.live = false;
        }
    }

    pub(crate) fn publish(&self, meeting: &MeetingId, batch: &CommittedBatch) {
        if let Some(topic) = self.lock().get_mut(meeting) {
            for sub in &mut topic.subs {
                sub.offer(FeedItem::Committed(batch.clone()));
            }
        }
    }

    /// Tells `meeting`'s subscribers that a batch was lost (e.g. it could not be decoded).
    pub(crate) fn lost(&self, meeting: &MeetingId) {
        if let Some(topic) = self.lock().get_mut(meeting) {
            for sub in &mut topic.subs {
                sub.offer(FeedItem::CatchUp);
            }
        }
    }

    /// Delivers the `CatchUp`s owed to subscribers whose queue was full.
    pub(crate) fn flush_missed(&self) {
        for topic in self.lock().values_mut() {
            for sub in topic.subs.iter_mut().filter(|s| s.missed) {
                if sub.tx.try_send(FeedItem::CatchUp).is_ok() {
                    sub.missed = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use townhall_core::event::CommentHidden;
    use townhall_core::{CommentId, EventKind, ParticipantId, Timestamp};

    fn event(n: u64) -> Event {
        Event {
            at: Timestamp(n),
            by: ParticipantId::parse("p").expect("valid id"),
            kind: EventKind::CommentHidden(CommentHidden {
                comment: CommentId(n),
            }),
        }
    }

    fn batch(after: Offset, len: u64) -> CommittedBatch {
        CommittedBatch::new(after, (after + 1..=after + len).map(event).collect())
    }

    #[test]
    fn batches_are_numbered_from_after() {
        let b = batch(4, 3);
        assert_eq!(
            b.events.iter().map(|r| r.offset).collect::<Vec<_>>(),
            [5, 6, 7]
        );
        assert_eq!(b.last(), 7);
        assert_eq!(batch(4, 0).last(), 4);
    }

    #[test]
    fn each_case_of_next_step() {
        // Right after what is applied.
        assert_eq!(next_step(4, &batch(4, 3)), Step::Apply { skip: 0 });
        // Already applied, entirely: the node's own append, or read while filling a gap.
        assert_eq!(next_step(7, &batch(4, 3)), Step::Duplicate);
        assert_eq!(next_step(9, &batch(4, 3)), Step::Duplicate);
        // Partly applied: the log was read in pages that ended inside this batch.
        assert_eq!(next_step(5, &batch(4, 3)), Step::Apply { skip: 1 });
        assert_eq!(next_step(6, &batch(4, 3)), Step::Apply { skip: 2 });
        // A gap: 5 and 6 were published but not received.
        assert_eq!(
            next_step(4, &batch(6, 2)),
            Step::Fill {
                after: 4,
                through: 6
            }
        );
        // An empty batch changes nothing.
        assert_eq!(next_step(4, &batch(4, 0)), Step::Duplicate);
        assert_eq!(next_step(0, &batch(0, 1)), Step::Apply { skip: 0 });
    }

    /// A follower as a room would run it: `next_step` for each delivered batch, reading the log
    /// on `Fill` and on `CatchUp`.
    fn follow(log: &[Event], delivered: &[FeedItem]) -> Vec<Recorded> {
        let read = |after: Offset, through: Offset| -> Vec<Recorded> {
            (after + 1..=through)
                .map(|offset| Recorded {
                    offset,
                    event: log[usize::try_from(offset - 1).expect("small")].clone(),
                })
                .collect()
        };
        let mut applied: Vec<Recorded> = Vec::new();
        let at = |applied: &Vec<Recorded>| applied.last().map_or(0, |r| r.offset);
        for item in delivered {
            match item {
                FeedItem::CatchUp => {
                    let from = at(&applied);
                    applied.extend(read(from, log.len() as Offset));
                }
                FeedItem::Committed(batch) => loop {
                    match next_step(at(&applied), batch) {
                        Step::Apply { skip } => {
                            applied.extend(batch.events[skip..].iter().cloned());
                            break;
                        }
                        Step::Duplicate => break,
                        Step::Fill { after, through } => {
                            assert_eq!(after, at(&applied), "a fill starts at the applied offset");
                            applied.extend(read(after, through));
                        }
                    }
                },
            }
        }
        applied
    }

    proptest! {
        /// Whatever the feed loses or repeats, a follower applies each offset exactly once, in
        /// order, and ends at the log's end as long as the last batch or a `CatchUp` came through.
        #[test]
        fn a_follower_applies_every_offset_once(
            sizes in prop::collection::vec(1u64..5, 1..30),
            fate in prop::collection::vec(0u8..6, 30),
            catch_up_at_end in any::<bool>(),
        ) {
            let mut batches = Vec::new();
            let mut after = 0;
            for len in &sizes {
                batches.push(batch(after, *len));
                after += len;
            }
            let log: Vec<Event> = batches.iter().flat_map(|b| b.events.iter().map(|r| r.event.clone())).collect();
            // Each batch is lost (0), delivered twice (1), delivered after a CatchUp (2), or
            // delivered once (otherwise).
            let mut delivered = Vec::new();
            for (b, f) in batches.iter().zip(&fate) {
                match f {
                    0 => {}
                    1 => {
                        delivered.push(FeedItem::Committed(b.clone()));
                        delivered.push(FeedItem::Committed(b.clone()));
                    }
                    2 => {
                        delivered.push(FeedItem::CatchUp);
                        delivered.push(FeedItem::Committed(b.clone()));
                    }
                    _ => delivered.push(FeedItem::Committed(b.clone())),
                }
            }
            let last_delivered = fate.get(batches.len() - 1).is_some_and(|f| *f != 0);
            if catch_up_at_end {
                delivered.push(FeedItem::CatchUp);
            }
            let applied = follow(&log, &delivered);
            let offsets: Vec<Offset> = applied.iter().map(|r| r.offset).collect();
            let expected: Vec<Offset> = (1..=offsets.len() as Offset).collect();
            prop_assert_eq!(&offsets, &expected, "each offset once, in order");
            for r in &applied {
                prop_assert_eq!(&r.event, &log[(r.offset - 1) as usize]);
            }
            if catch_up_at_end || last_delivered {
                prop_assert_eq!(offsets.len(), log.len(), "the follower reached the end");
            }
        }
    }

    #[tokio::test]
    async fn a_local_subscription_catches_up_first_then_gets_batches() {
        let registry = Registry::local();
        let m = MeetingId::parse("m").expect("valid id");
        let mut sub = registry.subscribe(&m);
        registry.publish(&m, &batch(0, 2));
        registry.publish(&MeetingId::parse("other").expect("valid id"), &batch(0, 1));
        assert_eq!(sub.try_recv(), Some(FeedItem::CatchUp));
        assert_eq!(sub.try_recv(), Some(FeedItem::Committed(batch(0, 2))));
        assert_eq!(sub.try_recv(), None);
        assert!(registry.wanted(&m));
        drop(sub);
        assert!(
            !registry.wanted(&m),
            "dropping the last subscription unsubscribes"
        );
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_to_catch_up() {
        let registry = Registry::local();
        let m = MeetingId::parse("m").expect("valid id");
        let mut sub = registry.subscribe(&m);
        for i in 0..SUBSCRIPTION_CAPACITY as u64 + 10 {
            registry.publish(&m, &batch(i, 1));
        }
        // The queue holds the initial CatchUp and what fitted after it; the rest was dropped,
        // owing a CatchUp.
        assert_eq!(sub.try_recv(), Some(FeedItem::CatchUp));
        let mut received = 0;
        while let Some(item) = sub.try_recv() {
            assert!(matches!(item, FeedItem::Committed(_)), "{item:?}");
            received += 1;
        }
        assert_eq!(received, SUBSCRIPTION_CAPACITY - 1);
        registry.flush_missed();
        assert_eq!(sub.try_recv(), Some(FeedItem::CatchUp));
        assert_eq!(sub.try_recv(), None);
    }

    #[tokio::test]
    async fn a_transport_is_told_of_first_and_last_subscribers_and_goes_live() {
        let (tx, mut changes) = mpsc::unbounded_channel();
        let registry = Registry::with_transport(tx);
        let m = MeetingId::parse("m").expect("valid id");
        let mut a = registry.subscribe(&m);
        let mut b = registry.subscribe(&m);
        assert_eq!(changes.try_recv().ok(), Some(m.clone()));
        assert!(
            changes.try_recv().is_err(),
            "only the first subscriber is news"
        );
        assert_eq!(a.try_recv(), None, "not live yet: no CatchUp");
        registry.set_live(&m);
        assert_eq!(a.try_recv(), Some(FeedItem::CatchUp));
        assert_eq!(b.try_recv(), Some(FeedItem::CatchUp));
        registry.set_all_down();
        registry.set_live(&m);
        assert_eq!(a.try_recv(), Some(FeedItem::CatchUp), "after a reconnect");
        drop(a);
        assert!(changes.try_recv().is_err());
        drop(b);
        assert_eq!(changes.try_recv().ok(), Some(m.clone()));
        assert!(registry.wanted_all().is_empty());
    }
}
