//! Process Monitor's CSV export: a header row naming the columns (any order, any subset that
//! includes Operation and a time), then one quoted row per event. UTF-8, with or without BOM.
//! Times are local wall time without a zone: "Time of Day" (`7:37:18.2093997 AM`, no date) and
//! "Date & Time" (`7/31/2020 7:37:18 AM`, whole seconds). Both present: the date comes from the
//! second and the 100 ns time from the first. Only "Time of Day": the date is unknown, times count
//! from day 0 and roll over at midnight; the pipeline aligns them (docs/procmon.md).

use std::io::BufRead;

use super::{parse_net_path, result_status, EventClass, NetInfo, ProcmonEvent};
use crate::ingest::{Damage, DamageKind, Part};

/// Longest row accepted (a Detail column can list a whole directory).
pub const MAX_ROW: usize = 1 << 20;

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// A CSV whose first row names Procmon's columns (checked on the first bytes of the file).
pub fn looks_like_procmon_csv(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    // Lossy: the head may end inside a multi-byte character of a long header row.
    let line = String::from_utf8_lossy(line);
    let cols: Vec<String> = split_row(&line).into_iter().map(|c| c.trim().to_string()).collect();
    let has = |n: &str| cols.iter().any(|c| c == n);
    has("Operation") && (has("Time of Day") || has("Date & Time")) && (has("Process Name") || has("PID"))
}

/// What the clock of the rows is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsvClock {
    /// Local date and time (Date & Time present).
    DateAndTime,
    /// Time of day only: the date is unknown.
    TimeOfDayOnly,
}

#[derive(Default)]
struct Columns {
    time_of_day: Option<usize>,
    date_time: Option<usize>,
    process: Option<usize>,
    pid: Option<usize>,
    operation: usize,
    path: Option<usize>,
    result: Option<usize>,
    detail: Option<usize>,
    tid: Option<usize>,
    class: Option<usize>,
}

/// Streams the rows of a Procmon CSV export.
pub struct CsvReader<R: BufRead> {
    r: R,
    cols: Columns,
    pub clock: CsvClock,
    /// Column names, in file order.
    pub header: Vec<String>,
    offset: u64,
    row: u64,
    day: i64,
    last_tod: Option<i64>,
    failed: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> CsvReader<R> {
    pub fn new(mut r: R) -> Result<Self, Damage> {
        let mut buf = Vec::new();
        let n = read_record(&mut r, &mut buf, 0, Part::CsvHeader)?;
        if n == 0 {
            return Err(Damage::at(0, DamageKind::Empty(Part::CsvHeader)));
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let header: Vec<String> =
            split_row(text.trim_end_matches(['\r', '\n'])).into_iter().map(|c| c.trim().to_string()).collect();
        let find = |name: &str| header.iter().position(|h| h == name);
        let Some(operation) = find("Operation") else {
            return Err(Damage::at(0, DamageKind::Missing { part: Part::CsvHeader, field: "Operation column" }));
        };
        let cols = Columns {
            time_of_day: find("Time of Day"),
            date_time: find("Date & Time"),
            process: find("Process Name"),
            pid: find("PID"),
            operation,
            path: find("Path"),
            result: find("Result"),
            detail: find("Detail"),
            tid: find("TID"),
            class: find("Event Class"),
        };
        if cols.time_of_day.is_none() && cols.date_time.is_none() {
            let field = "Time of Day or Date & Time column";
            return Err(Damage::at(0, DamageKind::Missing { part: Part::CsvHeader, field }));
        }
        let clock = if cols.date_time.is_some() { CsvClock::DateAndTime } else { CsvClock::TimeOfDayOnly };
        Ok(CsvReader { r, cols, clock, header, offset: n as u64, row: 0, day: 0, last_tod: None, failed: false, buf })
    }

    fn parse(&mut self, at: u64, fields: &[String]) -> Result<ProcmonEvent, Damage> {
        let get = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(|s| s.as_str()).unwrap_or("");
        let c = &self.cols;
        let bad = |field: &'static str, i: usize| {
            let value = get(Some(i)).to_string();
            Damage::at(at, DamageKind::BadValue { part: Part::Row(self.row + 1), field, value })
        };
        let tod = match c.time_of_day {
            Some(i) => Some(
                parse_time_of_day(fields.get(i).map(|s| s.as_str()).unwrap_or(""))
                    .ok_or_else(|| bad("Time of Day", i))?,
            ),
            None => None,
        };
        let ts = match c.date_time {
            Some(i) => {
                let (day, secs) = parse_date_time(get(Some(i))).ok_or_else(|| bad("Date & Time", i))?;
                // The whole seconds agree; Time of Day adds the fraction.
                day * NS_PER_DAY + tod.unwrap_or(secs * 1_000_000_000)
            }
            None => {
                let t = tod.unwrap_or(0);
                if let Some(last) = self.last_tod {
                    if t + NS_PER_DAY / 2 < last {
                        self.day += 1;
                    }
                }
                self.last_tod = Some(t);
                self.day * NS_PER_DAY + t
            }
        };
        let operation = get(Some(c.operation)).to_string();
        let path = get(c.path).to_string();
        let result = get(c.result).to_string();
        let class = match c.class {
            Some(_) => EventClass::from_name(get(c.class)),
            None => infer_class(&operation),
        };
        let net = if operation.starts_with("TCP ") || operation.starts_with("UDP ") {
            parse_net_path(&path).map(|(src, dst)| NetInfo { tcp: operation.starts_with("TCP "), src, dst })
        } else {
            None
        };
        let disposition = disposition_of(get(c.detail));
        Ok(ProcmonEvent {
            index: self.row,
            ts,
            pid: get(c.pid).trim().parse().unwrap_or(0),
            tid: get(c.tid).trim().parse().unwrap_or(0),
            process: get(c.process).to_string(),
            class,
            operation,
            path,
            status: result_status(&result),
            result,
            disposition,
            net,
        })
    }
}

impl<R: BufRead> Iterator for CsvReader<R> {
    type Item = Result<ProcmonEvent, Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let at = self.offset;
            let mut buf = std::mem::take(&mut self.buf);
            let n = match read_record(&mut self.r, &mut buf, at, Part::Row(self.row + 1)) {
                Ok(n) => n,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            if n == 0 {
                return None;
            }
            self.offset += n as u64;
            let text = String::from_utf8_lossy(&buf).into_owned();
            self.buf = buf;
            let line = text.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                continue;
            }
            let fields = split_row(line);
            let r = self.parse(at, &fields);
            self.row += 1;
            if r.is_err() {
                self.failed = true;
            }
            return Some(r);
        }
    }
}

/// Reads one record (a line, or several while a quoted field is open) into `buf`; returns the
/// bytes consumed (0 at the end).
fn read_record<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, at: u64, part: Part) -> Result<usize, Damage> {
    buf.clear();
    let mut total = 0usize;
    let mut quotes = 0usize;
    loop {
        let before = buf.len();
        let n = std::io::Read::take(&mut *r, (MAX_ROW + 1 - buf.len().min(MAX_ROW)) as u64)
            .read_until(b'\n', buf)
            .map_err(|e| Damage::at(at + total as u64, e.into()))?;
        total += n;
        if buf.len() > MAX_ROW {
            // Not a Procmon CSV row: a binary file or a lost newline.
            return Err(Damage::at(at, DamageKind::TooLong { part, max: MAX_ROW as u64 }));
        }
        quotes += buf.get(before..).map(|b| b.iter().filter(|&&c| c == b'"').count()).unwrap_or(0);
        if n == 0 || quotes % 2 == 0 || !buf.ends_with(b"\n") {
            return Ok(total);
        }
    }
}

/// Splits one CSV row (RFC 4180 quoting: `""` inside quotes is a quote).
pub fn split_row(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if in_q && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => in_q = !in_q,
            ',' if !in_q => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    out.push(cur);
    out
}

/// `7:37:18.2093997 AM` or `19:37:18.2093997` to ns since midnight.
pub fn parse_time_of_day(s: &str) -> Option<i64> {
    let s = s.trim();
    let (clock, ampm) = match s.rsplit_once(' ') {
        Some((c, m)) if m.eq_ignore_ascii_case("AM") => (c, Some(false)),
        Some((c, m)) if m.eq_ignore_ascii_case("PM") => (c, Some(true)),
        _ => (s, None),
    };
    let mut it = clock.split(':');
    let h: i64 = it.next()?.trim().parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let sec = it.next()?;
    if it.next().is_some() || m > 59 {
        return None;
    }
    let (whole, frac) = sec.split_once(['.', ',']).unwrap_or((sec, ""));
    let whole: i64 = whole.parse().ok()?;
    if whole > 60 || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_ns: i64 = if frac.is_empty() { 0 } else { frac.parse::<i64>().ok()? * 10i64.pow(9 - frac.len() as u32) };
    let h = match ampm {
        Some(pm) if (1..=12).contains(&h) => h % 12 + if pm { 12 } else { 0 },
        Some(_) => return None,
        None if h < 24 => h,
        None => return None,
    };
    Some(((h * 60 + m) * 60 + whole) * 1_000_000_000 + frac_ns)
}

/// `7/31/2020 7:37:18 AM` (US), `31.07.2020 07:37:18`, `2020-07-31 07:37:18` to (days since the
/// Unix epoch, seconds of the day).
pub fn parse_date_time(s: &str) -> Option<(i64, i64)> {
    let s = s.trim();
    let (date, time) = s.split_once(' ')?;
    let secs = parse_time_of_day(time)? / 1_000_000_000;
    let parts: Vec<i64> = date.split(['/', '.', '-']).map(|p| p.trim().parse().ok()).collect::<Option<Vec<_>>>()?;
    let [a, b, c] = parts[..] else { return None };
    let (y, m, d) = if a > 31 {
        (a, b, c)
    } else if date.contains('/') {
        // US order unless the first part cannot be a month.
        if a > 12 {
            (c, b, a)
        } else {
            (c, a, b)
        }
    } else {
        (c, b, a)
    };
    // Years a UtcNs can hold with room to spare (1970 ± 230 years).
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1900..=2200).contains(&y) {
        return None;
    }
    Some((crate::model::days_from_civil(y, m as u32, d as u32), secs))
}

/// `Disposition: Open` in a CreateFile's Detail to FILE_OPEN (1) etc.
fn disposition_of(detail: &str) -> Option<u8> {
    let (_, rest) = detail.split_once("Disposition: ")?;
    let word = rest.split([',', ' ']).next()?;
    Some(match word {
        "Supersede" => 0,
        "Open" => 1,
        "Create" => 2,
        "OpenIf" => 3,
        "Overwrite" => 4,
        "OverwriteIf" => 5,
        _ => return None,
    })
}

fn infer_class(op: &str) -> EventClass {
    if op.starts_with("TCP ") || op.starts_with("UDP ") {
        EventClass::Network
    } else if op.starts_with("Reg") {
        EventClass::Registry
    } else if matches!(
        op,
        "Process Create"
            | "Process Exit"
            | "Process Start"
            | "Thread Create"
            | "Thread Exit"
            | "Load Image"
            | "Process Statistics"
    ) {
        EventClass::Process
    } else {
        EventClass::FileSystem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day() {
        assert_eq!(
            parse_time_of_day("7:37:18.2093997 AM"),
            Some(((7 * 60 + 37) * 60 + 18) * 1_000_000_000 + 209_399_700)
        );
        assert_eq!(parse_time_of_day("12:00:00.0000000 AM"), Some(0));
        assert_eq!(parse_time_of_day("12:00:01 PM"), Some((12 * 3600 + 1) * 1_000_000_000));
        assert_eq!(parse_time_of_day("19:37:18,5"), Some(((19 * 60 + 37) * 60 + 18) * 1_000_000_000 + 500_000_000));
        assert_eq!(parse_time_of_day("13:00:00 PM"), None);
        assert_eq!(parse_time_of_day("garbage"), None);
    }

    #[test]
    fn dates() {
        let d = crate::model::days_from_civil(2020, 7, 31);
        assert_eq!(parse_date_time("7/31/2020 7:37:18 AM"), Some((d, 7 * 3600 + 37 * 60 + 18)));
        assert_eq!(parse_date_time("31.07.2020 19:00:00"), Some((d, 19 * 3600)));
        assert_eq!(parse_date_time("2020-07-31 00:00:01"), Some((d, 1)));
    }

    #[test]
    fn header_in_any_order_and_quoted_rows() {
        let csv = "\u{feff}\"Operation\",\"PID\",\"Time of Day\",\"Path\",\"Result\",\"Process Name\"\r\n\
                   \"CreateFile\",\"5120\",\"10:15:00.0000001 AM\",\"\\\\.\\pipe\\X\",\"PIPE BUSY\",\"w3wp.exe\"\r\n\
                   \"WriteFile\",\"5120\",\"10:15:00.5 AM\",\"a \"\"quoted\"\"\r\nname\",\"SUCCESS\",\"w3wp.exe\"\r\n";
        assert!(looks_like_procmon_csv(csv.as_bytes()));
        let rd = CsvReader::new(csv.as_bytes()).expect("header");
        assert_eq!(rd.clock, CsvClock::TimeOfDayOnly);
        let rows: Vec<ProcmonEvent> = rd.map(|r| r.expect("row")).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].status, Some(0xC000_00AE));
        assert_eq!(rows[0].pid, 5120);
        assert_eq!(rows[0].ts, 36_900 * 1_000_000_000 + 100);
        assert_eq!(rows[1].path, "a \"quoted\"\r\nname");
        assert!(!looks_like_procmon_csv(b"2026-11-22 10:00:00,000 ERROR x"));
    }
}
