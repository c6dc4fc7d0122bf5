//! `suspected_middlebox_reset` — rule (one capture): a RST whose hop count does not fit the other
//! packets of the side it claims to come from: that side's non-reset packets (at least 3) arrived
//! with a stable TTL (spread ≤ 2) and the reset's TTL lies 2 or more outside it — another initial
//! TTL or another distance. Not when that side had already reset the connection with a reset that
//! fits (later odd resets changed nothing). The IP ID is only supporting evidence, never the rule:
//! real stacks number resets from another counter than their data (Linux sends IP ID 0 or a
//! per-destination ID for resets without a socket; Windows uses one global counter), as
//! `cs_http_espn_fail` and `zeek_ssh_version_199` show. Evidence: the reset and its claimed
//! sender's last packet before it. A capture at the other end proves it (`middlebox_reset`).

use super::{endpoint_of, evidence, finding, packets, when, Context};
use crate::analysis::twosided::facts::{ConnFacts, DirStats, RstFact};
use crate::model::tcp_flags::RST;
use crate::model::{Connection, Finding, FindingKind, Severity, Side};

use super::middlebox_reset::ttl_text;

pub const ADVICE: &str = "The reset's IP header does not look like its claimed sender's other packets, so a \
device on the path probably sent it in the sender's name: a firewall or IPS ending a session it timed out or \
blocked, a load balancer's idle timeout, a NAT whose entry expired. Capture at the other end at the same time \
to prove it (ipcscope matches the two captures and reports middlebox_reset). If confirmed, find the device \
whose hop count matches the reset's TTL and its session timeout; keep TCP keep-alive shorter than it.";

/// Largest TTL spread of a sender's packets still read as one stable path.
const TTL_SPREAD_MAX: u8 = 2;
/// How far outside that spread a reset's TTL must lie.
const TTL_GAP_MIN: u8 = 2;
/// IP ID steps (after the counter's last value) a reset of that counter can show.
const ID_STEP_TOLERATED: u16 = 4096;

/// Why this reset does not fit its sender's other packets, if it does not.
pub fn mismatch(rst: &RstFact, all: &DirStats) -> Option<String> {
    let r = &rst.fact;
    if all.packets < 3 || all.ttl_max - all.ttl_min > TTL_SPREAD_MAX {
        return None;
    }
    let below = all.ttl_min.checked_sub(r.ttl).is_some_and(|d| d >= TTL_GAP_MIN);
    let above = r.ttl.checked_sub(all.ttl_max).is_some_and(|d| d >= TTL_GAP_MIN);
    if !(below || above) {
        return None;
    }
    let theirs = if all.ttl_min == all.ttl_max {
        ttl_text(all.ttl_min)
    } else {
        format!("TTL {}–{}", all.ttl_min, all.ttl_max)
    };
    let mut why = format!(
        "the reset arrived with {} while its sender's {} other packets carry {theirs}",
        ttl_text(r.ttl),
        all.packets
    );
    let b = &rst.before;
    if let (Some(id), Some(last)) = (r.ip_id, b.id_last) {
        if id != 0 && b.ids_sequential() && id.wrapping_sub(last) > ID_STEP_TOLERATED {
            why.push_str(&format!(
                ", and its IP ID {id} is off the sender's counter ({} packets counting up to {last})",
                b.ids_nonzero
            ));
        }
    }
    Some(why)
}

fn sender_side(c: &Connection, f: &ConnFacts, rst: &RstFact) -> Side {
    if rst.fact.from_first == (f.first_src == c.client) {
        Side::Client
    } else {
        Side::Server
    }
}

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    let mut out = Vec::new();
    let mut claims = Vec::new();
    for c in a.connections.iter().filter(|c| c.client_rst + c.server_rst > 0) {
        let Some(f) = a.twosided.facts.get(&c.id) else { continue };
        for (i, rst) in f.rsts.iter().enumerate() {
            if ctx.is_claimed(c, rst.fact.frame) {
                continue;
            }
            let dir = usize::from(!rst.fact.from_first);
            let Some(why) = mismatch(rst, &f.dirs[dir]) else { continue };
            let own_reset_before = f.rsts[..i]
                .iter()
                .any(|r| r.fact.from_first == rst.fact.from_first && mismatch(r, &f.dirs[dir]).is_none());
            if own_reset_before {
                break;
            }
            let side = sender_side(c, f, rst);
            let sender = endpoint_of(c, side);
            let receiver = endpoint_of(c, side.other());
            let last = packets(c)
                .into_iter()
                .filter(|p| p.side == side && p.frame < rst.fact.frame && p.flags & RST == 0)
                .last()
                .map(|p| p.frame);
            let summary = format!(
                "A RST in the name of {sender} reached {receiver} at {} (frame {}), but {why}: probably sent by a device in between, not by {sender}.",
                when(rst.fact.ts),
                rst.fact.frame
            );
            out.push(finding(
                FindingKind::SuspectedMiddleboxReset,
                Severity::Warning,
                &[c],
                rst.fact.ts,
                rst.fact.ts,
                1,
                evidence(c, last.into_iter().chain([rst.fact.frame])),
                summary,
                ADVICE,
            ));
            claims.push((c, rst.fact.frame));
            break; // one per connection: its first unexplained odd reset
        }
    }
    for (c, frame) in claims {
        ctx.claim(c, frame, FindingKind::SuspectedMiddleboxReset);
    }
    out
}
