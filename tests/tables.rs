//! Tables for fleets: Parquet equal to CSV, conn_uid / community_id, the CSV writer's speed,
//! case folders and ring-buffer captures.
//!
//! Captures named `cs_*` are Chris Sanders' (Practical Packet Analysis); `sv_*` come from the
//! Suricata-verify suite (see the corpus README).

#![cfg_attr(not(feature = "parquet"), allow(unused_imports, dead_code))]

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ipcscope::analysis::{Analysis, Options};
use ipcscope::model::{format_utc, Connection, Endpoint};
use ipcscope::pipeline::{analyze_paths, NoProgress};
use ipcscope::report::table::{Col, Kind};
use ipcscope::report::{self, Format};
#[cfg(feature = "parquet")]
use polars::prelude::*;

fn analyze(paths: &[PathBuf]) -> Analysis {
    analyze_paths(paths, &Options::default(), &NoProgress)
}

/// A CSV text cell as the batch contract writes it (polars' rules): `""` when empty, quoted when
/// it holds a comma, a quote or a line break.
fn csv_text(s: &str) -> String {
    if s.is_empty() {
        "\"\"".into()
    } else if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(feature = "parquet")]
/// Renders a DataFrame read from Parquet as the CSV table should be, from the column types alone.
fn frame_as_csv(df: &DataFrame, cols: &[Col]) -> String {
    let mut out = cols.iter().map(|c| c.name).collect::<Vec<_>>().join(",");
    out.push('\n');
    let mut rendered: Vec<Vec<String>> = Vec::new();
    for c in cols {
        let column = df.column(c.name).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let n = df.height();
        let null = |k: Kind| if k == Kind::U64 || k == Kind::Str { String::new() } else { "\"\"".into() };
        let cells: Vec<String> = match c.kind {
            Kind::U64 | Kind::U64Text => {
                assert_eq!(column.dtype(), &DataType::UInt64, "{}", c.name);
                let v = column.u64().unwrap();
                (0..n).map(|i| v.get(i).map_or_else(|| null(c.kind), |x| x.to_string())).collect()
            }
            Kind::Str => {
                assert_eq!(column.dtype(), &DataType::String, "{}", c.name);
                let v = column.str().unwrap();
                (0..n).map(|i| v.get(i).map_or_else(String::new, csv_text)).collect()
            }
            Kind::Ts => {
                assert_eq!(
                    column.dtype(),
                    &DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC)),
                    "{}: a UTC timestamp column",
                    c.name
                );
                let phys = column.cast(&DataType::Int64).unwrap();
                let v = phys.i64().unwrap();
                (0..n).map(|i| v.get(i).map_or_else(|| null(c.kind), format_utc)).collect()
            }
            Kind::F64(d) => {
                assert_eq!(column.dtype(), &DataType::Float64, "{}", c.name);
                let v = column.f64().unwrap();
                (0..n).map(|i| v.get(i).map_or_else(|| null(c.kind), |x| format!("{:.*}", d as usize, x))).collect()
            }
        };
        rendered.push(cells);
    }
    for r in 0..df.height() {
        out.push_str(&rendered.iter().map(|c| c[r].as_str()).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

#[cfg(feature = "parquet")]
fn assert_parquet_equals_csv(a: &Analysis, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    report::write_all_as(a, dir.path(), Format::Both).expect("write both");
    let specs: [(&str, &[Col]); 4] = [
        ("connections", report::csv::CONNECTION_COLS),
        ("findings", report::csv::FINDING_COLS),
        ("pipes", report::pipes::PIPE_COLS),
        ("log_events", report::logs::LOG_EVENT_COLS),
    ];
    for (stem, cols) in specs {
        let csv = std::fs::read_to_string(dir.path().join(format!("{stem}.csv"))).unwrap();
        let file = File::open(dir.path().join(format!("{stem}.parquet"))).unwrap();
        let df = ParquetReader::new(file).finish().unwrap_or_else(|e| panic!("{label} {stem}.parquet: {e}"));
        assert_eq!(df.width(), cols.len(), "{label} {stem}: columns");
        assert_eq!(frame_as_csv(&df, cols), csv, "{label} {stem}: Parquet read back differs from the CSV");
        eprintln!("{label} {stem}: {} rows, Parquet == CSV", df.height());
    }
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_tables_equal_the_csv_tables() {
    // The project's samples: TCP scenarios with logs (all four tables non-empty between them).
    let s = common::samples();
    assert_parquet_equals_csv(
        &analyze(&[s.join("abortive_close.pcap"), s.join("abortive_close_client_utc.log")]),
        "abortive_close",
    );
    assert_parquet_equals_csv(
        &analyze(&[s.join("pipes_busy_storm.etl"), s.join("pipes_busy_storm_client.log")]),
        "pipes_busy_storm",
    );
    let Some(pcap) = common::corpus("pcap") else { return };
    // Real captures: Chris Sanders, Practical Packet Analysis; Suricata-verify.
    for name in ["cs_http_espn_fail.pcapng", "cs_synscan.pcapng", "sv_dcerpc-zerologon.pcap"] {
        assert_parquet_equals_csv(&analyze(&[pcap.join(name)]), name);
    }
    if let Some(evtx) = common::corpus("evtx") {
        assert_parquet_equals_csv(&analyze(&[evtx.join("system-omerbenamram.evtx")]), "system-omerbenamram.evtx");
    }
}

#[test]
fn conn_uid_and_community_id_on_a_real_capture() {
    let Some(pcap) = common::corpus("pcap") else { return };
    // Chris Sanders, Practical Packet Analysis: cs_http_espn_fail.pcapng.
    let path = pcap.join("cs_http_espn_fail.pcapng");
    let a = analyze(std::slice::from_ref(&path));
    let b = analyze(std::slice::from_ref(&path));
    assert!(a.connections.len() > 10);
    let uids: Vec<String> = a.connections.iter().map(|c| report::csv::conn_uid(&a, c)).collect();
    let again: Vec<String> = b.connections.iter().map(|c| report::csv::conn_uid(&b, c)).collect();
    assert_eq!(uids, again, "conn_uid is stable across runs");
    let distinct: std::collections::HashSet<&String> = uids.iter().collect();
    assert_eq!(distinct.len(), uids.len(), "conn_uid is unique per connection");
    for c in &a.connections {
        let id = report::csv::community_id(c);
        let mut flipped = c.clone();
        std::mem::swap(&mut flipped.client, &mut flipped.server);
        assert_eq!(id, report::csv::community_id(&flipped), "direction-free");
        assert!(id.starts_with("1:") && id.len() == 30, "{id}");
    }
    // The columns are appended after pid,process, and findings name their connections' uids.
    let mut buf = Vec::new();
    report::csv::write_connections(&a, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let header = text.lines().next().unwrap();
    // seen_in, view_of (two-sided captures) follow.
    assert!(header.ends_with(",pid,process,conn_uid,community_id,seen_in,view_of"), "{header}");
    let first = text.lines().nth(1).unwrap();
    let (uid, cid) = (&uids[0], report::csv::community_id(&a.connections[0]));
    assert!(first.ends_with(&format!(",{uid},{cid},{},", a.input_name(0))), "{first}");
    let mut buf = Vec::new();
    report::csv::write_findings(&a, &mut buf).unwrap();
    let findings = String::from_utf8(buf).unwrap();
    assert!(findings.lines().next().unwrap().ends_with(",advice,conn_uids"));
    let with_conns = a.findings.iter().filter(|f| !f.connections.is_empty()).count();
    assert!(with_conns > 0, "espn_fail has connection findings");
    let table = report::csv::Findings::new(&a);
    for f in &a.findings {
        let listed = table.conn_uids(f);
        let want: Vec<String> = f
            .connections
            .iter()
            .filter_map(|id| a.connections.iter().find(|c| c.id == *id))
            .map(|c| report::csv::conn_uid(&a, c))
            .collect();
        assert_eq!(listed, want.join(";"));
    }
}

/// A large synthetic connection table, to measure the writers (no timing assert: the figure is
/// printed; this is an unoptimised test build).
#[test]
fn csv_writer_throughput() {
    let n = 100_000u64;
    let mut a = Analysis::default();
    a.inputs.push(ipcscope::analysis::InputSummary { path: "big.pcapng".into(), ..Default::default() });
    let ep = |o: u32, port: u16| Endpoint { ip: std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + o)), port };
    for i in 0..n {
        let ts = 1_700_000_000_000_000_000 + i as i64 * 1_234_567;
        let mut c =
            Connection::opened(i, 0, i as u32, ep(i as u32, 49152 + (i % 16000) as u16), ep(1, 445), ts, i * 10);
        c.last_ts = ts + 5_000_000_000;
        c.state = "SF".into();
        c.history = "ShADadFf".into();
        c.client_packets = 10 + (i % 7) as u32;
        c.server_packets = 9 + (i % 5) as u32;
        c.client_bytes = 1000 * (i % 100);
        c.server_bytes = 64_000 + i;
        c.last_frame = i * 10 + 19;
        a.connections.push(c);
    }
    let mut buf = Vec::with_capacity(64 << 20);
    let (t, cpu) = (Instant::now(), thread_cpu_s());
    report::csv::write_connections(&a, &mut buf).unwrap();
    let (secs, cpu) = (t.elapsed().as_secs_f64(), thread_cpu_s() - cpu);
    let lines = buf.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(lines as u64, n + 1);
    let mb = buf.len() as f64 / 1e6;
    eprintln!(
        "connections.csv: {n} rows, {mb:.1} MB: {:.1} MB/s of this thread's CPU time ({cpu:.2} s; other chunks are \
         formatted on other threads), {:.1} MB/s wall (unoptimised test build; two SHA-1 per row for conn_uid and community_id)",
        mb / cpu,
        mb / secs
    );
    #[cfg(feature = "parquet")]
    polars_figures(&a);
}

#[cfg(feature = "parquet")]
fn polars_figures(a: &Analysis) {
    // The previous path, for comparison in the same build: a polars DataFrame through CsvWriter.
    let t = Instant::now();
    let mut df = report::table::data_frame(&report::csv::Connections::new(a)).unwrap();
    let mut old = Vec::with_capacity(64 << 20);
    CsvWriter::new(&mut old).include_header(true).finish(&mut df).unwrap();
    let polars_secs = t.elapsed().as_secs_f64();
    eprintln!("same table through polars CsvWriter: {:.0} MB/s", old.len() as f64 / 1e6 / polars_secs);
    let t = Instant::now();
    let mut pq = Vec::new();
    report::table::write_parquet(&report::csv::Connections::new(a), &mut pq).unwrap();
    eprintln!("connections.parquet: {:.1} MB in {:.3} s", pq.len() as f64 / 1e6, t.elapsed().as_secs_f64());
}

/// CPU time of this thread, seconds: a figure that does not depend on the machine's load.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn write_findings_csv(a: &Analysis) -> String {
    let mut buf = Vec::new();
    report::csv::write_findings(a, &mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

/// A case folder holding each sample scenario (capture in one subfolder, its client logs in
/// another, plus a file of no known format and an empty one) gives the findings of listing the files.
#[test]
fn a_case_folder_gives_the_findings_of_its_files() {
    let samples = common::samples();
    let mut names: Vec<String> =
        std::fs::read_dir(&samples).unwrap().filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    names.sort();
    let mut cases = 0;
    for main in names.iter().filter(|n| n.ends_with(".pcap") || n.ends_with(".etl")) {
        let stem = main.rsplit_once('.').unwrap().0;
        // Empty logs are left out: a folder skips them (listed in skipped_inputs) where a file list reads them.
        let logs: Vec<&String> = names
            .iter()
            .filter(|n| n.starts_with(&format!("{stem}_client")) && n.ends_with(".log"))
            .filter(|n| std::fs::metadata(samples.join(n)).is_ok_and(|m| m.len() > 0))
            .collect();
        let case = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(case.path().join("capture")).unwrap();
        std::fs::create_dir_all(case.path().join("logs/app")).unwrap();
        std::fs::copy(samples.join(main), case.path().join("capture").join(main)).unwrap();
        let mut listed = vec![samples.join(main)];
        for l in &logs {
            std::fs::copy(samples.join(l), case.path().join("logs/app").join(l)).unwrap();
            listed.push(samples.join(l));
        }
        std::fs::write(case.path().join("capture/notes.bin"), [0u8, 1, 2, 3, 0xff, 0xfe, 0, 0, 7, 7]).unwrap();
        std::fs::write(case.path().join("logs/empty.log"), b"").unwrap();
        let from_folder = analyze(&[case.path().to_path_buf()]);
        let from_files = analyze(&listed);
        assert_eq!(from_folder.inputs.len(), listed.len(), "{stem}: the junk files are not inputs");
        assert!(from_folder.inputs.iter().all(|i| i.error.is_none()), "{stem}");
        assert_eq!(write_findings_csv(&from_folder), write_findings_csv(&from_files), "{stem}: findings differ");
        assert_eq!(from_folder.connections.len(), from_files.connections.len());
        let skipped: Vec<(String, String)> = from_folder
            .skipped
            .iter()
            .map(|s| (Path::new(&s.path).file_name().unwrap().to_string_lossy().into_owned(), s.reason.clone()))
            .collect();
        assert_eq!(
            skipped,
            vec![
                ("notes.bin".to_string(), "binary file of an unknown format".to_string()),
                ("empty.log".to_string(), "empty file".to_string())
            ],
            "{stem}"
        );
        let json = report::summary::summary_json(&from_folder);
        assert_eq!(json["skipped_inputs"].as_array().map(Vec::len), Some(2));
        cases += 1;
    }
    assert!(cases >= 10, "samples/ holds the scenario captures ({cases})");
}

fn have_editcap() -> bool {
    let ok = Command::new("editcap").arg("-h").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: editcap not installed");
    }
    ok
}

/// A capture split by `editcap -c` into a ring of files gives the connections of the whole file.
#[test]
fn a_ring_of_capture_files_continues_the_same_connections() {
    if !have_editcap() {
        return;
    }
    let Some(pcap) = common::corpus("pcap") else { return };
    // cs_http_espn_fail: Chris Sanders, Practical Packet Analysis (pcapng); sv_dcerpc-zerologon:
    // Suricata-verify (legacy pcap).
    for (name, format, per_file) in
        [("cs_http_espn_fail.pcapng", "pcapng", "97"), ("sv_dcerpc-zerologon.pcap", "pcap", "150")]
    {
        let whole_path = pcap.join(name);
        let whole = analyze(std::slice::from_ref(&whole_path));
        let dir = tempfile::tempdir().unwrap();
        let ext = if format == "pcap" { "pcap" } else { "pcapng" };
        let out = dir.path().join(format!("ring.{ext}"));
        let st =
            Command::new("editcap").args(["-F", format, "-c", per_file]).arg(&whole_path).arg(&out).output().unwrap();
        assert!(st.status.success(), "editcap: {}", String::from_utf8_lossy(&st.stderr));
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(files >= 3, "{name}: split into {files} files");
        let ring = analyze(&[dir.path().to_path_buf()]);
        assert_eq!(ring.inputs.len(), 1, "{name}: one input for the ring");
        assert_eq!(ring.inputs[0].error, None);
        assert_eq!(ring.inputs[0].packets, whole.inputs[0].packets);
        assert_eq!(ring.inputs[0].ring_files.len(), files);
        let a: Vec<String> = whole.connections.iter().map(common::conn_key).collect();
        let b: Vec<String> = ring.connections.iter().map(common::conn_key).collect();
        assert_eq!(a, b, "{name}: the ring's connections are the whole file's");
        assert_eq!(write_findings_csv(&whole).lines().count(), write_findings_csv(&ring).lines().count());
        // Renamed so that the names say nothing: still one ring, found by content (tests/ring.rs).
        let parts: Vec<PathBuf> = {
            let mut v: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
            v.sort();
            v
        };
        let renamed: Vec<PathBuf> = parts
            .iter()
            .map(|p| {
                let renamed =
                    p.with_file_name(format!("part{}", p.file_name().unwrap().to_string_lossy().replace('_', "-")));
                std::fs::rename(p, &renamed).unwrap();
                renamed
            })
            .collect();
        let by_content = analyze(&renamed);
        assert_eq!(by_content.inputs.len(), 1, "{name}: renamed files are one ring by content");
        let c: Vec<String> = by_content.connections.iter().map(common::conn_key).collect();
        assert_eq!(a, c, "{name}: the ring found by content has the whole file's connections");
        // Each file alone starts connections again: more, shorter connections.
        let split = renamed.iter().map(|p| analyze(std::slice::from_ref(p)).connections.len()).sum::<usize>();
        assert!(split > whole.connections.len(), "{name}: split files cut connections");
        eprintln!(
            "{name}: {} files, {} connections as a ring = whole file; {} when read apart",
            files,
            ring.connections.len(),
            split
        );
    }
}

/// The command line writes connections.csv (and .parquet) while the detectors run, the rest after:
/// every output is byte for byte what the library's `write_all_as` writes after the analysis, on
/// every sample at once (captures, traces, logs, a two-sided pair).
#[test]
fn command_line_outputs_equal_the_library_outputs() {
    let samples = common::samples();
    let dir = tempfile::tempdir().unwrap();
    let (cli, lib) = (dir.path().join("cli"), dir.path().join("lib"));
    let format = if cfg!(feature = "parquet") { "both" } else { "csv" };
    let status = Command::new(env!("CARGO_BIN_EXE_ipcscope"))
        .args(["analyze", samples.to_str().unwrap(), "--out", cli.to_str().unwrap(), "--format", format, "--quiet"])
        .status()
        .unwrap();
    assert!(status.code().is_some_and(|c| c == 0 || c == 2), "{status}");
    let a = analyze(std::slice::from_ref(&samples));
    report::write_all_as(&a, &lib, Format::parse(format).unwrap()).unwrap();
    let listing = |d: &Path| {
        let mut names: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    let names = listing(&lib);
    assert!(names.iter().any(|n| n == "connections.csv") && names.len() >= 5, "{names:?}");
    // The same files, and no temporary file left behind.
    assert_eq!(listing(&cli), names);
    assert!(a.connections.len() > 100 && !a.findings.is_empty(), "the samples give connections and findings");
    for n in &names {
        let (x, y) = (std::fs::read(cli.join(n)).unwrap(), std::fs::read(lib.join(n)).unwrap());
        assert!(x == y, "{n} differs between the command line and the library");
    }
}
