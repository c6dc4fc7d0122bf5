//! Replays every input the fuzzers found crashing, hanging or exhausting memory
//! (`fuzz/regressions/<target>/*`) through the same entry point as the fuzz target
//! (`fuzz/src/entry.rs`, compiled here by path against `ipcscope::ingest`). Each must return
//! without a panic, quickly. See docs/robustness.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// `fuzz/src/entry.rs` names the parsers as `crate::ingest` / `crate::model`: here they are the
// library's public modules, in the fuzz crate the same source files compiled by path.
#[allow(unused_imports)]
use ipcscope::{ingest, model};

#[allow(dead_code)]
#[path = "../fuzz/src/entry.rs"]
mod entry;

/// Debug build, all regression inputs of one target: far above what any of them needs.
const MAX_TIME: Duration = Duration::from_secs(30);

fn regressions(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.retain(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.') && n != "README.md"));
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let start = Instant::now();
    let files = regressions(target);
    let mut failures = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("read regression input");
        let t = Instant::now();
        if std::panic::catch_unwind(|| run(&bytes)).is_err() {
            failures.push(format!("{}: panic", path.display()));
        }
        println!("{target}: {} ({} bytes) in {:?}", path.display(), bytes.len(), t.elapsed());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(start.elapsed() < MAX_TIME, "{target}: regressions took {:?}", start.elapsed());
}

#[test]
fn pcap_regressions() {
    replay("pcap", entry::pcap);
}

#[test]
fn etl_regressions() {
    replay("etl", entry::etl);
}

#[test]
fn lz77_regressions() {
    replay("lz77", entry::lz77);
}

#[test]
fn textlog_regressions() {
    replay("textlog", entry::textlog);
}

#[test]
fn evtx_regressions() {
    replay("evtx", entry::evtx);
}
