//! Per-packet facts of each connection that matching across captures and the reset heuristics need
//! (IP TTL and ID are not in the connection record). Bounded per connection: the first
//! `HEAD_KEPT` and last `TAIL_KEPT` packets, only when several inputs are analysed together;
//! otherwise only the per-direction TTL/IP-ID summaries and the resets.

use std::collections::{HashMap, VecDeque};

use crate::model::tcp_flags::RST;
use crate::model::{Endpoint, TcpSegment, UtcNs};

/// Packets kept from the start of each connection (handshake, first exchange).
pub const HEAD_KEPT: usize = 24;
/// Packets kept from the end of each connection (how it ended).
pub const TAIL_KEPT: usize = 40;
/// Resets kept per connection.
pub const RSTS_KEPT: usize = 8;
/// Connections per input whose packets are kept (about 2.5 KB each); later ones keep only their
/// summaries and resets, and are not matched.
pub const CONNS_WITH_PACKETS_MAX: usize = 200_000;

/// One packet as both captures can compare it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketFact {
    pub frame: u64,
    pub ts: UtcNs,
    /// Sent by the connection's first-seen source (`ConnFacts::first_src`).
    pub from_first: bool,
    pub flags: u8,
    pub ttl: u8,
    pub ip_id: Option<u16>,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
}

/// TTLs and IP IDs of one direction's packets other than resets.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirStats {
    pub packets: u64,
    pub ttl_min: u8,
    pub ttl_max: u8,
    /// Packets with an IPv4 ID of zero (Linux SYN-ACKs and resets, DF packets of some stacks).
    pub ids_zero: u64,
    /// Non-zero IDs that followed the previous non-zero ID by 1..=`ID_STEP_MAX`.
    pub id_small_steps: u64,
    pub ids_nonzero: u64,
    pub id_last: Option<u16>,
}

/// Largest per-packet step of an IP ID counter still read as "the same counter".
pub const ID_STEP_MAX: u16 = 16;

impl DirStats {
    fn add(&mut self, seg: &TcpSegment) {
        if self.packets == 0 {
            self.ttl_min = seg.ttl;
            self.ttl_max = seg.ttl;
        }
        self.packets += 1;
        self.ttl_min = self.ttl_min.min(seg.ttl);
        self.ttl_max = self.ttl_max.max(seg.ttl);
        match seg.ip_id {
            Some(0) => self.ids_zero += 1,
            Some(id) => {
                if let Some(last) = self.id_last {
                    let step = id.wrapping_sub(last);
                    if (1..=ID_STEP_MAX).contains(&step) {
                        self.id_small_steps += 1;
                    }
                }
                self.ids_nonzero += 1;
                self.id_last = Some(id);
            }
            None => {}
        }
    }

    /// Every non-zero ID followed its predecessor by a small step: one per-connection counter.
    pub fn ids_sequential(&self) -> bool {
        self.ids_nonzero >= 4 && self.id_small_steps + 1 == self.ids_nonzero
    }
}

/// A reset with what its sender's direction looked like when it arrived.
#[derive(Clone, Copy, Debug)]
pub struct RstFact {
    pub fact: PacketFact,
    /// The sender direction's non-reset packets before this reset.
    pub before: DirStats,
}

/// What one connection of one input looked like packet by packet (bounded).
#[derive(Clone, Debug)]
pub struct ConnFacts {
    pub input: u32,
    /// Source of the first packet seen; `PacketFact::from_first` is relative to it.
    pub first_src: Endpoint,
    /// Non-reset packets per direction: [from first_src, towards it].
    pub dirs: [DirStats; 2],
    pub rsts: Vec<RstFact>,
    pub head: Vec<PacketFact>,
    pub tail: VecDeque<PacketFact>,
    /// Packets between head and tail not kept.
    pub elided: u64,
    /// Head and tail are kept (several captures, under `CONNS_WITH_PACKETS_MAX`).
    pub keeps_packets: bool,
}

impl ConnFacts {
    /// Kept packets in order.
    pub fn packets(&self) -> impl Iterator<Item = &PacketFact> {
        self.head.iter().chain(self.tail.iter())
    }

    /// Index into `dirs` of a packet's direction.
    pub fn dir_of(&self, from_first: bool) -> usize {
        usize::from(!from_first)
    }
}

/// Collects facts of one input's connections while the capture is read.
pub struct Collector {
    input: u32,
    keep_packets: bool,
    /// Facts of connections `base..base + slots.len()`: the TCP table numbers connections densely
    /// in order of first packet, so a packet finds its connection by index, not by hashing.
    /// Finalised connections leave their slot; empty slots at the front are dropped, so the window
    /// spans the live connections (eight bytes per connection behind a long-lived one).
    slots: VecDeque<Option<Box<ConnFacts>>>,
    base: Option<u64>,
    /// Finalised connections whose facts stay: those with a reset, and every one when matching.
    kept: Vec<(u64, ConnFacts)>,
    with_packets: usize,
    /// Connections that came after `CONNS_WITH_PACKETS_MAX`.
    pub over_cap: u64,
}

impl Collector {
    /// `keep_packets`: keep head and tail packets for matching (several inputs in the run).
    pub fn new(input: u32, keep_packets: bool) -> Self {
        Collector {
            input,
            keep_packets,
            slots: VecDeque::new(),
            base: None,
            kept: Vec::new(),
            with_packets: 0,
            over_cap: 0,
        }
    }

    /// One segment of connection `conn_id` (as the TCP table numbered it).
    pub fn observe(&mut self, conn_id: u64, seg: &TcpSegment) {
        let base = *self.base.get_or_insert(conn_id);
        // An id behind the window was finalised already; one far ahead would mean ids that are
        // not dense, which the TCP table never hands out: both are ignored, never allocated for.
        let Some(idx) = conn_id.checked_sub(base).map(|i| i as usize).filter(|&i| i <= self.slots.len()) else {
            return;
        };
        if idx == self.slots.len() {
            self.slots.push_back(None);
        }
        let slot = &mut self.slots[idx];
        let c = match slot {
            Some(c) => c,
            None => {
                let kept = self.keep_packets && self.with_packets < CONNS_WITH_PACKETS_MAX;
                if kept {
                    self.with_packets += 1;
                } else if self.keep_packets {
                    self.over_cap += 1;
                }
                slot.insert(Box::new(ConnFacts {
                    input: self.input,
                    first_src: seg.src,
                    dirs: [DirStats::default(); 2],
                    rsts: Vec::new(),
                    head: Vec::new(),
                    tail: VecDeque::new(),
                    elided: 0,
                    keeps_packets: kept,
                }))
            }
        };
        let from_first = seg.src == c.first_src;
        let fact = PacketFact {
            frame: seg.frame,
            ts: seg.ts,
            from_first,
            flags: seg.flags,
            ttl: seg.ttl,
            ip_id: seg.ip_id,
            seq: seg.seq,
            ack: seg.ack,
            len: seg.payload_len,
        };
        let dir = c.dir_of(from_first);
        if seg.flags & RST != 0 {
            if c.rsts.len() < RSTS_KEPT {
                c.rsts.push(RstFact { fact, before: c.dirs[dir] });
            }
        } else {
            c.dirs[dir].add(seg);
        }
        if !c.keeps_packets {
            return;
        }
        if c.head.len() < HEAD_KEPT {
            c.head.push(fact);
            return;
        }
        if c.tail.len() == TAIL_KEPT {
            c.tail.pop_front();
            c.elided += 1;
        }
        c.tail.push_back(fact);
    }

    /// A connection was finalised: its facts are kept only if it had a reset or packets are kept
    /// for matching (so memory follows live connections, not finished ones).
    pub fn finalized(&mut self, conn_id: u64) {
        let Some(base) = self.base else { return };
        let Some(slot) = conn_id.checked_sub(base).and_then(|i| self.slots.get_mut(i as usize)) else { return };
        if let Some(c) = slot.take() {
            if c.keeps_packets || !c.rsts.is_empty() {
                self.kept.push((conn_id, *c));
            }
        }
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.base = self.base.map(|b| b + 1);
        }
    }

    /// Connections whose facts are held now (live, or finalised and kept).
    pub fn held(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count() + self.kept.len()
    }

    /// The facts by connection id. Without packet keeping, connections without a reset are dropped.
    pub fn finish(self) -> HashMap<u64, ConnFacts> {
        let base = self.base.unwrap_or(0);
        let live = self.slots.into_iter().enumerate().filter_map(|(i, c)| Some((base + i as u64, *c?)));
        self.kept.into_iter().chain(live).filter(|(_, c)| c.keeps_packets || !c.rsts.is_empty()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tcp_flags::{ACK, RST, SYN};
    use std::net::{IpAddr, Ipv4Addr};

    fn seg(port: u16, flags: u8) -> TcpSegment {
        let ep = |last: u8, port: u16| Endpoint { ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port };
        TcpSegment {
            input: 0,
            frame: 1,
            ts: 0,
            src: ep(1, port),
            dst: ep(2, 443),
            seq: 0,
            ack: 0,
            flags,
            window: 1,
            payload_len: 0,
            window_scale: None,
            has_sack: false,
            ttl: 64,
            ip_id: None,
        }
    }

    /// Finalised connections give their slots back in any order; only those with a reset stay;
    /// ids outside the window are ignored.
    #[test]
    fn window_follows_live_connections() {
        let mut c = Collector::new(0, false);
        for id in 100..110u64 {
            c.observe(id, &seg(id as u16, SYN));
        }
        c.observe(104, &seg(104, RST | ACK));
        c.observe(500, &seg(1, SYN)); // not dense: ignored
        assert_eq!(c.held(), 10);
        for id in [101, 100, 103, 102, 104] {
            c.finalized(id);
        }
        assert_eq!((c.slots.len(), c.base, c.held()), (5, Some(105), 6));
        c.observe(99, &seg(99, SYN)); // behind the window: finalised long ago
        c.observe(110, &seg(110, SYN));
        let facts = c.finish();
        let mut ids: Vec<u64> = facts.keys().copied().collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![104]);
        assert_eq!(facts[&104].rsts.len(), 1);
    }
}
