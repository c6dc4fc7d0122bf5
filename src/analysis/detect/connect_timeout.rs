//! `connect_timeout` — rule: a client's SYN is retransmitted and never answered (Zeek state S0
//! with two or more SYNs): the server host or the path silently dropped the attempts. The client
//! sees WSAETIMEDOUT 10060 after its retries. Grouped per server endpoint in bursts (60 s).
//! A burst whose every attempt raced an accepted connection of the same client to the same endpoint
//! (within 2 s of the attempt's lifetime) is a warning: SYNs lost, the client used the other.
//! Evidence: the SYNs of the first attempts.

use super::{evidence, finding, packets, server_bursts, when, Context};
use crate::model::tcp_flags::SYN;
use crate::model::FindingKind;
use crate::model::{Connection, Finding, Severity, Side};

/// A connection accepted this close to an unanswered attempt was tried in parallel.
const PARALLEL_NS: i64 = 2 * 1_000_000_000;

pub const ADVICE: &str = "Connection attempts got no answer at all: no SYN/ACK and no RST, so the client \
retried and finally failed with WSAETIMEDOUT 10060. The server host was down or unreachable, or a firewall \
silently drops the port, or the server's listen backlog was full. Check the server host and the firewalls on \
the path at that time; a refused connection (RST) would have meant the host was up with nothing listening.";

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let mut out = Vec::new();
    let absorbed = &ctx.absorbed;
    let unanswered = |c: &Connection| c.client_syn >= 2 && c.server_packets == 0 && !absorbed.contains(&c.id);
    for (server, burst) in server_bursts(&ctx.analysis.connections, unanswered, 60 * 1_000_000_000) {
        let ev = burst
            .iter()
            .flat_map(|c| {
                let frames: Vec<u64> = packets(c)
                    .iter()
                    .filter(|p| p.side == Side::Client && p.flags & SYN != 0)
                    .map(|p| p.frame)
                    .take(3)
                    .collect();
                evidence(c, frames)
            })
            .collect();
        let first = burst.first().map(|c| c.first_ts).unwrap_or(0);
        let last = burst.last().map(|c| c.last_ts).unwrap_or(first);
        let syns: u32 = burst.iter().map(|c| c.client_syn).sum();
        // Every attempt raced another connection of the same client to the same server endpoint that
        // was accepted meanwhile (browsers open several): a lost SYN, not a failed connect.
        let a = ctx.analysis;
        let parallel = burst.iter().all(|t| {
            a.connections.iter().any(|c| {
                c.input == t.input
                    && c.client.ip == t.client.ip
                    && c.server == t.server
                    && c.id != t.id
                    && c.server_synack > 0
                    && c.first_ts >= t.first_ts.saturating_sub(PARALLEL_NS)
                    && c.first_ts <= t.last_ts.saturating_add(PARALLEL_NS)
            })
        });
        let mut summary = format!(
                "{} connection attempt{} to {server} between {} and {} got no answer ({syns} SYNs, no SYN/ACK, no RST): the client times out with WSAETIMEDOUT 10060.",
                burst.len(),
                if burst.len() == 1 { "" } else { "s" },
                when(first),
                when(last)
            );
        if parallel {
            summary = format!(
                "{} connection attempt{} to {server} between {} and {} got no answer ({syns} SYNs), while the same client's other connection to that endpoint was accepted at the same time: SYNs lost on the path, the client used the other connection.",
                burst.len(),
                if burst.len() == 1 { "" } else { "s" },
                when(first),
                when(last)
            );
        }
        out.push(finding(
            FindingKind::ConnectTimeout,
            if parallel { Severity::Warning } else { Severity::Error },
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
