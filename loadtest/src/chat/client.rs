//! One simulated townhall participant: joins over a real WebSocket, sends the commands the
//! scheduler hands it, and measures every meeting update it receives. Reads each frame with
//! the cheap scanner; only rare frames are parsed fully.

use super::conn::{self, Endpoint, Ws};
use super::scan::{self, Frame};
use super::stats::{Sample, Stats, Tracker};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// A command the scheduler asks one connection to send; `seq` goes into the text as marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Ask { seq: u64 },
    Comment { seq: u64 },
    Vote { seq: u64 },
}

/// How a connection behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Citizen,
    /// Approves the questions whose id ≡ `index` (mod `count`).
    Moderator {
        index: u64,
        count: u64,
    },
    /// Joins, then stops reading (a stalled phone on a bad network).
    Slow,
}

/// Everything one connection task needs.
#[derive(Debug)]
pub struct Ctx {
    pub id: usize,
    pub stats: Arc<Stats>,
    pub endpoint: Arc<Endpoint>,
    pub source: Option<IpAddr>,
    /// Meeting id (townhall) or room name (Socket.IO).
    pub meeting: Arc<str>,
    pub token: Option<Arc<str>>,
    pub behaviour: Behaviour,
    pub orders: mpsc::Receiver<Order>,
    pub stop: watch::Receiver<bool>,
}

/// What a connection reports when it ends.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    pub joined: bool,
    pub slow: bool,
    pub tracker: Tracker,
}

/// The keep-alive period: well inside the server's 90 s idle timeout.
pub const PING_EVERY: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
enum Pending {
    Ask,
    Comment,
    Vote { question: u64, up: bool },
    Approve(u64),
}

/// Per-connection state that survives reconnects.
#[derive(Debug, Default)]
struct State {
    session: Option<String>,
    tracker: Tracker,
    joined: bool,
    next_ref: u64,
    pending: HashMap<u64, (Pending, u64)>,
    voted: Vec<u64>,
    /// The offset the last `votes` frame reflected.
    votes_seen: u64,
    rng: u64,
}

/// Backoff between reconnect attempts, doubling up to 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(4)).min(5000))
}

/// After a dropped or failed connection: counts a reconnect (if it had joined) and waits the
/// backoff. `false` when the run is stopping instead.
pub async fn pause_before_retry(ctx: &mut Ctx, attempt: &mut u32, was_joined: bool) -> bool {
    if *ctx.stop.borrow() {
        return false;
    }
    if was_joined {
        ctx.stats.reconnects.fetch_add(1, Relaxed);
    }
    let wait = backoff(*attempt);
    *attempt += 1;
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = ctx.stop.changed() => false,
    }
}

/// xorshift64: a cheap per-connection random number, good enough to pick a question.
pub fn next_rand(state: &mut u64) -> u64 {
    let mut x = (*state).max(1);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

pub async fn run(mut ctx: Ctx) -> Outcome {
    let mut st = State {
        rng: (ctx.id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        ..State::default()
    };
    let mut attempt = 0;
    loop {
        if *ctx.stop.borrow() {
            break;
        }
        let result = match conn::connect(&ctx.endpoint, ctx.source).await {
            Ok(ws) => session(&mut ctx, &mut st, ws).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(End::Stopped) => break,
            Ok(End::Final) => {
                ctx.stats.gave_up.fetch_add(1, Relaxed);
                break;
            }
            Ok(End::Closed) | Err(_) => {
                if let Err(e) = &result {
                    tracing::debug!(id = ctx.id, "connection failed: {e:#}");
                }
                if !pause_before_retry(&mut ctx, &mut attempt, st.joined).await {
                    break;
                }
            }
        }
    }
    Outcome {
        joined: st.joined,
        slow: ctx.behaviour == Behaviour::Slow,
        tracker: st.tracker,
    }
}

enum End {
    /// The run is over.
    Stopped,
    /// The server closed for good (banned, no meeting, bad token).
    Final,
    /// The connection dropped: reconnect.
    Closed,
}

async fn session(ctx: &mut Ctx, st: &mut State, mut ws: Ws) -> anyhow::Result<End> {
    let mut hello = json!({"t": "hello", "meeting": &*ctx.meeting});
    if let Some(t) = &ctx.token {
        hello["token"] = json!(&**t);
    }
    if let Some(s) = &st.session {
        hello["session"] = json!(s);
    }
    if st.joined {
        hello["since"] = json!(st.tracker.last);
    }
    ws.send(Message::text(hello.to_string())).await?;
    let mut in_view = false;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let result = loop {
        tokio::select! {
            _ = ctx.stop.changed() => break Ok(End::Stopped),
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => break Ok(End::Closed),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break Err(e.into()),
                };
                match on_frame(ctx, st, &mut ws, &text).await? {
                    Some(end) => break Ok(end),
                    None if !in_view && st.joined => {
                        if ctx.behaviour == Behaviour::Slow {
                            // Stop reading: keep the socket open and idle until the run ends.
                            ctx.stats.slow_joined.fetch_add(1, Relaxed);
                            let _ = ctx.stop.changed().await;
                            return Ok(End::Stopped);
                        }
                        in_view = true;
                        ctx.stats.connected.fetch_add(1, Relaxed);
                    }
                    None => {}
                }
            }
            order = ctx.orders.recv(), if in_view && !ctx.orders.is_closed() => {
                // Moderators have no scheduler: their channel is closed from the start.
                if let Some(order) = order {
                    send_order(ctx, st, &mut ws, order).await?;
                }
            }
            _ = ping.tick() => ws.send(Message::text(r#"{"t":"ping"}"#)).await?,
        }
    };
    if in_view {
        ctx.stats.connected.fetch_sub(1, Relaxed);
    }
    if matches!(result, Ok(End::Stopped)) {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    }
    result
}

async fn send_cmd(
    st: &mut State,
    ws: &mut Ws,
    stats: &Stats,
    kind: Pending,
    cmd: Value,
) -> anyhow::Result<()> {
    st.next_ref += 1;
    let frame = json!({"t": "cmd", "ref": st.next_ref, "cmd": cmd}).to_string();
    st.pending.insert(st.next_ref, (kind, stats.now_ns()));
    stats.sent.fetch_add(1, Relaxed);
    ws.send(Message::text(frame)).await?;
    Ok(())
}

async fn send_order(ctx: &Ctx, st: &mut State, ws: &mut Ws, order: Order) -> anyhow::Result<()> {
    let stats = &ctx.stats;
    match order {
        Order::Ask { seq } => {
            stats.by_seq.set(seq, stats.now_ns());
            let cmd = json!({"type": "ask_question", "text": scan::marked_text("spørgsmål", seq)});
            send_cmd(st, ws, stats, Pending::Ask, cmd).await
        }
        Order::Comment { seq } => {
            stats.by_seq.set(seq, stats.now_ns());
            let cmd = json!({"type": "post_comment", "text": scan::marked_text("kommentar", seq)});
            send_cmd(st, ws, stats, Pending::Comment, cmd).await
        }
        Order::Vote { .. } => {
            let question = {
                let approved = stats.approved.read().unwrap();
                if approved.is_empty() {
                    stats.dropped_orders.fetch_add(1, Relaxed);
                    return Ok(());
                }
                approved[(next_rand(&mut st.rng) % approved.len() as u64) as usize]
            };
            // Toggle, so a citizen never votes twice for one question (`already_voted`).
            let up = match st.voted.iter().position(|&q| q == question) {
                Some(i) => {
                    st.voted.swap_remove(i);
                    false
                }
                None => {
                    st.voted.push(question);
                    true
                }
            };
            let kind = if up { "upvote" } else { "retract_upvote" };
            let cmd = json!({"type": kind, "question": question});
            send_cmd(st, ws, stats, Pending::Vote { question, up }, cmd).await
        }
    }
}

/// Handles one frame; `Some` ends the session.
async fn on_frame(
    ctx: &Ctx,
    st: &mut State,
    ws: &mut Ws,
    text: &str,
) -> anyhow::Result<Option<End>> {
    let stats = &ctx.stats;
    match scan::townhall(text) {
        Frame::Event { offset, kind } => {
            let broadcast = scan::is_broadcast_kind(kind);
            st.tracker.event(offset, broadcast);
            measure_marker(ctx, text, broadcast);
            if let (Behaviour::Moderator { index, count }, "question_asked") = (ctx.behaviour, kind)
            {
                approve(ctx, st, ws, text, index, count).await?;
            }
        }
        Frame::Votes { offset } => {
            let now = stats.now_ns();
            let from = st.votes_seen.max(st.tracker.base);
            let mut shard = stats.shard(ctx.id);
            shard.delivery();
            // Bounded: a client that was away long does not scan a huge range.
            if offset > from && offset - from < 100_000 {
                for o in from + 1..=offset {
                    if let Some(sent) = stats
                        .vote_slot(o)
                        .and_then(|s| stats.votes_by_offset.get(s))
                    {
                        shard.record(Sample::Tally, sent, now);
                    }
                }
            }
            st.votes_seen = st.votes_seen.max(offset);
        }
        Frame::PollResults => stats.shard(ctx.id).delivery(),
        Frame::Ack { reference, offset } => {
            if let Some((kind, sent)) = st.pending.remove(&reference) {
                stats.acked.fetch_add(1, Relaxed);
                match kind {
                    Pending::Ask => {}
                    Pending::Comment => stats.broadcast.lock().unwrap().push(offset),
                    Pending::Approve(q) => {
                        stats.broadcast.lock().unwrap().push(offset);
                        stats.approved.write().unwrap().push(q);
                    }
                    Pending::Vote { .. } => {
                        if let Some(slot) = stats.vote_slot(offset) {
                            stats.votes_by_offset.set(slot, sent);
                        }
                    }
                }
            }
        }
        Frame::Snapshot { offset } => {
            let _ = stats.origin.set(offset);
            st.tracker.reset(offset);
            st.votes_seen = offset;
            st.joined = true;
        }
        Frame::Resync => {
            stats.resyncs.fetch_add(1, Relaxed);
        }
        Frame::Rare(t) => return on_rare(stats, st, t, text),
        Frame::Presence | Frame::SnapshotMore | Frame::Suggestions | Frame::Pong => {}
        Frame::Unknown => stats.error("unreadable_frame"),
    }
    Ok(None)
}

/// Counts a delivery and, for a marked broadcast event (comment, approval, any Socket.IO
/// message), records its latency.
pub fn measure_marker(ctx: &Ctx, text: &str, timed: bool) {
    let stats = &ctx.stats;
    let sent = timed.then(|| scan::marker(text).and_then(|seq| stats.by_seq.get(seq)));
    let now = stats.now_ns();
    let mut shard = stats.shard(ctx.id);
    shard.delivery();
    match sent {
        Some(Some(sent)) => shard.record(Sample::Event, sent, now),
        Some(None) => {
            drop(shard);
            stats.untimed.fetch_add(1, Relaxed);
        }
        None => {}
    }
}

/// A moderator approves a pending question it is responsible for (full parse: staff-only,
/// as rare as questions).
async fn approve(
    ctx: &Ctx,
    st: &mut State,
    ws: &mut Ws,
    text: &str,
    index: u64,
    count: u64,
) -> anyhow::Result<()> {
    let v: Value = serde_json::from_str(text)?;
    let Some(q) = v["questions"].get(0) else {
        return Ok(());
    };
    let (Some(id), Some("pending")) = (q["id"].as_u64(), q["status"].as_str()) else {
        return Ok(());
    };
    if id % count != index {
        return Ok(());
    }
    if let Some(seq) = q["text"].as_str().and_then(scan::marker) {
        // From now on the question's latency is measured from this approval.
        ctx.stats.by_seq.set(seq, ctx.stats.now_ns());
    }
    let cmd = json!({"type": "approve_question", "question": id});
    send_cmd(st, ws, &ctx.stats, Pending::Approve(id), cmd).await
}

fn on_rare(stats: &Stats, st: &mut State, t: &str, text: &str) -> anyhow::Result<Option<End>> {
    let v: Value = serde_json::from_str(text)?;
    match t {
        "welcome" => {
            if v["protocol"].as_u64() != Some(1) {
                anyhow::bail!("server speaks protocol {}, not 1", v["protocol"]);
            }
            st.session = v["session"].as_str().map(str::to_owned);
        }
        "error" => {
            let code = v["code"].as_str().unwrap_or("unknown");
            stats.error(code);
            let pending = v["ref"].as_u64().and_then(|r| st.pending.remove(&r));
            if let Some((Pending::Vote { question, up }, _)) = pending {
                // The toggle did not happen: undo it locally.
                if up {
                    st.voted.retain(|&q| q != question);
                } else {
                    st.voted.push(question);
                }
            }
        }
        "bye" => {
            let code = v["code"].as_str().unwrap_or("unknown");
            stats.error(&format!("bye:{code}"));
            if matches!(
                code,
                "banned" | "bad_token" | "no_meeting" | "meeting_deleted"
            ) {
                return Ok(Some(End::Final));
            }
        }
        _ => {}
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_millis(1000));
        assert_eq!(backoff(9), Duration::from_millis(5000));
    }

    #[test]
    fn rand_moves_and_spreads() {
        let mut s = 1;
        let v: Vec<u64> = (0..1000).map(|_| next_rand(&mut s) % 10).collect();
        for k in 0..10 {
            let n = v.iter().filter(|&&x| x == k).count();
            assert!((50..150).contains(&n), "bucket {k}: {n}");
        }
    }
}
