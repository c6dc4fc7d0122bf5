//! `stale_connection` — the seed case. Rule: the peer had closed the connection (its FIN was
//! seen), or had restarted while the connection sat idle, and the local side kept using it: its
//! next data is answered by the peer's RST (the local application sees WSAECONNRESET 10054).
//! Evidence: the peer's FIN (if seen), the data that hit the dead connection, the RST.
//! Advice: detect closes, validate pooled connections, retry once on a fresh connection.

use super::connection_refused::refused;
use super::{bursts, endpoint_of, evidence, finding, packets, secs, when, Context};
use crate::model::tcp_flags::{FIN, RST};
use crate::model::FindingKind;
use crate::model::{Connection, EvidenceRef, Finding, PacketNote, Severity, Side, UtcNs};

/// Data answered by a RST more than this later is not taken as the cause.
const ANSWER_NS: i64 = 10 * 1_000_000_000;
/// This many connections reset within one second are reported as one finding.
const GROUP_FROM: usize = 5;

pub const ADVICE: &str = "The connection was already dead when it was used: the peer had closed it (FIN) or \
restarted, and the local side sent on it anyway, so the peer's TCP stack answered with RST and the \
application got WSAECONNRESET 10054 on send() or the next recv(). Make the client notice the close (a pending \
recv() returning 0, FD_CLOSE, EPOLLRDHUP) and drop the connection; validate pooled connections before reuse; \
retry an idempotent request once on a fresh connection after 10054. Fix the reason the peer closed (see \
server_restart). This is not an abortive close (SO_LINGER): the peer's reset answers data sent after its close.";

struct Stale<'a> {
    conn: &'a Connection,
    fin: Option<PacketNote>,
    data: PacketNote,
    rst: PacketNote,
    idle_since: Option<UtcNs>,
    restart_at: Option<UtcNs>,
}

fn find_stale<'a>(ctx: &Context, c: &'a Connection) -> Option<Stale<'a>> {
    let ps = packets(c);
    for (ri, rst) in ps.iter().enumerate() {
        if rst.flags & RST == 0 || ctx.is_claimed(c, rst.frame) {
            continue;
        }
        let peer = rst.side;
        let local = peer.other();
        // The last data from the local side before the reset.
        let Some(di) = (0..ri).rev().find(|&i| ps[i].side == local && ps[i].payload_len > 0) else {
            continue;
        };
        let data = ps[di];
        if rst.ts.saturating_sub(data.ts) > ANSWER_NS {
            continue;
        }
        let local_fin_before = ps[..di].iter().any(|p| p.side == local && p.flags & FIN != 0);
        let peer_fin = ps[..di].iter().find(|p| p.side == peer && p.flags & FIN != 0);
        if let Some(fin) = peer_fin {
            if !local_fin_before {
                return Some(Stale { conn: c, fin: Some(*fin), data, rst: *rst, idle_since: None, restart_at: None });
            }
        }
        // No FIN: the peer restarted while the connection was idle.
        let prev = if di > 0 { ps[di - 1].ts } else { c.first_ts };
        let peer_ep = endpoint_of(c, peer);
        if let Some(r) = ctx.restarts.iter().find(|r| r.server == peer_ep && r.down > prev && r.down <= data.ts) {
            return Some(Stale {
                conn: c,
                fin: None,
                data,
                rst: *rst,
                idle_since: Some(prev),
                restart_at: Some(r.down),
            });
        }
    }
    None
}

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut found: Vec<Stale> = a
        .connections
        .iter()
        .filter(|c| c.client_rst + c.server_rst > 0 && !refused(c))
        .filter_map(|c| find_stale(ctx, c))
        .collect();
    found.sort_by_key(|s| (s.conn.server, s.rst.ts));
    let mut out = Vec::new();
    // One finding per server endpoint and moment (resets within 1 s of each other).
    let mut groups: Vec<Vec<Stale>> = Vec::new();
    for s in found {
        match groups.last_mut() {
            Some(g) if g[0].conn.server == s.conn.server && g[0].conn.input == s.conn.input => g.push(s),
            _ => groups.push(vec![s]),
        }
    }
    for group in groups {
        for burst in bursts(group, |s| s.rst.ts, 1_000_000_000) {
            for s in &burst {
                ctx.claim(s.conn, s.rst.frame, FindingKind::StaleConnection);
            }
            // A few connections are reported one by one (each matches one application error);
            // a mass of them at one moment becomes one finding.
            if burst.len() < GROUP_FROM {
                out.extend(burst.iter().map(|s| report(std::slice::from_ref(s))));
            } else {
                out.push(report(&burst));
            }
        }
    }
    out
}

fn report(burst: &[Stale]) -> Finding {
    let conns: Vec<&Connection> = burst.iter().map(|s| s.conn).collect();
    let mut ev: Vec<EvidenceRef> = Vec::new();
    for s in burst {
        ev.extend(evidence(s.conn, s.fin.map(|f| f.frame).into_iter().chain([s.data.frame, s.rst.frame])));
    }
    // The finding's time is the send that hit the dead connection; the FIN is in the evidence.
    let first = burst.iter().map(|s| s.data.ts).min().unwrap_or(0);
    let last = burst.iter().map(|s| s.rst.ts).max().unwrap_or(first);
    let s = &burst[0];
    let local = s.rst.side.other();
    let (local_ep, peer_ep) = (endpoint_of(s.conn, local), endpoint_of(s.conn, s.rst.side));
    let local_name = if local == Side::Client { "Client" } else { "Server" };
    let why = match (s.fin, s.restart_at, s.idle_since) {
        (Some(fin), _, _) => format!("after {peer_ep} had closed it at {} (FIN, frame {})", when(fin.ts), fin.frame),
        (None, Some(r), Some(idle)) => {
            format!("which had been idle since {} across the restart of {peer_ep} at {}", when(idle), when(r))
        }
        _ => String::from("after the peer had lost it"),
    };
    let mut summary = format!(
        "{local_name} {local_ep} kept using its connection to {peer_ep} {why}: its send of {} bytes at {} (frame {}) was answered by RST {} later (frame {}); the application saw WSAECONNRESET 10054.",
        s.data.payload_len,
        when(s.data.ts),
        s.data.frame,
        secs(s.rst.ts.saturating_sub(s.data.ts)),
        s.rst.frame
    );
    if burst.len() > 1 {
        summary.push_str(&format!(" {} connections were hit the same way within a second.", burst.len()));
    }
    finding(FindingKind::StaleConnection, Severity::Error, &conns, first, last, burst.len() as u64, ev, summary, ADVICE)
}
