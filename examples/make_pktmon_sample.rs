//! Writes `samples/pktmon_stale_connection.etl`: the stale-connection scenario
//! (`samples/stale_connection.pcap`, real sockets) as PktMon would log it on the server host
//! 127.10.0.1, in the Windows 11 style: every packet is logged at three components (NIC, WFP
//! filter, TCP/IPv4 L3/L4; inbound in that order, outbound in reverse, a few µs apart), every
//! appearance with its own PktGroupId and AppearanceCount 0. The NIC and filter log Ethernet
//! frames, TCP/IP logs the IP packet. The client's data segment that the server answers with a
//! reset is logged as dropped at TCP/IP (event 170, INET_FinWait2: the server had closed its
//! socket). Component metadata (event 20) follows at the end, as in real traces' rundown.
//!
//! Run with `cargo run --example make_pktmon_sample`. Deterministic (the pcap is the input).

use std::path::PathBuf;

use ipcscope::ingest::etl::writer::{write_etl_to_vec, WriterConfig, WriterEvent, WriterItem};

const FT_UNIX_EPOCH: i64 = 116_444_736_000_000_000;
const SERVER: [u8; 4] = [127, 10, 0, 1];
const NIC: u16 = 10;
const FILTER: u16 = 11;
const TCPIP: u16 = 12;
/// PktMonDrop_INET_FinWait2.
const DROP_REASON: u32 = 1220;

struct Frame {
    ft: i64,
    eth: Vec<u8>,
}

fn read_pcap(path: &PathBuf) -> Vec<Frame> {
    let b = std::fs::read(path).expect("pcap");
    assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian µs pcap");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= b.len() {
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let (sec, usec, incl) = (u32_at(off) as i64, u32_at(off + 4) as i64, u32_at(off + 8) as usize);
        let data = b[off + 16..off + 16 + incl].to_vec();
        out.push(Frame { ft: FT_UNIX_EPOCH + (sec * 1_000_000 + usec) * 10, eth: data });
        off += 16 + incl;
    }
    out
}

fn main() {
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples");
    let frames = read_pcap(&samples.join("stale_connection.pcap"));
    // The data segment just before each server reset is the one TCP/IP dropped.
    let tcp = |f: &Frame| {
        let ip = &f.eth[14..];
        let ihl = (ip[0] & 0x0f) as usize * 4;
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let doff = (ip[ihl + 12] >> 4) as usize * 4;
        (ip[12..16] == SERVER, ip[16..20] == SERVER, ip[ihl + 13], total - ihl - doff)
    };
    let mut dropped = vec![false; frames.len()];
    for i in 1..frames.len() {
        let (from_server, _, flags, _) = tcp(&frames[i]);
        if from_server && flags & 0x04 != 0 {
            if let Some(j) = (0..i).rev().find(|&j| {
                let (fs, ts, _, len) = tcp(&frames[j]);
                !fs && ts && len > 0
            }) {
                dropped[j] = true;
            }
        }
    }
    let mut items = Vec::new();
    let mut group = 0x2_0000u64;
    for (i, f) in frames.iter().enumerate() {
        let (_, inbound, _, _) = tcp(f);
        let order: [(u16, u16, i64); 3] = if inbound {
            [(NIC, 3, 0), (FILTER, 1, 30), (TCPIP, 1, 70)]
        } else {
            [(TCPIP, 2, 0), (FILTER, 2, 30), (NIC, 4, 70)]
        };
        for (comp, dir, dt) in order {
            group += 1;
            let is_drop = dropped[i] && comp == TCPIP;
            let (packet_type, payload) = if comp == TCPIP { (3, f.eth[14..].to_vec()) } else { (1, f.eth.clone()) };
            let ev = WriterEvent::PktmonPacket {
                dropped: is_drop,
                group_id: group,
                pkt_number: 1,
                appearance: 0,
                dir_tag: dir,
                packet_type,
                component_id: comp,
                edge_id: 1,
                filter_id: 0,
                drop_reason: if is_drop { DROP_REASON } else { 0 },
                drop_location: 0,
                original_size: payload.len() as u16,
                payload,
            };
            items.push(WriterItem::new(f.ft + dt, 0, 0, ev));
        }
    }
    let end = frames.last().map(|f| f.ft).unwrap_or(0) + 10_000;
    for (id, name, desc) in [
        (NIC, "netvsc.sys", "Microsoft Hyper-V Network Adapter"),
        (FILTER, "wfplwfs.sys", "WFP Native MAC Layer LightWeight Filter"),
        (TCPIP, "tcpip.sys", "TCP/IPv4 - L3/L4"),
    ] {
        let ev = WriterEvent::PktmonComponent { id, comp_type: 0, name: name.into(), description: desc.into() };
        items.push(WriterItem::new(end, 4100, 4200, ev));
    }
    let cfg = WriterConfig {
        start_time: frames[0].ft - 10_000_000,
        end_time: end,
        os_build: 26100,
        logger_name: "PktMon".into(),
        log_file_name: r"C:\Windows\System32\PktMon.etl".into(),
        ..Default::default()
    };
    let bytes = write_etl_to_vec(&cfg, items).expect("write");
    let out = samples.join("pktmon_stale_connection.etl");
    std::fs::write(&out, bytes).expect("write sample");
    println!("{} ({} frames, {} dropped)", out.display(), frames.len(), dropped.iter().filter(|d| **d).count());
}
