//! WHIP/WHEP signaling over HTTP (RFC 9725): POST the offer, read the answer, the session's
//! `Location` and the ICE servers of the `Link` headers; DELETE the session at the end.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LINK, LOCATION};
use std::fmt;

/// An ICE server announced in a `Link: <…>; rel="ice-server"` header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    pub url: String,
    pub username: Option<String>,
    pub credential: Option<String>,
}

/// What a successful WHIP/WHEP POST returns.
#[derive(Debug, Clone)]
pub struct SdpAnswer {
    pub sdp: String,
    /// The session URL (absolute), from `Location`.
    pub location: reqwest::Url,
    pub ice_servers: Vec<IceServer>,
    /// `Link: <…>; rel="urn:ietf:params:whep:ext:core:layer"`, if announced.
    pub layer_url: Option<reqwest::Url>,
    pub etag: Option<String>,
}

/// Why a WHIP/WHEP exchange failed.
#[derive(Debug)]
pub enum RtcError {
    /// The server answered with an error status; `code` and `message` are from its JSON body.
    Http {
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    /// The request did not get an answer (connection refused, timeout, …).
    Request(reqwest::Error),
    /// The local WebRTC stack refused something.
    WebRtc(String),
    /// The answer broke the protocol (no `Location`, not SDP, ICE never connected, …).
    Protocol(String),
}

impl RtcError {
    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The JSON `code` of an error answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Http { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for RtcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http {
                status,
                code,
                message,
            } => write!(
                f,
                "HTTP {status} {} {}",
                code.as_deref().unwrap_or("-"),
                message.as_deref().unwrap_or("")
            ),
            Self::Request(e) => write!(f, "request failed: {e}"),
            Self::WebRtc(e) => write!(f, "webrtc: {e}"),
            Self::Protocol(e) => write!(f, "protocol: {e}"),
        }
    }
}

impl std::error::Error for RtcError {}

impl From<reqwest::Error> for RtcError {
    fn from(e: reqwest::Error) -> Self {
        Self::Request(e)
    }
}

impl From<webrtc::error::Error> for RtcError {
    fn from(e: webrtc::error::Error) -> Self {
        Self::WebRtc(e.to_string())
    }
}

/// POSTs an SDP offer (`application/sdp`) with an optional Bearer token.
///
/// Public so tests can send malformed offers or wrong tokens through the same code path.
pub async fn post_offer(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    sdp: String,
) -> Result<SdpAnswer, RtcError> {
    let url = reqwest::Url::parse(url).map_err(|e| RtcError::Protocol(format!("{url}: {e}")))?;
    let mut req = http
        .post(url.clone())
        .header(CONTENT_TYPE, "application/sdp")
        .body(sdp);
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    if status != 201 {
        return Err(error_from(res).await);
    }
    let headers = res.headers().clone();
    let location = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RtcError::Protocol("201 without Location".into()))?;
    let location = url
        .join(location)
        .map_err(|e| RtcError::Protocol(format!("bad Location {location}: {e}")))?;
    let links: Vec<Link> = headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_links)
        .collect();
    let ice_servers = links
        .iter()
        .filter(|l| l.rel == "ice-server")
        .map(|l| IceServer {
            url: l.target.clone(),
            username: l.param("username"),
            credential: l.param("credential"),
        })
        .collect();
    let layer_url = links
        .iter()
        .find(|l| l.rel == "urn:ietf:params:whep:ext:core:layer")
        .and_then(|l| url.join(&l.target).ok());
    let etag = headers
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let sdp = res.text().await?;
    if !sdp.starts_with("v=0") {
        return Err(RtcError::Protocol("answer is not SDP".into()));
    }
    Ok(SdpAnswer {
        sdp,
        location,
        ice_servers,
        layer_url,
        etag,
    })
}

/// DELETEs a session URL; the token is needed for WHIP, the URL itself is the WHEP capability.
pub async fn delete_session(
    http: &reqwest::Client,
    location: &reqwest::Url,
    token: Option<&str>,
) -> Result<(), RtcError> {
    let mut req = http.delete(location.clone());
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = req.send().await?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(error_from(res).await)
    }
}

async fn error_from(res: reqwest::Response) -> RtcError {
    let status = res.status().as_u16();
    let body: Option<serde_json::Value> = res.json().await.ok();
    let field = |k: &str| {
        body.as_ref()
            .and_then(|b| b.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    RtcError::Http {
        status,
        code: field("code"),
        message: field("message"),
    }
}

/// One link-value of a `Link` header (RFC 8288), as far as WHIP needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub target: String,
    pub rel: String,
    pub params: Vec<(String, String)>,
}

impl Link {
    fn param(&self, name: &str) -> Option<String> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

/// Parses a `Link` header value, which may hold several comma-separated link-values.
pub fn parse_links(header: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut rest = header.trim();
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let target = rest[start + 1..start + end].trim().to_owned();
        rest = &rest[start + end + 1..];
        // Parameters run to the next link-value's '<' outside quotes.
        let mut params = Vec::new();
        let mut in_quotes = false;
        let mut cut = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                '<' if !in_quotes => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        let (mine, next) = rest.split_at(cut);
        for part in split_unquoted(mine, ';') {
            let part = part.trim().trim_end_matches(',').trim();
            if let Some((k, v)) = part.split_once('=') {
                params.push((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()));
            }
        }
        let rel = params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("rel"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        params.retain(|(k, _)| !k.eq_ignore_ascii_case("rel"));
        links.push(Link {
            target,
            rel,
            params,
        });
        rest = next;
    }
    links
}

fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stun_and_turn_links() {
        let links = parse_links(
            r#"<stun:stun.example.net>; rel="ice-server", <turn:turn.example.net?transport=udp>; rel="ice-server"; username="u;1"; credential="p,w"; credential-type="password""#,
        );
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].target, "stun:stun.example.net");
        assert_eq!(links[0].rel, "ice-server");
        assert_eq!(links[1].target, "turn:turn.example.net?transport=udp");
        assert_eq!(links[1].param("username").as_deref(), Some("u;1"));
        assert_eq!(links[1].param("credential").as_deref(), Some("p,w"));
    }

    #[test]
    fn parses_the_layer_link() {
        let links = parse_links(
            r#"</api/meetings/m/whep/abc/layer>; rel="urn:ietf:params:whep:ext:core:layer""#,
        );
        assert_eq!(links[0].target, "/api/meetings/m/whep/abc/layer");
        assert_eq!(links[0].rel, "urn:ietf:params:whep:ext:core:layer");
        assert!(parse_links("garbage").is_empty());
    }

    #[test]
    fn error_accessors() {
        let e = RtcError::Http {
            status: 409,
            code: Some("meeting_not_live".into()),
            message: None,
        };
        assert_eq!(e.status(), Some(409));
        assert_eq!(e.code(), Some("meeting_not_live"));
        assert!(e.to_string().contains("409 meeting_not_live"));
    }
}
