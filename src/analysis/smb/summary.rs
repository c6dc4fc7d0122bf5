//! Counts of SMB traffic for `summary.json` `smb`, and the run's SMB result.

use serde::Serialize;

use super::ops::SmbPipeOp;

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
