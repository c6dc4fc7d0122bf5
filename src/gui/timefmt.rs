//! Time display for the GUI: UTC or the machine's local zone, at the precision the zoom needs.
//!
//! Local time is jiff's reading of the machine's zone at each instant, so a capture from another
//! season or year shows the offset that was in force then (DST, rule changes, dates after 2038).

use crate::model::{timestamp, UtcNs};
use jiff::tz::TimeZone;
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

    fn zone(self) -> &'static TimeZone {
        static UTC: TimeZone = TimeZone::UTC;
        match self {
            TimeZoneMode::Utc => &UTC,
            TimeZoneMode::Local => local_zone(),
        }
    }

    /// Offset from UTC in seconds at instant `ns`.
    pub fn offset_s(self, ns: UtcNs) -> i64 {
        offset_in(ns, self.zone())
    }

    /// Suffix naming the zone, e.g. `Z` or `+01:00`.
    pub fn suffix(self, ns: UtcNs) -> String {
        match self {
            TimeZoneMode::Utc => "Z".into(),
            TimeZoneMode::Local => suffix_for(offset_in(ns, local_zone())),
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
    civil_in(ns, tz.zone())
}

/// Wall-clock time of `ns` in zone `z`.
pub fn civil_in(ns: UtcNs, z: &TimeZone) -> Civil {
    let dt = z.to_datetime(timestamp(ns));
    Civil {
        year: i64::from(dt.year()),
        month: dt.month() as u32,
        day: dt.day() as u32,
        hour: i64::from(dt.hour()),
        minute: i64::from(dt.minute()),
        second: i64::from(dt.second()),
        nanos: i64::from(dt.subsec_nanosecond()),
    }
}

/// Offset of zone `z` from UTC in seconds at instant `ns`.
pub fn offset_in(ns: UtcNs, z: &TimeZone) -> i64 {
    i64::from(z.to_offset(timestamp(ns)).seconds())
}

/// `+01:00`, `-05:00`, `+05:45`.
fn suffix_for(o: i64) -> String {
    let sign = if o < 0 { '-' } else { '+' };
    let o = o.abs();
    format!("{sign}{:02}:{:02}", o / 3600, (o / 60) % 60)
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

/// The machine's zone, read once: `TZ` or `/etc/localtime` with the system zoneinfo on Unix, the Windows
/// zone name mapped onto jiff's bundled tzdb on Windows. UTC when it cannot be found.
fn local_zone() -> &'static TimeZone {
    static ZONE: OnceLock<TimeZone> = OnceLock::new();
    ZONE.get_or_init(TimeZone::system)
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

    fn ns_of(y: i64, mo: u32, d: u32, h: u32) -> UtcNs {
        crate::model::utc_ns_from_civil(y, mo, d, h, 0, 0, 0).unwrap()
    }

    /// The offset follows the capture's date, not today's: the DST rule applies per instant, also after
    /// 2038 (the end of the TZif v1 table the old reader used).
    #[test]
    fn local_offset_follows_the_capture_date() {
        let cet = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(offset_in(ns_of(2026, 1, 15, 12), &cet), 3600);
        assert_eq!(offset_in(ns_of(2026, 7, 15, 12), &cet), 7200);
        assert_eq!(offset_in(ns_of(2045, 7, 15, 12), &cet), 7200);
        // 2026-03-29 01:00 UTC is 03:00 CEST: the switch itself.
        assert_eq!(offset_in(ns_of(2026, 3, 29, 0), &cet), 3600);
        assert_eq!(offset_in(ns_of(2026, 3, 29, 1), &cet), 7200);
        let c = civil_in(ns_of(2026, 7, 15, 12), &cet);
        assert_eq!((c.year, c.month, c.day, c.hour), (2026, 7, 15, 14));
        assert_eq!(suffix_for(7200), "+02:00");
        assert_eq!(suffix_for(-(5 * 3600 + 30 * 60)), "-05:30");
    }

    /// Historical rules from the system zoneinfo: US DST started on 2 April in 2006 and on 11 March
    /// from 2007, so 15 March was EST (-5 h) in 2006 and EDT (-4 h) in 2007.
    #[test]
    fn historical_rules_from_zoneinfo() {
        let Ok(ny) = TimeZone::get("America/New_York") else {
            eprintln!("SKIPPED: no America/New_York in the system tz database");
            return;
        };
        assert_eq!(offset_in(ns_of(2006, 3, 15, 12), &ny), -5 * 3600);
        assert_eq!(offset_in(ns_of(2007, 3, 15, 12), &ny), -4 * 3600);
        assert_eq!(offset_in(ns_of(2040, 7, 1, 12), &ny), -4 * 3600);
    }
}
