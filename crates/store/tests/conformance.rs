//! The one conformance suite every `EventLog` engine must pass (memory, SQLite, Redis), plus
//! SQLite-only checks of the file itself (reopening, the stored format, corruption, schema
//! versions). The Redis cases use `REDIS_URL` (default redis://127.0.0.1:6379) with a key prefix
//! per test; they skip, saying so, when it does not answer, unless `TOWNHALL_REQUIRE_REDIS=1`.

mod common;

use std::path::Path;
use std::sync::Arc;
use tempfile::TempDir;
use townhall_core::event::{
    AnnouncementPinned, ChatClosed, ChatOpened, CommentHidden, CommentPosted, MeetingCreated,
    MeetingEnded, MeetingStarted, ParticipantBanned, ParticipantMuted, ParticipantRenamed,
    ParticipantUnbanned, ParticipantUnmuted, QaClosed, QaOpened, QuestionAnswered,
    QuestionApproved, QuestionAsked, QuestionMerged, QuestionOnAir, QuestionQueued,
    QuestionRejected, QuestionUnqueued, SlowModeSet, VoteCast, VoteRetracted,
};
use townhall_core::event::{MeetingScheduled, QuestionEnded, RecordPublished};
use townhall_core::{
    CommentId, Event, EventKind, MeetingId, MeetingStatus, Offset, ParticipantId, Publication,
    QuestionId, Schedule, Timestamp,
};
use townhall_store::{
    Durability, EVENT_FORMAT_VERSION, EventLog, MeetingRecord, MemoryLog, SqliteLog, StoreError,
    read_all,
};

// ---- fixtures ----------------------------------------------------------------------------

fn mid(s: &str) -> MeetingId {
    MeetingId::parse(s).unwrap()
}

fn pid(s: &str) -> ParticipantId {
    ParticipantId::parse(s).unwrap()
}

fn record(id: &str, created_at: u64) -> MeetingRecord {
    MeetingRecord {
        id: mid(id),
        title: format!("Meeting {id}"),
        status: MeetingStatus::Scheduled,
        created_at: Timestamp(created_at),
        ended_at: None,
        moderator_token_hash: "mod-hash".into(),
        studio_token_hash: "studio-hash".into(),
        last_offset: 0,
        schedule: None,
        publication: Default::default(),
    }
}

fn ev(at: u64, kind: EventKind) -> Event {
    Event {
        at: Timestamp(at),
        by: pid("organizer"),
        kind,
    }
}

fn created(title: &str) -> Event {
    ev(
        1,
        EventKind::MeetingCreated(MeetingCreated {
            title: title.into(),
        }),
    )
}

/// Plain events that do not touch the meeting's status.
fn chatter(n: usize, from_at: u64) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let at = from_at + i as u64;
            Event {
                at: Timestamp(at),
                by: pid(&format!("p{}", i % 7)),
                kind: EventKind::CommentPosted(CommentPosted {
                    comment: CommentId(at),
                    text: format!("comment {at} – æøå \"quoted\""),
                    author_name: (i % 2 == 0).then(|| "Åse".to_owned()),
                }),
            }
        })
        .collect()
}

/// One event of every kind, so each survives the engine's stored form.
fn every_kind() -> Vec<Event> {
    let q = QuestionId(1);
    let kinds = vec![
        EventKind::MeetingCreated(MeetingCreated {
            title: "Budget 2026".into(),
        }),
        EventKind::MeetingStarted(MeetingStarted),
        EventKind::ParticipantRenamed(ParticipantRenamed {
            name: Some("Kari".into()),
        }),
        EventKind::ParticipantRenamed(ParticipantRenamed { name: None }),
        EventKind::QuestionAsked(QuestionAsked {
            question: q,
            text: "Hvorfor?".into(),
            anonymous: false,
            author_name: Some("Kari".into()),
        }),
        EventKind::QuestionAsked(QuestionAsked {
            question: QuestionId(2),
            text: "And?".into(),
            anonymous: true,
            author_name: None,
        }),
        EventKind::QuestionApproved(QuestionApproved { question: q }),
        EventKind::QuestionRejected(QuestionRejected {
            question: QuestionId(2),
            reason: "off topic".into(),
        }),
        EventKind::QuestionMerged(QuestionMerged {
            question: QuestionId(2),
            into: q,
        }),
        EventKind::QuestionQueued(QuestionQueued {
            question: q,
            position: 0,
        }),
        EventKind::QuestionUnqueued(QuestionUnqueued { question: q }),
        EventKind::QuestionOnAir(QuestionOnAir { question: q }),
        EventKind::QuestionAnswered(QuestionAnswered { question: q }),
        EventKind::VoteCast(VoteCast { question: q }),
        EventKind::VoteRetracted(VoteRetracted { question: q }),
        EventKind::CommentPosted(CommentPosted {
            comment: CommentId(1),
            text: "hi".into(),
            author_name: None,
        }),
        EventKind::CommentHidden(CommentHidden {
            comment: CommentId(1),
        }),
        EventKind::ParticipantMuted(ParticipantMuted {
            participant: pid("p1"),
        }),
        EventKind::ParticipantUnmuted(ParticipantUnmuted {
            participant: pid("p1"),
        }),
        EventKind::ParticipantBanned(ParticipantBanned {
            participant: pid("p1"),
        }),
        EventKind::ParticipantUnbanned(ParticipantUnbanned {
            participant: pid("p1"),
        }),
        EventKind::SlowModeSet(SlowModeSet { seconds: 30 }),
        EventKind::QaClosed(QaClosed),
        EventKind::QaOpened(QaOpened),
        EventKind::ChatClosed(ChatClosed),
        EventKind::ChatOpened(ChatOpened),
        EventKind::AnnouncementPinned(AnnouncementPinned {
            text: Some("Pause til 19:30".into()),
        }),
        EventKind::AnnouncementPinned(AnnouncementPinned { text: None }),
        EventKind::MeetingScheduled(MeetingScheduled(schedule("Velkomst"))),
        EventKind::QuestionEnded(QuestionEnded { question: q }),
        EventKind::RecordPublished(RecordPublished(Publication {
            record: true,
            rejections: false,
            comments: true,
            replay: false,
        })),
        EventKind::MeetingEnded(MeetingEnded),
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| ev(100 + i as u64, kind))
        .collect()
}

fn schedule(first_point: &str) -> Schedule {
    Schedule {
        starts_at: Timestamp(1_773_334_800_000),
        ends_at: Timestamp(1_773_342_000_000),
        time_zone: "Europe/Copenhagen".into(),
        description: Some("Om skolen – \"æøå\"\nlinje to".into()),
        agenda: vec![first_point.into(), "Spørgsmål".into()],
        qa_before_start: true,
    }
}

fn offsets(log: &[townhall_core::Recorded]) -> Vec<Offset> {
    log.iter().map(|r| r.offset).collect()
}

fn assert_conflict(result: Result<Offset, StoreError>, expected: Offset, actual: Offset) {
    match result {
        Err(StoreError::Conflict {
            expected: e,
            actual: a,
        }) => {
            assert_eq!(
                (e, a),
                (expected, actual),
                "conflict should report both offsets"
            )
        }
        other => panic!("expected a conflict at {actual}, got {other:?}"),
    }
}

// ---- the conformance suite ---------------------------------------------------------------

async fn create_and_read_back(log: Arc<dyn EventLog>) {
    let id = mid("budget");
    let events = every_kind();
    let last = log
        .create_meeting(&record("budget", 10), &events)
        .await
        .unwrap();
    assert_eq!(last, events.len() as Offset);

    let read = log.read(&id, 0, usize::MAX).await.unwrap();
    assert_eq!(
        offsets(&read),
        (1..=events.len() as Offset).collect::<Vec<_>>()
    );
    assert_eq!(
        read.iter().map(|r| r.event.clone()).collect::<Vec<_>>(),
        events
    );

    let stored = log.meeting(&id).await.unwrap().expect("the meeting exists");
    assert_eq!(stored.title, "Meeting budget");
    assert_eq!(stored.created_at, Timestamp(10));
    assert_eq!(stored.last_offset, last);
    assert_eq!(stored.moderator_token_hash, "mod-hash");
    assert_eq!(stored.studio_token_hash, "studio-hash");
    // The last lifecycle event of `every_kind` ends the meeting.
    assert_eq!(stored.status, MeetingStatus::Ended);
    assert_eq!(stored.ended_at, Some(events.last().unwrap().at));

    assert_eq!(log.meeting(&mid("nope")).await.unwrap(), None);
}

async fn create_with_no_events(log: Arc<dyn EventLog>) {
    let id = mid("empty");
    assert_eq!(
        log.create_meeting(&record("empty", 1), &[]).await.unwrap(),
        0
    );
    assert_eq!(log.read(&id, 0, 10).await.unwrap(), vec![]);
    let stored = log.meeting(&id).await.unwrap().unwrap();
    assert_eq!(stored, record("empty", 1));
    assert_eq!(log.append(&id, 0, &chatter(2, 5)).await.unwrap(), 2);
}

async fn append_checks_the_expected_offset(log: Arc<dyn EventLog>) {
    let id = mid("m");
    log.create_meeting(&record("m", 1), &[created("m")])
        .await
        .unwrap();
    assert_eq!(log.append(&id, 1, &chatter(3, 10)).await.unwrap(), 4);

    // Behind, ahead and far ahead of the log: all conflicts that report where the log is.
    assert_conflict(log.append(&id, 1, &chatter(2, 20)).await, 1, 4);
    assert_conflict(log.append(&id, 5, &chatter(2, 20)).await, 5, 4);
    assert_conflict(
        log.append(&id, u64::MAX, &chatter(1, 20)).await,
        u64::MAX,
        4,
    );
    // An empty batch still checks the offset.
    assert_conflict(log.append(&id, 3, &[]).await, 3, 4);

    // Nothing was written by the failed appends.
    let read = log.read(&id, 0, 100).await.unwrap();
    assert_eq!(offsets(&read), vec![1, 2, 3, 4]);
    assert_eq!(log.meeting(&id).await.unwrap().unwrap().last_offset, 4);

    assert_eq!(log.append(&id, 4, &[]).await.unwrap(), 4);
    assert_eq!(log.append(&id, 4, &chatter(1, 30)).await.unwrap(), 5);
    assert_eq!(log.meeting(&id).await.unwrap().unwrap().last_offset, 5);
}

async fn offsets_are_contiguous_from_one(log: Arc<dyn EventLog>) {
    let id = mid("m");
    let mut expected = log
        .create_meeting(&record("m", 1), &[created("m")])
        .await
        .unwrap();
    let mut all = vec![created("m")];
    for batch in [1, 5, 2, 17, 1] {
        let events = chatter(batch, expected * 10);
        expected = log.append(&id, expected, &events).await.unwrap();
        all.extend(events);
    }
    assert_eq!(expected, 27);
    let read = log.read(&id, 0, usize::MAX).await.unwrap();
    assert_eq!(offsets(&read), (1..=27).collect::<Vec<_>>());
    assert_eq!(read.into_iter().map(|r| r.event).collect::<Vec<_>>(), all);
}

async fn read_pages_with_after_and_limit(log: Arc<dyn EventLog>) {
    let id = mid("m");
    log.create_meeting(&record("m", 1), &[created("m")])
        .await
        .unwrap();
    log.append(&id, 1, &chatter(9, 10)).await.unwrap();

    assert_eq!(offsets(&log.read(&id, 0, 3).await.unwrap()), vec![1, 2, 3]);
    assert_eq!(offsets(&log.read(&id, 3, 3).await.unwrap()), vec![4, 5, 6]);
    assert_eq!(offsets(&log.read(&id, 8, 5).await.unwrap()), vec![9, 10]);
    assert_eq!(
        offsets(&log.read(&id, 10, 5).await.unwrap()),
        Vec::<Offset>::new()
    );
    assert_eq!(
        offsets(&log.read(&id, 50, 5).await.unwrap()),
        Vec::<Offset>::new()
    );
    assert_eq!(
        offsets(&log.read(&id, u64::MAX, 5).await.unwrap()),
        Vec::<Offset>::new()
    );
    assert_eq!(
        offsets(&log.read(&id, 2, 0).await.unwrap()),
        Vec::<Offset>::new()
    );
    assert_eq!(
        log.read(&id, 4, 1).await.unwrap()[0].event,
        chatter(9, 10)[3]
    );

    // Paging by the last offset seen visits every event exactly once.
    let mut seen = Vec::new();
    loop {
        let page = log
            .read(&id, seen.last().copied().unwrap_or(0), 4)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        seen.extend(offsets(&page));
    }
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
}

async fn unknown_meetings_are_errors(log: Arc<dyn EventLog>) {
    let ghost = mid("ghost");
    assert!(matches!(
        log.append(&ghost, 0, &chatter(1, 1)).await,
        Err(StoreError::UnknownMeeting)
    ));
    assert!(matches!(
        log.append(&ghost, 0, &[]).await,
        Err(StoreError::UnknownMeeting)
    ));
    assert!(matches!(
        log.read(&ghost, 0, 10).await,
        Err(StoreError::UnknownMeeting)
    ));
    assert!(matches!(
        log.read(&ghost, 0, 0).await,
        Err(StoreError::UnknownMeeting)
    ));
    assert!(matches!(
        log.set_token_hashes(&ghost, "a", "b").await,
        Err(StoreError::UnknownMeeting)
    ));
    assert_eq!(log.meeting(&ghost).await.unwrap(), None);
    assert!(!log.delete_meeting(&ghost).await.unwrap());
    assert!(log.list_meetings().await.unwrap().is_empty());
}

async fn duplicate_create_is_refused(log: Arc<dyn EventLog>) {
    let id = mid("m");
    log.create_meeting(&record("m", 1), &[created("first")])
        .await
        .unwrap();
    let mut other = record("m", 99);
    other.title = "Impostor".into();
    assert!(matches!(
        log.create_meeting(&other, &[created("second"), created("third")])
            .await,
        Err(StoreError::AlreadyExists)
    ));
    // The original meeting and its log are untouched.
    let stored = log.meeting(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.title.as_str(), stored.created_at, stored.last_offset),
        ("Meeting m", Timestamp(1), 1)
    );
    let read = log.read(&id, 0, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].event, created("first"));
}

async fn status_follows_the_log(log: Arc<dyn EventLog>) {
    let id = mid("m");
    let mut draft = record("m", 1);
    draft.status = MeetingStatus::Draft;
    log.create_meeting(&draft, &[created("m")]).await.unwrap();
    let stored = log.meeting(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.ended_at),
        (MeetingStatus::Scheduled, None)
    );

    // Other events leave the status alone.
    log.append(&id, 1, &chatter(2, 10)).await.unwrap();
    assert_eq!(
        log.meeting(&id).await.unwrap().unwrap().status,
        MeetingStatus::Scheduled
    );

    log.append(
        &id,
        3,
        &[
            ev(50, EventKind::MeetingStarted(MeetingStarted)),
            ev(51, EventKind::QaOpened(QaOpened)),
        ],
    )
    .await
    .unwrap();
    let stored = log.meeting(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.ended_at),
        (MeetingStatus::Live, None)
    );

    // A failed append changes nothing.
    assert_conflict(
        log.append(&id, 3, &[ev(60, EventKind::MeetingEnded(MeetingEnded))])
            .await,
        3,
        5,
    );
    assert_eq!(
        log.meeting(&id).await.unwrap().unwrap().status,
        MeetingStatus::Live
    );

    log.append(
        &id,
        5,
        &[
            ev(70, EventKind::MeetingEnded(MeetingEnded)),
            ev(71, EventKind::ChatClosed(ChatClosed)),
        ],
    )
    .await
    .unwrap();
    let stored = log.meeting(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.ended_at),
        (MeetingStatus::Ended, Some(Timestamp(70)))
    );
    assert_eq!(stored.last_offset, 7);

    // The record in the listing agrees.
    let listed = log.list_meetings().await.unwrap();
    assert_eq!(listed, vec![stored]);

    // Created live in one go: the status follows `first` too.
    log.create_meeting(
        &record("n", 2),
        &[
            created("n"),
            ev(3, EventKind::MeetingStarted(MeetingStarted)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        log.meeting(&mid("n")).await.unwrap().unwrap().status,
        MeetingStatus::Live
    );
}

async fn schedule_and_publication_follow_the_log(log: Arc<dyn EventLog>) {
    let id = mid("m");
    let first = schedule("Velkomst");
    log.create_meeting(
        &record("m", 1),
        &[
            created("m"),
            ev(
                2,
                EventKind::MeetingScheduled(MeetingScheduled(first.clone())),
            ),
        ],
    )
    .await
    .unwrap();
    let stored = log.meeting(&id).await.unwrap().unwrap();
    assert_eq!(stored.schedule.as_ref(), Some(&first));
    assert_eq!(stored.publication, Publication::default());

    // Other events leave it alone; the last schedule of a batch wins.
    log.append(&id, 2, &chatter(2, 10)).await.unwrap();
    assert_eq!(
        log.meeting(&id).await.unwrap().unwrap().schedule,
        Some(first)
    );
    let second = schedule("Goddag");
    let third = schedule("Godaften");
    log.append(
        &id,
        4,
        &[
            ev(20, EventKind::MeetingScheduled(MeetingScheduled(second))),
            ev(
                21,
                EventKind::MeetingScheduled(MeetingScheduled(third.clone())),
            ),
            ev(22, EventKind::MeetingEnded(MeetingEnded)),
        ],
    )
    .await
    .unwrap();
    let published = Publication {
        record: true,
        rejections: true,
        comments: false,
        replay: false,
    };
    log.append(
        &id,
        7,
        &[ev(
            30,
            EventKind::RecordPublished(RecordPublished(published)),
        )],
    )
    .await
    .unwrap();
    let stored = log.meeting(&id).await.unwrap().unwrap();
    assert_eq!(stored.schedule, Some(third));
    assert_eq!(stored.publication, published);
    assert_eq!(stored.status, MeetingStatus::Ended);
    assert_eq!(log.list_meetings().await.unwrap(), vec![stored]);

    // A failed append changes nothing.
    assert_conflict(
        log.append(
            &id,
            7,
            &[ev(
                40,
                EventKind::RecordPublished(RecordPublished(Publication::default())),
            )],
        )
        .await,
        7,
        8,
    );
    assert_eq!(
        log.meeting(&id).await.unwrap().unwrap().publication,
        published
    );
}

async fn token_hashes_are_replaced(log: Arc<dyn EventLog>) {
    let id = mid("m");
    log.create_meeting(&record("m", 1), &[created("m")])
        .await
        .unwrap();
    log.create_meeting(&record("other", 2), &[created("other")])
        .await
        .unwrap();
    log.set_token_hashes(&id, "new-mod", "new-studio")
        .await
        .unwrap();

    let stored = log.meeting(&id).await.unwrap().unwrap();
    assert_eq!(stored.moderator_token_hash, "new-mod");
    assert_eq!(stored.studio_token_hash, "new-studio");
    assert_eq!(
        stored.last_offset, 1,
        "rotating links does not touch the log"
    );
    let other = log.meeting(&mid("other")).await.unwrap().unwrap();
    assert_eq!(other.moderator_token_hash, "mod-hash");
}

async fn list_is_newest_first(log: Arc<dyn EventLog>) {
    for (id, at) in [("b", 20), ("a", 20), ("old", 5), ("new", 30)] {
        log.create_meeting(&record(id, at), &[created(id)])
            .await
            .unwrap();
    }
    let ids: Vec<String> = log
        .list_meetings()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(ids, ["new", "a", "b", "old"]);
}

async fn delete_removes_only_that_meeting(log: Arc<dyn EventLog>) {
    let (gone, kept) = (mid("gone"), mid("kept"));
    log.create_meeting(&record("gone", 1), &[created("gone")])
        .await
        .unwrap();
    log.append(&gone, 1, &chatter(20, 10)).await.unwrap();
    log.create_meeting(&record("kept", 2), &[created("kept")])
        .await
        .unwrap();
    log.append(&kept, 1, &chatter(3, 10)).await.unwrap();

    assert!(log.delete_meeting(&gone).await.unwrap());
    assert!(!log.delete_meeting(&gone).await.unwrap());
    assert_eq!(log.meeting(&gone).await.unwrap(), None);
    assert!(matches!(
        log.read(&gone, 0, 100).await,
        Err(StoreError::UnknownMeeting)
    ));
    assert!(matches!(
        log.append(&gone, 21, &chatter(1, 1)).await,
        Err(StoreError::UnknownMeeting)
    ));

    assert_eq!(
        offsets(&log.read(&kept, 0, 100).await.unwrap()),
        vec![1, 2, 3, 4]
    );
    let listed = log.list_meetings().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, kept);

    // The id is free again, with a fresh log starting at 1.
    assert_eq!(
        log.create_meeting(&record("gone", 3), &[created("again")])
            .await
            .unwrap(),
        1
    );
    let read = log.read(&gone, 0, 100).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].event, created("again"));
}

async fn read_all_crosses_pages(log: Arc<dyn EventLog>) {
    // `read_all` pages by 10 000: hit the exact boundary, then go past it.
    const PAGE: usize = 10_000;
    let id = mid("big");
    let mut last = log
        .create_meeting(&record("big", 1), &[created("big")])
        .await
        .unwrap();
    for _ in 0..9 {
        last = log.append(&id, last, &chatter(1_000, last)).await.unwrap();
    }
    last = log
        .append(&id, last, &chatter(PAGE - 1 - 9_000, last))
        .await
        .unwrap();
    assert_eq!(last, PAGE as Offset);
    let all = read_all(log.as_ref(), &id).await.unwrap();
    assert_eq!(offsets(&all), (1..=PAGE as Offset).collect::<Vec<_>>());

    last = log.append(&id, last, &chatter(1_001, last)).await.unwrap();
    let all = read_all(log.as_ref(), &id).await.unwrap();
    assert_eq!(all.len() as Offset, last);
    assert!(
        all.iter().zip(1..).all(|(r, n)| r.offset == n),
        "offsets must be 1, 2, 3, …"
    );
    assert_eq!(all[0].event, created("big"));
    assert!(matches!(
        read_all(log.as_ref(), &mid("ghost")).await,
        Err(StoreError::UnknownMeeting)
    ));
}

async fn concurrent_appenders_one_wins(log: Arc<dyn EventLog>) {
    const WRITERS: usize = 8;
    let id = mid("race");
    log.create_meeting(&record("race", 1), &[created("race")])
        .await
        .unwrap();

    for round in 0..3u64 {
        let expected = 1 + round * 2;
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (log, id) = (Arc::clone(&log), id.clone());
                tokio::spawn(async move {
                    let events = chatter(2, 1_000 * (w as u64 + 1));
                    (log.append(&id, expected, &events).await, events)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (Ok(last), events) => {
                    assert_eq!(last, expected + 2);
                    winners.push(events);
                }
                (Err(e), _) => assert_conflict(Err(e), expected, expected + 2),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one appender wins round {round}");
        let read = log.read(&id, expected, 100).await.unwrap();
        assert_eq!(
            read.into_iter().map(|r| r.event).collect::<Vec<_>>(),
            winners[0]
        );
    }
    assert_eq!(log.meeting(&id).await.unwrap().unwrap().last_offset, 7);
}

async fn the_feed_publishes_committed_batches(log: Arc<dyn EventLog>) {
    use townhall_store::{CommittedBatch, FeedItem};
    let id = mid("m");
    log.create_meeting(&record("m", 1), &[created("m")])
        .await
        .unwrap();
    // SQLite has no feed: one process writes the file, and its room saw every commit.
    let Some(mut sub) = log.subscribe(&id) else {
        return;
    };
    let mut next = async || {
        tokio::time::timeout(common::WAIT, sub.recv())
            .await
            .expect("a feed item in time")
            .expect("the feed is open")
    };
    assert_eq!(
        next().await,
        FeedItem::CatchUp,
        "live, and told to read the log"
    );
    log.append(&id, 1, &chatter(2, 10)).await.unwrap();
    assert_conflict(log.append(&id, 1, &chatter(1, 20)).await, 1, 3);
    log.append(&id, 3, &[]).await.unwrap();
    log.append(&id, 3, &chatter(1, 30)).await.unwrap();
    assert_eq!(
        next().await,
        FeedItem::Committed(CommittedBatch::new(1, chatter(2, 10)))
    );
    assert_eq!(
        next().await,
        FeedItem::Committed(CommittedBatch::new(3, chatter(1, 30))),
        "failed and empty appends publish nothing"
    );
}

// ---- engines -----------------------------------------------------------------------------

fn memory() -> (Arc<dyn EventLog>, Option<TempDir>) {
    (Arc::new(MemoryLog::new()), None)
}

fn sqlite() -> (Arc<dyn EventLog>, Option<TempDir>) {
    let dir = tempfile::tempdir().unwrap();
    let log = SqliteLog::open(&dir.path().join("townhall.sqlite"), Durability::Full).unwrap();
    (Arc::new(log), Some(dir))
}

/// Runs every case of the suite against every engine, each case on a fresh store (for Redis: a
/// fresh key prefix, deleted after the case passed).
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (log, _dir) = super::memory();
                    super::$case(log).await;
                }
            )*
        }
        mod sqlite_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (log, _dir) = super::sqlite();
                    super::$case(log).await;
                }
            )*
        }
        mod redis_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(log) = super::common::shared_redis().await else { return };
                    super::$case(std::sync::Arc::new(log.clone())).await;
                    log.delete_everything().await.unwrap();
                }
            )*
        }
    };
}

conformance!(
    create_and_read_back,
    create_with_no_events,
    append_checks_the_expected_offset,
    offsets_are_contiguous_from_one,
    read_pages_with_after_and_limit,
    unknown_meetings_are_errors,
    duplicate_create_is_refused,
    status_follows_the_log,
    schedule_and_publication_follow_the_log,
    token_hashes_are_replaced,
    list_is_newest_first,
    delete_removes_only_that_meeting,
    read_all_crosses_pages,
    concurrent_appenders_one_wins,
    the_feed_publishes_committed_batches,
);

// ---- SQLite only -------------------------------------------------------------------------

fn db_path(dir: &TempDir) -> std::path::PathBuf {
    dir.path().join("townhall.sqlite")
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test]
async fn sqlite_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = mid("m");
    let mut events = vec![
        created("m"),
        ev(2, EventKind::MeetingStarted(MeetingStarted)),
    ];
    events.extend(chatter(5, 10));
    {
        let log = SqliteLog::open(&db_path(&dir), Durability::Normal).unwrap();
        log.create_meeting(&record("m", 1), &events[..2])
            .await
            .unwrap();
        log.append(&id, 2, &events[2..]).await.unwrap();
        log.set_token_hashes(&id, "m2", "s2").await.unwrap();
    }
    let log = SqliteLog::open(&db_path(&dir), Durability::Full).unwrap();
    let stored = log.meeting(&id).await.unwrap().unwrap();
    assert_eq!(stored.last_offset, 7);
    assert_eq!(stored.status, MeetingStatus::Live);
    assert_eq!(
        (
            stored.moderator_token_hash.as_str(),
            stored.studio_token_hash.as_str()
        ),
        ("m2", "s2")
    );
    let read = read_all(&log, &id).await.unwrap();
    assert_eq!(
        read.into_iter().map(|r| r.event).collect::<Vec<_>>(),
        events
    );
    // And the reopened log goes on where it was.
    assert_conflict(log.append(&id, 2, &chatter(1, 1)).await, 2, 7);
    assert_eq!(log.append(&id, 7, &chatter(1, 1)).await.unwrap(), 8);
}

/// A file written by a build before schedules (schema version 1) is migrated in place: its
/// meetings read back without a schedule and take one from then on.
#[tokio::test]
async fn sqlite_migrates_a_version_1_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let conn = raw(&path);
        conn.execute_batch(
            r#"CREATE TABLE meetings (
    id TEXT PRIMARY KEY NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'live', 'ended')),
    created_at INTEGER NOT NULL,
    ended_at INTEGER,
    moderator_token_hash TEXT NOT NULL,
    studio_token_hash TEXT NOT NULL,
    last_offset INTEGER NOT NULL CHECK (last_offset >= 0)
);
CREATE INDEX meetings_newest_first ON meetings (created_at DESC, id);
CREATE TABLE events (
    meeting TEXT NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    "offset" INTEGER NOT NULL CHECK ("offset" >= 1),
    body TEXT NOT NULL,
    PRIMARY KEY (meeting, "offset")
) WITHOUT ROWID;
INSERT INTO meetings VALUES ('m', 'Gammelt møde', 'scheduled', 1, NULL, 'h1', 'h2', 1);
INSERT INTO events VALUES ('m', 1, '{"v":1,"at":1,"by":"organizer","type":"meeting_created","title":"Gammelt møde"}');
PRAGMA user_version = 1;"#,
        )
        .unwrap();
    }
    let log = SqliteLog::open(&path, Durability::Full).unwrap();
    let id = mid("m");
    let stored = log.meeting(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.title.as_str(), stored.schedule.as_ref()),
        ("Gammelt møde", None)
    );
    let s = schedule("Velkomst");
    log.append(
        &id,
        1,
        &[ev(
            2,
            EventKind::MeetingScheduled(MeetingScheduled(s.clone())),
        )],
    )
    .await
    .unwrap();
    assert_eq!(log.meeting(&id).await.unwrap().unwrap().schedule, Some(s));
    drop(log);
    let version: i64 = raw(&path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
}

#[tokio::test]
async fn sqlite_stores_versioned_json() {
    let dir = tempfile::tempdir().unwrap();
    let log = SqliteLog::open(&db_path(&dir), Durability::default()).unwrap();
    log.create_meeting(&record("m", 1), &every_kind())
        .await
        .unwrap();

    let conn = raw(&db_path(&dir));
    let mut select = conn
        .prepare(r#"SELECT body FROM events WHERE meeting = 'm' ORDER BY "offset""#)
        .unwrap();
    let bodies: Vec<String> = select
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(bodies.len(), every_kind().len());
    for (body, event) in bodies.iter().zip(every_kind()) {
        let mut value: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(value["v"], EVENT_FORMAT_VERSION, "{body}");
        value.as_object_mut().unwrap().remove("v");
        assert_eq!(value, serde_json::to_value(&event).unwrap());
    }
    let (status, version): (String, i64) = (
        conn.query_row("SELECT status FROM meetings WHERE id = 'm'", [], |r| {
            r.get(0)
        })
        .unwrap(),
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap(),
    );
    assert_eq!(status, "ended");
    assert!(version >= 1);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn sqlite_corrupt_rows_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let log = SqliteLog::open(&db_path(&dir), Durability::Full).unwrap();
    let id = mid("m");
    log.create_meeting(&record("m", 1), &[created("m")])
        .await
        .unwrap();
    log.append(&id, 1, &chatter(3, 10)).await.unwrap();

    let conn = raw(&db_path(&dir));
    let bad_bodies = [
        "{not json".to_owned(),
        r#"{"v":999,"type":"qa_opened","at":1,"by":"p"}"#.to_owned(),
        r#"{"type":"qa_opened","at":1,"by":"p"}"#.to_owned(),
        r#"{"v":1,"type":"no_such_event","at":1,"by":"p"}"#.to_owned(),
    ];
    for body in bad_bodies {
        conn.execute(
            r#"UPDATE events SET body = ?1 WHERE meeting = 'm' AND "offset" = 3"#,
            [&body],
        )
        .unwrap();
        match log.read(&id, 0, 10).await {
            Err(StoreError::Corrupt(msg)) => {
                assert!(msg.contains("event 3 of meeting m"), "{msg}")
            }
            other => panic!("{body}: expected corrupt, got {other:?}"),
        }
        // Events before the bad one are still readable.
        assert_eq!(offsets(&log.read(&id, 0, 2).await.unwrap()), vec![1, 2]);
    }

    // The schema's CHECKs guard against this; a damaged or hand-edited file gets past them.
    conn.pragma_update(None, "ignore_check_constraints", true)
        .unwrap();
    conn.execute("UPDATE meetings SET last_offset = -4 WHERE id = 'm'", [])
        .unwrap();
    assert!(matches!(
        log.meeting(&id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        log.list_meetings().await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        log.append(&id, 4, &chatter(1, 1)).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn sqlite_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteLog::open(&db_path(&dir), Durability::Full).unwrap());
    raw(&db_path(&dir))
        .pragma_update(None, "user_version", 1_000)
        .unwrap();

    match SqliteLog::open(&db_path(&dir), Durability::Full) {
        Err(StoreError::Backend(msg)) => {
            assert!(msg.contains("1000") && msg.contains("newer"), "{msg}")
        }
        other => panic!("expected a schema version error, got {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_refuses_a_foreign_database() {
    let dir = tempfile::tempdir().unwrap();
    raw(&db_path(&dir))
        .execute_batch("CREATE TABLE something_else (x INTEGER)")
        .unwrap();
    match SqliteLog::open(&db_path(&dir), Durability::Full) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("not a townhall database"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
    assert!(SqliteLog::open(&garbage, Durability::Full).is_err());
}

#[tokio::test]
async fn sqlite_open_reports_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/townhall.sqlite");
    match SqliteLog::open(&missing, Durability::Full) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("no/such/dir"), "{msg}"),
        other => panic!("expected an open error, got {other:?}"),
    }
}
