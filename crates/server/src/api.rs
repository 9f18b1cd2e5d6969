//! The organizer API under `/api/meetings`, guarded by the admin token (Bearer).
//! Errors are JSON `{"code": "...", "message": "..."}` with a fitting status.

use crate::App;
use crate::export;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use townhall_core::command::{EndMeeting, StartMeeting};
use townhall_core::{Actor, Command, MeetingId, MeetingStatus, Timestamp};
use townhall_hub::{CommandError, auth};
use townhall_store::MeetingRecord;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/meetings", get(list).post(create))
        .route("/api/meetings/{id}", get(show).delete(delete))
        .route("/api/meetings/{id}/start", post(start))
        .route("/api/meetings/{id}/end", post(end))
        .route("/api/meetings/{id}/links", post(links))
        .route("/api/meetings/{id}/export.json", get(export_json))
        .route("/api/meetings/{id}/export.csv", get(export_csv))
}

/// An API error with a stable code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no_meeting", "no such meeting")
    }

    pub(crate) fn unavailable(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "storage failed in API");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is unavailable, try again",
        )
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::NoMeeting => Self::not_found(),
            CommandError::Unavailable(m) => Self::unavailable(m),
            CommandError::Rejected(r) => Self::new(StatusCode::CONFLICT, r.code(), r.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            code: &'a str,
            message: &'a str,
        }
        (
            self.status,
            Json(Body {
                code: self.code,
                message: &self.message,
            }),
        )
            .into_response()
    }
}

/// Checks `Authorization: Bearer ADMIN_TOKEN`.
fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    check_bearer(
        headers,
        &app.admin_token_hash,
        "the admin token is not valid",
        "send Authorization: Bearer ADMIN_TOKEN",
    )
}

/// Checks a `Bearer` token against a stored hash: 401 `bad_token` (`invalid`) for a wrong one,
/// 401 `unauthorized` (`missing`) for none.
pub(crate) fn check_bearer(
    headers: &HeaderMap,
    hash: &str,
    invalid: &'static str,
    missing: &'static str,
) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(t) if auth::token_matches(t, hash) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            invalid,
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            missing,
        )),
    }
}

pub(crate) fn meeting_id(raw: String) -> Result<MeetingId, ApiError> {
    MeetingId::parse(raw).map_err(|_| ApiError::not_found())
}

/// Base URL for links: configured public URL, else the request's own host.
fn base(app: &App, headers: &HeaderMap) -> String {
    if let Some(url) = &app.config.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

#[derive(Serialize)]
struct MeetingSummary {
    id: MeetingId,
    title: String,
    status: MeetingStatus,
    created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<Timestamp>,
    events: u64,
    viewer_url: String,
}

fn summary(base: &str, r: MeetingRecord) -> MeetingSummary {
    MeetingSummary {
        viewer_url: format!("{base}/m/{}", r.id),
        id: r.id,
        title: r.title,
        status: r.status,
        created_at: r.created_at,
        ended_at: r.ended_at,
        events: r.last_offset,
    }
}

async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Vec<MeetingSummary>>, ApiError> {
    authorize(&app, &headers)?;
    let base = base(&app, &headers);
    let meetings = app
        .hub
        .log()
        .list_meetings()
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(
        meetings.into_iter().map(|r| summary(&base, r)).collect(),
    ))
}

async fn show(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<MeetingSummary>, ApiError> {
    authorize(&app, &headers)?;
    let id = meeting_id(id)?;
    let record = app
        .hub
        .log()
        .meeting(&id)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(summary(&base(&app, &headers), record)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    title: String,
}

#[derive(Serialize)]
struct Created {
    id: MeetingId,
    title: String,
    status: MeetingStatus,
    viewer_url: String,
    moderator_url: String,
    studio_url: String,
}

async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    authorize(&app, &headers)?;
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()))?;
    let created = app
        .hub
        .create_meeting(&body.title)
        .await
        .map_err(|e| match e {
            CommandError::Rejected(r) => {
                ApiError::new(StatusCode::BAD_REQUEST, r.code(), format!("title: {r}"))
            }
            e => e.into(),
        })?;
    let base = base(&app, &headers);
    let id = created.record.id.clone();
    tracing::info!(meeting_id = %id, "meeting created");
    Ok((
        StatusCode::CREATED,
        Json(Created {
            viewer_url: format!("{base}/m/{id}"),
            moderator_url: format!("{base}/m/{id}/moderate#{}", created.moderator_token),
            studio_url: format!("{base}/m/{id}/studio#{}", created.studio_token),
            title: created.record.title,
            status: created.record.status,
            id,
        }),
    ))
}

#[derive(Serialize)]
struct StatusBody {
    id: MeetingId,
    status: MeetingStatus,
}

async fn lifecycle(
    app: Arc<App>,
    headers: HeaderMap,
    id: String,
    command: Command,
) -> Result<Json<StatusBody>, ApiError> {
    authorize(&app, &headers)?;
    let id = meeting_id(id)?;
    let ending = matches!(command, Command::EndMeeting(EndMeeting));
    app.hub.command(&id, Actor::organizer(), command).await?;
    if ending && let Some(media) = &app.media {
        media.end_meeting(id.clone()).await;
    }
    let record = app
        .hub
        .log()
        .meeting(&id)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(ApiError::not_found)?;
    tracing::info!(meeting_id = %id, status = ?record.status, "meeting status changed");
    Ok(Json(StatusBody {
        id,
        status: record.status,
    }))
}

async fn start(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<StatusBody>, ApiError> {
    lifecycle(app, headers, id, Command::StartMeeting(StartMeeting)).await
}

async fn end(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<StatusBody>, ApiError> {
    lifecycle(app, headers, id, Command::EndMeeting(EndMeeting)).await
}

#[derive(Serialize)]
struct Links {
    moderator_url: String,
    studio_url: String,
}

async fn links(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Links>, ApiError> {
    authorize(&app, &headers)?;
    let id = meeting_id(id)?;
    let (moderator, studio) = app.hub.rotate_links(&id).await?;
    if let Some(media) = &app.media {
        media.close_publishers(id.clone()).await;
    }
    let base = base(&app, &headers);
    tracing::info!(meeting_id = %id, "secret links replaced");
    Ok(Json(Links {
        moderator_url: format!("{base}/m/{id}/moderate#{moderator}"),
        studio_url: format!("{base}/m/{id}/studio#{studio}"),
    }))
}

async fn delete(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorize(&app, &headers)?;
    let id = meeting_id(id)?;
    match app
        .hub
        .delete_meeting(&id)
        .await
        .map_err(ApiError::unavailable)?
    {
        true => {
            if let Some(media) = &app.media {
                media.end_meeting(id.clone()).await;
            }
            tracing::info!(meeting_id = %id, "meeting deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        false => Err(ApiError::not_found()),
    }
}

async fn load(app: &App, id: String) -> Result<export::Record, ApiError> {
    let id = meeting_id(id)?;
    let record = app
        .hub
        .log()
        .meeting(&id)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(ApiError::not_found)?;
    let events = townhall_store::read_all(app.hub.log().as_ref(), &id)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(export::Record::new(record, events, app.hub.now()))
}

async fn export_json(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let record = load(&app, id).await?;
    let body = serde_json::to_vec_pretty(&record.to_json()).map_err(ApiError::unavailable)?;
    Ok(download(&record.filename("json"), "application/json", body))
}

async fn export_csv(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let record = load(&app, id).await?;
    let body = record.to_csv().map_err(ApiError::unavailable)?;
    Ok(download(
        &record.filename("csv"),
        "text/csv; charset=utf-8",
        body,
    ))
}

fn download(filename: &str, mime: &'static str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}
