//! Runs the fuzz targets without libFuzzer, on stable Rust: each target's seed corpus first,
//! then inputs mutated from it (flips, insertions, deletions, splices of two seeds) for as long
//! as asked. A panic saves its input under `fuzz/artifacts/<target>/` and fails the run.
//!
//! `replay [SECONDS] [TARGET…]` (from `fuzz/`): every target by default, the time shared
//! among them. It finds what breaks on the seeds' neighbourhood; `cargo fuzz` (coverage-guided)
//! goes much further and is what to run for hours.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("client_frame", townhall_fuzz::client_frame),
    ("meeting_commands", townhall_fuzz::meeting_commands),
    ("media_bodies", townhall_fuzz::media_bodies),
];

/// xorshift64*: deterministic per run seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(8) {
        let len = data.len();
        match rng.below(6) {
            0 if len > 0 => data[rng.below(len)] ^= 1 << rng.below(8),
            1 => {
                let at = rng.below(len + 1);
                data.insert(at, rng.next() as u8);
            }
            2 if len > 0 => {
                let at = rng.below(len);
                let n = rng.below(len - at + 1).min(16);
                data.drain(at..at + n);
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let at = rng.below(len + 1);
                let piece: Vec<u8> = other[from..].iter().take(64).copied().collect();
                data.splice(at..at, piece);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                const BYTES: &[u8] = b"{}[]\":,0-\\\nae\xc3\xa5\xe2\x80\x8b";
                data[at] = BYTES[rng.below(BYTES.len())];
            }
            _ => data.truncate(rng.below(len + 1)),
        }
    }
    data
}

fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut seeds: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    seeds
}

/// Runs `target` on `data`; on a panic saves the input and says where.
fn check(name: &str, target: Target, data: &[u8]) -> Result<(), PathBuf> {
    if std::panic::catch_unwind(|| target(data)).is_ok() {
        return Ok(());
    }
    let dir = Path::new("artifacts").join(name);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("crash-{:016x}", fingerprint(data)));
    let _ = std::fs::write(&path, data);
    Err(path)
}

fn fingerprint(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let only: Vec<String> = args.collect();
    let targets: Vec<&(&str, Target)> = TARGETS
        .iter()
        .filter(|(n, _)| only.is_empty() || only.iter().any(|o| o == n))
        .collect();
    let share = Duration::from_secs(seconds) / targets.len().max(1) as u32;
    let mut failed = false;
    for &&(name, target) in &targets {
        let seeds = seeds(&Path::new("seeds").join(name));
        let start = Instant::now();
        let mut rng = Rng(fingerprint(name.as_bytes()) | 1);
        let mut runs = 0u64;
        let mut crash = seeds.iter().find_map(|s| check(name, target, s).err());
        while crash.is_none() && start.elapsed() < share {
            let input = mutate(&mut rng, &seeds);
            crash = check(name, target, &input).err();
            runs += 1;
        }
        match crash {
            Some(path) => {
                eprintln!("{name}: PANIC, input saved as fuzz/{}", path.display());
                failed = true;
            }
            None => println!(
                "{name}: {} seeds and {runs} mutated inputs in {:.0?}, no panic",
                seeds.len(),
                start.elapsed()
            ),
        }
    }
    if failed {
        std::process::exit(1);
    }
}
