//! `townhall-load media`: N WHEP viewers (and optionally a WHIP publisher) against a townhall
//! server; prints progress each second and a final report with time to first frame, packets
//! received against sent, loss, jitter and the server's CPU and memory.
//!
//! `--target janus` drives the same viewers against a Janus streaming mountpoint (Janus's HTTP
//! signaling, see [`crate::janus`]) fed by [`PlainRtpSender`] with the same synthetic stream,
//! so both servers can be measured on the same load. Once every viewer is in (and `--settle`
//! seconds later) a steady-state window starts: server CPU per packet delivered, RSS per
//! viewer, the busiest server thread, the generator's own CPU and loss are measured over it.

use crate::janus::JanusSession;
use crate::light::LightViewer;
use crate::rtp_sender::PlainRtpSender;
use anyhow::{Context, bail};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use townhall_client::api;
use townhall_client::rtc::{
    MediaKind, PublisherConfig, PublisherStats, RtcContext, ViewerConfig, ViewerStats, WhepViewer,
    WhipPublisher,
};

/// Which server the viewers watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// townhall: WHEP viewers of a meeting, WHIP publisher.
    #[default]
    Townhall,
    /// A Janus streaming-plugin RTP mountpoint: HTTP-API viewers; `--publish` sends plain RTP
    /// to `--rtp-video`/`--rtp-audio`.
    Janus,
}

#[derive(Debug, Clone, clap::Args)]
pub struct MediaArgs {
    /// Server to measure.
    #[arg(long, value_enum, default_value_t = Target::Townhall)]
    pub target: Target,
    /// Janus's HTTP API (with --target janus).
    #[arg(long, default_value = "http://127.0.0.1:8088/janus")]
    pub janus_url: String,
    /// Janus streaming mountpoint id (with --target janus).
    #[arg(long, default_value_t = 1)]
    pub mountpoint: u64,
    /// With --target janus --publish: the mountpoint's video and audio RTP ports.
    #[arg(long)]
    pub rtp_video: Option<std::net::SocketAddr>,
    #[arg(long)]
    pub rtp_audio: Option<std::net::SocketAddr>,
    /// Local address for the viewers' (and publisher's) UDP sockets (default: loopback for a
    /// loopback server URL, else every interface).
    #[arg(long)]
    pub bind_ip: Option<std::net::IpAddr>,
    /// Seconds after the last viewer joined before the steady-state window starts.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Meeting id to watch (not needed with --admin-token, which creates one).
    #[arg(long)]
    pub meeting: Option<String>,
    /// WHEP viewers to open.
    #[arg(long, default_value_t = 10)]
    pub viewers: usize,
    /// Seconds to keep every viewer watching once all have been opened.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// New viewers per second while ramping up.
    #[arg(long, default_value_t = 20.0)]
    pub ramp: f64,
    /// Also publish synthetic VP8 + Opus over WHIP (needs --studio-token or --admin-token).
    #[arg(long)]
    pub publish: bool,
    #[arg(long, env = "TOWNHALL_STUDIO_TOKEN")]
    pub studio_token: Option<String>,
    /// Create and start a meeting through the organizer API.
    #[arg(long, env = "TOWNHALL_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Video and audio m-lines per viewer (video 0, audio 0, video 1, …).
    #[arg(long, default_value_t = 1)]
    pub video_lines: usize,
    #[arg(long, default_value_t = 1)]
    pub audio_lines: usize,
    /// Publisher: RTP packets per video frame (30 frames/s) and payload size in bytes.
    #[arg(long, default_value_t = 3)]
    pub packets_per_frame: usize,
    #[arg(long, default_value_t = 1100)]
    pub packet_size: usize,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Prometheus endpoint to read the server's CPU and RSS from (default: {url}/metrics).
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// Also read CPU and RSS from /proc/PID/stat (server on this machine).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Light viewers (str0m, no decoding: see `light.rs`) instead of full webrtc-rs ones, so
    /// the generator costs less CPU than the relay (townhall only; sockets on --bind-ip,
    /// default loopback).
    #[arg(long)]
    pub light: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Percentiles {
    pub fn of(mut values: Vec<Duration>) -> Self {
        values.sort();
        let at = |q: f64| {
            (!values.is_empty()).then(|| {
                let i = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
                values[i].as_secs_f64() * 1000.0
            })
        };
        Self {
            count: values.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: values.last().map(|d| d.as_secs_f64() * 1000.0),
        }
    }
}

/// CPU seconds and resident bytes of the server process.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq)]
pub struct ProcessSample {
    pub cpu_seconds: f64,
    pub rss_bytes: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct MediaReport {
    pub meeting: String,
    pub viewers_requested: usize,
    pub viewers_connected: usize,
    pub viewers_failed: usize,
    /// Error message → count.
    pub errors: Vec<(String, usize)>,
    pub seconds: f64,
    pub time_to_connected: Percentiles,
    pub time_to_first_packet: Percentiles,
    pub time_to_first_frame: Percentiles,
    /// Viewers whose first video m-line has shown a keyframe.
    pub viewers_with_video: usize,
    /// PLIs the viewers sent because their first video packets were not a keyframe.
    pub viewer_plis: u64,
    pub published: Option<PublisherReport>,
    pub video_packets_received: u64,
    pub audio_packets_received: u64,
    pub bytes_received: u64,
    /// Video packets each viewer should have had from its first keyframe on (publishing only).
    pub video_packets_expected: Option<u64>,
    /// Lost by RTP sequence number, over all tracks, in percent.
    pub loss_percent: f64,
    pub jitter_ms_mean: f64,
    pub jitter_ms_max: f64,
    pub server_before: Option<ProcessSample>,
    pub server_after: Option<ProcessSample>,
    pub server_cpu_seconds: Option<f64>,
    pub proc_before: Option<ProcessSample>,
    pub proc_after: Option<ProcessSample>,
    pub target: Target,
    /// Measured from `--settle` seconds after the last viewer joined to the end of the run.
    pub steady: Option<SteadyWindow>,
}

/// Figures over the steady-state window (every viewer connected, nobody joining).
#[derive(Debug, Clone, Serialize, Default)]
pub struct SteadyWindow {
    pub seconds: f64,
    pub viewers: usize,
    /// Packets the publisher sent (video + audio) in the window.
    pub packets_sent: u64,
    /// Unique packets all viewers received in the window, and per second.
    pub packets_received: u64,
    pub packets_per_second: f64,
    /// Lost by sequence number in the window, percent of (received + lost).
    pub loss_percent: f64,
    /// 1 − received ÷ (sent × viewers), percent (catches whole streams that stopped).
    pub delivery_loss_percent: f64,
    /// Server CPU (utime + stime from /proc/PID/stat) in the window.
    pub server_cpu_seconds: Option<f64>,
    /// Server CPU µs per packet the viewers received.
    pub cpu_us_per_received_packet: Option<f64>,
    /// townhall only: `townhall_media_forwarded_packets_total` in the window, the server CPU
    /// (/proc) per such packet, the same with `process_cpu_seconds_total` from /metrics (whole
    /// seconds only: the prometheus crate's process collector counts CPU in an integer), and
    /// `townhall_media_dropped_datagrams_total` (all reasons).
    pub forwarded_packets: Option<f64>,
    pub cpu_us_per_forwarded_packet: Option<f64>,
    pub metrics_cpu_us_per_forwarded_packet: Option<f64>,
    pub dropped_datagrams: Option<f64>,
    /// Server threads by CPU in the window: name, share of one core (top 4).
    pub server_threads: Vec<(String, f64)>,
    /// Server RSS at the end of the window, and (that − RSS before the run) ÷ viewers.
    pub server_rss_bytes: Option<f64>,
    pub rss_per_viewer_bytes: Option<f64>,
    /// The load generator's (this process's) CPU in the window, in cores.
    pub generator_cpu_cores: Option<f64>,
    pub server_cpu_cores: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PublisherReport {
    pub video_packets: u64,
    pub audio_packets: u64,
    pub keyframes: u64,
    pub keyframe_requests: u64,
}

impl From<&PublisherStats> for PublisherReport {
    fn from(s: &PublisherStats) -> Self {
        Self {
            video_packets: s.video_packets,
            audio_packets: s.audio_packets,
            keyframes: s.keyframes,
            keyframe_requests: s.keyframe_requests,
        }
    }
}

/// Reads `process_cpu_seconds_total` and `process_resident_memory_bytes` from Prometheus text.
pub fn parse_process_metrics(text: &str) -> Option<ProcessSample> {
    let value = |name: &str| {
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (key, v) = l.rsplit_once(' ')?;
            (key.split('{').next()? == name).then(|| v.trim().parse::<f64>().ok())?
        })
    };
    Some(ProcessSample {
        cpu_seconds: value("process_cpu_seconds_total")?,
        rss_bytes: value("process_resident_memory_bytes")?,
    })
}

/// utime + stime and RSS from the text of /proc/PID/stat (clock ticks of 1/100 s, 4 KiB pages).
pub fn parse_proc_stat(text: &str) -> Option<ProcessSample> {
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let after = text.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // After ')': f[0] is field 3 (state); utime = field 14, stime = 15, rss = 24.
    let num = |field: usize| f.get(field - 3)?.parse::<f64>().ok();
    Some(ProcessSample {
        cpu_seconds: (num(14)? + num(15)?) / 100.0,
        rss_bytes: num(24)? * 4096.0,
    })
}

async fn scrape(http: &reqwest::Client, url: &str) -> Option<ProcessSample> {
    let text = http.get(url).send().await.ok()?.text().await.ok()?;
    parse_process_metrics(&text)
}

fn proc_sample(pid: Option<u32>) -> Option<ProcessSample> {
    parse_proc_stat(&std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?)
}

struct Meeting {
    id: String,
    studio_token: Option<String>,
}

/// A viewer of either kind.
enum Watcher {
    Full(Box<WhepViewer>),
    Light(LightViewer),
}

impl Watcher {
    fn stats(&self) -> ViewerStats {
        match self {
            Self::Full(v) => v.stats(),
            Self::Light(v) => v.stats(),
        }
    }

    async fn close(self) {
        let _ = match self {
            Self::Full(v) => (*v).close().await,
            Self::Light(v) => v.close().await,
        };
    }
}

#[derive(Default)]
struct Fleet {
    viewers: Vec<Watcher>,
    /// With --target janus: each viewer's Janus session.
    janus: Vec<JanusSession>,
    errors: Vec<String>,
}

/// Where the stream comes from.
enum Source {
    Whip(Box<WhipPublisher>),
    Rtp(PlainRtpSender),
}

impl Source {
    fn stats(&self) -> PublisherStats {
        match self {
            Self::Whip(p) => p.stats(),
            Self::Rtp(p) => p.stats(),
        }
    }

    async fn pause(&self) {
        match self {
            Self::Whip(p) => p.pause().await,
            Self::Rtp(p) => p.pause().await,
        }
    }

    async fn close(self) {
        match self {
            Self::Whip(p) => {
                let _ = p.close().await;
            }
            Self::Rtp(p) => p.close(),
        }
    }
}

/// One end of the steady-state window.
struct Snapshot {
    at: Instant,
    viewers: usize,
    received: u64,
    lost: u64,
    sent: u64,
    proc: Option<ProcessSample>,
    threads: Vec<(String, f64)>,
    metrics: Option<String>,
    generator: Option<ProcessSample>,
}

async fn snapshot(
    fleet: &Mutex<Fleet>,
    publisher: Option<&Source>,
    http: &reqwest::Client,
    metrics_url: Option<&str>,
    pid: Option<u32>,
) -> Snapshot {
    let metrics = match metrics_url {
        Some(u) => match http.get(u).send().await {
            Ok(r) => r.text().await.ok(),
            Err(_) => None,
        },
        None => None,
    };
    let (viewers, received, lost) = {
        let f = fleet.lock().unwrap();
        let (received, lost) = f
            .viewers
            .iter()
            .flat_map(|v| v.stats().tracks)
            .fold((0, 0), |(p, l), t| (p + t.packets, l + t.lost));
        (f.viewers.len(), received, lost)
    };
    let sent = publisher.map_or(0, |p| {
        let s = p.stats();
        s.video_packets + s.audio_packets
    });
    Snapshot {
        at: Instant::now(),
        viewers,
        received,
        lost,
        sent,
        proc: proc_sample(pid),
        threads: pid.map(thread_cpu).unwrap_or_default(),
        metrics,
        generator: std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|t| parse_proc_stat(&t)),
    }
}

/// CPU seconds of each thread of `pid`, named `comm/tid`.
fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let name = text.split_once('(')?.1.rsplit_once(')')?.0.to_owned();
            let cpu = parse_proc_stat(&text)?.cpu_seconds;
            Some((format!("{name}/{}", e.file_name().to_string_lossy()), cpu))
        })
        .collect()
}

/// The sum of a metric's samples (all label sets) in Prometheus text.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, v) = l.rsplit_once(' ')?;
            (key.split('{').next()? == name).then(|| v.trim().parse::<f64>().ok())?
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The steady-state figures between two snapshots; `rss_before` is the server's RSS before
/// the run started.
fn steady_window(a: &Snapshot, b: &Snapshot, rss_before: Option<f64>) -> SteadyWindow {
    let seconds = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let received = b.received.saturating_sub(a.received);
    let lost = b.lost.saturating_sub(a.lost);
    let sent = b.sent.saturating_sub(a.sent);
    let viewers = b.viewers;
    let per_packet = |cpu: f64, packets: f64| (packets > 0.0).then(|| cpu * 1e6 / packets);
    let server_cpu = a
        .proc
        .zip(b.proc)
        .map(|(a, b)| b.cpu_seconds - a.cpu_seconds);
    let metric = |name: &str| {
        let m = |s: &Snapshot| metric_sum(s.metrics.as_deref()?, name);
        Some(m(b)? - m(a)?)
    };
    let forwarded = metric("townhall_media_forwarded_packets_total");
    let mut threads: Vec<(String, f64)> = b
        .threads
        .iter()
        .map(|(name, cpu)| {
            let before = a
                .threads
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0.0, |t| t.1);
            (name.clone(), (cpu - before) / seconds)
        })
        .collect();
    threads.sort_by(|x, y| y.1.total_cmp(&x.1));
    threads.truncate(4);
    SteadyWindow {
        seconds,
        viewers,
        packets_sent: sent,
        packets_received: received,
        packets_per_second: received as f64 / seconds,
        loss_percent: if received + lost > 0 {
            100.0 * lost as f64 / (received + lost) as f64
        } else {
            0.0
        },
        delivery_loss_percent: if sent > 0 && viewers > 0 {
            (100.0 * (1.0 - received as f64 / (sent as f64 * viewers as f64))).max(0.0)
        } else {
            0.0
        },
        server_cpu_seconds: server_cpu,
        cpu_us_per_received_packet: server_cpu.and_then(|c| per_packet(c, received as f64)),
        forwarded_packets: forwarded,
        cpu_us_per_forwarded_packet: server_cpu
            .zip(forwarded)
            .and_then(|(c, f)| per_packet(c, f)),
        metrics_cpu_us_per_forwarded_packet: metric("process_cpu_seconds_total")
            .zip(forwarded)
            .and_then(|(c, f)| per_packet(c, f)),
        // The counter has no sample until the first drop.
        dropped_datagrams: metric("townhall_media_dropped_datagrams_total")
            .or(forwarded.map(|_| 0.0)),
        server_threads: threads,
        server_rss_bytes: b.proc.map(|p| p.rss_bytes),
        rss_per_viewer_bytes: b
            .proc
            .zip(rss_before)
            .filter(|_| viewers > 0)
            .map(|(p, r)| (p.rss_bytes - r) / viewers as f64),
        generator_cpu_cores: a
            .generator
            .zip(b.generator)
            .map(|(a, b)| (b.cpu_seconds - a.cpu_seconds) / seconds),
        server_cpu_cores: server_cpu.map(|c| c / seconds),
    }
}

pub async fn run(args: MediaArgs) -> anyhow::Result<()> {
    let report = measure(args.clone()).await?;
    print_report(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if report.viewers_connected == 0 {
        bail!("no viewer connected");
    }
    Ok(())
}

/// Runs the scenario and returns the report (for callers that want the numbers).
pub async fn measure(args: MediaArgs) -> anyhow::Result<MediaReport> {
    let url = args.url.trim_end_matches('/').to_owned();
    let janus = args.target == Target::Janus;
    let ctx = match args.bind_ip {
        Some(ip) => RtcContext::new(ip)?,
        None if janus => RtcContext::for_url(&args.janus_url)?,
        None => RtcContext::for_url(&url)?,
    };
    let http = ctx.http().clone();
    let meeting = match (&args.admin_token, &args.meeting) {
        _ if janus => Meeting {
            id: format!("janus mountpoint {}", args.mountpoint),
            studio_token: None,
        },
        (Some(admin), None) => {
            let m = api::create_live_meeting(&http, &url, admin, "townhall-load media")
                .await
                .context("creating a meeting")?;
            Meeting {
                id: m.id,
                studio_token: Some(m.studio_token),
            }
        }
        (_, Some(id)) => Meeting {
            id: id.clone(),
            studio_token: None,
        },
        (None, None) => bail!("give --meeting, or --admin-token to create one"),
    };
    let studio_token = args.studio_token.clone().or(meeting.studio_token.clone());
    let metrics_url = args
        .metrics_url
        .clone()
        .unwrap_or_else(|| format!("{url}/metrics"));
    let scraping = !janus || args.metrics_url.is_some();
    let server_before = if scraping {
        scrape(&http, &metrics_url).await
    } else {
        None
    };
    let proc_before = proc_sample(args.server_pid);
    let base = format!("{url}/api/meetings/{}", meeting.id);

    let config = PublisherConfig {
        packets_per_frame: args.packets_per_frame,
        video_payload: args.packet_size,
        ..PublisherConfig::default()
    };
    let publisher = match args.publish {
        false => None,
        true if janus => {
            if args.rtp_video.is_none() && args.rtp_audio.is_none() {
                bail!("--target janus --publish needs --rtp-video and/or --rtp-audio");
            }
            Some(Source::Rtp(
                PlainRtpSender::start(args.rtp_video, args.rtp_audio, config).await?,
            ))
        }
        true => {
            let token = studio_token
                .as_deref()
                .context("--publish needs --studio-token (or --admin-token)")?;
            Some(Source::Whip(Box::new(
                WhipPublisher::connect(&ctx, &format!("{base}/whip"), Some(token), config).await?,
            )))
        }
    };

    let fleet = Arc::new(Mutex::new(Fleet::default()));
    let config = ViewerConfig {
        video: args.video_lines,
        audio: args.audio_lines,
    };
    let started = Instant::now();
    let whep = format!("{base}/whep");
    let janus_at = janus.then(|| (args.janus_url.clone(), args.mountpoint));
    if args.light && janus {
        bail!("--light viewers speak WHEP; Janus's streaming plugin needs the full viewers");
    }
    let light = args
        .light
        .then(|| args.bind_ip.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()));
    let spawner = {
        let (fleet, ctx) = (fleet.clone(), ctx.clone());
        let n = args.viewers;
        let every = Duration::from_secs_f64(1.0 / args.ramp.max(0.001));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut joins = Vec::with_capacity(n);
            for _ in 0..n {
                tick.tick().await;
                let (fleet, ctx, whep, config, janus_at) = (
                    fleet.clone(),
                    ctx.clone(),
                    whep.clone(),
                    config.clone(),
                    janus_at.clone(),
                );
                joins.push(tokio::spawn(async move {
                    if let Some(ip) = light {
                        let opened = LightViewer::connect(ctx.http(), &whep, ip, &config).await;
                        let viewer = match opened {
                            Ok(v) => match v.wait_connected(Duration::from_secs(30)).await {
                                Ok(()) => Ok(v),
                                Err(e) => {
                                    v.close().await.ok();
                                    Err(e)
                                }
                            },
                            Err(e) => Err(e),
                        };
                        let mut f = fleet.lock().unwrap();
                        match viewer {
                            Ok(v) => f.viewers.push(Watcher::Light(v)),
                            Err(e) => f.errors.push(e.to_string()),
                        }
                        return;
                    }
                    let opened = match &janus_at {
                        Some((janus_url, id)) => crate::janus::watch(&ctx, janus_url, *id)
                            .await
                            .map(|(v, s)| (v, Some(s))),
                        None => WhepViewer::connect(&ctx, &whep, &config)
                            .await
                            .map(|v| (v, None)),
                    };
                    let viewer = match opened {
                        Ok((v, session)) => match v.wait_connected(Duration::from_secs(30)).await {
                            Ok(()) => Ok((v, session)),
                            Err(e) => {
                                v.close().await.ok();
                                if let Some(s) = session {
                                    s.destroy().await;
                                }
                                Err(e)
                            }
                        },
                        Err(e) => Err(e),
                    };
                    let mut f = fleet.lock().unwrap();
                    match viewer {
                        Ok((v, session)) => {
                            f.viewers.push(Watcher::Full(Box::new(v)));
                            f.janus.extend(session);
                        }
                        Err(e) => f.errors.push(e.to_string()),
                    }
                }));
            }
            for j in joins {
                let _ = j.await;
            }
        })
    };

    // Progress each second until every viewer is in, then for --duration.
    let mut progress = tokio::time::interval(Duration::from_secs(1));
    progress.tick().await;
    let mut ramped_at: Option<Instant> = None;
    let metrics_at = scraping.then_some(metrics_url.as_str());
    let mut window_start: Option<Snapshot> = None;
    loop {
        progress.tick().await;
        let (connected, failed, video, audio) = {
            let f = fleet.lock().unwrap();
            let (v, a) = f.viewers.iter().map(|v| v.stats()).fold((0, 0), |acc, s| {
                let sum = |k| {
                    s.tracks
                        .iter()
                        .filter(|t| t.kind == k)
                        .map(|t| t.packets)
                        .sum::<u64>()
                };
                (acc.0 + sum(MediaKind::Video), acc.1 + sum(MediaKind::Audio))
            });
            (f.viewers.len(), f.errors.len(), v, a)
        };
        let sent = publisher
            .as_ref()
            .map(|p| {
                let s = p.stats();
                format!(" sent v{} a{}", s.video_packets, s.audio_packets)
            })
            .unwrap_or_default();
        let cpu = proc_sample(args.server_pid)
            .zip(proc_before)
            .map(|(a, b)| {
                format!(
                    " server cpu {:.1}s rss {:.0} MB",
                    a.cpu_seconds - b.cpu_seconds,
                    a.rss_bytes / 1e6
                )
            })
            .unwrap_or_default();
        println!(
            "{:>5.0}s viewers {connected}/{} failed {failed} received v{video} a{audio}{sent}{cpu}",
            started.elapsed().as_secs_f64(),
            args.viewers
        );
        if ramped_at.is_none() && spawner.is_finished() {
            ramped_at = Some(Instant::now());
        }
        if window_start.is_none()
            && ramped_at.is_some_and(|t| t.elapsed().as_secs_f64() >= args.settle)
        {
            window_start = Some(
                snapshot(
                    &fleet,
                    publisher.as_ref(),
                    &http,
                    metrics_at,
                    args.server_pid,
                )
                .await,
            );
        }
        if ramped_at.is_some_and(|t| t.elapsed().as_secs_f64() >= args.duration) {
            break;
        }
    }
    let steady = match &window_start {
        Some(a) => {
            let b = snapshot(
                &fleet,
                publisher.as_ref(),
                &http,
                metrics_at,
                args.server_pid,
            )
            .await;
            Some(steady_window(a, &b, proc_before.map(|p| p.rss_bytes)))
        }
        None => None,
    };

    // Freeze the publisher so "sent" and "received" can be compared once packets in flight land.
    if let Some(p) = &publisher {
        p.pause().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let server_after = if scraping {
        scrape(&http, &metrics_url).await
    } else {
        None
    };
    let proc_after = proc_sample(args.server_pid);
    let seconds = started.elapsed().as_secs_f64();
    let published = publisher.as_ref().map(|p| p.stats());
    let fleet = std::mem::take(&mut *fleet.lock().unwrap());
    let stats: Vec<ViewerStats> = fleet.viewers.iter().map(|v| v.stats()).collect();
    let mut report = summarize(&stats, published.as_ref());
    report.meeting = meeting.id.clone();
    report.viewers_requested = args.viewers;
    report.viewers_failed = fleet.errors.len();
    report.errors = count_errors(&fleet.errors);
    report.seconds = seconds;
    report.server_before = server_before;
    report.server_after = server_after;
    report.server_cpu_seconds = server_before
        .zip(server_after)
        .map(|(b, a)| a.cpu_seconds - b.cpu_seconds);
    report.proc_before = proc_before;
    report.proc_after = proc_after;
    report.target = args.target;
    report.steady = steady;

    let closing: Vec<_> = fleet.viewers.into_iter().map(|v| v.close()).collect();
    for c in closing {
        c.await;
    }
    for s in fleet.janus {
        s.destroy().await;
    }
    if let Some(p) = publisher {
        p.close().await;
    }
    Ok(report)
}

fn count_errors(errors: &[String]) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for e in errors {
        match counts.iter_mut().find(|(k, _)| k == e) {
            Some((_, n)) => *n += 1,
            None => counts.push((e.clone(), 1)),
        }
    }
    counts
}

/// The numbers of the report that come from the viewers' and publisher's counts.
pub fn summarize(stats: &[ViewerStats], published: Option<&PublisherStats>) -> MediaReport {
    let video0 = |s: &ViewerStats| s.track(MediaKind::Video, 0).cloned();
    let mut r = MediaReport {
        viewers_connected: stats.len(),
        time_to_connected: Percentiles::of(
            stats.iter().filter_map(|s| s.connected_after).collect(),
        ),
        time_to_first_packet: Percentiles::of(
            stats
                .iter()
                .filter_map(|s| video0(s)?.first_packet)
                .collect(),
        ),
        time_to_first_frame: Percentiles::of(
            stats
                .iter()
                .filter_map(|s| video0(s)?.first_keyframe)
                .collect(),
        ),
        published: published.map(PublisherReport::from),
        ..MediaReport::default()
    };
    r.viewers_with_video = r.time_to_first_frame.count;
    let tracks = || stats.iter().flat_map(|s| s.tracks.iter());
    r.viewer_plis = tracks().map(|t| t.plis_sent).sum();
    for t in tracks() {
        match t.kind {
            MediaKind::Video => r.video_packets_received += t.packets,
            MediaKind::Audio => r.audio_packets_received += t.packets,
        }
        r.bytes_received += t.bytes;
    }
    let (received, lost) = tracks().fold((0, 0), |(p, l), t| (p + t.packets, l + t.lost));
    if received + lost > 0 {
        r.loss_percent = 100.0 * lost as f64 / (received + lost) as f64;
    }
    let jitters: Vec<f64> = tracks()
        .filter(|t| t.packets > 1)
        .map(|t| t.jitter_ms)
        .collect();
    if !jitters.is_empty() {
        r.jitter_ms_mean = jitters.iter().sum::<f64>() / jitters.len() as f64;
        r.jitter_ms_max = jitters.iter().cloned().fold(0.0, f64::max);
    }
    if let Some(last) = published.and_then(|p| p.last_video_index) {
        r.video_packets_expected = Some(
            stats
                .iter()
                .filter_map(|s| video0(s)?.first_keyframe_index)
                .map(|k| (last + 1).saturating_sub(k))
                .sum(),
        );
    }
    r
}

fn print_report(r: &MediaReport) {
    let ms = |p: &Percentiles| {
        format!(
            "p50 {} p99 {} max {} (n={})",
            fmt_ms(p.p50_ms),
            fmt_ms(p.p99_ms),
            fmt_ms(p.max_ms),
            p.count
        )
    };
    println!(
        "meeting {}: {} of {} viewers connected, {} failed, {:.0} s",
        r.meeting, r.viewers_connected, r.viewers_requested, r.viewers_failed, r.seconds
    );
    for (e, n) in &r.errors {
        println!("  {n} × {e}");
    }
    println!("connected:          {}", ms(&r.time_to_connected));
    println!("first video packet: {}", ms(&r.time_to_first_packet));
    println!("first frame (key):  {}", ms(&r.time_to_first_frame));
    println!(
        "viewers with video: {} of {} ({} PLIs from viewers waiting for a keyframe)",
        r.viewers_with_video, r.viewers_connected, r.viewer_plis
    );
    if let Some(p) = &r.published {
        println!(
            "published: video {} packets, audio {}, {} keyframes ({} requested)",
            p.video_packets, p.audio_packets, p.keyframes, p.keyframe_requests
        );
    }
    let expected = r
        .video_packets_expected
        .map(|e| format!(" of {e} expected since each viewer's first keyframe"))
        .unwrap_or_default();
    println!(
        "received: video {}{expected}, audio {}, {:.1} MB; loss {:.3} %; jitter mean {:.2} ms max {:.2} ms",
        r.video_packets_received,
        r.audio_packets_received,
        r.bytes_received as f64 / 1e6,
        r.loss_percent,
        r.jitter_ms_mean,
        r.jitter_ms_max
    );
    let show = |label: &str, b: Option<ProcessSample>, a: Option<ProcessSample>| {
        if let (Some(b), Some(a)) = (b, a) {
            println!(
                "{label}: cpu {:.2} s, rss {:.1} → {:.1} MB",
                a.cpu_seconds - b.cpu_seconds,
                b.rss_bytes / 1e6,
                a.rss_bytes / 1e6
            );
        }
    };
    show("server (/metrics)", r.server_before, r.server_after);
    show("server (/proc)", r.proc_before, r.proc_after);
    if let Some(w) = &r.steady {
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".into(), |v| format!("{v:.2}{unit}"));
        println!(
            "steady {:.0} s, {} viewers: {:.0} packets/s received, loss {:.3} % (delivery {:.3} %), server cpu {} cores, {} per received packet, {} per forwarded packet ({} forwarded, {} dropped datagrams), rss {} per viewer, generator cpu {} cores",
            w.seconds,
            w.viewers,
            w.packets_per_second,
            w.loss_percent,
            w.delivery_loss_percent,
            opt(w.server_cpu_cores, ""),
            opt(w.cpu_us_per_received_packet, " µs"),
            opt(w.cpu_us_per_forwarded_packet, " µs"),
            opt(w.forwarded_packets, ""),
            opt(w.dropped_datagrams, ""),
            opt(w.rss_per_viewer_bytes.map(|b| b / 1e3), " KB"),
            opt(w.generator_cpu_cores, ""),
        );
        for (name, share) in &w.server_threads {
            println!("  server thread {name}: {:.0} % of a core", share * 100.0);
        }
    }
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_process_metrics() {
        let text = "# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\nprocess_resident_memory_bytes 1.5e+07\ntownhall_media_peers{role=\"viewer\"} 3\n";
        assert_eq!(
            parse_process_metrics(text),
            Some(ProcessSample {
                cpu_seconds: 12.5,
                rss_bytes: 1.5e7
            })
        );
        assert_eq!(parse_process_metrics("nothing 1\n"), None);
    }

    #[test]
    fn reads_proc_stat_with_spaces_in_the_name() {
        let mut fields = vec!["0"; 50];
        fields[0] = "S";
        fields[14 - 3] = "250"; // utime
        fields[15 - 3] = "50"; // stime
        fields[24 - 3] = "1000"; // rss pages
        let text = format!("42 (town hall) {}", fields.join(" "));
        assert_eq!(
            parse_proc_stat(&text),
            Some(ProcessSample {
                cpu_seconds: 3.0,
                rss_bytes: 4_096_000.0
            })
        );
    }

    #[test]
    fn percentiles_pick_nearest_rank() {
        let p = Percentiles::of((1..=100).map(Duration::from_millis).collect());
        assert_eq!(
            (p.p50_ms, p.p99_ms, p.max_ms),
            (Some(50.0), Some(99.0), Some(100.0))
        );
        assert_eq!(Percentiles::of(vec![]).p50_ms, None);
    }
}
