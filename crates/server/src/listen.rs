//! The accept loop: every connection is bounded before it costs anything.
//!
//! - A cap on open connections per peer address, checked at accept before a byte is read
//!   (`http.max_connections_per_ip`; our own proxies are exempt, the hub caps the addresses they
//!   forward). The count holds for the connection's whole life, WebSocket included.
//! - hyper's header-read timeout (`http.header_timeout_secs`), armed from the moment a
//!   connection is accepted and again after every response: a connection that sends nothing, or
//!   sends its headers a byte at a time, or sits idle between requests, is closed after it.
//!   (HTTP/1 only: the HTTP/2 sniffing of hyper-util's auto builder reads the first bytes
//!   without any timeout, which would let a silent connection escape.)
//! - Accept errors such as `EMFILE` back off (10 ms doubling to 1 s) instead of spinning, so
//!   the loop resumes as soon as the timeouts have freed descriptors.
//! - `TCP_NODELAY`: frames are small and already batched per flush.
//!
//! On shutdown the loop stops accepting, lets in-flight requests finish (closing idle
//! connections at once), and waits for them for at most [`DRAIN`].

use crate::config::HttpConfig;
use crate::forwarded::Proxies;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;
use tracing::{debug, warn};

/// Longest wait for in-flight HTTP requests at shutdown.
pub const DRAIN: Duration = Duration::from_secs(5);

/// `townhall_http_*`: connections the accept loop holds and refuses.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    connections: IntGauge,
    refused: IntCounterVec,
}

impl HttpMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let connections = IntGauge::new(
            "townhall_http_connections",
            "Open TCP connections (HTTP and WebSocket)",
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "townhall_http_refused_total",
                "Connections closed at accept or failed to accept",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        Ok(Self {
            connections,
            refused,
        })
    }
}

/// Open connections per peer address, capped.
#[derive(Debug)]
pub struct PerIpLimit {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot {
    limit: Arc<PerIpLimit>,
    ip: IpAddr,
}

impl PerIpLimit {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more connection from `ip`, or `None` when it has `max` open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self
            .open
            .lock()
            .expect("the map is never left half-changed");
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            limit: self.clone(),
            ip,
        })
    }

    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self
            .open
            .lock()
            .expect("the map is never left half-changed");
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .limit
            .open
            .lock()
            .expect("the map is never left half-changed");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A connection that holds its [`Slot`] and the open-connections gauge for as long as it lives,
/// through a WebSocket upgrade too (the upgraded stream owns this).
#[derive(Debug)]
struct Counted {
    tcp: TcpStream,
    _slot: Option<Slot>,
    gauge: IntGauge,
}

impl Counted {
    fn new(tcp: TcpStream, slot: Option<Slot>, gauge: IntGauge) -> Self {
        gauge.inc();
        Self {
            tcp,
            _slot: slot,
            gauge,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Raises this process's open-files soft limit to its hard limit, so that connections, not a
/// conservative default (often 1024), decide how many fit. Returns the limits before and after.
#[cfg(unix)]
pub fn raise_open_files_limit() -> io::Result<(u64, u64)> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok((soft, hard.max(soft)))
}

/// Errors that concern one connection only (it went away before we took it).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    proxies: &Proxies,
    metrics: HttpMetrics,
    shutdown: impl Future<Output = ()>,
) {
    let limit = PerIpLimit::new(config.max_connections_per_ip);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout())
        .keep_alive(true);
    // Every connection task holds a receiver; `closed()` says when all have ended.
    let (stop, stopping) = watch::channel(());
    let mut backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::ZERO;
                accepted
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // EMFILE and the like: wait for descriptors to be freed rather than spin.
                metrics.refused.with_label_values(&["accept_error"]).inc();
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let ip = peer.ip().to_canonical();
        let slot = if proxies.is_proxy(ip) {
            None
        } else {
            match limit.admit(ip) {
                Some(slot) => Some(slot),
                None => {
                    metrics.refused.with_label_values(&["per_ip"]).inc();
                    debug!(%ip, "too many connections from one address");
                    continue; // dropping `tcp` closes it, before anything was read
                }
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(error = %e, "cannot set TCP_NODELAY");
        }
        // A bounded kernel buffer: a client that stops reading fills it quickly, its queue in
        // the hub overflows and it is resynced, instead of megabytes of stale frames piling up
        // in the kernel (docs/ARCHITECTURE.md, "The slow-reader stall").
        if config.send_buffer_bytes > 0
            && let Err(e) =
                socket2::SockRef::from(&tcp).set_send_buffer_size(config.send_buffer_bytes)
        {
            debug!(error = %e, "cannot set SO_SNDBUF");
        }
        let io = TokioIo::new(Counted::new(tcp, slot, metrics.connections.clone()));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(req)
        });
        let conn = http.serve_connection(io, service).with_upgrades();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stopping.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                debug!(error = %e, "connection ended with an error");
            }
            drop(stopping);
        });
    }
    drop(listener);
    drop(stopping);
    let _ = stop.send(());
    if tokio::time::timeout(DRAIN, stop.closed()).await.is_err() {
        warn!("shutdown: some HTTP requests were still running");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_ip_limit_counts_open_slots() {
        let limit = PerIpLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limit.admit(a).unwrap();
        let _second = limit.admit(a).unwrap();
        assert!(limit.admit(a).is_none());
        let _other = limit.admit(b).unwrap();
        drop(first);
        assert_eq!(limit.open(a), 1);
        let _third = limit.admit(a).unwrap();
        assert!(limit.admit(a).is_none());
    }
}
