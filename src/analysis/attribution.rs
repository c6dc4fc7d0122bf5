//! The process behind each connection: socket owners named by Windows event sources
//! (Microsoft-Windows-TCPIP and classic TcpIp ETW, Process Monitor TCP events, Sysmon event 3)
//! joined to the connections rebuilt from packets.
//!
//! Rule: an owner matches a connection when its (local, remote) pair is the connection's
//! (client, server) in either direction and its time lies within the connection's lifetime
//! widened by [`SLACK_NS`] (a Connect event precedes the SYN; clocks of two sources differ a
//! little). The client's owner wins over the server's (both can be local on loopback); among
//! them, connection events (connect/accept) before per-packet ones, then the nearest in time.
//! Memory: an index over the owners, which the readers bound.

use std::collections::HashMap;
use std::sync::Arc;

use super::Analysis;
use crate::model::{Endpoint, SocketOp, SocketOwner};

/// How far outside a connection's lifetime an owner's event may lie.
pub const SLACK_NS: i64 = 2_000_000_000;

/// `w3wp.exe (4120)`, or `pid 4120` without a name.
pub fn process_label(pid: u32, process: Option<&str>) -> String {
    match process {
        Some(p) if !p.is_empty() => format!("{p} ({pid})"),
        _ => format!("pid {pid}"),
    }
}

fn key(a: Endpoint, b: Endpoint) -> (Endpoint, Endpoint) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Sets `pid`/`process` on every connection an owner matches.
pub fn attribute(a: &mut Analysis) {
    if a.socket_owners.is_empty() {
        return;
    }
    let mut index: HashMap<(Endpoint, Endpoint), Vec<usize>> = HashMap::new();
    // One shared name per process: a million connections of one service hold one string.
    let mut shared: HashMap<&str, Arc<str>> = HashMap::new();
    let mut names: HashMap<u32, Arc<str>> = HashMap::new();
    for (i, o) in a.socket_owners.iter().enumerate() {
        index.entry(key(o.local, o.remote)).or_default().push(i);
        if let Some(p) = o.process.as_deref().filter(|p| !p.is_empty()) {
            let name = shared.entry(p).or_insert_with(|| Arc::from(p)).clone();
            names.entry(o.pid).or_insert(name);
        }
    }
    for c in &mut a.connections {
        let Some(cands) = index.get(&key(c.client, c.server)) else { continue };
        let best = cands
            .iter()
            .map(|&i| &a.socket_owners[i])
            .filter(|o| o.ts >= c.first_ts.saturating_sub(SLACK_NS) && o.ts <= c.last_ts.saturating_add(SLACK_NS))
            .min_by_key(|o| rank(o, c.client, c.first_ts));
        if let Some(o) = best {
            c.pid = Some(o.pid);
            c.process = o.process.as_deref().and_then(|p| shared.get(p)).or_else(|| names.get(&o.pid)).cloned();
        }
    }
}

fn rank(o: &SocketOwner, client: Endpoint, first_ts: i64) -> (u8, u8, i64) {
    let side = if o.local == client { 0 } else { 1 };
    let op = match o.op {
        SocketOp::Connect | SocketOp::Accept => 0,
        _ => 1,
    };
    (side, op, o.ts.saturating_sub(first_ts).saturating_abs())
}

/// Names the process in findings about attributed connections: sets `pid` when empty and
/// appends `Process: w3wp.exe (4120).` to the summary.
pub fn annotate_findings(a: &mut Analysis) {
    let by_id: HashMap<u64, (u32, Option<&str>)> =
        a.connections.iter().filter_map(|c| c.pid.map(|p| (c.id, (p, c.process.as_deref())))).collect();
    if by_id.is_empty() {
        return;
    }
    for f in &mut a.findings {
        let mut procs: Vec<(u32, Option<&str>)> =
            f.connections.iter().filter_map(|id| by_id.get(id).copied()).collect();
        procs.sort();
        procs.dedup();
        if procs.is_empty() {
            continue;
        }
        if f.pid.is_empty() {
            f.pid = procs.iter().map(|p| p.0.to_string()).collect::<Vec<_>>().join(" ");
        }
        let shown: Vec<String> = procs.iter().take(3).map(|(p, n)| process_label(*p, *n)).collect();
        let more = if procs.len() > 3 { format!(" and {} more", procs.len() - 3) } else { String::new() };
        let word = if procs.len() == 1 { "Process" } else { "Processes" };
        f.summary = format!("{} {word}: {}{more}.", f.summary.trim_end(), shown.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Connection;
    use std::net::{IpAddr, Ipv4Addr};

    fn ep(last: u8, port: u16) -> Endpoint {
        Endpoint { ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port }
    }

    fn conn(id: u64, client: Endpoint, server: Endpoint, first: i64, last: i64) -> Connection {
        Connection { last_ts: last, ..Connection::opened(id, 0, id as u32, client, server, first, 1) }
    }

    fn owner(ts: i64, local: Endpoint, remote: Endpoint, pid: u32, name: Option<&str>, op: SocketOp) -> SocketOwner {
        SocketOwner { input: 1, record: 0, ts, local, remote, pid, process: name.map(String::from), op }
    }

    #[test]
    fn joins_by_tuple_both_directions_and_time() {
        let (c, s) = (ep(1, 50000), ep(2, 443));
        let mut a = Analysis::default();
        a.connections.push(conn(0, c, s, 10_000_000_000, 20_000_000_000));
        // The same 4-tuple reused an hour later: a different process.
        a.connections.push(conn(1, c, s, 3_600_000_000_000, 3_601_000_000_000));
        a.connections.push(conn(2, ep(3, 50001), s, 10_000_000_000, 20_000_000_000));
        // Server side seen only (remote = client): still attributed, to the server process.
        a.socket_owners.push(owner(9_900_000_000, s, ep(3, 50001), 4120, Some("w3wp.exe"), SocketOp::Accept));
        a.socket_owners.push(owner(9_999_000_000, c, s, 700, Some("client.exe"), SocketOp::Connect));
        a.socket_owners.push(owner(10_000_000_000, s, c, 4120, None, SocketOp::Accept));
        a.socket_owners.push(owner(3_600_000_000_000, c, s, 701, None, SocketOp::Connect));
        attribute(&mut a);
        assert_eq!((a.connections[0].pid, a.connections[0].process.as_deref()), (Some(700), Some("client.exe")));
        assert_eq!((a.connections[1].pid, a.connections[1].process.as_deref()), (Some(701), None));
        assert_eq!((a.connections[2].pid, a.connections[2].process.as_deref()), (Some(4120), Some("w3wp.exe")));
        assert_eq!(process_label(4120, Some("w3wp.exe")), "w3wp.exe (4120)");
    }
}
