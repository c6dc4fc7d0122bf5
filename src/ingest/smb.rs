//! SMB1 and SMB2/3 message bytes → typed messages: only what named-pipe accounting needs
//! (tree connects, creates, pipe waits, closes). Reassembly and pairing are in
//! `analysis::smb`; see docs/smb.md.
//!
//! Every offset and length comes from the wire: all reads are bounds-checked (`get`), and no
//! length field sizes an allocation (names are decoded from slices of the message).

/// NetBIOS session-service header: message type and 24-bit length (port 445's direct-TCP
/// header has the same layout, type 0).
pub const NB_HEADER: usize = 4;
pub const NB_SESSION_MESSAGE: u8 = 0x00;

/// The four SMB protocol magics after the NetBIOS header.
pub const MAGIC_SMB1: [u8; 4] = [0xFF, b'S', b'M', b'B'];
pub const MAGIC_SMB2: [u8; 4] = [0xFE, b'S', b'M', b'B'];
pub const MAGIC_TRANSFORM: [u8; 4] = [0xFD, b'S', b'M', b'B'];
pub const MAGIC_COMPRESSED: [u8; 4] = [0xFC, b'S', b'M', b'B'];

pub const STATUS_PENDING: u32 = 0x0000_0103;
/// FSCTL_PIPE_WAIT (MS-FSCC 2.3.49).
pub const FSCTL_PIPE_WAIT: u32 = 0x0011_0018;
/// SMB1 TRANS_WAIT_NMPIPE subcommand (MS-CIFS 2.2.5.10).
pub const TRANS_WAIT_NMPIPE: u16 = 0x0053;

pub mod smb2_cmd {
    pub const NEGOTIATE: u16 = 0;
    pub const SESSION_SETUP: u16 = 1;
    pub const LOGOFF: u16 = 2;
    pub const TREE_CONNECT: u16 = 3;
    pub const TREE_DISCONNECT: u16 = 4;
    pub const CREATE: u16 = 5;
    pub const CLOSE: u16 = 6;
    pub const IOCTL: u16 = 0x0b;
}

pub mod smb1_cmd {
    pub const CLOSE: u8 = 0x04;
    pub const TRANSACTION: u8 = 0x25;
    pub const TREE_DISCONNECT: u8 = 0x71;
    pub const LOGOFF_ANDX: u8 = 0x74;
    pub const SESSION_SETUP_ANDX: u8 = 0x73;
    pub const TREE_CONNECT_ANDX: u8 = 0x75;
    pub const NT_CREATE_ANDX: u8 = 0xa2;
}

const SMB2_FLAG_RESPONSE: u32 = 0x1;
const SMB2_FLAG_ASYNC: u32 = 0x2;
const SMB2_FLAG_RELATED: u32 = 0x4;
/// Commands in one compounded SMB2 message we look at (a chain is bounded by its bytes anyway).
const MAX_COMPOUND: usize = 64;
const MAX_ANDX: usize = 16;

fn le16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at.checked_add(2)?)?.try_into().ok()?))
}
fn le32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at.checked_add(4)?)?.try_into().ok()?))
}
fn le64(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(d.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// UTF-16LE bytes to a string (an odd trailing byte is ignored; NULs at the end are dropped).
pub fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let s = String::from_utf16_lossy(&units);
    s.trim_end_matches('\0').to_string()
}

/// A NUL-terminated UTF-16LE string at the start of `b`.
fn utf16z(b: &[u8]) -> String {
    let end = b.chunks_exact(2).position(|c| c == [0, 0]).map(|i| i * 2).unwrap_or(b.len() & !1);
    utf16(&b[..end])
}

/// A NUL-terminated 8-bit string at the start of `b`.
fn asciiz(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The NetBIOS header at the start of `b`: (type, length of what follows).
pub fn nb_header(b: &[u8]) -> Option<(u8, u32)> {
    let h = b.get(..NB_HEADER)?;
    Some((h[0], u32::from_be_bytes([0, h[1], h[2], h[3]])))
}

/// Whether `b` starts with a NetBIOS session message holding an SMB message (the resync point
/// of a stream picked up mid-way or after a gap).
pub fn is_message_start(b: &[u8]) -> bool {
    let Some((ty, len)) = nb_header(b) else { return false };
    let Some(magic) = b.get(4..8) else { return false };
    if ty != NB_SESSION_MESSAGE || len < 32 {
        return false;
    }
    match magic {
        m if m == MAGIC_SMB2 => len >= 64 && b.get(8..10).is_none_or(|s| s == [64, 0]),
        m if m == MAGIC_SMB1 || m == MAGIC_TRANSFORM || m == MAGIC_COMPRESSED => true,
        _ => false,
    }
}

/// One SMB2 16-byte FileId (persistent, volatile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FileId {
    pub persistent: u64,
    pub volatile: u64,
}

impl FileId {
    /// All ones: "the file of the previous command" in a related compound, and the FileId of
    /// FSCTL_PIPE_WAIT (issued on the tree, not a file).
    pub const ANY: FileId = FileId { persistent: u64::MAX, volatile: u64::MAX };
    fn at(d: &[u8], at: usize) -> Option<FileId> {
        Some(FileId { persistent: le64(d, at)?, volatile: le64(d, at + 8)? })
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:016x}:0x{:016x}", self.persistent, self.volatile)
    }
}

/// The SMB2 header fields pairing needs.
#[derive(Clone, Debug)]
pub struct Smb2Header {
    pub command: u16,
    /// NT status (responses; requests carry ChannelSequence here).
    pub status: u32,
    pub flags: u32,
    pub message_id: u64,
    /// None for async headers (they carry an AsyncId instead).
    pub tree_id: Option<u32>,
    pub session_id: u64,
}

impl Smb2Header {
    pub fn is_response(&self) -> bool {
        self.flags & SMB2_FLAG_RESPONSE != 0
    }
    pub fn is_async(&self) -> bool {
        self.flags & SMB2_FLAG_ASYNC != 0
    }
    /// Part of a compound whose TreeId/SessionId/FileId may say "as the previous command".
    pub fn is_related(&self) -> bool {
        self.flags & SMB2_FLAG_RELATED != 0
    }
}

#[derive(Clone, Debug)]
pub enum Smb2Body {
    TreeConnectReq {
        path: String,
    },
    /// ShareType 1 disk, 2 pipe, 3 print.
    TreeConnectResp {
        share_type: u8,
    },
    CreateReq {
        name: String,
    },
    CreateResp {
        file_id: FileId,
    },
    IoctlReq {
        ctl_code: u32,
        file_id: FileId,
        pipe_wait: Option<PipeWait>,
    },
    CloseReq {
        file_id: FileId,
    },
    /// Anything else, an error response, or a body too short for its command.
    Other,
}

/// FSCTL_PIPE_WAIT_REQUEST (MS-FSCC 2.3.49).
#[derive(Clone, Debug)]
pub struct PipeWait {
    pub name: String,
    /// In 100 ns units (negative relative, `0x8000000000000000` = wait forever), when specified.
    pub timeout: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Smb2Msg {
    pub header: Smb2Header,
    pub body: Smb2Body,
}

/// SMB1 status: NT status, or a DOS error class and code (FLAGS2_NT_STATUS clear).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Smb1Status {
    Nt(u32),
    Dos { class: u8, code: u16 },
}

impl Smb1Status {
    /// As an NTSTATUS, for the pipe model: DOS success is success; the DOS codes a pipe open
    /// can return map to their NT equivalents (MS-CIFS 2.2.2.4), anything else to
    /// STATUS_UNSUCCESSFUL.
    pub fn nt(self) -> u32 {
        match self {
            Smb1Status::Nt(s) => s,
            Smb1Status::Dos { class: 0, code: 0 } => 0,
            // ERRDOS ERRbadfile / ERRbadpath
            Smb1Status::Dos { class: 1, code: 2 } => 0xC000_0034,
            Smb1Status::Dos { class: 1, code: 3 } => 0xC000_003A,
            // ERRDOS ERRnoaccess
            Smb1Status::Dos { class: 1, code: 5 } => 0xC000_0022,
            // ERRDOS ERRpipebusy
            Smb1Status::Dos { class: 1, code: 231 } => 0xC000_00AE,
            Smb1Status::Dos { .. } => 0xC000_0001,
        }
    }
}

impl std::fmt::Display for Smb1Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Smb1Status::Nt(s) => write!(f, "0x{s:08x}"),
            Smb1Status::Dos { class: 0, code: 0 } => write!(f, "0x00000000"),
            Smb1Status::Dos { class, code } => write!(f, "dos:0x{class:02x}/0x{code:04x}"),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Smb1Body {
    TreeConnectReq {
        path: String,
    },
    /// Service: "IPC" for a named-pipe share.
    TreeConnectResp {
        service: String,
    },
    NtCreateReq {
        name: String,
    },
    /// ResourceType: 0 disk, 1 byte-mode pipe, 2 message-mode pipe, 3 printer.
    NtCreateResp {
        fid: u16,
        resource_type: u16,
    },
    CloseReq {
        fid: u16,
    },
    /// TRANSACTION with setup[0] = TRANS_WAIT_NMPIPE; name as sent (`\PIPE\X`).
    WaitNmPipeReq {
        name: String,
    },
    Other,
}

#[derive(Clone, Debug)]
pub struct Smb1Msg {
    pub status: Smb1Status,
    pub is_response: bool,
    pub tid: u16,
    /// PIDHigh << 16 | PIDLow.
    pub pid: u32,
    pub uid: u16,
    pub mid: u16,
    /// The command and body of each element of the AndX chain, first the header's command.
    pub commands: Vec<(u8, Smb1Body)>,
}

/// One NetBIOS session message's SMB content.
#[derive(Clone, Debug)]
pub enum SmbMessage {
    /// SMB2/3, one element per compounded command.
    Smb2(Vec<Smb2Msg>),
    Smb1(Smb1Msg),
    /// SMB3 transform header: encrypted, unreadable; its SessionId.
    Encrypted {
        session_id: u64,
    },
    /// SMB 3.1.1 compression transform header.
    Compressed,
    /// Not an SMB message, or its header is cut short.
    Unknown,
}

/// Parses the bytes after a NetBIOS session-message header.
pub fn parse_message(m: &[u8]) -> SmbMessage {
    match m.get(..4) {
        Some(x) if x == MAGIC_SMB2 => {
            let mut out = Vec::new();
            let mut start = 0usize;
            while out.len() < MAX_COMPOUND {
                let Some(rest) = m.get(start..) else { break };
                let Some(msg) = parse_smb2(rest) else { break };
                let next = le32(rest, 20).unwrap_or(0) as usize;
                out.push(msg);
                // NextCommand is relative to this header; 0 ends the chain.
                if next < 64 {
                    break;
                }
                start = match start.checked_add(next) {
                    Some(s) => s,
                    None => break,
                };
            }
            if out.is_empty() {
                SmbMessage::Unknown
            } else {
                SmbMessage::Smb2(out)
            }
        }
        Some(x) if x == MAGIC_SMB1 => parse_smb1(m).map(SmbMessage::Smb1).unwrap_or(SmbMessage::Unknown),
        Some(x) if x == MAGIC_TRANSFORM => match le64(m, 44) {
            Some(session_id) => SmbMessage::Encrypted { session_id },
            None => SmbMessage::Unknown,
        },
        Some(x) if x == MAGIC_COMPRESSED => SmbMessage::Compressed,
        _ => SmbMessage::Unknown,
    }
}

/// One SMB2 header and body; `h` starts at the header (offsets in bodies are from there).
fn parse_smb2(h: &[u8]) -> Option<Smb2Msg> {
    if h.get(..4)? != MAGIC_SMB2 || le16(h, 4)? != 64 {
        return None;
    }
    let flags = le32(h, 16)?;
    let header = Smb2Header {
        command: le16(h, 12)?,
        status: le32(h, 8)?,
        flags,
        message_id: le64(h, 24)?,
        tree_id: if flags & SMB2_FLAG_ASYNC != 0 { None } else { Some(le32(h, 36)?) },
        session_id: le64(h, 40)?,
    };
    // Bodies are bounded by the next compounded command.
    let next = le32(h, 20)? as usize;
    let h = if next >= 64 { h.get(..next).unwrap_or(h) } else { h };
    let body = smb2_body(&header, h).unwrap_or(Smb2Body::Other);
    Some(Smb2Msg { header, body })
}

fn smb2_body(hd: &Smb2Header, h: &[u8]) -> Option<Smb2Body> {
    const B: usize = 64;
    let size = le16(h, B)?;
    // Error responses (StructureSize 9) carry no command body.
    if hd.is_response() && size == 9 && hd.command != smb2_cmd::TREE_CONNECT {
        return Some(Smb2Body::Other);
    }
    let slice = |off: usize, len: usize| h.get(off..off.checked_add(len)?);
    Some(match (hd.command, hd.is_response()) {
        (smb2_cmd::TREE_CONNECT, false) if size == 9 => {
            let (off, len) = (le16(h, B + 4)? as usize, le16(h, B + 6)? as usize);
            Smb2Body::TreeConnectReq { path: utf16(slice(off, len)?) }
        }
        (smb2_cmd::TREE_CONNECT, true) if size == 16 => Smb2Body::TreeConnectResp { share_type: *h.get(B + 2)? },
        (smb2_cmd::CREATE, false) if size == 57 => {
            let (off, len) = (le16(h, B + 44)? as usize, le16(h, B + 46)? as usize);
            let name = if len == 0 { String::new() } else { utf16(slice(off, len)?) };
            Smb2Body::CreateReq { name }
        }
        (smb2_cmd::CREATE, true) if size == 89 => Smb2Body::CreateResp { file_id: FileId::at(h, B + 64)? },
        (smb2_cmd::IOCTL, false) if size == 57 => {
            let ctl_code = le32(h, B + 4)?;
            let file_id = FileId::at(h, B + 8)?;
            let (off, len) = (le32(h, B + 24)? as usize, le32(h, B + 28)? as usize);
            let pipe_wait = if ctl_code == FSCTL_PIPE_WAIT { slice(off, len).and_then(pipe_wait) } else { None };
            Smb2Body::IoctlReq { ctl_code, file_id, pipe_wait }
        }
        (smb2_cmd::CLOSE, false) if size == 24 => Smb2Body::CloseReq { file_id: FileId::at(h, B + 8)? },
        _ => Smb2Body::Other,
    })
}

/// FSCTL_PIPE_WAIT_REQUEST: Timeout (8), NameLength (4), TimeoutSpecified (1), Padding (1), Name.
fn pipe_wait(d: &[u8]) -> Option<PipeWait> {
    let timeout = le64(d, 0)?;
    let len = le32(d, 8)? as usize;
    let specified = *d.get(12)? != 0;
    let name = utf16(d.get(14..14usize.checked_add(len)?)?);
    Some(PipeWait { name, timeout: specified.then_some(timeout) })
}

fn parse_smb1(m: &[u8]) -> Option<Smb1Msg> {
    let command = *m.get(4)?;
    let flags = *m.get(9)?;
    let flags2 = le16(m, 10)?;
    let status = if flags2 & 0x4000 != 0 {
        Smb1Status::Nt(le32(m, 5)?)
    } else {
        Smb1Status::Dos { class: *m.get(5)?, code: le16(m, 7)? }
    };
    let unicode = flags2 & 0x8000 != 0;
    let is_response = flags & 0x80 != 0;
    let mut msg = Smb1Msg {
        status,
        is_response,
        tid: le16(m, 24)?,
        pid: (le16(m, 12)? as u32) << 16 | le16(m, 26)? as u32,
        uid: le16(m, 28)?,
        mid: le16(m, 30)?,
        commands: Vec::new(),
    };
    // Walk the AndX chain: each block is WordCount, Words, ByteCount, Bytes at an offset from
    // the header; AndXOffset must move forward.
    let (mut cmd, mut at) = (command, 32usize);
    loop {
        let body = smb1_body(m, cmd, at, is_response, unicode);
        let andx = matches!(cmd, 0x2d | 0x2e | 0x2f | 0x24 | 0x73 | 0x74 | 0x75 | 0xa2);
        msg.commands.push((cmd, body.unwrap_or(Smb1Body::Other)));
        if !andx || msg.commands.len() >= MAX_ANDX {
            break;
        }
        let wc = *m.get(at).unwrap_or(&0);
        if wc < 2 {
            break;
        }
        let next_cmd = *m.get(at + 1).unwrap_or(&0xff);
        let next_at = le16(m, at + 3).unwrap_or(0) as usize;
        if next_cmd == 0xff || next_at <= at {
            break;
        }
        cmd = next_cmd;
        at = next_at;
    }
    Some(msg)
}

fn smb1_body(m: &[u8], cmd: u8, at: usize, resp: bool, unicode: bool) -> Option<Smb1Body> {
    let wc = *m.get(at)? as usize;
    let words = m.get(at + 1..at + 1 + 2 * wc)?;
    let bc_at = at + 1 + 2 * wc;
    let bc = le16(m, bc_at)? as usize;
    let bytes_at = bc_at + 2;
    let bytes = m.get(bytes_at..(bytes_at + bc).min(m.len()))?;
    // Unicode strings are 2-aligned from the header start: skip the pad byte.
    let string = |skip: usize| -> Option<String> {
        let s_at = bytes_at + skip;
        let b = m.get(s_at..bytes_at + bytes.len())?;
        if unicode {
            let pad = s_at % 2;
            Some(utf16z(b.get(pad..)?))
        } else {
            Some(asciiz(b))
        }
    };
    Some(match (cmd, resp) {
        (smb1_cmd::TREE_CONNECT_ANDX, false) if wc == 4 => {
            let pw_len = le16(words, 6)? as usize;
            Smb1Body::TreeConnectReq { path: string(pw_len)? }
        }
        (smb1_cmd::TREE_CONNECT_ANDX, true) if wc >= 3 => Smb1Body::TreeConnectResp { service: asciiz(bytes) },
        (smb1_cmd::NT_CREATE_ANDX, false) if wc == 24 => {
            let name_len = le16(words, 5)? as usize;
            let pad = if unicode { bytes_at % 2 } else { 0 };
            let raw = bytes.get(pad..).unwrap_or(&[]);
            let raw = raw.get(..name_len.min(raw.len()))?;
            let name = if unicode { utf16z(raw) } else { asciiz(raw) };
            Smb1Body::NtCreateReq { name }
        }
        (smb1_cmd::NT_CREATE_ANDX, true) if wc >= 34 => {
            Smb1Body::NtCreateResp { fid: le16(words, 5)?, resource_type: le16(words, 63)? }
        }
        (smb1_cmd::CLOSE, false) if wc == 3 => Smb1Body::CloseReq { fid: le16(words, 0)? },
        (smb1_cmd::TRANSACTION, false) if wc >= 14 => {
            let setup_count = *words.get(26)? as usize;
            if setup_count >= 1 && le16(words, 28)? == TRANS_WAIT_NMPIPE && wc == 14 + setup_count {
                Smb1Body::WaitNmPipeReq { name: string(0)? }
            } else {
                Smb1Body::Other
            }
        }
        _ => Smb1Body::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }

    fn smb2_header(cmd: u16, flags: u32, status: u32, msg_id: u64, tree: u32) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(&MAGIC_SMB2);
        h[4] = 64;
        h[8..12].copy_from_slice(&status.to_le_bytes());
        h[12..14].copy_from_slice(&cmd.to_le_bytes());
        h[16..20].copy_from_slice(&flags.to_le_bytes());
        h[24..32].copy_from_slice(&msg_id.to_le_bytes());
        h[36..40].copy_from_slice(&tree.to_le_bytes());
        h[40..48].copy_from_slice(&7u64.to_le_bytes());
        h
    }

    #[test]
    fn smb2_create_request_and_compound_close() {
        let name = utf16le("srvsvc");
        let mut m = smb2_header(smb2_cmd::CREATE, 0, 0, 5, 1);
        let mut body = vec![0u8; 56];
        body[0] = 57;
        body[44..46].copy_from_slice(&120u16.to_le_bytes());
        body[46..48].copy_from_slice(&(name.len() as u16).to_le_bytes());
        m.extend(body);
        m.extend(&name);
        while m.len() % 8 != 0 {
            m.push(0);
        }
        let next = m.len() as u32;
        m[20..24].copy_from_slice(&next.to_le_bytes());
        let mut close = smb2_header(smb2_cmd::CLOSE, 0x4, 0, 6, u32::MAX);
        let mut cb = vec![0u8; 24];
        cb[0] = 24;
        cb[8..24].copy_from_slice(&[0xff; 16]);
        close.extend(cb);
        m.extend(close);
        let SmbMessage::Smb2(list) = parse_message(&m) else { panic!("not smb2") };
        assert_eq!(list.len(), 2);
        assert!(matches!(&list[0].body, Smb2Body::CreateReq { name } if name == "srvsvc"));
        assert!(list[1].header.is_related());
        assert!(matches!(list[1].body, Smb2Body::CloseReq { file_id } if file_id == FileId::ANY));
    }

    #[test]
    fn lengths_past_the_end_are_not_read() {
        let mut m = smb2_header(smb2_cmd::CREATE, 0, 0, 5, 1);
        let mut body = vec![0u8; 56];
        body[0] = 57;
        body[44..46].copy_from_slice(&120u16.to_le_bytes());
        body[46..48].copy_from_slice(&0xfff0u16.to_le_bytes());
        m.extend(body);
        let SmbMessage::Smb2(list) = parse_message(&m) else { panic!("not smb2") };
        assert!(matches!(list[0].body, Smb2Body::Other));
        // A NextCommand pointing past the end ends the chain.
        m[20..24].copy_from_slice(&0x7fff_fff8u32.to_le_bytes());
        let SmbMessage::Smb2(list) = parse_message(&m) else { panic!("not smb2") };
        assert_eq!(list.len(), 1);
        assert!(matches!(parse_message(&m[..10]), SmbMessage::Unknown));
    }

    #[test]
    fn message_start_needs_magic_and_length() {
        let mut b = vec![0, 0, 0, 100];
        b.extend(smb2_header(0, 0, 0, 0, 0));
        assert!(is_message_start(&b));
        b[3] = 10;
        assert!(!is_message_start(&b));
        b[3] = 100;
        b[4] = 0xAA;
        assert!(!is_message_start(&b));
    }

    #[test]
    fn dos_status_display_and_mapping() {
        assert_eq!(Smb1Status::Dos { class: 0, code: 0 }.to_string(), "0x00000000");
        assert_eq!(Smb1Status::Dos { class: 1, code: 231 }.nt(), 0xC000_00AE);
        assert_eq!(Smb1Status::Nt(0xC000_0022).to_string(), "0xc0000022");
    }
}
