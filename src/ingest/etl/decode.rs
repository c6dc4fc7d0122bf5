//! Typed decoders for the providers that matter to IPC analysis.
//!
//! Layouts and sources (see docs/etl.md):
//! * Microsoft-Windows-Kernel-File: manifest templates as listed by OTRF/OSSEM's ETW data
//!   dictionary (event-12, 12_v1, 13, 13_v1, 14_v1, 24), checked against net.4.5.2 Create v1.
//! * Classic FileIo / TcpIp: MOF classes FileIo_Create/SimpleOp/OpEnd/Name and
//!   TcpIp_TypeGroup1/2 (v2), checked against the corpus oracle for TcpIp and FileIo names.
//! * Microsoft-Windows-TCPIP: the shared Tcb template of events 1017/1033/1034/1039/1040/1043/
//!   1045/1046/1047/1048 (OSSEM); no corpus sample, unit-tested on hand-built records.
//! * Microsoft-Windows-NDIS-PacketCapture 1001 (OSSEM) with keyword bits PacketStart
//!   0x40000000 / PacketEnd 0x80000000 / Send 0x1_0000_0000 / Receive 0x2_0000_0000
//!   (the ndiscap manifest constants used by microsoft/etl2pcapng).

use super::bytes::Cur;
use super::record::{Guid, HeaderKind, RecordRef};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Microsoft-Windows-Kernel-File.
pub const KERNEL_FILE_PROVIDER: Guid =
    Guid::from_fields(0xedd08927, 0x9cc4, 0x4e65, [0xb9, 0x70, 0xc2, 0x56, 0x0f, 0xb5, 0xc2, 0x89]);
/// Microsoft-Windows-TCPIP.
pub const TCPIP_PROVIDER: Guid =
    Guid::from_fields(0x2f07e2ee, 0x15db, 0x40f1, [0x90, 0xef, 0x9d, 0x7b, 0xa2, 0x82, 0x18, 0x8a]);
/// Microsoft-Windows-NDIS-PacketCapture.
pub const NDIS_PACKET_CAPTURE_PROVIDER: Guid =
    Guid::from_fields(0x2ed6006e, 0x4729, 0x4609, [0xb4, 0x23, 0x3e, 0xe7, 0xbc, 0xd6, 0x78, 0xef]);
/// Classic kernel FileIo (group 0x04).
pub const CLASSIC_FILEIO_GUID: Guid =
    Guid::from_fields(0x90cbdc39, 0x4a3e, 0x11d1, [0x84, 0xf4, 0, 0, 0xf8, 0x04, 0x64, 0xe3]);
/// Classic kernel TcpIp (group 0x06).
pub const CLASSIC_TCPIP_GUID: Guid =
    Guid::from_fields(0x9a280ac0, 0xc8e0, 0x11d1, [0x84, 0xe2, 0, 0xc0, 0x4f, 0xb9, 0x98, 0xa2]);

/// NDIS keyword bits (ndiscap manifest).
pub const NDIS_KW_PACKET_START: u64 = 0x4000_0000;
pub const NDIS_KW_PACKET_END: u64 = 0x8000_0000;
pub const NDIS_KW_SEND: u64 = 0x1_0000_0000;
pub const NDIS_KW_RECEIVE: u64 = 0x2_0000_0000;

/// Where a decoded event came from and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventOrigin {
    pub filetime: i64,
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    pub record_index: u64,
    pub offset: u64,
}

impl EventOrigin {
    /// The event's time on the analysis clock.
    pub fn utc(&self) -> crate::model::UtcNs {
        super::filetime_to_utc(self.filetime)
    }

    pub(crate) fn of(r: &RecordRef<'_>) -> Self {
        let h = &r.header;
        EventOrigin { filetime: h.filetime, pid: h.pid, tid: h.tid, record_index: h.record_index, offset: h.offset }
    }
}

/// File create (Kernel-File 12 v0/v1, classic FileIo 64).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCreate {
    pub origin: EventOrigin,
    pub irp: u64,
    pub file_object: u64,
    /// v1: IssuingThreadId (u32); v0 / classic v2: the TTID pointer field.
    pub issuing_thread_id: u64,
    /// CreateDisposition in the top byte, create options below.
    pub create_options: u32,
    pub create_attributes: u32,
    pub share_access: u32,
    pub file_name: String,
}

impl FileCreate {
    /// FILE_OPEN, FILE_CREATE, ... (top byte of CreateOptions).
    pub fn create_disposition(&self) -> u8 {
        (self.create_options >> 24) as u8
    }
}

/// Cleanup or Close (Kernel-File 13/14, classic FileIo 65/66).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHandleOp {
    pub origin: EventOrigin,
    pub irp: u64,
    pub file_object: u64,
    pub file_key: u64,
    pub issuing_thread_id: u64,
}

/// OperationEnd (Kernel-File 24, classic FileIo 76): completion status of an IRP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOpEnd {
    pub origin: EventOrigin,
    pub irp: u64,
    pub extra_information: u64,
    /// NTSTATUS, e.g. 0xC00000AE STATUS_PIPE_BUSY.
    pub status: u32,
}

/// Classic FileIo name events (0 Name, 32 FileCreate, 35 FileDelete, 36 FileRundown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileNameInfo {
    pub origin: EventOrigin,
    pub opcode: u8,
    pub file_object: u64,
    pub file_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileEvent {
    Create(FileCreate),
    Cleanup(FileHandleOp),
    Close(FileHandleOp),
    OperationEnd(FileOpEnd),
    Name(FileNameInfo),
}

/// Decode Microsoft-Windows-Kernel-File ids 12 (v0, v1), 13, 14 (v0, v1) and 24.
pub fn decode_kernel_file(r: &RecordRef<'_>) -> Option<FileEvent> {
    let h = &r.header;
    if !matches!(h.kind, HeaderKind::EventHeader32 | HeaderKind::EventHeader64) || h.provider != KERNEL_FILE_PROVIDER {
        return None;
    }
    let mut c = Cur::new(r.payload, h.pointer_size);
    let o = EventOrigin::of(r);
    match (h.id?, h.version) {
        (12, 0) => {
            let irp = c.ptr()?;
            let ttid = c.ptr()?;
            let fo = c.ptr()?;
            Some(FileEvent::Create(FileCreate {
                origin: o,
                irp,
                file_object: fo,
                issuing_thread_id: ttid,
                create_options: c.u32()?,
                create_attributes: c.u32()?,
                share_access: c.u32()?,
                file_name: c.utf16z()?,
            }))
        }
        (12, _) => {
            let irp = c.ptr()?;
            let fo = c.ptr()?;
            let ttid = c.u32()? as u64;
            Some(FileEvent::Create(FileCreate {
                origin: o,
                irp,
                file_object: fo,
                issuing_thread_id: ttid,
                create_options: c.u32()?,
                create_attributes: c.u32()?,
                share_access: c.u32()?,
                file_name: c.utf16z()?,
            }))
        }
        (id @ (13 | 14), v) => {
            let op = if v == 0 {
                let irp = c.ptr()?;
                let ttid = c.ptr()?;
                FileHandleOp { origin: o, irp, issuing_thread_id: ttid, file_object: c.ptr()?, file_key: c.ptr()? }
            } else {
                let irp = c.ptr()?;
                let fo = c.ptr()?;
                let key = c.ptr()?;
                FileHandleOp { origin: o, irp, file_object: fo, file_key: key, issuing_thread_id: c.u32()? as u64 }
            };
            Some(if id == 13 { FileEvent::Cleanup(op) } else { FileEvent::Close(op) })
        }
        (24, _) => Some(FileEvent::OperationEnd(FileOpEnd {
            origin: o,
            irp: c.ptr()?,
            extra_information: c.ptr()?,
            status: c.u32()?,
        })),
        _ => None,
    }
}

/// Decode classic FileIo (group 0x04): 64 Create, 65 Cleanup, 66 Close, 76 OpEnd,
/// 0/32/35/36 names. MOF v2 uses a TTID pointer before FileObject; v3+ moves a u32 TTID last.
pub fn decode_classic_fileio(r: &RecordRef<'_>) -> Option<FileEvent> {
    let h = &r.header;
    if !h.kind.is_classic_kernel() || h.group != Some(0x04) {
        return None;
    }
    let mof_version = h.version & 0xFF;
    let mut c = Cur::new(r.payload, h.pointer_size);
    let o = EventOrigin::of(r);
    match h.opcode {
        0 | 32 | 35 | 36 => Some(FileEvent::Name(FileNameInfo {
            origin: o,
            opcode: h.opcode,
            file_object: c.ptr()?,
            file_name: c.utf16z()?,
        })),
        64 => {
            let irp = c.ptr()?;
            let (fo, ttid) = if mof_version <= 2 {
                let t = c.ptr()?;
                (c.ptr()?, t)
            } else {
                let f = c.ptr()?;
                (f, c.u32()? as u64)
            };
            Some(FileEvent::Create(FileCreate {
                origin: o,
                irp,
                file_object: fo,
                issuing_thread_id: ttid,
                create_options: c.u32()?,
                create_attributes: c.u32()?,
                share_access: c.u32()?,
                file_name: c.utf16z()?,
            }))
        }
        op @ (65 | 66) => {
            let irp = c.ptr()?;
            let fop = if mof_version <= 2 {
                let t = c.ptr()?;
                FileHandleOp { origin: o, irp, issuing_thread_id: t, file_object: c.ptr()?, file_key: c.ptr()? }
            } else {
                let fo = c.ptr()?;
                let key = c.ptr()?;
                FileHandleOp { origin: o, irp, file_object: fo, file_key: key, issuing_thread_id: c.u32()? as u64 }
            };
            Some(if op == 65 { FileEvent::Cleanup(fop) } else { FileEvent::Close(fop) })
        }
        76 => Some(FileEvent::OperationEnd(FileOpEnd {
            origin: o,
            irp: c.ptr()?,
            extra_information: c.ptr()?,
            status: c.u32()?,
        })),
        _ => None,
    }
}

/// Either file decoder.
pub fn decode_file_event(r: &RecordRef<'_>) -> Option<FileEvent> {
    decode_kernel_file(r).or_else(|| decode_classic_fileio(r))
}

/// Classic TcpIp operation (IPv4 opcode / IPv6 opcode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpIpOp {
    Send,
    Recv,
    Connect,
    Disconnect,
    Retransmit,
    Accept,
    Reconnect,
    Copy,
}

/// Connect/Accept TCP options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConnectOptions {
    pub mss: u16,
    pub sackopt: u16,
    pub tsopt: u16,
    pub wsopt: u16,
    pub rcvwin: u32,
    pub rcvwinscale: i16,
    pub sndwinscale: i16,
}

/// Classic TcpIp v2 event (addresses/ports converted from network byte order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpIpEvent {
    pub origin: EventOrigin,
    pub opcode: u8,
    pub op: TcpIpOp,
    /// The PID payload field (the owning process; the header carries none for PERFINFO).
    pub process_id: u32,
    pub size: u32,
    pub daddr: IpAddr,
    pub saddr: IpAddr,
    pub dport: u16,
    pub sport: u16,
    /// Send only.
    pub startime: Option<u32>,
    pub endtime: Option<u32>,
    /// Connect/Accept only.
    pub options: Option<TcpConnectOptions>,
    pub seqnum: u32,
    pub connid: u64,
}

/// Decode classic TcpIp (group 0x06) IPv4 opcodes 10-16/18 and IPv6 26-32/34.
pub fn decode_classic_tcpip(r: &RecordRef<'_>) -> Option<TcpIpEvent> {
    let h = &r.header;
    if !h.kind.is_classic_kernel() || h.group != Some(0x06) {
        return None;
    }
    let (op, v6) = match h.opcode {
        10 => (TcpIpOp::Send, false),
        11 => (TcpIpOp::Recv, false),
        12 => (TcpIpOp::Connect, false),
        13 => (TcpIpOp::Disconnect, false),
        14 => (TcpIpOp::Retransmit, false),
        15 => (TcpIpOp::Accept, false),
        16 => (TcpIpOp::Reconnect, false),
        18 => (TcpIpOp::Copy, false),
        26 => (TcpIpOp::Send, true),
        27 => (TcpIpOp::Recv, true),
        28 => (TcpIpOp::Connect, true),
        29 => (TcpIpOp::Disconnect, true),
        30 => (TcpIpOp::Retransmit, true),
        31 => (TcpIpOp::Accept, true),
        32 => (TcpIpOp::Reconnect, true),
        34 => (TcpIpOp::Copy, true),
        _ => return None,
    };
    let mut c = Cur::new(r.payload, h.pointer_size);
    let process_id = c.u32()?;
    let size = c.u32()?;
    let (daddr, saddr) = if v6 {
        (IpAddr::V6(Ipv6Addr::from(c.array::<16>()?)), IpAddr::V6(Ipv6Addr::from(c.array::<16>()?)))
    } else {
        (IpAddr::V4(Ipv4Addr::from(c.array::<4>()?)), IpAddr::V4(Ipv4Addr::from(c.array::<4>()?)))
    };
    let dport = c.u16_be()?;
    let sport = c.u16_be()?;
    let (mut startime, mut endtime, mut options) = (None, None, None);
    match op {
        TcpIpOp::Send => {
            startime = Some(c.u32()?);
            endtime = Some(c.u32()?);
        }
        TcpIpOp::Connect | TcpIpOp::Accept => {
            options = Some(TcpConnectOptions {
                mss: c.u16()?,
                sackopt: c.u16()?,
                tsopt: c.u16()?,
                wsopt: c.u16()?,
                rcvwin: c.u32()?,
                rcvwinscale: c.u16()? as i16,
                sndwinscale: c.u16()? as i16,
            });
        }
        _ => {}
    }
    let seqnum = c.u32()?;
    let connid = c.ptr()?;
    Some(TcpIpEvent {
        origin: EventOrigin::of(r),
        opcode: h.opcode,
        op,
        process_id,
        size,
        daddr,
        saddr,
        dport,
        sport,
        startime,
        endtime,
        options,
        seqnum,
        connid,
    })
}

/// Microsoft-Windows-TCPIP connection-level events sharing the Tcb template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpipTcbEventKind {
    /// 1017 TcpAcceptListenerComplete
    AcceptComplete,
    /// 1033 TcpConnectTcbComplete
    ConnectComplete,
    /// 1034 TcpConnectTcbFailure
    ConnectFailure,
    /// 1039 TcpAbortTcbRequest
    AbortRequest,
    /// 1040 TcpAbortTcbComplete
    AbortComplete,
    /// 1043 TcpDisconnectTcbComplete
    DisconnectComplete,
    /// 1045 TcpConnectTcbTimeout
    ConnectTimeout,
    /// 1046 TcpDisconnectTcbRtoTimeout
    RetransmitTimeout,
    /// 1047 TcpDisconnectTcbKeepaliveTimeout
    KeepaliveTimeout,
    /// 1048 TcpDisconnectTcbTimeout
    DisconnectTimeout,
}

impl TcpipTcbEventKind {
    pub fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            1017 => Self::AcceptComplete,
            1033 => Self::ConnectComplete,
            1034 => Self::ConnectFailure,
            1039 => Self::AbortRequest,
            1040 => Self::AbortComplete,
            1043 => Self::DisconnectComplete,
            1045 => Self::ConnectTimeout,
            1046 => Self::RetransmitTimeout,
            1047 => Self::KeepaliveTimeout,
            1048 => Self::DisconnectTimeout,
            _ => return None,
        })
    }
    pub fn id(self) -> u16 {
        match self {
            Self::AcceptComplete => 1017,
            Self::ConnectComplete => 1033,
            Self::ConnectFailure => 1034,
            Self::AbortRequest => 1039,
            Self::AbortComplete => 1040,
            Self::DisconnectComplete => 1043,
            Self::ConnectTimeout => 1045,
            Self::RetransmitTimeout => 1046,
            Self::KeepaliveTimeout => 1047,
            Self::DisconnectTimeout => 1048,
        }
    }
}

/// Tcb template: LocalAddressLength, LocalAddress (sockaddr), RemoteAddressLength,
/// RemoteAddress, Status, ProcessId, Compartment, Tcb (pointer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpipTcbEvent {
    pub origin: EventOrigin,
    pub kind: TcpipTcbEventKind,
    /// None when the sockaddr family is neither AF_INET (2) nor AF_INET6 (23).
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub status: u32,
    pub process_id: u32,
    pub compartment: u32,
    pub tcb: u64,
}

/// SOCKADDR_IN / SOCKADDR_IN6 (family little-endian, port and address network order).
pub fn parse_sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let mut c = Cur::new(b, 8);
    let family = c.u16()?;
    let port = c.u16_be()?;
    match family {
        2 => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(c.array::<4>()?)), port)),
        23 => {
            let _flow = c.u32()?;
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(c.array::<16>()?)), port))
        }
        _ => None,
    }
}

/// Decode Microsoft-Windows-TCPIP events listed in [`TcpipTcbEventKind`].
pub fn decode_tcpip(r: &RecordRef<'_>) -> Option<TcpipTcbEvent> {
    let h = &r.header;
    if !matches!(h.kind, HeaderKind::EventHeader32 | HeaderKind::EventHeader64) || h.provider != TCPIP_PROVIDER {
        return None;
    }
    let kind = TcpipTcbEventKind::from_id(h.id?)?;
    let mut c = Cur::new(r.payload, h.pointer_size);
    let llen = c.u32()? as usize;
    let local = parse_sockaddr(c.bytes(llen)?);
    let rlen = c.u32()? as usize;
    let remote = parse_sockaddr(c.bytes(rlen)?);
    Some(TcpipTcbEvent {
        origin: EventOrigin::of(r),
        kind,
        local,
        remote,
        status: c.u32()?,
        process_id: c.u32()?,
        compartment: c.u32()?,
        tcb: c.ptr()?,
    })
}

/// NDIS-PacketCapture 1001 packet fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NdisFragment {
    pub origin: EventOrigin,
    pub keyword: u64,
    pub miniport_if_index: u32,
    pub lower_if_index: u32,
    pub fragment: Vec<u8>,
}

impl NdisFragment {
    pub fn is_start(&self) -> bool {
        self.keyword & NDIS_KW_PACKET_START != 0
    }
    pub fn is_end(&self) -> bool {
        self.keyword & NDIS_KW_PACKET_END != 0
    }
    pub fn is_send(&self) -> bool {
        self.keyword & NDIS_KW_SEND != 0
    }
    pub fn is_receive(&self) -> bool {
        self.keyword & NDIS_KW_RECEIVE != 0
    }
}

/// Decode NDIS-PacketCapture event 1001 (trailing Win10 fields are ignored).
pub fn decode_ndis_fragment(r: &RecordRef<'_>) -> Option<NdisFragment> {
    let h = &r.header;
    if !matches!(h.kind, HeaderKind::EventHeader32 | HeaderKind::EventHeader64)
        || h.provider != NDIS_PACKET_CAPTURE_PROVIDER
        || h.id != Some(1001)
    {
        return None;
    }
    let mut c = Cur::new(r.payload, h.pointer_size);
    let miniport_if_index = c.u32()?;
    let lower_if_index = c.u32()?;
    let n = c.u32()? as usize;
    let fragment = c.bytes(n)?.to_vec();
    Some(NdisFragment { origin: EventOrigin::of(r), keyword: h.keyword, miniport_if_index, lower_if_index, fragment })
}

/// A whole captured frame (Ethernet for 802.3 miniports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EthernetFrame {
    /// Timestamp of the first fragment.
    pub origin: EventOrigin,
    pub miniport_if_index: u32,
    pub lower_if_index: u32,
    pub send: bool,
    pub receive: bool,
    pub data: Vec<u8>,
}

/// Joins NDIS fragments into frames: a start+end fragment is a frame by itself; a start
/// opens a frame per (miniport, lower) interface pair, middles append, an end closes it.
/// Fragments without an open frame are dropped and counted; frames are capped at `max_frame`.
pub struct FrameAssembler {
    open: HashMap<(u32, u32), EthernetFrame>,
    max_frame: usize,
    /// Fragments dropped (orphan middle/end, restarted start, or oversize).
    pub dropped: u64,
}

impl Default for FrameAssembler {
    fn default() -> Self {
        FrameAssembler::new(256 * 1024)
    }
}

impl FrameAssembler {
    pub fn new(max_frame: usize) -> Self {
        FrameAssembler { open: HashMap::new(), max_frame, dropped: 0 }
    }

    pub fn push(&mut self, f: NdisFragment) -> Option<EthernetFrame> {
        let key = (f.miniport_if_index, f.lower_if_index);
        let (start, end) = (f.is_start(), f.is_end());
        if start {
            if self.open.remove(&key).is_some() {
                self.dropped += 1;
            }
            let frame = EthernetFrame {
                origin: f.origin,
                miniport_if_index: f.miniport_if_index,
                lower_if_index: f.lower_if_index,
                send: f.is_send(),
                receive: f.is_receive(),
                data: f.fragment,
            };
            if frame.data.len() > self.max_frame {
                self.dropped += 1;
                return None;
            }
            if end {
                return Some(frame);
            }
            self.open.insert(key, frame);
            return None;
        }
        let Some(frame) = self.open.get_mut(&key) else {
            self.dropped += 1;
            return None;
        };
        if frame.data.len().saturating_add(f.fragment.len()) > self.max_frame {
            self.open.remove(&key);
            self.dropped += 1;
            return None;
        }
        frame.data.extend_from_slice(&f.fragment);
        if end {
            return self.open.remove(&key);
        }
        None
    }

    /// Frames still waiting for their end fragment.
    pub fn pending(&self) -> usize {
        self.open.len()
    }
}
