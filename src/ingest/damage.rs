//! One shape for damage in every reader: where (`offset`) and why (`kind`), as etherparse's
//! `LenError` says both. The path is not in it: the pipeline adds it once, when it writes
//! `InputSummary.error` ([`Damage::in_input`]).

use std::fmt;
use std::path::Path;

/// Damage in an input. Everything before `offset` was delivered to the reader's sink.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at byte offset {offset}: {kind}")]
pub struct Damage {
    /// Byte offset in the (decompressed) stream where the damage starts. For records inside
    /// compressed ETL buffers: the buffer's file offset + 0x48 + the record's position in the
    /// decompressed data (the only meaningful position).
    pub offset: u64,
    pub kind: DamageKind,
}

impl Damage {
    pub fn at(offset: u64, kind: DamageKind) -> Self {
        Damage { offset, kind }
    }

    /// The text for `InputSummary.error`: the path once, then where and why.
    pub fn in_input(&self, path: &Path) -> String {
        match self.kind {
            // A failing disk is no damage in the file.
            DamageKind::Io(_) => format!("{}: {self}", path.display()),
            _ => format!("{}: damaged {self}", path.display()),
        }
    }
}

impl From<std::io::Error> for DamageKind {
    fn from(e: std::io::Error) -> Self {
        DamageKind::Io(e.to_string())
    }
}

/// The structure of a format that a damage names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// pcap file header or pcapng section header.
    CaptureHeader,
    /// A pcap record, an ETL event record.
    Record,
    /// A pcapng block.
    Block,
    /// A pcapng enhanced packet block.
    Packet,
    /// A pcapng obsolete packet block (type 2).
    ObsoletePacketBlock,
    /// ETL WMI_BUFFER_HEADER.
    BufferHeader,
    /// ETL buffer (header and body).
    Buffer,
    /// PML file header.
    PmlHeader,
    /// PML array of event offsets.
    EventOffsets,
    /// PML process table.
    ProcessTable,
    /// PML string table.
    StringTable,
    /// A string in the PML string table.
    TableString,
    /// PML event `n` (0-based, file order).
    Event(u64),
    /// Bytes a reader needed at an offset (PML).
    Data,
    /// The header row of a Procmon CSV.
    CsvHeader,
    /// Row `n` of a Procmon CSV (1-based, after the header).
    Row(u64),
    /// EVTX file header.
    EvtxHeader,
    /// EVTX chunk `n`.
    Chunk(u64),
    /// EVTX record with EventRecordID `n`.
    EventRecord(u64),
    /// An event log where the parser gives no closer place.
    EventLog,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::CaptureHeader => f.write_str("capture header"),
            Part::Record => f.write_str("record"),
            Part::Block => f.write_str("block"),
            Part::Packet => f.write_str("packet"),
            Part::ObsoletePacketBlock => f.write_str("obsolete packet block"),
            Part::BufferHeader => f.write_str("buffer header"),
            Part::Buffer => f.write_str("buffer"),
            Part::PmlHeader => f.write_str("PML header"),
            Part::EventOffsets => f.write_str("event-offset array"),
            Part::ProcessTable => f.write_str("process table"),
            Part::StringTable => f.write_str("string table"),
            Part::TableString => f.write_str("string in the string table"),
            Part::Event(n) => write!(f, "event {n}"),
            Part::Data => f.write_str("data"),
            Part::CsvHeader => f.write_str("CSV header"),
            Part::Row(n) => write!(f, "row {n}"),
            Part::EvtxHeader => f.write_str("EVTX file header"),
            Part::Chunk(n) => write!(f, "chunk {n}"),
            Part::EventRecord(n) => write!(f, "record {n}"),
            Part::EventLog => f.write_str("event log"),
        }
    }
}

/// Why a reader stopped (or skipped a part). Each text says what was wrong with which part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DamageKind {
    /// Reading failed (the message of the `io::Error`).
    #[error("I/O error: {0}")]
    Io(String),
    /// The input ends inside a part whose size is not known.
    #[error("file ends in the middle of a {0} (cut short)")]
    CutShort(Part),
    /// The input ends inside a part of known size.
    #[error("{part} truncated: needed {needed} bytes, {available} available")]
    Truncated { part: Part, needed: u64, available: u64 },
    /// A length field reaches past the end of the file.
    #[error("{part}: {len} bytes run past the end of the file ({file_len} bytes)")]
    PastEnd { part: Part, len: u64, file_len: u64 },
    /// A length field above the reader's limit.
    #[error("{part} of {len} bytes, larger than the maximum of {max}")]
    TooLarge { part: Part, len: u64, max: u64 },
    /// A part longer than the reader's limit, its length not known (not the format at all, or a
    /// lost line end).
    #[error("{part} longer than the maximum of {max} bytes")]
    TooLong { part: Part, max: u64 },
    /// A length field announcing more than the reader's limit (the parser does not say how much).
    #[error("{part} longer than the maximum of {max} bytes (damaged length field)")]
    LengthField { part: Part, max: u64 },
    /// A size or offset field outside the range the format allows.
    #[error("{part} {field} {value} out of range")]
    BadField { part: Part, field: &'static str, value: u64 },
    /// A field that must hold one value holds another.
    #[error("{part} {field} {value:#x}, expected {expected:#x}")]
    Mismatch { part: Part, field: &'static str, value: u64, expected: u64 },
    /// An offset field pointing outside the file.
    #[error("{part} offset {offset:#x} outside the file")]
    OffsetOutsideFile { part: Part, offset: u64 },
    /// A count field larger than the file could hold.
    #[error("{part} claims {count} entries, more than the file holds")]
    CountTooLarge { part: Part, count: u64 },
    /// A reference to something the file never declared.
    #[error("{part} names {target} {index}, which the file does not declare")]
    Undeclared { part: Part, target: &'static str, index: u64 },
    /// The signature of the format is missing.
    #[error("not a {format} (no {magic} signature)")]
    BadMagic { format: &'static str, magic: &'static str },
    /// A version the reader does not know.
    #[error("{part} version {version} is not supported (only version {supported})")]
    Unsupported { part: Part, version: u64, supported: u64 },
    /// The writer never finished the file.
    #[error("not closed cleanly ({0})")]
    NotClosed(&'static str),
    /// The file holds nothing, not even the part every file starts with.
    #[error("empty file: no {0}")]
    Empty(Part),
    /// A part lacks a field every file of the format has.
    #[error("{part} has no {field}")]
    Missing { part: Part, field: &'static str },
    /// A field whose text cannot be read.
    #[error("{part}: bad {field} {value:?}")]
    BadValue { part: Part, field: &'static str, value: String },
    /// A compressed part that does not decompress to its announced size.
    #[error("LZ77 decompression failed: {0}")]
    Decompress(&'static str),
    /// A part the parser rejected by one of its checks.
    #[error("damaged {part} (failed check: {check})")]
    FailedCheck { part: Part, check: String },
    /// A part a parser could not read, in the parser's words.
    #[error("unreadable {part}: {detail}")]
    Unreadable { part: Part, detail: String },
    /// More records in one part than a reader keeps in memory; the rest of the part is skipped.
    #[error("{part} holds more than {limit} records; the rest of it is skipped")]
    TooManyRecords { part: Part, limit: u64 },
    /// A third-party parser panicked; the rest of the file was skipped.
    #[error("the parser panicked on the {0}; the rest of the file was skipped")]
    ParserPanic(Part),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_say_where_and_why() {
        let d = Damage::at(2_715_459, DamageKind::CutShort(Part::Record));
        assert_eq!(d.to_string(), "at byte offset 2715459: file ends in the middle of a record (cut short)");
        assert_eq!(
            d.in_input(Path::new("x.pcap")),
            "x.pcap: damaged at byte offset 2715459: file ends in the middle of a record (cut short)"
        );
        let io = Damage::at(7, DamageKind::Io("disk gone".into()));
        assert_eq!(io.in_input(Path::new("x.log")), "x.log: at byte offset 7: I/O error: disk gone");
        let d = DamageKind::PastEnd { part: Part::Event(3000), len: u32::MAX as u64, file_len: 100 };
        assert_eq!(d.to_string(), "event 3000: 4294967295 bytes run past the end of the file (100 bytes)");
        let d = DamageKind::FailedCheck { part: Part::Block, check: "Verify".into() };
        assert_eq!(d.to_string(), "damaged block (failed check: Verify)");
    }
}
