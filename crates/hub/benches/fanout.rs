//! The hot path of a meeting, measured in-process:
//! - `decide_apply`: core decides and applies one comment;
//! - `append/*`: one event appended to the memory and SQLite logs;
//! - `fanout/10000`: a comment through the sans-IO room (decide, apply, serialise once, queue
//!   to 10,000 sessions' outboxes), the append taken as durable, and every outbox drained.
//!
//! Run: `cargo bench -p townhall-hub --bench fanout`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant};
use townhall_core::command::{CreateMeeting, PostComment, StartMeeting};
use townhall_core::event::VoteCast;
use townhall_core::{
    Actor, Command, Event, EventKind, Meeting, MeetingId, ParticipantId, Recorded, Role, Timestamp,
};
use townhall_hub::auth;
use townhall_hub::room::{Committed, Join, Origin, Pending};
use townhall_hub::{HubConfig, HubMetrics, Outbox, Room};
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
            schedule: None,
            publication: Default::default(),
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
    let meeting = live_meeting();
    let record = townhall_store::MeetingRecord {
        id: meeting.id.clone(),
        title: "Bench".into(),
        status: townhall_core::MeetingStatus::Live,
        created_at: Timestamp(1),
        ended_at: None,
        moderator_token_hash: auth::hash_token("moderator-token-for-the-bench"),
        studio_token_hash: auth::hash_token("studio-token-for-the-bench"),
        last_offset: meeting.offset,
        schedule: None,
        publication: Default::default(),
    };
    let config = Arc::new(HubConfig {
        presence_ms: 3_600_000,
        ..HubConfig::default()
    });
    let mut room = Room::new(
        meeting,
        &record,
        config.clone(),
        HubMetrics::unregistered(),
        tokio::time::Instant::now(),
    );
    let mut outboxes = Vec::with_capacity(SESSIONS);
    for session in 0..SESSIONS as u64 {
        let outbox = Arc::new(Outbox::new(config.outbox_frames));
        let join = Join {
            session,
            participant: auth::new_participant_id(),
            session_token: String::new(),
            token: (session == 0).then(|| "moderator-token-for-the-bench".to_owned()),
            since: None,
            address: None,
            outbox: outbox.clone(),
        };
        room.join(join).unwrap();
        outboxes.push(outbox);
    }
    let mut batch = Vec::new();
    let drain = |outboxes: &[Arc<Outbox>], batch: &mut Vec<_>| {
        for o in outboxes {
            o.take_frames(batch, usize::MAX);
            batch.clear();
        }
    };
    drain(&outboxes, &mut batch);
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(SESSIONS as u64));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    let mut reference = 0;
    group.bench_function(BenchmarkId::from_parameter(SESSIONS), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                reference += 1;
                let pending = Pending {
                    origin: Origin::Session {
                        session: 0,
                        reference,
                    },
                    actor: None,
                    command: Command::PostComment(PostComment {
                        text: "Tak for et godt svar".into(),
                    }),
                };
                let append = room.decide(vec![pending], Timestamp(2)).unwrap();
                assert_eq!(append.events.len(), 1);
                assert!(room.committed(Committed::Durable).is_none());
                drain(&outboxes, &mut batch);
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, decide_apply, append, fanout);
criterion_main!(benches);
