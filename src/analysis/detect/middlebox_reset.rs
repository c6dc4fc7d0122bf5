//! `middlebox_reset` — rule: in a connection captured at both ends (clocks aligned, each capture's
//! end known), a RST reaches one end in the name of the peer, and the capture at the peer's end,
//! running at that time, shows the peer never sent it: something in between injected it (a
//! firewall or IPS whose session for the flow expired or that blocked it, a load balancer's idle
//! timeout, a NAT whose table entry was dropped). Evidence: the injected RST at the receiving end,
//! the claimed sender's last packet at its own end, and the packets the middlebox swallowed (seen
//! leaving one end, never arriving); the RST's TTL and IP ID against the real peer's packets.

use super::{cap_evidence, finding, secs, when, Context};
use crate::analysis::twosided::{SharedConnection, ViewPacket};
use crate::model::tcp_flags::RST;
use crate::model::{Connection, EvidenceRef, Finding, FindingKind, Severity, Side};

pub const ADVICE: &str = "Neither end sent this reset: a device between them did. Typical causes are a \
firewall or IPS that dropped the session (idle/session timeout, or a policy now blocking the flow), a \
load balancer's idle timeout, or a NAT whose table entry expired; the application sees WSAECONNRESET 10054 \
although its peer is alive. Find the device on the path whose hop count matches the reset's TTL, and its \
timeout; enable TCP keep-alive (SO_KEEPALIVE, SIO_KEEPALIVE_VALS) with an interval shorter than that \
timeout, or raise the timeout for this service, or close pooled connections before it expires.";

/// The hop count a TTL implies from the nearest usual initial TTL (32, 64, 128, 255).
pub fn hops(ttl: u8) -> (u8, u8) {
    let initial = [32u8, 64, 128, 255].into_iter().find(|&i| i >= ttl).unwrap_or(255);
    (initial, initial - ttl)
}

/// `TTL 64 (initial 64, 0 hops)`.
pub fn ttl_text(ttl: u8) -> String {
    let (initial, h) = hops(ttl);
    format!("TTL {ttl} (initial {initial}, {h} hop{})", if h == 1 { "" } else { "s" })
}

fn conn_of<'a>(ctx: &'a Context, s: &SharedConnection, input: u32) -> Option<&'a Connection> {
    let id = if input == s.primary_input { s.primary } else { s.view };
    ctx.analysis.connections.iter().find(|c| c.id == id)
}

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut out = Vec::new();
    for s in &a.twosided.shared {
        let rsts: Vec<&ViewPacket> = s.injected.iter().filter(|p| p.flags & RST != 0).collect();
        let Some(first) = rsts.first().copied() else { continue };
        let (Some(recv), Some(sender_end)) = (
            conn_of(ctx, s, first.input),
            conn_of(ctx, s, if first.input == s.primary_input { s.view_input } else { s.primary_input }),
        ) else {
            continue;
        };
        let primary = a.connections.iter().find(|c| c.id == s.primary).unwrap_or(recv);
        let claimed = if first.side == Side::Client { primary.client } else { primary.server };
        let victim = if first.side == Side::Client { primary.server } else { primary.client };
        // The real sender's packets as the receiving end saw them, before the reset.
        let before = a
            .twosided
            .facts
            .get(&recv.id)
            .and_then(|f| f.rsts.iter().find(|r| r.fact.frame == first.frame))
            .map(|r| r.before);
        let mut why = vec![];
        if let Some(b) = before.filter(|b| b.packets > 0) {
            if b.ttl_min == b.ttl_max {
                why.push(format!(
                    "its {} against {} on {claimed}'s own packets",
                    ttl_text(first.ttl),
                    ttl_text(b.ttl_min)
                ));
            } else {
                why.push(format!(
                    "its {} against TTL {}–{} on {claimed}'s own packets",
                    ttl_text(first.ttl),
                    b.ttl_min,
                    b.ttl_max
                ));
            }
            if let (Some(id), Some(last)) = (first.ip_id, b.id_last) {
                why.push(format!("IP ID {id} after {claimed}'s last {last}"));
            }
        }
        // What the middlebox swallowed around it: packets that left one end and never arrived.
        let swallowed: Vec<&ViewPacket> = s
            .lost
            .iter()
            .filter(|p| {
                p.ts >= first.ts.saturating_sub(2_000_000_000) && p.ts <= first.ts.saturating_add(1_000_000_000)
            })
            .collect();
        let last_real = a.twosided.facts.get(&sender_end.id).and_then(|f| {
            let client = f.first_src == sender_end.client;
            f.packets()
                .filter(|p| p.ts <= first.ts && (p.from_first == client) == (first.side == Side::Client))
                .last()
                .map(|p| (p.frame, p.ts))
        });
        let end_name = a.input_name(sender_end.input);
        let mut summary = format!(
            "{victim} received a RST in the name of {claimed} at {} ({}#{}), but the capture at {claimed}'s end ({end_name}) shows it never sent one",
            when(first.ts),
            a.input_name(first.input),
            first.frame,
        );
        if let Some((frame, ts)) = last_real {
            summary.push_str(&format!(
                " (its last packet there: frame {frame}, {} before)",
                secs(first.ts.saturating_sub(ts))
            ));
        }
        summary.push_str(": injected in between");
        if !why.is_empty() {
            summary.push_str(&format!(" — {}", why.join(", ")));
        }
        summary.push('.');
        if !swallowed.is_empty() {
            let p = swallowed[0];
            summary.push_str(&format!(
                " {} packet(s) leaving {} never reached the other end (first: {}#{}, {} bytes).",
                swallowed.len(),
                if p.side == Side::Client { primary.client } else { primary.server },
                a.input_name(p.input),
                p.frame,
                p.len
            ));
        }
        if rsts.len() > 1 {
            summary.push_str(&format!(" {} injected resets in all.", rsts.len()));
        }
        // The victim's own resets afterwards (its socket is gone; it answers the peer's late
        // packets) that the middlebox swallowed too: part of this story, not separate aborts.
        let fallout: Vec<&ViewPacket> =
            s.lost.iter().filter(|p| p.flags & RST != 0 && p.side != first.side && p.ts > first.ts).collect();
        if !fallout.is_empty() {
            summary.push_str(&format!(
                " Afterwards {} reset(s) of {victim}, answering {claimed}'s late packets, never reached {claimed} either (its end never saw a reset at all).",
                s.lost.iter().filter(|p| p.flags & RST != 0 && p.side != first.side && p.ts > first.ts).count()
            ));
        }
        let mut ev: Vec<EvidenceRef> = rsts.iter().map(|p| EvidenceRef { input: p.input, frame: p.frame }).collect();
        ev.extend(swallowed.iter().map(|p| EvidenceRef { input: p.input, frame: p.frame }));
        if let Some((frame, _)) = last_real {
            ev.push(EvidenceRef { input: sender_end.input, frame });
        }
        let conns: Vec<&Connection> = if primary.id == recv.id { vec![recv, sender_end] } else { vec![primary, recv] };
        let last_ts = rsts.iter().map(|p| p.ts).max().unwrap_or(first.ts);
        let mut f = finding(
            FindingKind::MiddleboxReset,
            Severity::Error,
            &conns,
            first.ts,
            last_ts,
            rsts.len() as u64,
            cap_evidence(ev),
            summary,
            ADVICE,
        );
        f.client = primary.client.to_string();
        f.server = primary.server.to_string();
        out.push(f);
        for p in rsts.iter().chain(fallout.iter()) {
            ctx.claimed.entry((p.input, p.frame)).or_insert(FindingKind::MiddleboxReset);
        }
    }
    out
}
