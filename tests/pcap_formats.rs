//! Capture formats built byte by byte: pcapng with two interfaces of different link types and
//! timestamp resolutions, Enhanced/Simple/obsolete Packet blocks and comments; pcap in both byte
//! orders with µs and ns magic; gzip; damage in the middle of a record.

use ipcscope::analysis::{Analysis, Options};
use ipcscope::pipeline::{analyze_sources, NoProgress, Source};

fn analyze(bytes: Vec<u8>) -> Analysis {
    analyze_sources(vec![Source::Memory { name: "built.pcapng".into(), bytes }], &Options::default(), &NoProgress)
}

/// IPv4 + TCP, no link header.
fn ip_tcp(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: usize,
) -> Vec<u8> {
    let total = (40 + payload) as u16;
    let mut p = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 6, 0, 0];
    p.extend(src);
    p.extend(dst);
    p.extend(sport.to_be_bytes());
    p.extend(dport.to_be_bytes());
    p.extend(seq.to_be_bytes());
    p.extend(ack.to_be_bytes());
    p.extend([0x50, flags, 0x20, 0x00, 0, 0, 0, 0]);
    p.resize(p.len() + payload, 0x61);
    p
}

fn ether(ip: Vec<u8>) -> Vec<u8> {
    let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
    f.extend(ip);
    f
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while body.len() % 4 != 0 {
        body.push(0);
    }
    let len = (body.len() + 12) as u32;
    let mut b = kind.to_le_bytes().to_vec();
    b.extend(len.to_le_bytes());
    b.extend(body);
    b.extend(len.to_le_bytes());
    b
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    while d.len() % 4 != 0 {
        d.push(0);
    }
    d
}

const C: [u8; 4] = [192, 168, 1, 10];
const S: [u8; 4] = [192, 168, 1, 20];

fn pcapng() -> Vec<u8> {
    let mut f = Vec::new();
    // Section header with a comment option.
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    shb.extend(1u16.to_le_bytes()); // opt_comment
    shb.extend(5u16.to_le_bytes());
    shb.extend(padded(b"hello"));
    shb.extend([0, 0, 0, 0]);
    f.extend(block(0x0A0D_0D0A, &shb));
    // Interface 0: Ethernet, µs. Interface 1: raw IP, ns (if_tsresol = 9).
    let mut idb0 = 1u16.to_le_bytes().to_vec();
    idb0.extend([0, 0]);
    idb0.extend(65535u32.to_le_bytes());
    f.extend(block(1, &idb0));
    let mut idb1 = 101u16.to_le_bytes().to_vec();
    idb1.extend([0, 0]);
    idb1.extend(65535u32.to_le_bytes());
    idb1.extend(9u16.to_le_bytes());
    idb1.extend(1u16.to_le_bytes());
    idb1.extend([9, 0, 0, 0]);
    idb1.extend([0, 0, 0, 0]);
    f.extend(block(1, &idb1));
    let epb = |ifid: u32, ticks: u64, data: Vec<u8>| {
        let mut b = ifid.to_le_bytes().to_vec();
        b.extend(((ticks >> 32) as u32).to_le_bytes());
        b.extend((ticks as u32).to_le_bytes());
        b.extend((data.len() as u32).to_le_bytes());
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(padded(&data));
        block(6, &b)
    };
    // 1 s after the epoch of 2026-01-01 (1767225600): µs ticks on if 0, ns ticks on if 1.
    let t0 = 1_767_225_600u64;
    f.extend(epb(0, t0 * 1_000_000 + 1, ether(ip_tcp(C, S, 50000, 80, 1000, 0, 0x02, 0))));
    f.extend(epb(1, t0 * 1_000_000_000 + 2_500, ip_tcp(S, C, 80, 50000, 7000, 1001, 0x12, 0)));
    f.extend(block(5, &[0u8; 12])); // an interface statistics block (if 0, no options): ignored
                                    // Obsolete Packet Block on interface 0.
    let data = ether(ip_tcp(C, S, 50000, 80, 1001, 7001, 0x10, 0));
    let mut pb = 0u16.to_le_bytes().to_vec();
    pb.extend(0u16.to_le_bytes());
    let ticks = t0 * 1_000_000 + 3;
    pb.extend(((ticks >> 32) as u32).to_le_bytes());
    pb.extend((ticks as u32).to_le_bytes());
    pb.extend((data.len() as u32).to_le_bytes());
    pb.extend((data.len() as u32).to_le_bytes());
    pb.extend(padded(&data));
    f.extend(block(2, &pb));
    // Simple Packet Block (interface 0, no timestamp): data from the client.
    let data = ether(ip_tcp(C, S, 50000, 80, 1001, 7001, 0x18, 5));
    let mut spb = (data.len() as u32).to_le_bytes().to_vec();
    spb.extend(padded(&data));
    f.extend(block(3, &spb));
    f
}

#[test]
fn pcapng_with_two_interfaces_and_every_packet_block() {
    let a = analyze(pcapng());
    let i = &a.inputs[0];
    assert_eq!(i.format, "pcapng");
    assert!(i.error.is_none(), "{:?}", i.error);
    assert_eq!(i.packets, 4);
    assert_eq!(i.link_types, vec!["ethernet", "raw"]);
    assert_eq!(a.tcp.tcp_frames, 4);
    assert_eq!((a.tcp.syn, a.tcp.synack), (1, 1));
    assert_eq!(a.connections.len(), 1, "both interfaces carry the same connection");
    let c = &a.connections[0];
    assert_eq!(c.client.to_string(), "192.168.1.10:50000");
    assert_eq!(c.client_bytes, 5);
    // µs on interface 0 and ns on interface 1 land on one clock.
    let t0 = 1_767_225_600i64 * 1_000_000_000;
    let ts: Vec<i64> = c.packets().map(|p| p.ts).collect();
    assert_eq!(&ts[..3], &[t0 + 1_000, t0 + 2_500, t0 + 3_000]);
}

fn legacy(big_endian: bool, nanos: bool, records: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let w32 = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let w16 = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut f = Vec::new();
    f.extend(w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    f.extend(w16(2));
    f.extend(w16(4));
    f.extend(w32(0));
    f.extend(w32(0));
    f.extend(w32(65535));
    f.extend(w32(1));
    for (sec, sub, data) in records {
        f.extend(w32(*sec));
        f.extend(w32(*sub));
        f.extend(w32(data.len() as u32));
        f.extend(w32(data.len() as u32));
        f.extend(data);
    }
    f
}

#[test]
fn pcap_byte_orders_and_resolutions() {
    let frames = vec![
        (100, 5, ether(ip_tcp(C, S, 50001, 445, 1, 0, 0x02, 0))),
        (100, 7, ether(ip_tcp(S, C, 445, 50001, 9, 2, 0x12, 0))),
    ];
    for (be, ns) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = analyze(legacy(be, ns, &frames));
        assert!(a.inputs[0].error.is_none(), "be={be} ns={ns}: {:?}", a.inputs[0].error);
        assert_eq!(a.tcp.tcp_frames, 2, "be={be} ns={ns}");
        let unit = if ns { 1 } else { 1000 };
        assert_eq!(a.inputs[0].first_ts, Some(100_000_000_000 + 5 * unit));
    }
}

#[test]
fn gzip_and_damage_mid_record() {
    use std::io::Write;
    let frames: Vec<(u32, u32, Vec<u8>)> =
        (0..10).map(|i| (200, i, ether(ip_tcp(C, S, 50002, 80, 1 + i, 0, 0x10, 10)))).collect();
    let plain = legacy(false, false, &frames);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).expect("gzip");
    let a = analyze(gz.finish().expect("gzip"));
    assert_eq!(a.inputs[0].packets, 10);

    // Cut in the middle of the 8th record: 7 frames kept, the error names the offset.
    let record = 16 + frames[0].2.len();
    let cut = 24 + 7 * record + 20;
    let a = analyze(plain[..cut].to_vec());
    assert_eq!(a.inputs[0].packets, 7);
    let err = a.inputs[0].error.as_deref().expect("damage reported");
    assert!(err.contains(&format!("offset {}", 24 + 7 * record)), "{err}");

    // An absurd length field in the 3rd record: 2 frames kept, no allocation of 4 GB.
    let mut bad = plain.clone();
    let at = 24 + 2 * record + 8;
    bad[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let a = analyze(bad);
    assert_eq!(a.inputs[0].packets, 2);
    assert!(a.inputs[0].error.as_deref().unwrap_or("").contains("offset"), "{:?}", a.inputs[0].error);

    // A pcapng block that fails its checks: named as such, without a dump of its bytes.
    let mut ng = pcapng();
    let isb_at = ng.windows(4).position(|w| w == [5, 0, 0, 0]).expect("isb");
    ng[isb_at + 4..isb_at + 8].copy_from_slice(&16u32.to_le_bytes());
    let a = analyze(ng);
    let err = a.inputs[0].error.as_deref().expect("damage");
    assert!(err.len() < 200 && err.contains("damaged block"), "{err}");
    assert_eq!(a.inputs[0].packets, 2, "the packets before the bad block are kept");
}
