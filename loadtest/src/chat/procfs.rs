//! CPU and memory of a process from Linux's /proc, so a report says whether the generator or
//! the server was the limit. Parsing is pure; reading returns `None` off Linux.

use super::report::ProcUsage;
use tokio::time::Instant;

/// Clock ticks per second of `utime`/`stime` (`USER_HZ`, 100 on every mainstream Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// `utime + stime` from the text of `/proc/PID/stat` (fields 14 and 15, after the command name,
/// which may itself contain spaces and parentheses).
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field N is at index N - 3.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// `VmRSS` in MB from the text of `/proc/PID/status`.
pub fn parse_rss_mb(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The soft `Max open files` limit from the text of `/proc/self/limits`.
pub fn parse_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Busy and total ticks of all CPUs from the first line of `/proc/stat` (busy = all but idle
/// and iowait; softirq time, which loopback networking spends, counts as busy).
pub fn parse_machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest times are inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

fn machine_ticks() -> Option<(u64, u64)> {
    parse_machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// How many cores the whole machine kept busy over a period (everything: this run, the
/// server, the kernel, and whatever else shares the machine).
#[derive(Debug)]
pub struct MachineSampler {
    start: (u64, u64),
}

impl MachineSampler {
    pub fn start() -> Option<Self> {
        Some(Self {
            start: machine_ticks()?,
        })
    }

    /// Busy cores since `start`, and the share of all cores that is.
    pub fn busy(&self) -> Option<(f64, f64)> {
        let (busy, total) = machine_ticks()?;
        let (db, dt) = (busy - self.start.0, (total - self.start.1).max(1));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let share = db as f64 / dt as f64;
        Some((share * cpus, share))
    }
}

fn read(pid: u32, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()
}

pub fn open_files_limit() -> Option<u64> {
    parse_open_files(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// Samples one process over the load phase.
#[derive(Debug)]
pub struct Sampler {
    pid: u32,
    start: Instant,
    start_ticks: u64,
    usage: ProcUsage,
}

impl Sampler {
    /// `None` when the process cannot be read (not Linux, or gone).
    pub fn start(pid: u32) -> Option<Self> {
        let start_ticks = parse_cpu_ticks(&read(pid, "stat")?)?;
        let rss = parse_rss_mb(&read(pid, "status")?)?;
        Some(Self {
            pid,
            start: Instant::now(),
            start_ticks,
            usage: ProcUsage {
                pid,
                rss_start_mb: rss,
                rss_peak_mb: rss,
                rss_end_mb: rss,
                cores: 0.0,
            },
        })
    }

    /// Called once a second: keeps the peak RSS and the CPU so far.
    pub fn sample(&mut self) {
        if let Some(rss) = read(self.pid, "status").as_deref().and_then(parse_rss_mb) {
            self.usage.rss_peak_mb = self.usage.rss_peak_mb.max(rss);
            self.usage.rss_end_mb = rss;
        }
        if let Some(ticks) = read(self.pid, "stat").as_deref().and_then(parse_cpu_ticks) {
            let secs = self.start.elapsed().as_secs_f64().max(1e-3);
            self.usage.cores =
                (ticks.saturating_sub(self.start_ticks)) as f64 / TICKS_PER_SEC / secs;
        }
    }

    pub fn usage(&self) -> ProcUsage {
        self.usage.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_name() {
        let stat = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 70 0 0 20 0 3 0 123 456 789";
        assert_eq!(parse_cpu_ticks(stat), Some(320));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_status_and_limits() {
        assert_eq!(parse_rss_mb("Name:\tx\nVmRSS:\t  2048 kB\n"), Some(2.0));
        assert_eq!(parse_rss_mb("Name:\tx\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                20000                files\n";
        assert_eq!(parse_open_files(limits), Some(20000));
    }

    #[test]
    fn parses_machine_ticks() {
        let stat = "cpu  100 5 50 800 20 0 25 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_machine_ticks(stat), Some((180, 1000)));
        assert_eq!(parse_machine_ticks("intr 1 2"), None);
        let m = MachineSampler::start().expect("linux /proc/stat");
        let (cores, share) = m.busy().unwrap();
        assert!((0.0..=1.0).contains(&share) && cores >= 0.0);
    }

    #[test]
    fn samples_this_process() {
        let mut s = Sampler::start(std::process::id()).expect("linux /proc");
        s.sample();
        let u = s.usage();
        assert!(u.rss_peak_mb > 0.0 && u.cores >= 0.0);
        assert!(open_files_limit().unwrap() > 0);
    }
}
