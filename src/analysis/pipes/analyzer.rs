//! The streaming pipe analyzer: file events (or source-neutral `PipeCall`s) in, per-pipe accounts out.

use std::collections::HashMap;

use super::stats::{Decimated, RateMeter, NS_PER_S, SAMPLE_RECORDS};
use super::*;
use crate::ingest::etl::{FileCreate, FileEvent, FileHandleOp, FileOpEnd};
use crate::model::{Endpoint, UtcNs};

#[derive(Default)]
struct ClientState {
    c: PipeClient,
    rate: RateMeter,
    lifetimes: Decimated,
}

#[derive(Default)]
struct PipeState {
    p: Pipe,
    rate: RateMeter,
    lifetimes: Decimated,
    clients: HashMap<ClientKey, ClientState>,
    client_handles: u32,
    live_instances: u32,
    handle_stride: u64,
    handle_changes: u64,
}

impl PipeState {
    fn push_handles(&mut self, ts: UtcNs) {
        self.handle_changes += 1;
        if self.handle_stride == 0 {
            self.handle_stride = 1;
        }
        if !self.handle_changes.is_multiple_of(self.handle_stride) {
            return;
        }
        self.p.handles.push((ts, self.client_handles));
        if self.p.handles.len() >= MAX_HANDLE_POINTS {
            // Keep the higher point of each pair so the peaks survive decimation.
            let old = std::mem::take(&mut self.p.handles);
            self.p.handles = old.chunks(2).filter_map(|c| c.iter().max_by_key(|x| x.1).copied()).collect();
            self.handle_stride *= 2;
        }
    }

    fn client(&mut self, key: ClientKey, stats: &mut PipeStats) -> Option<&mut ClientState> {
        if !self.clients.contains_key(&key) && self.clients.len() >= MAX_CLIENTS_PER_PIPE {
            stats.clients_dropped += 1;
            return None;
        }
        let (pid, remote) = key;
        Some(self.clients.entry(key).or_insert_with(|| ClientState {
            c: PipeClient { pid, remote, ..Default::default() },
            ..Default::default()
        }))
    }
}

/// A create as every source reports it, before its result is known.
struct Begin<'a> {
    path: &'a str,
    ts: UtcNs,
    record: u64,
    pid: u32,
    tid: u32,
    handle: u64,
    server: bool,
    process: Option<&'a str>,
    remote: Option<Endpoint>,
}

/// A client: its pid, and for a remote open its ip:port (remote clients are all pid 0).
type ClientKey = (u32, Option<Endpoint>);

#[derive(Clone, Copy)]
struct Pending {
    remote: Option<Endpoint>,
    pipe: usize,
    event: Option<usize>,
    server: bool,
    ts: UtcNs,
    pid: u32,
    tid: u32,
    file_object: u64,
    record: u64,
}

#[derive(Clone, Copy)]
struct OpenHandle {
    remote: Option<Endpoint>,
    pipe: usize,
    event: Option<usize>,
    server: bool,
    ts: UtcNs,
    pid: u32,
    record: u64,
}

/// What an analyzer accounts per pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accounting {
    /// Creates, results and closes: handles, lifetimes, concurrency, per-client rates.
    Handles,
    /// Successful opens and instances only, from a source that logs no closes (Sysmon): no
    /// handle state, pipes in order of first appearance.
    OpensOnly,
}

/// Streams file events (in time order) into per-pipe accounts.
pub struct PipeAnalyzer {
    input: u32,
    source: PipeSource,
    accounting: Accounting,
    max_pipes: usize,
    index: HashMap<String, usize>,
    pipes: Vec<PipeState>,
    pending: HashMap<u64, Pending>,
    /// FileObject → Irp of a pending create, to settle it when a close arrives first.
    pending_fo: HashMap<u64, u64>,
    open: HashMap<u64, OpenHandle>,
    pub stats: PipeStats,
}

/// The pipe name after the device prefix, if `path` names a pipe. Accepts
/// `\Device\NamedPipe\X`, `\\.\pipe\X`, `\??\pipe\X` and `\\?\pipe\X`, case-insensitively.
pub fn pipe_name(path: &str) -> Option<&str> {
    const PREFIXES: &[&str] = &[r"\device\namedpipe\", r"\\.\pipe\", r"\??\pipe\", r"\\?\pipe\"];
    for p in PREFIXES {
        if let (Some(head), Some(rest)) = (path.get(..p.len()), path.get(p.len()..)) {
            if head.eq_ignore_ascii_case(p) {
                // The bare root is what WaitNamedPipe opens: not a pipe of its own.
                return if rest.is_empty() { None } else { Some(rest) };
            }
        }
    }
    None
}

/// FILE_CREATE and FILE_OPEN_IF: the dispositions CreateNamedPipe uses for an instance.
pub fn is_server_disposition(disposition: u8) -> bool {
    matches!(disposition, 2 | 3)
}

impl PipeAnalyzer {
    pub fn new(input: u32) -> Self {
        Self::with_source(input, PipeSource::Etw)
    }

    pub fn with_source(input: u32, source: PipeSource) -> Self {
        PipeAnalyzer {
            input,
            source,
            accounting: Accounting::Handles,
            max_pipes: MAX_PIPES,
            index: HashMap::new(),
            pipes: Vec::new(),
            pending: HashMap::new(),
            pending_fo: HashMap::new(),
            open: HashMap::new(),
            stats: PipeStats::default(),
        }
    }

    /// For a source that sees only successes and no closes (Sysmon 17/18), fed through [`Self::seen`].
    pub fn opens_only(input: u32, source: PipeSource) -> Self {
        PipeAnalyzer {
            accounting: Accounting::OpensOnly,
            max_pipes: MAX_PIPES_OPENS_ONLY,
            ..Self::with_source(input, source)
        }
    }

    /// One successful operation of an opens-only source, in any order: an instance or an open
    /// counted as such. No handle is tracked (the source logs no closes), so lifetimes,
    /// concurrency, live instances and rates stay empty.
    pub fn seen(&mut self, s: &PipeSeen) {
        let ts = s.ts;
        let Some(pi) = self.pipe_index(s.name, ts) else { return };
        let Some(st) = self.pipes.get_mut(pi) else { return };
        let p = &mut st.p;
        // Event logs are not in time order.
        p.first_ts = p.first_ts.min(ts);
        p.last_ts = p.last_ts.max(ts);
        let pid = s.pid.unwrap_or(0);
        if s.server_instance {
            p.instances_created += 1;
            p.server_pid = p.server_pid.or(s.pid);
            p.server_first_ts = Some(p.server_first_ts.map_or(ts, |f| f.min(ts)));
            p.server_last_ts = Some(p.server_last_ts.map_or(ts, |l| l.max(ts)));
            p.note_server_event(pid, ts, true);
        } else {
            p.opens += 1;
            p.ok += 1;
            if s.pid.is_some() && !p.client_pids.contains(&pid) {
                p.client_pids.push(pid);
            }
        }
        if p.events.len() < MAX_OPENS_KEPT {
            p.events.push(PipeOpen {
                ts,
                record: s.record,
                pid,
                tid: 0,
                file_object: 0,
                status: 0,
                outcome: PipeOutcome::Ok,
                closed_ts: None,
                server_instance: s.server_instance,
                end_record: None,
                close_record: None,
                remote: None,
            });
        }
    }

    /// One decoded file event, in time order.
    pub fn process(&mut self, ev: &FileEvent) {
        self.stats.file_events += 1;
        match ev {
            FileEvent::Create(c) => self.create(c),
            FileEvent::OperationEnd(e) => self.op_end(e),
            FileEvent::Cleanup(h) | FileEvent::Close(h) => self.close(h),
            FileEvent::Name(_) => {}
        }
    }

    fn pipe_index(&mut self, rest: &str, ts: UtcNs) -> Option<usize> {
        let key = rest.to_ascii_lowercase();
        if let Some(&i) = self.index.get(&key) {
            return Some(i);
        }
        if self.pipes.len() >= self.max_pipes {
            self.stats.pipes_dropped += 1;
            return None;
        }
        let i = self.pipes.len();
        self.pipes.push(PipeState {
            p: Pipe {
                input: self.input,
                source: self.source,
                name: format!(r"\Device\NamedPipe\{rest}"),
                first_ts: ts,
                last_ts: ts,
                ..Default::default()
            },
            ..Default::default()
        });
        self.index.insert(key, i);
        Some(i)
    }

    fn create(&mut self, c: &FileCreate) {
        let ts = c.origin.utc();
        let op = Begin {
            path: &c.file_name,
            ts,
            record: c.origin.record_index,
            pid: c.origin.pid.unwrap_or(0),
            tid: c.origin.tid.unwrap_or(c.issuing_thread_id as u32),
            handle: c.file_object,
            server: is_server_disposition(c.create_disposition()),
            process: None,
            remote: None,
        };
        let Some(pending) = self.begin(&op) else { return };
        if self.pending.len() >= MAX_PENDING_IRPS && !self.pending.contains_key(&c.irp) {
            self.stats.evicted_irps += evict_oldest_half(&mut self.pending, |p| p.ts);
        }
        if self.pending_fo.len() >= MAX_PENDING_IRPS {
            // Drop entries whose create was settled or evicted.
            let pending = &self.pending;
            self.pending_fo.retain(|fo, irp| pending.get(irp).is_some_and(|p| p.file_object == *fo));
        }
        self.pending_fo.insert(c.file_object, c.irp);
        // A reused Irp whose OperationEnd was lost simply stays Unknown.
        self.pending.insert(c.irp, pending);
    }

    /// One open whose result is already known (Process Monitor, SMB): create and completion at once.
    pub fn open_completed(&mut self, call: &PipeCall) {
        self.stats.file_events += 1;
        let op = Begin {
            path: call.path,
            ts: call.ts,
            record: call.record,
            pid: call.pid,
            tid: call.tid,
            handle: call.handle,
            server: call.server_instance,
            process: call.process,
            remote: call.remote,
        };
        if let Some(pending) = self.begin(&op) {
            self.complete(pending, call.status, call.ts, call.end_record);
        }
    }

    /// The close of a handle opened by `open_completed` (same `handle` value).
    pub fn close_handle(&mut self, ts: UtcNs, record: u64, handle: u64) {
        self.stats.file_events += 1;
        self.close_fo(ts, record, handle);
    }

    /// The SMB server answered a remote operation on the pipe at `ts` (an open succeeded, a handle
    /// was closed, a pipe wait returned): an instance existed and its server was running then. It
    /// counts as server activity (`server_first_ts`/`server_last_ts`), so a not-found open between
    /// two such answers is the close/open race, as for a local server. No instance is counted: the
    /// server's instances are not visible over SMB.
    pub fn remote_server_seen(&mut self, path: &str, ts: UtcNs, server: Endpoint) {
        let Some(rest) = pipe_name(path) else { return };
        let Some(pi) = self.pipe_index(rest, ts) else { return };
        let Some(st) = self.pipes.get_mut(pi) else { return };
        st.p.remote_server.get_or_insert(server);
        st.p.server_first_ts = Some(st.p.server_first_ts.map_or(ts, |f| f.min(ts)));
        st.p.server_last_ts = Some(st.p.server_last_ts.map_or(ts, |l| l.max(ts)));
        st.p.last_ts = st.p.last_ts.max(ts);
    }

    /// Counts a create on its pipe and returns what its completion needs.
    fn begin(&mut self, op: &Begin) -> Option<Pending> {
        let rest = pipe_name(op.path)?;
        let ts = op.ts;
        let pi = self.pipe_index(rest, ts)?;
        self.stats.pipe_creates += 1;
        let (pid, server) = (op.pid, op.server);
        let st = self.pipes.get_mut(pi)?;
        st.p.last_ts = st.p.last_ts.max(ts);
        if let Some(name) = op.process {
            if !st.p.process_names.iter().any(|(p, _)| *p == pid) && st.p.process_names.len() <= MAX_CLIENTS_PER_PIPE {
                st.p.process_names.push((pid, name.to_string()));
            }
        }
        if server {
            if st.p.server_pid.is_none() {
                st.p.server_pid = Some(pid);
            }
            st.p.server_first_ts.get_or_insert(ts);
            st.p.note_server_event(pid, ts, false);
            st.p.server_last_ts = Some(ts);
        } else {
            st.p.opens += 1;
            st.rate.add(ts);
            if let Some(cl) = st.client((pid, op.remote), &mut self.stats) {
                cl.c.opens += 1;
                if cl.c.opens == 1 {
                    cl.c.first_ts = ts;
                }
                cl.c.last_ts = ts;
                cl.rate.add(ts);
            }
        }
        let event = if st.p.events.len() < MAX_OPENS_KEPT {
            st.p.events.push(PipeOpen {
                ts,
                record: op.record,
                pid,
                tid: op.tid,
                file_object: op.handle,
                status: 0,
                outcome: PipeOutcome::Unknown,
                closed_ts: None,
                server_instance: server,
                end_record: None,
                close_record: None,
                remote: op.remote,
            });
            Some(st.p.events.len() - 1)
        } else {
            None
        };
        let (tid, file_object, record, remote) = (op.tid, op.handle, op.record, op.remote);
        Some(Pending { remote, pipe: pi, event, server, ts, pid, tid, file_object, record })
    }

    fn op_end(&mut self, e: &FileOpEnd) {
        let Some(p) = self.pending.remove(&e.irp) else { return };
        if self.pending_fo.get(&p.file_object) == Some(&e.irp) {
            self.pending_fo.remove(&p.file_object);
        }
        self.complete(p, e.status, e.origin.utc(), Some(e.origin.record_index));
    }

    /// A create finished with `status` (from its OperationEnd, or inferred Ok from a close).
    fn complete(&mut self, p: Pending, status: u32, ts: UtcNs, end_record: Option<u64>) {
        let outcome = outcome_of(status);
        let stats = &mut self.stats;
        let Some(st) = self.pipes.get_mut(p.pipe) else { return };
        st.p.last_ts = st.p.last_ts.max(ts);
        if let Some(ev) = p.event.and_then(|i| st.p.events.get_mut(i)) {
            ev.status = status;
            ev.outcome = outcome;
            ev.end_record = end_record;
        }
        if p.server {
            if outcome == PipeOutcome::Ok {
                st.p.instances_created += 1;
                st.live_instances += 1;
                st.p.max_instances = st.p.max_instances.max(st.live_instances);
                st.p.server_last_ts = Some(ts);
                st.p.note_server_event(p.pid, ts, true);
            }
        } else {
            match outcome {
                PipeOutcome::Ok => st.p.ok += 1,
                PipeOutcome::Busy => st.p.busy += 1,
                PipeOutcome::NotFound => st.p.not_found += 1,
                _ => st.p.other_failures += 1,
            }
            if outcome == PipeOutcome::Ok {
                st.client_handles += 1;
                st.p.max_concurrent = st.p.max_concurrent.max(st.client_handles);
                st.push_handles(ts);
            } else if st.p.failures.len() < MAX_FAILURES_KEPT {
                st.p.failures.push(PipeFailure {
                    ts,
                    pid: p.pid,
                    tid: p.tid,
                    status,
                    outcome,
                    create_record: p.record,
                    end_record: end_record.unwrap_or(p.record),
                    client_handles: st.client_handles,
                    live_instances: st.live_instances,
                    server_seen_before: st.p.server_first_ts.is_some_and(|s| s <= ts),
                    remote: p.remote,
                });
            }
            if let Some(cl) = st.clients.get_mut(&(p.pid, p.remote)) {
                match outcome {
                    PipeOutcome::Ok => cl.c.ok += 1,
                    PipeOutcome::Busy => cl.c.busy += 1,
                    PipeOutcome::NotFound => cl.c.not_found += 1,
                    _ => cl.c.other_failures += 1,
                }
            }
        }
        if outcome == PipeOutcome::Ok {
            if self.open.len() >= MAX_OPEN_HANDLES && !self.open.contains_key(&p.file_object) {
                stats.evicted_handles += evict_oldest_half(&mut self.open, |h| h.ts);
            }
            self.open.insert(
                p.file_object,
                OpenHandle {
                    remote: p.remote,
                    pipe: p.pipe,
                    event: p.event,
                    server: p.server,
                    ts: p.ts,
                    pid: p.pid,
                    record: p.record,
                },
            );
        }
    }

    fn close(&mut self, h: &FileHandleOp) {
        self.close_fo(h.origin.utc(), h.origin.record_index, h.file_object);
    }

    fn close_fo(&mut self, ts: UtcNs, record: u64, file_object: u64) {
        // A close of a FileObject whose create is still pending means the OperationEnd was not
        // traced: the create succeeded.
        if let Some(irp) = self.pending_fo.remove(&file_object) {
            if self.pending.get(&irp).is_some_and(|p| p.file_object == file_object) {
                if let Some(p) = self.pending.remove(&irp) {
                    self.complete(p, STATUS_SUCCESS, ts, None);
                }
            }
        }
        let Some(o) = self.open.remove(&file_object) else { return };
        let Some(st) = self.pipes.get_mut(o.pipe) else { return };
        st.p.last_ts = st.p.last_ts.max(ts);
        if let Some(ev) = o.event.and_then(|i| st.p.events.get_mut(i)) {
            ev.closed_ts = Some(ts);
            ev.close_record = Some(record);
        }
        if o.server {
            st.live_instances = st.live_instances.saturating_sub(1);
            st.p.server_last_ts = Some(ts);
            st.p.note_server_event(o.pid, ts, false);
            return;
        }
        st.client_handles = st.client_handles.saturating_sub(1);
        st.push_handles(ts);
        let life = (ts - o.ts).max(0);
        st.lifetimes.push(life);
        if let Some(cl) = st.clients.get_mut(&(o.pid, o.remote)) {
            cl.lifetimes.push(life);
            cl.c.closed += 1;
            if life <= NS_PER_S {
                cl.c.closed_within_1s += 1;
                if cl.c.sample_records.len() + 2 <= SAMPLE_RECORDS {
                    cl.c.sample_records.push(o.record);
                    cl.c.sample_records.push(record);
                }
            }
        }
    }

    /// The pipes, in order of first appearance (time, then name; opens-only: order in the input).
    pub fn finish(self) -> (Vec<Pipe>, PipeStats) {
        let mut out = Vec::with_capacity(self.pipes.len());
        if self.accounting == Accounting::OpensOnly {
            // Clients were never tracked: `seen` kept the client pids itself.
            out.extend(self.pipes.into_iter().map(|st| st.p));
            return (out, self.stats);
        }
        for st in self.pipes {
            let mut p = st.p;
            p.median_lifetime_ms = st.lifetimes.median_ms();
            p.opens_per_s_peak = st.rate.peak as f64;
            p.peak_ts = st.rate.peak_ts;
            let mut clients: Vec<PipeClient> = st
                .clients
                .into_values()
                .map(|cs| {
                    let mut c = cs.c;
                    c.median_lifetime_ms = cs.lifetimes.median_ms();
                    c.opens_per_s_peak = cs.rate.peak as f64;
                    c.peak_ts = cs.rate.peak_ts;
                    c
                })
                .collect();
            clients.sort_by_key(|c| (c.pid, c.remote));
            p.client_pids = clients.iter().map(|c| c.pid).collect();
            p.client_pids.dedup();
            p.clients = clients;
            out.push(p);
        }
        out.sort_by(|a, b| a.first_ts.cmp(&b.first_ts).then_with(|| a.name.cmp(&b.name)));
        (out, self.stats)
    }
}

/// Removes the older half of a map (by `ts`), returning how many entries went.
fn evict_oldest_half<V>(m: &mut HashMap<u64, V>, ts: impl Fn(&V) -> UtcNs) -> u64 {
    let mut times: Vec<UtcNs> = m.values().map(&ts).collect();
    if times.is_empty() {
        return 0;
    }
    times.sort_unstable();
    let cut = times.get(times.len() / 2).copied().unwrap_or(UtcNs::MIN);
    let before = m.len();
    m.retain(|_, v| ts(v) > cut);
    (before - m.len()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::etl::EventOrigin;

    fn origin(ft: i64, pid: u32, rec: u64) -> EventOrigin {
        EventOrigin { filetime: ft, pid: Some(pid), tid: Some(1), record_index: rec, offset: 0 }
    }

    #[test]
    fn status_mapping() {
        assert_eq!(outcome_of(0), PipeOutcome::Ok);
        assert_eq!(outcome_of(STATUS_PIPE_BUSY), PipeOutcome::Busy);
        assert_eq!(outcome_of(STATUS_PIPE_NOT_AVAILABLE), PipeOutcome::Busy);
        assert_eq!(outcome_of(STATUS_INSTANCE_NOT_AVAILABLE), PipeOutcome::Busy);
        assert_eq!(outcome_of(STATUS_OBJECT_NAME_NOT_FOUND), PipeOutcome::NotFound);
        assert_eq!(outcome_of(0xC000_0022), PipeOutcome::Other);
        assert_eq!(win32_error(PipeOutcome::Busy), Some(231));
        assert_eq!(win32_error(PipeOutcome::NotFound), Some(2));
    }

    #[test]
    fn names() {
        assert_eq!(pipe_name(r"\Device\NamedPipe\RemotingServer"), Some("RemotingServer"));
        assert_eq!(pipe_name(r"\DEVICE\NAMEDPIPE\x"), Some("x"));
        assert_eq!(pipe_name(r"\\.\pipe\y"), Some("y"));
        assert_eq!(pipe_name(r"\Device\NamedPipe\"), None);
        assert_eq!(pipe_name(r"\Device\HarddiskVolume2\x"), None);
        assert_eq!(pipe_name("é"), None);
    }

    #[test]
    fn open_close_and_failure() {
        let mut a = PipeAnalyzer::new(0);
        let name = r"\Device\NamedPipe\P".to_string();
        let create = |irp, fo, disp: u32, pid, ft, rec| {
            FileEvent::Create(FileCreate {
                origin: origin(ft, pid, rec),
                irp,
                file_object: fo,
                issuing_thread_id: 1,
                create_options: disp << 24,
                create_attributes: 0,
                share_access: 3,
                file_name: name.clone(),
            })
        };
        let end = |irp, status, ft, rec| {
            FileEvent::OperationEnd(FileOpEnd { origin: origin(ft, 0, rec), irp, extra_information: 0, status })
        };
        let close = |fo, ft, rec| {
            FileEvent::Close(FileHandleOp {
                origin: origin(ft, 0, rec),
                irp: 9,
                file_object: fo,
                file_key: 0,
                issuing_thread_id: 1,
            })
        };
        let t = 130_000_000_000_000_000i64;
        a.process(&create(1, 100, 3, 10, t, 1));
        a.process(&end(1, 0, t + 1, 2));
        a.process(&create(2, 200, 1, 20, t + 10, 3));
        a.process(&end(2, 0, t + 11, 4));
        a.process(&create(3, 300, 1, 20, t + 20, 5));
        a.process(&end(3, STATUS_PIPE_NOT_AVAILABLE, t + 21, 6));
        a.process(&close(200, t + 10 + 50_000, 7)); // 5 ms later
        let (pipes, _) = a.finish();
        assert_eq!(pipes.len(), 1);
        let p = &pipes[0];
        assert_eq!(p.server_pid, Some(10));
        assert_eq!(p.client_pids, vec![20]);
        assert_eq!((p.opens, p.ok, p.busy, p.instances_created, p.max_instances, p.max_concurrent), (2, 1, 1, 1, 1, 1));
        assert_eq!(p.median_lifetime_ms, Some(5.0));
        assert_eq!(p.failures.len(), 1);
        assert_eq!((p.failures[0].create_record, p.failures[0].end_record, p.failures[0].client_handles), (5, 6, 1));
    }

    /// Sysmon-like input: out of time order, no closes; counted without handle accounting.
    #[test]
    fn opens_only_counts_successes_without_handles() {
        let mut a = PipeAnalyzer::opens_only(3, PipeSource::Sysmon);
        let seen = |name, ts, record, pid, server_instance| PipeSeen { name, ts, record, pid, server_instance };
        a.seen(&seen("svc", 5_000, 1, Some(30), false));
        a.seen(&seen("SVC", 1_000, 2, Some(10), true));
        a.seen(&seen("svc", 3_000, 3, Some(20), false));
        a.seen(&seen("svc", 4_000, 4, None, false));
        a.seen(&seen("other", 2_000, 5, Some(10), true));
        let (pipes, _) = a.finish();
        // Order of first appearance, not of time.
        let names: Vec<&str> = pipes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, [r"\Device\NamedPipe\svc", r"\Device\NamedPipe\other"]);
        let p = &pipes[0];
        assert_eq!((p.input, p.source, p.first_ts, p.last_ts), (3, PipeSource::Sysmon, 1_000, 5_000));
        assert_eq!((p.opens, p.ok, p.instances_created, p.max_instances, p.max_concurrent), (3, 3, 1, 0, 0));
        assert_eq!(p.server_pid, Some(10));
        assert_eq!((p.server_first_ts, p.server_last_ts), (Some(1_000), Some(1_000)));
        // Clients in order of appearance; an open without a pid names none.
        assert_eq!(p.client_pids, vec![30, 20]);
        assert!(p.clients.is_empty() && p.handles.is_empty() && p.median_lifetime_ms.is_none());
        assert_eq!(p.events.len(), 4);
        assert!(p.events.iter().all(|e| e.outcome == PipeOutcome::Ok && e.closed_ts.is_none()));
    }

    #[test]
    fn completed_opens_from_a_source_with_results() {
        let mut a = PipeAnalyzer::with_source(0, PipeSource::Procmon);
        let call = |ts, rec, pid, handle, server, status| PipeCall {
            ts,
            record: rec,
            end_record: None,
            pid,
            tid: 1,
            process: Some(if server { "server.exe" } else { "w3wp.exe" }),
            remote: None,
            handle,
            path: r"\\.\pipe\Remoting",
            server_instance: server,
            status,
        };
        a.open_completed(&call(1_000, 1, 10, 1, true, 0));
        a.open_completed(&call(2_000, 2, 20, 2, false, 0));
        a.open_completed(&call(3_000, 3, 20, 3, false, STATUS_PIPE_BUSY));
        a.close_handle(2_000 + 4_000_000, 4, 2);
        let (pipes, _) = a.finish();
        let p = &pipes[0];
        assert_eq!(p.name, r"\Device\NamedPipe\Remoting");
        assert_eq!(p.source, PipeSource::Procmon);
        assert_eq!((p.opens, p.ok, p.busy, p.instances_created, p.server_pid), (2, 1, 1, 1, Some(10)));
        assert_eq!(p.median_lifetime_ms, Some(4.0));
        assert_eq!(p.process_names, vec![(10, "server.exe".to_string()), (20, "w3wp.exe".to_string())]);
        assert_eq!(p.failures.len(), 1);
    }
}
