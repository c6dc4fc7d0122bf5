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
use ipcscope::pipeline::{analyze_paths, analyze_sources, NoProgress, Source};

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
    // summary.json inputs[] carries the clock facts.
    let summary = ipcscope::report::summary::summary_json(&a);
    let extra = &summary["inputs"][server_input as usize];
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
fn pairs_that_share_nothing_with_the_first_capture_get_their_own_reference() {
    // The three staged pairs in one run (a case folder of several hosts' captures): the injected and
    // NAT pairs share no connection with the healthy client's capture, so each pair is aligned to
    // its own client capture, and each gives its middlebox_reset.
    let paths: Vec<PathBuf> = ["healthy", "injected", "nat"].iter().flat_map(|n| pair(n)).collect();
    let a = analyze_paths(&paths, &Options::default(), &NoProgress);
    let by_input: Vec<(u32, OffsetSource, u32)> =
        a.twosided.clocks.iter().map(|c| (c.input, c.source, c.reference)).collect();
    use OffsetSource::{Estimated, Reference};
    assert_eq!(
        by_input,
        vec![
            (0, Reference, 0),
            (1, Estimated, 0),
            (2, Reference, 2),
            (3, Estimated, 2),
            (4, Reference, 4),
            (5, Estimated, 4)
        ]
    );
    for c in a.twosided.clocks.iter().filter(|c| c.source == Estimated) {
        let off = c.offset_ns.expect("estimated");
        assert!((off - 3_217_000_000).abs() < 1_000_000, "input {}: offset {off} ns", c.input);
    }
    assert_eq!(kinds(&a), vec![(FindingKind::MiddleboxReset, Severity::Error); 2]);
    let summary = ipcscope::report::summary::summary_json(&a);
    assert_eq!(summary["inputs"][3]["clock_reference"], "twosided_injected_client.pcap");
    assert!(summary["inputs"][1].get("clock_reference").is_none(), "the first pair needs no reference named");
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
    assert_eq!(ipcscope::report::summary::summary_json(&a)["inputs"][1]["offset_source"], "user");
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

/// A classic little-endian pcap with every record's timestamp moved by `shift_us` (µs captures) —
/// a second sensor whose clock is off. `None` for other formats.
fn shifted_pcap(bytes: &[u8], shift_us: i64) -> Option<Vec<u8>> {
    let nanos = match bytes.get(0..4)? {
        [0xd4, 0xc3, 0xb2, 0xa1] => false,
        [0x4d, 0x3c, 0xb2, 0xa1] => true,
        _ => return None,
    };
    let unit = if nanos { 1_000_000_000 } else { 1_000_000 };
    let shift = if nanos { shift_us * 1000 } else { shift_us };
    let mut out = bytes.to_vec();
    let mut at = 24;
    while at + 16 <= out.len() {
        let rd = |o: usize| u32::from_le_bytes(out[o..o + 4].try_into().unwrap()) as i64;
        let t = rd(at) * unit + rd(at + 4) + shift;
        let incl = rd(at + 8) as usize;
        out[at..at + 4].copy_from_slice(&((t / unit) as u32).to_le_bytes());
        out[at + 4..at + 8].copy_from_slice(&((t % unit) as u32).to_le_bytes());
        at += 16 + incl;
    }
    Some(out)
}

/// A real capture and a copy of it with its clock 3.217 s ahead, as from a second sensor on the
/// same link: every connection is matched to itself, the offset is recovered exactly (no delay
/// between the "two" sensors), and no finding is reported twice.
#[test]
fn real_capture_seen_by_a_second_sensor_with_an_offset_clock() {
    let Some(dir) = common::corpus("pcap") else { return };
    let path = dir.join("sv_tls-subjectaltname.pcap");
    let bytes = std::fs::read(&path).expect("corpus capture");
    let shifted = shifted_pcap(&bytes, 3_217_000).expect("a classic pcap");
    let single = analyze_paths(&[path.clone()], &Options::default(), &NoProgress);
    let sources = vec![Source::File(path), Source::Memory { name: "second_sensor.pcap".into(), bytes: shifted }];
    let a = analyze_sources(sources, &Options::default(), &NoProgress);
    let clock = &a.twosided.clocks[1];
    assert_eq!(clock.source, OffsetSource::Estimated);
    assert_eq!(clock.offset_ns, Some(SHIFT_NS), "{clock:?}");
    assert_eq!(clock.matched_connections, single.connections.len(), "every connection matched to itself");
    assert!(a.twosided.shared.iter().all(|s| s.client_end.is_none() && s.lost_count + s.injected_count == 0));
    assert_eq!(kinds(&a), kinds(&single), "findings merged across the views, none twice");
    for (f, g) in a.findings.iter().zip(&single.findings) {
        assert_eq!((f.first_ts, &f.client, &f.server), (g.first_ts, &g.client, &g.server), "on the reference clock");
    }
}

/// The connection details show a shared connection's two captures: the comparison lines and the
/// two aligned rows (egui_kittest, headless).
#[test]
fn details_show_the_two_captures_of_a_shared_connection() {
    use egui_kittest::kittest::Queryable;
    let a = analyze_paths(&pair("injected"), &Options::default(), &NoProgress);
    let s = a.twosided.shared.iter().find(|s| s.injected_count > 0).unwrap().clone();
    let lines = ipcscope::gui::twosided::lines(&a, &s);
    let mut h = egui_kittest::Harness::builder()
        .with_size(eframe::egui::Vec2::new(900.0, 300.0))
        .allow_missing_glyphs()
        .build_ui(|ui| {
            ipcscope::gui::twosided::show_views(ui, &a, s.view);
        });
    h.run();
    h.get_by_label("Two captures");
    h.get_by_label(&format!("lost in between: {}, injected: 1", s.lost_count));
    h.get_by_label("first RST seen by twosided_injected_client.pcap (frame 21)");
    assert!(lines[1].contains("client's end: twosided_injected_client.pcap"), "{lines:?}");
}

/// The standing question "was it a middlebox?" is answered by the two-sided proof.
#[test]
fn middlebox_verdict_follows_the_proof() {
    let a = analyze_paths(&pair("injected"), &Options::default(), &NoProgress);
    let v = a.verdicts.iter().find(|v| v.question == "middlebox_idle_timeout").unwrap();
    assert_eq!(v.answer, "yes", "{v:?}");
    let client = pair("injected").remove(0);
    let a = analyze_paths(&[client], &Options::default(), &NoProgress);
    let v = a.verdicts.iter().find(|v| v.question == "middlebox_idle_timeout").unwrap();
    assert_eq!(v.answer, "unknown", "one capture only suspects it: {v:?}");
}
