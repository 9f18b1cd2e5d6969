//! What the HTTP layer gives away or believes (issue 8): answers with secrets are never cached,
//! HSTS over https, tokens are checked before a body is read, the body limit answers in JSON,
//! data files are private, and behind a proxy a client cannot choose its own address.

use serde_json::{Value, json};
use std::net::IpAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use townhall_testkit::*;

fn cache_control(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The create and `/links` answers carry the moderator and studio secrets: no cache may keep
/// them, nor any other organizer API answer, nor a page that sets the session cookie.
#[tokio::test]
async fn answers_that_carry_secrets_are_never_stored() {
    let server = TestServer::start().await;
    let base = &server.base;
    let created = http()
        .post(format!("{base}/api/meetings"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"title": "Hemmelige links"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(cache_control(&created).as_deref(), Some("no-store"));
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for res in [
        http()
            .post(format!("{base}/api/meetings/{id}/links"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
        http()
            .get(format!("{base}/api/meetings"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
        // Refusals too: nothing under /api is cacheable.
        http()
            .get(format!("{base}/api/meetings/{id}"))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(
            cache_control(&res).as_deref(),
            Some("no-store"),
            "{}",
            res.url()
        );
    }
    let page = http().get(format!("{base}/m/{id}")).send().await.unwrap();
    assert!(page.headers().contains_key("set-cookie"));
    assert_eq!(cache_control(&page).as_deref(), Some("no-store"));
    // Assets stay cacheable (revalidated).
    let asset = http()
        .get(format!("{base}/assets/js/connection.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(cache_control(&asset).as_deref(), Some("no-cache"));
    server.stop().await;
}

/// Served over https (`public_url`), every answer tells browsers to stay on https; over plain
/// http (a test or a local demo) none does.
#[tokio::test]
async fn hsts_is_sent_when_served_over_https() {
    let plain = TestServer::start().await;
    let res = http()
        .get(format!("{}/healthz", plain.base))
        .send()
        .await
        .unwrap();
    assert!(!res.headers().contains_key("strict-transport-security"));
    plain.stop().await;

    let https =
        TestServer::start_with(|c| c.public_url = Some("https://moede.kommune.example".into()))
            .await;
    for path in ["/healthz", "/", "/api/meetings"] {
        let res = http()
            .get(format!("{}{path}", https.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    https.stop().await;
}

/// The token is checked from the headers before the body is read: a request without the right
/// token is refused as such whatever its body (it used to be parsed first).
#[tokio::test]
async fn tokens_are_checked_before_the_body_is_read() {
    let server = TestServer::start().await;
    let base = &server.base;
    let live = live_meeting(base).await;
    let code = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap()["code"].clone())
    };
    let res = http()
        .post(format!("{base}/api/meetings"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(code(res).await, (401, json!("unauthorized")));
    let res = http()
        .post(format!("{base}/api/meetings"))
        .bearer_auth("not-the-admin-token")
        .json(&json!({"title": "x", "unknown": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(res).await, (401, json!("bad_token")));
    // The body is not even waited for: headers that announce one, and no body, get the 401.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"POST /api/meetings HTTP/1.1\r\nHost: townhall\r\n\
          Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut head))
        .await
        .expect("the server waited for the body before checking the token")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 401");
    // A WHIP offer far over the body limit with a wrong studio token: refused for the token.
    let res = http()
        .post(format!("{base}/api/meetings/{}/whip", live.id))
        .bearer_auth(&live.moderator_token)
        .header("content-type", "application/sdp")
        .body(vec![b'x'; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(code(res).await, (401, json!("bad_token")));
    // With the right token the create works as before.
    let res = http()
        .post(format!("{base}/api/meetings"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(code(res).await, (400, json!("malformed")));
    server.stop().await;
}

/// A WHIP or WHEP body over the limit is the documented JSON `too_large`, whatever its size
/// (axum's own refusal was plain text).
#[tokio::test]
async fn a_media_body_over_the_limit_is_refused_in_json() {
    let server = TestServer::start().await;
    let base = &server.base;
    let live = live_meeting(base).await;
    for size in [65 * 1024, 300 * 1024, 3 * 1024 * 1024] {
        for (route, token) in [("whip", Some(&live.studio_token)), ("whep", None)] {
            let mut req = http()
                .post(format!("{base}/api/meetings/{}/{route}", live.id))
                .header("content-type", "application/sdp")
                .body(vec![b'x'; size]);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 413, "{route} {size}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["code"], "too_large", "{route} {size}");
        }
    }
    server.stop().await;
}

/// The database (with every question), its WAL and the server's secrets are readable by the
/// server's user only, and so is the folder.
#[cfg(unix)]
#[tokio::test]
async fn data_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start_with(|c| {
        c.admin_token = None;
        c.data_dir.push("nested");
    })
    .await;
    let data = server.app.config.data_dir.clone();
    let mut citizen = Client::join(
        &server.ws_url(),
        &server
            .app
            .hub
            .create_meeting("Private filer")
            .await
            .unwrap()
            .record
            .id
            .to_string(),
        None,
    )
    .await;
    citizen
        .run(townhall_core::Command::AskQuestion(
            townhall_core::command::AskQuestion {
                text: "Hvem kan læse dette?".into(),
                anonymous: false,
            },
        ))
        .await
        .unwrap();
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data folder");
    for file in [
        "townhall.sqlite",
        "townhall.sqlite-wal",
        "townhall.sqlite-shm",
        "session.key",
        "admin-token.sha256",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    citizen.close().await;
    server.stop().await;
}

/// Row 7: with `trust_proxy` the server took the left-most `X-Forwarded-For` entry, which the
/// client writes itself: 12 of 12 connections joined past a cap of 5 per address. Now the
/// client is the right-most entry none of our proxies added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_a_client_cannot_choose_its_address() {
    let server = TestServer::start_with(|c| {
        c.trust_proxy = true;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        c.hub.max_connections_per_ip = 5;
    })
    .await;
    let meeting = live_meeting(&server.base).await;
    let proxy: IpAddr = "127.0.0.1".parse().unwrap();
    let outsider: IpAddr = "127.0.0.3".parse().unwrap();
    // Through our proxies (127.0.0.1, and an inner one at 10.0.0.2): the attacker rotates the
    // entries it writes itself; our proxies appended its real address and their own.
    let mut refusals = Vec::new();
    let mut attacker = Vec::new();
    for i in 0..12 {
        let xff = format!("192.0.2.{i}, 198.51.100.7, 10.0.0.2");
        let mut c = Client::connect_from(server.addr, proxy, &[("x-forwarded-for", &xff)]).await;
        if let Err(code) = c.try_join(&meeting.id).await {
            refusals.push(code);
        }
        attacker.push(c);
    }
    assert_eq!(
        refusals.len(),
        7,
        "the cap of 5 holds for the forwarded address"
    );
    assert!(
        refusals.iter().all(|code| code == "too_many_connections"),
        "{refusals:?}"
    );
    // Another citizen behind the same proxies is not affected.
    let mut honest = Client::connect_from(
        server.addr,
        proxy,
        &[("x-forwarded-for", "203.0.113.20, 10.0.0.2")],
    )
    .await;
    assert_eq!(honest.try_join(&meeting.id).await, Ok(()));
    // A peer that is not one of our proxies is its own address, whatever it forwards.
    let mut direct = Vec::new();
    let mut outcomes = Vec::new();
    for i in 0..6 {
        let xff = format!("203.0.113.{i}");
        let mut c = Client::connect_from(server.addr, outsider, &[("x-forwarded-for", &xff)]).await;
        outcomes.push(c.try_join(&meeting.id).await);
        direct.push(c);
    }
    assert_eq!(
        outcomes.iter().filter(|r| r.is_ok()).count(),
        5,
        "{outcomes:?}"
    );
    server.stop().await;
}

/// The same address reaches the media relay: its per-address session cap holds against a
/// rotating left-most `X-Forwarded-For` on WHEP.
#[tokio::test]
async fn whep_sessions_are_counted_by_the_forwarded_address() {
    let server = TestServer::start_with(|c| {
        c.trust_proxy = true;
        c.media.max_sessions_per_ip = 2;
    })
    .await;
    let live = live_meeting(&server.base).await;
    let whep = format!("{}/api/meetings/{}/whep", server.base, live.id);
    let offer = |i: usize| {
        http()
            .post(&whep)
            .header("content-type", "application/sdp")
            .header("x-forwarded-for", format!("192.0.2.{i}, 198.51.100.7"))
            .body(WHEP_OFFER)
            .send()
    };
    let mut statuses = Vec::new();
    for i in 0..3 {
        let res = offer(i).await.unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        statuses.push(status);
        if status != 201 {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["code"], "too_many_sessions", "{body}");
        }
    }
    assert_eq!(statuses, [201, 201, 429]);
    // A viewer at another address still gets in.
    let res = http()
        .post(&whep)
        .header("content-type", "application/sdp")
        .header("x-forwarded-for", "203.0.113.9")
        .body(WHEP_OFFER)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    server.stop().await;
}

/// A WHEP offer as a browser writes it (receive audio and VP8 video), never followed by a
/// connection: enough for the relay to open a session.
const WHEP_OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:QpYx\r\n\
a=ice-pwd:Vk7dP2qLm9sR4tW8yZ1bC6fH\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 3C:4E:9A:1F:55:0B:7D:22:8E:61:A4:C9:03:F7:2B:96:1D:E8:40:6A:BF:13:77:C2:59:0E:A6:D4:38:F1:82:6B\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:QpYx\r\n\
a=ice-pwd:Vk7dP2qLm9sR4tW8yZ1bC6fH\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 3C:4E:9A:1F:55:0B:7D:22:8E:61:A4:C9:03:F7:2B:96:1D:E8:40:6A:BF:13:77:C2:59:0E:A6:D4:38:F1:82:6B\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtcp-fb:96 nack pli\r\n";
