//! The node's one pub/sub connection: subscribed to the channels of the meetings this process
//! subscribes to, decoding each published batch once and handing it to the [`Registry`].
//!
//! It reconnects by itself (backoff up to [`MAX_BACKOFF`]), resubscribes everything, and then
//! tells every subscriber to catch up from the log, since whatever was published meanwhile is
//! gone. A PING every [`PING_EVERY`] notices a dead connection that TCP has not reported yet.

use super::keys::Keys;
use crate::StoreError;
use crate::codec::decode_value;
use crate::feed::{CommittedBatch, Registry};
use futures_util::StreamExt;
use redis::aio::PubSubSink;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, timeout};
use townhall_core::{MeetingId, Recorded};

const PING_EVERY: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Whether the feed is connected and subscribed, for `/readyz`.
#[derive(Debug, Default)]
pub(crate) struct FeedStatus {
    up: AtomicBool,
    problem: Mutex<Option<String>>,
}

impl FeedStatus {
    fn set_up(&self) {
        self.up.store(true, Ordering::Release);
    }

    fn set_down(&self, why: String) {
        self.up.store(false, Ordering::Release);
        *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
    }

    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.up.load(Ordering::Acquire) {
            return Ok(());
        }
        let why = self
            .problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| "not connected yet".into());
        Err(StoreError::Unavailable(format!("redis pub/sub: {why}")))
    }
}

/// Runs until aborted (when the `RedisLog` is dropped) or the registry is gone.
pub(crate) async fn run(
    client: redis::Client,
    keys: Keys,
    registry: Arc<Registry>,
    mut changes: mpsc::UnboundedReceiver<MeetingId>,
    status: Arc<FeedStatus>,
    connect_timeout: Duration,
) {
    let mut backoff = MIN_BACKOFF;
    let mut down_since: Option<Instant> = None;
    loop {
        let why = match connect(&client, &keys, &registry, &mut changes, connect_timeout).await {
            Ok(mut connection) => {
                status.set_up();
                backoff = MIN_BACKOFF;
                if let Some(since) = down_since.take() {
                    tracing::info!(
                        after_ms = since.elapsed().as_millis() as u64,
                        "redis pub/sub reconnected; subscribers catch up from the log"
                    );
                }
                let why = connection.serve(&registry, &mut changes).await;
                registry.set_all_down();
                match why {
                    Some(why) => why,
                    // The registry is gone: nobody can subscribe any more.
                    None => return,
                }
            }
            Err(why) => why,
        };
        status.set_down(why.clone());
        if down_since.is_none() {
            down_since = Some(Instant::now());
            tracing::warn!(error = %why, "redis pub/sub connection lost; reconnecting");
        } else {
            tracing::debug!(error = %why, "redis pub/sub still unreachable");
        }
        // Wait, but keep draining subscription changes: on reconnect the registry says what
        // is wanted, so they need no other handling now.
        let wait = sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                change = changes.recv() => if change.is_none() { return },
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A connected pub/sub connection and the channels it is subscribed to.
struct Connection {
    sink: PubSubSink,
    stream: redis::aio::PubSubStream,
    keys: Keys,
    /// Channel name → meeting, for the channels subscribed on this connection.
    subscribed: HashMap<String, MeetingId>,
}

async fn connect(
    client: &redis::Client,
    keys: &Keys,
    registry: &Registry,
    changes: &mut mpsc::UnboundedReceiver<MeetingId>,
    connect_timeout: Duration,
) -> Result<Connection, String> {
    let pubsub = timeout(connect_timeout, client.get_async_pubsub())
        .await
        .map_err(|_| "connecting timed out".to_owned())?
        .map_err(|e| format!("connecting: {e}"))?;
    let (sink, stream) = pubsub.split();
    let mut connection = Connection {
        sink,
        stream,
        keys: keys.clone(),
        subscribed: HashMap::new(),
    };
    // What changed while disconnected is in the registry already.
    while changes.try_recv().is_ok() {}
    let wanted = registry.wanted_all();
    if !wanted.is_empty() {
        let channels: HashMap<String, MeetingId> = wanted
            .into_iter()
            .map(|m| (keys.meeting(&m).channel, m))
            .collect();
        let names: Vec<&String> = channels.keys().collect();
        timeout(connect_timeout, connection.sink.subscribe(&names))
            .await
            .map_err(|_| "subscribing timed out".to_owned())?
            .map_err(|e| format!("subscribing: {e}"))?;
        for meeting in channels.values() {
            registry.set_live(meeting);
        }
        connection.subscribed = channels;
    }
    Ok(connection)
}

impl Connection {
    /// Serves until the connection fails (`Some(why)`) or the registry is gone (`None`).
    async fn serve(
        &mut self,
        registry: &Registry,
        changes: &mut mpsc::UnboundedReceiver<MeetingId>,
    ) -> Option<String> {
        let mut ping = interval(PING_EVERY);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                change = changes.recv() => {
                    let meeting = change?;
                    if let Err(why) = self.reconcile(registry, meeting).await {
                        return Some(why);
                    }
                }
                message = self.stream.next() => match message {
                    Some(message) => self.dispatch(registry, &message),
                    None => return Some("connection closed".into()),
                },
                _ = ping.tick() => {
                    registry.flush_missed();
                    match timeout(PING_EVERY * 2, self.sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Some(format!("ping: {e}")),
                        Err(_) => return Some("ping timed out".into()),
                    }
                }
            }
        }
    }

    /// Subscribes to or unsubscribes from `meeting`'s channel, as the registry now wants.
    async fn reconcile(&mut self, registry: &Registry, meeting: MeetingId) -> Result<(), String> {
        let channel = self.keys.meeting(&meeting).channel;
        let wanted = registry.wanted(&meeting);
        let subscribed = self.subscribed.contains_key(&channel);
        if wanted && !subscribed {
            timeout(PING_EVERY * 2, self.sink.subscribe(&channel))
                .await
                .map_err(|_| "subscribing timed out".to_owned())?
                .map_err(|e| format!("subscribing: {e}"))?;
            self.subscribed.insert(channel, meeting.clone());
            registry.set_live(&meeting);
        } else if wanted {
            // Unsubscribed and subscribed again before this task saw the first change: the
            // new subscribers still need their `CatchUp`.
            registry.set_live(&meeting);
        } else if subscribed {
            timeout(PING_EVERY * 2, self.sink.unsubscribe(&channel))
                .await
                .map_err(|_| "unsubscribing timed out".to_owned())?
                .map_err(|e| format!("unsubscribing: {e}"))?;
            self.subscribed.remove(&channel);
        }
        Ok(())
    }

    fn dispatch(&self, registry: &Registry, message: &redis::Msg) {
        let Some(meeting) = self.subscribed.get(message.get_channel_name()) else {
            return; // published just before we unsubscribed
        };
        match decode_batch(meeting, message.get_payload_bytes()) {
            Ok(batch) => registry.publish(meeting, &batch),
            Err(e) => {
                tracing::warn!(%meeting, error = %e, "undecodable batch on the feed; catching up from the log");
                registry.lost(meeting);
            }
        }
    }
}

/// Reads `{"v":1,"after":N,"events":[…]}` as published by the append script.
pub(crate) fn decode_batch(
    meeting: &MeetingId,
    payload: &[u8],
) -> Result<CommittedBatch, StoreError> {
    #[derive(serde::Deserialize)]
    struct Published {
        v: u32,
        after: u64,
        events: Vec<serde_json::Value>,
    }
    let corrupt = |why: String| StoreError::Corrupt(format!("published batch of {meeting}: {why}"));
    let published: Published =
        serde_json::from_slice(payload).map_err(|e| corrupt(e.to_string()))?;
    if published.v != 1 {
        return Err(corrupt(format!("unknown version {}", published.v)));
    }
    let events = (published.after + 1..)
        .zip(published.events)
        .map(|(offset, value)| {
            Ok(Recorded {
                offset,
                event: decode_value(meeting, offset, value)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(CommittedBatch {
        after: published.after,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use townhall_core::event::QaOpened;
    use townhall_core::{Event, EventKind, ParticipantId, Timestamp};

    #[test]
    fn published_batches_decode_with_their_offsets() {
        let m = MeetingId::parse("m").expect("valid id");
        let event = Event {
            at: Timestamp(9),
            by: ParticipantId::parse("p").expect("valid id"),
            kind: EventKind::QaOpened(QaOpened),
        };
        let stored = crate::codec::encode(&event).expect("encodes");
        let payload = format!(r#"{{"v":1,"after":41,"events":[{stored},{stored}]}}"#);
        let batch = decode_batch(&m, payload.as_bytes()).expect("decodes");
        assert_eq!(batch, CommittedBatch::new(41, vec![event.clone(), event]));
        for bad in [
            "nope".to_owned(),
            r#"{"v":2,"after":1,"events":[]}"#.to_owned(),
            r#"{"v":1,"after":1,"events":[{"type":"qa_opened"}]}"#.to_owned(),
        ] {
            assert!(
                matches!(
                    decode_batch(&m, bad.as_bytes()),
                    Err(StoreError::Corrupt(_))
                ),
                "{bad}"
            );
        }
    }
}
