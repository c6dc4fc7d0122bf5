//! Log correlation: puts each text log on the UTC clock and links its error lines to findings.
//!
//! Clock offset: given by the user (`--log-offset FILE=OFFSET`), else estimated. Hypotheses are
//! offsets `written - event` between an error line and a finding event that explains that kind of
//! error (a reset for 10054, a refused SYN for 10061, a busy pipe open for 231, …), restricted to
//! what a real log clock can be: a whole quarter-hour time zone plus at most 10 s of skew. The
//! hypothesis that lines up the most error lines (within 1 s) wins, ties going to the smallest
//! total lag plus a tenth of the skew; it is refined to the smallest lag among the matched lines, since a line is written
//! after the event it reports. Confidence is
//! the share of error lines matched, discounted when few lines match; below 0.25 the log is left
//! at its own time (`none`).

use std::collections::HashMap;

use super::logs::LogEvent;
use super::{Analysis, Options};
use crate::model::{Finding, UtcNs};

const SKEW_MAX_NS: i64 = 10 * 1_000_000_000;
const ZONE_STEP_NS: i64 = 900 * 1_000_000_000;
const ZONE_MAX_NS: i64 = 14 * 3600 * 1_000_000_000;
/// A line is written after the event it reports: at most this long after…
const MATCH_NS: i64 = 1_000_000_000;
/// …and never more than this before it (clock granularity of the log).
const EARLY_NS: i64 = 50_000_000;
/// A line links to a finding when its time falls within the finding's span widened by this.
const LINK_SLACK_NS: i64 = 5 * 1_000_000_000;
const MIN_CONFIDENCE: f64 = 0.25;

/// Error codes (Winsock, Win32, errno as Linux numbers are not used: names below) that each
/// finding kind explains.
fn explains(kind: &str, codes: &[i64], names: &[String]) -> bool {
    let has = |c: i64| codes.contains(&c);
    let named = |n: &str| names.iter().any(|x| x.starts_with(n));
    let reset = has(10054) || has(10053) || has(10052) || named("ECONNRESET") || named("EPIPE");
    match kind {
        "stale_connection" | "keepalive_reset" | "idle_reset" | "abortive_close" | "server_restart" => reset,
        "connection_refused" => has(10061) || named("ECONNREFUSED"),
        "keepalive_timeout" | "connect_timeout" | "retransmission_timeout" => {
            has(10060) || has(10053) || has(10052) || named("ETIMEDOUT")
        }
        "port_exhaustion" | "port_reuse" => has(10048) || has(10055) || named("EADDRNOTAVAIL") || named("EADDRINUSE"),
        "pipe_busy" | "pipe_exhaustion" => has(231),
        "pipe_not_found" => has(2),
        "pipe_churn" => has(231) || has(2),
        _ => false,
    }
}

/// Times of a finding's evidence (packets or trace records), plus its span. Port exhaustion is a
/// state, not an event: only the moment the ports ran out counts.
fn anchors(f: &Finding, frame_ts: &HashMap<(u32, u64), UtcNs>) -> Vec<UtcNs> {
    if f.kind == "port_exhaustion" {
        return vec![f.last_ts];
    }
    if !timed_precisely(f) {
        return Vec::new();
    }
    let mut t: Vec<UtcNs> = f.evidence.iter().filter_map(|e| frame_ts.get(&(e.input, e.frame)).copied()).collect();
    t.push(f.first_ts);
    t.push(f.last_ts);
    t.sort_unstable();
    t.dedup();
    t
}

fn frame_times(a: &Analysis) -> HashMap<(u32, u64), UtcNs> {
    let mut m = HashMap::new();
    for c in &a.connections {
        for p in c.packets() {
            m.insert((c.input, p.frame), p.ts);
        }
    }
    for p in &a.pipes {
        for e in &p.events {
            m.insert((p.input, e.record), e.ts);
        }
    }
    m
}

/// Whether the application's error follows the finding's evidence at once. A timeout is reported
/// when the application's own timer fires, an unknown time after the last packet: such findings
/// take log lines but do not set a log's clock.
fn timed_precisely(f: &Finding) -> bool {
    match f.kind {
        "connect_timeout" => false,
        "retransmission_timeout" | "keepalive_timeout" => f.summary.contains("reset the connection"),
        _ => true,
    }
}

/// The line's written time with its own zone removed (UTC as far as the line knows).
fn written_utc(e: &LogEvent) -> Option<UtcNs> {
    e.written_ts.map(|w| w - e.zone_offset_s.unwrap_or(0) as i64 * 1_000_000_000)
}

struct Estimate {
    offset_ns: i64,
    confidence: f64,
}

fn estimate(events: &[&LogEvent], findings: &[(&Finding, Vec<UtcNs>)]) -> Option<Estimate> {
    // Lines that some finding kind could explain, with their candidate anchors.
    let lines: Vec<(UtcNs, Vec<UtcNs>)> = events
        .iter()
        .filter_map(|e| {
            let w = written_utc(e)?;
            let anchors: Vec<UtcNs> = findings
                .iter()
                .filter(|(f, _)| explains(f.kind, &e.codes, &e.errors))
                .flat_map(|(_, t)| t.iter().copied())
                .collect();
            (!anchors.is_empty()).then_some((w, anchors))
        })
        .collect();
    let candidates = events.iter().filter(|e| !e.codes.is_empty() || !e.errors.is_empty()).count().max(1);
    let plausible = |d: i64| {
        let zone = (d as f64 / ZONE_STEP_NS as f64).round() as i64 * ZONE_STEP_NS;
        d.abs() <= ZONE_MAX_NS + SKEW_MAX_NS && (d - zone).abs() <= SKEW_MAX_NS
    };
    let score = |d: i64| -> Vec<i64> {
        // For each line, the smallest non-negative-ish lag under hypothesis d.
        lines
            .iter()
            .filter_map(|(w, anchors)| {
                anchors
                    .iter()
                    .map(|a| w - a - d)
                    .filter(|lag| *lag >= -EARLY_NS && *lag <= MATCH_NS)
                    .min_by_key(|lag| lag.abs())
            })
            .collect()
    };
    // Best: most lines matched, then the lowest cost: total lag (a line follows its event closely)
    // plus a tenth of the skew, so that regularly spaced events do not pull the clock a period off.
    let mut best: Option<(usize, i64, i64)> = None; // (matched, cost, d)
    for (w, anchors) in &lines {
        for a in anchors {
            let d = w - a;
            if !plausible(d) {
                continue;
            }
            let lags = score(d);
            let zone = (d as f64 / ZONE_STEP_NS as f64).round() as i64 * ZONE_STEP_NS;
            let cost: i64 = lags.iter().map(|l| l.abs()).sum::<i64>() + (d - zone).abs() / 10;
            let better = match best {
                None => true,
                Some((m, c, _)) => lags.len() > m || (lags.len() == m && cost < c),
            };
            if better {
                best = Some((lags.len(), cost, d));
            }
        }
    }
    let (matched, _, d) = best?;
    if matched == 0 {
        return None;
    }
    // Refine: a line is written after its event; take the smallest lag among matched lines.
    let lags = score(d);
    let refine = lags.iter().copied().filter(|l| *l >= 0).min().unwrap_or(0);
    let share = matched as f64 / candidates as f64;
    let confidence = (share * (1.0 - 0.5f64.powi(matched as i32))).clamp(0.0, 1.0);
    Some(Estimate { offset_ns: d + refine, confidence })
}

fn user_offset(options: &Options, path: &str) -> Option<f64> {
    let name = std::path::Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or(path);
    options.log_offsets.iter().find(|(f, _)| f == path || f == name || path.ends_with(f.as_str())).map(|(_, o)| *o)
}

/// Settles each log's clock offset, corrects its lines' times and links them to findings.
pub fn run(a: &mut Analysis, options: &Options) {
    if a.logs.is_empty() {
        return;
    }
    let frame_ts = frame_times(a);
    let with_anchors: Vec<(Finding, Vec<UtcNs>)> =
        a.findings.iter().map(|f| (f.clone(), anchors(f, &frame_ts))).collect();
    let refs: Vec<(&Finding, Vec<UtcNs>)> = with_anchors.iter().map(|(f, t)| (f, t.clone())).collect();

    for li in 0..a.logs.len() {
        let input = a.logs[li].input;
        let events: Vec<&LogEvent> = a.log_events.iter().filter(|e| e.input == input).collect();
        let zone_s = events.iter().find_map(|e| e.zone_offset_s).unwrap_or(0) as f64;
        let (offset_ns, source, confidence) = match user_offset(options, &a.logs[li].path) {
            Some(o) => ((o * 1e9).round() as i64 - (zone_s * 1e9) as i64, "user", 1.0),
            None => match estimate(&events, &refs) {
                Some(e) if e.confidence >= MIN_CONFIDENCE => (e.offset_ns, "estimated", e.confidence),
                Some(e) => (0, "none", e.confidence),
                None => (0, "none", 0.0),
            },
        };
        let log = &mut a.logs[li];
        // Reported as the log's clock minus UTC, including the zone the lines carry.
        log.offset_s = ((offset_ns as f64 / 1e9 + zone_s) * 1e6).round() / 1e6;
        log.offset_source = source;
        log.confidence = (confidence * 1000.0).round() / 1000.0;
        for e in a.log_events.iter_mut().filter(|e| e.input == input) {
            e.ts = written_utc(e).map(|w| w - offset_ns);
        }
        // The input's time span moves to the corrected clock too.
        if let Some(summary) = a.inputs.get_mut(input as usize) {
            summary.first_ts = summary.first_ts.map(|t| t - offset_ns);
            summary.last_ts = summary.last_ts.map(|t| t - offset_ns);
        }
    }

    // Link every line to the finding that explains it (nearest anchor), and back.
    let names: Vec<String> = a
        .inputs
        .iter()
        .map(|i| std::path::Path::new(&i.path).file_name().and_then(|n| n.to_str()).unwrap_or(&i.path).to_string())
        .collect();
    let mut unexplained: HashMap<u32, u64> = HashMap::new();
    let mut links: Vec<(usize, String)> = Vec::new();
    for e in a.log_events.iter_mut() {
        let Some(t) = e.ts else { continue };
        let best = with_anchors
            .iter()
            .enumerate()
            .filter(|(_, (f, _))| explains(f.kind, &e.codes, &e.errors))
            .filter(|(_, (f, _))| t >= f.first_ts - LINK_SLACK_NS && t <= f.last_ts + LINK_SLACK_NS)
            .min_by_key(|(_, (f, anchors))| {
                anchors.iter().map(|x| (t - x).abs()).min().unwrap_or((t - f.last_ts).abs())
            });
        match best {
            Some((i, (f, _))) => {
                e.finding = Some(f.id);
                let file = names.get(e.input as usize).cloned().unwrap_or_default();
                links.push((i, format!("{file}:{}", e.line)));
            }
            None if !e.codes.is_empty() => *unexplained.entry(e.input).or_default() += 1,
            None => {}
        }
    }
    for (i, line) in links {
        if let Some(f) = a.findings.get_mut(i) {
            if !f.log_lines.contains(&line) {
                f.log_lines.push(line);
            }
        }
    }
    for log in &mut a.logs {
        log.unexplained_errors = unexplained.get(&log.input).copied().unwrap_or(0);
    }
}

/// Kinds of Windows events that say a process or the host stopped.
const STOP_EVENTS: &[&str] =
    &["service_crashed", "app_crash", "dotnet_unhandled", "unexpected_shutdown", "os_stopped", "eventlog_stopped"];
/// An event-log record this close to a server stop is taken as its cause.
const SYSTEM_EVENT_SLACK_NS: i64 = 30 * 1_000_000_000;

/// Strengthens server-side findings with the event log: a service crash or an application error at
/// the moment a server went down is named in the finding's summary.
pub fn attach_system_events(a: &mut Analysis) {
    for f in a
        .findings
        .iter_mut()
        .filter(|f| matches!(f.kind, "server_restart" | "stale_connection" | "keepalive_reset" | "pipe_not_found"))
    {
        let near: Vec<&super::logs::SystemEvent> = a
            .system_events
            .iter()
            .filter(|e| {
                STOP_EVENTS.contains(&e.kind.as_str()) || (e.kind == "service_state" && e.summary.contains("stopped"))
            })
            .filter(|e| e.ts >= f.first_ts - SYSTEM_EVENT_SLACK_NS && e.ts <= f.first_ts + SYSTEM_EVENT_SLACK_NS)
            .collect();
        if let Some(e) = near.iter().min_by_key(|e| (e.ts - f.first_ts).abs()) {
            f.summary.push_str(&format!(
                " The event log confirms it: {} ({} {}) at {}.",
                e.summary,
                e.provider,
                e.event_id,
                crate::model::format_utc(e.ts)
            ));
        }
    }
}
