//! Plain-text application logs: per-file timestamp format detection, multi-line
//! records, severity and Windows/.NET/errno error identities.
//!
//! Std only and independent of the other ingest modules. Every input is tolerated:
//! bytes are decoded lossily, physical lines are capped, nothing panics.
//!
//! Layout: [`reader`] (records), [`encoding`] (UTF-16), [`timestamp`] (formats, offsets),
//! [`severity`] and [`errors`] (identity tables). Every public item is re-exported here.

mod encoding;
mod errors;
mod reader;
mod severity;
mod timestamp;

pub use crate::model::days_from_civil;
pub use errors::{extract_errors, ErrorId, ErrorKind};
pub use reader::{detect_format, read_all, LogLine, TextLogOptions, TextLogReader};
pub use severity::{detect_severity, from_syslog_pri, Severity};
pub use timestamp::{parse_log_offset_arg, parse_offset, TsFormat};

/// Default cap for one physical line; longer lines are truncated and flagged.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;
/// Default cap for one record (first line plus continuation lines).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 256 * 1024;

const NS_PER_S: i64 = 1_000_000_000;
