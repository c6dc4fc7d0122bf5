//! Process Monitor logs into the analysis: named-pipe opens, instance creations and closes into
//! the pipe model (source `procmon`), TCP/UDP events as socket owners and timeline events, and
//! per-operation counts for the summary.
//!
//! PML carries UTC FILETIMEs and is analysed as it is read. A CSV export carries local wall time
//! without zone (and, with only "Time of Day", no date): its pipe and network events are kept
//! (bounded) until every input is read, then its clock offset is taken from `--log-offset`, else
//! estimated by matching its TCP Connects and pipe opens against the other inputs' SYNs and ETW
//! pipe opens (quarter-hour zone plus a skew in seconds), else assumed UTC; summary.json says which.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use crate::analysis::inputs::{PipeLimits, PmlFacts, ProcmonClock};
use crate::analysis::logs::{SystemEvent, SystemEventKind};
use crate::analysis::pipes::{pipe_name, PipeAnalyzer, PipeCall, PipeSource};
use crate::analysis::{Analysis, InputSummary, Options};
use crate::ingest::procmon::{CsvClock, CsvReader, PmlReader, ProcmonEvent};
use crate::ingest::Damage;
use crate::model::{Endpoint, SocketOp, SocketOwner, UtcNs};

/// Socket owners kept per input (Send/Receive add only the first per 4-tuple).
pub const MAX_SOCKET_OWNERS: usize = 100_000;
/// TCP events kept per input for the timeline.
pub const MAX_TIMELINE_EVENTS: usize = 10_000;
/// Pipe and network events of a CSV kept until its clock is settled; more are counted, not analysed.
pub const MAX_KEPT_CSV_EVENTS: usize = 1_000_000;
/// Open pipe handles tracked per input (ProcMon names no handle: opens are paired with closes by
/// process and path).
const MAX_OPEN_HANDLES: usize = 262_144;
/// A PML that is not a plain file on disk (gzip, in memory) is read into memory up to this size.
pub const MAX_PML_IN_MEMORY: u64 = 1 << 30;
/// Anchors used for the offset estimate.
const MAX_ANCHORS: usize = 2_000;
const MAX_REFS_PER_KEY: usize = 50_000;
const QUARTER_HOUR_NS: i64 = 900 * 1_000_000_000;
const NS_PER_S: i64 = 1_000_000_000;
const NS_PER_DAY: i64 = 86_400 * NS_PER_S;

/// What the pipeline feeds: pipes, socket owners, timeline events and counts.
struct Feeder {
    input: u32,
    pipes: PipeAnalyzer,
    handles: HashMap<(u32, String), VecDeque<(u64, u32)>>,
    open_handles: usize,
    next_handle: u64,
    handles_dropped: u64,
    owners: Vec<SocketOwner>,
    seen_flows: HashSet<(Endpoint, Endpoint, u32)>,
    timeline: Vec<SystemEvent>,
    tcp_events: u64,
}

fn endpoint(a: std::net::SocketAddr) -> Endpoint {
    Endpoint { ip: a.ip(), port: a.port() }
}

fn socket_op(op: &str) -> SocketOp {
    match op {
        "Connect" => SocketOp::Connect,
        "Accept" => SocketOp::Accept,
        "Disconnect" => SocketOp::Disconnect,
        "Send" => SocketOp::Send,
        "Receive" => SocketOp::Receive,
        "Reconnect" => SocketOp::Reconnect,
        "Retransmit" => SocketOp::Retransmit,
        _ => SocketOp::Other,
    }
}

/// An event the pipe model or the socket owners care about.
fn relevant(e: &ProcmonEvent) -> bool {
    is_pipe_op(e) || e.operation.starts_with("TCP ") || e.operation.starts_with("UDP ")
}

fn is_pipe_op(e: &ProcmonEvent) -> bool {
    matches!(e.operation.as_str(), "CreateFile" | "CreatePipe" | "CloseFile") && pipe_name(&e.path).is_some()
}

impl Feeder {
    fn new(input: u32) -> Self {
        Feeder {
            input,
            pipes: PipeAnalyzer::with_source(input, PipeSource::Procmon),
            handles: HashMap::new(),
            open_handles: 0,
            next_handle: 1,
            handles_dropped: 0,
            owners: Vec::new(),
            seen_flows: HashSet::new(),
            timeline: Vec::new(),
            tcp_events: 0,
        }
    }

    fn feed(&mut self, e: &ProcmonEvent, ts: UtcNs) {
        let record = e.index + 1;
        if is_pipe_op(e) {
            let key = (e.pid, e.path.to_ascii_lowercase());
            if e.operation == "CloseFile" {
                // Prefer the handle this thread opened, else the oldest one of the process.
                let Some(q) = self.handles.get_mut(&key) else { return };
                let pos = q.iter().position(|&(_, tid)| tid == e.tid).unwrap_or(0);
                if let Some((h, _)) = q.remove(pos) {
                    self.open_handles -= 1;
                    if q.is_empty() {
                        self.handles.remove(&key);
                    }
                    self.pipes.close_handle(ts, record, h);
                }
                return;
            }
            let handle = self.next_handle;
            self.next_handle += 1;
            // An unknown result text counts as a failure of unknown kind (outcome Other).
            let status = e.status.unwrap_or(0xC000_0001);
            self.pipes.open_completed(&PipeCall {
                ts,
                record,
                end_record: None,
                pid: e.pid,
                tid: e.tid,
                process: Some(e.process.as_str()).filter(|p| !p.is_empty()),
                remote: None,
                handle,
                path: &e.path,
                server_instance: e.operation == "CreatePipe",
                status,
            });
            if status >> 30 <= 1 {
                if self.open_handles >= MAX_OPEN_HANDLES {
                    self.handles_dropped += 1;
                } else {
                    self.open_handles += 1;
                    self.handles.entry(key).or_default().push_back((handle, e.tid));
                }
            }
            return;
        }
        let Some((proto, op)) = e.operation.split_once(' ') else { return };
        if proto != "TCP" {
            return;
        }
        self.tcp_events += 1;
        let Some(net) = e.net else { return };
        let sop = socket_op(op);
        let (local, remote) = (endpoint(net.src), endpoint(net.dst));
        let first_of_flow = if matches!(sop, SocketOp::Send | SocketOp::Receive) {
            self.seen_flows.len() < MAX_SOCKET_OWNERS && self.seen_flows.insert((local, remote, e.pid))
        } else {
            true
        };
        if first_of_flow && self.owners.len() < MAX_SOCKET_OWNERS {
            self.owners.push(SocketOwner {
                input: self.input,
                record,
                ts,
                local,
                remote,
                pid: e.pid,
                process: Some(e.process.clone()).filter(|p| !p.is_empty()),
                op: sop,
            });
        }
        let kind = match sop {
            SocketOp::Connect => SystemEventKind::ProcmonTcpConnect,
            SocketOp::Accept => SystemEventKind::ProcmonTcpAccept,
            SocketOp::Disconnect => SystemEventKind::ProcmonTcpDisconnect,
            SocketOp::Reconnect => SystemEventKind::ProcmonTcpReconnect,
            SocketOp::Retransmit => SystemEventKind::ProcmonTcpRetransmit,
            _ => return,
        };
        if self.timeline.len() < MAX_TIMELINE_EVENTS {
            self.timeline.push(SystemEvent {
                input: self.input,
                record_id: record,
                ts,
                provider: "Process Monitor".into(),
                event_id: 0,
                kind,
                summary: format!("{} {} by {} ({})", e.operation, e.path, e.process, e.pid),
            });
        }
    }

    fn finish(self, analysis: &mut Analysis, summary: &mut InputSummary) {
        let (found, stats) = self.pipes.finish();
        let facts = summary.extra.procmon();
        facts.pipes = Some(found.len() as u64);
        if stats.evicted_handles + stats.pipes_dropped + stats.clients_dropped + self.handles_dropped > 0 {
            facts.pipe_limits = Some(PipeLimits {
                evicted_irps: None,
                evicted_handles: stats.evicted_handles,
                pipes_dropped: stats.pipes_dropped,
                clients_dropped: stats.clients_dropped,
                handles_not_tracked: Some(self.handles_dropped),
            });
        }
        analysis.pipes.extend(found);
        facts.tcp_events = Some(self.tcp_events);
        facts.socket_owners = Some(self.owners.len() as u64);
        analysis.socket_owners.extend(self.owners);
        analysis.system_events.extend(self.timeline);
    }
}

/// Counts per operation and the time range, for the summary.
#[derive(Default)]
struct Counts {
    events: u64,
    operations: BTreeMap<String, u64>,
    first: Option<i64>,
    last: Option<i64>,
}

impl Counts {
    fn add(&mut self, e: &ProcmonEvent) {
        self.events += 1;
        if let Some(n) = self.operations.get_mut(&e.operation) {
            *n += 1;
        } else if self.operations.len() < 1024 {
            // Distinct operation names are few (Procmon has about 150); capped anyway.
            self.operations.insert(e.operation.clone(), 1);
        } else {
            *self.operations.entry("(other)".into()).or_default() += 1;
        }
        self.first = Some(self.first.map_or(e.ts, |f| f.min(e.ts)));
        self.last = Some(self.last.map_or(e.ts, |l| l.max(e.ts)));
    }

    fn write(&self, summary: &mut InputSummary, offset_ns: i64) {
        let facts = summary.extra.procmon();
        facts.events = Some(self.events);
        facts.records = Some(self.events);
        facts.operations = Some(self.operations.clone());
        summary.first_ts = self.first.map(|t| t.saturating_sub(offset_ns));
        summary.last_ts = self.last.map(|t| t.saturating_sub(offset_ns));
    }
}

/// Reads a PML file: by path when it is a plain file on disk, else from memory (bounded).
pub(super) fn read_pml(
    input: u32,
    reader: Box<dyn BufRead + Send>,
    on_disk: bool,
    file: &Path,
    analysis: &mut Analysis,
    summary: &mut InputSummary,
    tick: &dyn Fn() -> bool,
) {
    if on_disk {
        match std::fs::File::open(file) {
            Ok(f) => {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                read_pml_from(input, std::io::BufReader::with_capacity(1 << 16, f), len, file, analysis, summary, tick)
            }
            Err(e) => summary.error = Some(format!("{}: cannot reopen: {e}", file.display())),
        }
        return;
    }
    let mut bytes = Vec::new();
    match reader.take(MAX_PML_IN_MEMORY + 1).read_to_end(&mut bytes) {
        Ok(n) if n as u64 > MAX_PML_IN_MEMORY => {
            summary.error = Some(format!(
                "{}: a compressed PML larger than {} MiB is not read; decompress it first",
                file.display(),
                MAX_PML_IN_MEMORY >> 20
            ));
        }
        Ok(_) => {
            let len = bytes.len() as u64;
            read_pml_from(input, std::io::Cursor::new(bytes), len, file, analysis, summary, tick)
        }
        Err(e) => summary.error = Some(Damage::at(bytes.len() as u64, e.into()).in_input(file)),
    }
}

fn read_pml_from<R: Read + std::io::Seek>(
    input: u32,
    r: R,
    len: u64,
    file: &Path,
    analysis: &mut Analysis,
    summary: &mut InputSummary,
    tick: &dyn Fn() -> bool,
) {
    let rd = match PmlReader::new(r, len) {
        Ok(rd) => rd,
        Err(e) => {
            summary.error = Some(e.in_input(file));
            return;
        }
    };
    let h = rd.header.clone();
    summary.extra.procmon().pml_header = Some(PmlFacts {
        version: h.version,
        is_64bit: h.is_64bit,
        computer_name: h.computer_name.clone(),
        windows: format!("{}.{}.{}", h.windows_major, h.windows_minor, h.windows_build),
        logical_processors: h.logical_processors,
        events_in_header: h.events,
        process_table_entries: h.process_table_entries,
    });
    let mut feeder = Feeder::new(input);
    let mut counts = Counts::default();
    for (n, item) in rd.enumerate() {
        if n % 65_536 == 0 && !tick() {
            summary.error = Some("loading was cancelled".into());
            break;
        }
        match item {
            Ok(e) => {
                counts.add(&e);
                feeder.feed(&e, e.ts);
            }
            Err(e) => summary.error = Some(e.in_input(file)),
        }
    }
    counts.write(summary, 0);
    feeder.finish(analysis, summary);
}

/// A CSV export read to its end, waiting for its clock offset.
pub(super) struct PendingCsv {
    input: u32,
    path: PathBuf,
    clock: CsvClock,
    counts: Counts,
    kept: Vec<ProcmonEvent>,
    not_kept: u64,
    error: Option<String>,
}

/// Reads a CSV export; its events are analysed by `finish_csvs` once every input is read.
pub(super) fn read_csv(
    input: u32,
    reader: Box<dyn BufRead + Send>,
    file: &Path,
    summary: &mut InputSummary,
    pending: &mut Vec<PendingCsv>,
    tick: &dyn Fn() -> bool,
) {
    let rd = match CsvReader::new(reader) {
        Ok(rd) => rd,
        Err(e) => {
            summary.error = Some(e.in_input(file));
            return;
        }
    };
    let clock = rd.clock;
    summary.extra.procmon().columns = Some(rd.header.len() as u64);
    let mut p = PendingCsv {
        input,
        path: file.to_path_buf(),
        clock,
        counts: Counts::default(),
        kept: Vec::new(),
        not_kept: 0,
        error: None,
    };
    for (n, item) in rd.enumerate() {
        if n % 65_536 == 0 && !tick() {
            p.error = Some("loading was cancelled".into());
            break;
        }
        match item {
            Ok(e) => {
                p.counts.add(&e);
                if relevant(&e) {
                    if p.kept.len() < MAX_KEPT_CSV_EVENTS {
                        p.kept.push(e);
                    } else {
                        p.not_kept += 1;
                    }
                }
            }
            Err(e) => p.error = Some(e.in_input(file)),
        }
    }
    pending.push(p);
}

fn user_offset(options: &Options, path: &Path) -> Option<f64> {
    let full = path.display().to_string();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    options.log_offsets.iter().find(|(f, _)| *f == full || f == name || full.ends_with(f.as_str())).map(|(_, o)| *o)
}

/// What the estimate found.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    offset_ns: i64,
    anchors: usize,
    matched: usize,
}

fn tcp_key(local: Endpoint, remote: Endpoint) -> String {
    format!("tcp {local} {remote}")
}

fn pipe_key(name: &str, pid: u32, server: bool) -> String {
    format!("pipe {} {pid} {server}", name.to_ascii_lowercase())
}

/// UTC times of connection starts (captures, NDIS in ETL) and ETW pipe opens, by key.
fn references(a: &Analysis) -> HashMap<String, Vec<i64>> {
    let mut refs: HashMap<String, Vec<i64>> = HashMap::new();
    for c in a.connections.iter().filter(|c| c.client_syn > 0) {
        refs.entry(tcp_key(c.client, c.server)).or_default().push(c.first_ts);
    }
    for p in a.pipes.iter().filter(|p| p.source != PipeSource::Procmon) {
        let Some(name) = pipe_name(&p.name) else { continue };
        for e in &p.events {
            refs.entry(pipe_key(name, e.pid, e.server_instance)).or_default().push(e.ts);
        }
    }
    for v in refs.values_mut() {
        v.sort_unstable();
        if v.len() > MAX_REFS_PER_KEY {
            let stride = v.len().div_ceil(MAX_REFS_PER_KEY);
            *v = v.iter().step_by(stride).copied().collect();
        }
    }
    refs
}

/// The CSV's own anchors: TCP Connects and pipe opens, (local time, key).
fn anchors(p: &PendingCsv) -> Vec<(i64, String)> {
    let all: Vec<(i64, String)> = p
        .kept
        .iter()
        .filter_map(|e| {
            if e.operation == "TCP Connect" {
                let n = e.net?;
                Some((e.ts, tcp_key(endpoint(n.src), endpoint(n.dst))))
            } else if matches!(e.operation.as_str(), "CreateFile" | "CreatePipe") {
                Some((e.ts, pipe_key(pipe_name(&e.path)?, e.pid, e.operation == "CreatePipe")))
            } else {
                None
            }
        })
        .collect();
    let stride = all.len().div_ceil(MAX_ANCHORS).max(1);
    all.into_iter().step_by(stride).collect()
}

fn nearest(refs: &[i64], t: i64) -> Option<i64> {
    let i = refs.partition_point(|&r| r < t);
    let a = i.checked_sub(1).and_then(|j| refs.get(j)).copied();
    let b = refs.get(i).copied();
    match (a, b) {
        (Some(a), Some(b)) => Some(if t - a <= b - t { a } else { b }),
        (x, None) | (None, x) => x,
    }
}

/// Offset (local − UTC) that lines the CSV's anchors up with the references: the quarter hour
/// most anchors vote for (each anchor votes once per quarter hour any matching reference gives),
/// then the median residual within it as the seconds skew.
fn estimate(anchors: &[(i64, String)], refs: &HashMap<String, Vec<i64>>, date_known: bool) -> Option<Estimate> {
    let usable: Vec<(i64, &Vec<i64>)> =
        anchors.iter().filter_map(|(t, k)| refs.get(k).filter(|r| !r.is_empty()).map(|r| (*t, r))).collect();
    if usable.is_empty() {
        return None;
    }
    // Zones run from UTC−12 to UTC+14; without a date any whole number of days is possible too.
    let plausible = |q: i64| !date_known || (q * QUARTER_HOUR_NS).abs() <= 14 * 3600 * NS_PER_S;
    let mut votes: HashMap<i64, usize> = HashMap::new();
    for (a, r) in &usable {
        let mut i = 0;
        while let Some(&x) = r.get(i) {
            let q = (a - x + QUARTER_HOUR_NS / 2).div_euclid(QUARTER_HOUR_NS);
            if plausible(q) {
                *votes.entry(q).or_default() += 1;
            }
            // Skip to the first reference that gives a smaller quarter hour.
            let bound = a + QUARTER_HOUR_NS / 2 - q * QUARTER_HOUR_NS;
            i = r.partition_point(|&y| y <= bound).max(i + 1);
        }
    }
    let (&q, _) = votes.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.abs().cmp(&a.0.abs())))?;
    let base = q * QUARTER_HOUR_NS;
    let mut residuals: Vec<i64> = usable
        .iter()
        .filter_map(|(a, r)| nearest(r, a - base).map(|x| a - base - x))
        .filter(|d| d.abs() < QUARTER_HOUR_NS / 2)
        .collect();
    if residuals.is_empty() {
        return None;
    }
    residuals.sort_unstable();
    let skew = residuals[residuals.len() / 2];
    let offset_ns = base + skew;
    let matched = usable
        .iter()
        .filter(|(a, r)| nearest(r, a - offset_ns).is_some_and(|x| (a - offset_ns - x).abs() <= NS_PER_S))
        .count();
    // Most anchors must line up, or the match is coincidence.
    (matched * 2 >= usable.len()).then_some(Estimate { offset_ns, anchors: usable.len(), matched })
}

/// Settles each pending CSV's clock, then analyses its events on the UTC clock.
pub(super) fn finish_csvs(analysis: &mut Analysis, options: &Options, pending: Vec<PendingCsv>) {
    if pending.is_empty() {
        return;
    }
    let refs = references(analysis);
    // The date assumed when a CSV has none: that of the earliest other input.
    let other_first =
        analysis.inputs.iter().filter(|i| !i.format.starts_with("procmon_csv")).filter_map(|i| i.first_ts).min();
    for p in pending {
        let date_known = p.clock == CsvClock::DateAndTime;
        let day_ns =
            if date_known { 0 } else { other_first.map(|t| t.div_euclid(NS_PER_DAY) * NS_PER_DAY).unwrap_or(0) };
        let (offset_ns, source, est) = match user_offset(options, &p.path) {
            // Clamped so that shifted times cannot overflow (no zone is more than a day off).
            Some(s) => (((s * 1e9).round() as i64).clamp(-(1 << 60), 1 << 60) - day_ns, "user", None),
            None => match estimate(&anchors(&p), &refs, date_known) {
                Some(e) => (e.offset_ns, "estimated", Some(e)),
                None => (-day_ns, "none", None),
            },
        };
        let Some(summary) = analysis.inputs.get_mut(p.input as usize) else { continue };
        summary.error = p.error.clone();
        p.counts.write(summary, offset_ns);
        // Without a date an estimate also carries whole days: report the zone part.
        let reported = if !date_known && source == "estimated" {
            let z = offset_ns.rem_euclid(NS_PER_DAY);
            if z > NS_PER_DAY / 2 {
                z - NS_PER_DAY
            } else {
                z
            }
        } else {
            offset_ns + day_ns
        };
        let mut clock = ProcmonClock {
            offset_s: (reported as f64 / 1e9 * 1e6).round() / 1e6,
            source,
            columns: if date_known { "Date & Time + Time of Day" } else { "Time of Day only (no date)" },
            ..Default::default()
        };
        if source == "none" {
            clock.assumed = Some("UTC: no --log-offset was given and no event lined up with another input");
        }
        if !date_known && source != "estimated" {
            clock.date = Some(match other_first {
                Some(_) => "assumed: the date of the earliest other input",
                None => "unknown: times are on 1970-01-01",
            });
        }
        if let Some(e) = est {
            clock.anchors = Some(e.anchors as u64);
            clock.anchors_matched = Some(e.matched as u64);
        }
        summary.extra.procmon().clock = Some(clock);
        if p.not_kept > 0 {
            summary.extra.procmon().events_not_analysed = Some(p.not_kept as u64);
        }
        let mut feeder = Feeder::new(p.input);
        for e in &p.kept {
            feeder.feed(e, e.ts.saturating_sub(offset_ns));
        }
        let mut summary = std::mem::take(summary);
        feeder.finish(analysis, &mut summary);
        if let Some(s) = analysis.inputs.get_mut(p.input as usize) {
            *s = summary;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_finds_zone_and_skew() {
        let h = 3600 * NS_PER_S;
        let refs: HashMap<String, Vec<i64>> =
            [("k".to_string(), (0..50).map(|i| 1_000 * h + i * 7 * NS_PER_S).collect())].into_iter().collect();
        // Local = UTC + 5:30 + 2.25 s.
        let off = 5 * h + 30 * 60 * NS_PER_S + 2_250_000_000;
        let anchors: Vec<(i64, String)> = (0..50).map(|i| (1_000 * h + i * 7 * NS_PER_S + off, "k".into())).collect();
        let e = estimate(&anchors, &refs, true).expect("estimate");
        assert_eq!(e.offset_ns, off);
        assert_eq!(e.matched, 50);
        // Nothing in common: no estimate.
        let other: Vec<(i64, String)> = vec![(5, "x".into())];
        assert!(estimate(&other, &refs, true).is_none());
    }
}
