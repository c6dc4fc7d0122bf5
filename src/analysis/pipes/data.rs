//! What the pipe model produces: pipes, their opens, failures, clients and server processes.

use super::MAX_SERVER_PROCESSES;
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

/// A successful pipe operation seen by a source that logs no closes and no failures (Sysmon 17
/// PipeCreated, 18 PipeConnected): the input of `PipeAnalyzer::seen`.
#[derive(Clone, Debug)]
pub struct PipeSeen<'a> {
    /// The pipe's name after `\Device\NamedPipe\`, as the source wrote it.
    pub name: &'a str,
    pub ts: UtcNs,
    pub record: u64,
    pub pid: Option<u32>,
    /// An instance created by the server (17), else a client's open (18).
    pub server_instance: bool,
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
