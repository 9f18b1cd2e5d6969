//! Route preconditions as axum extractors, so each is written once and a handler states its
//! preconditions in its signature: who may call it ([`Organizer`], [`Studio`]), which meeting it
//! is about ([`MeetingRef`], [`Meeting`]) and where the request comes from ([`ClientAddr`]).
//!
//! They read only the request's head (path, headers, connection), and axum runs them in the
//! order of the handler's arguments, before the body extractor that comes last: a refused
//! request never has its body read or parsed. Refusals are the API's JSON [`ApiError`] with the
//! stable codes of docs/protocol.md.

use crate::App;
use crate::api::ApiError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use townhall_core::MeetingId;
use townhall_hub::auth;
use townhall_store::MeetingRecord;

/// Checks a `Bearer` token against a stored hash: 401 `bad_token` (`invalid`) for a wrong one,
/// 401 `unauthorized` (`missing`) for none.
fn bearer(
    headers: &HeaderMap,
    hash: &str,
    invalid: &'static str,
    missing: &'static str,
) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(t) if auth::token_matches(t, hash) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            invalid,
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            missing,
        )),
    }
}

/// The organizer: the request carries the admin token as `Authorization: Bearer`.
#[derive(Debug)]
pub struct Organizer;

impl FromRequestParts<Arc<App>> for Organizer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        bearer(
            &parts.headers,
            &app.admin_token_hash,
            "the admin token is not valid",
            "send Authorization: Bearer ADMIN_TOKEN",
        )?;
        Ok(Organizer)
    }
}

/// The meeting id of the route's `{id}` (or `{meeting}`, under `/m/`), checked as an id only:
/// 404 `no_meeting` when it cannot be one.
#[derive(Debug)]
pub struct MeetingRef(pub MeetingId);

impl<S: Send + Sync> FromRequestParts<S> for MeetingRef {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        let raw = params
            .iter()
            .find_map(|(key, value)| matches!(key, "id" | "meeting").then_some(value))
            .ok_or_else(ApiError::not_found)?;
        MeetingId::parse(raw)
            .map(MeetingRef)
            .map_err(|_| ApiError::not_found())
    }
}

/// The record of the route's meeting: 404 `no_meeting` when there is none, 503 `unavailable`
/// when storage does not answer.
#[derive(Debug)]
pub struct Meeting(pub MeetingRecord);

impl FromRequestParts<Arc<App>> for Meeting {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let MeetingRef(id) = MeetingRef::from_request_parts(parts, app).await?;
        app.hub
            .log()
            .meeting(&id)
            .await
            .map_err(ApiError::unavailable)?
            .map(Meeting)
            .ok_or_else(ApiError::not_found)
    }
}

/// The route's meeting, for its studio: the request carries the meeting's studio token as
/// `Authorization: Bearer` (WHIP).
#[derive(Debug)]
pub struct Studio(pub MeetingRecord);

impl FromRequestParts<Arc<App>> for Studio {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let Meeting(record) = Meeting::from_request_parts(parts, app).await?;
        bearer(
            &parts.headers,
            &record.studio_token_hash,
            "the studio token is not valid for this meeting",
            "send Authorization: Bearer STUDIO_TOKEN (the secret of the studio link)",
        )?;
        Ok(Studio(record))
    }
}

/// The client's address: the connection's peer, or behind our own proxies the right-most
/// `X-Forwarded-For` entry none of them added (`trust_proxy`, `trusted_proxies`).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<Arc<App>> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or_else(|| ApiError::unavailable("a request came without its connection"))?;
        Ok(ClientAddr(
            app.proxies.client_addr(peer.ip(), &parts.headers),
        ))
    }
}

/// A request body within the route's `DefaultBodyLimit`: over it, 413 `too_large` as JSON
/// (axum's own refusal is plain text).
#[derive(Debug)]
pub struct LimitedBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for LimitedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(LimitedBody)
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "the body is too large",
                ),
                status => ApiError::new(status, "bad_request", e.body_text()),
            })
    }
}
