//! SMB2/3 messages into requests to pair and final responses.

use super::accounting::{handle_hash, HandleKey, Scope, TreeKey};
use super::ops::{is_well_known_pipe, IpcEvidence, OpDraft, SmbOpKind};
use super::pairing::{Created, Pending, PendingReq, ReqKey, Response};
use super::SmbAnalyzer;
use crate::ingest::smb::{smb2_cmd, FileId, Smb2Body, Smb2Msg, FSCTL_PIPE_WAIT, STATUS_PENDING};
use crate::model::{Endpoint, UtcNs};

/// A request's place in its compound: related commands inherit SessionId/TreeId/FileId.
struct Compound {
    session: u64,
    tree: u32,
    related: bool,
    /// MessageId of the CREATE before this command in the compound.
    prev_create: Option<u64>,
}

impl SmbAnalyzer {
    pub(super) fn smb2(&mut self, src: Endpoint, dst: Endpoint, list: &[Smb2Msg], frame: u64, ts: UtcNs) {
        let (mut session, mut tree, mut prev_create): (u64, u32, Option<u64>) = (0, 0, None);
        for m in list {
            let h = &m.header;
            let related = h.is_related();
            if !(related && h.session_id == u64::MAX) {
                session = h.session_id;
            }
            if let Some(t) = h.tree_id {
                if !(related && t == u32::MAX) {
                    tree = t;
                }
            }
            // Sessions in use: a successful SESSION_SETUP, or any other command on it (failed
            // setup attempts each get a SessionId of their own).
            let in_use = h.command != smb2_cmd::SESSION_SETUP || (h.is_response() && h.status == 0);
            if h.is_response() {
                let (client, server) = (dst, src);
                if in_use {
                    self.session(server, session);
                }
                self.smb2_response(client, server, m, session, frame, ts);
            } else {
                let (client, server) = (src, dst);
                self.count_flow(src, dst, true);
                if in_use {
                    self.session(server, session);
                }
                let at = Compound { session, tree, related, prev_create };
                self.smb2_request(client, server, m, &at, frame, ts);
                prev_create = matches!(m.body, Smb2Body::CreateReq { .. }).then_some(h.message_id);
            }
        }
    }

    fn smb2_request(&mut self, client: Endpoint, server: Endpoint, m: &Smb2Msg, at: &Compound, frame: u64, ts: UtcNs) {
        let (session, tree_id) = (at.session, at.tree);
        let key = ReqKey::Smb2((client, server), m.header.message_id);
        let tree = self.trees.get(&TreeKey::Smb2(server.ip, session, tree_id)).cloned();
        let draft = OpDraft {
            input: self.input,
            frame,
            ts,
            client,
            server,
            session_id: session,
            tree_id,
            tree: tree.as_ref().and_then(|t| t.path.as_deref()),
        };
        let items = match &m.body {
            Smb2Body::TreeConnectReq { path } => vec![Pending::Tree { path: path.clone() }],
            Smb2Body::CreateReq { name } => {
                let evidence = match &tree {
                    Some(t) if t.ipc => IpcEvidence::TreeConnect,
                    Some(_) => return,
                    None if is_well_known_pipe(name) => IpcEvidence::PipeName,
                    None => return,
                };
                vec![Pending::Op { op: draft.op(SmbOpKind::Smb2Create, name, evidence), known: true }]
            }
            Smb2Body::IoctlReq { ctl_code: FSCTL_PIPE_WAIT, file_id, pipe_wait } => {
                if tree.as_ref().is_some_and(|t| !t.ipc) {
                    return;
                }
                let evidence = if tree.is_some() { IpcEvidence::TreeConnect } else { IpcEvidence::PipeName };
                let name = pipe_wait.as_ref().map(|w| w.name.as_str()).unwrap_or("");
                let mut op = draft.op(SmbOpKind::Smb2PipeWait, name, evidence);
                op.file_id = Some(file_id.to_string());
                op.wait_timeout = pipe_wait.as_ref().and_then(|w| w.timeout);
                vec![Pending::Op { op, known: true }]
            }
            _ if m.header.command == smb2_cmd::TREE_DISCONNECT => {
                return self.end_handles(Scope::Tree(session, tree_id), frame, ts);
            }
            _ if m.header.command == smb2_cmd::LOGOFF => return self.end_handles(Scope::Session(session), frame, ts),
            Smb2Body::CloseReq { file_id } => {
                if at.related && *file_id == FileId::ANY {
                    // Closes the file the previous CREATE of this compound opens: settled by its response.
                    let Some(c) = at.prev_create else { return };
                    vec![Pending::Close { op: None, path: None, after_create: Some(c) }]
                } else {
                    let Some(hd) = self.handles.remove(&HandleKey::Smb2(session, *file_id)) else { return };
                    self.close(&hd, frame, ts);
                    vec![Pending::Close { op: hd.op, path: Some(hd.path), after_create: None }]
                }
            }
            _ => return,
        };
        self.request_once(key, PendingReq { ts, command: m.header.command, items });
    }

    fn smb2_response(&mut self, client: Endpoint, server: Endpoint, m: &Smb2Msg, session: u64, frame: u64, ts: UtcNs) {
        let key = ReqKey::Smb2((client, server), m.header.message_id);
        let status = m.header.status;
        if status == STATUS_PENDING && m.header.is_async() {
            // Interim reply: the final one follows with the same MessageId.
            if let Some(p) = self.pending.get_mut(&key) {
                for it in &mut p.items {
                    if let Pending::Op { op, .. } = it {
                        op.interim = true;
                    }
                }
            }
            return;
        }
        let Some(req) = self.take_request(&key, m.header.command) else { return };
        let tree = match (m.header.tree_id, &m.body) {
            (Some(t), body) => {
                let share_pipe = matches!(body, Smb2Body::TreeConnectResp { share_type: 2 });
                Some((TreeKey::Smb2(server.ip, session, t), share_pipe))
            }
            (None, _) => None,
        };
        let created = match m.body {
            Smb2Body::CreateResp { file_id } => Some(Created {
                key: HandleKey::Smb2(session, file_id),
                text: file_id.to_string(),
                handle: handle_hash(&[session, file_id.persistent, file_id.volatile]),
                resource_type: None,
            }),
            _ => None,
        };
        let r = Response {
            frame,
            ts,
            conn: (client, server),
            status,
            status_text: format!("0x{status:08x}"),
            tree,
            created,
            session,
            tree_id: m.header.tree_id.unwrap_or(0),
            message_id: Some(m.header.message_id),
        };
        self.settle(req, r);
    }
}
