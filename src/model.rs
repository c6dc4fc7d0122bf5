//! Plain data shared by every layer: timestamps, endpoints, packets, connections, findings.

use std::fmt;
use std::net::IpAddr;

/// Nanoseconds since the Unix epoch, UTC. Every event in ipcscope lives on this one clock.
pub type UtcNs = i64;

// By path, so that the fuzz crate (which compiles this file by path) finds them too.
#[path = "model/connection.rs"]
mod connection;
#[path = "model/finding.rs"]
mod finding;
#[path = "model/time.rs"]
mod time;
pub use connection::*;
pub use finding::*;
pub use time::*;

/// An IP address and TCP port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// TCP header flag bits, as on the wire.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// One TCP segment as decoded from a capture (or an ETW packet-capture event).
#[derive(Clone, Debug)]
pub struct TcpSegment {
    /// Index of the input file in the run.
    pub input: u32,
    /// 1-based frame number within that input, as Wireshark shows it.
    pub frame: u64,
    pub ts: UtcNs,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// Raw 16-bit window from the header.
    pub window: u16,
    /// TCP payload length from the IP length fields (not the captured length).
    pub payload_len: u32,
    /// Window-scale option (SYN only), if present and captured.
    pub window_scale: Option<u8>,
    /// The segment carries SACK blocks.
    pub has_sack: bool,
    /// IPv4 TTL / IPv6 hop limit (0 when the source has no IP header).
    pub ttl: u8,
    /// IPv4 identification (`None` for IPv6).
    pub ip_id: Option<u16>,
}

impl TcpSegment {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Wireshark `tcp.analysis.*` flags for one frame, as bits.
pub mod analysis_flags {
    pub const RETRANSMISSION: u32 = 1 << 0;
    pub const FAST_RETRANSMISSION: u32 = 1 << 1;
    pub const SPURIOUS_RETRANSMISSION: u32 = 1 << 2;
    pub const OUT_OF_ORDER: u32 = 1 << 3;
    pub const LOST_SEGMENT: u32 = 1 << 4;
    pub const ACK_LOST_SEGMENT: u32 = 1 << 5;
    pub const DUPLICATE_ACK: u32 = 1 << 6;
    pub const ZERO_WINDOW: u32 = 1 << 7;
    pub const ZERO_WINDOW_PROBE: u32 = 1 << 8;
    pub const ZERO_WINDOW_PROBE_ACK: u32 = 1 << 9;
    pub const WINDOW_FULL: u32 = 1 << 10;
    pub const WINDOW_UPDATE: u32 = 1 << 11;
    pub const KEEP_ALIVE: u32 = 1 << 12;
    pub const KEEP_ALIVE_ACK: u32 = 1 << 13;
    pub const REUSED_PORTS: u32 = 1 << 14;

    /// (bit, Wireshark label) in display order.
    pub const LABELS: &[(u32, &str)] = &[
        (REUSED_PORTS, "reused_ports"),
        (RETRANSMISSION, "retransmission"),
        (FAST_RETRANSMISSION, "fast_retransmission"),
        (SPURIOUS_RETRANSMISSION, "spurious_retransmission"),
        (OUT_OF_ORDER, "out_of_order"),
        (LOST_SEGMENT, "lost_segment"),
        (ACK_LOST_SEGMENT, "ack_lost_segment"),
        (DUPLICATE_ACK, "duplicate_ack"),
        (ZERO_WINDOW, "zero_window"),
        (ZERO_WINDOW_PROBE, "zero_window_probe"),
        (ZERO_WINDOW_PROBE_ACK, "zero_window_probe_ack"),
        (WINDOW_FULL, "window_full"),
        (WINDOW_UPDATE, "window_update"),
        (KEEP_ALIVE, "keep_alive"),
        (KEEP_ALIVE_ACK, "keep_alive_ack"),
    ];

    /// Space-separated labels of the set bits.
    pub fn describe(bits: u32) -> String {
        LABELS.iter().filter(|(b, _)| bits & b != 0).map(|(_, l)| *l).collect::<Vec<_>>().join(" ")
    }
}

/// Which side sent a packet, relative to the connection's originator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// What a Windows event source saw a process do on a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketOp {
    Connect,
    Accept,
    Disconnect,
    Send,
    Receive,
    Reconnect,
    Retransmit,
    Other,
}

/// A process named as the owner of a TCP socket by a Windows event source (Microsoft-Windows-TCPIP
/// and classic TcpIp ETW, Process Monitor TCP events, Sysmon event 3). Joined to connections by
/// 4-tuple and time; `local` is the owning process's end.
#[derive(Clone, Debug)]
pub struct SocketOwner {
    pub input: u32,
    /// Record number in its input (evidence).
    pub record: u64,
    pub ts: UtcNs,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub pid: u32,
    pub process: Option<String>,
    pub op: SocketOp,
}

/// A packet a Windows networking component dropped (PktMon event 170).
#[derive(Clone, Debug)]
pub struct PacketDrop {
    pub input: u32,
    /// Frame number as etl2pcapng numbers the trace's packet events (1-based, time order).
    pub frame: u64,
    pub ts: UtcNs,
    pub component_id: u16,
    /// Component label from the trace's metadata (`description (driver)`), else `component N`.
    pub component: String,
    /// PKTMON_DROP_REASON and its name (`INET_EndpointNotFound (1204)`).
    pub reason: u32,
    pub reason_label: String,
    /// PKTMON_DROP_LOCATION (a code location inside the component).
    pub location: u32,
    /// rx/tx/in/out/ingress/egress.
    pub direction: &'static str,
    /// TCP endpoints and flags when the dropped packet is TCP.
    pub tcp: Option<(Endpoint, Endpoint, u8)>,
}
