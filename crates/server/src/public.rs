//! What anyone may read of a meeting without a token, beside the pages: its schedule
//! (`/m/{meeting}/meeting.json`), its calendar entry (`/m/{id}/meeting.ics`) and, once the
//! organizer published it, its record (`/m/{id}/record.json`). Schedule and publication come
//! from the meeting's record (no replay); the public record replays the log once per change of
//! the log and keeps the answer.

use crate::App;
use crate::api::{ApiError, ScheduleOut, base};
use crate::calendar;
use crate::extract::Meeting;
use crate::public_record;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use townhall_core::{MeetingId, MeetingStatus, Offset, Publication};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/m/{meeting}/meeting.json", get(meeting_json))
        .route("/m/{meeting}/meeting.ics", get(meeting_ics))
        .route("/m/{meeting}/record.json", get(record_json))
}

#[derive(Serialize)]
struct PublicMeeting {
    id: MeetingId,
    title: String,
    status: MeetingStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleOut>,
    /// Whether `/m/{id}/record` has something to show.
    record_published: bool,
}

async fn meeting_json(Meeting(record): Meeting) -> Response {
    let body = PublicMeeting {
        schedule: record.schedule.as_ref().map(ScheduleOut::of),
        record_published: record.publication.record,
        id: record.id,
        title: record.title,
        status: record.status,
    };
    ([(header::CACHE_CONTROL, "no-cache")], axum::Json(body)).into_response()
}

async fn meeting_ics(
    State(app): State<Arc<App>>,
    Meeting(record): Meeting,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(schedule) = &record.schedule else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_scheduled",
            "this meeting has no date yet",
        ));
    };
    let base = base(&app, &headers);
    let url = format!("{base}/m/{}", record.id);
    let host = base
        .split_once("://")
        .map_or(base.as_str(), |(_, host)| host)
        .to_owned();
    let body = calendar::ics(&calendar::CalendarEntry {
        id: &record.id,
        title: &record.title,
        schedule,
        url: &url,
        host: &host,
        now: app.hub.now(),
    });
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"townhall-{}.ics\"", record.id),
            ),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// Public records already built, by meeting, valid while the log and the publication are
/// those they were built from. Bounded: a few ended meetings are read at a time.
#[derive(Debug, Default)]
pub struct RecordCache {
    built: Mutex<HashMap<MeetingId, Built>>,
}

/// A record's JSON with the log offset and publication it was built from.
type Built = (Offset, Publication, Arc<Vec<u8>>);

/// How many meetings' records are kept.
const CACHED_RECORDS: usize = 32;

impl RecordCache {
    fn get(&self, id: &MeetingId, offset: Offset, p: Publication) -> Option<Arc<Vec<u8>>> {
        let built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        match built.get(id) {
            Some((o, q, body)) if *o == offset && *q == p => Some(Arc::clone(body)),
            _ => None,
        }
    }

    fn put(&self, id: MeetingId, offset: Offset, p: Publication, body: Arc<Vec<u8>>) {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if built.len() >= CACHED_RECORDS && !built.contains_key(&id) {
            // Any entry will do: a miss costs one replay.
            if let Some(evict) = built.keys().next().cloned() {
                built.remove(&evict);
            }
        }
        built.insert(id, (offset, p, body));
    }
}

async fn record_json(
    State(app): State<Arc<App>>,
    Meeting(record): Meeting,
) -> Result<Response, ApiError> {
    if !record.publication.record || record.status != MeetingStatus::Ended {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_published",
            "the record of this meeting has not been published",
        ));
    }
    let (id, offset, publication) = (record.id.clone(), record.last_offset, record.publication);
    let body = match app.record_cache.get(&id, offset, publication) {
        Some(body) => body,
        None => {
            let events = townhall_store::read_all(app.hub.log().as_ref(), &id)
                .await
                .map_err(ApiError::unavailable)?;
            let built = public_record::build(&record, &events, &app.config.time_zone);
            let body = Arc::new(serde_json::to_vec(&built).map_err(ApiError::unavailable)?);
            app.record_cache
                .put(id, offset, publication, Arc::clone(&body));
            body
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body.as_ref().clone(),
    )
        .into_response())
}
