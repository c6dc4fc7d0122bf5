//! Trees, handles and the pipe model: what the paired SMB operations mean for a pipe.
//!
//! A remote client is its TCP connection (`ip:port`, pid 0); the server is the SMB server. An
//! answered open goes into the pipe model with its status; a successful open holds a handle (one
//! server instance in use) until its CLOSE, its tree's disconnect, its session's logoff or the end
//! of its connection. Every successful open, close or pipe wait the server answers shows that the
//! pipe's server was running then (`PipeAnalyzer::remote_server_seen`), so a not-found open in
//! between is the close/open race, as for a local server.

use std::collections::HashMap;
use std::hash::Hash;

use super::ops::{model_path, SmbPipeOp};
use super::{Conn, SmbAnalyzer, MAX_OPS_KEPT};
use crate::analysis::pipes::PipeCall;
use crate::ingest::smb::FileId;
use crate::model::{Endpoint, UtcNs};

/// A tree: SMB2 by server address, SessionId and TreeId (a CLOSE on another channel of a
/// multichannel session finds it); SMB1 by connection and TID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum TreeKey {
    Smb2(std::net::IpAddr, u64, u32),
    Smb1(Conn, u16),
}

#[derive(Clone, Debug)]
pub(super) struct Tree {
    pub path: Option<String>,
    pub ipc: bool,
    pub ts: UtcNs,
}

/// An open handle: SMB2 by SessionId and FileId, SMB1 by connection and FID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum HandleKey {
    Smb2(u64, FileId),
    Smb1(Conn, u16),
}

pub(super) struct Handle {
    pub op: Option<usize>,
    /// The pipe model's handle value.
    pub handle: u64,
    pub ts: UtcNs,
    /// Where it was opened: a tree disconnect, logoff or the end of the connection ends it.
    pub conn: Conn,
    pub session: u64,
    pub tree: u32,
    /// The pipe model's path of the pipe.
    pub path: Box<str>,
}

/// What ends every handle it covers without a CLOSE.
#[derive(Clone, Copy)]
pub(super) enum Scope {
    Tree(u64, u32),
    Session(u64),
    Connection(Conn),
}

impl Scope {
    fn covers(self, h: &Handle) -> bool {
        match self {
            Scope::Tree(s, t) => h.session == s && h.tree == t,
            Scope::Session(s) => h.session == s,
            Scope::Connection(c) => h.conn == c,
        }
    }
}

/// FNV-1a: the pipe model's u64 handle for an SMB handle key.
pub(super) fn handle_hash(parts: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

pub(super) fn endpoint_hash(e: &Endpoint) -> u64 {
    let ip = match e.ip {
        std::net::IpAddr::V4(a) => u32::from(a) as u64,
        std::net::IpAddr::V6(a) => {
            let o = a.octets();
            handle_hash(&[
                u64::from_le_bytes(o[..8].try_into().unwrap_or([0; 8])),
                u64::from_le_bytes(o[8..].try_into().unwrap_or([0; 8])),
            ])
        }
    };
    handle_hash(&[ip, e.port as u64])
}

/// SMB1 UIDs are per connection: the scope key of a UID's handles.
pub(super) fn smb1_session(conn: &Conn, uid: u16) -> u64 {
    handle_hash(&[endpoint_hash(&conn.0), endpoint_hash(&conn.1), uid as u64])
}

/// Drops the older half of a full table; returns how many went.
pub(super) fn evict_oldest_half<K: Eq + Hash, V, S: std::hash::BuildHasher>(
    m: &mut HashMap<K, V, S>,
    ts: impl Fn(&V) -> UtcNs,
) -> u64 {
    let mut times: Vec<UtcNs> = m.values().map(&ts).collect();
    times.sort_unstable();
    let Some(&cut) = times.get(times.len() / 2) else { return 0 };
    let before = m.len();
    m.retain(|_, v| ts(v) > cut);
    (before - m.len()) as u64
}

impl SmbAnalyzer {
    pub(super) fn push_op(&mut self, op: SmbPipeOp) -> Option<usize> {
        if op.op.is_open() {
            self.counts.pipe_opens += 1;
            if op.status.is_some_and(|s| s >> 30 >= 2) {
                self.counts.pipe_opens_failed += 1;
            }
        } else {
            self.counts.pipe_waits += 1;
        }
        if op.resp_frame.is_none() {
            self.counts.unanswered += 1;
        }
        if op.evidence != super::IpcEvidence::TreeConnect {
            self.counts.ipc_inferred += 1;
        }
        if self.ops.len() >= MAX_OPS_KEPT {
            self.counts.ops_not_kept += 1;
            return None;
        }
        self.ops.push(op);
        Some(self.ops.len() - 1)
    }

    /// An answered op into the pipe model: an open with its status (the client is its ip:port),
    /// and for any success the server seen running at the response.
    pub(super) fn model_op(&mut self, op: &SmbPipeOp, handle: u64, resp_ts: UtcNs) {
        let (Some(status), Some(resp)) = (op.status, op.resp_frame) else { return };
        let path = model_path(&op.pipe_name);
        if op.op.is_open() {
            self.pipes.open_completed(&PipeCall {
                ts: op.ts,
                record: op.req_frame,
                end_record: Some(resp),
                pid: 0,
                tid: 0,
                process: None,
                remote: Some(op.client),
                handle,
                path: &path,
                server_instance: false,
                status,
            });
        }
        if status >> 30 < 2 {
            self.pipes.remote_server_seen(&path, resp_ts, op.server);
        }
    }

    pub(super) fn insert_handle(&mut self, key: HandleKey, h: Handle) {
        if self.handles.len() >= super::MAX_PENDING && !self.handles.contains_key(&key) {
            self.counts.evicted += evict_oldest_half(&mut self.handles, |h| h.ts);
        }
        self.handles.insert(key, h);
    }

    /// A CLOSE request of a handle: it ends there (the response fills the op's close status).
    pub(super) fn close(&mut self, hd: &Handle, frame: u64, ts: UtcNs) {
        self.counts.pipe_closes += 1;
        self.pipes.close_handle(ts, frame, hd.handle);
        if let Some(op) = hd.op.and_then(|i| self.ops.get_mut(i)) {
            op.close_req_frame.get_or_insert(frame);
        }
    }

    /// A successful CLOSE response: the server was running.
    pub(super) fn close_answered(&mut self, path: &str, server: Endpoint, ts: UtcNs) {
        self.pipes.remote_server_seen(path, ts, server);
    }

    /// Handles ended by a tree disconnect, logoff or the end of their connection: closed in the
    /// pipe model, but not listed as a CLOSE on their op.
    pub(super) fn end_handles(&mut self, scope: Scope, frame: u64, ts: UtcNs) {
        let mut ended: Vec<u64> = Vec::new();
        self.handles.retain(|_, h| {
            !(scope.covers(h) && {
                ended.push(h.handle);
                true
            })
        });
        for h in ended {
            self.pipes.close_handle(ts, frame, h);
        }
    }
}
