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
//!
//! Files by provider family: `file` (Kernel-File and classic FileIo), `tcpip` (classic TcpIp and
//! Microsoft-Windows-TCPIP), `packet_capture` (NDIS-PacketCapture fragments into frames).

mod file;
mod packet_capture;
mod tcpip;

pub use file::*;
pub use packet_capture::*;
pub use tcpip::*;

use super::record::{Guid, RecordRef};

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
