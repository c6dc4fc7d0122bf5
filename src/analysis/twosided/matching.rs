//! Which connections two captures share, and which of their packets are the same packet:
//! the same 4-tuple (either orientation), or through NAT the same initial sequence numbers of both
//! sides and the same server port; packets by direction, seq, ack, payload length, flags and IP ID.

use std::collections::{HashMap, HashSet, VecDeque};

use super::facts::{ConnFacts, PacketFact};
use crate::model::tcp_flags::{ACK, FIN, RST, SYN};
use crate::model::{Connection, Endpoint};

/// How two views of a connection were found to be one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedBy {
    /// Same addresses and ports (and the same ISNs when the handshake was seen).
    Tuple,
    /// Same ISNs of both sides and server port (addresses rewritten by NAT).
    Isn,
}

impl MatchedBy {
    pub fn name(self) -> &'static str {
        match self {
            MatchedBy::Tuple => "4-tuple",
            MatchedBy::Isn => "ISNs and server port",
        }
    }
}

/// Two views of one connection and their packets paired.
#[derive(Clone, Debug)]
pub struct Pairing {
    /// Connection ids: `a` in the reference (or earlier) input, `b` in the other.
    pub a: u64,
    pub b: u64,
    pub by: MatchedBy,
    /// The views name opposite ends as the client (4-tuple match without a handshake).
    pub flip: bool,
    /// Indexes into each view's kept packets (`ConnFacts::packets`), with whether the client (as
    /// view `a` names it) sent it.
    pub pairs: Vec<(usize, usize, bool)>,
}

/// Whether a kept packet was sent by the connection's client (as `conn` names it).
pub fn from_client(conn: &Connection, facts: &ConnFacts, p: &PacketFact) -> bool {
    p.from_first == (facts.first_src == conn.client)
}

/// Initial sequence numbers of client and server, when the handshake was captured.
fn isns(conn: &Connection, facts: &ConnFacts) -> Option<(u32, u32)> {
    let syn = facts.head.iter().find(|p| p.flags & (SYN | ACK) == SYN && from_client(conn, facts, p))?;
    let synack = facts.head.iter().find(|p| p.flags & (SYN | ACK) == SYN | ACK && !from_client(conn, facts, p))?;
    Some((syn.seq, synack.seq))
}

type Key = (bool, u32, u32, u32, u8, Option<u16>);

fn key(client: bool, p: &PacketFact, with_id: bool) -> Key {
    (client, p.seq, p.ack, p.len, p.flags & (SYN | ACK | FIN | RST), if with_id { p.ip_id } else { None })
}

/// Pairs the kept packets of two views: k-th occurrence with k-th occurrence of each key. IP IDs
/// are part of the key unless that pairs fewer than half the packets (a middlebox rewrote them).
/// `flip`: the views named opposite ends as the client (no handshake seen).
fn pair_packets(
    ca: &Connection,
    fa: &ConnFacts,
    cb: &Connection,
    fb: &ConnFacts,
    flip: bool,
) -> Vec<(usize, usize, bool)> {
    let run = |with_id: bool| {
        let mut index: HashMap<Key, VecDeque<usize>> = HashMap::new();
        for (i, p) in fb.packets().enumerate() {
            index.entry(key(from_client(cb, fb, p) != flip, p, with_id)).or_default().push_back(i);
        }
        let mut out = Vec::new();
        for (i, p) in fa.packets().enumerate() {
            let client = from_client(ca, fa, p);
            if let Some(j) = index.get_mut(&key(client, p, with_id)).and_then(|q| q.pop_front()) {
                out.push((i, j, client));
            }
        }
        out
    };
    let with_id = run(true);
    let fewest = fa.packets().count().min(fb.packets().count());
    if with_id.len() * 2 >= fewest {
        return with_id;
    }
    let without = run(false);
    if without.len() > with_id.len() {
        without
    } else {
        with_id
    }
}

fn tuple(c: &Connection) -> (Endpoint, Endpoint) {
    if c.client <= c.server {
        (c.client, c.server)
    } else {
        (c.server, c.client)
    }
}

/// The connections of input `b` that are connections of input `a`, with their packets paired.
/// A pair needs the same ISNs, or the same 4-tuple and at least two packets in common.
pub fn match_inputs(
    conns: &[Connection],
    facts: &HashMap<u64, ConnFacts>,
    a: u32,
    b: u32,
    taken: &mut HashSet<u64>,
) -> Vec<Pairing> {
    let mut by_tuple: HashMap<(Endpoint, Endpoint), Vec<&Connection>> = HashMap::new();
    let mut by_isn: HashMap<(u32, u32, u16), Vec<&Connection>> = HashMap::new();
    for c in conns.iter().filter(|c| c.input == a) {
        let Some(f) = facts.get(&c.id) else { continue };
        by_tuple.entry(tuple(c)).or_default().push(c);
        if let Some((ci, si)) = isns(c, f) {
            by_isn.entry((ci, si, c.server.port)).or_default().push(c);
        }
    }
    let mut out = Vec::new();
    for cb in conns.iter().filter(|c| c.input == b) {
        let Some(fb) = facts.get(&cb.id) else { continue };
        let isn = isns(cb, fb);
        let mut candidates: Vec<(&Connection, MatchedBy)> = Vec::new();
        if let Some((ci, si)) = isn {
            candidates
                .extend(by_isn.get(&(ci, si, cb.server.port)).into_iter().flatten().map(|c| (*c, MatchedBy::Isn)));
        }
        if candidates.is_empty() {
            for ca in by_tuple.get(&tuple(cb)).into_iter().flatten() {
                // Both handshakes seen with different ISNs: another connection on the same 4-tuple.
                let other_isn = facts.get(&ca.id).and_then(|fa| isns(ca, fa));
                if isn.is_none() || other_isn.is_none() {
                    candidates.push((*ca, MatchedBy::Tuple));
                }
            }
        }
        let mut best: Option<(usize, &Connection, MatchedBy, bool, Vec<(usize, usize, bool)>)> = None;
        for (ca, by) in candidates {
            if taken.contains(&ca.id) {
                continue;
            }
            let Some(fa) = facts.get(&ca.id) else { continue };
            let flip = by == MatchedBy::Tuple && ca.client != cb.client;
            let pairs = pair_packets(ca, fa, cb, fb, flip);
            let enough = by == MatchedBy::Isn || pairs.len() >= 2;
            if enough && best.as_ref().map_or(true, |(n, ..)| pairs.len() > *n) {
                best = Some((pairs.len(), ca, by, flip, pairs));
            }
        }
        if let Some((_, ca, mut by, flip, pairs)) = best {
            if tuple(ca) == tuple(cb) {
                by = MatchedBy::Tuple; // the ISNs agree too, but no address was rewritten
            }
            taken.insert(ca.id);
            out.push(Pairing { a: ca.id, b: cb.id, by, flip, pairs });
        }
    }
    out
}
