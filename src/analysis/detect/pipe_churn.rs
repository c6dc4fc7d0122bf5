//! `pipe_churn` — rule (the root cause of busy/not-found storms): one client process opens and
//! closes the same pipe in a tight loop instead of reusing a connection: at least 20 opens,
//! a median handle lifetime of at most 1 s, and a peak of at least 5 opens per second
//! (sliding 1 s window), most handles closed within 1 s of their open. Warning when opens of the
//! pipe failed (busy/not found: the churn is their likely cause), info when none did.
//! Evidence: a few Create records of short-lived handles with their Cleanup/Close records.
//! Advice: reuse connections (pooled/shared channel) or switch the Remoting channel to TCP.

use super::pipe_common::pipe_finding;
use super::{cap_evidence, when, Context};
use crate::model::FindingKind;
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

/// For opens that came over SMB (IPC$): the .NET Remoting IpcChannel advice does not apply there.
pub const ADVICE_REMOTE: &str = "This remote client opens the pipe over SMB (a CREATE on IPC$) anew for (nearly) \
every call and closes it right after, instead of keeping its RPC binding open. Each open costs a round trip and a \
server instance; under load other opens fail with STATUS_PIPE_NOT_AVAILABLE (ERROR_PIPE_BUSY 231). Keep one \
binding/handle per client and reuse it; when the client is a .NET Remoting or WCF application, use a TCP \
channel (TcpChannel, NetTcpBinding) instead of named pipes across machines.";

/// Who opened the pipe: the process, or for SMB the remote client (SMB shows no pid).
fn opener(pipe: &crate::analysis::pipes::Pipe, c: &crate::analysis::pipes::PipeClient) -> String {
    if c.remote.is_some() || pipe.source != crate::analysis::pipes::PipeSource::Smb {
        return pipe.client_label(c.pid, c.remote);
    }
    let mut hosts: Vec<String> = Vec::new();
    for e in pipe.events.iter().filter(|e| !e.server_instance) {
        if let Some(r) = e.remote {
            let ip = r.ip.to_string();
            if !hosts.contains(&ip) {
                hosts.push(ip);
            }
        }
    }
    match hosts.len() {
        0 => "a remote SMB client".into(),
        1..=3 => format!("SMB client {}", hosts.join(", ")),
        n => format!("{n} SMB client hosts ({}, …)", hosts[..3].join(", ")),
    }
}

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
            // Churn is the cause of busy/not-found storms; without a failed open it is a habit, not a fault.
            let failed = pipe.busy + pipe.not_found > 0;
            let mut summary = format!(
                "{} opened and closed {} {} times in {:.1} s (peak {:.0} opens/s at {}, median handle lifetime {:.1} ms, {} of {} handles closed within 1 s) instead of reusing a connection.",
                opener(pipe, c),
                pipe.name,
                c.opens,
                span_s,
                c.opens_per_s_peak,
                when(c.peak_ts),
                median,
                c.closed_within_1s,
                c.closed,
            );
            if !failed {
                summary.push_str(" No open of this pipe failed, so the churn did no visible harm here.");
            }
            let remote = pipe.source == crate::analysis::pipes::PipeSource::Smb;
            out.push(pipe_finding(
                FindingKind::PipeChurn,
                if failed { Severity::Warning } else { Severity::Info },
                pipe,
                c.pid.to_string(),
                c.first_ts,
                c.last_ts,
                c.opens,
                cap_evidence(ev),
                summary,
                if remote { ADVICE_REMOTE } else { ADVICE },
            ));
        }
    }
    out
}
