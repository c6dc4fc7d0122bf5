//! `pipe_not_found` — rule: client opens of a named pipe fail with STATUS_OBJECT_NAME_NOT_FOUND
//! 0xC0000034 (ERROR_FILE_NOT_FOUND 2, "The system cannot find the file specified") while the
//! pipe's server is alive: it created an instance before the failure and the same server process
//! is alive at the failure (between its first and last event on the pipe, also while it holds no
//! instance). That is the close/open race: the server closed its last instance (or recycled all of
//! them) and had not yet created the next one, so for an instant no instance existed; the summary
//! names the recycle gap when the trace shows it.
//! Not-found opens of pipes whose server never shows up are ignored (probes of absent pipes).
//! Failures are grouped per pipe into bursts (a gap over 5 s splits).
//! Evidence: first and last failing Create records with their OperationEnd records.
//! Advice: reuse connections / switch to TCP, keep instances listening, retry on error 2.

use super::pipe_common::{failure_evidence, pid_list, pipe_finding, BURST_GAP_NS};
use super::{bursts, when, Context};
use crate::analysis::pipes::{Pipe, PipeFailure, PipeOutcome};
use crate::model::FindingKind;
use crate::model::{Finding, Severity};

pub const ADVICE: &str = "The server was running, but at these instants no instance of the pipe existed: it had \
closed the instance of the previous connection and not yet created the next one, so the client got \
ERROR_FILE_NOT_FOUND 2 (\"The system cannot find the file specified\"; .NET Remoting: \"Failed to connect to an IPC \
Port\"). This race only matters because the client opens a new connection per call: reuse connections (a \
pooled/shared channel instead of one per impersonated call) or switch the .NET Remoting channel from IPC \
(IpcChannel) to TCP (TcpChannel). A server should create the next instance before closing the old one and keep \
enough instances listening (maxNumberOfServerInstances, nMaxInstances in CreateNamedPipe); clients should retry \
briefly on error 2 and 231 (WaitNamedPipe) instead of failing.";

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for pipe in &ctx.analysis.pipes {
        let server_last = pipe.server_last_ts;
        // Alive: between the server process's first and last event on the pipe (where the source
        // tracks processes), else between the pipe's first and last server activity.
        let alive = |f: &PipeFailure| {
            if pipe.server_processes.is_empty() {
                f.server_seen_before && server_last.is_some_and(|l| l > f.ts)
            } else {
                pipe.server_alive_at(f.ts).is_some()
            }
        };
        let nf: Vec<&PipeFailure> = pipe
            .failures
            .iter()
            .filter(|f| f.outcome == PipeOutcome::NotFound)
            .filter(|f| f.server_seen_before && (f.live_instances > 0 || alive(f)))
            .collect();
        for burst in bursts(nf, |f| f.ts, BURST_GAP_NS) {
            let (Some(first), Some(last)) = (burst.first(), burst.last()) else { continue };
            let pids = pid_list(burst.iter().map(|f| f.pid));
            let who = pipe.clients_text(burst.iter().map(|f| (f.pid, f.remote)));
            let server = pipe.server_label().map(|s| format!(" ({s})")).unwrap_or_default();
            let summary = format!(
                "{} open{} of {} by {who} failed with STATUS_OBJECT_NAME_NOT_FOUND (error 2, file not found) between {} and {} although its server{server} was running: no instance was listening at that instant.{}",
                burst.len(),
                if burst.len() == 1 { "" } else { "s" },
                pipe.name,
                when(first.ts),
                when(last.ts),
                recycle_text(pipe, &burst),
            );
            out.push(pipe_finding(
                FindingKind::PipeNotFound,
                Severity::Error,
                pipe,
                pids,
                first.ts,
                last.ts,
                burst.len() as u64,
                failure_evidence(pipe.input, &burst),
                summary,
                ADVICE,
            ));
        }
    }
    out
}

/// The close/open race, when the trace shows it: the failures fell into gaps where the same
/// server process had closed every instance and created the next ones milliseconds later.
fn recycle_text(pipe: &Pipe, burst: &[&PipeFailure]) -> String {
    let server: Vec<_> = pipe.events.iter().filter(|e| e.server_instance && e.outcome == PipeOutcome::Ok).collect();
    let mut gaps: Vec<i64> = Vec::new();
    let mut same_process = true;
    for f in burst.iter().filter(|f| f.live_instances == 0) {
        let closed = server.iter().filter_map(|e| e.closed_ts.map(|c| (c, e.pid))).filter(|(c, _)| *c <= f.ts).max();
        let next = server.iter().filter(|e| e.ts >= f.ts).min_by_key(|e| e.ts);
        if let (Some((c, before)), Some(n)) = (closed, next) {
            same_process &= before == n.pid;
            gaps.push(n.ts - c);
        }
    }
    if gaps.is_empty() || !same_process {
        return String::new();
    }
    gaps.sort_unstable();
    let median = gaps.get(gaps.len() / 2).copied().unwrap_or(0);
    format!(
        " {} of them fell while the server was recycling its instances: it had closed every instance and created the next ones {:.1} ms later (median), the same process throughout — the race between closing and opening instances.",
        gaps.len(),
        median as f64 / 1e6
    )
}
