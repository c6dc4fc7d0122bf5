//! Named-pipe opens over SMB in packet captures: a bounded per-flow reassembler for TCP ports
//! 445/139, request/response pairing, and the pipe model (`PipeSource::Smb`). See docs/smb.md.
//!
//! Pairing: SMB2 by (TCP connection, MessageId), skipping STATUS_PENDING interim replies; SMB1 by
//! (TCP connection, PID, MID). A CREATE / NT Create AndX counts as a pipe open when its tree is
//! known to be IPC$ (TREE CONNECT seen: path `\IPC$` or share type pipe / service "IPC"), or, for
//! trees connected before the capture started, when the evidence says pipe: SMB1's response
//! FileType 1 or 2, SMB2's well-known RPC pipe name. The evidence is kept on each op.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use serde::Serialize;

use crate::analysis::pipes::{Pipe, PipeAnalyzer, PipeCall, PipeSource};
use crate::ingest::smb::{
    self as wire, smb1_cmd, smb2_cmd, FileId, Smb1Body, Smb1Msg, Smb2Body, Smb2Msg, SmbMessage, FSCTL_PIPE_WAIT,
    STATUS_PENDING,
};
use crate::model::{Endpoint, TcpSegment, UtcNs};

/// Largest SMB message kept for parsing (a pipe CREATE is a few hundred bytes; READ/WRITE
/// payloads above this are skipped by their length without being stored).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Flows (one per direction) followed at once; the oldest half is dropped when full.
pub const MAX_FLOWS: usize = 4096;
/// Requests waiting for their response, trees, open handles, sessions.
pub const MAX_PENDING: usize = 16_384;
/// Ops kept for `summary.json` and the tests; counts stay exact.
pub const MAX_OPS_KEPT: usize = 20_000;

/// Ports of SMB over TCP: direct hosting and the NetBIOS session service.
pub fn is_smb_port(port: u16) -> bool {
    port == 445 || port == 139
}

/// What kind of request an op is (the oracle's `op` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SmbOpKind {
    Smb2Create,
    Smb1NtCreateAndX,
    Smb2PipeWait,
    Smb1TransWaitNmPipe,
}

impl SmbOpKind {
    pub fn name(self) -> &'static str {
        match self {
            SmbOpKind::Smb2Create => "SMB2_CREATE",
            SmbOpKind::Smb1NtCreateAndX => "SMB1_NT_CREATE_ANDX",
            SmbOpKind::Smb2PipeWait => "SMB2_FSCTL_PIPE_WAIT",
            SmbOpKind::Smb1TransWaitNmPipe => "SMB1_TRANS_WAIT_NMPIPE",
        }
    }
}

/// Why the share is taken to be IPC$.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum IpcEvidence {
    /// The TREE CONNECT was seen: path ends in `\IPC$`, or share type pipe / service "IPC".
    TreeConnect,
    /// SMB1, tree connected before the capture: the NT Create AndX response says FileType 1 or 2.
    FileType(u16),
    /// SMB2, tree connected before the capture: a well-known RPC pipe name.
    PipeName,
}

impl IpcEvidence {
    pub fn name(self) -> String {
        match self {
            IpcEvidence::TreeConnect => "tree_connect".into(),
            IpcEvidence::FileType(t) => format!("file_type={t}"),
            IpcEvidence::PipeName => "pipe_name".into(),
        }
    }
}

/// One pipe open or pipe wait seen on the wire.
#[derive(Clone, Debug)]
pub struct SmbPipeOp {
    pub input: u32,
    pub op: SmbOpKind,
    pub req_frame: u64,
    pub resp_frame: Option<u64>,
    pub ts: UtcNs,
    pub client: Endpoint,
    pub server: Endpoint,
    /// SMB2 SessionId, SMB1 UID.
    pub session_id: u64,
    /// SMB2 TreeId, SMB1 TID.
    pub tree_id: u32,
    /// Share path from the TREE CONNECT, when it was seen.
    pub tree: Option<String>,
    pub evidence: IpcEvidence,
    /// As the client sent it (SMB1 names may start with `\`).
    pub pipe_name: String,
    /// NT status of the final response (SMB1 DOS codes mapped, see `Smb1Status::nt`).
    pub status: Option<u32>,
    /// The status as on the wire: `0x%08x`, or `dos:0xCLASS/0xCODE`.
    pub status_text: Option<String>,
    /// SMB2 `0xPERSISTENT:0xVOLATILE`, SMB1 FID `0x%04x`; for pipe waits the request's FileId.
    pub file_id: Option<String>,
    pub close_req_frame: Option<u64>,
    pub close_resp_frame: Option<u64>,
    pub close_status: Option<u32>,
    /// The server sent a STATUS_PENDING interim reply first.
    pub interim: bool,
    /// FSCTL_PIPE_WAIT Timeout, when specified.
    pub wait_timeout: Option<u64>,
}

/// Counts for `summary.json` `smb`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SmbCounts {
    /// TCP connections that carried at least one SMB request.
    pub connections: u64,
    pub smb1_messages: u64,
    pub smb2_messages: u64,
    /// Distinct sessions (SMB2 server + SessionId, SMB1 connection + UID) seen in readable messages.
    pub sessions: u64,
    /// Distinct SMB3 sessions seen only through transform headers: unreadable.
    pub encrypted_sessions: u64,
    pub encrypted_messages: u64,
    pub compressed_messages: u64,
    pub pipe_opens: u64,
    pub pipe_opens_failed: u64,
    pub pipe_waits: u64,
    pub pipe_closes: u64,
    /// Pipe opens/waits never answered in the capture.
    pub unanswered: u64,
    /// SMB1 opens on a tree not seen connected whose response was not a pipe: not counted as pipes.
    pub not_ipc: u64,
    /// Opens and waits on trees connected before the capture, taken as IPC$ from FileType or name.
    pub ipc_inferred: u64,
    /// Times a flow lost message sync (gap, out-of-order segment, bytes not captured) …
    pub gaps: u64,
    /// … and found the next message start again (also the start of a flow picked up mid-stream).
    pub resyncs: u64,
    pub retransmitted_bytes: u64,
    /// Messages above `MAX_MESSAGE`, skipped by length.
    pub oversized_skipped: u64,
    pub unknown_messages: u64,
    /// Entries dropped from a full table (flows, pending requests, trees, handles).
    pub evicted: u64,
    pub ops_not_kept: u64,
}

impl SmbCounts {
    pub fn add(&mut self, o: &SmbCounts) {
        macro_rules! sum { ($($f:ident),*) => { $( self.$f += o.$f; )* } }
        sum!(
            connections,
            smb1_messages,
            smb2_messages,
            sessions,
            encrypted_sessions,
            encrypted_messages,
            compressed_messages,
            pipe_opens,
            pipe_opens_failed,
            pipe_waits,
            pipe_closes,
            unanswered,
            not_ipc,
            ipc_inferred,
            gaps,
            resyncs,
            retransmitted_bytes,
            oversized_skipped,
            unknown_messages,
            evicted,
            ops_not_kept
        );
    }
}

/// SMB in all captures of a run.
#[derive(Clone, Debug, Default)]
pub struct SmbSummary {
    pub counts: SmbCounts,
    pub ops: Vec<SmbPipeOp>,
}

/// Well-known RPC endpoints' pipe names (evidence for a tree whose TREE CONNECT was not seen).
const WELL_KNOWN_PIPES: &[&str] = &[
    "atsvc",
    "browser",
    "epmapper",
    "eventlog",
    "lsarpc",
    "lsass",
    "netlogon",
    "ntsvcs",
    "samr",
    "spoolss",
    "srvsvc",
    "svcctl",
    "winreg",
    "wkssvc",
    "keysvc",
    "efsrpc",
    "initshutdown",
    "protected_storage",
    "scerpc",
    "unixinfo",
];

pub fn is_well_known_pipe(name: &str) -> bool {
    let n = name.trim_start_matches('\\');
    WELL_KNOWN_PIPES.iter().any(|p| p.eq_ignore_ascii_case(n))
}

/// The name under `\Device\NamedPipe\`: leading backslashes and SMB1's `\PIPE\` dropped.
fn model_path(name: &str) -> String {
    let mut n = name.trim_start_matches('\\');
    if let (Some(head), Some(rest)) = (n.get(..5), n.get(5..)) {
        if head.eq_ignore_ascii_case("pipe\\") {
            n = rest;
        }
    }
    format!("\\Device\\NamedPipe\\{n}")
}

/// FNV-1a: the pipe model's u64 handle for an SMB handle key.
fn handle_hash(parts: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

fn endpoint_hash(e: &Endpoint) -> u64 {
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
fn smb1_session(conn: &Conn, uid: u16) -> u64 {
    handle_hash(&[endpoint_hash(&conn.0), endpoint_hash(&conn.1), uid as u64])
}

/// Drops the older half of a full table; returns how many went.
fn evict_oldest_half<K: Eq + Hash, V>(m: &mut HashMap<K, V>, ts: impl Fn(&V) -> UtcNs) -> u64 {
    let mut times: Vec<UtcNs> = m.values().map(&ts).collect();
    times.sort_unstable();
    let Some(&cut) = times.get(times.len() / 2) else { return 0 };
    let before = m.len();
    m.retain(|_, v| ts(v) > cut);
    (before - m.len()) as u64
}

/// Reassembly state of one direction of a TCP connection.
#[derive(Default)]
struct Flow {
    next_seq: Option<u32>,
    /// At a message boundary (false: hunting for the next NetBIOS header + SMB magic).
    synced: bool,
    /// Bytes of the current (partial) message, at most `MAX_MESSAGE` + header.
    buf: Vec<u8>,
    /// Bytes still to skip of an oversized message.
    skip: u64,
    last_ts: UtcNs,
    counted: bool,
}

type Conn = (Endpoint, Endpoint);

#[derive(Clone, Debug)]
struct Tree {
    path: Option<String>,
    ipc: bool,
    ts: UtcNs,
}

struct Handle {
    op: Option<usize>,
    handle: u64,
    ts: UtcNs,
    /// Where it was opened: a tree disconnect, logoff or the end of the connection ends it.
    conn: Conn,
    session: u64,
    tree: u32,
}

/// What ends every handle it covers without a CLOSE.
#[derive(Clone, Copy)]
enum Scope {
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

enum Pending {
    Tree {
        path: String,
    },
    /// An open or wait; `known`: the tree is proven IPC (else decided by the response).
    Op {
        op: Box<SmbPipeOp>,
        known: bool,
    },
    Close {
        op: Option<usize>,
        after_create: Option<u64>,
    },
}

struct PendingReq {
    ts: UtcNs,
    /// SMB1: the header's command (a response answers the latest request with its MID, PID and
    /// command, as TShark pairs them).
    command: u8,
    items: Vec<Pending>,
}

/// Streams TCP segments of SMB ports into pipe opens.
pub struct SmbAnalyzer {
    input: u32,
    flows: HashMap<Conn, Flow>,
    pending2: HashMap<(Conn, u64), PendingReq>,
    pending1: HashMap<(Conn, u32, u16), PendingReq>,
    trees2: HashMap<(std::net::IpAddr, u64, u32), Tree>,
    trees1: HashMap<(Conn, u16), Tree>,
    handles2: HashMap<(u64, FileId), Handle>,
    handles1: HashMap<(Conn, u16), Handle>,
    /// Per connection: the last CREATE answered (MessageId, session, FileId), for a related
    /// compounded CLOSE whose FileId says "the previous one".
    last_create: HashMap<Conn, (u64, u64, FileId, UtcNs)>,
    sessions: HashSet<(u64, u64)>,
    encrypted: HashSet<(u64, u64)>,
    ops: Vec<SmbPipeOp>,
    pipes: PipeAnalyzer,
    pub counts: SmbCounts,
}

impl SmbAnalyzer {
    pub fn new(input: u32) -> Self {
        SmbAnalyzer {
            input,
            flows: HashMap::new(),
            pending2: HashMap::new(),
            pending1: HashMap::new(),
            trees2: HashMap::new(),
            trees1: HashMap::new(),
            handles2: HashMap::new(),
            handles1: HashMap::new(),
            last_create: HashMap::new(),
            sessions: HashSet::new(),
            encrypted: HashSet::new(),
            ops: Vec::new(),
            pipes: PipeAnalyzer::with_source(input, PipeSource::Smb),
            counts: SmbCounts::default(),
        }
    }

    /// One TCP segment in capture order, with its captured payload.
    pub fn segment(&mut self, seg: &TcpSegment, payload: &[u8]) {
        if !is_smb_port(seg.src.port) && !is_smb_port(seg.dst.port) {
            return;
        }
        let key = (seg.src, seg.dst);
        const SYN: u8 = 0x02;
        const FIN_RST: u8 = 0x01 | 0x04;
        if seg.flags & FIN_RST != 0 {
            // The connection ends: so do the handles opened on it (after this segment's data).
            let conn = if is_smb_port(seg.dst.port) { (seg.src, seg.dst) } else { (seg.dst, seg.src) };
            if seg.payload_len > 0 {
                self.data_segment(seg, payload, key);
            }
            self.end_handles(Scope::Connection(conn), seg.frame, seg.ts);
            self.flows.remove(&key);
            return;
        }
        if seg.flags & SYN != 0 {
            // A new connection on this 4-tuple starts at a message boundary.
            let f =
                Flow { next_seq: Some(seg.seq.wrapping_add(1)), synced: true, last_ts: seg.ts, ..Default::default() };
            self.insert_flow(key, f);
            return;
        }
        if seg.payload_len == 0 {
            return;
        }
        self.data_segment(seg, payload, key);
    }

    fn data_segment(&mut self, seg: &TcpSegment, payload: &[u8], key: Conn) {
        if !self.flows.contains_key(&key) {
            // Picked up mid-stream: hunt for the next message start.
            self.insert_flow(key, Flow { last_ts: seg.ts, ..Default::default() });
        }
        let Some(flow) = self.flows.get_mut(&key) else { return };
        flow.last_ts = seg.ts;
        let mut data = payload;
        if let Some(next) = flow.next_seq {
            let d = seg.seq.wrapping_sub(next) as i32;
            if d < 0 {
                // Retransmission or overlap: keep only the new bytes.
                let old = d.unsigned_abs() as usize;
                if old >= seg.payload_len as usize {
                    self.counts.retransmitted_bytes += seg.payload_len as u64;
                    return;
                }
                self.counts.retransmitted_bytes += old as u64;
                data = data.get(old..).unwrap_or(&[]);
            } else if d > 0 {
                // Bytes missing (not captured, or this segment came early): resync after the gap.
                lose_sync(flow, &mut self.counts);
            }
            let end = seg.seq.wrapping_add(seg.payload_len);
            if (end.wrapping_sub(next) as i32) > 0 {
                flow.next_seq = Some(end);
            }
        } else {
            flow.next_seq = Some(seg.seq.wrapping_add(seg.payload_len));
        }
        let truncated = payload.len() < seg.payload_len as usize;
        let mut messages = Vec::new();
        feed(flow, data, &mut messages, &mut self.counts);
        if truncated {
            // The rest of this segment was not captured.
            lose_sync(flow, &mut self.counts);
        }
        for m in messages {
            self.message(seg.src, seg.dst, &m, seg.frame, seg.ts);
        }
    }

    fn insert_flow(&mut self, key: Conn, f: Flow) {
        if self.flows.len() >= MAX_FLOWS && !self.flows.contains_key(&key) {
            self.counts.evicted += evict_oldest_half(&mut self.flows, |f| f.last_ts);
        }
        self.flows.insert(key, f);
    }

    fn message(&mut self, src: Endpoint, dst: Endpoint, bytes: &[u8], frame: u64, ts: UtcNs) {
        match wire::parse_message(bytes) {
            SmbMessage::Smb2(list) => {
                self.counts.smb2_messages += 1;
                self.smb2(src, dst, &list, frame, ts);
            }
            SmbMessage::Smb1(m) => {
                self.counts.smb1_messages += 1;
                self.smb1(src, dst, &m, frame, ts);
            }
            SmbMessage::Encrypted { session_id } => {
                self.counts.encrypted_messages += 1;
                let server = if is_smb_port(src.port) { src } else { dst };
                self.count_flow(src, dst, !is_smb_port(src.port));
                if self.encrypted.len() < MAX_PENDING {
                    self.encrypted.insert((endpoint_hash(&Endpoint { port: 0, ..server }), session_id));
                }
            }
            SmbMessage::Compressed => self.counts.compressed_messages += 1,
            SmbMessage::Unknown => self.counts.unknown_messages += 1,
        }
    }

    fn count_flow(&mut self, src: Endpoint, dst: Endpoint, request: bool) {
        if !request {
            return;
        }
        if let Some(f) = self.flows.get_mut(&(src, dst)) {
            if !f.counted {
                f.counted = true;
                self.counts.connections += 1;
            }
        }
    }

    fn session(&mut self, server: Endpoint, id: u64) {
        if id != 0 && self.sessions.len() < MAX_PENDING {
            self.sessions.insert((endpoint_hash(&Endpoint { port: 0, ..server }), id));
        }
    }

    fn push_op(&mut self, op: SmbPipeOp) -> Option<usize> {
        match op.op {
            SmbOpKind::Smb2Create | SmbOpKind::Smb1NtCreateAndX => {
                self.counts.pipe_opens += 1;
                if op.status.is_some_and(|s| s >> 30 >= 2) {
                    self.counts.pipe_opens_failed += 1;
                }
            }
            _ => self.counts.pipe_waits += 1,
        }
        if op.resp_frame.is_none() {
            self.counts.unanswered += 1;
        }
        if op.evidence != IpcEvidence::TreeConnect {
            self.counts.ipc_inferred += 1;
        }
        if self.ops.len() >= MAX_OPS_KEPT {
            self.counts.ops_not_kept += 1;
            return None;
        }
        self.ops.push(op);
        Some(self.ops.len() - 1)
    }

    /// An answered open into the pipe model; returns the model's handle.
    fn model_open(&mut self, op: &SmbPipeOp, handle: u64) {
        let (Some(status), Some(resp)) = (op.status, op.resp_frame) else { return };
        if !matches!(op.op, SmbOpKind::Smb2Create | SmbOpKind::Smb1NtCreateAndX) {
            return;
        }
        let path = model_path(&op.pipe_name);
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

    fn pending2_insert(&mut self, key: (Conn, u64), p: PendingReq) {
        if self.pending2.contains_key(&key) {
            return; // a retransmitted request: listed once
        }
        if self.pending2.len() >= MAX_PENDING {
            self.counts.evicted += evict_oldest_half(&mut self.pending2, |p| p.ts);
        }
        self.pending2.insert(key, p);
    }

    fn smb2(&mut self, src: Endpoint, dst: Endpoint, list: &[Smb2Msg], frame: u64, ts: UtcNs) {
        // Compound context: related commands inherit SessionId/TreeId/FileId.
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
                self.smb2_request(client, server, m, session, tree, related, prev_create, frame, ts);
                prev_create = matches!(m.body, Smb2Body::CreateReq { .. }).then_some(h.message_id);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn smb2_request(
        &mut self,
        client: Endpoint,
        server: Endpoint,
        m: &Smb2Msg,
        session: u64,
        tree_id: u32,
        related: bool,
        prev_create: Option<u64>,
        frame: u64,
        ts: UtcNs,
    ) {
        let conn = (client, server);
        let key = (conn, m.header.message_id);
        let tree = self.trees2.get(&(server.ip, session, tree_id)).cloned();
        let draft = |op: SmbOpKind, name: &str, evidence: IpcEvidence, input: u32| SmbPipeOp {
            input,
            op,
            req_frame: frame,
            resp_frame: None,
            ts,
            client,
            server,
            session_id: session,
            tree_id,
            tree: tree.as_ref().and_then(|t| t.path.clone()),
            evidence,
            pipe_name: name.to_string(),
            status: None,
            status_text: None,
            file_id: None,
            close_req_frame: None,
            close_resp_frame: None,
            close_status: None,
            interim: false,
            wait_timeout: None,
        };
        match &m.body {
            Smb2Body::TreeConnectReq { path } => {
                self.pending2_insert(
                    key,
                    PendingReq { ts, command: 0, items: vec![Pending::Tree { path: path.clone() }] },
                );
            }
            Smb2Body::CreateReq { name } => {
                let evidence = match &tree {
                    Some(t) if t.ipc => IpcEvidence::TreeConnect,
                    Some(_) => return,
                    None if is_well_known_pipe(name) => IpcEvidence::PipeName,
                    None => return,
                };
                let op = Box::new(draft(SmbOpKind::Smb2Create, name, evidence, self.input));
                self.pending2_insert(key, PendingReq { ts, command: 0, items: vec![Pending::Op { op, known: true }] });
            }
            Smb2Body::IoctlReq { ctl_code: FSCTL_PIPE_WAIT, file_id, pipe_wait } => {
                if tree.as_ref().is_some_and(|t| !t.ipc) {
                    return;
                }
                let evidence = if tree.is_some() { IpcEvidence::TreeConnect } else { IpcEvidence::PipeName };
                let name = pipe_wait.as_ref().map(|w| w.name.as_str()).unwrap_or("");
                let mut op = draft(SmbOpKind::Smb2PipeWait, name, evidence, self.input);
                op.file_id = Some(file_id.to_string());
                op.wait_timeout = pipe_wait.as_ref().and_then(|w| w.timeout);
                self.pending2_insert(
                    key,
                    PendingReq { ts, command: 0, items: vec![Pending::Op { op: Box::new(op), known: true }] },
                );
            }
            _ if m.header.command == smb2_cmd::TREE_DISCONNECT => {
                self.end_handles(Scope::Tree(session, tree_id), frame, ts)
            }
            _ if m.header.command == smb2_cmd::LOGOFF => self.end_handles(Scope::Session(session), frame, ts),
            Smb2Body::CloseReq { file_id } => {
                if related && *file_id == FileId::ANY {
                    // Closes the file the previous CREATE of this compound opens: settled by its response.
                    if let Some(c) = prev_create {
                        let items = vec![Pending::Close { op: None, after_create: Some(c) }];
                        self.pending2_insert(key, PendingReq { ts, command: 0, items });
                    }
                    return;
                }
                if let Some(hd) = self.handles2.remove(&(session, *file_id)) {
                    let op = hd.op;
                    self.close(hd, frame, ts);
                    let items = vec![Pending::Close { op, after_create: None }];
                    self.pending2_insert(key, PendingReq { ts, command: 0, items });
                }
            }
            _ => {}
        }
    }

    /// Handles ended by a tree disconnect, logoff or the end of their connection: closed in the
    /// pipe model, but not listed as a CLOSE on their op.
    fn end_handles(&mut self, scope: Scope, frame: u64, ts: UtcNs) {
        let mut ended: Vec<u64> = Vec::new();
        self.handles2.retain(|_, h| {
            !(scope.covers(h) && {
                ended.push(h.handle);
                true
            })
        });
        self.handles1.retain(|_, h| {
            !(scope.covers(h) && {
                ended.push(h.handle);
                true
            })
        });
        for h in ended {
            self.pipes.close_handle(ts, frame, h);
        }
    }

    fn close(&mut self, hd: Handle, frame: u64, ts: UtcNs) {
        self.counts.pipe_closes += 1;
        self.pipes.close_handle(ts, frame, hd.handle);
        if let Some(op) = hd.op.and_then(|i| self.ops.get_mut(i)) {
            op.close_req_frame.get_or_insert(frame);
        }
    }

    fn smb2_response(&mut self, client: Endpoint, server: Endpoint, m: &Smb2Msg, session: u64, frame: u64, ts: UtcNs) {
        let conn = (client, server);
        let key = (conn, m.header.message_id);
        let status = m.header.status;
        if status == STATUS_PENDING && m.header.is_async() {
            // Interim reply: the final one follows with the same MessageId.
            if let Some(p) = self.pending2.get_mut(&key) {
                for it in &mut p.items {
                    if let Pending::Op { op, .. } = it {
                        op.interim = true;
                    }
                }
            }
            return;
        }
        let Some(req) = self.pending2.remove(&key) else { return };
        for item in req.items {
            match item {
                Pending::Tree { path } => {
                    if status >> 30 >= 2 {
                        continue;
                    }
                    let share_type = match m.body {
                        Smb2Body::TreeConnectResp { share_type } => share_type,
                        _ => 0,
                    };
                    let ipc = share_type == 2 || path.to_ascii_uppercase().ends_with("\\IPC$");
                    let Some(tree_id) = m.header.tree_id else { continue };
                    if self.trees2.len() >= MAX_PENDING {
                        self.counts.evicted += evict_oldest_half(&mut self.trees2, |t| t.ts);
                    }
                    self.trees2.insert((server.ip, session, tree_id), Tree { path: Some(path), ipc, ts });
                }
                Pending::Op { mut op, .. } => {
                    op.resp_frame = Some(frame);
                    op.status = Some(status);
                    op.status_text = Some(format!("0x{status:08x}"));
                    let file_id = match m.body {
                        Smb2Body::CreateResp { file_id } if op.op == SmbOpKind::Smb2Create => Some(file_id),
                        _ => None,
                    };
                    if let Some(f) = file_id {
                        op.file_id = Some(f.to_string());
                    }
                    let handle = file_id.map(|f| handle_hash(&[session, f.persistent, f.volatile])).unwrap_or(0);
                    self.model_open(&op, handle);
                    let idx = self.push_op(*op);
                    if let (Some(f), true) = (file_id, status >> 30 < 2) {
                        if self.handles2.len() >= MAX_PENDING {
                            self.counts.evicted += evict_oldest_half(&mut self.handles2, |h| h.ts);
                        }
                        let (tree, conn) = (m.header.tree_id.unwrap_or(0), conn);
                        self.handles2.insert((session, f), Handle { op: idx, handle, ts, conn, session, tree });
                        self.last_create.insert(conn, (m.header.message_id, session, f, ts));
                        if self.last_create.len() > MAX_FLOWS {
                            self.counts.evicted += evict_oldest_half(&mut self.last_create, |c| c.3);
                        }
                    }
                }
                Pending::Close { mut op, after_create } => {
                    if let Some(c) = after_create {
                        let Some(&(mid, s, f, _)) = self.last_create.get(&conn) else { continue };
                        if mid != c {
                            continue;
                        }
                        let Some(hd) = self.handles2.remove(&(s, f)) else { continue };
                        op = hd.op;
                        self.close(hd, frame, ts);
                    }
                    if let Some(o) = op.and_then(|i| self.ops.get_mut(i)) {
                        if o.close_resp_frame.is_none() {
                            o.close_resp_frame = Some(frame);
                            o.close_status = Some(status);
                        }
                    }
                }
            }
        }
    }

    fn smb1(&mut self, src: Endpoint, dst: Endpoint, m: &Smb1Msg, frame: u64, ts: UtcNs) {
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
        let key = (conn, m.pid, m.mid);
        let tree = self.trees1.get(&(conn, m.tid)).cloned();
        let draft = |op: SmbOpKind, name: &str, evidence: IpcEvidence, input: u32| SmbPipeOp {
            input,
            op,
            req_frame: frame,
            resp_frame: None,
            ts,
            client,
            server,
            session_id: m.uid as u64,
            tree_id: m.tid as u32,
            tree: tree.as_ref().and_then(|t| t.path.clone()),
            evidence,
            pipe_name: name.to_string(),
            status: None,
            status_text: None,
            file_id: None,
            close_req_frame: None,
            close_resp_frame: None,
            close_status: None,
            interim: false,
            wait_timeout: None,
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
                        Some(t) if t.ipc => items.push(Pending::Op {
                            op: Box::new(draft(kind, name, IpcEvidence::TreeConnect, self.input)),
                            known: true,
                        }),
                        Some(_) => {}
                        // Decided by the response's FileType.
                        None => items.push(Pending::Op {
                            op: Box::new(draft(kind, name, IpcEvidence::FileType(0), self.input)),
                            known: kind == SmbOpKind::Smb1TransWaitNmPipe,
                        }),
                    }
                }
                Smb1Body::CloseReq { fid } => {
                    if let Some(hd) = self.handles1.remove(&(conn, *fid)) {
                        let op = hd.op;
                        self.close(hd, frame, ts);
                        items.push(Pending::Close { op, after_create: None });
                    }
                }
                _ => {}
            }
        }
        let command = m.commands.first().map(|c| c.0).unwrap_or(0);
        if let Some(old) = self.pending1.get(&key) {
            if old.command == command && same_ops(&old.items, &items) {
                return; // the same request again: listed once
            }
        }
        // Every request is remembered, even one we do not follow: a later request with the same
        // MID replaces an unanswered one (clients reuse MIDs), which then stays unanswered.
        if self.pending1.len() >= MAX_PENDING && !self.pending1.contains_key(&key) {
            self.counts.evicted += evict_oldest_half(&mut self.pending1, |p| p.ts);
        }
        if let Some(old) = self.pending1.insert(key, PendingReq { ts, command, items }) {
            self.unanswered(old);
        }
    }

    /// A request that will get no response: its opens on a proven IPC$ tree are listed as such.
    fn unanswered(&mut self, req: PendingReq) {
        for item in req.items {
            if let Pending::Op { op, known: true } = item {
                self.push_op(*op);
            }
        }
    }

    fn smb1_response(&mut self, client: Endpoint, server: Endpoint, m: &Smb1Msg, frame: u64, ts: UtcNs) {
        let conn = (client, server);
        let key = (conn, m.pid, m.mid);
        let command = m.commands.first().map(|c| c.0).unwrap_or(0);
        if self.pending1.get(&key).is_none_or(|p| p.command != command) {
            return;
        }
        let Some(req) = self.pending1.remove(&key) else { return };
        let status = m.status.nt();
        for item in req.items {
            match item {
                Pending::Tree { path } => {
                    if status >> 30 >= 2 {
                        continue;
                    }
                    let service = m.commands.iter().find_map(|(_, b)| match b {
                        Smb1Body::TreeConnectResp { service } => Some(service.as_str()),
                        _ => None,
                    });
                    let ipc = service == Some("IPC") || path.to_ascii_uppercase().ends_with("\\IPC$");
                    if self.trees1.len() >= MAX_PENDING {
                        self.counts.evicted += evict_oldest_half(&mut self.trees1, |t| t.ts);
                    }
                    self.trees1.insert((conn, m.tid), Tree { path: Some(path), ipc, ts });
                }
                Pending::Op { mut op, known } => {
                    let created = m.commands.iter().find_map(|(_, b)| match b {
                        Smb1Body::NtCreateResp { fid, resource_type } => Some((*fid, *resource_type)),
                        _ => None,
                    });
                    if !known {
                        match created {
                            Some((_, rt @ (1 | 2))) => op.evidence = IpcEvidence::FileType(rt),
                            _ => {
                                self.counts.not_ipc += 1;
                                continue;
                            }
                        }
                    }
                    op.resp_frame = Some(frame);
                    op.status = Some(status);
                    op.status_text = Some(m.status.to_string());
                    let fid = if op.op == SmbOpKind::Smb1NtCreateAndX { created.map(|c| c.0) } else { None };
                    if let Some(f) = fid {
                        op.file_id = Some(format!("0x{f:04x}"));
                    }
                    let handle = fid.map(|f| handle_hash(&[endpoint_hash(&client), endpoint_hash(&server), f as u64]));
                    self.model_open(&op, handle.unwrap_or(0));
                    let idx = self.push_op(*op);
                    if let (Some(f), Some(h), true) = (fid, handle, status >> 30 < 2) {
                        if self.handles1.len() >= MAX_PENDING {
                            self.counts.evicted += evict_oldest_half(&mut self.handles1, |h| h.ts);
                        }
                        let (session, tree) = (smb1_session(&conn, m.uid), m.tid as u32);
                        self.handles1.insert((conn, f), Handle { op: idx, handle: h, ts, conn, session, tree });
                    }
                }
                Pending::Close { op, .. } => {
                    if let Some(o) = op.and_then(|i| self.ops.get_mut(i)) {
                        if o.close_resp_frame.is_none() {
                            o.close_resp_frame = Some(frame);
                            o.close_status = Some(status);
                        }
                    }
                }
            }
        }
    }

    /// The pipes (source smb), the ops in request order, and the counts.
    pub fn finish(mut self) -> (Vec<Pipe>, Vec<SmbPipeOp>, SmbCounts) {
        // Requests never answered: opens on a proven IPC$ tree are listed without a response.
        let pending: Vec<PendingReq> =
            self.pending2.drain().map(|(_, v)| v).chain(self.pending1.drain().map(|(_, v)| v)).collect();
        for req in pending {
            self.unanswered(req);
        }
        self.ops.sort_by_key(|o| o.req_frame);
        self.counts.sessions = self.sessions.len() as u64;
        self.counts.encrypted_sessions = self.encrypted.len() as u64;
        let (pipes, _) = self.pipes.finish();
        (pipes, self.ops, self.counts)
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

fn lose_sync(flow: &mut Flow, counts: &mut SmbCounts) {
    if flow.synced || flow.skip > 0 || !flow.buf.is_empty() {
        counts.gaps += 1;
    }
    flow.synced = false;
    flow.skip = 0;
    flow.buf.clear();
}

/// Appends in-order bytes to a flow; complete messages (without their NetBIOS header) go to `out`.
fn feed(flow: &mut Flow, mut data: &[u8], out: &mut Vec<Vec<u8>>, counts: &mut SmbCounts) {
    const HUNT_CHUNK: usize = 4096;
    loop {
        if flow.skip > 0 {
            if data.is_empty() {
                break;
            }
            let n = (flow.skip.min(data.len() as u64)) as usize;
            flow.skip -= n as u64;
            data = &data[n..];
            continue;
        }
        if !flow.synced {
            let n = data.len().min(HUNT_CHUNK);
            flow.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            match (0..flow.buf.len()).find(|&i| wire::is_message_start(&flow.buf[i..])) {
                Some(i) => {
                    flow.buf.drain(..i);
                    flow.synced = true;
                    counts.resyncs += 1;
                }
                None => {
                    // Keep a tail that may hold the start of a header.
                    let cut = flow.buf.len().saturating_sub(9);
                    flow.buf.drain(..cut);
                    if data.is_empty() {
                        break;
                    }
                }
            }
            continue;
        }
        // Synced: the 4-byte header, then the magic, then the whole message.
        let need = match wire::nb_header(&flow.buf) {
            None => wire::NB_HEADER,
            Some((ty, len)) => {
                let total = wire::NB_HEADER as u64 + len as u64;
                if ty != wire::NB_SESSION_MESSAGE {
                    // NetBIOS session request/response/keep-alive: short, skipped.
                    if !matches!(ty, 0x81..=0x85) || len > 1024 {
                        desync(flow, counts);
                        continue;
                    }
                    total as usize
                } else if flow.buf.len() < 8 {
                    8
                } else if !wire::is_message_start(&flow.buf) {
                    desync(flow, counts);
                    continue;
                } else if len as usize > MAX_MESSAGE {
                    counts.oversized_skipped += 1;
                    flow.skip = total.saturating_sub(flow.buf.len() as u64);
                    flow.buf = Vec::new();
                    continue;
                } else {
                    total as usize
                }
            }
        };
        let n = need.saturating_sub(flow.buf.len()).min(data.len());
        flow.buf.extend_from_slice(&data[..n]);
        data = &data[n..];
        if flow.buf.len() < need {
            break;
        }
        if flow.buf.len() >= 8 || nb_control(&flow.buf) {
            if let Some((ty, len)) = wire::nb_header(&flow.buf) {
                let total = wire::NB_HEADER + len as usize;
                if flow.buf.len() >= total {
                    if ty == wire::NB_SESSION_MESSAGE {
                        out.push(flow.buf[wire::NB_HEADER..total].to_vec());
                    }
                    flow.buf.drain(..total);
                }
            }
        }
    }
}

fn nb_control(b: &[u8]) -> bool {
    b.first().is_some_and(|&t| t != wire::NB_SESSION_MESSAGE)
}

/// Bytes at a supposed message start are not one: hunt from the next byte on.
fn desync(flow: &mut Flow, counts: &mut SmbCounts) {
    counts.gaps += 1;
    flow.synced = false;
    if !flow.buf.is_empty() {
        flow.buf.drain(..1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow {
        Flow { next_seq: Some(0), synced: true, ..Default::default() }
    }

    fn msg(len: usize) -> Vec<u8> {
        let mut m = vec![0u8, 0, 0, 0];
        m[1..4].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        let mut body = vec![0u8; len];
        body[..4].copy_from_slice(&wire::MAGIC_SMB2);
        body[4] = 64;
        m.extend(body);
        m
    }

    #[test]
    fn messages_split_and_joined_across_segments() {
        let mut f = flow();
        let (mut out, mut c) = (Vec::new(), SmbCounts::default());
        let mut stream = msg(100);
        stream.extend(msg(70));
        feed(&mut f, &stream[..3], &mut out, &mut c);
        feed(&mut f, &stream[3..50], &mut out, &mut c);
        assert!(out.is_empty());
        feed(&mut f, &stream[50..], &mut out, &mut c);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), 100);
        assert_eq!(out[1].len(), 70);
        assert!(f.buf.is_empty());
    }

    #[test]
    fn oversized_message_is_skipped_not_buffered() {
        let mut f = flow();
        let (mut out, mut c) = (Vec::new(), SmbCounts::default());
        let mut big = vec![0u8, 0x10, 0, 0]; // 1 MiB message
        big.extend(&wire::MAGIC_SMB2);
        big.extend([64, 0]);
        feed(&mut f, &big, &mut out, &mut c);
        assert_eq!(c.oversized_skipped, 1);
        let rest = vec![0u8; 0x10_0000 - 6];
        feed(&mut f, &rest, &mut out, &mut c);
        assert!(f.buf.capacity() <= 64);
        feed(&mut f, &msg(80), &mut out, &mut c);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn resyncs_after_garbage() {
        let mut f = Flow::default();
        let (mut out, mut c) = (Vec::new(), SmbCounts::default());
        let mut stream = vec![0x55u8; 37];
        stream.extend(msg(90));
        feed(&mut f, &stream, &mut out, &mut c);
        assert_eq!(out.len(), 1);
        assert_eq!(c.resyncs, 1);
    }
}
