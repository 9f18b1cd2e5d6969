//! Redis-only behaviour: the feed across handles (nodes), conflicts between nodes, presence
//! summed over nodes, shared secrets, and Redis itself crashing and coming back.
//!
//! Each test uses the shared Redis at `REDIS_URL` under a prefix of its own, or — for the crash —
//! a `redis-server` of its own on an ephemeral port (never the shared one).

mod common;

use common::{Fsync, OwnRedis, WAIT, shared_redis, shared_redis_with_config, unique_prefix};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use townhall_core::event::CommentPosted;
use townhall_core::{
    CommentId, Event, EventKind, MeetingId, MeetingStatus, Offset, ParticipantId, Recorded,
    Timestamp,
};
use townhall_store::feed::{Step, next_step};
use townhall_store::{
    CommittedBatch, EventLog, FeedItem, MeetingRecord, PresenceBoard, RedisConfig, RedisLog,
    RedisPresence, StoreError, Subscription, read_all,
};

fn mid(s: &str) -> MeetingId {
    MeetingId::parse(s).unwrap()
}

fn record(id: &str) -> MeetingRecord {
    MeetingRecord {
        id: mid(id),
        title: format!("Meeting {id}"),
        status: MeetingStatus::Scheduled,
        created_at: Timestamp(1),
        ended_at: None,
        moderator_token_hash: "m".into(),
        studio_token_hash: "s".into(),
        last_offset: 0,
        schedule: None,
        publication: Default::default(),
    }
}

/// `n` comments whose ids start at `from`, so every batch is recognisable.
fn comments(from: u64, n: u64) -> Vec<Event> {
    (from..from + n)
        .map(|i| Event {
            at: Timestamp(i),
            by: ParticipantId::parse("p").unwrap(),
            kind: EventKind::CommentPosted(CommentPosted {
                comment: CommentId(i),
                text: format!("comment {i}"),
                author_name: None,
                held: None,
            }),
        })
        .collect()
}

/// The log and a second handle on the same prefix: two nodes of one deployment.
async fn two_nodes() -> Option<(RedisLog, RedisLog)> {
    let (a, config) = shared_redis_with_config().await?;
    let b = RedisLog::connect(&config).await.unwrap();
    Some((a, b))
}

async fn next_item(sub: &mut Subscription) -> FeedItem {
    tokio::time::timeout(WAIT, sub.recv())
        .await
        .expect("a feed item in time")
        .expect("the feed is open")
}

/// Follows a meeting as a room would: `next_step` for each batch, the log on `Fill`/`CatchUp`.
struct Follower {
    applied: Vec<Recorded>,
    committed_items: u64,
}

impl Follower {
    fn new() -> Self {
        Self {
            applied: Vec::new(),
            committed_items: 0,
        }
    }

    fn at(&self) -> Offset {
        self.applied.last().map_or(0, |r| r.offset)
    }

    /// Handles one item; `Err` when the log cannot be read now (the caller retries later).
    async fn handle(
        &mut self,
        log: &RedisLog,
        meeting: &MeetingId,
        item: &FeedItem,
    ) -> Result<(), StoreError> {
        match item {
            FeedItem::CatchUp => {
                let after = self.at();
                let more = log.read(meeting, after, usize::MAX).await?;
                self.applied.extend(more);
            }
            FeedItem::Committed(batch) => {
                self.committed_items += 1;
                loop {
                    match next_step(self.at(), batch) {
                        Step::Apply { skip } => {
                            self.applied.extend(batch.events[skip..].iter().cloned());
                            break;
                        }
                        Step::Duplicate => break,
                        Step::Fill { after, through } => {
                            let missing = log
                                .read(meeting, after, usize::try_from(through - after).unwrap())
                                .await?;
                            assert_eq!(missing.last().map(|r| r.offset), Some(through));
                            self.applied.extend(missing);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_carries_every_nodes_batches_with_their_offsets() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let m = mid("m");
    a.create_meeting(&record("m"), &comments(1, 1))
        .await
        .unwrap();

    let mut sub = a.subscribe(&m).expect("redis has a feed");
    assert_eq!(sub.meeting(), &m);
    // Live once Redis confirmed the subscription: from here on nothing is lost unnoticed.
    assert_eq!(next_item(&mut sub).await, FeedItem::CatchUp);

    // Another node's append, then this node's own: both come back, in commit order.
    assert_eq!(b.append(&m, 1, &comments(2, 3)).await.unwrap(), 4);
    assert_eq!(a.append(&m, 4, &comments(5, 1)).await.unwrap(), 5);
    // A conflict and an empty append publish nothing.
    assert!(matches!(
        b.append(&m, 1, &comments(9, 1)).await,
        Err(StoreError::Conflict { actual: 5, .. })
    ));
    assert_eq!(b.append(&m, 5, &[]).await.unwrap(), 5);
    assert_eq!(b.append(&m, 5, &comments(6, 1)).await.unwrap(), 6);

    let expected = [
        CommittedBatch::new(1, comments(2, 3)),
        CommittedBatch::new(4, comments(5, 1)),
        CommittedBatch::new(5, comments(6, 1)),
    ];
    for batch in expected {
        assert_eq!(next_item(&mut sub).await, FeedItem::Committed(batch));
    }

    // Other meetings' batches do not reach this subscription.
    b.create_meeting(&record("other"), &comments(1, 1))
        .await
        .unwrap();
    b.append(&mid("other"), 1, &comments(2, 1)).await.unwrap();
    b.append(&m, 6, &comments(7, 1)).await.unwrap();
    assert_eq!(
        next_item(&mut sub).await,
        FeedItem::Committed(CommittedBatch::new(6, comments(7, 1)))
    );

    // A second subscriber of the same meeting on the same node shares the channel.
    let mut second = a.subscribe(&m).unwrap();
    assert_eq!(next_item(&mut second).await, FeedItem::CatchUp);
    b.append(&m, 7, &comments(8, 2)).await.unwrap();
    let batch = FeedItem::Committed(CommittedBatch::new(7, comments(8, 2)));
    assert_eq!(next_item(&mut sub).await, batch);
    assert_eq!(next_item(&mut second).await, batch);
    a.delete_everything().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_with_one_expected_offset_exactly_one_wins() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let m = mid("race");
    a.create_meeting(&record("race"), &comments(1, 1))
        .await
        .unwrap();
    let mut expected = 1;
    for round in 0..50u64 {
        let (from_a, from_b) = (
            comments(1_000 + round * 10, 2),
            comments(2_000 + round * 10, 3),
        );
        let (ra, rb) = tokio::join!(
            a.append(&m, expected, &from_a),
            b.append(&m, expected, &from_b),
        );
        let (winner, loser, won) = match (ra, rb) {
            (Ok(last), Err(e)) => (last, e, from_a),
            (Err(e), Ok(last)) => (last, e, from_b),
            other => panic!("round {round}: exactly one must win, got {other:?}"),
        };
        match loser {
            StoreError::Conflict {
                expected: e,
                actual,
            } => assert_eq!((e, actual), (expected, winner), "round {round}"),
            other => panic!("round {round}: the loser gets a conflict, got {other:?}"),
        }
        let read = a.read(&m, expected, 100).await.unwrap();
        assert_eq!(read.into_iter().map(|r| r.event).collect::<Vec<_>>(), won);
        expected = winner;
    }
    assert_eq!(a.meeting(&m).await.unwrap().unwrap().last_offset, expected);
    a.delete_everything().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_summed_over_nodes_and_a_silent_node_expires() {
    let Some(log) = shared_redis().await else {
        return;
    };
    let m = mid("m");
    let long = Duration::from_secs(60);
    let a = RedisPresence::new(log.clone(), "node-a", long);
    let b = RedisPresence::new(log.clone(), "node-b", long);
    assert_eq!(a.report(&m, 3).await.unwrap(), 3);
    assert_eq!(b.report(&m, 2).await.unwrap(), 5);
    assert_eq!(a.report(&m, 4).await.unwrap(), 6, "a report replaces");
    assert_eq!(a.report(&mid("other"), 1).await.unwrap(), 1, "per meeting");
    assert_eq!(a.report(&m, 0).await.unwrap(), 2, "0 withdraws at once");

    // A node that stops reporting drops out by itself after its ttl.
    let c = RedisPresence::new(log.clone(), "node-c", Duration::from_millis(200));
    assert_eq!(c.report(&m, 10).await.unwrap(), 12);
    let deadline = Instant::now() + WAIT;
    loop {
        let total = b.report(&m, 2).await.unwrap();
        if total == 2 {
            break;
        }
        assert_eq!(total, 12);
        assert!(Instant::now() < deadline, "node-c never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Deleting the meeting removes its presence with it.
    log.create_meeting(&record("m"), &[]).await.unwrap();
    assert!(log.delete_meeting(&m).await.unwrap());
    let fresh = RedisPresence::new(log.clone(), "node-d", long);
    assert_eq!(fresh.report(&m, 1).await.unwrap(), 1);
    log.delete_everything().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_values_are_created_once_and_read_by_the_others() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let (va, vb) = tokio::join!(
        a.shared_value("session-key", "from-a"),
        b.shared_value("session-key", "from-b")
    );
    let (va, vb) = (va.unwrap(), vb.unwrap());
    assert_eq!(va.value, vb.value, "both nodes use one value");
    assert!(
        va.created ^ vb.created,
        "exactly one created it: {va:?} {vb:?}"
    );
    let later = a.shared_value("session-key", "from-later").await.unwrap();
    assert_eq!((later.value, later.created), (va.value, false));
    a.delete_everything().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_unavailable_not_a_hang() {
    // A port nothing listens on: connecting fails with the retryable error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RedisConfig::new(format!("redis://127.0.0.1:{port}")).with_prefix(unique_prefix());
    match tokio::time::timeout(WAIT, RedisLog::connect(&config)).await {
        Ok(Err(e)) => assert!(e.is_retryable(), "{e}"),
        other => panic!("expected an unavailable error, got {other:?}"),
    }
}

/// Waits (polling, with the shared generous timeout) until `cond` holds.
async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the follower task saw.
struct Followed {
    applied: Vec<Recorded>,
    catch_ups: u64,
    /// `after` of every batch that came through pub/sub.
    published_afters: Vec<Offset>,
}

/// Follows the feed until it has applied `target` offsets (sent when the writer is done).
async fn follow(
    log: RedisLog,
    meeting: MeetingId,
    mut sub: Subscription,
    mut target: tokio::sync::watch::Receiver<Option<Offset>>,
) -> Followed {
    let mut follower = Follower::new();
    let mut catch_ups = 0;
    let mut published_afters = Vec::new();
    loop {
        if target.borrow().is_some_and(|t| follower.at() >= t) {
            break;
        }
        let item = tokio::select! {
            item = sub.recv() => item.expect("the feed is open"),
            _ = target.changed() => continue,
        };
        match &item {
            FeedItem::CatchUp => catch_ups += 1,
            FeedItem::Committed(batch) => published_afters.push(batch.after),
        }
        // While redis is down the log cannot be read: retry the same item.
        while let Err(e) = follower.handle(&log, &meeting, &item).await {
            assert!(e.is_retryable(), "{e}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Followed {
        applied: follower.applied,
        catch_ups,
        published_afters,
    }
}

/// Redis is killed (`kill -9`) while a writer appends and a follower follows the feed, then
/// started again from its AOF (`appendfsync always`). While it is down, appends fail with a
/// retryable error and health says why; afterwards everything acknowledged is in the log exactly
/// once, the feed resubscribed by itself, and the follower holds exactly the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_loses_nothing_acknowledged() {
    let Some(mut redis) = OwnRedis::start(Fsync::Always) else {
        return;
    };
    let config = RedisConfig::new(redis.url()).with_prefix("th-restart");
    let log = RedisLog::connect(&config).await.unwrap();
    let m = mid("m");
    log.create_meeting(&record("m"), &comments(1, 1))
        .await
        .unwrap();
    let (target_tx, target_rx) = tokio::sync::watch::channel(None);
    let follower = tokio::spawn(follow(
        log.clone(),
        m.clone(),
        log.subscribe(&m).unwrap(),
        target_rx,
    ));

    let acked = Arc::new(AtomicU64::new(1));
    let unavailable = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (log, m) = (log.clone(), m.clone());
        let (acked, unavailable, stop) = (acked.clone(), unavailable.clone(), stop.clone());
        async move {
            let mut all: Vec<Event> = comments(1, 1);
            let mut next = 2;
            let mut other_errors = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let expected = all.len() as Offset;
                let batch = comments(next, 1 + next % 3);
                match log.append(&m, expected, &batch).await {
                    Ok(last) => assert_eq!(last, expected + batch.len() as Offset),
                    Err(StoreError::Conflict { actual, .. }) => {
                        // Only after a lost reply: then the log holds exactly this batch.
                        let read = log.read(&m, expected, 100).await.unwrap();
                        assert_eq!(actual, expected + batch.len() as Offset);
                        assert_eq!(read.into_iter().map(|r| r.event).collect::<Vec<_>>(), batch);
                    }
                    Err(e) if e.is_retryable() => {
                        unavailable.fetch_add(1, Ordering::AcqRel);
                        // Retry the same batch soon (a client's backoff, not a wait).
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Err(e) => {
                        other_errors.push(e.to_string());
                        break;
                    }
                }
                all.extend(batch.iter().cloned());
                next += batch.len() as u64;
                acked.store(all.len() as u64, Ordering::Release);
            }
            (all, other_errors)
        }
    });

    wait_until("100 events are acknowledged", || {
        acked.load(Ordering::Acquire) >= 100
    })
    .await;
    redis.kill();
    let killed_at = Instant::now();
    let at_kill = acked.load(Ordering::Acquire);
    wait_until("appends fail as unavailable", || {
        unavailable.load(Ordering::Acquire) >= 3
    })
    .await;
    let health = log.health().await;
    assert!(
        matches!(&health, Err(e) if e.is_retryable()),
        "health while down: {health:?}"
    );
    // At most the one batch in flight at the kill (at most 3 events) completes after it.
    let while_down = acked.load(Ordering::Acquire);
    assert!(while_down <= at_kill + 3, "acknowledged while down");

    redis.restart();
    let restarted_at = Instant::now();
    wait_until("appends succeed again", || {
        acked.load(Ordering::Acquire) > while_down
    })
    .await;
    let first_append_after = restarted_at.elapsed();
    let deadline = Instant::now() + WAIT;
    while log.health().await.is_err() {
        assert!(Instant::now() < deadline, "health never recovered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let healthy_after = restarted_at.elapsed();
    let resumed_from = acked.load(Ordering::Acquire);
    wait_until("100 more events are acknowledged", || {
        acked.load(Ordering::Acquire) >= resumed_from + 100
    })
    .await;
    stop.store(true, Ordering::Release);
    let (acknowledged, other_errors) = writer.await.unwrap();
    assert!(
        other_errors.is_empty(),
        "only retryable errors: {other_errors:?}"
    );

    // Everything acknowledged, in order, exactly once — and nothing else.
    let stored = read_all(&log, &m).await.unwrap();
    assert_eq!(
        stored.iter().map(|r| r.event.clone()).collect::<Vec<_>>(),
        acknowledged
    );

    target_tx.send(Some(stored.len() as Offset)).unwrap();
    let followed = tokio::time::timeout(WAIT, follower)
        .await
        .expect("the follower catches up")
        .unwrap();
    assert_eq!(
        followed.applied, stored,
        "the follower holds exactly the log"
    );
    assert!(
        followed.catch_ups >= 2,
        "a catch-up when the subscription went live and another after the reconnect"
    );
    assert!(
        followed
            .published_afters
            .iter()
            .any(|&after| after >= resumed_from),
        "batches committed after the restart came through the resubscribed feed"
    );

    eprintln!(
        "redis restart: down for {:?} ({} refused appends); first append {:?} after redis \
         answered again, healthy after {:?}; {} events, none lost",
        restarted_at - killed_at,
        unavailable.load(Ordering::Acquire),
        first_append_after,
        healthy_after,
        stored.len()
    );
}

/// An append whose reply is lost (Redis holds it past the response timeout: `CLIENT PAUSE
/// WRITE` on a private redis-server) is reported as retryable with an unknown outcome, not as a
/// plain failure. Retrying with the same expected offset then either commits it (the held
/// request was dropped with its connection) or conflicts with the batch already in the log;
/// either way the log holds it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_whose_reply_is_lost_reports_an_unknown_outcome() {
    let Some(redis) = OwnRedis::start(Fsync::Always) else {
        return;
    };
    let mut config = RedisConfig::new(redis.url()).with_prefix("th-lost-reply");
    config.response_timeout = Duration::from_millis(300);
    let log = RedisLog::connect(&config).await.unwrap();
    let m = mid("m");
    log.create_meeting(&record("m"), &comments(1, 1))
        .await
        .unwrap();

    // Hold every write for 2 s; reads go on.
    let admin = redis::Client::open(redis.url()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2_000)
        .arg("WRITE")
        .query_async(&mut admin)
        .await
        .unwrap();
    let batch = comments(2, 2);
    match log.append(&m, 1, &batch).await {
        Err(e @ StoreError::Unavailable(_)) => {
            assert!(e.to_string().contains("outcome unknown"), "{e}")
        }
        other => panic!("expected an unknown outcome, got {other:?}"),
    }

    let deadline = Instant::now() + WAIT;
    let outcome = loop {
        match log.append(&m, 1, &batch).await {
            Ok(last) => {
                assert_eq!(last, 3);
                break "the held append was dropped; the retry committed it";
            }
            Err(StoreError::Conflict { actual, .. }) => {
                assert_eq!(actual, 3);
                break "the held append committed; the retry conflicted with it";
            }
            Err(e) if e.is_retryable() => {
                assert!(
                    Instant::now() < deadline,
                    "redis never took the append: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    };
    let read = log.read(&m, 0, 10).await.unwrap();
    let mut expected = comments(1, 1);
    expected.extend(batch);
    assert_eq!(
        read.into_iter().map(|r| r.event).collect::<Vec<_>>(),
        expected
    );
    eprintln!("lost reply: {outcome}");
}
