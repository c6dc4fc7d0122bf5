//! Golden expectations for every real capture in the shared corpus (one row per file of the TShark
//! oracle, `tests/expect/corpus.tsv`: expected findings as kind/severity=count, and the reasoning
//! from reading the capture), and for the project's own scenarios (`tests/golden/`). The test also
//! writes `docs/accuracy.md` (expected vs actual, with the reasoning) and fails when that file is
//! stale; `IPCSCOPE_BLESS=1` rewrites it. Results derived from the `cs_*` captures are Chris
//! Sanders' (Practical Packet Analysis); the attribution is kept in the reasons.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipcscope::analysis::{Analysis, Options};
use ipcscope::model::Severity;
use ipcscope::pipeline::{analyze_paths, NoProgress};

/// Findings as `kind/severity=N`, sorted, space-separated; `-` for none.
fn profile(a: &Analysis) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for f in &a.findings {
        *counts.entry(format!("{}/{}", f.kind.name(), f.severity.name())).or_default() += 1;
    }
    if counts.is_empty() {
        return "-".into();
    }
    counts.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(" ")
}

fn canonical(expected: &str) -> String {
    let mut parts: Vec<&str> = expected.split_whitespace().collect();
    parts.sort();
    if parts.is_empty() || parts == ["-"] {
        return "-".into();
    }
    parts.join(" ")
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Expected findings of a scenario from its golden file (kind/severity counts).
fn golden_profile(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for row in text.lines().skip(1).filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = row.split(',').collect();
        *counts.entry(format!("{}/{}", cols[0], cols[1])).or_default() += 1;
    }
    if counts.is_empty() {
        return "-".into();
    }
    counts.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(" ")
}

/// Golden rows list the warnings and errors a scenario must produce; infos are allowed extra.
fn without_info(profile: &str) -> String {
    let kept: Vec<&str> = profile.split_whitespace().filter(|p| !p.contains("/info=")).collect();
    if kept.is_empty() {
        "-".into()
    } else {
        kept.join(" ")
    }
}

fn scenario_summaries() -> BTreeMap<String, String> {
    let path = common::samples().join("scenarios.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return BTreeMap::new() };
    let json: serde_json::Value = serde_json::from_str(&text).expect("scenarios.json parses");
    let mut out = BTreeMap::new();
    if let Some(list) = json["scenarios"].as_array() {
        for s in list {
            if let (Some(name), Some(summary)) = (s["name"].as_str(), s["summary"].as_str()) {
                out.insert(name.to_string(), summary.to_string());
            }
        }
    }
    out
}

#[test]
fn corpus_and_scenarios_match_expectations_and_accuracy_doc() {
    let Some(dir) = common::corpus("pcap") else { return };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let oracle = common::read_tsv(&dir.join("tshark-oracle.tsv"));
    let expect_rows = common::read_tsv(&root.join("tests/expect/corpus.tsv"));
    let expect: BTreeMap<&str, (&str, &str)> =
        expect_rows.iter().map(|r| (r["file"].as_str(), (r["expected"].as_str(), r["reason"].as_str()))).collect();

    let mut failures = Vec::new();
    let mut doc = String::from(
        "# Accuracy: expected vs actual findings\n\n\
         Written by `tests/corpus_expectations.rs` (`IPCSCOPE_BLESS=1 cargo test --test corpus_expectations` \
         regenerates it; the test fails when it is stale). Findings are counted as `kind/severity=N`. \
         The expectations come from reading each capture (TShark, Zeek baselines, the corpus README), not from \
         the tool's output. Results on the `cs_*` captures: Chris Sanders, Practical Packet Analysis.\n\n\
         ## Real captures (../shared/corpus/pcap)\n\n\
         | capture | expected | actual | | reasoning |\n|---|---|---|---|---|\n",
    );
    let (mut ok, mut total) = (0, 0);
    for row in &oracle {
        let file = row["file"].as_str();
        total += 1;
        let Some((expected, reason)) = expect.get(file) else {
            failures.push(format!("{file}: no expectation in tests/expect/corpus.tsv"));
            continue;
        };
        let a = analyze_paths(&[dir.join(file)], &Options::default(), &NoProgress);
        let actual = profile(&a);
        let expected = canonical(expected);
        let same = actual == expected;
        ok += same as usize;
        if !same {
            failures.push(format!("{file}: expected {expected}, got {actual}"));
        }
        // A scan is never an application failure.
        if a.findings.iter().any(|f| f.kind.name() == "port_scan")
            && a.findings.iter().any(|f| f.severity == Severity::Error)
        {
            failures.push(format!("{file}: a scan capture carries an error finding"));
        }
        doc.push_str(&format!(
            "| {file} | {} | {} | {} | {} |\n",
            md_cell(&expected),
            md_cell(&actual),
            if same { "✓" } else { "✗" },
            md_cell(reason)
        ));
    }
    doc.push_str(&format!("\n{ok} of {total} captures match their expectation.\n"));

    doc.push_str(
        "\n## Scenarios (samples/, staged with real sockets; golden rows in tests/golden/)\n\n\
         Golden files list the warnings and errors a scenario must produce (info findings may come on top).\n\n\
         | scenario | expected | actual | | what was staged |\n|---|---|---|---|---|\n",
    );
    let summaries = scenario_summaries();
    let mut goldens: Vec<PathBuf> = std::fs::read_dir(root.join("tests/golden"))
        .expect("tests/golden")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".findings.csv"))
        .collect();
    goldens.sort();
    for g in goldens {
        let name = g.file_name().and_then(|n| n.to_str()).unwrap_or("").trim_end_matches(".findings.csv").to_string();
        let pcap = common::samples().join(format!("{name}.pcap"));
        if !pcap.exists() {
            failures.push(format!("{name}: golden file without samples/{name}.pcap"));
            continue;
        }
        let mut paths = vec![pcap];
        let log = common::samples().join(format!("{name}_client_utc.log"));
        if log.exists() {
            paths.push(log);
        }
        let a = analyze_paths(&paths, &Options::default(), &NoProgress);
        let expected = golden_profile(&g);
        let actual = profile(&a);
        let same = without_info(&actual) == without_info(&expected);
        if !same {
            failures.push(format!("scenario {name}: expected {expected}, got {actual}"));
        }
        doc.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            md_cell(&expected),
            md_cell(&actual),
            if same { "✓" } else { "✗" },
            md_cell(summaries.get(&name).map(String::as_str).unwrap_or(""))
        ));
    }

    let doc_path = root.join("docs/accuracy.md");
    if std::env::var_os("IPCSCOPE_BLESS").is_some() {
        std::fs::write(&doc_path, &doc).expect("write docs/accuracy.md");
    } else {
        let current = std::fs::read_to_string(&doc_path).unwrap_or_default();
        if current != doc {
            failures
                .push("docs/accuracy.md is stale: run IPCSCOPE_BLESS=1 cargo test --test corpus_expectations".into());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
