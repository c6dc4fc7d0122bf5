//! `pipe_busy` — rule: client opens of a named pipe fail with a busy status
//! (STATUS_PIPE_NOT_AVAILABLE 0xC00000AC, STATUS_PIPE_BUSY 0xC00000AE or
//! STATUS_INSTANCE_NOT_AVAILABLE 0xC00000AB; the client sees ERROR_PIPE_BUSY 231, "All pipe
//! instances are busy"). Failures are grouped per pipe into bursts (a gap over 5 s splits).
//! Evidence: the first and last failing Create records with their OperationEnd records.
//! Advice: reuse connections or switch the Remoting channel to TCP, raise the instance count,
//! retry with WaitNamedPipe.

use super::pipe_common::{failure_evidence, pid_list, pipe_finding, BURST_GAP_NS};
use super::{bursts, when, Context};
use crate::analysis::pipes::{status_name, PipeFailure, PipeOutcome};
use crate::model::FindingKind;
use crate::model::{Finding, Severity};

pub const ADVICE: &str = "Every instance of the pipe was connected when these opens came in, so the client got \
ERROR_PIPE_BUSY 231 (\"All pipe instances are busy\"; .NET Remoting: \"Port is Busy\"). The usual cause is a client \
that opens and closes the pipe per call (impersonated threads never reuse a .NET Remoting IpcChannel connection): \
reuse connections (one pooled/shared channel instead of one per impersonated call) or switch the .NET Remoting \
channel from IPC (IpcChannel) to TCP (TcpChannel). Otherwise raise the instance count (maxNumberOfServerInstances, \
nMaxInstances in CreateNamedPipe), and let clients retry with WaitNamedPipe on ERROR_PIPE_BUSY instead of failing.";

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for pipe in &ctx.analysis.pipes {
        let busy: Vec<&PipeFailure> = pipe.failures.iter().filter(|f| f.outcome == PipeOutcome::Busy).collect();
        for burst in bursts(busy, |f| f.ts, BURST_GAP_NS) {
            let (Some(first), Some(last)) = (burst.first(), burst.last()) else { continue };
            let statuses: std::collections::BTreeSet<u32> = burst.iter().map(|f| f.status).collect();
            let status_text = statuses.iter().map(|s| status_name(*s)).collect::<Vec<_>>().join("/");
            let pids = pid_list(burst.iter().map(|f| f.pid));
            let who = pipe.clients_text(burst.iter().map(|f| (f.pid, f.remote)));
            let server = match (pipe.server_pid, pipe.server_label()) {
                (Some(_), Some(label)) => format!(
                    " The server is {label} ({} instance{} at most).",
                    pipe.max_instances,
                    if pipe.max_instances == 1 { "" } else { "s" }
                ),
                (None, Some(label)) => format!(" The server is {label}."),
                _ => String::new(),
            };
            // Remote clients' WaitNamedPipe calls (FSCTL_PIPE_WAIT) during the burst.
            let ops = &ctx.analysis.smb.ops;
            let waits =
                crate::analysis::smb::pipe_wait_text(ops, pipe.input, &pipe.name, first.ts, last.ts + BURST_GAP_NS);
            let summary = format!(
                "{} open{} of {} by {who} failed with {status_text} (ERROR_PIPE_BUSY 231, all pipe instances busy) between {} and {}.{server}{waits}",
                burst.len(),
                if burst.len() == 1 { "" } else { "s" },
                pipe.name,
                when(first.ts),
                when(last.ts),
            );
            out.push(pipe_finding(
                FindingKind::PipeBusy,
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
