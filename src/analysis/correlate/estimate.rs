//! The clock-offset estimate: a zone and a skew that put the most error lines just after a raw
//! event of their identity (the algorithm is described in `correlate`'s module comment).

use super::{Identity, MS};
use crate::analysis::logs::LagStats;
use crate::model::UtcNs;

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

/// An error line that can set the clock.
pub(super) struct Line<'a> {
    pub(super) line: u64,
    pub(super) w: UtcNs,
    pub(super) id: Identity,
    pub(super) anchors: &'a [UtcNs],
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
pub(super) fn matches(lines: &[Line], d: i64) -> Vec<(usize, Identity, i64)> {
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

pub(super) struct Estimate {
    pub(super) offset_ns: i64,
    pub(super) confidence: f64,
    pub(super) note: String,
}

pub(super) fn estimate(lines: &[Line], candidates: usize, zone_known: bool) -> Option<Estimate> {
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
pub(super) fn lag_stats(l: &[(Identity, i64)]) -> Vec<LagStats> {
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
}
