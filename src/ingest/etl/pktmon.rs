//! Microsoft-Windows-PktMon (`pktmon start --capture`): packet and drop events, component names,
//! and the de-duplication that turns "one event per component crossed" into one packet.
//!
//! Layouts, checked on demikernel_PktMon.etl (Windows Server 20348) against its oracle:
//! * 160 packet / 170 dropped packet, v0, packed: PktGroupId u64, PktNumber u16, AppearanceCount
//!   u16, DirTag u16, PacketType u16, ComponentId u16, EdgeId u16, FilterId u16, DropReason u32,
//!   DropLocation u32, OriginalPayloadSize u16, LoggedPayloadSize u16, Payload.
//! * 20 component: Id u16, Type u16, Name (UTF-16z, the driver), Description (UTF-16z).
//!
//! Enumerations (direction tags, drop reasons) are those of the public pktmon documentation
//! (PKTMON_DIRECTION_TAG, PKTMON_DROP_REASON).

use super::bytes::Cur;
use super::decode::EventOrigin;
use super::record::{Guid, HeaderKind, RecordRef};
use std::collections::{HashMap, VecDeque};

/// Microsoft-Windows-PktMon.
pub const PKTMON_PROVIDER: Guid =
    Guid::from_fields(0x4d4f80d9, 0xc8bd, 0x4d73, [0xbb, 0x5b, 0x19, 0xc9, 0x04, 0x02, 0xc5, 0xac]);
pub const PKTMON_ID_COMPONENT: u16 = 20;
pub const PKTMON_ID_PACKET: u16 = 160;
pub const PKTMON_ID_DROP: u16 = 170;
/// Fixed part of the 160/170 user data before the payload.
pub const PKTMON_PACKET_HEADER: usize = 34;

/// One PktMon packet event: the packet as one component logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PktmonPacket<'a> {
    pub origin: EventOrigin,
    /// Event 170: the component dropped this packet.
    pub dropped: bool,
    pub group_id: u64,
    pub pkt_number: u16,
    pub appearance: u16,
    pub dir_tag: u16,
    pub packet_type: u16,
    pub component_id: u16,
    pub edge_id: u16,
    pub filter_id: u16,
    pub drop_reason: u32,
    pub drop_location: u32,
    pub original_size: u16,
    pub logged_size: u16,
    pub payload: &'a [u8],
}

impl PktmonPacket<'_> {
    /// pcap link type of the payload (as etl2pcapng maps PacketType), if it is one we read.
    pub fn link_type(&self) -> Option<u32> {
        match self.packet_type {
            1 => Some(1),   // Ethernet
            2 => Some(105), // 802.11
            3 => Some(101), // raw IP
            _ => None,
        }
    }
    /// The logged payload is shorter than the packet (pktmon --pkt-size).
    pub fn truncated(&self) -> bool {
        self.logged_size < self.original_size
    }
    /// The network-layer bytes (IP header on), for recognising one packet seen at several
    /// components whose link-layer headers differ.
    pub fn network_bytes(&self) -> Option<&[u8]> {
        network_layer(self.packet_type, self.payload)
    }
}

/// Decodes PktMon 160/170 (v0). The payload is `LoggedPayloadSize` bytes, never more than
/// the record holds.
pub fn decode_pktmon_packet<'a>(r: &RecordRef<'a>) -> Option<PktmonPacket<'a>> {
    let h = &r.header;
    if !matches!(h.kind, HeaderKind::EventHeader32 | HeaderKind::EventHeader64) || h.provider != PKTMON_PROVIDER {
        return None;
    }
    let dropped = match h.id? {
        PKTMON_ID_PACKET => false,
        PKTMON_ID_DROP => true,
        _ => return None,
    };
    let p = r.payload;
    let mut c = Cur::new(p, h.pointer_size);
    let lo = c.u32()? as u64;
    let hi = c.u32()? as u64;
    let group_id = lo | hi << 32;
    let pkt_number = c.u16()?;
    let appearance = c.u16()?;
    let dir_tag = c.u16()?;
    let packet_type = c.u16()?;
    let component_id = c.u16()?;
    let edge_id = c.u16()?;
    let filter_id = c.u16()?;
    let drop_reason = c.u32()?;
    let drop_location = c.u32()?;
    let original_size = c.u16()?;
    let logged_size = c.u16()?;
    let payload = c.bytes(logged_size as usize)?;
    Some(PktmonPacket {
        origin: EventOrigin::of(r),
        dropped,
        group_id,
        pkt_number,
        appearance,
        dir_tag,
        packet_type,
        component_id,
        edge_id,
        filter_id,
        drop_reason,
        drop_location,
        original_size,
        logged_size,
        payload,
    })
}

/// PktMon 20: a networking component (NIC, filter, protocol) the trace names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PktmonComponent {
    pub id: u16,
    pub comp_type: u16,
    /// Driver, e.g. `netvsc.sys`.
    pub name: String,
    /// e.g. `Microsoft Hyper-V Network Adapter #3`.
    pub description: String,
}

impl PktmonComponent {
    /// `Microsoft Hyper-V Network Adapter #3 (netvsc.sys)`.
    pub fn label(&self) -> String {
        match (self.description.is_empty(), self.name.is_empty()) {
            (false, false) => format!("{} ({})", self.description, self.name),
            (false, true) => self.description.clone(),
            (true, false) => self.name.clone(),
            (true, true) => format!("component {}", self.id),
        }
    }
}

pub fn decode_pktmon_component(r: &RecordRef<'_>) -> Option<PktmonComponent> {
    let h = &r.header;
    if !matches!(h.kind, HeaderKind::EventHeader32 | HeaderKind::EventHeader64)
        || h.provider != PKTMON_PROVIDER
        || h.id != Some(PKTMON_ID_COMPONENT)
    {
        return None;
    }
    let mut c = Cur::new(r.payload, h.pointer_size);
    let id = c.u16()?;
    let comp_type = c.u16()?;
    let name = c.utf16z()?;
    let description = c.utf16z().unwrap_or_default();
    Some(PktmonComponent { id, comp_type, name, description })
}

/// PKTMON_DIRECTION_TAG: In/Rx/Ingress receive, Out/Tx/Egress send.
pub fn direction_name(tag: u16) -> &'static str {
    match tag {
        1 => "in",
        2 => "out",
        3 => "rx",
        4 => "tx",
        5 => "ingress",
        6 => "egress",
        _ => "unspecified",
    }
}

/// Names of the PKTMON_DROP_REASON values a TCP diagnosis meets most (the rest print as numbers).
pub fn drop_reason_name(reason: u32) -> Option<&'static str> {
    Some(match reason {
        0 => "Unknown",
        1 => "InvalidData",
        2 => "InvalidPacket",
        3 => "Resources",
        4 => "NotReady",
        5 => "Disconnected",
        6 => "NotAccepted",
        7 => "Busy",
        8 => "Filtered",
        9 => "FilteredVLAN",
        15 => "Ipsec",
        23 => "MTUMismatch",
        30 => "StormLimit",
        33 => "NicDisabled",
        201 => "Pause",
        202 => "Reset",
        203 => "SendAborted",
        204 => "ProtocolNotBound",
        601 => "FL_LoopbackPacket",
        604 => "FL_InvalidPacketLength",
        607 => "FL_InterfaceNotReady",
        718 => "PortBlocked",
        901 => "NL_BadSourceAddress",
        902 => "NL_NotLocallyDestined",
        903 => "NL_ProtocolUnreachable",
        904 => "NL_PortUnreachable",
        905 => "NL_BadLength",
        906 => "NL_MalformedHeader",
        907 => "NL_NoRoute",
        909 => "NL_InspectionDrop",
        911 => "NL_AdministrativelyProhibited",
        912 => "NL_BadChecksum",
        914 => "NL_HopLimitExceeded",
        915 => "NL_AddressUnreachable",
        920 => "NL_DontFragmentMtuExceeded",
        922 => "NL_AddressResolutionTimeout",
        923 => "NL_AddressResolutionFailure",
        924 => "NL_IpsecFailure",
        949 => "NL_QueueFull",
        950 => "NL_InterfaceDisabled",
        1200 => "INET_SourceUnspecified",
        1201 => "INET_DestinationMulticast",
        1202 => "INET_HeaderInvalid",
        1203 => "INET_ChecksumInvalid",
        1204 => "INET_EndpointNotFound",
        1205 => "INET_ConnectedPath",
        1206 => "INET_SessionState",
        1207 => "INET_ReceiveInspection",
        1208 => "INET_AckInvalid",
        1209 => "INET_ExpectedSyn",
        1210 => "INET_Rst",
        1211 => "INET_SynRcvdSyn",
        1213 => "INET_PawsFailed",
        1215 => "INET_MissedReset",
        1216 => "INET_OutsideWindow",
        1217 => "INET_DuplicateSegment",
        1218 => "INET_ClosedWindow",
        1219 => "INET_TcbRemoved",
        1220 => "INET_FinWait2",
        1222 => "INET_FinReceived",
        1224 => "INET_TcbNotInTcbTable",
        1227 => "INET_TimeWaitTcb",
        1229 => "INET_PauseAccept",
        1230 => "INET_SynAttack",
        1231 => "INET_AcceptInspection",
        1401 => "Ipsec_BadSpi",
        1407 => "Ipsec_ClearTextDrop",
        1408 => "Ipsec_AuthFirewallDrop",
        _ => return None,
    })
}

/// `INET_EndpointNotFound (1204)`, or the number alone.
pub fn drop_reason_label(reason: u32) -> String {
    match drop_reason_name(reason) {
        Some(n) => format!("{n} ({reason})"),
        None => format!("reason {reason}"),
    }
}

/// The IP header on: Ethernet (with up to two VLAN tags), 802.11 data frames with LLC/SNAP, or
/// raw IP.
pub fn network_layer(packet_type: u16, b: &[u8]) -> Option<&[u8]> {
    let be16 = |o: usize| b.get(o..o + 2).map(|s| u16::from_be_bytes([s[0], s[1]]));
    match packet_type {
        1 => {
            let mut off = 12;
            let mut et = be16(off)?;
            while et == 0x8100 || et == 0x88a8 {
                off += 4;
                et = be16(off)?;
            }
            matches!(et, 0x0800 | 0x86dd).then(|| b.get(off + 2..)).flatten()
        }
        2 => {
            // Data frames only (type 2); the QoS subtypes carry 2 more bytes, 4-address frames 6.
            let fc = *b.first()?;
            let flags = *b.get(1)?;
            if (fc >> 2) & 3 != 2 {
                return None;
            }
            let mut off = 24;
            if flags & 3 == 3 {
                off += 6;
            }
            if fc & 0x80 != 0 {
                off += 2;
                if flags & 0x80 != 0 {
                    off += 4; // HT Control
                }
            }
            if b.get(off..off + 6)? != [0xaa, 0xaa, 0x03, 0, 0, 0] {
                return None;
            }
            let et = be16(off + 6)?;
            matches!(et, 0x0800 | 0x86dd).then(|| b.get(off + 8..)).flatten()
        }
        3 => Some(b),
        _ => None,
    }
}

/// How long a packet's later appearances may trail its first (content de-duplication).
pub const DEDUPE_WINDOW_FT: i64 = 10_000; // 1 ms in 100 ns ticks
/// Packets remembered at once for de-duplication (bounds memory on a flood).
pub const DEDUPE_MAX_HELD: usize = 8_192;
/// Components remembered per packet path.
const MAX_PATH: usize = 16;

/// A packet kept by [`Dedupe`]: its ordinal among kept packets and the components it crossed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketPath {
    pub components: Vec<u16>,
}

struct Held {
    first_ft: i64,
    bytes: Vec<u8>,
    kept_index: u64,
    path: Vec<u16>,
}

/// Recognises the appearances of one packet at several components, in time order:
/// * by (PktGroupId, PktNumber) when AppearanceCount > 0 (builds that number appearances);
/// * else by equal network-layer bytes within [`DEDUPE_WINDOW_FT`] of the packet's first
///   appearance (Windows 11 gives every appearance its own PktGroupId and AppearanceCount 0).
///
/// Memory: at most [`DEDUPE_MAX_HELD`] packets, each expiring after the window.
#[derive(Default)]
pub struct Dedupe {
    held: VecDeque<Held>,
    by_bytes: HashMap<Vec<u8>, usize>,
    by_group: HashMap<(u64, u16), u64>,
    group_order: VecDeque<(i64, (u64, u16))>,
    base: usize,
    kept: u64,
    /// Finished packet paths (components in order) with how many packets took each.
    pub paths: HashMap<Vec<u16>, u64>,
    pub repeats: u64,
}

/// What [`Dedupe::push`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appearance {
    /// A new packet: the n-th kept (0-based).
    First(u64),
    /// Another component's view of kept packet n.
    Repeat(u64),
}

impl Dedupe {
    pub fn push(&mut self, p: &PktmonPacket<'_>) -> Appearance {
        let ft = p.origin.filetime;
        self.expire(ft);
        let gkey = (p.group_id, p.pkt_number);
        if p.appearance > 0 {
            if let Some(&n) = self.by_group.get(&gkey) {
                self.repeats += 1;
                self.note_component(n, p.component_id);
                return Appearance::Repeat(n);
            }
        }
        let net = p.network_bytes().unwrap_or(p.payload);
        if let Some(&slot) = self.by_bytes.get(net) {
            if let Some(h) = slot.checked_sub(self.base).and_then(|i| self.held.get_mut(i)) {
                if ft.saturating_sub(h.first_ft) < DEDUPE_WINDOW_FT {
                    self.repeats += 1;
                    if h.path.len() < MAX_PATH && h.path.last() != Some(&p.component_id) {
                        h.path.push(p.component_id);
                    }
                    let n = h.kept_index;
                    if p.appearance > 0 {
                        self.remember_group(ft, gkey, n);
                    }
                    return Appearance::Repeat(n);
                }
            }
        }
        let n = self.kept;
        self.kept += 1;
        if self.held.len() >= DEDUPE_MAX_HELD {
            self.pop_front();
        }
        let slot = self.base + self.held.len();
        self.by_bytes.insert(net.to_vec(), slot);
        self.held.push_back(Held { first_ft: ft, bytes: net.to_vec(), kept_index: n, path: vec![p.component_id] });
        if p.appearance > 0 {
            self.remember_group(ft, gkey, n);
        }
        Appearance::First(n)
    }

    fn note_component(&mut self, n: u64, comp: u16) {
        if let Some(h) = self.held.iter_mut().rev().find(|h| h.kept_index == n) {
            if h.path.len() < MAX_PATH && h.path.last() != Some(&comp) {
                h.path.push(comp);
            }
        }
    }

    fn remember_group(&mut self, ft: i64, key: (u64, u16), n: u64) {
        if self.by_group.insert(key, n).is_none() {
            self.group_order.push_back((ft, key));
        }
        while self.group_order.len() > DEDUPE_MAX_HELD {
            if let Some((_, k)) = self.group_order.pop_front() {
                self.by_group.remove(&k);
            }
        }
    }

    fn expire(&mut self, now: i64) {
        while self.held.front().is_some_and(|h| now.saturating_sub(h.first_ft) >= DEDUPE_WINDOW_FT) {
            self.pop_front();
        }
        // Appearance numbering spans a packet's trip through the stack: a second is ample.
        while self.group_order.front().is_some_and(|(t, _)| now.saturating_sub(*t) >= 10_000_000) {
            if let Some((_, k)) = self.group_order.pop_front() {
                self.by_group.remove(&k);
            }
        }
    }

    fn pop_front(&mut self) {
        if let Some(h) = self.held.pop_front() {
            if self.by_bytes.get(&h.bytes) == Some(&self.base) {
                self.by_bytes.remove(&h.bytes);
            }
            *self.paths.entry(h.path).or_default() += 1;
            self.base += 1;
        }
    }

    /// Flushes what is still held into `paths`; returns the number of packets kept.
    pub fn finish(&mut self) -> u64 {
        while !self.held.is_empty() {
            self.pop_front();
        }
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(ft: i64, group: u64, appearance: u16, comp: u16, payload: &[u8]) -> PktmonPacket<'_> {
        PktmonPacket {
            origin: EventOrigin { filetime: ft, pid: None, tid: None, record_index: 0, offset: 0 },
            dropped: false,
            group_id: group,
            pkt_number: 1,
            appearance,
            dir_tag: 3,
            packet_type: 3,
            component_id: comp,
            edge_id: 1,
            filter_id: 1,
            drop_reason: 0,
            drop_location: 0,
            original_size: payload.len() as u16,
            logged_size: payload.len() as u16,
            payload,
        }
    }

    #[test]
    fn content_dedupe_within_a_millisecond() {
        let mut d = Dedupe::default();
        let a = [0x45u8, 0, 0, 20, 1, 2];
        let b = [0x45u8, 0, 0, 20, 9, 9];
        // Windows 11: each appearance has its own group id and AppearanceCount 0.
        assert_eq!(d.push(&pkt(100, 1, 0, 10, &a)), Appearance::First(0));
        assert_eq!(d.push(&pkt(150, 2, 0, 11, &a)), Appearance::Repeat(0));
        assert_eq!(d.push(&pkt(160, 3, 0, 11, &b)), Appearance::First(1));
        // Same bytes 1 ms after the first appearance: a new packet (a retransmission).
        assert_eq!(d.push(&pkt(100 + DEDUPE_WINDOW_FT, 4, 0, 10, &a)), Appearance::First(2));
        assert_eq!(d.finish(), 3);
        assert_eq!(d.paths.get(&vec![10, 11]), Some(&1));
        assert_eq!(d.repeats, 1);
    }

    #[test]
    fn group_id_dedupe_when_appearances_are_numbered() {
        let mut d = Dedupe::default();
        let a = [0x45u8, 0, 0, 20, 1, 2];
        let a2 = [0x45u8, 0, 0, 20, 1, 3]; // rewritten by a component (e.g. NAT)
        assert_eq!(d.push(&pkt(100, 7, 1, 10, &a)), Appearance::First(0));
        assert_eq!(d.push(&pkt(200_000, 7, 2, 11, &a2)), Appearance::Repeat(0));
    }

    #[test]
    fn network_layer_skips_link_headers() {
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00, 0x45, 1]);
        assert_eq!(network_layer(1, &eth), Some(&[0x45u8, 1][..]));
        let mut wifi = vec![0x88u8, 0x41];
        wifi.extend_from_slice(&[0; 24]);
        wifi.extend_from_slice(&[0xaa, 0xaa, 3, 0, 0, 0, 0x86, 0xdd, 0x60]);
        assert_eq!(network_layer(2, &wifi), Some(&[0x60u8][..]));
        assert_eq!(network_layer(1, &[0u8; 13]), None);
    }
}
