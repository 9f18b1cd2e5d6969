//! Prometheus metrics of the relay (`townhall_media_*`).

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Counters the relay updates; cloned handles share the same series.
#[derive(Debug, Clone)]
pub struct MediaMetrics {
    pub peers: IntGaugeVec,
    pub received_packets: IntCounter,
    pub received_bytes: IntCounter,
    pub forwarded_packets: IntCounter,
    pub forwarded_bytes: IntCounter,
    pub keyframe_requests: IntCounterVec,
    pub nacks: IntCounter,
    pub layer_switches: IntCounter,
    pub time_to_first_frame: Histogram,
    pub replayed_starts: IntCounter,
    pub dropped_datagrams: IntCounterVec,
}

impl MediaMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = MediaMetrics {
            peers: IntGaugeVec::new(
                Opts::new("townhall_media_peers", "Connected WebRTC peers by role"),
                &["role"],
            )?,
            received_packets: IntCounter::new(
                "townhall_media_received_packets_total",
                "RTP packets received from publishers",
            )?,
            received_bytes: IntCounter::new(
                "townhall_media_received_bytes_total",
                "RTP payload bytes received from publishers",
            )?,
            forwarded_packets: IntCounter::new(
                "townhall_media_forwarded_packets_total",
                "RTP packets forwarded to viewers",
            )?,
            forwarded_bytes: IntCounter::new(
                "townhall_media_forwarded_bytes_total",
                "RTP payload bytes forwarded to viewers",
            )?,
            keyframe_requests: IntCounterVec::new(
                Opts::new(
                    "townhall_media_keyframe_requests_total",
                    "Keyframe requests: sent to publishers, or throttled (not sent)",
                ),
                &["outcome"],
            )?,
            nacks: IntCounter::new(
                "townhall_media_nacks_total",
                "NACKs received from viewers (retransmissions asked for)",
            )?,
            layer_switches: IntCounter::new(
                "townhall_media_layer_switches_total",
                "Simulcast layer switches made for viewers",
            )?,
            time_to_first_frame: Histogram::with_opts(
                HistogramOpts::new(
                    "townhall_media_time_to_first_frame_seconds",
                    "From a WHEP session's creation to its first forwarded keyframe",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]),
            )?,
            replayed_starts: IntCounter::new(
                "townhall_media_replayed_starts_total",
                "Viewer video m-lines started from the relay's keyframe cache (no request)",
            )?,
            dropped_datagrams: IntCounterVec::new(
                Opts::new(
                    "townhall_media_dropped_datagrams_total",
                    "Datagrams not delivered: unknown sender, unparsable, or send buffer full",
                ),
                &["reason"],
            )?,
        };
        registry.register(Box::new(m.peers.clone()))?;
        registry.register(Box::new(m.received_packets.clone()))?;
        registry.register(Box::new(m.received_bytes.clone()))?;
        registry.register(Box::new(m.forwarded_packets.clone()))?;
        registry.register(Box::new(m.forwarded_bytes.clone()))?;
        registry.register(Box::new(m.keyframe_requests.clone()))?;
        registry.register(Box::new(m.nacks.clone()))?;
        registry.register(Box::new(m.layer_switches.clone()))?;
        registry.register(Box::new(m.time_to_first_frame.clone()))?;
        registry.register(Box::new(m.replayed_starts.clone()))?;
        registry.register(Box::new(m.dropped_datagrams.clone()))?;
        for role in ["publisher", "viewer"] {
            m.peers.with_label_values(&[role]).set(0);
        }
        // Exported at 0 from the start: with viewers started from the cached keyframe a node
        // may never ask for one, and a dashboard panel should show 0, not "no data".
        for outcome in ["sent", "throttled"] {
            m.keyframe_requests.with_label_values(&[outcome]).reset();
        }
        Ok(m)
    }
}
