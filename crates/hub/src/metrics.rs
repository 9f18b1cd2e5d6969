//! Prometheus metrics of the hub: `townhall_hub_*` and `townhall_store_append_seconds`.
//! Labels have bounded values only (command names, error codes), never ids.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone, Debug)]
pub struct HubMetrics {
    pub connections: IntGauge,
    pub rooms: IntGauge,
    pub commands: IntCounterVec,
    pub rejections: IntCounterVec,
    pub events: IntCounter,
    pub deliveries: IntCounter,
    pub resyncs: IntCounter,
    /// Appends refused because another node moved the log first (its batch is then decided
    /// again); against `batch_size`'s count, the conflict rate of a meeting shared by nodes.
    pub conflict_retries: IntCounter,
    pub batch_size: Histogram,
    pub append_seconds: Histogram,
}

impl HubMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let hub =
            |name: &str, help: &str| Opts::new(name, help).namespace("townhall").subsystem("hub");
        let m = Self {
            connections: IntGauge::with_opts(hub("connections", "Open WebSocket connections"))?,
            rooms: IntGauge::with_opts(hub("rooms", "Meetings loaded on this node"))?,
            commands: IntCounterVec::new(
                hub("commands_total", "Commands received, by command"),
                &["command"],
            )?,
            rejections: IntCounterVec::new(
                hub(
                    "rejections_total",
                    "Commands and frames refused, by error code",
                ),
                &["code"],
            )?,
            events: IntCounter::with_opts(hub("events_total", "Events appended to the log"))?,
            deliveries: IntCounter::with_opts(hub(
                "deliveries_total",
                "Frames queued to connections",
            ))?,
            resyncs: IntCounter::with_opts(hub(
                "resyncs_total",
                "Connections that fell behind and were sent a fresh snapshot",
            ))?,
            conflict_retries: IntCounter::with_opts(hub(
                "conflict_retries_total",
                "Appends that found the log moved on by another node; the batch is decided again",
            ))?,
            batch_size: Histogram::with_opts(
                HistogramOpts::new("batch_size", "Commands decided and committed together")
                    .namespace("townhall")
                    .subsystem("hub")
                    .buckets(vec![
                        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                    ]),
            )?,
            append_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "append_seconds",
                    "Time to append one batch of events durably",
                )
                .namespace("townhall")
                .subsystem("store")
                .buckets(vec![
                    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
                ]),
            )?,
        };
        registry.register(Box::new(m.connections.clone()))?;
        registry.register(Box::new(m.rooms.clone()))?;
        registry.register(Box::new(m.commands.clone()))?;
        registry.register(Box::new(m.rejections.clone()))?;
        registry.register(Box::new(m.events.clone()))?;
        registry.register(Box::new(m.deliveries.clone()))?;
        registry.register(Box::new(m.resyncs.clone()))?;
        registry.register(Box::new(m.conflict_retries.clone()))?;
        registry.register(Box::new(m.batch_size.clone()))?;
        registry.register(Box::new(m.append_seconds.clone()))?;
        Ok(m)
    }

    /// Metrics registered nowhere, for tests and benchmarks.
    pub fn unregistered() -> Self {
        Self::new(&Registry::new()).expect("fresh registry has no name clashes")
    }
}
