//! `server_restart` — rule: a server endpoint stops. The server side closes (FIN) or resets (RST)
//! connections that it had accepted, at the same moment (within 250 ms: a process exit closes all
//! its sockets at once), without the clients having closed first; and it is confirmed by what
//! follows: connection attempts refused, or a client still sending on one of those connections and
//! being reset (with two or more connections closed, or the server accepting again later), or every
//! connection open at that moment (at least two) ending at once with a reset
//! and no new connection accepted in between. It came back at the first SYN/ACK from the endpoint
//! afterwards; "did not come back" is said only when later attempts were seen. Error when the
//! outage is confirmed (refusals, or the server back); warning when all connections were reset
//! at once and nothing followed (a deliberate abort looks the same).
//! Evidence: the server's FIN/RST frames, the first refused attempt, the first accept after.
//! Advice: look at why the server process stopped; clients must reconnect.

use std::collections::BTreeMap;

use super::connection_refused::refused;
use super::{evidence, finding, packets, secs, was_established, when, Context, Restart};
use crate::model::tcp_flags::{FIN, RST, SYN};
use crate::model::FindingKind;
use crate::model::{Connection, EvidenceRef, Finding, Severity, Side, UtcNs};

const CLUSTER_NS: i64 = 250_000_000;
/// Refusals this soon after the closes confirm the server went away.
const REFUSAL_WINDOW_NS: i64 = 120 * 1_000_000_000;

pub const ADVICE: &str = "The server process stopped: it closed or reset its connections at once. Find out why \
(crash, deliberate restart, recycle): look at the server host's event log around that time (Service Control \
Manager 7031/7034, Application Error 1000, .NET Runtime 1026). Clients that hold connections from before the \
restart must notice the close (recv returning 0, FD_CLOSE) and reconnect; otherwise their next send is reset \
(WSAECONNRESET 10054, see stale_connection). Connection attempts during the gap are refused (10061).";

/// The server's first FIN or RST after its SYN/ACK (if the handshake was seen), when the client
/// had not closed before it.
pub fn server_end(c: &Connection) -> Option<(UtcNs, u64, u8)> {
    // Iterators, not a packet vector: this runs on every established connection.
    let from = match c.packets().position(|p| p.side == Side::Server && p.flags & SYN != 0) {
        Some(i) => i + 1,
        None if c.server_synack > 0 => return None, // the SYN/ACK was not kept: too long ago
        None => 0,
    };
    for p in c.packets().skip(from) {
        if p.side == Side::Client && p.flags & (FIN | RST) != 0 {
            return None;
        }
        if p.side == Side::Server && p.flags & (FIN | RST) != 0 {
            return Some((p.ts, p.frame, p.flags));
        }
    }
    None
}

/// After the server's close, the client sent data that was answered by a server RST.
fn client_kept_sending(c: &Connection, after: UtcNs) -> bool {
    if c.server_rst == 0 {
        return false;
    }
    let ps = packets(c);
    ps.iter().enumerate().any(|(i, p)| {
        p.side == Side::Client
            && p.payload_len > 0
            && p.ts > after
            && ps[i + 1..].iter().any(|r| r.side == Side::Server && r.flags & RST != 0)
    })
}

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut per_server: BTreeMap<_, Vec<&Connection>> = BTreeMap::new();
    for c in &a.connections {
        per_server.entry((c.input, c.server)).or_default().push(c);
    }
    let mut out = Vec::new();
    let mut claims = Vec::new();
    for ((_, server), conns) in per_server {
        let mut ends: Vec<(UtcNs, u64, u8, &Connection)> = conns
            .iter()
            .filter(|c| was_established(c) && !refused(c))
            .filter_map(|c| server_end(c).map(|(t, f, fl)| (t, f, fl, *c)))
            .collect();
        ends.sort_by_key(|e| e.0);
        // First packets of this server's refused attempts, in time order: whether a cluster has
        // refusals is then a binary search, not a scan of every connection.
        let mut refused_at: Vec<UtcNs> = conns.iter().filter(|c| refused(c)).map(|c| c.first_ts).collect();
        refused_at.sort_unstable();
        let mut i = 0;
        while i < ends.len() {
            let start = ends[i].0;
            let mut j = i;
            while j + 1 < ends.len() && ends[j + 1].0.saturating_sub(start) <= CLUSTER_NS {
                j += 1;
            }
            let cluster = &ends[i..=j];
            i = j + 1;
            let end_of_cluster = cluster.last().map(|e| e.0).unwrap_or(start);
            // What can confirm a restart: refusals after it, a client sending on a closed connection,
            // or (for `all_closed`) several connections with a reset among them. Without any of these
            // the cluster is skipped before the scans below (each over all of the server's connections).
            let from = refused_at.partition_point(|&t| t < start);
            let may_refuse =
                refused_at.get(from).is_some_and(|&t| t.saturating_sub(end_of_cluster) <= REFUSAL_WINDOW_NS);
            let may_all_close = cluster.len() >= 2 && cluster.iter().any(|e| e.2 & RST != 0);
            let stale = cluster.iter().any(|e| client_kept_sending(e.3, e.0));
            if !may_refuse && !may_all_close && !stale {
                continue;
            }

            let refusals: Vec<&Connection> = conns
                .iter()
                .filter(|c| {
                    refused(c) && c.first_ts >= start && c.first_ts.saturating_sub(end_of_cluster) <= REFUSAL_WINDOW_NS
                })
                .copied()
                .collect();
            let open_then: Vec<&&Connection> =
                conns.iter().filter(|c| was_established(c) && c.first_ts < start && c.last_ts >= start).collect();
            let accepted_meanwhile = conns.iter().any(|c| {
                packets(c)
                    .iter()
                    .any(|p| p.side == Side::Server && p.flags & SYN != 0 && p.ts > start && p.ts < end_of_cluster)
            });
            let all_closed = open_then.len() >= 2
                && open_then.iter().all(|c| cluster.iter().any(|e| e.3.id == c.id))
                && cluster.iter().any(|e| e.2 & RST != 0)
                && !accepted_meanwhile;
            let last_refusal = refusals.iter().map(|c| c.last_ts).max().unwrap_or(end_of_cluster);
            let back = conns
                .iter()
                .filter(|c| c.server_synack > 0 && c.first_ts > end_of_cluster.max(last_refusal))
                .min_by_key(|c| c.first_ts);
            let later_attempts = conns.iter().any(|c| c.client_syn > 0 && c.first_ts > end_of_cluster);
            let up = back.and_then(|c| {
                packets(c)
                    .into_iter()
                    .find(|p| p.side == Side::Server && p.flags & SYN != 0)
                    .map(|p| (p.ts, p.frame, *c))
            });
            // One connection reset or closed, then used: a restart only if the server came back.
            let stale_confirms = stale && (cluster.len() >= 2 || up.is_some());
            if refusals.is_empty() && !stale_confirms && !all_closed {
                continue;
            }

            let mut ev: Vec<EvidenceRef> = Vec::new();
            let mut involved: Vec<&Connection> = Vec::new();
            for e in cluster {
                ev.extend(evidence(e.3, [e.1]));
                involved.push(e.3);
                if e.2 & RST != 0 {
                    claims.push((e.3, e.1));
                }
            }
            if let Some(r) = refusals.first() {
                ev.extend(evidence(r, packets(r).iter().map(|p| p.frame).take(2)));
            }
            involved.extend(refusals.iter().copied());
            if let Some((_, frame, c)) = up {
                ev.extend(evidence(c, [frame]));
                involved.push(c);
            }
            ev.truncate(super::MAX_EVIDENCE);

            let how = {
                let fins = cluster.iter().filter(|e| e.2 & FIN != 0).count();
                let rsts = cluster.len() - fins;
                match (fins, rsts) {
                    (f, 0) => format!("closed {f} connection{} (FIN)", if f == 1 { "" } else { "s" }),
                    (0, r) => format!("reset {r} connection{}", if r == 1 { "" } else { "s" }),
                    (f, r) => format!("closed {f} and reset {r} connections"),
                }
            };
            let mut summary = if refusals.is_empty() && up.is_none() {
                format!("Server {server} stopped or aborted its connections at {}: it {how} at once", when(start))
            } else {
                format!("Server {server} went down at {}: it {how}", when(start))
            };
            if !refusals.is_empty() {
                summary.push_str(&format!(
                    ", then refused {} connection attempt{}",
                    refusals.len(),
                    if refusals.len() == 1 { "" } else { "s" }
                ));
            }
            if stale {
                summary.push_str(", and a client kept sending on a closed connection");
            }
            match up {
                Some((t, _, _)) => summary.push_str(&format!(
                    "; it accepted connections again at {} ({} later).",
                    when(t),
                    secs(t.saturating_sub(start))
                )),
                None if later_attempts => {
                    summary.push_str("; it did not accept a connection again before the capture ended.")
                }
                None => summary.push_str(
                    "; no connection was attempted afterwards, so the capture cannot tell whether it came back.",
                ),
            }
            let last = up.map(|u| u.0).unwrap_or(end_of_cluster.max(last_refusal));
            // Only a confirmed outage is an error: refusals, or the server back; a server that
            // aborted all its connections with nobody trying again may be a deliberate close.
            let severity = if refusals.is_empty() && up.is_none() { Severity::Warning } else { Severity::Error };
            ctx.restarts.push(Restart { server, down: start, up: up.map(|u| u.0) });
            out.push(finding(
                FindingKind::ServerRestart,
                severity,
                &involved,
                start,
                last,
                cluster.len() as u64,
                ev,
                summary,
                ADVICE,
            ));
        }
    }
    for (c, frame) in claims {
        ctx.claim(c, frame, FindingKind::ServerRestart);
    }
    out
}
