//! Named-pipe accounting from ETW file-I/O events: instances, opens and their outcome, handle
//! lifetimes, open rate and concurrent handles.
//!
//! Model (see docs/pipes.md): a Create of `\Device\NamedPipe\NAME` with CreateDisposition
//! FILE_CREATE (2) or FILE_OPEN_IF (3) is a server creating an instance (kernel32's
//! CreateNamedPipe passes one of these to NtCreateNamedPipeFile); any other disposition
//! (CreateFile OPEN_EXISTING = FILE_OPEN 1) is a client open. The outcome of a create comes from
//! the OperationEnd with the same Irp; a handle lives from its successful create until the first
//! Cleanup or Close of its FileObject. Every map is capped; evictions are counted.
//!
//! Files: `data` (what the model produces), `status` (the NTSTATUS and Win32 codes of an open's
//! outcome), `stats` (bounded rate and lifetime statistics), `analyzer` (the streaming
//! `PipeAnalyzer`).

mod analyzer;
mod data;
mod stats;
mod status;

pub use analyzer::{is_server_disposition, pipe_name, PipeAnalyzer};
pub use data::{Pipe, PipeCall, PipeClient, PipeFailure, PipeOpen, PipeOutcome, PipeSeen, PipeSource, ServerProcess};
pub use stats::PipeStats;
pub use status::*;

/// Opens kept per pipe for the timeline and the detectors; counts above stay exact.
pub const MAX_OPENS_KEPT: usize = 20_000;
/// Failures kept per pipe.
pub const MAX_FAILURES_KEPT: usize = 20_000;
/// Points of the handle-count timeline kept per pipe (decimated beyond).
pub const MAX_HANDLE_POINTS: usize = 20_000;
/// Server processes tracked per pipe.
pub const MAX_SERVER_PROCESSES: usize = 16;
/// Client processes tracked per pipe.
pub const MAX_CLIENTS_PER_PIPE: usize = 256;
/// Pipes tracked per input (anonymous pipes get unique names, so there can be many).
pub const MAX_PIPES: usize = 4_096;
/// Pipes tracked per event log by `PipeAnalyzer::opens_only` (no handle state: more are cheap).
pub const MAX_PIPES_OPENS_ONLY: usize = 10_000;
/// Creates waiting for their OperationEnd.
pub const MAX_PENDING_IRPS: usize = 65_536;
/// Open pipe handles tracked.
pub const MAX_OPEN_HANDLES: usize = 262_144;
