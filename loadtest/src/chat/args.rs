//! The `chat` command line, and its validation into a `Plan` (pure, so bad input is tested).

use std::path::PathBuf;
use std::time::Duration;

/// Which server the connections speak to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// A townhall server: `/ws`, the protocol of docs/protocol.md.
    Townhall,
    /// The Socket.IO peer in loadtest/peers/socketio (Engine.IO v4 over WebSocket).
    Socketio,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Self::Townhall => "townhall",
            Self::Socketio => "socketio",
        }
    }
}

/// Simulated citizens on real WebSocket connections, moderators approving their questions,
/// and the delay from each command to every client that receives its result.
#[derive(Clone, Debug, clap::Args)]
pub struct ChatArgs {
    /// Server base URL (http://host:port). Repeat or comma-separate to spread the connections
    /// over several nodes, round-robin.
    #[arg(long, required = true, value_delimiter = ',')]
    pub url: Vec<String>,
    /// Which server speaks at --url.
    #[arg(long, value_enum, default_value_t = Target::Townhall)]
    pub target: Target,
    /// Join this existing, live meeting (townhall) or room (socketio; default "load").
    #[arg(long)]
    pub meeting: Option<String>,
    /// Organizer token: create and start a fresh meeting for the run (townhall).
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Secret of the meeting's moderator link (the part after `#`), with --meeting.
    #[arg(long)]
    pub moderator_token: Option<String>,
    /// Simulated citizens (one WebSocket each).
    #[arg(long, default_value_t = 100)]
    pub citizens: usize,
    /// Questions asked per second (over all citizens).
    #[arg(long, default_value_t = 2.0)]
    pub ask_rate: f64,
    /// Upvotes (or retractions) per second, on approved questions.
    #[arg(long, default_value_t = 20.0)]
    pub vote_rate: f64,
    /// Chat comments per second.
    #[arg(long, default_value_t = 10.0)]
    pub comment_rate: f64,
    /// Moderator connections approving every question (townhall only).
    #[arg(long, default_value_t = 3)]
    pub moderators: usize,
    /// Length of the load phase, after every connection has joined (e.g. 30s, 2m, 500ms).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// New connections opened per second during ramp-up.
    #[arg(long, default_value_t = 2000.0)]
    pub ramp_rate: f64,
    /// Percentage of citizens that join and then stop reading (slow clients).
    #[arg(long, default_value_t = 0.0)]
    pub slow_percent: f64,
    /// Stress mode: multiply every rate by --step-factor each time this much time passes
    /// (0 = constant rates).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub step: Duration,
    /// Rate multiplier from one step to the next.
    #[arg(long, default_value_t = 2.0)]
    pub step_factor: f64,
    /// Stress mode: end the load phase after a step whose p99 is above this many ms.
    #[arg(long)]
    pub stop_p99_ms: Option<f64>,
    /// Loopback source addresses to spread connections over (127.0.0.1 … 127.0.0.N);
    /// default: one per 4000 connections when the server is on loopback, else none.
    #[arg(long)]
    pub source_ips: Option<usize>,
    /// Also report CPU and memory of this local server process (from /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw latency over time and the latency distribution into this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// A Markdown table of several `--json` reports, and optionally the scaling curve.
#[derive(Clone, Debug, clap::Args)]
pub struct SummarizeArgs {
    /// JSON reports written by `chat --json`.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Draw deliveries/s, p99 and server RSS per connection against citizens into this SVG.
    #[arg(long)]
    pub scaling_plot: Option<PathBuf>,
}

/// `30s`, `2m`, `500ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 30s, 2m or 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"))
}

/// What the run will do, derived from valid arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub citizens: usize,
    pub moderators: usize,
    pub slow: usize,
    /// Rate multiplier of each step; one entry (1.0) without stress steps.
    pub steps: Vec<f64>,
    pub step_len: Duration,
    /// Size of the send-time tables: more than the commands the run can send.
    pub slots: usize,
}

const MAX_SLOTS: usize = 8 << 20;

impl ChatArgs {
    /// Checks the arguments and derives the plan; the error names the bad flag.
    pub fn plan(&self) -> anyhow::Result<Plan> {
        use anyhow::bail;
        if self.url.iter().any(|u| u.trim().is_empty()) {
            bail!("--url must not be empty");
        }
        if self.citizens == 0 {
            bail!("--citizens must be at least 1");
        }
        for (flag, v) in [
            ("--ask-rate", self.ask_rate),
            ("--vote-rate", self.vote_rate),
            ("--comment-rate", self.comment_rate),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{flag} must be a number ≥ 0, not {v}");
            }
        }
        if !(self.ramp_rate.is_finite() && self.ramp_rate > 0.0) {
            bail!("--ramp-rate must be a positive number");
        }
        if !(0.0..100.0).contains(&self.slow_percent) {
            bail!("--slow-percent must be in [0, 100)");
        }
        if self.duration < Duration::from_secs(1) || self.duration > Duration::from_secs(24 * 3600)
        {
            bail!("--duration must be between 1s and 24h");
        }
        if self.source_ips == Some(0) {
            bail!("--source-ips must be at least 1");
        }
        let moderators = match self.target {
            Target::Socketio => 0,
            Target::Townhall => {
                if self.admin_token.is_none() && self.meeting.is_none() {
                    bail!("give --admin-token (create a meeting) or --meeting (join one)");
                }
                if self.admin_token.is_some() && self.meeting.is_some() {
                    bail!("--admin-token creates a meeting; do not combine it with --meeting");
                }
                if self.meeting.is_some() && self.moderators > 0 && self.moderator_token.is_none() {
                    bail!(
                        "--moderators with --meeting needs --moderator-token (or --moderators 0)"
                    );
                }
                self.moderators
            }
        };
        let steps = if self.step.is_zero() {
            vec![1.0]
        } else {
            if self.step < Duration::from_secs(1) {
                bail!("--step must be at least 1s");
            }
            if !(self.step_factor.is_finite() && self.step_factor > 1.0) {
                bail!("--step-factor must be greater than 1");
            }
            let n = self.duration.as_secs_f64() / self.step.as_secs_f64();
            (0..n.ceil() as i32)
                .map(|i| self.step_factor.powi(i))
                .collect()
        };
        let step_len = if self.step.is_zero() {
            self.duration
        } else {
            self.step
        };
        let base = self.ask_rate + self.vote_rate + self.comment_rate;
        let commands: f64 = steps
            .iter()
            .map(|m| m * base * step_len.as_secs_f64())
            .sum();
        // Offsets also count approvals and meeting events: twice the commands is ample.
        let slots = (commands * 2.0 + 10_000.0).min(MAX_SLOTS as f64) as usize;
        let slow = (self.citizens as f64 * self.slow_percent / 100.0).round() as usize;
        Ok(Plan {
            citizens: self.citizens,
            moderators,
            slow,
            steps,
            step_len,
            slots,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        chat: ChatArgs,
    }

    fn parse(args: &str) -> Result<ChatArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("x").chain(args.split_whitespace())).map(|c| c.chat)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("7 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-3s").is_err());
    }

    #[test]
    fn defaults_make_a_valid_plan() {
        let a = parse("--url http://127.0.0.1:1 --admin-token t").unwrap();
        let p = a.plan().unwrap();
        assert_eq!((p.citizens, p.moderators, p.slow), (100, 3, 0));
        assert_eq!(p.steps, vec![1.0]);
        assert_eq!(p.step_len, Duration::from_secs(30));
    }

    #[test]
    fn stress_steps_multiply_rates() {
        let a = parse("--url http://h:1 --admin-token t --duration 40s --step 10s --step-factor 3 --citizens 200 --slow-percent 1").unwrap();
        let p = a.plan().unwrap();
        assert_eq!(p.steps, vec![1.0, 3.0, 9.0, 27.0]);
        assert_eq!(p.slow, 2);
        assert!(p.slots > 32 * 40 * 10);
    }

    #[test]
    fn bad_input_is_named() {
        let err = |s: &str| parse(s).unwrap().plan().unwrap_err().to_string();
        assert!(err("--url http://h:1").contains("--admin-token"));
        assert!(err("--url http://h:1 --meeting m").contains("--moderator-token"));
        assert!(err("--url http://h:1 --admin-token t --citizens 0").contains("--citizens"));
        assert!(err("--url http://h:1 --admin-token t --ask-rate NaN").contains("--ask-rate"));
        assert!(
            err("--url http://h:1 --admin-token t --step 5s --step-factor 1")
                .contains("--step-factor")
        );
        assert!(
            err("--url http://h:1 --admin-token t --slow-percent 100").contains("--slow-percent")
        );
        assert!(parse("--url http://h:1 --citizens many").is_err());
        assert!(parse("--admin-token t").is_err(), "--url is required");
        // The peer needs neither a token nor moderators.
        let p = parse("--url http://h:1 --target socketio")
            .unwrap()
            .plan()
            .unwrap();
        assert_eq!(p.moderators, 0);
    }
}
