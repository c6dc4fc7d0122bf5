//! Keep-alive findings.
//!
//! `keepalive_reset` — rule: a keep-alive probe (Wireshark's tcp.analysis.keep_alive: 0 or 1 byte
//! at seq = next-1) is answered by RST: the peer no longer has the connection (it crashed or
//! rebooted, or a firewall/NAT dropped the state). Evidence: the probe and the RST.
//!
//! `keepalive_timeout` — rule: at the end of a connection, two or more keep-alive probes from one
//! side get no answer at all from the other side, until the prober gives up (its RST, or nothing
//! more) or the capture ends: the peer is unreachable or gone without a trace. Evidence: the probes
//! and the prober's final RST. The application sees WSAETIMEDOUT 10060 / WSAECONNABORTED 10053
//! (Windows) or ETIMEDOUT on its next operation.

use super::{endpoint_of, evidence, finding, packets, secs, when, Context};
use crate::model::analysis_flags as af;
use crate::model::tcp_flags::RST;
use crate::model::FindingKind;
use crate::model::{Finding, Severity};

pub const RESET_ADVICE: &str = "The peer answered a keep-alive probe with RST: it no longer knew this \
connection, so it lost its state while the connection was idle (process or host restart, or a firewall/NAT \
that dropped the flow and now rejects it). Keep-alive did its job and found the dead connection; the \
application sees WSAECONNRESET 10054 (or WSAENETRESET 10052) on its next call and must reconnect. If a \
middlebox drops idle flows, make the keep-alive interval shorter than its idle timeout.";

pub const TIMEOUT_ADVICE: &str = "Keep-alive probes went unanswered until the prober gave up: the peer became \
unreachable (host down, cable or route lost, firewall silently dropping) without closing the connection. The \
application sees WSAETIMEDOUT 10060 or WSAECONNABORTED 10053 on its next call. Check the peer host and the \
path between them at that time; if this is expected (e.g. failover), reconnect on that error. On Windows \
the defaults are 2 hours idle and 1 s between probes (KeepAliveTime / KeepAliveInterval, SIO_KEEPALIVE_VALS).";

pub fn detect_reset(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut out = Vec::new();
    let mut claims = Vec::new();
    for c in a.connections.iter().filter(|c| c.keep_alive > 0 && c.client_rst + c.server_rst > 0) {
        let ps = packets(c);
        for (i, probe) in ps.iter().enumerate() {
            if probe.analysis & af::KEEP_ALIVE == 0 {
                continue;
            }
            // The first packet the other side sends after the probe.
            let Some(answer) = ps[i + 1..].iter().find(|p| p.side != probe.side) else { continue };
            if answer.flags & RST == 0 || ctx.is_claimed(c, answer.frame) {
                continue;
            }
            claims.push((c, answer.frame));
            let prober = endpoint_of(c, probe.side);
            let peer = endpoint_of(c, answer.side);
            let summary = format!(
                "{prober}'s keep-alive probe at {} (frame {}) was answered by RST from {peer} {} later (frame {}): {peer} had lost the connection while it was idle (since {}).",
                when(probe.ts),
                probe.frame,
                secs(answer.ts.saturating_sub(probe.ts)),
                answer.frame,
                when(ps[..i].iter().rev().find(|p| p.analysis & af::KEEP_ALIVE == 0).map(|p| p.ts).unwrap_or(c.first_ts))
            );
            out.push(finding(
                FindingKind::KeepaliveReset,
                Severity::Error,
                &[c],
                probe.ts,
                answer.ts,
                1,
                evidence(c, [probe.frame, answer.frame]),
                summary,
                RESET_ADVICE,
            ));
            break;
        }
    }
    for (c, frame) in claims {
        ctx.claim(c, frame, FindingKind::KeepaliveReset);
    }
    out
}

pub fn detect_timeout(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut out = Vec::new();
    let mut claims = Vec::new();
    for c in a.connections.iter().filter(|c| c.keep_alive >= 2) {
        let ps = packets(c);
        // The first probe of the final run of probes that nothing from the other side follows.
        let Some(first_idx) = ps.iter().position(|p| p.analysis & af::KEEP_ALIVE != 0) else {
            continue;
        };
        let mut start = None;
        for i in first_idx..ps.len() {
            let p = ps[i];
            if p.analysis & af::KEEP_ALIVE != 0 && start.is_none() {
                start = Some(i);
            } else if let Some(s) = start {
                if p.side != ps[s].side {
                    start = None; // answered
                }
            }
        }
        let Some(s) = start else { continue };
        let prober = ps[s].side;
        let probes: Vec<_> = ps[s..].iter().filter(|p| p.side == prober && p.analysis & af::KEEP_ALIVE != 0).collect();
        if probes.len() < 2 {
            continue;
        }
        let final_rst = ps[s..].iter().find(|p| p.side == prober && p.flags & RST != 0);
        if let Some(r) = final_rst {
            if ctx.is_claimed(c, r.frame) {
                continue;
            }
            claims.push((c, r.frame));
        }
        let first = probes[0].ts;
        let last = final_rst.map(|r| r.ts).unwrap_or(probes[probes.len() - 1].ts);
        let prober_ep = endpoint_of(c, prober);
        let peer_ep = endpoint_of(c, prober.other());
        let end = match final_rst {
            Some(r) => {
                format!("then {prober_ep} gave up and reset the connection at {} (frame {})", when(r.ts), r.frame)
            }
            None => "and the capture shows no answer until it ends".to_string(),
        };
        let summary = format!(
            "{} keep-alive probes from {prober_ep} to {peer_ep} between {} and {} got no answer; {end}. The application sees WSAETIMEDOUT 10060.",
            probes.len(),
            when(first),
            when(probes[probes.len() - 1].ts),
        );
        let mut frames: Vec<u64> = probes.iter().map(|p| p.frame).take(4).collect();
        frames.extend(final_rst.map(|r| r.frame));
        out.push(finding(
            FindingKind::KeepaliveTimeout,
            Severity::Error,
            &[c],
            first,
            last,
            probes.len() as u64,
            evidence(c, frames),
            summary,
            TIMEOUT_ADVICE,
        ));
    }
    for (c, frame) in claims {
        ctx.claim(c, frame, FindingKind::KeepaliveTimeout);
    }
    out
}
