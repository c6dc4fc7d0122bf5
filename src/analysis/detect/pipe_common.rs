//! What the pipe detectors share: how failures group into bursts, how their evidence and pids
//! are listed, and the fields every pipe finding fills the same way.

use super::cap_evidence;
use crate::analysis::pipes::{Pipe, PipeFailure};
use crate::model::{EvidenceRef, Finding, FindingKind, Severity};

/// Failures of one pipe further apart than this start a new burst (a new finding).
pub const BURST_GAP_NS: i64 = 5 * 1_000_000_000;

/// Sorted, space-separated pids; 0 (a remote SMB client, whose process is not visible) left out.
pub fn pid_list(pids: impl IntoIterator<Item = u32>) -> String {
    let set: std::collections::BTreeSet<u32> = pids.into_iter().filter(|&p| p != 0).collect();
    set.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
}

/// Evidence for failures: Create and OperationEnd records of the first three and the last one.
pub fn failure_evidence(input: u32, fs: &[&PipeFailure]) -> Vec<EvidenceRef> {
    let mut ev = Vec::new();
    let n = fs.len();
    for (i, f) in fs.iter().enumerate() {
        if i < 3 || i + 1 == n {
            ev.push(EvidenceRef { input, frame: f.create_record });
            ev.push(EvidenceRef { input, frame: f.end_record });
        }
    }
    cap_evidence(ev)
}

/// A pipe finding with the fields every pipe detector fills the same way.
#[allow(clippy::too_many_arguments)]
pub fn pipe_finding(
    kind: FindingKind,
    severity: Severity,
    pipe: &Pipe,
    pids: String,
    first_ts: i64,
    last_ts: i64,
    count: u64,
    evidence: Vec<EvidenceRef>,
    summary: String,
    advice: &str,
) -> Finding {
    Finding {
        id: 0,
        kind,
        severity,
        first_ts,
        last_ts,
        client: remote_client(pipe),
        server: pipe.remote_server.map(|s| s.to_string()).unwrap_or_default(),
        pipe: pipe.name.clone(),
        pid: pids,
        count,
        evidence,
        wireshark_filter: String::new(),
        log_lines: Vec::new(),
        summary,
        advice: advice.to_string(),
        connections: Vec::new(),
    }
}

/// The `client` column of an SMB pipe's finding: the remote client when there was one, its
/// address when all its connections came from one host; empty for local pipes (pids name them).
fn remote_client(pipe: &Pipe) -> String {
    let remotes: std::collections::BTreeSet<_> = pipe.clients.iter().filter_map(|c| c.remote).collect();
    let ips: std::collections::BTreeSet<_> = remotes.iter().map(|e| e.ip).collect();
    match (remotes.len(), ips.len()) {
        (1, _) => remotes.iter().next().map(|e| e.to_string()).unwrap_or_default(),
        (_, 1) => ips.iter().next().map(|ip| ip.to_string()).unwrap_or_default(),
        _ => String::new(),
    }
}
