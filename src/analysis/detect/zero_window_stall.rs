//! `zero_window_stall` — rule: one side advertises a zero receive window and keeps it closed for
//! more than `STALL_NS` while the other side probes (zero-window probes, or keep-alives answered
//! with window 0): the receiving application stopped reading (hung thread, deadlock, blocked on
//! something else), its buffer filled, and the sender cannot send. Warning; error when the window
//! never reopens before the connection ends (reset, closed, or the capture ends after
//! `DEAD_NS` of stall): the peer is dead to this connection. A window that reopens within
//! `STALL_NS` is ordinary flow control (no finding).
//! Evidence: the first zero window, the first and last probes, the reopening or the end.
//! Advice: look at the receiving process at that moment (thread dump, hung UI thread, blocking
//! call in the read loop).

use super::{endpoint_of, evidence, finding, packets, secs, when, Context};
use crate::model::analysis_flags as af;
use crate::model::tcp_flags::{FIN, RST, SYN};
use crate::model::FindingKind;
use crate::model::{Connection, Finding, PacketNote, Severity, UtcNs};

/// A zero window shorter than this is flow control.
pub const STALL_NS: i64 = 2 * 1_000_000_000;
/// A stall this long that never reopened is a dead peer even without a reset.
pub const DEAD_NS: i64 = 20 * 1_000_000_000;

pub const ADVICE: &str = "The receiver's window stayed at zero: its application stopped reading from the socket \
(hung or deadlocked thread, a read loop blocked on something else, a process suspended), its receive buffer \
filled and the sender could only probe. Look at the receiving process at that time (thread dump, CPU, a \
blocking call in the read path); the sender's send() blocks or times out. A window that reopens after a \
while is a slow reader; one that never reopens is a hung peer — the sender should time out and reconnect.";

struct Stall {
    first_zero: PacketNote,
    probes: Vec<PacketNote>,
    reopened: Option<PacketNote>,
    end: UtcNs,
    died: Option<PacketNote>,
}

fn is_zero_window(p: &PacketNote) -> bool {
    p.window == 0 && p.flags & (RST | SYN) == 0
}

fn longest_stall(c: &Connection) -> Option<Stall> {
    // Nearly every connection has no zero window: answer without building its packet list. An
    // uneventful connection (landmarks only, windows not kept) had none by definition.
    if !c.notes_complete() || !c.packets().any(|p| is_zero_window(&p)) {
        return None;
    }
    let ps = packets(c);
    let mut best: Option<Stall> = None;
    let mut i = 0;
    while i < ps.len() {
        if !is_zero_window(&ps[i]) {
            i += 1;
            continue;
        }
        let z = ps[i];
        let receiver = z.side;
        let mut probes = Vec::new();
        let mut reopened = None;
        let mut died = None;
        let mut j = i + 1;
        while j < ps.len() {
            let p = ps[j];
            if p.side == receiver && p.flags & (RST | FIN) == 0 && p.window > 0 {
                reopened = Some(p);
                break;
            }
            if p.flags & (RST | FIN) != 0 {
                died = Some(p);
                break;
            }
            if p.side != receiver && (p.analysis & (af::ZERO_WINDOW_PROBE | af::KEEP_ALIVE) != 0 || p.payload_len <= 1)
            {
                probes.push(p);
            }
            j += 1;
        }
        let end = reopened.or(died).map(|p| p.ts).unwrap_or(c.last_ts);
        let s = Stall { first_zero: z, probes, reopened, end, died };
        if best.as_ref().is_none_or(|b| end.saturating_sub(z.ts) > b.end.saturating_sub(b.first_zero.ts)) {
            best = Some(s);
        }
        i = j.max(i + 1);
    }
    best
}

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut out = Vec::new();
    for c in &a.connections {
        let Some(s) = longest_stall(c) else { continue };
        let dur = s.end.saturating_sub(s.first_zero.ts);
        if dur < STALL_NS || s.probes.is_empty() {
            continue;
        }
        let receiver = endpoint_of(c, s.first_zero.side);
        let sender = endpoint_of(c, s.first_zero.side.other());
        let dead = s.reopened.is_none() && (s.died.is_some() || dur >= DEAD_NS);
        let mut frames = vec![s.first_zero.frame];
        frames.extend(s.probes.first().map(|p| p.frame));
        frames.extend(s.probes.last().map(|p| p.frame));
        frames.extend(s.reopened.or(s.died).map(|p| p.frame));
        if let Some(d) = s.died {
            if d.flags & RST != 0 {
                ctx.claim(c, d.frame, FindingKind::ZeroWindowStall);
            }
        }
        let outcome = match (s.reopened, s.died) {
            (Some(r), _) => format!("it reopened at {} (frame {}): a slow reader", when(r.ts), r.frame),
            (None, Some(d)) => format!(
                "the connection then ended ({} from the {}, frame {}) without the window reopening",
                if d.flags & RST != 0 { "RST" } else { "FIN" },
                d.side.name(),
                d.frame
            ),
            (None, None) => String::from("it never reopened before the capture ended: the receiver is hung"),
        };
        let summary = format!(
            "{receiver} advertised a zero window from {} (frame {}) for {} while {sender} probed {} time{}; {outcome}. The receiving application stopped reading.",
            when(s.first_zero.ts),
            s.first_zero.frame,
            secs(dur),
            s.probes.len(),
            if s.probes.len() == 1 { "" } else { "s" },
        );
        let severity = if dead { Severity::Error } else { Severity::Warning };
        out.push(finding(
            FindingKind::ZeroWindowStall,
            severity,
            &[c],
            s.first_zero.ts,
            s.end,
            s.probes.len() as u64,
            evidence(c, frames),
            summary,
            ADVICE,
        ));
    }
    out
}
