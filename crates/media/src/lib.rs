//! The live-video relay of townhall, on str0m (sans-IO WebRTC).
//!
//! Speakers publish with WHIP, viewers play with WHEP; the relay forwards each publisher's RTP
//! to every viewer of the meeting without transcoding and without copying payloads per viewer
//! (one `Arc<[u8]>` per incoming packet is shared by every outgoing write).
//!
//! - [`relay`]: the state machine: peers, stage slots, forwarding, keyframe requests, layer
//!   choice. No sockets, no clock: it is driven with `(now, datagram)` and timeouts.
//! - [`driver`]: the thin I/O loop around it: one UDP socket per local address (one port for
//!   every peer), ICE-TCP, the command channel the HTTP handlers use ([`Media`]).
//! - [`keyframe`], [`rewrite`], [`layers`]: the pure pieces of forwarding, unit tested.

pub mod driver;
pub mod keyframe;
pub mod layers;
pub mod metrics;
pub mod relay;
pub mod rewrite;
mod sdp;
mod types;

pub use driver::{Media, MediaConfig};
pub use metrics::MediaMetrics;
pub use types::{IceServer, MediaError, Route, SLOTS, SessionId, SourceKind, StageSource};
