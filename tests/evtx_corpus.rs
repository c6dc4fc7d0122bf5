//! EVTX reader against the real-file corpus and its python-evtx oracle
//! (`$IPCSCOPE_CORPUS/evtx`, default `../shared/corpus/evtx`), plus synthetic records
//! for the classifications the corpus lacks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipcscope::ingest::evtx::{
    event_from_json, parse_utc_ns, read_evtx_bytes, read_evtx_file, EvtxKind, EvtxLog, ServiceState,
};
use serde_json::json;

/// python-evtx converts FILETIME through floats; allow a few microseconds.
const TIME_TOLERANCE_NS: i64 = 3_000;

fn corpus_dir() -> Option<PathBuf> {
    let root = match std::env::var_os("IPCSCOPE_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    let dir = root.join("evtx");
    if dir.join("oracle-summary.tsv").is_file() {
        Some(dir)
    } else {
        eprintln!("corpus not found at {}, skipping", dir.display());
        None
    }
}

/// Rows of an oracle TSV as header-name -> value maps.
fn tsv(dir: &Path, name: &str) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"));
    let mut lines = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<String> = lines.next().expect("header").split('\t').map(str::to_string).collect();
    lines.map(|l| header.iter().cloned().zip(l.split('\t').map(str::to_string)).collect()).collect()
}

fn load(dir: &Path, file: &str) -> EvtxLog {
    read_evtx_file(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn close(a: i64, b: i64) -> bool {
    (a - b).abs() <= TIME_TOLERANCE_NS
}

#[test]
fn summary_matches_oracle() {
    let Some(dir) = corpus_dir() else { return };
    let rows = tsv(&dir, "oracle-summary.tsv");
    assert_eq!(rows.len(), 4);
    for row in rows {
        let file = &row["file"];
        let log = load(&dir, file);
        let want: usize = row["records"].parse().unwrap();
        assert_eq!(log.events.len(), want, "{file}: record count");
        assert_eq!(log.chunks_declared.to_string(), row["chunks_declared"], "{file}: declared chunks");
        let first = log.events.first().unwrap();
        let last = log.events.last().unwrap();
        assert_eq!(first.record_id.to_string(), row["first_record_id"], "{file}: first id");
        assert_eq!(last.record_id.to_string(), row["last_record_id"], "{file}: last id");
        let min = log.events.iter().map(|e| e.record_id).min().unwrap();
        let max = log.events.iter().map(|e| e.record_id).max().unwrap();
        assert_eq!((min.to_string(), max.to_string()), (row["first_record_id"].clone(), row["last_record_id"].clone()));
        // The oracle's first/last times are the earliest/latest TimeCreated (records are not in time order).
        let t0 = parse_utc_ns(&row["first_time_created_utc"]).unwrap();
        let t1 = parse_utc_ns(&row["last_time_created_utc"]).unwrap();
        let tmin = log.events.iter().map(|e| e.time_utc_ns).min().unwrap();
        let tmax = log.events.iter().map(|e| e.time_utc_ns).max().unwrap();
        assert!(close(tmin, t0), "{file}: first time {tmin} vs {t0}");
        assert!(close(tmax, t1), "{file}: last time {tmax} vs {t1}");
        // Only bad-magic chunks are errors; all-zero chunks are skipped silently.
        let bad: usize = row["chunks_bad_magic"].parse().unwrap();
        assert_eq!(log.warnings.len(), bad, "{file}: warnings {:?}", log.warnings);
    }
}

#[test]
fn dirty_sysmon_file_reports_garbage_chunks_as_warnings() {
    let Some(dir) = corpus_dir() else { return };
    let log = load(&dir, "sysmon-omerbenamram.evtx");
    assert_eq!(log.events.len(), 358);
    let chunks: Vec<u64> = log.warnings.iter().filter_map(|w| w.chunk).collect();
    assert_eq!(chunks, (9..=16).collect::<Vec<u64>>());
    for w in &log.warnings {
        let c = w.chunk.unwrap();
        assert_eq!(w.file_offset, Some(4096 + c * 65536));
        assert!(matches!(w.kind, ipcscope::ingest::DamageKind::Unreadable { .. }), "{w}");
        assert!(w.to_string().contains(&format!("chunk {c}")));
    }
}

#[test]
fn event_counts_match_oracle() {
    let Some(dir) = corpus_dir() else { return };
    let mut want: BTreeMap<String, BTreeMap<(String, u32), usize>> = BTreeMap::new();
    for row in tsv(&dir, "oracle-events.tsv") {
        let key = (row["provider"].clone(), row["event_id"].parse().unwrap());
        want.entry(row["file"].clone()).or_default().insert(key, row["count"].parse().unwrap());
    }
    assert_eq!(want.len(), 4);
    for (file, counts) in want {
        let log = load(&dir, &file);
        let mut got: BTreeMap<(String, u32), usize> = BTreeMap::new();
        for e in &log.events {
            *got.entry((e.provider.clone(), e.event_id)).or_default() += 1;
        }
        assert_eq!(got, counts, "{file}");
    }
}

#[test]
fn every_oracle_pipe_row_matches() {
    let Some(dir) = corpus_dir() else { return };
    let rows = tsv(&dir, "oracle-pipes.tsv");
    assert_eq!(rows.len(), 13);
    let mut logs: BTreeMap<String, EvtxLog> = BTreeMap::new();
    for row in &rows {
        let file = &row["file"];
        let log = logs.entry(file.clone()).or_insert_with(|| load(&dir, file));
        let id: u64 = row["event_record_id"].parse().unwrap();
        let ev = log.events.iter().find(|e| e.record_id == id).unwrap_or_else(|| panic!("{file}: record {id} missing"));
        let eid: u32 = row["event_id"].parse().unwrap();
        assert_eq!(ev.event_id, eid);
        let p = match (&ev.kind, eid) {
            (EvtxKind::PipeCreated(p), 17) | (EvtxKind::PipeConnected(p), 18) => p,
            (k, _) => panic!("{file} {id}: kind {k:?}"),
        };
        assert_eq!(p.pipe_name, row["PipeName"], "{file} {id}");
        assert_eq!(p.image, row["Image"], "{file} {id}");
        assert_eq!(p.process_id.map(|v| v.to_string()).as_deref(), Some(row["ProcessId"].as_str()));
        assert_eq!(p.event_type, row["EventType"]);
        assert_eq!(p.utc_time, row["utc_time"]);
        assert_eq!(p.utc_time_ns, parse_utc_ns(&row["utc_time"]));
        assert!(p.utc_time_ns.is_some());
        let t = parse_utc_ns(&row["time_created_utc"]).unwrap();
        assert!(close(ev.time_utc_ns, t), "{file} {id}: time {} vs {t}", ev.time_utc_ns);
        assert_eq!(ev.provider, "Microsoft-Windows-Sysmon");
        assert!(ev.message.contains(&row["PipeName"]));
    }
    // No Sysmon 17/18 beyond the oracle's rows.
    let total: usize = logs
        .values()
        .map(|l| {
            l.events.iter().filter(|e| matches!(e.kind, EvtxKind::PipeCreated(_) | EvtxKind::PipeConnected(_))).count()
        })
        .sum();
    assert_eq!(total, 13);
}

#[test]
fn system_log_boot_and_shutdown_kinds() {
    let Some(dir) = corpus_dir() else { return };
    let log = load(&dir, "system-omerbenamram.evtx");
    let count = |name: &str| log.events.iter().filter(|e| e.kind.name() == name).count();
    assert_eq!(count("eventlog_started"), 3);
    assert_eq!(count("eventlog_stopped"), 2);
    assert_eq!(count("os_started"), 3);
    assert_eq!(count("os_stopped"), 2);
    let stop = log.events.iter().find(|e| matches!(e.kind, EvtxKind::OsStopped { .. })).unwrap();
    match stop.kind {
        EvtxKind::OsStopped { stop_time_ns: Some(t) } => assert!((t - stop.time_utc_ns).abs() < 1_000_000_000),
        ref k => panic!("{k:?}"),
    }
    let sc = log.events.iter().find(|e| e.provider == "Service Control Manager" && e.event_id == 7045).unwrap();
    assert!(sc.field("ServiceName").is_some());
    assert_eq!(sc.kind, EvtxKind::Other);
}

#[test]
fn damaged_copies_never_panic() {
    let Some(dir) = corpus_dir() else { return };
    let orig = std::fs::read(dir.join("DE_renamed_psexec_service_sysmon_17_18.evtx")).unwrap();
    // Deterministic byte smearing over the chunk: header, string table, records.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..40 {
        let mut b = orig.clone();
        for _ in 0..(1 + round % 8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let pos = 4096 + (seed as usize % (b.len() - 4096));
            b[pos] ^= (seed >> 32) as u8 | 1;
        }
        if let Ok(log) = read_evtx_bytes(b) {
            assert!(log.events.len() + log.warnings.len() <= 64, "round {round}");
        }
    }
    // Truncated mid-chunk and header-only files.
    for len in [0usize, 10, 4096, 4096 + 512, 30_000] {
        let _ = read_evtx_bytes(orig[..len.min(orig.len())].to_vec());
    }
}

#[test]
fn not_evtx_is_an_open_error() {
    assert!(read_evtx_bytes(b"hello, this is not an event log".to_vec()).is_err());
    assert!(read_evtx_file("/nonexistent/ipcscope/x.evtx").is_err());
    assert!(ipcscope::ingest::evtx::sniff(b"ElfFile\0rest"));
    assert!(!ipcscope::ingest::evtx::sniff(b"\xd4\xc3\xb2\xa1"));
}

fn system(provider: &str, id: serde_json::Value) -> serde_json::Value {
    json!({"Provider": {"#attributes": {"Name": provider}}, "EventID": id, "Level": 2,
           "TimeCreated": {"#attributes": {"SystemTime": "2026-11-22T10:15:03.1234567Z"}},
           "EventRecordID": 77, "Channel": "System", "Computer": "HOST1"})
}

#[test]
fn synthetic_service_control_manager() {
    let rec = json!({"Event": {"System": system("Service Control Manager", json!({"#attributes": {"Qualifiers": 49152}, "#text": 7031})),
        "EventData": {"param1": "My IPC Service", "param2": "1", "param3": "60000", "param4": "1", "param5": "Restart the service"}}});
    let ev = event_from_json(&rec, 1, 0).unwrap();
    assert_eq!(ev.event_id, 7031);
    assert_eq!(ev.record_id, 77);
    assert_eq!(ev.time_utc_ns, parse_utc_ns("2026-11-22T10:15:03.1234567Z").unwrap());
    assert_eq!(ev.computer, "HOST1");
    assert_eq!(ev.kind, EvtxKind::ServiceCrashed { service: "My IPC Service".into(), event_id: 7031 });

    let rec = json!({"Event": {"System": system("Service Control Manager", json!(7036)),
        "EventData": {"param1": "Spooler", "param2": "stopped", "Binary": "530070006F006F006C00650072002F0031000000"}}});
    match event_from_json(&rec, 1, 0).unwrap().kind {
        EvtxKind::ServiceState { service, state, .. } => {
            assert_eq!((service.as_str(), state), ("Spooler", ServiceState::Stopped))
        }
        k => panic!("{k:?}"),
    }
    // Localized text: the state comes from the binary "Spooler/4".
    let rec = json!({"Event": {"System": system("Service Control Manager", json!(7036)),
        "EventData": {"param1": "Druckwarteschlange", "param2": "Wird ausgeführt", "Binary": "530070006F006F006C00650072002F0034000000"}}});
    match event_from_json(&rec, 1, 0).unwrap().kind {
        EvtxKind::ServiceState { state, .. } => assert_eq!(state, ServiceState::Running),
        k => panic!("{k:?}"),
    }
    let rec = json!({"Event": {"System": system("Service Control Manager", json!(7034)),
        "EventData": {"Data": {"#text": ["PipeHost", "2"]}}}});
    assert_eq!(
        event_from_json(&rec, 1, 0).unwrap().kind,
        EvtxKind::ServiceCrashed { service: "PipeHost".into(), event_id: 7034 }
    );
}

#[test]
fn synthetic_application_error_and_dotnet() {
    let rec = json!({"Event": {"System": system("Application Error", json!({"#attributes": {"Qualifiers": 0}, "#text": 1000})),
        "EventData": {"Data": {"#text": ["Worker.exe", "1.0.0.0", "5f3a", "KERNELBASE.dll", "10.0.19041.1", "0", "e0434352",
            "0000000000034f69", "0x1a2c", "01d6e0", "C:\\App\\Worker.exe", "C:\\Windows\\KERNELBASE.dll", "guid"]}}}});
    match event_from_json(&rec, 1, 0).unwrap().kind {
        EvtxKind::AppCrash { app, module, exception_code, process_id, app_path } => {
            assert_eq!(app, "Worker.exe");
            assert_eq!(module, "KERNELBASE.dll");
            assert_eq!(exception_code, Some(0xE043_4352));
            assert_eq!(process_id, Some(0x1a2c));
            assert_eq!(app_path, "C:\\App\\Worker.exe");
        }
        k => panic!("{k:?}"),
    }
    // Newer Windows: named data.
    let rec = json!({"Event": {"System": system("Application Error", json!(1000)),
        "EventData": {"AppName": "Svc.exe", "ModuleName": "ntdll.dll", "ExceptionCode": "0xc0000005", "ProcessId": "0x10", "AppPath": "C:\\Svc.exe"}}});
    match event_from_json(&rec, 1, 0).unwrap().kind {
        EvtxKind::AppCrash { exception_code, process_id, .. } => {
            assert_eq!((exception_code, process_id), (Some(0xC000_0005), Some(16)))
        }
        k => panic!("{k:?}"),
    }
    let rec = json!({"Event": {"System": system(".NET Runtime", json!(1026)),
        "EventData": {"Data": {"#text": "Application: Worker.exe\nFramework Version: v4.0.30319\nDescription: The process was terminated due to an unhandled exception.\nException Info: System.Net.Sockets.SocketException\n   at System.Net.Sockets.Socket.Receive()"}}}});
    let ev = event_from_json(&rec, 1, 0).unwrap();
    assert_eq!(
        ev.kind,
        EvtxKind::DotNetUnhandled { app: "Worker.exe".into(), exception: "System.Net.Sockets.SocketException".into() }
    );
    assert!(ev.message.contains("SocketException"));
}

#[test]
fn synthetic_eventlog_and_fallbacks() {
    let rec = json!({"Event": {"System": system("EventLog", json!(6008)),
        "EventData": {"Data": {"#text": ["10:15:03 AM", "11/22/2026", "", ""]}}}});
    assert_eq!(
        event_from_json(&rec, 1, 0).unwrap().kind,
        EvtxKind::UnexpectedShutdown { previous_shutdown: "10:15:03 AM 11/22/2026".into() }
    );
    // No TimeCreated / EventRecordID: the record header's values are used.
    let rec = json!({"Event": {"System": {"Provider": {"#attributes": {"Name": "X"}}, "EventID": 5}}});
    let ev = event_from_json(&rec, 42, 123).unwrap();
    assert_eq!((ev.record_id, ev.time_utc_ns, ev.kind.clone()), (42, 123, EvtxKind::Other));
    // Not an event at all.
    assert!(event_from_json(&json!({"foo": 1}), 1, 0).is_err());
    assert!(event_from_json(&json!(null), 1, 0).is_err());
}

#[test]
fn reader_and_bytes_entry_points_agree_with_file() {
    let Some(dir) = corpus_dir() else { return };
    let path = dir.join("privesc_roguepotato_sysmon_17_18.evtx");
    let from_file = read_evtx_file(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let from_reader = ipcscope::ingest::evtx::read_evtx_reader(&bytes[..]).unwrap();
    assert_eq!(from_file.events, from_reader.events);
    let mut n = 0;
    let declared = ipcscope::ingest::evtx::for_each_event_in_bytes(bytes, |_| n += 1, |w| panic!("{w}")).unwrap();
    assert_eq!((n, declared), (6, 1));
}
