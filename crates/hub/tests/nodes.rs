//! Two hubs on one shared log are two nodes: what one commits reaches the other's sessions
//! through the log's feed, concurrent commands conflict and are decided again, and every
//! session ends with the same view. (Over Redis and real sockets: crates/server/tests.)

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use townhall_core::client::ClientView;
use townhall_core::command::{ApproveQuestion, AskQuestion, PostComment, StartMeeting};
use townhall_core::wire::ServerMessage;
use townhall_core::{Actor, Command, MeetingId, Offset};
use townhall_hub::outbox::Next;
use townhall_hub::room::Join;
use townhall_hub::{Hub, HubConfig, HubMetrics, Outbox, RoomHandle, RoomMsg, SystemClock, auth};
use townhall_store::{EventLog, MemoryLog};

fn node(log: &Arc<impl EventLog + 'static>, key: &auth::SessionKey) -> Arc<Hub> {
    Hub::new(
        log.clone() as Arc<dyn EventLog>,
        Arc::new(SystemClock),
        HubConfig::default(),
        HubMetrics::unregistered(),
        key.clone(),
    )
}

/// A session on one node, read by hand.
struct Session {
    id: u64,
    room: RoomHandle,
    outbox: Arc<Outbox>,
    view: ClientView,
    acks: Vec<Offset>,
}

impl Session {
    async fn join(hub: &Hub, meeting: &MeetingId, id: u64, token: Option<String>) -> Self {
        Self::resume(hub, meeting, id, token, auth::new_participant_id(), None).await
    }

    /// Joins as `participant`, resuming after `since` when given.
    async fn resume(
        hub: &Hub,
        meeting: &MeetingId,
        id: u64,
        token: Option<String>,
        participant: townhall_core::ParticipantId,
        since: Option<Offset>,
    ) -> Self {
        let outbox = Arc::new(Outbox::new(4096));
        let (room, joined) = hub
            .ask_room(meeting, |reply| RoomMsg::Join {
                join: Box::new(Join {
                    session: id,
                    participant: participant.clone(),
                    session_token: String::new(),
                    token: token.clone(),
                    since,
                    address: None,
                    outbox: outbox.clone(),
                }),
                reply,
            })
            .await
            .unwrap();
        joined.unwrap();
        Self {
            id,
            room,
            outbox,
            view: ClientView::default(),
            acks: Vec::new(),
        }
    }

    async fn send(&self, reference: u64, command: Command) {
        assert!(
            self.room
                .send(RoomMsg::Command {
                    session: self.id,
                    reference,
                    command,
                })
                .await
        );
    }

    fn read(&mut self) {
        let mut batch = Vec::new();
        while let Some(Next::Write) = self.outbox.try_next(&mut batch, usize::MAX) {
            for bytes in batch.drain(..) {
                let msg: ServerMessage = serde_json::from_str(bytes.as_str()).unwrap();
                if let ServerMessage::Ack { offset, .. } = msg {
                    self.acks.push(offset);
                }
                self.view.apply(&msg);
            }
        }
    }

    /// Reads until `done` holds, for up to 10 s.
    async fn until(&mut self, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            self.read();
            if done(self) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_log_agree() {
    let log = Arc::new(MemoryLog::new());
    let key = auth::SessionKey::generate();
    let (a, b) = (node(&log, &key), node(&log, &key));
    let created = a.create_meeting("Borgermøde").await.unwrap();
    let id = created.record.id.clone();
    a.command(&id, Actor::organizer(), Command::StartMeeting(StartMeeting))
        .await
        .unwrap();
    let mut on_a = Session::join(&a, &id, 1, None).await;
    let mut on_b = Session::join(&b, &id, 1, None).await;
    let mut moderator_on_b = Session::join(&b, &id, 2, Some(created.moderator_token.clone())).await;
    on_b.send(
        1000,
        Command::AskQuestion(AskQuestion {
            text: "Hvornår?".into(),
            anonymous: false,
        }),
    )
    .await;
    on_b.until(|s| s.acks.len() == 1).await;
    on_b.acks.clear();
    // Both nodes take commands at once: their appends conflict and are decided again.
    let (done_a, wait_a) = oneshot::channel();
    let (done_b, wait_b) = oneshot::channel();
    let (ra, rb) = (on_a.room.clone(), on_b.room.clone());
    tokio::spawn(async move {
        for i in 0..100 {
            ra.send(RoomMsg::Command {
                session: 1,
                reference: i,
                command: Command::PostComment(PostComment {
                    text: format!("fra a {i}"),
                }),
            })
            .await;
        }
        let _ = done_a.send(());
    });
    tokio::spawn(async move {
        for i in 0..100 {
            rb.send(RoomMsg::Command {
                session: 1,
                reference: i,
                command: Command::PostComment(PostComment {
                    text: format!("fra b {i}"),
                }),
            })
            .await;
        }
        let _ = done_b.send(());
    });
    wait_a.await.unwrap();
    wait_b.await.unwrap();
    on_a.until(|s| s.acks.len() == 100).await;
    on_b.until(|s| s.acks.len() == 100).await;
    // The moderator on b approves a question asked on b; a's citizen sees it.
    moderator_on_b
        .send(
            1,
            Command::ApproveQuestion(ApproveQuestion {
                question: townhall_core::QuestionId(1),
            }),
        )
        .await;
    moderator_on_b.until(|s| !s.acks.is_empty()).await;
    let last = townhall_store::read_all(log.as_ref(), &id).await.unwrap();
    let last = last.last().unwrap().offset;
    on_a.until(|s| s.view.offset >= last && s.view.questions.len() == 1)
        .await;
    on_b.until(|s| s.view.offset >= last).await;
    moderator_on_b.until(|s| s.view.offset >= last).await;
    assert_eq!(on_a.view.comments.len(), 200);
    assert!(
        on_a.view.comments == on_b.view.comments,
        "both citizens see the same chat"
    );
    assert_eq!(moderator_on_b.view.comments.len(), 200);
    // Every acknowledged offset is in the log once.
    let mut acked: Vec<Offset> = on_a.acks.iter().chain(&on_b.acks).copied().collect();
    acked.sort_unstable();
    acked.dedup();
    assert_eq!(acked.len(), 200);
    assert!(acked.iter().all(|&o| o <= last));
}

/// A client that saw a commit through one node and resumes on another that has not applied it
/// yet (its feed is a moment behind, as after a `kill -9` of the first node) resumes exactly:
/// the room reads the log up to the client's offset first instead of sending an older
/// snapshot, which would take the client's view back in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_ahead_of_the_room_reads_the_log_first() {
    // SQLite has no feed: node b learns of a's commits from the log alone.
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        townhall_store::SqliteLog::open(
            &dir.path().join("townhall.sqlite"),
            townhall_store::Durability::Normal,
        )
        .unwrap(),
    );
    let key = auth::SessionKey::generate();
    let (a, b) = (node(&log, &key), node(&log, &key));
    let created = a.create_meeting("Borgermøde").await.unwrap();
    let id = created.record.id.clone();
    a.command(&id, Actor::organizer(), Command::StartMeeting(StartMeeting))
        .await
        .unwrap();
    let mut stays_on_b = Session::join(&b, &id, 1, None).await;
    stays_on_b.until(|s| s.view.meeting.is_some()).await;
    let mut moves = Session::join(&a, &id, 1, None).await;
    moves
        .send(
            1,
            Command::PostComment(PostComment {
                text: "sagt på a".into(),
            }),
        )
        .await;
    moves.until(|s| s.acks.len() == 1).await;
    assert!(stays_on_b.view.comments.is_empty(), "b has not read it yet");

    let participant = moves.view.you.as_ref().unwrap().participant.clone();
    let since = moves.view.offset;
    let mut resumed = Session::resume(&b, &id, 2, None, participant, Some(since)).await;
    resumed.view = moves.view.clone();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !frames
        .iter()
        .any(|m| matches!(m, ServerMessage::Presence { .. }))
    {
        let mut batch = Vec::new();
        if let Some(Next::Write) = resumed.outbox.try_next(&mut batch, usize::MAX) {
            for bytes in batch {
                frames.push(serde_json::from_str::<ServerMessage>(bytes.as_str()).unwrap());
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !frames
            .iter()
            .any(|m| matches!(m, ServerMessage::Snapshot(_))),
        "resumed exactly, not from an older snapshot: {frames:?}"
    );
    // And the room on b caught up: its other session got the comment.
    stays_on_b.until(|s| s.view.comments.len() == 1).await;
}
