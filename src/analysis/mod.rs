//! Analysis: TCP sessions, detectors, and the one `Analysis` value every output reads.

pub mod attribution;
pub mod correlate;
pub mod detect;
pub mod inputs;
pub mod logs;
pub mod pipes;
pub mod smb;
pub mod tcp;
pub mod twosided;

use serde::Serialize;

use crate::model::{Connection, Finding, UtcNs};
use tcp::TcpCounts;

/// One input file as read, for `summary.json` `inputs`.
#[derive(Clone, Debug, Default)]
pub struct InputSummary {
    pub path: String,
    pub format: String,
    pub link_types: Vec<String>,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<UtcNs>,
    pub last_ts: Option<UtcNs>,
    /// Damage or failure, naming the offset; `None` when read to the end.
    pub error: Option<String>,
    /// Connections finalised early because the connection table was full.
    pub evicted_connections: u64,
    /// Format-specific facts, typed per format; merged into this input's `summary.json` entry.
    pub extra: inputs::FormatStats,
    /// Connections of this capture left out of two-sided matching (its bounded table was full).
    pub connections_not_matchable: u64,
    /// The files of a ring-buffer input, read as one capture in this order.
    pub ring_files: Vec<std::path::PathBuf>,
}

/// Settings the detectors take from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// Client ephemeral port range (inclusive). Windows' default: 49152–65535.
    pub ephemeral_range: (u16, u16),
    /// How long an actively closed socket stays in TIME_WAIT, seconds. Windows' default: 240.
    pub time_wait_s: u32,
    /// The user gave the range explicitly (do not replace it by the observed one).
    pub ephemeral_range_given: bool,
    /// Clock offsets of text logs given by the user: (file name or path, log clock minus UTC in s).
    pub log_offsets: Vec<(String, f64)>,
    /// Clock offsets of captures given by the user: (file name or path, its clock minus the first
    /// capture's in s).
    pub clock_offsets: Vec<(String, f64)>,
    /// Keep every packet note of uneventful connections too, for the app's packet list; batch
    /// runs keep only their landmarks (the findings are the same, the memory a quarter).
    pub keep_all_packet_notes: bool,
    /// Inputs read at once: 0 = as many as the machine has cores, 1 = one after another. The
    /// result is the same either way (`pipeline::analyze_sources` merges in input order).
    pub parallel_inputs: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ephemeral_range: (49152, 65535),
            time_wait_s: 240,
            ephemeral_range_given: false,
            log_offsets: Vec::new(),
            clock_offsets: Vec::new(),
            keep_all_packet_notes: false,
            parallel_inputs: 0,
        }
    }
}

/// What the analysis concluded about one of the user's standing questions
/// ("was it SO_LINGER?", "was it keep-alive?", "was it port exhaustion?", …).
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// The question: peer_process, abortive_close, keepalive, port_exhaustion, …
    pub question: &'static str,
    /// yes | no | unknown
    pub answer: &'static str,
    pub reason: String,
}

/// How one reset was classified.
#[derive(Clone, Debug, Serialize)]
pub struct ResetClass {
    pub input: u32,
    pub frame: u64,
    pub conn_id: u64,
    /// Who sent it: client or server.
    pub sender: &'static str,
    /// The finding kind that explains it, or `unexplained`.
    pub classification: String,
}

/// The result of a run: the single value that the report writers and the GUI read.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub inputs: Vec<InputSummary>,
    pub connections: Vec<Connection>,
    pub tcp: TcpCounts,
    /// Named pipes seen in ETW file-I/O events.
    pub pipes: Vec<pipes::Pipe>,
    /// Text logs read, with their clock offsets.
    pub logs: Vec<logs::LogFile>,
    /// Error and warning log lines, on the UTC clock.
    pub log_events: Vec<logs::LogEvent>,
    /// Windows event-log records that matter (service crashes, restarts, pipe events).
    pub system_events: Vec<logs::SystemEvent>,
    /// Processes named as socket owners by Windows event sources (bounded), for attributing connections.
    pub socket_owners: Vec<crate::model::SocketOwner>,
    /// Packets dropped by Windows networking components (PktMon), bounded.
    pub packet_drops: Vec<crate::model::PacketDrop>,
    pub findings: Vec<Finding>,
    pub resets: Vec<ResetClass>,
    pub verdicts: Vec<Verdict>,
    /// SMB named-pipe opens and counts from packet captures.
    pub smb: smb::SmbSummary,
    /// Packet facts, capture clocks and connections seen in two captures.
    pub twosided: twosided::TwoSided,
    /// Files found in input folders and not read (unknown format, empty, unreadable).
    pub skipped: Vec<SkippedInput>,
}

/// A file of an input folder that was not read, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkippedInput {
    pub path: String,
    pub reason: String,
}

impl Analysis {
    /// Input display name (file name) for evidence strings such as `capture.pcap#12`.
    pub fn input_name(&self, input: u32) -> &str {
        self.inputs
            .get(input as usize)
            .map(|i| std::path::Path::new(&i.path).file_name().and_then(|n| n.to_str()).unwrap_or(&i.path))
            .unwrap_or("?")
    }

    /// A log line as `file:line`, the form findings.csv and the details pane show.
    pub fn log_line_label(&self, r: crate::model::LogLineRef) -> String {
        format!("{}:{}", self.input_name(r.input), r.line)
    }

    /// Whether any input was damaged or unreadable.
    pub fn any_input_error(&self) -> bool {
        self.inputs.iter().any(|i| i.error.is_some())
    }
}
