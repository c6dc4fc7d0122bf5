//! Answers to the questions an analyst asks about resets — was it the peer process, an abortive
//! close (SO_LINGER), keep-alive, port exhaustion, TIME_WAIT reuse, a middlebox? — each with the
//! reason, including why *not* when no finding says so.

use std::collections::BTreeMap;

use super::port_exhaustion::port_usage;
use super::Context;
use crate::analysis::{ResetClass, Verdict};
use crate::model::Finding;
use crate::model::FindingKind;

fn has<'a>(findings: &'a [Finding], kind: FindingKind) -> Vec<&'a Finding> {
    findings.iter().filter(|f| f.kind == kind).collect()
}

fn yes(question: &'static str, found: &[&Finding]) -> Verdict {
    let reason = found.iter().map(|f| f.summary.as_str()).take(2).collect::<Vec<_>>().join(" ");
    let more = if found.len() > 2 { format!(" (+{} more findings)", found.len() - 2) } else { String::new() };
    Verdict { question, answer: "yes", reason: format!("{reason}{more}") }
}

fn no(question: &'static str, reason: String) -> Verdict {
    Verdict { question, answer: "no", reason }
}

pub fn answer(ctx: &Context, findings: &[Finding], resets: &[ResetClass]) -> Vec<Verdict> {
    let a = ctx.analysis;
    let mut by_class: BTreeMap<&str, usize> = BTreeMap::new();
    for r in resets {
        *by_class.entry(r.classification.as_str()).or_default() += 1;
    }
    let class_list = by_class.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();

    let restarts = has(findings, FindingKind::ServerRestart);
    let stale = has(findings, FindingKind::StaleConnection);
    out.push(if !restarts.is_empty() {
        yes("peer_process", &restarts)
    } else if !stale.is_empty() {
        yes("peer_process", &stale)
    } else {
        no(
            "peer_process",
            "no server endpoint closed or reset its connections at once, and no client sent on a connection its peer had closed".into(),
        )
    });

    let aborts = has(findings, FindingKind::AbortiveClose);
    out.push(if !aborts.is_empty() {
        yes("abortive_close", &aborts)
    } else if resets.is_empty() {
        no("abortive_close", "no abortive close: no connection was reset".into())
    } else if !stale.is_empty() {
        no(
            "abortive_close",
            format!("no abortive close: the peer sent FIN (or restarted) before the reset, which answered data sent after the close ({class_list})"),
        )
    } else {
        no("abortive_close", format!("no abortive close: every reset is explained otherwise ({class_list})"))
    });

    let ka: Vec<&Finding> = findings
        .iter()
        .filter(|f| matches!(f.kind, FindingKind::KeepaliveReset | FindingKind::KeepaliveTimeout))
        .collect();
    out.push(if !ka.is_empty() {
        yes("keepalive", &ka)
    } else if a.connections.is_empty() {
        // Nothing to judge: saying "no probes were seen" would read as a finding.
        Verdict { question: "keepalive", answer: "unknown", reason: "no TCP connections in the inputs".into() }
    } else if a.tcp.keep_alive == 0 {
        no(
            "keepalive",
            "no keep-alive probes were seen: keep-alive was off, or its idle time (Windows: 2 hours) is longer than the idle periods captured".into(),
        )
    } else {
        no(
            "keepalive",
            format!("{} keep-alive probes, {} answered by keep-alive ACKs, none answered by a reset or left unanswered", a.tcp.keep_alive, a.tcp.keep_alive_ack),
        )
    });

    let px = has(findings, FindingKind::PortExhaustion);
    out.push(if !px.is_empty() {
        yes("port_exhaustion", &px)
    } else {
        let usage = port_usage(ctx);
        match usage.iter().max_by_key(|u| u.peak_held * 100_000 / u.range_size().max(1)) {
            None => no("port_exhaustion", "no connections".into()),
            Some(u) => no(
                "port_exhaustion",
                format!(
                    "ports: at most {} in use of {} ({}–{}, {}) by {} ({} connections, {} closed by the client first)",
                    u.peak_held,
                    u.range_size(),
                    u.range.0,
                    u.range.1,
                    u.range_source,
                    u.client,
                    u.connections,
                    u.closed_by_client
                ),
            ),
        }
    });

    let reuse = has(findings, FindingKind::PortReuse);
    out.push(if !reuse.is_empty() {
        yes("time_wait_reuse", &reuse)
    } else {
        no(
            "time_wait_reuse",
            format!(
                "no connection reused a 4-tuple still in TIME_WAIT ({} reused 4-tuples in all)",
                a.tcp.reused_ports
            ),
        )
    });

    let idle = has(findings, FindingKind::IdleReset);
    let injected = has(findings, FindingKind::MiddleboxReset);
    let suspected = has(findings, FindingKind::SuspectedMiddleboxReset);
    out.push(if !injected.is_empty() {
        yes("middlebox_idle_timeout", &injected)
    } else if !idle.is_empty() {
        yes("middlebox_idle_timeout", &idle)
    } else if !suspected.is_empty() {
        let mut v = yes("middlebox_idle_timeout", &suspected);
        v.answer = "unknown"; // one capture: a capture at the other end would prove it
        v
    } else {
        no(
            "middlebox_idle_timeout",
            "no connection was reset after an idle period without a close or a restart of the peer".into(),
        )
    });

    let unexplained = by_class.get("unexplained").copied().unwrap_or(0);
    out.push(Verdict {
        question: "unexplained_resets",
        answer: if unexplained == 0 { "no" } else { "yes" },
        reason: if resets.is_empty() { "no resets".into() } else { format!("{} resets: {class_list}", resets.len()) },
    });
    out
}
