//! What the SMB analysis reports per pipe open or wait, and the IPC$ evidence behind it.

use serde::Serialize;

use crate::model::{Endpoint, UtcNs};

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

    /// An open (CREATE / NT Create AndX), not a pipe wait.
    pub fn is_open(self) -> bool {
        matches!(self, SmbOpKind::Smb2Create | SmbOpKind::Smb1NtCreateAndX)
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

/// The request side of an op, as both dialects give it; the response fills the rest.
pub(super) struct OpDraft<'a> {
    pub input: u32,
    pub frame: u64,
    pub ts: UtcNs,
    pub client: Endpoint,
    pub server: Endpoint,
    pub session_id: u64,
    pub tree_id: u32,
    pub tree: Option<&'a str>,
}

impl OpDraft<'_> {
    pub fn op(&self, op: SmbOpKind, name: &str, evidence: IpcEvidence) -> Box<SmbPipeOp> {
        Box::new(SmbPipeOp {
            input: self.input,
            op,
            req_frame: self.frame,
            resp_frame: None,
            ts: self.ts,
            client: self.client,
            server: self.server,
            session_id: self.session_id,
            tree_id: self.tree_id,
            tree: self.tree.map(str::to_string),
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
        })
    }
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
pub fn model_path(name: &str) -> String {
    let mut n = name.trim_start_matches('\\');
    if let (Some(head), Some(rest)) = (n.get(..5), n.get(5..)) {
        if head.eq_ignore_ascii_case("pipe\\") {
            n = rest;
        }
    }
    format!("\\Device\\NamedPipe\\{n}")
}

/// STATUS_IO_TIMEOUT: a pipe wait whose timeout passed without a free instance.
pub const STATUS_IO_TIMEOUT: u32 = 0xC000_00B5;

/// What the remote clients' pipe waits (FSCTL_PIPE_WAIT, TRANS_WAIT_NMPIPE: WaitNamedPipe over SMB)
/// on `pipe` of `input` between `from` and `to` say, for a busy finding: how many there were and
/// how many timed out with no instance free. Empty when there were none.
pub fn pipe_wait_text(ops: &[SmbPipeOp], input: u32, pipe: &str, from: UtcNs, to: UtcNs) -> String {
    let waits: Vec<&SmbPipeOp> = ops
        .iter()
        .filter(|o| o.input == input && !o.op.is_open() && o.ts >= from && o.ts <= to)
        .filter(|o| model_path(&o.pipe_name).eq_ignore_ascii_case(pipe))
        .collect();
    if waits.is_empty() {
        return String::new();
    }
    let timed_out = waits.iter().filter(|o| o.status == Some(STATUS_IO_TIMEOUT)).count();
    let ok = waits.iter().filter(|o| o.status == Some(0)).count();
    format!(
        " The clients waited for a free instance {} time{} (FSCTL_PIPE_WAIT over SMB, WaitNamedPipe): {ok} found one, {timed_out} timed out (STATUS_IO_TIMEOUT).",
        waits.len(),
        if waits.len() == 1 { "" } else { "s" },
    )
}
