//! Inputs read in parallel give the run that reading them one after another gives: the same
//! tables and summary, byte for byte (connection ids, order of connections, pipes, log lines and
//! system events, input summaries).

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use ipcscope::analysis::{Analysis, Options};
use ipcscope::pipeline::{analyze_paths, NoProgress, Phase, Progress, ProgressSink};
use ipcscope::report;

const OUTPUTS: [&str; 5] = ["findings.csv", "connections.csv", "pipes.csv", "log_events.csv", "summary.json"];

fn run(paths: &[PathBuf], parallel_inputs: usize, progress: &dyn ProgressSink) -> Analysis {
    let options = Options { parallel_inputs, ..Default::default() };
    analyze_paths(paths, &options, progress)
}

/// Wall time of the reading phase (until the pipeline says it analyses) and of the whole run.
struct Timer {
    start: Instant,
    reading: std::sync::Mutex<f64>,
}

impl ProgressSink for Timer {
    fn report(&self, _: &Progress) {}
    fn phase(&self, phase: Phase) {
        if phase == Phase::Analysing {
            *self.reading.lock().unwrap() = self.start.elapsed().as_secs_f64();
        }
    }
}

/// (analysis, reading s, total s).
fn timed(paths: &[PathBuf], parallel_inputs: usize) -> (Analysis, f64, f64) {
    let t = Timer { start: Instant::now(), reading: Default::default() };
    let a = run(paths, parallel_inputs, &t);
    let total = t.start.elapsed().as_secs_f64();
    let reading = *t.reading.lock().unwrap();
    (a, reading, total)
}

fn outputs(a: &Analysis, dir: &Path) -> Vec<(String, Vec<u8>)> {
    report::write_all(a, dir).expect("write outputs");
    OUTPUTS.iter().map(|n| (n.to_string(), std::fs::read(dir.join(n)).expect(n))).collect()
}

/// Sequential and parallel runs of `paths` write the same files; prints both wall times (reading
/// phase and whole run; files read once before, so both runs find them in the page cache).
fn assert_same(label: &str, paths: &[PathBuf], workers: usize) -> Analysis {
    let _warm = run(paths, 1, &NoProgress);
    let (seq, r_seq, t_seq) = timed(paths, 1);
    let (par, r_par, t_par) = timed(paths, workers);
    eprintln!(
        "{label}: {} inputs; reading {r_seq:.2} s one after another, {r_par:.2} s with {workers} at once; \
         whole run {t_seq:.2} s, {t_par:.2} s",
        seq.inputs.len()
    );
    assert!(seq.inputs.len() > 1, "{label}: several inputs");
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for ((name, a), (_, b)) in outputs(&seq, d1.path()).into_iter().zip(outputs(&par, d2.path())) {
        if a != b {
            let (a, b) = (String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
            let at = a.lines().zip(b.lines()).position(|(x, y)| x != y);
            panic!(
                "{label} ({workers} workers): {name} differs at line {at:?}:\n{:?}\n{:?}",
                at.and_then(|i| a.lines().nth(i)),
                at.and_then(|i| b.lines().nth(i))
            );
        }
    }
    // Not in the tables: the per-packet facts kept for two-sided matching, keyed by connection id.
    let keys = |a: &Analysis| {
        let mut k: Vec<(u64, u32, usize)> =
            a.twosided.facts.iter().map(|(id, f)| (*id, f.input, f.packets().count())).collect();
        k.sort_unstable();
        k
    };
    assert_eq!(keys(&seq), keys(&par), "{label}: two-sided facts");
    assert_eq!(seq.socket_owners.len(), par.socket_owners.len(), "{label}: socket owners");
    seq
}

/// The project's samples folder: captures, text logs, ETL traces, a ProcMon PML and CSV (the CSV
/// waits for every other input), SMB pipes; plus the corpus's event logs (Sysmon socket owners).
#[test]
fn a_case_folder_read_in_parallel_equals_the_sequential_run() {
    let mut paths = vec![common::samples()];
    if let Some(evtx) = common::corpus("evtx") {
        paths.push(evtx);
    }
    for workers in [2, 3] {
        let a = assert_same("samples (+ corpus evtx)", &paths, workers);
        assert!(!a.connections.is_empty() && !a.findings.is_empty() && !a.pipes.is_empty());
        assert!(!a.log_events.is_empty() && !a.system_events.is_empty() && !a.socket_owners.is_empty());
    }
}

/// Corpus captures (several MB each): the same outputs, and the wall times both ways.
#[test]
fn corpus_captures_read_in_parallel_equal_the_sequential_run() {
    let Some(pcap) = common::corpus("pcap") else { return };
    let names = [
        "sv_decode-sll2-02.pcap",
        "sv_http-mime-truncated_cutshort.pcap",
        "sv_tls-subjectaltname.pcap",
        "sv_smb-filename.pcap",
        "cs_http_espn_fail.pcapng",
        "zeek_echo-connections.pcap.gz",
    ];
    let paths: Vec<PathBuf> = names.iter().map(|n| pcap.join(n)).filter(|p| p.exists()).collect();
    let a = assert_same("corpus captures", &paths, 2);
    assert!(!a.connections.is_empty() && !a.findings.is_empty());
}

/// Progress from parallel readers: the file index shown never goes back, and each report's bytes
/// belong to the file it names.
#[test]
fn parallel_progress_moves_forward() {
    struct Seen(std::sync::Mutex<Vec<(usize, u64, u64)>>);
    impl ProgressSink for Seen {
        fn report(&self, p: &Progress) {
            self.0.lock().unwrap().push((p.file_index, p.bytes_done, p.bytes_total));
        }
    }
    let seen = Seen(Default::default());
    let a = run(&[common::samples()], 2, &seen);
    let seen = seen.0.into_inner().unwrap();
    assert!(!seen.is_empty());
    for w in seen.windows(2) {
        assert!(w[0].0 <= w[1].0, "file index went back: {w:?}");
        if w[0].0 == w[1].0 {
            assert!(w[0].1 <= w[1].1, "bytes went back within a file: {w:?}");
        }
    }
    assert!(seen.iter().all(|&(_, done, total)| done <= total || total == 0), "bytes within the file's size");
    assert_eq!(seen.last().unwrap().0, a.inputs.len() - 1, "the last file is reported");
}

/// Corpus ETL traces (a few MB each, read on one thread apiece): where reading two at once pays.
#[test]
fn corpus_traces_read_in_parallel_equal_the_sequential_run() {
    let Some(etl) = common::corpus("etl") else { return };
    let names = ["net.4.5.2.x64.etl", "net.4.5.2.x86.etl", "ShutdownPerfDiagLogger.etl", "demikernel_PktMon.etl"];
    let paths: Vec<PathBuf> = names.iter().map(|n| etl.join(n)).collect();
    let a = assert_same("corpus traces", &paths, 2);
    assert!(!a.pipes.is_empty() || !a.system_events.is_empty());
}
