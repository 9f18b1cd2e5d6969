//! Opening one WebSocket: a TCP socket bound to a chosen loopback source address (so one
//! generator can exceed the ≈28k ephemeral ports of one source IP) and small buffers (the
//! default 128 KiB read buffer would cost 1.3 GB at 10,000 connections).

use std::net::{IpAddr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Ws = WebSocketStream<TcpStream>;

/// Where the connections of one server URL go.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The server's HTTP base, e.g. `http://127.0.0.1:8080`.
    pub base: String,
    /// The WebSocket URL, e.g. `ws://127.0.0.1:8080/ws`.
    pub ws_url: String,
    pub addr: SocketAddr,
}

impl Endpoint {
    /// Resolves `base` (`http://host:port`) and appends `path` for the WebSocket URL.
    pub async fn resolve(base: &str, path: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(base)
            .map_err(|e| anyhow::anyhow!("invalid --url {base:?}: {e}"))?;
        let scheme = match url.scheme() {
            "http" | "ws" => "ws",
            other => anyhow::bail!(
                "invalid --url {base:?}: scheme {other:?} is not supported (use http://)"
            ),
        };
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("invalid --url {base:?}: no host"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| anyhow::anyhow!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| anyhow::anyhow!("{host} has no address"))?;
        let hostport = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        Ok(Self {
            base: format!("http://{hostport}"),
            ws_url: format!("{scheme}://{hostport}{path}"),
            addr,
        })
    }
}

/// Source addresses for `n` connections to a loopback server: 127.0.0.1, .2, … each carrying
/// at most `per_ip` connections (below the server's default of 5000 per IP and far below the
/// ephemeral port range).
pub fn loopback_sources(n: usize, per_ip: usize) -> Vec<IpAddr> {
    let count = n.div_ceil(per_ip.max(1)).clamp(1, 250 * 250);
    (0..count)
        .map(|i| IpAddr::from([127, 0, (i / 250) as u8, (i % 250) as u8 + 1]))
        .collect()
}

pub async fn connect(ep: &Endpoint, source: Option<IpAddr>) -> anyhow::Result<Ws> {
    let sock = if ep.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = sock.connect(ep.addr).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(ep.ws_url.as_str(), stream, Some(config))
            .await?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_over_loopback_addresses() {
        let s = loopback_sources(10_001, 4000);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], IpAddr::from([127, 0, 0, 1]));
        assert_eq!(s[2], IpAddr::from([127, 0, 0, 3]));
        assert_eq!(loopback_sources(0, 4000).len(), 1);
        assert_eq!(
            loopback_sources(251 * 10, 10)[250],
            IpAddr::from([127, 0, 1, 1])
        );
    }

    #[tokio::test]
    async fn endpoints_resolve_and_reject_bad_urls() {
        let ep = Endpoint::resolve("http://127.0.0.1:9/", "/ws")
            .await
            .unwrap();
        assert_eq!(ep.ws_url, "ws://127.0.0.1:9/ws");
        assert_eq!(ep.addr.port(), 9);
        for bad in ["nonsense", "https://127.0.0.1:9", "http://"] {
            assert!(Endpoint::resolve(bad, "/ws").await.is_err(), "{bad}");
        }
    }
}
