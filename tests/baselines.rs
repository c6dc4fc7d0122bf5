//! Whole-file baselines of the batch output for every sample (Zeek's btest baselines are the model).
//!
//! Each capture `samples/NAME.pcap` and each trace `samples/NAME.etl` is analysed together with its
//! client logs (`samples/NAME_client*.log`), as `ipcscope analyze FILES --out DIR` does with default
//! options, and every output file (findings.csv, connections.csv, pipes.csv, log_events.csv,
//! summary.json) must equal `tests/baselines/NAME/FILE` byte for byte. The cases follow the files in
//! samples/, not a list here.
//!
//! An intended change of output is accepted by re-blessing and reviewing the diff:
//! `IPCSCOPE_BLESS=1 cargo test --test baselines`, then `git diff tests/baselines`.

mod common;

use std::path::{Path, PathBuf};

use ipcscope::analysis::Options;
use ipcscope::pipeline::{analyze_paths, NoProgress};

/// The batch contract's files, in the order they are compared.
const OUTPUTS: &[&str] = &["findings.csv", "connections.csv", "pipes.csv", "log_events.csv", "summary.json"];

/// Lines of context and most changed lines shown per side of a mismatch.
const CONTEXT: usize = 3;
const MAX_SHOWN: usize = 12;

struct Case {
    name: String,
    inputs: Vec<PathBuf>,
}

fn baselines_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/baselines")
}

/// One case per capture and per trace in samples/, each with its client logs (sorted by name).
fn cases() -> Vec<Case> {
    let dir = common::samples();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("samples/ is readable")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for main in names.iter().filter(|n| n.ends_with(".pcap") || n.ends_with(".etl")) {
        let stem = main.rsplit_once('.').map_or(main.as_str(), |(s, _)| s);
        let prefix = format!("{stem}_client");
        let mut inputs = vec![dir.join(main)];
        inputs.extend(names.iter().filter(|n| n.starts_with(&prefix) && n.ends_with(".log")).map(|n| dir.join(n)));
        out.push(Case { name: stem.to_string(), inputs });
    }
    out
}

/// Runs the batch analysis and writes the report files into a temporary folder; returns each file's
/// text with the samples folder written as `samples/`, so baselines do not depend on the checkout.
fn run(case: &Case) -> Vec<(&'static str, String)> {
    let analysis = analyze_paths(&case.inputs, &Options::default(), &NoProgress);
    let out = tempfile::tempdir().expect("tempdir");
    ipcscope::report::write_all(&analysis, out.path()).expect("report files written");
    let samples = common::samples();
    let abs = format!("{}{}", samples.display(), std::path::MAIN_SEPARATOR);
    // JSON escapes backslashes (Windows paths), so replace that spelling too.
    let abs_json = abs.replace('\\', "\\\\");
    OUTPUTS
        .iter()
        .map(|f| {
            let text =
                std::fs::read_to_string(out.path().join(f)).unwrap_or_else(|e| panic!("{}: {f}: {e}", case.name));
            (*f, text.replace(&abs_json, "samples/").replace(&abs, "samples/"))
        })
        .collect()
}

/// A unified-diff-like view of the first differing region: common head and tail trimmed, a few lines
/// of context, `-` baseline and `+` actual lines.
fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let head = e.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let tail = e[head..].iter().rev().zip(a[head..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (e_mid, a_mid) = (&e[head..e.len() - tail], &a[head..a.len() - tail]);
    let from = head.saturating_sub(CONTEXT);
    let mut out = format!(
        "@@ -{},{} +{},{} @@ (baseline {} lines, actual {} lines)\n",
        head + 1,
        e_mid.len(),
        head + 1,
        a_mid.len(),
        e.len(),
        a.len()
    );
    for l in &e[from..head] {
        out.push_str(&format!(" {l}\n"));
    }
    for (sign, side) in [('-', e_mid), ('+', a_mid)] {
        for l in side.iter().take(MAX_SHOWN) {
            out.push_str(&format!("{sign}{l}\n"));
        }
        if side.len() > MAX_SHOWN {
            out.push_str(&format!("{sign}… {} more lines\n", side.len() - MAX_SHOWN));
        }
    }
    for l in e[e.len() - tail..].iter().take(CONTEXT) {
        out.push_str(&format!(" {l}\n"));
    }
    if e_mid.is_empty() && a_mid.is_empty() {
        out.push_str("(the lines are equal: the files differ in line endings or the final newline)\n");
    }
    out
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("create baseline folder");
    std::fs::write(path, text).expect("write baseline");
}

#[test]
fn batch_output_of_every_sample_matches_its_baseline() {
    let bless = std::env::var("IPCSCOPE_BLESS").is_ok_and(|v| v == "1");
    let cases = cases();
    assert!(cases.iter().any(|c| c.name == "healthy"), "samples/ has no captures: run samples/generate.py");
    let mut failures = Vec::new();
    let mut blessed = 0;
    for case in &cases {
        for (file, actual) in run(case) {
            let path = baselines_dir().join(&case.name).join(file);
            match std::fs::read_to_string(&path) {
                Ok(expected) if expected == actual => {}
                _ if bless => {
                    write(&path, &actual);
                    blessed += 1;
                }
                Ok(expected) => failures.push(format!("{}/{file}:\n{}", case.name, diff(&expected, &actual))),
                Err(e) => failures.push(format!("{}/{file}: no baseline ({e})", case.name)),
            }
        }
    }
    // A baseline folder whose sample is gone would never be checked again.
    let known: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    if let Ok(dirs) = std::fs::read_dir(baselines_dir()) {
        for d in dirs.filter_map(|d| d.ok()).filter(|d| d.path().is_dir()) {
            let name = d.file_name().to_string_lossy().into_owned();
            if !known.contains(&name.as_str()) {
                failures.push(format!("{name}: baseline folder without a sample (remove tests/baselines/{name})"));
            }
        }
    }
    if bless {
        eprintln!(
            "blessed {blessed} baseline file(s) of {} cases; review with `git diff tests/baselines`",
            cases.len()
        );
    }
    assert!(
        failures.is_empty(),
        "{} baseline mismatch(es); if the change is intended, run `IPCSCOPE_BLESS=1 cargo test --test baselines` \
         and review `git diff tests/baselines`:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The diff printer itself: it must point at the changed lines, with context, on both sides.
#[test]
fn diff_shows_the_first_differing_region_with_context() {
    let d = diff("a\nb\nc\nd\ne\n", "a\nb\nX\nd\ne\n");
    assert!(d.starts_with("@@ -3,1 +3,1 @@"), "{d}");
    assert!(d.contains(" b\n-c\n+X\n d\n"), "{d}");
    let d = diff("a\nb\n", "a\nb\nc\n");
    assert!(d.contains("+c\n") && d.contains("-3,0 +3,1"), "{d}");
}
