//! Time display for the GUI: UTC or the machine's local zone, at the precision the zoom needs.
//!
//! No date/time crate is a dependency, so the local offset is read from the OS directly:
//! the TZif database on Unix (historical DST-correct), `GetTimeZoneInformation` on Windows.

use crate::model::{civil_from_days, UtcNs};
use std::sync::OnceLock;

/// Which clock the user reads times on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TimeZoneMode {
    Utc,
    Local,
}

impl TimeZoneMode {
    pub fn name(self) -> &'static str {
        match self {
            TimeZoneMode::Utc => "UTC",
            TimeZoneMode::Local => "Local",
        }
    }

    /// Offset from UTC in seconds at instant `ns`.
    pub fn offset_s(self, ns: UtcNs) -> i64 {
        match self {
            TimeZoneMode::Utc => 0,
            TimeZoneMode::Local => local_zone().offset_at(ns.div_euclid(1_000_000_000)),
        }
    }

    /// Suffix naming the zone, e.g. `Z` or `+01:00`.
    pub fn suffix(self, ns: UtcNs) -> String {
        match self {
            TimeZoneMode::Utc => "Z".into(),
            TimeZoneMode::Local => {
                let o = self.offset_s(ns);
                let sign = if o < 0 { '-' } else { '+' };
                let o = o.abs();
                format!("{sign}{:02}:{:02}", o / 3600, (o / 60) % 60)
            }
        }
    }
}

/// Broken-down wall-clock time.
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    /// Nanoseconds within the second.
    pub nanos: i64,
}

pub fn civil(ns: UtcNs, tz: TimeZoneMode) -> Civil {
    let local = ns.saturating_add(tz.offset_s(ns).saturating_mul(1_000_000_000));
    let secs = local.div_euclid(1_000_000_000);
    let nanos = local.rem_euclid(1_000_000_000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    Civil { year, month, day, hour: sod / 3600, minute: (sod / 60) % 60, second: sod % 60, nanos }
}

/// Full timestamp with microseconds and zone, e.g. `2026-11-22 19:05:38.975919Z`.
pub fn format_full(ns: UtcNs, tz: TimeZoneMode) -> String {
    let c = civil(ns, tz);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}{}",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.nanos / 1000,
        tz.suffix(ns)
    )
}

/// Date only, e.g. `2026-11-22 (UTC)`.
pub fn format_date(ns: UtcNs, tz: TimeZoneMode) -> String {
    let c = civil(ns, tz);
    format!("{:04}-{:02}-{:02} ({})", c.year, c.month, c.day, tz.name())
}

/// Time of day with as many fraction digits as a tick step of `step_ns` needs.
pub fn format_tick(ns: UtcNs, step_ns: i64, tz: TimeZoneMode) -> String {
    let c = civil(ns, tz);
    let hms = format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second);
    if step_ns >= 1_000_000_000 {
        hms
    } else if step_ns >= 1_000_000 {
        format!("{hms}.{:03}", c.nanos / 1_000_000)
    } else if step_ns >= 1_000 {
        format!("{hms}.{:06}", c.nanos / 1_000)
    } else {
        format!("{hms}.{:09}", c.nanos)
    }
}

/// A duration in human units, e.g. `1.5 s`, `250 ms`, `3 h 2 min`.
pub fn format_duration(ns: i64) -> String {
    let a = ns.unsigned_abs() as f64;
    if a < 1e3 {
        format!("{ns} ns")
    } else if a < 1e6 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if a < 1e9 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else if a < 120e9 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else if a < 7200e9 {
        format!("{:.1} min", ns as f64 / 60e9)
    } else {
        format!("{:.1} h", ns as f64 / 3600e9)
    }
}

/// The machine's time zone: a list of (transition second, offset) plus a fallback offset.
struct LocalZone {
    transitions: Vec<(i64, i64)>,
    default_offset: i64,
}

impl LocalZone {
    fn offset_at(&self, secs: i64) -> i64 {
        let i = self.transitions.partition_point(|(t, _)| *t <= secs);
        if i == 0 {
            self.default_offset
        } else {
            self.transitions[i - 1].1
        }
    }
}

fn local_zone() -> &'static LocalZone {
    static ZONE: OnceLock<LocalZone> = OnceLock::new();
    ZONE.get_or_init(load_local_zone)
}

#[cfg(unix)]
fn load_local_zone() -> LocalZone {
    let path = match std::env::var("TZ") {
        Ok(tz) if !tz.is_empty() => {
            let name = tz.trim_start_matches(':');
            if name.starts_with('/') {
                name.to_string()
            } else {
                format!("/usr/share/zoneinfo/{name}")
            }
        }
        _ => "/etc/localtime".to_string(),
    };
    std::fs::read(path)
        .ok()
        .and_then(|b| parse_tzif(&b))
        .unwrap_or(LocalZone { transitions: Vec::new(), default_offset: 0 })
}

/// Reads the version-1 (32-bit) body of a TZif file: enough for captures before 2038.
#[cfg(unix)]
fn parse_tzif(b: &[u8]) -> Option<LocalZone> {
    if b.get(0..4)? != b"TZif" {
        return None;
    }
    let count = |i: usize| -> Option<usize> {
        let s = b.get(20 + 4 * i..24 + 4 * i)?;
        Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
    };
    let (timecnt, typecnt) = (count(3)?, count(4)?);
    let times = 44;
    let idx = times + 4 * timecnt;
    let types = idx + timecnt;
    let ttinfo = |k: usize| -> Option<(i64, bool)> {
        let s = b.get(types + 6 * k..types + 6 * k + 6)?;
        Some((i32::from_be_bytes([s[0], s[1], s[2], s[3]]) as i64, s[4] != 0))
    };
    let mut transitions = Vec::with_capacity(timecnt);
    for i in 0..timecnt {
        let s = b.get(times + 4 * i..times + 4 * i + 4)?;
        let t = i32::from_be_bytes([s[0], s[1], s[2], s[3]]) as i64;
        let k = *b.get(idx + i)? as usize;
        transitions.push((t, ttinfo(k)?.0));
    }
    let default_offset = (0..typecnt)
        .filter_map(ttinfo)
        .find(|(_, dst)| !dst)
        .map(|(o, _)| o)
        .or_else(|| ttinfo(0).map(|t| t.0))
        .unwrap_or(0);
    // Past the last v1 transition the zone keeps its last offset (DST rules after 2037 ignored).
    Some(LocalZone { transitions, default_offset })
}

#[cfg(windows)]
fn load_local_zone() -> LocalZone {
    #[repr(C)]
    #[allow(dead_code)]
    struct SystemTime([u16; 8]);
    #[repr(C)]
    #[allow(dead_code)]
    struct TimeZoneInformation {
        bias: i32,
        standard_name: [u16; 32],
        standard_date: SystemTime,
        standard_bias: i32,
        daylight_name: [u16; 32],
        daylight_date: SystemTime,
        daylight_bias: i32,
    }
    #[link(name = "kernel32")]
    extern "system" {
        fn GetTimeZoneInformation(info: *mut TimeZoneInformation) -> u32;
    }
    let mut info = TimeZoneInformation {
        bias: 0,
        standard_name: [0; 32],
        standard_date: SystemTime([0; 8]),
        standard_bias: 0,
        daylight_name: [0; 32],
        daylight_date: SystemTime([0; 8]),
        daylight_bias: 0,
    };
    // SAFETY: `info` is a properly laid out TIME_ZONE_INFORMATION the call fills in.
    let r = unsafe { GetTimeZoneInformation(&mut info) };
    // The current offset only: good enough to read a capture taken recently on this machine.
    let bias_min = match r {
        2 => info.bias + info.daylight_bias,
        1 => info.bias + info.standard_bias,
        0 => info.bias,
        _ => 0,
    };
    LocalZone { transitions: Vec::new(), default_offset: -(bias_min as i64) * 60 }
}

#[cfg(not(any(unix, windows)))]
fn load_local_zone() -> LocalZone {
    LocalZone { transitions: Vec::new(), default_offset: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_full() {
        let ns = 1_700_000_000_123_456_789;
        assert_eq!(format_full(ns, TimeZoneMode::Utc), "2023-11-14 22:13:20.123456Z");
        assert_eq!(format_tick(ns, 1_000_000_000, TimeZoneMode::Utc), "22:13:20");
        assert_eq!(format_tick(ns, 1_000_000, TimeZoneMode::Utc), "22:13:20.123");
    }
}
