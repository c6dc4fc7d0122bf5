//! Shared helpers for the integration tests: where the shared corpus is.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared corpus (`$IPCSCOPE_CORPUS`, else `../shared/corpus` beside the project).
/// Prints a clear notice and returns `None` when it is absent, so a test can say it was skipped.
pub fn corpus(sub: &str) -> Option<PathBuf> {
    let base = std::env::var_os("IPCSCOPE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    let dir = base.join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: corpus not found at {} (set IPCSCOPE_CORPUS to the shared corpus folder)", dir.display());
        None
    }
}

/// Reads a tab-separated oracle file: header names and rows, skipping `#` comments.
pub fn read_tsv(path: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty());
    let header: Vec<String> = lines.next().expect("header").split('\t').map(String::from).collect();
    lines.map(|l| header.iter().cloned().zip(l.split('\t').map(String::from)).collect()).collect()
}

/// The project's own samples folder.
pub fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// A Process Monitor `TCP Connect` (operation 5) by `process (pid)` at each connection's first
/// packet, from its client to its server: a ProcMon log that names the owner of the connections.
pub fn procmon_tcp_connects(
    conns: &[&ipcscope::model::Connection],
    pid: u32,
    process: &str,
) -> Vec<ipcscope::ingest::procmon::writer::WriterEvent> {
    use ipcscope::ingest::procmon::writer::{WriterEvent, WriterOp};
    conns
        .iter()
        .map(|c| WriterEvent {
            ts: c.first_ts,
            pid,
            tid: 1,
            process: process.into(),
            op: WriterOp::Tcp {
                op: 5,
                local: std::net::SocketAddr::new(c.client.ip, c.client.port),
                remote: std::net::SocketAddr::new(c.server.ip, c.server.port),
                length: 0,
            },
            path: String::new(),
            status: 0,
        })
        .collect()
}

/// What a connection is, independent of ids: endpoints, times, counters, state, frames.
pub fn conn_key(c: &ipcscope::model::Connection) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {} {} {} {}",
        c.client,
        c.server,
        c.first_ts,
        c.last_ts,
        c.state,
        c.history,
        c.client_packets,
        c.server_packets,
        c.client_bytes,
        c.server_bytes,
        c.first_frame,
        c.last_frame
    )
}
