//! Detectors: one file each, each stating its rule, its evidence and its advice in its doc comment.
//! They read only the analysis model. Every reset (RST frame) is claimed by at most one detector,
//! in order of how specific its explanation is; the rest are classified as unexplained.

pub mod abortive_close;
pub mod closed_before_reply;
pub mod connect_timeout;
pub mod connection_refused;
pub mod half_open_reuse;
pub mod idle_reset;
pub mod keepalive;
pub mod middlebox_reset;
pub mod packet_drop;
pub mod pipe_busy;
pub mod pipe_churn;
pub mod pipe_common;
pub mod pipe_exhaustion;
pub mod pipe_not_found;
pub mod port_exhaustion;
pub mod port_reuse;
pub mod port_scan;
pub mod retransmission_timeout;
pub mod server_restart;
pub mod stale_connection;
pub mod suspected_middlebox_reset;
pub mod verdicts;
pub mod zero_window_stall;

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use super::{Analysis, Options, ResetClass};
use crate::model::tcp_flags::RST;
use crate::model::{
    format_utc, Connection, Endpoint, EvidenceRef, Finding, FindingKind, PacketNote, Severity, Side, UtcNs,
};

/// At most this many frames are listed as a finding's evidence.
pub const MAX_EVIDENCE: usize = 8;

/// What detectors share: the analysis, options, what earlier detectors concluded.
pub struct Context<'a> {
    pub analysis: &'a Analysis,
    pub options: &'a Options,
    /// RST frames already explained by a finding: (input, frame) → finding kind.
    pub claimed: HashMap<(u32, u64), FindingKind>,
    /// Server endpoints that went down: (input, endpoint, down time, back-up time if seen).
    pub restarts: Vec<Restart>,
    /// Connections a broader finding already explains (a scan's probes): ids.
    pub absorbed: std::collections::HashSet<u64>,
    /// Each client's port use, worked out once for `port_exhaustion` and the verdicts.
    pub port_usage: std::cell::OnceCell<Vec<port_exhaustion::PortUsage>>,
}

/// A server endpoint that stopped, from `server_restart`.
#[derive(Clone, Debug)]
pub struct Restart {
    pub server: Endpoint,
    pub down: UtcNs,
    pub up: Option<UtcNs>,
}

impl Context<'_> {
    pub fn is_claimed(&self, conn: &Connection, frame: u64) -> bool {
        self.claimed.contains_key(&(conn.input, frame))
    }
    pub fn claim(&mut self, conn: &Connection, frame: u64, kind: FindingKind) {
        self.claimed.entry((conn.input, frame)).or_insert(kind);
    }
}

/// Runs every detector, numbers the findings, classifies every reset and answers the
/// standing questions.
pub fn run_all(analysis: &mut Analysis, options: &Options) {
    detect_all(analysis, options).store(analysis);
}

/// What the detectors concluded, before it is stored in the analysis.
pub struct Detected {
    findings: Vec<Finding>,
    resets: Vec<ResetClass>,
    verdicts: Vec<super::Verdict>,
}

/// Runs every detector on an analysis it only reads (other readers of the finished connection
/// table, such as the connections.csv writer, may run meanwhile).
pub fn detect_all(analysis: &Analysis, options: &Options) -> Detected {
    let mut findings = Vec::new();
    let mut ctx = Context {
        analysis,
        options,
        claimed: HashMap::new(),
        restarts: Vec::new(),
        absorbed: Default::default(),
        port_usage: Default::default(),
    };
    // Most specific explanations of a reset first; a scan absorbs its probes before anything.
    findings.extend(port_scan::detect(&mut ctx));
    // Who sent a reset comes before what it means: proven (two captures), then suspected (one).
    findings.extend(middlebox_reset::detect(&mut ctx));
    findings.extend(suspected_middlebox_reset::detect(&mut ctx));
    findings.extend(half_open_reuse::detect(&mut ctx));
    findings.extend(connection_refused::detect(&mut ctx));
    findings.extend(server_restart::detect(&mut ctx));
    findings.extend(keepalive::detect_reset(&mut ctx));
    findings.extend(closed_before_reply::detect(&mut ctx));
    findings.extend(stale_connection::detect(&mut ctx));
    findings.extend(zero_window_stall::detect(&mut ctx));
    findings.extend(keepalive::detect_timeout(&mut ctx));
    findings.extend(retransmission_timeout::detect(&mut ctx));
    findings.extend(idle_reset::detect(&mut ctx));
    findings.extend(abortive_close::detect(&mut ctx));
    findings.extend(connect_timeout::detect(&mut ctx));
    findings.extend(port_exhaustion::detect(&mut ctx));
    findings.extend(port_reuse::detect(&mut ctx));
    findings.extend(pipe_busy::detect(&mut ctx));
    findings.extend(pipe_not_found::detect(&mut ctx));
    findings.extend(pipe_churn::detect(&mut ctx));
    findings.extend(pipe_exhaustion::detect(&mut ctx));
    // Last: it names the findings above that its drops explain.
    let drops = packet_drop::detect(&ctx, &findings);
    findings.extend(drops);
    let resets = classify_resets(&ctx);
    let verdicts = verdicts::answer(&ctx, &findings, &resets);
    findings.sort_by_key(|f| (f.first_ts, f.severity, f.kind.name()));
    for (i, f) in findings.iter_mut().enumerate() {
        f.id = i as u64 + 1;
    }
    Detected { findings, resets, verdicts }
}

impl Detected {
    pub fn store(self, analysis: &mut Analysis) {
        analysis.resets = self.resets;
        analysis.verdicts = self.verdicts;
        analysis.findings.extend(self.findings);
    }
}

fn classify_resets(ctx: &Context) -> Vec<ResetClass> {
    let mut out = Vec::new();
    for c in &ctx.analysis.connections {
        if c.client_rst + c.server_rst == 0 {
            continue;
        }
        for p in c.packets().filter(|p| p.flags & RST != 0) {
            let classification = match ctx.claimed.get(&(c.input, p.frame)) {
                Some(kind) => kind.name().to_string(),
                None => benign_reset(c, &p).unwrap_or("unexplained").to_string(),
            };
            out.push(ResetClass {
                input: c.input,
                frame: p.frame,
                conn_id: c.id,
                sender: p.side.name(),
                classification,
            });
        }
    }
    out
}

/// A reset that needs no finding: after both sides closed, or a repeat of one already sent.
fn benign_reset(c: &Connection, rst: &PacketNote) -> Option<&'static str> {
    let before: Vec<PacketNote> = c.packets().take_while(|p| p.frame < rst.frame).collect();
    let fin = |s: Side| before.iter().any(|p| p.side == s && p.flags & crate::model::tcp_flags::FIN != 0);
    if fin(Side::Client) && fin(Side::Server) {
        return Some("after_close");
    }
    if before.iter().any(|p| p.side == rst.side && p.flags & RST != 0) {
        return Some("repeated_reset");
    }
    None
}

/// The endpoint that sent on `side`.
pub fn endpoint_of(c: &Connection, side: Side) -> Endpoint {
    match side {
        Side::Client => c.client,
        Side::Server => c.server,
    }
}

pub fn evidence(c: &Connection, frames: impl IntoIterator<Item = u64>) -> Vec<EvidenceRef> {
    frames.into_iter().map(|frame| EvidenceRef { input: c.input, frame }).collect()
}

/// Evidence from several connections, capped at `MAX_EVIDENCE`, keeping the first and last.
pub fn cap_evidence(mut ev: Vec<EvidenceRef>) -> Vec<EvidenceRef> {
    ev.sort();
    ev.dedup();
    if ev.len() > MAX_EVIDENCE {
        let tail = ev.split_off(ev.len() - MAX_EVIDENCE / 2);
        ev.truncate(MAX_EVIDENCE - tail.len());
        ev.extend(tail);
    }
    ev
}

/// A display filter that shows exactly these connections: their `tcp.stream` numbers when they
/// come from one input (our streams match Wireshark's), else their address/port pairs.
pub fn wireshark_filter(conns: &[&Connection]) -> String {
    let inputs: BTreeSet<u32> = conns.iter().map(|c| c.input).collect();
    if inputs.len() <= 1 {
        let streams: BTreeSet<u32> = conns.iter().map(|c| c.stream).collect();
        if streams.len() == 1 {
            return format!("tcp.stream eq {}", streams.iter().next().copied().unwrap_or(0));
        }
        let list: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
        return format!("tcp.stream in {{{}}}", list.join(" "));
    }
    let pairs: BTreeSet<String> = conns.iter().map(|c| tuple_filter(c.client, c.server)).collect();
    pairs.into_iter().collect::<Vec<_>>().join(" || ")
}

fn addr_field(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ip.addr"
    } else {
        "ipv6.addr"
    }
}

fn tuple_filter(a: Endpoint, b: Endpoint) -> String {
    format!(
        "({} eq {} && tcp.port eq {} && {} eq {} && tcp.port eq {})",
        addr_field(&a.ip),
        a.ip,
        a.port,
        addr_field(&b.ip),
        b.ip,
        b.port
    )
}

/// `ip` alone when a finding covers several client ports, else `ip:port`.
pub fn client_label(conns: &[&Connection]) -> String {
    let endpoints: BTreeSet<Endpoint> = conns.iter().map(|c| c.client).collect();
    let ips: BTreeSet<IpAddr> = endpoints.iter().map(|e| e.ip).collect();
    match (endpoints.len(), ips.len()) {
        (1, _) => endpoints.iter().next().map(|e| e.to_string()).unwrap_or_default(),
        (_, 1) => ips.iter().next().map(|ip| ip.to_string()).unwrap_or_default(),
        _ => ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>().join(" "),
    }
}

/// Short UTC time for sentences: `2026-11-22 10:15:03.123`.
pub fn when(ts: UtcNs) -> String {
    let s = format_utc(ts);
    format!("{} {}", &s[..10], &s[11..23])
}

/// A duration for sentences: `2.4 s`, `38 ms`, `0.05 ms`.
pub fn secs(ns: i64) -> String {
    let s = ns as f64 / 1e9;
    match s.abs() {
        x if x >= 10.0 => format!("{s:.0} s"),
        x if x >= 1.0 => format!("{s:.1} s"),
        x if x >= 0.001 => format!("{:.0} ms", s * 1e3),
        _ => format!("{:.2} ms", s * 1e3),
    }
}

/// A finding with the fields every detector fills the same way.
#[allow(clippy::too_many_arguments)]
pub fn finding(
    kind: FindingKind,
    severity: Severity,
    conns: &[&Connection],
    first_ts: UtcNs,
    last_ts: UtcNs,
    count: u64,
    evidence: Vec<EvidenceRef>,
    summary: String,
    advice: &str,
) -> Finding {
    let server = {
        let servers: BTreeSet<Endpoint> = conns.iter().map(|c| c.server).collect();
        servers.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" ")
    };
    Finding {
        id: 0,
        kind,
        severity,
        first_ts,
        last_ts,
        client: client_label(conns),
        server,
        pipe: String::new(),
        pid: String::new(),
        count,
        evidence: cap_evidence(evidence),
        wireshark_filter: wireshark_filter(conns),
        log_lines: Vec::new(),
        summary,
        advice: advice.to_string(),
        connections: conns.iter().map(|c| c.id).collect(),
    }
}

/// Splits time-sorted items into bursts separated by more than `gap` nanoseconds.
pub fn bursts<T>(items: Vec<T>, ts: impl Fn(&T) -> UtcNs, gap: i64) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut last: Option<UtcNs> = None;
    for it in items {
        let t = ts(&it);
        match (out.last_mut(), last) {
            (Some(cur), Some(l)) if t.saturating_sub(l) <= gap => cur.push(it),
            _ => out.push(vec![it]),
        }
        last = Some(t);
    }
    out
}

/// The connections `pick` selects, per input and server endpoint, split into bursts of attempts
/// less than `gap` nanoseconds apart (by first packet).
pub fn server_bursts<'a>(
    conns: &'a [Connection],
    pick: impl Fn(&Connection) -> bool,
    gap: i64,
) -> Vec<(Endpoint, Vec<&'a Connection>)> {
    let mut per_server: std::collections::BTreeMap<(u32, Endpoint), Vec<&Connection>> = Default::default();
    for c in conns.iter().filter(|c| pick(c)) {
        per_server.entry((c.input, c.server)).or_default().push(c);
    }
    let mut out = Vec::new();
    for ((_, server), mut group) in per_server {
        group.sort_by_key(|c| c.first_ts);
        out.extend(bursts(group, |c| c.first_ts, gap).into_iter().map(|b| (server, b)));
    }
    out
}

/// Packets of a connection in order, as a vector (head then tail).
pub fn packets(c: &Connection) -> Vec<PacketNote> {
    c.packets().collect()
}

/// The connection completed its handshake or exchanged data both ways.
pub fn was_established(c: &Connection) -> bool {
    c.server_synack > 0 || (c.client_packets > 0 && c.server_packets > 0 && c.client_syn == 0)
}
