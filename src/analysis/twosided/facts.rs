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
    /// Looked up once per packet: foldhash, not SipHash (ids are ours, not the file's).
    conns: HashMap<u64, ConnFacts, foldhash::fast::FixedState>,
    with_packets: usize,
    /// Connections that came after `CONNS_WITH_PACKETS_MAX`.
    pub over_cap: u64,
}

impl Collector {
    /// `keep_packets`: keep head and tail packets for matching (several inputs in the run).
    pub fn new(input: u32, keep_packets: bool) -> Self {
        Collector { input, keep_packets, conns: HashMap::default(), with_packets: 0, over_cap: 0 }
    }

    /// One segment of connection `conn_id` (as the TCP table numbered it).
    pub fn observe(&mut self, conn_id: u64, seg: &TcpSegment) {
        let input = self.input;
        let (with_packets, over_cap) = (&mut self.with_packets, &mut self.over_cap);
        let keep_packets = self.keep_packets;
        let c = self.conns.entry(conn_id).or_insert_with(|| {
            let kept = keep_packets && *with_packets < CONNS_WITH_PACKETS_MAX;
            if kept {
                *with_packets += 1;
            } else if keep_packets {
                *over_cap += 1;
            }
            ConnFacts {
                input,
                first_src: seg.src,
                dirs: [DirStats::default(); 2],
                rsts: Vec::new(),
                head: Vec::new(),
                tail: VecDeque::new(),
                elided: 0,
                keeps_packets: kept,
            }
        });
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

    /// A connection was finalised: without packet keeping, its facts are needed only if it had a
    /// reset (so memory follows live connections, not finished ones).
    pub fn finalized(&mut self, conn_id: u64) {
        if !self.keep_packets && self.conns.get(&conn_id).is_some_and(|c| c.rsts.is_empty()) {
            self.conns.remove(&conn_id);
        }
    }

    /// The facts by connection id. Without packet keeping, connections without a reset are dropped.
    pub fn finish(self) -> HashMap<u64, ConnFacts> {
        self.conns.into_iter().filter(|(_, c)| c.keeps_packets || !c.rsts.is_empty()).collect()
    }
}
