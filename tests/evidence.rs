//! `--evidence`: per-finding pcapng files hold exactly the evidence connections' frames (same bytes,
//! same times, same link type) and one packet comment per evidence frame. Checked against the
//! original captures read independently here with pcap-parser, and with tshark when installed.
//! `cs_*` captures: Chris Sanders, Practical Packet Analysis.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use ipcscope::analysis::Options;
use ipcscope::ingest::decode::decode_frame;
use ipcscope::pipeline;
use ipcscope::report::evidence;

/// One packet as read back: frame number, link type, time (ns), bytes, comment.
#[derive(Debug, Clone, PartialEq)]
struct Pkt {
    frame: u64,
    linktype: u32,
    ts_ns: i128,
    data: Vec<u8>,
    comments: Vec<String>,
}

/// Every packet of a pcap or pcapng file (plain, or gzip).
fn read_all(path: &Path) -> Vec<Pkt> {
    let raw = std::fs::read(path).unwrap();
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut out).unwrap();
        out
    } else {
        raw
    };
    let ng = bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]);
    let mut rd: Box<dyn PcapReaderIterator> = if ng {
        Box::new(PcapNGReader::new(1 << 20, &bytes[..]).unwrap())
    } else {
        Box::new(LegacyPcapReader::new(1 << 20, &bytes[..]).unwrap())
    };
    let mut out = Vec::new();
    let (mut lt, mut nanos) = (1u32, false);
    let mut ifs: Vec<(u32, u64, i64)> = Vec::new();
    loop {
        match rd.next() {
            Ok((len, b)) => {
                match b {
                    PcapBlockOwned::LegacyHeader(h) => {
                        lt = h.network.0 as u32;
                        nanos = h.is_nanosecond_precision();
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let sub = if nanos { b.ts_usec as i128 } else { b.ts_usec as i128 * 1000 };
                        out.push(Pkt {
                            frame: out.len() as u64 + 1,
                            linktype: lt,
                            ts_ns: b.ts_sec as i128 * 1_000_000_000 + sub,
                            data: b.data[..b.caplen as usize].to_vec(),
                            comments: vec![],
                        });
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => ifs.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(i)) => {
                        ifs.push((i.linktype.0 as u32, i.ts_resolution().unwrap(), i.ts_offset()))
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(e)) => {
                        let (lt, units, off) = ifs[e.if_id as usize];
                        let ticks = ((e.ts_high as u128) << 32) | e.ts_low as u128;
                        let comments = e
                            .options
                            .iter()
                            .filter(|o| o.code.0 == 1)
                            .map(|o| String::from_utf8(o.value[..o.len as usize].to_vec()).unwrap())
                            .collect();
                        out.push(Pkt {
                            frame: out.len() as u64 + 1,
                            linktype: lt,
                            ts_ns: (ticks * 1_000_000_000 / units as u128) as i128 + off as i128 * 1_000_000_000,
                            data: e.data[..e.caplen as usize].to_vec(),
                            comments,
                        });
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                rd.consume(len);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => rd.refill().unwrap(),
            Err(e) => panic!("{}: {e:?}", path.display()),
        }
    }
    out
}

fn tshark() -> bool {
    std::process::Command::new("tshark").arg("-v").output().map(|o| o.status.success()).unwrap_or(false)
}

/// For each capture: analyse it, write the evidence, and check every finding's file.
fn check(file: &Path) -> (usize, u64) {
    let analysis = pipeline::analyze_paths(&[file.to_path_buf()], &Options::default(), &pipeline::NoProgress);
    assert!(!analysis.findings.is_empty(), "{}: expected findings", file.display());
    let dir = tempfile::tempdir().unwrap();
    let report = evidence::write_evidence(&analysis, dir.path()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let original = read_all(file);
    let mut packets_total = 0;
    let mut tshark_runs = 0;
    for f in &analysis.findings {
        // Expected: the frames of the finding's connections (4-tuple within their frame range), plus
        // its evidence frames. None of these connections is long enough to be windowed.
        let conns: Vec<_> = analysis.connections.iter().filter(|c| f.connections.contains(&c.id)).collect();
        assert!(conns
            .iter()
            .all(|c| u64::from(c.client_packets) + u64::from(c.server_packets) <= evidence::LONG_CONNECTION));
        let ev_frames: BTreeSet<u64> = f.evidence.iter().filter(|e| e.input == 0).map(|e| e.frame).collect();
        let expected: Vec<&Pkt> = original
            .iter()
            .filter(|p| {
                ev_frames.contains(&p.frame)
                    || decode_frame(p.linktype, &p.data).is_some_and(|d| {
                        conns.iter().any(|c| {
                            p.frame >= c.first_frame
                                && p.frame <= c.last_frame
                                && ((d.src == c.client && d.dst == c.server)
                                    || (d.src == c.server && d.dst == c.client))
                        })
                    })
            })
            .collect();
        let written = report.files.iter().find(|w| w.finding_id == f.id);
        if expected.is_empty() {
            assert!(written.is_none() && report.without_packets.contains(&f.id));
            continue;
        }
        let w = written.unwrap_or_else(|| panic!("finding {} ({}) has no evidence file", f.id, f.kind.name()));
        assert_eq!(w.path, dir.path().join(evidence::file_name(f)));
        let back = read_all(&w.path);
        assert_eq!(back.len(), expected.len(), "finding {} {}: packet count", f.id, f.kind.name());
        assert_eq!(w.packets, back.len() as u64);
        for (b, e) in back.iter().zip(&expected) {
            assert_eq!(
                (b.linktype, b.ts_ns, &b.data),
                (e.linktype, e.ts_ns, &e.data),
                "finding {} frame {}",
                f.id,
                e.frame
            );
            if ev_frames.contains(&e.frame) {
                assert_eq!(b.comments, vec![evidence::comment(f)], "frame {} of finding {}", e.frame, f.id);
                assert!(b.comments[0].contains(f.kind.name()) && b.comments[0].contains(&f.summary));
            } else {
                assert!(b.comments.is_empty(), "frame {} is not evidence but carries a comment", e.frame);
            }
        }
        let commented = back.iter().filter(|p| !p.comments.is_empty()).count() as u64;
        assert_eq!(commented, ev_frames.len() as u64, "one comment per evidence frame");
        assert_eq!(w.comments, commented);
        // tshark on the first few files of each capture only: one start costs a second or more.
        if tshark_runs < 3 && tshark() {
            tshark_runs += 1;
            let out = std::process::Command::new("tshark")
                .args(["-r"])
                .arg(&w.path)
                .args(["-Y", "frame.comment", "-T", "fields", "-e", "frame.comment"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(text.lines().count() as u64, commented, "tshark -Y frame.comment on {}", w.path.display());
            assert!(text.lines().all(|l| l.starts_with(&format!("ipcscope finding {} {}", f.id, f.kind.name()))));
        }
        packets_total += back.len() as u64;
    }
    (report.files.len(), packets_total)
}

#[test]
fn evidence_files_hold_exactly_the_evidence_connections() {
    let Some(dir) = common::corpus("pcap") else { return };
    // pcapng (Ethernet, µs), legacy pcap (many findings), a gzip'd pcap, a nanosecond pcapng.
    let mut by_file = BTreeMap::new();
    for name in [
        "cs_tcp_refuseconnection.pcapng",
        "cs_synscan.pcapng",
        "sv_output-eve-ftp-data.pcap",
        "sv_smb2-07_psexec_pipes.pcap",
        "zeek_krb_kerberos_tso.pcapng",
        "zeek_tcp_rst-inject-rae.pcap",
    ] {
        let path = dir.join(name);
        if path.exists() {
            by_file.insert(name, check(&path));
        }
    }
    eprintln!("{by_file:?}");
    assert!(by_file.values().any(|&(files, _)| files > 1));
    assert!(by_file.values().all(|&(files, packets)| files > 0 && packets > 0));
}

#[test]
fn help_names_every_input_format_and_output_file() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ipcscope")).args(["analyze", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "pcapng",
        ".etl",
        ".evtx",
        "text logs",
        "summary.json",
        "connections.csv",
        "findings.csv",
        "pipes.csv",
        "log_events.csv",
        "--evidence",
        "Examples:",
    ] {
        assert!(text.contains(word), "--help does not name {word}:\n{text}");
    }
    assert!(text.matches("  ipcscope analyze ").count() >= 2, "two examples");
}

/// A PktMon trace's packets go into evidence files as a capture's do: every packet event is a frame
/// (numbered as etl2pcapng numbers them), with its link type, time and bytes, and one comment per
/// evidence frame. Expected frames come from the trace read here with the ETL reader.
#[test]
fn trace_packets_are_exported_like_capture_packets() {
    use ipcscope::ingest::decode::linktype;
    use ipcscope::ingest::etl::{decode_pktmon_packet, EtlReader, DEFAULT_MERGE_WINDOW};
    let file = common::samples().join("pktmon_stale_connection.etl");
    let analysis = pipeline::analyze_paths(std::slice::from_ref(&file), &Options::default(), &pipeline::NoProgress);
    let dir = tempfile::tempdir().unwrap();
    let report = evidence::write_evidence(&analysis, dir.path()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // (frame, link type, ns, bytes) of every PktMon packet event, in trace order.
    type Tuple = (ipcscope::model::Endpoint, ipcscope::model::Endpoint);
    let mut events: Vec<(u64, u32, i128, Vec<u8>, Option<Tuple>)> = Vec::new();
    let etl = EtlReader::new(std::io::BufReader::new(std::fs::File::open(&file).unwrap())).unwrap();
    for rec in etl.time_ordered_window(DEFAULT_MERGE_WINDOW).flatten() {
        if rec.header.record_index == 0 {
            continue;
        }
        if let Some(p) = decode_pktmon_packet(&rec.as_ref()) {
            let tuple = p.network_bytes().and_then(|b| decode_frame(linktype::RAW, b)).map(|d| (d.src, d.dst));
            let frame = events.len() as u64 + 1;
            events.push((frame, p.link_type().unwrap(), p.origin.utc() as i128, p.payload.to_vec(), tuple));
        }
    }
    assert!(!events.is_empty());
    let mut files = 0;
    for f in &analysis.findings {
        let conns: Vec<_> = analysis.connections.iter().filter(|c| f.connections.contains(&c.id)).collect();
        let ev_frames: BTreeSet<u64> = f.evidence.iter().filter(|e| e.input == 0).map(|e| e.frame).collect();
        let expected: Vec<_> = events
            .iter()
            .filter(|(frame, _, _, _, tuple)| {
                ev_frames.contains(frame)
                    || tuple.is_some_and(|(s, d)| {
                        conns.iter().any(|c| {
                            *frame >= c.first_frame
                                && *frame <= c.last_frame
                                && ((s == c.client && d == c.server) || (s == c.server && d == c.client))
                        })
                    })
            })
            .collect();
        let Some(w) = report.files.iter().find(|w| w.finding_id == f.id) else {
            assert!(expected.is_empty(), "finding {} ({}) has no evidence file", f.id, f.kind.name());
            continue;
        };
        files += 1;
        let back = read_all(&w.path);
        assert_eq!(back.len(), expected.len(), "finding {} {}: packet count", f.id, f.kind.name());
        for (b, e) in back.iter().zip(&expected) {
            assert_eq!((b.linktype, b.ts_ns, &b.data), (e.1, e.2, &e.3), "finding {} frame {}", f.id, e.0);
            let is_evidence = ev_frames.contains(&e.0);
            assert_eq!(b.comments.len(), usize::from(is_evidence), "frame {} of finding {}", e.0, f.id);
        }
        let commented = back.iter().filter(|p| !p.comments.is_empty()).count() as u64;
        assert_eq!(commented, ev_frames.len() as u64, "one comment per evidence frame");
        assert_eq!(w.comments, commented);
        if tshark() {
            let out = std::process::Command::new("tshark")
                .args(["-r"])
                .arg(&w.path)
                .args(["-Y", "frame.comment", "-T", "fields", "-e", "frame.comment"])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count() as u64, commented);
        }
    }
    assert!(files > 0, "the stale-connection trace's findings have packet evidence");
    eprintln!("pktmon_stale_connection.etl: {files} evidence files from the trace");
}

/// A netsh trace's NDIS-PacketCapture frames (fragments joined) are exported like a capture's: a
/// finding about the trace's one TCP connection gets all its frames, as the trace's NDIS frames
/// assembled here, with a comment on its evidence frame. (The sample has no finding of its own.)
#[test]
fn ndis_frames_of_a_trace_are_exported() {
    use ipcscope::ingest::etl::{decode_ndis_fragment, EtlReader, FrameAssembler, DEFAULT_MERGE_WINDOW};
    use ipcscope::model::{EvidenceRef, Finding, FindingKind, Severity};
    let file = common::samples().join("pipes_after_tcp.etl");
    let mut analysis = pipeline::analyze_paths(std::slice::from_ref(&file), &Options::default(), &pipeline::NoProgress);
    let c = analysis.connections.first().expect("the NDIS frames' connection").clone();
    analysis.findings = vec![Finding {
        id: 1,
        kind: FindingKind::AbortiveClose,
        severity: Severity::Info,
        first_ts: c.first_ts,
        last_ts: c.last_ts,
        client: c.client.to_string(),
        server: c.server.to_string(),
        pipe: String::new(),
        pid: String::new(),
        count: 1,
        evidence: vec![EvidenceRef { input: 0, frame: c.last_frame }],
        wireshark_filter: String::new(),
        log_lines: vec![],
        summary: "made up for the test".into(),
        advice: String::new(),
        connections: vec![c.id],
    }];
    let dir = tempfile::tempdir().unwrap();
    let report = evidence::write_evidence(&analysis, dir.path()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let mut frames = Vec::new();
    let mut assembler = FrameAssembler::default();
    let etl = EtlReader::new(std::io::BufReader::new(std::fs::File::open(&file).unwrap())).unwrap();
    for rec in etl.time_ordered_window(DEFAULT_MERGE_WINDOW).flatten() {
        if let Some(f) = decode_ndis_fragment(&rec.as_ref()).and_then(|frag| assembler.push(frag)) {
            frames.push((f.origin.utc() as i128, f.data));
        }
    }
    let expected: Vec<_> = frames.iter().enumerate().filter(|(i, _)| (*i as u64 + 1) >= c.first_frame).collect();
    assert_eq!(expected.len() as u64, u64::from(c.client_packets) + u64::from(c.server_packets));
    let w = &report.files[0];
    let back = read_all(&w.path);
    assert_eq!(back.len(), expected.len());
    for (b, (i, (ts, data))) in back.iter().zip(&expected) {
        assert_eq!((b.linktype, b.ts_ns, &b.data), (1, *ts, data), "frame {}", i + 1);
        assert_eq!(b.comments.len(), usize::from(*i as u64 + 1 == c.last_frame));
    }
    assert_eq!(w.comments, 1);
    if tshark() {
        let out = std::process::Command::new("tshark").arg("-r").arg(&w.path).args(["-Y", "frame.comment"]).output();
        assert_eq!(String::from_utf8_lossy(&out.unwrap().stdout).lines().count(), 1);
    }
}
