//! One description per table, two writers: a one-pass CSV row writer (integers and timestamps
//! formatted straight into one buffer, quoting as polars' CSV writer did, so outputs stay byte for
//! byte) and Parquet through polars, with typed columns and UTC timestamp columns.

use std::io::Write;

use anyhow::Result;

use crate::model::{Endpoint, UtcNs};

/// What a column holds: its Parquet type, and how CSV shows a missing value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// UInt64; CSV shows a missing value as an empty cell.
    U64,
    /// UInt64; CSV shows a missing value as `""` (columns that were text before Parquet existed).
    U64Text,
    /// String; an empty string is `""`, a missing one an empty cell.
    Str,
    /// Datetime(ns, "UTC"); CSV shows RFC 3339 with microseconds and `Z`, a missing one as `""`.
    Ts,
    /// Float64 shown with this many decimals; a missing one as `""`.
    F64(u8),
}

/// One column of a table.
#[derive(Clone, Copy, Debug)]
pub struct Col {
    pub name: &'static str,
    pub kind: Kind,
}

/// A column, for the tables' `const` column lists.
pub const fn col(name: &'static str, kind: Kind) -> Col {
    Col { name, kind }
}

/// One cell of a row. Borrowed where possible, so that writing a row allocates nothing.
pub enum Cell<'a> {
    U(u64),
    S(&'a str),
    Owned(String),
    /// A conn_uid or community_id, inline (two per row of the connection table).
    Id(super::ids::IdText),
    Ep(&'a Endpoint),
    T(UtcNs),
    F(f64),
    /// A span in nanoseconds, shown in seconds (a Float64 column): the CSV digits are worked out
    /// from the integer, the same as formatting `ns as f64 / 1e9`.
    Seconds(i64),
    Null,
}

/// A table: its columns and a way to fill the cells of row `i` (in column order). `Sync`: rows
/// are formatted on several threads.
pub trait Table: Sync {
    fn columns(&self) -> &'static [Col];
    fn len(&self) -> usize;
    fn row<'a>(&'a self, i: usize, out: &mut Vec<Cell<'a>>);
}

/// Names of a table's columns, in order.
pub fn names(cols: &[Col]) -> Vec<&'static str> {
    cols.iter().map(|c| c.name).collect()
}

/// Rows formatted per chunk: a chunk's text (a few MB) is what a thread holds at once.
const CHUNK_ROWS: usize = 16_384;

/// Writes `table` as CSV (header, then one line per row, `\n` line ends). Chunks of rows are
/// formatted on all cores and written in order, so the file is the same as from one thread.
pub fn write_csv(table: &dyn Table, w: &mut dyn Write) -> Result<()> {
    let cols = table.columns();
    let mut header = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            header.push(b',');
        }
        header.extend_from_slice(c.name.as_bytes());
    }
    header.push(b'\n');
    w.write_all(&header)?;
    let n = table.len();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).clamp(1, 8);
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); threads.min(n.div_ceil(CHUNK_ROWS)).max(1)];
    let mut start = 0;
    while start < n {
        let ranges: Vec<std::ops::Range<usize>> =
            (0..bufs.len()).map(|k| (start + k * CHUNK_ROWS).min(n)..(start + (k + 1) * CHUNK_ROWS).min(n)).collect();
        let (first, rest) = bufs.split_first_mut().expect("at least one buffer");
        std::thread::scope(|s| {
            for (buf, range) in rest.iter_mut().zip(&ranges[1..]).filter(|(_, r)| !r.is_empty()) {
                s.spawn(|| format_rows(table, range.clone(), buf));
            }
            format_rows(table, ranges[0].clone(), first);
        });
        for buf in &mut bufs {
            w.write_all(buf)?;
            buf.clear();
        }
        start = ranges.last().map_or(n, |r| r.end);
    }
    Ok(())
}

/// The CSV lines of rows `range`, appended to `buf`.
fn format_rows(table: &dyn Table, range: std::ops::Range<usize>, buf: &mut Vec<u8>) {
    let cols = table.columns();
    let mut cells = Vec::with_capacity(cols.len());
    let mut clock = DayCache::default();
    for r in range {
        cells.clear();
        table.row(r, &mut cells);
        debug_assert_eq!(cells.len(), cols.len());
        for (i, (cell, col)) in cells.iter().zip(cols).enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            put_cell(buf, cell, col.kind, &mut clock);
        }
        buf.push(b'\n');
    }
}

fn put_cell(buf: &mut Vec<u8>, cell: &Cell, kind: Kind, clock: &mut DayCache) {
    match cell {
        Cell::U(v) => put_u64(buf, *v),
        Cell::S(s) => put_str(buf, s),
        Cell::Owned(s) => put_str(buf, s),
        Cell::Id(s) => put_text(buf, s.as_bytes()),
        Cell::Ep(e) => put_endpoint(buf, e),
        Cell::T(ns) => clock.put(buf, *ns),
        Cell::F(v) => put_f64(buf, *v, kind),
        Cell::Seconds(ns) => put_seconds(buf, *ns, kind),
        Cell::Null => {
            if kind != Kind::U64 && kind != Kind::Str {
                buf.extend_from_slice(b"\"\"");
            }
        }
    }
}

fn put_f64(buf: &mut Vec<u8>, v: f64, kind: Kind) {
    let decimals = if let Kind::F64(d) = kind { d as usize } else { 6 };
    let _ = write!(buf, "{v:.decimals$}");
}

/// `ns` seconds with six decimals, as `put_f64(ns as f64 / 1e9)` writes them, without the float
/// formatter where that is provably the same: below 1e15 ns the quotient is within 0.12 ns of
/// `ns / 1e9`, and a nanosecond count that is not at a half microsecond is at least 1 ns from a
/// rounding boundary, so both round to the same microsecond.
fn put_seconds(buf: &mut Vec<u8>, ns: i64, kind: Kind) {
    if kind != Kind::F64(6) || !(0..1_000_000_000_000_000).contains(&ns) || ns % 1_000 == 500 {
        return put_f64(buf, ns as f64 / 1e9, kind);
    }
    let micros = ns / 1_000 + i64::from(ns % 1_000 > 500);
    put_u64(buf, (micros / 1_000_000) as u64);
    buf.push(b'.');
    let mut digits = [b'0'; 6];
    let mut v = micros % 1_000_000;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf.extend_from_slice(&digits);
}

fn put_u64(buf: &mut Vec<u8>, v: u64) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(v).as_bytes());
}

/// A CSV text cell as polars wrote it: `""` when empty, quoted when it holds a comma, quote or
/// line break (quotes doubled).
pub fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_text(buf, s.as_bytes());
}

fn put_text(buf: &mut Vec<u8>, b: &[u8]) {
    if b.is_empty() {
        buf.extend_from_slice(b"\"\"");
        return;
    }
    if !b.iter().any(|&c| matches!(c, b',' | b'"' | b'\n' | b'\r')) {
        buf.extend_from_slice(b);
        return;
    }
    buf.push(b'"');
    for &c in b {
        if c == b'"' {
            buf.push(b'"');
        }
        buf.push(c);
    }
    buf.push(b'"');
}

fn put_endpoint(buf: &mut Vec<u8>, e: &Endpoint) {
    match e.ip {
        std::net::IpAddr::V4(a) => {
            for (i, o) in a.octets().iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                put_u64(buf, u64::from(*o));
            }
            buf.push(b':');
            put_u64(buf, u64::from(e.port));
        }
        std::net::IpAddr::V6(_) => {
            let _ = write!(buf, "{e}");
        }
    }
}

/// Formats timestamps as `format_utc` does, computing the calendar date once per day seen.
#[derive(Default)]
struct DayCache {
    day: Option<i64>,
    date: [u8; 11],
}

impl DayCache {
    fn put(&mut self, buf: &mut Vec<u8>, ns: UtcNs) {
        let secs = ns.div_euclid(1_000_000_000);
        let micros = ns.rem_euclid(1_000_000_000) / 1_000;
        let day = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        if self.day != Some(day) {
            let (y, m, d) = civil(day);
            let s = format!("{y:04}-{m:02}-{d:02}T");
            self.date.copy_from_slice(&s.as_bytes()[..11]);
            self.day = Some(day);
        }
        buf.extend_from_slice(&self.date);
        let two = |buf: &mut Vec<u8>, v: i64| buf.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]);
        two(buf, sod / 3600);
        buf.push(b':');
        two(buf, sod / 60 % 60);
        buf.push(b':');
        two(buf, sod % 60);
        buf.push(b'.');
        let mut digits = [b'0'; 6];
        let mut v = micros;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        buf.extend_from_slice(&digits);
        buf.push(b'Z');
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm);
/// the i64 nanosecond clock spans only years 1677..2262, so the year always has four digits.
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(feature = "parquet")]
/// Builds the polars DataFrame of `table`: UInt64, String, Float64 and Datetime(ns, "UTC") columns.
pub fn data_frame(table: &dyn Table) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::*;
    enum Builder {
        U(Vec<Option<u64>>),
        S(Vec<Option<String>>),
        T(Vec<Option<i64>>),
        F(Vec<Option<f64>>),
    }
    let cols = table.columns();
    let n = table.len();
    let mut builders: Vec<Builder> = cols
        .iter()
        .map(|c| match c.kind {
            Kind::U64 | Kind::U64Text => Builder::U(Vec::with_capacity(n)),
            Kind::Str => Builder::S(Vec::with_capacity(n)),
            Kind::Ts => Builder::T(Vec::with_capacity(n)),
            Kind::F64(_) => Builder::F(Vec::with_capacity(n)),
        })
        .collect();
    let mut cells = Vec::with_capacity(cols.len());
    for r in 0..n {
        cells.clear();
        table.row(r, &mut cells);
        for (cell, b) in cells.drain(..).zip(builders.iter_mut()) {
            match (b, cell) {
                (Builder::U(v), Cell::U(x)) => v.push(Some(x)),
                (Builder::S(v), Cell::S(s)) => v.push(Some(s.to_string())),
                (Builder::S(v), Cell::Owned(s)) => v.push(Some(s)),
                (Builder::S(v), Cell::Id(s)) => v.push(Some(s.as_str().to_owned())),
                (Builder::S(v), Cell::Ep(e)) => v.push(Some(e.to_string())),
                (Builder::T(v), Cell::T(t)) => v.push(Some(t)),
                (Builder::F(v), Cell::F(x)) => v.push(Some(x)),
                (Builder::F(v), Cell::Seconds(ns)) => v.push(Some(ns as f64 / 1e9)),
                (Builder::U(v), _) => v.push(None),
                (Builder::S(v), _) => v.push(None),
                (Builder::T(v), _) => v.push(None),
                (Builder::F(v), _) => v.push(None),
            }
        }
    }
    let columns = cols
        .iter()
        .zip(builders)
        .map(|(c, b)| {
            let name: PlSmallStr = c.name.into();
            Ok(match b {
                Builder::U(v) => Column::new(name, v),
                Builder::S(v) => Column::new(name, v),
                Builder::F(v) => Column::new(name, v),
                Builder::T(v) => {
                    Series::new(name, v).into_datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC)).into_column()
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DataFrame::new(n, columns)?)
}

/// Writes `table` as one Parquet file (zstd-compressed, the polars default).
#[cfg(feature = "parquet")]
pub fn write_parquet(table: &dyn Table, w: &mut dyn Write) -> Result<()> {
    let mut df = data_frame(table)?;
    polars::prelude::ParquetWriter::new(w).finish(&mut df)?;
    Ok(())
}

/// Without the `parquet` feature: says so.
#[cfg(not(feature = "parquet"))]
pub fn write_parquet(_table: &dyn Table, _w: &mut dyn Write) -> Result<()> {
    anyhow::bail!("this ipcscope was built without Parquet support (cargo feature `parquet`)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::format_utc;

    #[test]
    fn timestamps_format_as_format_utc() {
        let mut clock = DayCache::default();
        let mut ns: i64 = -3_000_000_000_000_000_123;
        while ns < 9_000_000_000_000_000_000 {
            for t in [ns, ns + 1, ns + 999, ns + 86_399_999_999_999] {
                let mut buf = Vec::new();
                clock.put(&mut buf, t);
                assert_eq!(String::from_utf8(buf).unwrap(), format_utc(t), "{t}");
            }
            ns += 7_777_777_777_777_777;
        }
        for t in [0, -1, i64::MAX, i64::MIN, 1_700_000_000_123_456_789] {
            let mut buf = Vec::new();
            clock.put(&mut buf, t);
            assert_eq!(String::from_utf8(buf).unwrap(), format_utc(t), "{t}");
        }
    }

    /// Seconds from nanoseconds are the float formatter's digits: near every rounding boundary,
    /// at ties (which take the float path), at the edge of the integer path and beyond it.
    #[test]
    fn seconds_format_as_the_float() {
        let by_float = |ns: i64| format!("{:.6}", ns as f64 / 1e9);
        let mut x = 0x853c_49e6_748f_ea9bu64;
        let mut cases: Vec<i64> = vec![
            0,
            1,
            499,
            500,
            501,
            999,
            1_000,
            999_999_999_999_999,
            1_000_000_000_000_000,
            -1,
            -501,
            -1_500,
            i64::MAX,
            i64::MIN,
        ];
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let scale =
                [1_000_000u64, 1_000_000_000_000, 1_000_000_000_000_000, 2_000_000_000_000_000][(x % 4) as usize];
            let base = (x >> 3) % scale;
            let micro_edge = base - base % 1_000 + [499, 500, 501, 0, 999][(x % 5) as usize];
            cases.extend([base as i64, micro_edge as i64]);
        }
        for ns in cases {
            let mut buf = Vec::new();
            put_seconds(&mut buf, ns, Kind::F64(6));
            assert_eq!(String::from_utf8(buf).unwrap(), by_float(ns), "{ns}");
        }
    }

    #[test]
    fn strings_are_quoted_only_when_needed() {
        let cases = [
            ("", "\"\""),
            ("abc", "abc"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("a\nb", "\"a\nb\""),
        ];
        for (s, want) in cases {
            let mut buf = Vec::new();
            put_str(&mut buf, s);
            assert_eq!(String::from_utf8(buf).unwrap(), want);
        }
    }

    /// Rows formatted in chunks on several threads come out in order, as from one thread.
    #[test]
    fn chunked_rows_keep_their_order() {
        struct Numbers(usize);
        impl Table for Numbers {
            fn columns(&self) -> &'static [Col] {
                const COLS: &[Col] = &[col("n", Kind::U64), col("text", Kind::Str), col("ts", Kind::Ts)];
                COLS
            }
            fn len(&self) -> usize {
                self.0
            }
            fn row<'a>(&'a self, i: usize, out: &mut Vec<Cell<'a>>) {
                out.extend([Cell::U(i as u64), Cell::Owned(format!("row, {i}")), Cell::T(i as i64 * 86_399_999_999)]);
            }
        }
        let t = Numbers(CHUNK_ROWS * 5 + 123);
        let mut chunked = Vec::new();
        write_csv(&t, &mut chunked).unwrap();
        let mut one = b"n,text,ts\n".to_vec();
        format_rows(&t, 0..t.len(), &mut one);
        assert_eq!(chunked.len(), one.len());
        assert!(chunked == one, "chunked output differs");
        let mut empty = Vec::new();
        write_csv(&Numbers(0), &mut empty).unwrap();
        assert_eq!(empty, b"n,text,ts\n");
    }
}
