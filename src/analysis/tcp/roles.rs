//! Client and server of connections whose handshake the capture did not hold.

use std::collections::HashMap;

use super::likely_server_port;
use crate::model::{ConnState, Connection, Endpoint, History};

/// Ports in the IANA dynamic range are a client's, not a service's.
fn ephemeral_port(p: u16) -> bool {
    p >= 49152
}

/// Roles of connections whose handshake was not captured (the capture started late or dropped
/// it), decided from the rest of the same capture before ports: an endpoint that accepted a
/// handshake elsewhere is a server; an endpoint many peers talk to is a server, one that talks
/// to a single peer is a client; then a well-known or registered port against an ephemeral one.
/// The first-packet guess (and Zeek's port rule) stands when nothing decides.
pub fn assign_roles(conns: &mut [Connection]) {
    use std::collections::HashSet;
    // Only the endpoints of connections without a handshake are ever looked up: the sets below
    // hold those alone (a capture of a million handshakes needs none of them).
    let wanted: HashSet<Endpoint, foldhash::fast::RandomState> =
        conns.iter().filter(|c| c.client_syn == 0 && c.server_synack == 0).flat_map(|c| [c.client, c.server]).collect();
    if wanted.is_empty() {
        return;
    }
    let mut servers: HashSet<Endpoint> = HashSet::new();
    let mut clients: HashSet<Endpoint> = HashSet::new();
    let mut peers: HashMap<Endpoint, HashSet<Endpoint>> = HashMap::new();
    for c in conns.iter() {
        if c.client_syn > 0 || c.server_synack > 0 {
            if wanted.contains(&c.server) {
                servers.insert(c.server);
            }
            if wanted.contains(&c.client) {
                clients.insert(c.client);
            }
        }
        for (a, b) in [(c.client, c.server), (c.server, c.client)] {
            if !wanted.contains(&a) {
                continue;
            }
            let set = peers.entry(a).or_default();
            if set.len() < 64 {
                set.insert(b);
            }
        }
    }
    for c in conns.iter_mut().filter(|c| c.client_syn == 0 && c.server_synack == 0) {
        let n = |e: &Endpoint| peers.get(e).map_or(0, |s| s.len());
        let (a, b) = (c.client, c.server);
        let (a_srv, b_srv) = (servers.contains(&a), servers.contains(&b));
        let (a_cli, b_cli) = (clients.contains(&a), clients.contains(&b));
        let flip = if a_srv != b_srv {
            a_srv
        } else if a_cli != b_cli {
            b_cli
        } else if n(&a) >= 2 && n(&b) == 1 {
            true
        } else if n(&b) >= 2 && n(&a) == 1 {
            false
        } else {
            let server_like = |p: u16| likely_server_port(p) || !ephemeral_port(p);
            server_like(a.port) && ephemeral_port(b.port)
        };
        if flip {
            flip_roles(c);
        }
    }
}

/// Swaps client and server of a finished connection, with its counters, notes and Zeek view.
pub(super) fn flip_roles(c: &mut Connection) {
    std::mem::swap(&mut c.client, &mut c.server);
    std::mem::swap(&mut c.client_packets, &mut c.server_packets);
    std::mem::swap(&mut c.client_bytes, &mut c.server_bytes);
    std::mem::swap(&mut c.client_fin, &mut c.server_fin);
    std::mem::swap(&mut c.client_rst, &mut c.server_rst);
    // Roles are only ever assigned to connections without a handshake, which keep every note.
    c.kept_notes_mut().for_each(|p| p.side = p.side.other());
    let h = c.history.as_str();
    let swapped = h.trim_start_matches('^').chars().map(|ch| {
        if ch.is_ascii_uppercase() {
            ch.to_ascii_lowercase()
        } else {
            ch.to_ascii_uppercase()
        }
    });
    let mut flipped = History::default();
    if !h.starts_with('^') {
        flipped.push('^');
    }
    swapped.for_each(|ch| flipped.push(ch));
    c.history = flipped;
    c.state = match c.state {
        ConnState::RSTO => ConnState::RSTR,
        ConnState::RSTR => ConnState::RSTO,
        ConnState::SH => ConnState::SHR,
        ConnState::SHR => ConnState::SH,
        ConnState::S2 => ConnState::S3,
        ConnState::S3 => ConnState::S2,
        s => s,
    };
}
