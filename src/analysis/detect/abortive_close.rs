//! `abortive_close` — rule: after an ordinary exchange (handshake and data), one side ends the
//! connection with RST instead of FIN (also in answer to the peer's FIN), without having sent FIN
//! itself before and without the reset being
//! an answer to anything explained elsewhere (stale data, a refused SYN, a keep-alive, idle). This
//! is SO_LINGER {on, 0} or closesocket() with unread data. Grouped per client host, server
//! endpoint and resetting side. Not an error in itself: a server aborting leaves its client with
//! WSAECONNRESET 10054 on recv() (warning); a client aborting its own connection is its choice
//! (info). Evidence: the last data before each reset, and the reset.

use std::collections::BTreeMap;

use super::{endpoint_of, evidence, finding, packets, secs, was_established, when, Context};
use crate::model::tcp_flags::{FIN, RST};
use crate::model::FindingKind;
use crate::model::{Connection, EvidenceRef, Finding, Severity, Side};

pub const ADVICE: &str = "An abortive close is not an error in itself: the side that reset chose to drop the \
connection at once instead of closing it gracefully, either with SO_LINGER {l_onoff=1, l_linger=0} (often to \
avoid TIME_WAIT) or by calling closesocket() while unread data was still in its receive buffer. Its peer gets \
WSAECONNRESET 10054 on the next recv()/send() and may lose data still in flight. If the reset is deliberate, \
make sure the exchange is complete at the application level first; otherwise close gracefully: \
shutdown(SD_SEND), read until recv() returns 0, then closesocket(), and read the whole request/response \
before closing.";

pub fn detect(ctx: &mut Context) -> Vec<Finding> {
    let a = ctx.analysis;
    // (input, client ip, server, side) → (connection, last data before, rst)
    let mut groups: BTreeMap<_, Vec<(&Connection, Option<u64>, u64, i64)>> = BTreeMap::new();
    for c in a.connections.iter().filter(|c| c.client_rst + c.server_rst > 0 && was_established(c)) {
        if c.client_bytes + c.server_bytes == 0 {
            continue;
        }
        let ps = packets(c);
        for (ri, rst) in ps.iter().enumerate() {
            if rst.flags & RST == 0 || ctx.is_claimed(c, rst.frame) {
                continue;
            }
            if ps[..ri].iter().any(|p| p.side == rst.side && p.flags & FIN != 0) {
                break; // the resetting side had closed already: benign
            }
            // A reset before any data (e.g. answering the SYN) is no close of an exchange.
            let Some(last_data) = ps[..ri].iter().rev().find(|p| p.payload_len > 0) else { continue };
            let gap = rst.ts.saturating_sub(last_data.ts);
            groups.entry((c.input, c.client.ip, c.server, rst.side == Side::Server)).or_default().push((
                c,
                Some(last_data.frame),
                rst.frame,
                gap,
            ));
            break;
        }
    }
    let mut out = Vec::new();
    for ((_, client_ip, server, by_server), items) in groups {
        let conns: Vec<&Connection> = items.iter().map(|i| i.0).collect();
        let mut ev: Vec<EvidenceRef> = Vec::new();
        for (c, data, rst, _) in &items {
            ev.extend(evidence(c, data.iter().copied().chain([*rst])));
            ctx.claim(c, *rst, FindingKind::AbortiveClose);
        }
        let first = conns.iter().map(|c| c.last_ts).min().unwrap_or(0);
        let last = conns.iter().map(|c| c.last_ts).max().unwrap_or(first);
        let n = items.len();
        let max_gap = items.iter().map(|i| i.3).max().unwrap_or(0);
        let (who, severity, effect) = if by_server {
            (
                format!("Server {server}"),
                Severity::Warning,
                format!("client {client_ip} saw WSAECONNRESET 10054 on recv()"),
            )
        } else {
            (format!("Client {client_ip}"), Severity::Info, format!("{server} may see WSAECONNRESET 10054"))
        };
        let one = conns.first().map(|c| endpoint_of(c, if by_server { Side::Client } else { Side::Server }));
        let summary = format!(
            "{who} ended {n} connection{} {} with RST instead of FIN after an ordinary exchange (abortive close, at most {} after the last data), between {} and {}; {effect}. Not an error in itself.",
            if n == 1 { "" } else { "s" },
            if by_server {
                format!("with {}", if n == 1 { one.map(|e| e.to_string()).unwrap_or_default() } else { client_ip.to_string() })
            } else {
                format!("to {server}")
            },
            secs(max_gap),
            when(first),
            when(last)
        );
        out.push(finding(FindingKind::AbortiveClose, severity, &conns, first, last, n as u64, ev, summary, ADVICE));
    }
    out
}
