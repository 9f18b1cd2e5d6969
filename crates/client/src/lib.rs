//! Clients of townhall's public interfaces, shared by the integration tests and the load tester:
//! the organizer API (`api`), the `/metrics` text (`metrics`), and a WHIP publisher and WHEP
//! viewers on the `webrtc` crate (`rtc`), an implementation independent of the relay's str0m.
//!
//! Deliberately absent: the server itself (`townhall-testkit` starts it for tests) and anything
//! that needs its internals; this crate only speaks HTTP and WebRTC to a running server.

#![forbid(unsafe_code)]

pub mod api;
pub mod metrics;
pub mod rtc;
