//! Findings: their kind, severity, evidence and the log lines they explain.

use std::fmt;

use super::UtcNs;

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
