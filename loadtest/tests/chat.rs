//! `townhall-load chat` against the real townhall server, in-process on 127.0.0.1:0: a small
//! scenario must hold every connection, deliver, and miss nothing. No timing is asserted.

use std::time::Duration;
use townhall_loadtest::chat::{self, ChatArgs, Report, Target};
use townhall_testkit::{ADMIN_TOKEN, TestServer};

async fn start_server() -> TestServer {
    TestServer::start_with(|config| {
        // Every simulated citizen shares 127.0.0.x: lift the per-IP command limits, as
        // bench.sh does.
        config.hub.ip_commands_per_sec = 100_000.0;
        config.hub.ip_command_burst = 100_000;
        config.hub.people_per_address = 0;
        config.hub.address_questions_per_min = 0;
        config.hub.address_comments_per_min = 0;
        config.hub.address_votes_per_min = 0;
        config.hub.address_renames_per_min = 0;
        // Chat only: no media relay.
        config.media.enabled = false;
    })
    .await
}

fn args(base: &str) -> ChatArgs {
    ChatArgs {
        url: vec![base.to_owned()],
        target: Target::Townhall,
        meeting: None,
        admin_token: Some(ADMIN_TOKEN.into()),
        moderator_token: None,
        citizens: 20,
        ask_rate: 4.0,
        vote_rate: 20.0,
        comment_rate: 10.0,
        moderators: 2,
        duration: Duration::from_secs(3),
        ramp_rate: 1000.0,
        slow_percent: 0.0,
        step: Duration::ZERO,
        step_factor: 2.0,
        stop_p99_ms: None,
        source_ips: None,
        server_pid: None,
        json: None,
        plot: None,
    }
}

fn assert_clean(r: &Report, held: u64) {
    assert_eq!(r.connections_held, held, "{}", r.summary());
    assert_eq!(r.missed, 0, "{}", r.summary());
    assert_eq!(r.out_of_order, 0, "{}", r.summary());
    assert!(r.errors.is_empty(), "{}", r.summary());
    assert!(r.deliveries > 0 && r.latency.samples > 0, "{}", r.summary());
    assert!(r.commands_acked > 0, "{}", r.summary());
    assert_eq!(r.commands_acked, r.commands_sent, "{}", r.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_meeting_with_slow_clients_misses_nothing() {
    let server = start_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(&server.base);
    a.slow_percent = 10.0;
    a.json = Some(dir.path().join("r.json"));
    a.plot = Some(dir.path().join("r.svg"));
    let r = chat::run(a).await.unwrap();
    assert_eq!(r.slow_clients, 2);
    assert_clean(&r, 20 - 2 + 2);
    // The report round-trips and the plot is drawn.
    let json: Report =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(json.deliveries, r.deliveries);
    assert!(
        std::fs::read_to_string(dir.path().join("r.svg"))
            .unwrap()
            .contains("<polyline")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_an_existing_meeting_in_steps() {
    let server = start_server().await;
    let meeting = townhall_client::api::create_live_meeting(
        &townhall_testkit::http(),
        &server.base,
        ADMIN_TOKEN,
        "Borgermøde om trafikken",
    )
    .await
    .unwrap();
    let id = meeting.id.clone();
    let token = meeting.moderator_token;

    let mut a = args(&server.base);
    a.admin_token = None;
    a.meeting = Some(id.clone());
    a.moderator_token = Some(token);
    a.duration = Duration::from_secs(2);
    a.step = Duration::from_secs(1);
    let r = chat::run(a).await.unwrap();
    assert_eq!(r.meeting, id);
    assert_eq!(r.steps.len(), 2, "{}", r.summary());
    assert!(r.steps[1].commands_per_sec > r.steps[0].commands_per_sec);
    assert_clean(&r, 22);
    // Every acknowledged command is in the meeting's log (approvals and votes add events).
    let summary: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/meetings/{id}", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        summary["events"].as_u64().unwrap() >= r.commands_acked,
        "{summary}"
    );
    server.stop().await;
}

/// A moderator with the wrong secret is refused (`bye bad_token`) and the report says so, once,
/// while the citizens of the same run join and stay.
#[tokio::test]
async fn a_wrong_moderator_token_is_reported_not_hidden() {
    let server = start_server().await;
    let meeting = townhall_testkit::live_meeting(&server.base).await;
    let mut a = args(&server.base);
    a.admin_token = None;
    a.meeting = Some(meeting.id);
    a.moderator_token = Some(format!("{}x", meeting.moderator_token));
    a.citizens = 2;
    a.moderators = 1;
    a.duration = Duration::from_secs(1);
    let r = chat::run(a).await.unwrap();
    assert_eq!(r.errors.get("bye:bad_token"), Some(&1), "{}", r.summary());
    assert!(
        r.errors.keys().all(|code| code.ends_with("bad_token")),
        "{}",
        r.summary()
    );
    assert_eq!(r.connections_held, 2, "{}", r.summary());
    server.stop().await;
}
