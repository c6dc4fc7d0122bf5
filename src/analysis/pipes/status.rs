//! NTSTATUS and Win32 codes of a pipe open's outcome.

use super::PipeOutcome;

pub const STATUS_SUCCESS: u32 = 0;
pub const STATUS_OBJECT_NAME_NOT_FOUND: u32 = 0xC000_0034;
pub const STATUS_INSTANCE_NOT_AVAILABLE: u32 = 0xC000_00AB;
pub const STATUS_PIPE_NOT_AVAILABLE: u32 = 0xC000_00AC;
pub const STATUS_PIPE_BUSY: u32 = 0xC000_00AE;

/// Win32 ERROR_FILE_NOT_FOUND and ERROR_PIPE_BUSY.
pub const ERROR_FILE_NOT_FOUND: u32 = 2;
pub const ERROR_PIPE_BUSY: u32 = 231;

/// NTSTATUS of a create to its outcome. Success and informational codes (severity bits 00/01)
/// count as Ok.
pub fn outcome_of(status: u32) -> PipeOutcome {
    match status {
        STATUS_PIPE_NOT_AVAILABLE | STATUS_PIPE_BUSY | STATUS_INSTANCE_NOT_AVAILABLE => PipeOutcome::Busy,
        STATUS_OBJECT_NAME_NOT_FOUND => PipeOutcome::NotFound,
        s if s >> 30 <= 1 => PipeOutcome::Ok,
        _ => PipeOutcome::Other,
    }
}

/// The Win32 error a client sees for an outcome (None for Ok/Other/Unknown).
pub fn win32_error(outcome: PipeOutcome) -> Option<u32> {
    match outcome {
        PipeOutcome::Busy => Some(ERROR_PIPE_BUSY),
        PipeOutcome::NotFound => Some(ERROR_FILE_NOT_FOUND),
        _ => None,
    }
}

/// Symbolic name of the NTSTATUS values pipe findings mention.
pub fn status_name(status: u32) -> String {
    match status {
        STATUS_SUCCESS => "STATUS_SUCCESS".into(),
        STATUS_OBJECT_NAME_NOT_FOUND => "STATUS_OBJECT_NAME_NOT_FOUND".into(),
        STATUS_INSTANCE_NOT_AVAILABLE => "STATUS_INSTANCE_NOT_AVAILABLE".into(),
        STATUS_PIPE_NOT_AVAILABLE => "STATUS_PIPE_NOT_AVAILABLE".into(),
        STATUS_PIPE_BUSY => "STATUS_PIPE_BUSY".into(),
        s => format!("0x{s:08X}"),
    }
}
