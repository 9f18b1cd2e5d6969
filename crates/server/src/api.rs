//! The organizer API under `/api/meetings`, guarded by the admin token (Bearer, checked by the
//! [`Organizer`] extractor before anything else). Errors are JSON
//! `{"code": "...", "message": "..."}` with a fitting status.

use crate::App;
use crate::export;
use crate::extract::{Meeting, MeetingRef, Organizer};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use townhall_core::command::{EndMeeting, SetWordFilter, StartMeeting};
use townhall_core::{Actor, Command, MeetingId, MeetingStatus, Timestamp};
use townhall_hub::CommandError;
use townhall_store::MeetingRecord;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/meetings", get(list).post(create))
        .route("/api/meetings/{id}", get(show).delete(delete))
        .route("/api/meetings/{id}/start", post(start))
        .route("/api/meetings/{id}/end", post(end))
        .route("/api/meetings/{id}/links", post(links))
        .route("/api/meetings/{id}/word-filter", put(word_filter))
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
    _: Organizer,
    headers: HeaderMap,
) -> Result<Json<Vec<MeetingSummary>>, ApiError> {
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
    _: Organizer,
    Meeting(record): Meeting,
    headers: HeaderMap,
) -> Result<Json<MeetingSummary>, ApiError> {
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
    _: Organizer,
    headers: HeaderMap,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
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
    id: MeetingId,
    command: Command,
) -> Result<Json<StatusBody>, ApiError> {
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
    _: Organizer,
    MeetingRef(id): MeetingRef,
) -> Result<Json<StatusBody>, ApiError> {
    lifecycle(app, id, Command::StartMeeting(StartMeeting)).await
}

async fn end(
    State(app): State<Arc<App>>,
    _: Organizer,
    MeetingRef(id): MeetingRef,
) -> Result<Json<StatusBody>, ApiError> {
    lifecycle(app, id, Command::EndMeeting(EndMeeting)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WordFilterBody {
    words: Option<Vec<String>>,
}

/// The meeting's filter words (`null`: the Danish and English defaults); moderators can edit
/// them on their page too.
async fn word_filter(
    State(app): State<Arc<App>>,
    _: Organizer,
    MeetingRef(id): MeetingRef,
    body: Result<Json<WordFilterBody>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()))?;
    let command = Command::SetWordFilter(SetWordFilter { words: body.words });
    app.hub
        .command(&id, Actor::organizer(), command)
        .await
        .map_err(|e| match e {
            CommandError::Rejected(r @ townhall_core::Rejection::InvalidFilter) => {
                ApiError::new(StatusCode::BAD_REQUEST, r.code(), r.to_string())
            }
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct Links {
    moderator_url: String,
    studio_url: String,
}

async fn links(
    State(app): State<Arc<App>>,
    _: Organizer,
    MeetingRef(id): MeetingRef,
    headers: HeaderMap,
) -> Result<Json<Links>, ApiError> {
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
    _: Organizer,
    MeetingRef(id): MeetingRef,
) -> Result<StatusCode, ApiError> {
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

async fn load(app: &App, record: MeetingRecord) -> Result<export::Record, ApiError> {
    let events = townhall_store::read_all(app.hub.log().as_ref(), &record.id)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(export::Record::new(record, events, app.hub.now()))
}

async fn export_json(
    State(app): State<Arc<App>>,
    _: Organizer,
    Meeting(record): Meeting,
) -> Result<Response, ApiError> {
    let record = load(&app, record).await?;
    let body = serde_json::to_vec_pretty(&record.to_json()).map_err(ApiError::unavailable)?;
    Ok(download(&record.filename("json"), "application/json", body))
}

async fn export_csv(
    State(app): State<Arc<App>>,
    _: Organizer,
    Meeting(record): Meeting,
) -> Result<Response, ApiError> {
    let record = load(&app, record).await?;
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
