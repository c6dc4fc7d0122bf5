//! Hostile inputs: deterministic mutations (bit flips, truncations, length-field edits, block
//! reorderings, duplications) of every sample and corpus file, run through the whole pipeline.
//! Each must end in a result or a clear error — never a panic — within bounded time and memory.
//! `IPCSCOPE_MUTATIONS=N` sets the number of mutants per file (default 1000).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipcscope::analysis::Options;
use ipcscope::pipeline::{analyze_sources, NoProgress, Source};

/// Bigger files are cut to this prefix before mutating (the readers are streaming: what follows
/// the prefix exercises nothing new), except event logs, whose chunks are 64 KiB.
const PREFIX: usize = 48 * 1024;
/// No mutant may take this long (debug build): a hang or a runaway loop fails the test.
const MAX_TIME: Duration = Duration::from_secs(20);

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, no dependency.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> (Vec<u8>, &'static str) {
    let mut d = seed.to_vec();
    let n = d.len();
    if n == 0 {
        return (d, "empty");
    }
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(n);
                d[i] ^= 1 << rng.below(8);
            }
            (d, "bit flips")
        }
        1 => {
            d.truncate(rng.below(n));
            (d, "truncation")
        }
        2 => {
            // Length fields live near headers: favour the first KiBs, 4-byte aligned.
            let span = if rng.below(2) == 0 { n.min(4096) } else { n };
            let at = rng.below(span) & !3;
            let v: u32 = [0, u32::MAX, 0x7fff_ffff, 0x0001_0000, 0x0100_0000, 0x48, 1][rng.below(7)];
            for (k, b) in v.to_le_bytes().iter().enumerate() {
                if let Some(x) = d.get_mut(at + k) {
                    *x = *b;
                }
            }
            (d, "length field")
        }
        3 => {
            let len = 1 + rng.below(512.min(n));
            let a = rng.below(n - len + 1);
            let b = rng.below(n - len + 1);
            let block: Vec<u8> = d[a..a + len].to_vec();
            let other: Vec<u8> = d[b..b + len].to_vec();
            d[a..a + len].copy_from_slice(&other);
            d[b..b + len].copy_from_slice(&block);
            (d, "block swap")
        }
        4 => {
            let len = 1 + rng.below(512.min(n));
            let a = rng.below(n - len + 1);
            let block: Vec<u8> = d[a..a + len].to_vec();
            let at = rng.below(n);
            d.splice(at..at, block);
            (d, "duplication")
        }
        _ => {
            let at = rng.below(n);
            let len = rng.below(64).min(n - at);
            for x in &mut d[at..at + len] {
                *x = rng.next() as u8;
            }
            (d, "garbage run")
        }
    }
}

fn seeds() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut add_dir = |dir: &Path, exts: &[&str]| {
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut v: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    exts.iter().any(|e| name.ends_with(e))
                })
                .collect();
            v.sort();
            files.extend(v);
        }
    };
    add_dir(&common::samples(), &[".pcap", ".etl", ".log"]);
    if let Some(c) = common::corpus("pcap") {
        add_dir(&c, &[".pcap", ".pcapng", ".gz"]);
    }
    if let Some(c) = common::corpus("etl") {
        add_dir(&c, &[".etl"]);
    }
    if let Some(c) = common::corpus("evtx") {
        add_dir(&c, &[".evtx"]);
    }
    files
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn mutated_inputs_never_panic_and_stay_bounded() {
    let per_file: usize = std::env::var("IPCSCOPE_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let files = seeds();
    assert!(files.len() >= 10, "too few seed files: {files:?}");
    let options = Options::default();
    let mut failures = Vec::new();
    let mut total = 0usize;
    let mut errors_reported = 0usize;
    for (fi, path) in files.iter().enumerate() {
        let Ok(full) = std::fs::read(path) else { continue };
        let is_evtx = full.starts_with(b"ElfFile\0");
        let seed: Vec<u8> = if is_evtx || full.len() <= PREFIX { full.clone() } else { full[..PREFIX].to_vec() };
        // Event-log parsing is slow in debug builds: fewer mutants of those.
        let count = if is_evtx { per_file / 10 } else { per_file };
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (fi as u64 + 1).wrapping_mul(0x1000_0000_01b3));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("input").to_string();
        for m in 0..count {
            let (bytes, how) = mutate(&seed, &mut rng);
            let start = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                analyze_sources(vec![Source::Memory { name: name.clone(), bytes }], &options, &NoProgress)
            }));
            let took = start.elapsed();
            total += 1;
            match result {
                Err(_) => failures.push(format!("{name} mutant {m} ({how}): panic")),
                Ok(a) => {
                    errors_reported += a.inputs[0].error.is_some() as usize;
                    if took > MAX_TIME {
                        failures.push(format!("{name} mutant {m} ({how}): took {took:?}"));
                    }
                }
            }
            if failures.len() > 20 {
                break;
            }
        }
    }
    let rss = peak_rss_kb();
    println!("{total} mutants of {} files, {errors_reported} reported damage, peak RSS {rss} KB", files.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(rss < 3_000_000, "peak RSS {rss} KB");
}
