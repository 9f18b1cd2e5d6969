//! townhall-load library: load scenarios and the webrtc-rs WHIP/WHEP clients.

pub mod media;
pub mod rtc;
