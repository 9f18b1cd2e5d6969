//! The `townhall` server: wires the store, the hub and the pages into one axum application.
//!
//! [`run`] takes an already bound listener and a shutdown future, so tests bind
//! `127.0.0.1:0` and stop the server cleanly. Everything HTTP lives here: routes, cookies,
//! the organizer API, security headers, metrics and health endpoints, and the embedded pages.
//!
//! Deliberately absent: meeting rules (`townhall-core`), fan-out (`townhall-hub`), storage
//! engines (`townhall-store`).

#![forbid(unsafe_code)]

mod api;
pub mod config;
mod export;
mod media_api;
mod ops;
mod pages;
mod retention;
pub mod secrets;
mod ws;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use config::Config;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use townhall_hub::{Hub, HubMetrics, SystemClock};
use townhall_store::{EventLog, SqliteLog};
use tracing::info;

/// Shared state of every request handler.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub hub: Arc<Hub>,
    pub admin_token_hash: String,
    pub registry: prometheus::Registry,
    /// The live-video relay; `None` when `media.enabled` is off.
    pub media: Option<townhall_media::Media>,
}

/// Opens the data dir and builds the application state.
pub fn build(config: Config) -> anyhow::Result<(Arc<App>, Option<String>)> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let durability = match config.durability {
        config::Durability::Full => townhall_store::Durability::Full,
        config::Durability::Normal => townhall_store::Durability::Normal,
    };
    let db = config.data_dir.join("townhall.sqlite");
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(&db, durability)?);
    let session_key = secrets::session_key(&config.data_dir)?;
    let admin = secrets::admin_token(&config.data_dir, config.admin_token.as_deref())?;
    let registry = prometheus::Registry::new();
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    let metrics = HubMetrics::new(&registry)?;
    let hub = Hub::new(
        log,
        Arc::new(SystemClock),
        config.hub.clone(),
        metrics,
        session_key,
    );
    let media = if config.media.enabled {
        let metrics = townhall_media::MediaMetrics::new(&registry)?;
        Some(townhall_media::Media::start(&config.media, metrics)?)
    } else {
        None
    };
    let app = Arc::new(App {
        config,
        hub,
        admin_token_hash: admin.hash,
        registry,
        media,
    });
    Ok((app, admin.generated))
}

/// The base URL for links printed at start: the public URL, or the listening address.
pub fn base_url(config: &Config, local: std::net::SocketAddr) -> String {
    if let Some(url) = &config.public_url {
        return url.clone();
    }
    let host = if local.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        local.ip().to_string()
    };
    let host = if local.is_ipv6() && !local.ip().is_unspecified() {
        format!("[{host}]")
    } else {
        host
    };
    format!("http://{host}:{}", local.port())
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(pages::routes())
        .merge(api::routes())
        .merge(media_api::routes())
        .merge(ops::routes())
        .merge(ws::routes())
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// Headers on every response: a strict CSP (no inline script or style, no third parties),
/// no sniffing, no framing, no referrer.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; font-src 'self'; manifest-src 'self'; media-src 'self' blob:; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static(
            "camera=(self), microphone=(self), display-capture=(self), geolocation=()",
        ),
    );
    res
}

/// Serves until `shutdown` completes, then says goodbye to every connection.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    info!(addr = %local, data_dir = %app.config.data_dir.display(), "townhall listening");
    let retention = tokio::spawn(retention::run(app.clone()));
    let hub = app.hub.clone();
    let send_buffer = app.config.hub.socket_send_buffer;
    let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Frames are small and already batched per flush: Nagle's algorithm would only add delay.
    let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        // A bounded kernel buffer: a client that stops reading fills it quickly, its queue
        // overflows and it is resynced, instead of megabytes of stale frames piling up in the
        // kernel (see docs/ARCHITECTURE.md, "The slow-reader stall").
        if send_buffer > 0
            && let Err(e) = socket2::SockRef::from(&*tcp).set_send_buffer_size(send_buffer)
        {
            tracing::debug!(error = %e, "cannot set SO_SNDBUF");
        }
    });
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            info!("shutting down: closing connections");
            hub.shutdown().await;
        })
        .await?;
    retention.abort();
    Ok(())
}
