//! Several moderators over real sockets: merge suggestions reach staff (live and on joining)
//! and never citizens; the organizer sets a meeting's word filter through the API.

use serde_json::{Value, json};
use townhall_core::Command;
use townhall_core::QuestionId;
use townhall_core::command::{ApproveQuestion, AskQuestion};
use townhall_core::wire::ServerMessage;
use townhall_testkit::*;

fn ask(text: &str) -> Command {
    Command::AskQuestion(AskQuestion {
        text: text.into(),
        anonymous: false,
    })
}

fn suggested(msg: &ServerMessage, question: u64, into: u64) -> bool {
    matches!(msg, ServerMessage::Suggestions { items } if items.iter().any(|i| {
        i.question == QuestionId(question) && i.similar.first().is_some_and(|s| s.id == QuestionId(into))
    }))
}

#[tokio::test]
async fn a_duplicate_is_suggested_to_moderators_only_and_to_a_moderator_who_joins_later() {
    let server = TestServer::start().await;
    let m = live_meeting(&server.base).await;
    let ws = server.ws_url();
    let mut moderator = Client::join(&ws, &m.id, Some(&m.moderator_token)).await;
    let mut citizen = Client::join(&ws, &m.id, None).await;
    for text in [
        "Hvornår bliver cykelstien langs Usserød Kongevej færdig?",
        "Hvad skal den gamle skolegrund bruges til?",
        "Hvor mange ældreboliger bygger I?",
        "Hvorfor stiger prisen på SFO?",
    ] {
        citizen.run(ask(text)).await.unwrap();
    }
    moderator
        .run(Command::ApproveQuestion(ApproveQuestion {
            question: QuestionId(1),
        }))
        .await
        .unwrap();
    citizen
        .run(ask("Hvornår er cykelstien på Usserød Kongevej klar?"))
        .await
        .unwrap();
    moderator.next_where(|f| suggested(f, 5, 1)).await;

    let mut late = Client::join(&ws, &m.id, Some(&m.moderator_token)).await;
    late.next_where(|f| suggested(f, 5, 1)).await;

    // Citizens never get suggestions: a ping's pong comes after anything queued before it.
    citizen.send_json(&json!({"t": "ping"})).await;
    citizen
        .next_where(|f| matches!(f, ServerMessage::Pong))
        .await;
    assert!(
        !citizen
            .received
            .iter()
            .any(|f| matches!(f, ServerMessage::Suggestions { .. })),
        "a citizen got suggestions"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_organizer_sets_the_word_filter_and_questions_are_flagged_by_it() {
    let server = TestServer::start().await;
    let m = live_meeting(&server.base).await;
    let url = format!("{}/api/meetings/{}/word-filter", server.base, m.id);
    let put = |body: Value| http().put(&url).bearer_auth(ADMIN_TOKEN).json(&body).send();

    let res = http()
        .put(&url)
        .json(&json!({"words": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = put(json!({"words": [""]})).await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "invalid_filter");
    let res = put(json!({"word": []})).await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "malformed");

    let ws = server.ws_url();
    let mut moderator = Client::join(&ws, &m.id, Some(&m.moderator_token)).await;
    moderator
        .until(|v| v.word_filter.iter().any(|w| w == "idiot"))
        .await;
    let res = put(json!({"words": ["Møgvej"]})).await.unwrap();
    assert_eq!(res.status(), 204);
    moderator.until(|v| v.word_filter == ["møgvej"]).await;

    let mut citizen = Client::join(&ws, &m.id, None).await;
    citizen
        .run(ask("Hvornår bliver den M0GVEJ lavet?"))
        .await
        .unwrap();
    moderator
        .until(|v| {
            v.questions
                .values()
                .any(|q| q.flagged.as_deref() == Some("møgvej"))
        })
        .await;
    assert!(citizen.view.questions.values().all(|q| q.flagged.is_none()));
    server.stop().await;
}
