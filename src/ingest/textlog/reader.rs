//! The streaming reader: physical lines, format detection, multi-line records, IIS columns.

use super::encoding::Transcode;
use super::errors::{code_to_id, extract_errors, push_unique, ErrorId, ErrorKind};
use super::severity::{detect_severity, from_syslog_pri, Severity};
use super::timestamp::{parse_at_start, TsFormat, TsHit};
use super::{DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_RECORD_BYTES, NS_PER_S};
use crate::ingest::Damage;
use crate::model::current_utc_year;
use std::collections::VecDeque;
use std::io::{self, BufRead};

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
    io_error: Option<Damage>,
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

    /// The I/O error that ended the stream early, if any, at the offset of the first byte not read.
    pub fn io_error(&self) -> Option<&Damage> {
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
                    self.io_error = Some(Damage::at(self.src.raw_consumed(), e.into()));
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
            Some(p) => from_syslog_pri(p),
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
