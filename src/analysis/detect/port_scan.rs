//! `port_scan` — rule: one client host sends connection attempts to many distinct targets (server
//! address and port) without exchanging data, and most of them fail (refused by RST, or never
//! answered): a SYN scan or an nmap-style probe, not an application failing. At least
//! `MIN_TARGETS` distinct targets within one burst (attempts less than 60 s apart) and at least
//! half of the data-less attempts failed. The finding absorbs those attempts: their refusals and
//! timeouts are not reported as `connection_refused` / `connect_timeout`, their resets are
//! claimed here. Evidence: the first and last probes. Severity info: a scan is no failure,
//! but who scans is worth knowing (inventory tool, vulnerability scanner, or an intruder).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::connection_refused::refused;
use super::{bursts, evidence, finding, packets, secs, when, Context};
use crate::model::tcp_flags::{RST, SYN};
use crate::model::FindingKind;
use crate::model::{Connection, Endpoint, Finding, Severity, Side};

/// Fewer distinct targets than this are retries, not a scan.
pub const MIN_TARGETS: usize = 8;
const BURST_GAP_NS: i64 = 60 * 1_000_000_000;

pub const ADVICE: &str = "One host probed many ports or hosts and most probes were refused or unanswered: this \
is a port scan (nmap, a vulnerability scanner, an inventory or monitoring tool, or an intruder), not an \
application failing. Its refusals and timeouts say nothing about the services. Identify the scanning host and \
whether the scan was expected; exclude its traffic before looking for application failures.";

/// An attempt that carried no data either way: what a scanner sends.
fn probe(c: &Connection) -> bool {
    c.client_syn > 0 && c.client_bytes == 0 && c.server_bytes == 0
}

fn failed(c: &Connection) -> bool {
    refused(c) || (c.server_packets == 0)
}

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut per_client: BTreeMap<(u32, IpAddr), Vec<&Connection>> = BTreeMap::new();
    for c in a.connections.iter().filter(|c| probe(c)) {
        per_client.entry((c.input, c.client.ip)).or_default().push(c);
    }
    let mut out = Vec::new();
    for ((_, client), mut conns) in per_client {
        conns.sort_by_key(|c| c.first_ts);
        for burst in bursts(conns, |c| c.first_ts, BURST_GAP_NS) {
            let targets: BTreeSet<Endpoint> = burst.iter().map(|c| c.server).collect();
            let failures = burst.iter().filter(|c| failed(c)).count();
            if targets.len() < MIN_TARGETS || failures * 2 < burst.len() {
                continue;
            }
            let hosts: BTreeSet<IpAddr> = targets.iter().map(|e| e.ip).collect();
            let ports: BTreeSet<u16> = targets.iter().map(|e| e.port).collect();
            let open = burst.iter().filter(|c| c.server_synack > 0).count();
            let refusals = burst.iter().filter(|c| refused(c)).count();
            let mut ev = Vec::new();
            for c in &burst {
                ctx.absorbed.insert(c.id);
                for p in packets(c) {
                    if p.flags & RST != 0 {
                        ctx.claim(c, p.frame, FindingKind::PortScan);
                    }
                }
            }
            for c in [burst.first(), burst.last()].into_iter().flatten() {
                let syn = packets(c).into_iter().find(|p| p.side == Side::Client && p.flags & SYN != 0);
                ev.extend(evidence(c, syn.map(|p| p.frame)));
            }
            let first = burst.first().map(|c| c.first_ts).unwrap_or(0);
            let last = burst.iter().map(|c| c.last_ts).max().unwrap_or(first);
            let summary = format!(
                "Host {client} probed {} targets ({} port{} on {} host{}) between {} and {} ({}) without sending data: {refusals} refused, {} unanswered, {open} answered by SYN/ACK — a port scan, not an application failure.",
                targets.len(),
                ports.len(),
                if ports.len() == 1 { "" } else { "s" },
                hosts.len(),
                if hosts.len() == 1 { "" } else { "s" },
                when(first),
                when(last),
                secs(last.saturating_sub(first)),
                failures - refusals,
            );
            let mut f = finding(
                FindingKind::PortScan,
                Severity::Info,
                &burst,
                first,
                last,
                burst.len() as u64,
                ev,
                summary,
                ADVICE,
            );
            f.client = client.to_string();
            if hosts.len() == 1 {
                f.server = hosts.iter().next().map(|h| h.to_string()).unwrap_or_default();
            } else if hosts.len() > 4 {
                f.server = format!("{} hosts", hosts.len());
            }
            out.push(f);
        }
    }
    out
}
