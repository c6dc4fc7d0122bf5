//! Process Monitor logs: the PML and CSV readers against the oracle made with procmon-parser
//! (`../shared/corpus/procmon`, real logs from eronnen/procmon-parser, MIT), and the pipe-storm
//! samples the project generates (`cargo run --example make_procmon_samples`).

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use ipcscope::ingest::procmon::{CsvReader, PmlReader, ProcmonEvent};
use ipcscope::model::format_utc;

/// All events of a PML or CSV file, or the first error.
fn read_all(path: &Path) -> Vec<ProcmonEvent> {
    let f = File::open(path).expect("open");
    let len = f.metadata().expect("meta").len();
    let is_pml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("pml"));
    let it: Box<dyn Iterator<Item = Result<ProcmonEvent, ipcscope::ingest::InputError>>> = if is_pml {
        Box::new(PmlReader::new(BufReader::new(f), len).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    } else {
        Box::new(CsvReader::new(BufReader::new(f)).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    };
    it.map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", path.display()))).collect()
}

/// The oracle's timestamps are floored to the microsecond, as `format_utc` prints them.
fn utc_us(ns: i64) -> String {
    format_utc(ns)
}

#[test]
fn events_per_operation_and_first_events_equal_the_oracle() {
    let Some(dir) = common::corpus("procmon") else { return };
    let summary = common::read_tsv(&dir.join("oracle-summary.tsv"));
    let events = common::read_tsv(&dir.join("oracle-events.tsv"));
    assert!(!summary.is_empty(), "oracle-summary.tsv has rows");
    let mut checked_events = 0;
    for row in &summary {
        let path = dir.join(&row["file"]);
        let got = read_all(&path);
        assert_eq!(got.len().to_string(), row["events"], "{}: events", row["file"]);
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &got {
            *counts.entry(e.operation.as_str()).or_default() += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(counts.join("|"), row["operation_counts"], "{}: operation counts", row["file"]);
        let first = got.first().expect("events");
        let last = got.last().expect("events");
        assert_eq!(utc_us(first.ts), row["first_event_utc"], "{}: first event", row["file"]);
        assert_eq!(utc_us(last.ts), row["last_event_utc"], "{}: last event", row["file"]);
        let procs: std::collections::BTreeSet<(u32, &str)> = got.iter().map(|e| (e.pid, e.process.as_str())).collect();
        assert_eq!(procs.len().to_string(), row["distinct_processes"], "{}: distinct processes", row["file"]);
        for ev in events.iter().filter(|e| e["file"] == row["file"]) {
            let i: usize = ev["index"].parse().expect("index");
            let e = &got[i];
            let what = format!("{} event {i}", row["file"]);
            assert_eq!(utc_us(e.ts), ev["time_utc"], "{what}: time");
            assert_eq!(e.pid.to_string(), ev["pid"], "{what}: pid");
            assert_eq!(e.process, ev["process_name"], "{what}: process");
            assert_eq!(e.tid.to_string(), ev["tid"], "{what}: tid");
            assert_eq!(e.operation, ev["operation"], "{what}: operation");
            assert_eq!(e.path, ev["path"], "{what}: path");
            assert_eq!(e.result, ev["result"], "{what}: result");
            if let Some(code) = ev.get("result_code").filter(|c| !c.is_empty()) {
                assert_eq!(format!("0x{:08x}", e.status.expect("status")), *code, "{what}: result code");
            }
            checked_events += 1;
        }
    }
    assert_eq!(checked_events, events.len(), "every oracle event row was checked");
}

#[test]
fn sniffing_names_pml_and_csv_exports() {
    use ipcscope::ingest::{sniff, InputKind};
    assert_eq!(sniff(b"PML_\x09\0\0\0\x01\0\0\0"), InputKind::ProcmonPml);
    let csv = "\u{feff}\"Time of Day\",\"Process Name\",\"PID\",\"Operation\",\"Path\",\"Result\",\"Detail\"\r\n";
    assert_eq!(sniff(csv.as_bytes()), InputKind::ProcmonCsv);
    assert_eq!(sniff(b"\"Operation\",\"Date & Time\",\"PID\"\n"), InputKind::ProcmonCsv);
    // A CSV of something else is still a text log.
    assert_eq!(sniff(b"time,host,message\n"), InputKind::TextLog);
}

/// The corpus logs through the whole pipeline: summary.json's entry names the format, counts
/// events per operation as the oracle does, and finds no pipe (the corpus has none).
#[test]
fn corpus_logs_through_the_pipeline() {
    let Some(dir) = common::corpus("procmon") else { return };
    let summary = common::read_tsv(&dir.join("oracle-summary.tsv"));
    for row in &summary {
        let path = dir.join(&row["file"]);
        let a =
            ipcscope::pipeline::analyze_paths(&[path.clone()], &Default::default(), &ipcscope::pipeline::NoProgress);
        let input = &a.inputs[0];
        assert_eq!(input.error, None, "{}", row["file"]);
        assert_eq!(input.format, format!("procmon_{}", row["format"]), "{}", row["file"]);
        assert_eq!(input.extra["events"].to_string(), row["events"], "{}", row["file"]);
        let ops = input.extra["operations"].as_object().expect("operations");
        let ops: Vec<String> = ops.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(ops.join("|"), row["operation_counts"], "{}", row["file"]);
        assert_eq!(input.first_ts.map(format_utc).as_deref(), Some(row["min_event_utc"].as_str()), "{}", row["file"]);
        assert_eq!(input.last_ts.map(format_utc).as_deref(), Some(row["max_event_utc"].as_str()), "{}", row["file"]);
        assert!(a.pipes.is_empty(), "{}: no pipe in the corpus", row["file"]);
        assert!(a.findings.iter().all(|f| !f.kind.starts_with("pipe_")), "{}", row["file"]);
        if row["format"] == "csv" {
            // Alone, a CSV cannot be aligned: its clock is assumed UTC, and summary.json says so.
            assert_eq!(input.extra["clock"]["source"], "none", "{}", row["file"]);
            assert_eq!(input.extra["clock"]["offset_s"], 0.0, "{}", row["file"]);
        }
    }
}
