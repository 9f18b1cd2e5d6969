//! Which address a request comes from, behind proxies.
//!
//! Without `trust_proxy` it is the socket's peer. With it, a proxy in front appends the address
//! it received the request from to `X-Forwarded-For`, so the trustworthy entries are the ones at
//! the right: the client is the right-most entry that was not added by one of our own proxies
//! (`trusted_proxies`). Everything left of it was written by the client and is ignored: taking
//! the left-most entry would let every request choose its own address, and with it its own
//! per-address limits.

use axum::http::HeaderMap;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// A proxy's address or address range (`10.0.0.7`, `10.0.0.0/8`, `fd00::/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProxyNet(IpNet);

impl ProxyNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl std::str::FromStr for ProxyNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map(|net| ProxyNet(net.trunc()))
            .map_err(|_| format!("not an IP address or CIDR range: {s:?}"))
    }
}

impl TryFrom<String> for ProxyNet {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ProxyNet> for String {
    fn from(p: ProxyNet) -> String {
        p.to_string()
    }
}

impl fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpNet::V4(n) if n.prefix_len() == 32 => write!(f, "{}", n.addr()),
            IpNet::V6(n) if n.prefix_len() == 128 => write!(f, "{}", n.addr()),
            net => write!(f, "{net}"),
        }
    }
}

/// The proxies whose word about the client's address we take.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxies {
    /// Off: `X-Forwarded-For` is ignored.
    pub enabled: bool,
    /// Empty: only the direct peer is a proxy of ours (one proxy in front).
    pub trusted: Vec<ProxyNet>,
}

impl Proxies {
    /// Whether connections from `peer` come through one of our proxies (and so carry many
    /// clients: per-address limits apply to the forwarded address instead).
    pub fn is_proxy(&self, peer: IpAddr) -> bool {
        self.enabled && (self.trusted.is_empty() || self.listed(peer))
    }

    fn listed(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// The client's address for a request from `peer` with these headers.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_proxy(peer) {
            return peer;
        }
        // Several header lines are one list, in order (RFC 9110 §5.3).
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Some(ip) = parse_entry(entry) else {
                // Unreadable: the last address we could read and trust is as far as we see.
                break;
            };
            client = ip;
            if !self.listed(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn proxies(trusted: &[&str]) -> Proxies {
        Proxies {
            enabled: true,
            trusted: trusted.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn without_trust_the_peer_is_the_client() {
        let p = Proxies::default();
        let h = headers(&["203.0.113.9"]);
        assert_eq!(p.client_addr(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        assert!(!p.is_proxy(ip("10.0.0.1")));
    }

    #[test]
    fn behind_one_proxy_the_right_most_entry_is_the_client() {
        let p = proxies(&[]);
        // The client wrote the left entries; our proxy appended the last one.
        let h = headers(&["1.1.1.1, 2.2.2.2", "198.51.100.7"]);
        assert_eq!(p.client_addr(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        assert_eq!(
            p.client_addr(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn entries_added_by_trusted_proxies_are_skipped() {
        let p = proxies(&["10.0.0.0/8", "192.0.2.1"]);
        let h = headers(&["6.6.6.6, 198.51.100.7, 10.1.2.3"]);
        assert_eq!(p.client_addr(ip("192.0.2.1"), &h), ip("198.51.100.7"));
        // A peer that is not one of our proxies is the client, whatever it claims.
        assert_eq!(p.client_addr(ip("203.0.113.5"), &h), ip("203.0.113.5"));
        // Only proxies all along: the left-most one is as far as we can see.
        let h = headers(&["10.9.9.9, 10.1.2.3"]);
        assert_eq!(p.client_addr(ip("192.0.2.1"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn ports_and_mapped_addresses_are_read_and_garbage_stops_the_walk() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&["198.51.100.7:5678, 10.0.0.2"]);
        assert_eq!(p.client_addr(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(p.client_addr(ip("10.0.0.1"), &h), ip("2001:db8::1"));
        assert_eq!(
            p.client_addr(ip("::ffff:10.0.0.1"), &headers(&["::ffff:198.51.100.7"])),
            ip("198.51.100.7")
        );
        let h = headers(&["198.51.100.7, unknown, 10.0.0.2"]);
        assert_eq!(p.client_addr(ip("10.0.0.1"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn proxy_nets_read_addresses_and_ranges() {
        let n: ProxyNet = "10.1.2.3".parse().unwrap();
        assert!(n.contains(ip("10.1.2.3")) && !n.contains(ip("10.1.2.4")));
        assert_eq!(n.to_string(), "10.1.2.3");
        let n: ProxyNet = "10.1.2.3/8".parse().unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8");
        assert!(n.contains(ip("::ffff:10.200.0.1")));
        assert!("fd00::/8".parse::<ProxyNet>().is_ok());
        assert!("10.0.0.0/33".parse::<ProxyNet>().is_err());
        assert!("proxy.local".parse::<ProxyNet>().is_err());
    }
}
