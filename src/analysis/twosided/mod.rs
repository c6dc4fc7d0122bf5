//! Two-sided captures: one connection captured at both ends (or anywhere on its path twice).
//!
//! The first capture is the reference clock. Each other capture's connections are matched to the
//! reference's (`matching`), its clock offset estimated from the packets both saw (`clock`) or
//! taken from `--clock-offset`, and all its timestamps moved onto the reference clock before any
//! detector runs. A matched connection stays two records in `Analysis::connections` (each
//! capture's frames are its evidence), joined here: the reference's record is the connection, the
//! other's is a view of it (`TwoSided::view_of`); findings the views repeat are merged.
//! Per shared connection: packets seen on one side only, one-way delays, who saw the RST first,
//! and packets that reached one end although the other end's capture shows they were never sent.

pub mod clock;
pub mod facts;
pub mod matching;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use self::clock::Deltas;
use self::facts::{ConnFacts, PacketFact};
use self::matching::{from_client, MatchedBy, Pairing};
use super::{Analysis, Options};
use crate::model::tcp_flags::RST;
use crate::model::{Connection, Side, UtcNs};

/// Examples of one-sided packets kept per shared connection.
pub const EXAMPLES_KEPT: usize = 8;
/// The other capture must have been running this long around a packet to say it missed it.
const COVER_MARGIN_NS: i64 = 100_000_000;

/// Where an input's clock offset came from (summary.json `offset_source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSource {
    /// The first capture: the clock the others are aligned to.
    Reference,
    /// From the packets it shares with the reference.
    Estimated,
    /// Given with `--clock-offset`.
    User,
    /// No shared packets: left on its own clock.
    None,
}

impl OffsetSource {
    pub fn name(self) -> &'static str {
        match self {
            OffsetSource::Reference => "reference",
            OffsetSource::Estimated => "estimated",
            OffsetSource::User => "user",
            OffsetSource::None => "none",
        }
    }
}

/// One capture's clock against the reference.
#[derive(Clone, Debug)]
pub struct InputClock {
    pub input: u32,
    /// This input's clock minus the reference's (ns); `None` when unknown.
    pub offset_ns: Option<i64>,
    /// Bound of the estimate's error (half the smallest round trip), when estimated.
    pub error_ns: Option<i64>,
    /// The shared connections' intervals agreed (else the median was taken: drift or asymmetry).
    pub consistent: bool,
    pub source: OffsetSource,
    pub matched_connections: usize,
    /// The capture whose clock `offset_ns` is against: the first capture, or — for a capture that
    /// shares nothing with it but pairs with a later one (two hosts' pair in a folder of several) —
    /// the first capture of its own pair.
    pub reference: u32,
}

/// A packet of one view, on the common clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewPacket {
    pub input: u32,
    pub frame: u64,
    pub ts: UtcNs,
    /// The sender, as the connection (reference view) names it.
    pub side: Side,
    pub flags: u8,
    pub ttl: u8,
    pub ip_id: Option<u16>,
    pub len: u32,
}

/// Minimum and median of one direction's one-way delays (ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delay {
    pub min_ns: i64,
    pub median_ns: i64,
    pub packets: usize,
}

/// One connection seen in two captures.
#[derive(Clone, Debug)]
pub struct SharedConnection {
    /// The connection (reference capture's record) and its view in the other capture.
    pub primary: u64,
    pub view: u64,
    pub primary_input: u32,
    pub view_input: u32,
    pub by: MatchedBy,
    pub matched_packets: usize,
    /// Frame numbers of the paired packets (primary's, view's), of the kept ones.
    pub paired_frames: Vec<(u64, u64)>,
    /// Which capture sits at the client's end (the other at the server's), when the timing or the
    /// TTLs tell.
    pub client_end: Option<u32>,
    pub delay_client_to_server: Option<Delay>,
    pub delay_server_to_client: Option<Delay>,
    /// Packets the sender's end saw leave and the receiver's end, capturing then, never saw.
    pub lost: Vec<ViewPacket>,
    pub lost_count: u64,
    /// Packets that reached one end although the capture at their sender's end shows they were
    /// never sent: injected in between (a firewall's or load balancer's reset, a NAT's reply).
    pub injected: Vec<ViewPacket>,
    pub injected_count: u64,
    /// The first reset on the common clock, and so which capture saw one first.
    pub first_rst: Option<ViewPacket>,
}

/// The two-sided result.
#[derive(Clone, Debug, Default)]
pub struct TwoSided {
    /// Per-packet facts by connection id (bounded; see `facts`).
    pub facts: HashMap<u64, ConnFacts>,
    /// Capture inputs' clocks (empty when fewer than two captures and no `--clock-offset`).
    pub clocks: Vec<InputClock>,
    pub shared: Vec<SharedConnection>,
    /// View connection id → the connection (primary) id.
    pub view_of: HashMap<u64, u64>,
    /// Primary connection id → its entry in `shared` (lookups per connection stay O(1)).
    pub shared_index: HashMap<u64, usize>,
}

impl TwoSided {
    /// The connection a record belongs to (its own id unless it is a view).
    pub fn primary_of(&self, conn_id: u64) -> u64 {
        self.view_of.get(&conn_id).copied().unwrap_or(conn_id)
    }

    /// The shared-connection entry of a record (primary or view).
    pub fn shared_of(&self, conn_id: u64) -> Option<&SharedConnection> {
        let p = self.primary_of(conn_id);
        self.shared.get(*self.shared_index.get(&p)?)
    }

    /// Inputs a connection record was seen in, in input order.
    pub fn seen_in(&self, c: &Connection) -> Vec<u32> {
        match self.shared_of(c.id) {
            Some(s) => vec![s.primary_input, s.view_input],
            None => vec![c.input],
        }
    }
}

fn is_capture(format: &str) -> bool {
    format == "pcap" || format == "pcapng"
}

/// The user's offset for an input, by its path or file name.
fn user_offset(options: &Options, path: &str) -> Option<f64> {
    let name = Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or(path);
    options.clock_offsets.iter().find(|(f, _)| f == path || f == name).map(|(_, o)| *o)
}

/// Matches the captures' connections, aligns their clocks and records the shared connections.
/// Runs after every input is read and before the detectors.
pub fn align(analysis: &mut Analysis, options: &Options) {
    let captures: Vec<u32> =
        (0..analysis.inputs.len() as u32).filter(|&i| is_capture(&analysis.inputs[i as usize].format)).collect();
    let Some(&reference) = captures.first() else { return };
    if captures.len() < 2 && options.clock_offsets.is_empty() {
        return;
    }
    let mut clocks = vec![InputClock {
        input: reference,
        offset_ns: Some(0),
        error_ns: None,
        consistent: true,
        source: OffsetSource::Reference,
        matched_connections: 0,
        reference,
    }];
    let mut taken = HashSet::new();
    let mut pairings: Vec<(u32, Pairing)> = Vec::new();
    for (k, &b) in captures.iter().enumerate().skip(1) {
        // The first capture, else the earliest one before b that shares connections with it.
        let mut partner = reference;
        let mut found = Vec::new();
        for &a in std::iter::once(&reference).chain(captures[1..k].iter()) {
            found = matching::match_inputs(&analysis.connections, &analysis.twosided.facts, a, b, &mut taken);
            if !found.is_empty() {
                partner = a;
                break;
            }
        }
        // A partner on the first capture's clock puts b on it too; an unaligned partner starts a
        // clock of its own pair.
        let partner_clock = clocks.iter().find(|c| c.input == partner);
        let group = match partner_clock {
            _ if found.is_empty() => b,
            Some(c) if c.offset_ns.is_some() => c.reference,
            _ => partner,
        };
        let mut clock = InputClock {
            input: b,
            offset_ns: None,
            error_ns: None,
            consistent: true,
            source: OffsetSource::None,
            matched_connections: found.len(),
            reference: group,
        };
        if let Some(o) = user_offset(options, &analysis.inputs[b as usize].path) {
            clock.offset_ns = Some((o * 1e9).round() as i64);
            clock.source = OffsetSource::User;
        } else {
            let all: Vec<Deltas> = found.iter().map(|p| deltas(analysis, p)).collect();
            let intervals: Vec<(i64, i64)> =
                all.iter().filter_map(|d| clock::bounds(d).map(|(l, h, _)| (l, h))).collect();
            let estimate = clock::estimate(&intervals).or_else(|| {
                let flat: Vec<i64> = all.iter().flat_map(|d| d.client.iter().chain(&d.server)).copied().collect();
                clock::estimate_same_point(&flat)
            });
            if let Some(e) = estimate {
                clock.offset_ns = Some(e.offset_ns);
                clock.error_ns = Some(e.error_ns);
                clock.consistent = e.consistent;
                clock.source = OffsetSource::Estimated;
            }
        }
        if let Some(off) = clock.offset_ns {
            shift_input(analysis, b, off);
        }
        if let Some(c) = clocks.iter_mut().find(|c| c.input == partner) {
            c.matched_connections += found.len();
        }
        pairings.extend(found.into_iter().map(|p| (b, p)));
        clocks.push(clock);
    }
    // A capture unaligned to the first one but paired with a later one is its pair's reference.
    let roots: HashSet<u32> =
        clocks.iter().filter(|c| c.reference != reference && c.reference != c.input).map(|c| c.reference).collect();
    for c in clocks.iter_mut().filter(|c| c.offset_ns.is_none() && roots.contains(&c.input)) {
        c.source = OffsetSource::Reference;
    }
    // An offset for the reference itself moves every other capture the other way.
    if let Some(o) = user_offset(options, &analysis.inputs[reference as usize].path) {
        clocks[0].source = OffsetSource::User;
        clocks[0].offset_ns = Some((o * 1e9).round() as i64);
    }
    let aligned: HashSet<u32> = clocks.iter().filter(|c| c.offset_ns.is_some()).map(|c| c.input).collect();
    let mut shared = Vec::new();
    for (b, p) in &pairings {
        analysis.twosided.view_of.insert(p.b, p.a);
        shared.push(compare(analysis, p, aligned.contains(b)));
    }
    analysis.twosided.clocks = clocks;
    analysis.twosided.shared_index = shared.iter().enumerate().map(|(i, s)| (s.primary, i)).collect();
    analysis.twosided.shared = shared;
}

fn views<'a>(a: &'a Analysis, p: &Pairing) -> Option<(&'a Connection, &'a ConnFacts, &'a Connection, &'a ConnFacts)> {
    let ca = connection(a, p.a)?;
    let cb = connection(a, p.b)?;
    Some((ca, a.twosided.facts.get(&p.a)?, cb, a.twosided.facts.get(&p.b)?))
}

/// A connection by id: ids are assigned in table order, so the id is the index unless inputs were
/// merged out of order; then a search.
fn connection(a: &Analysis, id: u64) -> Option<&Connection> {
    match a.connections.get(id as usize) {
        Some(c) if c.id == id => Some(c),
        _ => a.connections.iter().find(|c| c.id == id),
    }
}

fn deltas(a: &Analysis, p: &Pairing) -> Deltas {
    let mut d = Deltas::default();
    let Some((_, fa, _, fb)) = views(a, p) else { return d };
    let pa: Vec<&PacketFact> = fa.packets().collect();
    let pb: Vec<&PacketFact> = fb.packets().collect();
    for &(i, j, client) in &p.pairs {
        let delta = pb[j].ts.saturating_sub(pa[i].ts);
        if client {
            d.client.push(delta);
        } else {
            d.server.push(delta);
        }
    }
    d
}

/// Moves every timestamp of one input onto the reference clock.
fn shift_input(a: &mut Analysis, input: u32, offset_ns: i64) {
    let mv = |t: &mut UtcNs| *t = t.saturating_sub(offset_ns);
    for c in a.connections.iter_mut().filter(|c| c.input == input) {
        mv(&mut c.first_ts);
        mv(&mut c.last_ts);
        c.kept_notes_mut().for_each(|p| mv(&mut p.ts));
    }
    for f in a.twosided.facts.values_mut().filter(|f| f.input == input) {
        f.head.iter_mut().chain(f.tail.iter_mut()).for_each(|p| mv(&mut p.ts));
        f.rsts.iter_mut().for_each(|r| mv(&mut r.fact.ts));
    }
    let s = &mut a.inputs[input as usize];
    s.first_ts.iter_mut().for_each(mv);
    s.last_ts.iter_mut().for_each(mv);
}

fn view_packet(input: u32, p: &PacketFact, client: bool) -> ViewPacket {
    ViewPacket {
        input,
        frame: p.frame,
        ts: p.ts,
        side: if client { Side::Client } else { Side::Server },
        flags: p.flags,
        ttl: p.ttl,
        ip_id: p.ip_id,
        len: p.len,
    }
}

fn delay(mut v: Vec<i64>) -> Option<Delay> {
    v.sort_unstable();
    Some(Delay { min_ns: *v.first()?, median_ns: v[v.len() / 2], packets: v.len() })
}

/// Whether the capture of `input` was running around `t` and kept this connection's packets then.
fn covers(a: &Analysis, input: u32, f: &ConnFacts, t: UtcNs) -> bool {
    let s = &a.inputs[input as usize];
    let running = matches!((s.first_ts, s.last_ts), (Some(first), Some(last))
        if first <= t.saturating_sub(COVER_MARGIN_NS) && t.saturating_add(COVER_MARGIN_NS) <= last);
    let in_gap = f.elided > 0 && f.head.last().is_some_and(|h| h.ts < t) && f.tail.front().is_some_and(|p| t < p.ts);
    running && !in_gap
}

/// The TTL a direction's packets carried in one view (median of what was kept).
fn dir_ttl(c: &Connection, f: &ConnFacts, client: bool, flip: bool) -> Option<u8> {
    let mut v: Vec<u8> =
        f.packets().filter(|p| (from_client(c, f, p) != flip) == client && p.flags & RST == 0).map(|p| p.ttl).collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

fn compare(a: &Analysis, p: &Pairing, aligned: bool) -> SharedConnection {
    let mut s = SharedConnection {
        primary: p.a,
        view: p.b,
        primary_input: 0,
        view_input: 0,
        by: p.by,
        matched_packets: p.pairs.len(),
        paired_frames: Vec::new(),
        client_end: None,
        delay_client_to_server: None,
        delay_server_to_client: None,
        lost: Vec::new(),
        lost_count: 0,
        injected: Vec::new(),
        injected_count: 0,
        first_rst: None,
    };
    let Some((ca, fa, cb, fb)) = views(a, p) else { return s };
    s.primary_input = ca.input;
    s.view_input = cb.input;
    let (pa, pb): (Vec<&PacketFact>, Vec<&PacketFact>) = (fa.packets().collect(), fb.packets().collect());
    s.paired_frames = p.pairs.iter().map(|&(i, j, _)| (pa[i].frame, pb[j].frame)).collect();
    let side_b = |q: &PacketFact| from_client(cb, fb, q) != p.flip;
    let rsts = fa
        .packets()
        .filter(|q| q.flags & RST != 0)
        .map(|q| view_packet(ca.input, q, from_client(ca, fa, q)))
        .chain(fb.packets().filter(|q| q.flags & RST != 0).map(|q| view_packet(cb.input, q, side_b(q))));
    s.first_rst = rsts.min_by_key(|r| (r.ts, r.input));
    if !aligned {
        return s;
    }
    // Where each capture sits: the timing on the common clock, else the TTLs (the sender's own
    // capture sees its initial TTL, the far end fewer).
    let d = deltas(a, p);
    let med = |v: &[i64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    };
    s.client_end = match (med(&d.client), med(&d.server)) {
        (Some(mc), Some(ms)) if mc > 0 && ms < 0 => Some(ca.input),
        (Some(mc), Some(ms)) if mc < 0 && ms > 0 => Some(cb.input),
        _ => None,
    };
    if s.client_end.is_none() {
        let ttl = |client: bool| (dir_ttl(ca, fa, client, false), dir_ttl(cb, fb, client, p.flip));
        s.client_end = match (ttl(true), ttl(false)) {
            ((Some(x), Some(y)), _) if x != y => Some(if x > y { ca.input } else { cb.input }),
            (_, (Some(x), Some(y))) if x != y => Some(if x > y { cb.input } else { ca.input }),
            _ => None,
        };
    }
    let Some(client_end) = s.client_end else { return s };
    let a_at_client = client_end == ca.input;
    // One-way delays: arrival at the receiving end minus departure at the sender's.
    let sign = if a_at_client { 1 } else { -1 };
    s.delay_client_to_server = delay(d.client.iter().map(|x| x * sign).collect());
    s.delay_server_to_client = delay(d.server.iter().map(|x| -x * sign).collect());
    let paired_a: HashSet<usize> = p.pairs.iter().map(|x| x.0).collect();
    let paired_b: HashSet<usize> = p.pairs.iter().map(|x| x.1).collect();
    let mut one_sided = |vp: ViewPacket, other_input: u32, other: &ConnFacts| {
        if !covers(a, other_input, other, vp.ts) {
            return;
        }
        let sender_end = if vp.side == Side::Client { client_end } else { other_end(client_end, ca, cb) };
        if sender_end == vp.input {
            s.lost_count += 1;
            if s.lost.len() < EXAMPLES_KEPT {
                s.lost.push(vp);
            }
        } else {
            s.injected_count += 1;
            if s.injected.len() < EXAMPLES_KEPT {
                s.injected.push(vp);
            }
        }
    };
    for (_, q) in fa.packets().enumerate().filter(|(i, _)| !paired_a.contains(i)) {
        one_sided(view_packet(ca.input, q, from_client(ca, fa, q)), cb.input, fb);
    }
    for (_, q) in fb.packets().enumerate().filter(|(j, _)| !paired_b.contains(j)) {
        one_sided(view_packet(cb.input, q, side_b(q)), ca.input, fa);
    }
    s
}

fn other_end(client_end: u32, ca: &Connection, cb: &Connection) -> u32 {
    if client_end == ca.input {
        cb.input
    } else {
        ca.input
    }
}

/// After the detectors: a finding the views repeat (same kind, same connections once views are
/// mapped to their connection) is one finding, with the evidence of both captures.
pub fn merge_view_findings(a: &mut Analysis) {
    if a.twosided.view_of.is_empty() {
        return;
    }
    let ts = &a.twosided;
    let mut first: BTreeMap<(crate::model::FindingKind, Vec<u64>), usize> = BTreeMap::new();
    let mut keep = vec![true; a.findings.len()];
    for i in 0..a.findings.len() {
        let mut conns: Vec<u64> = a.findings[i].connections.iter().map(|&c| ts.primary_of(c)).collect();
        conns.sort_unstable();
        conns.dedup();
        if conns.is_empty() {
            continue;
        }
        let touches_view = a.findings[i].connections.iter().any(|c| ts.view_of.contains_key(c));
        match first.get(&(a.findings[i].kind, conns.clone())) {
            Some(&k) if touches_view || a.findings[k].connections.iter().any(|c| ts.view_of.contains_key(c)) => {
                let (ev, extra_conns) = (a.findings[i].evidence.clone(), a.findings[i].connections.clone());
                let kept = &mut a.findings[k];
                kept.evidence =
                    crate::analysis::detect::cap_evidence(kept.evidence.iter().copied().chain(ev).collect());
                kept.connections.extend(extra_conns);
                kept.connections.sort_unstable();
                kept.connections.dedup();
                keep[i] = false;
            }
            _ => {
                first.entry((a.findings[i].kind, conns)).or_insert(i);
            }
        }
    }
    let mut it = keep.iter();
    a.findings.retain(|_| *it.next().unwrap_or(&true));
    for (i, f) in a.findings.iter_mut().enumerate() {
        f.id = i as u64 + 1;
    }
}

/// `summary.json` `shared_connections`: per connection seen in two captures, how it was matched,
/// where each capture sits, the one-way delays, what only one side saw and who saw a reset first.
pub fn summary_json(a: &Analysis) -> serde_json::Value {
    use serde_json::json;
    let name = |i: u32| a.input_name(i).to_string();
    let delay = |d: Option<Delay>| {
        d.map(|d| json!({"min_s": d.min_ns as f64 / 1e9, "median_s": d.median_ns as f64 / 1e9, "packets": d.packets}))
    };
    let packets =
        |v: &[ViewPacket]| v.iter().map(|p| format!("{}#{}", a.input_name(p.input), p.frame)).collect::<Vec<_>>();
    a.twosided
        .shared
        .iter()
        .map(|s| {
            json!({
                "conn_id": s.primary,
                "view_conn_id": s.view,
                "inputs": [name(s.primary_input), name(s.view_input)],
                "matched_by": s.by.name(),
                "matched_packets": s.matched_packets,
                "client_end": s.client_end.map(name),
                "delay_client_to_server": delay(s.delay_client_to_server),
                "delay_server_to_client": delay(s.delay_server_to_client),
                "lost_between": s.lost_count,
                "lost_examples": packets(&s.lost),
                "injected": s.injected_count,
                "injected_examples": packets(&s.injected),
                "first_rst": s.first_rst.map(|r| json!({"input": name(r.input), "frame": r.frame, "utc": crate::model::format_utc(r.ts), "sender": r.side.name()})),
            })
        })
        .collect()
}

/// A direction's delay for sentences: `48 µs median (min 31 µs, 12 packets)`.
pub fn describe_delay(d: Option<Delay>) -> String {
    match d {
        Some(d) => format!(
            "{} median (min {}, {} packets)",
            super::detect::secs(d.median_ns),
            super::detect::secs(d.min_ns),
            d.packets
        ),
        None => "unknown".into(),
    }
}
