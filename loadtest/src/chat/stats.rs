//! Live counters shared by every simulated connection: latency histograms (sharded so 10,000
//! tasks on two threads rarely wait on one lock), delivery and error counts, and the tables
//! that map what a client receives back to when the command was sent.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock};
use tokio::time::Instant;

const SHARDS: usize = 32;
/// Latencies are recorded in microseconds, up to 10 minutes, 3 significant digits.
const MAX_US: u64 = 600_000_000;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static bounds are valid")
}

/// Send instants (ns since the run's epoch) by slot; 0 means unknown. Fixed size: a slot
/// past the end is simply not timed (counted in `untimed`).
#[derive(Debug)]
pub struct Slots(Box<[AtomicU64]>);

impl Slots {
    pub fn new(len: usize) -> Self {
        Self((0..len).map(|_| AtomicU64::new(0)).collect())
    }
    pub fn set(&self, i: u64, ns: u64) {
        if let Some(s) = self.0.get(i as usize) {
            s.store(ns.max(1), Relaxed);
        }
    }
    pub fn get(&self, i: u64) -> Option<u64> {
        let v = self.0.get(i as usize)?.load(Relaxed);
        (v != 0).then_some(v)
    }
}

/// What a latency sample measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// An event every client receives: a comment, an approved question (a Socket.IO message).
    Event,
    /// A vote, reaching clients in the next coalesced `votes` tally (every 20 ms tick).
    Tally,
}

/// One lock's worth of measurements: taken once per received frame.
#[derive(Debug)]
pub struct Shard {
    window: Histogram<u64>,
    by_sample: [Histogram<u64>; 2],
    deliveries: u64,
}

impl Shard {
    /// Counts one received meeting update.
    pub fn delivery(&mut self) {
        self.deliveries += 1;
    }

    /// Records the latency of one delivery sent at `sent_ns` and received at `now_ns`.
    pub fn record(&mut self, sample: Sample, sent_ns: u64, now_ns: u64) {
        let us = (now_ns.saturating_sub(sent_ns) / 1000).clamp(1, MAX_US);
        self.window.saturating_record(us);
        self.by_sample[sample as usize].saturating_record(us);
    }
}

/// Everything the connections report into while the run goes on.
#[derive(Debug)]
pub struct Stats {
    epoch: Instant,
    shards: Vec<Mutex<Shard>>,
    pub untimed: AtomicU64,
    pub connected: AtomicU64,
    /// Slow clients that joined (they are not in `connected`).
    pub slow_joined: AtomicU64,
    /// Connections the server refused for good (bad token, no meeting, banned).
    pub gave_up: AtomicU64,
    pub reconnects: AtomicU64,
    pub resyncs: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub dropped_orders: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    /// By marker sequence number: when the command that makes the marked event was sent.
    pub by_seq: Slots,
    /// By log offset (relative to `origin`): when a vote with that offset was sent.
    pub votes_by_offset: Slots,
    /// The meeting's offset when the run started; vote offsets are stored relative to it.
    pub origin: OnceLock<u64>,
    /// Offsets of acknowledged events that every connection must receive.
    pub broadcast: Mutex<Vec<u64>>,
    /// Questions citizens can vote on (acknowledged approvals).
    pub approved: RwLock<Vec<u64>>,
}

impl Stats {
    pub fn new(slots: usize) -> Self {
        Self {
            epoch: Instant::now(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        window: histogram(),
                        by_sample: [histogram(), histogram()],
                        deliveries: 0,
                    })
                })
                .collect(),
            untimed: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            slow_joined: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            dropped_orders: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            by_seq: Slots::new(slots),
            votes_by_offset: Slots::new(slots),
            origin: OnceLock::new(),
            broadcast: Mutex::new(Vec::new()),
            approved: RwLock::new(Vec::new()),
        }
    }

    /// Nanoseconds since the run's epoch (never 0, so 0 can mean "unknown").
    pub fn now_ns(&self) -> u64 {
        (self.epoch.elapsed().as_nanos() as u64).max(1)
    }

    /// The shard connection `id` reports into (sharded so 10,000 connections on a few
    /// threads rarely wait, and one lock per frame covers counting and timing).
    pub fn shard(&self, id: usize) -> MutexGuard<'_, Shard> {
        self.shards[id % SHARDS].lock().unwrap()
    }

    /// Moves the latencies recorded since the last call into one histogram.
    pub fn take_window(&self) -> Histogram<u64> {
        let mut out = histogram();
        for shard in &self.shards {
            let mut s = shard.lock().unwrap();
            out.add(&s.window).expect("same bounds");
            s.window.reset();
        }
        out
    }

    /// Every latency recorded of one kind, since the start.
    pub fn total(&self, sample: Sample) -> Histogram<u64> {
        let mut out = histogram();
        for shard in &self.shards {
            out.add(&shard.lock().unwrap().by_sample[sample as usize])
                .expect("same bounds");
        }
        out
    }

    /// Meeting updates received so far, by every connection.
    pub fn deliveries(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap().deliveries)
            .sum()
    }

    pub fn error(&self, code: &str) {
        *self
            .errors
            .lock()
            .unwrap()
            .entry(code.to_owned())
            .or_default() += 1;
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().unwrap().clone()
    }

    /// Slot of a vote's offset in `votes_by_offset`.
    pub fn vote_slot(&self, offset: u64) -> Option<u64> {
        offset.checked_sub(*self.origin.get()?)
    }
}

/// What one connection saw of the broadcast events, to count misses at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tracker {
    /// The offset the connection's view started from (its last snapshot or join).
    pub base: u64,
    /// The highest event offset received.
    pub last: u64,
    /// Broadcast events received with an offset above `base`.
    pub received: u64,
    /// Events whose offset was not above the previous one (protocol order violated).
    pub out_of_order: u64,
}

impl Tracker {
    /// A fresh view at `offset` (join, or snapshot after a resync): count from there.
    pub fn reset(&mut self, offset: u64) {
        self.base = offset;
        self.last = offset;
        self.received = 0;
    }

    pub fn event(&mut self, offset: u64, broadcast: bool) {
        if offset <= self.last {
            self.out_of_order += 1;
            return;
        }
        self.last = offset;
        if broadcast {
            self.received += 1;
        }
    }

    /// Broadcast events in `(base, end]` that this connection did not receive; `sorted` holds
    /// every broadcast offset of the run, ascending.
    pub fn missed(&self, sorted: &[u64], end: u64) -> u64 {
        let lo = sorted.partition_point(|&o| o <= self.base);
        let hi = sorted.partition_point(|&o| o <= end);
        (hi.saturating_sub(lo) as u64).saturating_sub(self.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_what_is_missing_after_its_base() {
        let all = [3, 5, 8, 13];
        let mut t = Tracker::default();
        t.reset(4);
        t.event(5, true);
        t.event(6, false);
        t.event(13, true);
        assert_eq!(t.missed(&all, 13), 1, "8 is missing, 3 predates the join");
        t.event(12, true);
        assert_eq!(t.out_of_order, 1);
        t.reset(20);
        assert_eq!(t.missed(&all, 20), 0);
    }

    #[test]
    fn window_collects_and_resets() {
        let s = Stats::new(4);
        s.shard(0).record(Sample::Event, 1_000, 2_001_000);
        let mut shard = s.shard(33);
        shard.record(Sample::Tally, 0, 5_000_000);
        shard.delivery();
        drop(shard);
        s.shard(2).delivery();
        let w = s.take_window();
        assert_eq!(w.len(), 2);
        assert_eq!(w.max(), w.highest_equivalent(5_000));
        assert_eq!(s.take_window().len(), 0);
        assert_eq!(s.deliveries(), 2, "deliveries are cumulative");
        assert_eq!(s.total(Sample::Event).len(), 1, "totals by kind stay");
        assert_eq!(s.total(Sample::Tally).max(), w.max());
    }

    #[test]
    fn slots_ignore_out_of_range_and_vote_slots_need_an_origin() {
        let s = Stats::new(4);
        s.votes_by_offset.set(9, 5);
        assert_eq!(s.votes_by_offset.get(9), None);
        assert_eq!(s.vote_slot(10), None);
        s.origin.set(7).unwrap();
        assert_eq!(s.vote_slot(10), Some(3));
        assert_eq!(s.vote_slot(6), None);
    }
}
