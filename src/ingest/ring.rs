//! Ring-buffer capture files read as one capture: the files of one interface that continue each
//! other (dumpcap `-b`, `editcap -c`) are chained into one stream, so connections that cross a
//! file boundary continue instead of starting again. Frames are numbered across the ring, as in
//! `mergecap -a -w whole.pcapng FILES`.
//!
//! Ring files are found by name (`pipeline::inputs`) or by content ([`ends`], [`continues`]):
//! same format and interfaces, the next file's first packet just after the previous one's last,
//! and a connection under way across the boundary.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::decode::decode_frame;
use super::pcap::{read_capture_raw, RawInterface, RawItem, MAX_RECORD};
use super::{open, InputKind, Opened};
use crate::model::tcp_flags::{ACK, SYN};
use crate::model::Endpoint;

/// Length of a legacy pcap file header.
const PCAP_HEADER: usize = 24;

/// Opens `paths` (in order) as one capture. pcapng files simply follow each other (a new section
/// per file, as pcapng allows); a legacy pcap file's header is dropped after the first, and must
/// agree with the first file's (byte order, precision, link type), or the ring is refused.
pub fn open_ring(paths: &[PathBuf]) -> std::io::Result<Opened> {
    let Some(first) = paths.first() else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "an empty ring"));
    };
    let mut head = open(first)?;
    if !matches!(head.kind, InputKind::Pcap | InputKind::PcapNg) {
        return Err(invalid(first, "is not a capture"));
    }
    let first_header = if head.kind == InputKind::Pcap { Some(header(&mut head.reader)?) } else { None };
    let mut rest = VecDeque::new();
    let mut sizes = vec![head.file_len];
    let mut counters = vec![head.disk_read.clone()];
    let mut gzip = head.gzip;
    for p in &paths[1..] {
        let mut o = open(p)?;
        if o.kind != head.kind {
            return Err(invalid(p, "is not the same capture format as the ring's first file"));
        }
        if let Some(h) = &first_header {
            let this = header(&mut o.reader)?;
            // Magic (byte order, precision) and link type must agree; snaplen may differ.
            if this[..4] != h[..4] || this[20..24] != h[20..24] {
                return Err(invalid(
                    p,
                    "has another pcap byte order, precision or link type than the ring's first file",
                ));
            }
            o.reader.consume(PCAP_HEADER);
        }
        sizes.push(o.file_len);
        counters.push(o.disk_read.clone());
        gzip |= o.gzip;
        rest.push_back(o.reader);
    }
    let disk_read = Arc::new(AtomicU64::new(0));
    let chain = Chain { cur: head.reader, rest, index: 0, sizes: sizes.clone(), counters, total: disk_read.clone() };
    Ok(Opened {
        kind: head.kind,
        gzip,
        reader: Box::new(chain),
        file_len: sizes.iter().sum(),
        disk_read,
        on_disk: false,
    })
}

fn invalid(p: &Path, what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} {what}", p.display()))
}

/// The leading 24 bytes of a legacy pcap stream, not consumed.
fn header(r: &mut Box<dyn BufRead + Send>) -> std::io::Result<[u8; PCAP_HEADER]> {
    let buf = r.fill_buf()?;
    if buf.len() < PCAP_HEADER {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "pcap file header cut short"));
    }
    let mut h = [0u8; PCAP_HEADER];
    h.copy_from_slice(&buf[..PCAP_HEADER]);
    Ok(h)
}

/// Readers one after the other; `total` counts disk bytes of the files done plus the current one.
struct Chain {
    cur: Box<dyn BufRead + Send>,
    rest: VecDeque<Box<dyn BufRead + Send>>,
    index: usize,
    sizes: Vec<u64>,
    counters: Vec<Arc<AtomicU64>>,
    total: Arc<AtomicU64>,
}

impl Chain {
    fn update(&self) {
        let done: u64 = self.sizes[..self.index].iter().sum();
        self.total.store(done + self.counters[self.index].load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

impl Read for Chain {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let buf = self.fill_buf()?;
            let n = buf.len().min(out.len());
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Chain {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.cur.fill_buf()?.is_empty() {
            match self.rest.pop_front() {
                Some(next) => {
                    self.cur = next;
                    self.index += 1;
                    self.update();
                }
                None => break,
            }
        }
        self.cur.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.cur.consume(n);
        self.update();
    }
}

// ---- Ring files recognised by content ----

/// Packets looked at at the start of a file and at the end of the one it may continue.
const EDGE_PACKETS: usize = 64;
/// Bytes read from the end of a file to find its last packets.
const TAIL_BYTES: u64 = 512 * 1024;
/// Longest pause between one file's last packet and the next file's first (a ring rotates at once;
/// a quiet link may leave a gap).
pub const MAX_GAP_NS: i64 = 60_000_000_000;

type Tuple = (Endpoint, Endpoint);
/// Connections of a file's last packets: per direction, the latest sequence number.
type TailConns = HashMap<Tuple, Vec<((Endpoint, Endpoint), u32)>>;

fn tuple(a: Endpoint, b: Endpoint) -> Tuple {
    if (a.ip, a.port) <= (b.ip, b.port) {
        (a, b)
    } else {
        (b, a)
    }
}

/// What a capture file looks like at its two ends: enough to tell whether another file continues
/// it. Read from its first packets and its last `TAIL_BYTES`, not from the whole file.
#[derive(Clone, Debug)]
pub struct Ends {
    kind: InputKind,
    /// Interfaces of the file's first section (a legacy pcap header is one).
    ifaces: Vec<RawInterface>,
    /// A legacy pcap's magic number (byte order, precision): files of one ring share it.
    magic: [u8; 4],
    first_ts: i64,
    last_ts: i64,
    /// Connections (unordered 4-tuples) of the first packets, with the direction, sequence number
    /// and bare-SYN-ness of the first packet of each here: candidates for connections under way.
    under_way: Vec<(Tuple, (Endpoint, Endpoint, u32, bool))>,
    /// Connections of the last packets, with the last sequence number sent each way.
    tail: TailConns,
}

impl Ends {
    /// Time of the file's first packet.
    pub fn first_ts(&self) -> i64 {
        self.first_ts
    }
    /// Time of the file's last packet.
    pub fn last_ts(&self) -> i64 {
        self.last_ts
    }
}

/// The ends of a capture file, or `None` when it is no plain (uncompressed) capture, holds no
/// TCP packet, or its end cannot be read back.
pub fn ends(path: &Path) -> Option<Ends> {
    let o = open(path).ok()?;
    if o.gzip || !matches!(o.kind, InputKind::Pcap | InputKind::PcapNg) {
        return None;
    }
    let kind = o.kind;
    let mut file = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).ok()?;
    let mut ifaces: Vec<(RawInterface, u64)> = Vec::new();
    let mut first_ts = None;
    let mut under_way: Vec<(Tuple, (Endpoint, Endpoint, u32, bool))> = Vec::new();
    let mut packets = 0usize;
    let mut head_over = false;
    read_capture_raw(o.reader, kind == InputKind::PcapNg, &mut |item| match item {
        RawItem::Interface(i) => {
            if packets > 0 {
                // Interfaces declared after the first packets (or a second section): not a plain
                // ring file; its tail could not be read with these interfaces.
                head_over = true;
                return false;
            }
            let units = match i.tsresol {
                r if r & 0x80 == 0 => 10u64.checked_pow(u32::from(r)).unwrap_or(0),
                r => 1u64.checked_shl(u32::from(r & 0x7f)).unwrap_or(0),
            };
            ifaces.push((i.clone(), units));
            true
        }
        RawItem::Packet(p) => {
            packets += 1;
            first_ts.get_or_insert(p.ts);
            if let Some(d) = decode_frame(ifaces[p.iface].0.linktype, p.data) {
                let t = tuple(d.src, d.dst);
                if !under_way.iter().any(|(s, _)| *s == t) {
                    under_way.push((t, (d.src, d.dst, d.seq, d.flags & (SYN | ACK) == SYN)));
                }
            }
            packets < EDGE_PACKETS
        }
        RawItem::Obsolete { .. } => true,
    });
    if head_over || ifaces.is_empty() {
        return None;
    }
    let (tail, last_ts) = if kind == InputKind::PcapNg {
        pcapng_tail(&mut file, &ifaces)?
    } else {
        pcap_tail(&mut file, &magic, &ifaces[0])?
    };
    Some(Ends {
        kind,
        ifaces: ifaces.into_iter().map(|(i, _)| i).collect(),
        magic,
        first_ts: first_ts?,
        last_ts,
        under_way,
        tail,
    })
}

/// Whether `next` continues `prev`: same format and interfaces, its first packet within
/// `MAX_GAP_NS` after `prev`'s last, and a connection among its first packets that goes on from
/// `prev`'s last packets (same 4-tuple, sequence numbers not behind).
pub fn continues(prev: &Ends, next: &Ends) -> bool {
    let same_ifaces = if prev.kind == InputKind::Pcap {
        // Snap length may differ between files of a ring (open_ring accepts that).
        prev.magic == next.magic && prev.ifaces[0].linktype == next.ifaces[0].linktype
    } else {
        prev.ifaces == next.ifaces
    };
    let gap = next.first_ts.saturating_sub(prev.last_ts);
    // The connection goes on where it was: its first packet here is not behind the last one sent
    // that way (a keep-alive is one behind; a SYN sent again repeats its sequence number). A
    // capture of the same conversation taken elsewhere (two-sided, clocks apart) starts it again
    // from sequence numbers already seen.
    let goes_on = |(t, (src, dst, seq, bare_syn)): &(Tuple, (Endpoint, Endpoint, u32, bool))| {
        prev.tail.get(t).is_some_and(|dirs| match dirs.iter().find(|(d, _)| *d == (*src, *dst)) {
            Some((_, last)) if *bare_syn => seq == last,
            Some((_, last)) => seq.wrapping_sub(*last) < 1 << 31 || seq.wrapping_sub(*last) == u32::MAX,
            None => !bare_syn,
        })
    };
    prev.kind == next.kind && same_ifaces && (0..=MAX_GAP_NS).contains(&gap) && next.under_way.iter().any(goes_on)
}

/// Notes a tail packet: its connection, and the latest sequence number of its direction.
fn note_tail(tail: &mut TailConns, src: Endpoint, dst: Endpoint, seq: u32) {
    let dirs = tail.entry(tuple(src, dst)).or_default();
    match dirs.iter_mut().find(|(d, _)| *d == (src, dst)) {
        // Packets are walked from the end: the first met per direction is the latest.
        Some(_) => {}
        None => dirs.push(((src, dst), seq)),
    }
}

fn read_tail(file: &mut std::fs::File) -> Option<(Vec<u8>, bool)> {
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    file.take(TAIL_BYTES).read_to_end(&mut buf).ok()?;
    Some((buf, start == 0))
}

fn u32_at(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if big { u32::from_be_bytes(v) } else { u32::from_le_bytes(v) })
}

/// The last packets of a pcapng file, walking blocks back from its end by their trailing length.
fn pcapng_tail(file: &mut std::fs::File, ifaces: &[(RawInterface, u64)]) -> Option<(TailConns, i64)> {
    // Byte order from the section header's byte-order magic.
    let mut shb = [0u8; 12];
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_exact(&mut shb).ok()?;
    let big = match &shb[8..12] {
        [0x1A, 0x2B, 0x3C, 0x4D] => true,
        [0x4D, 0x3C, 0x2B, 0x1A] => false,
        _ => return None,
    };
    let (buf, _) = read_tail(file)?;
    let mut pos = buf.len();
    let mut tail = HashMap::new();
    let mut last_ts = None;
    let mut packets = 0;
    while packets < EDGE_PACKETS && pos >= 12 {
        let len = u32_at(&buf, pos - 4, big)? as usize;
        if len < 12 || !len.is_multiple_of(4) || len > pos {
            break;
        }
        let b = &buf[pos - len..pos];
        if u32_at(b, 4, big)? as usize != len {
            return None;
        }
        match u32_at(b, 0, big)? {
            6 => {
                let (if_id, hi, lo, cap) =
                    (u32_at(b, 8, big)?, u32_at(b, 12, big)?, u32_at(b, 16, big)?, u32_at(b, 20, big)? as usize);
                let (ifc, units) = ifaces.get(if_id as usize)?;
                let data = b.get(28..28usize.checked_add(cap)?)?;
                let ticks = (u64::from(hi) << 32) | u64::from(lo);
                if last_ts.is_none() && *units > 0 {
                    let ns = (u128::from(ticks) * 1_000_000_000 / u128::from(*units)) as i64;
                    last_ts = Some(ns.saturating_add(ifc.tsoffset.saturating_mul(1_000_000_000)));
                }
                if let Some(d) = decode_frame(ifc.linktype, data) {
                    note_tail(&mut tail, d.src, d.dst, d.seq);
                }
                packets += 1;
            }
            // Another section began: its interfaces are not the head's.
            0x0A0D_0D0A => break,
            _ => {}
        }
        pos -= len;
    }
    Some((tail, last_ts?))
}

/// The last packets of a legacy pcap file: records carry no trailing length, so the walk starts
/// at the first offset of the tail from which plausible records chain exactly to the end.
fn pcap_tail(file: &mut std::fs::File, magic: &[u8; 4], ifc: &(RawInterface, u64)) -> Option<(TailConns, i64)> {
    let big = matches!(magic, [0xA1, 0xB2, 0xC3, 0xD4] | [0xA1, 0xB2, 0x3C, 0x4D]);
    let units = ifc.1;
    let (buf, whole) = read_tail(file)?;
    let chain = |from: usize| -> Option<Vec<(usize, usize, i64)>> {
        let mut at = from;
        let mut recs = Vec::new();
        while at < buf.len() {
            let (sec, frac, cap, orig) = (
                u32_at(&buf, at, big)?,
                u32_at(&buf, at + 4, big)?,
                u32_at(&buf, at + 8, big)?,
                u32_at(&buf, at + 12, big)?,
            );
            if u64::from(frac) >= units || cap as usize > MAX_RECORD || cap > orig {
                return None;
            }
            let ts = i64::from(sec) * 1_000_000_000 + (u128::from(frac) * 1_000_000_000 / u128::from(units)) as i64;
            recs.push((at + 16, cap as usize, ts));
            at = at.checked_add(16 + cap as usize)?;
        }
        (at == buf.len() && !recs.is_empty()).then_some(recs)
    };
    let recs = if whole {
        chain(PCAP_HEADER)?
    } else {
        // Two records at least, so that a stray match on payload bytes is unlikely.
        (0..buf.len().min(MAX_RECORD + 16)).find_map(|o| chain(o).filter(|r| r.len() >= 2))?
    };
    let mut tail = HashMap::new();
    for &(at, cap, _) in recs.iter().rev().take(EDGE_PACKETS) {
        if let Some(d) = decode_frame(ifc.0.linktype, &buf[at..at + cap]) {
            note_tail(&mut tail, d.src, d.dst, d.seq);
        }
    }
    Some((tail, recs.last()?.2))
}
