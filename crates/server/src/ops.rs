//! Operations endpoints: `/healthz` (the process runs), `/readyz` (storage answers),
//! `/metrics` (Prometheus text).

use crate::App;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use townhall_core::MeetingId;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    let probe = MeetingId::parse("readyz-probe").expect("valid id");
    match app.hub.log().meeting(&probe).await {
        Ok(_) => (StatusCode::OK, "ready\n".to_owned()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storage unavailable: {e}\n"),
        ),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let families = app.registry.gather();
    let body = prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_else(|e| format!("# error: {e}\n"));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
