//! Zeek-compatible connection state (`conn_state`) and `history` letters
//! (scripts/base/protocols/conn/main.zeek; TCPSessionAdapter.cc `update_history`).

use crate::model::analysis_flags as af;
use crate::model::tcp_flags::{ACK, FIN, RST, SYN};
use crate::model::{ConnState, History};

/// Zeek's TCP endpoint states (the numbers Zeek prints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointState {
    Inactive = 0,
    SynSent = 1,
    SynAckSent = 2,
    Partial = 3,
    Established = 4,
    Closed = 5,
    Reset = 6,
}

// Bits of Zeek's `hist_seen` (once-per-direction letters).
const HIST_SYN: u32 = 0x1;
const HIST_FIN: u32 = 0x2;
const HIST_RST: u32 = 0x4;
const HIST_FIN_RST: u32 = 0x8;
const HIST_ACK: u32 = 0x10;
const HIST_DATA: u32 = 0x20;
const HIST_MULTI: u32 = 0x40;

/// One endpoint's Zeek bookkeeping.
#[derive(Clone, Debug)]
pub struct ZeekEndpoint {
    pub state: EndpointState,
    last_syn: Option<u32>,
    last_fin: Option<u32>,
    last_rst: Option<u32>,
    /// The scaled letters' next thresholds as powers of ten (one byte each: the live table holds
    /// one of these per endpoint of every open connection).
    retransmit_threshold: u8,
    retransmits: u64,
    gap_threshold: u8,
    gaps: u64,
    zero_window_threshold: u8,
    zero_windows: u64,
    pub size: u64,
}

impl Default for ZeekEndpoint {
    fn default() -> Self {
        ZeekEndpoint {
            state: EndpointState::Inactive,
            last_syn: None,
            last_fin: None,
            last_rst: None,
            retransmit_threshold: 0,
            retransmits: 0,
            gap_threshold: 0,
            gaps: 0,
            zero_window_threshold: 0,
            zero_windows: 0,
            size: 0,
        }
    }
}

/// History and state of a connection, with Zeek's orig/resp roles.
#[derive(Clone, Debug, Default)]
pub struct ZeekConn {
    pub orig: ZeekEndpoint,
    pub resp: ZeekEndpoint,
    pub history: History,
    seen: u32,
}

/// Zeek's "scaled" history letters: added at the 1st, 10th, 100th… occurrence (`10^threshold`).
fn scaled(count: &mut u64, threshold: &mut u8) -> bool {
    *count += 1;
    if *count == 10u64.checked_pow(u32::from(*threshold)).unwrap_or(u64::MAX) {
        *threshold = threshold.saturating_add(1);
        true
    } else {
        false
    }
}

impl ZeekConn {
    fn letter(&mut self, is_orig: bool, code: char) {
        self.history.push(if is_orig { code } else { code.to_ascii_lowercase() });
    }

    /// Adds `code` once per direction; returns whether it had been seen before.
    fn check(&mut self, is_orig: bool, mask: u32, code: char) -> bool {
        let mask = if is_orig { mask } else { mask << 16 };
        if self.seen & mask == 0 {
            self.seen |= mask;
            self.letter(is_orig, code);
            false
        } else {
            true
        }
    }

    /// Marks the connection as flipped (first packet was a SYN/ACK).
    pub fn flipped(&mut self) {
        self.history.push('^');
    }

    /// Updates history and endpoint states for one packet. `rel_seq` is the sequence number
    /// relative to the sender's ISN; `analysis` the Wireshark flags of this packet.
    pub fn update(&mut self, is_orig: bool, flags: u8, rel_seq: u32, len: u32, analysis: u32) {
        let syn = flags & SYN != 0;
        let fin = flags & FIN != 0;
        let rst = flags & RST != 0;
        let bits = syn as u8 + fin as u8 + rst as u8;
        if bits > 1 {
            if fin && rst {
                self.check(is_orig, HIST_FIN_RST, 'I');
            } else {
                self.check(is_orig, HIST_MULTI, 'Q');
            }
        } else if bits == 1 {
            if syn {
                let code = if flags & ACK != 0 { 'H' } else { 'S' };
                let last = self.ep(is_orig).last_syn;
                if self.check(is_orig, HIST_SYN, code) && last != Some(rel_seq) {
                    self.letter(is_orig, code);
                }
                self.ep_mut(is_orig).last_syn = Some(rel_seq);
            }
            if fin {
                let end = rel_seq.wrapping_add(len);
                let last = self.ep(is_orig).last_fin;
                if self.check(is_orig, HIST_FIN, 'F') && last != Some(end) {
                    self.letter(is_orig, 'F');
                }
                self.ep_mut(is_orig).last_fin = Some(end);
            }
            if rst {
                let last = self.ep(is_orig).last_rst;
                if self.check(is_orig, HIST_RST, 'R') && last != Some(rel_seq) {
                    self.letter(is_orig, 'R');
                }
                self.ep_mut(is_orig).last_rst = Some(rel_seq);
            }
        } else if len > 0 {
            self.check(is_orig, HIST_DATA, 'D');
        } else if flags & ACK != 0 {
            self.check(is_orig, HIST_ACK, 'A');
        }

        // Scaled letters from the packet analysis.
        if analysis & af::RETRANSMISSION != 0 && len > 0 {
            let e = self.ep_mut(is_orig);
            if scaled(&mut e.retransmits, &mut e.retransmit_threshold) {
                self.letter(is_orig, 'T');
            }
        }
        if analysis & af::ZERO_WINDOW != 0 {
            let e = self.ep_mut(is_orig);
            if scaled(&mut e.zero_windows, &mut e.zero_window_threshold) {
                self.letter(is_orig, 'W');
            }
        }
        // A hole in this direction's data, or an ACK for data the other side never showed us.
        if analysis & af::LOST_SEGMENT != 0 {
            let e = self.ep_mut(is_orig);
            if scaled(&mut e.gaps, &mut e.gap_threshold) {
                self.letter(is_orig, 'G');
            }
        }
        if analysis & af::ACK_LOST_SEGMENT != 0 {
            let e = self.ep_mut(!is_orig);
            if scaled(&mut e.gaps, &mut e.gap_threshold) {
                self.letter(!is_orig, 'G');
            }
        }

        self.ep_mut(is_orig).size += len as u64;
        self.step_state(is_orig, flags);
    }

    fn ep(&self, is_orig: bool) -> &ZeekEndpoint {
        if is_orig {
            &self.orig
        } else {
            &self.resp
        }
    }
    fn ep_mut(&mut self, is_orig: bool) -> &mut ZeekEndpoint {
        if is_orig {
            &mut self.orig
        } else {
            &mut self.resp
        }
    }

    fn step_state(&mut self, is_orig: bool, flags: u8) {
        use EndpointState::*;
        let syn = flags & SYN != 0;
        let ack = flags & ACK != 0;
        let (ep, peer) = if is_orig {
            (&mut self.orig.state, &mut self.resp.state)
        } else {
            (&mut self.resp.state, &mut self.orig.state)
        };
        if *ep == Inactive && syn {
            if is_orig {
                *ep = if ack { SynAckSent } else { SynSent };
            } else {
                // The responder's SYN/ACK establishes both sides.
                if matches!(*peer, SynSent | SynAckSent) {
                    *peer = Established;
                }
                *ep = Established;
            }
        }
        if flags & RST != 0 {
            *ep = Reset;
        } else if flags & FIN != 0 {
            if *ep != Reset {
                *ep = Closed;
            }
        } else if *ep == Inactive {
            *ep = Partial;
        }
    }

    /// Zeek's `conn_state()`.
    pub fn conn_state(&self) -> ConnState {
        use EndpointState::*;
        let os = self.orig.state;
        let rs = self.resp.state;
        let o_inactive = matches!(os, Inactive | Partial);
        let r_inactive = matches!(rs, Inactive | Partial);
        if rs == Reset {
            if matches!(os, SynSent | SynAckSent) || (os == Reset && self.orig.size == 0 && self.resp.size == 0) {
                return ConnState::REJ;
            }
            return if o_inactive { ConnState::RSTRH } else { ConnState::RSTR };
        }
        if os == Reset {
            if r_inactive {
                return if rstos0_history(&self.history) { ConnState::RSTOS0 } else { ConnState::OTH };
            }
            return ConnState::RSTO;
        }
        if rs == Closed && os == Closed {
            return ConnState::SF;
        }
        if os == Closed {
            return if r_inactive { ConnState::SH } else { ConnState::S2 };
        }
        if rs == Closed {
            return if o_inactive { ConnState::SHR } else { ConnState::S3 };
        }
        if os == SynSent && rs == Inactive {
            return ConnState::S0;
        }
        if os == Established && rs == Established {
            return ConnState::S1;
        }
        ConnState::OTH
    }
}

/// Zeek's `/\^?S[^HAFGIQ]*R.*/` on the history.
fn rstos0_history(h: &str) -> bool {
    let h = h.strip_prefix('^').unwrap_or(h);
    let Some(rest) = h.strip_prefix('S') else { return false };
    for c in rest.chars() {
        match c {
            'R' => return true,
            'H' | 'A' | 'F' | 'G' | 'I' | 'Q' => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scaled letters come at the 1st, 10th, 100th and 1000th occurrence, and never else.
    #[test]
    fn scaled_letters_at_powers_of_ten() {
        let (mut count, mut threshold) = (0u64, 0u8);
        let at: Vec<u64> = (1..=5000).filter(|_| scaled(&mut count, &mut threshold)).collect();
        assert_eq!(at, [1, 10, 100, 1000]);
        assert!(std::mem::size_of::<ZeekEndpoint>() <= 64, "{}", std::mem::size_of::<ZeekEndpoint>());
    }

    #[test]
    fn rstos0_pattern() {
        assert!(rstos0_history("SR"));
        assert!(rstos0_history("SaR"));
        assert!(!rstos0_history("SaFR"));
        assert!(!rstos0_history("R"));
        assert!(rstos0_history("^SdR"));
    }
}
