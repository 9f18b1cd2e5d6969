//! The hot path of a meeting, measured in-process:
//! - `decide_apply`: core decides and applies one comment;
//! - `append/*`: one event appended to the memory and SQLite logs;
//! - `fanout/10000`: a command through the real room actor (decide, append to SQLite,
//!   serialise once, queue to 10,000 sessions) until every session's outbox has the frame.
//!
//! Run: `cargo bench -p townhall-hub --bench fanout`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use townhall_core::command::{CreateMeeting, PostComment, StartMeeting};
use townhall_core::event::VoteCast;
use townhall_core::{
    Actor, Command, Event, EventKind, Meeting, MeetingId, ParticipantId, Recorded, Role, Timestamp,
};
use townhall_hub::auth::{self, SessionKey};
use townhall_hub::room::{Join, Outbox, RoomMsg};
use townhall_hub::{Hub, HubConfig, HubMetrics, SystemClock};
use townhall_store::{Durability, EventLog, MemoryLog, SqliteLog};

const SESSIONS: usize = 10_000;

fn live_meeting() -> Meeting {
    let mut m = Meeting::new(MeetingId::parse("bench").unwrap());
    let org = Actor::organizer();
    for cmd in [
        Command::CreateMeeting(CreateMeeting {
            title: "Bench".into(),
        }),
        Command::StartMeeting(StartMeeting),
    ] {
        for event in m.decide(&org, &cmd, Timestamp(1)).unwrap() {
            m.apply(&Recorded {
                offset: m.offset + 1,
                event,
            });
        }
    }
    m
}

fn decide_apply(c: &mut Criterion) {
    let mut m = live_meeting();
    m.limits.max_comments = usize::MAX;
    let actor = Actor::new(ParticipantId::parse("citizen").unwrap(), Role::Citizen);
    let cmd = Command::PostComment(PostComment {
        text: "Hvornår bliver cykelstien færdig?".into(),
    });
    c.bench_function("decide_apply", |b| {
        b.iter(|| {
            for event in m.decide(&actor, &cmd, Timestamp(2)).unwrap() {
                m.apply(&Recorded {
                    offset: m.offset + 1,
                    event,
                });
            }
        })
    });
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile_dir();
    let event = Event {
        at: Timestamp(2),
        by: ParticipantId::parse("citizen").unwrap(),
        kind: EventKind::VoteCast(VoteCast {
            question: townhall_core::QuestionId(1),
        }),
    };
    let logs: Vec<(&str, Arc<dyn EventLog>)> = vec![
        ("memory", Arc::new(MemoryLog::new())),
        (
            "sqlite_normal",
            Arc::new(SqliteLog::open(&dir.join("normal.sqlite"), Durability::Normal).unwrap()),
        ),
        (
            "sqlite_full",
            Arc::new(SqliteLog::open(&dir.join("full.sqlite"), Durability::Full).unwrap()),
        ),
    ];
    let mut group = c.benchmark_group("append");
    for (name, log) in logs {
        let id = MeetingId::parse(name.replace('_', "-")).unwrap();
        let created = Meeting::new(id.clone())
            .decide(
                &Actor::organizer(),
                &Command::CreateMeeting(CreateMeeting { title: "b".into() }),
                Timestamp(1),
            )
            .unwrap();
        let record = townhall_store::MeetingRecord {
            id: id.clone(),
            title: "b".into(),
            status: townhall_core::MeetingStatus::Scheduled,
            created_at: Timestamp(1),
            ended_at: None,
            moderator_token_hash: String::new(),
            studio_token_hash: String::new(),
            last_offset: 0,
        };
        let mut offset = rt.block_on(log.create_meeting(&record, &created)).unwrap();
        group.bench_function(BenchmarkId::new("one_event", name), |b| {
            b.iter(|| {
                offset = rt
                    .block_on(log.append(&id, offset, std::slice::from_ref(&event)))
                    .unwrap();
            })
        });
    }
    group.finish();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("townhall-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile_dir();
    let log: Arc<dyn EventLog> =
        Arc::new(SqliteLog::open(&dir.join("fanout.sqlite"), Durability::Normal).unwrap());
    let config = HubConfig {
        presence_ms: 3_600_000,
        ..HubConfig::default()
    };
    let hub = Hub::new(
        log,
        Arc::new(SystemClock),
        config,
        HubMetrics::unregistered(),
        SessionKey::generate(),
    );
    let (room, mut outboxes) = rt.block_on(async {
        let created = hub.create_meeting("Bench").await.unwrap();
        let id = created.record.id.clone();
        hub.command(&id, Actor::organizer(), Command::StartMeeting(StartMeeting))
            .await
            .unwrap();
        let room = hub.room(&id).await.unwrap();
        let mut outboxes = Vec::with_capacity(SESSIONS);
        for session in 0..SESSIONS as u64 {
            let (tx, rx) = mpsc::channel(1024);
            let (reply, joined) = oneshot::channel();
            let join = Join {
                session,
                participant: auth::new_participant_id(),
                session_token: String::new(),
                token: (session == 0).then(|| created.moderator_token.clone()),
                since: None,
                outbox: Outbox {
                    tx,
                    lagged: Arc::new(townhall_hub::room::Lagged::default()),
                    kick: Arc::new(tokio::sync::watch::channel(None).0),
                },
                reply,
            };
            assert!(room.send(RoomMsg::Join(Box::new(join))).await);
            joined.await.unwrap().unwrap();
            outboxes.push(rx);
        }
        for rx in &mut outboxes {
            while rx.try_recv().is_ok() {}
        }
        (room, outboxes)
    });
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(SESSIONS as u64));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    let mut reference = 0;
    group.bench_function(BenchmarkId::from_parameter(SESSIONS), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    reference += 1;
                    let command = Command::PostComment(PostComment {
                        text: "Tak for et godt svar".into(),
                    });
                    assert!(
                        room.send(RoomMsg::Command {
                            session: 0,
                            reference,
                            command
                        })
                        .await
                    );
                    for rx in &mut outboxes {
                        loop {
                            match rx.recv().await {
                                Some(f) if f.as_str().starts_with("{\"t\":\"event\"") => {
                                    break;
                                }
                                Some(_) => continue,
                                None => panic!("room stopped"),
                            }
                        }
                    }
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, decide_apply, append, fanout);
criterion_main!(benches);
