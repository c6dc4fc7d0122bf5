//! Timestamp formats at a line start: detection candidates, parsers and user clock offsets.

use super::NS_PER_S;
use crate::model::utc_ns_from_civil;

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

/// What a line start parser found.
#[derive(Debug, Clone, Copy)]
pub(super) struct TsHit {
    pub(super) local_ns: Option<i64>,
    pub(super) zone: Option<i32>,
    /// Bytes consumed from the line start.
    pub(super) len: usize,
    pub(super) pri: Option<u32>,
    /// Month, for syslog year roll-over.
    pub(super) month: u32,
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

pub(super) fn parse_at_start(f: TsFormat, b: &[u8], syslog_year: i32) -> Option<TsHit> {
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
            let ns = utc_ns_from_civil(i64::from(syslog_year), m, d, hh, mm, ss, frac)?;
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
            let ns = utc_ns_from_civil(y, mo, d, hh, mm, ss, frac)?;
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
    let ns = utc_ns_from_civil(y, mo, d, h, mi, s, frac)?;
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
