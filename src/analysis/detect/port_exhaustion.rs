//! `port_exhaustion` — rule: a client host opens short connections and closes them first (its FIN
//! before the server's), so each local port stays in TIME_WAIT for `--time-wait` seconds (Windows:
//! 240). Ports held (open or in TIME_WAIT) are counted over time against the ephemeral range
//! (`--ephemeral-range`, Windows' default 49152–65535; when the capture shows the client's ports
//! cycling within a narrower band — a port reused while its TIME_WAIT would still run, or a band
//! outside the configured range used densely, with evidence of pressure: SYN stalls or
//! 10048/10055 log lines — that band is the range). Error when the held ports reach 90 % of the range (connect() then fails with
//! WSAEADDRINUSE 10048 / WSAENOBUFS 10055); warning when the closing rate would exhaust the range
//! within one TIME_WAIT period. Evidence: the first SYN, the SYN at the peak, the last SYN.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{evidence, finding, packets, when, Context};
use crate::model::tcp_flags::{FIN, RST, SYN};
use crate::model::FindingKind;
use crate::model::{Connection, Finding, Severity, Side, UtcNs};

/// Fewer connections than this from one host say nothing about its port usage.
const MIN_CONNECTIONS: usize = 20;

pub const ADVICE: &str = "The client closes its connections first, so every local port it used sits in \
TIME_WAIT (240 s on Windows) and new connections run out of ephemeral ports: connect()/bind() fail with \
WSAEADDRINUSE 10048 or WSAENOBUFS 10055. Reuse connections (keep-alive, pooling) instead of opening one per \
request; let the server close first where the protocol allows; on Windows widen the range (netsh int ipv4 set \
dynamicport tcp start=… num=…) or shorten TcpTimedWaitDelay (minimum 30 s). Do not 'fix' it with SO_LINGER \
{1,0}: abortive closes trade TIME_WAIT for resets.";

/// How one client host used its ports.
#[derive(Clone, Debug)]
pub struct PortUsage {
    pub input: u32,
    pub client: IpAddr,
    pub connections: usize,
    pub closed_by_client: usize,
    pub peak_held: usize,
    pub peak_at: UtcNs,
    pub range: (u16, u16),
    /// "given", "observed" or "default".
    pub range_source: &'static str,
    /// Closing rate projected over one TIME_WAIT period, when the capture is shorter.
    pub projected_held: Option<usize>,
    pub first_ts: UtcNs,
    pub last_ts: UtcNs,
}

impl PortUsage {
    pub fn range_size(&self) -> usize {
        (self.range.1 as usize).saturating_sub(self.range.0 as usize) + 1
    }
}

/// The client's own FIN came before any FIN or RST from the server.
fn client_closed_first(c: &Connection) -> bool {
    for p in c.packets() {
        if p.flags & (FIN | RST) != 0 {
            return p.side == Side::Client && p.flags & FIN != 0;
        }
    }
    false
}

/// Connection attempts whose SYN was sent again and never answered.
fn syn_stalls(conns: &[&Connection]) -> usize {
    conns.iter().filter(|c| c.client_syn >= 2 && c.server_synack == 0).count()
}

/// Log lines of WSAEADDRINUSE 10048 / WSAENOBUFS 10055 (the connect() failures of exhaustion).
fn address_errors(ctx: &Context, _input: u32) -> bool {
    ctx.analysis.log_events.iter().any(|e| e.codes.iter().any(|&c| c == 10048 || c == 10055))
}

/// Each client's port use (computed on first use, then shared).
pub fn port_usage<'c>(ctx: &'c Context) -> &'c [PortUsage] {
    ctx.port_usage.get_or_init(|| usage_of_ports(ctx))
}

fn usage_of_ports(ctx: &Context) -> Vec<PortUsage> {
    let tw = ctx.options.time_wait_s as i64 * 1_000_000_000;
    let mut per_client: BTreeMap<(u32, IpAddr), Vec<&Connection>> = BTreeMap::new();
    for c in &ctx.analysis.connections {
        per_client.entry((c.input, c.client.ip)).or_default().push(c);
    }
    let capture_end = ctx.analysis.connections.iter().map(|c| c.last_ts).max().unwrap_or(0);
    let mut out = Vec::new();
    for ((input, client), mut conns) in per_client {
        conns.sort_by_key(|c| c.first_ts);
        // Hold intervals (port, open, release), grouped by port below; one vector, not one per port.
        let mut slots: Vec<(u16, UtcNs, UtcNs)> = Vec::with_capacity(conns.len());
        let mut reused_early = false;
        let mut closed_by_client = 0;
        for c in &conns {
            let open_at_end = c.client_fin + c.server_fin + c.client_rst + c.server_rst == 0;
            let release = if client_closed_first(c) {
                closed_by_client += 1;
                c.last_ts.saturating_add(tw)
            } else if open_at_end {
                capture_end
            } else {
                c.last_ts
            };
            slots.push((c.client.port, c.first_ts, release));
        }
        // Stable: each port's intervals stay in time order. A port reused early cut its previous
        // TIME_WAIT short.
        slots.sort_by_key(|s| s.0);
        let mut ports_used = 0usize;
        for i in 0..slots.len() {
            if i == 0 || slots[i - 1].0 != slots[i].0 {
                ports_used += 1;
            } else if slots[i - 1].2 > slots[i].1 {
                reused_early = true;
                slots[i - 1].2 = slots[i].1;
            }
        }
        let mut events: Vec<(UtcNs, i32)> = Vec::with_capacity(slots.len() * 2);
        for &(_, a, b) in &slots {
            events.push((a, 1));
            events.push((b.max(a), -1));
        }
        events.sort_unstable();
        let (mut held, mut peak, mut peak_at) = (0i64, 0i64, 0);
        for (t, d) in events {
            held += d as i64;
            if held > peak {
                peak = held;
                peak_at = t;
            }
        }
        let (lo, hi) = (
            conns.iter().map(|c| c.client.port).min().unwrap_or(0),
            conns.iter().map(|c| c.client.port).max().unwrap_or(0),
        );
        let (dlo, dhi) = ctx.options.ephemeral_range;
        let width = (hi as usize).saturating_sub(lo as usize) + 1;
        // Ports outside the configured range, used densely: the client's real range is that band.
        let dense = ports_used >= MIN_CONNECTIONS && ports_used * 10 >= width * 9;
        // A band inferred from a dense use of ports is the range only with evidence of pressure:
        // SYNs that stalled (retransmitted, unanswered) or the client's own 10048/10055 lines.
        let pressure = syn_stalls(&conns) > 0 || address_errors(ctx, input);
        let (range, range_source) = if ctx.options.ephemeral_range_given {
            (ctx.options.ephemeral_range, "given")
        } else if reused_early && conns.len() >= MIN_CONNECTIONS {
            ((lo, hi), "observed")
        } else if lo >= dlo && hi <= dhi {
            ((dlo, dhi), "default")
        } else if dense && pressure {
            ((lo, hi), "observed")
        } else {
            ((lo.min(dlo), hi.max(dhi)), "observed")
        };
        let first_ts = conns.first().map(|c| c.first_ts).unwrap_or(0);
        let last_ts = conns.iter().map(|c| c.last_ts).max().unwrap_or(first_ts);
        let span = last_ts.saturating_sub(first_ts);
        let projected_held = (span > 0 && span < tw && closed_by_client >= MIN_CONNECTIONS)
            .then(|| (closed_by_client as i128 * tw as i128 / span as i128) as usize);
        out.push(PortUsage {
            input,
            client,
            connections: conns.len(),
            closed_by_client,
            peak_held: peak.max(0) as usize,
            peak_at,
            range,
            range_source,
            projected_held,
            first_ts,
            last_ts,
        });
    }
    out
}

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let mut out = Vec::new();
    let usage = port_usage(ctx);
    for u in usage {
        if u.connections < MIN_CONNECTIONS || u.closed_by_client < MIN_CONNECTIONS {
            continue;
        }
        let size = u.range_size();
        let exhausted = u.peak_held * 10 >= size * 9;
        let projected = u.projected_held.filter(|&p| p >= size);
        if !exhausted && projected.is_none() {
            continue;
        }
        let conns: Vec<&Connection> =
            ctx.analysis.connections.iter().filter(|c| c.input == u.input && c.client.ip == u.client).collect();
        let syn_of = |c: &Connection| {
            packets(c).into_iter().find(|p| p.side == Side::Client && p.flags & SYN != 0).map(|p| p.frame)
        };
        let at_peak = conns.iter().filter(|c| c.first_ts <= u.peak_at).next_back();
        let mut ev = Vec::new();
        for c in [conns.first(), at_peak, conns.last()].into_iter().flatten() {
            ev.extend(evidence(c, syn_of(c)));
        }
        let servers: std::collections::BTreeSet<_> = conns.iter().map(|c| c.server).collect();
        let tw = ctx.options.time_wait_s;
        let (severity, state) = if exhausted {
            (
                Severity::Error,
                format!(
                    "{} ports were held at once at {} (open or in TIME_WAIT for {tw} s)",
                    u.peak_held,
                    when(u.peak_at)
                ),
            )
        } else {
            (
                Severity::Warning,
                format!(
                    "at this closing rate {} ports would sit in TIME_WAIT ({tw} s) at once",
                    projected.unwrap_or(0)
                ),
            )
        };
        let summary = format!(
            "Client {} opened {} connections to {} server endpoint{} between {} and {} and closed {} of them first; {state}, against {} ephemeral ports ({}–{}, {}): new connections fail with WSAEADDRINUSE 10048 / WSAENOBUFS 10055.",
            u.client,
            u.connections,
            servers.len(),
            if servers.len() == 1 { "" } else { "s" },
            when(u.first_ts),
            when(u.last_ts),
            u.closed_by_client,
            size,
            u.range.0,
            u.range.1,
            u.range_source
        );
        let mut f = finding(
            FindingKind::PortExhaustion,
            severity,
            &conns,
            u.first_ts,
            u.last_ts,
            u.connections as u64,
            ev,
            summary,
            ADVICE,
        );
        f.client = u.client.to_string();
        out.push(f);
    }
    out
}
