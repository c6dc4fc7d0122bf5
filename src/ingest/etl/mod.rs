//! Pure-Rust reader for ETW trace files (.etl).
//!
//! * [`EtlReader`] walks the file buffer by buffer from any [`std::io::Read`], decompressing
//!   LZ77 buffers, and hands out [`Buffer`]s whose records are parsed lazily ([`Buffer::records`]).
//! * [`EtlReader::records`] is the owned file-order walk; [`EtlReader::time_ordered`] (seekable
//!   input, exact per-CPU k-way merge) and [`EtlReader::time_ordered_window`] (any `Read`,
//!   bounded window) yield records in time order.
//! * [`decode`] turns records of IPC-relevant providers into typed structs.
//! * [`writer`] produces synthetic traces for tests, samples and benchmarks.
//!
//! Damage never panics: it surfaces as an [`EtlError`] carrying the file offset, after every
//! record before the damage has been yielded. See `docs/etl.md` for the format notes.

mod bytes;
pub mod decode;
mod kinds;
mod lz77;
mod merge;
pub mod ndis;
pub mod pktmon;
mod reader;
mod record;
#[cfg(test)]
mod tests;
pub mod writer;

pub use decode::*;
pub use lz77::decompress_plain_lz77;
pub use merge::{TimeOrdered, WindowMerge, DEFAULT_MERGE_WINDOW, MAX_HELD_BYTES, MAX_HELD_RECORDS};
pub use pktmon::*;
pub use reader::{
    Buffer, BufferHeader, Clock, EtlReader, LogfileHeader, Records, BUFFER_HEADER_SIZE, MAX_BUFFER_SIZE, MAX_LZ77_RATIO,
};
pub use record::{
    classic_group_guid, ExtItem, ExtItems, Guid, HeaderKind, Record, RecordHeader, RecordRef, RecordsInBuffer,
};

use std::fmt;

/// FILETIME of the Unix epoch (100 ns ticks since 1601-01-01).
pub const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

/// FILETIME (100 ns since 1601, UTC) to nanoseconds since the Unix epoch.
pub fn filetime_to_unix_ns(ft: i64) -> i128 {
    (ft as i128 - FILETIME_UNIX_EPOCH as i128) * 100
}

/// FILETIME to the analysis clock, the one conversion every ETL consumer uses. A damaged record's
/// clock can be anything: clamped to 1970..2096 so that differences of two times never overflow
/// (an `as i64` of the raw product would wrap).
pub fn filetime_to_utc(ft: i64) -> crate::model::UtcNs {
    filetime_to_unix_ns(ft).clamp(0, 4_000_000_000_000_000_000) as i64
}

/// FILETIME to Unix microseconds, truncated toward negative infinity (as the oracle floors).
pub fn filetime_to_unix_us(ft: i64) -> i64 {
    (ft - FILETIME_UNIX_EPOCH).div_euclid(10)
}

/// Why reading stopped or a record was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtlErrorKind {
    /// Underlying I/O failure (message of the `io::Error`).
    Io(String),
    /// File ends inside a buffer header or buffer body.
    Truncated { needed: u64, available: u64 },
    /// BufferSize smaller than the header or above [`MAX_BUFFER_SIZE`].
    BadBufferSize(u32),
    /// Offset (filled size) outside `[0x48, BufferSize]` for an uncompressed buffer, or absurd.
    BadBufferOffset(u32),
    /// LZ77 stream malformed or not producing the announced size.
    Decompress(&'static str),
    /// A record's Size field is smaller than its header or runs past the buffer.
    BadRecordSize { size: u32 },
    /// Record 0 is not a usable logfile header.
    BadLogfileHeader(&'static str),
    /// A buffer holds more records than a time-ordered merge keeps in memory; the rest of the
    /// buffer is skipped (see `merge::MAX_HELD_RECORDS`).
    TooManyRecords(u64),
}

/// An error with the byte offset in the file where the damage was found.
///
/// For records inside compressed buffers the offset is the buffer's file offset plus
/// 0x48 plus the record's position in the decompressed data (the only meaningful position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtlError {
    pub offset: u64,
    pub kind: EtlErrorKind,
}

impl fmt::Display for EtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ETL damage at offset {:#x}: ", self.offset)?;
        match &self.kind {
            EtlErrorKind::Io(m) => write!(f, "I/O error: {m}"),
            EtlErrorKind::Truncated { needed, available } => {
                write!(f, "truncated: needed {needed} bytes, {available} available")
            }
            EtlErrorKind::BadBufferSize(s) => write!(f, "bad BufferSize {s}"),
            EtlErrorKind::BadBufferOffset(s) => write!(f, "bad buffer Offset {s}"),
            EtlErrorKind::Decompress(m) => write!(f, "LZ77 decompression failed: {m}"),
            EtlErrorKind::BadRecordSize { size } => write!(f, "bad record size {size}"),
            EtlErrorKind::BadLogfileHeader(m) => write!(f, "bad logfile header: {m}"),
            EtlErrorKind::TooManyRecords(n) => {
                write!(f, "buffer holds more than {n} records; the rest of it is skipped")
            }
        }
    }
}

impl std::error::Error for EtlError {}
