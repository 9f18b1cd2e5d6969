//! Hand-written SVG charts (no plotting dependency): a run's latency over time, deliveries
//! over time and latency distribution; and the scaling curve over several runs.

use super::report::Report;
use std::fmt::Write as _;

const W: f64 = 900.0;
const PANEL_H: f64 = 260.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 45.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#7f7f7f"];

/// One line of a chart.
#[derive(Debug)]
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// One chart: lines over a shared x axis, with optional custom x tick labels.
#[derive(Debug)]
pub struct Panel<'a> {
    pub title: String,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series<'a>>,
    pub x_ticks: Option<Vec<(f64, String)>>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" upper bound and step for an axis going up to `max`.
fn nice(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn panel(out: &mut String, p: &Panel<'_>, y0: f64) {
    let pts = || p.series.iter().flat_map(|s| s.points.iter());
    let x_min = pts().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_max = pts().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let (x_min, x_max) = if x_min.is_finite() && x_max > x_min {
        (x_min, x_max)
    } else {
        (0.0, 1.0)
    };
    let (y_max, y_step) = nice(pts().map(|p| p.1).fold(0.0, f64::max));
    let (pw, ph) = (W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x - x_min) / (x_max - x_min) * pw;
    let sy = |y: f64| y0 + TOP + ph - y / y_max * ph;
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-size="15" font-weight="bold">{}</text>"#,
        y0 + 24.0,
        esc(&p.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##,
        y0 + TOP
    );
    let mut y = 0.0;
    while y <= y_max + y_step / 2.0 {
        let (x2, yy, tx, label) = (LEFT + pw, sy(y), LEFT - 6.0, fmt_num(y));
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{tx}" y="{:.1}" font-size="11" text-anchor="end">{label}</text>"##,
            yy + 4.0,
        );
        y += y_step;
    }
    let ticks = p.x_ticks.clone().unwrap_or_else(|| {
        let (_, step) = nice(x_max - x_min);
        let mut v = Vec::new();
        let mut x = (x_min / step).ceil() * step;
        while x <= x_max + 1e-9 {
            v.push((x, fmt_num(x)));
            x += step;
        }
        v
    });
    for (x, label) in ticks {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            sx(x),
            y0 + TOP + ph + 16.0,
            esc(&label)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text><text x="16" y="{}" font-size="12" transform="rotate(-90 16 {3})" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        y0 + PANEL_H - 8.0,
        esc(p.x_label),
        y0 + TOP + ph / 2.0,
        esc(p.y_label)
    );
    for (i, s) in p.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"#,
            path.join(" ")
        );
        if s.points.len() <= 12 {
            for &(x, y) in &s.points {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                    sx(x),
                    sy(y)
                );
            }
        }
        let ly = y0 + TOP + 14.0 + i as f64 * 18.0;
        let _ = writeln!(
            out,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}" font-size="12">{}</text>"#,
            W - RIGHT + 12.0,
            W - RIGHT + 32.0,
            W - RIGHT + 38.0,
            ly + 4.0,
            esc(s.name)
        );
    }
}

/// An SVG document with the panels stacked vertically.
pub fn svg(panels: &[Panel<'_>]) -> String {
    let h = PANEL_H * panels.len() as f64;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    for (i, p) in panels.iter().enumerate() {
        panel(&mut out, p, i as f64 * PANEL_H);
    }
    out.push_str("</svg>\n");
    out
}

/// Latency over time, deliveries over time and the latency distribution of one run.
pub fn run_svg(r: &Report) -> String {
    let line = |name, f: fn(&super::report::Second) -> f64| Series {
        name,
        points: r.timeline.iter().map(|s| (s.t, f(s))).collect(),
    };
    // The distribution's x axis counts nines: 0 → 0 %, 1 → 90 %, 2 → 99 %, …
    let nines = |q: f64| -(1.0 - q).max(1e-9).log10();
    let dist = Series {
        name: "latency",
        points: r
            .distribution
            .iter()
            .map(|q| (nines(q.quantile), q.ms))
            .collect(),
    };
    let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
    svg(&[
        Panel {
            title: format!("{}: latency per second ({} citizens)", r.target, r.citizens),
            x_label: "seconds into the load phase",
            y_label: "ms",
            series: vec![
                line("p50", |s| s.p50_ms),
                line("p99", |s| s.p99_ms),
                line("max", |s| s.max_ms),
            ],
            x_ticks: None,
        },
        Panel {
            title: "deliveries per second".into(),
            x_label: "seconds into the load phase",
            y_label: "deliveries/s",
            series: vec![line("deliveries/s", |s| s.deliveries as f64)],
            x_ticks: None,
        },
        Panel {
            title: format!(
                "latency distribution: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                r.latency.p50_ms, r.latency.p99_ms, r.latency.max_ms
            ),
            x_label: "percentile",
            y_label: "ms",
            series: vec![dist],
            x_ticks: Some(
                labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (i as f64, (*l).to_owned()))
                    .collect(),
            ),
        },
    ])
}

/// Deliveries/s, p99 and server memory per connection against the number of citizens, one
/// line per target.
pub fn scaling_svg(reports: &[Report]) -> String {
    let mut targets: Vec<&str> = reports.iter().map(|r| r.target.as_str()).collect();
    targets.dedup();
    targets.sort_unstable();
    targets.dedup();
    let series = |f: fn(&Report) -> Option<f64>| -> Vec<Series<'_>> {
        targets
            .iter()
            .map(|t| {
                let mut points: Vec<(f64, f64)> = reports
                    .iter()
                    .filter(|r| r.target == *t)
                    .filter_map(|r| Some((r.citizens as f64, f(r)?)))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series { name: t, points }
            })
            .collect()
    };
    svg(&[
        Panel {
            title: "deliveries per second".into(),
            x_label: "citizens",
            y_label: "deliveries/s",
            series: series(|r| Some(r.deliveries_per_sec)),
            x_ticks: None,
        },
        Panel {
            title: "p99 delivery latency".into(),
            x_label: "citizens",
            y_label: "ms",
            series: series(|r| Some(r.latency.p99_ms)),
            x_ticks: None,
        },
        Panel {
            title: "server RSS per connection".into(),
            x_label: "citizens",
            y_label: "KB",
            series: series(|r| {
                let s = r.server.as_ref()?;
                let held = r.connections_held.max(1) as f64;
                Some(s.rss_end_mb * 1024.0 / held)
            }),
            x_ticks: None,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::report::{Quantile, Second};

    fn report(target: &str, citizens: usize) -> Report {
        Report {
            target: target.into(),
            citizens,
            deliveries_per_sec: citizens as f64 * 30.0,
            timeline: (0..5)
                .map(|t| Second {
                    t: t as f64,
                    deliveries: 100 * t,
                    p50_ms: 1.0,
                    p99_ms: 2.0 + t as f64,
                    max_ms: 9.0,
                    connected: 10,
                })
                .collect(),
            distribution: vec![
                Quantile {
                    quantile: 0.0,
                    ms: 0.5,
                },
                Quantile {
                    quantile: 0.99,
                    ms: 4.0,
                },
            ],
            ..Report::default()
        }
    }

    #[test]
    fn nice_axes_cover_the_data() {
        assert_eq!(nice(7.3), (8.0, 2.0));
        assert_eq!(nice(0.0), (1.0, 0.2));
        let (max, step) = nice(523_000.0);
        assert!(max >= 523_000.0 && step > 0.0);
    }

    #[test]
    fn run_plot_is_well_formed_svg_with_all_lines() {
        let s = run_svg(&report("townhall <x>", 10));
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 5);
        assert!(s.contains("townhall &lt;x&gt;"), "text is escaped");
        assert!(!s.contains("NaN") && !s.contains("inf"));
    }

    #[test]
    fn scaling_plot_has_one_line_per_target_and_metric() {
        let rs = [
            report("townhall", 1000),
            report("socketio", 1000),
            report("townhall", 2000),
        ];
        let s = scaling_svg(&rs);
        // 3 panels × 2 targets; the memory panel has no points without server figures.
        assert_eq!(s.matches("<polyline").count(), 6);
        assert!(s.contains(">socketio<") && s.contains(">townhall<"));
    }

    #[test]
    fn empty_report_still_draws() {
        let s = run_svg(&Report::default());
        assert!(!s.contains("NaN"));
    }
}
