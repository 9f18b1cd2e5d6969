//! The result of a run: what `--json` writes, what the summary prints and what the plots
//! draw. Pure data and formatting; the scenario fills it in.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub samples: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            samples: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// One second of the load phase.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the load phase started.
    pub t: f64,
    pub connected: u64,
    pub deliveries: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One step of a stress run (rates multiplied by `factor` each step).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub index: usize,
    /// Commands per second asked of the generator (questions + votes + comments).
    pub commands_per_sec: f64,
    pub deliveries_per_sec: f64,
    pub latency: Latency,
}

/// Percentile curve of the whole run, for the distribution plot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantile {
    pub quantile: f64,
    pub ms: f64,
}

/// CPU and memory of a process over the load phase, read from /proc.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcUsage {
    pub pid: u32,
    /// CPU time used during the load phase divided by its wall time (1.0 = one core busy).
    pub cores: f64,
    pub rss_start_mb: f64,
    pub rss_peak_mb: f64,
    pub rss_end_mb: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub target: String,
    pub urls: Vec<String>,
    pub meeting: String,
    pub citizens: usize,
    pub moderators: usize,
    pub slow_clients: usize,
    pub ask_rate: f64,
    pub vote_rate: f64,
    pub comment_rate: f64,
    pub load_secs: f64,
    pub ramp_secs: f64,
    /// Connections joined and still open at the end of the load phase (slow ones excluded).
    pub connections_held: u64,
    pub connections_failed: u64,
    pub commands_sent: u64,
    pub commands_acked: u64,
    /// Commands not sent because the chosen connection's queue was full or closed.
    pub commands_dropped: u64,
    /// Frames that carry a meeting update (`event`, `votes`, `poll_results`) received.
    pub deliveries: u64,
    pub deliveries_per_sec: f64,
    pub latency: Latency,
    /// Comments and approvals (every Socket.IO message): sent → each client's `event`.
    pub latency_events: Latency,
    /// Votes: sent → each client's next `votes` tally (coalesced per 20 ms tick).
    pub latency_tallies: Latency,
    /// Received frames whose send time was unknown (vote tallies ahead of the ack).
    pub untimed: u64,
    pub errors: BTreeMap<String, u64>,
    pub reconnects: u64,
    pub resyncs: u64,
    /// Broadcast events some connection did not receive (must be 0).
    pub missed: u64,
    pub clients_missing_events: u64,
    pub out_of_order: u64,
    pub generator: ProcUsage,
    pub server: Option<ProcUsage>,
    /// Cores the whole machine kept busy during the load phase (generator, server, kernel
    /// networking and anything else running): what is left of the machine for this run.
    pub machine_busy_cores: f64,
    /// The townhall server's `/metrics` over the load phase (townhall only).
    pub server_metrics: Option<super::metrics::ServerMetrics>,
    pub timeline: Vec<Second>,
    pub steps: Vec<Step>,
    pub distribution: Vec<Quantile>,
}

/// Quantiles drawn in the distribution plot: 0, 0.5, 0.9, 0.99, … up to 0.99999.
pub fn distribution(h: &Histogram<u64>) -> Vec<Quantile> {
    if h.is_empty() {
        return Vec::new();
    }
    (0..=50)
        .map(|i| {
            // Evenly spaced in "number of nines": q = 1 - 10^(-i/10).
            let q = 1.0 - 10f64.powf(-(i as f64) / 10.0);
            Quantile {
                quantile: q,
                ms: h.value_at_quantile(q) as f64 / 1000.0,
            }
        })
        .collect()
}

/// The highest step that held p99 at or under `limit_ms`.
pub fn best_step(steps: &[Step], limit_ms: f64) -> Option<&Step> {
    steps
        .iter()
        .filter(|s| s.latency.samples > 0 && s.latency.p99_ms <= limit_ms)
        .max_by(|a, b| a.deliveries_per_sec.total_cmp(&b.deliveries_per_sec))
}

impl Report {
    /// The human summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let l = &self.latency;
        let mut s = String::new();
        let _ = writeln!(s, "── townhall-load chat: {} ──", self.target);
        let _ = writeln!(
            s,
            "connections held   {} of {} citizens + {} moderators ({} slow, {} failed)",
            self.connections_held,
            self.citizens,
            self.moderators,
            self.slow_clients,
            self.connections_failed
        );
        let _ = writeln!(
            s,
            "commands           {} sent, {} acked, {} dropped (rates: {}/s questions, {}/s votes, {}/s comments)",
            self.commands_sent,
            self.commands_acked,
            self.commands_dropped,
            self.ask_rate,
            self.vote_rate,
            self.comment_rate
        );
        let _ = writeln!(
            s,
            "deliveries         {} in {:.1} s = {:.0}/s",
            self.deliveries, self.load_secs, self.deliveries_per_sec
        );
        let _ = writeln!(
            s,
            "latency (ms)       p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  ({} samples, {} untimed)",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.samples, self.untimed
        );
        for (name, l) in [
            ("  events", &self.latency_events),
            ("  vote tallies", &self.latency_tallies),
        ] {
            if l.samples > 0 {
                let _ = writeln!(
                    s,
                    "{name:<19}p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  ({} samples)",
                    l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.samples
                );
            }
        }
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(s, "errors             {errors}");
        let _ = writeln!(
            s,
            "reconnects {}  resyncs {}  missed {} (by {} clients)  out of order {}",
            self.reconnects,
            self.resyncs,
            self.missed,
            self.clients_missing_events,
            self.out_of_order
        );
        let _ = writeln!(
            s,
            "generator          {:.2} cores, RSS {:.0} MB; whole machine {:.2} cores busy",
            self.generator.cores, self.generator.rss_peak_mb, self.machine_busy_cores
        );
        if let Some(p) = &self.server {
            let per_conn = if self.connections_held > 0 {
                (p.rss_end_mb - p.rss_start_mb) * 1024.0 / self.connections_held as f64
            } else {
                0.0
            };
            let _ = writeln!(
                s,
                "server (pid {})    {:.2} cores, RSS {:.0} MB at start, {:.0} MB peak, {:.0} MB end (grew {per_conn:.1} KB per connection during the load)",
                p.pid, p.cores, p.rss_start_mb, p.rss_peak_mb, p.rss_end_mb
            );
        }
        if let Some(m) = &self.server_metrics {
            let _ = writeln!(
                s,
                "server /metrics    {:.0} appends, {:.2} ms each on average, {:.1} commands per batch, {:.0} frames queued, {:.0} resyncs",
                m.appends, m.append_mean_ms, m.batch_mean, m.deliveries, m.resyncs
            );
        }
        for st in &self.steps {
            let _ = writeln!(
                s,
                "  step {:>2}: {:>8.0} cmd/s → {:>10.0} deliveries/s, p99 {:>8.2} ms, max {:>8.2} ms",
                st.index,
                st.commands_per_sec,
                st.deliveries_per_sec,
                st.latency.p99_ms,
                st.latency.max_ms
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: &[u64]) -> Histogram<u64> {
        let mut h = crate::chat::stats::histogram();
        for &v in values_us {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn latency_reads_percentiles_in_ms() {
        let h = hist(&(1..=1000).map(|i| i * 1000).collect::<Vec<_>>());
        let l = Latency::of(&h);
        assert_eq!(l.samples, 1000);
        assert!((l.p50_ms - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p99_ms - 990.0).abs() < 1.0, "{l:?}");
        assert!((l.max_ms - 1000.0).abs() < 1.0, "{l:?}");
        assert_eq!(Latency::of(&hist(&[])), Latency::default());
    }

    #[test]
    fn distribution_is_monotone_and_ends_near_the_max() {
        let d = distribution(&hist(&[100, 200, 300, 5000]));
        assert_eq!(d.len(), 51);
        assert!(
            d.windows(2)
                .all(|w| w[0].quantile < w[1].quantile && w[0].ms <= w[1].ms)
        );
        assert!((d.last().unwrap().ms - 5.0).abs() < 0.01);
    }

    #[test]
    fn best_step_ignores_steps_over_the_limit() {
        let step = |i, d, p99| Step {
            index: i,
            commands_per_sec: 0.0,
            deliveries_per_sec: d,
            latency: Latency {
                samples: 1,
                p99_ms: p99,
                ..Latency::default()
            },
        };
        let steps = [
            step(0, 10.0, 5.0),
            step(1, 20.0, 50.0),
            step(2, 40.0, 150.0),
        ];
        assert_eq!(best_step(&steps, 100.0).unwrap().index, 1);
        assert!(best_step(&steps, 1.0).is_none());
    }

    #[test]
    fn summary_names_errors_and_round_trips_as_json() {
        let mut r = Report {
            target: "townhall".into(),
            ..Report::default()
        };
        r.errors.insert("rate_limited".into(), 3);
        assert!(r.summary().contains("rate_limited=3"));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
    }
}
