//! SMB1 messages (with their AndX chains) into requests to pair and final responses.

use super::accounting::{endpoint_hash, handle_hash, smb1_session, HandleKey, Scope, TreeKey};
use super::ops::{IpcEvidence, OpDraft, SmbOpKind};
use super::pairing::{Created, Pending, PendingReq, ReqKey, Response};
use super::{SmbAnalyzer, MAX_PENDING};
use crate::ingest::smb::{smb1_cmd, Smb1Body, Smb1Msg};
use crate::model::{Endpoint, UtcNs};

impl SmbAnalyzer {
    pub(super) fn smb1(&mut self, src: Endpoint, dst: Endpoint, m: &Smb1Msg, frame: u64, ts: UtcNs) {
        if m.is_response {
            let (client, server) = (dst, src);
            if m.uid != 0 && self.sessions.len() < MAX_PENDING {
                self.sessions.insert((handle_hash(&[endpoint_hash(&client), endpoint_hash(&server)]), m.uid as u64));
            }
            self.smb1_response(client, server, m, frame, ts);
        } else {
            let (client, server) = (src, dst);
            self.count_flow(src, dst, true);
            self.smb1_request(client, server, m, frame, ts);
        }
    }

    fn smb1_request(&mut self, client: Endpoint, server: Endpoint, m: &Smb1Msg, frame: u64, ts: UtcNs) {
        let conn = (client, server);
        let tree = self.trees.get(&TreeKey::Smb1(conn, m.tid)).cloned();
        let draft = OpDraft {
            input: self.input,
            frame,
            ts,
            client,
            server,
            session_id: m.uid as u64,
            tree_id: m.tid as u32,
            tree: tree.as_ref().and_then(|t| t.path.as_deref()),
        };
        let mut items = Vec::new();
        let uid_scope = smb1_session(&conn, m.uid);
        for (cmd, body) in &m.commands {
            match body {
                _ if *cmd == smb1_cmd::TREE_DISCONNECT => {
                    self.end_handles(Scope::Tree(uid_scope, m.tid as u32), frame, ts)
                }
                _ if *cmd == smb1_cmd::LOGOFF_ANDX => self.end_handles(Scope::Session(uid_scope), frame, ts),
                Smb1Body::TreeConnectReq { path } => items.push(Pending::Tree { path: path.clone() }),
                Smb1Body::NtCreateReq { name } | Smb1Body::WaitNmPipeReq { name } => {
                    let kind = if matches!(body, Smb1Body::NtCreateReq { .. }) {
                        SmbOpKind::Smb1NtCreateAndX
                    } else {
                        SmbOpKind::Smb1TransWaitNmPipe
                    };
                    match &tree {
                        Some(t) if t.ipc => {
                            items.push(Pending::Op { op: draft.op(kind, name, IpcEvidence::TreeConnect), known: true })
                        }
                        Some(_) => {}
                        // Decided by the response's FileType.
                        None => items.push(Pending::Op {
                            op: draft.op(kind, name, IpcEvidence::FileType(0)),
                            known: kind == SmbOpKind::Smb1TransWaitNmPipe,
                        }),
                    }
                }
                Smb1Body::CloseReq { fid } => {
                    if let Some(hd) = self.handles.remove(&HandleKey::Smb1(conn, *fid)) {
                        self.close(&hd, frame, ts);
                        items.push(Pending::Close { op: hd.op, path: Some(hd.path), after_create: None });
                    }
                }
                _ => {}
            }
        }
        // Every request is remembered, even one we do not follow: a later request with the same
        // MID replaces an unanswered one, which then stays unanswered.
        let command = m.commands.first().map(|c| c.0 as u16).unwrap_or(0);
        self.request_replacing(ReqKey::Smb1(conn, m.pid, m.mid), PendingReq { ts, command, items });
    }

    fn smb1_response(&mut self, client: Endpoint, server: Endpoint, m: &Smb1Msg, frame: u64, ts: UtcNs) {
        let conn = (client, server);
        let command = m.commands.first().map(|c| c.0 as u16).unwrap_or(0);
        let Some(req) = self.take_request(&ReqKey::Smb1(conn, m.pid, m.mid), command) else { return };
        let service_ipc =
            m.commands.iter().any(|(_, b)| matches!(b, Smb1Body::TreeConnectResp { service } if service == "IPC"));
        let created = m.commands.iter().find_map(|(_, b)| match b {
            Smb1Body::NtCreateResp { fid, resource_type } => Some(Created {
                key: HandleKey::Smb1(conn, *fid),
                text: format!("0x{fid:04x}"),
                handle: handle_hash(&[endpoint_hash(&client), endpoint_hash(&server), *fid as u64]),
                resource_type: Some(*resource_type),
            }),
            _ => None,
        });
        let r = Response {
            frame,
            ts,
            conn,
            status: m.status.nt(),
            status_text: m.status.to_string(),
            tree: Some((TreeKey::Smb1(conn, m.tid), service_ipc)),
            created,
            session: smb1_session(&conn, m.uid),
            tree_id: m.tid as u32,
            message_id: None,
        };
        self.settle(req, r);
    }
}
