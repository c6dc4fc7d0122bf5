//! Classic kernel TcpIp (MOF TcpIp_TypeGroup1/2) and Microsoft-Windows-TCPIP's Tcb template.

use super::super::bytes::Cur;
use super::super::record::{HeaderKind, RecordRef};
use super::{EventOrigin, TCPIP_PROVIDER};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

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
