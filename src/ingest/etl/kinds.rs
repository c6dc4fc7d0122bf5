//! The identities a record header carries: provider GUIDs, the header kind, and the classic
//! kernel GUID of a SYSTEM/COMPACT/PERFINFO hook group.

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
    pub(super) fn from_type(t: u8) -> HeaderKind {
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
