//! Before and after a meeting (issue 12): scheduling through the organizer API with stable
//! codes for bad dates, the public schedule and calendar file, the clerk's questions CSV (BOM,
//! æøå, one row per question, the freedom-of-information variant), publishing, and the public
//! record.

use reqwest::Response;
use serde_json::{Value, json};
use townhall_core::command::{
    ApproveQuestion, AskQuestion, MarkAnswered, PutOnAir, RejectQuestion, SetName,
};
use townhall_core::{Command, QuestionId};
use townhall_testkit::*;

async fn post(base: &str, path: &str, body: Value) -> Response {
    http()
        .post(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn put(base: &str, path: &str, body: Value) -> Response {
    http()
        .put(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(base: &str, path: &str) -> Response {
    http()
        .get(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
}

async fn code(res: Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn meetings_are_scheduled_and_bad_dates_get_stable_codes() {
    let server = TestServer::start().await;
    let base = &server.base;
    let res = post(
        base,
        "/api/meetings",
        json!({
            "title": "Borgermøde: Ny skole",
            "starts_at": "2026-03-12T17:00:00Z",
            "ends_at": "2026-03-12T21:00:00+01:00",
            "description": "Om skolen; byggeriet, økonomien",
            "agenda": ["Velkomst", "Spørgsmål"],
            "qa_before_start": true
        }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    // Shown in the meeting's zone (Copenhagen by default), with its offset.
    assert_eq!(
        created["schedule"]["starts_at"],
        "2026-03-12T18:00:00+01:00"
    );
    assert_eq!(created["schedule"]["ends_at"], "2026-03-12T21:00:00+01:00");
    assert_eq!(created["schedule"]["time_zone"], "Europe/Copenhagen");
    assert_eq!(created["schedule"]["agenda"][1], "Spørgsmål");

    let valid = json!({"title": "x", "starts_at": "2026-03-12T18:00:00+01:00",
        "ends_at": "2026-03-12T20:00:00+01:00"});
    let with = |k: &str, v: Value| {
        let mut b = valid.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("starts_at", json!("2026-03-12 18:00")), "invalid_time"),
        (
            with("starts_at", json!("2026-03-12T18:00:00")),
            "invalid_time",
        ),
        (
            with("ends_at", json!("2026-02-30T20:00:00+01:00")),
            "invalid_time",
        ),
        (
            with("ends_at", json!("2026-03-12T17:00:00+01:00")),
            "invalid_schedule",
        ),
        (
            with("ends_at", json!("2026-03-12T18:00:00+01:00")),
            "invalid_schedule",
        ),
        (
            json!({"title": "x", "starts_at": "2026-03-12T18:00:00+01:00"}),
            "invalid_schedule",
        ),
        (
            json!({"title": "x", "description": "uden tid"}),
            "invalid_schedule",
        ),
        (
            with("time_zone", json!("Europe/Atlantis")),
            "unknown_time_zone",
        ),
        (with("agenda", json!(vec!["punkt"; 31])), "invalid_schedule"),
        (with("agenda", json!(["a\nb"])), "text_invalid"),
        (with("starts_at", json!(12)), "malformed"),
    ];
    for (body, expected) in cases {
        let (status, got) = code(post(base, "/api/meetings", body.clone()).await).await;
        assert_eq!((status, got.as_str()), (400, expected), "{body}");
    }

    // Update: the whole schedule is replaced; refused ones change nothing.
    let path = format!("/api/meetings/{id}/schedule");
    let (status, got) =
        code(put(base, &path, json!({"starts_at": "nu", "ends_at": "snart"})).await).await;
    assert_eq!((status, got.as_str()), (400, "invalid_time"));
    let res = put(
        base,
        &path,
        json!({"starts_at": "2026-06-01T19:00:00+02:00", "ends_at": "2026-06-01T21:00:00+02:00",
               "time_zone": "Europe/Copenhagen"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let summary: Value = res.json().await.unwrap();
    assert_eq!(
        summary["schedule"]["starts_at"],
        "2026-06-01T19:00:00+02:00"
    );
    assert_eq!(summary["schedule"]["qa_before_start"], false);
    assert!(summary["schedule"].get("description").is_none());

    // The public schedule and the calendar file.
    let public: Value = http()
        .get(format!("{base}/m/{id}/meeting.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(public["title"], "Borgermøde: Ny skole");
    assert_eq!(public["schedule"]["starts_at"], "2026-06-01T19:00:00+02:00");
    assert!(public.get("moderator_token_hash").is_none());
    let ics = http()
        .get(format!("{base}/m/{id}/meeting.ics"))
        .send()
        .await
        .unwrap();
    assert_eq!(ics.status(), 200);
    assert!(
        ics.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let ics = ics.text().await.unwrap();
    assert!(ics.contains("\r\nDTSTART:20260601T170000Z\r\nDTEND:20260601T190000Z\r\n"));
    assert!(ics.contains("\r\nSUMMARY:Borgermøde: Ny skole\r\n"));
    assert!(ics.contains(&format!("URL:{base}/m/{id}\r\n")));

    // A meeting without a date has no calendar file; after the end nothing is rescheduled.
    let plain = create_meeting(base, "Uden dato").await;
    let (status, got) = code(
        http()
            .get(format!("{base}/m/{}/meeting.ics", plain.id))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, got.as_str()), (404, "not_scheduled"));
    assert_eq!(
        post(base, &format!("/api/meetings/{id}/end"), json!({}))
            .await
            .status(),
        200
    );
    let (status, got) = code(
        put(
            base,
            &path,
            valid
                .clone()
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.remove("title");
                    Value::Object(o)
                })
                .unwrap(),
        )
        .await,
    )
    .await;
    assert_eq!((status, got.as_str()), (409, "meeting_ended"));
    server.stop().await;
}

/// Runs a small meeting: Anna (named) asks one question that is answered, one anonymous that
/// is on air when the meeting ends, one that is rejected, and one nobody moderates.
async fn run_meeting(server: &TestServer) -> String {
    let base = &server.base;
    let m = live_meeting(base).await;
    let mut anna = Client::join(&server.ws_url(), &m.id, None).await;
    let mut moderator = Client::join(&server.ws_url(), &m.id, Some(&m.moderator_token)).await;
    anna.run(Command::SetName(SetName {
        name: "Anna Ærø".into(),
    }))
    .await
    .unwrap();
    let ask = |text: &str, anonymous| {
        Command::AskQuestion(AskQuestion {
            text: text.into(),
            anonymous,
        })
    };
    for (text, anonymous) in [
        ("Hvornår åbner skolen på Øresundsvej?", false),
        ("Hvad koster det, og hvem betaler?", true),
        ("=HYPERLINK(\"x\")", false),
        ("Ikke behandlet", false),
    ] {
        anna.run(ask(text, anonymous)).await.unwrap();
    }
    let q = QuestionId;
    for cmd in [
        Command::ApproveQuestion(ApproveQuestion { question: q(1) }),
        Command::ApproveQuestion(ApproveQuestion { question: q(2) }),
        Command::RejectQuestion(RejectQuestion {
            question: q(3),
            reason: "Uden for emnet".into(),
        }),
        Command::PutOnAir(PutOnAir { question: q(1) }),
        Command::MarkAnswered(MarkAnswered { question: q(1) }),
        Command::PutOnAir(PutOnAir { question: q(2) }),
    ] {
        moderator.run(cmd).await.unwrap();
    }
    assert_eq!(
        post(base, &format!("/api/meetings/{}/end", m.id), json!({}))
            .await
            .status(),
        200
    );
    m.id
}

#[tokio::test]
async fn the_questions_csv_is_for_a_clerk_and_the_json_carries_the_same_times() {
    let server = TestServer::start().await;
    let base = &server.base;
    let id = run_meeting(&server).await;

    let res = get(base, &format!("/api/meetings/{id}/questions.csv")).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()[reqwest::header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains(&format!("townhall-{id}-questions.csv"))
    );
    let bytes = res.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 byte order mark first");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let headers = rows.headers().unwrap().clone();
    assert_eq!(&headers[1], "spørgsmål");
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4, "one row per question");
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(
        &rows[0][col("spørgsmål")],
        "Hvornår åbner skolen på Øresundsvej?"
    );
    assert_eq!(&rows[0][col("spørger")], "Anna Ærø");
    assert_eq!(&rows[0][col("status")], "besvaret");
    // Local time (Copenhagen), no zone suffix, every step of an answered question.
    for step in ["stillet", "godkendt", "i udsendelsen", "besvaret"] {
        let cell = &rows[0][col(step)];
        assert_eq!(cell.len(), 19, "{step}: {cell:?}");
    }
    // The clerk sees who asked anonymously, marked; the question on air at the end is ended.
    assert_eq!(&rows[1][col("anonym")], "ja");
    assert_eq!(&rows[1][col("spørger")], "Anna Ærø");
    assert_eq!(&rows[1][col("status")], "i udsendelsen da mødet sluttede");
    assert_eq!(&rows[1][col("besvaret")], "");
    assert_eq!(&rows[2][col("spørgsmål")], "'=HYPERLINK(\"x\")");
    assert_eq!(&rows[2][col("begrundelse")], "Uden for emnet");
    assert_eq!(&rows[3][col("status")], "ikke behandlet");

    // Freedom of information: no authors of anonymous questions; English on request.
    let foi = get(
        base,
        &format!("/api/meetings/{id}/questions.csv?audience=foi&lang=en"),
    )
    .await;
    let foi = foi.text().await.unwrap();
    let foi = foi.trim_start_matches('\u{feff}');
    let mut reader = csv::Reader::from_reader(foi.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let author = headers.iter().position(|h| h == "author").unwrap();
    assert_eq!(&rows[1][author], "anonymous");
    assert_eq!(&rows[0][author], "Anna Ærø");
    assert_eq!(
        rows.iter()
            .filter(|r| r.iter().any(|c| c.contains("Ærø")))
            .count(),
        3
    );
    let (status, got) = code(
        get(
            base,
            &format!("/api/meetings/{id}/questions.csv?audience=all"),
        )
        .await,
    )
    .await;
    assert_eq!((status, got.as_str()), (400, "bad_request"));

    // The JSON export carries the same per-question times.
    let record: Value = get(base, &format!("/api/meetings/{id}/export.json"))
        .await
        .json()
        .await
        .unwrap();
    let q1 = &record["questions"][0];
    for field in ["asked_at", "approved_at", "on_air_at", "answered_at"] {
        assert!(q1[field].as_str().unwrap().ends_with('Z'), "{field}: {q1}");
    }
    assert_eq!(record["questions"][1]["status"], "ended");
    assert!(record["questions"][1]["answered_at"].is_null());
    assert!(record["questions"][1]["ended_at"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn the_record_is_public_only_once_published_and_never_names_anonymous_authors() {
    let server = TestServer::start().await;
    let base = &server.base;
    let live = live_meeting(base).await;
    let (status, got) = code(
        post(
            base,
            &format!("/api/meetings/{}/publish", live.id),
            json!({"record": true}),
        )
        .await,
    )
    .await;
    assert_eq!((status, got.as_str()), (409, "not_ended"));

    let id = run_meeting(&server).await;
    let public = |path: String| async move { http().get(path).send().await.unwrap() };
    let (status, got) = code(public(format!("{base}/m/{id}/record.json")).await).await;
    assert_eq!((status, got.as_str()), (404, "not_published"));
    let path = format!("/api/meetings/{id}/publish");
    let (status, got) =
        code(post(base, &path, json!({"record": true, "replay": true})).await).await;
    assert_eq!((status, got.as_str()), (409, "no_recording"));
    let (status, got) = code(post(base, &path, json!({"record": true, "extra": 1})).await).await;
    assert_eq!((status, got.as_str()), (400, "malformed"));
    let res = post(base, &path, json!({"record": true, "rejections": true})).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["record_url"], format!("{base}/m/{id}/record"));

    let record: Value = public(format!("{base}/m/{id}/record.json"))
        .await
        .json()
        .await
        .unwrap();
    let questions = record["questions"].as_array().unwrap();
    let outcomes: Vec<&str> = questions
        .iter()
        .map(|q| q["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["answered", "ended", "rejected"],
        "the unmoderated one is left out"
    );
    assert_eq!(questions[0]["author_name"], "Anna Ærø");
    assert!(questions[1].get("author_name").is_none());
    assert_eq!(questions[2]["reason"], "Uden for emnet");
    assert!(record.get("comments").is_none());
    let text = record.to_string();
    assert!(!text.contains("\"author\""), "no participant ids");

    // Withdrawn: gone again. The page itself is always served.
    assert_eq!(post(base, &path, json!({})).await.status(), 200);
    let (status, got) = code(public(format!("{base}/m/{id}/record.json")).await).await;
    assert_eq!((status, got.as_str()), (404, "not_published"));
    assert_eq!(public(format!("{base}/m/{id}/record")).await.status(), 200);
    server.stop().await;
}
