//! The WebSocket endpoint `/ws`: checks the Origin, finds the participant from the session
//! cookie and the client's address ([`ClientAddr`]), and hands the socket to the hub.

use crate::App;
use crate::extract::ClientAddr;
use crate::pages::session_from_cookie;
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use townhall_hub::auth;
use townhall_hub::session::{self, Identity};

/// Hard limit of one WebSocket message; the hub answers smaller oversized frames with an error.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/ws", get(upgrade))
}

/// Browsers send an Origin; it must be this server's own (or configured). Other clients
/// (load testers, scripts) send none.
fn origin_allowed(app: &App, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if app.config.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    if app.config.public_url.as_deref() == Some(origin) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        == Some(host)
}

/// Unwritten bytes one connection's WebSocket layer may hold.
const MAX_WRITE_BUFFER_BYTES: usize = 1024 * 1024;

async fn upgrade(
    State(app): State<Arc<App>>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&app, &headers) {
        return (StatusCode::FORBIDDEN, "websocket origin not allowed\n").into_response();
    }
    let participant = session_from_cookie(&app, &headers).unwrap_or_else(auth::new_participant_id);
    let identity = Identity { participant, ip };
    let hub = app.hub.clone();
    ws.read_buffer_size(4 * 1024)
        // A connection's write buffer keeps the capacity of the largest batch it wrote; write
        // out early so it stays small (snapshots come in bounded parts for the same reason).
        .write_buffer_size(4 * 1024)
        // What the WebSocket layer may hold unwritten (pongs to a client that never reads
        // pile up here): past it the connection fails instead of growing.
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| session::serve(hub, socket, identity))
}
