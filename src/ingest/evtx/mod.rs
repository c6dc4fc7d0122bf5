//! Windows event logs (.evtx) through the `evtx` crate, reduced to what matters for
//! IPC analysis: service crashes and state changes, boots and shutdowns, application
//! crashes, .NET unhandled exceptions and Sysmon named-pipe events.
//!
//! Damaged chunks and records become warnings; the good records still come out.
//! Independent of the other ingest modules.
//!
//! Files: this one drives the parser over chunks and records (damage becomes warnings); `event`
//! holds the event types; `classify` turns a record's JSON into an `EvtxEvent`.

mod classify;
mod event;

pub use classify::{event_from_json, network_connect_text, parse_utc_ns};
pub use event::{EvtxEvent, EvtxKind, NetworkConnect, PipeEvent, ServiceState};

use std::fmt;
use std::io::{Read, Seek};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use evtx::err::EvtxError;

use crate::ingest::{Damage, DamageKind, Part};
use evtx::EvtxParser;

/// EVTX layout constants, to turn chunk numbers into file offsets.
const FILE_HEADER_SIZE: u64 = 4096;
const CHUNK_SIZE: u64 = 65536;

/// A chunk or record that could not be read; the records around it still are.
///
/// Not a [`Damage`] by itself: the evtx crate names a bad record only by its ID, so the file
/// offset is known for chunks alone ([`EvtxWarning::damage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvtxWarning {
    pub chunk: Option<u64>,
    pub record_id: Option<u64>,
    pub file_offset: Option<u64>,
    pub kind: DamageKind,
}

impl EvtxWarning {
    /// The warning as a [`Damage`], when the parser said where it is.
    pub fn damage(&self) -> Option<Damage> {
        self.file_offset.map(|o| Damage::at(o, self.kind.clone()))
    }
}

impl fmt::Display for EvtxWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.damage() {
            Some(d) => d.fmt(f),
            None => self.kind.fmt(f),
        }
    }
}

/// Everything read from one file.
#[derive(Debug, Clone, Default)]
pub struct EvtxLog {
    pub events: Vec<EvtxEvent>,
    pub warnings: Vec<EvtxWarning>,
    /// Chunk count declared in the file header (the parser reads past it).
    pub chunks_declared: u64,
}

/// True when the bytes start with the EVTX file signature.
pub fn sniff(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(b"ElfFile\0")
}

/// Read a whole file into memory as events and warnings.
pub fn read_evtx_file(path: impl AsRef<Path>) -> Result<EvtxLog, Damage> {
    let mut log = EvtxLog::default();
    let (mut ev, mut wa) = (Vec::new(), Vec::new());
    log.chunks_declared = for_each_event_in_file(path, |e| ev.push(e), |w| wa.push(w))?;
    log.events = ev;
    log.warnings = wa;
    Ok(log)
}

/// Same as [`read_evtx_file`] for bytes already in memory.
pub fn read_evtx_bytes(bytes: Vec<u8>) -> Result<EvtxLog, Damage> {
    let (mut ev, mut wa) = (Vec::new(), Vec::new());
    let chunks_declared = for_each_event_in_bytes(bytes, |e| ev.push(e), |w| wa.push(w))?;
    Ok(EvtxLog { events: ev, warnings: wa, chunks_declared })
}

/// For streams that cannot seek (e.g. a gunzipped `.evtx.gz`): reads everything into memory first.
pub fn read_evtx_reader(mut reader: impl Read) -> Result<EvtxLog, Damage> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|e| Damage::at(bytes.len() as u64, e.into()))?;
    read_evtx_bytes(bytes)
}

/// Streaming over bytes in memory; see [`for_each_event_in_file`].
pub fn for_each_event_in_bytes(
    bytes: Vec<u8>,
    mut on_event: impl FnMut(EvtxEvent),
    mut on_warning: impl FnMut(EvtxWarning),
) -> Result<u64, Damage> {
    let parser = open_guarded(|| EvtxParser::from_buffer(bytes))?;
    let declared = u64::from(parser.header().chunk_count);
    drive(parser, &mut on_event, &mut on_warning);
    Ok(declared)
}

/// Streaming: calls `on_event` per good record and `on_warning` per damaged chunk/record, in file order.
/// Returns the header's declared chunk count.
pub fn for_each_event_in_file(
    path: impl AsRef<Path>,
    mut on_event: impl FnMut(EvtxEvent),
    mut on_warning: impl FnMut(EvtxWarning),
) -> Result<u64, Damage> {
    let path = path.as_ref();
    let parser = open_guarded(|| EvtxParser::from_path(path))?;
    let declared = u64::from(parser.header().chunk_count);
    drive(parser, &mut on_event, &mut on_warning);
    Ok(declared)
}

fn open_guarded<T>(f: impl FnOnce() -> evtx::err::Result<T>) -> Result<T, Damage> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(Damage::at(0, DamageKind::Unreadable { part: Part::EvtxHeader, detail: error_chain(&e) })),
        Err(_) => Err(Damage::at(0, DamageKind::ParserPanic(Part::EvtxHeader))),
    }
}

fn drive<T: Read + Seek + Send + Sync + 'static>(
    mut parser: EvtxParser<T>,
    on_event: &mut dyn FnMut(EvtxEvent),
    on_warning: &mut dyn FnMut(EvtxWarning),
) {
    // The crate is not supposed to panic, but a damaged file must not take the tool down.
    let res = catch_unwind(AssertUnwindSafe(|| {
        for rec in parser.records_json_value() {
            match rec {
                Ok(r) => {
                    let ts = i64::try_from(r.timestamp.as_nanosecond()).unwrap_or(0);
                    match event_from_json(&r.data, r.event_record_id, ts) {
                        Ok(ev) => on_event(ev),
                        Err(detail) => on_warning(EvtxWarning {
                            chunk: None,
                            record_id: Some(r.event_record_id),
                            file_offset: None,
                            kind: DamageKind::Unreadable { part: Part::EventRecord(r.event_record_id), detail },
                        }),
                    }
                }
                Err(e) => on_warning(warning_from_error(&e)),
            }
        }
    }));
    if res.is_err() {
        on_warning(EvtxWarning {
            chunk: None,
            record_id: None,
            file_offset: None,
            kind: DamageKind::ParserPanic(Part::EventLog),
        });
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    let mut depth = 0;
    while let Some(inner) = src {
        if depth >= 6 {
            break;
        }
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
        depth += 1;
    }
    s
}

fn warning_from_error(e: &EvtxError) -> EvtxWarning {
    let detail = error_chain(e);
    let kind = |part| DamageKind::Unreadable { part, detail: detail.clone() };
    match e {
        EvtxError::FailedToParseChunk { chunk_id, .. } => EvtxWarning {
            chunk: Some(*chunk_id),
            record_id: None,
            file_offset: chunk_id.checked_mul(CHUNK_SIZE).and_then(|o| o.checked_add(FILE_HEADER_SIZE)),
            kind: kind(Part::Chunk(*chunk_id)),
        },
        EvtxError::FailedToParseRecord { record_id, .. } => EvtxWarning {
            chunk: None,
            record_id: Some(*record_id),
            file_offset: None,
            kind: kind(Part::EventRecord(*record_id)),
        },
        EvtxError::FailedToReadRecordAt { chunk, offset, .. } => EvtxWarning {
            chunk: *chunk,
            record_id: None,
            file_offset: chunk
                .and_then(|c| c.checked_mul(CHUNK_SIZE))
                .and_then(|o| o.checked_add(FILE_HEADER_SIZE))
                .and_then(|o| o.checked_add(*offset)),
            kind: kind(chunk.map_or(Part::EventLog, Part::Chunk)),
        },
        _ => EvtxWarning { chunk: None, record_id: None, file_offset: None, kind: kind(Part::EventLog) },
    }
}

// ---------------------------------------------------------------------------
// JSON record -> event
