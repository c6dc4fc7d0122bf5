//! Per-packet TCP analysis flags with Wireshark 4.0.17 semantics
//! (`tcp_analyze_sequence_number()` in epan/dissectors/packet-tcp.c; condensed rules and their order
//! in `../shared/docs/tcp-analysis-rules.md`). Absolute seq/ack, raw 16-bit window.

use crate::model::analysis_flags as af;
use crate::model::tcp_flags::{ACK, FIN, RST, SYN};
use crate::model::TcpSegment;

/// Wireshark's `ooo_thres` when no handshake RTT is known: 3 ms.
const DEFAULT_OOO_THRESHOLD_NS: i64 = 3_000_000;
/// Fast retransmission needs the dup-ACKs within 20 ms.
const FAST_RETRANSMISSION_WINDOW_NS: i64 = 20_000_000;

/// Sequence state of one direction (Wireshark's `tcp_flow_t` + `tcp_analyze_seq_flow_info_t`).
#[derive(Clone, Debug)]
pub struct FlowState {
    pub base_seq_set: bool,
    pub base_seq: u32,
    /// Highest seq+len (+1 for SYN/FIN) seen; 0 = unknown.
    pub nextseq: u32,
    pub nextseq_time: i64,
    pub lastack: u32,
    pub lastack_time: i64,
    /// Last raw window; `u32::MAX` until a packet is seen (as Wireshark's G_MAXUINT32).
    pub window: u32,
    pub lastsegmentflags: u32,
    pub dupacknum: u32,
    pub maxseqtobeacked: u32,
    /// -1 unknown, -2 no scaling, else the shift.
    pub win_scale: i8,
    /// The last window came from a SYN (never scaled).
    pub window_from_syn: bool,
}

impl Default for FlowState {
    fn default() -> Self {
        FlowState {
            base_seq_set: false,
            base_seq: 0,
            nextseq: 0,
            nextseq_time: 0,
            lastack: 0,
            lastack_time: 0,
            window: u32::MAX,
            lastsegmentflags: 0,
            dupacknum: 0,
            maxseqtobeacked: 0,
            win_scale: -1,
            window_from_syn: false,
        }
    }
}

fn gt_seq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}
fn lt_seq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
fn le_seq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// Conversation-wide state: the handshake RTT used as out-of-order threshold.
#[derive(Clone, Debug, Default)]
pub struct ConversationTiming {
    pub ts_mru_syn: Option<i64>,
    pub ts_first_rtt: Option<i64>,
}

/// Window-scale bookkeeping done by Wireshark when it sees SYN options.
pub fn note_window_scale(seg: &TcpSegment, fwd: &mut FlowState, rev: &mut FlowState) {
    if !seg.has(SYN) {
        return;
    }
    match seg.window_scale {
        Some(shift) => fwd.win_scale = shift.min(14) as i8,
        None => fwd.win_scale = -2,
    }
    // Scaling is used only when both SYNs carried the option.
    if seg.has(ACK) && (fwd.win_scale == -2 || rev.win_scale == -2) {
        fwd.win_scale = -2;
        rev.win_scale = -2;
    }
}

/// Analyses one segment in direction `fwd`; returns its `tcp.analysis.*` bits.
/// `initial_flags` carries REUSED_PORTS decided at conversation lookup.
pub fn analyze(
    seg: &TcpSegment,
    fwd: &mut FlowState,
    rev: &mut FlowState,
    timing: &mut ConversationTiming,
    initial_flags: u32,
) -> u32 {
    let seq = seg.seq;
    let ack = seg.ack;
    let seglen = seg.payload_len;
    let flags = seg.flags;
    let window = seg.window as u32;
    let now = seg.ts;
    let mut ta = initial_flags;

    // First RTT: from the most recent SYN to the first pure ACK.
    if flags & (SYN | ACK) == ACK && timing.ts_first_rtt.is_none() {
        if let Some(syn) = timing.ts_mru_syn {
            timing.ts_first_rtt = Some(now - syn);
        }
    }
    if flags & (SYN | ACK) == SYN {
        timing.ts_mru_syn = Some(now);
    }

    if !fwd.base_seq_set {
        fwd.base_seq = if flags & SYN != 0 { seq } else { seq.wrapping_sub(1) };
        fwd.base_seq_set = true;
    }
    if !rev.base_seq_set && flags & ACK != 0 {
        rev.base_seq = ack.wrapping_sub(1);
        rev.base_seq_set = true;
    }

    let sfr = flags & (SYN | FIN | RST) != 0;

    'fwd: {
        // 1. zero window probe
        if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
            ta |= af::ZERO_WINDOW_PROBE;
            break 'fwd;
        }
        // 2. zero window
        if window == 0 && !sfr {
            ta |= af::ZERO_WINDOW;
        }
        // 3. lost segment
        if fwd.nextseq != 0 && gt_seq(seq, fwd.nextseq) && flags & RST == 0 {
            ta |= af::LOST_SEGMENT;
        }
        // 4. keep-alive
        if (seglen == 0 || seglen == 1) && seq == fwd.nextseq.wrapping_sub(1) && !sfr {
            ta |= af::KEEP_ALIVE;
        }
        // 5. window update
        if seglen == 0 && window != 0 && window != fwd.window && seq == fwd.nextseq && ack == fwd.lastack && !sfr {
            ta |= af::WINDOW_UPDATE;
        }
        // 6. window full
        if seglen > 0 && rev.win_scale != -1 && !sfr {
            let shift = if rev.window_from_syn || rev.win_scale < 0 { 0 } else { rev.win_scale as u32 };
            let edge = rev.lastack.wrapping_add((rev.window & 0xffff) << shift);
            if seq.wrapping_add(seglen) == edge {
                ta |= af::WINDOW_FULL;
            }
        }
        let same_as_last = seglen == 0 && seq == fwd.nextseq && ack == fwd.lastack && !sfr && window == fwd.window;
        // 7. keep-alive ACK
        if same_as_last && window != 0 && rev.lastsegmentflags & af::KEEP_ALIVE != 0 {
            ta |= af::KEEP_ALIVE_ACK;
            break 'fwd;
        }
        // 8. zero window probe ACK
        if same_as_last && window == 0 && rev.lastsegmentflags & af::ZERO_WINDOW_PROBE != 0 {
            ta |= af::ZERO_WINDOW_PROBE_ACK;
            break 'fwd;
        }
        // 9. duplicate ACK
        if same_as_last && window != 0 {
            // A dup-ACK after the "ACKed unseen" marker (-1) counts as the first one (1, not 0), so the
            // marker keeps the same stall from being flagged again.
            fwd.dupacknum = if fwd.dupacknum == u32::MAX { 1 } else { fwd.dupacknum + 1 };
            ta |= af::DUPLICATE_ACK;
        }
    }
    // Wireshark resets the dup-ACK count when the ack number changes (not on any other segment).
    if ack != fwd.lastack {
        fwd.dupacknum = 0;
    }

    // 10. ACKed lost segment. When the other side's bound is behind its nextseq (serial compare) the
    // flag is raised and the bound jumps to nextseq, so a hole is reported once and the bound follows
    // the data again; otherwise (bound stuck at or past nextseq, e.g. a bogus challenge ACK) the flag
    // is raised once per stalled direction, marked by a dup-ACK count of -1 (guint32: all ones) until
    // that side's ack number changes. This is what TShark 4.0.17 does on the corpus, frame for frame.
    if rev.maxseqtobeacked != 0 && gt_seq(ack, rev.maxseqtobeacked) && flags & ACK != 0 {
        if lt_seq(rev.maxseqtobeacked, rev.nextseq) {
            rev.maxseqtobeacked = rev.nextseq;
            ta |= af::ACK_LOST_SEGMENT;
        } else {
            if rev.dupacknum == 0 {
                ta |= af::ACK_LOST_SEGMENT;
            }
            rev.dupacknum = u32::MAX;
        }
    }

    // 11. retransmission family
    if (seglen > 0 || flags & (SYN | FIN) != 0) && ta & af::KEEP_ALIVE == 0 {
        let mut seq_not_advanced = fwd.nextseq != 0 && lt_seq(seq, fwd.nextseq);
        if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
            seq_not_advanced = false;
        }
        let syn_fin = if flags & (SYN | FIN) != 0 { 1 } else { 0 };
        if seglen > 0 && rev.lastack != 0 && le_seq(seq.wrapping_add(seglen), rev.lastack) {
            ta |= af::SPURIOUS_RETRANSMISSION | af::RETRANSMISSION;
        } else if seq_not_advanced {
            let since_ack = now - rev.lastack_time;
            let since_next = now - fwd.nextseq_time;
            let ooo_threshold = timing.ts_first_rtt.unwrap_or(DEFAULT_OOO_THRESHOLD_NS);
            if rev.dupacknum >= 2 && rev.lastack == seq && since_ack < FAST_RETRANSMISSION_WINDOW_NS {
                ta |= af::FAST_RETRANSMISSION | af::RETRANSMISSION;
            } else if since_next < ooo_threshold && fwd.nextseq != seq.wrapping_add(seglen).wrapping_add(syn_fin) {
                ta |= af::OUT_OF_ORDER;
            } else {
                ta |= af::RETRANSMISSION;
            }
        }
    }

    // Update the flow: highest nextseq, max seq to be acked, last ack and window.
    let mut nextseq = seq.wrapping_add(seglen);
    if flags & (SYN | FIN) != 0 {
        nextseq = nextseq.wrapping_add(1);
    }
    let is_zwp = ta & af::ZERO_WINDOW_PROBE != 0;
    if (fwd.nextseq == 0 || gt_seq(nextseq, fwd.nextseq)) && !is_zwp {
        fwd.nextseq = nextseq;
        fwd.nextseq_time = now;
    }
    if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && !is_zwp {
        fwd.maxseqtobeacked = fwd.nextseq;
    }
    fwd.window = window;
    fwd.window_from_syn = flags & SYN != 0;
    fwd.lastack = ack;
    fwd.lastack_time = now;
    fwd.lastsegmentflags = ta;
    ta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;

    fn seg(from_server: bool, seq: u32, ack: u32, len: u32, ts: i64) -> TcpSegment {
        let c = Endpoint { ip: "10.0.0.1".parse().unwrap(), port: 50000 };
        let s = Endpoint { ip: "10.0.0.2".parse().unwrap(), port: 80 };
        let (src, dst) = if from_server { (s, c) } else { (c, s) };
        TcpSegment {
            input: 0,
            frame: 0,
            ts,
            src,
            dst,
            seq,
            ack,
            flags: ACK,
            window: 65535,
            payload_len: len,
            window_scale: None,
            has_sack: false,
            ttl: 64,
            ip_id: None,
        }
    }

    /// Both directions' state of one conversation, fed segments in order.
    #[derive(Default)]
    struct Conversation {
        client: FlowState,
        server: FlowState,
        timing: ConversationTiming,
    }

    impl Conversation {
        /// Analyses one segment (time in 10 ms steps) and returns its flags.
        fn send(&mut self, from_server: bool, seq: u32, ack: u32, len: u32, ts: i64) -> u32 {
            let s = seg(from_server, seq, ack, len, ts * 10_000_000);
            if from_server {
                analyze(&s, &mut self.server, &mut self.client, &mut self.timing, 0)
            } else {
                analyze(&s, &mut self.client, &mut self.server, &mut self.timing, 0)
            }
        }
    }

    /// A hole in the server's data (as in zeek_http_206_example_b frames 262-264): the client's ACK
    /// over it is flagged once; the bound then follows the data again, so a later ACK after the
    /// server's own ack number changed is not flagged a second time.
    #[test]
    fn ack_over_a_hole_is_flagged_once() {
        let mut conv = Conversation::default();
        let mut send = |from_server, seq, ack, len, ts| conv.send(from_server, seq, ack, len, ts);
        send(false, 100, 1000, 10, 0);
        send(true, 1000, 110, 500, 1);
        // 1500..1700 never captured; this segment starts inside the hole and ends beyond it.
        send(true, 1600, 110, 400, 2);
        assert_ne!(send(false, 110, 2000, 0, 3) & af::ACK_LOST_SEGMENT, 0);
        send(true, 2000, 110, 500, 4);
        send(false, 110, 2500, 10, 5);
        send(true, 2500, 120, 500, 6);
        assert_eq!(send(false, 120, 3000, 0, 7) & af::ACK_LOST_SEGMENT, 0);
    }

    /// The server's data tail was never captured (bound == nextseq): the first ACK beyond it is
    /// flagged and marks the stall; a dup-ACK from the server then counts as its first (1, not 0), so
    /// the next client ACK over the same stall is not flagged again.
    #[test]
    fn dup_ack_after_the_marker_keeps_the_stall_quiet() {
        let mut conv = Conversation::default();
        let mut send = |from_server, seq, ack, len, ts| conv.send(from_server, seq, ack, len, ts);
        send(false, 100, 1000, 10, 0);
        send(true, 1000, 110, 500, 1);
        assert_ne!(send(false, 110, 2000, 0, 2) & af::ACK_LOST_SEGMENT, 0);
        assert_ne!(send(true, 1500, 110, 0, 3) & af::DUPLICATE_ACK, 0);
        assert_eq!(send(false, 110, 2100, 0, 4) & af::ACK_LOST_SEGMENT, 0);
    }
}
