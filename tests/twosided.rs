//! Two-sided captures (issue 15) on the staged samples of `samples/make_twosided_samples.sh`: one
//! client/server exchange captured at both ends through a router (private namespaces, real
//! sockets), the server capture's clock shifted by +3.217 s with `editcap -t`. The router's
//! firewall injects a reset (`injected`), the same behind NAT (`nat`), or nothing (`healthy`).
//! The single-capture heuristic is also walked over every real capture of the corpus.

mod common;

use std::path::PathBuf;

use ipcscope::analysis::twosided::OffsetSource;
use ipcscope::analysis::{Analysis, Options};
use ipcscope::model::tcp_flags::RST;
use ipcscope::model::{FindingKind, Severity, Side};
use ipcscope::pipeline::{analyze_paths, NoProgress};

/// The shift `editcap -t` gave every server capture.
const SHIFT_NS: i64 = 3_217_000_000;

fn pair(name: &str) -> Vec<PathBuf> {
    let dir = common::samples().join("twosided");
    vec![dir.join(format!("twosided_{name}_client.pcap")), dir.join(format!("twosided_{name}_server.pcap"))]
}

fn kinds(a: &Analysis) -> Vec<(FindingKind, Severity)> {
    let mut v: Vec<_> = a.findings.iter().map(|f| (f.kind, f.severity)).collect();
    v.sort();
    v
}

/// The server capture's offset is recovered within 1 ms, both connections match, and every
/// connection names both inputs.
fn check_alignment(a: &Analysis, server_input: u32, expected_offset_ns: i64) {
    let clock = a.twosided.clocks.iter().find(|c| c.input == server_input).expect("server clock");
    assert_eq!(clock.source, OffsetSource::Estimated);
    let off = clock.offset_ns.expect("offset estimated");
    assert!((off - expected_offset_ns).abs() < 1_000_000, "offset {off} ns, expected {expected_offset_ns}");
    let err = clock.error_ns.expect("error bound");
    assert!(err < 1_000_000 && (off - expected_offset_ns).abs() <= err + 1_000, "bound {err} ns holds");
    assert!(clock.consistent);
    assert_eq!(clock.matched_connections, 2);
    assert_eq!(a.twosided.shared.len(), 2);
    assert_eq!(a.connections.len(), 4);
    for c in &a.connections {
        assert_eq!(a.twosided.seen_in(c), vec![0, 1], "connection {} seen in both", c.id);
    }
    let extra = &a.inputs[server_input as usize].extra;
    assert_eq!(extra["offset_source"], "estimated");
    assert_eq!(extra["matched_connections"], 2);
    let s = extra["clock_offset_s"].as_f64().unwrap();
    assert!((s - expected_offset_ns as f64 / 1e9).abs() < 1e-3);
    // On one clock: a view starts within a millisecond of its connection.
    for s in &a.twosided.shared {
        let p = a.connections.iter().find(|c| c.id == s.primary).unwrap();
        let v = a.connections.iter().find(|c| c.id == s.view).unwrap();
        assert!((p.first_ts - v.first_ts).abs() < 1_000_000, "aligned first packets");
        assert!(s.matched_packets >= 10);
        let d = s.delay_client_to_server.expect("client→server delay");
        assert!(d.min_ns > 0 && d.median_ns < 1_000_000, "{d:?}");
    }
}

#[test]
fn healthy_pair_is_aligned_and_has_no_finding() {
    let a = analyze_paths(&pair("healthy"), &Options::default(), &NoProgress);
    check_alignment(&a, 1, SHIFT_NS);
    assert!(a.findings.is_empty(), "{:?}", kinds(&a));
    for s in &a.twosided.shared {
        assert_eq!((s.lost_count, s.injected_count), (0, 0), "nothing lost or injected");
        assert_eq!(s.client_end, Some(0));
        assert!(s.first_rst.is_none());
    }
}

fn check_injected(a: &Analysis, nat: bool) {
    assert_eq!(kinds(a), vec![(FindingKind::MiddleboxReset, Severity::Error)], "{:#?}", a.findings);
    let f = &a.findings[0];
    // The injected RST in the client capture, and the server capture's evidence beside it.
    assert!(f.evidence.iter().any(|e| e.input == 0) && f.evidence.iter().any(|e| e.input == 1));
    assert!(f.summary.contains("TTL 64") && f.summary.contains("TTL 127"), "{}", f.summary);
    assert!(f.advice.contains("keep-alive") && f.advice.contains("NAT"));
    assert_eq!(f.connections.len(), 2, "the connection and its view");
    let s = a.twosided.shared.iter().find(|s| s.injected_count > 0).expect("a connection with an injected packet");
    assert_eq!(s.injected_count, 1);
    let rst = s.injected[0];
    assert_eq!((rst.input, rst.side, rst.flags & RST != 0), (0, Side::Server, true));
    assert_eq!(s.first_rst.map(|r| (r.input, r.frame)), Some((0, rst.frame)), "the client's end saw the RST first");
    assert_eq!(s.client_end, Some(0));
    // The request the firewall answered never reached the server; the client's later resets neither.
    assert!(s.lost.iter().any(|p| p.side == Side::Client && p.len == 10 && p.ts < rst.ts));
    assert!(s.lost.iter().any(|p| p.side == Side::Client && p.flags & RST != 0));
    // Every reset has its explanation: none is left to another detector.
    assert!(a.resets.iter().filter(|r| r.input == 0).all(|r| r.classification == "middlebox_reset"), "{:?}", a.resets);
    let view = a.connections.iter().find(|c| c.id == s.view).unwrap();
    if nat {
        assert_eq!(s.by.name(), "ISNs and server port");
        assert_eq!(view.client.ip.to_string(), "10.215.2.1", "the server saw the router's address");
    } else {
        assert_eq!(s.by.name(), "4-tuple");
    }
}

#[test]
fn injected_reset_is_a_middlebox_reset() {
    let a = analyze_paths(&pair("injected"), &Options::default(), &NoProgress);
    check_alignment(&a, 1, SHIFT_NS);
    check_injected(&a, false);
}

#[test]
fn injected_reset_through_nat_is_matched_by_isns() {
    let a = analyze_paths(&pair("nat"), &Options::default(), &NoProgress);
    check_alignment(&a, 1, SHIFT_NS);
    check_injected(&a, true);
}

#[test]
fn server_capture_first_is_the_reference() {
    let mut inputs = pair("injected");
    inputs.reverse();
    let a = analyze_paths(&inputs, &Options::default(), &NoProgress);
    assert_eq!(a.twosided.clocks[0].source, OffsetSource::Reference);
    check_alignment(&a, 1, -SHIFT_NS);
    assert_eq!(kinds(&a), vec![(FindingKind::MiddleboxReset, Severity::Error)]);
    let s = a.twosided.shared.iter().find(|s| s.injected_count > 0).unwrap();
    assert_eq!(s.client_end, Some(1));
}

#[test]
fn user_clock_offset_overrides_the_estimate() {
    let options = Options { clock_offsets: vec![("twosided_injected_server.pcap".into(), 3.2)], ..Default::default() };
    let a = analyze_paths(&pair("injected"), &options, &NoProgress);
    let clock = &a.twosided.clocks[1];
    assert_eq!((clock.source, clock.offset_ns), (OffsetSource::User, Some(3_200_000_000)));
    assert_eq!(a.inputs[1].extra["offset_source"], "user");
    // 17 ms off still leaves every packet on the right side of its peer's.
    assert_eq!(kinds(&a), vec![(FindingKind::MiddleboxReset, Severity::Error)]);
}

#[test]
fn one_capture_alone_suspects_the_reset_by_its_hop_count() {
    let [client, server] = <[PathBuf; 2]>::try_from(pair("injected")).unwrap();
    let a = analyze_paths(&[client], &Options::default(), &NoProgress);
    let suspected: Vec<_> = a.findings.iter().filter(|f| f.kind == FindingKind::SuspectedMiddleboxReset).collect();
    assert_eq!(suspected.len(), 1, "{:#?}", a.findings);
    assert_eq!(suspected[0].severity, Severity::Warning);
    assert!(suspected[0].summary.contains("TTL 64 (initial 64, 0 hops)") && suspected[0].summary.contains("TTL 127"));
    assert!(a.twosided.clocks.is_empty(), "one capture: no clock alignment");
    // The server's end never saw a reset: nothing to suspect there, nor on a healthy capture.
    let a = analyze_paths(&[server], &Options::default(), &NoProgress);
    assert!(a.findings.iter().all(|f| f.kind != FindingKind::SuspectedMiddleboxReset));
    for p in pair("healthy") {
        let a = analyze_paths(&[p], &Options::default(), &NoProgress);
        assert!(a.findings.is_empty(), "{:?}", kinds(&a));
    }
}

/// No real capture of the corpus gets a suspected_middlebox_reset unless tests/expect/corpus.tsv
/// says why (rows of the TShark oracle, as corpus_expectations.rs walks them). Results on the
/// `cs_*` captures: Chris Sanders, Practical Packet Analysis.
#[test]
fn corpus_captures_have_no_suspected_middlebox_reset_unless_expected() {
    let Some(dir) = common::corpus("pcap") else { return };
    let expect = common::read_tsv(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/expect/corpus.tsv"));
    let mut walked = 0;
    let mut bad = Vec::new();
    for row in common::read_tsv(&dir.join("tshark-oracle.tsv")) {
        let file = &row["file"];
        let expected = expect.iter().find(|r| &r["file"] == file).map(|r| r["expected"].clone()).unwrap_or_default();
        let a = analyze_paths(&[dir.join(file)], &Options::default(), &NoProgress);
        let n = a.findings.iter().filter(|f| f.kind == FindingKind::SuspectedMiddleboxReset).count();
        if n > 0 && !expected.contains("suspected_middlebox_reset") {
            bad.push(format!("{file}: {n} suspected_middlebox_reset"));
        }
        walked += 1;
    }
    assert!(walked > 0, "the oracle lists captures");
    assert!(bad.is_empty(), "{bad:#?}");
}
