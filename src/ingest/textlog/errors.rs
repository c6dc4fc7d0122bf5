//! Error identities in a record's text: Winsock, Win32, errno, .NET, HRESULT and NTSTATUS.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    Winsock,
    Win32,
    /// POSIX errno; `code` is the Linux value when known.
    Errno,
    /// .NET exception type; `code` is the Winsock/Win32 code of a well-known message in the same record.
    DotNet,
    /// `code` is the HRESULT as an unsigned 32-bit value.
    HResult,
    /// `code` is the NTSTATUS as an unsigned 32-bit value.
    NtStatus,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Winsock => "winsock",
            ErrorKind::Win32 => "win32",
            ErrorKind::Errno => "errno",
            ErrorKind::DotNet => "dotnet",
            ErrorKind::HResult => "hresult",
            ErrorKind::NtStatus => "ntstatus",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorId {
    pub kind: ErrorKind,
    pub code: Option<i64>,
    pub name: String,
}

impl ErrorId {
    pub(super) fn new(kind: ErrorKind, code: Option<i64>, name: impl Into<String>) -> ErrorId {
        ErrorId { kind, code, name: name.into() }
    }
}

const WINSOCK: &[(i64, &str)] = &[
    (10004, "WSAEINTR"),
    (10013, "WSAEACCES"),
    (10022, "WSAEINVAL"),
    (10035, "WSAEWOULDBLOCK"),
    (10038, "WSAENOTSOCK"),
    (10048, "WSAEADDRINUSE"),
    (10049, "WSAEADDRNOTAVAIL"),
    (10050, "WSAENETDOWN"),
    (10051, "WSAENETUNREACH"),
    (10052, "WSAENETRESET"),
    (10053, "WSAECONNABORTED"),
    (10054, "WSAECONNRESET"),
    (10055, "WSAENOBUFS"),
    (10057, "WSAENOTCONN"),
    (10058, "WSAESHUTDOWN"),
    (10060, "WSAETIMEDOUT"),
    (10061, "WSAECONNREFUSED"),
    (10064, "WSAEHOSTDOWN"),
    (10065, "WSAEHOSTUNREACH"),
    (11001, "WSAHOST_NOT_FOUND"),
];

const WIN32: &[(i64, &str)] = &[
    (2, "ERROR_FILE_NOT_FOUND"),
    (5, "ERROR_ACCESS_DENIED"),
    (6, "ERROR_INVALID_HANDLE"),
    (64, "ERROR_NETNAME_DELETED"),
    (87, "ERROR_INVALID_PARAMETER"),
    (109, "ERROR_BROKEN_PIPE"),
    (121, "ERROR_SEM_TIMEOUT"),
    (231, "ERROR_PIPE_BUSY"),
    (232, "ERROR_NO_DATA"),
    (233, "ERROR_PIPE_NOT_CONNECTED"),
    (234, "ERROR_MORE_DATA"),
    (230, "ERROR_BAD_PIPE"),
    (535, "ERROR_PIPE_CONNECTED"),
    (536, "ERROR_PIPE_LISTENING"),
    (995, "ERROR_OPERATION_ABORTED"),
    (1225, "ERROR_CONNECTION_REFUSED"),
    (1231, "ERROR_NETWORK_UNREACHABLE"),
    (1232, "ERROR_HOST_UNREACHABLE"),
    (1236, "ERROR_CONNECTION_ABORTED"),
    (1450, "ERROR_NO_SYSTEM_RESOURCES"),
    (1460, "ERROR_TIMEOUT"),
];

/// Codes specific enough to be trusted inside bare parentheses, e.g. "(10054)".
const PAREN_OK_WIN32: &[i64] = &[109, 121, 231, 232, 233, 535, 536, 1225, 1236];

/// Linux errno values.
const ERRNO: &[(i64, &str)] = &[
    (32, "EPIPE"),
    (98, "EADDRINUSE"),
    (99, "EADDRNOTAVAIL"),
    (101, "ENETUNREACH"),
    (103, "ECONNABORTED"),
    (104, "ECONNRESET"),
    (107, "ENOTCONN"),
    (110, "ETIMEDOUT"),
    (111, "ECONNREFUSED"),
    (113, "EHOSTUNREACH"),
];

const DOTNET: &[&str] = &[
    "SocketException",
    "IOException",
    "RemotingException",
    "TimeoutException",
    "WebException",
    "ObjectDisposedException",
    "HttpRequestException",
    "CommunicationException",
    "EndpointNotFoundException",
    "CommunicationObjectFaultedException",
    "EndOfStreamException",
    "PipeException",
];

const NTSTATUS: &[(i64, &str)] = &[
    (0xC000_0005, "STATUS_ACCESS_VIOLATION"),
    (0xC000_0022, "STATUS_ACCESS_DENIED"),
    (0xC000_0034, "STATUS_OBJECT_NAME_NOT_FOUND"),
    (0xC000_00AB, "STATUS_INSTANCE_NOT_AVAILABLE"),
    (0xC000_00AC, "STATUS_PIPE_NOT_AVAILABLE"),
    (0xC000_00AD, "STATUS_INVALID_PIPE_STATE"),
    (0xC000_00AE, "STATUS_PIPE_BUSY"),
    (0xC000_00B0, "STATUS_PIPE_DISCONNECTED"),
    (0xC000_00B1, "STATUS_PIPE_CLOSING"),
    (0xC000_00B2, "STATUS_PIPE_CONNECTED"),
    (0xC000_00B3, "STATUS_PIPE_LISTENING"),
    (0xC000_00B5, "STATUS_IO_TIMEOUT"),
    (0xC000_00D9, "STATUS_PIPE_EMPTY"),
    (0xC000_014B, "STATUS_PIPE_BROKEN"),
    (0xC000_020A, "STATUS_ADDRESS_ALREADY_EXISTS"),
    (0xC000_020C, "STATUS_CONNECTION_DISCONNECTED"),
    (0xC000_020D, "STATUS_CONNECTION_RESET"),
    (0xC000_0236, "STATUS_CONNECTION_REFUSED"),
    (0xC000_023D, "STATUS_HOST_UNREACHABLE"),
    (0xC000_0241, "STATUS_CONNECTION_ABORTED"),
    (0xC000_0409, "STATUS_STACK_BUFFER_OVERRUN"),
    (0xC000_0374, "STATUS_HEAP_CORRUPTION"),
    (0xC000_00FD, "STATUS_STACK_OVERFLOW"),
];

const HRESULTS: &[(i64, &str)] = &[
    (0x8000_4005, "E_FAIL"),
    (0x8000_4004, "E_ABORT"),
    (0x8007_0005, "E_ACCESSDENIED"),
    (0x8007_000E, "E_OUTOFMEMORY"),
    (0x8007_0057, "E_INVALIDARG"),
    (0x8013_1620, "COR_E_IO"),
    (0x8013_1509, "COR_E_INVALIDOPERATION"),
    (0x8013_1505, "COR_E_TIMEOUT"),
    (0x8013_1622, "COR_E_OBJECTDISPOSED"),
    (0x8001_0108, "RPC_E_DISCONNECTED"),
    (0x8007_06BA, "RPC_S_SERVER_UNAVAILABLE"),
];

/// (lower-case phrase, kind, code, name)
const PHRASES: &[(&str, ErrorKind, Option<i64>, &str)] = &[
    ("an existing connection was forcibly closed by the remote host", ErrorKind::Winsock, Some(10054), "WSAECONNRESET"),
    (
        "no connection could be made because the target machine actively refused it",
        ErrorKind::Winsock,
        Some(10061),
        "WSAECONNREFUSED",
    ),
    (
        "a connection attempt failed because the connected party did not properly respond",
        ErrorKind::Winsock,
        Some(10060),
        "WSAETIMEDOUT",
    ),
    ("only one usage of each socket address", ErrorKind::Winsock, Some(10048), "WSAEADDRINUSE"),
    (
        "an established connection was aborted by the software in your host machine",
        ErrorKind::Winsock,
        Some(10053),
        "WSAECONNABORTED",
    ),
    (
        "an operation on a socket could not be performed because the system lacked sufficient buffer space",
        ErrorKind::Winsock,
        Some(10055),
        "WSAENOBUFS",
    ),
    ("a socket operation was attempted to an unreachable host", ErrorKind::Winsock, Some(10065), "WSAEHOSTUNREACH"),
    (
        "the connection has been broken due to keep-alive activity detecting a failure",
        ErrorKind::Winsock,
        Some(10052),
        "WSAENETRESET",
    ),
    ("because the socket is not connected", ErrorKind::Winsock, Some(10057), "WSAENOTCONN"),
    ("because the socket had already been shut down", ErrorKind::Winsock, Some(10058), "WSAESHUTDOWN"),
    ("all pipe instances are busy", ErrorKind::Win32, Some(231), "ERROR_PIPE_BUSY"),
    ("port is busy", ErrorKind::Win32, Some(231), "ERROR_PIPE_BUSY"),
    ("the system cannot find the file specified", ErrorKind::Win32, Some(2), "ERROR_FILE_NOT_FOUND"),
    ("the pipe is being closed", ErrorKind::Win32, Some(232), "ERROR_NO_DATA"),
    ("the pipe has been ended", ErrorKind::Win32, Some(109), "ERROR_BROKEN_PIPE"),
    ("pipe is broken", ErrorKind::Win32, Some(109), "ERROR_BROKEN_PIPE"),
    ("no process is on the other end of the pipe", ErrorKind::Win32, Some(233), "ERROR_PIPE_NOT_CONNECTED"),
    ("there is a process on other end of the pipe", ErrorKind::Win32, Some(535), "ERROR_PIPE_CONNECTED"),
    ("the semaphore timeout period has expired", ErrorKind::Win32, Some(121), "ERROR_SEM_TIMEOUT"),
    ("the specified network name is no longer available", ErrorKind::Win32, Some(64), "ERROR_NETNAME_DELETED"),
    ("connection reset by peer", ErrorKind::Errno, Some(104), "ECONNRESET"),
    ("broken pipe", ErrorKind::Errno, Some(32), "EPIPE"),
    ("connection refused", ErrorKind::Errno, Some(111), "ECONNREFUSED"),
    ("connection timed out", ErrorKind::Errno, Some(110), "ETIMEDOUT"),
    ("address already in use", ErrorKind::Errno, Some(98), "EADDRINUSE"),
    ("cannot assign requested address", ErrorKind::Errno, Some(99), "EADDRNOTAVAIL"),
];

/// .NET `SocketError` enum members (only trusted right after "SocketError").
const SOCKET_ERROR_ENUM: &[(&str, i64)] = &[
    ("ConnectionReset", 10054),
    ("ConnectionRefused", 10061),
    ("ConnectionAborted", 10053),
    ("TimedOut", 10060),
    ("AddressAlreadyInUse", 10048),
    ("HostUnreachable", 10065),
    ("NetworkReset", 10052),
    ("NotConnected", 10057),
    ("Shutdown", 10058),
    ("NoBufferSpaceAvailable", 10055),
];

/// Keywords after which a number is an error code (lower case, longest first).
const NUM_CONTEXT: &[&str] = &[
    "win32 error code",
    "nativeerrorcode",
    "socketerrorcode",
    "wsagetlasterror",
    "getlasterror",
    "win32 error",
    "socket error",
    "error code",
    "last error",
    "lasterror",
    "errorcode",
    "error_code",
    "wsaerror",
    "wsa error",
    "winerror",
    "os error",
    "errno",
    "error",
    "code",
    "err",
];

fn lookup(table: &[(i64, &'static str)], code: i64) -> Option<&'static str> {
    table.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

fn lookup_name(table: &[(i64, &'static str)], name: &str) -> Option<i64> {
    table.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
}

/// A bare number to a Winsock or Win32 identity, when it is a known code.
pub(super) fn code_to_id(code: i64) -> Option<ErrorId> {
    if let Some(n) = lookup(WINSOCK, code) {
        return Some(ErrorId::new(ErrorKind::Winsock, Some(code), n));
    }
    lookup(WIN32, code).map(|n| ErrorId::new(ErrorKind::Win32, Some(code), n))
}

pub(super) fn push_unique(v: &mut Vec<ErrorId>, id: ErrorId) {
    if let Some(e) = v.iter_mut().find(|e| e.kind == id.kind && e.name == id.name) {
        if e.code.is_none() {
            e.code = id.code;
        }
        return;
    }
    v.push(id);
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// All error identities in a text, in order of discovery, without duplicates.
pub fn extract_errors(text: &str) -> Vec<ErrorId> {
    let b = text.as_bytes();
    let mut out: Vec<ErrorId> = Vec::new();
    // Code of the first well-known message, given to a bare .NET exception name.
    let mut message_code: Option<i64> = None;

    // 1. Well-known messages.
    let lower = text.to_ascii_lowercase();
    // One pass over word starts; `str::contains` per phrase spent most time building searchers.
    let lb = lower.as_bytes();
    let mut found = [false; PHRASES.len()];
    for i in 0..lb.len() {
        let c = lb[i];
        if !c.is_ascii_lowercase() || (i > 0 && lb[i - 1].is_ascii_alphabetic()) {
            continue;
        }
        for (k, (p, ..)) in PHRASES.iter().enumerate() {
            if !found[k] && p.as_bytes()[0] == c && lb[i..].starts_with(p.as_bytes()) {
                found[k] = true;
            }
        }
    }
    for (k, (_, kind, code, name)) in PHRASES.iter().enumerate() {
        if found[k] {
            if matches!(kind, ErrorKind::Winsock | ErrorKind::Win32) && message_code.is_none() {
                message_code = *code;
            }
            push_unique(&mut out, ErrorId::new(*kind, *code, *name));
        }
    }

    // 2. Identifiers: WSAE*, ERROR_*, errno names, STATUS_*, .NET exception types, SocketError members.
    let mut i = 0;
    while i < b.len() {
        if !is_word(b[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && is_word(b[i]) {
            i += 1;
        }
        let w = &text[s..i];
        if w.len() < 4 || w.as_bytes()[0].is_ascii_digit() {
            continue;
        }
        if w.starts_with("WSAE") || w.starts_with("WSAHOST") {
            if w.bytes().all(|c| c.is_ascii_uppercase() || c == b'_') {
                push_unique(&mut out, ErrorId::new(ErrorKind::Winsock, lookup_name(WINSOCK, w), w));
            }
        } else if w.starts_with("ERROR_") && w.len() > 6 {
            // Only known names: ERROR_COUNT, ERROR_LEVEL etc. are ordinary identifiers.
            if let Some(c) = lookup_name(WIN32, w) {
                push_unique(&mut out, ErrorId::new(ErrorKind::Win32, Some(c), w));
            }
        } else if w.starts_with("STATUS_") {
            if let Some(c) = lookup_name(NTSTATUS, w) {
                push_unique(&mut out, ErrorId::new(ErrorKind::NtStatus, Some(c), w));
            }
        } else if let Some(c) = lookup_name(ERRNO, w) {
            push_unique(&mut out, ErrorId::new(ErrorKind::Errno, Some(c), w));
        } else if w.ends_with("Exception") {
            if DOTNET.contains(&w) {
                push_unique(&mut out, ErrorId::new(ErrorKind::DotNet, None, w));
            }
        } else if let Some((_, code)) = SOCKET_ERROR_ENUM.iter().find(|(n, _)| *n == w) {
            if b[s.saturating_sub(24)..s].windows(11).any(|x| x == b"SocketError") {
                if let Some(id) = code_to_id(*code) {
                    push_unique(&mut out, id);
                }
            }
        }
    }

    // 3. Hex HRESULT / NTSTATUS: 0x8xxxxxxx, 0xCxxxxxxx.
    let mut i = 0;
    while i + 10 <= b.len() {
        if b[i] == b'0' && (b[i + 1] == b'x' || b[i + 1] == b'X') && (i == 0 || !is_word(b[i - 1])) {
            let hex = &b[i + 2..i + 10];
            let after = b.get(i + 10).copied();
            if hex.iter().all(|c| c.is_ascii_hexdigit()) && !after.is_some_and(is_word) {
                if let Some(v) = std::str::from_utf8(hex).ok().and_then(|h| i64::from_str_radix(h, 16).ok()) {
                    add_hex_code(&mut out, v);
                }
                i += 10;
                continue;
            }
        }
        i += 1;
    }

    // 4. Decimal numbers in an error context, and HResult=-2147467259.
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let prev = if s > 0 { b[s - 1] } else { b' ' };
        let next = b.get(i).copied().unwrap_or(b' ');
        let next2 = b.get(i + 1).copied().unwrap_or(b' ');
        if i - s > 10 {
            continue;
        }
        let Ok(n) = text[s..i].parse::<i64>() else {
            continue;
        };
        if prev == b'-' {
            let before = lower.get(boundary_back(&lower, s - 1, 12)..s - 1).unwrap_or("");
            let before = before.trim_end_matches([' ', ':', '=']);
            if before.ends_with("hresult") && (1..=0x8000_0000).contains(&n) {
                add_hex_code(&mut out, 0x1_0000_0000 - n);
            }
            continue;
        }
        // Part of a time, address, version, path or identifier: not a code.
        let colon_after_digit = prev == b':' && s >= 2 && b[s - 2].is_ascii_digit();
        if is_word(prev) || colon_after_digit || matches!(prev, b'.' | b'/' | b'\\' | b'+' | b'$') {
            continue;
        }
        if is_word(next) || matches!(next, b':' | b'/' | b'\\' | b'-') || (next == b'.' && next2.is_ascii_digit()) {
            continue;
        }
        if prev == b'(' && next == b')' {
            if let Some(id) = code_to_id(n) {
                if id.kind == ErrorKind::Winsock || PAREN_OK_WIN32.contains(&n) {
                    push_unique(&mut out, id);
                    continue;
                }
            }
        }
        if let Some(kw) = context_keyword(&lower, s) {
            match kw {
                "errno" => {
                    let name = lookup(ERRNO, n).map(str::to_string).unwrap_or_else(|| format!("errno {n}"));
                    push_unique(&mut out, ErrorId::new(ErrorKind::Errno, Some(n), name));
                }
                _ => {
                    if let Some(id) = code_to_id(n) {
                        push_unique(&mut out, id);
                    } else if matches!(
                        kw,
                        "win32 error"
                            | "win32 error code"
                            | "winerror"
                            | "getlasterror"
                            | "lasterror"
                            | "last error"
                            | "nativeerrorcode"
                    ) && n > 0
                    {
                        if (10000..=11999).contains(&n) {
                            push_unique(&mut out, ErrorId::new(ErrorKind::Winsock, Some(n), format!("WSA error {n}")));
                        } else {
                            push_unique(&mut out, ErrorId::new(ErrorKind::Win32, Some(n), format!("Win32 error {n}")));
                        }
                    } else if matches!(kw, "socket error" | "wsa error" | "wsaerror" | "socketerrorcode")
                        && (10000..=11999).contains(&n)
                    {
                        push_unique(&mut out, ErrorId::new(ErrorKind::Winsock, Some(n), format!("WSA error {n}")));
                    }
                }
            }
        }
    }

    if let Some(code) = message_code {
        for e in out.iter_mut() {
            if e.kind == ErrorKind::DotNet
                && e.code.is_none()
                && matches!(
                    e.name.as_str(),
                    "SocketException"
                        | "IOException"
                        | "RemotingException"
                        | "WebException"
                        | "HttpRequestException"
                        | "CommunicationException"
                        | "PipeException"
                )
            {
                e.code = Some(code);
            }
        }
    }
    out
}

/// The error keyword right before the number at `pos`, e.g. "error 10054", "code: 231", "[Errno 104]".
fn context_keyword(lower: &str, pos: usize) -> Option<&'static str> {
    let before = lower.get(boundary_back(lower, pos, 40)..pos)?;
    let t = before.trim_end_matches([' ', '\t']);
    let t = t.strip_suffix([':', '=', '#']).unwrap_or(t);
    let t = t.trim_end_matches([' ', '\t']);
    // "GetLastError() = 231"
    let t = t.strip_suffix("()").unwrap_or(t);
    let t = t.trim_end_matches([' ', '\t']);
    for kw in NUM_CONTEXT {
        if let Some(rest) = t.strip_suffix(kw) {
            if rest.as_bytes().last().is_some_and(|&c| is_word(c)) {
                continue;
            }
            if *kw == "code" {
                let prev_word = rest.trim_end().rsplit(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or("");
                if matches!(
                    prev_word,
                    "exit" | "status" | "return" | "http" | "response" | "zip" | "postal" | "country" | "area"
                ) {
                    return None;
                }
            }
            return Some(kw);
        }
    }
    None
}

/// Start of a window of about `n` bytes ending at `pos`, on a char boundary.
fn boundary_back(s: &str, pos: usize, n: usize) -> usize {
    let mut a = pos.saturating_sub(n);
    while a < pos && !s.is_char_boundary(a) {
        a += 1;
    }
    a
}

fn add_hex_code(out: &mut Vec<ErrorId>, v: i64) {
    let hi = v >> 28;
    if hi == 0x8 {
        let name = lookup(HRESULTS, v).map(str::to_string).unwrap_or_else(|| format!("HRESULT 0x{v:08X}"));
        push_unique(out, ErrorId::new(ErrorKind::HResult, Some(v), name));
        // HRESULT_FROM_WIN32: facility 7 carries a Win32/Winsock code in the low word.
        if (v >> 16) & 0x1FFF == 7 {
            let w = v & 0xFFFF;
            if let Some(id) = code_to_id(w) {
                push_unique(out, id);
            }
        }
    } else if hi == 0xC {
        let name = lookup(NTSTATUS, v).map(str::to_string).unwrap_or_else(|| format!("NTSTATUS 0x{v:08X}"));
        push_unique(out, ErrorId::new(ErrorKind::NtStatus, Some(v), name));
    }
}
