//! The clock offset of a capture against the reference capture, from packets both saw.
//!
//! A packet sent from the reference's end arrives later at the other end: `t_other - t_ref =
//! delay + offset`, with a delay > 0; one sent from the other end gives `t_other - t_ref = offset -
//! delay`. So the offset lies between the largest difference of the packets towards the reference
//! and the smallest of those away from it (NTP's lower envelope of the one-way delays in both
//! directions). The midpoint is the estimate, half the interval's width its error bound (half the
//! smallest round trip), and intersecting the intervals of every shared connection narrows it.

/// The differences `t_other - t_ref` (ns, raw clocks) of one connection's paired packets.
#[derive(Clone, Debug, Default)]
pub struct Deltas {
    /// Packets sent by the client.
    pub client: Vec<i64>,
    /// Packets sent by the server.
    pub server: Vec<i64>,
}

/// Where the reference capture sits on a connection, from the timing of its paired packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefEnd {
    Client,
    Server,
}

/// The interval the offset lies in for one connection, and where the reference sits; `None` when a
/// direction has no paired packet or the timing is inconsistent (both captures at one point).
pub fn bounds(d: &Deltas) -> Option<(i64, i64, RefEnd)> {
    let (cmin, cmax) = (d.client.iter().min()?, d.client.iter().max()?);
    let (smin, smax) = (d.server.iter().min()?, d.server.iter().max()?);
    if cmin > smax {
        Some((*smax, *cmin, RefEnd::Client))
    } else if smin > cmax {
        Some((*cmax, *smin, RefEnd::Server))
    } else {
        None
    }
}

/// An offset estimate: this input's clock minus the reference's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub offset_ns: i64,
    /// Half-width of the interval the offset lies in (a bound, when `consistent`).
    pub error_ns: i64,
    /// The connections' intervals overlapped; otherwise (clock drift during a long capture,
    /// delay asymmetry beyond the round trip) the estimate is the median of their midpoints.
    pub consistent: bool,
    pub connections: usize,
}

/// Combines the intervals of all shared connections.
pub fn estimate(intervals: &[(i64, i64)]) -> Option<Estimate> {
    if intervals.is_empty() {
        return None;
    }
    let lo = intervals.iter().map(|i| i.0).max()?;
    let hi = intervals.iter().map(|i| i.1).min()?;
    if lo <= hi {
        return Some(Estimate {
            offset_ns: lo + (hi - lo) / 2,
            error_ns: (hi - lo) / 2,
            consistent: true,
            connections: intervals.len(),
        });
    }
    let mut mids: Vec<i64> = intervals.iter().map(|(l, h)| l + (h - l) / 2).collect();
    mids.sort_unstable();
    let offset = mids[mids.len() / 2];
    Some(Estimate { offset_ns: offset, error_ns: lo - hi, consistent: false, connections: intervals.len() })
}

/// Both captures at one point of the path (two taps on one link, a copy of one capture): every
/// packet shows the same difference, with no delay to bound it. The median difference, its spread
/// as the error; `None` without paired packets.
pub fn estimate_same_point(all: &[i64]) -> Option<Estimate> {
    let mut v = all.to_vec();
    v.sort_unstable();
    let (first, last) = (*v.first()?, *v.last()?);
    Some(Estimate { offset_ns: v[v.len() / 2], error_ns: (last - first) / 2, consistent: false, connections: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_envelope_in_both_directions() {
        // Reference at the client; other clock +3.217 s; delays 40..90 µs.
        let off = 3_217_000_000;
        let d = Deltas { client: vec![off + 40_000, off + 90_000], server: vec![off - 50_000, off - 70_000] };
        let (lo, hi, end) = bounds(&d).unwrap();
        assert_eq!(end, RefEnd::Client);
        let e = estimate(&[(lo, hi)]).unwrap();
        assert!((e.offset_ns - off).abs() <= e.error_ns && e.error_ns == 45_000, "{e:?}");
        // The same connection seen with the reference at the server.
        let d = Deltas { client: vec![-off - 40_000], server: vec![-off + 50_000] };
        assert_eq!(bounds(&d).map(|b| b.2), Some(RefEnd::Server));
        assert!(bounds(&Deltas { client: vec![5, 7], server: vec![6] }).is_none());
        let e = estimate(&[(0, 10), (20, 30)]).unwrap();
        assert!(!e.consistent);
    }
}
