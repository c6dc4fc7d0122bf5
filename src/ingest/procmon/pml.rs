//! Process Monitor's native log (PML version 9, 32- and 64-bit). Layout (docs/procmon.md): a
//! 0x3A8-byte header with the offsets of the events, of the event-offset array (5 bytes per
//! event), of the process table and of the string table; events carry a process-table index, a
//! FILETIME (UTC), the NTSTATUS result and a class-specific detail block holding the path.
//! Events are read in the order of the offset array; the process table and the strings it names
//! are read once, so memory grows with processes, not events. Every offset and length from the
//! file is checked against the file's size before use.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use super::{net_path, result_text, EventClass, NetInfo, ProcmonEvent};
use crate::ingest::{Damage, DamageKind, Part};

pub const HEADER_SIZE: usize = 0x3A8;
/// Size of an event's fixed part.
pub const EVENT_HEADER_SIZE: usize = 0x34;
/// Detail bytes read per event: enough for the longest path (32767 UTF-16 units) and its prefix.
const MAX_DETAIL_READ: usize = 0x10100;
/// Event offsets read per batch.
const OFFSET_BATCH: usize = 4096;
/// Longest string table entry read (bytes).
const MAX_STRING: u32 = 0x10000;

const FT_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// A FILETIME to ns since the Unix epoch.
/// Clamped to ±2^61 ns (±73 years around 1970 … well past any real log) so that differences of
/// two times never overflow downstream.
pub fn filetime_ns(ft: u64) -> i64 {
    const LIMIT: i64 = 1 << 61;
    ((ft as i64).saturating_sub(FT_UNIX_EPOCH as i64)).saturating_mul(100).clamp(-LIMIT, LIMIT)
}

/// Facts from the PML header, for the summary.
#[derive(Clone, Debug, Default)]
pub struct PmlHeader {
    pub version: u32,
    pub is_64bit: bool,
    pub computer_name: String,
    pub system_root: String,
    pub events: u32,
    pub events_offset: u64,
    pub event_offsets_offset: u64,
    pub process_table_offset: u64,
    pub strings_table_offset: u64,
    pub windows_major: u32,
    pub windows_minor: u32,
    pub windows_build: u32,
    pub logical_processors: u32,
    pub process_table_entries: u32,
}

#[derive(Clone, Debug)]
struct Process {
    pid: u32,
    name: String,
}

/// Streams the events of a PML file.
pub struct PmlReader<R: Read + Seek> {
    r: R,
    len: u64,
    pos: u64,
    pub header: PmlHeader,
    processes: HashMap<u32, Process>,
    offsets: Vec<u64>,
    next_offset_batch: u64,
    next_event: u64,
    failed: bool,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    b.get(o..o + 2).map(|x| u16::from_le_bytes([x[0], x[1]]))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    b.get(o..o + 4).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    b.get(o..o + 8).map(|x| u64::from_le_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]]))
}

/// UTF-16LE up to the first NUL.
fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0).collect();
    String::from_utf16_lossy(&units)
}

/// A detail string: a u16 info (bit 15 = ASCII, low 15 bits = characters) already read, then
/// the characters at `at`. Returns the string and the offset after it.
fn detail_string(b: &[u8], info: u16, at: usize) -> (String, usize) {
    let n = (info & 0x7fff) as usize;
    if info & 0x8000 != 0 {
        let end = (at + n).min(b.len());
        (b.get(at..end).map(|s| s.iter().map(|&c| c as char).collect()).unwrap_or_default(), at + n)
    } else {
        let end = (at + 2 * n).min(b.len());
        (b.get(at..end).map(utf16).unwrap_or_default(), at + 2 * n)
    }
}

impl<R: Read + Seek> PmlReader<R> {
    /// Reads the header and the process table. `len` is the file size.
    pub fn new(mut r: R, len: u64) -> Result<Self, Damage> {
        let mut h = vec![0u8; HEADER_SIZE];
        read_exact_at(&mut r, 0, &mut h).map_err(|_| {
            let kind = DamageKind::Truncated { part: Part::PmlHeader, needed: HEADER_SIZE as u64, available: len };
            Damage::at(0, kind)
        })?;
        if !h.starts_with(b"PML_") {
            return Err(Damage::at(0, DamageKind::BadMagic { format: "Process Monitor log", magic: "PML_" }));
        }
        let g32 = |o: usize| u32_at(&h, o).unwrap_or(0);
        let g64 = |o: usize| u64_at(&h, o).unwrap_or(0);
        let version = g32(4);
        if version != 9 {
            let kind = DamageKind::Unsupported { part: Part::PmlHeader, version: version as u64, supported: 9 };
            return Err(Damage::at(4, kind));
        }
        let header = PmlHeader {
            version,
            is_64bit: g32(8) != 0,
            computer_name: utf16(&h[0x0C..0x2C]),
            system_root: utf16(&h[0x2C..0x234]),
            events: g32(0x234),
            events_offset: g64(0x240),
            event_offsets_offset: g64(0x248),
            process_table_offset: g64(0x250),
            strings_table_offset: g64(0x258),
            windows_major: g32(0x274),
            windows_minor: g32(0x278),
            windows_build: g32(0x27C),
            logical_processors: g32(0x38C),
            process_table_entries: 0,
        };
        let header_size = g64(0x398);
        if header.events_offset == 0 || header.event_offsets_offset == 0 || header.process_table_offset == 0 {
            let why = "table offsets are zero: Procmon was still writing it";
            return Err(Damage::at(0x240, DamageKind::NotClosed(why)));
        }
        if header_size != HEADER_SIZE as u64 {
            let kind = DamageKind::Mismatch {
                part: Part::PmlHeader,
                field: "size",
                value: header_size,
                expected: HEADER_SIZE as u64,
            };
            return Err(Damage::at(0x398, kind));
        }
        for (part, off, at) in [
            (Part::Event(0), header.events_offset, 0x240u64),
            (Part::EventOffsets, header.event_offsets_offset, 0x248),
            (Part::ProcessTable, header.process_table_offset, 0x250),
            (Part::StringTable, header.strings_table_offset, 0x258),
        ] {
            if off < HEADER_SIZE as u64 || off >= len {
                return Err(Damage::at(at, DamageKind::OffsetOutsideFile { part, offset: off }));
            }
        }
        let array_end = header.event_offsets_offset.saturating_add(header.events as u64 * 5);
        if array_end > len {
            let kind = DamageKind::PastEnd { part: Part::EventOffsets, len: header.events as u64 * 5, file_len: len };
            return Err(Damage::at(header.event_offsets_offset, kind));
        }
        let mut rd = PmlReader {
            r,
            len,
            pos: HEADER_SIZE as u64,
            header,
            processes: HashMap::new(),
            offsets: Vec::new(),
            next_offset_batch: 0,
            next_event: 0,
            failed: false,
        };
        rd.read_process_table()?;
        Ok(rd)
    }

    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> Result<(), Damage> {
        if off.saturating_add(buf.len() as u64) > self.len {
            let kind = DamageKind::PastEnd { part: Part::Data, len: buf.len() as u64, file_len: self.len };
            return Err(Damage::at(off, kind));
        }
        if self.pos != off {
            self.r.seek(SeekFrom::Start(off)).map_err(|e| Damage::at(off, e.into()))?;
        }
        self.r.read_exact(buf).map_err(|e| Damage::at(off, e.into()))?;
        self.pos = off + buf.len() as u64;
        Ok(())
    }

    fn u32_at_file(&mut self, off: u64) -> Result<u32, Damage> {
        let mut b = [0u8; 4];
        self.read_at(off, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn string(&mut self, index: u32) -> Result<String, Damage> {
        let table = self.header.strings_table_offset;
        let count = self.u32_at_file(table)?;
        if index >= count {
            return Ok(String::new());
        }
        let rel = self.u32_at_file(table + 4 + 4 * index as u64)?;
        let at = table + rel as u64;
        let size = self.u32_at_file(at)?;
        if size > MAX_STRING {
            let kind = DamageKind::TooLarge { part: Part::TableString, len: size as u64, max: MAX_STRING as u64 };
            return Err(Damage::at(at, kind));
        }
        let mut b = vec![0u8; size as usize];
        self.read_at(at + 4, &mut b)?;
        Ok(utf16(&b))
    }

    fn read_process_table(&mut self) -> Result<(), Damage> {
        let table = self.header.process_table_offset;
        let count = self.u32_at_file(table)?;
        // Two u32 per entry plus the entry itself: the count cannot exceed what the file holds.
        if (count as u64).saturating_mul(8) > self.len - table {
            return Err(Damage::at(table, DamageKind::CountTooLarge { part: Part::ProcessTable, count: count as u64 }));
        }
        self.header.process_table_entries = count;
        for i in 0..count as u64 {
            let rel = self.u32_at_file(table + 4 + 4 * count as u64 + 4 * i)?;
            let at = table + rel as u64;
            let mut p = [0u8; 0x48];
            self.read_at(at, &mut p)?;
            let index = u32_at(&p, 0).unwrap_or(0);
            let pid = u32_at(&p, 4).unwrap_or(0);
            let name_idx = u32_at(&p, 0x40).unwrap_or(u32::MAX);
            let name = self.string(name_idx)?;
            self.processes.insert(index, Process { pid, name });
        }
        Ok(())
    }

    fn next_offset(&mut self) -> Result<Option<u64>, Damage> {
        if self.next_event >= self.header.events as u64 {
            return Ok(None);
        }
        let i = self.next_event - self.next_offset_batch;
        if self.offsets.is_empty() || i as usize >= self.offsets.len() {
            self.next_offset_batch = self.next_event;
            let n = (self.header.events as u64 - self.next_event).min(OFFSET_BATCH as u64) as usize;
            let mut b = vec![0u8; n * 5];
            let at = self.header.event_offsets_offset + self.next_event * 5;
            self.read_at(at, &mut b)?;
            self.offsets = b.chunks_exact(5).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64).collect();
        }
        let off = self.offsets.get((self.next_event - self.next_offset_batch) as usize).copied();
        self.next_event += 1;
        Ok(off)
    }

    fn read_event(&mut self, index: u64, off: u64) -> Result<ProcmonEvent, Damage> {
        if off < HEADER_SIZE as u64 || off >= self.len {
            return Err(Damage::at(off, DamageKind::OffsetOutsideFile { part: Part::Event(index), offset: off }));
        }
        let mut e = [0u8; EVENT_HEADER_SIZE];
        self.read_at(off, &mut e)?;
        let g32 = |o: usize| u32_at(&e, o).unwrap_or(0);
        let proc_idx = g32(0);
        let tid = g32(4);
        let class = EventClass::from_pml(g32(8));
        let op = u16_at(&e, 0xC).unwrap_or(0);
        let date = u64_at(&e, 0x1C).unwrap_or(0);
        let result = g32(0x24);
        let depth = u16_at(&e, 0x28).unwrap_or(0) as u64;
        let details_size = g32(0x2C) as u64;
        let ptr: u64 = if self.header.is_64bit { 8 } else { 4 };
        let details_at = off + EVENT_HEADER_SIZE as u64 + depth * ptr;
        if details_at.saturating_add(details_size) > self.len {
            let kind = DamageKind::PastEnd { part: Part::Event(index), len: details_size, file_len: self.len };
            return Err(Damage::at(off, kind));
        }
        let mut d = vec![0u8; (details_size as usize).min(MAX_DETAIL_READ)];
        self.read_at(details_at, &mut d)?;
        let (pid, process) = match self.processes.get(&proc_idx) {
            Some(p) => (p.pid, p.name.clone()),
            None => {
                let kind = DamageKind::Undeclared {
                    part: Part::Event(index),
                    target: "process index",
                    index: proc_idx as u64,
                };
                return Err(Damage::at(off, kind));
            }
        };
        let mut ev = ProcmonEvent {
            index,
            ts: filetime_ns(date),
            pid,
            tid,
            process,
            class,
            operation: String::new(),
            path: String::new(),
            result: result_text(result),
            status: Some(result),
            disposition: None,
            net: None,
        };
        self.details(&mut ev, op, &d);
        Ok(ev)
    }

    fn details(&self, ev: &mut ProcmonEvent, op: u16, d: &[u8]) {
        let p64 = self.header.is_64bit;
        let ptr = if p64 { 8 } else { 4 };
        match ev.class {
            EventClass::FileSystem => {
                let sub = d.first().copied().unwrap_or(0);
                ev.operation = fs_operation(op, sub);
                let io_len = ptr * 5 + 0x14;
                let info = u16_at(d, 4 + io_len).unwrap_or(0);
                let (path, end) = detail_string(d, info, 4 + io_len + 4);
                ev.path = path;
                // QueryDirectory's filter (the name asked for) follows; Procmon shows it in Path.
                if ev.operation == "QueryDirectory" {
                    let (filter, _) = detail_string(d, u16_at(d, end).unwrap_or(0), end + 2);
                    if !filter.is_empty() {
                        if !ev.path.ends_with('\\') {
                            ev.path.push('\\');
                        }
                        ev.path.push_str(&filter);
                    }
                }
                if op == FS_CREATE_FILE || op == FS_CREATE_PIPE {
                    let at = 4 + 0x10 + if p64 { 4 } else { 0 };
                    ev.disposition = u32_at(d, at).map(|v| (v >> 24) as u8);
                }
            }
            EventClass::Process => {
                ev.operation = PROCESS_OPS.get(op as usize).copied().unwrap_or("<Unknown>").to_string();
                match op {
                    0 | 1 => {
                        let s1 = d.get(0x2C).copied().unwrap_or(0) as usize;
                        let s2 = d.get(0x2D).copied().unwrap_or(0) as usize;
                        let info = u16_at(d, 0x2E).unwrap_or(0);
                        ev.path = detail_string(d, info, 0x34 + s1 + s2).0;
                    }
                    5 => {
                        let info = u16_at(d, ptr + 4).unwrap_or(0);
                        ev.path = detail_string(d, info, ptr + 8).0;
                    }
                    _ => {}
                }
            }
            EventClass::Registry => {
                let name = REGISTRY_OPS.get(op as usize).copied().unwrap_or("<Unknown>");
                ev.operation = name.to_string();
                let info = u16_at(d, 0).unwrap_or(0);
                let at = match name {
                    "RegLoadKey" | "RegRenameKey" => 4,
                    "RegOpenKey" | "RegCreateKey" => 8,
                    "RegQueryKey" | "RegQueryValue" => 0xC,
                    "RegEnumValue" | "RegEnumKey" | "RegSetInfoKey" | "RegSetValue" => 0x10,
                    _ => 2,
                };
                ev.path = detail_string(d, info, at).0;
            }
            EventClass::Network => {
                let flags = u16_at(d, 0).unwrap_or(0);
                let tcp = flags & 4 != 0;
                let name = NETWORK_OPS.get(op as usize).copied().unwrap_or("Unknown");
                ev.operation = format!("{} {name}", if tcp { "TCP" } else { "UDP" });
                let ip = |at: usize, v4: bool| -> Option<std::net::IpAddr> {
                    let b = d.get(at..at + 16)?;
                    Some(if v4 {
                        std::net::IpAddr::from([b[0], b[1], b[2], b[3]])
                    } else {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        std::net::IpAddr::from(a)
                    })
                };
                if let (Some(s), Some(t), Some(sp), Some(dp)) =
                    (ip(8, flags & 1 != 0), ip(0x18, flags & 2 != 0), u16_at(d, 0x28), u16_at(d, 0x2A))
                {
                    let n = NetInfo { tcp, src: (s, sp).into(), dst: (t, dp).into() };
                    ev.path = net_path(&n);
                    ev.net = Some(n);
                }
            }
            EventClass::Profiling => {
                ev.operation = ["Thread Profiling", "Process Profiling", "Debug Output Profiling"]
                    .get(op as usize)
                    .copied()
                    .unwrap_or("<Unknown>")
                    .to_string();
            }
            EventClass::Unknown => ev.operation = "<Unknown>".into(),
        }
    }
}

impl<R: Read + Seek> Iterator for PmlReader<R> {
    type Item = Result<ProcmonEvent, Damage>;

    /// The next event; after damage, one error and then the end.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let index = self.next_event;
        let r = match self.next_offset() {
            Ok(None) => return None,
            Ok(Some(off)) => self.read_event(index, off),
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

fn read_exact_at<R: Read + Seek>(r: &mut R, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
    r.seek(SeekFrom::Start(off))?;
    r.read_exact(buf)
}

pub const FS_CREATE_FILE: u16 = 20;
pub const FS_CREATE_PIPE: u16 = 21;
pub const FS_CLOSE_FILE: u16 = 38;

const PROCESS_OPS: &[&str] = &[
    "Process Defined",
    "Process Create",
    "Process Exit",
    "Thread Create",
    "Thread Exit",
    "Load Image",
    "Thread Profile",
    "Process Start",
    "Process Statistics",
    "System Statistics",
];

const REGISTRY_OPS: &[&str] = &[
    "RegOpenKey",
    "RegCreateKey",
    "RegCloseKey",
    "RegQueryKey",
    "RegSetValue",
    "RegQueryValue",
    "RegEnumValue",
    "RegEnumKey",
    "RegSetInfoKey",
    "RegDeleteKey",
    "RegDeleteValue",
    "RegFlushKey",
    "RegLoadKey",
    "RegUnloadKey",
    "RegRenameKey",
    "RegQueryMultipleValueKey",
    "RegSetKeySecurity",
    "RegQueryKeySecurity",
];

const NETWORK_OPS: &[&str] =
    &["Unknown", "Other", "Send", "Receive", "Accept", "Connect", "Disconnect", "Reconnect", "Retransmit", "TCPCopy"];

/// File-system operations by their PML number (IRP major functions and fast-I/O calls, in
/// Procmon's order).
pub const FS_OPS: &[&str] = &[
    "VolumeDismount",
    "VolumeMount",
    "FASTIO_MDL_WRITE_COMPLETE",
    "WriteFile2",
    "FASTIO_MDL_READ_COMPLETE",
    "ReadFile2",
    "QueryOpen",
    "FASTIO_CHECK_IF_POSSIBLE",
    "IRP_MJ_12",
    "IRP_MJ_11",
    "IRP_MJ_10",
    "IRP_MJ_9",
    "IRP_MJ_8",
    "FASTIO_NOTIFY_STREAM_FO_CREATION",
    "FASTIO_RELEASE_FOR_CC_FLUSH",
    "FASTIO_ACQUIRE_FOR_CC_FLUSH",
    "FASTIO_RELEASE_FOR_MOD_WRITE",
    "FASTIO_ACQUIRE_FOR_MOD_WRITE",
    "FASTIO_RELEASE_FOR_SECTION_SYNCHRONIZATION",
    "CreateFileMapping",
    "CreateFile",
    "CreatePipe",
    "IRP_MJ_CLOSE",
    "ReadFile",
    "WriteFile",
    "QueryInformationFile",
    "SetInformationFile",
    "QueryEAFile",
    "SetEAFile",
    "FlushBuffersFile",
    "QueryVolumeInformation",
    "SetVolumeInformation",
    "DirectoryControl",
    "FileSystemControl",
    "DeviceIoControl",
    "InternalDeviceIoControl",
    "Shutdown",
    "LockUnlockFile",
    "CloseFile",
    "CreateMailSlot",
    "QuerySecurityFile",
    "SetSecurityFile",
    "Power",
    "SystemControl",
    "DeviceChange",
    "QueryFileQuota",
    "SetFileQuota",
    "PlugAndPlay",
];

/// The operation name Procmon shows: some operations are named by their sub-operation (the
/// information class, the directory or lock function).
fn fs_operation(op: u16, sub: u8) -> String {
    let base = FS_OPS.get(op as usize).copied().unwrap_or("<Unknown>");
    if sub == 0 {
        return base.to_string();
    }
    let table: &[(u8, &str)] = match base {
        "DirectoryControl" => &[(1, "QueryDirectory"), (2, "NotifyChangeDirectory")],
        "LockUnlockFile" => &[(1, "LockFile"), (2, "UnlockFileSingle"), (3, "UnlockFileAll"), (4, "UnlockFileByKey")],
        "QueryVolumeInformation" => &[
            (1, "QueryInformationVolume"),
            (2, "QueryLabelInformationVolume"),
            (3, "QuerySizeInformationVolume"),
            (4, "QueryDeviceInformationVolume"),
            (5, "QueryAttributeInformationVolume"),
            (6, "QueryControlInformationVolume"),
            (7, "QueryFullSizeInformationVolume"),
            (8, "QueryObjectIdInformationVolume"),
        ],
        "SetVolumeInformation" => {
            &[(1, "SetControlInformationVolume"), (2, "SetLabelInformationVolume"), (8, "SetObjectIdInformationVolume")]
        }
        "QueryInformationFile" => &[
            (0x04, "QueryBasicInformationFile"),
            (0x05, "QueryStandardInformationFile"),
            (0x06, "QueryFileInternalInformationFile"),
            (0x07, "QueryEaInformationFile"),
            (0x09, "QueryNameInformationFile"),
            (0x0e, "QueryPositionInformationFile"),
            (0x12, "QueryAllInformationFile"),
            (0x14, "QueryEndOfFile"),
            (0x16, "QueryStreamInformationFile"),
            (0x1c, "QueryCompressionInformationFile"),
            (0x1d, "QueryId"),
            (0x1f, "QueryMoveClusterInformationFile"),
            (0x22, "QueryNetworkOpenInformationFile"),
            (0x23, "QueryAttributeTagFile"),
            (0x25, "QueryIdBothDirectory"),
            (0x27, "QueryValidDataLength"),
            (0x28, "QueryShortNameInformationFile"),
            (0x2b, "QueryIoPiorityHint"),
            (0x2e, "QueryLinks"),
            (0x30, "QueryNormalizedNameInformationFile"),
            (0x31, "QueryNetworkPhysicalNameInformationFile"),
            (0x3b, "QueryIdInformation"),
            (0x44, "QueryStatInformation"),
            (0x47, "QueryCaseSensitiveInformation"),
        ],
        "SetInformationFile" => &[
            (0x04, "SetBasicInformationFile"),
            (0x0a, "SetRenameInformationFile"),
            (0x0b, "SetLinkInformationFile"),
            (0x0d, "SetDispositionInformationFile"),
            (0x0e, "SetPositionInformationFile"),
            (0x13, "SetAllocationInformationFile"),
            (0x14, "SetEndOfFileInformationFile"),
            (0x16, "SetFileStreamInformation"),
            (0x17, "SetPipeInformation"),
            (0x27, "SetValidDataLengthInformationFile"),
            (0x28, "SetShortNameInformation"),
            (0x3d, "SetReplaceCompletionInformation"),
            (0x40, "SetDispositionInformationEx"),
            (0x41, "SetRenameInformationEx"),
        ],
        _ => return base.to_string(),
    };
    table.iter().find(|(v, _)| *v == sub).map(|(_, n)| n.to_string()).unwrap_or_else(|| format!("{base} <Unknown>"))
}
