//! Text logs and event logs on the analysis clock: offsets recovered, lines linked to findings.

mod common;

use std::path::{Path, PathBuf};

use ipcscope::analysis::{Analysis, Options};
use ipcscope::pipeline::{analyze_paths, NoProgress};

fn run(paths: &[PathBuf], options: &Options) -> Analysis {
    analyze_paths(paths, options, &NoProgress)
}

fn sample(name: &str) -> PathBuf {
    common::samples().join(name)
}

/// Rewrites a log4net-style log's timestamps by `shift_ms` (as a clock in another zone and with
/// skew would have written them).
fn shifted_copy(src: &Path, dir: &Path, shift_ms: i64) -> PathBuf {
    let text = std::fs::read_to_string(src).expect("log");
    let mut out = String::new();
    for line in text.lines() {
        // "2026-11-22 19:41:44,784 ERROR ..."
        let ok = line.len() > 23 && line.as_bytes()[4] == b'-' && line.as_bytes()[19] == b',';
        if !ok {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let n = |a: usize, b: usize| line[a..b].parse::<i64>().expect("digits");
        let days = ipcscope::model::days_from_civil(n(0, 4), n(5, 7) as u32, n(8, 10) as u32);
        let ms = (days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)) * 1000 + n(20, 23) + shift_ms;
        let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
        let (y, mo, d) = ipcscope::model::civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        out.push_str(&format!(
            "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02},{milli:03}{}\n",
            sod / 3600,
            sod / 60 % 60,
            sod % 60,
            &line[23..]
        ));
    }
    let path = dir.join(format!("shifted_{shift_ms}_{}", src.file_name().and_then(|n| n.to_str()).unwrap_or("log")));
    std::fs::write(&path, out).expect("write");
    path
}

#[test]
fn stale_connection_logs_in_utc_and_local_time_line_up() {
    let a = run(
        &[
            sample("stale_connection.pcap"),
            sample("stale_connection_client_utc.log"),
            sample("stale_connection_client_local.log"),
        ],
        &Options::default(),
    );
    assert_eq!(a.logs.len(), 2);
    let utc = &a.logs[0];
    let local = &a.logs[1];
    assert_eq!(utc.format, "iso8601");
    assert_eq!(utc.offset_source, "estimated");
    assert!(utc.offset_s.abs() < 0.05, "utc log offset {}", utc.offset_s);
    assert_eq!(local.offset_source, "estimated");
    assert!((local.offset_s - 3600.8).abs() < 0.05, "local log offset {}", local.offset_s);
    assert!(local.confidence >= 0.5, "{}", local.confidence);

    // Each stale connection explains the send failure of its own connection (golden lines).
    let stale: Vec<_> = a.findings.iter().filter(|f| f.kind.name() == "stale_connection").collect();
    assert_eq!(stale.len(), 2);
    let labels = |f: &ipcscope::model::Finding| f.log_lines.iter().map(|&r| a.log_line_label(r)).collect::<Vec<_>>();
    assert_eq!(labels(stale[0]), vec!["stale_connection_client_utc.log:9", "stale_connection_client_local.log:9"]);
    assert_eq!(labels(stale[1]), vec!["stale_connection_client_utc.log:15", "stale_connection_client_local.log:15"]);
    // Every 10054 line is linked; corrected times agree between the two logs.
    let linked: Vec<_> = a.log_events.iter().filter(|e| e.codes.contains(&10054)).collect();
    assert_eq!(linked.len(), 4);
    assert!(linked.iter().all(|e| e.finding.is_some()));
    let t = |input: u32, line: u64| {
        a.log_events.iter().find(|e| e.input == input && e.line == line).and_then(|e| e.ts).expect("ts")
    };
    assert!((t(1, 9) - t(2, 9)).abs() < 50_000_000);
}

#[test]
fn two_logs_with_one_file_name_stay_apart() {
    // Two hosts' logs both called client.log: a finding's lines name their input, not the file name.
    let (d1, d2) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let (l1, l2) = (d1.path().join("client.log"), d2.path().join("client.log"));
    std::fs::copy(sample("stale_connection_client_utc.log"), &l1).expect("copy");
    std::fs::copy(sample("stale_connection_client_local.log"), &l2).expect("copy");
    let a = run(&[sample("stale_connection.pcap"), l1, l2], &Options::default());
    let stale: Vec<_> = a.findings.iter().filter(|f| f.kind.name() == "stale_connection").collect();
    assert_eq!(stale.len(), 2);
    for (f, line) in stale.iter().zip([9, 15]) {
        let refs: Vec<(u32, u64)> = f.log_lines.iter().map(|r| (r.input, r.line)).collect();
        assert_eq!(refs, vec![(1, line), (2, line)]);
    }
}

#[test]
fn offsets_of_hours_plus_skew_are_recovered_within_50ms() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        ("stale_connection", 3_600_000 - 350),
        ("stale_connection", 7_200_000 + 640),
        ("server_restart_refused", 3_600_000 + 120),
        ("server_restart_refused", -5 * 3_600_000 - 900),
        ("abortive_close", 7_200_000 + 310),
        ("idle_reset", -3_600_000 + 450),
        ("port_exhaustion", 3_600_000 + 200),
    ];
    for (name, shift_ms) in cases {
        let log = shifted_copy(&sample(&format!("{name}_client_utc.log")), dir.path(), shift_ms);
        let a = run(&[sample(&format!("{name}.pcap")), log], &Options::default());
        let l = &a.logs[0];
        assert_eq!(l.offset_source, "estimated", "{name} {shift_ms}");
        let want = shift_ms as f64 / 1000.0;
        assert!((l.offset_s - want).abs() < 0.05, "{name}: shifted {want} s, estimated {} s", l.offset_s);
        assert!(a.findings.iter().any(|f| !f.log_lines.is_empty()), "{name}: no finding got its log lines");
    }
}

#[test]
fn user_offset_wins_and_weak_evidence_gives_none() {
    let mut options = Options::default();
    options.log_offsets.push(("stale_connection_client_local.log".into(), 3600.8));
    let a = run(&[sample("stale_connection.pcap"), sample("stale_connection_client_local.log")], &options);
    assert_eq!(a.logs[0].offset_source, "user");
    assert!((a.logs[0].offset_s - 3600.8).abs() < 1e-6);
    assert_eq!(a.findings.iter().filter(|f| !f.log_lines.is_empty()).count(), 2);

    // A healthy log next to a healthy capture: no evidence, no offset.
    let a = run(&[sample("healthy.pcap"), sample("healthy_client_utc.log")], &Options::default());
    assert_eq!(a.logs[0].offset_source, "none");
    assert_eq!(a.logs[0].offset_s, 0.0);
    assert!(a.log_events.is_empty());

    // The stale log against an unrelated capture: its 10054 lines have no evidence around them.
    let a = run(&[sample("port_reuse.pcap"), sample("stale_connection_client_utc.log")], &Options::default());
    assert_eq!(a.logs[0].offset_source, "none");
    assert_eq!(a.logs[0].unexplained_errors, 2);
}

#[test]
fn log_events_csv_and_summary_logs() {
    let dir = tempfile::tempdir().expect("tmp");
    let a = run(
        &[sample("server_restart_refused.pcap"), sample("server_restart_refused_client_utc.log")],
        &Options::default(),
    );
    ipcscope::report::write_all(&a, dir.path()).expect("write");
    let csv = std::fs::read_to_string(dir.path().join("log_events.csv")).expect("csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("log,line,utc,written,severity,error,finding_id,finding_kind,text"));
    let refused: Vec<&str> = csv.lines().filter(|l| l.contains("WSAECONNREFUSED(10061)")).collect();
    assert_eq!(refused.len(), 4, "{csv}");
    assert!(refused.iter().all(|l| l.contains("connection_refused") || l.contains("server_restart")), "{csv}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).expect("json")).expect("parse");
    let log = &summary["logs"][0];
    for key in ["path", "format", "lines", "errors", "offset_s", "offset_source", "confidence"] {
        assert!(!log[key].is_null(), "summary logs lacks {key}: {log}");
    }
    assert_eq!(log["offset_source"], "estimated");
}

#[test]
fn event_logs_become_timeline_events() {
    let Some(dir) = common::corpus("evtx") else { return };
    let a = run(&[dir.join("DE_renamed_psexec_service_sysmon_17_18.evtx")], &Options::default());
    assert_eq!(a.inputs[0].format, "evtx");
    assert!(a.inputs[0].error.is_none(), "{:?}", a.inputs[0].error);
    let pipes: Vec<_> = a.system_events.iter().filter(|e| e.kind.is_pipe()).collect();
    assert_eq!(pipes.len(), 11);
    assert!(pipes.iter().any(|e| e.summary.contains("\\svchost")));

    // The sysmon sample has garbage chunks after the good ones: reported, records kept.
    let a = run(&[dir.join("sysmon-omerbenamram.evtx")], &Options::default());
    assert!(a.inputs[0].error.as_deref().unwrap_or("").contains("damaged"), "{:?}", a.inputs[0].error);
    assert_eq!(a.inputs[0].extra.to_json()["records"], 358);
}

#[test]
fn a_service_crash_at_the_restart_is_named_in_the_finding() {
    use ipcscope::analysis::logs::SystemEvent;
    let mut a = run(&[sample("stale_connection.pcap")], &Options::default());
    let restart = a.findings.iter().find(|f| f.kind.name() == "server_restart").expect("restart").first_ts;
    a.system_events.push(SystemEvent {
        input: 1,
        record_id: 7,
        ts: restart + 200_000_000,
        provider: "Service Control Manager".into(),
        event_id: 7031,
        kind: ipcscope::analysis::logs::SystemEventKind::ServiceCrashed,
        summary: "service OrderServer terminated unexpectedly".into(),
    });
    ipcscope::analysis::correlate::attach_system_events(&mut a);
    let f = a.findings.iter().find(|f| f.kind.name() == "server_restart").expect("restart");
    assert!(f.summary.contains("OrderServer terminated unexpectedly"), "{}", f.summary);
}

/// Sysmon 17/18 become pipes: every oracle row lands on its pipe, creators as servers and
/// connectors as clients.
#[test]
fn sysmon_pipe_events_feed_the_pipe_model() {
    let Some(dir) = common::corpus("evtx") else { return };
    let rows = common::read_tsv(&dir.join("oracle-pipes.tsv"));
    assert_eq!(rows.len(), 13);
    for file in ["DE_renamed_psexec_service_sysmon_17_18.evtx", "privesc_roguepotato_sysmon_17_18.evtx"] {
        let a = run(&[dir.join(file)], &Options::default());
        let mine: Vec<_> = rows.iter().filter(|r| r["file"] == file).collect();
        let opens: u64 = a.pipes.iter().map(|p| p.opens).sum();
        let creates: u64 = a.pipes.iter().map(|p| p.instances_created).sum();
        assert_eq!(opens as usize, mine.iter().filter(|r| r["event_id"] == "18").count(), "{file}");
        assert_eq!(creates as usize, mine.iter().filter(|r| r["event_id"] == "17").count(), "{file}");
        for r in mine {
            let name = format!("\\Device\\NamedPipe{}", r["PipeName"]);
            let pipe = a.pipes.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("{file}: no pipe {name}"));
            let pid: u32 = r["ProcessId"].parse().expect("pid");
            if r["event_id"] == "17" {
                assert_eq!(pipe.server_pid, Some(pid), "{name}");
            } else {
                assert!(pipe.client_pids.contains(&pid), "{name}: {:?}", pipe.client_pids);
            }
        }
    }
}

/// xorshift64*: deterministic lags for generated logs.
struct Rng(u64);
impl Rng {
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        lo + (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % (hi - lo) as u64) as i64
    }
}

/// A client log for a capture, written the way an application writes it: each connection the
/// server reset gets one 10054 line when the client's next call fails — at once when the client
/// was waiting for the reply to data it had just sent, else one send interval (0.1–2 s) later;
/// each refused connection a 10061 line at once. The clock is `shift_ms` ahead of UTC (a local
/// zone plus skew), milliseconds truncated as log4net writes them. Returns the log and the lines'
/// true lags (ms) behind their resets.
fn realistic_log(pcap: &Path, dir: &Path, shift_ms: i64, seed: u64) -> (PathBuf, Vec<i64>) {
    use ipcscope::model::{tcp_flags, Side};
    let a = run(&[pcap.to_path_buf()], &Options::default());
    let mut rng = Rng(seed);
    let mut lines: Vec<(i64, String)> = Vec::new();
    let mut true_lags = Vec::new();
    for c in &a.connections {
        let pk: Vec<_> = c.packets().collect();
        let Some(rst) = pk.iter().find(|p| p.side == Side::Server && p.flags & tcp_flags::RST != 0) else { continue };
        let refused = c.server_synack == 0 && c.server_bytes == 0;
        let waiting = pk
            .iter()
            .any(|p| p.side == Side::Client && p.payload_len > 0 && p.ts <= rst.ts && rst.ts - p.ts < 1_000_000_000);
        let lag_ns =
            if refused || waiting { rng.range(300_000, 5_000_000) } else { rng.range(100_000_000, 2_000_000_000) };
        true_lags.push(lag_ns / 1_000_000);
        let text = if refused {
            "ERROR [7] Client.Connection - connect failed: No connection could be made because the target machine actively refused it. (WSAECONNREFUSED 10061)"
        } else {
            "ERROR [7] Client.Sender - send failed: An existing connection was forcibly closed by the remote host. (WSAECONNRESET 10054)"
        };
        lines.push((rst.ts + lag_ns, text.to_string()));
        lines.push((rst.ts + lag_ns + 400_000_000, "INFO  [7] Client.Connection - reconnecting".into()));
    }
    lines.sort();
    let mut out = String::new();
    for (ts, text) in lines {
        let s = ipcscope::model::format_utc(ts + shift_ms * 1_000_000);
        out.push_str(&format!("{} {},{} {text}\n", &s[..10], &s[11..19], &s[20..23]));
    }
    let name = pcap.file_stem().and_then(|n| n.to_str()).unwrap_or("x");
    let path = dir.join(format!("{name}_realistic_{shift_ms}.log"));
    std::fs::write(&path, out).expect("write");
    (path, true_lags)
}

/// The failure cases: logs written when the application's next call fails (not at the
/// packet), in UTC and in local time +01:00 with a clock 0.8 s fast. The estimate comes from every
/// reset and refusal in the capture and sits on the lower envelope of the lags: within 50 ms when
/// some line was written promptly (a refusal, a reset the client was waiting on); when every line
/// lags by a send interval, the pairing is ambiguous within the lags, and the log says so.
#[test]
fn realistic_lags_in_utc_and_local_time_are_aligned() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut seed = 7;
    for name in ["stale_connection", "server_restart_refused", "abortive_close", "idle_reset", "keepalive_reset"] {
        for shift_ms in [0, 3_600_800] {
            seed += 1;
            let pcap = sample(&format!("{name}.pcap"));
            let (log, true_lags) = realistic_log(&pcap, dir.path(), shift_ms, seed);
            assert!(!true_lags.is_empty(), "{name}: no reset to write a line for");
            let a = run(&[pcap, log], &Options::default());
            let l = &a.logs[0];
            let want = shift_ms as f64 / 1000.0;
            let min_lag = *true_lags.iter().min().unwrap_or(&0) as f64 / 1000.0;
            let max_lag = *true_lags.iter().max().unwrap_or(&0) as f64 / 1000.0;
            eprintln!(
                "{name} shift {want}: estimated {:.3} ({}, confidence {}), min lag {min_lag} s, matched {}/{}, lags {:?} {}",
                l.offset_s,
                l.offset_source,
                l.confidence,
                l.matched_lines,
                true_lags.len(),
                l.lags,
                l.note
            );
            assert_eq!(l.offset_source, "estimated", "{name} {shift_ms}");
            assert_eq!(l.matched_lines as usize, true_lags.len(), "{name} {shift_ms}");
            assert_eq!(l.unexplained_errors, 0, "{name} {shift_ms}");
            let err = l.offset_s - want;
            if min_lag < 0.01 {
                assert!(err.abs() < 0.05, "{name}: shifted {want} s, estimated {} s", l.offset_s);
            } else {
                // Only delayed lines: the lines sit on the lower envelope, which lies between the
                // truth and the longest lag; the log says the evidence is weak.
                assert!(
                    err > -0.05 && err < 2.55,
                    "{name}: shifted {want}, estimated {} (lags up to {max_lag} s)",
                    l.offset_s
                );
                assert!(!l.note.is_empty() && l.confidence < 1.0, "{name}: {}", l.note);
            }
            let lags: u64 = l.lags.iter().map(|g| g.lines).sum();
            assert_eq!(lags, l.matched_lines);
        }
    }
}

/// Real captures (Chris Sanders, Practical Packet Analysis: `cs_*`; Suricata-Verify: `sv_*`)
/// with client logs generated from their resets as above, in local time +01:00 on a clock 0.8 s
/// fast: the clock is found from the capture's raw resets and refusals.
#[test]
fn realistic_lags_on_real_captures() {
    let Some(corpus) = common::corpus("pcap") else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let mut seed = 99;
    for name in [
        "cs_tcp_refuseconnection.pcapng",
        "sv_output-eve-ftp-data.pcap",
        "sv_smb2-09-trunc-file-logging.pcap",
        "sv_smb-filename.pcap",
        "sv_tls-subjectaltname.pcap",
    ] {
        seed += 1;
        let pcap = corpus.join(name);
        let (log, true_lags) = realistic_log(&pcap, dir.path(), 3_600_800, seed);
        if true_lags.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let a = run(&[pcap, log], &Options::default());
        let l = &a.logs[0];
        let err = l.offset_s - 3600.8;
        let prompt = true_lags.iter().any(|x| *x < 10);
        eprintln!(
            "{name}: {} lines, estimated {:.3} (error {:+.3} s, {}, confidence {}, {:?}), prompt line: {prompt}, {} ms; {}",
            true_lags.len(),
            l.offset_s,
            err,
            l.offset_source,
            l.confidence,
            l.lags,
            started.elapsed().as_millis(),
            l.note
        );
        assert_eq!(l.offset_source, "estimated", "{name}");
        assert_eq!(l.unexplained_errors, 0, "{name}");
        if prompt {
            assert!(err.abs() < 0.05, "{name}: error {err}");
        } else {
            assert!(err > -0.05 && err < 2.55 && !l.note.is_empty(), "{name}: error {err}");
        }
    }
}

/// Client logs written when the application's NEXT call fails (samples/generate.py
/// stale_next_call and stale_next_call_local): one-way senders ignore the crashed server's FIN,
/// their next send() goes out and is reset, and only the send() after that fails with 10054 and
/// is logged, one send interval after the RST. The log's true offset is known from the generator.
fn next_call_log(pcap: &str, log: &str) -> ipcscope::analysis::logs::LogFile {
    let a = run(&[sample(pcap), sample(log)], &Options::default());
    assert!(a.inputs.iter().all(|i| i.error.is_none()), "{:?}", a.inputs);
    a.logs.into_iter().next().expect("the log is read")
}

/// 1500+ lines in local time (UTC+01:00 without a zone, clock 0.8 s fast), a send every
/// 50–200 ms for 100 s and four server crashes: the offset is recovered within 50 ms.
#[test]
fn next_call_errors_in_a_long_local_log_give_the_offset_within_50ms() {
    let l = next_call_log("stale_next_call_local.pcap", "stale_next_call_local_client_local.log");
    assert!(l.lines >= 1500, "{} lines", l.lines);
    assert_eq!(l.offset_source, "estimated", "{}", l.note);
    assert!((l.offset_s - 3600.8).abs() < 0.05, "offset {} (want 3600.8), note: {}", l.offset_s, l.note);
}

/// Sends 0.1–2 s apart: each 10054 is logged 0.5–1.8 s after its RST (one crash, three channels).
/// The estimate only claims the next-call window: it may be up to the longest lag too late.
#[test]
fn next_call_errors_with_slow_sends_stay_within_the_next_call_window() {
    let l = next_call_log("stale_next_call.pcap", "stale_next_call_client_utc.log");
    assert_eq!(l.offset_source, "estimated", "{}", l.note);
    assert!(l.offset_s > -0.05 && l.offset_s < 2.0, "offset {} (true 0)", l.offset_s);
    assert!(!l.note.is_empty());
}

/// The target for the same log: within 50 ms. Not met yet: the estimator answers
/// +1.458 s (confidence 0.656, "ambiguous: +0.813 s to +1.458 s ... lower envelope is taken")
/// where the truth is 0; see the h9 report. Run with `--ignored`.
#[test]
#[ignore = "correlate.rs estimates +1.458 s for a log whose true offset is 0 (next-call lags 0.5-1.8 s)"]
fn next_call_errors_with_slow_sends_give_the_offset_within_50ms() {
    let l = next_call_log("stale_next_call.pcap", "stale_next_call_client_utc.log");
    assert!(l.offset_s.abs() < 0.05, "offset {} (true 0), note: {}", l.offset_s, l.note);
}
