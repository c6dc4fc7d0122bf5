//! An uneventful connection keeps only its landmark packets in a batch run (issue 12: 256 bytes per
//! finished connection); the app keeps every note. The findings and every table must not depend on
//! it: each real capture and trace of the corpus, and each sample with its logs, is analysed both
//! ways and the batch outputs compared byte for byte.

mod common;

use std::path::{Path, PathBuf};

use ipcscope::analysis::Options;
use ipcscope::model::PacketNotes;
use ipcscope::pipeline::{analyze_paths, NoProgress};

const OUTPUTS: &[&str] = &["findings.csv", "connections.csv", "pipes.csv", "log_events.csv", "summary.json"];

/// The batch outputs of one run, file by file; plus how many connections kept landmarks only.
fn outputs(inputs: &[PathBuf], all_notes: bool) -> (Vec<(&'static str, String)>, usize) {
    let options = Options { keep_all_packet_notes: all_notes, ..Options::default() };
    let analysis = analyze_paths(inputs, &options, &NoProgress);
    let landmarks = analysis.connections.iter().filter(|c| matches!(c.notes, PacketNotes::Landmarks(_))).count();
    let dir = tempfile::tempdir().expect("tempdir");
    ipcscope::report::write_all(&analysis, dir.path()).expect("report written");
    let files = OUTPUTS
        .iter()
        .map(|&f| (f, std::fs::read_to_string(dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))))
        .collect();
    (files, landmarks)
}

/// Compares both runs of one case; returns the number of landmark-only connections.
fn same_both_ways(name: &str, inputs: &[PathBuf], mismatches: &mut Vec<String>) -> usize {
    let (compact, landmarks) = outputs(inputs, false);
    let (full, none) = outputs(inputs, true);
    assert_eq!(none, 0, "{name}: every note was asked for");
    for ((file, a), (_, b)) in compact.iter().zip(&full) {
        if a != b {
            let line =
                a.lines().zip(b.lines()).position(|(x, y)| x != y).unwrap_or(a.lines().count().min(b.lines().count()));
            mismatches.push(format!("{name}: {file} differs from line {}", line + 1));
        }
    }
    landmarks
}

fn files_in(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&keep))
        .collect();
    v.sort();
    v
}

#[test]
fn corpus_findings_do_not_depend_on_kept_notes() {
    let Some(pcaps) = common::corpus("pcap") else { return };
    let mut mismatches = Vec::new();
    let (mut cases, mut landmarks) = (0, 0);
    // The captures the TShark oracle lists (the corpus grows; the oracle says what is there).
    for row in common::read_tsv(&pcaps.join("tshark-oracle.tsv")) {
        let path = pcaps.join(&row["file"]);
        if path.is_file() {
            landmarks += same_both_ways(&row["file"], &[path], &mut mismatches);
            cases += 1;
        }
    }
    if let Some(etl) = common::corpus("etl") {
        for path in files_in(&etl, |n| n.ends_with(".etl")) {
            let name = path.display().to_string();
            landmarks += same_both_ways(&name, &[path], &mut mismatches);
            cases += 1;
        }
    }
    assert!(cases >= 30, "only {cases} corpus files");
    // Real captures are mostly short exchanges: many connections must have been compacted, or the
    // comparison proves nothing.
    assert!(landmarks >= 100, "only {landmarks} connections kept landmarks only");
    assert!(mismatches.is_empty(), "outputs differ:\n{}", mismatches.join("\n"));
    eprintln!("{cases} corpus files, {landmarks} connections with landmarks only: outputs identical");
}

#[test]
fn sample_findings_do_not_depend_on_kept_notes() {
    let dir = common::samples();
    let names = files_in(&dir, |_| true);
    let mut mismatches = Vec::new();
    let mut landmarks = 0;
    for main in names.iter().filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "etl")) {
        let stem = main.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let prefix = format!("{stem}_client");
        let mut inputs = vec![main.clone()];
        inputs.extend(
            names
                .iter()
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".log"))
                })
                .cloned(),
        );
        landmarks += same_both_ways(stem, &inputs, &mut mismatches);
    }
    // The two-sided pairs: matching across captures uses its own per-packet facts.
    let pairs = dir.join("twosided");
    if pairs.is_dir() {
        landmarks += same_both_ways("twosided/", &[pairs], &mut mismatches);
    }
    assert!(landmarks > 0);
    assert!(mismatches.is_empty(), "outputs differ:\n{}", mismatches.join("\n"));
}
