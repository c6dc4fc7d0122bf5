//! Named-pipe accounting from ETW file-I/O events: instances, opens and their outcome, handle
//! lifetimes, open rate and concurrent handles.
//!
//! Model (see docs/pipes.md): a Create of `\Device\NamedPipe\NAME` with CreateDisposition
//! FILE_CREATE (2) or FILE_OPEN_IF (3) is a server creating an instance (kernel32's
//! CreateNamedPipe passes one of these to NtCreateNamedPipeFile); any other disposition
//! (CreateFile OPEN_EXISTING = FILE_OPEN 1) is a client open. The outcome of a create comes from
//! the OperationEnd with the same Irp; a handle lives from its successful create until the first
//! Cleanup or Close of its FileObject. Every map is capped; evictions are counted.

use std::collections::HashMap;

use crate::ingest::etl::{FileCreate, FileEvent, FileHandleOp, FileOpEnd};
use crate::model::{Endpoint, UtcNs};

/// Where a pipe's operations were seen (`pipes.csv` `source`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PipeSource {
    /// ETW file-I/O events (Kernel-File, classic FileIo).
    #[default]
    Etw,
    /// Sysmon events 17/18 in an event log.
    Sysmon,
    /// Process Monitor (PML or CSV export).
    Procmon,
    /// SMB CREATE/CLOSE on an IPC$ tree in a packet capture.
    Smb,
}

impl PipeSource {
    pub fn name(self) -> &'static str {
        match self {
            PipeSource::Etw => "etw",
            PipeSource::Sysmon => "sysmon",
            PipeSource::Procmon => "procmon",
            PipeSource::Smb => "smb",
        }
    }
}

/// One open whose result is known when it is reported (Process Monitor's CreateFile with its
/// Result, an SMB CREATE request paired with its response): the pipe model's source-neutral input.
/// ETW's create/OperationEnd pairs go through `PipeAnalyzer::process` instead.
#[derive(Clone, Debug)]
pub struct PipeCall<'a> {
    pub ts: UtcNs,
    /// Record or frame number in its input (evidence `input#record`).
    pub record: u64,
    /// Record or frame of the result, when it is a separate one (SMB response).
    pub end_record: Option<u64>,
    /// 0 when unknown (remote SMB clients).
    pub pid: u32,
    pub tid: u32,
    /// Process image name, when the source names it.
    pub process: Option<&'a str>,
    /// The remote client, for opens that came over the network.
    pub remote: Option<Endpoint>,
    /// Identifies the handle until its close within this input (ProcMon: pid and path; SMB:
    /// session, tree and FileId); a later `close_handle` with the same value ends it.
    pub handle: u64,
    /// Full path (`\Device\NamedPipe\X`, `\\.\pipe\X`, …; see `pipe_name`).
    pub path: &'a str,
    pub server_instance: bool,
    /// NTSTATUS of the result.
    pub status: u32,
}

/// How an open of a pipe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeOutcome {
    Ok,
    /// STATUS_PIPE_NOT_AVAILABLE / STATUS_PIPE_BUSY / STATUS_INSTANCE_NOT_AVAILABLE → Win32 231.
    Busy,
    /// STATUS_OBJECT_NAME_NOT_FOUND → Win32 2.
    NotFound,
    Other,
    /// No completion status was seen.
    Unknown,
}

impl PipeOutcome {
    pub fn name(self) -> &'static str {
        match self {
            PipeOutcome::Ok => "ok",
            PipeOutcome::Busy => "busy",
            PipeOutcome::NotFound => "not_found",
            PipeOutcome::Other => "other",
            PipeOutcome::Unknown => "unknown",
        }
    }
}

pub const STATUS_SUCCESS: u32 = 0;
pub const STATUS_OBJECT_NAME_NOT_FOUND: u32 = 0xC000_0034;
pub const STATUS_INSTANCE_NOT_AVAILABLE: u32 = 0xC000_00AB;
pub const STATUS_PIPE_NOT_AVAILABLE: u32 = 0xC000_00AC;
pub const STATUS_PIPE_BUSY: u32 = 0xC000_00AE;

/// Win32 ERROR_FILE_NOT_FOUND and ERROR_PIPE_BUSY.
pub const ERROR_FILE_NOT_FOUND: u32 = 2;
pub const ERROR_PIPE_BUSY: u32 = 231;

/// NTSTATUS of a create to its outcome. Success and informational codes (severity bits 00/01)
/// count as Ok.
pub fn outcome_of(status: u32) -> PipeOutcome {
    match status {
        STATUS_PIPE_NOT_AVAILABLE | STATUS_PIPE_BUSY | STATUS_INSTANCE_NOT_AVAILABLE => PipeOutcome::Busy,
        STATUS_OBJECT_NAME_NOT_FOUND => PipeOutcome::NotFound,
        s if s >> 30 <= 1 => PipeOutcome::Ok,
        _ => PipeOutcome::Other,
    }
}

/// The Win32 error a client sees for an outcome (None for Ok/Other/Unknown).
pub fn win32_error(outcome: PipeOutcome) -> Option<u32> {
    match outcome {
        PipeOutcome::Busy => Some(ERROR_PIPE_BUSY),
        PipeOutcome::NotFound => Some(ERROR_FILE_NOT_FOUND),
        _ => None,
    }
}

/// Symbolic name of the NTSTATUS values pipe findings mention.
pub fn status_name(status: u32) -> String {
    match status {
        STATUS_SUCCESS => "STATUS_SUCCESS".into(),
        STATUS_OBJECT_NAME_NOT_FOUND => "STATUS_OBJECT_NAME_NOT_FOUND".into(),
        STATUS_INSTANCE_NOT_AVAILABLE => "STATUS_INSTANCE_NOT_AVAILABLE".into(),
        STATUS_PIPE_NOT_AVAILABLE => "STATUS_PIPE_NOT_AVAILABLE".into(),
        STATUS_PIPE_BUSY => "STATUS_PIPE_BUSY".into(),
        s => format!("0x{s:08X}"),
    }
}

/// One open (client) or instance creation (server) of a pipe.
#[derive(Clone, Debug)]
pub struct PipeOpen {
    pub ts: UtcNs,
    /// Record index in the trace (evidence `input#record`).
    pub record: u64,
    pub pid: u32,
    pub tid: u32,
    pub file_object: u64,
    /// NTSTATUS of the create (0 = success).
    pub status: u32,
    pub outcome: PipeOutcome,
    /// When its handle was closed, if seen.
    pub closed_ts: Option<UtcNs>,
    /// A server creating an instance rather than a client opening it.
    pub server_instance: bool,
    /// Record index of the OperationEnd that gave the status, if seen.
    pub end_record: Option<u64>,
    /// Record index of the Cleanup/Close that ended the handle, if seen.
    pub close_record: Option<u64>,
    /// The remote client of an open that came over the network (SMB).
    pub remote: Option<Endpoint>,
}

/// A failed client open, with the pipe's state at that moment (for the detectors).
#[derive(Clone, Debug)]
pub struct PipeFailure {
    pub ts: UtcNs,
    pub pid: u32,
    pub tid: u32,
    pub status: u32,
    pub outcome: PipeOutcome,
    /// Record of the failing Create and of its OperationEnd.
    pub create_record: u64,
    pub end_record: u64,
    /// Open client handles and live server instances when the open failed.
    pub client_handles: u32,
    pub live_instances: u32,
    /// The server had created an instance before this failure.
    pub server_seen_before: bool,
    /// The remote client of an open that came over the network (SMB).
    pub remote: Option<Endpoint>,
}

/// One client process of a pipe.
#[derive(Clone, Debug, Default)]
pub struct PipeClient {
    pub pid: u32,
    /// A remote (SMB) client is one TCP connection: its ip:port (pid 0).
    pub remote: Option<Endpoint>,
    pub opens: u64,
    pub ok: u64,
    pub busy: u64,
    pub not_found: u64,
    pub other_failures: u64,
    /// Handles whose close was seen, and how many of them lived at most 1 s.
    pub closed: u64,
    pub closed_within_1s: u64,
    pub median_lifetime_ms: Option<f64>,
    pub opens_per_s_peak: f64,
    pub peak_ts: UtcNs,
    pub first_ts: UtcNs,
    pub last_ts: UtcNs,
    /// A few (create, close) record pairs of short-lived handles, for evidence.
    pub sample_records: Vec<u64>,
}

/// One named pipe (`\Device\NamedPipe\NAME`) in one input.
#[derive(Clone, Debug, Default)]
pub struct Pipe {
    pub input: u32,
    pub name: String,
    pub server_pid: Option<u32>,
    pub client_pids: Vec<u32>,
    pub opens: u64,
    pub ok: u64,
    pub busy: u64,
    pub not_found: u64,
    pub other_failures: u64,
    pub instances_created: u64,
    pub max_concurrent: u32,
    pub median_lifetime_ms: Option<f64>,
    pub opens_per_s_peak: f64,
    pub first_ts: UtcNs,
    pub last_ts: UtcNs,
    /// Opens and instance creations in time order (bounded; see `MAX_OPENS_KEPT`).
    pub events: Vec<PipeOpen>,
    /// Open client handles over time: (time, count) at each change (bounded).
    pub handles: Vec<(UtcNs, u32)>,
    /// Most server instances alive at once (successful server creates not yet closed).
    pub max_instances: u32,
    /// First and last server activity (instance create or close).
    pub server_first_ts: Option<UtcNs>,
    pub server_last_ts: Option<UtcNs>,
    /// Failed client opens in time order (bounded; see `MAX_FAILURES_KEPT`).
    pub failures: Vec<PipeFailure>,
    /// Per client process (bounded; see `MAX_CLIENTS_PER_PIPE`).
    pub clients: Vec<PipeClient>,
    /// Time of the peak open rate.
    pub peak_ts: UtcNs,
    /// Where these operations were seen.
    pub source: PipeSource,
    /// Process names by pid, where the source names them (bounded by `MAX_CLIENTS_PER_PIPE` + 1).
    pub process_names: Vec<(u32, String)>,
    /// Each server process's first and last event on the pipe (bounded by `MAX_SERVER_PROCESSES`).
    pub server_processes: Vec<ServerProcess>,
    /// The SMB server that answered remote opens of the pipe (its process is not visible).
    pub remote_server: Option<Endpoint>,
}

/// A process that created instances of a pipe. It is alive from its first to its last event on
/// the pipe (instance creates and closes), also while it has no instance: a server recycling its
/// instances closes them all and creates new ones moments later.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerProcess {
    pub pid: u32,
    pub first_ts: UtcNs,
    pub last_ts: UtcNs,
    pub instances: u64,
}

impl Pipe {
    /// Who opened the pipe, for finding texts: `w3wp.exe (5120)` where the source names the
    /// process, `pid 5120` where not, `SMB client 10.1.2.15:49720` for a remote open.
    pub fn client_label(&self, pid: u32, remote: Option<Endpoint>) -> String {
        match remote {
            Some(r) => format!("SMB client {r}"),
            None => self.process_label(pid),
        }
    }

    /// `w3wp.exe (5120)` where the source names the process, else `pid 5120`.
    pub fn process_label(&self, pid: u32) -> String {
        match self.process_names.iter().find(|(p, _)| *p == pid) {
            Some((_, name)) => format!("{name} ({pid})"),
            None => format!("pid {pid}"),
        }
    }

    /// Distinct clients, sorted, at most 3 named (`…, and N more`).
    pub fn clients_text(&self, who: impl IntoIterator<Item = (u32, Option<Endpoint>)>) -> String {
        let set: std::collections::BTreeSet<(u32, Option<Endpoint>)> = who.into_iter().collect();
        let mut parts: Vec<String> = set.iter().take(3).map(|(p, r)| self.client_label(*p, *r)).collect();
        if set.len() > 3 {
            parts.push(format!("{} more", set.len() - 3));
        }
        parts.join(", ")
    }

    /// The server: its process where seen, or the SMB server that answered remote opens.
    pub fn server_label(&self) -> Option<String> {
        match (self.server_pid, self.remote_server) {
            (Some(p), _) => Some(self.process_label(p)),
            (None, Some(s)) => Some(format!("SMB server {s}")),
            (None, None) => None,
        }
    }

    /// The server process alive at `ts` (between its first and last event on the pipe).
    pub fn server_alive_at(&self, ts: UtcNs) -> Option<&ServerProcess> {
        self.server_processes.iter().find(|s| s.first_ts <= ts && ts <= s.last_ts)
    }

    /// Records an event of server process `pid` on the pipe (`created`: a new instance).
    pub fn note_server_event(&mut self, pid: u32, ts: UtcNs, created: bool) {
        let i = match self.server_processes.iter().position(|s| s.pid == pid) {
            Some(i) => i,
            None if self.server_processes.len() < MAX_SERVER_PROCESSES => {
                self.server_processes.push(ServerProcess { pid, first_ts: ts, last_ts: ts, instances: 0 });
                self.server_processes.len() - 1
            }
            None => return,
        };
        if let Some(s) = self.server_processes.get_mut(i) {
            s.first_ts = s.first_ts.min(ts);
            s.last_ts = s.last_ts.max(ts);
            s.instances += created as u64;
        }
    }
}

/// Opens kept per pipe for the timeline and the detectors; counts above stay exact.
pub const MAX_OPENS_KEPT: usize = 20_000;
/// Failures kept per pipe.
pub const MAX_FAILURES_KEPT: usize = 20_000;
/// Points of the handle-count timeline kept per pipe (decimated beyond).
pub const MAX_HANDLE_POINTS: usize = 20_000;
/// Server processes tracked per pipe.
pub const MAX_SERVER_PROCESSES: usize = 16;
/// Client processes tracked per pipe.
pub const MAX_CLIENTS_PER_PIPE: usize = 256;
/// Pipes tracked per input (anonymous pipes get unique names, so there can be many).
pub const MAX_PIPES: usize = 4_096;
/// Creates waiting for their OperationEnd.
pub const MAX_PENDING_IRPS: usize = 65_536;
/// Open pipe handles tracked.
pub const MAX_OPEN_HANDLES: usize = 262_144;
/// Lifetimes kept per pipe and per client for the median (decimated beyond).
const MAX_LIFETIMES: usize = 50_000;
const SAMPLE_RECORDS: usize = 8;

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

const NS_PER_S: i64 = 1_000_000_000;
const RATE_BUCKET_NS: i64 = 100_000_000;
const RATE_BUCKETS: usize = 10;

/// Opens per second over a sliding 1 s window made of ten 100 ms buckets (O(1) memory).
#[derive(Clone, Debug, Default)]
struct RateMeter {
    ring: [u32; RATE_BUCKETS],
    current: Option<i64>,
    sum: u64,
    peak: u64,
    peak_ts: UtcNs,
}

impl RateMeter {
    fn add(&mut self, ts: UtcNs) {
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
struct Decimated {
    v: Vec<i64>,
    stride: u64,
    seen: u64,
}

impl Default for Decimated {
    fn default() -> Self {
        Decimated { v: Vec::new(), stride: 1, seen: 0 }
    }
}

impl Decimated {
    fn push(&mut self, x: i64) {
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
    fn median_ms(&self) -> Option<f64> {
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

/// Streams file events (in time order) into per-pipe accounts.
pub struct PipeAnalyzer {
    input: u32,
    source: PipeSource,
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

fn ns(ft: i64) -> UtcNs {
    crate::ingest::etl::filetime_to_unix_ns(ft) as i64
}

impl PipeAnalyzer {
    pub fn new(input: u32) -> Self {
        Self::with_source(input, PipeSource::Etw)
    }

    pub fn with_source(input: u32, source: PipeSource) -> Self {
        PipeAnalyzer {
            input,
            source,
            index: HashMap::new(),
            pipes: Vec::new(),
            pending: HashMap::new(),
            pending_fo: HashMap::new(),
            open: HashMap::new(),
            stats: PipeStats::default(),
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
        if self.pipes.len() >= MAX_PIPES {
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
        let ts = ns(c.origin.filetime);
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
        self.complete(p, e.status, ns(e.origin.filetime), Some(e.origin.record_index));
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
        self.close_fo(ns(h.origin.filetime), h.origin.record_index, h.file_object);
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

    /// The pipes, in order of first appearance (time, then name).
    pub fn finish(self) -> (Vec<Pipe>, PipeStats) {
        let mut out = Vec::with_capacity(self.pipes.len());
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
