//! `closed_before_reply` — rule: one side closed (FIN) while the other side's data was still on
//! its way: either it had just sent a request that was not answered yet, or the other side was
//! streaming to it; the data that arrives milliseconds after the FIN is answered by RST because
//! the closing application no longer reads (closesocket() with data arriving). Zeek calls the
//! pattern a reset after a half-close. This is not a stale connection: nobody reused a dead
//! connection after idle time — the reply was in flight when the closer gave up on it.
//! Conditions: the answered data comes less than `IN_FLIGHT_NS` after the closer's FIN, and
//! before the FIN the closer's own data was the last unanswered one (a request awaiting its
//! reply) or the other side had been sending within `IN_FLIGHT_NS` of the FIN. When the closer is
//! the server, the data must also have been sent before the client's stack saw the FIN (its ack
//! does not cover the FIN): a client that keeps sending new requests on a connection its server
//! closed is a `stale_connection`.
//! Grouped per client host, server endpoint and closing side. Severity info: the closer chose to
//! stop reading (UPnP NOTIFY senders, SSH clients quitting, probes); the sender's application may
//! see WSAECONNRESET 10054 for its last write. Evidence: the FIN, the in-flight data, the RST.

use std::collections::BTreeMap;

use super::{endpoint_of, evidence, finding, packets, secs, Context};
use crate::model::tcp_flags::{ACK, FIN, RST};
use crate::model::FindingKind;
use crate::model::{Connection, EvidenceRef, Finding, PacketNote, Severity, Side};

/// Data arriving this soon after the FIN was already in flight (or produced before the FIN was seen).
pub const IN_FLIGHT_NS: i64 = 2 * 1_000_000_000;

pub const ADVICE: &str = "The closing side shut the connection while the other side's reply was still on its \
way, and its TCP stack reset the data that arrived after the close (closesocket() with unread data). Usually \
harmless (a fire-and-forget request, a client quitting a session), but the sender loses its last write and \
may log WSAECONNRESET 10054. If the reply matters, read until the peer's FIN (recv() returning 0) before \
closing; if it does not, the sender should ignore resets after its final write.";

pub struct Early<'a> {
    pub conn: &'a Connection,
    pub fin: PacketNote,
    pub data: PacketNote,
    pub rst: PacketNote,
}

/// The in-flight-reply pattern on one connection, if any (first unclaimed RST only).
pub fn find_early<'a>(ctx: &Context, c: &'a Connection) -> Option<Early<'a>> {
    let ps = packets(c);
    for (ri, rst) in ps.iter().enumerate() {
        if rst.flags & RST == 0 || ctx.is_claimed(c, rst.frame) {
            continue;
        }
        let closer = rst.side;
        let other = closer.other();
        let Some(di) = (0..ri).rev().find(|&i| ps[i].side == other && ps[i].payload_len > 0) else {
            continue;
        };
        let data = ps[di];
        let Some(fi) = ps[..di].iter().position(|p| p.side == closer && p.flags & FIN != 0) else {
            continue;
        };
        let fin = ps[fi];
        if data.ts.saturating_sub(fin.ts) > IN_FLIGHT_NS {
            continue;
        }
        if ps[..fi].iter().any(|p| p.side == other && p.flags & FIN != 0) {
            continue; // both closed before the data: another story
        }
        // A server that closed (crashed, restarted) while its client kept sending new data, sent after
        // the client's stack had acknowledged the FIN, is the seed's stale connection, not an early close.
        let fin_end = fin.seq.wrapping_add(fin.payload_len).wrapping_add(1);
        let sent_unaware_of_fin = data.flags & ACK == 0 || (fin_end.wrapping_sub(data.ack) as i32) > 0;
        if closer == Side::Server && !sent_unaware_of_fin {
            continue;
        }
        let last_closer_data = ps[..fi].iter().rposition(|p| p.side == closer && p.payload_len > 0);
        let last_other_data = ps[..fi].iter().rposition(|p| p.side == other && p.payload_len > 0);
        let request_pending = match (last_closer_data, last_other_data) {
            (Some(q), Some(r)) => q > r,
            (Some(_), None) => true,
            _ => false,
        };
        let streaming = last_other_data.is_some_and(|r| fin.ts.saturating_sub(ps[r].ts) <= IN_FLIGHT_NS);
        if request_pending || streaming {
            return Some(Early { conn: c, fin, data, rst: *rst });
        }
    }
    None
}

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut groups: BTreeMap<_, Vec<Early>> = BTreeMap::new();
    for c in a.connections.iter().filter(|c| c.client_rst + c.server_rst > 0) {
        if let Some(e) = find_early(ctx, c) {
            groups.entry((c.input, c.client.ip, c.server, e.rst.side == Side::Client)).or_default().push(e);
        }
    }
    let mut out = Vec::new();
    for ((_, _, server, by_client), group) in groups {
        let closer = if by_client { Side::Client } else { Side::Server };
        let conns: Vec<&Connection> = group.iter().map(|e| e.conn).collect();
        let mut ev: Vec<EvidenceRef> = Vec::new();
        for e in &group {
            // Every reset of the connection after the FIN belongs to the same close.
            for p in packets(e.conn) {
                if p.flags & RST != 0 && p.side == closer && p.ts >= e.fin.ts {
                    ctx.claim(e.conn, p.frame, FindingKind::ClosedBeforeReply);
                }
            }
            ev.extend(evidence(e.conn, [e.fin.frame, e.data.frame, e.rst.frame]));
        }
        let first = group.iter().map(|e| e.fin.ts).min().unwrap_or(0);
        let last = group.iter().map(|e| e.rst.ts).max().unwrap_or(first);
        let e = &group[0];
        let closer_name = if closer == Side::Client { "Client" } else { "Server" };
        let closer_ep = if group.len() == 1 {
            endpoint_of(e.conn, closer).to_string()
        } else if closer == Side::Client {
            e.conn.client.ip.to_string()
        } else {
            server.to_string()
        };
        let peer = if closer == Side::Client { server.to_string() } else { e.conn.client.ip.to_string() };
        let mut summary = format!(
            "{closer_name} {closer_ep} closed before reading the reply: it sent FIN (frame {}) while {peer}'s data was in flight; the {} bytes arriving {} later (frame {}) were answered by RST (frame {}).",
            e.fin.frame,
            e.data.payload_len,
            secs(e.data.ts.saturating_sub(e.fin.ts)),
            e.data.frame,
            e.rst.frame
        );
        if group.len() > 1 {
            summary.push_str(&format!(" {} connections ended this way.", group.len()));
        }
        out.push(finding(
            FindingKind::ClosedBeforeReply,
            Severity::Info,
            &conns,
            first,
            last,
            group.len() as u64,
            ev,
            summary,
            ADVICE,
        ));
    }
    out
}
