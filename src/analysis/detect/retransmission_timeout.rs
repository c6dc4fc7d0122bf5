//! `retransmission_timeout` — rule: at the end of a connection one side retransmits the same data
//! three or more times (Wireshark tcp.analysis.retransmission) and the other side sends nothing at
//! all meanwhile, until the sender gives up with RST or the capture ends: the peer became
//! unreachable or vanished mid-transfer. The sender's application sees WSAECONNABORTED 10053 or
//! WSAETIMEDOUT 10060. Evidence: the first retransmissions and the final reset.

use super::{endpoint_of, evidence, finding, packets, secs, when, Context};
use crate::model::analysis_flags as af;
use crate::model::tcp_flags::RST;
use crate::model::FindingKind;
use crate::model::{Finding, Severity};

const MIN_RETRANSMISSIONS: usize = 3;

pub const ADVICE: &str = "The sender kept retransmitting unacknowledged data with growing back-off and heard \
nothing back, then gave up: the peer host went away (crash, power, cable, Wi-Fi, VPN drop) or the path \
silently dropped its packets (firewall, routing). The sender's application gets WSAECONNABORTED 10053 or \
WSAETIMEDOUT 10060 (TcpMaxDataRetransmissions, 5 by default on Windows). Check the peer host and the network \
path at that time; this is not caused by either application's close.";

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut out = Vec::new();
    let mut claims = Vec::new();
    for c in a.connections.iter().filter(|c| c.retransmissions as usize >= MIN_RETRANSMISSIONS) {
        let ps = packets(c);
        let Some(last) = ps.last() else { continue };
        let sender = if last.flags & RST != 0 {
            last.side
        } else {
            ps.iter().rev().find(|p| p.payload_len > 0).map(|p| p.side).unwrap_or(last.side)
        };
        // The trailing run in which only `sender` speaks.
        let start = ps.iter().rposition(|p| p.side != sender).map(|i| i + 1).unwrap_or(0);
        let run = &ps[start..];
        // Data retransmissions only: retried SYNs are connect_timeout's.
        let rexmits: Vec<_> =
            run.iter().filter(|p| p.analysis & af::RETRANSMISSION != 0 && p.payload_len > 0).collect();
        if rexmits.len() < MIN_RETRANSMISSIONS {
            continue;
        }
        let rst = run.iter().find(|p| p.flags & RST != 0);
        if let Some(r) = rst {
            if ctx.is_claimed(c, r.frame) {
                continue;
            }
            claims.push((c, r.frame));
        }
        let from = endpoint_of(c, sender);
        let to = endpoint_of(c, sender.other());
        let first = rexmits[0].ts;
        let end = rst.map(|r| r.ts).unwrap_or(last.ts);
        let tail = match rst {
            Some(r) => format!("then it gave up and reset the connection at {} (frame {})", when(r.ts), r.frame),
            None => "until the capture ends".to_string(),
        };
        let summary = format!(
            "{from} retransmitted unacknowledged data {} times over {} from {} and {to} sent nothing back; {tail}.",
            rexmits.len(),
            secs(end - first),
            when(first)
        );
        let mut frames: Vec<u64> = rexmits.iter().map(|p| p.frame).take(4).collect();
        frames.extend(rst.map(|r| r.frame));
        out.push(finding(
            FindingKind::RetransmissionTimeout,
            Severity::Error,
            &[c],
            first,
            end,
            rexmits.len() as u64,
            evidence(c, frames),
            summary,
            ADVICE,
        ));
    }
    for (c, frame) in claims {
        ctx.claim(c, frame, FindingKind::RetransmissionTimeout);
    }
    out
}
