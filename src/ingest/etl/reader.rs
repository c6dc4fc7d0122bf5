//! Streaming buffer walk: one buffer in memory at a time, read straight from a `Read`.

use super::bytes::{i64_at, u16_at, u32_at, u64_at, utf16z_at};
use super::lz77::decompress_plain_lz77;
use super::record::{count_records, parse_record, HeaderKind, Record, RecordCtx, RecordsInBuffer, Step};
use crate::ingest::{Damage, DamageKind, Part};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Size of WMI_BUFFER_HEADER.
pub const BUFFER_HEADER_SIZE: usize = 0x48;
/// Largest buffer (on disk or decompressed) we accept; larger sizes are treated as damage.
pub const MAX_BUFFER_SIZE: u32 = 64 * 1024 * 1024;

const FLAG_COMPRESSED: u16 = 0x40;
/// Largest decompressed/compressed size ratio accepted for a compressed buffer (the corpus peaks at
/// 14×). Above it the buffer's Offset is treated as damage: a ~100-byte LZ77 stream can otherwise
/// announce and produce 64 MiB, so a few KiB of file would cost GiBs of memory and minutes of work.
pub const MAX_LZ77_RATIO: usize = 1024;

/// WMI_BUFFER_HEADER fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BufferHeader {
    pub buffer_size: u32,
    pub saved_offset: u32,
    pub current_offset: u32,
    pub timestamp: i64,
    pub sequence_number: i64,
    pub clock_type_freq: u64,
    pub processor_index: u16,
    pub logger_id: u16,
    pub state: u32,
    /// Filled bytes including the header (decompressed size + 0x48 for compressed buffers).
    pub offset: u32,
    pub buffer_flag: u16,
    pub buffer_type: u16,
}

impl BufferHeader {
    pub fn parse(b: &[u8]) -> Option<BufferHeader> {
        Some(BufferHeader {
            buffer_size: u32_at(b, 0)?,
            saved_offset: u32_at(b, 4)?,
            current_offset: u32_at(b, 8)?,
            timestamp: i64_at(b, 0x10)?,
            sequence_number: i64_at(b, 0x18)?,
            clock_type_freq: u64_at(b, 0x20)?,
            processor_index: u16_at(b, 0x28)?,
            logger_id: u16_at(b, 0x2A)?,
            state: u32_at(b, 0x2C)?,
            offset: u32_at(b, 0x30)?,
            buffer_flag: u16_at(b, 0x34)?,
            buffer_type: u16_at(b, 0x36)?,
        })
    }
    pub fn is_compressed(&self) -> bool {
        self.buffer_flag & FLAG_COMPRESSED != 0
    }
}

/// Raw record clock to UTC FILETIME, exactly as dissect.etl computes it:
/// `ft = (StartTime - trunc(scale * hdr_ts)) + trunc(scale * ts)` with
/// scale = 1e7/PerfFreq (QPC), 1 (system time) or 10/CpuSpeedInMHz (CPU cycles).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clock {
    /// TRACE_LOGFILE_HEADER.StartTime (FILETIME).
    pub start_time: i64,
    /// Raw TimeStamp of record 0 (the logfile header).
    pub header_timestamp: i64,
    /// ReservedFlags: 1 QPC, 2 system time, 3 CPU cycles.
    pub clock_type: u32,
    pub perf_freq: i64,
    pub cpu_speed_mhz: u32,
}

impl Clock {
    /// Identity clock (raw value returned unchanged) used before/without a logfile header.
    pub const IDENTITY: Clock =
        Clock { start_time: 0, header_timestamp: 0, clock_type: 2, perf_freq: 0, cpu_speed_mhz: 0 };

    fn scale(&self) -> Option<f64> {
        match self.clock_type {
            1 if self.perf_freq > 0 => Some(1e7 / self.perf_freq as f64),
            3 if self.cpu_speed_mhz > 0 => Some(10.0 / self.cpu_speed_mhz as f64),
            _ => None, // system time, or unusable parameters: 1:1
        }
    }

    /// Raw record timestamp to FILETIME.
    #[inline]
    pub fn filetime(&self, raw: i64) -> i64 {
        match self.scale() {
            Some(s) if !(self.clock_type == 1 && self.perf_freq == 10_000_000) => {
                let h = (s * self.header_timestamp as f64).trunc() as i64;
                let t = (s * raw as f64).trunc() as i64;
                self.start_time.wrapping_sub(h).wrapping_add(t)
            }
            _ => self.start_time.wrapping_sub(self.header_timestamp).wrapping_add(raw),
        }
    }

    /// Raw record timestamp to nanoseconds since the Unix epoch.
    pub fn unix_ns(&self, raw: i64) -> i128 {
        super::filetime_to_unix_ns(self.filetime(raw))
    }
}

/// TRACE_LOGFILE_HEADER (payload of record 0).
#[derive(Clone, Debug, PartialEq)]
pub struct LogfileHeader {
    pub buffer_size: u32,
    /// Version bytes: major, minor, sub, subminor.
    pub version: u32,
    /// ProviderVersion: the OS build number.
    pub provider_version: u32,
    pub number_of_processors: u32,
    pub end_time: i64,
    pub timer_resolution: u32,
    pub maximum_file_size: u32,
    pub log_file_mode: u32,
    pub buffers_written: u32,
    pub start_buffers: u32,
    pub pointer_size: u32,
    pub events_lost: u32,
    pub cpu_speed_mhz: u32,
    pub boot_time: i64,
    pub perf_freq: i64,
    pub start_time: i64,
    /// ReservedFlags: the clock type (1 QPC, 2 system time, 3 CPU cycles).
    pub clock_type: u32,
    pub buffers_lost: u32,
    pub logger_name: String,
    pub log_file_name: String,
    /// Raw TimeStamp of record 0 (needed for the clock).
    pub header_timestamp: i64,
    /// Whether record 0 was a 32-bit SYSTEM header (x86 layout).
    pub is_32bit_layout: bool,
}

impl LogfileHeader {
    /// Parse from record 0's payload; `is32` selects the x86 layout.
    pub fn parse(p: &[u8], is32: bool, header_timestamp: i64) -> Option<LogfileHeader> {
        // x86 moves everything from 0x3C on by -8 (two 4-byte pointers instead of 8-byte).
        let (boot, freq, start, flags, lost, fixed) =
            if is32 { (0xF0, 0xF8, 0x100, 0x108, 0x10C, 0x110) } else { (0xF8, 0x100, 0x108, 0x110, 0x114, 0x118) };
        let (logger_name, next) = utf16z_at(p, fixed).unwrap_or_default();
        let (log_file_name, _) = utf16z_at(p, next).unwrap_or_default();
        Some(LogfileHeader {
            buffer_size: u32_at(p, 0)?,
            version: u32_at(p, 4)?,
            provider_version: u32_at(p, 8)?,
            number_of_processors: u32_at(p, 0x0C)?,
            end_time: i64_at(p, 0x10)?,
            timer_resolution: u32_at(p, 0x18)?,
            maximum_file_size: u32_at(p, 0x1C)?,
            log_file_mode: u32_at(p, 0x20)?,
            buffers_written: u32_at(p, 0x24)?,
            start_buffers: u32_at(p, 0x28)?,
            pointer_size: u32_at(p, 0x2C)?,
            events_lost: u32_at(p, 0x30)?,
            cpu_speed_mhz: u32_at(p, 0x34)?,
            boot_time: i64_at(p, boot)?,
            perf_freq: i64_at(p, freq)?,
            start_time: i64_at(p, start)?,
            clock_type: u32_at(p, flags)?,
            buffers_lost: u32_at(p, lost)?,
            logger_name,
            log_file_name,
            header_timestamp,
            is_32bit_layout: is32,
        })
    }

    pub fn clock(&self) -> Clock {
        Clock {
            start_time: self.start_time,
            header_timestamp: self.header_timestamp,
            clock_type: self.clock_type,
            perf_freq: self.perf_freq,
            cpu_speed_mhz: self.cpu_speed_mhz,
        }
    }
}

/// One buffer in memory (decompressed if needed).
#[derive(Debug, Clone)]
pub struct Buffer {
    pub header: BufferHeader,
    /// File offset of the buffer header.
    pub file_offset: u64,
    /// 0-based buffer number in file order.
    pub index: u64,
    /// Record number (file order, whole file) of this buffer's first record.
    pub first_record_index: u64,
    /// Records walked successfully in this buffer.
    pub record_count: u64,
    data: Vec<u8>,
    end: usize,
    clock: super::Clock,
    damage: Option<Damage>,
}

impl Buffer {
    /// Records in buffer order. A malformed record ends the walk with one `Err`.
    pub fn records(&self) -> RecordsInBuffer<'_> {
        RecordsInBuffer {
            data: &self.data,
            pos: BUFFER_HEADER_SIZE,
            end: self.end,
            ctx: RecordCtx {
                buffer_file_offset: self.file_offset,
                buffer_index: self.index,
                cpu: self.header.processor_index,
                clock: self.clock,
            },
            next_index: self.first_record_index,
            done: false,
        }
    }

    /// Damage found in this buffer (truncation, bad Offset, or a malformed record).
    /// For truncation the reader stops after this buffer.
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    /// Header + (decompressed) record bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn is_compressed(&self) -> bool {
        self.header.is_compressed()
    }
}

/// Streaming ETL reader. Construct with [`EtlReader::open`] or [`EtlReader::new`].
pub struct EtlReader<R: Read> {
    inner: R,
    pos: u64,
    next_buffer_index: u64,
    next_record_index: u64,
    clock: Clock,
    logfile: Option<LogfileHeader>,
    pending: Option<Result<Buffer, Damage>>,
    done: bool,
    scratch: Vec<u8>,
}

impl EtlReader<BufReader<File>> {
    /// Open a file (buffered; the file is never loaded whole).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Damage> {
        let f = File::open(path).map_err(|e| Damage { offset: 0, kind: DamageKind::Io(e.to_string()) })?;
        EtlReader::new(BufReader::with_capacity(256 * 1024, f))
    }
}

impl<R: Read> EtlReader<R> {
    /// Read buffer 0 and its logfile header. Fails only if buffer 0 itself cannot be read;
    /// a record 0 that is not a logfile header leaves [`Self::logfile_header`] empty and
    /// timestamps raw.
    pub fn new(inner: R) -> Result<Self, Damage> {
        let mut r = EtlReader {
            inner,
            pos: 0,
            next_buffer_index: 0,
            next_record_index: 0,
            clock: Clock::IDENTITY,
            logfile: None,
            pending: None,
            done: false,
            scratch: Vec::new(),
        };
        match r.read_buffer_raw() {
            None => {
                return Err(Damage {
                    offset: 0,
                    kind: DamageKind::Truncated {
                        part: Part::BufferHeader,
                        needed: BUFFER_HEADER_SIZE as u64,
                        available: 0,
                    },
                })
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(mut b)) => {
                if let Some(Ok(rec)) = b.records().next() {
                    let h = rec.header;
                    if h.kind.is_classic_kernel() && h.group == Some(0) && h.opcode == 0 {
                        let is32 = matches!(h.kind, HeaderKind::System32);
                        r.logfile = LogfileHeader::parse(rec.payload, is32, h.raw_timestamp);
                    }
                }
                if let Some(l) = &r.logfile {
                    r.clock = l.clock();
                }
                b.clock = r.clock;
                r.finish_buffer(&mut b);
                r.pending = Some(Ok(b));
            }
        }
        Ok(r)
    }

    pub fn logfile_header(&self) -> Option<&LogfileHeader> {
        self.logfile.as_ref()
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Next buffer in file order. `None` at EOF, at a `BufferSize == 0` terminator, or after
    /// an error that makes the rest of the file unreachable.
    pub fn next_buffer(&mut self) -> Option<Result<Buffer, Damage>> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        let mut b = match self.read_buffer_raw()? {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        self.finish_buffer(&mut b);
        Some(Ok(b))
    }

    /// Owned records in file order (errors interleaved where damage was found).
    pub fn records(self) -> Records<R> {
        Records { reader: self, cur: None, pos: 0, next_index: 0, pending_err: None, finished: false }
    }

    /// Records merged into time order for a non-seekable stream, holding at most
    /// `window_buffers` buffers (see [`super::WindowMerge`]).
    pub fn time_ordered_window(self, window_buffers: usize) -> super::WindowMerge<R> {
        super::WindowMerge::new(self, window_buffers)
    }

    /// Count records, assign indices, record in-buffer damage.
    fn finish_buffer(&mut self, b: &mut Buffer) {
        b.first_record_index = self.next_record_index;
        let (n, bad) = count_records(&b.data, b.end);
        b.record_count = n;
        self.next_record_index += n;
        if b.damage.is_none() {
            b.damage = bad.map(|(pos, size)| Damage {
                offset: b.file_offset + pos as u64,
                kind: DamageKind::BadField { part: Part::Record, field: "Size", value: size as u64 },
            });
        }
    }

    fn fail(&mut self, offset: u64, kind: DamageKind) -> Option<Result<Buffer, Damage>> {
        self.done = true;
        Some(Err(Damage { offset, kind }))
    }

    /// Read up to `buf.len()` bytes; returns how many were read before EOF.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, io::Error> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    fn read_buffer_raw(&mut self) -> Option<Result<Buffer, Damage>> {
        if self.done {
            return None;
        }
        let start = self.pos;
        let mut hdr = [0u8; BUFFER_HEADER_SIZE];
        let got = match self.read_full(&mut hdr) {
            Ok(n) => n,
            Err(e) => return self.fail(start, DamageKind::Io(e.to_string())),
        };
        if got == 0 {
            self.done = true;
            return None;
        }
        if got < BUFFER_HEADER_SIZE {
            return self.fail(
                start,
                DamageKind::Truncated {
                    part: Part::BufferHeader,
                    needed: BUFFER_HEADER_SIZE as u64,
                    available: got as u64,
                },
            );
        }
        let Some(h) = BufferHeader::parse(&hdr) else {
            return self.fail(start, DamageKind::BadField { part: Part::Buffer, field: "BufferSize", value: 0 });
        };
        if h.buffer_size == 0 {
            self.done = true;
            return None;
        }
        if (h.buffer_size as usize) < BUFFER_HEADER_SIZE || h.buffer_size > MAX_BUFFER_SIZE {
            return self.fail(
                start,
                DamageKind::BadField { part: Part::Buffer, field: "BufferSize", value: h.buffer_size as u64 },
            );
        }
        let body_len = h.buffer_size as usize - BUFFER_HEADER_SIZE;
        let index = self.next_buffer_index;
        self.next_buffer_index += 1;
        let mut damage = None;
        let (data, end) = if h.is_compressed() {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            // Grows with the bytes actually read: a short file announcing a 64 MiB buffer must not
            // allocate (and zero) 64 MiB first.
            let got = match (&mut self.inner).take(body_len as u64).read_to_end(&mut scratch) {
                Ok(n) => n,
                Err(e) => return self.fail(start, DamageKind::Io(e.to_string())),
            };
            self.pos += (BUFFER_HEADER_SIZE + got) as u64;
            if got < body_len {
                // Cannot decompress a cut stream reliably: nothing of this buffer is usable.
                self.scratch = scratch;
                return self.fail(
                    start,
                    DamageKind::Truncated {
                        part: Part::Buffer,
                        needed: h.buffer_size as u64,
                        available: (BUFFER_HEADER_SIZE + got) as u64,
                    },
                );
            }
            if h.offset < BUFFER_HEADER_SIZE as u32
                || h.offset > MAX_BUFFER_SIZE
                || h.offset as usize - BUFFER_HEADER_SIZE > body_len.saturating_mul(MAX_LZ77_RATIO)
            {
                // BufferSize was sane, so the next buffer is still reachable.
                return Some(Err(Damage {
                    offset: start + 0x30,
                    kind: DamageKind::BadField { part: Part::Buffer, field: "Offset", value: h.offset as u64 },
                }));
            }
            let want = h.offset as usize - BUFFER_HEADER_SIZE;
            let mut out = Vec::new();
            let res = decompress_plain_lz77(&scratch, want, &mut out);
            self.scratch = scratch;
            if let Err(m) = res {
                // The next buffer is still reachable: report and go on.
                return Some(Err(Damage {
                    offset: start + BUFFER_HEADER_SIZE as u64,
                    kind: DamageKind::Decompress(m),
                }));
            }
            let mut data = Vec::with_capacity(BUFFER_HEADER_SIZE + out.len());
            data.extend_from_slice(&hdr);
            data.extend_from_slice(&out);
            let end = data.len();
            (data, end)
        } else {
            let mut data = vec![0u8; h.buffer_size as usize];
            data[..BUFFER_HEADER_SIZE].copy_from_slice(&hdr);
            let got = match self.read_full(&mut data[BUFFER_HEADER_SIZE..]) {
                Ok(n) => n,
                Err(e) => return self.fail(start, DamageKind::Io(e.to_string())),
            };
            self.pos += (BUFFER_HEADER_SIZE + got) as u64;
            let avail = BUFFER_HEADER_SIZE + got;
            let mut end = (h.offset as usize).max(BUFFER_HEADER_SIZE);
            if h.offset as usize > h.buffer_size as usize {
                damage = Some(Damage {
                    offset: start + 0x30,
                    kind: DamageKind::BadField { part: Part::Buffer, field: "Offset", value: h.offset as u64 },
                });
                end = h.buffer_size as usize;
            }
            if got < body_len {
                // Keep the records that fit, then stop the walk.
                self.done = true;
                data.truncate(avail);
                end = end.min(avail);
                damage = Some(Damage {
                    offset: start + avail as u64,
                    kind: DamageKind::Truncated {
                        part: Part::Buffer,
                        needed: h.buffer_size as u64,
                        available: avail as u64,
                    },
                });
            }
            (data, end)
        };
        Some(Ok(Buffer {
            header: h,
            file_offset: start,
            index,
            first_record_index: 0,
            record_count: 0,
            data,
            end,
            clock: self.clock,
            damage,
        }))
    }
}

impl<R: Read + Seek> EtlReader<R> {
    /// Records merged into exact time order by a k-way merge of the per-CPU buffer streams
    /// (see [`super::TimeOrdered`]).
    pub fn time_ordered(self) -> super::TimeOrdered<R> {
        super::TimeOrdered::new(self)
    }

    /// Re-read one buffer found earlier, restoring its buffer and record numbering.
    pub(crate) fn read_buffer_at(
        &mut self,
        offset: u64,
        index: u64,
        first_record_index: u64,
    ) -> Option<Result<Buffer, Damage>> {
        if let Err(e) = self.inner.seek(SeekFrom::Start(offset)) {
            return Some(Err(Damage { offset, kind: DamageKind::Io(e.to_string()) }));
        }
        self.pos = offset;
        self.next_buffer_index = index;
        self.next_record_index = first_record_index;
        self.pending = None;
        self.done = false;
        self.next_buffer()
    }
}

/// Owned file-order record iterator (see [`EtlReader::records`]).
pub struct Records<R: Read> {
    reader: EtlReader<R>,
    cur: Option<Buffer>,
    pos: usize,
    next_index: u64,
    pending_err: Option<Damage>,
    finished: bool,
}

impl<R: Read> Records<R> {
    pub fn logfile_header(&self) -> Option<&LogfileHeader> {
        self.reader.logfile_header()
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<Record, Damage>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.pending_err.take() {
                return Some(Err(e));
            }
            if self.finished {
                return None;
            }
            if let Some(b) = &self.cur {
                let ctx = RecordCtx {
                    buffer_file_offset: b.file_offset,
                    buffer_index: b.index,
                    cpu: b.header.processor_index,
                    clock: b.clock,
                };
                if self.pos + 4 <= b.end {
                    match parse_record(&b.data, self.pos, b.end, &ctx) {
                        Step::Record(mut r, next) => {
                            r.header.record_index = self.next_index;
                            self.next_index += 1;
                            self.pos = next;
                            return Some(Ok(r.to_owned()));
                        }
                        Step::End | Step::Bad(_) => {}
                    }
                }
                // Buffer exhausted (or damaged): report its damage once.
                let dmg = b.damage.clone();
                self.cur = None;
                if let Some(e) = dmg {
                    return Some(Err(e));
                }
            }
            match self.reader.next_buffer() {
                None => {
                    self.finished = true;
                }
                Some(Err(e)) => {
                    if self.reader.done {
                        self.finished = true;
                    }
                    return Some(Err(e));
                }
                Some(Ok(b)) => {
                    self.pos = BUFFER_HEADER_SIZE;
                    self.next_index = b.first_record_index;
                    self.cur = Some(b);
                }
            }
        }
    }
}
