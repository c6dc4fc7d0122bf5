//! Formats → typed events. Files are recognised by content, never by extension; `.gz` is
//! unwrapped transparently.
//!
//! # The reader contract
//!
//! Every reader hands its events to a sink — a callback (`pcap::read_capture`,
//! `evtx::for_each_event_in_file`) or the consumer of an iterator (`etl::EtlReader`,
//! `procmon::PmlReader`, `procmon::CsvReader`, `textlog::TextLogReader`) — under the same rules, as
//! ripgrep's `grep_searcher::Sink` has one contract for every searcher:
//!
//! * **Order**: events come in file order. The one exception says so in its name: ETL's
//!   `time_ordered`/`time_ordered_window` merge the per-CPU buffers into time order (the window is
//!   bounded; `docs/etl.md`).
//! * **Time**: every timestamp is `model::UtcNs`, nanoseconds since the Unix epoch in UTC, converted
//!   once, in the reader (FILETIME through `etl::filetime_to_utc`, pcapng's `if_tsresol`/`if_tsoffset`,
//!   EVTX `SystemTime`). Formats that write a local time without a zone keep it as written and say so
//!   (`textlog::LogLine::ts_local_ns`, Procmon CSV's time of day); the pipeline settles their offset.
//! * **Damage**: everything before the damage is delivered first, then one [`Damage`] (byte offset in the
//!   decompressed stream, and why). A reader that cannot go on ends after it; one whose framing still
//!   holds (an ETL buffer with a sane BufferSize, the next EVTX chunk) goes on with the next part, and
//!   the damage stays in sequence with the events. Readers never add the path; the pipeline does, once
//!   ([`Damage::in_input`]). Damage never panics: third-party parsers run under `catch_unwind`.
//! * **Cancellation**: a progress callback returning `false` (`pcap`'s `progress`, the pipeline's `tick`
//!   around iterator readers) stops the walk at the next check; what was delivered stays valid and no
//!   damage is reported for it. Iterator readers stop when their consumer stops pulling.
//! * **Memory**: no allocation is sized from a length field before the bytes are there or the size is
//!   checked: reads grow with the bytes actually read (`Read::take` + `read_to_end`), or the length is
//!   checked against the file's size or a fixed cap first (pcap's 256 KiB record, ETL's 64 MiB buffer
//!   and LZ77 ratio, PML strings and details, CSV rows, text lines). What a reader holds between events
//!   is bounded too (one ETL buffer or merge window, one text record).

mod damage;
pub mod decode;
pub mod etl;
pub mod evtx;
pub mod pcap;
pub mod procmon;
pub mod ring;
pub mod textlog;
// SMB message bytes (named pipes over the network), fed from the pcap branch.
pub mod smb;

pub use damage::{Damage, DamageKind, Part};

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a file holds, decided from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    Pcap,
    PcapNg,
    Etl,
    Evtx,
    TextLog,
    /// Process Monitor's native log (PML).
    ProcmonPml,
    /// Process Monitor's CSV export (recognised by its header row).
    ProcmonCsv,
    /// No bytes at all.
    Empty,
    /// Binary content of no format we know: never read as text.
    Unknown,
}

impl InputKind {
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Pcap => "pcap",
            InputKind::PcapNg => "pcapng",
            InputKind::Etl => "etl",
            InputKind::Evtx => "evtx",
            InputKind::TextLog => "text",
            InputKind::ProcmonPml => "procmon_pml",
            InputKind::ProcmonCsv => "procmon_csv",
            InputKind::Empty => "empty",
            InputKind::Unknown => "unknown",
        }
    }
}

/// Recognises a format from the first bytes of the (decompressed) stream.
pub fn sniff(head: &[u8]) -> InputKind {
    let magic = head.get(0..4).map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
    match magic {
        Some(0xa1b2_c3d4) | Some(0xd4c3_b2a1) | Some(0xa1b2_3c4d) | Some(0x4d3c_b2a1) => InputKind::Pcap,
        Some(0x0a0d_0d0a) => InputKind::PcapNg,
        _ if head.starts_with(b"ElfFile\0") => InputKind::Evtx,
        _ if head.starts_with(b"PML_") => InputKind::ProcmonPml,
        _ if looks_like_etl(head) => InputKind::Etl,
        _ if procmon::looks_like_procmon_csv(head) => InputKind::ProcmonCsv,
        _ if head.is_empty() => InputKind::Empty,
        _ if looks_binary(head) => InputKind::Unknown,
        _ => InputKind::TextLog,
    }
}

/// Text is UTF-8 or a single-byte code page (few control bytes, no NUL) or UTF-16 (BOM, or
/// ASCII-looking with every other byte NUL); anything else is binary.
fn looks_binary(head: &[u8]) -> bool {
    if head.starts_with(&[0xef, 0xbb, 0xbf]) || head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff]) {
        return false;
    }
    let text_byte = |b: u8| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b);
    let pairs = head.len() / 2;
    if pairs >= 2 {
        let even_nul = head.chunks_exact(2).filter(|p| p[0] == 0 && text_byte(p[1]) && p[1] != 0).count();
        let odd_nul = head.chunks_exact(2).filter(|p| p[1] == 0 && text_byte(p[0]) && p[0] != 0).count();
        // UTF-16 without BOM (a file cut mid-character may end on one stray byte).
        if odd_nul * 10 >= pairs * 9 || even_nul * 10 >= pairs * 9 {
            return false;
        }
    }
    // A stray NUL or control byte in a log is tolerated; formats carry many.
    let nul = head.iter().filter(|&&b| b == 0).count();
    let bad = head.iter().filter(|&&b| !text_byte(b)).count();
    nul * 50 > head.len() || bad * 20 > head.len()
}

/// An ETL file starts with a WMI_BUFFER_HEADER whose first record is the logfile header:
/// a system trace header (marker 0xC0 flags, type 0x01/0x02) of the EventTrace group (0x00).
fn looks_like_etl(head: &[u8]) -> bool {
    let (Some(size), Some(marker)) = (
        head.get(0..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        head.get(0x48..0x4c).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    ) else {
        return false;
    };
    let hdr_type = (marker >> 16) & 0xff;
    size >= 0x48 && marker >> 24 == 0xc0 && (hdr_type == 0x01 || hdr_type == 0x02)
}

/// An opened input: its kind and a buffered reader positioned at the first byte of content.
pub struct Opened {
    pub kind: InputKind,
    pub gzip: bool,
    pub reader: Box<dyn BufRead + Send>,
    /// Size on disk, for progress.
    pub file_len: u64,
    /// Bytes read from disk so far (compressed bytes for .gz), for progress.
    pub disk_read: Arc<AtomicU64>,
    /// The content is a plain file on disk (readers that need to seek may reopen it by path).
    pub on_disk: bool,
}

/// Opens a file read-only, unwraps gzip, and sniffs its kind.
pub fn open(path: &Path) -> std::io::Result<Opened> {
    let file = File::open(path)?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    open_stream(file, file_len, true)
}

/// Opens bytes already in memory, as `open` does a file.
pub fn open_bytes(bytes: Vec<u8>) -> std::io::Result<Opened> {
    let file_len = bytes.len() as u64;
    open_stream(std::io::Cursor::new(bytes), file_len, false)
}

fn open_stream<R: Read + Send + 'static>(inner: R, file_len: u64, on_disk: bool) -> std::io::Result<Opened> {
    let disk_read = Arc::new(AtomicU64::new(0));
    let counted = CountingReader { inner, count: disk_read.clone() };
    // Small on purpose: readers that ask for more than this (pcap-parser refills its own
    // half-megabyte buffer) read straight from the file, without a copy through this one.
    let mut raw = BufReader::with_capacity(64 * 1024, counted);
    let gzip = raw.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    let kind = sniff(&peek(&mut reader, 512)?);
    Ok(Opened { kind, gzip, reader, file_len, disk_read, on_disk: on_disk && !gzip })
}

/// Returns up to `n` leading bytes without consuming them (BufRead may hand out fewer per call).
fn peek(reader: &mut Box<dyn BufRead + Send>, n: usize) -> std::io::Result<Vec<u8>> {
    let buf = reader.fill_buf()?;
    Ok(buf[..buf.len().min(n)].to_vec())
}

/// Counts bytes pulled through a reader, for progress on streams whose consumer hides it.
pub struct CountingReader<R> {
    pub inner: R,
    pub count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        assert_eq!(sniff(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]), InputKind::Pcap);
        assert_eq!(sniff(&[0x4d, 0x3c, 0xb2, 0xa1]), InputKind::Pcap);
        assert_eq!(sniff(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0]), InputKind::PcapNg);
        assert_eq!(sniff(b"ElfFile\0rest"), InputKind::Evtx);
        assert_eq!(sniff(b"2026-11-22 10:00:00,000 ERROR x"), InputKind::TextLog);
        assert_eq!(sniff(&[]), InputKind::Empty);
        assert_eq!(sniff(b"PML_\x09\x00\x00\x00\x01"), InputKind::ProcmonPml);
        // A zip, an ELF binary: binary, not text.
        assert_eq!(sniff(b"PK\x03\x04\x14\x00\x00\x00\x08\x00"), InputKind::Unknown);
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01\x00\x00\x00"), InputKind::Unknown);
        // UTF-16LE text with and without a BOM, Latin-1 text: text.
        let utf16: Vec<u8> = "2026-11-22 ERROR x\r\n".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(sniff(&utf16), InputKind::TextLog);
        assert_eq!(sniff(&[&[0xff, 0xfe][..], &utf16].concat()), InputKind::TextLog);
        assert_eq!(sniff(b"2026-11-22 Fehler: Verbindung getrennt \xe4\xf6\xfc\n"), InputKind::TextLog);
    }
}
