//! `townhall-load chat`: simulated citizens and moderators on real WebSocket connections to a
//! townhall server (or to the Socket.IO peer), measuring the delay from each command to every
//! client that receives its result, and counting what any client missed.
//!
//! Pieces: `args` (the command line, validated into a `Plan`), `scan` (reading frames without
//! parsing them), `client`/`socketio` (one connection each), `scenario` (ramp-up, load,
//! drain), `stats` (shared counters), `report`/`plot` (results), `procfs` (CPU and memory).

pub mod args;
pub mod client;
pub mod conn;
pub mod metrics;
pub mod plot;
pub mod procfs;
pub mod report;
pub mod scan;
pub mod scenario;
pub mod socketio;
pub mod stats;

pub use args::{ChatArgs, SummarizeArgs, Target};
pub use report::Report;

/// Runs one chat load test: prints progress and the summary, writes `--json` and `--plot`.
pub async fn run(args: ChatArgs) -> anyhow::Result<Report> {
    let plan = args.plan()?;
    let report = scenario::run(&args, &plan).await?;
    println!("{}", report.summary());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, plot::run_svg(&report))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(report)
}

/// `townhall-load summarize`: a Markdown table of several JSON reports, and the scaling plot.
pub fn summarize(args: &SummarizeArgs) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for path in &args.reports {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let r: Report = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a chat report: {e}", path.display()))?;
        reports.push((
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            r,
        ));
    }
    print!("{}", table(&reports));
    if let Some(path) = &args.scaling_plot {
        let rs: Vec<Report> = reports.into_iter().map(|(_, r)| r).collect();
        std::fs::write(path, plot::scaling_svg(&rs))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// One Markdown row per report.
pub fn table(reports: &[(String, Report)]) -> String {
    let mut s = String::from(
        "| run | target | citizens held | cmd/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | events p99 | tallies p99 | missed | errors | gen. cores | server cores | machine busy cores | server RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, r) in reports {
        let errors: u64 = r.errors.values().sum();
        let (cores, rss) = r.server.as_ref().map_or(("–".into(), "–".into()), |p| {
            (format!("{:.2}", p.cores), format!("{:.0}", p.rss_peak_mb))
        });
        s.push_str(&format!(
            "| {name} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {errors} | {:.2} | {cores} | {:.2} | {rss} |\n",
            r.target,
            r.connections_held,
            r.ask_rate + r.vote_rate + r.comment_rate,
            r.deliveries_per_sec,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.p999_ms,
            r.latency.max_ms,
            r.latency_events.p99_ms,
            r.latency_tallies.p99_ms,
            r.missed,
            r.generator.cores,
            r.machine_busy_cores,
        ));
        for st in &r.steps {
            s.push_str(&format!(
                "| {name} step {} | {} | | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | | | | | | | | |\n",
                st.index,
                r.target,
                st.commands_per_sec,
                st.deliveries_per_sec,
                st.latency.p50_ms,
                st.latency.p99_ms,
                st.latency.p999_ms,
                st.latency.max_ms,
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_report_and_step() {
        let mut r = Report {
            target: "townhall".into(),
            connections_held: 10,
            ..Report::default()
        };
        r.steps.push(report::Step::default());
        let t = table(&[("a".into(), r.clone()), ("b".into(), r)]);
        assert_eq!(t.lines().count(), 2 + 4);
        assert!(t.contains("| a step 0 |"));
    }
}
