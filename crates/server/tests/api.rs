//! The organizer API, operations endpoints and HTTP-level protections.

use serde_json::{Value, json};
use townhall_core::Command;
use townhall_core::command::{AskQuestion, HideComment, PostComment};
use townhall_testkit::*;

#[tokio::test]
async fn the_organizer_api_needs_the_admin_token() {
    let server = TestServer::start().await;
    let url = format!("{}/api/meetings", server.base);
    let res = http()
        .post(&url)
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");
    let res = http()
        .get(&url)
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "bad_token");
    server.stop().await;
}

#[tokio::test]
async fn create_start_end_export_and_delete_a_meeting() {
    let server = TestServer::start().await;
    let base = &server.base;
    let res = http()
        .post(format!("{base}/api/meetings"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"title": "Borgermøde: Kystsikring"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "scheduled");
    assert_eq!(created["viewer_url"], format!("{base}/m/{id}"));
    assert!(
        created["moderator_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{base}/m/{id}/moderate#"))
    );
    assert!(
        created["studio_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{base}/m/{id}/studio#"))
    );

    let bad = http()
        .post(format!("{base}/api/meetings"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"title": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["code"], "text_empty");

    let list: Value = http()
        .get(format!("{base}/api/meetings"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    start_meeting(base, &id).await;
    let again = http()
        .post(format!("{base}/api/meetings/{id}/start"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "starting twice is a conflict");

    let moderator_token = created["moderator_url"]
        .as_str()
        .unwrap()
        .rsplit_once('#')
        .unwrap()
        .1
        .to_owned();
    let mut citizen = Client::join(&server.ws_url(), &id, None).await;
    citizen
        .run(Command::AskQuestion(AskQuestion {
            text: "=SUM(A1) er det sikkert?".into(),
            anonymous: false,
        }))
        .await
        .unwrap();

    let res = http()
        .post(format!("{base}/api/meetings/{id}/end"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ended");
    citizen
        .until(|v| {
            v.meeting
                .as_ref()
                .is_some_and(|m| m.status == townhall_core::MeetingStatus::Ended)
        })
        .await;

    let json_export: Value = http()
        .get(format!("{base}/api/meetings/{id}/export.json"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        json_export["questions"][0]["text"],
        "=SUM(A1) er det sikkert?"
    );
    assert_eq!(json_export["meeting"]["status"], "ended");
    let kinds: Vec<&str> = json_export["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "meeting_created",
            "meeting_started",
            "question_asked",
            "meeting_ended"
        ]
    );

    let csv_res = http()
        .get(format!("{base}/api/meetings/{id}/export.csv"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        csv_res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".csv")
    );
    let csv = csv_res.text().await.unwrap();
    assert!(csv.starts_with("offset,time,event,by,question,comment,participant,text"));
    assert!(
        csv.contains("'=SUM(A1) er det sikkert?"),
        "formula-like text is defused: {csv}"
    );

    // Rotating the links locks out the old moderator link, also for whoever is connected.
    let mut connected = Client::join(&server.ws_url(), &id, Some(&moderator_token)).await;
    let links: Value = http()
        .post(format!("{base}/api/meetings/{id}/links"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !links["moderator_url"]
            .as_str()
            .unwrap()
            .ends_with(&moderator_token)
    );
    let frames = connected.until_closed().await;
    assert!(said_bye(&frames, "links_replaced"));
    let mut old = Client::connect(&server.ws_url()).await;
    old.send_json(&json!({"t": "hello", "meeting": id, "token": moderator_token}))
        .await;
    assert!(said_bye(&old.until_closed().await, "bad_token"));

    let res = http()
        .delete(format!("{base}/api/meetings/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let frames = citizen.until_closed().await;
    assert!(said_bye(&frames, "meeting_deleted"));
    let res = http()
        .get(format!("{base}/api/meetings/{id}/export.json"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn health_readiness_metrics_and_headers() {
    let server = TestServer::start().await;
    let base = &server.base;
    assert_eq!(
        http()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http()
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let m = live_meeting(base).await;
    let mut c = Client::join(&server.ws_url(), &m.id, None).await;
    c.run(Command::PostComment(PostComment { text: "hej".into() }))
        .await
        .unwrap();
    assert_eq!(
        c.run(Command::HideComment(HideComment {
            comment: townhall_core::CommentId(1)
        }))
        .await,
        Err("forbidden".into())
    );
    let metrics = metrics_text(base).await;
    for name in [
        "townhall_hub_connections 1",
        "townhall_hub_commands_total{command=\"post_comment\"} 1",
        "townhall_hub_rejections_total{code=\"forbidden\"} 1",
        "townhall_hub_events_total",
        "townhall_hub_deliveries_total",
        "townhall_store_append_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "missing {name} in\n{metrics}");
    }
    let page = http()
        .get(format!("{base}/m/{}", m.id))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(
        page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );
    server.stop().await;
}

#[tokio::test]
async fn websockets_from_foreign_origins_are_refused() {
    let server = TestServer::start().await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        server.ws_url(),
    )
    .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        server.ws_url(),
    )
    .unwrap();
    req.headers_mut()
        .insert("origin", server.base.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    server.stop().await;
}
