//! Plain data shared by every layer: timestamps, endpoints, packets, connections, findings.

use std::fmt;
use std::net::IpAddr;

/// Nanoseconds since the Unix epoch, UTC. Every event in ipcscope lives on this one clock.
pub type UtcNs = i64;

// By path, so that the fuzz crate (which compiles this file by path) finds it too.
#[path = "model/time.rs"]
mod time;
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

/// A compact record of one packet of a connection, kept for detectors and the details pane.
/// Bounded per connection (see `analysis::tcp::HEAD_PACKETS`, `TAIL_PACKETS`). The notes an
/// uneventful connection keeps ([`Landmarks`]) carry frame, time, side and flags only.
#[derive(Clone, Copy, Debug)]
pub struct PacketNote {
    pub frame: u64,
    pub ts: UtcNs,
    pub side: Side,
    pub flags: u8,
    pub payload_len: u32,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub analysis: u32,
}

/// The first packets of a connection (handshake and what follows) and the last (how it ended).
#[derive(Clone, Debug, Default)]
pub struct KeptNotes {
    pub head: Vec<PacketNote>,
    pub tail: Vec<PacketNote>,
    /// Packets between head and tail not kept.
    pub elided: u64,
}

/// What a finished connection keeps of its packets.
#[derive(Clone, Debug, Default)]
pub enum PacketNotes {
    /// Nothing (a record built by hand).
    #[default]
    None,
    /// Head and tail notes with every field.
    Kept(Box<KeptNotes>),
    /// An uneventful connection: its landmark packets only.
    Landmarks(Landmarks),
}

/// The packets of an uneventful connection that the detectors look at — its SYN (the first packet),
/// SYN/ACK and the two FINs — each as frame and time offsets from the connection's first packet
/// (24 and 40 bits: up to 16 M frames and 18 minutes later), with sender and flags. A connection
/// is uneventful when it had one handshake, one FIN each way, no reset, no zero window and no
/// Wireshark analysis flag; detectors only read times, frames, sides and flags of such a
/// connection (its sequence numbers, windows and lengths are not kept). 32 bytes where its notes
/// took 320 on an eight-packet connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Landmarks {
    offsets: [u64; 3],
    flags: [u8; 4],
    /// Bit i: landmark i was sent by the server.
    server_sent: u8,
    /// A byte with one valid value: `PacketNotes` keeps its variant tag in it (8 bytes smaller).
    niche: Niche,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Niche {
    Landmarks = 0,
}

impl Landmarks {
    const FRAME_BITS: u32 = 24;
    const TS_BITS: u32 = 40;

    /// The landmarks of a connection whose kept packets are `head` then `tail`, if it is
    /// uneventful and they fit. `eventful`: a reset, zero window or analysis flag was seen.
    pub fn of(c: &Connection, head: &[PacketNote], tail: &[PacketNote], eventful: bool) -> Option<Landmarks> {
        use tcp_flags::{ACK, FIN, SYN};
        if eventful
            || c.reused_ports
            || (c.client_syn, c.server_synack, c.client_fin, c.server_fin) != (1, 1, 1, 1)
            || (c.client_rst | c.server_rst) != 0
        {
            return None;
        }
        let syn = head.first()?;
        if syn.side != Side::Client || syn.flags & (SYN | ACK) != SYN || syn.frame != c.first_frame || syn.ts != c.first_ts {
            return None;
        }
        // The SYN/ACK, then both FINs, all kept, and no other SYN among the notes.
        let mut picked: [Option<&PacketNote>; 3] = [None; 3];
        let mut syns = 0;
        for p in head.iter().chain(tail) {
            syns += usize::from(p.flags & SYN != 0);
            if p.side == Side::Server && p.flags & SYN != 0 && picked[0].is_none() {
                picked[0] = Some(p);
            } else if p.flags & FIN != 0 {
                match (picked[0], picked[1]) {
                    (None, _) => return None,
                    (Some(_), None) => picked[1] = Some(p),
                    (Some(_), Some(_)) if picked[2].is_none() => picked[2] = Some(p),
                    _ => return None,
                }
            }
        }
        if syns != 2 {
            return None;
        }
        let mut l = Landmarks { offsets: [0; 3], flags: [syn.flags, 0, 0, 0], server_sent: 0, niche: Niche::Landmarks };
        for (k, p) in picked.into_iter().enumerate() {
            let p = p?;
            let frame = p.frame.checked_sub(c.first_frame)?;
            let ts = u64::try_from(p.ts.checked_sub(c.first_ts)?).ok()?;
            if frame >> Self::FRAME_BITS != 0 || ts >> Self::TS_BITS != 0 {
                return None;
            }
            l.offsets[k] = frame << Self::TS_BITS | ts;
            l.flags[k + 1] = p.flags;
            l.server_sent |= u8::from(p.side == Side::Server) << (k + 1);
        }
        Some(l)
    }

    /// The four landmark notes in order; fields not kept are zero.
    pub fn notes(&self, first_frame: u64, first_ts: UtcNs) -> [PacketNote; 4] {
        let note = |i: usize, frame: u64, ts: UtcNs| PacketNote {
            frame,
            ts,
            side: if self.server_sent & (1 << i) != 0 { Side::Server } else { Side::Client },
            flags: self.flags[i],
            payload_len: 0,
            seq: 0,
            ack: 0,
            window: 0,
            analysis: 0,
        };
        let at = |i: usize| {
            let o = self.offsets[i - 1];
            note(i, first_frame + (o >> Self::TS_BITS), first_ts + (o & ((1 << Self::TS_BITS) - 1)) as i64)
        };
        [note(0, first_frame, first_ts), at(1), at(2), at(3)]
    }
}

/// A rebuilt TCP connection (one Wireshark stream / one Zeek connection). A finished connection
/// is kept for the detectors, the tables and the app: 232 bytes plus the notes of an eventful one.
#[derive(Clone, Debug)]
pub struct Connection {
    /// 0-based id, in order of first packet over the whole run.
    pub id: u64,
    pub input: u32,
    /// Wireshark's `tcp.stream` index within its input.
    pub stream: u32,
    /// Originator (SYN sender, or Zeek's guess without a SYN).
    pub client: Endpoint,
    pub server: Endpoint,
    pub first_ts: UtcNs,
    pub last_ts: UtcNs,
    /// Zeek's `conn_state` (one byte, not a String: a finished connection must stay small).
    pub state: ConnState,
    /// Zeek's `history` letters, inline up to 22 letters.
    pub history: History,
    pub client_packets: u32,
    pub server_packets: u32,
    /// TCP payload bytes.
    pub client_bytes: u64,
    pub server_bytes: u64,
    pub client_fin: u32,
    pub server_fin: u32,
    pub client_rst: u32,
    pub server_rst: u32,
    pub client_syn: u32,
    pub server_synack: u32,
    pub keep_alive: u32,
    pub keep_alive_ack: u32,
    pub retransmissions: u32,
    pub first_frame: u64,
    pub last_frame: u64,
    /// This connection began with a SYN on a 4-tuple seen before (Wireshark reused_ports).
    pub reused_ports: bool,
    /// Its packets as kept: see [`Connection::packets`].
    pub notes: PacketNotes,
    /// The process that owns this connection's local end, when an event source named it
    /// (set by `analysis::attribution`; one name shared by its connections).
    pub pid: Option<u32>,
    pub process: Option<std::sync::Arc<str>>,
}

impl Connection {
    /// A connection at its first packet: no counters, no packets kept yet, not attributed.
    pub fn opened(id: u64, input: u32, stream: u32, client: Endpoint, server: Endpoint, ts: UtcNs, frame: u64) -> Self {
        Connection {
            id,
            input,
            stream,
            client,
            server,
            first_ts: ts,
            last_ts: ts,
            state: ConnState::Unset,
            history: History::default(),
            client_packets: 0,
            server_packets: 0,
            client_bytes: 0,
            server_bytes: 0,
            client_fin: 0,
            server_fin: 0,
            client_rst: 0,
            server_rst: 0,
            client_syn: 0,
            server_synack: 0,
            keep_alive: 0,
            keep_alive_ack: 0,
            retransmissions: 0,
            first_frame: frame,
            last_frame: frame,
            reused_ports: false,
            notes: PacketNotes::None,
            pid: None,
            process: None,
        }
    }

    /// The kept packets in order: head then tail, or an uneventful connection's landmarks.
    pub fn packets(&self) -> impl Iterator<Item = PacketNote> + '_ {
        let (head, tail) = self.head_tail();
        let marks = match &self.notes {
            PacketNotes::Landmarks(l) => Some(l.notes(self.first_frame, self.first_ts)),
            _ => None,
        };
        head.iter().chain(tail).copied().chain(marks.into_iter().flatten())
    }

    /// Head and tail notes with every field (empty for landmarks).
    pub fn head_tail(&self) -> (&[PacketNote], &[PacketNote]) {
        match &self.notes {
            PacketNotes::Kept(k) => (&k.head, &k.tail),
            _ => (&[], &[]),
        }
    }

    /// Packets of the connection not among its notes.
    pub fn elided(&self) -> u64 {
        match &self.notes {
            PacketNotes::Kept(k) => k.elided,
            PacketNotes::Landmarks(_) => (self.client_packets as u64 + self.server_packets as u64).saturating_sub(4),
            PacketNotes::None => 0,
        }
    }

    /// The head and tail notes, to change in place (times moved to another clock, sides swapped).
    /// Landmarks follow `first_ts` and the sides of the record by themselves.
    pub fn kept_notes_mut(&mut self) -> impl Iterator<Item = &mut PacketNote> {
        let k = match &mut self.notes {
            PacketNotes::Kept(k) => Some(&mut **k),
            _ => None,
        };
        k.into_iter().flat_map(|k| k.head.iter_mut().chain(k.tail.iter_mut()))
    }

    /// Whether the notes carry every field (not only an uneventful connection's landmarks).
    pub fn notes_complete(&self) -> bool {
        !matches!(self.notes, PacketNotes::Landmarks(_))
    }

    pub fn duration_s(&self) -> f64 {
        (self.last_ts - self.first_ts) as f64 / 1e9
    }
}

/// Zeek's `conn_state` of a connection; `Unset` (prints empty) before the connection is finalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ConnState {
    #[default]
    Unset,
    S0,
    S1,
    SF,
    REJ,
    S2,
    S3,
    RSTO,
    RSTR,
    RSTOS0,
    RSTRH,
    SH,
    SHR,
    OTH,
}

impl ConnState {
    const ALL: [ConnState; 14] = [
        ConnState::Unset,
        ConnState::S0,
        ConnState::S1,
        ConnState::SF,
        ConnState::REJ,
        ConnState::S2,
        ConnState::S3,
        ConnState::RSTO,
        ConnState::RSTR,
        ConnState::RSTOS0,
        ConnState::RSTRH,
        ConnState::SH,
        ConnState::SHR,
        ConnState::OTH,
    ];

    /// The Zeek name (`SF`, `RSTR`, …); empty for `Unset`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Unset => "",
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::REJ => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::RSTO => "RSTO",
            ConnState::RSTR => "RSTR",
            ConnState::RSTOS0 => "RSTOS0",
            ConnState::RSTRH => "RSTRH",
            ConnState::SH => "SH",
            ConnState::SHR => "SHR",
            ConnState::OTH => "OTH",
        }
    }

    /// The state of a Zeek name; `None` for a name Zeek does not print.
    pub fn parse(s: &str) -> Option<ConnState> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ConnState {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}
impl PartialEq<&str> for ConnState {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}
impl PartialEq<String> for ConnState {
    fn eq(&self, o: &String) -> bool {
        self.as_str() == o
    }
}

/// For fixtures: an unknown name reads as `OTH`.
impl From<&str> for ConnState {
    fn from(s: &str) -> Self {
        ConnState::parse(s).unwrap_or(ConnState::OTH)
    }
}

const HISTORY_INLINE: usize = 22;

/// Zeek history letters (ASCII): inline up to 22 letters (nearly every connection), else on the heap.
/// 24 bytes and no allocation for a normal connection, where a String cost 24 bytes plus a heap block.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum History {
    Inline { len: u8, buf: [u8; HISTORY_INLINE] },
    Heap(Box<str>),
}

impl Default for History {
    fn default() -> Self {
        History::Inline { len: 0, buf: [0; HISTORY_INLINE] }
    }
}

impl History {
    pub fn as_str(&self) -> &str {
        match self {
            // Only ASCII is ever pushed, so the bytes are always UTF-8.
            History::Inline { len, buf } => std::str::from_utf8(&buf[..*len as usize]).unwrap_or(""),
            History::Heap(s) => s,
        }
    }

    /// Appends one letter; a non-ASCII char is ignored (Zeek's letters are ASCII).
    pub fn push(&mut self, ch: char) {
        if !ch.is_ascii() {
            return;
        }
        match self {
            History::Inline { len, buf } if (*len as usize) < HISTORY_INLINE => {
                buf[*len as usize] = ch as u8;
                *len += 1;
            }
            _ => {
                let mut s = self.as_str().to_string();
                s.push(ch);
                *self = History::Heap(s.into_boxed_str());
            }
        }
    }
}

impl std::ops::Deref for History {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for History {
    fn from(s: &str) -> Self {
        let mut h = History::default();
        s.chars().for_each(|c| h.push(c));
        h
    }
}

impl PartialEq<str> for History {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}
impl PartialEq<&str> for History {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}
impl PartialEq<String> for History {
    fn eq(&self, o: &String) -> bool {
        self.as_str() == o
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

/// How serious a finding or a log line is. Findings use the first three; a log line can also be
/// debug or carry no level (`Unknown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    Info,
    Debug,
    Unknown,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Debug => "debug",
            Severity::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a piece of evidence is: input index and 1-based frame (or record) number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EvidenceRef {
    pub input: u32,
    pub frame: u64,
}

/// One line of a text log: its input index and 1-based line number. A typed reference, so two logs
/// with one file name stay apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogLineRef {
    pub input: u32,
    pub line: u64,
}

/// What a finding diagnoses, one variant per detector rule. Variants are in the order of their
/// names, so the derived order is the order of the public strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    AbortiveClose,
    ClosedBeforeReply,
    ConnectTimeout,
    ConnectionRefused,
    HalfOpenReuse,
    IdleReset,
    KeepaliveReset,
    KeepaliveTimeout,
    MiddleboxReset,
    PacketDrop,
    PipeBusy,
    PipeChurn,
    PipeExhaustion,
    PipeNotFound,
    PortExhaustion,
    PortReuse,
    PortScan,
    RetransmissionTimeout,
    ServerRestart,
    StaleConnection,
    SuspectedMiddleboxReset,
    ZeroWindowStall,
}

impl FindingKind {
    pub const ALL: [FindingKind; 22] = [
        FindingKind::AbortiveClose,
        FindingKind::ClosedBeforeReply,
        FindingKind::ConnectTimeout,
        FindingKind::ConnectionRefused,
        FindingKind::HalfOpenReuse,
        FindingKind::IdleReset,
        FindingKind::KeepaliveReset,
        FindingKind::KeepaliveTimeout,
        FindingKind::MiddleboxReset,
        FindingKind::PacketDrop,
        FindingKind::PipeBusy,
        FindingKind::PipeChurn,
        FindingKind::PipeExhaustion,
        FindingKind::PipeNotFound,
        FindingKind::PortExhaustion,
        FindingKind::PortReuse,
        FindingKind::PortScan,
        FindingKind::RetransmissionTimeout,
        FindingKind::ServerRestart,
        FindingKind::StaleConnection,
        FindingKind::SuspectedMiddleboxReset,
        FindingKind::ZeroWindowStall,
    ];

    /// The public name: findings.csv `kind`, summary.json keys, golden files.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::AbortiveClose => "abortive_close",
            FindingKind::ClosedBeforeReply => "closed_before_reply",
            FindingKind::ConnectTimeout => "connect_timeout",
            FindingKind::ConnectionRefused => "connection_refused",
            FindingKind::HalfOpenReuse => "half_open_reuse",
            FindingKind::IdleReset => "idle_reset",
            FindingKind::KeepaliveReset => "keepalive_reset",
            FindingKind::KeepaliveTimeout => "keepalive_timeout",
            FindingKind::MiddleboxReset => "middlebox_reset",
            FindingKind::PacketDrop => "packet_drop",
            FindingKind::PipeBusy => "pipe_busy",
            FindingKind::PipeChurn => "pipe_churn",
            FindingKind::PipeExhaustion => "pipe_exhaustion",
            FindingKind::PipeNotFound => "pipe_not_found",
            FindingKind::PortExhaustion => "port_exhaustion",
            FindingKind::PortReuse => "port_reuse",
            FindingKind::PortScan => "port_scan",
            FindingKind::RetransmissionTimeout => "retransmission_timeout",
            FindingKind::ServerRestart => "server_restart",
            FindingKind::StaleConnection => "stale_connection",
            FindingKind::SuspectedMiddleboxReset => "suspected_middlebox_reset",
            FindingKind::ZeroWindowStall => "zero_window_stall",
        }
    }

    /// The logged errors a finding of this kind explains, for linking log lines to it.
    pub fn explains(self) -> &'static [LoggedError] {
        use FindingKind::*;
        use LoggedError::{Code, Identity, Named};
        const RESET: &[LoggedError] =
            &[Identity(ErrorIdentity::Reset), Code(10053, "WSAECONNABORTED"), Code(10052, "WSAENETRESET")];
        const TIMEOUT: &[LoggedError] = &[
            Code(10060, "WSAETIMEDOUT"),
            Code(10053, "WSAECONNABORTED"),
            Code(10052, "WSAENETRESET"),
            Named("ETIMEDOUT"),
        ];
        match self {
            StaleConnection | KeepaliveReset | IdleReset | AbortiveClose | ServerRestart => RESET,
            MiddleboxReset | SuspectedMiddleboxReset => RESET,
            ConnectionRefused => &[Identity(ErrorIdentity::Refused)],
            KeepaliveTimeout | ConnectTimeout | RetransmissionTimeout => TIMEOUT,
            PortExhaustion | PortReuse => &[Identity(ErrorIdentity::AddrInUse)],
            PipeBusy | PipeExhaustion => &[Code(231, "ERROR_PIPE_BUSY")],
            PipeNotFound => &[Code(2, "ERROR_FILE_NOT_FOUND")],
            PipeChurn => &[Code(231, "ERROR_PIPE_BUSY"), Code(2, "ERROR_FILE_NOT_FOUND")],
            ClosedBeforeReply | HalfOpenReuse | PacketDrop | PortScan | ZeroWindowStall => &[],
        }
    }

    /// Whether a log line with these error codes and names is explained by this kind.
    pub fn explains_line(self, codes: &[i64], names: &[String]) -> bool {
        self.explains().iter().any(|e| e.in_line(codes, names))
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an error line reports, as far as its clock is concerned: the raw event it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorIdentity {
    /// WSAECONNRESET 10054, ECONNRESET, EPIPE: a reset received.
    Reset,
    /// WSAECONNREFUSED 10061, ECONNREFUSED: a SYN answered by a reset.
    Refused,
    /// WSAEADDRINUSE 10048, WSAENOBUFS 10055, EADDRNOTAVAIL, EADDRINUSE: no local port left.
    AddrInUse,
    /// ERROR_PIPE_BUSY 231: a pipe open failed busy.
    PipeBusy,
    /// ERROR_FILE_NOT_FOUND 2 (pipe context): a pipe open failed not-found.
    PipeNotFound,
}

impl ErrorIdentity {
    /// The identity of a line with these codes and error names (first match wins; timeouts have
    /// none: the application's timer fires an unknown time after the last packet).
    pub fn of(codes: &[i64], names: &[String]) -> Option<ErrorIdentity> {
        let has = |c: i64| codes.contains(&c);
        let named = |n: &str| names.iter().any(|x| x.starts_with(n));
        if has(10054) || named("ECONNRESET") || named("EPIPE") {
            Some(ErrorIdentity::Reset)
        } else if has(10061) || named("ECONNREFUSED") {
            Some(ErrorIdentity::Refused)
        } else if has(231) {
            Some(ErrorIdentity::PipeBusy)
        } else if has(2) {
            Some(ErrorIdentity::PipeNotFound)
        } else if has(10048) || has(10055) || named("EADDRNOTAVAIL") || named("EADDRINUSE") {
            Some(ErrorIdentity::AddrInUse)
        } else {
            None
        }
    }
}

/// An error a log line can carry, by the names the text-log reader gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoggedError {
    /// A Winsock or Win32 code, with its name.
    Code(i64, &'static str),
    /// An error whose name starts with this (errno names, which vary in suffix).
    Named(&'static str),
    /// A line whose clock identity is this one.
    Identity(ErrorIdentity),
}

impl LoggedError {
    pub fn in_line(self, codes: &[i64], names: &[String]) -> bool {
        match self {
            LoggedError::Code(c, _) => codes.contains(&c),
            LoggedError::Named(n) => names.iter().any(|x| x.starts_with(n)),
            LoggedError::Identity(id) => ErrorIdentity::of(codes, names) == Some(id),
        }
    }
}

/// A diagnosis with the evidence that proves it.
#[derive(Clone, Debug)]
pub struct Finding {
    pub id: u64,
    pub kind: FindingKind,
    pub severity: Severity,
    pub first_ts: UtcNs,
    pub last_ts: UtcNs,
    /// `ip:port`, or a bare ip when the finding covers many client ports.
    pub client: String,
    pub server: String,
    pub pipe: String,
    pub pid: String,
    pub count: u64,
    pub evidence: Vec<EvidenceRef>,
    pub wireshark_filter: String,
    /// The log lines this finding explains (shown as `file:line` by `Analysis::log_line_label`).
    pub log_lines: Vec<LogLineRef>,
    pub summary: String,
    pub advice: String,
    /// Connections this finding is about (ids), for the GUI.
    pub connections: Vec<u64>,
}
