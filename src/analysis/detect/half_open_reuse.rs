//! `half_open_reuse` — rule: a client's SYN is answered not by SYN/ACK but by a bare ACK whose
//! acknowledgment number is not the SYN's sequence + 1 (RFC 5961 §4 challenge ACK: the server
//! still holds an older connection on the same 4-tuple), the client resets that old connection
//! (RST with the sequence the ACK asked for), and then retries its SYN. The client lost its
//! state (reboot, crash, a NAT or firewall that forgot the flow) while the server kept the old
//! connection half-open: the server side of the seed's incident. Warning: the retry usually
//! succeeds after one SYN timeout (1–3 s of delay); the server's application held a dead
//! connection until then. Evidence: the SYN, the challenge ACK, the client's RST, the SYN retry.

use std::collections::BTreeMap;

use super::{evidence, finding, packets, when, Context};
use crate::model::tcp_flags::{ACK, RST, SYN};
use crate::model::FindingKind;
use crate::model::{Connection, Endpoint, Finding, PacketNote, Severity, Side};

pub const ADVICE: &str = "The server still held an old connection on the same address and ports when the client \
connected again, so it answered the new SYN with an ACK for the old connection (a challenge ACK, RFC 5961); the \
client reset the old connection and retried, losing a SYN timeout. The client had lost its state (restart, \
crash, sleep, a NAT/firewall flow timeout) without closing, and the server never noticed: enable TCP \
keep-alive on the server's sockets (SO_KEEPALIVE, KeepAliveTime) or an application heartbeat so it drops \
dead peers, and make clients close connections on shutdown.";

struct Reuse<'a> {
    conn: &'a Connection,
    syn: PacketNote,
    challenge: PacketNote,
    rst: PacketNote,
    retry: Option<PacketNote>,
}

fn find<'a>(ctx: &Context, c: &'a Connection) -> Option<Reuse<'a>> {
    let ps = packets(c);
    let is_syn = |p: &PacketNote| p.side == Side::Client && p.flags & (SYN | ACK | RST) == SYN;
    for (i, syn) in ps.iter().enumerate().filter(|(_, p)| is_syn(p)) {
        let mut rest = ps[i + 1..].iter();
        let Some(challenge) = rest.find(|p| p.side == Side::Server) else { continue };
        if challenge.flags & (SYN | RST | ACK) != ACK || challenge.ack == syn.seq.wrapping_add(1) {
            continue;
        }
        let Some(rst) = ps[i + 1..].iter().find(|p| p.side == Side::Client && p.frame > challenge.frame) else {
            continue;
        };
        if rst.flags & RST == 0 || ctx.is_claimed(c, rst.frame) {
            continue;
        }
        // The retry completes the pattern: without it the client may have given up for another
        // reason (a reset injected by a middlebox looks the same up to here).
        let retry = ps.iter().find(|p| is_syn(p) && p.frame > rst.frame).copied();
        if retry.is_some() {
            return Some(Reuse { conn: c, syn: *syn, challenge: *challenge, rst: *rst, retry });
        }
    }
    None
}

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut per_server: BTreeMap<(u32, Endpoint), Vec<Reuse>> = BTreeMap::new();
    for c in a.connections.iter().filter(|c| c.client_rst > 0 && c.client_syn > 0) {
        if let Some(r) = find(ctx, c) {
            per_server.entry((c.input, c.server)).or_default().push(r);
        }
    }
    let mut out = Vec::new();
    for ((_, server), group) in per_server {
        let conns: Vec<&Connection> = group.iter().map(|r| r.conn).collect();
        let mut ev = Vec::new();
        for r in &group {
            ctx.claim(r.conn, r.rst.frame, FindingKind::HalfOpenReuse);
            let frames = [r.syn.frame, r.challenge.frame, r.rst.frame].into_iter().chain(r.retry.map(|p| p.frame));
            ev.extend(evidence(r.conn, frames));
        }
        let r = &group[0];
        let retried = group.iter().filter(|r| r.retry.is_some()).count();
        let mut summary = format!(
            "{server} answered the SYN of {} at {} (frame {}) with an ACK for an older connection on the same ports (challenge ACK, frame {}): it still held a connection the client had lost; the client reset it (frame {})",
            r.conn.client,
            when(r.syn.ts),
            r.syn.frame,
            r.challenge.frame,
            r.rst.frame
        );
        match r.retry {
            Some(p) => summary.push_str(&format!(" and retried its SYN at {} (frame {}).", when(p.ts), p.frame)),
            None => summary.push('.'),
        }
        if group.len() > 1 {
            summary.push_str(&format!(
                " {} connection attempts met a half-open connection this way ({retried} retried).",
                group.len()
            ));
        }
        let first = group.iter().map(|r| r.syn.ts).min().unwrap_or(0);
        let last = group.iter().map(|r| r.retry.unwrap_or(r.rst).ts).max().unwrap_or(first);
        out.push(finding(
            FindingKind::HalfOpenReuse,
            Severity::Warning,
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
