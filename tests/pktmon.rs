//! PktMon ETL (Microsoft-Windows-PktMon) against `../shared/corpus/etl/oracle-pktmon.tsv`
//! (dissect.etl reads the events, a pcapng is written as etl2pcapng does, TShark counts it),
//! and the project's ETL writer proven on the real trace's layout.

mod common;

use std::collections::HashSet;
use std::io::Cursor;

use ipcscope::analysis::Options;
use ipcscope::ingest::etl::writer::{write_etl_to_vec, WriterConfig, WriterEvent, WriterItem};
use ipcscope::ingest::etl::{
    decode_pktmon_component, decode_pktmon_packet, filetime_to_unix_ns, EtlReader, Record, PKTMON_PROVIDER,
};
use ipcscope::model::format_utc;
use ipcscope::pipeline::{analyze_paths, analyze_sources, NoProgress, Source};

/// (filetime, PktGroupId, PktNumber, ComponentId, link type, dropped) of every 160/170 event,
/// in time order (ties in file order), as the oracle's converter orders them.
fn packet_events(path: &std::path::Path) -> Vec<(i64, u64, u16, u16, u32, bool)> {
    let mut out = Vec::new();
    for rec in EtlReader::open(path).unwrap().records() {
        let rec = rec.unwrap();
        if let Some(p) = decode_pktmon_packet(&rec.as_ref()) {
            assert_eq!(p.payload.len(), p.logged_size as usize);
            out.push((
                p.origin.filetime,
                p.group_id,
                p.pkt_number,
                p.component_id,
                p.link_type().unwrap_or(0),
                p.dropped,
            ));
        }
    }
    out.sort_by_key(|e| e.0);
    out
}

fn utc(ft: i64) -> String {
    format_utc(filetime_to_unix_ns(ft) as i64)
}

#[test]
fn pktmon_frames_and_tcp_counts_equal_oracle() {
    let Some(dir) = common::corpus("etl") else { return };
    let rows = common::read_tsv(&dir.join("oracle-pktmon.tsv"));
    assert!(!rows.is_empty());
    for row in &rows {
        let file = dir.join(&row["file"]);
        let method = row["method"].as_str();
        let all = packet_events(&file);
        let n160 = all.iter().filter(|e| !e.5).count();
        assert_eq!(n160.to_string(), row["events_160"], "{method}");
        assert_eq!((all.len() - n160).to_string(), row["events_170"], "{method}");
        let selected: Vec<_> = match method {
            "all_events" => all.clone(),
            "first_appearance" => {
                let mut seen = HashSet::new();
                all.iter().filter(|e| seen.insert((e.1, e.2))).cloned().collect()
            }
            // Checked through the pipeline below (content de-duplication needs the payloads).
            "l3_dedupe_1ms" => Vec::new(),
            other => panic!("unknown oracle method {other}"),
        };
        let a = analyze_paths(std::slice::from_ref(&file), &Options::default(), &NoProgress);
        let input = &a.inputs[0];
        assert!(input.error.is_none(), "{:?}", input.error);
        let pk = &input.extra.to_json()["pktmon"];
        assert_eq!(pk["events"].as_u64().unwrap() as usize, all.len());
        if method == "l3_dedupe_1ms" {
            // What the pipeline feeds to TCP: one packet per content seen within 1 ms.
            assert_eq!(pk["packets"].to_string(), row["written_frames"]);
            assert_eq!(input.packets.to_string(), row["frames"]);
            // TCP counts of the de-duplicated packets equal TShark's on the converted pcapng.
            let tcp = serde_json::to_value(&a.tcp).unwrap();
            let mut compared = 0;
            for (k, v) in tcp.as_object().unwrap() {
                if let Some(o) = row.get(k) {
                    assert_eq!(&v.to_string(), o, "{} {method}: {k}", row["file"]);
                    compared += 1;
                }
            }
            assert!(compared >= 18, "compared {compared} TCP columns");
            continue;
        }
        assert_eq!(selected.len().to_string(), row["frames"], "{method}");
        assert_eq!(selected.len().to_string(), row["written_frames"], "{method}");
        let ifaces: HashSet<(u16, u32)> = selected.iter().map(|e| (e.3, e.4)).collect();
        assert_eq!(ifaces.len().to_string(), row["pcapng_interfaces"], "{method}");
        assert_eq!(utc(selected[0].0), row["first_packet_utc"], "{method}");
        assert_eq!(utc(selected.last().unwrap().0), row["last_packet_utc"], "{method}");
        let types: Vec<String> = {
            let mut t: Vec<(u32, usize)> = Vec::new();
            for e in &all {
                let pt = match e.4 {
                    1 => 1,
                    105 => 2,
                    101 => 3,
                    _ => 0,
                };
                match t.iter_mut().find(|x| x.0 == pt) {
                    Some(x) => x.1 += 1,
                    None => t.push((pt, 1)),
                }
            }
            t.sort();
            t.iter().map(|(p, n)| format!("{p}:{n}")).collect()
        };
        assert_eq!(types.join(","), row["packet_types"].replace(';', ","), "{method}");
    }
}

/// The real trace: every packet is seen at its components, named from the trace's metadata;
/// the ICMP-only capture says it has no TCP instead of judging keep-alive.
#[test]
fn pktmon_components_paths_and_verdicts_on_the_real_trace() {
    let Some(dir) = common::corpus("etl") else { return };
    let a = analyze_paths(&[dir.join("demikernel_PktMon.etl")], &Options::default(), &NoProgress);
    let pk = &a.inputs[0].extra.to_json()["pktmon"];
    let comps = pk["components"].as_array().unwrap();
    let names: Vec<&str> = comps.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(comps.len(), 4, "{names:?}");
    assert!(names.contains(&"Microsoft Hyper-V Network Adapter #3 (netvsc.sys)"), "{names:?}");
    assert!(names.contains(&"Mellanox ConnectX-4 Lx Virtual Ethernet Adapter #2 (mlx5.sys)"), "{names:?}");
    let events: u64 = comps.iter().map(|c| c["events"].as_u64().unwrap()).sum();
    assert_eq!(events, pk["events"].as_u64().unwrap());
    // The paths' packets add up to the packets kept; every event is in one path.
    let paths = pk["paths"].as_array().unwrap();
    let kept: u64 = paths.iter().map(|p| p["packets"].as_u64().unwrap()).sum();
    assert_eq!(kept, pk["packets"].as_u64().unwrap());
    let appearances: u64 =
        paths.iter().map(|p| p["packets"].as_u64().unwrap() * p["components"].as_array().unwrap().len() as u64).sum();
    assert_eq!(appearances, pk["events"].as_u64().unwrap());
    assert_eq!(a.inputs[0].packets, kept);
    // What the reader skipped is listed with counts (relogger metadata), the session header is not.
    let extra = a.inputs[0].extra.to_json();
    let und = extra["undecoded_providers"].as_array().unwrap();
    let und_total: u64 = und.iter().map(|u| u["records"].as_u64().unwrap()).sum();
    assert_eq!(und_total, 61, "{und:?}");
    assert!(und.iter().all(|u| u["provider"] != PKTMON_PROVIDER.to_string()));
    // The only real PktMon trace has no drop event (id 170): the oracle says 0, so do the reader's
    // counts, and no packet_drop finding is made. Drops are proven on the writer's sample only.
    let oracle = common::read_tsv(&dir.join("oracle-pktmon.tsv"));
    let row = oracle.iter().find(|r| r["file"] == "demikernel_PktMon.etl" && r["method"] == "all_events").unwrap();
    assert_eq!(pk["drops"].as_u64().unwrap().to_string(), row["events_170"]);
    let comp_drops: u64 = comps.iter().map(|c| c["drops"].as_u64().unwrap()).sum();
    assert_eq!(comp_drops.to_string(), row["events_170"]);
    assert!(a.findings.iter().all(|f| f.kind.name() != "packet_drop"));
    let ka = a.verdicts.iter().find(|v| v.question == "keepalive").unwrap();
    assert_eq!(ka.answer, "unknown", "{}", ka.reason);
    assert!(!ka.reason.contains("no keep-alive probes were seen"));
}

fn first_record(dir: &std::path::Path, id: u16) -> Record {
    EtlReader::open(dir.join("demikernel_PktMon.etl"))
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .find(|r| r.header.provider == PKTMON_PROVIDER && r.header.id == Some(id))
        .unwrap()
}

/// Byte-identical apart from the raw clock (0x10..0x18) and ProcessorTime (0x38..0x40).
fn masked(v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    v[0x10..0x18].fill(0);
    v[0x38..0x40].fill(0);
    v
}

#[test]
fn writer_pktmon_records_are_byte_identical_to_the_real_trace() {
    let Some(dir) = common::corpus("etl") else { return };
    let real_pkt = first_record(&dir, 160);
    let p = decode_pktmon_packet(&real_pkt.as_ref()).unwrap();
    let pkt = WriterEvent::PktmonPacket {
        dropped: false,
        group_id: p.group_id,
        pkt_number: p.pkt_number,
        appearance: p.appearance,
        dir_tag: p.dir_tag,
        packet_type: p.packet_type,
        component_id: p.component_id,
        edge_id: p.edge_id,
        filter_id: p.filter_id,
        drop_reason: p.drop_reason,
        drop_location: p.drop_location,
        original_size: p.original_size,
        payload: p.payload.to_vec(),
    };
    let real_comp = first_record(&dir, 20);
    let c = decode_pktmon_component(&real_comp.as_ref()).unwrap();
    let comp = WriterEvent::PktmonComponent {
        id: c.id,
        comp_type: c.comp_type,
        name: c.name.clone(),
        description: c.description.clone(),
    };
    let h = |r: &Record| (r.header.filetime, r.header.pid.unwrap(), r.header.tid.unwrap());
    let items = vec![
        WriterItem::new(h(&real_pkt).0, h(&real_pkt).1, h(&real_pkt).2, pkt),
        WriterItem::new(h(&real_comp).0, h(&real_comp).1, h(&real_comp).2, comp),
    ];
    let cfg = WriterConfig { os_build: 20348, ..Default::default() };
    let img = write_etl_to_vec(&cfg, items).unwrap();
    let recs: Vec<Record> = EtlReader::new(Cursor::new(&img)).unwrap().records().map(|r| r.unwrap()).collect();
    let ours_pkt = recs.iter().find(|r| r.header.id == Some(160)).unwrap();
    let ours_comp = recs.iter().find(|r| r.header.id == Some(20)).unwrap();
    assert_eq!(masked(&ours_pkt.raw), masked(&real_pkt.raw));
    assert_eq!(masked(&ours_comp.raw), masked(&real_comp.raw));
    assert_eq!(ours_pkt.header.filetime, real_pkt.header.filetime);
    assert_eq!(decode_pktmon_component(&ours_comp.as_ref()).unwrap(), c);
}

/// The stale-connection PktMon sample (samples/make_pktmon_sample.rs): one packet per component
/// path, the drop becomes a packet_drop finding naming the component and reason, linked to the
/// reset it explains; frames and findings equal the pcap of the same scenario.
#[test]
fn pktmon_sample_stale_connection_with_drop() {
    let path = common::samples().join("pktmon_stale_connection.etl");
    let a = analyze_paths(std::slice::from_ref(&path), &Options::default(), &NoProgress);
    assert!(a.inputs[0].error.is_none(), "{:?}", a.inputs[0].error);
    let pk = &a.inputs[0].extra.to_json()["pktmon"];
    // Every packet logged at 3 components (NIC, filter, TCP/IP); the two stale sends dropped.
    let pcap = analyze_paths(&[common::samples().join("stale_connection.pcap")], &Options::default(), &NoProgress);
    assert_eq!(pk["packets"].as_u64().unwrap(), pcap.inputs[0].packets);
    assert_eq!(pk["drops"].as_u64().unwrap(), 2);
    assert_eq!(pk["events"].as_u64().unwrap(), 3 * pcap.inputs[0].packets);
    assert_eq!(a.tcp, pcap.tcp, "TCP counts of the de-duplicated packets equal the capture's");
    let kinds = |a: &ipcscope::analysis::Analysis| {
        let mut k: Vec<&str> = a.findings.iter().map(|f| f.kind.name()).filter(|k| *k != "packet_drop").collect();
        k.sort();
        k
    };
    assert_eq!(kinds(&a), kinds(&pcap));
    let drop = a.findings.iter().find(|f| f.kind.name() == "packet_drop").expect("packet_drop finding");
    assert!(drop.summary.contains("TCP/IPv4"), "{}", drop.summary);
    assert!(drop.summary.contains("INET_FinWait2 (1220)"), "{}", drop.summary);
    assert!(drop.summary.contains("stale_connection"), "{}", drop.summary);
    assert_eq!(drop.connections.len(), 2);
    assert_eq!(drop.count, 2);
    // Golden findings (kind, severity, count, summary) of the sample.
    let golden = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/pktmon_stale_connection.findings.txt"),
    )
    .unwrap();
    let ours: Vec<String> = a
        .findings
        .iter()
        .map(|f| format!("{}\t{}\t{}\t{}", f.kind.name(), f.severity.name(), f.count, f.summary))
        .collect();
    assert_eq!(ours.join("\n").trim(), golden.trim());
}

/// A cut PktMon trace: an error naming the damage, never a panic.
#[test]
fn pktmon_truncated_trace_keeps_what_was_read() {
    let bytes = std::fs::read(common::samples().join("pktmon_stale_connection.etl")).unwrap();
    for cut in [bytes.len() / 2 + 1000, bytes.len() - 100] {
        let a = analyze_sources(
            vec![Source::Memory { name: "cut.etl".into(), bytes: bytes[..cut].to_vec() }],
            &Options::default(),
            &NoProgress,
        );
        assert!(a.inputs[0].error.as_deref().unwrap_or("").contains("damaged"), "{:?}", a.inputs[0].error);
    }
}

/// Damaged bytes anywhere in a PktMon trace: the run completes, the input is still an ETL, and
/// every packet fed to TCP came from a decoded event (packets never exceed events).
#[test]
fn pktmon_corrupted_bytes_never_panic() {
    let bytes = std::fs::read(common::samples().join("pktmon_stale_connection.etl")).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..60 {
        let mut b = bytes.clone();
        for _ in 0..40 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Past the logfile header, so the file is still recognised as an ETL.
            let i = 1024 + (state >> 33) as usize % (b.len() - 1024);
            b[i] = (state >> 17) as u8;
        }
        let a = analyze_sources(
            vec![Source::Memory { name: "bad.etl".into(), bytes: b }],
            &Options::default(),
            &NoProgress,
        );
        assert_eq!(a.inputs[0].format, "etl");
        if let Some(pk) = a.inputs[0].extra.to_json().get("pktmon") {
            assert!(pk["packets"].as_u64().unwrap() <= pk["events"].as_u64().unwrap());
        }
    }
}
