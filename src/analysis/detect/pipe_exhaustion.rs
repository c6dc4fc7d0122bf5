//! `pipe_exhaustion` — rule: busy failures happen while every instance is in use: the open
//! client handles at the failure equal (or exceed) the pipe's instance count, taken as the most
//! server instances alive at once (or, when the trace shows no instance creation, the most
//! concurrent client handles). Grouped per pipe into bursts (a gap over 5 s splits).
//! Evidence: Create/OperationEnd records of the first and last such failures.
//! Advice: fewer concurrent connections (reuse / TCP) or more instances; retry with WaitNamedPipe.

use super::pipe_common::{failure_evidence, pid_list, pipe_finding, BURST_GAP_NS};
use super::{bursts, when, Context};
use crate::analysis::pipes::{PipeFailure, PipeOutcome};
use crate::model::FindingKind;
use crate::model::{Finding, Severity};

pub const ADVICE: &str = "All instances of the pipe were connected when these opens failed: the instance count is \
the limit. If the connections are short-lived (see pipe_churn), reuse connections (a pooled/shared channel instead \
of one per impersonated call) or switch the .NET Remoting channel from IPC (IpcChannel) to TCP (TcpChannel). If \
that many concurrent callers are real, raise the instance count (maxNumberOfServerInstances on the IpcChannel, \
nMaxInstances in CreateNamedPipe). Clients should wait with WaitNamedPipe and retry on ERROR_PIPE_BUSY 231 \
instead of failing.";

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for pipe in &ctx.analysis.pipes {
        let (limit, source) = if pipe.max_instances > 0 {
            (pipe.max_instances, "the most instances the server had at once")
        } else {
            (pipe.max_concurrent, "the most concurrent client handles seen; no instance creation was traced")
        };
        if limit == 0 {
            continue;
        }
        let busy_total = pipe.failures.iter().filter(|f| f.outcome == PipeOutcome::Busy).count();
        let full: Vec<&PipeFailure> =
            pipe.failures.iter().filter(|f| f.outcome == PipeOutcome::Busy && f.client_handles >= limit).collect();
        for burst in bursts(full, |f| f.ts, BURST_GAP_NS) {
            let (Some(first), Some(last)) = (burst.first(), burst.last()) else { continue };
            let pids = pid_list(burst.iter().map(|f| f.pid).chain(pipe.server_pid));
            let server = pipe.server_label().map(|s| format!(", server {s}")).unwrap_or_default();
            let summary = format!(
                "{} of {} busy opens of {} between {} and {} failed while {} client handles held all {limit} instances ({limit} = {source}{server}; at most {} concurrent client handles, {} instances created in all).",
                burst.len(),
                busy_total,
                pipe.name,
                when(first.ts),
                when(last.ts),
                burst.iter().map(|f| f.client_handles).max().unwrap_or(limit),
                pipe.max_concurrent,
                pipe.instances_created,
            );
            out.push(pipe_finding(
                FindingKind::PipeExhaustion,
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
