//! Named-pipe opens over SMB in packet captures (`PipeSource::Smb`). See docs/smb.md.
//!
//! The parts, each independent of the wire format except the two dialect files:
//! * `reassembly` — a bounded per-flow reassembler for TCP ports 445/139;
//! * `smb2`, `smb1` — the dialects' messages into requests to pair and responses;
//! * `pairing` — the one pairing path: a final response settles its request's trees, opens and
//!   closes (SMB2 by connection and MessageId, STATUS_PENDING interim replies skipped; SMB1 by
//!   connection, PID and MID, the command matching);
//! * `accounting` — trees, handles and their ends, and the pipe model calls: a remote client is
//!   its ip:port, the server is the SMB server, successful CREATE / CLOSE pairs are the instances
//!   in use, and every answered open, close or pipe wait shows the server alive;
//! * `ops`, `summary` — what is reported.
//!
//! A CREATE / NT Create AndX counts as a pipe open when its tree is known to be IPC$ (TREE CONNECT
//! seen: path `\IPC$` or share type pipe / service "IPC"), or, for trees connected before the
//! capture started, when the evidence says pipe: SMB1's response FileType 1 or 2, SMB2's
//! well-known RPC pipe name. The evidence is kept on each op.

mod accounting;
mod ops;
mod pairing;
mod reassembly;
mod smb1;
mod smb2;
mod summary;

use std::collections::{HashMap, HashSet};

pub use ops::{is_well_known_pipe, pipe_wait_text, IpcEvidence, SmbOpKind, SmbPipeOp, STATUS_IO_TIMEOUT};
pub use summary::{SmbCounts, SmbSummary};

use crate::analysis::pipes::{Pipe, PipeAnalyzer, PipeSource};
use crate::ingest::smb::{self as wire, SmbMessage};
use crate::model::{Endpoint, TcpSegment, UtcNs};
use accounting::{endpoint_hash, evict_oldest_half, Handle, HandleKey, Scope, Tree, TreeKey};
use pairing::{PendingReq, ReqKey};
use reassembly::Flow;

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

/// A TCP connection as (client, server).
type Conn = (Endpoint, Endpoint);

/// Streams TCP segments of SMB ports into pipe opens.
pub struct SmbAnalyzer {
    input: u32,
    /// Looked up on every segment of 445/139: foldhash (seeded, as the TCP table's).
    flows: HashMap<Conn, Flow, foldhash::fast::RandomState>,
    pending: HashMap<ReqKey, PendingReq>,
    trees: HashMap<TreeKey, Tree>,
    handles: HashMap<HandleKey, Handle>,
    /// Per connection: the last CREATE answered (MessageId, handle), for a related compounded
    /// CLOSE whose FileId says "the previous one".
    last_create: HashMap<Conn, (u64, HandleKey, UtcNs)>,
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
            flows: HashMap::default(),
            pending: HashMap::new(),
            trees: HashMap::new(),
            handles: HashMap::new(),
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
            self.insert_flow(key, Flow::at_syn(seg));
            return;
        }
        if seg.payload_len == 0 {
            return;
        }
        self.data_segment(seg, payload, key);
    }

    fn data_segment(&mut self, seg: &TcpSegment, payload: &[u8], key: Conn) {
        let mut messages = Vec::new();
        if let Some(flow) = self.flows.get_mut(&key) {
            flow.accept(seg, payload, &mut self.counts, &mut messages);
        } else {
            // Picked up mid-stream: hunt for the next message start.
            self.insert_flow(key, Flow { last_ts: seg.ts, ..Default::default() });
            let Some(flow) = self.flows.get_mut(&key) else { return };
            flow.accept(seg, payload, &mut self.counts, &mut messages);
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

    /// The pipes (source smb), the ops in request order, and the counts.
    pub fn finish(mut self) -> (Vec<Pipe>, Vec<SmbPipeOp>, SmbCounts) {
        // Requests never answered: opens on a proven IPC$ tree are listed without a response.
        let pending: Vec<PendingReq> = self.pending.drain().map(|(_, v)| v).collect();
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
