//! `idle_reset` — rule: an established connection sits idle for at least 2 s and then a reset
//! ends it: either an unsolicited RST from the server side arrives after the idle period, or the
//! first data sent after it is answered by RST — with no FIN before and no restart of the peer
//! seen. (A client resetting its own idle connection is its choice: see abortive_close.) Typical of a
//! firewall, NAT or load balancer whose idle timeout dropped the flow, or of a peer host that
//! restarted without closing. Evidence: the last packet before the idle period, the data after it
//! (if any), the RST.

use super::connection_refused::refused;
use super::{endpoint_of, evidence, finding, packets, secs, was_established, when, Context};
use crate::model::tcp_flags::{FIN, RST};
use crate::model::FindingKind;
use crate::model::{Finding, Severity, Side};

/// Longer than any pause inside an exchange (an abortive close follows its data within
/// milliseconds), far shorter than real idle timeouts (minutes).
pub const IDLE_MIN_NS: i64 = 2 * 1_000_000_000;

pub const ADVICE: &str = "The connection was reset after it had been idle, with no close and no restart of \
the peer in the capture: something between or at the peers forgot the flow while nothing was sent (firewall, \
NAT or load-balancer idle timeout; the peer host restarted without closing). The application sees \
WSAECONNRESET 10054 on its next call. Enable TCP keep-alive (SO_KEEPALIVE, SIO_KEEPALIVE_VALS) with an \
interval shorter than the middlebox's idle timeout, or close idle pooled connections before that timeout; \
compare with a capture on the peer's side to see who sent the reset.";

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut out = Vec::new();
    let mut claims = Vec::new();
    for c in a.connections.iter().filter(|c| c.client_rst + c.server_rst > 0 && was_established(c) && !refused(c)) {
        let ps = packets(c);
        for (ri, rst) in ps.iter().enumerate() {
            if rst.flags & RST == 0 || ri == 0 || ctx.is_claimed(c, rst.frame) {
                continue;
            }
            if ps[..ri].iter().any(|p| p.flags & (FIN | RST) != 0) {
                break; // already closing: not an idle reset
            }
            let prev = ps[ri - 1];
            let (idle_from, idle_to, data) =
                if rst.ts.saturating_sub(prev.ts) >= IDLE_MIN_NS && rst.side == Side::Server {
                    (prev, *rst, None)
                } else if prev.side != rst.side
                    && prev.payload_len > 0
                    && ri >= 2
                    && prev.ts.saturating_sub(ps[ri - 2].ts) >= IDLE_MIN_NS
                {
                    (ps[ri - 2], prev, Some(prev))
                } else {
                    continue;
                };
            claims.push((c, rst.frame));
            let sender = endpoint_of(c, rst.side);
            let other = endpoint_of(c, rst.side.other());
            let idle = idle_to.ts.saturating_sub(idle_from.ts);
            let summary = match data {
                None => format!(
                    "The connection {other} ↔ {sender} was idle for {} (since {}) and then reset by {sender} at {} (frame {}) without any close.",
                    secs(idle),
                    when(idle_from.ts),
                    when(rst.ts),
                    rst.frame
                ),
                Some(d) => format!(
                    "After {} idle, {other} sent {} bytes at {} (frame {}) and {sender} answered with RST (frame {}): the connection was gone while idle; the application saw WSAECONNRESET 10054.",
                    secs(idle),
                    d.payload_len,
                    when(d.ts),
                    d.frame,
                    rst.frame
                ),
            };
            let frames = [Some(idle_from.frame), data.map(|d| d.frame), Some(rst.frame)];
            out.push(finding(
                FindingKind::IdleReset,
                Severity::Warning,
                &[c],
                idle_to.ts,
                rst.ts,
                1,
                evidence(c, frames.into_iter().flatten()),
                summary,
                ADVICE,
            ));
            break;
        }
    }
    for (c, frame) in claims {
        ctx.claim(c, frame, FindingKind::IdleReset);
    }
    out
}
