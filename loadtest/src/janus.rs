//! A viewer of a Janus streaming-plugin mountpoint over Janus's HTTP API, with the same
//! webrtc-rs viewer code as the WHEP viewers ([`WhepViewer::answer_offer`]): create a session,
//! attach `janus.plugin.streaming`, `watch` the mountpoint, long-poll the session for the
//! event that carries Janus's offer, answer with `start` + JSEP, keep the session alive.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use townhall_client::rtc::{RtcContext, RtcError, WhepViewer};

/// How long to wait for the offer event.
const OFFER_TIMEOUT: Duration = Duration::from_secs(30);
/// Janus drops sessions idle for `session_timeout` (60 s by default).
const KEEPALIVE_EVERY: Duration = Duration::from_secs(25);

/// A Janus session with one streaming handle. Destroy it with [`JanusSession::destroy`].
#[derive(Debug)]
pub struct JanusSession {
    http: reqwest::Client,
    session_url: String,
    keepalive: JoinHandle<()>,
}

fn transaction() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn protocol(e: impl std::fmt::Display) -> RtcError {
    RtcError::Protocol(e.to_string())
}

/// POSTs a Janus request and returns the answer when it is `success` or `ack`.
async fn request(http: &reqwest::Client, url: &str, mut body: Value) -> Result<Value, RtcError> {
    body["transaction"] = json!(transaction());
    let res = http.post(url).json(&body).send().await?;
    if !res.status().is_success() {
        return Err(RtcError::Http {
            status: res.status().as_u16(),
            code: None,
            message: res.text().await.ok(),
        });
    }
    let answer: Value = res.json().await?;
    match answer["janus"].as_str() {
        Some("success" | "ack") => Ok(answer),
        _ => Err(janus_error(&answer)),
    }
}

fn janus_error(answer: &Value) -> RtcError {
    RtcError::Http {
        status: 200,
        code: answer["error"]["code"]
            .as_i64()
            .map(|c| format!("janus_{c}")),
        message: Some(answer.to_string().chars().take(300).collect()),
    }
}

/// The offer SDP of a streaming-plugin event, or the plugin's error.
pub fn offer_in(event: &Value) -> Option<Result<String, RtcError>> {
    if event["janus"] != "event" {
        return None;
    }
    let data = &event["plugindata"]["data"];
    if let Some(err) = data["error"].as_str() {
        return Some(Err(RtcError::Http {
            status: 200,
            code: data["error_code"]
                .as_i64()
                .map(|c| format!("streaming_{c}")),
            message: Some(err.to_owned()),
        }));
    }
    let jsep = &event["jsep"];
    (jsep["type"] == "offer").then(|| {
        jsep["sdp"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| protocol("offer without sdp"))
    })
}

/// Watches mountpoint `id` of the Janus at `janus_url` (e.g. `http://127.0.0.1:8088/janus`).
pub async fn watch(
    ctx: &RtcContext,
    janus_url: &str,
    id: u64,
) -> Result<(WhepViewer, JanusSession), RtcError> {
    let started = Instant::now();
    let http = ctx.http().clone();
    let base = janus_url.trim_end_matches('/');
    let created = request(&http, base, json!({"janus": "create"})).await?;
    let session = created["data"]["id"]
        .as_u64()
        .ok_or_else(|| protocol("no session id"))?;
    let session_url = format!("{base}/{session}");
    let keepalive = tokio::spawn(keep_alive(http.clone(), session_url.clone()));
    let janus = JanusSession {
        http: http.clone(),
        session_url: session_url.clone(),
        keepalive,
    };
    match watch_in(ctx, &http, &session_url, id, started).await {
        Ok(viewer) => Ok((viewer, janus)),
        Err(e) => {
            janus.destroy().await;
            Err(e)
        }
    }
}

async fn watch_in(
    ctx: &RtcContext,
    http: &reqwest::Client,
    session_url: &str,
    id: u64,
    started: Instant,
) -> Result<WhepViewer, RtcError> {
    let attached = request(
        http,
        session_url,
        json!({"janus": "attach", "plugin": "janus.plugin.streaming"}),
    )
    .await?;
    let handle = attached["data"]["id"]
        .as_u64()
        .ok_or_else(|| protocol("no handle id"))?;
    let handle_url = format!("{session_url}/{handle}");
    request(
        http,
        &handle_url,
        json!({"janus": "message", "body": {"request": "watch", "id": id}}),
    )
    .await?;
    let offer = tokio::time::timeout(OFFER_TIMEOUT, next_offer(http, session_url))
        .await
        .map_err(|_| protocol("no offer from Janus"))??;
    let location = reqwest::Url::parse(&handle_url).map_err(protocol)?;
    WhepViewer::answer_offer(ctx, started, &offer, location, |sdp| async move {
        request(
            http,
            &handle_url,
            json!({"janus": "message", "body": {"request": "start"},
                   "jsep": {"type": "answer", "sdp": sdp}}),
        )
        .await
        .map(|_| ())
    })
    .await
}

/// Long-polls the session until an event carries an offer (or the plugin's error).
async fn next_offer(http: &reqwest::Client, session_url: &str) -> Result<String, RtcError> {
    loop {
        let res = http
            .get(format!("{session_url}?maxev=5&rid={}", transaction()))
            .send()
            .await?;
        let events: Value = res.json().await?;
        let events = match events {
            Value::Array(a) => a,
            one => vec![one],
        };
        for e in &events {
            if let Some(found) = offer_in(e) {
                return found;
            }
            if e["janus"] == "error" {
                return Err(janus_error(e));
            }
        }
    }
}

async fn keep_alive(http: reqwest::Client, session_url: String) {
    let mut tick = tokio::time::interval(KEEPALIVE_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        let _ = request(&http, &session_url, json!({"janus": "keepalive"})).await;
    }
}

impl JanusSession {
    /// Stops the keepalives and destroys the session (and with it the handle and its
    /// PeerConnection on Janus's side).
    pub async fn destroy(self) {
        self.keepalive.abort();
        let _ = request(&self.http, &self.session_url, json!({"janus": "destroy"})).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_offer_or_the_plugin_error() {
        let offer = json!({"janus": "event", "plugindata": {"plugin": "janus.plugin.streaming",
            "data": {"streaming": "event", "result": {"status": "preparing"}}},
            "jsep": {"type": "offer", "sdp": "v=0\r\n"}});
        assert_eq!(offer_in(&offer).unwrap().unwrap(), "v=0\r\n");
        let err = json!({"janus": "event", "plugindata": {"data":
            {"streaming": "event", "error_code": 455, "error": "No such mountpoint/stream 9"}}});
        let e = offer_in(&err).unwrap().unwrap_err();
        assert_eq!(e.code(), Some("streaming_455"));
        assert!(offer_in(&json!({"janus": "webrtcup"})).is_none());
        assert!(offer_in(&json!({"janus": "event", "plugindata": {"data": {}}})).is_none());
    }
}
