//! The one pairing path: a request waits under its key until its final response settles it.
//!
//! Both dialects hand over the same things: a request's items (a tree to connect, an open or wait
//! to list, a handle closed) and a final response (`Response`: status, the tree or handle it
//! made). Only the keys and the treatment of a repeated key differ: SMB2 pairs by connection and
//! MessageId and lists a repeated request once; SMB1 pairs by connection, PID and MID, as TShark
//! does, and a new request with the same MID replaces an unanswered one (clients reuse MIDs),
//! which then stays unanswered.

use super::accounting::{evict_oldest_half, Handle, HandleKey, Tree, TreeKey};
use super::ops::{IpcEvidence, SmbPipeOp};
use super::{Conn, SmbAnalyzer, MAX_FLOWS, MAX_PENDING};
use crate::model::UtcNs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum ReqKey {
    Smb2(Conn, u64),
    Smb1(Conn, u32, u16),
}

pub(super) enum Pending {
    Tree {
        path: String,
    },
    /// An open or wait; `known`: the tree is proven IPC (else decided by the response's FileType).
    Op {
        op: Box<SmbPipeOp>,
        known: bool,
    },
    /// A CLOSE: of the handle of `op` (already ended at the request), or of the file the CREATE
    /// with MessageId `after_create` opens (SMB2 related compound).
    Close {
        op: Option<usize>,
        path: Option<Box<str>>,
        after_create: Option<u64>,
    },
}

pub(super) struct PendingReq {
    pub ts: UtcNs,
    /// The header's command: a response settles a request of the same command only.
    pub command: u16,
    pub items: Vec<Pending>,
}

/// What an open's response created.
pub(super) struct Created {
    pub key: HandleKey,
    /// As the oracle spells it (SMB2 `0xP:0xV`, SMB1 `0x%04x`).
    pub text: String,
    /// The pipe model's handle value.
    pub handle: u64,
    /// SMB1 ResourceType (FileType); None for SMB2.
    pub resource_type: Option<u16>,
}

/// A final response, as both dialects give it.
pub(super) struct Response {
    pub frame: u64,
    pub ts: UtcNs,
    pub conn: Conn,
    pub status: u32,
    pub status_text: String,
    /// The tree a TREE CONNECT response names, and whether its share type / service says IPC.
    pub tree: Option<(TreeKey, bool)>,
    pub created: Option<Created>,
    /// The scope a new handle belongs to: session key and tree id.
    pub session: u64,
    pub tree_id: u32,
    /// SMB2: the MessageId (a related CLOSE may refer to this CREATE).
    pub message_id: Option<u64>,
}

fn is_success(status: u32) -> bool {
    status >> 30 < 2
}

impl SmbAnalyzer {
    /// SMB2: a request under its MessageId; a retransmitted one is listed once.
    pub(super) fn request_once(&mut self, key: ReqKey, p: PendingReq) {
        if self.pending.contains_key(&key) {
            return;
        }
        self.insert_pending(key, p);
    }

    /// SMB1: a request under its PID and MID; the same request again is listed once, another one
    /// replaces it (the replaced one stays unanswered).
    pub(super) fn request_replacing(&mut self, key: ReqKey, p: PendingReq) {
        if let Some(old) = self.pending.get(&key) {
            if old.command == p.command && same_ops(&old.items, &p.items) {
                return;
            }
        }
        if let Some(old) = self.insert_pending(key, p) {
            self.unanswered(old);
        }
    }

    fn insert_pending(&mut self, key: ReqKey, p: PendingReq) -> Option<PendingReq> {
        if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&key) {
            self.counts.evicted += evict_oldest_half(&mut self.pending, |p| p.ts);
        }
        self.pending.insert(key, p)
    }

    /// The request a final response of `command` answers, if one waits.
    pub(super) fn take_request(&mut self, key: &ReqKey, command: u16) -> Option<PendingReq> {
        if self.pending.get(key)?.command != command {
            return None;
        }
        self.pending.remove(key)
    }

    /// A request that will get no response: its opens on a proven IPC$ tree are listed as such.
    pub(super) fn unanswered(&mut self, req: PendingReq) {
        for item in req.items {
            if let Pending::Op { op, known: true } = item {
                self.push_op(*op);
            }
        }
    }

    /// A request and its final response: trees connected, opens listed and modelled, handles kept
    /// or closed.
    pub(super) fn settle(&mut self, req: PendingReq, r: Response) {
        let ok = is_success(r.status);
        for item in req.items {
            match item {
                Pending::Tree { path } => {
                    let Some((key, ipc_share)) = r.tree.filter(|_| ok) else { continue };
                    let ipc = ipc_share || path.to_ascii_uppercase().ends_with("\\IPC$");
                    if self.trees.len() >= MAX_PENDING && !self.trees.contains_key(&key) {
                        self.counts.evicted += evict_oldest_half(&mut self.trees, |t| t.ts);
                    }
                    self.trees.insert(key, Tree { path: Some(path), ipc, ts: r.ts });
                }
                Pending::Op { mut op, known } => {
                    if !known {
                        match r.created.as_ref().and_then(|c| c.resource_type) {
                            Some(rt @ (1 | 2)) => op.evidence = IpcEvidence::FileType(rt),
                            _ => {
                                self.counts.not_ipc += 1;
                                continue;
                            }
                        }
                    }
                    op.resp_frame = Some(r.frame);
                    op.status = Some(r.status);
                    op.status_text = Some(r.status_text.clone());
                    let created = r.created.as_ref().filter(|_| op.op.is_open());
                    if let Some(c) = created {
                        op.file_id = Some(c.text.clone());
                    }
                    self.model_op(&op, created.map_or(0, |c| c.handle), r.ts);
                    let path: Box<str> = super::ops::model_path(&op.pipe_name).into();
                    let idx = self.push_op(*op);
                    if let (Some(c), true) = (created, ok) {
                        let (conn, session, tree) = (r.conn, r.session, r.tree_id);
                        self.insert_handle(
                            c.key,
                            Handle { op: idx, handle: c.handle, ts: r.ts, conn, session, tree, path },
                        );
                        if let Some(mid) = r.message_id {
                            self.last_create.insert(conn, (mid, c.key, r.ts));
                            if self.last_create.len() > MAX_FLOWS {
                                self.counts.evicted += evict_oldest_half(&mut self.last_create, |c| c.2);
                            }
                        }
                    }
                }
                Pending::Close { mut op, mut path, after_create } => {
                    if let Some(c) = after_create {
                        let Some(&(mid, key, _)) = self.last_create.get(&r.conn) else { continue };
                        if mid != c {
                            continue;
                        }
                        let Some(hd) = self.handles.remove(&key) else { continue };
                        op = hd.op;
                        self.close(&hd, r.frame, r.ts);
                        path = Some(hd.path);
                    }
                    if let Some(o) = op.and_then(|i| self.ops.get_mut(i)) {
                        if o.close_resp_frame.is_none() {
                            o.close_resp_frame = Some(r.frame);
                            o.close_status = Some(r.status);
                        }
                    }
                    if let (Some(p), true) = (path, ok) {
                        self.close_answered(&p, r.conn.1, r.ts);
                    }
                }
            }
        }
    }
}

/// Two requests ask for the same opens (a request sent again).
fn same_ops(a: &[Pending], b: &[Pending]) -> bool {
    let names = |v: &[Pending]| -> Vec<String> {
        v.iter()
            .filter_map(|p| match p {
                Pending::Op { op, .. } => Some(op.pipe_name.clone()),
                Pending::Tree { path } => Some(path.clone()),
                Pending::Close { .. } => None,
            })
            .collect()
    };
    names(a) == names(b)
}
