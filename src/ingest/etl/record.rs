//! Record headers: every kind that can appear inside a buffer.

use super::bytes::{i64_at, u16_at, u32_at, u64_at, u8_at};
use super::{EtlError, EtlErrorKind};
use std::fmt;

/// A Windows GUID stored as its canonical 16 bytes in big-endian text order
/// (i.e. `Guid::from_bytes_le` of the on-disk struct gives what Windows prints).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub const NIL: Guid = Guid([0; 16]);

    /// From the on-disk GUID struct (Data1/2/3 little-endian, then 8 raw bytes).
    pub fn from_bytes_le(b: [u8; 16]) -> Guid {
        let mut o = b;
        o[0] = b[3];
        o[1] = b[2];
        o[2] = b[1];
        o[3] = b[0];
        o[4] = b[5];
        o[5] = b[4];
        o[6] = b[7];
        o[7] = b[6];
        Guid(o)
    }

    /// Back to the on-disk struct layout.
    pub fn to_bytes_le(self) -> [u8; 16] {
        // The permutation is its own inverse.
        Guid::from_bytes_le(self.0).0
    }

    /// Parse `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (case-insensitive, optional braces).
    pub fn parse(s: &str) -> Option<Guid> {
        let s = s.trim().trim_start_matches('{').trim_end_matches('}');
        let hex: Vec<u8> = s.bytes().filter(|&c| c != b'-').collect();
        if hex.len() != 32 || s.len() != 36 {
            return None;
        }
        let mut o = [0u8; 16];
        for (i, slot) in o.iter_mut().enumerate() {
            let pair = std::str::from_utf8(hex.get(2 * i..2 * i + 2)?).ok()?;
            *slot = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Guid(o))
    }

    /// Compile-time constructor from the usual printed components.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_be_bytes();
        let b = d2.to_be_bytes();
        let c = d3.to_be_bytes();
        Guid([a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6], d4[7]])
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Record header kind, from the marker's HeaderType byte (or the WPP message flags).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum HeaderKind {
    System32,
    System64,
    Compact32,
    Compact64,
    Perfinfo32,
    Perfinfo64,
    EventHeader32,
    EventHeader64,
    FullHeader32,
    FullHeader64,
    Instance32,
    Instance64,
    /// 0x0C TIMED, 0x0D ERROR, 0x0E WNODE: skipped by size, not decoded.
    Other(u8),
    /// TRACE_MESSAGE (WPP): needs TMF files to decode.
    Message,
    /// Anything else with a plausible size.
    Unknown(u8),
}

impl HeaderKind {
    fn from_type(t: u8) -> HeaderKind {
        match t {
            0x01 => HeaderKind::System32,
            0x02 => HeaderKind::System64,
            0x03 => HeaderKind::Compact32,
            0x04 => HeaderKind::Compact64,
            0x10 => HeaderKind::Perfinfo32,
            0x11 => HeaderKind::Perfinfo64,
            0x12 => HeaderKind::EventHeader32,
            0x13 => HeaderKind::EventHeader64,
            0x0A => HeaderKind::FullHeader32,
            0x14 => HeaderKind::FullHeader64,
            0x0B => HeaderKind::Instance32,
            0x15 => HeaderKind::Instance64,
            0x0C..=0x0E => HeaderKind::Other(t),
            t => HeaderKind::Unknown(t),
        }
    }

    /// Pointer size implied by the header variant (8 unless it is a 32-bit variant).
    pub fn pointer_size(self) -> u8 {
        match self {
            HeaderKind::System32
            | HeaderKind::Compact32
            | HeaderKind::Perfinfo32
            | HeaderKind::EventHeader32
            | HeaderKind::FullHeader32
            | HeaderKind::Instance32 => 4,
            _ => 8,
        }
    }

    /// The class name dissect.etl uses (the oracle's `header_kind` column).
    pub fn dissect_name(self) -> &'static str {
        match self {
            HeaderKind::System32 | HeaderKind::System64 => "SystemHeader",
            HeaderKind::Compact32 | HeaderKind::Compact64 => "CompactSystemHeader",
            HeaderKind::Perfinfo32 | HeaderKind::Perfinfo64 => "PerfinfoTraceHeader",
            HeaderKind::EventHeader32 | HeaderKind::EventHeader64 => "EventHeader",
            HeaderKind::FullHeader32 | HeaderKind::FullHeader64 => "EventTraceHeader",
            HeaderKind::Instance32 | HeaderKind::Instance64 => "EventInstanceGUIDHeader",
            HeaderKind::Message => "MessageTraceHeader",
            HeaderKind::Other(_) | HeaderKind::Unknown(_) => "Unknown",
        }
    }

    pub fn is_classic_kernel(self) -> bool {
        matches!(
            self,
            HeaderKind::System32
                | HeaderKind::System64
                | HeaderKind::Compact32
                | HeaderKind::Compact64
                | HeaderKind::Perfinfo32
                | HeaderKind::Perfinfo64
        )
    }
}

/// Classic kernel GUID for a SYSTEM/COMPACT/PERFINFO HookId group, as dissect.etl maps it
/// (group 0x03 opcode 10 is the Image load event). Unknown groups give [`Guid::NIL`].
pub fn classic_group_guid(group: u8, opcode: u8) -> Guid {
    const EVENT_TRACE: Guid = Guid::from_fields(0x68fdd900, 0x4a3e, 0x11d1, [0x84, 0xf4, 0, 0, 0xf8, 0x04, 0x64, 0xe3]);
    const DISK_IO: Guid = Guid::from_fields(0x3d6fa8d4, 0xfe05, 0x11d0, [0x9d, 0xda, 0, 0xc0, 0x4f, 0xd7, 0xba, 0x7c]);
    const PAGE_FAULT: Guid =
        Guid::from_fields(0x3d6fa8d3, 0xfe05, 0x11d0, [0x9d, 0xda, 0, 0xc0, 0x4f, 0xd7, 0xba, 0x7c]);
    const PROCESS: Guid = Guid::from_fields(0x3d6fa8d0, 0xfe05, 0x11d0, [0x9d, 0xda, 0, 0xc0, 0x4f, 0xd7, 0xba, 0x7c]);
    const THREAD: Guid = Guid::from_fields(0x3d6fa8d1, 0xfe05, 0x11d0, [0x9d, 0xda, 0, 0xc0, 0x4f, 0xd7, 0xba, 0x7c]);
    const IMAGE: Guid = Guid::from_fields(0x2cb15d1d, 0x5fc1, 0x11d2, [0xab, 0xe1, 0, 0xa0, 0xc9, 0x11, 0xf5, 0x18]);
    const FILE_IO: Guid = Guid::from_fields(0x90cbdc39, 0x4a3e, 0x11d1, [0x84, 0xf4, 0, 0, 0xf8, 0x04, 0x64, 0xe3]);
    const TCP_IP: Guid = Guid::from_fields(0x9a280ac0, 0xc8e0, 0x11d1, [0x84, 0xe2, 0, 0xc0, 0x4f, 0xb9, 0x98, 0xa2]);
    const UDP_IP: Guid =
        Guid::from_fields(0xbf3a50c5, 0xa9c9, 0x4988, [0xa0, 0x05, 0x2d, 0xf0, 0xb7, 0xc8, 0x0f, 0x80]);
    const REGISTRY: Guid = Guid::from_fields(0xae53722e, 0xc863, 0x11d2, [0x86, 0x59, 0, 0xc0, 0x4f, 0xa3, 0x21, 0xa1]);
    const CONFIG: Guid =
        Guid::from_fields(0x01853a65, 0x418f, 0x4f36, [0xae, 0xfc, 0xdc, 0x0f, 0x1d, 0x2f, 0xd2, 0x35]);
    const PERF_INFO: Guid =
        Guid::from_fields(0xce1dbfb4, 0x137e, 0x4da6, [0x87, 0xb0, 0x3f, 0x59, 0xaa, 0x10, 0x2c, 0xbc]);
    const STACK_WALK: Guid =
        Guid::from_fields(0xdef2fe46, 0x7bd6, 0x4b80, [0xbd, 0x94, 0xf5, 0x7f, 0xe2, 0x0d, 0x0c, 0xe3]);
    const ALPC: Guid = Guid::from_fields(0x45d8cccd, 0x539f, 0x4b72, [0xa8, 0xb7, 0x5c, 0x68, 0x31, 0x42, 0x60, 0x9a]);
    match group {
        0x00 => EVENT_TRACE,
        0x01 => DISK_IO,
        0x02 => PAGE_FAULT,
        0x03 if opcode == 10 => IMAGE,
        0x03 => PROCESS,
        0x04 => FILE_IO,
        0x05 => THREAD,
        0x06 => TCP_IP,
        0x08 => UDP_IP,
        0x09 => REGISTRY,
        0x0B => CONFIG,
        0x0F => PERF_INFO,
        0x14 => IMAGE,
        0x18 => STACK_WALK,
        0x1A => ALPC,
        _ => Guid::NIL,
    }
}

/// Every scalar a record header carries, normalised across header kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: HeaderKind,
    /// Raw HeaderType byte (0x01..0x15), or 0 for WPP messages.
    pub header_type: u8,
    /// File offset of the record (see [`super::EtlError`] for compressed buffers).
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
    type Item = Result<RecordRef<'a>, EtlError>;
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
                Some(Err(EtlError {
                    offset: self.ctx.buffer_file_offset + self.pos as u64,
                    kind: EtlErrorKind::BadRecordSize { size },
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
