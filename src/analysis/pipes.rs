//! Named-pipe accounting from ETW file-I/O events: instances, opens and their outcome, handle
//! lifetimes, open rate and concurrent handles.

use crate::model::UtcNs;

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
}

/// Opens kept per pipe for the timeline and the detectors; counts above stay exact.
pub const MAX_OPENS_KEPT: usize = 20_000;
