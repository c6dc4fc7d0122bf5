//! A rebuilt TCP connection as the analysis keeps it: counters, Zeek state and history, and what it
//! keeps of its packets (notes, or an uneventful connection's landmarks).

use std::fmt;

use super::{tcp_flags, Endpoint, Side, UtcNs};

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
        if syn.side != Side::Client
            || syn.flags & (SYN | ACK) != SYN
            || syn.frame != c.first_frame
            || syn.ts != c.first_ts
        {
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
    /// Landmarks are offsets from `first_ts`, so they move with it; their sides are never swapped,
    /// because roles are only reassigned on connections without a handshake, which keep full notes.
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
