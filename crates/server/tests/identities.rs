//! Limits that hold across identities (issue 8, rows 5 and 6): a new cookie — or none — is a
//! new participant but not a new address, so questions, slow mode and bans hold per client
//! address too; vote toggling, events and participants per meeting are bounded with stable
//! codes. Honest citizens on another address are served throughout.

use std::net::{IpAddr, SocketAddr};
use townhall_core::command::{
    AskQuestion, BanParticipant, PostComment, RetractUpvote, SetName, SetSlowMode, Upvote,
};
use townhall_core::{Command, ParticipantId, QuestionId};
use townhall_testkit::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The attacker's address; honest citizens come from [`HONEST`].
const ATTACKER: &str = "127.0.0.1";
const HONEST: &str = "127.0.0.2";

/// A cookie-less citizen (a new participant) from `from`, joined.
async fn newcomer(server: SocketAddr, from: &str, meeting: &str) -> Client {
    let mut c = Client::connect_from(server, ip(from), &[]).await;
    c.hello(meeting, None, None, None).await;
    c
}

fn ask(text: String) -> Command {
    Command::AskQuestion(AskQuestion {
        text,
        anonymous: false,
    })
}

fn comment(text: &str) -> Command {
    Command::PostComment(PostComment { text: text.into() })
}

/// Row 5: 20 cookie-less reconnects got 100 pending questions in 0.2 s — at that pace one
/// address fills the meeting's 20,000 questions in 40 s. Now the address has its own question
/// rate (`hub.address_questions_per_min`, 30) whoever asks, and an honest citizen elsewhere
/// still asks.
#[tokio::test]
async fn cookieless_reconnects_do_not_multiply_the_question_budget() {
    let server = TestServer::start().await;
    let m = live_meeting(&server.base).await;
    let (mut accepted, mut refused) = (0, Vec::new());
    for i in 0..20 {
        let mut c = newcomer(server.addr, ATTACKER, &m.id).await;
        for j in 0..5 {
            match c.run(ask(format!("Spam {i}-{j}"))).await {
                Ok(_) => accepted += 1,
                Err(code) => refused.push(code),
            }
        }
        c.close().await;
    }
    assert_eq!(accepted, 30, "refused: {refused:?}");
    assert!(refused.iter().all(|c| c == "rate_limited"), "{refused:?}");
    let mut honest = newcomer(server.addr, HONEST, &m.id).await;
    assert!(
        honest
            .run(ask("Hvornår åbner skolen?".into()))
            .await
            .is_ok()
    );
    server.stop().await;
}

/// Row 5: with 60 s slow mode, 5 of 10 comments from new identities got through. Now an
/// address posts at most `hub.people_per_address` times per slow-mode interval (3 here), and
/// a citizen on another address is unaffected.
#[tokio::test]
async fn slow_mode_holds_per_address_across_new_identities() {
    let server = TestServer::start_with(|c| c.hub.people_per_address = 3).await;
    let m = live_meeting(&server.base).await;
    let mut moderator = Client::join(&server.ws_url(), &m.id, Some(&m.moderator_token)).await;
    moderator
        .run(Command::SetSlowMode(SetSlowMode { seconds: 60 }))
        .await
        .unwrap();
    let mut results = Vec::new();
    for i in 0..10 {
        let mut c = newcomer(server.addr, ATTACKER, &m.id).await;
        results.push(c.run(comment(&format!("Kommentar {i}"))).await);
        c.close().await;
    }
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 3, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|c| c == "slow_mode"),
        "{results:?}"
    );
    let mut honest = newcomer(server.addr, HONEST, &m.id).await;
    assert!(honest.run(comment("Jeg er her også")).await.is_ok());
    server.stop().await;
}

/// Bans a cookie-less citizen from `ATTACKER` who made themselves known, and says whether a
/// new cookie-less connection from the same address may join afterwards.
async fn rejoin_after_ban(ban_by_address: bool) -> Result<(), String> {
    let server = TestServer::start_with(|c| c.hub.ban_by_address = ban_by_address).await;
    let m = live_meeting(&server.base).await;
    let mut moderator = Client::join(&server.ws_url(), &m.id, Some(&m.moderator_token)).await;
    let mut troll = newcomer(server.addr, ATTACKER, &m.id).await;
    troll.run(comment("Noget grimt")).await.unwrap();
    let participant = ParticipantId::parse(troll.participant.clone().unwrap()).unwrap();
    moderator
        .run(Command::BanParticipant(BanParticipant { participant }))
        .await
        .unwrap();
    assert!(said_bye(&troll.until_closed().await, "banned"));
    let mut again = Client::connect_from(server.addr, ip(ATTACKER), &[]).await;
    let rejoined = again.try_join(&m.id).await;
    // Whatever the setting, a citizen on another address joins.
    let mut honest = Client::connect_from(server.addr, ip(HONEST), &[]).await;
    assert_eq!(honest.try_join(&m.id).await, Ok(()));
    server.stop().await;
    rejoined
}

/// Row 5: a banned citizen rejoined as a new participant. Now the ban holds against a new
/// cookie from the same address for that meeting — unless `hub.ban_by_address` is off.
#[tokio::test]
async fn a_ban_holds_against_a_new_cookie_from_the_same_address() {
    assert_eq!(rejoin_after_ban(true).await, Err("banned".into()));
    assert_eq!(rejoin_after_ban(false).await, Ok(()));
}

/// Row 6: upvote/retract toggling added 1,001 events in 20 s. Now a participant casts at most
/// 3 upvotes on a question (`vote_limit`), so toggling adds at most 6 events.
#[tokio::test]
async fn vote_toggling_cannot_grow_the_log() {
    let server = TestServer::start_with(without_rate_limits).await;
    let m = live_meeting(&server.base).await;
    let mut moderator = Client::join(&server.ws_url(), &m.id, Some(&m.moderator_token)).await;
    let q = QuestionId(1);
    moderator
        .run(ask("Skal vi have en park?".into()))
        .await
        .unwrap();
    moderator
        .run(Command::ApproveQuestion(
            townhall_core::command::ApproveQuestion { question: q },
        ))
        .await
        .unwrap();
    let mut toggler = Client::join(&server.ws_url(), &m.id, None).await;
    let mut offsets = Vec::new();
    let mut refused = None;
    for _ in 0..500 {
        match toggler.run(Command::Upvote(Upvote { question: q })).await {
            Ok(offset) => offsets.push(offset),
            Err(code) => {
                refused = Some(code);
                break;
            }
        }
        let retracted = toggler
            .run(Command::RetractUpvote(RetractUpvote { question: q }))
            .await;
        offsets.push(retracted.unwrap());
    }
    assert_eq!(refused.as_deref(), Some("vote_limit"));
    assert_eq!(offsets.len(), 6, "{offsets:?}");
    // Another citizen votes as ever.
    let mut honest = Client::join(&server.ws_url(), &m.id, None).await;
    assert!(
        honest
            .run(Command::Upvote(Upvote { question: q }))
            .await
            .is_ok()
    );
    server.stop().await;
}

/// Row 6: no cap on events or participants in a meeting. Now citizens get
/// `too_many_participants` past `hub.max_participants_per_meeting` and `too_many_events`
/// past `hub.max_events_per_meeting`; those already in the meeting and staff go on.
#[tokio::test]
async fn events_and_participants_per_meeting_are_capped_with_stable_codes() {
    let server = TestServer::start_with(|c| {
        without_rate_limits(c);
        // The organizer (create, start) and two citizens.
        c.hub.max_participants_per_meeting = 3;
        c.hub.max_events_per_meeting = 8;
    })
    .await;
    let m = live_meeting(&server.base).await;
    let url = server.ws_url();
    let name = |n: &str| Command::SetName(SetName { name: n.into() });
    let mut anna = Client::join(&url, &m.id, None).await;
    let mut bo = Client::join(&url, &m.id, None).await;
    let mut carl = Client::join(&url, &m.id, None).await;
    anna.run(name("Anna")).await.unwrap();
    bo.run(name("Bo")).await.unwrap();
    assert_eq!(
        carl.run(name("Carl")).await,
        Err("too_many_participants".into())
    );
    // Offsets 1–2 are create and start, 3–4 the names: four more events for citizens.
    for i in 0..4 {
        anna.run(comment(&format!("Kommentar {i}"))).await.unwrap();
    }
    assert_eq!(
        bo.run(comment("En for meget")).await,
        Err("too_many_events".into())
    );
    let mut moderator = Client::join(&url, &m.id, Some(&m.moderator_token)).await;
    assert!(moderator.run(comment("Vi runder af")).await.is_ok());
    server.stop().await;
}
