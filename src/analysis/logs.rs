//! Application log lines and Windows events on the analysis clock.

use crate::model::UtcNs;

/// One text log file as read.
#[derive(Clone, Debug, Default)]
pub struct LogFile {
    pub input: u32,
    pub path: String,
    /// Timestamp format detected (`iso8601`, `iis_w3c`, …), empty when none was found.
    pub format: String,
    pub lines: u64,
    /// Error and warning lines.
    pub errors: u64,
    /// The log's clock minus UTC, seconds (UTC+01:00 with a clock 0.8 s fast: 3600.8).
    pub offset_s: f64,
    /// `user`, `estimated` or `none`.
    pub offset_source: &'static str,
    /// 0..1: how well the estimated offset lines the errors up with network/pipe evidence.
    pub confidence: f64,
    /// Error lines with no network or pipe evidence around them.
    pub unexplained_errors: u64,
    /// Error lines the clock alignment explained (a raw event of their identity shortly before).
    pub matched_lines: u64,
    /// Lag of matched lines behind their events, per error identity.
    pub lags: Vec<LagStats>,
    /// Why the alignment is weak or was rejected, empty when it is sound.
    pub note: String,
}

/// How long after its event the lines of one error identity were written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LagStats {
    /// `10054`, `10061`, `231`, …
    pub identity: &'static str,
    pub lines: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// An error or warning line of a text log, on the analysis clock.
#[derive(Clone, Debug)]
pub struct LogEvent {
    pub input: u32,
    /// 1-based line number of the record's first line.
    pub line: u64,
    /// The time as written (read as if UTC), before the offset is applied.
    pub written_ts: Option<UtcNs>,
    /// The line's own zone offset, when it carries one (seconds).
    pub zone_offset_s: Option<i32>,
    /// Corrected UTC time.
    pub ts: Option<UtcNs>,
    /// `error` or `warning`.
    pub severity: &'static str,
    /// Error identities, e.g. `WSAECONNRESET(10054)`.
    pub errors: Vec<String>,
    /// Windows/Winsock/Win32 codes of the errors, for matching.
    pub codes: Vec<i64>,
    /// First line of the record (capped).
    pub text: String,
    /// Id of the finding this line was linked to.
    pub finding: Option<u64>,
}

/// A Windows event-log record that matters for the timeline (service crashes, state changes,
/// shutdowns, application errors, Sysmon pipe events).
#[derive(Clone, Debug)]
pub struct SystemEvent {
    pub input: u32,
    pub record_id: u64,
    pub ts: UtcNs,
    pub provider: String,
    pub event_id: u32,
    /// Classification (`service_crashed`, `service_state`, `app_crash`, `pipe_created`, …).
    pub kind: String,
    pub summary: String,
}
