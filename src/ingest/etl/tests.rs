//! Unit tests on hand-built records (header kinds and providers the corpus lacks).

use super::writer::{write_etl_to_vec, WriterConfig, WriterEvent, WriterItem};
use super::*;
use crate::ingest::{Damage, DamageKind, Part};
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const BASE_TS: i64 = 1_000_000_000; // WriterConfig::default().header_timestamp

fn pad8(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
}

#[allow(clippy::too_many_arguments)]
fn sys_record(htype: u8, version: u16, group: u8, opcode: u8, pid: u32, tid: u32, dt: i64, payload: &[u8]) -> Vec<u8> {
    let base = match htype {
        0x01 | 0x02 => 0x20,
        0x03 | 0x04 => 0x18,
        _ => 0x10,
    };
    let extra = 8 * ((version as usize & 0x700) >> 8) + if version & 0x8000 != 0 { 8 } else { 0 };
    let size = base + extra + payload.len();
    let mut r = Vec::new();
    r.extend_from_slice(&version.to_le_bytes());
    r.push(htype);
    r.push(0xC0);
    r.extend_from_slice(&(size as u16).to_le_bytes());
    r.extend_from_slice(&(((group as u16) << 8) | opcode as u16).to_le_bytes());
    if base == 0x10 {
        r.extend_from_slice(&(BASE_TS + dt).to_le_bytes());
    } else {
        r.extend_from_slice(&tid.to_le_bytes());
        r.extend_from_slice(&pid.to_le_bytes());
        r.extend_from_slice(&(BASE_TS + dt).to_le_bytes());
        if base == 0x20 {
            r.extend_from_slice(&[0u8; 8]);
        }
    }
    r.resize(base + extra, 0xAB);
    r.extend_from_slice(payload);
    r
}

#[allow(clippy::too_many_arguments)]
fn ev_record(
    htype: u8,
    provider: Guid,
    id: u16,
    version: u8,
    keyword: u64,
    pid: u32,
    tid: u32,
    dt: i64,
    ext: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let size = 0x50 + ext.len() + payload.len();
    let mut r = Vec::new();
    r.extend_from_slice(&(size as u16).to_le_bytes());
    r.push(htype);
    r.push(0xC0);
    r.extend_from_slice(&(if ext.is_empty() { 0u16 } else { 1 }).to_le_bytes());
    r.extend_from_slice(&0u16.to_le_bytes());
    r.extend_from_slice(&tid.to_le_bytes());
    r.extend_from_slice(&pid.to_le_bytes());
    r.extend_from_slice(&(BASE_TS + dt).to_le_bytes());
    r.extend_from_slice(&provider.to_bytes_le());
    r.extend_from_slice(&id.to_le_bytes());
    r.extend_from_slice(&[version, 16, 4, 0]);
    r.extend_from_slice(&0u16.to_le_bytes());
    r.extend_from_slice(&keyword.to_le_bytes());
    r.extend_from_slice(&[0u8; 24]);
    r.extend_from_slice(ext);
    r.extend_from_slice(payload);
    r
}

/// Buffer 0 from the writer (logfile header), then one buffer holding `records`.
fn file_with(records: &[Vec<u8>]) -> Vec<u8> {
    let mut img = write_etl_to_vec(&WriterConfig::default(), Vec::new()).unwrap();
    let mut body = Vec::new();
    for r in records {
        body.extend_from_slice(r);
        pad8(&mut body);
    }
    let size = 0x48 + body.len() + 64;
    let size = (size + 1023) & !1023;
    let mut b = vec![0u8; 0x48];
    b[0..4].copy_from_slice(&(size as u32).to_le_bytes());
    b[0x28..0x2A].copy_from_slice(&1u16.to_le_bytes());
    b[0x30..0x34].copy_from_slice(&((0x48 + body.len()) as u32).to_le_bytes());
    b.extend_from_slice(&body);
    b.resize(size, 0xFF);
    img.extend_from_slice(&b);
    img
}

fn read_all(img: &[u8]) -> (Vec<Record>, Vec<Damage>) {
    let mut recs = Vec::new();
    let mut errs = Vec::new();
    for r in EtlReader::new(Cursor::new(img)).unwrap().records() {
        match r {
            Ok(r) => recs.push(r),
            Err(e) => errs.push(e),
        }
    }
    (recs, errs)
}

fn sockaddr4(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut v = 2u16.to_le_bytes().to_vec();
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&ip);
    v.extend_from_slice(&[0u8; 8]);
    v
}

fn sockaddr6(ip: Ipv6Addr, port: u16) -> Vec<u8> {
    let mut v = 23u16.to_le_bytes().to_vec();
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&ip.octets());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

fn tcb_payload(local: &[u8], remote: &[u8], status: u32, pid: u32, tcb: u64, ptr: usize) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&(local.len() as u32).to_le_bytes());
    p.extend_from_slice(local);
    p.extend_from_slice(&(remote.len() as u32).to_le_bytes());
    p.extend_from_slice(remote);
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&pid.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&tcb.to_le_bytes()[..ptr]);
    p
}

#[test]
fn guid_text_and_wire_order() {
    let g = Guid::parse("edd08927-9cc4-4e65-b970-c2560fb5c289").unwrap();
    assert_eq!(g, KERNEL_FILE_PROVIDER);
    assert_eq!(g.to_string(), "edd08927-9cc4-4e65-b970-c2560fb5c289");
    let wire = g.to_bytes_le();
    assert_eq!(&wire[..4], &[0x27, 0x89, 0xd0, 0xed]);
    assert_eq!(Guid::from_bytes_le(wire), g);
    assert_eq!(Guid::parse("{2ED6006E-4729-4609-B423-3EE7BCD678EF}"), Some(NDIS_PACKET_CAPTURE_PROVIDER));
    assert_eq!(Guid::parse("nope"), None);
}

#[test]
fn tcpip_manifest_events_from_writer() {
    let t0 = WriterConfig::default().start_time;
    let v6 = Ipv6Addr::new(0xfe80, 0, 0, 0, 1, 2, 3, 4);
    let raw = |id: u16, payload: Vec<u8>| WriterEvent::Raw {
        provider: TCPIP_PROVIDER,
        id,
        version: 0,
        channel: 16,
        level: 4,
        opcode: 0,
        task: id,
        keyword: 0x8000_0000_0000_0000,
        payload,
    };
    let items = vec![
        WriterItem::new(
            t0 + 5,
            600,
            700,
            raw(
                1033,
                tcb_payload(
                    &sockaddr4([10, 0, 0, 1], 50000),
                    &sockaddr4([10, 0, 0, 2], 445),
                    0,
                    600,
                    0xffff_8000_1234_0000,
                    8,
                ),
            ),
        ),
        WriterItem::new(
            t0 + 6,
            600,
            700,
            raw(1045, tcb_payload(&sockaddr6(v6, 1), &sockaddr6(v6, 135), 0xC000_00B5, 600, 7, 8)),
        ),
        WriterItem::new(t0 + 7, 600, 700, raw(1002, vec![1, 2, 3])), // not decoded
    ];
    let img = write_etl_to_vec(&WriterConfig::default(), items).unwrap();
    let (recs, errs) = read_all(&img);
    assert!(errs.is_empty());
    let evs: Vec<TcpipTcbEvent> = recs.iter().filter_map(|r| decode_tcpip(&r.as_ref())).collect();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0].kind, TcpipTcbEventKind::ConnectComplete);
    assert_eq!(evs[0].local, Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 50000)));
    assert_eq!(evs[0].remote, Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 445)));
    assert_eq!((evs[0].status, evs[0].process_id, evs[0].compartment, evs[0].tcb), (0, 600, 1, 0xffff_8000_1234_0000));
    assert_eq!(evs[0].origin.filetime, t0 + 5);
    assert_eq!(evs[1].kind, TcpipTcbEventKind::ConnectTimeout);
    assert_eq!(evs[1].remote, Some(SocketAddr::new(IpAddr::V6(v6), 135)));
    assert_eq!(evs[1].status, 0xC000_00B5);
    for id in [1017u16, 1033, 1034, 1039, 1040, 1043, 1045, 1046, 1047, 1048] {
        assert_eq!(TcpipTcbEventKind::from_id(id).map(|k| k.id()), Some(id));
    }
}

#[test]
fn thirty_two_bit_event_headers_use_four_byte_pointers() {
    // Kernel-File Create v0 (Irp, TTID, FileObject pointers), Cleanup v0, OperationEnd, and
    // TCPIP 1043 in EVENT_HEADER32 records.
    let mut create = Vec::new();
    for v in [0x8100_0010u32, 0x0000_0d00, 0x8200_0020] {
        create.extend_from_slice(&v.to_le_bytes());
    }
    for v in [0x0100_0000u32, 0x80, 7] {
        create.extend_from_slice(&v.to_le_bytes());
    }
    for u in r"\Device\NamedPipe\x".encode_utf16().chain([0]) {
        create.extend_from_slice(&u.to_le_bytes());
    }
    let mut cleanup = Vec::new();
    for v in [0x8100_0010u32, 0xd00, 0x8200_0020, 0x99] {
        cleanup.extend_from_slice(&v.to_le_bytes());
    }
    let mut opend = Vec::new();
    for v in [0x8100_0010u32, 0, 0xC000_00AE] {
        opend.extend_from_slice(&v.to_le_bytes());
    }
    let recs = [
        ev_record(0x12, KERNEL_FILE_PROVIDER, 12, 0, 0xa0, 10, 11, 100, &[], &create),
        ev_record(0x12, KERNEL_FILE_PROVIDER, 13, 0, 0x20, 10, 11, 200, &[], &cleanup),
        ev_record(0x12, KERNEL_FILE_PROVIDER, 24, 0, 0x60, 10, 11, 300, &[], &opend),
        ev_record(
            0x12,
            TCPIP_PROVIDER,
            1043,
            0,
            0,
            4,
            5,
            400,
            &[],
            &tcb_payload(&sockaddr4([1, 2, 3, 4], 1), &sockaddr4([5, 6, 7, 8], 2), 0, 9, 0x8888_0000, 4),
        ),
    ];
    let (got, errs) = read_all(&file_with(&recs));
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(got.len(), 5);
    let start = WriterConfig::default().start_time;
    let Some(FileEvent::Create(c)) = decode_kernel_file(&got[1].as_ref()) else { panic!() };
    assert_eq!((c.irp, c.issuing_thread_id, c.file_object), (0x8100_0010, 0xd00, 0x8200_0020));
    assert_eq!((c.create_options, c.create_attributes, c.share_access), (0x0100_0000, 0x80, 7));
    assert_eq!(c.file_name, r"\Device\NamedPipe\x");
    assert_eq!((c.origin.pid, c.origin.tid, c.origin.filetime), (Some(10), Some(11), start + 100));
    let Some(FileEvent::Cleanup(h)) = decode_kernel_file(&got[2].as_ref()) else { panic!() };
    assert_eq!((h.irp, h.issuing_thread_id, h.file_object, h.file_key), (0x8100_0010, 0xd00, 0x8200_0020, 0x99));
    let Some(FileEvent::OperationEnd(o)) = decode_kernel_file(&got[3].as_ref()) else { panic!() };
    assert_eq!((o.irp, o.extra_information, o.status), (0x8100_0010, 0, 0xC000_00AE));
    let t = decode_tcpip(&got[4].as_ref()).unwrap();
    assert_eq!((t.kind, t.tcb, t.process_id), (TcpipTcbEventKind::DisconnectComplete, 0x8888_0000, 9));
    assert_eq!(got[4].header.pointer_size, 4);
}

#[test]
fn extended_items_follow_linkage() {
    // Item 1: RELATED_ACTIVITYID (16 bytes), Linkage=1; item 2: TS_ID (4 bytes, padded), Linkage=0.
    let mut ext = Vec::new();
    ext.extend_from_slice(&24u16.to_le_bytes());
    ext.extend_from_slice(&1u16.to_le_bytes());
    ext.extend_from_slice(&1u16.to_le_bytes());
    ext.extend_from_slice(&16u16.to_le_bytes());
    ext.extend_from_slice(&[0x11; 16]);
    ext.extend_from_slice(&16u16.to_le_bytes());
    ext.extend_from_slice(&3u16.to_le_bytes());
    ext.extend_from_slice(&0u16.to_le_bytes());
    ext.extend_from_slice(&4u16.to_le_bytes());
    ext.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    let payload = [0x42u8; 12];
    let rec = ev_record(0x13, Guid::NIL, 5, 0, 0, 1, 2, 3, &ext, &payload);
    let (got, errs) = read_all(&file_with(&[rec]));
    assert!(errs.is_empty());
    let r = got[1].as_ref();
    let items: Vec<(u16, usize)> = r.ext_items().map(|e| (e.ext_type, e.data.len())).collect();
    assert_eq!(items, vec![(1, 16), (3, 4)]);
    assert_eq!(r.payload_offset, 0x50 + 40);
    assert_eq!(r.payload, &payload);
    // Linkage chain running past the record is damage.
    let mut bad = ext.clone();
    bad[20 + 4 + 4] = 1; // second item's Linkage
    let rec = ev_record(0x13, Guid::NIL, 5, 0, 0, 1, 2, 3, &bad, &[]);
    let (got, errs) = read_all(&file_with(&[rec]));
    assert_eq!(got.len(), 1);
    assert!(matches!(errs[0].kind, DamageKind::BadField { part: Part::Record, field: "Size", .. }));
}

#[test]
fn classic_kernel_headers_and_decoders() {
    // FileIo Create v2 (SYSTEM32: 4-byte pointers, TTID pointer before FileObject).
    let mut p = Vec::new();
    for v in [0x10u32, 0x20, 0x30, 0x0300_0000, 0, 1] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    for u in r"\Device\NamedPipe\a".encode_utf16().chain([0]) {
        p.extend_from_slice(&u.to_le_bytes());
    }
    let create = sys_record(0x01, 2, 0x04, 64, 7, 8, 10, &p);
    // FileIo Cleanup v3 on PERFINFO64 with a PMC extension (Version 0x0102: one 8-byte item).
    let mut q = Vec::new();
    for v in [0xAAu64, 0xBB, 0xCC] {
        q.extend_from_slice(&v.to_le_bytes());
    }
    q.extend_from_slice(&77u32.to_le_bytes());
    let cleanup = sys_record(0x11, 0x0103, 0x04, 65, 0, 0, 20, &q);
    // FileIo OpEnd on COMPACT64.
    let mut o = Vec::new();
    for v in [0xAAu64, 5] {
        o.extend_from_slice(&v.to_le_bytes());
    }
    o.extend_from_slice(&0xC000_0034u32.to_le_bytes());
    let opend = sys_record(0x04, 2, 0x04, 76, 7, 8, 30, &o);
    // TcpIp IPv4 Connect v2 (SYSTEM64), network byte order addresses and ports.
    let mut t = Vec::new();
    t.extend_from_slice(&1234u32.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&[192, 168, 1, 2]);
    t.extend_from_slice(&[192, 168, 1, 1]);
    t.extend_from_slice(&445u16.to_be_bytes());
    t.extend_from_slice(&50123u16.to_be_bytes());
    for v in [1460u16, 1, 0, 1] {
        t.extend_from_slice(&v.to_le_bytes());
    }
    t.extend_from_slice(&65535u32.to_le_bytes());
    t.extend_from_slice(&8i16.to_le_bytes());
    t.extend_from_slice(&2i16.to_le_bytes());
    t.extend_from_slice(&99u32.to_le_bytes());
    t.extend_from_slice(&0xffff_fa80_0000_1000u64.to_le_bytes());
    let connect = sys_record(0x02, 2, 0x06, 12, 1234, 1, 40, &t);
    let (got, errs) = read_all(&file_with(&[create, cleanup, opend, connect]));
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(got.len(), 5);
    assert_eq!(got[1].header.kind, HeaderKind::System32);
    let Some(FileEvent::Create(c)) = decode_file_event(&got[1].as_ref()) else { panic!() };
    assert_eq!((c.irp, c.issuing_thread_id, c.file_object, c.create_disposition()), (0x10, 0x20, 0x30, 3));
    assert_eq!(c.file_name, r"\Device\NamedPipe\a");
    assert_eq!(got[2].header.kind, HeaderKind::Perfinfo64);
    assert_eq!((got[2].header.pid, got[2].header.tid), (None, None));
    assert_eq!(got[2].as_ref().payload_offset, 0x18);
    let Some(FileEvent::Cleanup(h)) = decode_file_event(&got[2].as_ref()) else { panic!() };
    assert_eq!((h.irp, h.file_object, h.file_key, h.issuing_thread_id), (0xAA, 0xBB, 0xCC, 77));
    assert_eq!(got[3].header.kind, HeaderKind::Compact64);
    let Some(FileEvent::OperationEnd(e)) = decode_file_event(&got[3].as_ref()) else { panic!() };
    assert_eq!((e.irp, e.extra_information, e.status), (0xAA, 5, 0xC000_0034));
    let tc = decode_classic_tcpip(&got[4].as_ref()).unwrap();
    assert_eq!(tc.op, TcpIpOp::Connect);
    assert_eq!(
        (tc.daddr, tc.dport, tc.saddr, tc.sport),
        (IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)), 445, IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)), 50123)
    );
    let opt = tc.options.unwrap();
    assert_eq!((opt.mss, opt.rcvwin, opt.rcvwinscale, opt.sndwinscale), (1460, 65535, 8, 2));
    assert_eq!((tc.seqnum, tc.connid, tc.process_id), (99, 0xffff_fa80_0000_1000, 1234));
}

#[test]
fn wpp_unknown_and_bad_markers() {
    // WPP message: Size, flags 0x80|0x10 in the top byte, MessageNumber, OptionFlags (timestamp).
    let mut wpp = Vec::new();
    wpp.extend_from_slice(&24u16.to_le_bytes());
    wpp.extend_from_slice(&[0, 0x90]);
    wpp.extend_from_slice(&1u16.to_le_bytes());
    wpp.extend_from_slice(&0x08u16.to_le_bytes());
    wpp.extend_from_slice(&(BASE_TS + 9).to_le_bytes());
    wpp.extend_from_slice(&[0u8; 8]);
    let mut unknown = Vec::new();
    unknown.extend_from_slice(&16u16.to_le_bytes());
    unknown.extend_from_slice(&[0x30, 0xC0]);
    unknown.extend_from_slice(&[0u8; 12]);
    let (got, errs) = read_all(&file_with(&[wpp.clone(), unknown.clone()]));
    assert!(errs.is_empty());
    assert_eq!(got[1].header.kind, HeaderKind::Message);
    assert_eq!(got[1].header.filetime, WriterConfig::default().start_time + 9);
    assert_eq!(got[2].header.kind, HeaderKind::Unknown(0x30));
    assert_eq!(got[2].header.kind.dissect_name(), "Unknown");
    // A marker with no header flags is damage, reported at its offset.
    let mut junk = vec![0x01, 0x02, 0x03, 0x04];
    junk.extend_from_slice(&[0u8; 12]);
    let img = file_with(&[wpp, junk]);
    let (got, errs) = read_all(&img);
    assert_eq!(got.len(), 2);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].offset, 65536 + 0x48 + 24);
}

#[test]
fn ndis_fragments_32bit_and_interleaved_interfaces() {
    let mut p = Vec::new();
    p.extend_from_slice(&3u32.to_le_bytes());
    p.extend_from_slice(&4u32.to_le_bytes());
    p.extend_from_slice(&5u32.to_le_bytes());
    p.extend_from_slice(b"hello");
    p.extend_from_slice(&[0xEE; 16]); // GftFlowEntryId / GftOffloadInformation tail
    let rec = ev_record(
        0x12,
        NDIS_PACKET_CAPTURE_PROVIDER,
        1001,
        0,
        NDIS_KW_PACKET_START | NDIS_KW_RECEIVE,
        4,
        4,
        1,
        &[],
        &p,
    );
    let (got, _) = read_all(&file_with(&[rec]));
    let f = decode_ndis_fragment(&got[1].as_ref()).unwrap();
    assert_eq!((f.miniport_if_index, f.lower_if_index, &f.fragment[..]), (3, 4, &b"hello"[..]));
    assert!(f.is_start() && !f.is_end() && f.is_receive());

    let frag = |ifx: u32, kw: u64, d: &[u8], ft: i64| NdisFragment {
        origin: EventOrigin { filetime: ft, pid: None, tid: None, record_index: 0, offset: 0 },
        keyword: kw,
        miniport_if_index: ifx,
        lower_if_index: ifx,
        fragment: d.to_vec(),
    };
    let mut a = FrameAssembler::new(8);
    assert!(a.push(frag(1, NDIS_KW_PACKET_START, b"ab", 1)).is_none());
    assert!(a.push(frag(2, NDIS_KW_PACKET_START, b"xy", 2)).is_none());
    let f1 = a.push(frag(1, NDIS_KW_PACKET_END, b"cd", 3)).unwrap();
    assert_eq!((f1.data.as_slice(), f1.origin.filetime), (&b"abcd"[..], 1));
    assert!(a.push(frag(2, 0, b"1234567", 4)).is_none()); // exceeds 8 bytes: dropped
    assert_eq!(a.dropped, 1);
    assert_eq!(a.pending(), 0);
}

#[test]
fn clock_types() {
    let sys = Clock { start_time: 1000, header_timestamp: 500, clock_type: 2, perf_freq: 0, cpu_speed_mhz: 0 };
    assert_eq!(sys.filetime(600), 1100);
    let cyc = Clock { start_time: 1000, header_timestamp: 3000, clock_type: 3, perf_freq: 0, cpu_speed_mhz: 3000 };
    assert_eq!(cyc.filetime(6000), 1010);
    assert_eq!(cyc.unix_ns(6000), (1010 - FILETIME_UNIX_EPOCH as i128) * 100);
}

#[test]
fn oversized_and_tiny_buffers_are_errors() {
    let mut img = write_etl_to_vec(&WriterConfig::default(), Vec::new()).unwrap();
    let mut b = vec![0u8; 0x48];
    b[0..4].copy_from_slice(&(MAX_BUFFER_SIZE + 8).to_le_bytes());
    img.extend_from_slice(&b);
    let (got, errs) = read_all(&img);
    assert_eq!(got.len(), 1);
    assert_eq!(
        errs,
        vec![Damage {
            offset: 65536,
            kind: DamageKind::BadField { part: Part::Buffer, field: "BufferSize", value: (MAX_BUFFER_SIZE + 8) as u64 }
        }]
    );
    assert!(EtlReader::new(Cursor::new(&[1u8, 2, 3][..])).is_err());
    assert!(EtlReader::new(Cursor::new(&[][..])).is_err());
}

#[test]
fn compressed_buffer_with_absurd_offset_is_skipped() {
    // A compressed buffer whose Offset exceeds the cap: error at its Offset field, walk goes on.
    let mut img = write_etl_to_vec(&WriterConfig::default(), Vec::new()).unwrap();
    let mut b = vec![0u8; 1024];
    b[0..4].copy_from_slice(&1024u32.to_le_bytes());
    b[0x30..0x34].copy_from_slice(&(MAX_BUFFER_SIZE + 1).to_le_bytes());
    b[0x34..0x36].copy_from_slice(&0x40u16.to_le_bytes());
    img.extend_from_slice(&b);
    let rec = ev_record(0x13, Guid::NIL, 1, 0, 0, 1, 2, 3, &[], &[]);
    let tail = file_with(&[rec]);
    img.extend_from_slice(&tail[65536..]);
    let (got, errs) = read_all(&img);
    assert_eq!(got.len(), 2);
    assert_eq!(
        errs,
        vec![Damage {
            offset: 65536 + 0x30,
            kind: DamageKind::BadField { part: Part::Buffer, field: "Offset", value: (MAX_BUFFER_SIZE + 1) as u64 }
        }]
    );
}

// ---- Fuzzing regressions (see docs/robustness.md; inputs in fuzz/regressions/etl/) ----

/// One compressed buffer whose LZ77 stream is a literal 8-byte record plus one long match
/// repeating it, announcing `decompressed` bytes; `pad` trailing body bytes follow the stream.
fn lz77_bomb_buffer(decompressed: usize, pad: usize) -> Vec<u8> {
    let record = [0x08, 0x00, 0xFF, 0xC0, 0, 0, 0, 0]; // unknown kind, Size 8
    let mut body = (1u32 << 23).to_le_bytes().to_vec(); // 8 literals, then a match
    body.extend_from_slice(&record);
    body.extend_from_slice(&((7u16 << 3) | 7).to_le_bytes()); // distance 8, length escape
    body.extend_from_slice(&[0x0F, 0xFF, 0, 0]); // nibble 15, byte 255, word 0: dword follows
    body.extend_from_slice(&((decompressed - 8 - 3) as u32).to_le_bytes());
    body.resize(body.len() + pad, 0);
    let mut h = vec![0u8; BUFFER_HEADER_SIZE];
    h[0..4].copy_from_slice(&((BUFFER_HEADER_SIZE + body.len()) as u32).to_le_bytes());
    h[0x30..0x34].copy_from_slice(&((decompressed + BUFFER_HEADER_SIZE) as u32).to_le_bytes());
    h[0x34..0x36].copy_from_slice(&0x40u16.to_le_bytes());
    h.extend_from_slice(&body);
    h
}

#[test]
fn lz77_bomb_is_rejected_by_ratio() {
    // 94 bytes announcing 64 MiB of 8-byte records: before the fix this took > 60 s and 1.7 GB.
    let img: Vec<u8> =
        std::iter::repeat_n(lz77_bomb_buffer(MAX_BUFFER_SIZE as usize - BUFFER_HEADER_SIZE, 0), 4).flatten().collect();
    let e = EtlReader::new(Cursor::new(&img)).err().expect("buffer 0 is damage");
    assert_eq!(e.kind, DamageKind::BadField { part: Part::Buffer, field: "Offset", value: MAX_BUFFER_SIZE as u64 });
    // A ratio within the cap still decompresses.
    let ok = lz77_bomb_buffer(4096, 0);
    let rd = EtlReader::new(Cursor::new(&ok)).expect("ok");
    assert_eq!(rd.records().filter(|r| r.is_ok()).count(), 512);
}

#[test]
fn window_merge_holds_a_bounded_number_of_records() {
    // A buffer of 8-byte records holding more than MAX_HELD_RECORDS: the merge keeps the first
    // MAX_HELD_RECORDS and reports the rest as damage instead of materialising all of them.
    let n = MAX_HELD_RECORDS + 100;
    let img = lz77_bomb_buffer(n * 8, (n * 8) / MAX_LZ77_RATIO);
    let rd = EtlReader::new(Cursor::new(&img)).expect("ok");
    let (mut ok, mut errs) = (0usize, Vec::new());
    for r in rd.time_ordered_window(DEFAULT_MERGE_WINDOW) {
        match r {
            Ok(_) => ok += 1,
            Err(e) => errs.push(e.kind),
        }
    }
    assert_eq!(ok, MAX_HELD_RECORDS);
    assert_eq!(errs, vec![DamageKind::TooManyRecords { part: Part::Buffer, limit: MAX_HELD_RECORDS as u64 }]);
}
