//! WHIP publisher and WHEP viewers built on the `webrtc` crate (0.21), an implementation
//! independent of the relay's str0m, for integration tests and the load tester.
//!
//! Pure pieces (VP8 payloads, packet trailers, loss/jitter accounting, Link parsing) are
//! separate from the I/O and tested on their own.

pub mod http;
#[cfg(test)]
mod loopback;
pub mod opus;
mod peer;
pub mod publisher;
pub mod source;
pub mod stats;
pub mod trailer;
pub mod viewer;
pub mod vp8;

pub use http::{IceServer, RtcError, SdpAnswer, delete_session, post_offer};
pub use peer::RtcContext;
pub use publisher::{PublisherConfig, PublisherStats, WhipPublisher};
pub use viewer::{MediaKind, TrackStats, ViewerConfig, ViewerStats, WhepViewer};
