//! Record headers: framing and parsing of every kind that can appear inside a buffer (the kinds
//! themselves are in `kinds`).

use super::bytes::{i64_at, u16_at, u32_at, u64_at, u8_at};
pub use super::kinds::{classic_group_guid, Guid, HeaderKind};
use crate::ingest::{Damage, DamageKind, Part};

/// Every scalar a record header carries, normalised across header kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: HeaderKind,
    /// Raw HeaderType byte (0x01..0x15), or 0 for WPP messages.
    pub header_type: u8,
    /// File offset of the record (see [`crate::ingest::Damage`] for compressed buffers).
    pub offset: u64,
    /// 0-based buffer number in file order.
    pub buffer_index: u64,
    /// 0-based record number among all records of the file, in file order.
    pub record_index: u64,
    /// ProcessorIndex of the buffer.
    pub cpu: u16,
    /// Raw clock value from the record.
    pub raw_timestamp: i64,
    /// UTC FILETIME (100 ns since 1601) from the logfile header's clock.
    pub filetime: i64,
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    /// EVENT_HEADER provider, FULL/INSTANCE header GUID, or the classic kernel GUID of the group.
    pub provider: Guid,
    /// HookId group for SYSTEM/COMPACT/PERFINFO.
    pub group: Option<u8>,
    /// EVENT_DESCRIPTOR Id for EVENT_HEADER records.
    pub id: Option<u16>,
    /// Opcode (EVENT_DESCRIPTOR Opcode, HookId Type, or classic Type byte).
    pub opcode: u8,
    /// EVENT_DESCRIPTOR Version; SYSTEM Version (u16); classic Version (u16).
    pub version: u16,
    pub level: u8,
    pub channel: u8,
    pub task: u16,
    pub keyword: u64,
    /// EVENT_HEADER Flags (0 otherwise).
    pub flags: u16,
    pub event_property: u16,
    pub activity_id: Guid,
    /// Pointer size for the payload (4 or 8).
    pub pointer_size: u8,
    /// Total record size (the Size field, before 8-byte alignment).
    pub size: u32,
}

/// A record borrowed from its buffer.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    pub header: RecordHeader,
    /// The whole record (Size bytes).
    pub raw: &'a [u8],
    /// Extended data items region (EVENT_HEADER with EXTENDED_INFO only).
    pub ext: &'a [u8],
    /// User data.
    pub payload: &'a [u8],
    /// Offset of the payload from the start of the record.
    pub payload_offset: usize,
}

impl<'a> RecordRef<'a> {
    pub fn ext_items(&self) -> ExtItems<'a> {
        ExtItems { b: self.ext, pos: 0, done: self.ext.is_empty() }
    }

    pub fn to_owned(&self) -> Record {
        let ext_start = self.payload_offset - self.ext.len();
        Record { header: self.header, raw: self.raw.to_vec(), ext_start, payload_offset: self.payload_offset }
    }
}

/// An owned record (used by the time-ordered merge and [`super::EtlReader::records`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub header: RecordHeader,
    pub raw: Vec<u8>,
    ext_start: usize,
    payload_offset: usize,
}

impl Record {
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            header: self.header,
            raw: &self.raw,
            ext: self.raw.get(self.ext_start..self.payload_offset).unwrap_or(&[]),
            payload: self.raw.get(self.payload_offset..).unwrap_or(&[]),
            payload_offset: self.payload_offset,
        }
    }
    pub fn payload(&self) -> &[u8] {
        self.raw.get(self.payload_offset..).unwrap_or(&[])
    }
}

/// One EVENT_HEADER extended data item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtItem<'a> {
    pub ext_type: u16,
    pub data: &'a [u8],
}

/// Iterator over extended data items; stops at the first item without the Linkage bit.
pub struct ExtItems<'a> {
    b: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for ExtItems<'a> {
    type Item = ExtItem<'a>;
    fn next(&mut self) -> Option<ExtItem<'a>> {
        if self.done {
            return None;
        }
        let p = self.pos;
        let (Some(_item_size), Some(ext_type), Some(linkage), Some(data_size)) =
            (u16_at(self.b, p), u16_at(self.b, p + 2), u16_at(self.b, p + 4), u16_at(self.b, p + 6))
        else {
            self.done = true;
            return None;
        };
        let data = self.b.get(p + 8..p + 8 + data_size as usize);
        let Some(data) = data else {
            self.done = true;
            return None;
        };
        self.pos = p + 8 + ((data_size as usize + 7) & !7);
        if linkage & 1 == 0 {
            self.done = true;
        }
        Some(ExtItem { ext_type, data })
    }
}

/// Size of the extended-items region starting at `start`, honouring Linkage and padding to 8.
fn ext_region_len(rec: &[u8], start: usize) -> Option<usize> {
    let mut p = start;
    loop {
        let _item = u16_at(rec, p)?;
        let linkage = u16_at(rec, p + 4)?;
        let data_size = u16_at(rec, p + 6)? as usize;
        p = p.checked_add(8 + ((data_size + 7) & !7))?;
        if p > rec.len() {
            return None;
        }
        if linkage & 1 == 0 {
            return Some(p - start);
        }
    }
}

/// Where one record ends (aligned), or why the buffer walk stops.
pub(crate) enum Step<'a> {
    Record(RecordRef<'a>, usize),
    End,
    Bad(u32),
}

/// Framing of one record: enough to skip it, validated the same way for counting and parsing.
#[derive(Clone, Copy)]
pub(crate) struct Frame {
    kind: HeaderKind,
    htype: u8,
    marker: u32,
    size: usize,
    payload_off: usize,
    ext_len: usize,
}

pub(crate) enum FrameStep {
    Frame(Frame),
    End,
    Bad(u32),
}

/// Frame the record at `pos` (buffer-relative; records live in `[0x48, end)`).
pub(crate) fn frame(data: &[u8], pos: usize, end: usize) -> FrameStep {
    let Some(marker) = u32_at(data, pos) else { return FrameStep::End };
    if marker == 0xFFFF_FFFF || marker == 0 {
        return FrameStep::End;
    }
    let flags = (marker >> 24) as u8;
    let htype = ((marker >> 16) & 0xFF) as u8;
    let r = data.get(pos..end).unwrap_or(&[]);
    let (kind, size, min, mut payload_off) = if flags & 0xC0 == 0xC0 {
        let kind = HeaderKind::from_type(htype);
        match kind {
            HeaderKind::System32
            | HeaderKind::System64
            | HeaderKind::Compact32
            | HeaderKind::Compact64
            | HeaderKind::Perfinfo32
            | HeaderKind::Perfinfo64 => {
                let version = marker & 0xFFFF;
                let base = match kind {
                    HeaderKind::System32 | HeaderKind::System64 => 0x20,
                    HeaderKind::Compact32 | HeaderKind::Compact64 => 0x18,
                    _ => 0x10,
                };
                // PMC / extended items after the fixed header (dissect system.py rule).
                let mut extra = 8 * ((version as usize & 0x700) >> 8);
                if version & 0x8000 != 0 {
                    extra += 8;
                }
                let size = u16_at(r, 4).unwrap_or(0) as usize;
                (kind, size, base + extra, base + extra)
            }
            HeaderKind::EventHeader32 | HeaderKind::EventHeader64 => (kind, (marker & 0xFFFF) as usize, 0x50, 0x50),
            HeaderKind::FullHeader32 | HeaderKind::FullHeader64 => (kind, (marker & 0xFFFF) as usize, 0x30, 0x30),
            HeaderKind::Instance32 | HeaderKind::Instance64 => (kind, (marker & 0xFFFF) as usize, 0x48, 0x48),
            HeaderKind::Other(_) | HeaderKind::Unknown(_) | HeaderKind::Message => {
                (kind, (marker & 0xFFFF) as usize, 4, 4)
            }
        }
    } else if flags & 0x80 != 0 {
        // TRACE_MESSAGE (WPP): u16 Size, MessageNumber, OptionFlags, then optional fields.
        let size = (marker & 0xFFFF) as usize;
        let opt = u16_at(r, 6).unwrap_or(0);
        let p = 8 + wpp_field_offsets(opt).3;
        (HeaderKind::Message, size, 8, p.min(size.max(8)))
    } else {
        return FrameStep::Bad(marker);
    };
    if size < min || size > r.len() || payload_off > size {
        return FrameStep::Bad(size as u32);
    }
    let mut ext_len = 0;
    if matches!(kind, HeaderKind::EventHeader32 | HeaderKind::EventHeader64) && u16_at(r, 4).unwrap_or(0) & 0x0001 != 0
    {
        match r.get(..size).and_then(|rec| ext_region_len(rec, 0x50)) {
            Some(n) => {
                ext_len = n;
                payload_off = 0x50 + n;
            }
            None => return FrameStep::Bad(size as u32),
        }
    }
    let htype = if kind == HeaderKind::Message { 0 } else { htype };
    FrameStep::Frame(Frame { kind, htype, marker, size, payload_off, ext_len })
}

/// WPP optional field offsets relative to +8: (guid, timestamp, systeminfo, total length).
fn wpp_field_offsets(opt: u16) -> (Option<usize>, Option<usize>, Option<usize>, usize) {
    let mut p = 0usize;
    if opt & 0x01 != 0 {
        p += 4; // sequence
    }
    let mut guid = None;
    if opt & 0x02 != 0 {
        guid = Some(p);
        p += 16;
    } else if opt & 0x04 != 0 {
        p += 4; // component id
    }
    let mut ts = None;
    if opt & 0x08 != 0 {
        ts = Some(p);
        p += 8;
    }
    let mut sys = None;
    if opt & 0x20 != 0 {
        sys = Some(p);
        p += 8;
    }
    (guid, ts, sys, p)
}

/// Parse the record at `pos` of `data` (buffer-relative offsets; `data` includes the buffer
/// header). `ctx` supplies the fields that come from the buffer and the clock.
pub(crate) fn parse_record<'a>(data: &'a [u8], pos: usize, end: usize, ctx: &RecordCtx) -> Step<'a> {
    let f = match frame(data, pos, end) {
        FrameStep::Frame(f) => f,
        FrameStep::End => return Step::End,
        FrameStep::Bad(v) => return Step::Bad(v),
    };
    let Some(r) = data.get(pos..pos + f.size) else { return Step::Bad(f.size as u32) };
    let mut h = RecordHeader {
        kind: f.kind,
        header_type: f.htype,
        offset: ctx.buffer_file_offset + pos as u64,
        buffer_index: ctx.buffer_index,
        record_index: 0,
        cpu: ctx.cpu,
        raw_timestamp: 0,
        filetime: 0,
        pid: None,
        tid: None,
        provider: Guid::NIL,
        group: None,
        id: None,
        opcode: 0,
        version: 0,
        level: 0,
        channel: 0,
        task: 0,
        keyword: 0,
        flags: 0,
        event_property: 0,
        activity_id: Guid::NIL,
        pointer_size: f.kind.pointer_size(),
        size: f.size as u32,
    };
    match f.kind {
        HeaderKind::System32
        | HeaderKind::System64
        | HeaderKind::Compact32
        | HeaderKind::Compact64
        | HeaderKind::Perfinfo32
        | HeaderKind::Perfinfo64 => {
            let hook = u16_at(r, 6).unwrap_or(0);
            h.version = (f.marker & 0xFFFF) as u16;
            h.group = Some((hook >> 8) as u8);
            h.opcode = (hook & 0xFF) as u8;
            h.provider = classic_group_guid((hook >> 8) as u8, (hook & 0xFF) as u8);
            if matches!(f.kind, HeaderKind::Perfinfo32 | HeaderKind::Perfinfo64) {
                h.raw_timestamp = i64_at(r, 8).unwrap_or(0);
            } else {
                h.tid = u32_at(r, 8);
                h.pid = u32_at(r, 12);
                h.raw_timestamp = i64_at(r, 16).unwrap_or(0);
            }
        }
        HeaderKind::EventHeader32 | HeaderKind::EventHeader64 => {
            h.flags = u16_at(r, 4).unwrap_or(0);
            h.event_property = u16_at(r, 6).unwrap_or(0);
            h.tid = u32_at(r, 8);
            h.pid = u32_at(r, 12);
            h.raw_timestamp = i64_at(r, 16).unwrap_or(0);
            h.provider = guid_at(r, 0x18);
            h.id = u16_at(r, 0x28);
            h.version = u8_at(r, 0x2A).unwrap_or(0) as u16;
            h.channel = u8_at(r, 0x2B).unwrap_or(0);
            h.level = u8_at(r, 0x2C).unwrap_or(0);
            h.opcode = u8_at(r, 0x2D).unwrap_or(0);
            h.task = u16_at(r, 0x2E).unwrap_or(0);
            h.keyword = u64_at(r, 0x30).unwrap_or(0);
            h.activity_id = guid_at(r, 0x40);
        }
        HeaderKind::FullHeader32 | HeaderKind::FullHeader64 | HeaderKind::Instance32 | HeaderKind::Instance64 => {
            h.opcode = u8_at(r, 4).unwrap_or(0);
            h.level = u8_at(r, 5).unwrap_or(0);
            h.version = u16_at(r, 6).unwrap_or(0);
            h.tid = u32_at(r, 8);
            h.pid = u32_at(r, 12);
            h.raw_timestamp = i64_at(r, 16).unwrap_or(0);
            h.provider = guid_at(r, 0x18);
        }
        HeaderKind::Message => {
            let (guid, ts, sys, _) = wpp_field_offsets(u16_at(r, 6).unwrap_or(0));
            if let Some(g) = guid {
                h.provider = guid_at(r, 8 + g);
            }
            if let Some(t) = ts {
                h.raw_timestamp = i64_at(r, 8 + t).unwrap_or(0);
            }
            if let Some(s) = sys {
                h.tid = u32_at(r, 8 + s);
                h.pid = u32_at(r, 12 + s);
            }
        }
        HeaderKind::Other(_) | HeaderKind::Unknown(_) => {}
    }
    h.filetime = ctx.clock.filetime(h.raw_timestamp);
    let payload = r.get(f.payload_off..).unwrap_or(&[]);
    let ext = r.get(f.payload_off - f.ext_len..f.payload_off).unwrap_or(&[]);
    let next = pos + ((f.size + 7) & !7);
    Step::Record(RecordRef { header: h, raw: r, ext, payload, payload_offset: f.payload_off }, next)
}

/// Count the records of a buffer the way [`RecordsInBuffer`] walks them; also returns where
/// the walk stopped on damage.
pub(crate) fn count_records(data: &[u8], end: usize) -> (u64, Option<(usize, u32)>) {
    let mut pos = super::BUFFER_HEADER_SIZE;
    let mut n = 0u64;
    while pos + 4 <= end {
        match frame(data, pos, end) {
            FrameStep::Frame(f) => {
                n += 1;
                pos += (f.size + 7) & !7;
            }
            FrameStep::End => break,
            FrameStep::Bad(v) => return (n, Some((pos, v))),
        }
    }
    (n, None)
}

fn guid_at(b: &[u8], off: usize) -> Guid {
    b.get(off..off + 16).and_then(|s| <[u8; 16]>::try_from(s).ok()).map(Guid::from_bytes_le).unwrap_or(Guid::NIL)
}

/// Per-buffer context for record parsing.
pub(crate) struct RecordCtx {
    pub buffer_file_offset: u64,
    pub buffer_index: u64,
    pub cpu: u16,
    pub clock: super::Clock,
}

/// Iterator over the records of one buffer, in buffer order.
pub struct RecordsInBuffer<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) pos: usize,
    pub(crate) end: usize,
    pub(crate) ctx: RecordCtx,
    pub(crate) next_index: u64,
    pub(crate) done: bool,
}

impl<'a> Iterator for RecordsInBuffer<'a> {
    type Item = Result<RecordRef<'a>, Damage>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos.saturating_add(4) > self.end {
            self.done = true;
            return None;
        }
        match parse_record(self.data, self.pos, self.end, &self.ctx) {
            Step::End => {
                self.done = true;
                None
            }
            Step::Bad(size) => {
                self.done = true;
                Some(Err(Damage {
                    offset: self.ctx.buffer_file_offset + self.pos as u64,
                    kind: DamageKind::BadField { part: Part::Record, field: "Size", value: size as u64 },
                }))
            }
            Step::Record(mut r, next) => {
                r.header.record_index = self.next_index;
                self.next_index += 1;
                self.pos = next;
                Some(Ok(r))
            }
        }
    }
}
