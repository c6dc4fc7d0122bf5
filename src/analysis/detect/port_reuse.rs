//! `port_reuse` — rule: a new connection starts (SYN with a new ISN) on a 4-tuple whose previous
//! connection was closed with FINs less than one TIME_WAIT period (`--time-wait`) earlier, so the
//! side that closed first still held that tuple in TIME_WAIT. Harmless when the new connection
//! comes up normally (info); a warning when it does not (no SYN/ACK, a reset, retried SYNs), as
//! the old state then got in the way. Evidence: the old connection's FINs, the new SYN and answer.

use std::collections::BTreeMap;

use super::{evidence, finding, packets, secs, when, Context};
use crate::model::tcp_flags::{FIN, RST, SYN};
use crate::model::FindingKind;
use crate::model::{Connection, Finding, Severity, Side};

pub const ADVICE: &str = "A client reused a local port whose previous connection to the same server was still \
in TIME_WAIT. Windows and Linux accept this when the new ISN is higher (RFC 6191), but a server still in \
TIME_WAIT may answer with an old ACK or a reset, and the connect fails or stalls. Let the OS pick ephemeral \
ports instead of binding fixed ones (avoid SO_REUSEADDR on clients), reuse connections rather than reopening \
them, and let the server close first so that TIME_WAIT stays on the server.";

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let tw = ctx.options.time_wait_s as i64 * 1_000_000_000;
    let key = |c: &Connection| {
        if c.client <= c.server {
            (c.input, c.client, c.server)
        } else {
            (c.input, c.server, c.client)
        }
    };
    // Only 4-tuples where a connection started with reused ports can pair: group those alone, not
    // every connection of the capture.
    let reused: std::collections::HashSet<_> =
        ctx.analysis.connections.iter().filter(|c| c.reused_ports && c.client_syn > 0).map(key).collect();
    let mut by_tuple: BTreeMap<_, Vec<&Connection>> = BTreeMap::new();
    for c in ctx.analysis.connections.iter().filter(|c| !reused.is_empty() && reused.contains(&key(c))) {
        by_tuple.entry(key(c)).or_default().push(c);
    }
    let mut groups: BTreeMap<_, Vec<(&Connection, &Connection, bool)>> = BTreeMap::new();
    for conns in by_tuple.values() {
        for w in conns.windows(2) {
            let (prev, next) = (w[0], w[1]);
            if !next.reused_ports || next.client_syn == 0 {
                continue;
            }
            let closed = prev.client_fin > 0 && prev.server_fin > 0;
            if !closed || next.first_ts.saturating_sub(prev.last_ts) >= tw {
                continue;
            }
            let clean = next.server_synack > 0 && next.client_syn == 1 && next.server_rst == 0;
            groups.entry((next.input, next.client.ip, next.server)).or_default().push((prev, next, clean));
        }
    }
    let mut out = Vec::new();
    for ((_, client_ip, server), items) in groups {
        let all_clean = items.iter().all(|i| i.2);
        let mut conns = Vec::new();
        let mut ev = Vec::new();
        for (prev, next, _) in &items {
            conns.push(*prev);
            conns.push(*next);
            ev.extend(evidence(prev, packets(prev).iter().filter(|p| p.flags & FIN != 0).map(|p| p.frame).take(2)));
            ev.extend(evidence(
                next,
                packets(next)
                    .iter()
                    .filter(|p| {
                        (p.side == Side::Client && p.flags & SYN != 0)
                            || (p.side == Side::Server && p.flags & (SYN | RST) != 0)
                    })
                    .map(|p| p.frame)
                    .take(2),
            ));
        }
        let (prev, next, _) = items[0];
        let summary = format!(
            "{} new connection{} from {client_ip} to {server} reused a 4-tuple still in TIME_WAIT, the first at {} ({} after the previous connection on port {} closed){}.",
            items.len(),
            if items.len() == 1 { "" } else { "s" },
            when(next.first_ts),
            secs(next.first_ts.saturating_sub(prev.last_ts)),
            next.client.port,
            if all_clean { "; each came up normally" } else { "; some did not come up cleanly (no SYN/ACK, retried SYN or reset)" }
        );
        let first = items.iter().map(|i| i.1.first_ts).min().unwrap_or(0);
        let last = items.iter().map(|i| i.1.first_ts).max().unwrap_or(first);
        let severity = if all_clean { Severity::Info } else { Severity::Warning };
        out.push(finding(
            FindingKind::PortReuse,
            severity,
            &conns,
            first,
            last,
            items.len() as u64,
            ev,
            summary,
            ADVICE,
        ));
    }
    out
}
