//! The organizer API under `/api/meetings`, guarded by the admin token (Bearer, checked by the
//! [`Organizer`] extractor before anything else). Errors are JSON
//! `{"code": "...", "message": "..."}` with a fitting status.

use crate::App;
use crate::calendar;
use crate::export;
use crate::extract::{Meeting, MeetingRef, Organizer};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use townhall_core::command::{
    EndMeeting, PublishRecord, ScheduleMeeting, SetWordFilter, StartMeeting,
};
use townhall_core::{Actor, Command, MeetingId, MeetingStatus, Publication, Schedule, Timestamp};
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
        .route("/api/meetings/{id}/questions.csv", get(questions_csv))
        .route("/api/meetings/{id}/schedule", put(schedule))
        .route("/api/meetings/{id}/publish", post(publish))
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
pub(crate) fn base(app: &App, headers: &HeaderMap) -> String {
    if let Some(url) = &app.config.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// A schedule as the API shows it: times in RFC 3339 with the meeting's own offset.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ScheduleOut {
    starts_at: String,
    ends_at: String,
    time_zone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    agenda: Vec<String>,
    qa_before_start: bool,
}

impl ScheduleOut {
    pub(crate) fn of(s: &Schedule) -> Self {
        let tz = calendar::zone(&s.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        Self {
            starts_at: calendar::rfc3339(s.starts_at, &tz),
            ends_at: calendar::rfc3339(s.ends_at, &tz),
            time_zone: s.time_zone.clone(),
            description: s.description.clone(),
            agenda: s.agenda.clone(),
            qa_before_start: s.qa_before_start,
        }
    }
}

/// A schedule as the API takes it (at creation, flat beside the title, and on its own).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleIn {
    starts_at: Option<String>,
    ends_at: Option<String>,
    time_zone: Option<String>,
    description: Option<String>,
    agenda: Option<Vec<String>>,
    qa_before_start: Option<bool>,
}

fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

impl ScheduleIn {
    fn is_empty(&self) -> bool {
        self.starts_at.is_none()
            && self.ends_at.is_none()
            && self.time_zone.is_none()
            && self.description.is_none()
            && self.agenda.is_none()
            && self.qa_before_start.is_none()
    }

    /// The command, checked as far as the API can (times, zone) and by core's own check
    /// (order, texts, agenda length), so every refusal is a 400 with a stable code.
    fn command(self, default_zone: &str) -> Result<ScheduleMeeting, ApiError> {
        let time = |field: &'static str, raw: Option<String>| {
            let raw = raw.ok_or_else(|| {
                bad_request(
                    "invalid_schedule",
                    format!("{field} is required (RFC 3339, e.g. 2026-03-12T19:00:00+01:00)"),
                )
            })?;
            calendar::parse_rfc3339(&raw).ok_or_else(|| {
                bad_request(
                    "invalid_time",
                    format!(
                        "{field} is not an RFC 3339 time with an offset                          (e.g. 2026-03-12T19:00:00+01:00): {raw:?}"
                    ),
                )
            })
        };
        let starts_at = time("starts_at", self.starts_at)?;
        let ends_at = time("ends_at", self.ends_at)?;
        let time_zone = self.time_zone.unwrap_or_else(|| default_zone.to_owned());
        if calendar::zone(&time_zone).is_none() {
            return Err(bad_request(
                "unknown_time_zone",
                format!("time_zone is not a known IANA time zone: {time_zone:?}"),
            ));
        }
        let command = ScheduleMeeting {
            starts_at,
            ends_at,
            time_zone,
            description: self.description.unwrap_or_default(),
            agenda: self.agenda.unwrap_or_default(),
            qa_before_start: self.qa_before_start.unwrap_or(false),
        };
        command
            .check()
            .map_err(|r| bad_request(r.code(), format!("schedule: {r}")))?;
        Ok(command)
    }
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
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleOut>,
    publication: Publication,
}

fn summary(base: &str, r: MeetingRecord) -> MeetingSummary {
    MeetingSummary {
        schedule: r.schedule.as_ref().map(ScheduleOut::of),
        publication: r.publication,
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
    #[serde(flatten)]
    schedule: ScheduleIn,
}

#[derive(Serialize)]
struct Created {
    id: MeetingId,
    title: String,
    status: MeetingStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleOut>,
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
    let schedule = if body.schedule.is_empty() {
        None
    } else {
        Some(body.schedule.command(&app.config.time_zone)?)
    };
    let created = app
        .hub
        .create_scheduled_meeting(&body.title, schedule)
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
            schedule: created.record.schedule.as_ref().map(ScheduleOut::of),
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

async fn schedule(
    State(app): State<Arc<App>>,
    _: Organizer,
    MeetingRef(id): MeetingRef,
    headers: HeaderMap,
    body: Result<Json<ScheduleIn>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<MeetingSummary>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request("malformed", e.body_text()))?;
    let command = body.command(&app.config.time_zone)?;
    app.hub
        .command(&id, Actor::organizer(), Command::ScheduleMeeting(command))
        .await?;
    let record = app
        .hub
        .log()
        .meeting(&id)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(ApiError::not_found)?;
    tracing::info!(meeting_id = %id, "meeting scheduled");
    Ok(Json(summary(&base(&app, &headers), record)))
}

#[derive(Serialize)]
struct Published {
    id: MeetingId,
    publication: Publication,
    /// The public record page, when the record is published.
    #[serde(skip_serializing_if = "Option::is_none")]
    record_url: Option<String>,
}

/// Publishes what citizens may see of an ended meeting. Replay is refused until meetings are
/// recorded: there is nothing to play.
async fn publish(
    State(app): State<Arc<App>>,
    _: Organizer,
    MeetingRef(id): MeetingRef,
    headers: HeaderMap,
    body: Result<Json<PublishRecord>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Published>, ApiError> {
    let Json(body) = body.map_err(|e| bad_request("malformed", e.body_text()))?;
    if body.replay {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_recording",
            "this meeting has no recording to publish (recording is not built yet)",
        ));
    }
    app.hub
        .command(
            &id,
            Actor::organizer(),
            Command::PublishRecord(body.clone()),
        )
        .await?;
    let publication = Publication {
        record: body.record,
        rejections: body.rejections,
        comments: body.comments,
        replay: body.replay,
    };
    tracing::info!(meeting_id = %id, ?publication, "record publication changed");
    let base = base(&app, &headers);
    Ok(Json(Published {
        record_url: publication.record.then(|| format!("{base}/m/{id}/record")),
        id,
        publication,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionsQuery {
    /// `foi`: for a freedom-of-information request (no authors of anonymous questions).
    #[serde(default)]
    audience: Option<String>,
    /// `da` (default) or `en`.
    #[serde(default)]
    lang: Option<String>,
}

async fn questions_csv(
    State(app): State<Arc<App>>,
    _: Organizer,
    Meeting(record): Meeting,
    query: Result<axum::extract::Query<QuestionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(query) =
        query.map_err(|e| bad_request("bad_request", e.body_text()))?;
    let audience = match query.audience.as_deref() {
        None | Some("clerk") => export::Audience::Clerk,
        Some("foi") => export::Audience::FreedomOfInformation,
        Some(other) => {
            return Err(bad_request(
                "bad_request",
                format!("audience must be clerk or foi: {other:?}"),
            ));
        }
    };
    let lang = match query.lang.as_deref() {
        None | Some("da") => export::Lang::Da,
        Some("en") => export::Lang::En,
        Some(other) => {
            return Err(bad_request(
                "bad_request",
                format!("lang must be da or en: {other:?}"),
            ));
        }
    };
    let zone_name = record
        .schedule
        .as_ref()
        .map_or(app.config.time_zone.clone(), |s| s.time_zone.clone());
    let tz = calendar::zone(&zone_name).unwrap_or(jiff::tz::TimeZone::UTC);
    let record = load(&app, record).await?;
    let body = record
        .questions_csv(audience, lang, &tz)
        .map_err(ApiError::unavailable)?;
    Ok(download(
        &record.questions_filename(audience),
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
