//! Named pipes from ETW file-I/O events: the analyzer on hand-built traces, golden findings and
//! pipes.csv for the pipe samples (`cargo run --example make_pipe_samples`), the NDIS → TCP
//! path, and the real corpus traces run through the whole pipeline.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use ipcscope::analysis::pipes::{
    outcome_of, pipe_name, win32_error, PipeOutcome, STATUS_INSTANCE_NOT_AVAILABLE, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_PIPE_BUSY, STATUS_PIPE_NOT_AVAILABLE,
};
use ipcscope::analysis::{Analysis, Options};
use ipcscope::ingest::etl::writer::{write_etl_to_vec, WriterConfig, WriterEvent, WriterItem};
use ipcscope::ingest::etl::{decode_file_event, EtlReader, FileEvent};
use ipcscope::model::{days_from_civil, Finding, Severity};
use ipcscope::pipeline::{analyze_paths, NoProgress};

const PIPE: &str = r"\Device\NamedPipe\RemotingServer";
const FT_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

/// 2026-11-22 10:15:00 UTC (the samples' base time) in Unix ns, plus `ms`.
fn base_ns(ms: i64) -> i64 {
    (days_from_civil(2026, 11, 22) * 86_400 + 10 * 3600 + 15 * 60) * 1_000_000_000 + ms * 1_000_000
}

fn analyze(path: &Path) -> Analysis {
    analyze_paths(&[path.to_path_buf()], &Options::default(), &NoProgress)
}

fn sample(name: &str) -> PathBuf {
    let p = common::samples().join(name);
    assert!(p.exists(), "{} missing: run `cargo run --example make_pipe_samples`", p.display());
    p
}

fn pipe_findings(a: &Analysis) -> Vec<&Finding> {
    a.findings.iter().filter(|f| f.kind.name().starts_with("pipe_")).collect()
}

fn near(actual: i64, expected: i64) -> bool {
    (actual - expected).abs() <= 1_000_000_000
}

#[test]
fn ntstatus_mapping() {
    for s in [STATUS_PIPE_NOT_AVAILABLE, STATUS_PIPE_BUSY, STATUS_INSTANCE_NOT_AVAILABLE] {
        assert_eq!(outcome_of(s), PipeOutcome::Busy, "{s:#x}");
    }
    assert_eq!(outcome_of(STATUS_OBJECT_NAME_NOT_FOUND), PipeOutcome::NotFound);
    assert_eq!(outcome_of(0), PipeOutcome::Ok);
    assert_eq!(outcome_of(0x0000_0103), PipeOutcome::Ok); // STATUS_PENDING is not a failure
    assert_eq!(outcome_of(0xC000_0022), PipeOutcome::Other); // access denied
    assert_eq!(outcome_of(0xC000_0033), PipeOutcome::Other); // name invalid
    assert_eq!(win32_error(PipeOutcome::Busy), Some(231));
    assert_eq!(win32_error(PipeOutcome::NotFound), Some(2));
    assert_eq!(win32_error(PipeOutcome::Ok), None);
    assert_eq!(pipe_name(r"\device\namedpipe\RemotingServer"), Some("RemotingServer"));
    assert_eq!(pipe_name(r"\\.\pipe\RemotingServer"), Some("RemotingServer"));
    assert_eq!(pipe_name(r"\Device\NamedPipe\"), None);
    assert_eq!(pipe_name(r"\Device\HarddiskVolume2\pipe"), None);
}

/// Writes items to a temporary trace and analyzes it.
fn analyze_items(items: Vec<WriterItem>) -> Analysis {
    let bytes = write_etl_to_vec(&WriterConfig::default(), items).expect("write trace");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.etl");
    std::fs::write(&path, bytes).expect("write file");
    analyze(&path)
}

#[test]
fn analyzer_joins_status_by_irp_and_lifetimes_by_file_object() {
    let t = WriterConfig::default().start_time + 10_000_000;
    let ms = 10_000i64;
    let mut items = Vec::new();
    let create = |ft: i64, pid: u32, irp: u64, fo: u64, disp: u32, name: &str, cpu: u16| {
        WriterItem::new(
            ft,
            pid,
            pid + 1,
            WriterEvent::KernelFileCreate {
                irp,
                file_object: fo,
                issuing_thread_id: pid + 1,
                create_options: disp << 24,
                create_attributes: 0,
                share_access: 3,
                file_name: name.into(),
            },
        )
        .on_cpu(cpu)
    };
    let end = |ft: i64, irp: u64, status: u32, cpu: u16| {
        WriterItem::new(ft, 0, 0, WriterEvent::KernelFileOperationEnd { irp, extra_information: 0, status }).on_cpu(cpu)
    };
    let close = |ft: i64, pid: u32, fo: u64, cpu: u16| {
        WriterItem::new(
            ft,
            pid,
            pid + 1,
            WriterEvent::KernelFileCleanup { irp: 0xEE, file_object: fo, file_key: 0, issuing_thread_id: pid + 1 },
        )
        .on_cpu(cpu)
    };
    // Server (pid 10) creates two instances; the name's case differs between server and clients.
    items.push(create(t, 10, 1, 0x100, 2, r"\Device\NamedPipe\Svc", 0));
    items.push(end(t + 1, 1, 0, 0));
    items.push(create(t + 2, 10, 2, 0x200, 3, r"\Device\NamedPipe\Svc", 0));
    items.push(end(t + 3, 2, 0, 0));
    // Client 20 opens twice (FileObject 0x300 reused), on another CPU.
    items.push(create(t + ms, 20, 3, 0x300, 1, r"\DEVICE\NAMEDPIPE\svc", 1));
    items.push(end(t + ms + 1, 3, 0, 1));
    items.push(close(t + 3 * ms, 20, 0x300, 1));
    items.push(create(t + 4 * ms, 20, 4, 0x300, 1, r"\Device\NamedPipe\svc", 1));
    items.push(end(t + 4 * ms + 1, 4, 0, 1));
    // Client 30: busy, then not found, then an open whose OperationEnd is missing (Ok from its close).
    items.push(create(t + 5 * ms, 30, 5, 0x400, 1, r"\Device\NamedPipe\Svc", 2));
    items.push(end(t + 5 * ms + 1, 5, STATUS_PIPE_BUSY, 2));
    items.push(create(t + 6 * ms, 30, 6, 0x500, 1, r"\Device\NamedPipe\Svc", 2));
    items.push(end(t + 6 * ms + 1, 6, STATUS_OBJECT_NAME_NOT_FOUND, 2));
    items.push(create(t + 7 * ms, 30, 7, 0x600, 1, r"\Device\NamedPipe\Svc", 3));
    items.push(close(t + 8 * ms, 30, 0x600, 3));
    items.push(close(t + 9 * ms, 20, 0x300, 1));
    // Not a pipe.
    items.push(create(t + ms, 20, 8, 0x700, 1, r"\Device\HarddiskVolume2\x.txt", 0));
    items.push(end(t + ms + 2, 8, 0, 0));
    let a = analyze_items(items);
    assert!(a.inputs[0].error.is_none(), "{:?}", a.inputs[0].error);
    assert_eq!(a.pipes.len(), 1);
    let p = &a.pipes[0];
    assert_eq!(p.name, r"\Device\NamedPipe\Svc");
    assert_eq!(p.server_pid, Some(10));
    assert_eq!(p.client_pids, vec![20, 30]);
    assert_eq!((p.opens, p.ok, p.busy, p.not_found, p.other_failures), (5, 3, 1, 1, 0));
    assert_eq!((p.instances_created, p.max_instances), (2, 2));
    assert_eq!(p.max_concurrent, 2); // 20's second handle and 30's inferred one overlap
                                     // Lifetimes 2 ms, 5 ms, 1 ms → median 2 ms.
    assert_eq!(p.median_lifetime_ms, Some(2.0));
    assert_eq!(p.failures.len(), 2);
    assert_eq!(p.failures[0].outcome, PipeOutcome::Busy);
    assert_eq!(p.failures[1].outcome, PipeOutcome::NotFound);
    assert!(p.failures[1].server_seen_before);
    let handles: Vec<u32> = p.handles.iter().map(|h| h.1).collect();
    assert_eq!(handles, vec![1, 0, 1, 2, 1, 0]);
    // Only five opens: no churn, and no finding for a single busy failure's exhaustion
    // (1 client handle < 2 instances).
    let kinds: BTreeSet<&str> = a.findings.iter().map(|f| f.kind.name()).collect();
    assert_eq!(kinds, BTreeSet::from(["pipe_busy", "pipe_not_found"]));
}

/// Record index → decoded file event of a trace.
fn file_events(path: &Path) -> HashMap<u64, FileEvent> {
    let r = EtlReader::open(path).expect("open");
    let mut out = HashMap::new();
    for rec in r.records() {
        let rec = rec.expect("record");
        if let Some(e) = decode_file_event(&rec.as_ref()) {
            out.insert(rec.header.record_index, e);
        }
    }
    out
}

#[test]
fn busy_storm_golden_findings() {
    let path = sample("pipes_busy_storm.etl");
    let a = analyze(&path);
    assert!(a.inputs[0].error.is_none());
    assert_eq!(a.pipes.len(), 1, "only the Remoting pipe (web.config is not a pipe)");
    let p = &a.pipes[0];
    assert_eq!(p.name, PIPE);
    let pf = pipe_findings(&a);
    let by_kind: HashMap<&str, &Finding> = pf.iter().map(|f| (f.kind.name(), *f)).collect();
    assert_eq!(pf.len(), 4, "{:#?}", pf.iter().map(|f| (f.kind.name(), &f.summary)).collect::<Vec<_>>());
    // (kind, severity, pids, first, last) — times ±1 s.
    let expected: &[(&str, Severity, &str, i64, i64)] = &[
        ("pipe_busy", Severity::Error, "5120", base_ns(58), base_ns(2_500)),
        ("pipe_not_found", Severity::Error, "5120", base_ns(532), base_ns(2_023)),
        ("pipe_churn", Severity::Warning, "5120", base_ns(54), base_ns(2_500)),
        ("pipe_exhaustion", Severity::Error, "4242 5120", base_ns(132), base_ns(2_462)),
    ];
    for (kind, sev, pid, first, last) in expected {
        let f = by_kind.get(kind).unwrap_or_else(|| panic!("{kind} missing"));
        assert_eq!(f.severity, *sev, "{kind}");
        assert_eq!(f.pipe, PIPE, "{kind}");
        assert_eq!(f.pid, *pid, "{kind}");
        assert!(near(f.first_ts, *first), "{kind} first {}", f.first_ts);
        assert!(near(f.last_ts, *last), "{kind} last {}", f.last_ts);
        assert!(f.wireshark_filter.is_empty() && f.connections.is_empty());
        assert!(!f.evidence.is_empty() && f.evidence.len() <= 8, "{kind}");
        assert!(!f.summary.is_empty() && !f.advice.is_empty());
    }
    assert_eq!(by_kind["pipe_busy"].count, p.busy);
    assert_eq!(by_kind["pipe_not_found"].count, p.not_found);
    assert_eq!(by_kind["pipe_churn"].count, p.opens);
    assert!(by_kind["pipe_exhaustion"].count > 0 && by_kind["pipe_exhaustion"].count <= p.busy);
    assert!(by_kind["pipe_churn"].advice.contains("TcpChannel"));
    assert!(by_kind["pipe_busy"].advice.contains("WaitNamedPipe"));
    assert!(by_kind["pipe_exhaustion"].summary.contains("all 4 instances"), "{}", by_kind["pipe_exhaustion"].summary);
    // No other warning or error.
    for f in &a.findings {
        assert!(f.kind.name().starts_with("pipe_") || f.severity == Severity::Info, "unexpected {}", f.kind.name());
    }

    // Evidence points at the failing Creates of the pipe and their OperationEnds.
    let evs = file_events(&path);
    for kind in ["pipe_busy", "pipe_not_found", "pipe_exhaustion"] {
        let want = if kind == "pipe_not_found" { PipeOutcome::NotFound } else { PipeOutcome::Busy };
        for e in &by_kind[kind].evidence {
            assert_eq!(e.input, 0);
            match evs.get(&e.frame) {
                Some(FileEvent::Create(c)) => assert_eq!(c.file_name, PIPE, "{kind} #{}", e.frame),
                Some(FileEvent::OperationEnd(o)) => assert_eq!(outcome_of(o.status), want, "{kind} #{}", e.frame),
                other => panic!("{kind} evidence #{} is {other:?}", e.frame),
            }
        }
    }
    for e in &by_kind["pipe_churn"].evidence {
        assert!(matches!(evs.get(&e.frame), Some(FileEvent::Create(_) | FileEvent::Cleanup(_))), "churn #{}", e.frame);
    }
}

#[test]
fn busy_storm_log_matches_failures() {
    // The client log has one ERROR line per failed open, within a millisecond of it (UTC).
    let a = analyze(&sample("pipes_busy_storm.etl"));
    let log = std::fs::read_to_string(sample("pipes_busy_storm_client.log")).expect("log");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    let p = &a.pipes[0];
    assert_eq!(errors.len() as u64, p.busy + p.not_found);
    assert_eq!(errors.iter().filter(|l| l.contains("All pipe instances are busy.")).count() as u64, p.busy);
    assert_eq!(
        errors.iter().filter(|l| l.contains("The system cannot find the file specified.")).count() as u64,
        p.not_found
    );
    let first = errors[0];
    let f0 = &p.failures[0];
    let stamp = ipcscope::model::format_utc(f0.ts);
    // `2026-11-22 10:15:00,058` vs `2026-11-22T10:15:00.058…Z`
    assert_eq!(&first[..23], format!("{} {},{}", &stamp[..10], &stamp[11..19], &stamp[20..23]));
}

#[test]
fn busy_storm_pipes_csv() {
    let a = analyze(&sample("pipes_busy_storm.etl"));
    let mut out = Vec::new();
    ipcscope::report::pipes::write_pipes(&a, &mut out).expect("csv");
    let text = String::from_utf8(out).expect("utf8");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("pipe,server_pid,client_pids,opens,ok,busy,not_found,other_failures,max_concurrent,median_lifetime_ms,opens_per_s_peak,first_utc,last_utc,source")
    );
    assert_eq!(
        lines.next(),
        Some(
            r"\Device\NamedPipe\RemotingServer,4242,5120,1565,997,543,25,0,4,5.520,645.0,2026-11-22T10:15:00.000000Z,2026-11-22T10:15:02.505884Z,etw"
        )
    );
    assert_eq!(lines.next(), None);
}

#[test]
fn healthy_reuse_has_no_pipe_findings() {
    let a = analyze(&sample("pipes_healthy_reuse.etl"));
    assert!(a.inputs[0].error.is_none());
    assert_eq!(a.pipes.len(), 1);
    let p = &a.pipes[0];
    assert_eq!((p.opens, p.ok, p.busy, p.not_found, p.max_concurrent, p.max_instances), (3, 3, 0, 0, 3, 4));
    assert_eq!(p.server_pid, Some(4242));
    assert!(p.median_lifetime_ms.unwrap_or(0.0) > 29_000.0);
    assert!(
        a.findings.iter().all(|f| f.severity == Severity::Info),
        "{:?}",
        a.findings.iter().map(|f| f.kind.name()).collect::<Vec<_>>()
    );
}

#[test]
fn after_tcp_has_no_pipes_and_ndis_frames_become_a_tcp_connection() {
    let a = analyze(&sample("pipes_after_tcp.etl"));
    let i = &a.inputs[0];
    assert!(i.error.is_none());
    assert!(a.pipes.is_empty());
    assert!(
        a.findings.iter().all(|f| f.severity == Severity::Info),
        "{:?}",
        a.findings.iter().map(|f| f.kind.name()).collect::<Vec<_>>()
    );
    assert_eq!(i.packets, 45, "frames assembled from NDIS fragments");
    assert_eq!(i.link_types, vec!["ethernet".to_string()]);
    assert_eq!(a.connections.len(), 1);
    let c = &a.connections[0];
    assert_eq!(c.client.to_string(), "10.1.2.15:50311");
    assert_eq!(c.server.to_string(), "10.1.2.20:8085");
    assert_eq!(c.state, "SF");
    assert_eq!((c.first_frame, c.last_frame), (1, 45));
    assert_eq!(
        (c.client_syn, c.server_synack, c.client_fin, c.server_fin, c.client_rst + c.server_rst),
        (1, 1, 1, 1, 0)
    );
    // The 2400-byte responses were logged as two fragments each and joined again.
    assert!(c.server_bytes > 3 * 2_400);
    assert_eq!(a.tcp.tcp_frames, 45);
    assert!(near(c.first_ts, base_ns(100)));
}

#[test]
fn corpus_traces_run_through_the_pipeline() {
    let Some(dir) = common::corpus("etl") else { return };
    let rows = common::read_tsv(&dir.join("oracle-summary.tsv"));
    assert!(!rows.is_empty());
    for row in rows {
        let file = &row["file"];
        let a = analyze(&dir.join(file));
        let i = &a.inputs[0];
        assert!(i.error.is_none(), "{file}: {:?}", i.error);
        let records = i.extra.to_json().get("records").and_then(|v| v.as_u64());
        assert_eq!(records, row["records_total"].parse::<u64>().ok(), "{file}");
        let ft: i64 = row["first_event_filetime"].parse().expect("filetime");
        assert_eq!(i.first_ts, Some((ft - FT_UNIX_EPOCH) * 100), "{file}");
        // No corpus trace carries named-pipe creates, so none yields a pipe or pipe finding.
        assert!(a.pipes.is_empty(), "{file}: {:?}", a.pipes.iter().map(|p| &p.name).collect::<Vec<_>>());
        assert!(pipe_findings(&a).is_empty(), "{file}");
    }
}

#[test]
fn corpus_net452_creates_name_no_pipe() {
    // net.4.5.2.x64/x86 have Kernel-File creates (x86: 968); what do they open? Files only:
    // no create names \Device\NamedPipe\, so the analyzer rightly reports no pipe.
    let Some(dir) = common::corpus("etl") else { return };
    for (file, min_creates) in [("net.4.5.2.x64.etl", 562usize), ("net.4.5.2.x86.etl", 968)] {
        let r = EtlReader::open(dir.join(file)).expect("open");
        let mut creates = 0usize;
        let mut pipe_like = Vec::new();
        let mut devices = std::collections::BTreeMap::<String, usize>::new();
        for rec in r.records() {
            let Ok(rec) = rec else { break };
            if let Some(FileEvent::Create(c)) = decode_file_event(&rec.as_ref()) {
                creates += 1;
                let device: String = c.file_name.split('\\').take(3).collect::<Vec<_>>().join("\\");
                *devices.entry(device).or_default() += 1;
                if c.file_name.to_ascii_lowercase().contains("pipe") {
                    pipe_like.push(c.file_name.clone());
                }
            }
        }
        eprintln!("{file}: {creates} Kernel-File/FileIo creates by device: {devices:?}");
        assert_eq!(creates, min_creates, "{file}");
        // Files on the system volume and UNC paths (\\Device\\Mup), nothing under \\Device\\NamedPipe.
        assert!(devices.keys().all(|d| d == r"\Device\HarddiskVolume2" || d == r"\Device\Mup"), "{file}: {devices:?}");
        assert!(pipe_like.is_empty(), "{file}: {pipe_like:?}");
        let a = analyze(&dir.join(file));
        assert!(a.pipes.is_empty());
        if file.contains("x86") {
            // Its classic TcpIp Accept and Disconnect land on the timeline (Send/Recv do not).
            let kinds: Vec<&str> = a.system_events.iter().map(|e| e.kind.name()).collect();
            assert_eq!(kinds, vec!["tcpip_accept", "tcpip_disconnect"], "{file}");
        }
    }
}

#[test]
fn truncated_storm_keeps_the_prefix_and_reports_damage() {
    let bytes = std::fs::read(sample("pipes_busy_storm.etl")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cut.etl");
    std::fs::write(&path, &bytes[..bytes.len() / 2 + 1234]).expect("write");
    let a = analyze(&path);
    let i = &a.inputs[0];
    assert!(i.error.as_deref().is_some_and(|e| e.contains("damaged")), "{:?}", i.error);
    assert_eq!(a.pipes.len(), 1);
    assert!(a.pipes[0].opens > 0 && a.pipes[0].opens < 1565);
}

/// Captures, traces, logs and event logs in one run, on one clock.
#[test]
fn a_mix_of_captures_traces_and_logs_in_one_run() {
    let paths = vec![
        sample("stale_connection.pcap"),
        sample("pipes_busy_storm.etl"),
        sample("pipes_busy_storm_client.log"),
        sample("stale_connection_client_local.log"),
    ];
    let a = analyze_paths(&paths, &Options::default(), &NoProgress);
    let formats: Vec<&str> = a.inputs.iter().map(|i| i.format.as_str()).collect();
    assert_eq!(formats, vec!["pcap", "etl", "text", "text"]);
    assert!(a.inputs.iter().all(|i| i.error.is_none()));
    let kinds: BTreeSet<&str> = a.findings.iter().map(|f| f.kind.name()).collect();
    for k in ["stale_connection", "server_restart", "pipe_busy", "pipe_churn"] {
        assert!(kinds.contains(k), "{kinds:?}");
    }
    // Each log is put on the clock of the evidence it describes.
    assert!(a.logs[0].offset_s.abs() < 0.05, "{}", a.logs[0].offset_s);
    assert!((a.logs[1].offset_s - 3600.8).abs() < 0.05, "{}", a.logs[1].offset_s);
    let ids: Vec<u64> = a.findings.iter().map(|f| f.id).collect();
    assert_eq!(ids, (1..=a.findings.len() as u64).collect::<Vec<_>>());
}

/// The seed's incident as the client logged it: a local-time (UTC+01:00, clock 0.25 s fast) log
/// of thousands of "All pipe instances are busy" lines, each written within 2 ms of its failed
/// open, is put on the trace's clock from the failed opens themselves and every line is linked
/// to the finding of its failure — none is called unexplained.
#[test]
fn local_time_storm_log_is_aligned_and_linked() {
    let paths = vec![sample("pipes_storm_local.etl"), sample("pipes_storm_local_client.log")];
    let a = analyze_paths(&paths, &Options::default(), &NoProgress);
    let p = &a.pipes[0];
    let l = &a.logs[0];
    assert!(l.errors > 1_000, "{} error lines", l.errors);
    assert_eq!(l.errors, p.busy + p.not_found, "one line per failed open");
    assert_eq!(l.offset_source, "estimated");
    assert!((l.offset_s - 3600.25).abs() < 0.01, "offset {}", l.offset_s);
    assert!(l.confidence >= 0.9, "{}", l.confidence);
    assert_eq!(l.matched_lines, l.errors);
    assert_eq!(l.unexplained_errors, 0);
    let busy = l.lags.iter().find(|g| g.identity == "231").expect("231 lags");
    assert_eq!(busy.lines, p.busy);
    assert!(busy.p95_ms < 2.0, "{busy:?}");
    let kind_of = |id: Option<u64>| id.and_then(|id| a.findings.iter().find(|f| f.id == id)).map(|f| f.kind.name());
    for e in &a.log_events {
        let want = if e.codes.contains(&231) { "pipe_busy" } else { "pipe_not_found" };
        assert_eq!(kind_of(e.finding), Some(want), "line {}: {}", e.line, e.text);
    }
    let f = a.findings.iter().find(|f| f.kind.name() == "pipe_busy").expect("pipe_busy");
    assert_eq!(f.log_lines.len() as u64, p.busy);
}

/// The close/open race alone: a healthy server recycles its instances (all closed, new ones
/// 3–9 ms later, the same process); opens in the gaps fail not-found while the server is alive.
/// Golden: one pipe_not_found naming the recycle, the churn that makes the race matter, no busy
/// findings; the local-time log lines land on the failures.
#[test]
fn instance_recycle_is_not_found_with_the_server_alive() {
    let paths = vec![sample("pipes_instance_recycle.etl"), sample("pipes_instance_recycle_client.log")];
    let a = analyze_paths(&paths, &Options::default(), &NoProgress);
    let p = &a.pipes[0];
    assert_eq!(p.busy, 0);
    assert!(p.not_found >= 5, "{}", p.not_found);
    assert_eq!(p.server_processes.len(), 1);
    let server = p.server_processes[0];
    assert_eq!(server.pid, 4242);
    // Alive through every gap, though no instance existed then.
    assert!(p.failures.iter().all(|f| f.live_instances == 0 && p.server_alive_at(f.ts) == Some(&server)));
    let kinds: BTreeSet<&str> = pipe_findings(&a).iter().map(|f| f.kind.name()).collect();
    assert_eq!(kinds, BTreeSet::from(["pipe_churn", "pipe_not_found"]));
    let nf = a.findings.iter().find(|f| f.kind.name() == "pipe_not_found").expect("not found");
    assert_eq!(nf.count, p.not_found);
    assert!(nf.summary.contains("recycling its instances") && nf.summary.contains("same process"), "{}", nf.summary);
    assert!(near(nf.first_ts, p.failures[0].ts) && near(nf.last_ts, p.failures[p.failures.len() - 1].ts));
    let l = &a.logs[0];
    assert_eq!(l.offset_source, "estimated");
    assert!((l.offset_s - 3600.0).abs() < 0.01, "{}", l.offset_s);
    assert_eq!((l.matched_lines, l.unexplained_errors), (p.not_found, 0));
    assert_eq!(nf.log_lines.len() as u64, p.not_found);
}

/// A server that exits and whose successor (another process) creates the pipe later is not the
/// race: opens between them are not reported as pipe_not_found with the server alive.
#[test]
fn not_found_between_two_server_processes_is_not_the_race() {
    let ft = |ms: i64| (base_ns(ms) / 100) + FT_UNIX_EPOCH;
    let mut items = Vec::new();
    let mut irp = 0x100u64;
    let mut create = |items: &mut Vec<WriterItem>, ms: i64, pid: u32, fo: u64, disp: u32, status: u32| {
        irp += 0x10;
        items.push(WriterItem::new(
            ft(ms),
            pid,
            1,
            WriterEvent::KernelFileCreate {
                irp,
                file_object: fo,
                issuing_thread_id: 1,
                create_options: disp << 24,
                create_attributes: 0,
                share_access: 3,
                file_name: PIPE.into(),
            },
        ));
        items.push(WriterItem::new(
            ft(ms) + 10,
            pid,
            1,
            WriterEvent::KernelFileOperationEnd { irp, extra_information: 0, status },
        ));
    };
    let close = |items: &mut Vec<WriterItem>, ms: i64, pid: u32, fo: u64| {
        items.push(WriterItem::new(
            ft(ms),
            pid,
            1,
            WriterEvent::KernelFileClose { irp: 0x9, file_object: fo, file_key: 0, issuing_thread_id: 1 },
        ));
    };
    create(&mut items, 0, 10, 0xA0, 2, 0); // server 10
    close(&mut items, 100, 10, 0xA0); // server 10 exits
    create(&mut items, 150, 30, 0xB0, 1, STATUS_OBJECT_NAME_NOT_FOUND); // client: gone
    create(&mut items, 400, 20, 0xC0, 2, 0); // server 20 starts
    create(&mut items, 450, 30, 0xD0, 1, STATUS_OBJECT_NAME_NOT_FOUND); // a real race? no: listening
    let a = analyze_items(items);
    let p = &a.pipes[0];
    assert_eq!(p.server_processes.iter().map(|s| s.pid).collect::<Vec<_>>(), vec![10, 20]);
    assert!(p.server_alive_at(base_ns(150)).is_none());
    let nf: Vec<_> = a.findings.iter().filter(|f| f.kind.name() == "pipe_not_found").collect();
    // Only the open while server 20 listened counts (an instance existed: live_instances > 0).
    assert_eq!(nf.len(), 1, "{nf:#?}");
    assert_eq!(nf[0].count, 1);
    assert!(near(nf[0].first_ts, base_ns(450)));
}
