//! Input encoding: UTF-8 passes through, UTF-16 (LE/BE, with or without BOM) becomes UTF-8.

use std::io::{self, BufRead};

/// Input encoding, found from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    Unknown,
    Utf8,
    Utf16Le,
    Utf16Be,
}

/// Passes UTF-8 through and turns UTF-16 (BOM, or ASCII-looking "x\0y\0") into UTF-8,
/// because Windows tools (PowerShell 5 redirection, some services) write UTF-16LE logs.
pub(super) struct Transcode<R> {
    inner: R,
    enc: Enc,
    out: Vec<u8>,
    pos: usize,
    /// Odd byte left over between reads (UTF-16).
    carry: Option<u8>,
    /// High surrogate waiting for its pair (UTF-16).
    high: Option<u16>,
    inner_eof: bool,
    /// Bytes taken from `inner` so far: the file offset of damage found while reading.
    raw_consumed: u64,
}

impl<R: BufRead> Transcode<R> {
    pub(super) fn new(inner: R) -> Self {
        Transcode {
            inner,
            enc: Enc::Unknown,
            out: Vec::new(),
            pos: 0,
            carry: None,
            high: None,
            inner_eof: false,
            raw_consumed: 0,
        }
    }

    fn sniff(&mut self) -> io::Result<()> {
        let mut head = Vec::with_capacity(4);
        while head.len() < 4 {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let n = avail.len().min(4 - head.len());
            head.extend_from_slice(&avail[..n]);
            self.inner.consume(n);
            self.raw_consumed += n as u64;
        }
        let looks_le = head.len() == 4 && head[1] == 0 && head[3] == 0 && head[0] != 0 && head[2] != 0;
        let looks_be = head.len() == 4 && head[0] == 0 && head[2] == 0 && head[1] != 0 && head[3] != 0;
        let (enc, skip) = if head.starts_with(&[0xFF, 0xFE]) {
            (Enc::Utf16Le, 2)
        } else if head.starts_with(&[0xFE, 0xFF]) {
            (Enc::Utf16Be, 2)
        } else if looks_le {
            (Enc::Utf16Le, 0)
        } else if looks_be {
            (Enc::Utf16Be, 0)
        } else {
            (Enc::Utf8, 0)
        };
        self.enc = enc;
        self.out.clear();
        self.pos = 0;
        if enc == Enc::Utf8 {
            self.out.extend_from_slice(&head);
        } else {
            let rest = head.get(skip..).unwrap_or(&[]).to_vec();
            self.decode16(&rest, false);
        }
        Ok(())
    }

    /// Bytes of the underlying stream consumed so far.
    pub(super) fn raw_consumed(&self) -> u64 {
        self.raw_consumed
    }

    fn decode16(&mut self, bytes: &[u8], eof: bool) {
        let mut units = Vec::with_capacity(bytes.len() / 2 + 2);
        if let Some(h) = self.high.take() {
            units.push(h);
        }
        let mut it = bytes.iter().copied();
        let mut first = self.carry.take();
        loop {
            let a = match first.take() {
                Some(a) => a,
                None => match it.next() {
                    Some(a) => a,
                    None => break,
                },
            };
            let Some(b) = it.next() else {
                self.carry = Some(a);
                break;
            };
            units.push(if self.enc == Enc::Utf16Be { u16::from_be_bytes([a, b]) } else { u16::from_le_bytes([a, b]) });
        }
        if !eof {
            if let Some(&last) = units.last() {
                if (0xD800..0xDC00).contains(&last) {
                    self.high = units.pop();
                }
            }
        } else if self.carry.take().is_some() {
            units.push(0xFFFD);
        }
        let s: String = char::decode_utf16(units).map(|r| r.unwrap_or('\u{FFFD}')).collect();
        self.out.extend_from_slice(s.as_bytes());
    }
}

impl<R: BufRead> io::Read for Transcode<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Transcode<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.enc == Enc::Unknown {
            self.sniff()?;
        }
        if self.pos < self.out.len() {
            return Ok(&self.out[self.pos..]);
        }
        if self.enc == Enc::Utf8 {
            return self.inner.fill_buf();
        }
        self.out.clear();
        self.pos = 0;
        while self.out.is_empty() && !self.inner_eof {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                self.inner_eof = true;
                self.decode16(&[], true);
                break;
            }
            let chunk = avail.to_vec();
            self.inner.consume(chunk.len());
            self.raw_consumed += chunk.len() as u64;
            self.decode16(&chunk, false);
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        if self.pos < self.out.len() {
            self.pos = (self.pos + amt).min(self.out.len());
        } else if self.enc == Enc::Utf8 {
            self.inner.consume(amt);
            self.raw_consumed += amt as u64;
        }
    }
}
