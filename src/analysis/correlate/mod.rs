//! Log correlation: puts each text log on the UTC clock and links its error lines to findings.
//!
//! Clock offset: given by the user (`--log-offset FILE=OFFSET`), else estimated from the raw events
//! an error identity can stand for (every reset for 10054, every refused SYN for 10061, every busy
//! or not-found pipe open for 231 and 2, …; see `anchor_identity` and `raw_anchors`), never from
//! findings. A line is written after its event, never before it beyond the log's clock granularity,
//! and how long after depends on the identity (`Identity::max_lag_ns`): a 10054 when the
//! application's next send()/recv() fails (up to seconds), a 10061 at once, a 231 within
//! milliseconds; timeouts fire on the application's own timer and set no clock.
//!
//! The offset is a quarter-hour zone (−14 h…+14 h) plus at most 10 s of skew. Zones are ranked by
//! how many lines have an event of their identity within reach; for the best few, a sweep over the
//! skew finds the segments where the most lines have an event inside their lag window. Candidates
//! in those segments are their lower-envelope points (the earliest line sits on its event) and the
//! points where a reference line sits exactly on one of its events; the one matching the most
//! lines with the most distinct events, then the most lines within 20 ms, then the smallest total
//! lag plus a tenth of the skew, wins. Per line the candidate events come from a binary search in
//! sorted event times, so thousands of lines and events cost a sort and a sweep plus a bounded
//! number of look-ups, not a product.//!
//! Files: this one settles each log's offset and links lines to findings; `estimate` is the
//! offset search.

mod estimate;

use std::collections::HashMap;

use super::logs::{LogEvent, SystemEventKind};
use super::{Analysis, Options};
use crate::model::{tcp_flags, Finding, FindingKind, LogLineRef, Side, UtcNs};
use estimate::{estimate, lag_stats, matches, Line};

pub(crate) const MS: i64 = 1_000_000;
/// A line links to a finding when its time falls within the finding's span widened by this.
const LINK_SLACK_NS: i64 = 5 * 1_000_000_000;
const MIN_CONFIDENCE: f64 = 0.25;
/// Times beyond ±2^62 ns (years before 1824 or after 2116) take no part in the estimate.
const SANE_NS: i64 = 1 << 62;

/// What an error line reports, as far as the clock is concerned; which codes stand for which raw
/// events is `ErrorIdentity::of`, which findings explain which errors `FindingKind::explains`.
pub use crate::model::ErrorIdentity as Identity;

impl Identity {
    /// The code `summary.json` names the identity by.
    pub fn label(self) -> &'static str {
        match self {
            Identity::Reset => "10054",
            Identity::Refused => "10061",
            Identity::AddrInUse => "10048",
            Identity::PipeBusy => "231",
            Identity::PipeNotFound => "2",
        }
    }

    /// Whether the line follows its event at once (the application's call itself failed), so
    /// that it fixes the clock to within milliseconds.
    pub fn prompt(self) -> bool {
        matches!(self, Identity::Refused | Identity::PipeBusy | Identity::PipeNotFound)
    }

    /// How long after its event a line of this identity can be written. A 10054 waits for the
    /// application's next send()/recv() (one send interval, up to ~2 s); a 10061 comes at once
    /// after the last refused SYN (Windows retries the SYN twice, ~1 s, and we anchor on each
    /// refusal); pipe errors come within milliseconds; running out of ports is a state that lasts.
    pub fn max_lag_ns(self) -> i64 {
        match self {
            Identity::Reset => 2_500 * MS,
            Identity::Refused => 2_000 * MS,
            Identity::AddrInUse => 1_000 * MS,
            Identity::PipeBusy | Identity::PipeNotFound => 100 * MS,
        }
    }
}

/// The identity that sets a line's clock, if any (timeouts never do: the application's timer
/// fires an unknown time after the last packet).
pub fn anchor_identity(codes: &[i64], names: &[String]) -> Option<Identity> {
    Identity::of(codes, names)
}

/// Sorted event times per identity, from everything the inputs recorded: every reset packet
/// (a reset that answers a SYN without a SYN/ACK is a refusal), TCPIP-provider aborts and connect
/// failures, every failed pipe open. Port exhaustion leaves no packet (the connect fails locally),
/// so its finding's last moment is the one state-based anchor.
fn raw_anchors(a: &Analysis) -> HashMap<Identity, Vec<UtcNs>> {
    let mut m: HashMap<Identity, Vec<UtcNs>> = HashMap::new();
    for c in &a.connections {
        let refused = c.client_syn > 0 && c.server_synack == 0 && c.server_bytes == 0;
        for p in c.packets().filter(|p| p.flags & tcp_flags::RST != 0) {
            let id = if refused && p.side == Side::Server { Identity::Refused } else { Identity::Reset };
            m.entry(id).or_default().push(p.ts);
        }
    }
    for e in &a.system_events {
        let id = match e.kind {
            SystemEventKind::TcpipAbort => Identity::Reset,
            SystemEventKind::TcpipConnectFailed => Identity::Refused,
            _ => continue,
        };
        m.entry(id).or_default().push(e.ts);
    }
    for p in &a.pipes {
        for f in &p.failures {
            let id = match f.outcome {
                super::pipes::PipeOutcome::Busy => Identity::PipeBusy,
                super::pipes::PipeOutcome::NotFound => Identity::PipeNotFound,
                _ => continue,
            };
            m.entry(id).or_default().push(f.ts);
        }
    }
    for f in a.findings.iter().filter(|f| f.kind == FindingKind::PortExhaustion) {
        m.entry(Identity::AddrInUse).or_default().push(f.last_ts);
    }
    for v in m.values_mut() {
        // Times from damaged inputs can be anywhere; the sweep's sums must not overflow.
        v.retain(|t| t.abs() < SANE_NS);
        v.sort_unstable();
        v.dedup();
    }
    m
}

/// The line's written time with its own zone removed (UTC as far as the line knows).
fn written_utc(e: &LogEvent) -> Option<UtcNs> {
    e.written_ts.map(|w| w - e.zone_offset_s.unwrap_or(0) as i64 * 1_000_000_000)
}

/// Times of a finding's evidence (packets or trace records) plus its span, for linking a line
/// to the nearest finding.
fn link_anchors(f: &Finding, frame_ts: &HashMap<(u32, u64), UtcNs>) -> Vec<UtcNs> {
    let mut t: Vec<UtcNs> = f.evidence.iter().filter_map(|e| frame_ts.get(&(e.input, e.frame)).copied()).collect();
    t.push(f.first_ts);
    t.push(f.last_ts);
    t.sort_unstable();
    t.dedup();
    t
}

fn frame_times(a: &Analysis) -> HashMap<(u32, u64), UtcNs> {
    // Only the frames findings cite: the packets of a million connections need no index.
    let mut m: HashMap<(u32, u64), Option<UtcNs>> =
        a.findings.iter().flat_map(|f| f.evidence.iter().map(|e| ((e.input, e.frame), None))).collect();
    if m.is_empty() {
        return HashMap::new();
    }
    for c in &a.connections {
        for p in c.packets() {
            if let Some(t) = m.get_mut(&(c.input, p.frame)) {
                *t = Some(p.ts);
            }
        }
    }
    for p in &a.pipes {
        for e in &p.events {
            if let Some(t) = m.get_mut(&(p.input, e.record)) {
                *t = Some(e.ts);
            }
        }
    }
    m.into_iter().filter_map(|(k, t)| Some((k, t?))).collect()
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
        a.findings.iter().map(|f| (f.clone(), link_anchors(f, &frame_ts))).collect();
    let raw = raw_anchors(a);
    let mut explained: std::collections::HashSet<(u32, u64)> = std::collections::HashSet::new();

    for li in 0..a.logs.len() {
        let input = a.logs[li].input;
        let events: Vec<&LogEvent> = a.log_events.iter().filter(|e| e.input == input).collect();
        let zone_s = events.iter().find_map(|e| e.zone_offset_s).unwrap_or(0) as f64;
        let zone_known = events.iter().any(|e| e.zone_offset_s.is_some());
        let ids: Vec<(u64, UtcNs, Identity)> = events
            .iter()
            .filter_map(|e| Some((e.line, written_utc(e)?, anchor_identity(&e.codes, &e.errors)?)))
            .filter(|(_, w, _)| w.abs() < SANE_NS)
            .collect();
        let mut lines: Vec<Line> = ids
            .iter()
            .filter_map(|&(line, w, id)| Some(Line { line, w, id, anchors: raw.get(&id).filter(|v| !v.is_empty())? }))
            .collect();
        lines.sort_by_key(|l| (l.id, l.w));
        let mut weak_offset = None;
        let (offset_ns, source, confidence, note) = match user_offset(options, &a.logs[li].path) {
            Some(o) => ((o * 1e9).round() as i64 - (zone_s * 1e9) as i64, "user", 1.0, String::new()),
            None => match estimate(&lines, ids.len(), zone_known) {
                Some(e) if e.confidence >= MIN_CONFIDENCE => (e.offset_ns, "estimated", e.confidence, e.note),
                Some(e) => {
                    weak_offset = Some(e.offset_ns);
                    (
                        0,
                        "none",
                        e.confidence,
                        format!(
                            "weak evidence: an offset of {:+.3} s would explain some lines (confidence {:.2}); {}",
                            e.offset_ns as f64 / 1e9 + zone_s,
                            e.confidence,
                            e.note
                        )
                        .trim_end_matches("; ")
                        .to_string(),
                    )
                }
                None => (0, "none", 0.0, String::new()),
            },
        };
        let matched = if source == "none" { Vec::new() } else { matches(&lines, offset_ns) };
        // Lines some alignment explains are never called unexplained, even when it was too weak to
        // apply.
        explained.extend(
            matches(&lines, weak_offset.unwrap_or(offset_ns))
                .iter()
                .filter_map(|m| Some((input, lines.get(m.0)?.line))),
        );
        let matched: Vec<(Identity, i64)> = matched.into_iter().map(|(_, id, lag)| (id, lag)).collect();
        let log = &mut a.logs[li];
        // Reported as the log's clock minus UTC, including the zone the lines carry.
        log.offset_s = ((offset_ns as f64 / 1e9 + zone_s) * 1e6).round() / 1e6;
        log.offset_source = source;
        log.confidence = (confidence * 1000.0).round() / 1000.0;
        log.matched_lines = matched.len() as u64;
        log.lags = lag_stats(&matched);
        log.note = note;
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
    let mut unexplained: HashMap<u32, u64> = HashMap::new();
    let mut links: Vec<(usize, LogLineRef)> = Vec::new();
    for e in a.log_events.iter_mut() {
        let Some(t) = e.ts else { continue };
        let best = with_anchors
            .iter()
            .enumerate()
            .filter(|(_, (f, _))| f.kind.explains_line(&e.codes, &e.errors))
            .filter(|(_, (f, _))| t >= f.first_ts - LINK_SLACK_NS && t <= f.last_ts + LINK_SLACK_NS)
            .min_by_key(|(_, (f, anchors))| {
                // The finding of the failure itself before the ones that explain its cause.
                let cause = matches!(f.kind, FindingKind::PipeExhaustion | FindingKind::PipeChurn);
                (cause, anchors.iter().map(|x| (t - x).abs()).min().unwrap_or((t - f.last_ts).abs()))
            });
        match best {
            Some((i, (f, _))) => {
                e.finding = Some(f.id);
                links.push((i, LogLineRef { input: e.input, line: e.line }));
            }
            None if !e.codes.is_empty() && !explained.contains(&(e.input, e.line)) => {
                *unexplained.entry(e.input).or_default() += 1
            }
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

/// An event-log record this close to a server stop is taken as its cause.
const SYSTEM_EVENT_SLACK_NS: i64 = 30 * 1_000_000_000;

/// Strengthens server-side findings with the event log: a service crash or an application error at
/// the moment a server went down is named in the finding's summary.
pub fn attach_system_events(a: &mut Analysis) {
    for f in a.findings.iter_mut().filter(|f| {
        matches!(
            f.kind,
            FindingKind::ServerRestart
                | FindingKind::StaleConnection
                | FindingKind::KeepaliveReset
                | FindingKind::PipeNotFound
        )
    }) {
        let near: Vec<&super::logs::SystemEvent> = a
            .system_events
            .iter()
            .filter(|e| e.kind.is_stop())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_map_codes_to_events() {
        assert_eq!(anchor_identity(&[10054], &[]), Some(Identity::Reset));
        assert_eq!(anchor_identity(&[], &["ECONNREFUSED".into()]), Some(Identity::Refused));
        assert_eq!(anchor_identity(&[231], &[]), Some(Identity::PipeBusy));
        assert_eq!(anchor_identity(&[2], &[]), Some(Identity::PipeNotFound));
        assert_eq!(anchor_identity(&[10060], &[]), None);
        let explains = |k: FindingKind, codes: &[i64]| k.explains_line(codes, &[]);
        assert!(explains(FindingKind::PipeBusy, &[231]) && !explains(FindingKind::PipeBusy, &[2]));
        assert!(explains(FindingKind::KeepaliveTimeout, &[10060]));
    }

    /// The codes a kind explains are named as the text-log reader names them.
    #[test]
    fn explained_codes_carry_the_text_log_names() {
        for k in FindingKind::ALL {
            for e in k.explains() {
                if let crate::model::LoggedError::Code(code, name) = *e {
                    let ids = crate::ingest::textlog::extract_errors(&format!("failed: {name}"));
                    assert!(ids.iter().any(|i| i.code == Some(code) && i.name == name), "{k}: {name} {ids:?}");
                }
            }
        }
    }

    /// Findings sort by kind name; the derived order must agree.
    #[test]
    fn kind_order_is_name_order() {
        let mut by_name = FindingKind::ALL;
        by_name.sort_by_key(|k| k.name());
        let mut by_ord = FindingKind::ALL;
        by_ord.sort();
        assert_eq!(by_name, by_ord);
        assert_eq!(
            FindingKind::ALL.len(),
            std::collections::HashSet::<&str>::from_iter(by_name.map(|k| k.name())).len()
        );
    }
}
