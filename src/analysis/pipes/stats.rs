//! Bounded statistics of a pipe: opens per second and handle lifetimes.

use crate::model::UtcNs;

/// Lifetimes kept per pipe and per client for the median (decimated beyond).
pub(super) const MAX_LIFETIMES: usize = 50_000;
pub(super) const SAMPLE_RECORDS: usize = 8;
/// Counters of what the analyzer had to drop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipeStats {
    pub file_events: u64,
    pub pipe_creates: u64,
    pub evicted_irps: u64,
    pub evicted_handles: u64,
    pub pipes_dropped: u64,
    pub clients_dropped: u64,
}

pub(super) const NS_PER_S: i64 = 1_000_000_000;
const RATE_BUCKET_NS: i64 = 100_000_000;
const RATE_BUCKETS: usize = 10;

/// Opens per second over a sliding 1 s window made of ten 100 ms buckets (O(1) memory).
#[derive(Clone, Debug, Default)]
pub(super) struct RateMeter {
    pub(super) ring: [u32; RATE_BUCKETS],
    pub(super) current: Option<i64>,
    pub(super) sum: u64,
    pub(super) peak: u64,
    pub(super) peak_ts: UtcNs,
}

impl RateMeter {
    pub(super) fn add(&mut self, ts: UtcNs) {
        let b = ts.div_euclid(RATE_BUCKET_NS);
        let cur = *self.current.get_or_insert(b);
        if b > cur {
            let steps = (b - cur).min(RATE_BUCKETS as i64);
            for i in 1..=steps {
                let slot = (cur + i).rem_euclid(RATE_BUCKETS as i64) as usize;
                if let Some(v) = self.ring.get_mut(slot) {
                    self.sum -= *v as u64;
                    *v = 0;
                }
            }
            self.current = Some(b);
        }
        // A slightly late event (merge window) counts in the current bucket.
        let slot = self.current.unwrap_or(b).rem_euclid(RATE_BUCKETS as i64) as usize;
        if let Some(v) = self.ring.get_mut(slot) {
            *v = v.saturating_add(1);
        }
        self.sum += 1;
        if self.sum > self.peak {
            self.peak = self.sum;
            self.peak_ts = ts;
        }
    }
}

/// Keeps every `stride`-th value; halves itself when full, so memory stays bounded and the
/// median stays representative.
#[derive(Clone, Debug)]
pub(super) struct Decimated {
    pub(super) v: Vec<i64>,
    pub(super) stride: u64,
    pub(super) seen: u64,
}

impl Default for Decimated {
    fn default() -> Self {
        Decimated { v: Vec::new(), stride: 1, seen: 0 }
    }
}

impl Decimated {
    pub(super) fn push(&mut self, x: i64) {
        self.seen += 1;
        if !self.seen.is_multiple_of(self.stride) {
            return;
        }
        self.v.push(x);
        if self.v.len() >= MAX_LIFETIMES {
            let mut i = 0;
            self.v.retain(|_| {
                i += 1;
                i % 2 == 0
            });
            self.stride *= 2;
        }
    }
    pub(super) fn median_ms(&self) -> Option<f64> {
        if self.v.is_empty() {
            return None;
        }
        let mut s = self.v.clone();
        s.sort_unstable();
        let n = s.len();
        let m = if n % 2 == 1 {
            s.get(n / 2).copied().unwrap_or(0) as f64
        } else {
            let a = s.get(n / 2 - 1).copied().unwrap_or(0) as f64;
            let b = s.get(n / 2).copied().unwrap_or(0) as f64;
            (a + b) / 2.0
        };
        Some(m / 1e6)
    }
}
