//! The process behind each connection: socket owners from classic TcpIp ETW (checked against
//! the dissect.etl oracle), Sysmon 3 (checked against the python-evtx oracle), Microsoft-Windows-
//! TCPIP events (writer-made, template as in docs/etl.md), joined to connections and written to
//! connections.csv as `pid,process`.

mod common;

use std::net::{IpAddr, SocketAddr};

use ipcscope::analysis::Options;
use ipcscope::ingest::etl::writer::{write_etl_to_vec, WriterConfig, WriterEvent, WriterItem};
use ipcscope::ingest::etl::{FILETIME_UNIX_EPOCH, TCPIP_PROVIDER};
use ipcscope::model::{SocketOp, SocketOwner};
use ipcscope::pipeline::{analyze_paths, analyze_sources, NoProgress, Source};

fn field<'a>(fields: &'a str, k: &str) -> &'a str {
    fields.split('|').find_map(|kv| kv.strip_prefix(k).and_then(|r| r.strip_prefix('='))).unwrap()
}

#[test]
fn classic_tcpip_owners_follow_the_oracle() {
    let Some(dir) = common::corpus("etl") else { return };
    let rows = common::read_tsv(&dir.join("oracle-samples.tsv"));
    let files: std::collections::BTreeSet<&str> =
        rows.iter().filter(|r| r["provider"] == "TcpIp").map(|r| r["file"].as_str()).collect();
    assert!(!files.is_empty());
    for file in files {
        let a = analyze_paths(&[dir.join(file)], &Options::default(), &NoProgress);
        let owners: &[SocketOwner] = &a.socket_owners;
        let mut checked = 0;
        for r in rows.iter().filter(|r| r["file"] == file && r["provider"] == "TcpIp") {
            let f = r["fields"].as_str();
            let ip = |k: &str| field(f, k).parse::<IpAddr>().unwrap();
            let port = |k: &str| field(f, k).parse::<u16>().unwrap();
            let local = SocketAddr::new(ip("saddr"), port("sport"));
            let remote = SocketAddr::new(ip("daddr"), port("dport"));
            let pid: u32 = field(f, "PID").parse().unwrap();
            let opcode: u8 = r["event"].trim_start_matches("opcode=").parse().unwrap();
            let same = |o: &&SocketOwner| {
                SocketAddr::new(o.local.ip, o.local.port) == local
                    && SocketAddr::new(o.remote.ip, o.remote.port) == remote
                    && o.pid == pid
            };
            // Connection events are all kept (by record); sends and receives once per 4-tuple.
            let per_packet = matches!(opcode, 10 | 11 | 18 | 26 | 27 | 34);
            let hit = if per_packet {
                owners.iter().find(same)
            } else {
                owners.iter().filter(|o| o.record.to_string() == r["record_index"]).find(same)
            };
            let o = hit
                .unwrap_or_else(|| panic!("{file} record {}: no owner {local} {remote} pid {pid}", r["record_index"]));
            if pid == 4 {
                assert_eq!(o.process.as_deref(), Some("System"));
            }
            if opcode == 15 {
                assert_eq!(o.op, SocketOp::Accept);
            }
            checked += 1;
        }
        assert!(checked > 0, "{file}");
        assert!(owners.len() <= 100_000);
    }
}

#[test]
fn sysmon_3_names_the_process_behind_each_connection() {
    let Some(dir) = common::corpus("evtx") else { return };
    let oracle = common::read_tsv(&dir.join("oracle-events.tsv"));
    for row in oracle.iter().filter(|r| r["provider"] == "Microsoft-Windows-Sysmon" && r["event_id"] == "3") {
        let a = analyze_paths(&[dir.join(&row["file"])], &Options::default(), &NoProgress);
        let sysmon: Vec<&SocketOwner> = a.socket_owners.iter().collect();
        assert_eq!(sysmon.len().to_string(), row["count"], "{}", row["file"]);
        assert!(sysmon.iter().all(|o| o.pid != 0 && o.process.as_deref().is_some_and(|p| p.ends_with(".exe"))));
        let shown = a.system_events.iter().filter(|e| e.kind.name() == "network_connect").count();
        assert_eq!(shown.to_string(), row["count"]);
    }
    // The first one, as python-evtx renders it (sysmon-omerbenamram.evtx): installer.exe, pid 4280.
    let a = analyze_paths(&[dir.join("sysmon-omerbenamram.evtx")], &Options::default(), &NoProgress);
    let o = &a.socket_owners[0];
    assert_eq!((o.pid, o.process.as_deref()), (4280, Some("installer.exe")));
    assert_eq!(
        (o.local.to_string(), o.remote.to_string()),
        ("192.168.2.128:59344".into(), "185.26.182.117:443".into())
    );
    assert_eq!(o.op, SocketOp::Connect);
}

/// The Microsoft-Windows-TCPIP Tcb template: LocalAddressLength, LocalAddress, RemoteAddressLength,
/// RemoteAddress, Status, ProcessId, Compartment, Tcb.
fn tcpip_event(id: u16, local: SocketAddr, remote: SocketAddr, pid: u32) -> WriterEvent {
    fn sockaddr(a: SocketAddr) -> Vec<u8> {
        let SocketAddr::V4(v4) = a else { panic!("v4 only here") };
        let mut b = vec![2, 0];
        b.extend_from_slice(&v4.port().to_be_bytes());
        b.extend_from_slice(&v4.ip().octets());
        b.extend_from_slice(&[0; 8]);
        b
    }
    let mut p = Vec::new();
    for a in [local, remote] {
        let s = sockaddr(a);
        p.extend_from_slice(&(s.len() as u32).to_le_bytes());
        p.extend_from_slice(&s);
    }
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&pid.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&0xffff_a000_0000_1000u64.to_le_bytes());
    WriterEvent::Raw {
        provider: TCPIP_PROVIDER,
        id,
        version: 0,
        channel: 16,
        level: 4,
        opcode: 0,
        task: id,
        keyword: 0x8000_0000_0000_0000,
        payload: p,
    }
}

#[test]
fn tcpip_owners_join_the_capture_and_reach_csv_and_findings() {
    let pcap = common::samples().join("stale_connection.pcap");
    let base = analyze_paths(std::slice::from_ref(&pcap), &Options::default(), &NoProgress);
    // The client host's TCPIP trace: ConnectTcbComplete (1033) for every connection, by pid 5120.
    let items: Vec<WriterItem> = base
        .connections
        .iter()
        .map(|c| {
            let ft = FILETIME_UNIX_EPOCH + c.first_ts / 100 + 5;
            let l = SocketAddr::new(c.client.ip, c.client.port);
            let r = SocketAddr::new(c.server.ip, c.server.port);
            WriterItem::new(ft, 5120, 77, tcpip_event(1033, l, r, 5120))
        })
        .collect();
    let etl = write_etl_to_vec(&WriterConfig::default(), items).unwrap();
    let a = analyze_sources(
        vec![Source::File(pcap), Source::Memory { name: "client_tcpip.etl".into(), bytes: etl }],
        &Options::default(),
        &NoProgress,
    );
    assert_eq!(a.socket_owners.len(), base.connections.len());
    assert!(a.connections.iter().all(|c| c.pid == Some(5120)), "every connection attributed");
    let stale = a.findings.iter().find(|f| f.kind.name() == "stale_connection").unwrap();
    assert_eq!(stale.pid, "5120");
    assert!(stale.summary.ends_with("Process: pid 5120."), "{}", stale.summary);
    // connections.csv: pid,process appended after last_frame (conn_uid,community_id after them).
    let mut buf = Vec::new();
    ipcscope::report::csv::write_connections(&a, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().ends_with(",last_frame,pid,process,conn_uid,community_id,seen_in,view_of"));
    assert!(lines.all(|l| l.split(',').nth(22) == Some("5120") && l.split(',').nth(23) == Some("")), "{text}");
}
