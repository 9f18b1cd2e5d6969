//! The Q&A flow over real WebSockets: visibility of pending questions, moderation, votes,
//! and role checks on the server.

use townhall_core::command::{
    ApproveQuestion, AskQuestion, BanParticipant, EndMeeting, HideComment, MarkAnswered,
    MuteParticipant, PinAnnouncement, PostComment, PutOnAir, QueueQuestion, RejectQuestion,
    SetName, SetQaOpen, SetSlowMode, StartMeeting, Upvote,
};
use townhall_core::wire::ServerMessage;
use townhall_core::{Command, QuestionId};
use townhall_testkit::*;

#[tokio::test]
async fn a_pending_question_reaches_only_staff_and_its_author_until_approved() {
    let server = TestServer::start().await;
    let m = live_meeting(&server.base).await;
    let url = server.ws_url();
    let mut asker = Client::join(&url, &m.id, None).await;
    let mut other = Client::join(&url, &m.id, None).await;
    let mut moderator = Client::join(&url, &m.id, Some(&m.moderator_token)).await;
    let mut studio = Client::join(&url, &m.id, Some(&m.studio_token)).await;

    asker
        .run(Command::SetName(SetName {
            name: "Karen".into(),
        }))
        .await
        .unwrap();
    asker
        .run(Command::AskQuestion(AskQuestion {
            text: "Hvornår åbner skolen?".into(),
            anonymous: true,
        }))
        .await
        .unwrap();
    let q = QuestionId(1);
    moderator
        .until(|v| v.questions.get(&q).is_some_and(|q| q.status == "pending"))
        .await;
    let seen = &moderator.view.questions[&q];
    assert_eq!(
        seen.author_name.as_deref(),
        Some("Karen"),
        "moderators see who asked an anonymous question"
    );
    studio.until(|v| v.questions.contains_key(&q)).await;
    asker
        .until(|v| {
            v.questions
                .get(&q)
                .is_some_and(|q| q.mine && q.status == "pending")
        })
        .await;

    // A barrier everyone sees: the other citizen must have had no frame about question 1 yet.
    moderator
        .run(Command::PinAnnouncement(PinAnnouncement {
            text: "Velkommen".into(),
        }))
        .await
        .unwrap();
    other
        .until(|v| v.meeting.as_ref().is_some_and(|m| m.announcement.is_some()))
        .await;
    assert!(
        !other.view.questions.contains_key(&q),
        "a pending question leaked to another citizen"
    );

    moderator
        .run(Command::ApproveQuestion(ApproveQuestion { question: q }))
        .await
        .unwrap();
    other.until(|v| v.questions.contains_key(&q)).await;
    let public = &other.view.questions[&q];
    assert_eq!(public.status, "approved");
    assert_eq!(public.author_name, None, "anonymous to other citizens");
    assert_eq!(public.author, None, "no participant id for citizens");
    assert!(!other.received.iter().any(|f| matches!(f, ServerMessage::Event(e) if e.questions.iter().any(|q| q.status == "pending"))));

    // Votes reach everyone as coalesced tallies.
    other
        .run(Command::Upvote(Upvote { question: q }))
        .await
        .unwrap();
    assert_eq!(
        other.run(Command::Upvote(Upvote { question: q })).await,
        Err("already_voted".into())
    );
    let mut third = Client::join(&url, &m.id, None).await;
    third
        .run(Command::Upvote(Upvote { question: q }))
        .await
        .unwrap();
    for c in [&mut asker, &mut other, &mut third, &mut moderator] {
        c.until(|v| v.questions.get(&q).is_some_and(|q| q.votes == 2))
            .await;
    }
    assert!(other.view.voted.contains(&q) && !asker.view.voted.contains(&q));

    // Queue and on air: the studio and every citizen see it.
    moderator
        .run(Command::QueueQuestion(QueueQuestion {
            question: q,
            position: None,
        }))
        .await
        .unwrap();
    moderator
        .run(Command::PutOnAir(PutOnAir { question: q }))
        .await
        .unwrap();
    for c in [&mut studio, &mut other, &mut third] {
        c.until(|v| v.meeting.as_ref().is_some_and(|m| m.on_air == Some(q)))
            .await;
        c.until(|v| v.questions.get(&q).is_some_and(|q| q.status == "on_air"))
            .await;
    }
    studio
        .run(Command::MarkAnswered(MarkAnswered { question: q }))
        .await
        .unwrap();
    other
        .until(|v| v.questions.get(&q).is_some_and(|q| q.status == "answered"))
        .await;
    server.stop().await;
}

#[tokio::test]
async fn a_rejection_reason_reaches_the_author_only() {
    let server = TestServer::start().await;
    let m = live_meeting(&server.base).await;
    let url = server.ws_url();
    let mut asker = Client::join(&url, &m.id, None).await;
    let mut other = Client::join(&url, &m.id, None).await;
    let mut moderator = Client::join(&url, &m.id, Some(&m.moderator_token)).await;
    asker
        .run(Command::AskQuestion(AskQuestion {
            text: "Off topic".into(),
            anonymous: false,
        }))
        .await
        .unwrap();
    let reason = "Spørgsmålet handler ikke om mødets emne";
    moderator
        .run(Command::RejectQuestion(RejectQuestion {
            question: QuestionId(1),
            reason: reason.into(),
        }))
        .await
        .unwrap();
    asker
        .until(|v| {
            v.questions
                .get(&QuestionId(1))
                .is_some_and(|q| q.status == "rejected")
        })
        .await;
    assert_eq!(
        asker.view.questions[&QuestionId(1)].reason.as_deref(),
        Some(reason)
    );
    moderator
        .run(Command::PinAnnouncement(PinAnnouncement {
            text: "barrier".into(),
        }))
        .await
        .unwrap();
    other
        .until(|v| v.meeting.as_ref().is_some_and(|m| m.announcement.is_some()))
        .await;
    assert!(other.view.questions.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn citizens_and_speakers_are_refused_moderator_commands() {
    let server = TestServer::start().await;
    let m = live_meeting(&server.base).await;
    let url = server.ws_url();
    let mut citizen = Client::join(&url, &m.id, None).await;
    let mut studio = Client::join(&url, &m.id, Some(&m.studio_token)).await;
    citizen
        .run(Command::AskQuestion(AskQuestion {
            text: "Hvad koster det?".into(),
            anonymous: false,
        }))
        .await
        .unwrap();
    citizen
        .run(Command::PostComment(PostComment { text: "Hej".into() }))
        .await
        .unwrap();
    let q = QuestionId(1);
    let victim = townhall_core::ParticipantId::parse(citizen.participant.clone().unwrap()).unwrap();
    let forbidden = [
        Command::ApproveQuestion(ApproveQuestion { question: q }),
        Command::RejectQuestion(RejectQuestion {
            question: q,
            reason: "x".into(),
        }),
        Command::PutOnAir(PutOnAir { question: q }),
        Command::QueueQuestion(QueueQuestion {
            question: q,
            position: None,
        }),
        Command::HideComment(HideComment {
            comment: townhall_core::CommentId(1),
        }),
        Command::MuteParticipant(MuteParticipant {
            participant: victim.clone(),
        }),
        Command::BanParticipant(BanParticipant {
            participant: victim,
        }),
        Command::SetSlowMode(SetSlowMode { seconds: 60 }),
        Command::SetQaOpen(SetQaOpen { open: false }),
        Command::PinAnnouncement(PinAnnouncement {
            text: "mine".into(),
        }),
        Command::EndMeeting(EndMeeting),
        Command::StartMeeting(StartMeeting),
    ];
    for cmd in forbidden.clone() {
        assert_eq!(
            citizen.run(cmd.clone()).await,
            Err("forbidden".into()),
            "citizen: {cmd:?}"
        );
    }
    for cmd in forbidden
        .into_iter()
        .filter(|c| !matches!(c, Command::MarkAnswered(_)))
    {
        assert_eq!(
            studio.run(cmd.clone()).await,
            Err("forbidden".into()),
            "speaker: {cmd:?}"
        );
    }
    // Nothing changed: a fresh moderator sees the question still pending and no announcement.
    let moderator = Client::join(&url, &m.id, Some(&m.moderator_token)).await;
    let mut moderator = moderator;
    moderator.until(|v| v.meeting.is_some()).await;
    assert_eq!(moderator.view.questions[&q].status, "pending");
    assert!(
        moderator
            .view
            .meeting
            .as_ref()
            .unwrap()
            .announcement
            .is_none()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_a_banned_citizen_is_disconnected() {
    let server = TestServer::start().await;
    let m = live_meeting(&server.base).await;
    let url = server.ws_url();
    let mut intruder = Client::connect(&url).await;
    intruder
        .send_json(&serde_json::json!({"t": "hello", "meeting": m.id, "token": "not-the-token"}))
        .await;
    let frames = intruder.until_closed().await;
    assert!(said_bye(&frames, "bad_token"));

    let mut troll = Client::join(&url, &m.id, None).await;
    let mut moderator = Client::join(&url, &m.id, Some(&m.moderator_token)).await;
    troll
        .run(Command::PostComment(PostComment {
            text: "spam".into(),
        }))
        .await
        .unwrap();
    let troll_id = townhall_core::ParticipantId::parse(troll.participant.clone().unwrap()).unwrap();
    moderator
        .run(Command::BanParticipant(BanParticipant {
            participant: troll_id,
        }))
        .await
        .unwrap();
    let frames = troll.until_closed().await;
    assert!(said_bye(&frames, "banned"));
    // Coming back with the same session is refused too.
    let mut again = Client::connect(&url).await;
    again
        .send_json(&serde_json::json!({"t": "hello", "meeting": m.id, "session": troll.session.clone().unwrap()}))
        .await;
    let frames = again.until_closed().await;
    assert!(said_bye(&frames, "banned"));
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_meeting_is_refused_with_a_code() {
    let server = TestServer::start().await;
    let mut c = Client::connect(&server.ws_url()).await;
    c.send_json(&serde_json::json!({"t": "hello", "meeting": "nosuchmeeting"}))
        .await;
    let frames = c.until_closed().await;
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerMessage::Error { code, .. } if code == "no_meeting"))
    );
    server.stop().await;
}

#[tokio::test]
async fn with_gathered_flushes_every_frame_still_arrives_once_and_in_order() {
    let server = TestServer::start_with(|c| {
        without_rate_limits(c);
        c.hub.flush_ms = 15;
    })
    .await;
    let m = live_meeting(&server.base).await;
    let url = server.ws_url();
    let mut writer = Client::join(&url, &m.id, None).await;
    let mut reader = Client::join(&url, &m.id, None).await;
    for i in 0..40 {
        writer
            .send(Command::PostComment(PostComment {
                text: format!("kommentar {i}"),
            }))
            .await;
    }
    reader.until(|v| v.comments.len() == 40).await;
    let offsets = reader.event_offsets();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "event offsets arrive increasing, without repeats: {offsets:?}"
    );
    let texts: Vec<&str> = reader
        .view
        .comments
        .values()
        .map(|c| c.text.as_str())
        .collect();
    assert_eq!(texts.first(), Some(&"kommentar 0"));
    assert_eq!(texts.last(), Some(&"kommentar 39"));
}
