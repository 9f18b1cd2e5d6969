//! Resuming after a dropped connection, and durability across a crash of the process.

use townhall_core::client::ClientView;
use townhall_core::command::{
    ApproveQuestion, AskQuestion, HideComment, MergeQuestion, PinAnnouncement, PostComment,
    QueueQuestion, RejectQuestion, Upvote,
};
use townhall_core::wire::ServerMessage;
use townhall_core::{Command, CommentId, QuestionId};
use townhall_testkit::*;

/// The binary under test, for the crash tests.
const TOWNHALL: &str = env!("CARGO_BIN_EXE_townhall");

#[tokio::test]
async fn a_client_that_reconnects_gets_exactly_what_it_missed() {
    let server = TestServer::start().await;
    let m = live_meeting(&server.base).await;
    let url = server.ws_url();
    let mut stayer = Client::join(&url, &m.id, None).await;
    // Does nothing, so it receives exactly what any citizen who is not involved receives.
    let mut watcher = Client::join(&url, &m.id, None).await;
    let mut leaver = Client::join(&url, &m.id, None).await;
    let mut asker = Client::join(&url, &m.id, None).await;
    let mut moderator = Client::join(&url, &m.id, Some(&m.moderator_token)).await;

    asker
        .run(Command::AskQuestion(AskQuestion {
            text: "Før pausen".into(),
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
    leaver
        .until(|v| v.questions.contains_key(&QuestionId(1)))
        .await;
    let since = leaver.view.offset;
    let session = leaver.session.clone().unwrap();
    let view_before = leaver.view.clone();
    leaver.close().await;

    // While it is away: questions, decisions, comments, votes, an announcement.
    for i in 2..=4 {
        asker
            .run(Command::AskQuestion(AskQuestion {
                text: format!("Spørgsmål {i}"),
                anonymous: i == 3,
            }))
            .await
            .unwrap();
    }
    moderator
        .run(Command::ApproveQuestion(ApproveQuestion {
            question: QuestionId(2),
        }))
        .await
        .unwrap();
    moderator
        .run(Command::ApproveQuestion(ApproveQuestion {
            question: QuestionId(3),
        }))
        .await
        .unwrap();
    moderator
        .run(Command::RejectQuestion(RejectQuestion {
            question: QuestionId(4),
            reason: "Dublet".into(),
        }))
        .await
        .unwrap();
    moderator
        .run(Command::QueueQuestion(QueueQuestion {
            question: QuestionId(2),
            position: None,
        }))
        .await
        .unwrap();
    moderator
        .run(Command::MergeQuestion(MergeQuestion {
            question: QuestionId(3),
            into: QuestionId(1),
        }))
        .await
        .unwrap();
    asker
        .run(Command::PostComment(PostComment {
            text: "Godt spørgsmål".into(),
        }))
        .await
        .unwrap();
    moderator
        .run(Command::PostComment(PostComment { text: "Tak".into() }))
        .await
        .unwrap();
    moderator
        .run(Command::HideComment(HideComment {
            comment: CommentId(1),
        }))
        .await
        .unwrap();
    stayer
        .run(Command::Upvote(Upvote {
            question: QuestionId(2),
        }))
        .await
        .unwrap();
    let last = moderator
        .run(Command::PinAnnouncement(PinAnnouncement {
            text: "Pause slut".into(),
        }))
        .await
        .unwrap();
    watcher
        .until(|v| {
            v.offset >= last
                && v.questions
                    .get(&QuestionId(2))
                    .is_some_and(|q| q.votes == 1)
        })
        .await;

    let mut back = Client::connect(&url).await;
    back.view = view_before;
    back.hello(&m.id, None, Some(since), Some(&session)).await;
    back.until(|v| {
        v.offset >= last
            && v.questions
                .get(&QuestionId(2))
                .is_some_and(|q| q.votes == 1)
    })
    .await;

    assert!(
        !back
            .received
            .iter()
            .any(|f| matches!(f, ServerMessage::Snapshot(_))),
        "a short absence is resumed from history, not with a snapshot"
    );
    let offsets = back.event_offsets();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "no event frame repeated or out of order: {offsets:?}"
    );
    assert!(
        offsets.iter().all(|&o| o > since),
        "nothing from before the gap: {offsets:?}"
    );
    // Exactly the events an uninvolved citizen sees: compare with the watcher's frames.
    let expected: Vec<u64> = watcher
        .event_offsets()
        .into_iter()
        .filter(|&o| o > since && o <= last)
        .collect();
    assert_eq!(
        offsets, expected,
        "missed events differ from what a connected citizen received"
    );
    let without_you = |v: &ClientView| ClientView {
        you: None,
        ..v.comparable()
    };
    assert_eq!(
        without_you(&back.view),
        without_you(&watcher.view),
        "resumed view differs from a client that never left"
    );

    // And equal to a fresh snapshot of the same participant.
    let mut fresh = Client::connect(&url).await;
    fresh.hello(&m.id, None, None, Some(&session)).await;
    fresh.until(|v| v.offset >= last).await;
    let mut snapshot_view: ClientView = fresh.view.comparable();
    snapshot_view.online = 0;
    assert_eq!(back.view.comparable(), snapshot_view);
    server.stop().await;
}

#[tokio::test]
async fn a_client_too_far_behind_gets_a_snapshot() {
    let server = TestServer::start_with(|c| c.hub.history_frames = 4).await;
    let m = live_meeting(&server.base).await;
    let url = server.ws_url();
    let mut moderator = Client::join(&url, &m.id, Some(&m.moderator_token)).await;
    let mut leaver = Client::join(&url, &m.id, None).await;
    leaver.until(|v| v.meeting.is_some()).await;
    let since = leaver.view.offset;
    leaver.close().await;
    for i in 0..10 {
        moderator
            .run(Command::PinAnnouncement(PinAnnouncement {
                text: format!("nr {i}"),
            }))
            .await
            .unwrap();
    }
    let mut back = Client::connect(&url).await;
    back.hello(&m.id, None, Some(since), None).await;
    let first = back
        .next_where(|f| !matches!(f, ServerMessage::Welcome { .. }))
        .await;
    assert!(
        matches!(first, ServerMessage::Snapshot(_)),
        "expected a snapshot, got {first:?}"
    );
    assert_eq!(
        back.view.meeting.as_ref().unwrap().announcement.as_deref(),
        Some("nr 9")
    );
    server.stop().await;
}

#[tokio::test]
async fn kill_9_after_an_ack_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let process = Process::spawn(TOWNHALL, dir.path());
    let m = live_meeting(&process.base).await;
    let mut citizen = Client::join(&process.ws_url(), &m.id, None).await;
    let mut moderator = Client::join(&process.ws_url(), &m.id, Some(&m.moderator_token)).await;
    let mut acked = Vec::new();
    for i in 1..=10 {
        citizen
            .run(Command::PostComment(PostComment {
                text: format!("kommentar {i}"),
            }))
            .await
            .unwrap();
        acked.push(i);
    }
    citizen
        .run(Command::AskQuestion(AskQuestion {
            text: "Bliver det gemt?".into(),
            anonymous: false,
        }))
        .await
        .unwrap();
    let last = moderator
        .run(Command::ApproveQuestion(ApproveQuestion {
            question: QuestionId(1),
        }))
        .await
        .unwrap();
    process.kill9();

    let process = Process::spawn(TOWNHALL, dir.path());
    let mut after = Client::join(&process.ws_url(), &m.id, Some(&m.moderator_token)).await;
    after.until(|v| v.meeting.is_some()).await;
    assert!(
        after.view.offset >= last,
        "log lost acknowledged events: at {} < {last}",
        after.view.offset
    );
    assert_eq!(after.view.questions[&QuestionId(1)].status, "approved");
    for i in acked {
        assert!(
            after
                .view
                .comments
                .values()
                .any(|c| c.text == format!("kommentar {i}")),
            "acknowledged comment {i} lost"
        );
    }
    process.kill9();
}

#[tokio::test]
async fn sigterm_says_goodbye_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut process = Process::spawn(TOWNHALL, dir.path());
    let m = live_meeting(&process.base).await;
    let mut citizen = Client::join(&process.ws_url(), &m.id, None).await;
    citizen.until(|v| v.meeting.is_some()).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &process.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let frames = citizen.until_closed().await;
    assert!(
        said_bye(&frames, "shutdown"),
        "clients are told the server is restarting: {frames:?}"
    );
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(exit) = process.child.try_wait().unwrap() {
            assert!(exit.success(), "exit status {exit:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not exit after SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
