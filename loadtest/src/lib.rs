//! townhall-load library: load scenarios and the webrtc-rs WHIP/WHEP clients.
//!
//! `chat`: simulated citizens and moderators over WebSocket against townhall or the Socket.IO
//! peer (`loadtest/peers/socketio`), with latency histograms, reports and plots.

pub mod chat;
pub mod janus;
pub mod media;
pub mod rtc;
pub mod rtp_sender;
