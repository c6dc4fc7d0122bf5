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
//! number of look-ups, not a product.

use std::collections::HashMap;

use super::logs::{LagStats, LogEvent, SystemEventKind};
use super::{Analysis, Options};
use crate::model::{tcp_flags, Finding, FindingKind, LogLineRef, Side, UtcNs};

const MS: i64 = 1_000_000;
const SKEW_MAX_NS: i64 = 10 * 1_000_000_000;
const ZONE_STEP_NS: i64 = 900 * 1_000_000_000;
const ZONE_STEPS: i64 = 14 * 4;
/// A line may carry a time this much before its event (clock granularity of the log: 15.6 ms on
/// Windows).
const EARLY_NS: i64 = 16 * MS;
/// A line written this soon after its event counts as prompt.
const TIGHT_NS: i64 = 20 * MS;
/// Zones whose skew is searched in full.
const ZONES_SEARCHED: usize = 3;
/// Candidate alignments whose total lag is computed (the sweep's best segments).
const MAX_CANDIDATES: usize = 64;
/// Lines × candidates evaluated per zone, at most.
const EVAL_BUDGET: usize = 1_000_000;
const MAX_PAIR_CANDIDATES: usize = 2_048;
/// Lines whose events give the candidate alignments.
const REFERENCE_LINES: usize = 16;
/// Lines whose lag window holds more events than this are not used to set the clock.
const MAX_ANCHORS_PER_LINE: usize = 100_000;
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

/// An error line that can set the clock.
struct Line<'a> {
    line: u64,
    w: UtcNs,
    id: Identity,
    anchors: &'a [UtcNs],
}

/// Anchors of a line within `[lo, hi]`.
fn window(anchors: &[UtcNs], lo: i64, hi: i64) -> &[UtcNs] {
    let a = anchors.partition_point(|x| *x < lo);
    let b = anchors.partition_point(|x| *x <= hi);
    anchors.get(a..b).unwrap_or(&[])
}

/// Lag of each line behind the latest event of its identity before it (or at most `EARLY_NS`
/// after it), under offset `d` (line clock − UTC), when within the identity's window.
fn lags(lines: &[Line], d: i64) -> Vec<(Identity, i64)> {
    matches(lines, d).into_iter().map(|(_, id, lag)| (id, lag)).collect()
}

/// Written time of the line with index `i`.
fn lines_w(lines: &[Line], i: usize) -> i64 {
    lines.get(i).map_or(0, |l| l.w)
}

/// `lags` with the index of each matched line.
fn matches(lines: &[Line], d: i64) -> Vec<(usize, Identity, i64)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let t = l.w - d;
            let k = l.anchors.partition_point(|a| *a <= t);
            let before = k.checked_sub(1).and_then(|j| l.anchors.get(j)).map(|a| t - a);
            let after = l.anchors.get(k).map(|a| t - a);
            // The nearer of the two: a line stamped a little early (granularity, truncated
            // milliseconds) belongs to the event just after it rather than to an older one.
            let before = before.filter(|b| *b <= l.id.max_lag_ns());
            let after = after.filter(|x| *x >= -EARLY_NS);
            let lag = match (before, after) {
                (Some(b), Some(x)) => {
                    if -x < b {
                        x
                    } else {
                        b
                    }
                }
                (Some(b), None) => b,
                (None, Some(x)) => x,
                (None, None) => return None,
            };
            Some((i, l.id, lag))
        })
        .collect()
}

/// Adds, for one line, the union of the skews at which some event lies in its lag window
/// `[-EARLY_NS, max_lag]` as `(position, +1/-1)` sweep events.
fn push_intervals(out: &mut Vec<(i64, i32)>, base: i64, anchors: &[UtcNs], max_lag: i64) {
    // Skew s explains the line by event a when base - s - a ∈ [-EARLY, max_lag]:
    // s ∈ [base - a - max_lag, base - a + EARLY]; anchors ascending give intervals descending.
    let mut cur: Option<(i64, i64)> = None;
    for a in anchors.iter().rev() {
        let (lo, hi) = ((base - a - max_lag).max(-SKEW_MAX_NS), (base - a + EARLY_NS).min(SKEW_MAX_NS));
        if lo > hi {
            continue;
        }
        cur = match cur {
            Some((clo, chi)) if lo <= chi + 1 => Some((clo, chi.max(hi))),
            Some((clo, chi)) => {
                out.push((clo, 1));
                out.push((chi + 1, -1));
                Some((lo, hi))
            }
            None => Some((lo, hi)),
        };
    }
    if let Some((lo, hi)) = cur {
        out.push((lo, 1));
        out.push((hi + 1, -1));
    }
}

/// Best skews within one zone: segments `[lo, hi]` with the most lines explained.
fn sweep_zone(lines: &[Line], zone: i64) -> Option<(usize, Vec<(i64, i64)>)> {
    let mut ev: Vec<(i64, i32)> = Vec::new();
    for l in lines {
        let base = l.w - zone;
        let lag = l.id.max_lag_ns();
        let win = window(l.anchors, base - SKEW_MAX_NS - lag, base + SKEW_MAX_NS + EARLY_NS);
        if win.is_empty() || win.len() > MAX_ANCHORS_PER_LINE {
            continue;
        }
        push_intervals(&mut ev, base, win, lag);
    }
    if ev.is_empty() {
        return None;
    }
    ev.sort_unstable();
    let mut wide = 0i64;
    let mut best = 0usize;
    let mut segs: Vec<(i64, i64)> = Vec::new();
    let mut i = 0;
    while i < ev.len() {
        let pos = ev.get(i).map_or(0, |e| e.0);
        while let Some(e) = ev.get(i).filter(|e| e.0 == pos) {
            wide += e.1 as i64;
            i += 1;
        }
        let next = ev.get(i).map_or(pos, |e| e.0 - 1);
        let score = wide.max(0) as usize;
        if score == 0 || next < pos {
            continue;
        }
        if score > best {
            best = score;
            segs.clear();
        }
        if score == best {
            segs.push((pos, next));
        }
    }
    (best > 0).then_some((best, segs))
}

struct Estimate {
    offset_ns: i64,
    confidence: f64,
    note: String,
}

fn estimate(lines: &[Line], candidates: usize, zone_known: bool) -> Option<Estimate> {
    if lines.is_empty() {
        return None;
    }
    // Zones ranked by the lines with an event of their identity within reach.
    let zones: Vec<i64> = if zone_known { vec![0] } else { (-ZONE_STEPS..=ZONE_STEPS).collect() };
    let mut ranked: Vec<(usize, i64)> = zones
        .iter()
        .map(|&z| {
            let zone = z * ZONE_STEP_NS;
            let n = lines
                .iter()
                .filter(|l| {
                    let base = l.w - zone;
                    !window(l.anchors, base - SKEW_MAX_NS - l.id.max_lag_ns(), base + SKEW_MAX_NS + EARLY_NS).is_empty()
                })
                .count();
            (n, zone)
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    ranked.sort_by_key(|(n, z)| (std::cmp::Reverse(*n), z.abs()));
    // ((lines explained, lines matched, events used, lines prompt), cost, offset)
    let mut best: Option<((usize, usize, usize, usize), i64, i64)> = None;
    let mut rivals: Vec<((usize, usize, usize, usize), i64)> = Vec::new();
    for &(_, zone) in ranked.iter().take(ZONES_SEARCHED) {
        let Some((score, segs)) = sweep_zone(lines, zone) else { continue };
        // Each segment's lower-envelope point (as late as the segment allows, less the early
        // margin, so the earliest line sits on its event), and the points where one line sits
        // exactly on one of its events inside the best segments: the pairing is ambiguous when
        // events are closer together than the lags, and the total lag decides.
        let mut points: Vec<i64> = segs.iter().map(|&(lo, hi)| (hi - EARLY_NS).max(lo)).collect();
        points.sort_by_key(|s| s.abs());
        points.truncate(MAX_CANDIDATES);
        let budget = (EVAL_BUDGET / lines.len()).clamp(MAX_CANDIDATES, MAX_PAIR_CANDIDATES);
        // Reference lines spread over the log, each with its events nearest to zero skew first.
        let step = (lines.len() / REFERENCE_LINES).max(1);
        let refs: Vec<&Line> = lines.iter().step_by(step).collect();
        let per_ref = (budget / refs.len().max(1)).max(1);
        for l in refs {
            let base = l.w - zone;
            let win = window(l.anchors, base - SKEW_MAX_NS, base + SKEW_MAX_NS);
            let mid = win.partition_point(|a| *a <= base);
            let (mut lo, mut hi, mut taken) = (mid, mid, 0);
            while taken < per_ref && (lo > 0 || hi < win.len()) {
                // Take whichever neighbour lies nearer to `base` (smaller |skew|).
                let left = lo.checked_sub(1).and_then(|i| win.get(i)).map(|a| base - a);
                let right = win.get(hi).map(|a| a - base);
                let s = match (left, right) {
                    (Some(x), Some(y)) if x <= y => {
                        lo -= 1;
                        x
                    }
                    (Some(x), None) => {
                        lo -= 1;
                        x
                    }
                    (_, Some(y)) => {
                        hi += 1;
                        -y
                    }
                    (None, None) => break,
                };
                let i = segs.partition_point(|seg| seg.1 < s);
                if segs.get(i).is_some_and(|seg| seg.0 <= s) {
                    points.push(s);
                    taken += 1;
                }
            }
        }
        points.sort_unstable();
        points.dedup();
        for s in points {
            let d = zone + s;
            let m = matches(lines, d);
            // Distinct events used: one reset explaining two lines is a weaker pairing than two.
            // Lines are sorted by identity and time, so their events are too: count changes.
            let mut used = 0usize;
            let mut prev: Option<(Identity, i64)> = None;
            for (i, id, lag) in &m {
                let ev = Some((*id, lines_w(lines, *i) - d - lag));
                used += (ev != prev) as usize;
                prev = ev;
            }
            let cost: i64 = m.iter().map(|(_, _, x)| x.abs()).sum::<i64>() + s.abs() / 10;
            let prompt = m.iter().filter(|(_, _, x)| *x <= TIGHT_NS).count();
            let key = (score, m.len(), used, prompt);
            rivals.push((key, d));
            let better = match &best {
                None => true,
                Some((bk, bc, _)) => key > *bk || (key == *bk && cost < *bc),
            };
            if better {
                best = Some((key, cost, d));
            }
        }
    }
    let (score, _, d) = best?;
    let matched = lags(lines, d).len();
    if matched == 0 {
        return None;
    }
    let share = matched as f64 / candidates.max(1) as f64;
    let mut confidence = (share * (1.0 - 0.5f64.powi(matched as i32))).clamp(0.0, 1.0);
    let mut note = String::new();
    // Alignments that pair as many lines with as many distinct events, elsewhere: the lags vary
    // more than the events are apart, so only the lower envelope is known.
    let same: Vec<i64> =
        rivals.iter().filter(|(k, _)| k.0 == score.0 && k.1 == score.1 && k.2 == score.2).map(|r| r.1).collect();
    let (lo, hi) = (same.iter().copied().min().unwrap_or(d), same.iter().copied().max().unwrap_or(d));
    if hi - lo > 50 * MS {
        confidence *= 0.75;
        note = format!(
            "ambiguous: offsets from {:+.3} s to {:+.3} s pair the lines with their events equally well (their lag varies); the lower envelope is taken",
            lo as f64 / 1e9,
            hi as f64 / 1e9
        );
    } else {
        // Only lines whose lag varies (a 10054 waits for the application's next call): the clock
        // rests on the line written soonest after its event, and may be that lag too late.
        let m = lags(lines, d);
        if !m.iter().any(|(id, _)| id.prompt()) {
            let worst = m.iter().map(|(id, _)| id.max_lag_ns()).max().unwrap_or(0);
            confidence *= 0.75;
            note = format!(
                "only errors logged at the application's next call (lag up to {:.1} s) line up: the offset rests on the line written soonest after its event and may be up to that much too late",
                worst as f64 / 1e9
            );
        }
    }
    Some(Estimate { offset_ns: d, confidence, note })
}

/// Per-identity lag percentiles of the matched lines.
fn lag_stats(l: &[(Identity, i64)]) -> Vec<LagStats> {
    let mut by: std::collections::BTreeMap<Identity, Vec<i64>> = std::collections::BTreeMap::new();
    for (id, lag) in l {
        by.entry(*id).or_default().push(*lag);
    }
    by.into_iter()
        .map(|(id, mut v)| {
            v.sort_unstable();
            let pct = |p: f64| {
                let i = ((v.len() - 1) as f64 * p).round() as usize;
                (v.get(i).copied().unwrap_or(0) as f64 / 1e3).round() / 1e3
            };
            LagStats { identity: id.label(), lines: v.len() as u64, p50_ms: pct(0.5), p95_ms: pct(0.95) }
        })
        .collect()
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

    fn lcg(x: &mut u64) -> i64 {
        *x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*x >> 33) as i64
    }

    /// A dense storm: 3 000 failed opens 1–6 ms apart, each logged 0.1–2 ms later by a clock
    /// UTC+01:00 and 0.25 s fast, stamped to the millisecond.
    #[test]
    fn dense_prompt_events_give_the_offset_within_milliseconds() {
        let mut x = 1u64;
        let mut t = 1_000_000_000_000i64;
        let mut anchors = Vec::new();
        let mut written = Vec::new();
        for _ in 0..3_000 {
            t += MS + lcg(&mut x) % (5 * MS);
            anchors.push(t);
            let w = t + 100_000 + lcg(&mut x) % (19 * MS / 10) + 3_600_250 * MS;
            written.push(w - w.rem_euclid(MS));
        }
        let lines: Vec<Line> = written
            .iter()
            .enumerate()
            .map(|(i, &w)| Line { line: i as u64, w, id: Identity::PipeBusy, anchors: &anchors })
            .collect();
        let started = std::time::Instant::now();
        let e = estimate(&lines, lines.len(), false).expect("estimate");
        let err = e.offset_ns - 3_600_250 * MS;
        assert!(err.abs() < 5 * MS, "off by {} ms", err as f64 / 1e6);
        assert!(e.confidence > 0.9 && e.note.is_empty(), "{} {}", e.confidence, e.note);
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
        let m = lags(&lines, e.offset_ns);
        assert_eq!(m.len(), 3_000);
    }

    /// Resets logged one send interval later only: the lower envelope is an upper bound, said so.
    #[test]
    fn only_next_call_errors_are_flagged() {
        let anchors: Vec<i64> = (0..5).map(|k| 1_000_000_000_000 + k * 7_000 * MS).collect();
        let lags_ms = [400, 1_300, 250, 1_900, 800];
        let lines: Vec<Line> = anchors
            .iter()
            .zip(lags_ms)
            .enumerate()
            .map(|(i, (a, l))| Line { line: i as u64, w: a + l * MS, id: Identity::Reset, anchors: &anchors })
            .collect();
        let e = estimate(&lines, lines.len(), false).expect("estimate");
        // On the earliest line: 250 ms late at most.
        assert!(e.offset_ns >= -EARLY_NS && e.offset_ns <= 250 * MS + EARLY_NS, "{}", e.offset_ns);
        assert!(e.note.contains("next call"), "{}", e.note);
        assert!(e.confidence < 0.75);
    }

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
