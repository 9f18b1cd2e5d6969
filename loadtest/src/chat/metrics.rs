//! The townhall server's own view of a run, from its Prometheus `/metrics` before and after
//! the load: how long its appends to the event log took and how many commands each batch held.
//! This separates time spent in storage from time spent fanning out.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use townhall_client::metrics;

/// The server's metrics summed per name (`townhall_client::metrics::sums`), or `None` when
/// `/metrics` does not answer.
pub async fn fetch(base: &str) -> Option<HashMap<String, f64>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let text = metrics::fetch(&http, base).await.ok()?;
    Some(metrics::sums(&text))
}

/// What the server measured during the load phase.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerMetrics {
    pub appends: f64,
    /// Mean wall time of one append (one transaction: a batch of commands), ms.
    pub append_mean_ms: f64,
    /// Mean commands per batch.
    pub batch_mean: f64,
    /// Frames the hub queued to sessions.
    pub deliveries: f64,
    pub resyncs: f64,
}

/// The difference between two scrapes.
pub fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>) -> ServerMetrics {
    let d = |k: &str| after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
    let appends = d("townhall_store_append_seconds_count");
    let batches = d("townhall_hub_batch_size_count");
    ServerMetrics {
        appends,
        append_mean_ms: if appends > 0.0 {
            d("townhall_store_append_seconds_sum") * 1000.0 / appends
        } else {
            0.0
        },
        batch_mean: if batches > 0.0 {
            d("townhall_hub_batch_size_sum") / batches
        } else {
            0.0
        },
        deliveries: d("townhall_hub_deliveries_total"),
        resyncs: d("townhall_hub_resyncs_total"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_of_prometheus_text() {
        let a = metrics::sums(
            "# HELP x\ntownhall_store_append_seconds_sum 1.0\ntownhall_store_append_seconds_count 10\ntownhall_hub_batch_size_sum 10\ntownhall_hub_batch_size_count 10\n",
        );
        let b = metrics::sums(
            "townhall_store_append_seconds_sum 3.0\ntownhall_store_append_seconds_count 30\ntownhall_hub_batch_size_sum 70\ntownhall_hub_batch_size_count 30\ntownhall_hub_commands_total{command=\"a\"} 2\ntownhall_hub_commands_total{command=\"b\"} 3\ngarbage\n",
        );
        let m = delta(&a, &b);
        assert_eq!(m.appends, 20.0);
        assert!((m.append_mean_ms - 100.0).abs() < 1e-9);
        assert!((m.batch_mean - 3.0).abs() < 1e-9);
        assert_eq!(b["townhall_hub_commands_total"], 5.0);
    }
}
