//! Plain-text application logs: per-file timestamp format detection, multi-line
//! records, severity and Windows/.NET/errno error identities.
//!
//! Std only and independent of the other ingest modules. Every input is tolerated:
//! bytes are decoded lossily, physical lines are capped, nothing panics.

use crate::model::civil_from_days;
pub use crate::model::days_from_civil;
use std::collections::VecDeque;
use std::io::{self, BufRead};

/// Default cap for one physical line; longer lines are truncated and flagged.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;
/// Default cap for one record (first line plus continuation lines).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 256 * 1024;

const NS_PER_S: i64 = 1_000_000_000;

/// Timestamp format detected once per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TsFormat {
    /// `2026-11-22T10:15:03.123+01:00`, `2026-11-22 10:15:03,123`, Serilog `... +01:00`.
    Iso8601,
    /// IIS W3C extended log (`#Fields: date time ...`), times are UTC.
    IisW3c,
    /// `Nov 22 10:15:03` (optionally `<pri>` first); year supplied by the caller.
    Syslog3164,
    /// `<34>1 2026-11-22T10:15:03.123Z host app ...`.
    Syslog5424,
    /// `3/30/2009 2:02:11 PM` or `3/30/2009 14:02:11`.
    UsDateTime,
    /// 10-digit Unix seconds at line start (optional fraction).
    EpochS,
    /// 13-digit Unix milliseconds at line start.
    EpochMs,
}

impl TsFormat {
    /// All formats, in detection tie-break order.
    pub const ALL: [TsFormat; 7] = [
        TsFormat::Syslog5424,
        TsFormat::IisW3c,
        TsFormat::Iso8601,
        TsFormat::Syslog3164,
        TsFormat::UsDateTime,
        TsFormat::EpochMs,
        TsFormat::EpochS,
    ];

    /// Stable name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TsFormat::Iso8601 => "iso8601",
            TsFormat::IisW3c => "iis_w3c",
            TsFormat::Syslog3164 => "syslog3164",
            TsFormat::Syslog5424 => "syslog5424",
            TsFormat::UsDateTime => "us_datetime",
            TsFormat::EpochS => "epoch_s",
            TsFormat::EpochMs => "epoch_ms",
        }
    }

    /// Inverse of [`TsFormat::name`].
    pub fn from_name(s: &str) -> Option<TsFormat> {
        TsFormat::ALL.iter().copied().find(|f| f.name() == s)
    }
}

impl std::fmt::Display for TsFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Info,
    Debug,
    Unknown,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Debug => "debug",
            Severity::Unknown => "unknown",
        }
    }

    /// Syslog PRI (facility*8+severity) to a severity.
    pub fn from_syslog_pri(pri: u32) -> Severity {
        match pri & 7 {
            0..=3 => Severity::Error,
            4 => Severity::Warning,
            5 | 6 => Severity::Info,
            _ => Severity::Debug,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    Winsock,
    Win32,
    /// POSIX errno; `code` is the Linux value when known.
    Errno,
    /// .NET exception type; `code` is the Winsock/Win32 code of a well-known message in the same record.
    DotNet,
    /// `code` is the HRESULT as an unsigned 32-bit value.
    HResult,
    /// `code` is the NTSTATUS as an unsigned 32-bit value.
    NtStatus,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Winsock => "winsock",
            ErrorKind::Win32 => "win32",
            ErrorKind::Errno => "errno",
            ErrorKind::DotNet => "dotnet",
            ErrorKind::HResult => "hresult",
            ErrorKind::NtStatus => "ntstatus",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorId {
    pub kind: ErrorKind,
    pub code: Option<i64>,
    pub name: String,
}

impl ErrorId {
    fn new(kind: ErrorKind, code: Option<i64>, name: impl Into<String>) -> ErrorId {
        ErrorId { kind, code, name: name.into() }
    }
}

/// One logical log record.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// 1-based number of the record's first physical line.
    pub line_no: u64,
    /// The timestamp as written, read as if it were UTC (ns since the Unix epoch).
    pub ts_local_ns: Option<i64>,
    /// Offset east of UTC in seconds when the line itself carries a zone (IIS, epoch: 0).
    pub zone_offset_s: Option<i32>,
    pub severity: Severity,
    pub errors: Vec<ErrorId>,
    /// First physical line, then continuation lines joined with '\n' (capped).
    pub text: String,
    /// Byte offset in `text` where the message starts (after the timestamp).
    pub body_offset: usize,
    /// Some physical line or the record was cut at a cap.
    pub truncated: bool,
    /// Number of physical lines in this record.
    pub physical_lines: u32,
}

impl LogLine {
    /// UTC time: the line's own zone if it has one, else `assumed_offset_s` (e.g. from `--log-offset`).
    pub fn ts_utc_ns(&self, assumed_offset_s: f64) -> Option<i64> {
        let local = self.ts_local_ns?;
        let off_ns = match self.zone_offset_s {
            Some(z) => i64::from(z) * NS_PER_S,
            None if assumed_offset_s.is_finite() => (assumed_offset_s * 1e9).round() as i64,
            None => 0,
        };
        Some(local.saturating_sub(off_ns))
    }

    /// The message part of the first line (after the timestamp).
    pub fn body(&self) -> &str {
        self.text.get(self.body_offset..).unwrap_or(&self.text).trim_start()
    }
}

#[derive(Debug, Clone)]
pub struct TextLogOptions {
    /// Year for RFC 3164 syslog lines (which have none); `None` means the current UTC year.
    pub syslog_year: Option<i32>,
    /// Force a format instead of detecting it.
    pub format: Option<TsFormat>,
    pub max_line_bytes: usize,
    pub max_record_bytes: usize,
    /// How many timestamped lines to look at when detecting the format.
    pub detect_lines: usize,
    /// Give up detecting after this many physical lines without enough timestamps.
    pub detect_max_physical_lines: usize,
}

impl Default for TextLogOptions {
    fn default() -> Self {
        TextLogOptions {
            syslog_year: None,
            format: None,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            detect_lines: 50,
            detect_max_physical_lines: 2000,
        }
    }
}

struct RawLine {
    no: u64,
    text: String,
    truncated: bool,
}

/// What a line start parser found.
#[derive(Debug, Clone, Copy)]
struct TsHit {
    local_ns: Option<i64>,
    zone: Option<i32>,
    /// Bytes consumed from the line start.
    len: usize,
    pri: Option<u32>,
    /// Month, for syslog year roll-over.
    month: u32,
}

/// IIS `#Fields:` column positions.
#[derive(Debug, Clone, Default)]
struct IisFields {
    sc_status: Option<usize>,
    sc_win32_status: Option<usize>,
}

/// Streaming reader: yields one [`LogLine`] per record.
pub struct TextLogReader<R> {
    src: Transcode<R>,
    opts: TextLogOptions,
    format: Option<TsFormat>,
    detected: bool,
    pending: VecDeque<RawLine>,
    cur: Option<LogLine>,
    next_no: u64,
    eof: bool,
    io_error: Option<io::Error>,
    iis: IisFields,
    syslog_year: i32,
    syslog_last_month: u32,
}

impl<R: BufRead> TextLogReader<R> {
    pub fn new(src: R) -> Self {
        Self::with_options(src, TextLogOptions::default())
    }

    pub fn with_options(src: R, opts: TextLogOptions) -> Self {
        let syslog_year = opts.syslog_year.unwrap_or_else(current_utc_year);
        TextLogReader {
            src: Transcode::new(src),
            format: opts.format,
            detected: opts.format.is_some(),
            opts,
            pending: VecDeque::new(),
            cur: None,
            next_no: 1,
            eof: false,
            io_error: None,
            iis: IisFields::default(),
            syslog_year,
            syslog_last_month: 0,
        }
    }

    /// The detected (or forced) format; detects now if needed. `None`: no timestamps found.
    pub fn format(&mut self) -> Option<TsFormat> {
        self.ensure_detected();
        self.format
    }

    /// The I/O error that ended the stream early, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.io_error.as_ref()
    }

    fn read_physical(&mut self) -> Option<RawLine> {
        if let Some(l) = self.pending.pop_front() {
            return Some(l);
        }
        if self.eof {
            return None;
        }
        let cap = self.opts.max_line_bytes.max(16);
        let mut buf: Vec<u8> = Vec::new();
        let mut truncated = false;
        let mut got_any = false;
        // Manual fill_buf loop so an endless line never grows memory past the cap.
        loop {
            let avail = match self.src.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.io_error = Some(e);
                    self.eof = true;
                    break;
                }
            };
            if avail.is_empty() {
                self.eof = true;
                break;
            }
            got_any = true;
            let (chunk, found_nl) = match avail.iter().position(|&b| b == b'\n') {
                Some(p) => (&avail[..p], true),
                None => (avail, false),
            };
            let room = cap.saturating_sub(buf.len());
            if chunk.len() > room {
                buf.extend_from_slice(&chunk[..room]);
                truncated = true;
            } else {
                buf.extend_from_slice(chunk);
            }
            let used = chunk.len() + usize::from(found_nl);
            self.src.consume(used);
            if found_nl {
                break;
            }
        }
        if !got_any {
            return None;
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        let no = self.next_no;
        self.next_no += 1;
        let mut bytes: &[u8] = &buf;
        if no == 1 && bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
            bytes = &bytes[3..];
        }
        Some(RawLine { no, text: String::from_utf8_lossy(bytes).into_owned(), truncated })
    }

    fn ensure_detected(&mut self) {
        if self.detected {
            return;
        }
        self.detected = true;
        let mut counts = [0usize; 7];
        let mut iis_header = false;
        let mut local_w3c = false;
        let mut stamped = 0usize;
        let mut physical = 0usize;
        let mut buffered = VecDeque::new();
        while stamped < self.opts.detect_lines && physical < self.opts.detect_max_physical_lines {
            let Some(l) = self.read_physical() else { break };
            physical += 1;
            if is_iis_fields_header(&l.text) {
                iis_header = true;
            }
            // Windows Firewall (pfirewall.log) is W3C too, but in local time.
            if l.text.starts_with("#Software:") && l.text.contains("Firewall") {
                local_w3c = true;
            }
            let b = l.text.as_bytes();
            let mut any = false;
            for (i, f) in TsFormat::ALL.iter().enumerate() {
                if *f == TsFormat::IisW3c {
                    continue;
                }
                if parse_at_start(*f, b, 2000).is_some() {
                    counts[i] += 1;
                    any = true;
                }
            }
            if any {
                stamped += 1;
            }
            buffered.push_back(l);
        }
        // Detection reads ahead; the lines are replayed in order.
        buffered.append(&mut self.pending);
        self.pending = buffered;
        let iso_idx = 2;
        if iis_header && !local_w3c && counts[iso_idx] > 0 {
            self.format = Some(TsFormat::IisW3c);
            return;
        }
        let mut best: Option<(usize, usize)> = None;
        for (i, &c) in counts.iter().enumerate() {
            if c > 0 && best.is_none_or(|(_, bc)| c > bc) {
                best = Some((i, c));
            }
        }
        self.format = best.map(|(i, _)| TsFormat::ALL[i]);
    }

    fn parse_line_start(&mut self, text: &str) -> Option<TsHit> {
        let f = self.format?;
        let mut hit = parse_at_start(f, text.as_bytes(), self.syslog_year)?;
        if f == TsFormat::Syslog3164 {
            // Dec -> Jan across the file means the year moved on.
            if self.syslog_last_month >= 10 && hit.month <= 3 {
                self.syslog_year += 1;
                hit = parse_at_start(f, text.as_bytes(), self.syslog_year)?;
            }
            self.syslog_last_month = hit.month;
        }
        Some(hit)
    }

    fn start_record(&self, l: RawLine, hit: Option<TsHit>) -> LogLine {
        let body_offset = hit.map_or(0, |h| h.len.min(l.text.len()));
        let severity = match hit.and_then(|h| h.pri) {
            Some(p) => Severity::from_syslog_pri(p),
            None => detect_severity(l.text.as_bytes(), body_offset),
        };
        let mut text = l.text;
        let mut truncated = l.truncated;
        if text.len() > self.opts.max_record_bytes {
            let mut cut = self.opts.max_record_bytes;
            while cut > 0 && !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            truncated = true;
        }
        LogLine {
            line_no: l.no,
            ts_local_ns: hit.and_then(|h| h.local_ns),
            zone_offset_s: hit.and_then(|h| h.zone),
            severity,
            errors: Vec::new(),
            text,
            body_offset,
            truncated,
            physical_lines: 1,
        }
    }

    fn finish(&self, mut rec: LogLine) -> LogLine {
        rec.errors = extract_errors(&rec.text);
        if self.format == Some(TsFormat::IisW3c) {
            self.apply_iis_status(&mut rec);
        }
        rec
    }

    fn apply_iis_status(&self, rec: &mut LogLine) {
        if rec.ts_local_ns.is_none() {
            return;
        }
        let first = rec.text.lines().next().unwrap_or("");
        let cols: Vec<&str> = first.split(' ').collect();
        if let Some(st) = self.iis.sc_status.and_then(|i| cols.get(i)).and_then(|s| s.parse::<u32>().ok()) {
            rec.severity = match st {
                500..=599 => Severity::Error,
                400..=499 => Severity::Warning,
                _ => Severity::Info,
            };
        }
        if let Some(w) = self.iis.sc_win32_status.and_then(|i| cols.get(i)).and_then(|s| s.parse::<i64>().ok()) {
            if w != 0 {
                let id = code_to_id(w)
                    .unwrap_or_else(|| ErrorId::new(ErrorKind::Win32, Some(w), format!("Win32 error {w}")));
                push_unique(&mut rec.errors, id);
            }
        }
    }
}

impl<R: BufRead> Iterator for TextLogReader<R> {
    type Item = LogLine;

    fn next(&mut self) -> Option<LogLine> {
        self.ensure_detected();
        loop {
            let Some(l) = self.read_physical() else {
                let rec = self.cur.take()?;
                return Some(self.finish(rec));
            };
            // IIS directives are records of their own and update the column map.
            if self.format == Some(TsFormat::IisW3c) && l.text.starts_with('#') {
                if let Some(prev) = self.cur.take() {
                    // Finish the open record first; the directive is read again next call.
                    self.pending.push_front(l);
                    return Some(self.finish(prev));
                }
                if let Some(f) = parse_iis_fields(&l.text) {
                    self.iis = f;
                }
                let rec = self.start_record(l, None);
                return Some(self.finish(rec));
            }
            let hit = self.parse_line_start(&l.text);
            match (hit, self.cur.as_mut()) {
                (Some(h), _) => {
                    let new = self.start_record(l, Some(h));
                    if let Some(prev) = self.cur.replace(new) {
                        return Some(self.finish(prev));
                    }
                }
                (None, Some(cur)) => {
                    cur.physical_lines = cur.physical_lines.saturating_add(1);
                    cur.truncated |= l.truncated;
                    let room = self.opts.max_record_bytes.saturating_sub(cur.text.len() + 1);
                    if l.text.len() <= room {
                        cur.text.push('\n');
                        cur.text.push_str(&l.text);
                    } else {
                        cur.truncated = true;
                        if room > 0 {
                            let mut cut = room;
                            while cut > 0 && !l.text.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            cur.text.push('\n');
                            cur.text.push_str(&l.text[..cut]);
                        }
                    }
                }
                (None, None) => {
                    // Text before the first timestamp (or a file without any): one record per line.
                    let rec = self.start_record(l, None);
                    return Some(self.finish(rec));
                }
            }
        }
    }
}

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
struct Transcode<R> {
    inner: R,
    enc: Enc,
    out: Vec<u8>,
    pos: usize,
    /// Odd byte left over between reads (UTF-16).
    carry: Option<u8>,
    /// High surrogate waiting for its pair (UTF-16).
    high: Option<u16>,
    inner_eof: bool,
}

impl<R: BufRead> Transcode<R> {
    fn new(inner: R) -> Self {
        Transcode { inner, enc: Enc::Unknown, out: Vec::new(), pos: 0, carry: None, high: None, inner_eof: false }
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
            self.decode16(&chunk, false);
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        if self.pos < self.out.len() {
            self.pos = (self.pos + amt).min(self.out.len());
        } else if self.enc == Enc::Utf8 {
            self.inner.consume(amt);
        }
    }
}

/// Read a whole log into memory (convenience for tests and small files).
pub fn read_all<R: BufRead>(src: R, opts: TextLogOptions) -> (Option<TsFormat>, Vec<LogLine>) {
    let mut r = TextLogReader::with_options(src, opts);
    let f = r.format();
    let lines: Vec<LogLine> = r.by_ref().collect();
    (f, lines)
}

/// Detect the format of a sample of lines without building records.
pub fn detect_format(sample: &[u8]) -> Option<TsFormat> {
    TextLogReader::new(sample).format()
}

// ---------------------------------------------------------------------------
// Timestamps

fn current_utc_year() -> i32 {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    civil_from_days(secs.div_euclid(86_400)).0 as i32
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

#[allow(clippy::too_many_arguments)]
fn civil_to_ns(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, frac_ns: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
    secs.checked_mul(NS_PER_S)?.checked_add(frac_ns)
}

/// Byte cursor over one line.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// Between `min` and `max` ASCII digits.
    fn num(&mut self, min: usize, max: usize) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while self.i - start < max {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    v = v * 10 + u64::from(c - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        if self.i - start < min {
            self.i = start;
            return None;
        }
        Some(v)
    }
    fn next_is_digit(&self) -> bool {
        matches!(self.peek(), Some(b'0'..=b'9'))
    }
    /// Fraction after '.' or ',': nanoseconds (extra digits ignored).
    fn frac(&mut self) -> i64 {
        let save = self.i;
        if !(self.eat(b'.') || self.eat(b',')) || !self.next_is_digit() {
            self.i = save;
            return 0;
        }
        let mut ns: i64 = 0;
        let mut n = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            if n < 9 {
                ns = ns * 10 + i64::from(c - b'0');
                n += 1;
            }
            self.i += 1;
        }
        while n < 9 {
            ns *= 10;
            n += 1;
        }
        ns
    }
    fn at_boundary(&self) -> bool {
        !matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric())
    }
}

fn parse_at_start(f: TsFormat, b: &[u8], syslog_year: i32) -> Option<TsHit> {
    let mut c = Cur { b, i: 0 };
    match f {
        TsFormat::Iso8601 => {
            let br = c.eat(b'[');
            let mut h = iso(&mut c, true)?;
            if br {
                c.eat(b']');
                h.len = c.i;
            }
            Some(h)
        }
        TsFormat::IisW3c => {
            let mut h = iso(&mut c, true)?;
            // IIS always logs UTC.
            h.zone = Some(0);
            Some(h)
        }
        TsFormat::Syslog5424 => {
            let pri = pri(&mut c)?;
            c.num(1, 2)?;
            if !c.eat(b' ') {
                return None;
            }
            if c.eat(b'-') {
                return Some(TsHit { local_ns: None, zone: None, len: c.i, pri: Some(pri), month: 0 });
            }
            let mut h = iso(&mut c, false)?;
            h.pri = Some(pri);
            Some(h)
        }
        TsFormat::Syslog3164 => {
            let save = c.i;
            let p = pri(&mut c);
            if p.is_none() {
                c.i = save;
            }
            let m = month_abbr(b.get(c.i..c.i + 3)?)?;
            c.i += 3;
            if !c.eat(b' ') {
                return None;
            }
            c.eat(b' ');
            let d = c.num(1, 2)? as u32;
            if !c.eat(b' ') {
                return None;
            }
            let (hh, mm, ss) = hms(&mut c, 2)?;
            let frac = c.frac();
            if !c.at_boundary() {
                return None;
            }
            let ns = civil_to_ns(i64::from(syslog_year), m, d, hh, mm, ss, frac)?;
            Some(TsHit { local_ns: Some(ns), zone: None, len: c.i, pri: p, month: m })
        }
        TsFormat::UsDateTime => {
            let br = c.eat(b'[');
            let mo = c.num(1, 2)? as u32;
            if !c.eat(b'/') {
                return None;
            }
            let d = c.num(1, 2)? as u32;
            if !c.eat(b'/') {
                return None;
            }
            let y = c.num(4, 4)? as i64;
            if !c.eat(b' ') {
                return None;
            }
            c.eat(b' ');
            let (mut hh, mm, ss) = hms(&mut c, 1)?;
            let frac = c.frac();
            let save = c.i;
            let mut ampm = None;
            if c.eat(b' ') {
                let w = b.get(c.i..c.i + 2).map(|w| w.to_ascii_uppercase());
                match w.as_deref() {
                    Some(b"AM") => ampm = Some(false),
                    Some(b"PM") => ampm = Some(true),
                    _ => {}
                }
                if ampm.is_some() {
                    c.i += 2;
                    if !c.at_boundary() {
                        ampm = None;
                    }
                }
                if ampm.is_none() {
                    c.i = save;
                }
            }
            if let Some(pm) = ampm {
                if hh == 0 || hh > 12 {
                    return None;
                }
                hh = match (pm, hh) {
                    (false, 12) => 0,
                    (true, 12) => 12,
                    (true, h) => h + 12,
                    (false, h) => h,
                };
            }
            if !c.at_boundary() {
                return None;
            }
            if br {
                c.eat(b']');
            }
            let ns = civil_to_ns(y, mo, d, hh, mm, ss, frac)?;
            Some(TsHit { local_ns: Some(ns), zone: None, len: c.i, pri: None, month: mo })
        }
        TsFormat::EpochS | TsFormat::EpochMs => {
            let br = c.eat(b'[');
            let start = c.i;
            let v = c.num(1, 14)? as i64;
            let digits = c.i - start;
            let ns = if f == TsFormat::EpochS {
                if digits != 10 || !(946_684_800..=4_102_444_800).contains(&v) {
                    return None;
                }
                let frac = c.frac();
                v * NS_PER_S + frac
            } else {
                if digits != 13 || !(946_684_800_000..=4_102_444_800_000).contains(&v) {
                    return None;
                }
                v * 1_000_000
            };
            if c.next_is_digit() || !c.at_boundary() {
                return None;
            }
            if br {
                c.eat(b']');
            }
            Some(TsHit { local_ns: Some(ns), zone: Some(0), len: c.i, pri: None, month: 0 })
        }
    }
}

fn pri(c: &mut Cur) -> Option<u32> {
    if !c.eat(b'<') {
        return None;
    }
    let p = c.num(1, 3)? as u32;
    if !c.eat(b'>') || p > 191 {
        return None;
    }
    Some(p)
}

fn hms(c: &mut Cur, min_h: usize) -> Option<(u32, u32, u32)> {
    let h = c.num(min_h, 2)? as u32;
    if !c.eat(b':') {
        return None;
    }
    let m = c.num(2, 2)? as u32;
    if !c.eat(b':') {
        return None;
    }
    let s = c.num(2, 2)? as u32;
    Some((h, m, s))
}

fn month_abbr(w: &[u8]) -> Option<u32> {
    const M: [&[u8; 3]; 12] =
        [b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"];
    let lw = w.to_ascii_lowercase();
    M.iter().position(|m| m[..] == lw[..]).map(|i| i as u32 + 1)
}

/// ISO 8601 date-time with optional fraction and zone. `space_sep`: allow ' ' between date and time.
fn iso(c: &mut Cur, space_sep: bool) -> Option<TsHit> {
    let y = c.num(4, 4)? as i64;
    if !c.eat(b'-') {
        return None;
    }
    let mo = c.num(2, 2)? as u32;
    if !c.eat(b'-') {
        return None;
    }
    let d = c.num(2, 2)? as u32;
    if !(c.eat(b'T') || c.eat(b't') || (space_sep && c.eat(b' '))) {
        return None;
    }
    let (h, mi, s) = hms(c, 2)?;
    let frac = c.frac();
    let mut zone = None;
    if c.eat(b'Z') || c.eat(b'z') {
        zone = Some(0);
    } else if matches!(c.peek(), Some(b'+' | b'-')) {
        zone = zone_at(c, false);
    } else if c.peek() == Some(b' ') && matches!(c.b.get(c.i + 1), Some(b'+' | b'-')) {
        // Serilog's " +01:00": only the colon form, to not eat a message starting with "-0500".
        let save = c.i;
        c.i += 1;
        zone = zone_at(c, true);
        if zone.is_none() {
            c.i = save;
        }
    }
    if c.next_is_digit() {
        return None;
    }
    let ns = civil_to_ns(y, mo, d, h, mi, s, frac)?;
    Some(TsHit { local_ns: Some(ns), zone, len: c.i, pri: None, month: mo })
}

fn zone_at(c: &mut Cur, need_colon: bool) -> Option<i32> {
    let save = c.i;
    let sign = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        return None;
    };
    let r = (|| {
        let h = c.num(2, 2)? as i32;
        let colon = c.eat(b':');
        if need_colon && !colon {
            return None;
        }
        let m = if colon { c.num(2, 2)? as i32 } else { c.num(2, 2).unwrap_or(0) as i32 };
        if h > 14 || m > 59 || c.next_is_digit() {
            return None;
        }
        Some(sign * (h * 3600 + m * 60))
    })();
    if r.is_none() {
        c.i = save;
    }
    r
}

fn is_iis_fields_header(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("#Fields:") else {
        return false;
    };
    let mut it = rest.split_whitespace();
    it.next() == Some("date") && it.next() == Some("time")
}

fn parse_iis_fields(s: &str) -> Option<IisFields> {
    let rest = s.strip_prefix("#Fields:")?;
    let mut f = IisFields::default();
    for (i, name) in rest.split_whitespace().enumerate() {
        match name {
            "sc-status" => f.sc_status = Some(i),
            "sc-win32-status" => f.sc_win32_status = Some(i),
            _ => {}
        }
    }
    Some(f)
}

/// Parse a user clock offset: `+01:00`, `-05:30`, `+01:00:30.5`, `+3600.8` (seconds), `-250ms`, `Z`.
/// Returns seconds east of UTC (the amount to subtract from local times to get UTC).
pub fn parse_offset(s: &str) -> Result<f64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty offset".into());
    }
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(0.0);
    }
    let (sign, body) = match t.as_bytes()[0] {
        b'+' => (1.0, &t[1..]),
        b'-' => (-1.0, &t[1..]),
        _ => (1.0, t),
    };
    let bad = || format!("bad offset {s:?}: expected +hh:mm, -hh:mm[:ss] or seconds like +3600.8");
    let v = if body.contains(':') {
        let parts: Vec<&str> = body.split(':').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let h: u32 = parts[0].parse().map_err(|_| bad())?;
        let m: u32 = parts[1].parse().map_err(|_| bad())?;
        let sec: f64 = match parts.get(2) {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => 0.0,
        };
        if m > 59 || !(0.0..60.0).contains(&sec) {
            return Err(bad());
        }
        f64::from(h) * 3600.0 + f64::from(m) * 60.0 + sec
    } else if let Some(ms) = body.strip_suffix("ms") {
        ms.trim().parse::<f64>().map_err(|_| bad())? / 1000.0
    } else {
        body.strip_suffix('s').unwrap_or(body).trim().parse::<f64>().map_err(|_| bad())?
    };
    if !v.is_finite() || body.starts_with(['+', '-']) {
        return Err(bad());
    }
    Ok(sign * v)
}

/// Split a `--log-offset FILE=OFFSET` argument (at the last '=') and parse the offset.
pub fn parse_log_offset_arg(arg: &str) -> Result<(String, f64), String> {
    let (file, off) = arg.rsplit_once('=').ok_or_else(|| format!("bad --log-offset {arg:?}: expected FILE=OFFSET"))?;
    if file.is_empty() {
        return Err(format!("bad --log-offset {arg:?}: empty file name"));
    }
    Ok((file.to_string(), parse_offset(off)?))
}

// ---------------------------------------------------------------------------
// Severity

/// Level token near the start of the message (first match wins). `body` is where the timestamp ends.
pub fn detect_severity(line: &[u8], body: usize) -> Severity {
    let start = body.min(line.len());
    let end = (start + 160).min(line.len());
    let region = &line[start..end];
    let mut i = 0;
    while i < region.len() {
        if !region[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let s = i;
        while i < region.len() && region[i].is_ascii_alphabetic() {
            i += 1;
        }
        let w = &region[s..i];
        let prev = if s > 0 { region[s - 1] } else { b' ' };
        let next = region.get(i).copied().unwrap_or(b' ');
        // Glued to digits or underscores means identifier, not a level.
        if prev.is_ascii_digit() || prev == b'_' || next.is_ascii_digit() || next == b'_' {
            continue;
        }
        let bracketed = matches!(prev, b'[' | b'<' | b'(' | b'|') && matches!(next, b']' | b'>' | b')' | b'|' | b':');
        let before = &region[..s];
        let after_level = [&b"level="[..], b"level\":\"", b"level: "]
            .iter()
            .any(|k| before.len() >= k.len() && before[before.len() - k.len()..].eq_ignore_ascii_case(k));
        if w.len() == 1 {
            if prev == b'[' && next == b']' {
                match w[0] {
                    b'E' | b'F' => return Severity::Error,
                    b'W' => return Severity::Warning,
                    b'I' => return Severity::Info,
                    b'D' | b'V' | b'T' => return Severity::Debug,
                    _ => {}
                }
            }
            continue;
        }
        let upper = w.to_ascii_uppercase();
        let all_upper = upper == w;
        let capitalized = w[0].is_ascii_uppercase() && w[1..].iter().all(|c| c.is_ascii_lowercase());
        let sev = match &upper[..] {
            b"FATAL" | b"CRITICAL" | b"ERROR" | b"EMERG" | b"EMERGENCY" | b"ALERT" | b"SEVERE" => {
                Some((Severity::Error, true))
            }
            b"ERR" | b"FTL" | b"CRIT" | b"EROR" => Some((Severity::Error, false)),
            b"WARNING" | b"WARN" => Some((Severity::Warning, true)),
            b"WRN" => Some((Severity::Warning, false)),
            b"INFO" | b"INFORMATION" | b"NOTICE" => Some((Severity::Info, true)),
            b"INF" => Some((Severity::Info, false)),
            b"DEBUG" | b"TRACE" | b"VERBOSE" => Some((Severity::Debug, true)),
            b"DBG" | b"TRC" | b"VRB" => Some((Severity::Debug, false)),
            _ => None,
        };
        if let Some((sev, long)) = sev {
            // Lower/mixed case words are only levels when clearly placed as one.
            let ok = all_upper || bracketed || after_level || (long && capitalized && s == first_word(region));
            if ok {
                return sev;
            }
        }
    }
    Severity::Unknown
}

fn first_word(region: &[u8]) -> usize {
    region.iter().position(|c| c.is_ascii_alphabetic()).unwrap_or(usize::MAX)
}

// ---------------------------------------------------------------------------
// Error identities

const WINSOCK: &[(i64, &str)] = &[
    (10004, "WSAEINTR"),
    (10013, "WSAEACCES"),
    (10022, "WSAEINVAL"),
    (10035, "WSAEWOULDBLOCK"),
    (10038, "WSAENOTSOCK"),
    (10048, "WSAEADDRINUSE"),
    (10049, "WSAEADDRNOTAVAIL"),
    (10050, "WSAENETDOWN"),
    (10051, "WSAENETUNREACH"),
    (10052, "WSAENETRESET"),
    (10053, "WSAECONNABORTED"),
    (10054, "WSAECONNRESET"),
    (10055, "WSAENOBUFS"),
    (10057, "WSAENOTCONN"),
    (10058, "WSAESHUTDOWN"),
    (10060, "WSAETIMEDOUT"),
    (10061, "WSAECONNREFUSED"),
    (10064, "WSAEHOSTDOWN"),
    (10065, "WSAEHOSTUNREACH"),
    (11001, "WSAHOST_NOT_FOUND"),
];

const WIN32: &[(i64, &str)] = &[
    (2, "ERROR_FILE_NOT_FOUND"),
    (5, "ERROR_ACCESS_DENIED"),
    (6, "ERROR_INVALID_HANDLE"),
    (64, "ERROR_NETNAME_DELETED"),
    (87, "ERROR_INVALID_PARAMETER"),
    (109, "ERROR_BROKEN_PIPE"),
    (121, "ERROR_SEM_TIMEOUT"),
    (231, "ERROR_PIPE_BUSY"),
    (232, "ERROR_NO_DATA"),
    (233, "ERROR_PIPE_NOT_CONNECTED"),
    (234, "ERROR_MORE_DATA"),
    (230, "ERROR_BAD_PIPE"),
    (535, "ERROR_PIPE_CONNECTED"),
    (536, "ERROR_PIPE_LISTENING"),
    (995, "ERROR_OPERATION_ABORTED"),
    (1225, "ERROR_CONNECTION_REFUSED"),
    (1231, "ERROR_NETWORK_UNREACHABLE"),
    (1232, "ERROR_HOST_UNREACHABLE"),
    (1236, "ERROR_CONNECTION_ABORTED"),
    (1450, "ERROR_NO_SYSTEM_RESOURCES"),
    (1460, "ERROR_TIMEOUT"),
];

/// Codes specific enough to be trusted inside bare parentheses, e.g. "(10054)".
const PAREN_OK_WIN32: &[i64] = &[109, 121, 231, 232, 233, 535, 536, 1225, 1236];

/// Linux errno values.
const ERRNO: &[(i64, &str)] = &[
    (32, "EPIPE"),
    (98, "EADDRINUSE"),
    (99, "EADDRNOTAVAIL"),
    (101, "ENETUNREACH"),
    (103, "ECONNABORTED"),
    (104, "ECONNRESET"),
    (107, "ENOTCONN"),
    (110, "ETIMEDOUT"),
    (111, "ECONNREFUSED"),
    (113, "EHOSTUNREACH"),
];

const DOTNET: &[&str] = &[
    "SocketException",
    "IOException",
    "RemotingException",
    "TimeoutException",
    "WebException",
    "ObjectDisposedException",
    "HttpRequestException",
    "CommunicationException",
    "EndpointNotFoundException",
    "CommunicationObjectFaultedException",
    "EndOfStreamException",
    "PipeException",
];

const NTSTATUS: &[(i64, &str)] = &[
    (0xC000_0005, "STATUS_ACCESS_VIOLATION"),
    (0xC000_0022, "STATUS_ACCESS_DENIED"),
    (0xC000_0034, "STATUS_OBJECT_NAME_NOT_FOUND"),
    (0xC000_00AB, "STATUS_INSTANCE_NOT_AVAILABLE"),
    (0xC000_00AC, "STATUS_PIPE_NOT_AVAILABLE"),
    (0xC000_00AD, "STATUS_INVALID_PIPE_STATE"),
    (0xC000_00AE, "STATUS_PIPE_BUSY"),
    (0xC000_00B0, "STATUS_PIPE_DISCONNECTED"),
    (0xC000_00B1, "STATUS_PIPE_CLOSING"),
    (0xC000_00B2, "STATUS_PIPE_CONNECTED"),
    (0xC000_00B3, "STATUS_PIPE_LISTENING"),
    (0xC000_00B5, "STATUS_IO_TIMEOUT"),
    (0xC000_00D9, "STATUS_PIPE_EMPTY"),
    (0xC000_014B, "STATUS_PIPE_BROKEN"),
    (0xC000_020A, "STATUS_ADDRESS_ALREADY_EXISTS"),
    (0xC000_020C, "STATUS_CONNECTION_DISCONNECTED"),
    (0xC000_020D, "STATUS_CONNECTION_RESET"),
    (0xC000_0236, "STATUS_CONNECTION_REFUSED"),
    (0xC000_023D, "STATUS_HOST_UNREACHABLE"),
    (0xC000_0241, "STATUS_CONNECTION_ABORTED"),
    (0xC000_0409, "STATUS_STACK_BUFFER_OVERRUN"),
    (0xC000_0374, "STATUS_HEAP_CORRUPTION"),
    (0xC000_00FD, "STATUS_STACK_OVERFLOW"),
];

const HRESULTS: &[(i64, &str)] = &[
    (0x8000_4005, "E_FAIL"),
    (0x8000_4004, "E_ABORT"),
    (0x8007_0005, "E_ACCESSDENIED"),
    (0x8007_000E, "E_OUTOFMEMORY"),
    (0x8007_0057, "E_INVALIDARG"),
    (0x8013_1620, "COR_E_IO"),
    (0x8013_1509, "COR_E_INVALIDOPERATION"),
    (0x8013_1505, "COR_E_TIMEOUT"),
    (0x8013_1622, "COR_E_OBJECTDISPOSED"),
    (0x8001_0108, "RPC_E_DISCONNECTED"),
    (0x8007_06BA, "RPC_S_SERVER_UNAVAILABLE"),
];

/// (lower-case phrase, kind, code, name)
const PHRASES: &[(&str, ErrorKind, Option<i64>, &str)] = &[
    ("an existing connection was forcibly closed by the remote host", ErrorKind::Winsock, Some(10054), "WSAECONNRESET"),
    (
        "no connection could be made because the target machine actively refused it",
        ErrorKind::Winsock,
        Some(10061),
        "WSAECONNREFUSED",
    ),
    (
        "a connection attempt failed because the connected party did not properly respond",
        ErrorKind::Winsock,
        Some(10060),
        "WSAETIMEDOUT",
    ),
    ("only one usage of each socket address", ErrorKind::Winsock, Some(10048), "WSAEADDRINUSE"),
    (
        "an established connection was aborted by the software in your host machine",
        ErrorKind::Winsock,
        Some(10053),
        "WSAECONNABORTED",
    ),
    (
        "an operation on a socket could not be performed because the system lacked sufficient buffer space",
        ErrorKind::Winsock,
        Some(10055),
        "WSAENOBUFS",
    ),
    ("a socket operation was attempted to an unreachable host", ErrorKind::Winsock, Some(10065), "WSAEHOSTUNREACH"),
    (
        "the connection has been broken due to keep-alive activity detecting a failure",
        ErrorKind::Winsock,
        Some(10052),
        "WSAENETRESET",
    ),
    ("because the socket is not connected", ErrorKind::Winsock, Some(10057), "WSAENOTCONN"),
    ("because the socket had already been shut down", ErrorKind::Winsock, Some(10058), "WSAESHUTDOWN"),
    ("all pipe instances are busy", ErrorKind::Win32, Some(231), "ERROR_PIPE_BUSY"),
    ("port is busy", ErrorKind::Win32, Some(231), "ERROR_PIPE_BUSY"),
    ("the system cannot find the file specified", ErrorKind::Win32, Some(2), "ERROR_FILE_NOT_FOUND"),
    ("the pipe is being closed", ErrorKind::Win32, Some(232), "ERROR_NO_DATA"),
    ("the pipe has been ended", ErrorKind::Win32, Some(109), "ERROR_BROKEN_PIPE"),
    ("pipe is broken", ErrorKind::Win32, Some(109), "ERROR_BROKEN_PIPE"),
    ("no process is on the other end of the pipe", ErrorKind::Win32, Some(233), "ERROR_PIPE_NOT_CONNECTED"),
    ("there is a process on other end of the pipe", ErrorKind::Win32, Some(535), "ERROR_PIPE_CONNECTED"),
    ("the semaphore timeout period has expired", ErrorKind::Win32, Some(121), "ERROR_SEM_TIMEOUT"),
    ("the specified network name is no longer available", ErrorKind::Win32, Some(64), "ERROR_NETNAME_DELETED"),
    ("connection reset by peer", ErrorKind::Errno, Some(104), "ECONNRESET"),
    ("broken pipe", ErrorKind::Errno, Some(32), "EPIPE"),
    ("connection refused", ErrorKind::Errno, Some(111), "ECONNREFUSED"),
    ("connection timed out", ErrorKind::Errno, Some(110), "ETIMEDOUT"),
    ("address already in use", ErrorKind::Errno, Some(98), "EADDRINUSE"),
    ("cannot assign requested address", ErrorKind::Errno, Some(99), "EADDRNOTAVAIL"),
];

/// .NET `SocketError` enum members (only trusted right after "SocketError").
const SOCKET_ERROR_ENUM: &[(&str, i64)] = &[
    ("ConnectionReset", 10054),
    ("ConnectionRefused", 10061),
    ("ConnectionAborted", 10053),
    ("TimedOut", 10060),
    ("AddressAlreadyInUse", 10048),
    ("HostUnreachable", 10065),
    ("NetworkReset", 10052),
    ("NotConnected", 10057),
    ("Shutdown", 10058),
    ("NoBufferSpaceAvailable", 10055),
];

/// Keywords after which a number is an error code (lower case, longest first).
const NUM_CONTEXT: &[&str] = &[
    "win32 error code",
    "nativeerrorcode",
    "socketerrorcode",
    "wsagetlasterror",
    "getlasterror",
    "win32 error",
    "socket error",
    "error code",
    "last error",
    "lasterror",
    "errorcode",
    "error_code",
    "wsaerror",
    "wsa error",
    "winerror",
    "os error",
    "errno",
    "error",
    "code",
    "err",
];

fn lookup(table: &[(i64, &'static str)], code: i64) -> Option<&'static str> {
    table.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

fn lookup_name(table: &[(i64, &'static str)], name: &str) -> Option<i64> {
    table.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
}

/// A bare number to a Winsock or Win32 identity, when it is a known code.
fn code_to_id(code: i64) -> Option<ErrorId> {
    if let Some(n) = lookup(WINSOCK, code) {
        return Some(ErrorId::new(ErrorKind::Winsock, Some(code), n));
    }
    lookup(WIN32, code).map(|n| ErrorId::new(ErrorKind::Win32, Some(code), n))
}

fn push_unique(v: &mut Vec<ErrorId>, id: ErrorId) {
    if let Some(e) = v.iter_mut().find(|e| e.kind == id.kind && e.name == id.name) {
        if e.code.is_none() {
            e.code = id.code;
        }
        return;
    }
    v.push(id);
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// All error identities in a text, in order of discovery, without duplicates.
pub fn extract_errors(text: &str) -> Vec<ErrorId> {
    let b = text.as_bytes();
    let mut out: Vec<ErrorId> = Vec::new();
    // Code of the first well-known message, given to a bare .NET exception name.
    let mut message_code: Option<i64> = None;

    // 1. Well-known messages.
    let lower = text.to_ascii_lowercase();
    // One pass over word starts; `str::contains` per phrase spent most time building searchers.
    let lb = lower.as_bytes();
    let mut found = [false; PHRASES.len()];
    for i in 0..lb.len() {
        let c = lb[i];
        if !c.is_ascii_lowercase() || (i > 0 && lb[i - 1].is_ascii_alphabetic()) {
            continue;
        }
        for (k, (p, ..)) in PHRASES.iter().enumerate() {
            if !found[k] && p.as_bytes()[0] == c && lb[i..].starts_with(p.as_bytes()) {
                found[k] = true;
            }
        }
    }
    for (k, (_, kind, code, name)) in PHRASES.iter().enumerate() {
        if found[k] {
            if matches!(kind, ErrorKind::Winsock | ErrorKind::Win32) && message_code.is_none() {
                message_code = *code;
            }
            push_unique(&mut out, ErrorId::new(*kind, *code, *name));
        }
    }

    // 2. Identifiers: WSAE*, ERROR_*, errno names, STATUS_*, .NET exception types, SocketError members.
    let mut i = 0;
    while i < b.len() {
        if !is_word(b[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && is_word(b[i]) {
            i += 1;
        }
        let w = &text[s..i];
        if w.len() < 4 || w.as_bytes()[0].is_ascii_digit() {
            continue;
        }
        if w.starts_with("WSAE") || w.starts_with("WSAHOST") {
            if w.bytes().all(|c| c.is_ascii_uppercase() || c == b'_') {
                push_unique(&mut out, ErrorId::new(ErrorKind::Winsock, lookup_name(WINSOCK, w), w));
            }
        } else if w.starts_with("ERROR_") && w.len() > 6 {
            // Only known names: ERROR_COUNT, ERROR_LEVEL etc. are ordinary identifiers.
            if let Some(c) = lookup_name(WIN32, w) {
                push_unique(&mut out, ErrorId::new(ErrorKind::Win32, Some(c), w));
            }
        } else if w.starts_with("STATUS_") {
            if let Some(c) = lookup_name(NTSTATUS, w) {
                push_unique(&mut out, ErrorId::new(ErrorKind::NtStatus, Some(c), w));
            }
        } else if let Some(c) = lookup_name(ERRNO, w) {
            push_unique(&mut out, ErrorId::new(ErrorKind::Errno, Some(c), w));
        } else if w.ends_with("Exception") {
            if DOTNET.contains(&w) {
                push_unique(&mut out, ErrorId::new(ErrorKind::DotNet, None, w));
            }
        } else if let Some((_, code)) = SOCKET_ERROR_ENUM.iter().find(|(n, _)| *n == w) {
            if b[s.saturating_sub(24)..s].windows(11).any(|x| x == b"SocketError") {
                if let Some(id) = code_to_id(*code) {
                    push_unique(&mut out, id);
                }
            }
        }
    }

    // 3. Hex HRESULT / NTSTATUS: 0x8xxxxxxx, 0xCxxxxxxx.
    let mut i = 0;
    while i + 10 <= b.len() {
        if b[i] == b'0' && (b[i + 1] == b'x' || b[i + 1] == b'X') && (i == 0 || !is_word(b[i - 1])) {
            let hex = &b[i + 2..i + 10];
            let after = b.get(i + 10).copied();
            if hex.iter().all(|c| c.is_ascii_hexdigit()) && !after.is_some_and(is_word) {
                if let Some(v) = std::str::from_utf8(hex).ok().and_then(|h| i64::from_str_radix(h, 16).ok()) {
                    add_hex_code(&mut out, v);
                }
                i += 10;
                continue;
            }
        }
        i += 1;
    }

    // 4. Decimal numbers in an error context, and HResult=-2147467259.
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let prev = if s > 0 { b[s - 1] } else { b' ' };
        let next = b.get(i).copied().unwrap_or(b' ');
        let next2 = b.get(i + 1).copied().unwrap_or(b' ');
        if i - s > 10 {
            continue;
        }
        let Ok(n) = text[s..i].parse::<i64>() else {
            continue;
        };
        if prev == b'-' {
            let before = lower.get(boundary_back(&lower, s - 1, 12)..s - 1).unwrap_or("");
            let before = before.trim_end_matches([' ', ':', '=']);
            if before.ends_with("hresult") && (1..=0x8000_0000).contains(&n) {
                add_hex_code(&mut out, 0x1_0000_0000 - n);
            }
            continue;
        }
        // Part of a time, address, version, path or identifier: not a code.
        let colon_after_digit = prev == b':' && s >= 2 && b[s - 2].is_ascii_digit();
        if is_word(prev) || colon_after_digit || matches!(prev, b'.' | b'/' | b'\\' | b'+' | b'$') {
            continue;
        }
        if is_word(next) || matches!(next, b':' | b'/' | b'\\' | b'-') || (next == b'.' && next2.is_ascii_digit()) {
            continue;
        }
        if prev == b'(' && next == b')' {
            if let Some(id) = code_to_id(n) {
                if id.kind == ErrorKind::Winsock || PAREN_OK_WIN32.contains(&n) {
                    push_unique(&mut out, id);
                    continue;
                }
            }
        }
        if let Some(kw) = context_keyword(&lower, s) {
            match kw {
                "errno" => {
                    let name = lookup(ERRNO, n).map(str::to_string).unwrap_or_else(|| format!("errno {n}"));
                    push_unique(&mut out, ErrorId::new(ErrorKind::Errno, Some(n), name));
                }
                _ => {
                    if let Some(id) = code_to_id(n) {
                        push_unique(&mut out, id);
                    } else if matches!(
                        kw,
                        "win32 error"
                            | "win32 error code"
                            | "winerror"
                            | "getlasterror"
                            | "lasterror"
                            | "last error"
                            | "nativeerrorcode"
                    ) && n > 0
                    {
                        if (10000..=11999).contains(&n) {
                            push_unique(&mut out, ErrorId::new(ErrorKind::Winsock, Some(n), format!("WSA error {n}")));
                        } else {
                            push_unique(&mut out, ErrorId::new(ErrorKind::Win32, Some(n), format!("Win32 error {n}")));
                        }
                    } else if matches!(kw, "socket error" | "wsa error" | "wsaerror" | "socketerrorcode")
                        && (10000..=11999).contains(&n)
                    {
                        push_unique(&mut out, ErrorId::new(ErrorKind::Winsock, Some(n), format!("WSA error {n}")));
                    }
                }
            }
        }
    }

    if let Some(code) = message_code {
        for e in out.iter_mut() {
            if e.kind == ErrorKind::DotNet
                && e.code.is_none()
                && matches!(
                    e.name.as_str(),
                    "SocketException"
                        | "IOException"
                        | "RemotingException"
                        | "WebException"
                        | "HttpRequestException"
                        | "CommunicationException"
                        | "PipeException"
                )
            {
                e.code = Some(code);
            }
        }
    }
    out
}

/// The error keyword right before the number at `pos`, e.g. "error 10054", "code: 231", "[Errno 104]".
fn context_keyword(lower: &str, pos: usize) -> Option<&'static str> {
    let before = lower.get(boundary_back(lower, pos, 40)..pos)?;
    let t = before.trim_end_matches([' ', '\t']);
    let t = t.strip_suffix([':', '=', '#']).unwrap_or(t);
    let t = t.trim_end_matches([' ', '\t']);
    // "GetLastError() = 231"
    let t = t.strip_suffix("()").unwrap_or(t);
    let t = t.trim_end_matches([' ', '\t']);
    for kw in NUM_CONTEXT {
        if let Some(rest) = t.strip_suffix(kw) {
            if rest.as_bytes().last().is_some_and(|&c| is_word(c)) {
                continue;
            }
            if *kw == "code" {
                let prev_word = rest.trim_end().rsplit(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or("");
                if matches!(
                    prev_word,
                    "exit" | "status" | "return" | "http" | "response" | "zip" | "postal" | "country" | "area"
                ) {
                    return None;
                }
            }
            return Some(kw);
        }
    }
    None
}

/// Start of a window of about `n` bytes ending at `pos`, on a char boundary.
fn boundary_back(s: &str, pos: usize, n: usize) -> usize {
    let mut a = pos.saturating_sub(n);
    while a < pos && !s.is_char_boundary(a) {
        a += 1;
    }
    a
}

fn add_hex_code(out: &mut Vec<ErrorId>, v: i64) {
    let hi = v >> 28;
    if hi == 0x8 {
        let name = lookup(HRESULTS, v).map(str::to_string).unwrap_or_else(|| format!("HRESULT 0x{v:08X}"));
        push_unique(out, ErrorId::new(ErrorKind::HResult, Some(v), name));
        // HRESULT_FROM_WIN32: facility 7 carries a Win32/Winsock code in the low word.
        if (v >> 16) & 0x1FFF == 7 {
            let w = v & 0xFFFF;
            if let Some(id) = code_to_id(w) {
                push_unique(out, id);
            }
        }
    } else if hi == 0xC {
        let name = lookup(NTSTATUS, v).map(str::to_string).unwrap_or_else(|| format!("NTSTATUS 0x{v:08X}"));
        push_unique(out, ErrorId::new(ErrorKind::NtStatus, Some(v), name));
    }
}
