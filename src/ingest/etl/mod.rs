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
//! Damage never panics: it surfaces as a [`crate::ingest::Damage`] carrying the file offset, after
//! every record before the damage has been yielded. See `docs/etl.md` for the format notes.

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
