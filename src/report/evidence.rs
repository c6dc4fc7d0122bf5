//! `--evidence DIR`: one small pcapng per finding with the packets of its evidence connections,
//! each evidence frame carrying a packet comment (`opt_comment`, Wireshark's `frame.comment`)
//! naming the finding. Packets are re-read from the input captures in a second streaming pass,
//! after the analysis: nothing is kept per packet while analysing, and this pass keeps only the
//! selection (connections' 4-tuples and frame ranges, evidence frame numbers) and open writers.
//!
//! Timestamps are copied as the capture's own ticks with its interface's `if_tsresol` and
//! `if_tsoffset`, so Wireshark shows the same times; interfaces keep link type, snap length and
//! name. A legacy pcap's header becomes one interface (tsresol 6 or 9).
//!
//! Bounds: a connection of more than `LONG_CONNECTION` packets contributes its first
//! `HEAD_PACKETS` packets and the packets within `WINDOW_FRAMES` frames of the finding's evidence
//! frames (or of its last frame when the finding points at none); a file stops at
//! `MAX_PACKETS_PER_FILE`. Findings are exported in groups of `FINDINGS_PER_PASS` so that the
//! number of open files stays small.
//!
//! Captures are re-read through `ingest::pcap::read_capture_raw` (frames numbered as the analysis
//! numbered them). Traces' packets are exported too: NDIS-PacketCapture frames and PktMon packet
//! events, numbered as `pipeline::etl` numbers them (`etl_pass`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::analysis::Analysis;
use crate::ingest::pcap::RawItem;
use crate::ingest::{self, decode::decode_frame, InputKind};
use crate::model::{Endpoint, Finding};
use anyhow::{Context, Result};

pub const LONG_CONNECTION: u64 = 2_000;
pub const HEAD_PACKETS: u32 = 16;
pub const WINDOW_FRAMES: u64 = 500;
pub const MAX_PACKETS_PER_FILE: u64 = 50_000;
const FINDINGS_PER_PASS: usize = 64;

/// One evidence file written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceFile {
    pub finding_id: u64,
    pub path: PathBuf,
    pub packets: u64,
    /// Packets carrying a comment (the finding's evidence frames found in the captures).
    pub comments: u64,
    /// The file stopped at `MAX_PACKETS_PER_FILE`.
    pub truncated: bool,
}

/// What `write_evidence` did.
#[derive(Clone, Debug, Default)]
pub struct EvidenceReport {
    pub files: Vec<EvidenceFile>,
    /// Findings without capture packets (log-only, pipe-only, trace-only evidence).
    pub without_packets: Vec<u64>,
    /// Inputs that could not be read again, or changed since the analysis.
    pub problems: Vec<String>,
}

/// The file name of a finding's evidence.
pub fn file_name(f: &Finding) -> String {
    let kind: String =
        f.kind.name().chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }).collect();
    format!("finding-{:04}-{kind}.pcapng", f.id)
}

/// The packet comment put on a finding's evidence frames.
pub fn comment(f: &Finding) -> String {
    format!("ipcscope finding {} {} ({}): {}", f.id, f.kind, f.severity.name(), f.summary)
}

/// Writes the evidence files of every finding into `dir` (created if missing).
pub fn write_evidence(analysis: &Analysis, dir: &Path) -> Result<EvidenceReport> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut report = EvidenceReport::default();
    let conn_by_id: HashMap<u64, &crate::model::Connection> = analysis.connections.iter().map(|c| (c.id, c)).collect();
    for chunk in analysis.findings.chunks(FINDINGS_PER_PASS) {
        let mut outs: Vec<Output> = chunk.iter().map(|f| Output::new(dir, f)).collect();
        for (input, summary) in analysis.inputs.iter().enumerate() {
            let input = input as u32;
            let mut sel = Selection::default();
            for (fi, f) in chunk.iter().enumerate() {
                sel.add(fi, f, input, &conn_by_id);
            }
            if sel.is_empty() {
                continue;
            }
            let path = Path::new(&summary.path);
            match pass(input, path, ring_files(summary).as_deref(), &mut sel, &mut outs) {
                Ok(frames) if frames != summary.packets => report.problems.push(format!(
                    "{}: {frames} frames now, {} when analysed: the file changed, evidence may be wrong",
                    path.display(),
                    summary.packets
                )),
                Ok(_) => {}
                Err(e) => report.problems.push(format!("{}: {e}", path.display())),
            }
        }
        for (o, f) in outs.into_iter().zip(chunk) {
            match o.finish()? {
                Some(file) => report.files.push(file),
                None => report.without_packets.push(f.id),
            }
        }
    }
    Ok(report)
}

/// A connection of one finding on the input being read.
struct ConnSel {
    finding: usize,
    first: u64,
    last: u64,
    long: bool,
    head_left: u32,
    /// Frame windows kept of a long connection.
    windows: Vec<(u64, u64)>,
}

#[derive(Default)]
struct Selection {
    /// Evidence frame → findings (indices in the chunk) it is evidence of.
    evidence: HashMap<u64, Vec<usize>>,
    /// Unordered 4-tuple → connections.
    tuples: HashMap<(Endpoint, Endpoint), Vec<ConnSel>>,
}

fn tuple_key(a: Endpoint, b: Endpoint) -> (Endpoint, Endpoint) {
    if (a.ip, a.port) <= (b.ip, b.port) {
        (a, b)
    } else {
        (b, a)
    }
}

impl Selection {
    fn is_empty(&self) -> bool {
        self.evidence.is_empty() && self.tuples.is_empty()
    }

    fn add(&mut self, fi: usize, f: &Finding, input: u32, conns: &HashMap<u64, &crate::model::Connection>) {
        let mut frames: Vec<u64> = f.evidence.iter().filter(|e| e.input == input).map(|e| e.frame).collect();
        frames.sort_unstable();
        frames.dedup();
        for &n in &frames {
            self.evidence.entry(n).or_default().push(fi);
        }
        let mut ids = f.connections.clone();
        ids.sort_unstable();
        ids.dedup();
        for c in ids.iter().filter_map(|id| conns.get(id)).filter(|c| c.input == input) {
            let packets = u64::from(c.client_packets) + u64::from(c.server_packets);
            let long = packets > LONG_CONNECTION;
            let inside: Vec<u64> =
                frames.iter().copied().filter(|&n| n >= c.first_frame && n <= c.last_frame).collect();
            let windows = if !long {
                Vec::new()
            } else if inside.is_empty() {
                vec![(c.last_frame.saturating_sub(WINDOW_FRAMES), c.last_frame)]
            } else {
                inside.iter().map(|&n| (n.saturating_sub(WINDOW_FRAMES), n.saturating_add(WINDOW_FRAMES))).collect()
            };
            self.tuples.entry(tuple_key(c.client, c.server)).or_default().push(ConnSel {
                finding: fi,
                first: c.first_frame,
                last: c.last_frame,
                long,
                head_left: HEAD_PACKETS,
                windows,
            });
        }
    }

    /// Findings (chunk indices) that want this frame, each with whether it is one of its evidence frames.
    fn wanted(&mut self, frame: u64, tuple: Option<(Endpoint, Endpoint)>, out: &mut Vec<(usize, bool)>) {
        out.clear();
        if let Some(fs) = self.evidence.get(&frame) {
            out.extend(fs.iter().map(|&fi| (fi, true)));
        }
        let Some((a, b)) = tuple else { return };
        let Some(sels) = self.tuples.get_mut(&tuple_key(a, b)) else { return };
        for s in sels.iter_mut().filter(|s| frame >= s.first && frame <= s.last) {
            if out.iter().any(|&(fi, _)| fi == s.finding) {
                continue;
            }
            let keep = if !s.long {
                true
            } else if s.head_left > 0 {
                s.head_left -= 1;
                true
            } else {
                s.windows.iter().any(|&(lo, hi)| frame >= lo && frame <= hi)
            };
            if keep {
                out.push((s.finding, false));
            }
        }
    }
}

/// An interface as the input declares it, copied into the outputs that use it.
type Iface = ingest::pcap::RawInterface;

/// A packet as copied: ticks in its interface's units, data, original length.
struct Packet<'a> {
    ticks: u64,
    data: &'a [u8],
    orig_len: u32,
}

/// The files of a ring-buffer input (`ring_files` in its summary), read as one capture.
fn ring_files(summary: &crate::analysis::InputSummary) -> Option<Vec<PathBuf>> {
    (!summary.ring_files.is_empty()).then(|| summary.ring_files.clone())
}

/// Reads one input again and copies the wanted packets; returns the number of frames seen.
/// Frame numbers are `ingest::pcap::read_capture_raw`'s, counted as the analysis counted them.
fn pass(input: u32, path: &Path, ring: Option<&[PathBuf]>, sel: &mut Selection, outs: &mut [Output]) -> Result<u64> {
    let opened = match ring {
        Some(files) => ingest::ring::open_ring(files),
        None => ingest::open(path),
    };
    let opened = opened.map_err(|e| anyhow::anyhow!("cannot open again: {e}"))?;
    let ng = match opened.kind {
        InputKind::PcapNg => true,
        InputKind::Pcap => false,
        InputKind::Etl => return etl_pass(input, opened, sel, outs),
        // Evidence in logs is not packets.
        _ => return Ok(0),
    };
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut wanted = Vec::new();
    let mut failed: Option<anyhow::Error> = None;
    let (frames, error) = ingest::pcap::read_capture_raw(opened.reader, ng, &mut |item| match item {
        RawItem::Interface(i) => {
            ifaces.push(i.clone());
            true
        }
        RawItem::Packet(p) => {
            let tuple = decode_frame(ifaces[p.iface].linktype, p.data).map(|d| (d.src, d.dst));
            sel.wanted(p.frame, tuple, &mut wanted);
            let copy = Packet { ticks: p.ticks, data: p.data, orig_len: p.orig_len };
            for &(fi, is_evidence) in &wanted {
                if let Err(e) = outs[fi].packet(input, &ifaces[p.iface], p.iface, &copy, is_evidence) {
                    failed = Some(e);
                    return false;
                }
            }
            true
        }
        // Obsolete Packet Blocks are counted (frame numbers) but not copied.
        RawItem::Obsolete { .. } => true,
    });
    if let Some(e) = failed {
        return Err(e);
    }
    // Damage: the analysis stopped at the same place, so the frames before it are all there is.
    let _ = error;
    Ok(frames)
}

/// Reads a trace again and copies the wanted NDIS-PacketCapture frames and PktMon packets, numbered
/// as `pipeline::etl` numbers them (NDIS frames as completed, PktMon: every packet event, as
/// etl2pcapng writes them). Returns the frames the analysis counted (NDIS frames plus first
/// appearances of PktMon packets), for the changed-file check.
fn etl_pass(input: u32, opened: ingest::Opened, sel: &mut Selection, outs: &mut [Output]) -> Result<u64> {
    use crate::ingest::etl::{
        decode_ndis_fragment, decode_pktmon_packet, Appearance, Dedupe, EtlReader, FrameAssembler, DEFAULT_MERGE_WINDOW,
    };
    use ingest::decode::linktype;
    let etl = EtlReader::new(opened.reader).map_err(|e| anyhow::anyhow!("not a readable trace: {e}"))?;
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut assembler = FrameAssembler::default();
    let mut dedupe = Dedupe::default();
    let (mut ndis_frames, mut pk_events, mut pk_first) = (0u64, 0u64, 0u64);
    let mut wanted = Vec::new();
    let mut copy = |frame: u64, tuple, iface: usize, ifaces: &[Iface], ts: i64, data: &[u8], orig_len: u32| {
        sel.wanted(frame, tuple, &mut wanted);
        // A time before 1970 cannot be written as pcapng ticks; such a frame is left out.
        let Ok(ticks) = u64::try_from(ts) else { return Ok(()) };
        let p = Packet { ticks, data, orig_len };
        for &(fi, is_evidence) in &wanted {
            outs[fi].packet(input, &ifaces[iface], iface, &p, is_evidence)?;
        }
        Ok::<(), anyhow::Error>(())
    };
    for item in etl.time_ordered_window(DEFAULT_MERGE_WINDOW) {
        // A damaged buffer: the analysis skipped it too.
        let Ok(rec) = item else { continue };
        if rec.header.record_index == 0 {
            continue;
        }
        let r = rec.as_ref();
        if let Some(p) = decode_pktmon_packet(&r) {
            pk_events += 1;
            if let Appearance::First(_) = dedupe.push(&p) {
                pk_first += 1;
            }
            let tuple = p.network_bytes().and_then(|b| decode_frame(linktype::RAW, b)).map(|d| (d.src, d.dst));
            if let Some(lt) = p.link_type() {
                let i = trace_iface(&mut ifaces, lt, "pktmon");
                copy(pk_events, tuple, i, &ifaces, p.origin.utc(), p.payload, u32::from(p.original_size))?;
            }
        } else if let Some(frag) = decode_ndis_fragment(&r) {
            if let Some(f) = assembler.push(frag) {
                ndis_frames += 1;
                let tuple = decode_frame(linktype::ETHERNET, &f.data).map(|d| (d.src, d.dst));
                let i = trace_iface(&mut ifaces, linktype::ETHERNET, "ndis");
                copy(ndis_frames, tuple, i, &ifaces, f.origin.utc(), &f.data, f.data.len() as u32)?;
            }
        }
    }
    Ok(ndis_frames + pk_first)
}

/// A trace's interface for frames of link type `lt` (NDIS frames are Ethernet; PktMon logs
/// Ethernet, 802.11 or raw IP), declared on first use; times are written in ns.
fn trace_iface(ifaces: &mut Vec<Iface>, lt: u32, name: &str) -> usize {
    match ifaces.iter().position(|i| i.linktype == lt && i.name.as_deref() == Some(name.as_bytes())) {
        Some(i) => i,
        None => {
            ifaces.push(Iface { linktype: lt, snaplen: 0, tsresol: 9, tsoffset: 0, name: Some(name.into()) });
            ifaces.len() - 1
        }
    }
}

/// One finding's evidence file, opened at its first packet.
struct Output {
    dir: PathBuf,
    name: String,
    comment: String,
    file: Option<(tempfile::NamedTempFile, std::io::BufWriter<std::fs::File>)>,
    /// (input, interface index in that input) → interface id in this file.
    ifaces: HashMap<(u32, usize), u32>,
    packets: u64,
    comments: u64,
    truncated: bool,
    finding_id: u64,
}

impl Output {
    fn new(dir: &Path, f: &Finding) -> Self {
        Output {
            dir: dir.to_path_buf(),
            name: file_name(f),
            comment: comment(f),
            file: None,
            ifaces: HashMap::new(),
            packets: 0,
            comments: 0,
            truncated: false,
            finding_id: f.id,
        }
    }

    fn packet(&mut self, input: u32, iface: &Iface, iface_ix: usize, p: &Packet, evidence: bool) -> Result<()> {
        if self.packets >= MAX_PACKETS_PER_FILE {
            self.truncated = true;
            return Ok(());
        }
        if self.file.is_none() {
            let tmp = super::temp_file_in(&self.dir, &self.name)?;
            let w = std::io::BufWriter::new(tmp.as_file().try_clone()?);
            self.file = Some((tmp, w));
            let w = &mut self.file.as_mut().map(|f| &mut f.1).expect("just set");
            w.write_all(&section_header())?;
        }
        let next = self.ifaces.len() as u32;
        let w = &mut self.file.as_mut().expect("opened above").1;
        let id = match self.ifaces.get(&(input, iface_ix)) {
            Some(&id) => id,
            None => {
                w.write_all(&interface_block(iface))?;
                self.ifaces.insert((input, iface_ix), next);
                next
            }
        };
        let comment = evidence.then_some(self.comment.as_str());
        w.write_all(&packet_block(id, p.ticks, p.data, p.orig_len, comment))?;
        self.packets += 1;
        self.comments += evidence as u64;
        Ok(())
    }

    fn finish(self) -> Result<Option<EvidenceFile>> {
        let Some((tmp, mut w)) = self.file else { return Ok(None) };
        w.flush()?;
        drop(w);
        let target = self.dir.join(&self.name);
        tmp.persist(&target).with_context(|| format!("cannot write {}", target.display()))?;
        Ok(Some(EvidenceFile {
            finding_id: self.finding_id,
            path: target,
            packets: self.packets,
            comments: self.comments,
            truncated: self.truncated,
        }))
    }
}

// ---- pcapng blocks (little-endian), https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng ----

fn pad4(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    // An option longer than 65535 bytes cannot be written; cut (only comments could be that long).
    let value = &value[..value.len().min(0xfff0)];
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&(value.len() as u16).to_le_bytes());
    body.extend_from_slice(value);
    pad4(body);
}

fn end_options(body: &mut Vec<u8>) {
    body.extend_from_slice(&[0, 0, 0, 0]);
}

fn block(kind: u32, body: Vec<u8>) -> Vec<u8> {
    let len = (12 + body.len()) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&body);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

fn section_header() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    option(&mut body, 4, format!("ipcscope {} (evidence)", env!("CARGO_PKG_VERSION")).as_bytes());
    end_options(&mut body);
    block(0x0A0D_0D0A, body)
}

fn interface_block(i: &Iface) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(i.linktype as u16).to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&i.snaplen.to_le_bytes());
    if let Some(name) = &i.name {
        option(&mut body, 2, name);
    }
    if i.tsresol != 6 {
        option(&mut body, 9, &[i.tsresol]);
    }
    if i.tsoffset != 0 {
        option(&mut body, 14, &i.tsoffset.to_le_bytes());
    }
    end_options(&mut body);
    block(1, body)
}

fn packet_block(if_id: u32, ticks: u64, data: &[u8], orig_len: u32, comment: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(data.len() + 64);
    body.extend_from_slice(&if_id.to_le_bytes());
    body.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ticks as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&orig_len.to_le_bytes());
    body.extend_from_slice(data);
    pad4(&mut body);
    if let Some(c) = comment {
        option(&mut body, 1, c.as_bytes());
        end_options(&mut body);
    }
    block(6, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long connection gives its first HEAD_PACKETS packets and the window around an evidence
    /// frame, nothing else; the evidence frame itself is marked for a comment.
    #[test]
    fn long_connection_is_cut_to_head_and_evidence_window() {
        let a = Endpoint { ip: "10.0.0.1".parse().unwrap(), port: 50000 };
        let b = Endpoint { ip: "10.0.0.2".parse().unwrap(), port: 445 };
        let mut sel = Selection::default();
        sel.evidence.insert(5000, vec![0]);
        sel.tuples.entry(tuple_key(a, b)).or_default().push(ConnSel {
            finding: 0,
            first: 1,
            last: 9000,
            long: true,
            head_left: HEAD_PACKETS,
            windows: vec![(5000 - WINDOW_FRAMES, 5000 + WINDOW_FRAMES)],
        });
        let mut kept = Vec::new();
        let mut commented = Vec::new();
        let mut out = Vec::new();
        for frame in 1..=9500u64 {
            // Every frame belongs to the connection, alternating direction.
            let t = if frame % 2 == 0 { (a, b) } else { (b, a) };
            sel.wanted(frame, Some(t), &mut out);
            if let Some(&(fi, ev)) = out.first() {
                assert_eq!(fi, 0);
                kept.push(frame);
                if ev {
                    commented.push(frame);
                }
            }
            assert!(out.len() <= 1, "a frame is written once per finding");
        }
        let head: Vec<u64> = (1..=HEAD_PACKETS as u64).collect();
        let window: Vec<u64> = (5000 - WINDOW_FRAMES..=5000 + WINDOW_FRAMES).collect();
        assert_eq!(kept, [head, window].concat());
        assert_eq!(commented, vec![5000]);
    }
}
