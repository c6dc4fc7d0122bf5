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
    let it: Box<dyn Iterator<Item = Result<ProcmonEvent, ipcscope::ingest::Damage>>> = if is_pml {
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
        assert_eq!(input.extra.to_json()["events"].to_string(), row["events"], "{}", row["file"]);
        let extra = input.extra.to_json();
        let ops = extra["operations"].as_object().expect("operations");
        let ops: Vec<String> = ops.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(ops.join("|"), row["operation_counts"], "{}", row["file"]);
        assert_eq!(input.first_ts.map(format_utc).as_deref(), Some(row["min_event_utc"].as_str()), "{}", row["file"]);
        assert_eq!(input.last_ts.map(format_utc).as_deref(), Some(row["max_event_utc"].as_str()), "{}", row["file"]);
        assert!(a.pipes.is_empty(), "{}: no pipe in the corpus", row["file"]);
        assert!(a.findings.iter().all(|f| !f.kind.name().starts_with("pipe_")), "{}", row["file"]);
        if row["format"] == "csv" {
            // Alone, a CSV cannot be aligned: its clock is assumed UTC, and summary.json says so.
            assert_eq!(input.extra.to_json()["clock"]["source"], "none", "{}", row["file"]);
            assert_eq!(input.extra.to_json()["clock"]["offset_s"], 0.0, "{}", row["file"]);
        }
    }
}

/// (kind, severity, count, summary) of the pipe findings whose evidence is in `input`. ProcMon
/// names the processes ("w3wp.exe (5120)") where ETW gives only the pid ("pid 5120"): the names are
/// written as pids here so both compare word for word (`named` says whether the names were there).
fn pipe_findings(a: &ipcscope::analysis::Analysis, input: u32) -> Vec<(String, String, u64, String)> {
    let mut v: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.kind.name().starts_with("pipe_") && f.evidence.iter().all(|e| e.input == input))
        .map(|f| {
            let s = f.summary.replace("w3wp.exe (5120)", "pid 5120").replace("RemotingHost.exe (4242)", "pid 4242");
            (f.kind.name().to_string(), f.severity.name().to_string(), f.count, s)
        })
        .collect();
    v.sort();
    v
}

fn analyze(paths: &[std::path::PathBuf], offsets: Vec<(String, f64)>) -> ipcscope::analysis::Analysis {
    let options = ipcscope::analysis::Options { log_offsets: offsets, ..Default::default() };
    ipcscope::pipeline::analyze_paths(paths, &options, &ipcscope::pipeline::NoProgress)
}

/// The seed-1 storm as Process Monitor logs it (samples made by `make_procmon_samples` from the
/// operations of `pipes_busy_storm.etl`): the PML gives the same pipe findings, word for word, as
/// the ETW trace, with the process names ProcMon adds.
#[test]
fn storm_pml_gives_the_etw_findings() {
    let etl = analyze(&[common::samples().join("pipes_busy_storm.etl")], vec![]);
    let pml = analyze(&[common::samples().join("procmon_pipes_busy_storm.pml")], vec![]);
    let expected = pipe_findings(&etl, 0);
    let kinds: Vec<&str> = expected.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(kinds, ["pipe_busy", "pipe_churn", "pipe_exhaustion", "pipe_not_found"]);
    assert_eq!(pipe_findings(&pml, 0), expected);
    // … and the PML's findings name the processes where ETW gives pids.
    let named = |a: &ipcscope::analysis::Analysis, kind: &str, text: &str| {
        a.findings.iter().any(|f| f.kind.name() == kind && f.summary.contains(text))
    };
    assert!(named(&pml, "pipe_busy", "by w3wp.exe (5120) failed"));
    assert!(named(&pml, "pipe_busy", "The server is RemotingHost.exe (4242)"));
    assert!(named(&pml, "pipe_churn", "w3wp.exe (5120) opened and closed"));
    assert!(named(&etl, "pipe_busy", "by pid 5120 failed"));
    assert_eq!(pml.inputs[0].format, "procmon_pml");
    assert_eq!(pml.inputs[0].error, None);
    let p = &pml.pipes[0];
    assert_eq!(p.source.name(), "procmon");
    assert_eq!((p.opens, p.ok, p.busy, p.not_found, p.max_instances), (1565, 997, 543, 25, 4));
    assert_eq!(
        (p.opens, p.ok, p.busy, p.not_found),
        (etl.pipes[0].opens, etl.pipes[0].ok, etl.pipes[0].busy, etl.pipes[0].not_found)
    );
    assert_eq!(p.instances_created, etl.pipes[0].instances_created);
    assert_eq!(p.max_concurrent, etl.pipes[0].max_concurrent);
    assert!(p.process_names.contains(&(5120, "w3wp.exe".to_string())), "{:?}", p.process_names);
    assert!(p.process_names.contains(&(4242, "RemotingHost.exe".to_string())), "{:?}", p.process_names);
    // The web site's HTTP connection: Accept, first Receive of the flow, Disconnect.
    let ops: Vec<_> =
        pml.socket_owners.iter().map(|o| (o.op, o.pid, o.local.to_string(), o.remote.to_string())).collect();
    use ipcscope::model::SocketOp::*;
    let flow = |op| (op, 5120, "10.1.2.15:80".to_string(), "10.1.2.50:52001".to_string());
    assert_eq!(ops, [flow(Accept), flow(Receive), flow(Disconnect)]);
    assert_eq!(pml.inputs[0].extra.to_json()["operations"]["TCP Send"], 1);
}

/// The CSV export (local time UTC+1, Time of Day only) beside the ETW trace: its clock is
/// estimated from the pipe opens both saw (+3600 s, said in summary.json), and on that clock it
/// gives the ETW findings word for word, dates included.
#[test]
fn storm_csv_is_aligned_against_the_trace_and_gives_the_etw_findings() {
    let etl = common::samples().join("pipes_busy_storm.etl");
    let csv = common::samples().join("procmon_pipes_busy_storm.csv");
    let a = analyze(&[csv.clone(), etl.clone()], vec![]);
    assert_eq!(a.inputs[0].format, "procmon_csv");
    let clock = &a.inputs[0].extra.to_json()["clock"];
    assert_eq!(clock["source"], "estimated", "{clock}");
    assert_eq!(clock["offset_s"], 3600.0, "{clock}");
    assert!(clock["anchors_matched"].as_u64().unwrap_or(0) >= 1000, "{clock}");
    let expected = pipe_findings(&a, 1);
    assert_eq!(expected.len(), 4);
    assert_eq!(pipe_findings(&a, 0), expected);
    assert_eq!(a.inputs[0].first_ts.map(format_utc).as_deref(), Some("2026-11-22T10:14:59.600000Z"));

    // Given by the user instead: used as given, and the date taken from the trace.
    let a = analyze(&[csv.clone(), etl], vec![("procmon_pipes_busy_storm.csv".into(), 3600.0)]);
    assert_eq!(a.inputs[0].extra.to_json()["clock"]["source"], "user");
    assert_eq!(pipe_findings(&a, 0), pipe_findings(&a, 1));

    // Alone, nothing to align with: assumed UTC, the date unknown, and summary.json says both;
    // the findings are the same but an hour (and a date) off.
    let a = analyze(&[csv], vec![]);
    let clock = &a.inputs[0].extra.to_json()["clock"];
    assert_eq!(clock["source"], "none", "{clock}");
    assert!(clock["date"].as_str().unwrap_or("").starts_with("unknown"), "{clock}");
    let alone: Vec<_> = pipe_findings(&a, 0).into_iter().map(|f| (f.0, f.2)).collect();
    let want: Vec<_> = expected.into_iter().map(|f| (f.0, f.2)).collect();
    assert_eq!(alone, want);
}

/// A damaged PML: the events before the damage are analysed and the error names the byte offset.
#[test]
fn truncated_pml_keeps_what_was_read() {
    let bytes = std::fs::read(common::samples().join("procmon_pipes_busy_storm.pml")).expect("read");
    // Cut the file in the middle of the events: the offset array and tables are gone.
    let cut = bytes[..bytes.len() / 2].to_vec();
    let a = ipcscope::pipeline::analyze_sources(
        vec![ipcscope::pipeline::Source::Memory { name: "cut.pml".into(), bytes: cut }],
        &Default::default(),
        &ipcscope::pipeline::NoProgress,
    );
    let err = a.inputs[0].error.clone().expect("an error");
    assert!(err.contains("cut.pml") && err.contains("byte offset"), "{err}");
    // Damage inside the events instead: a detail size pointing past the end of the file.
    let mut bad = bytes.clone();
    let arr = u64::from_le_bytes(bad[0x248..0x250].try_into().expect("8")) as usize;
    let ev = |i: usize| u32::from_le_bytes(bad[arr + 5 * i..arr + 5 * i + 4].try_into().expect("4")) as usize;
    let at = ev(3000);
    bad[at + 0x2C..at + 0x30].copy_from_slice(&u32::MAX.to_le_bytes());
    let a = ipcscope::pipeline::analyze_sources(
        vec![ipcscope::pipeline::Source::Memory { name: "bad.pml".into(), bytes: bad }],
        &Default::default(),
        &ipcscope::pipeline::NoProgress,
    );
    let err = a.inputs[0].error.clone().expect("an error");
    assert!(err.contains(&format!("at byte offset {at}")) && err.contains("event 3000"), "{err}");
    assert_eq!(a.inputs[0].extra.to_json()["events"], 3000);
    assert!(a.pipes[0].opens > 0, "the events before the damage are analysed");
}

/// TCP Connects in a CSV are aligned against the SYNs of a capture: the capture is the project's
/// stale-connection sample, the CSV is written here with its connections' 4-tuples at local time
/// UTC+2h plus a 1 s clock skew, without a date.
#[test]
fn csv_connects_are_aligned_against_capture_syns() {
    use ipcscope::ingest::procmon::writer::write_csv;
    let pcap = common::samples().join("stale_connection.pcap");
    let cap = analyze(&[pcap.clone()], vec![]);
    let conns: Vec<_> = cap.connections.iter().filter(|c| c.client_syn > 0).collect();
    assert!(!conns.is_empty());
    let events = common::procmon_tcp_connects(&conns, 3100, "client.exe");
    let mut csv = Vec::new();
    write_csv(&mut csv, &events, 7201).expect("write");
    let bytes = std::fs::read(&pcap).expect("read");
    let a = ipcscope::pipeline::analyze_sources(
        vec![
            ipcscope::pipeline::Source::Memory { name: "client_procmon.csv".into(), bytes: csv },
            ipcscope::pipeline::Source::Memory { name: "stale_connection.pcap".into(), bytes },
        ],
        &Default::default(),
        &ipcscope::pipeline::NoProgress,
    );
    let clock = &a.inputs[0].extra.to_json()["clock"];
    assert_eq!(clock["source"], "estimated", "{clock}");
    assert_eq!(clock["offset_s"], 7201.0, "{clock}");
    assert_eq!(clock["anchors_matched"], conns.len(), "{clock}");
    let owners: Vec<_> = a.socket_owners.iter().filter(|o| o.input == 0).collect();
    assert_eq!(owners.len(), conns.len());
    for (o, c) in owners.iter().zip(&conns) {
        assert_eq!((o.local, o.remote, o.pid), (c.client, c.server, 3100));
        // On the UTC clock again, to the 100 ns of the CSV.
        assert_eq!(o.ts, c.first_ts / 100 * 100);
    }
}

/// Mutated PML and CSV bytes never panic the pipeline; damage is reported with the file name.
#[test]
fn mutated_logs_never_panic() {
    use ipcscope::ingest::procmon::writer::{write_csv, write_pml, WriterEvent, WriterOp};
    let events: Vec<WriterEvent> = (0..40)
        .map(|i| WriterEvent {
            ts: 1_795_342_500_000_000_000 + i * 1_000_000,
            pid: 5120 + (i % 3) as u32,
            tid: 7,
            process: format!("p{}.exe", i % 3),
            op: match i % 4 {
                0 => WriterOp::CreatePipe,
                1 => WriterOp::CreateFile { disposition: 1 },
                2 => WriterOp::CloseFile,
                _ => WriterOp::Tcp {
                    op: 5,
                    local: "10.0.0.1:50000".parse().expect("addr"),
                    remote: "10.0.0.2:80".parse().expect("addr"),
                    length: 0,
                },
            },
            path: r"\\.\pipe\x".into(),
            status: if i % 5 == 0 { 0xC000_00AE } else { 0 },
        })
        .collect();
    let mut pml = Vec::new();
    write_pml(&mut pml, &events, "H").expect("pml");
    let mut csv = Vec::new();
    write_csv(&mut csv, &events, 0).expect("csv");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        for (name, base) in [("m.pml", &pml), ("m.csv", &csv)] {
            let mut b = base.clone();
            for _ in 0..1 + rnd() % 8 {
                let i = (rnd() % b.len() as u64) as usize;
                b[i] = rnd() as u8;
            }
            if round % 10 == 0 {
                b.truncate((rnd() % b.len() as u64) as usize);
            }
            let a = ipcscope::pipeline::analyze_sources(
                vec![ipcscope::pipeline::Source::Memory { name: name.into(), bytes: b }],
                &Default::default(),
                &ipcscope::pipeline::NoProgress,
            );
            if let Some(e) = &a.inputs[0].error {
                assert!(e.contains(name) || e.contains("cancelled"), "{e}");
            }
        }
    }
}
