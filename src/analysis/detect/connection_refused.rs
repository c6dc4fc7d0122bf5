//! `connection_refused` — rule: a client's SYN is answered by RST from the server endpoint
//! (no SYN/ACK): nothing listened there (WSAECONNREFUSED 10061 / ECONNREFUSED). Attempts are
//! grouped per server endpoint into bursts (attempts less than 60 s apart).
//! Evidence: the first refused SYNs and their RSTs. Advice: find out why nothing listened.

use super::{evidence, finding, packets, server_bursts, when, Context};
use crate::model::tcp_flags::{RST, SYN};
use crate::model::{Connection, Finding, Severity, Side};

const BURST_GAP_NS: i64 = 60 * 1_000_000_000;

pub const ADVICE: &str = "Nothing was listening on the server port when these connections were attempted \
(the client sees WSAECONNREFUSED 10061). Check whether the server process was running (crashed, restarting, \
not yet started), listening on this address and port, or whether a host firewall rejects the port. If the \
refusals sit between a server shutdown and its restart, see the server_restart finding; clients should retry \
with back-off rather than fail at once.";

/// Whether a connection was refused: SYN sent, no SYN/ACK, RST from the server side.
pub fn refused(c: &Connection) -> bool {
    c.client_syn > 0 && c.server_synack == 0 && c.server_rst > 0 && c.server_bytes == 0
}

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut out = Vec::new();
    for (server, burst) in server_bursts(&a.connections, refused, BURST_GAP_NS) {
        let mut ev = Vec::new();
        for c in &burst {
            for p in packets(c) {
                let is_syn = p.side == Side::Client && p.flags & SYN != 0;
                let is_rst = p.side == Side::Server && p.flags & RST != 0;
                if is_rst {
                    ctx.claim(c, p.frame, "connection_refused");
                }
                if (is_syn || is_rst) && ev.len() < 4 {
                    ev.extend(evidence(c, [p.frame]));
                }
            }
        }
        let first = burst.first().map(|c| c.first_ts).unwrap_or(0);
        let last = burst.last().map(|c| c.last_ts).unwrap_or(first);
        let clients: std::collections::BTreeSet<_> = burst.iter().map(|c| c.client.ip).collect();
        let summary = format!(
                "{} connection attempt{} from {} client host{} to {server} {} refused (SYN answered by RST) between {} and {}: nothing was listening.",
                burst.len(),
                if burst.len() == 1 { "" } else { "s" },
                clients.len(),
                if clients.len() == 1 { "" } else { "s" },
                if burst.len() == 1 { "was" } else { "were" },
                when(first),
                when(last)
            );
        out.push(finding(
            "connection_refused",
            Severity::Error,
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
