//! `pipe_churn` — rule (the root cause of busy/not-found storms): one client process opens and
//! closes the same pipe in a tight loop instead of reusing a connection: at least 20 opens,
//! a median handle lifetime of at most 1 s, and a peak of at least 5 opens per second
//! (sliding 1 s window), most handles closed within 1 s of their open.
//! Evidence: a few Create records of short-lived handles with their Cleanup/Close records.
//! Advice: reuse connections (pooled/shared channel) or switch the Remoting channel to TCP.

use super::pipe_busy::pipe_finding;
use super::{cap_evidence, when, Context};
use crate::model::{EvidenceRef, Finding, Severity};

pub const MIN_OPENS: u64 = 20;
pub const MAX_MEDIAN_LIFETIME_MS: f64 = 1_000.0;
pub const MIN_RATE_PER_S: f64 = 5.0;

pub const ADVICE: &str = "This client opens a new pipe connection for (nearly) every call and closes it right \
after, instead of reusing one. With .NET Remoting over IpcChannel this is what impersonated threads do: a \
connection opened under one identity is never reused by another, so each call opens and closes the pipe. The \
churn keeps every server instance connecting or closing, and other opens fail with ERROR_PIPE_BUSY 231 or \
ERROR_FILE_NOT_FOUND 2 although the server is idle. Reuse connections (one pooled/shared channel instead of one per \
impersonated call, e.g. call without impersonation or revert before the Remoting call), or switch the .NET \
Remoting channel from IPC (IpcChannel) to TCP (TcpChannel). Raising the instance count \
(maxNumberOfServerInstances, nMaxInstances in CreateNamedPipe) and retrying with WaitNamedPipe only soften it.";

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for pipe in &ctx.analysis.pipes {
        for c in &pipe.clients {
            let Some(median) = c.median_lifetime_ms else { continue };
            let short_share = if c.closed == 0 { 0.0 } else { c.closed_within_1s as f64 / c.closed as f64 };
            if c.opens < MIN_OPENS
                || median > MAX_MEDIAN_LIFETIME_MS
                || c.opens_per_s_peak < MIN_RATE_PER_S
                || short_share < 0.5
            {
                continue;
            }
            let span_s = (c.last_ts - c.first_ts) as f64 / 1e9;
            let ev: Vec<EvidenceRef> =
                c.sample_records.iter().map(|&frame| EvidenceRef { input: pipe.input, frame }).collect();
            let summary = format!(
                "pid {} opened and closed {} {} times in {:.1} s (peak {:.0} opens/s at {}, median handle lifetime {:.1} ms, {} of {} handles closed within 1 s) instead of reusing a connection.",
                c.pid,
                pipe.name,
                c.opens,
                span_s,
                c.opens_per_s_peak,
                when(c.peak_ts),
                median,
                c.closed_within_1s,
                c.closed,
            );
            out.push(pipe_finding(
                "pipe_churn",
                Severity::Warning,
                pipe,
                c.pid.to_string(),
                c.first_ts,
                c.last_ts,
                c.opens,
                cap_evidence(ev),
                summary,
                ADVICE,
            ));
        }
    }
    out
}
