//! The same simulated participant against the Socket.IO peer (`loadtest/peers/socketio`),
//! speaking Engine.IO v4 / Socket.IO v5 over a plain WebSocket, without a JS client:
//! `0{…}` open, `40` connect, `42["event",…]` events, `42<id>[…]`/`43<id>[…]` acks, `2`/`3` ping.
//!
//! The peer has no moderation: every question, vote and comment is broadcast to the room with a
//! monotonically increasing offset, so every acknowledged offset must reach every client.

use super::client::{Behaviour, Ctx, Order, Outcome, measure_marker, pause_before_retry};
use super::conn::{self, Ws};
use super::scan;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The WebSocket path of an Engine.IO v4 server.
pub const PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// An Engine.IO / Socket.IO frame, with what the generator reads from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sio {
    /// `0{…}`: Engine.IO handshake.
    Open,
    /// `40{…}`: joined the default namespace.
    Connected,
    /// `2`: the server's ping.
    Ping,
    /// `42["ev",{"o":N,…}]`: a broadcast message.
    Event {
        offset: u64,
    },
    /// `43<id>[{"offset":N}]`: the answer to our emit `id`.
    Ack {
        id: u64,
        offset: u64,
    },
    /// `44…` or `41`: refused or disconnected by the server.
    Refused,
    Other,
}

pub fn classify(frame: &str) -> Sio {
    let b = frame.as_bytes();
    match b {
        [b'2'] => Sio::Ping,
        [b'0', ..] => Sio::Open,
        [b'4', b'0', ..] => Sio::Connected,
        [b'4', b'1', ..] | [b'4', b'4', ..] => Sio::Refused,
        [b'4', b'2', b'[', ..] => {
            scan::uint_after(frame, "o").map_or(Sio::Other, |offset| Sio::Event { offset })
        }
        [b'4', b'3', rest @ ..] => {
            let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            let id = std::str::from_utf8(&rest[..n])
                .ok()
                .and_then(|s| s.parse().ok());
            match (id, scan::uint_after(frame, "offset")) {
                (Some(id), Some(offset)) => Sio::Ack { id, offset },
                _ => Sio::Other,
            }
        }
        _ => Sio::Other,
    }
}

/// `42<id>["event",data]`: an emit that asks for an acknowledgement.
pub fn emit(id: u64, event: &str, data: &serde_json::Value) -> String {
    format!("42{id}{}", json!([event, data]))
}

pub async fn run(mut ctx: Ctx) -> Outcome {
    let mut out = Outcome {
        slow: ctx.behaviour == Behaviour::Slow,
        ..Outcome::default()
    };
    let mut attempt = 0;
    while !*ctx.stop.borrow() {
        let result = match conn::connect(&ctx.endpoint, ctx.source).await {
            Ok(ws) => session(&mut ctx, &mut out, ws).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => break,
            Err(e) => {
                tracing::debug!(id = ctx.id, "socket.io connection failed: {e:#}");
                if !pause_before_retry(&mut ctx, &mut attempt, out.joined).await {
                    break;
                }
            }
        }
    }
    out
}

/// One connection until the run stops (`Ok`) or the connection fails (`Err`: reconnect).
async fn session(ctx: &mut Ctx, out: &mut Outcome, mut ws: Ws) -> anyhow::Result<()> {
    let stats = ctx.stats.clone();
    let mut next_id = 1u64;
    let mut join_id = None;
    let mut in_view = false;
    let result = loop {
        tokio::select! {
            _ = ctx.stop.changed() => break Ok(()),
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => break Err(anyhow::anyhow!("closed by the server")),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break Err(e.into()),
                };
                match classify(&text) {
                    Sio::Open => ws.send(Message::text("40")).await?,
                    Sio::Connected => {
                        join_id = Some(next_id);
                        ws.send(Message::text(emit(next_id, "join", &json!(&*ctx.meeting)))).await?;
                        next_id += 1;
                    }
                    Sio::Ping => ws.send(Message::text("3")).await?,
                    Sio::Event { offset } => {
                        out.tracker.event(offset, true);
                        measure_marker(ctx, &text, true);
                    }
                    Sio::Ack { id, offset } if Some(id) == join_id => {
                        join_id = None;
                        out.tracker.reset(offset);
                        out.joined = true;
                        if ctx.behaviour == Behaviour::Slow {
                            stats.slow_joined.fetch_add(1, Relaxed);
                            let _ = ctx.stop.changed().await;
                            return Ok(());
                        }
                        in_view = true;
                        stats.connected.fetch_add(1, Relaxed);
                    }
                    Sio::Ack { offset, .. } => {
                        stats.acked.fetch_add(1, Relaxed);
                        stats.broadcast.lock().unwrap().push(offset);
                    }
                    Sio::Refused => break Err(anyhow::anyhow!("refused: {text}")),
                    Sio::Other => stats.error("unreadable_frame"),
                }
            }
            order = ctx.orders.recv(), if in_view && !ctx.orders.is_closed() => {
                let Some(order) = order else { continue };
                let (event, kind, seq) = match order {
                    Order::Ask { seq } => ("question", "spørgsmål", seq),
                    Order::Comment { seq } => ("comment", "kommentar", seq),
                    Order::Vote { seq } => ("vote", "stemme", seq),
                };
                stats.by_seq.set(seq, stats.now_ns());
                stats.sent.fetch_add(1, Relaxed);
                let frame = emit(next_id, event, &json!({"text": scan::marked_text(kind, seq)}));
                next_id += 1;
                ws.send(Message::text(frame)).await?;
            }
        }
    };
    if in_view {
        stats.connected.fetch_sub(1, Relaxed);
    }
    if result.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_engine_io_frames() {
        assert_eq!(classify(r#"0{"sid":"x","pingInterval":25000}"#), Sio::Open);
        assert_eq!(classify(r#"40{"sid":"y"}"#), Sio::Connected);
        assert_eq!(classify("2"), Sio::Ping);
        assert_eq!(
            classify(r#"42["ev",{"o":17,"k":"comment","text":"x #L5"}]"#),
            Sio::Event { offset: 17 }
        );
        assert_eq!(
            classify(r#"4312[{"offset":44}]"#),
            Sio::Ack { id: 12, offset: 44 }
        );
        assert_eq!(classify(r#"44{"message":"no"}"#), Sio::Refused);
        assert_eq!(classify("43[]"), Sio::Other);
        assert_eq!(classify(""), Sio::Other);
    }

    #[test]
    fn emits_with_an_ack_id() {
        assert_eq!(emit(3, "join", &json!("load")), r#"423["join","load"]"#);
    }
}
