//! townhall-load library: load scenarios (the WHIP/WHEP clients are `townhall-client`'s).
//!
//! `chat`: simulated citizens and moderators over WebSocket against townhall or the Socket.IO
//! peer (`loadtest/peers/socketio`), with latency histograms, reports and plots.

pub mod chat;
pub mod janus;
pub mod light;
pub mod media;
pub mod rtp_sender;
