//! Several real `townhall` nodes on loopback sharing one meeting through Redis: concurrent
//! citizens and moderators spread over three nodes end with the same state, every acknowledged
//! event once in the log and no vote counted twice; a node killed with `kill -9` under load
//! loses its clients nothing (they resume on the others); Redis killed and restarted mid-meeting
//! loses nothing acknowledged and refuses commands meanwhile with a retryable code.
//!
//! The shared Redis at `REDIS_URL` under a key prefix per test, or for the restart a private
//! `redis-server` with AOF on an ephemeral port (testkit's `cluster` and `redis` modules).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use townhall_core::client::ClientView;
use townhall_core::command::{
    ApproveQuestion, AskQuestion, PinAnnouncement, PostComment, QueueQuestion, Upvote,
};
use townhall_core::{Command, EventKind, MeetingId, Offset, QuestionId, Recorded, Role};
use townhall_testkit::cluster::viewer;
use townhall_testkit::*;

const TOWNHALL: &str = env!("CARGO_BIN_EXE_townhall");

/// One command a participant sent, and what became of it.
#[derive(Clone, Debug)]
struct Sent {
    participant: String,
    command: Command,
    outcome: Outcome,
    /// When the answer (or the loss) arrived.
    at: Instant,
}

/// A participant's task: its roamer, what it is, and what it sent.
struct Done {
    roamer: Roamer,
    role: Role,
    token: Option<String>,
    sent: Vec<Sent>,
}

fn comment(text: String) -> Command {
    Command::PostComment(PostComment { text })
}

/// What a command wrote, as the log holds it: `(kind name, text)` for texts, for matching a
/// command to the events in the log.
fn text_of(kind: &EventKind) -> Option<String> {
    match kind {
        EventKind::CommentPosted(c) => Some(c.text.clone()),
        EventKind::QuestionAsked(q) => Some(q.text.clone()),
        EventKind::AnnouncementPinned(a) => a.text.clone(),
        _ => None,
    }
}

fn text_of_command(cmd: &Command) -> Option<String> {
    match cmd {
        Command::PostComment(c) => Some(c.text.clone()),
        Command::AskQuestion(q) => Some(q.text.clone()),
        Command::PinAnnouncement(a) => Some(a.text.clone()),
        _ => None,
    }
}

/// The checks every test here ends with, once writing stopped at offset `last`:
///
/// - each acknowledged command's event is at its acked offset, by its participant, and its
///   text is in the log exactly once; a refused command's text never; a lost one's at most once;
/// - no participant has two votes on one question, and every view's tallies are the log's;
/// - every participant received exactly the `event` frames the log owes them (none missed,
///   none twice), over all their connections and nodes;
/// - every view equals a fresh snapshot of the same participant taken on another node.
///
/// Returns how many lost (no answer) and refused (`unavailable`) commands were committed after
/// all.
async fn check_everything(
    urls: &[String],
    meeting: &str,
    log: &[Recorded],
    last: Offset,
    done: &mut [Done],
) -> (usize, usize) {
    let id = MeetingId::parse(meeting).unwrap();
    assert_eq!(log.last().map(|r| r.offset), Some(last), "writing stopped");
    let mut texts: BTreeMap<String, u32> = BTreeMap::new();
    for rec in log {
        if let Some(t) = text_of(&rec.event.kind) {
            *texts.entry(t).or_default() += 1;
        }
    }
    let (mut lost_committed, mut refused_committed) = (0, 0);
    for d in done.iter() {
        for s in &d.sent {
            let text = text_of_command(&s.command);
            let in_log = text
                .as_ref()
                .map_or(0, |t| texts.get(t).copied().unwrap_or(0));
            match &s.outcome {
                Outcome::Acked(offset) => {
                    let rec = &log[usize::try_from(*offset).unwrap() - 1];
                    assert_eq!(rec.offset, *offset);
                    assert_eq!(
                        rec.event.by.as_str(),
                        s.participant,
                        "acked offset {offset} holds another participant's event: {rec:?}"
                    );
                    if let Some(t) = &text {
                        assert_eq!(
                            text_of(&rec.event.kind).as_ref(),
                            Some(t),
                            "acked offset {offset} holds another event: {rec:?}"
                        );
                        assert_eq!(in_log, 1, "acknowledged {t:?} is in the log {in_log} times");
                    }
                }
                // Storage failed while writing: Redis may have run the append and died before
                // its reply (the room then applies it from the log once Redis is back).
                Outcome::Refused(code) if code == "unavailable" => {
                    assert!(in_log <= 1, "refused {text:?} is in the log {in_log} times");
                    refused_committed += usize::from(in_log == 1);
                }
                Outcome::Refused(code) => {
                    assert_eq!(in_log, 0, "{code}-refused {text:?} is in the log")
                }
                Outcome::Lost => {
                    assert!(in_log <= 1, "lost {text:?} is in the log {in_log} times");
                    lost_committed += usize::from(in_log == 1);
                }
            }
        }
    }

    // Votes: once per participant and question, and the tallies every view shows are the log's.
    let mut voters: BTreeMap<QuestionId, BTreeSet<String>> = BTreeMap::new();
    for rec in log {
        if let EventKind::VoteCast(v) = &rec.event.kind {
            assert!(
                voters
                    .entry(v.question)
                    .or_default()
                    .insert(rec.event.by.to_string()),
                "{} voted twice on {:?}",
                rec.event.by,
                v.question
            );
        }
    }

    for d in done.iter_mut() {
        d.roamer.until(|v| v.offset >= last).await;
        for q in d.roamer.client.view.questions.values() {
            let tally = voters.get(&q.id).map_or(0, BTreeSet::len);
            assert_eq!(q.votes as usize, tally, "tally of question {:?}", q.id);
        }
        let who = viewer(d.roamer.participant(), d.role);
        let owed = expected_event_offsets(&id, log, &who, d.roamer.joined_at);
        let received = d.roamer.all_event_offsets();
        let delivery = Delivery::check(&owed, &received);
        assert_eq!(
            delivery,
            Delivery::default(),
            "{:?} {} on {} (after {} reconnects)",
            d.role,
            who.participant,
            d.roamer.url(),
            d.roamer.reconnects
        );
        assert_eq!(d.roamer.later_snapshots, 0, "every resume was exact");

        // A fresh snapshot of the same participant, from another node.
        let other = urls
            .iter()
            .find(|u| *u != d.roamer.url())
            .unwrap_or(&urls[0]);
        let mut fresh = Client::connect(other).await;
        fresh
            .hello(
                meeting,
                d.token.as_deref(),
                None,
                d.roamer.client.session.as_deref(),
            )
            .await;
        fresh.until(|v| v.offset >= last).await;
        assert_eq!(
            d.roamer.client.view.comparable(),
            fresh.view.comparable(),
            "a {:?} view differs from a fresh snapshot on {other}",
            d.role
        );
        fresh.close().await;
    }
    (lost_committed, refused_committed)
}

/// The public part of a citizen's view: what every citizen must agree on.
fn public(v: &ClientView) -> ClientView {
    let mut v = v.comparable();
    v.you = None;
    v.voted.clear();
    v.answered.clear();
    v.questions
        .retain(|_, q| q.status != "pending" && q.status != "rejected");
    for q in v.questions.values_mut() {
        q.mine = false;
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_one_meeting_under_concurrent_citizens_and_moderators() {
    let Some(redis) = SharedRedis::for_test("three-nodes").await else {
        return;
    };
    let cluster = Cluster::start(TOWNHALL, &redis.url, &redis.prefix, 3);
    let urls = cluster.ws_urls();
    let m = live_meeting(&cluster.base(0)).await;
    const CITIZENS: usize = 15;
    const COMMENTS: usize = 4;

    // Moderator A (node 1) approves every question; moderator B (node 2) queues them.
    let citizens_done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (name, node) in [("approve", 0), ("queue", 1)] {
        let (urls, m, citizens_done) = (urls.clone(), m.clone(), citizens_done.clone());
        tasks.push(tokio::spawn(async move {
            let mut r = Roamer::join(urls, node, &m.id, Some(&m.moderator_token)).await;
            let me = r.client.participant.clone().unwrap();
            let mut sent = Vec::new();
            loop {
                let finished = citizens_done.load(Ordering::Acquire);
                let todo: Vec<Command> = r
                    .client
                    .view
                    .questions
                    .values()
                    .filter_map(|q| match (name, q.status.as_str()) {
                        ("approve", "pending") => {
                            Some(Command::ApproveQuestion(ApproveQuestion { question: q.id }))
                        }
                        ("queue", "approved") => Some(Command::QueueQuestion(QueueQuestion {
                            question: q.id,
                            position: None,
                        })),
                        _ => None,
                    })
                    .collect();
                if todo.is_empty() {
                    let all_done = r.client.view.questions.len() == CITIZENS
                        && r.client
                            .view
                            .questions
                            .values()
                            .all(|q| q.status == "queued");
                    if finished && all_done {
                        break;
                    }
                    // The next frame (a question asked, approved, …), or look again.
                    if let Ok(frame) =
                        tokio::time::timeout(Duration::from_millis(200), r.client.recv()).await
                    {
                        frame.expect("the moderator's node stays up");
                    }
                    continue;
                }
                for command in todo {
                    let outcome = r.run(command.clone()).await;
                    assert!(
                        matches!(outcome, Outcome::Acked(_) | Outcome::Refused(_)),
                        "{outcome:?}"
                    );
                    sent.push(Sent {
                        participant: me.clone(),
                        command,
                        outcome,
                        at: Instant::now(),
                    });
                }
            }
            Done {
                roamer: r,
                role: Role::Moderator,
                token: Some(m.moderator_token.clone()),
                sent,
            }
        }));
    }

    // Citizens on every node: a question each, comments, and a vote on every approved question
    // they see (and once more on one of them, which must be refused).
    let mut citizen_tasks = Vec::new();
    for i in 0..CITIZENS {
        let (urls, m) = (urls.clone(), m.clone());
        citizen_tasks.push(tokio::spawn(async move {
            let mut r = Roamer::join(urls, i % 3, &m.id, None).await;
            let me = r.client.participant.clone().unwrap();
            let mut sent = Vec::new();
            let mut run = async |r: &mut Roamer, command: Command| {
                let outcome = r.run(command.clone()).await;
                sent.push(Sent {
                    participant: me.clone(),
                    command,
                    outcome: outcome.clone(),
                    at: Instant::now(),
                });
                outcome
            };
            run(
                &mut r,
                Command::AskQuestion(AskQuestion {
                    text: format!("Spørgsmål fra borger {i}"),
                    anonymous: i % 4 == 0,
                }),
            )
            .await;
            let mut voted = BTreeSet::new();
            for k in 0..COMMENTS {
                run(&mut r, comment(format!("kommentar {i}.{k}"))).await;
                let open: Vec<QuestionId> = r
                    .client
                    .view
                    .questions
                    .values()
                    .filter(|q| q.status == "approved" || q.status == "queued")
                    .map(|q| q.id)
                    .filter(|id| !voted.contains(id))
                    .collect();
                for q in open {
                    if let Outcome::Acked(_) =
                        run(&mut r, Command::Upvote(Upvote { question: q })).await
                    {
                        voted.insert(q);
                    }
                }
            }
            if let Some(&q) = voted.iter().next() {
                let again = run(&mut r, Command::Upvote(Upvote { question: q })).await;
                assert_eq!(again, Outcome::Refused("already_voted".into()));
            }
            Done {
                roamer: r,
                role: Role::Citizen,
                token: None,
                sent,
            }
        }));
    }
    let mut done = Vec::new();
    for t in citizen_tasks {
        done.push(t.await.unwrap());
    }
    citizens_done.store(true, Ordering::Release);
    for t in tasks {
        done.push(t.await.unwrap());
    }

    // The last word, seen by everyone: the offset every view must reach.
    let mut closing = Client::join(&urls[2], &m.id, Some(&m.moderator_token)).await;
    let last = closing
        .run(Command::PinAnnouncement(PinAnnouncement {
            text: "Tak for i aften".into(),
        }))
        .await
        .unwrap();
    let log = read_all(&redis, &m.id).await;
    let committed = check_everything(&urls, &m.id, &log, last, &mut done).await;
    assert_eq!(committed, (0, 0), "no node died, no command lost");

    // Every citizen, whichever node, agrees on the public state.
    let citizens: Vec<&Done> = done.iter().filter(|d| d.role == Role::Citizen).collect();
    for d in &citizens[1..] {
        assert_eq!(
            public(&d.roamer.client.view),
            public(&citizens[0].roamer.client.view),
            "citizens on {} and {} disagree",
            d.roamer.url(),
            citizens[0].roamer.url()
        );
    }
    assert_eq!(
        citizens[0].roamer.client.view.questions.len(),
        CITIZENS,
        "every question approved and queued"
    );
    let retries = conflict_retries(&cluster).await;
    eprintln!(
        "three nodes: {} events, {} commands; conflict retries per node {retries:?}",
        log.len(),
        done.iter().map(|d| d.sent.len()).sum::<usize>()
    );
    let refused: Vec<&Sent> = done
        .iter()
        .flat_map(|d| &d.sent)
        .filter(|s| matches!(&s.outcome, Outcome::Refused(c) if c != "already_voted"))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
    drop(cluster);
    redis.clean_up().await;
}

/// `townhall_hub_conflict_retries_total` of every node still running.
async fn conflict_retries(cluster: &Cluster) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 0..cluster.len() {
        if let Some(base) = cluster.try_base(i) {
            out.push(
                metric(&base, "townhall_hub_conflict_retries_total")
                    .await
                    .unwrap_or(f64::NAN),
            );
        }
    }
    out
}

async fn read_all(redis: &SharedRedis, meeting: &str) -> Vec<Recorded> {
    let log = redis.log().await;
    townhall_store::read_all(&log, &MeetingId::parse(meeting).unwrap())
        .await
        .unwrap()
}

/// Citizens who keep commenting (and voting on the one question) until told to stop; on a
/// lost connection they move to another node and carry on.
fn commenting_citizen(
    urls: Vec<String>,
    node: usize,
    meeting: TestMeeting,
    i: usize,
    acks: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Done> {
    tokio::spawn(async move {
        let mut r = Roamer::join(urls, node, &meeting.id, None).await;
        let me = r.client.participant.clone().unwrap();
        let mut sent = Vec::new();
        let mut k = 0;
        while !stop.load(Ordering::Acquire) {
            let command = if k == 3 {
                Command::Upvote(Upvote {
                    question: QuestionId(1),
                })
            } else {
                comment(format!("borger {i} siger {k}"))
            };
            k += 1;
            let outcome = r.run(command.clone()).await;
            match &outcome {
                Outcome::Acked(_) => {
                    acks.fetch_add(1, Ordering::AcqRel);
                }
                Outcome::Lost => r.reconnect().await,
                Outcome::Refused(code) => {
                    assert_eq!(code, "unavailable", "only retryable refusals");
                    // A client's pause before trying again, not a wait for something.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            sent.push(Sent {
                participant: me.clone(),
                command,
                outcome,
                at: Instant::now(),
            });
        }
        Done {
            roamer: r,
            role: Role::Citizen,
            token: None,
            sent,
        }
    })
}

async fn wait_for(what: &str, limit: Duration, check: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks the question every commenting citizen votes on, approved, so votes are part of the load.
async fn first_question(url: &str, m: &TestMeeting) -> Client {
    let mut moderator = Client::join(url, &m.id, Some(&m.moderator_token)).await;
    moderator
        .run(Command::AskQuestion(AskQuestion {
            text: "Hvornår åbner skolen?".into(),
            anonymous: false,
        }))
        .await
        .unwrap();
    moderator
        .run(Command::ApproveQuestion(ApproveQuestion {
            question: QuestionId(1),
        }))
        .await
        .unwrap();
    moderator
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_under_load_loses_its_clients_nothing() {
    let Some(redis) = SharedRedis::for_test("kill-node").await else {
        return;
    };
    let mut cluster = Cluster::start(TOWNHALL, &redis.url, &redis.prefix, 3);
    let urls = cluster.ws_urls();
    let m = live_meeting(&cluster.base(0)).await;
    let mut moderator = first_question(&urls[0], &m).await;
    const CITIZENS: usize = 15;
    let (acks, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let tasks: Vec<_> = (0..CITIZENS)
        .map(|i| {
            commenting_citizen(
                urls.clone(),
                i % 3,
                m.clone(),
                i,
                acks.clone(),
                stop.clone(),
            )
        })
        .collect();

    wait_for("200 acknowledged commands", WAIT * 3, || {
        acks.load(Ordering::Acquire) >= 200
    })
    .await;
    cluster.kill9(2);
    let killed_at = Instant::now();
    let at_kill = acks.load(Ordering::Acquire);
    wait_for("200 more acknowledged commands", WAIT * 3, || {
        acks.load(Ordering::Acquire) >= at_kill + 200
    })
    .await;
    let carried_on = killed_at.elapsed();
    stop.store(true, Ordering::Release);
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }
    let moved = done.iter().filter(|d| d.roamer.reconnects > 0).count();
    assert_eq!(moved, CITIZENS / 3, "the killed node's third moved");
    assert!(
        done.iter()
            .all(|d| !d.roamer.url().contains(&cluster_addr(&urls[2]))),
        "nobody stays on the dead node"
    );

    let last = moderator
        .run(Command::PinAnnouncement(PinAnnouncement {
            text: "Vi fortsætter".into(),
        }))
        .await
        .unwrap();
    let alive = cluster.ws_urls();
    let log = read_all(&redis, &m.id).await;
    let (lost_committed, _) = check_everything(&alive, &m.id, &log, last, &mut done).await;
    let lost = done
        .iter()
        .flat_map(|d| &d.sent)
        .filter(|s| s.outcome == Outcome::Lost)
        .count();
    eprintln!(
        "kill -9 of node-3 under load: {CITIZENS} citizens, {moved} moved, {} acknowledged \
         commands, {lost} lost in flight ({lost_committed} of them committed), 0 missed, 0 \
         duplicated; {} more acks within {carried_on:?} after the kill; log {} events",
        acks.load(Ordering::Acquire),
        200,
        log.len()
    );
    moderator.close().await;
    drop(cluster);
    redis.clean_up().await;
}

fn cluster_addr(ws_url: &str) -> String {
    ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_mid_meeting_loses_nothing_acknowledged() {
    let Some(mut redis) = OwnRedis::start(Fsync::Always) else {
        return;
    };
    let prefix = "th-restart";
    let cluster = Cluster::start(TOWNHALL, &redis.url(), prefix, 3);
    let urls = cluster.ws_urls();
    let m = live_meeting(&cluster.base(0)).await;
    let mut moderator = first_question(&urls[0], &m).await;
    const CITIZENS: usize = 9;
    let (acks, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let tasks: Vec<_> = (0..CITIZENS)
        .map(|i| {
            commenting_citizen(
                urls.clone(),
                i % 3,
                m.clone(),
                i,
                acks.clone(),
                stop.clone(),
            )
        })
        .collect();

    wait_for("100 acknowledged commands", WAIT * 3, || {
        acks.load(Ordering::Acquire) >= 100
    })
    .await;
    redis.kill();
    let killed_at = Instant::now();
    let at_kill = acks.load(Ordering::Acquire);
    for i in 0..cluster.len() {
        let base = cluster.base(i);
        eventually("readyz 503 while redis is down", || async {
            http()
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 503)
        })
        .await;
    }
    // Commands keep coming and are answered `unavailable` meanwhile (the citizens assert the
    // code); nothing is acknowledged once the one append in flight at the kill is answered.
    let down_for = Duration::from_secs(2);
    tokio::time::sleep(down_for.saturating_sub(killed_at.elapsed())).await;
    let while_down = acks.load(Ordering::Acquire);
    assert!(
        while_down <= at_kill + CITIZENS as u64,
        "only the appends in flight at the kill may be acknowledged after it"
    );
    let restart_at = Instant::now();
    redis.restart();
    let redis_answered = restart_at.elapsed();
    wait_for(
        "an acknowledged command after the restart",
        WAIT * 3,
        || acks.load(Ordering::Acquire) > while_down,
    )
    .await;
    let mut ready = Vec::new();
    for i in 0..cluster.len() {
        let base = cluster.base(i);
        eventually("readyz 200 again", || async {
            http()
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        ready.push(restart_at.elapsed());
    }
    let resumed_from = acks.load(Ordering::Acquire);
    wait_for("100 more acknowledged commands", WAIT * 3, || {
        acks.load(Ordering::Acquire) >= resumed_from + 100
    })
    .await;
    stop.store(true, Ordering::Release);
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }
    let refused = done
        .iter()
        .flat_map(|d| &d.sent)
        .filter(|s| matches!(s.outcome, Outcome::Refused(_)))
        .count();
    assert!(refused > 0, "commands during the outage were refused");
    assert!(
        done.iter()
            .flat_map(|d| &d.sent)
            .all(|s| s.outcome != Outcome::Lost),
        "every command was answered (the nodes stayed up)"
    );
    // Per node: how long after the restart its first command was acknowledged.
    let mut first_ack = vec![None; cluster.len()];
    for (i, d) in done.iter().enumerate() {
        let node = i % cluster.len();
        let first = d
            .sent
            .iter()
            .filter(|s| s.at > restart_at && matches!(s.outcome, Outcome::Acked(_)))
            .map(|s| s.at - restart_at)
            .min();
        first_ack[node] = match (first_ack[node], first) {
            (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
            (a, b) => a.or(b),
        };
    }

    let last = moderator
        .run(Command::PinAnnouncement(PinAnnouncement {
            text: "Redis er tilbage".into(),
        }))
        .await
        .unwrap();
    let log = {
        let config = townhall_store::RedisConfig::new(redis.url()).with_prefix(prefix);
        let log = townhall_store::RedisLog::connect(&config).await.unwrap();
        townhall_store::read_all(&log, &MeetingId::parse(m.id.as_str()).unwrap())
            .await
            .unwrap()
    };
    let (lost_committed, refused_committed) =
        check_everything(&urls, &m.id, &log, last, &mut done).await;
    eprintln!(
        "redis kill -9 + restart (AOF, appendfsync always) under {CITIZENS} citizens on 3 nodes: \
         down {:?}, {refused} commands refused `unavailable` meanwhile; after the restart redis \
         answered in {redis_answered:?}, each node's first ack after {first_ack:?}, /readyz 200 \
         after {ready:?}; {} acknowledged, \
         {refused_committed} refused and {lost_committed} unanswered commands committed after \
         all (Redis ran them and died before replying), nothing acknowledged lost",
        restart_at - killed_at,
        acks.load(Ordering::Acquire)
    );
    moderator.close().await;
}
