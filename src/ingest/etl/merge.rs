//! Time-ordered record streams with bounded memory.
//!
//! ETW writes per-CPU buffers, flushed when full, so file order is not time order: in
//! net.4.5.2.x64 a CPU's buffer can land 180 buffers after buffers holding later events. Each
//! CPU's own buffer sequence *is* in time order (true for every corpus trace), hence:
//!
//! * [`TimeOrdered`] (seekable input): one indexing pass notes each buffer's offset, CPU and
//!   record numbering; then a k-way merge over the per-CPU streams keeps **one buffer per CPU**
//!   in memory (≤ CPUs × largest buffer, e.g. 8 × 64 KiB). Exact when each CPU stream is
//!   ordered; any inversion is counted in [`TimeOrdered::out_of_order`].
//! * [`WindowMerge`] (plain `Read`): keeps at most `W` buffers and emits the smallest record
//!   among them (≤ W × largest buffer). Exact only if no CPU stream lags more than `W`
//!   buffers behind; inversions are counted.
//!
//! Ties are broken by file-order record index, so equal timestamps keep file order.

use super::reader::{Buffer, EtlReader};
use super::record::Record;
use crate::ingest::{Damage, DamageKind, Part};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::io::{Read, Seek};

/// Default [`WindowMerge`] window: 256 buffers (16 MiB at 64 KiB buffers).
pub const DEFAULT_MERGE_WINDOW: usize = 256;

/// Most records a merge holds in memory (an owned record costs ~200 bytes besides its raw bytes).
/// One buffer never contributes more; [`WindowMerge`] stops widening its window at this count.
pub const MAX_HELD_RECORDS: usize = 1 << 20;
/// Most raw record bytes [`WindowMerge`] holds before it stops widening its window.
pub const MAX_HELD_BYTES: usize = 256 << 20;

/// The buffer's records sorted by time, at most [`MAX_HELD_RECORDS`] of them: a 64 MiB buffer of
/// 8-byte records would otherwise take ~1.7 GB. Records past the cap are reported as damage.
fn sorted_records(b: &Buffer) -> (VecDeque<Record>, Option<Damage>) {
    let mut recs: Vec<Record> = Vec::with_capacity((b.record_count as usize).min(MAX_HELD_RECORDS));
    let mut over = None;
    for r in b.records() {
        match r {
            Ok(r) if recs.len() >= MAX_HELD_RECORDS => {
                over = Some(Damage {
                    offset: r.header.offset,
                    kind: DamageKind::TooManyRecords { part: Part::Buffer, limit: MAX_HELD_RECORDS as u64 },
                });
                break;
            }
            Ok(r) => recs.push(r.to_owned()),
            Err(_) => break,
        }
    }
    recs.sort_by_key(|r| (r.header.filetime, r.header.record_index));
    (recs.into(), over)
}

#[derive(Default)]
struct OrderCheck {
    last: Option<i64>,
    out_of_order: u64,
}

impl OrderCheck {
    fn see(&mut self, ft: i64) {
        match self.last {
            Some(l) if ft < l => self.out_of_order += 1,
            _ => self.last = Some(ft),
        }
    }
}

#[derive(Clone, Copy)]
struct BufLoc {
    offset: u64,
    index: u64,
    first_record: u64,
}

/// Exact k-way merge of per-CPU buffer streams (see module notes).
pub struct TimeOrdered<R: Read + Seek> {
    reader: EtlReader<R>,
    streams: Vec<VecDeque<BufLoc>>,
    heads: Vec<VecDeque<Record>>,
    heap: BinaryHeap<Reverse<(i64, u64, usize)>>,
    /// Damage found while indexing; reported after every readable record.
    errors: VecDeque<Damage>,
    started: bool,
    check: OrderCheck,
}

impl<R: Read + Seek> TimeOrdered<R> {
    pub fn new(reader: EtlReader<R>) -> Self {
        TimeOrdered {
            reader,
            streams: Vec::new(),
            heads: Vec::new(),
            heap: BinaryHeap::new(),
            errors: VecDeque::new(),
            started: false,
            check: OrderCheck::default(),
        }
    }

    /// Records emitted earlier in time than one already emitted (0 for well-formed traces).
    pub fn out_of_order(&self) -> u64 {
        self.check.out_of_order
    }

    pub fn logfile_header(&self) -> Option<&super::LogfileHeader> {
        self.reader.logfile_header()
    }

    fn index(&mut self) {
        let mut by_cpu: BTreeMap<u16, usize> = BTreeMap::new();
        while let Some(b) = self.reader.next_buffer() {
            let b = match b {
                Ok(b) => b,
                Err(e) => {
                    self.errors.push_back(e);
                    continue;
                }
            };
            if let Some(e) = b.damage() {
                self.errors.push_back(e.clone());
            }
            if b.record_count == 0 {
                continue;
            }
            let cpu = b.header.processor_index;
            let slot = *by_cpu.entry(cpu).or_insert_with(|| {
                self.streams.push(VecDeque::new());
                self.heads.push(VecDeque::new());
                self.streams.len() - 1
            });
            if let Some(s) = self.streams.get_mut(slot) {
                s.push_back(BufLoc { offset: b.file_offset, index: b.index, first_record: b.first_record_index });
            }
        }
        for slot in 0..self.streams.len() {
            self.refill(slot);
        }
    }

    /// Load the next buffer of a CPU stream (skipping any that no longer read back).
    fn refill(&mut self, slot: usize) {
        loop {
            let Some(loc) = self.streams.get_mut(slot).and_then(|s| s.pop_front()) else { return };
            match self.reader.read_buffer_at(loc.offset, loc.index, loc.first_record) {
                Some(Ok(b)) => {
                    let (q, over) = sorted_records(&b);
                    if let Some(e) = over {
                        self.errors.push_back(e);
                    }
                    if let Some(front) = q.front() {
                        self.heap.push(Reverse((front.header.filetime, front.header.record_index, slot)));
                        if let Some(h) = self.heads.get_mut(slot) {
                            *h = q;
                        }
                        return;
                    }
                }
                Some(Err(e)) => self.errors.push_back(e),
                None => {}
            }
        }
    }
}

impl<R: Read + Seek> Iterator for TimeOrdered<R> {
    type Item = Result<Record, Damage>;
    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            self.index();
        }
        let Some(Reverse((_, _, slot))) = self.heap.pop() else {
            return self.errors.pop_front().map(Err);
        };
        let rec = self.heads.get_mut(slot)?.pop_front()?;
        match self.heads.get(slot).and_then(|q| q.front()) {
            Some(front) => self.heap.push(Reverse((front.header.filetime, front.header.record_index, slot))),
            None => self.refill(slot),
        }
        self.check.see(rec.header.filetime);
        Some(Ok(rec))
    }
}

/// Streaming window merge for non-seekable input (see module notes).
pub struct WindowMerge<R: Read> {
    reader: EtlReader<R>,
    window: usize,
    slots: Vec<VecDeque<Record>>,
    free: Vec<usize>,
    loaded: usize,
    heap: BinaryHeap<Reverse<(i64, u64, usize)>>,
    errors: VecDeque<Damage>,
    exhausted: bool,
    check: OrderCheck,
    /// Records and raw bytes in `slots` (bounded by [`MAX_HELD_RECORDS`] / [`MAX_HELD_BYTES`]).
    held_records: usize,
    held_bytes: usize,
}

impl<R: Read> WindowMerge<R> {
    pub fn new(reader: EtlReader<R>, window_buffers: usize) -> Self {
        WindowMerge {
            reader,
            window: window_buffers.max(1),
            slots: Vec::new(),
            free: Vec::new(),
            loaded: 0,
            heap: BinaryHeap::new(),
            errors: VecDeque::new(),
            exhausted: false,
            check: OrderCheck::default(),
            held_records: 0,
            held_bytes: 0,
        }
    }

    /// Records emitted earlier in time than one already emitted (window too small).
    pub fn out_of_order(&self) -> u64 {
        self.check.out_of_order
    }

    pub fn logfile_header(&self) -> Option<&super::LogfileHeader> {
        self.reader.logfile_header()
    }

    fn load_one(&mut self) {
        while !self.exhausted {
            match self.reader.next_buffer() {
                None => self.exhausted = true,
                Some(Err(e)) => {
                    self.errors.push_back(e);
                    return;
                }
                Some(Ok(b)) => {
                    let (q, over) = sorted_records(&b);
                    if let Some(e) = b.damage() {
                        self.errors.push_back(e.clone());
                    }
                    if let Some(e) = over {
                        self.errors.push_back(e);
                    }
                    self.held_records += q.len();
                    self.held_bytes += q.iter().map(|r| r.raw.len()).sum::<usize>();
                    let Some((ft, idx)) = q.front().map(|f| (f.header.filetime, f.header.record_index)) else {
                        continue;
                    };
                    let slot = match self.free.pop() {
                        Some(s) => {
                            if let Some(x) = self.slots.get_mut(s) {
                                *x = q;
                            }
                            s
                        }
                        None => {
                            self.slots.push(q);
                            self.slots.len() - 1
                        }
                    };
                    self.heap.push(Reverse((ft, idx, slot)));
                    self.loaded += 1;
                    return;
                }
            }
        }
    }
}

impl<R: Read> Iterator for WindowMerge<R> {
    type Item = Result<Record, Damage>;
    fn next(&mut self) -> Option<Self::Item> {
        // The window also stops widening at the memory budget (always holding at least one buffer):
        // huge buffers of tiny records would otherwise hold GiBs.
        while self.loaded < self.window
            && !self.exhausted
            && (self.loaded == 0 || (self.held_records < MAX_HELD_RECORDS && self.held_bytes < MAX_HELD_BYTES))
        {
            let before = self.errors.len();
            self.load_one();
            if self.errors.len() > before {
                break;
            }
        }
        if let Some(e) = self.errors.pop_front() {
            return Some(Err(e));
        }
        let Reverse((_, _, slot)) = self.heap.pop()?;
        let q = self.slots.get_mut(slot)?;
        let rec = q.pop_front()?;
        self.held_records = self.held_records.saturating_sub(1);
        self.held_bytes = self.held_bytes.saturating_sub(rec.raw.len());
        if let Some(front) = q.front() {
            self.heap.push(Reverse((front.header.filetime, front.header.record_index, slot)));
        } else {
            self.free.push(slot);
            self.loaded -= 1;
        }
        self.check.see(rec.header.filetime);
        Some(Ok(rec))
    }
}
