//! The analysis clock: formatting, civil-date conversion (by jiff) and arithmetic that cannot
//! overflow.

use super::UtcNs;

/// Formats a UTC timestamp as RFC 3339 with microseconds and `Z` (the batch contract's format).
pub fn format_utc(ns: UtcNs) -> String {
    // Every i64 of nanoseconds (years 1677..2262) is inside jiff's range, so this never fails.
    let dt = jiff::tz::TimeZone::UTC.to_datetime(timestamp(ns));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 1_000
    )
}

/// The jiff instant of a [`UtcNs`].
pub fn timestamp(ns: UtcNs) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

const UNIX_EPOCH_DATE: jiff::civil::Date = jiff::civil::Date::constant(1970, 1, 1);

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian; saturates at jiff's years ±9999.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let d = UNIX_EPOCH_DATE.saturating_add(jiff::Span::new().days(z.clamp(-4_000_000, 4_000_000)));
    (i64::from(d.year()), d.month() as u32, d.day() as u32)
}

/// (year, month, day) to days since 1970-01-01. Callers validate the month; a day past the month's end
/// rolls into the next month (as the readers always did), a year outside ±9999 is clamped.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let year = y.clamp(-9999, 9999) as i16;
    let first = jiff::civil::Date::new(year, m.clamp(1, 12) as i8, 1).unwrap_or(UNIX_EPOCH_DATE);
    first.duration_since(UNIX_EPOCH_DATE).as_secs().div_euclid(86_400) + i64::from(d) - 1
}

/// A UTC civil time to [`UtcNs`], validated by jiff (month, day of month, leap years); `s` may be 60
/// (a leap second reads as the next minute's first second). `None` when invalid or out of the i64 range.
#[allow(clippy::too_many_arguments)]
pub fn utc_ns_from_civil(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, frac_ns: i64) -> Option<UtcNs> {
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let date = jiff::civil::Date::new(i16::try_from(y).ok()?, i8::try_from(mo).ok()?, i8::try_from(d).ok()?).ok()?;
    let days = date.duration_since(UNIX_EPOCH_DATE).as_secs().div_euclid(86_400);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
    secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

/// The current UTC year.
pub fn current_utc_year() -> i32 {
    i32::from(jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).year())
}

/// Timestamp arithmetic that cannot overflow: a mutated capture near the year 2262 saturates at the
/// end of the clock instead of panicking (debug) or wrapping (release).
pub trait TsArith: Sized {
    /// `self + d`, saturating.
    fn after(self, d: i64) -> Self;
    /// `self - d`, saturating.
    fn before(self, d: i64) -> Self;
    /// Nanoseconds from `earlier` to `self`, saturating.
    fn since(self, earlier: Self) -> i64;
}

impl TsArith for UtcNs {
    fn after(self, d: i64) -> UtcNs {
        self.saturating_add(d)
    }
    fn before(self, d: i64) -> UtcNs {
        self.saturating_sub(d)
    }
    fn since(self, earlier: UtcNs) -> i64 {
        self.saturating_sub(earlier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_format_round_trip() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_utc(1_700_000_000_123_456_789), "2023-11-14T22:13:20.123456Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59.999999Z");
        for d in [-800_000, -1, 0, 1, 59, 60, 11_016, 20_000, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn civil_validation_and_saturation() {
        assert_eq!(utc_ns_from_civil(2024, 2, 29, 0, 0, 0, 0), Some(19_782 * 86_400 * 1_000_000_000));
        assert_eq!(utc_ns_from_civil(2023, 2, 29, 0, 0, 0, 0), None);
        assert_eq!(utc_ns_from_civil(2026, 13, 1, 0, 0, 0, 0), None);
        assert_eq!(utc_ns_from_civil(2300, 1, 1, 0, 0, 0, 0), None, "past the i64 ns clock");
        // Feb 31 rolls over, as the Hinnant conversion did.
        assert_eq!(days_from_civil(2026, 2, 31), days_from_civil(2026, 3, 3));
        assert_eq!(format_utc(i64::MAX), "2262-04-11T23:47:16.854775Z");
        assert_eq!(format_utc(i64::MIN), "1677-09-21T00:12:43.145224Z");
        assert_eq!(i64::MAX.after(1), i64::MAX);
        assert_eq!(i64::MIN.before(1), i64::MIN);
        assert_eq!(i64::MAX.since(i64::MIN), i64::MAX);
    }
}
