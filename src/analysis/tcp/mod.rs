//! TCP connection reconstruction: a 4-tuple table with generations (Wireshark streams),
//! per-packet analysis flags (Wireshark 4.0), Zeek state and history per connection.
//! Memory grows with connections: a live one keeps a bounded head and tail of packet notes; a
//! finished uneventful one only its landmarks (`model::Landmarks`) unless every note is asked for.

mod closing;
mod roles;
pub mod wireshark;
pub mod zeek;

pub use roles::assign_roles;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use crate::model::analysis_flags as af;
use crate::model::tcp_flags::{ACK, FIN, RST, SYN};
use crate::model::{Connection, Endpoint, KeptNotes, Landmarks, PacketNote, PacketNotes, Side, TcpSegment, UtcNs};
use closing::{Closing, ClosingQueue};
use wireshark::{ConversationTiming, FlowState};
use zeek::ZeekConn;

/// Packets kept from the start of each connection.
pub const HEAD_PACKETS: usize = 6;
/// Packets kept from the end of each connection.
pub const TAIL_PACKETS: usize = 16;
/// A closed (FIN/RST) connection idle this long is finalised; a later packet starts a new one.
pub const CLOSED_LINGER_NS: i64 = 600 * 1_000_000_000;
/// Cap on connections tracked at once; the longest idle is finalised (and counted) beyond it.
pub const MAX_ACTIVE: usize = 1_000_000;
const SWEEP_EVERY: u64 = 65_536;

/// Frame counts with the meaning of the tshark oracle's columns (frames matching each filter).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct TcpCounts {
    pub tcp_frames: u64,
    pub tcp_conversations: u64,
    pub syn: u64,
    pub synack: u64,
    pub rst: u64,
    pub fin: u64,
    pub keep_alive: u64,
    pub keep_alive_ack: u64,
    pub reused_ports: u64,
    pub retransmission: u64,
    pub fast_retransmission: u64,
    pub spurious_retransmission: u64,
    pub out_of_order: u64,
    pub lost_segment: u64,
    pub ack_lost_segment: u64,
    pub duplicate_ack: u64,
    pub zero_window: u64,
    pub zero_window_probe: u64,
    pub window_full: u64,
    pub window_update: u64,
}

impl TcpCounts {
    fn count_frame(&mut self, flags: u8, ta: u32) {
        self.tcp_frames += 1;
        if flags & (SYN | ACK) == SYN {
            self.syn += 1;
        }
        if flags & (SYN | ACK) == SYN | ACK {
            self.synack += 1;
        }
        if flags & RST != 0 {
            self.rst += 1;
        }
        if flags & FIN != 0 {
            self.fin += 1;
        }
        let bump = |bit: u32, field: &mut u64| {
            if ta & bit != 0 {
                *field += 1;
            }
        };
        bump(af::KEEP_ALIVE, &mut self.keep_alive);
        bump(af::KEEP_ALIVE_ACK, &mut self.keep_alive_ack);
        bump(af::REUSED_PORTS, &mut self.reused_ports);
        bump(af::RETRANSMISSION, &mut self.retransmission);
        bump(af::FAST_RETRANSMISSION, &mut self.fast_retransmission);
        bump(af::SPURIOUS_RETRANSMISSION, &mut self.spurious_retransmission);
        bump(af::OUT_OF_ORDER, &mut self.out_of_order);
        bump(af::LOST_SEGMENT, &mut self.lost_segment);
        bump(af::ACK_LOST_SEGMENT, &mut self.ack_lost_segment);
        bump(af::DUPLICATE_ACK, &mut self.duplicate_ack);
        bump(af::ZERO_WINDOW, &mut self.zero_window);
        bump(af::ZERO_WINDOW_PROBE, &mut self.zero_window_probe);
        bump(af::WINDOW_FULL, &mut self.window_full);
        bump(af::WINDOW_UPDATE, &mut self.window_update);
    }

    /// Adds another input's counts.
    pub fn add(&mut self, o: &TcpCounts) {
        macro_rules! sum {
            ($($f:ident),*) => { $( self.$f += o.$f; )* };
        }
        sum!(
            tcp_frames,
            tcp_conversations,
            syn,
            synack,
            rst,
            fin,
            keep_alive,
            keep_alive_ack,
            reused_ports,
            retransmission,
            fast_retransmission,
            spurious_retransmission,
            out_of_order,
            lost_segment,
            ack_lost_segment,
            duplicate_ack,
            zero_window,
            zero_window_probe,
            window_full,
            window_update
        );
    }
}

type FlowKey = (Endpoint, Endpoint);
/// The table is hashed once per packet: foldhash is several times faster than SipHash and still
/// randomly seeded, so a crafted capture cannot force collisions.
/// Entries are boxed: the table's buckets stay small (its pages are touched at random, so their
/// size is resident), and finalising or replacing a connection moves a pointer, not 640 bytes.
type FlowTable = HashMap<FlowKey, Box<Active>, foldhash::fast::RandomState>;

fn flow_key(a: Endpoint, b: Endpoint) -> FlowKey {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

struct Active {
    conn: Connection,
    head: Vec<PacketNote>,
    tail: VecDeque<PacketNote>,
    elided: u64,
    /// A reset, a zero window or a Wireshark analysis flag was seen: the notes are kept whole.
    eventful: bool,
    client_flow: FlowState,
    server_flow: FlowState,
    timing: ConversationTiming,
    zeek: ZeekConn,
    closing: bool,
}

/// Ports Zeek treats as likely servers when it has no SYN to tell roles.
pub(super) fn likely_server_port(p: u16) -> bool {
    p < 1024 || matches!(p, 1433 | 1521 | 3306 | 3389 | 5432 | 5985 | 5986 | 8080 | 8443)
}

impl Active {
    fn new(id: u64, stream: u32, seg: &TcpSegment, reused: bool) -> Active {
        // Originator: the SYN sender; a SYN/ACK's receiver; else Zeek's port heuristic.
        let is_synack = seg.flags & (SYN | ACK) == SYN | ACK;
        let flip = is_synack
            || (seg.flags & SYN == 0 && likely_server_port(seg.src.port) && !likely_server_port(seg.dst.port));
        let (client, server) = if flip { (seg.dst, seg.src) } else { (seg.src, seg.dst) };
        let mut zeek = ZeekConn::default();
        if flip {
            zeek.flipped();
        }
        Active {
            conn: Connection {
                reused_ports: reused,
                ..Connection::opened(id, seg.input, stream, client, server, seg.ts, seg.frame)
            },
            head: Vec::with_capacity(HEAD_PACKETS),
            // Grows on demand: a short connection never fills a tail.
            tail: VecDeque::new(),
            elided: 0,
            eventful: false,
            client_flow: FlowState::default(),
            server_flow: FlowState::default(),
            timing: ConversationTiming::default(),
            zeek,
            closing: false,
        }
    }

    /// Boxed: the 640-byte entry is read where it lies, not moved out first.
    fn finish(mut self: Box<Self>, all_notes: bool) -> Connection {
        self.conn.state = self.zeek.conn_state();
        self.conn.history = std::mem::take(&mut self.zeek.history);
        let tail = self.tail.make_contiguous();
        let landmarks = if all_notes { None } else { Landmarks::of(&self.conn, &self.head, tail, self.eventful) };
        self.conn.notes = match landmarks {
            Some(l) => PacketNotes::Landmarks(l),
            None => {
                // Exact-size blocks: a finished connection keeps only what it holds.
                self.head.shrink_to_fit();
                let mut tail = Vec::from(self.tail);
                tail.shrink_to_fit();
                PacketNotes::Kept(Box::new(KeptNotes { head: self.head, tail, elided: self.elided }))
            }
        };
        self.conn
    }
}

/// Rebuilds the TCP connections of one input.
pub struct TcpAnalyzer {
    table: FlowTable,
    finished: Vec<Connection>,
    pub counts: TcpCounts,
    first_id: u64,
    next_id: u64,
    packets: u64,
    /// Connections finalised early because the table was full.
    pub evicted: u64,
    /// The connection the last processed segment belongs to.
    last_conn: u64,
    /// Keep every note of uneventful connections too (the app shows them; batch runs need not).
    all_notes: bool,
    /// Ids of connections finalised since `drain_finalized`, when asked for.
    finalized: Option<Vec<u64>>,
    /// Connections that sent a FIN or RST: what a sweep may finalise.
    closing: ClosingQueue<FlowKey>,
}

impl TcpAnalyzer {
    /// `first_id`: the id the first connection gets (ids are unique over the whole run).
    pub fn new(first_id: u64) -> Self {
        TcpAnalyzer {
            table: FlowTable::default(),
            finished: Vec::new(),
            counts: TcpCounts::default(),
            first_id,
            next_id: first_id,
            packets: 0,
            evicted: 0,
            last_conn: 0,
            all_notes: false,
            finalized: None,
            closing: ClosingQueue::default(),
        }
    }

    /// Keeps every packet note of every connection (for the app's details pane), not only the
    /// landmarks of uneventful ones. Findings are the same either way.
    pub fn keep_all_notes(mut self, all: bool) -> Self {
        self.all_notes = all;
        self
    }

    /// Remembers the ids of finalised connections, for `drain_finalized`.
    pub fn track_finalized(mut self) -> Self {
        self.finalized = Some(Vec::new());
        self
    }

    /// Hands out the ids of connections finalised since the last call (with `track_finalized`).
    pub fn drain_finalized(&mut self, mut f: impl FnMut(u64)) {
        if let Some(ids) = &mut self.finalized {
            ids.drain(..).for_each(&mut f);
        }
    }

    fn finalize(finished: &mut Vec<Connection>, finalized: &mut Option<Vec<u64>>, a: Box<Active>, all_notes: bool) {
        if let Some(ids) = finalized {
            ids.push(a.conn.id);
        }
        finished.push(a.finish(all_notes));
    }

    /// Processes one segment in file order; returns its analysis flags.
    pub fn process(&mut self, seg: &TcpSegment) -> u32 {
        self.packets += 1;
        if self.packets % SWEEP_EVERY == 0 {
            self.sweep(seg.ts);
        }
        let key = flow_key(seg.src, seg.dst);
        let pure_syn = seg.flags & (SYN | ACK) == SYN;
        let synack = seg.flags & (SYN | ACK) == SYN | ACK;
        let mut initial = 0u32;

        // Conversation lookup with Wireshark's port-reuse rules, hashing the key once.
        let Self { table, finished, counts, next_id, first_id, all_notes, finalized, closing, .. } = self;
        let mut new_active = |reused: bool| {
            let id = *next_id;
            *next_id += 1;
            counts.tcp_conversations += 1;
            // Stream numbers are per input; four billion connections in one file do not occur.
            Box::new(Active::new(id, u32::try_from(id - *first_id).unwrap_or(u32::MAX), seg, reused))
        };
        let a = match table.entry(key) {
            Entry::Vacant(v) => v.insert(new_active(false)),
            Entry::Occupied(o) => {
                let a = o.into_mut();
                let fwd = if seg.src == a.conn.client { &mut a.client_flow } else { &mut a.server_flow };
                if pure_syn && fwd.base_seq_set && seg.seq != fwd.base_seq {
                    // A new SYN with another ISN: a new stream on the same 4-tuple.
                    initial |= af::REUSED_PORTS;
                    let old = std::mem::replace(a, new_active(true));
                    Self::finalize(finished, finalized, old, *all_notes);
                } else if pure_syn && fwd.base_seq_set {
                    // The same ISN again: a SYN retransmission; Wireshark rewinds nextseq to the
                    // highest sequence acknowledgeable, forgetting what a RST in between advanced.
                    fwd.nextseq = fwd.maxseqtobeacked;
                } else if synack && fwd.base_seq_set && seg.seq != fwd.base_seq {
                    initial |= af::REUSED_PORTS;
                    fwd.base_seq = seg.seq;
                }
                a
            }
        };

        let side = if seg.src == a.conn.client { Side::Client } else { Side::Server };
        let (fwd, rev) = match side {
            Side::Client => (&mut a.client_flow, &mut a.server_flow),
            Side::Server => (&mut a.server_flow, &mut a.client_flow),
        };
        wireshark::note_window_scale(seg, fwd, rev);
        let ta = wireshark::analyze(seg, fwd, rev, &mut a.timing, initial);
        let rel_seq = seg.seq.wrapping_sub(fwd.base_seq);
        a.zeek.update(side == Side::Client, seg.flags, rel_seq, seg.payload_len, ta);
        counts.count_frame(seg.flags, ta);

        let c = &mut a.conn;
        c.last_ts = c.last_ts.max(seg.ts);
        c.first_ts = c.first_ts.min(seg.ts);
        c.last_frame = seg.frame;
        let fin = seg.flags & FIN != 0;
        let rst = seg.flags & RST != 0;
        a.eventful |= rst || ta != 0 || seg.window == 0;
        match side {
            Side::Client => {
                c.client_packets = c.client_packets.saturating_add(1);
                c.client_bytes += seg.payload_len as u64;
                c.client_fin += fin as u32;
                c.client_rst += rst as u32;
                c.client_syn += (seg.flags & (SYN | ACK) == SYN) as u32;
            }
            Side::Server => {
                c.server_packets = c.server_packets.saturating_add(1);
                c.server_bytes += seg.payload_len as u64;
                c.server_fin += fin as u32;
                c.server_rst += rst as u32;
                c.server_synack += synack as u32;
            }
        }
        c.keep_alive += (ta & af::KEEP_ALIVE != 0) as u32;
        c.keep_alive_ack += (ta & af::KEEP_ALIVE_ACK != 0) as u32;
        c.retransmissions += (ta & af::RETRANSMISSION != 0) as u32;
        if (fin || rst) && !a.closing {
            a.closing = true;
            closing.push(Closing { since: c.last_ts, id: c.id, key });
        }

        let note = PacketNote {
            frame: seg.frame,
            ts: seg.ts,
            side,
            flags: seg.flags,
            payload_len: seg.payload_len,
            seq: seg.seq,
            ack: seg.ack,
            window: seg.window,
            analysis: ta,
        };
        let id = c.id;
        if a.head.len() < HEAD_PACKETS {
            a.head.push(note);
        } else {
            if a.tail.len() == TAIL_PACKETS {
                a.tail.pop_front();
                a.elided += 1;
            }
            a.tail.push_back(note);
        }
        self.last_conn = id;
        ta
    }

    /// Finalises closed connections idle past the linger time, and the longest idle ones
    /// when the table is over its cap.
    fn sweep(&mut self, now: UtcNs) {
        // Only closing connections whose queued time is past the linger are looked at (a server
        // with 100 k open connections sweeps nothing). `since` never exceeds the connection's
        // last packet (last_ts only grows), so none due is missed; one active since it was
        // queued goes back with its newer time.
        while let Some(c) = self.closing.pop_due(now, CLOSED_LINGER_NS) {
            let Some(a) = self.table.get(&c.key).filter(|a| a.conn.id == c.id) else { continue };
            if now - a.conn.last_ts <= CLOSED_LINGER_NS {
                self.closing.push(Closing { since: a.conn.last_ts, ..c });
            } else if let Some(a) = self.table.remove(&c.key) {
                Self::finalize(&mut self.finished, &mut self.finalized, a, self.all_notes);
            }
        }
        if self.table.len() > MAX_ACTIVE {
            let mut by_idle: Vec<(UtcNs, FlowKey)> = self.table.iter().map(|(k, a)| (a.conn.last_ts, *k)).collect();
            by_idle.sort_unstable_by_key(|(t, _)| *t);
            let excess = self.table.len() - MAX_ACTIVE * 9 / 10;
            for (_, k) in by_idle.into_iter().take(excess) {
                if let Some(a) = self.table.remove(&k) {
                    Self::finalize(&mut self.finished, &mut self.finalized, a, self.all_notes);
                    self.evicted += 1;
                }
            }
        }
    }

    /// Ends the input: finalises everything, in id order.
    pub fn finish(mut self) -> (Vec<Connection>, TcpCounts, u64) {
        let all_notes = self.all_notes;
        let rest: Vec<Connection> = self.table.drain().map(|(_, a)| a.finish(all_notes)).collect();
        self.finished.extend(rest);
        let mut finished = in_id_order(self.finished, self.first_id);
        assign_roles(&mut finished);
        (finished, self.counts, self.evicted)
    }

    /// The connection the last processed segment went to (callers need no second table lookup).
    pub fn last_connection(&self) -> u64 {
        self.last_conn
    }
}

/// Every id from `first_id` on was given to exactly one connection, so each is swapped straight
/// to its place, in place (a sort moves each 232-byte connection many times; a copy would double
/// the peak memory).
fn in_id_order(mut finished: Vec<Connection>, first_id: u64) -> Vec<Connection> {
    if !place_by_id(&mut finished, first_id) {
        // Ids not dense after all (never seen): sort instead.
        finished.sort_unstable_by_key(|c| c.id);
    }
    finished
}

/// Puts each connection at index `id - first_id`; false at the first id out of range or twice.
fn place_by_id(v: &mut [Connection], first_id: u64) -> bool {
    let n = v.len();
    let slot = |c: &Connection| usize::try_from(c.id.wrapping_sub(first_id)).ok().filter(|&i| i < n);
    for i in 0..n {
        loop {
            match slot(&v[i]) {
                None => return false,
                Some(j) if j == i => break,
                Some(j) if slot(&v[j]) == Some(j) => return false,
                Some(j) => v.swap(i, j),
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::roles::flip_roles;
    use super::*;
    use crate::model::tcp_flags::PSH;
    use crate::model::{ConnState, History};
    use std::net::{IpAddr, Ipv4Addr};

    fn ep(last: u8, port: u16) -> Endpoint {
        Endpoint { ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port }
    }

    fn seg(frame: u64, to_server: bool, seq: u32, ack: u32, flags: u8, len: u32) -> TcpSegment {
        let (c, s) = (ep(1, 50000), ep(2, 443));
        let (src, dst) = if to_server { (c, s) } else { (s, c) };
        TcpSegment {
            input: 0,
            frame,
            ts: 1_000_000 * frame as i64,
            src,
            dst,
            seq,
            ack,
            flags,
            window: 1000,
            payload_len: len,
            window_scale: None,
            has_sack: false,
            ttl: 64,
            ip_id: None,
        }
    }

    /// A short connection closed by the server: its finished record keeps its landmarks (or, when
    /// every note is asked for, its notes in blocks of exactly their size), and state and history
    /// without a heap block.
    #[test]
    fn short_connection_is_compact() {
        let pkts = short_connection();
        let mut t = TcpAnalyzer::new(0);
        pkts.iter().for_each(|p| _ = t.process(p));
        let (conns, _, _) = t.finish();
        let c = &conns[0];
        assert!(matches!(c.notes, PacketNotes::Landmarks(_)));
        let marks: Vec<(u64, i64, Side, u8)> = c.packets().map(|p| (p.frame, p.ts, p.side, p.flags)).collect();
        let want: Vec<(u64, i64, Side, u8)> = [0, 1, 5, 6]
            .iter()
            .map(|&i| {
                let p = &pkts[i];
                (p.frame, p.ts, if p.src.port == 443 { Side::Server } else { Side::Client }, p.flags)
            })
            .collect();
        assert_eq!(marks, want);
        assert_eq!(c.elided(), 4);
        assert!(std::mem::size_of::<Connection>() <= 232, "{}", std::mem::size_of::<Connection>());
        assert_eq!(std::mem::size_of::<PacketNotes>(), 32);

        let mut t = TcpAnalyzer::new(0).keep_all_notes(true);
        let pkts = short_connection();
        for p in &pkts {
            t.process(p);
        }
        let (conns, counts, _) = t.finish();
        assert_eq!(conns.len(), 1);
        assert_eq!(counts.tcp_frames, 8);
        let c = &conns[0];
        assert_eq!(c.state, "SF");
        // Zeek: the server's first pure ACK is its last packet, so `a` comes after `F`.
        assert_eq!(c.history, "ShADdfFa");
        assert!(matches!(c.history, History::Inline { .. }));
        let PacketNotes::Kept(k) = &c.notes else { panic!("all notes asked for") };
        assert_eq!((k.head.len(), k.tail.len()), (HEAD_PACKETS, 2));
        assert_eq!((k.head.capacity(), k.tail.capacity()), (k.head.len(), k.tail.len()));
        let frames: Vec<u64> = c.packets().map(|p| p.frame).collect();
        assert_eq!(frames, (1..=8).collect::<Vec<u64>>());
    }

    /// Eight packets: handshake, request, response, server FIN, client FIN, last ACK.
    fn short_connection() -> [TcpSegment; 8] {
        [
            seg(1, true, 100, 0, SYN, 0),
            seg(2, false, 500, 101, SYN | ACK, 0),
            seg(3, true, 101, 501, ACK, 0),
            seg(4, true, 101, 501, PSH | ACK, 10),
            seg(5, false, 501, 111, PSH | ACK, 20),
            seg(6, false, 521, 111, FIN | ACK, 0),
            seg(7, true, 111, 522, FIN | ACK, 0),
            seg(8, false, 522, 112, ACK, 0),
        ]
    }

    /// A history longer than the inline buffer spills to the heap with every letter kept, and
    /// flipping roles swaps case, the `^` marker and the directional states.
    #[test]
    fn long_history_spills_and_flips() {
        let mut h = History::default();
        let letters = "ShADadTtTtWwGgFfRrQqIiSsHh";
        letters.chars().for_each(|ch| h.push(ch));
        assert!(matches!(h, History::Heap(_)));
        assert_eq!(h, letters);
        let mut c = Connection::opened(0, 0, 0, ep(1, 50000), ep(2, 443), 0, 1);
        c.history = h;
        c.state = ConnState::RSTO;
        flip_roles(&mut c);
        assert_eq!(c.history.as_str(), format!("^{}", "sHadADtTtTwWgGfFrRqQiIsShH"));
        assert_eq!(c.state, ConnState::RSTR);
        flip_roles(&mut c);
        assert_eq!(c.history, letters);
        assert_eq!(ConnState::parse("RSTOS0"), Some(ConnState::RSTOS0));
        assert_eq!(ConnState::parse("XX"), None);
    }

    /// Ids in any order become id order; duplicate or out-of-range ids fall back to sorting.
    #[test]
    fn connections_are_put_in_id_order() {
        let conn = |id| Connection::opened(id, 0, 0, ep(1, 50000), ep(2, 443), 0, 1);
        let shuffled: Vec<Connection> = [13, 10, 14, 12, 11, 15].into_iter().map(conn).collect();
        assert_eq!(ids_of(&in_id_order(shuffled, 10)), [10, 11, 12, 13, 14, 15]);
        let dup: Vec<Connection> = [12, 10, 12, 11].into_iter().map(conn).collect();
        assert_eq!(ids_of(&in_id_order(dup, 10)), [10, 11, 12, 12]);
        let gap: Vec<Connection> = [30, 10, 11].into_iter().map(conn).collect();
        assert_eq!(ids_of(&in_id_order(gap, 10)), [10, 11, 30]);
        assert!(in_id_order(Vec::new(), 7).is_empty());
    }

    /// A closed connection is finalised by the first sweep after ten idle minutes, not before; a
    /// packet after its close keeps it for ten minutes from that packet.
    #[test]
    fn sweep_finalises_closed_connections_after_the_linger() {
        let minute = 60 * 1_000_000_000i64;
        let mut t = TcpAnalyzer::new(0).track_finalized();
        let mut pkts = short_connection().to_vec();
        // A late ACK 5 minutes after the close.
        let mut late = pkts[7].clone();
        late.frame = 9;
        late.ts = pkts[7].ts + 5 * minute;
        pkts.push(late);
        pkts.iter().for_each(|p| _ = t.process(p));
        let last = pkts[8].ts;
        let swept = |t: &mut TcpAnalyzer, at: i64| {
            t.sweep(at);
            let mut ids = Vec::new();
            t.drain_finalized(|id| ids.push(id));
            ids
        };
        // Ten minutes after the FIN but only five after the late ACK: kept.
        assert!(swept(&mut t, pkts[6].ts + 10 * minute + 1).is_empty());
        assert!(swept(&mut t, last + 10 * minute).is_empty());
        assert_eq!(swept(&mut t, last + 10 * minute + 1), [0]);
        let (conns, _, _) = t.finish();
        assert_eq!(ids_of(&conns), [0]);
    }

    fn ids_of(v: &[Connection]) -> Vec<u64> {
        v.iter().map(|c| c.id).collect()
    }
}
