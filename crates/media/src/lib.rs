//! The WebRTC relay (work in progress).
