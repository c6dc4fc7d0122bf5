//! `pipe_not_found` — rule: client opens of a named pipe fail with STATUS_OBJECT_NAME_NOT_FOUND
//! 0xC0000034 (ERROR_FILE_NOT_FOUND 2, "The system cannot find the file specified") while the
//! pipe's server is alive: it created an instance before the failure and was active (created or
//! closed an instance) after it. That is the close/open race: the server closed its last
//! instance and had not yet created the next one, so for an instant no instance existed.
//! Not-found opens of pipes whose server never shows up are ignored (probes of absent pipes).
//! Failures are grouped per pipe into bursts (a gap over 5 s splits).
//! Evidence: first and last failing Create records with their OperationEnd records.
//! Advice: reuse connections / switch to TCP, keep instances listening, retry on error 2.

use super::pipe_busy::{failure_evidence, pid_list, pipe_finding, BURST_GAP_NS};
use super::{bursts, when, Context};
use crate::analysis::pipes::{PipeFailure, PipeOutcome};
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
        let nf: Vec<&PipeFailure> = pipe
            .failures
            .iter()
            .filter(|f| f.outcome == PipeOutcome::NotFound)
            .filter(|f| f.server_seen_before && (f.live_instances > 0 || server_last.is_some_and(|l| l > f.ts)))
            .collect();
        for burst in bursts(nf, |f| f.ts, BURST_GAP_NS) {
            let (Some(first), Some(last)) = (burst.first(), burst.last()) else { continue };
            let pids = pid_list(burst.iter().map(|f| f.pid));
            let server = pipe.server_pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            let summary = format!(
                "{} open{} of {} by pid {pids} failed with STATUS_OBJECT_NAME_NOT_FOUND (error 2, file not found) between {} and {} although its server{server} was running: no instance was listening at that instant.",
                burst.len(),
                if burst.len() == 1 { "" } else { "s" },
                pipe.name,
                when(first.ts),
                when(last.ts),
            );
            out.push(pipe_finding(
                "pipe_not_found",
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
