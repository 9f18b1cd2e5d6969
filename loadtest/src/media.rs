//! `townhall-load media`: N WHEP viewers (and optionally a WHIP publisher) against a townhall
//! server; prints progress each second and a final report with time to first frame, packets
//! received against sent, loss, jitter and the server's CPU and memory.

use crate::rtc::{
    MediaKind, PublisherConfig, PublisherStats, RtcContext, ViewerConfig, ViewerStats, WhepViewer,
    WhipPublisher,
};
use anyhow::{Context, bail};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct MediaArgs {
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

async fn create_meeting(http: &reqwest::Client, url: &str, admin: &str) -> anyhow::Result<Meeting> {
    let res = http
        .post(format!("{url}/api/meetings"))
        .bearer_auth(admin)
        .json(&serde_json::json!({ "title": "townhall-load media" }))
        .send()
        .await?;
    if res.status() != 201 {
        bail!("creating a meeting: HTTP {}", res.status());
    }
    let body: serde_json::Value = res.json().await?;
    let id = body["id"].as_str().context("no id")?.to_owned();
    let studio_token = body["studio_url"]
        .as_str()
        .and_then(|u| u.rsplit_once('#'))
        .map(|(_, t)| t.to_owned());
    let res = http
        .post(format!("{url}/api/meetings/{id}/start"))
        .bearer_auth(admin)
        .send()
        .await?;
    if res.status() != 200 {
        bail!("starting meeting {id}: HTTP {}", res.status());
    }
    Ok(Meeting { id, studio_token })
}

#[derive(Default)]
struct Fleet {
    viewers: Vec<WhepViewer>,
    errors: Vec<String>,
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
    let ctx = RtcContext::for_url(&url)?;
    let http = ctx.http().clone();
    let meeting = match (&args.admin_token, &args.meeting) {
        (Some(admin), None) => create_meeting(&http, &url, admin).await?,
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
    let server_before = scrape(&http, &metrics_url).await;
    let proc_before = proc_sample(args.server_pid);
    let base = format!("{url}/api/meetings/{}", meeting.id);

    let publisher = if args.publish {
        let token = studio_token
            .as_deref()
            .context("--publish needs --studio-token (or --admin-token)")?;
        let config = PublisherConfig {
            packets_per_frame: args.packets_per_frame,
            video_payload: args.packet_size,
            ..PublisherConfig::default()
        };
        Some(WhipPublisher::connect(&ctx, &format!("{base}/whip"), Some(token), config).await?)
    } else {
        None
    };

    let fleet = Arc::new(Mutex::new(Fleet::default()));
    let config = ViewerConfig {
        video: args.video_lines,
        audio: args.audio_lines,
    };
    let started = Instant::now();
    let whep = format!("{base}/whep");
    let spawner = {
        let (fleet, ctx) = (fleet.clone(), ctx.clone());
        let n = args.viewers;
        let every = Duration::from_secs_f64(1.0 / args.ramp.max(0.001));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut joins = Vec::with_capacity(n);
            for _ in 0..n {
                tick.tick().await;
                let (fleet, ctx, whep, config) =
                    (fleet.clone(), ctx.clone(), whep.clone(), config.clone());
                joins.push(tokio::spawn(async move {
                    let viewer = match WhepViewer::connect(&ctx, &whep, &config).await {
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
                        Ok(v) => f.viewers.push(v),
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
        if ramped_at.is_some_and(|t| t.elapsed().as_secs_f64() >= args.duration) {
            break;
        }
    }

    // Freeze the publisher so "sent" and "received" can be compared once packets in flight land.
    if let Some(p) = &publisher {
        p.pause().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let server_after = scrape(&http, &metrics_url).await;
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

    let closing: Vec<_> = fleet.viewers.into_iter().map(|v| v.close()).collect();
    for c in closing {
        let _ = c.await;
    }
    if let Some(p) = publisher {
        let _ = p.close().await;
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
