//! The `townhall` server: wires the store, the hub and the pages into one axum application.
//!
//! [`run`] takes an already bound listener and a shutdown future, so tests bind
//! `127.0.0.1:0` and stop the server cleanly. The server's HTTP lives here: the accept loop and
//! its connection limits (`listen`), routes, their preconditions as extractors (`extract`),
//! cookies, the organizer API, security headers, metrics and health endpoints, and the embedded
//! pages.
//!
//! Deliberately absent: meeting rules (`townhall-core`), fan-out (`townhall-hub`), storage
//! engines (`townhall-store`).

#![forbid(unsafe_code)]

mod api;
pub mod brand;
mod calendar;
pub mod config;
mod export;
mod extract;
pub mod forwarded;
pub mod listen;
mod media_api;
mod ops;
mod pages;
mod public;
mod public_record;
mod retention;
pub mod secrets;
mod ws;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use config::Config;
use forwarded::Proxies;
use listen::HttpMetrics;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use townhall_hub::auth::SessionKey;
use townhall_hub::{Hub, HubMetrics, SystemClock};
use townhall_store::{
    EventLog, LocalPresence, PresenceBoard, RedisConfig, RedisLog, RedisPresence, SqliteLog,
    redact_redis_url,
};
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
    /// Whose `X-Forwarded-For` counts (`trust_proxy`, `trusted_proxies`).
    pub proxies: Proxies,
    pub http_metrics: HttpMetrics,
    /// This node's name among several.
    pub node_id: String,
    /// Viewer counts summed over the nodes (Redis), or this node's alone (SQLite); for the
    /// hub's presence tick.
    pub presence: Arc<dyn PresenceBoard>,
    /// The municipality's name, logo and colours on the pages (`[brand]`).
    pub brand: brand::Brand,
    /// Public records already built (`/m/{id}/record.json`).
    pub record_cache: public::RecordCache,
}

/// What the storage choice brings: the log, the shared secrets and the presence board.
struct Storage {
    log: Arc<dyn EventLog>,
    session_key: SessionKey,
    admin: secrets::AdminToken,
    presence: Arc<dyn PresenceBoard>,
}

/// Opens the storage (SQLite in the data dir, or Redis with `redis` set) and builds the
/// application state. With Redis unreachable it waits, logging each retry, until it answers.
pub async fn build(config: Config) -> anyhow::Result<(Arc<App>, Option<String>)> {
    let node_id = config.node_id();
    let (brand, brand_warning) = brand::Brand::load(&config.brand)?;
    if let Some(warning) = brand_warning {
        tracing::warn!("{warning}");
    }
    let storage = match &config.redis {
        None => open_sqlite(&config)?,
        Some(url) => open_redis(&config, url, &node_id).await?,
    };
    let Storage {
        log,
        session_key,
        admin,
        presence,
    } = storage;
    let registry = prometheus::Registry::new();
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    let metrics = HubMetrics::new(&registry)?;
    let http_metrics = HttpMetrics::new(&registry)?;
    let hub = Hub::with_presence(
        log,
        Arc::new(SystemClock),
        presence.clone(),
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
    let proxies = Proxies {
        enabled: config.trust_proxy,
        trusted: config.trusted_proxies.clone(),
    };
    let app = Arc::new(App {
        config,
        hub,
        admin_token_hash: admin.hash,
        registry,
        media,
        proxies,
        http_metrics,
        node_id,
        presence,
        brand,
        record_cache: public::RecordCache::default(),
    });
    Ok((app, admin.generated))
}

fn open_sqlite(config: &Config) -> anyhow::Result<Storage> {
    secrets::create_private_dir(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let durability = match config.durability {
        config::Durability::Full => townhall_store::Durability::Full,
        config::Durability::Normal => townhall_store::Durability::Normal,
    };
    let db = config.data_dir.join("townhall.sqlite");
    // Citizens' questions live here: only the server's user may read it (SQLite gives its WAL
    // and shared-memory files the same mode).
    secrets::create_private_file(&db).with_context(|| format!("cannot create {}", db.display()))?;
    Ok(Storage {
        log: Arc::new(SqliteLog::open(&db, durability)?),
        session_key: secrets::session_key(&config.data_dir)?,
        admin: secrets::admin_token(&config.data_dir, config.admin_token.as_deref())?,
        presence: Arc::new(LocalPresence),
    })
}

/// Connects to Redis, retrying (with a log line each time, backing off to 5 s) while it does
/// not answer: nodes and Redis start in any order. A wrong URL, password or a refusal that
/// will not change by waiting ends the start with exit code 1.
async fn open_redis(config: &Config, url: &str, node_id: &str) -> anyhow::Result<Storage> {
    let shown = redact_redis_url(url);
    let redis_config = RedisConfig::new(url).with_prefix(config.redis_prefix.clone());
    let mut delay = Duration::from_millis(250);
    let redis = loop {
        match RedisLog::connect(&redis_config).await {
            Ok(redis) => break redis,
            Err(e) if e.is_retryable() => {
                tracing::warn!(
                    redis = %shown,
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "redis does not answer yet; townhall starts serving once it does"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => anyhow::bail!("cannot use redis at {shown}: {e}"),
        }
    };
    let session_key = secrets::shared_session_key(&redis).await?;
    let admin = secrets::shared_admin_token(&redis, config.admin_token.as_deref()).await?;
    // A few presence ticks, so one late tick does not make this node's viewers vanish.
    let ttl = (config.hub.presence_interval() * 3).max(Duration::from_secs(3));
    let presence = Arc::new(RedisPresence::new(redis.clone(), node_id, ttl));
    info!(redis = %shown, node_id, prefix = %config.redis_prefix, "meetings are kept in redis");
    Ok(Storage {
        log: Arc::new(redis),
        session_key,
        admin,
        presence,
    })
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
    let api = api::routes()
        .merge(media_api::routes())
        .layer(axum::middleware::map_response(no_store_by_default));
    Router::new()
        .merge(pages::routes())
        .merge(public::routes())
        .merge(api)
        .merge(ops::routes())
        .merge(ws::routes())
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            request_timeout,
        ))
        .layer(axum::middleware::map_response_with_state(
            app.clone(),
            security_headers,
        ))
        .with_state(app)
}

/// API answers carry secrets (links with tokens, session locations) or live state: no cache
/// may keep them, unless the route says otherwise.
async fn no_store_by_default(mut res: Response) -> Response {
    res.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// A request whose response has not started after `http.request_timeout_secs` (a body sent a
/// byte at a time, say) gets 408 `request_timeout`.
async fn request_timeout(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let limit = app.config.http.request_timeout();
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => api::ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request took longer than {} s", limit.as_secs()),
        )
        .into_response(),
    }
}

/// Headers on every response: a strict CSP (no inline script or style, no third parties),
/// no sniffing, no framing, no referrer; HSTS when served over https; and a response that sets
/// a cookie (the citizen's session) is never stored by a cache.
async fn security_headers(State(app): State<Arc<App>>, mut res: Response) -> Response {
    let h = res.headers_mut();
    if app.config.https() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if h.contains_key(header::SET_COOKIE) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
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
    match &app.config.redis {
        Some(_) => info!(addr = %local, node_id = %app.node_id, "townhall listening"),
        None => {
            info!(addr = %local, data_dir = %app.config.data_dir.display(), "townhall listening")
        }
    }
    let retention = tokio::spawn(retention::run(app.clone()));
    let hub = app.hub.clone();
    listen::serve(
        listener,
        router(app.clone()),
        &app.config.http,
        &app.proxies,
        app.http_metrics.clone(),
        async move {
            shutdown.await;
            info!("shutting down: closing connections");
            hub.shutdown().await;
        },
    )
    .await;
    retention.abort();
    Ok(())
}
