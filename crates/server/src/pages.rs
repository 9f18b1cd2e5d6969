//! The web pages, embedded in the binary (in debug builds read from `web/` on disk).
//! Page requests also give the browser its signed session cookie.

use crate::App;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use std::sync::Arc;
use townhall_core::MeetingId;
use townhall_hub::auth;

#[derive(RustEmbed)]
#[folder = "../../web"]
#[exclude = "e2e/*"]
#[exclude = "*/node_modules/*"]
struct Web;

pub const SESSION_COOKIE: &str = "townhall_session";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(|s, h| page(s, h, "index.html")))
        .route("/admin", get(|s, h| page(s, h, "admin.html")))
        .route("/m/{meeting}", get(meeting_page))
        .route(
            "/m/{meeting}/moderate",
            get(|s, h, p| meeting_page_named(s, h, p, "moderate.html")),
        )
        .route(
            "/m/{meeting}/studio",
            get(|s, h, p| meeting_page_named(s, h, p, "studio.html")),
        )
        .route(
            "/m/{meeting}/record",
            get(|s, h, p| meeting_page_named(s, h, p, "record.html")),
        )
        .route("/assets/{*path}", get(asset))
        .route("/brand.css", get(brand_css))
        .route("/brand/logo", get(brand_logo))
}

/// The participant id in a request's valid session cookie.
pub fn session_from_cookie(app: &App, headers: &HeaderMap) -> Option<townhall_core::ParticipantId> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == SESSION_COOKIE)
        .find_map(|(_, value)| app.hub.session_key().verify(value))
}

fn session_cookie(app: &App, headers: &HeaderMap) -> Option<HeaderValue> {
    if session_from_cookie(app, headers).is_some() {
        return None;
    }
    let token = app.hub.session_key().sign(&auth::new_participant_id());
    let secure = if app.config.https() { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000{secure}"
    );
    HeaderValue::from_str(&cookie).ok()
}

async fn page(State(app): State<Arc<App>>, headers: HeaderMap, name: &'static str) -> Response {
    html(&app, &headers, StatusCode::OK, name)
}

/// An embedded HTML page with `status`, and the session cookie when the browser has none.
fn html(app: &App, headers: &HeaderMap, status: StatusCode, name: &'static str) -> Response {
    let Some(file) = Web::get(name) else {
        return (StatusCode::NOT_FOUND, "page not found\n").into_response();
    };
    let mut res = (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        app.brand.render(&String::from_utf8_lossy(&file.data)),
    )
        .into_response();
    if let Some(cookie) = session_cookie(app, headers) {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    res
}

async fn meeting_page(state: State<Arc<App>>, headers: HeaderMap, path: Path<String>) -> Response {
    meeting_page_named(state, headers, path, "viewer.html").await
}

/// A meeting's page, or the "not found" page (404) when no such meeting exists: a mistyped or
/// deleted link leads to a clear dead end, not to a meeting page that cannot join. When the
/// log cannot answer, the page is served and says what the WebSocket finds.
async fn meeting_page_named(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(meeting): Path<String>,
    name: &'static str,
) -> Response {
    let Ok(id) = MeetingId::parse(meeting) else {
        return html(&app, &headers, StatusCode::NOT_FOUND, NOT_FOUND_PAGE);
    };
    match app.hub.log().meeting(&id).await {
        Ok(None) => html(&app, &headers, StatusCode::NOT_FOUND, NOT_FOUND_PAGE),
        Ok(Some(_)) | Err(_) => html(&app, &headers, StatusCode::OK, name),
    }
}

/// The dead end for a meeting link that leads nowhere.
const NOT_FOUND_PAGE: &str = "notfound.html";

async fn asset(Path(path): Path<String>) -> Response {
    if path.ends_with(".html") || path.contains("..") {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    match Web::get(&path) {
        Some(file) => {
            let mime = mime_guess::from_path(&path).first_or_octet_stream();
            let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..12]));
            (
                [
                    (header::CONTENT_TYPE, mime.as_ref().to_owned()),
                    (header::CACHE_CONTROL, "no-cache".to_owned()),
                    (header::ETAG, etag),
                ],
                file.data.into_owned(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// The accent colour as CSS custom properties, loaded after app.css by every page.
async fn brand_css(State(app): State<Arc<App>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        app.brand.css.clone(),
    )
        .into_response()
}

/// The configured logo. An SVG is shown through `<img>`, where it runs no script, and opened
/// directly it is under the pages' CSP, which allows no inline script.
async fn brand_logo(State(app): State<Arc<App>>) -> Response {
    match &app.brand.logo {
        Some(logo) => (
            [
                (header::CONTENT_TYPE, logo.mime),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            logo.bytes.clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no logo configured\n").into_response(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
