//! The timeline's layout, built once per analysis: lanes (pipes, logs, Windows events, then one per
//! TCP server endpoint), connections packed into non-overlapping rows, and the global row list.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::short_pipe;
use crate::analysis::pipes::PipeSource;
use crate::analysis::Analysis;
use crate::gui::fields;
use crate::gui::lanes::{LogLane, PipeLane, SystemLane};
use crate::gui::style::EndKind;
use crate::model::{Endpoint, TsArith, UtcNs};

/// What a lane groups. Named pipes and log files get their own variants; a new kind is a
/// variant here, its rows in `RowRef`, and a painter in `rows`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LaneKind {
    /// A named pipe; the index is in `TimelineModel::pipe_lanes`.
    Pipe(u32),
    /// A text log; the index is in `TimelineModel::log_lanes`.
    Log(u32),
    /// Windows event-log records (`Analysis::system_events`).
    System,
    /// TCP connections to one server endpoint; items index `Analysis::connections`.
    TcpServer(Endpoint),
}

impl LaneKind {
    /// A stable id for tests and tools: `pipe:NAME`, `log:FILE`, `system`, `tcp:ENDPOINT`.
    pub fn id(&self, model: &TimelineModel, a: &Analysis) -> String {
        match self {
            LaneKind::Pipe(i) => format!(
                "pipe:{}",
                model
                    .pipe_lanes
                    .get(*i as usize)
                    .and_then(|l| a.pipes.get(l.pipe))
                    .map(|p| p.name.as_str())
                    .unwrap_or("?")
            ),
            LaneKind::Log(i) => {
                format!("log:{}", model.log_lanes.get(*i as usize).map(|l| l.name.as_str()).unwrap_or("?"))
            }
            LaneKind::System => "system".into(),
            LaneKind::TcpServer(e) => format!("tcp:{e}"),
        }
    }
}

pub struct Lane {
    pub kind: LaneKind,
    pub label: String,
    pub items: usize,
    /// Packed rows of bars; items in a row never overlap.
    pub rows: Vec<BarRow>,
}

/// One packed row of connection bars, sorted by start. Bars never overlap, so the ends are
/// sorted too: a frame finds the first visible bar, and the last bar starting in a pixel
/// column, by binary search, and a run's colour is the minimum of a contiguous byte slice.
/// Times are copied here (not read from the connections) so a frame touches only these arrays.
#[derive(Default)]
pub struct BarRow {
    /// Index in `Analysis::connections`.
    pub items: Vec<u32>,
    pub start: Vec<UtcNs>,
    pub end: Vec<UtcNs>,
    /// `EndKind as u8`: lower is worse, so the worst of a run is the minimum.
    pub kind: Vec<u8>,
}

impl BarRow {
    fn bytes(&self) -> usize {
        self.items.capacity() * 4 + self.start.capacity() * 8 + self.end.capacity() * 8 + self.kind.capacity()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowRef {
    Header(u32),
    Items {
        lane: u32,
        row: u32,
    },
    /// A pipe's handle graph; it is two rows tall, the second is `Spacer`.
    PipeGraph {
        lane: u32,
    },
    Spacer,
    /// A pipe's opens (failed ones as coloured marks).
    PipeOpens {
        lane: u32,
    },
    /// Marks of a log or system lane.
    Marks {
        lane: u32,
    },
}

/// Layout of one analysis on the timeline; rebuilt only when the analysis changes.
pub struct TimelineModel {
    /// Time zero of the view (first event); view times are f64 ns after it.
    pub origin: UtcNs,
    pub end: UtcNs,
    pub lanes: Vec<Lane>,
    pub rows: Vec<RowRef>,
    /// Global row of each connection (index in `Analysis::connections`).
    pub conn_row: Vec<u32>,
    pub conn_end: Vec<EndKind>,
    /// Connection id → index; foldhash, as the TCP table: a million entries are built per load.
    pub conn_index: HashMap<u64, usize, foldhash::fast::RandomState>,
    pub pipe_lanes: Vec<PipeLane>,
    pub log_lanes: Vec<LogLane>,
    pub system: SystemLane,
    /// Header row of each lane.
    pub lane_row: Vec<u32>,
    /// Opens row of each pipe lane, marks row of each log lane and of the system lane.
    pub pipe_opens_row: Vec<u32>,
    pub log_row: Vec<u32>,
    pub system_row: Option<u32>,
    /// Pipe lane of each `Analysis::pipes` entry.
    pub pipe_lane_of: Vec<Option<u32>>,
}

impl TimelineModel {
    pub fn build(a: &Analysis) -> TimelineModel {
        let mut origin = i64::MAX;
        let mut end = i64::MIN;
        for c in &a.connections {
            origin = origin.min(c.first_ts);
            end = end.max(c.last_ts);
        }
        for i in &a.inputs {
            if let (Some(f), Some(l)) = (i.first_ts, i.last_ts) {
                origin = origin.min(f);
                end = end.max(l);
            }
        }
        for f in &a.findings {
            origin = origin.min(f.first_ts);
            end = end.max(f.last_ts);
        }
        for p in &a.pipes {
            if p.first_ts != 0 || p.last_ts != 0 {
                origin = origin.min(p.first_ts);
                end = end.max(p.last_ts);
            }
        }
        for e in &a.system_events {
            origin = origin.min(e.ts);
            end = end.max(e.ts);
        }
        let pipe_lanes: Vec<PipeLane> = (0..a.pipes.len()).map(|i| PipeLane::build(a, i)).collect();
        let mut log_inputs: Vec<u32> = a.logs.iter().map(|l| l.input).collect();
        for e in &a.log_events {
            if !log_inputs.contains(&e.input) {
                log_inputs.push(e.input);
            }
        }
        let log_lanes: Vec<LogLane> = log_inputs.iter().map(|&i| LogLane::build(a, i)).collect();
        for l in &log_lanes {
            if let (Some(f), Some(e)) = (l.ts.first(), l.ts.last()) {
                origin = origin.min(*f);
                end = end.max(*e);
            }
        }
        let system = SystemLane::build(a);
        if origin > end {
            origin = 0;
            end = 1_000_000_000;
        }
        if end <= origin {
            end = origin.after(1_000_000);
        }

        let mut by_server: HashMap<Endpoint, Vec<u32>, foldhash::fast::RandomState> = HashMap::default();
        for (i, c) in a.connections.iter().enumerate() {
            by_server.entry(c.server).or_default().push(i as u32);
        }
        let mut servers: Vec<(Endpoint, Vec<u32>)> = by_server.into_iter().collect();
        // Busiest servers first: they are usually what the user is looking at.
        servers.sort_by(|x, y| y.1.len().cmp(&x.1.len()).then(x.0.cmp(&y.0)));

        let mut lanes = Vec::with_capacity(servers.len() + pipe_lanes.len() + log_lanes.len() + 1);
        // Pipes, logs and Windows events first: a few rows each, above the (many) TCP rows.
        for (i, pl) in pipe_lanes.iter().enumerate() {
            let p = &a.pipes[pl.pipe];
            let failed = p.busy + p.not_found + p.other_failures;
            let mut label = format!("pipe {}", short_pipe(&p.name));
            // ETW is the usual source; the others are said, SMB pipes being opened from other hosts.
            match fields::pipe_source(p) {
                PipeSource::Etw => {}
                src => label.push_str(&format!(" [{}]", src.name())),
            }
            if let Some(server) = fields::pipe_server(p).and_then(|(pid, name)| fields::process_label(pid, name)) {
                label.push_str(&format!("  server {server}"));
            }
            label.push_str(&format!("  ({} opens, {failed} failed, max {} handles)", p.opens, p.max_concurrent));
            lanes.push(Lane { label, kind: LaneKind::Pipe(i as u32), items: p.events.len(), rows: Vec::new() });
        }
        for (i, l) in log_lanes.iter().enumerate() {
            lanes.push(Lane {
                label: format!("log {}  ({} lines)", l.name, l.by_line.len()),
                kind: LaneKind::Log(i as u32),
                items: l.by_line.len(),
                rows: Vec::new(),
            });
        }
        if !a.system_events.is_empty() {
            lanes.push(Lane {
                label: {
                    let tcp = system.tcp_events.last().copied().unwrap_or(0);
                    if tcp > 0 {
                        format!("Windows events  ({}, {tcp} TCP)", a.system_events.len())
                    } else {
                        format!("Windows events  ({})", a.system_events.len())
                    }
                },
                kind: LaneKind::System,
                items: a.system_events.len(),
                rows: Vec::new(),
            });
        }
        let conn_end: Vec<EndKind> = a.connections.iter().map(EndKind::of).collect();
        for (server, mut items) in servers {
            items.sort_by_key(|&i| (fields::conn_span(&a.connections[i as usize]).0, i));
            let packed = pack_rows(&items, |i| fields::conn_span(&a.connections[i as usize]));
            let rows: Vec<BarRow> = packed
                .into_iter()
                .map(|row| {
                    let spans = row.iter().map(|&i| fields::conn_span(&a.connections[i as usize]));
                    BarRow {
                        start: spans.clone().map(|s| s.0).collect(),
                        end: spans.map(|s| s.1.max(s.0)).collect(),
                        kind: row.iter().map(|&i| conn_end[i as usize] as u8).collect(),
                        items: row,
                    }
                })
                .collect();
            let owner = lane_owner(a, &items);
            lanes.push(Lane {
                label: match owner {
                    Some(p) => format!("{server}  {p}  ({})", items.len()),
                    None => format!("{server}  ({})", items.len()),
                },
                kind: LaneKind::TcpServer(server),
                items: items.len(),
                rows,
            });
        }

        let mut rows = Vec::new();
        let mut conn_row = vec![0u32; a.connections.len()];
        let mut lane_row = Vec::with_capacity(lanes.len());
        let mut pipe_opens_row = vec![0u32; pipe_lanes.len()];
        let mut log_row = vec![0u32; log_lanes.len()];
        let mut system_row = None;
        for (li, lane) in lanes.iter().enumerate() {
            lane_row.push(rows.len() as u32);
            rows.push(RowRef::Header(li as u32));
            match lane.kind {
                LaneKind::Pipe(pi) => {
                    rows.push(RowRef::PipeGraph { lane: li as u32 });
                    rows.push(RowRef::Spacer);
                    pipe_opens_row[pi as usize] = rows.len() as u32;
                    rows.push(RowRef::PipeOpens { lane: li as u32 });
                }
                LaneKind::Log(i) => {
                    log_row[i as usize] = rows.len() as u32;
                    rows.push(RowRef::Marks { lane: li as u32 });
                }
                LaneKind::System => {
                    system_row = Some(rows.len() as u32);
                    rows.push(RowRef::Marks { lane: li as u32 });
                }
                LaneKind::TcpServer(_) => {}
            }
            for (ri, row) in lane.rows.iter().enumerate() {
                let global = rows.len() as u32;
                for &item in &row.items {
                    if let LaneKind::TcpServer(_) = lane.kind {
                        conn_row[item as usize] = global;
                    }
                }
                rows.push(RowRef::Items { lane: li as u32, row: ri as u32 });
            }
        }
        TimelineModel {
            origin,
            end,
            lanes,
            rows,
            conn_row,
            conn_end,
            conn_index: a.connections.iter().enumerate().map(|(i, c)| (c.id, i)).collect(),
            pipe_lane_of: {
                let mut v = vec![None; a.pipes.len()];
                for (i, pl) in pipe_lanes.iter().enumerate() {
                    v[pl.pipe] = Some(i as u32);
                }
                v
            },
            pipe_lanes,
            log_lanes,
            system,
            lane_row,
            pipe_opens_row,
            log_row,
            system_row,
        }
    }

    pub fn span_ns(&self) -> f64 {
        self.end.since(self.origin) as f64
    }

    /// Heap bytes the view keeps for this analysis (layout, bars, lanes), for the benchmark's
    /// bytes-per-connection figure. Approximate for the hash map (entries plus control bytes).
    pub fn heap_bytes(&self) -> usize {
        let lanes: usize = self
            .lanes
            .iter()
            .map(|l| {
                std::mem::size_of::<Lane>()
                    + l.label.capacity()
                    + l.rows.capacity() * std::mem::size_of::<BarRow>()
                    + l.rows.iter().map(BarRow::bytes).sum::<usize>()
            })
            .sum();
        let index = self.conn_index.capacity() * (std::mem::size_of::<(u64, usize)>() + 1);
        lanes
            + index
            + self.rows.capacity() * std::mem::size_of::<RowRef>()
            + self.conn_row.capacity() * 4
            + self.conn_end.capacity() * std::mem::size_of::<EndKind>()
            + self.pipe_lanes.iter().map(PipeLane::heap_bytes).sum::<usize>()
            + self.log_lanes.iter().map(LogLane::heap_bytes).sum::<usize>()
            + self.system.heap_bytes()
    }
}

/// The process most of a lane's connections belong to (`w3wp.exe (4120)`, `+2` when others are
/// there too), when event sources named any.
fn lane_owner(a: &Analysis, items: &[u32]) -> Option<String> {
    let mut counts: HashMap<(Option<u32>, Option<&str>), u32> = HashMap::new();
    for &i in items {
        if let Some(o) = fields::conn_owner(&a.connections[i as usize]) {
            // Bounded: a lane naming thousands of client processes shows the most common anyway.
            if counts.len() < 4096 || counts.contains_key(&o) {
                *counts.entry(o).or_default() += 1;
            }
        }
    }
    let (&(pid, name), _) = counts.iter().max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0)))?;
    let label = fields::process_label(pid, name)?;
    Some(if counts.len() > 1 { format!("{label} +{}", counts.len() - 1) } else { label })
}

/// Greedy interval packing: each item goes to the row that freed up earliest, else a new row.
fn pack_rows(sorted: &[u32], span: impl Fn(u32) -> (UtcNs, UtcNs)) -> Vec<Vec<u32>> {
    let mut rows: Vec<Vec<u32>> = Vec::new();
    let mut free: BinaryHeap<Reverse<(UtcNs, usize)>> = BinaryHeap::new();
    for &item in sorted {
        let (start, end) = span(item);
        let row = match free.peek() {
            Some(Reverse((row_end, row))) if *row_end < start => {
                let r = *row;
                free.pop();
                r
            }
            _ => {
                rows.push(Vec::new());
                rows.len() - 1
            }
        };
        rows[row].push(item);
        free.push(Reverse((end.max(start), row)));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_rows_never_overlap_and_stay_sorted() {
        let spans: Vec<(i64, i64)> = (0..500).map(|i| ((i * 37) % 1000, (i * 37) % 1000 + (i % 7) * 50)).collect();
        let mut items: Vec<u32> = (0..spans.len() as u32).collect();
        items.sort_by_key(|&i| spans[i as usize]);
        let rows = pack_rows(&items, |i| spans[i as usize]);
        assert_eq!(rows.iter().map(Vec::len).sum::<usize>(), spans.len());
        for row in &rows {
            for w in row.windows(2) {
                let (a, b) = (spans[w[0] as usize], spans[w[1] as usize]);
                assert!(a.1 < b.0, "overlap in a row: {a:?} {b:?}");
            }
        }
    }
}
