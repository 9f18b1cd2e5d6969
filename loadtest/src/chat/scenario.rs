//! One chat run: set up the meeting, ramp the connections up, drive commands at the planned
//! rates (step by step in stress mode) while printing progress once a second, drain, stop
//! every connection, and assemble the report.

use super::args::{ChatArgs, Plan, Target};
use super::client::{self, Behaviour, Ctx, Order, Outcome, next_rand};
use super::conn::{Endpoint, loopback_sources};
use super::metrics;
use super::procfs::{self, Sampler};
use super::report::{self, Latency, Report, Second, Step};
use super::socketio;
use super::stats::{Sample, Stats, histogram};
use hdrhistogram::Histogram;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// Connections per loopback source address when the generator picks them.
const PER_SOURCE_IP: usize = 4000;
/// How long stragglers may take to join after the ramp.
const JOIN_GRACE: Duration = Duration::from_secs(30);
/// Longest wait for outstanding acknowledgements after the load phase.
const DRAIN: Duration = Duration::from_secs(5);
/// How often the scheduler hands out commands.
const SCHEDULER_TICK: Duration = Duration::from_millis(10);

pub async fn run(args: &ChatArgs, plan: &Plan) -> anyhow::Result<Report> {
    let path = match args.target {
        Target::Townhall => "/ws",
        Target::Socketio => socketio::PATH,
    };
    let mut endpoints = Vec::new();
    for url in &args.url {
        endpoints.push(Arc::new(Endpoint::resolve(url, path).await?));
    }
    let (meeting, token) = setup(args, &endpoints[0]).await?;
    let total = plan.citizens + plan.moderators;
    if let Some(limit) = procfs::open_files_limit().filter(|&l| total as u64 + 64 > l) {
        anyhow::bail!(
            "{total} connections need more than the open-files limit of {limit}: raise it with `ulimit -n` (the hard limit is in /proc/self/limits)"
        );
    }
    let sources = sources(args, &endpoints, total)?;
    let stats = Arc::new(Stats::new(plan.slots));
    let (stop_tx, stop_rx) = watch::channel(false);
    let meeting: Arc<str> = meeting.into();
    let token: Option<Arc<str>> = token.map(Into::into);

    // Ramp up: moderators first, then citizens, at --ramp-rate connections per second.
    let mut handles: Vec<JoinHandle<Outcome>> = Vec::with_capacity(total);
    let mut senders = Vec::with_capacity(plan.citizens);
    let slow_every = (plan.slow > 0).then(|| plan.citizens / plan.slow);
    let ramp_start = Instant::now();
    let mut last_print = ramp_start;
    for id in 0..total {
        let due = ramp_start + Duration::from_secs_f64(id as f64 / args.ramp_rate);
        tokio::time::sleep_until(due).await;
        let citizen = id.checked_sub(plan.moderators);
        let behaviour = match (citizen, slow_every) {
            (None, _) => Behaviour::Moderator {
                index: id as u64,
                count: plan.moderators as u64,
            },
            (Some(c), Some(every)) if c % every == 0 && c / every < plan.slow => Behaviour::Slow,
            _ => Behaviour::Citizen,
        };
        let (tx, rx) = mpsc::channel(16);
        if behaviour == Behaviour::Citizen {
            senders.push(tx);
        }
        let ctx = Ctx {
            id,
            stats: stats.clone(),
            endpoint: endpoints[id % endpoints.len()].clone(),
            source: sources[id % sources.len()],
            meeting: meeting.clone(),
            token: matches!(behaviour, Behaviour::Moderator { .. })
                .then(|| token.clone())
                .flatten(),
            behaviour,
            orders: rx,
            stop: stop_rx.clone(),
        };
        handles.push(match args.target {
            Target::Townhall => tokio::spawn(client::run(ctx)),
            Target::Socketio => tokio::spawn(socketio::run(ctx)),
        });
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            eprintln!(
                "[ramp {:>5.1}s] started {}/{total}, joined {}",
                ramp_start.elapsed().as_secs_f64(),
                id + 1,
                joined(&stats)
            );
        }
    }
    let deadline = Instant::now() + JOIN_GRACE;
    while joined(&stats) + stats.gave_up.load(Relaxed) < total as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            eprintln!(
                "[ramp {:>5.1}s] joined {}/{total}",
                ramp_start.elapsed().as_secs_f64(),
                joined(&stats)
            );
        }
    }
    let ramp_secs = ramp_start.elapsed().as_secs_f64();
    let failed = (total as u64).saturating_sub(joined(&stats));
    eprintln!(
        "[ramp {ramp_secs:>5.1}s] joined {}/{total}; load phase starts",
        joined(&stats)
    );

    // Load.
    let mut report = Report {
        target: args.target.name().into(),
        urls: endpoints.iter().map(|e| e.base.clone()).collect(),
        meeting: meeting.to_string(),
        citizens: plan.citizens,
        moderators: plan.moderators,
        slow_clients: plan.slow,
        ask_rate: args.ask_rate,
        vote_rate: args.vote_rate,
        comment_rate: args.comment_rate,
        ramp_secs,
        connections_failed: failed,
        ..Report::default()
    };
    let load = Load::start(args, plan, stats.clone(), senders);
    let mut server = args.server_pid.and_then(Sampler::start);
    if args.server_pid.is_some() && server.is_none() {
        eprintln!("warning: cannot read /proc of --server-pid; server figures left out");
    }
    let mut generator = Sampler::start(std::process::id());
    let machine = procfs::MachineSampler::start();
    let metrics_before = match args.target {
        Target::Townhall => metrics::fetch(&endpoints[0].base).await,
        Target::Socketio => None,
    };
    let load_start = Instant::now();
    let deliveries_start = stats.deliveries();
    let mut total_hist = histogram();
    let mut step_hist = histogram();
    let mut step_deliveries = 0;
    let mut last_deliveries = deliveries_start;
    let step_secs = plan.step_len.as_secs().max(1);
    let ticks = args.duration.as_secs_f64().ceil() as u64;
    let mut tick =
        tokio::time::interval_at(load_start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for k in 1..=ticks {
        tick.tick().await;
        let window = stats.take_window();
        let d = stats.deliveries();
        let delivered = d - last_deliveries;
        last_deliveries = d;
        let w = Latency::of(&window);
        report.timeline.push(Second {
            t: k as f64,
            connected: stats.connected.load(Relaxed),
            deliveries: delivered,
            p50_ms: w.p50_ms,
            p99_ms: w.p99_ms,
            max_ms: w.max_ms,
        });
        add(&mut total_hist, &window);
        add(&mut step_hist, &window);
        step_deliveries += delivered;
        for s in [&mut server, &mut generator].into_iter().flatten() {
            s.sample();
        }
        let step = ((k - 1) / step_secs) as usize;
        eprintln!(
            "[{k:>4}s] connected {}/{}  deliveries/s {delivered}  p99 {:.2} ms  sent {}  errors {}{}",
            stats.connected.load(Relaxed),
            total - plan.slow,
            w.p99_ms,
            stats.sent.load(Relaxed),
            stats.errors().values().sum::<u64>(),
            if plan.steps.len() > 1 {
                format!(
                    "  step {step} ×{}",
                    plan.steps[step.min(plan.steps.len() - 1)]
                )
            } else {
                String::new()
            },
        );
        let step_done = k % step_secs == 0 || k == ticks;
        if plan.steps.len() > 1 && step_done {
            let secs = (k - step as u64 * step_secs) as f64;
            let s = Step {
                index: step,
                commands_per_sec: (args.ask_rate + args.vote_rate + args.comment_rate)
                    * plan.steps[step.min(plan.steps.len() - 1)],
                deliveries_per_sec: step_deliveries as f64 / secs,
                latency: Latency::of(&step_hist),
            };
            step_hist.reset();
            step_deliveries = 0;
            let over = args
                .stop_p99_ms
                .is_some_and(|limit| s.latency.p99_ms > limit);
            report.steps.push(s);
            if over {
                eprintln!("p99 passed --stop-p99-ms: ending the load phase");
                break;
            }
            load.set_step(plan.steps.get(step + 1).copied().unwrap_or(1.0));
        }
    }
    let load_secs = load_start.elapsed().as_secs_f64();
    report.load_secs = load_secs;
    report.deliveries = stats.deliveries() - deliveries_start;
    report.deliveries_per_sec = report.deliveries as f64 / load_secs.max(1e-9);
    report.connections_held = stats.connected.load(Relaxed);
    load.stop().await;
    drain(&stats).await;
    if let Some(before) = &metrics_before {
        let after = metrics::fetch(&endpoints[0].base).await;
        report.server_metrics = after.map(|after| metrics::delta(before, &after));
    }
    add(&mut total_hist, &stats.take_window());
    if let Some(s) = &server {
        report.server = Some(s.usage());
    }
    if let Some(g) = &generator {
        report.generator = g.usage();
    }
    if let Some((cores, _)) = machine.as_ref().and_then(|m| m.busy()) {
        report.machine_busy_cores = cores;
    }

    // Stop every connection and count what each one missed.
    let _ = stop_tx.send(true);
    let mut outcomes = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(Ok(o)) = tokio::time::timeout(Duration::from_secs(10), h).await {
            outcomes.push(o);
        }
    }
    let mut broadcast = std::mem::take(&mut *stats.broadcast.lock().unwrap());
    broadcast.sort_unstable();
    let end = broadcast.last().copied().unwrap_or(0);
    for o in outcomes.iter().filter(|o| o.joined && !o.slow) {
        let missed = o.tracker.missed(&broadcast, end);
        report.missed += missed;
        report.clients_missing_events += u64::from(missed > 0);
        report.out_of_order += o.tracker.out_of_order;
    }
    report.latency = Latency::of(&total_hist);
    report.latency_events = Latency::of(&stats.total(Sample::Event));
    report.latency_tallies = Latency::of(&stats.total(Sample::Tally));
    report.distribution = report::distribution(&total_hist);
    report.untimed = stats.untimed.load(Relaxed);
    report.errors = stats.errors();
    report.reconnects = stats.reconnects.load(Relaxed);
    report.resyncs = stats.resyncs.load(Relaxed);
    report.commands_sent = stats.sent.load(Relaxed);
    report.commands_acked = stats.acked.load(Relaxed);
    report.commands_dropped = stats.dropped_orders.load(Relaxed);
    Ok(report)
}

fn joined(stats: &Stats) -> u64 {
    stats.connected.load(Relaxed) + stats.slow_joined.load(Relaxed)
}

fn add(into: &mut Histogram<u64>, h: &Histogram<u64>) {
    into.add(h).expect("histograms share their bounds");
}

/// The meeting id and moderator token the run uses.
async fn setup(args: &ChatArgs, ep: &Endpoint) -> anyhow::Result<(String, Option<String>)> {
    Ok(match (args.target, &args.admin_token) {
        (Target::Socketio, _) => (args.meeting.clone().unwrap_or_else(|| "load".into()), None),
        (Target::Townhall, Some(admin)) => {
            let title = format!("Belastningstest: {} borgere", args.citizens);
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?;
            let m =
                townhall_client::api::create_live_meeting(&http, &ep.base, admin, &title).await?;
            eprintln!("created and started meeting {}", m.id);
            (m.id, Some(m.moderator_token))
        }
        (Target::Townhall, None) => (
            args.meeting.clone().expect("validated by Plan"),
            args.moderator_token.clone(),
        ),
    })
}

fn sources(
    args: &ChatArgs,
    endpoints: &[Arc<Endpoint>],
    total: usize,
) -> anyhow::Result<Vec<Option<IpAddr>>> {
    let loopback = endpoints
        .iter()
        .all(|e| e.addr.ip().is_loopback() && e.addr.is_ipv4());
    Ok(match (args.source_ips, loopback) {
        (Some(n), true) => loopback_sources(n, 1).into_iter().map(Some).collect(),
        (Some(_), false) => anyhow::bail!("--source-ips needs every --url on IPv4 loopback"),
        (None, true) => loopback_sources(total, PER_SOURCE_IP)
            .into_iter()
            .map(Some)
            .collect(),
        (None, false) => vec![None],
    })
}

/// Waits until every command sent has an answer (or `DRAIN` passes), then until deliveries
/// stop arriving, so the last events reach every client before the connections close.
async fn drain(stats: &Stats) {
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline {
        let answered = stats.acked.load(Relaxed) + stats.errors().values().sum::<u64>();
        if answered >= stats.sent.load(Relaxed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut last = stats.deliveries();
    let deadline = Instant::now() + DRAIN;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = stats.deliveries();
        if now == last || Instant::now() >= deadline {
            break;
        }
        last = now;
    }
}

/// The command scheduler: every 10 ms hands out the questions, votes and comments due at the
/// current rates to random citizens.
struct Load {
    multiplier: Arc<AtomicU64>,
    on: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Load {
    fn start(
        args: &ChatArgs,
        plan: &Plan,
        stats: Arc<Stats>,
        senders: Vec<mpsc::Sender<Order>>,
    ) -> Self {
        let multiplier = Arc::new(AtomicU64::new(plan.steps[0].to_bits()));
        let on = Arc::new(AtomicBool::new(true));
        let rates = [args.ask_rate, args.vote_rate, args.comment_rate];
        let task = tokio::spawn(schedule(
            rates,
            senders,
            stats,
            multiplier.clone(),
            on.clone(),
        ));
        Self {
            multiplier,
            on,
            task,
        }
    }

    fn set_step(&self, multiplier: f64) {
        self.multiplier.store(multiplier.to_bits(), Relaxed);
    }

    async fn stop(self) {
        self.on.store(false, Relaxed);
        let _ = self.task.await;
    }
}

async fn schedule(
    rates: [f64; 3],
    senders: Vec<mpsc::Sender<Order>>,
    stats: Arc<Stats>,
    multiplier: Arc<AtomicU64>,
    on: Arc<AtomicBool>,
) {
    if senders.is_empty() {
        return;
    }
    let mut due = [0.0f64; 3];
    let mut seq = 0u64;
    let mut rng = 0x2545_F491_4F6C_DD1D;
    let mut tick = tokio::time::interval(SCHEDULER_TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last = Instant::now();
    while on.load(Relaxed) {
        tick.tick().await;
        let now = Instant::now();
        let dt = (now - last).as_secs_f64();
        last = now;
        let m = f64::from_bits(multiplier.load(Relaxed));
        for (kind, rate) in rates.iter().enumerate() {
            due[kind] += rate * m * dt;
            while due[kind] >= 1.0 {
                due[kind] -= 1.0;
                seq += 1;
                let order = match kind {
                    0 => Order::Ask { seq },
                    1 => Order::Vote { seq },
                    _ => Order::Comment { seq },
                };
                dispatch(&senders, &stats, &mut rng, order);
            }
        }
    }
}

/// Gives the order to a random citizen; a second try on a full queue, then it is dropped.
fn dispatch(senders: &[mpsc::Sender<Order>], stats: &Stats, rng: &mut u64, order: Order) {
    for _ in 0..2 {
        let i = (next_rand(rng) % senders.len() as u64) as usize;
        if senders[i].try_send(order).is_ok() {
            return;
        }
    }
    stats.dropped_orders.fetch_add(1, Relaxed);
}
