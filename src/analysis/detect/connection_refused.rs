//! `connection_refused` — rule: a client's SYN is answered by RST from the server endpoint
//! (no SYN/ACK): nothing listened there (WSAECONNREFUSED 10061 / ECONNREFUSED). Attempts are
//! grouped per server endpoint into bursts (attempts less than 60 s apart).
//! A burst whose every attempt had a parallel attempt by the same client to another port of the
//! same host that was accepted (SMB tries 445 and 139 together) is info: the client used the other.
//! Evidence: the first refused SYNs and their RSTs. Advice: find out why nothing listened.

use super::{evidence, finding, packets, server_bursts, was_established, when, Context};
use crate::model::tcp_flags::{ACK, RST, SYN};
use crate::model::FindingKind;
use crate::model::{Connection, Finding, Severity, Side};

const BURST_GAP_NS: i64 = 60 * 1_000_000_000;
/// A connection to another port of the same host this close to a refusal was tried in parallel.
const PARALLEL_NS: i64 = 2 * 1_000_000_000;

pub const ADVICE: &str = "Nothing was listening on the server port when these connections were attempted \
(the client sees WSAECONNREFUSED 10061). Check whether the server process was running (crashed, restarting, \
not yet started), listening on this address and port, or whether a host firewall rejects the port. If the \
refusals sit between a server shutdown and its restart, see the server_restart finding; clients should retry \
with back-off rather than fail at once.";

/// Whether a connection was refused: SYN sent, no SYN/ACK, RST from the server side, and that
/// RST acknowledges nothing beyond the SYN (a RST whose ack number covers the client's data ends
/// a connection whose SYN/ACK the capture missed: it was accepted).
pub fn refused(c: &Connection) -> bool {
    c.client_syn > 0 && c.server_synack == 0 && c.server_rst > 0 && c.server_bytes == 0 && !rst_acks_data(c)
}

fn rst_acks_data(c: &Connection) -> bool {
    let ps: Vec<_> = c.packets().collect();
    let Some(syn) = ps.iter().rfind(|p| p.side == Side::Client && p.flags & SYN != 0 && p.flags & ACK == 0) else {
        return false;
    };
    ps.iter()
        .any(|p| p.side == Side::Server && p.flags & (RST | ACK) == RST | ACK && p.ack.wrapping_sub(syn.seq) as i32 > 1)
}

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut out = Vec::new();
    let absorbed = &ctx.absorbed;
    let picked = server_bursts(&a.connections, |c| refused(c) && !absorbed.contains(&c.id), BURST_GAP_NS);
    for (server, burst) in picked {
        // The client tried two ports of the host at once (SMB: 445 and 139) and used the other one.
        let alternative = burst.iter().all(|r| {
            a.connections.iter().any(|c| {
                c.input == r.input
                    && c.client.ip == r.client.ip
                    && c.server.ip == r.server.ip
                    && c.server.port != r.server.port
                    && was_established(c)
                    && c.first_ts.saturating_sub(r.first_ts).saturating_abs() <= PARALLEL_NS
            })
        });
        let other_port = a
            .connections
            .iter()
            .find(|c| {
                alternative
                    && c.input == burst[0].input
                    && c.client.ip == burst[0].client.ip
                    && c.server.ip == server.ip
                    && c.server.port != server.port
                    && was_established(c)
                    && c.first_ts.saturating_sub(burst[0].first_ts).saturating_abs() <= PARALLEL_NS
            })
            .map(|c| c.server.port);
        let mut ev = Vec::new();
        for c in &burst {
            for p in packets(c) {
                let is_syn = p.side == Side::Client && p.flags & SYN != 0;
                let is_rst = p.side == Side::Server && p.flags & RST != 0;
                if is_rst {
                    ctx.claim(c, p.frame, FindingKind::ConnectionRefused);
                }
                if (is_syn || is_rst) && ev.len() < 4 {
                    ev.extend(evidence(c, [p.frame]));
                }
            }
        }
        let first = burst.first().map(|c| c.first_ts).unwrap_or(0);
        let last = burst.last().map(|c| c.last_ts).unwrap_or(first);
        let clients: std::collections::BTreeSet<_> = burst.iter().map(|c| c.client.ip).collect();
        let mut summary = format!(
                "{} connection attempt{} from {} client host{} to {server} {} refused (SYN answered by RST) between {} and {}: nothing was listening.",
                burst.len(),
                if burst.len() == 1 { "" } else { "s" },
                clients.len(),
                if clients.len() == 1 { "" } else { "s" },
                if burst.len() == 1 { "was" } else { "were" },
                when(first),
                when(last)
            );
        if let Some(port) = other_port {
            summary = format!(
                "{} connection attempt{} to {server} {} refused at {} while the same client connected to port {port} of that host at that moment (clients such as SMB try both ports at once and use the one that answers): no failure.",
                burst.len(),
                if burst.len() == 1 { "" } else { "s" },
                if burst.len() == 1 { "was" } else { "were" },
                when(first)
            );
        }
        out.push(finding(
            FindingKind::ConnectionRefused,
            if other_port.is_some() { Severity::Info } else { Severity::Error },
            &burst,
            first,
            last,
            burst.len() as u64,
            ev,
            summary,
            ADVICE,
        ));
    }
    out
}
