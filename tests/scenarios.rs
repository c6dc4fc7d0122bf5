//! Golden findings for the project's own scenario captures (samples/*.pcap), like Zeek's btest
//! baselines. Each `tests/golden/NAME.findings.csv` lists the expected findings (kind, severity,
//! client, server, first_utc); a run must produce each of them (time within 1 s) and no other
//! warning or error. `IPCSCOPE_BLESS=1 cargo test --test scenarios` rewrites the baselines from the
//! current output (review the diff before committing).

mod common;

use std::path::PathBuf;

use ipcscope::analysis::{Analysis, Options};
use ipcscope::model::{format_utc, Severity};
use ipcscope::pipeline::{analyze_paths, NoProgress};

const SCENARIOS: &[&str] = &[
    "healthy",
    "stale_connection",
    "server_restart_refused",
    "abortive_close",
    "keepalive_timeout",
    "keepalive_reset",
    "port_exhaustion",
    "port_reuse",
    "idle_reset",
    "connect_timeout",
    "retransmission_timeout",
    "early_close",
    "port_scan",
    "zero_window_stall",
    "parallel_ports",
    // A capture started after the connections existed (no handshakes), the seed incident.
    "late_capture_stale",
    // Loss after the capture point (retransmissions) and packets the capture missed: no finding.
    "dropped_packets",
    // One-way senders that learn of the crash only at their next send().
    "stale_next_call",
    "stale_next_call_local",
];

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.findings.csv"))
}

fn analyze(name: &str) -> Analysis {
    let path = common::samples().join(format!("{name}.pcap"));
    assert!(path.exists(), "{} missing: run samples/generate.py", path.display());
    // With the client's log, as a user would run it: some findings need its evidence (10048 lines
    // are what confirms port exhaustion when the range is inferred from the capture).
    let log = common::samples().join(format!("{name}_client_utc.log"));
    let paths = if log.exists() { vec![path, log] } else { vec![path] };
    analyze_paths(&paths, &Options::default(), &NoProgress)
}

fn parse_utc(s: &str) -> i64 {
    // YYYY-MM-DDTHH:MM:SS.ffffffZ
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().expect("digits");
    let days = ipcscope::model::days_from_civil(n(0, 4), n(5, 7) as u32, n(8, 10) as u32);
    ((days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)) * 1_000_000 + n(20, 26)) * 1000
}

#[test]
fn scenario_findings_match_golden() {
    let bless = std::env::var_os("IPCSCOPE_BLESS").is_some();
    let mut failures = Vec::new();
    for name in SCENARIOS {
        let a = analyze(name);
        assert!(a.inputs[0].error.is_none(), "{name}: {:?}", a.inputs[0].error);
        if bless {
            let mut text = String::from("kind,severity,client,server,first_utc\n");
            for f in &a.findings {
                text.push_str(&format!(
                    "{},{},{},{},{}\n",
                    f.kind.name(),
                    f.severity.name(),
                    f.client,
                    f.server,
                    format_utc(f.first_ts)
                ));
            }
            std::fs::write(golden_path(name), text).expect("write golden");
            continue;
        }
        let golden = std::fs::read_to_string(golden_path(name)).expect("golden file");
        let mut matched = vec![false; a.findings.len()];
        for row in golden.lines().skip(1).filter(|l| !l.is_empty()) {
            let cols: Vec<&str> = row.split(',').collect();
            let (kind, severity, client, server, at) = (cols[0], cols[1], cols[2], cols[3], parse_utc(cols[4]));
            let hit = a.findings.iter().enumerate().find(|(i, f)| {
                !matched[*i]
                    && f.kind.name() == kind
                    && f.severity.name() == severity
                    && f.client == client
                    && f.server == server
                    && (f.first_ts - at).abs() <= 1_000_000_000
            });
            match hit {
                Some((i, _)) => matched[i] = true,
                None => failures.push(format!("{name}: expected {row}")),
            }
        }
        for (f, m) in a.findings.iter().zip(&matched) {
            if !m && f.severity != Severity::Info {
                failures.push(format!(
                    "{name}: unexpected {} {} {} {}: {}",
                    f.severity.name(),
                    f.kind.name(),
                    f.client,
                    f.server,
                    f.summary
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every finding carries its proof: evidence frames that exist, and a filter that selects them.
#[test]
fn findings_carry_evidence_filters_and_advice() {
    for name in SCENARIOS {
        let a = analyze(name);
        for f in &a.findings {
            assert!(!f.evidence.is_empty(), "{name} {}: no evidence", f.kind.name());
            assert!(f.evidence.len() <= 8, "{name} {}: {} evidence frames", f.kind.name(), f.evidence.len());
            assert!(f.evidence.iter().all(|e| e.frame >= 1 && e.frame <= a.inputs[0].packets));
            assert!(f.wireshark_filter.starts_with("tcp.stream"), "{name}: {}", f.wireshark_filter);
            assert!(!f.summary.is_empty() && !f.advice.is_empty());
            // The filter names exactly the finding's connections.
            for id in &f.connections {
                let c = a.connections.iter().find(|c| c.id == *id).expect("connection");
                assert!(f.wireshark_filter.contains(&c.stream.to_string()));
            }
        }
    }
}

/// The seed's questions are answered from the capture, including why not.
#[test]
fn verdicts_answer_the_seed_questions() {
    let a = analyze("stale_connection");
    let v = |q: &str| a.verdicts.iter().find(|v| v.question == q).unwrap_or_else(|| panic!("{q}"));
    assert_eq!(v("peer_process").answer, "yes");
    assert_eq!(v("abortive_close").answer, "no");
    assert!(v("abortive_close").reason.contains("FIN"), "{}", v("abortive_close").reason);
    assert_eq!(v("keepalive").answer, "no");
    assert_eq!(v("port_exhaustion").answer, "no");
    assert!(v("port_exhaustion").reason.starts_with("ports: at most"), "{}", v("port_exhaustion").reason);
    assert!(a.resets.iter().all(|r| r.classification == "stale_connection"), "{:?}", a.resets);

    let a = analyze("abortive_close");
    let v = |q: &str| a.verdicts.iter().find(|v| v.question == q).unwrap_or_else(|| panic!("{q}")).answer;
    assert_eq!(v("abortive_close"), "yes");
    assert_eq!(v("peer_process"), "no");

    let a = analyze("port_exhaustion");
    assert_eq!(a.verdicts.iter().find(|v| v.question == "port_exhaustion").map(|v| v.answer), Some("yes"));
}

/// Healthy public captures give no warning or error findings, and every reset in the corpus is
/// classified. Surprising classifications are explained here.
#[test]
fn corpus_resets_are_classified_sensibly() {
    let Some(dir) = common::corpus("pcap") else { return };
    for healthy in [
        "zeek_ftp_ipv6.pcap",
        "zeek_tcp_handshake-reorder.pcap",
        "zeek_tcp_missing-syn.pcap",
        "sv_decode-sll2-02.pcap",
        "zeek_echo-connections.pcap.gz",
    ] {
        let a = analyze_paths(&[dir.join(healthy)], &Options::default(), &NoProgress);
        let bad: Vec<_> = a.findings.iter().filter(|f| f.severity != Severity::Info).map(|f| &f.summary).collect();
        assert!(bad.is_empty(), "{healthy}: {bad:?}");
    }
    let class = |file: &str| -> Vec<(u64, String)> {
        let a = analyze_paths(&[dir.join(file)], &Options::default(), &NoProgress);
        let mut r: Vec<(u64, String)> = a.resets.iter().map(|r| (r.frame, r.classification.clone())).collect();
        r.sort();
        r
    };
    let owned = |v: &[(u64, &str)]| v.iter().map(|(f, c)| (*f, c.to_string())).collect::<Vec<_>>();
    // syn-then-rst: the client resets its own SYN (Zeek history "SR"): nothing to explain it.
    assert_eq!(class("zeek_tcp_syn-then-rst.pcap"), owned(&[(2, "unexplained")]));
    // retransmit-fast009: after the transfer and 60 s idle the *client* resets its own idle
    // connection (Zeek RSTO): an abortive close by the client (info), not a middlebox.
    assert_eq!(class("zeek_tcp_retransmit-fast009.pcap"), owned(&[(39, "abortive_close")]));
    // rst-inject-rae: a forged RST/ACK answers the SYN although the real SYN/ACK follows (no
    // refusal, no close: unexplained, as it should be for an injected reset); then the server
    // resets mid-exchange (abortive) and resets the client's next data again.
    assert_eq!(
        class("zeek_tcp_rst-inject-rae.pcap"),
        owned(&[(2, "unexplained"), (7, "abortive_close"), (9, "repeated_reset")])
    );
    // 206_example_b: the web server retransmits the same segment with back-off for a minute and
    // hears nothing from the client, then resets (retransmission_timeout); on the other connection
    // the client answers the server's FIN with a RST 26 s later (abortive close, info).
    assert_eq!(
        class("zeek_http_206_example_b.pcap"),
        owned(&[(1302, "retransmission_timeout"), (1556, "abortive_close")])
    );
    // smb: the Windows client resets its four SMB connections at logoff: abortive closes (info).
    assert!(class("zeek_smb_v2_only_non_zero_reserved1.pcap").iter().all(|(_, c)| c == "abortive_close"));
    // A lone RST with nothing before it cannot be explained.
    assert_eq!(class("zeek_tcp_single-rst.pcap"), owned(&[(1, "unexplained")]));
}
