//! `packet_drop` — rule: a Windows networking component (NIC, filter driver, vSwitch, TCP/IP)
//! reported dropping packets (PktMon event 170). One finding per (input, component, drop reason).
//! Evidence: the drop events, numbered as etl2pcapng numbers the trace's frames. The connections
//! affected are those whose 4-tuple (either direction) and lifetime contain a dropped TCP packet;
//! findings already made on those connections (resets, timeouts) are named as explained by the
//! drops. Severity: error when such a finding exists, else warning.

use std::collections::BTreeMap;

use super::{finding, secs, when, Context, MAX_EVIDENCE};
use crate::model::FindingKind;
use crate::model::{Connection, EvidenceRef, Finding, PacketDrop, Severity};

/// A dropped packet may lie this far outside the connection's first/last packet and still be its
/// (a SYN dropped before any packet of the connection was logged elsewhere, a late retransmission).
const SLACK_NS: i64 = 1_000_000_000;

pub const ADVICE: &str = "A component of the Windows network stack discarded these packets, so the peer or the \
local application never got them: retransmissions, timeouts and resets follow. The reason names the cause: \
INET_* reasons come from TCP/IP itself (EndpointNotFound: no socket or listener for the port, so Windows \
answers with a reset; the TimeWait/TcbRemoved family: the connection was already gone), Filtered, PortBlocked \
and NL_InspectionDrop are a filter or firewall (WFP: `netsh wfp show state`, the Windows Firewall log), NL_NoRoute \
and address-resolution reasons are routing/ARP, Resources and QueueFull mean the host or NIC was overloaded. \
Check the component named here (`pktmon list` shows the stack) and its configuration at that time.";

fn matches(c: &Connection, d: &PacketDrop) -> bool {
    let Some((src, dst, _)) = d.tcp else { return false };
    let tuple = (src == c.client && dst == c.server) || (src == c.server && dst == c.client);
    tuple && d.ts >= c.first_ts.saturating_sub(SLACK_NS) && d.ts <= c.last_ts.saturating_add(SLACK_NS)
}

/// Findings that dropped packets can explain.
fn explainable(kind: FindingKind) -> bool {
    matches!(
        kind,
        FindingKind::RetransmissionTimeout
            | FindingKind::ConnectTimeout
            | FindingKind::ConnectionRefused
            | FindingKind::KeepaliveTimeout
            | FindingKind::KeepaliveReset
            | FindingKind::IdleReset
            | FindingKind::StaleConnection
            | FindingKind::AbortiveClose
            | FindingKind::ServerRestart
    )
}

pub fn detect(ctx: &Context, earlier: &[Finding]) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut groups: BTreeMap<(u32, u16, u32), Vec<&PacketDrop>> = BTreeMap::new();
    for d in &a.packet_drops {
        groups.entry((d.input, d.component_id, d.reason)).or_default().push(d);
    }
    let mut out = Vec::new();
    for ((input, _, _), drops) in groups {
        let conns: Vec<&Connection> =
            a.connections.iter().filter(|c| drops.iter().any(|d| matches(c, d))).take(1000).collect();
        let ids: Vec<u64> = conns.iter().map(|c| c.id).collect();
        let explained: Vec<&Finding> =
            earlier.iter().filter(|f| explainable(f.kind) && f.connections.iter().any(|id| ids.contains(id))).collect();
        let d0 = drops[0];
        let first = drops.iter().map(|d| d.ts).min().unwrap_or(d0.ts);
        let last = drops.iter().map(|d| d.ts).max().unwrap_or(d0.ts);
        let mut dirs: Vec<&str> = drops.iter().map(|d| d.direction).collect();
        dirs.sort();
        dirs.dedup();
        let n = drops.len();
        let what = match conns.len() {
            0 => "no TCP connection of the inputs".to_string(),
            1 => format!("connection {} → {}", conns[0].client, conns[0].server),
            k => format!("{k} TCP connections"),
        };
        let mut summary = format!(
            "{} dropped {n} packet{} ({}, {}) from {} over {}, affecting {what}.",
            d0.component,
            if n == 1 { "" } else { "s" },
            d0.reason_label,
            dirs.join("/"),
            when(first),
            secs(last.saturating_sub(first)),
        );
        if !explained.is_empty() {
            let mut kinds: Vec<&str> = explained.iter().map(|f| f.kind.name()).collect();
            kinds.sort();
            kinds.dedup();
            summary.push_str(&format!(" This explains the {} found on them.", kinds.join(", ")));
        }
        let severity = if explained.is_empty() { Severity::Warning } else { Severity::Error };
        let evidence: Vec<EvidenceRef> = drops.iter().map(|d| EvidenceRef { input, frame: d.frame }).collect();
        let mut f =
            finding(FindingKind::PacketDrop, severity, &conns, first, last, n as u64, evidence, summary, ADVICE);
        if conns.is_empty() {
            let frames: Vec<String> = drops.iter().take(MAX_EVIDENCE).map(|d| d.frame.to_string()).collect();
            f.wireshark_filter = format!("frame.number in {{{}}}", frames.join(" "));
        }
        out.push(f);
    }
    out
}
