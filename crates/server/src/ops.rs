//! Operations endpoints: `/healthz` (the process runs), `/readyz` (storage answers: SQLite
//! reads, or Redis answers and the feed is subscribed), `/metrics` (Prometheus text).

use crate::App;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;

/// How long `/readyz` waits for the storage: less than a probe's usual timeout.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 `ready`, or 503 with `{"status":"unavailable","reason":…}` while the storage does not
/// answer (Redis down or unreachable); it turns ready again by itself when it does.
async fn readyz(State(app): State<Arc<App>>) -> axum::response::Response {
    let reason = match tokio::time::timeout(READY_TIMEOUT, app.hub.log().health()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!(
            "storage did not answer within {} s",
            READY_TIMEOUT.as_secs()
        ),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({ "status": "unavailable", "reason": reason })),
    )
        .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let families = app.registry.gather();
    let body = prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_else(|e| format!("# error: {e}\n"));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
