//! WHIP ingest (RFC 9725), WHEP playback and the stage, over the media relay.
//!
//! The HTTP shape only: authorisation, meeting state, content types, sizes, headers. What a
//! session does is `townhall_media`'s business. Errors are the API's JSON `{code, message}`,
//! the body limit's 413 included.

use crate::App;
use crate::api::ApiError;
use crate::extract::{ClientAddr, LimitedBody, Meeting, MeetingRef, Studio};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use townhall_core::MeetingId;
use townhall_core::MeetingStatus;
use townhall_core::text::{TextKind, clean_optional};
use townhall_media::{Media, MediaError, Route, SessionId, SourceKind, StageSource};

/// SDP offers are a few KiB; anything near this is not one.
const MAX_BODY: usize = 64 * 1024;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/api/meetings/{id}/whip",
            post(whip_post).options(options_post),
        )
        .route(
            "/api/meetings/{id}/whip/{session}",
            patch(whip_patch)
                .delete(whip_delete)
                .options(options_session),
        )
        .route(
            "/api/meetings/{id}/whep",
            post(whep_post).options(options_post),
        )
        .route(
            "/api/meetings/{id}/whep/{session}",
            patch(whep_patch)
                .delete(whep_delete)
                .options(options_session),
        )
        .route(
            "/api/meetings/{id}/whep/{session}/layer",
            post(whep_layer).options(options_post),
        )
        .route("/api/meetings/{id}/stage", axum::routing::get(stage))
        // Refused as JSON `too_large` by `LimitedBody`.
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        let status = match e {
            MediaError::BadSdp(_)
            | MediaError::BadRequest(_)
            | MediaError::TooManyCandidates(_) => StatusCode::BAD_REQUEST,
            MediaError::NoSession => StatusCode::NOT_FOUND,
            MediaError::TooManySessions | MediaError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            MediaError::StageFull | MediaError::MediaFull | MediaError::Stopped => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

fn relay(app: &App) -> Result<&Media, ApiError> {
    app.media.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "media_disabled",
            "live video is turned off on this server",
        )
    })
}

/// The body as text of `expected` content type.
fn body_of(headers: &HeaderMap, body: &Bytes, expected: &str) -> Result<String, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(expected) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send Content-Type: {expected}"),
        ));
    }
    String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_sdp",
            "the body is not UTF-8 text",
        )
    })
}

/// The `{session}` of a session's route (the `{id}` is the meeting's extractor's).
#[derive(Deserialize)]
struct SessionPath {
    session: String,
}

fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).ok_or_else(|| ApiError::from(MediaError::NoSession))
}

/// CORS as RFC 9725 §4.1 asks, so browser-based WHIP/WHEP clients on other origins work.
fn cors(h: &mut HeaderMap, methods: &'static str) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Link, ETag, Accept-Patch"),
    );
}

async fn options_post() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    cors(h, "POST, OPTIONS");
    h.insert("accept-post", HeaderValue::from_static("application/sdp"));
    res
}

async fn options_session() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    cors(h, "PATCH, DELETE, OPTIONS");
    h.insert(
        "accept-patch",
        HeaderValue::from_static("application/trickle-ice-sdpfrag"),
    );
    res
}

/// `Link` values announcing the configured STUN/TURN servers (RFC 9725 §4.6).
fn ice_server_links(media: &Media) -> Vec<String> {
    media
        .ice_servers()
        .iter()
        .map(|s| {
            let mut link = format!("<{}>; rel=\"ice-server\"", s.url);
            if let (Some(user), Some(credential)) = (&s.username, &s.credential) {
                link.push_str(&format!(
                    "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                    user.replace('"', ""),
                    credential.replace('"', "")
                ));
            }
            link
        })
        .collect()
}

/// `201 Created` with the SDP answer and where the session lives.
fn created(
    media: &Media,
    location: String,
    session: &SessionId,
    sdp: String,
    extra_links: Vec<String>,
) -> Result<Response, ApiError> {
    let mut res = (StatusCode::CREATED, sdp).into_response();
    let h = res.headers_mut();
    let bad = |_| ApiError::unavailable("a response header could not be built");
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(bad)?,
    );
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{session}\"")).map_err(bad)?,
    );
    for link in ice_server_links(media).into_iter().chain(extra_links) {
        h.append(header::LINK, HeaderValue::from_str(&link).map_err(bad)?);
    }
    cors(h, "POST, OPTIONS");
    Ok(res)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhipQuery {
    source: Option<String>,
    label: Option<String>,
}

async fn whip_post(
    State(app): State<Arc<App>>,
    Studio(record): Studio,
    ClientAddr(ip): ClientAddr,
    query: Result<Query<WhipQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let media = relay(&app)?;
    if record.status == MeetingStatus::Ended {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "meeting_ended",
            "the meeting has ended",
        ));
    }
    let Ok(Query(query)) = query else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the query may only have source=camera|screen|interpreter and label=…",
        ));
    };
    let source = match query.source.as_deref() {
        None => SourceKind::Camera,
        Some(s) => SourceKind::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("unknown source {s:?}: use camera, screen or interpreter"),
            )
        })?,
    };
    let label = match query.label.as_deref() {
        None => None,
        Some(raw) => clean_optional(TextKind::DisplayName, raw).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("label: {e}"),
            )
        })?,
    };
    let offer = body_of(&headers, &body, "application/sdp")?;
    let answer = media
        .publish(ip, record.id.clone(), source, label, offer)
        .await?;
    // Not the session id: the session URL is the capability to end the broadcast.
    tracing::info!(meeting_id = %record.id, ?source, "publisher joined");
    let location = format!("/api/meetings/{}/whip/{}", record.id, answer.session);
    created(media, location, &answer.session, answer.sdp, Vec::new())
}

async fn whip_patch(
    State(app): State<Arc<App>>,
    Studio(record): Studio,
    Path(SessionPath { session }): Path<SessionPath>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<StatusCode, ApiError> {
    let media = relay(&app)?;
    trickle(media, Route::Whip, record.id, &session, &headers, &body).await
}

async fn whip_delete(
    State(app): State<Arc<App>>,
    Studio(record): Studio,
    Path(SessionPath { session }): Path<SessionPath>,
) -> Result<StatusCode, ApiError> {
    let media = relay(&app)?;
    media
        .close(Route::Whip, record.id.clone(), session_id(&session)?)
        .await?;
    tracing::info!(meeting_id = %record.id, "publisher left");
    Ok(StatusCode::OK)
}

async fn trickle(
    media: &Media,
    route: Route,
    meeting: MeetingId,
    session: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<StatusCode, ApiError> {
    let session = session_id(session)?;
    let fragment = body_of(headers, body, "application/trickle-ice-sdpfrag")?;
    media.trickle(route, meeting, session, fragment).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn whep_post(
    State(app): State<Arc<App>>,
    Meeting(record): Meeting,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let media = relay(&app)?;
    if record.status != MeetingStatus::Live {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "meeting_not_live",
            "the meeting is not live; video starts when it does",
        ));
    }
    let offer = body_of(&headers, &body, "application/sdp")?;
    let answer = media.view(ip, record.id.clone(), offer).await?;
    let location = format!("/api/meetings/{}/whep/{}", record.id, answer.session);
    let layer = format!("<{location}/layer>; rel=\"urn:ietf:params:whep:ext:core:layer\"");
    created(media, location, &answer.session, answer.sdp, vec![layer])
}

async fn whep_patch(
    State(app): State<Arc<App>>,
    MeetingRef(meeting): MeetingRef,
    Path(SessionPath { session }): Path<SessionPath>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<StatusCode, ApiError> {
    let media = relay(&app)?;
    trickle(media, Route::Whep, meeting, &session, &headers, &body).await
}

async fn whep_delete(
    State(app): State<Arc<App>>,
    MeetingRef(meeting): MeetingRef,
    Path(SessionPath { session }): Path<SessionPath>,
) -> Result<StatusCode, ApiError> {
    let media = relay(&app)?;
    media
        .close(Route::Whep, meeting, session_id(&session)?)
        .await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LayerBody {
    encoding_id: Option<String>,
}

async fn whep_layer(
    State(app): State<Arc<App>>,
    MeetingRef(meeting): MeetingRef,
    Path(SessionPath { session }): Path<SessionPath>,
    LimitedBody(body): LimitedBody,
) -> Result<StatusCode, ApiError> {
    let media = relay(&app)?;
    let layer: LayerBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("send {{\"encodingId\":\"q\"|\"h\"|\"f\"}} or {{}}: {e}"),
        )
    })?;
    media
        .set_layer(meeting, session_id(&session)?, layer.encoding_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct Stage {
    live: bool,
    sources: Vec<StageSource>,
}

async fn stage(
    State(app): State<Arc<App>>,
    Meeting(record): Meeting,
) -> Result<Response, ApiError> {
    let sources = match &app.media {
        Some(media) => media.stage(record.id.clone()).await?,
        None => Vec::new(),
    };
    let live = record.status == MeetingStatus::Live;
    let mut res = Json(Stage { live, sources }).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
