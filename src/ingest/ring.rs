//! Ring-buffer capture files read as one capture: the files of one interface that continue each
//! other (dumpcap `-b`, `editcap -c`) are chained into one stream, so connections that cross a
//! file boundary continue instead of starting again. Frames are numbered across the ring, as in
//! `mergecap -a -w whole.pcapng FILES`.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{open, InputKind, Opened};

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
