//! Reading the server's Prometheus `/metrics` text: one series by its printed name, or the sum
//! of every series of a metric.

use std::collections::HashMap;

/// `GET {base}/metrics` as text.
pub async fn fetch(http: &reqwest::Client, base: &str) -> Result<String, reqwest::Error> {
    http.get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

/// The value of one series, named as printed with its labels
/// (`townhall_media_peers{role="viewer"}`); `None` if absent.
pub fn series(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The sum over all label sets of each metric, by metric name.
pub fn sums(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        let name = name_labels.split('{').next().unwrap_or(name_labels);
        *out.entry(name.to_owned()).or_insert(0.0) += v;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x\n\
        townhall_hub_commands_total{command=\"a\"} 2\n\
        townhall_hub_commands_total{command=\"b\"} 3\n\
        townhall_hub_rooms 1\n\
        townhall_hub_rooms_total 7\n\
        garbage\n";

    #[test]
    fn one_series_by_its_printed_name() {
        assert_eq!(
            series(TEXT, "townhall_hub_commands_total{command=\"b\"}"),
            Some(3.0)
        );
        assert_eq!(series(TEXT, "townhall_hub_rooms"), Some(1.0));
        assert_eq!(series(TEXT, "townhall_hub_room"), None);
    }

    #[test]
    fn sums_over_labels() {
        let s = sums(TEXT);
        assert_eq!(s["townhall_hub_commands_total"], 5.0);
        assert_eq!(s["townhall_hub_rooms"], 1.0);
        assert!(!s.contains_key("garbage"));
    }
}
