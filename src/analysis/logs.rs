//! Application log lines and Windows events on the analysis clock.

use crate::ingest::evtx::ServiceState;
use crate::model::{Severity, UtcNs};

/// One text log file as read.
#[derive(Clone, Debug, Default)]
pub struct LogFile {
    pub input: u32,
    pub path: String,
    /// Timestamp format detected (`iso8601`, `iis_w3c`, …), empty when none was found.
    pub format: String,
    pub lines: u64,
    /// Error and warning lines.
    pub errors: u64,
    /// The log's clock minus UTC, seconds (UTC+01:00 with a clock 0.8 s fast: 3600.8).
    pub offset_s: f64,
    /// `user`, `estimated` or `none`.
    pub offset_source: &'static str,
    /// 0..1: how well the estimated offset lines the errors up with network/pipe evidence.
    pub confidence: f64,
    /// Error lines with no network or pipe evidence around them.
    pub unexplained_errors: u64,
    /// Error lines the clock alignment explained (a raw event of their identity shortly before).
    pub matched_lines: u64,
    /// Lag of matched lines behind their events, per error identity.
    pub lags: Vec<LagStats>,
    /// Why the alignment is weak or was rejected, empty when it is sound.
    pub note: String,
}

/// How long after its event the lines of one error identity were written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LagStats {
    /// `10054`, `10061`, `231`, …
    pub identity: &'static str,
    pub lines: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// An error or warning line of a text log, on the analysis clock.
#[derive(Clone, Debug)]
pub struct LogEvent {
    pub input: u32,
    /// 1-based line number of the record's first line.
    pub line: u64,
    /// The time as written (read as if UTC), before the offset is applied.
    pub written_ts: Option<UtcNs>,
    /// The line's own zone offset, when it carries one (seconds).
    pub zone_offset_s: Option<i32>,
    /// Corrected UTC time.
    pub ts: Option<UtcNs>,
    /// Error or warning.
    pub severity: Severity,
    /// Error identities, e.g. `WSAECONNRESET(10054)`.
    pub errors: Vec<String>,
    /// Windows/Winsock/Win32 codes of the errors, for matching.
    pub codes: Vec<i64>,
    /// First line of the record (capped).
    pub text: String,
    /// Id of the finding this line was linked to.
    pub finding: Option<u64>,
}

/// A Windows event-log record that matters for the timeline (service crashes, state changes,
/// shutdowns, application errors, Sysmon pipe events).
#[derive(Clone, Debug)]
pub struct SystemEvent {
    pub input: u32,
    pub record_id: u64,
    pub ts: UtcNs,
    pub provider: String,
    pub event_id: u32,
    pub kind: SystemEventKind,
    pub summary: String,
}

/// What a Windows event-log, ETW or Process Monitor record on the timeline says happened. Typed to
/// the end; `name()` is the public string (summary.json `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemEventKind {
    /// Service Control Manager 7031/7034.
    ServiceCrashed,
    /// Service Control Manager 7036, with the state entered.
    ServiceState(ServiceState),
    EventLogStarted,
    EventLogStopped,
    UnexpectedShutdown,
    OsStarted,
    OsStopped,
    /// Application Error 1000.
    AppCrash,
    /// .NET Runtime 1026.
    DotNetUnhandled,
    /// Sysmon 17.
    PipeCreated,
    /// Sysmon 18.
    PipeConnected,
    /// Sysmon 3.
    NetworkConnect,
    /// Microsoft-Windows-TCPIP and classic Kernel TcpIp events.
    TcpipAccept,
    TcpipConnect,
    TcpipConnectFailed,
    TcpipAbort,
    TcpipDisconnect,
    TcpipConnectTimeout,
    TcpipRetransmitTimeout,
    TcpipKeepaliveTimeout,
    TcpipDisconnectTimeout,
    TcpipReconnect,
    TcpipRetransmit,
    /// Process Monitor TCP operations.
    ProcmonTcpConnect,
    ProcmonTcpAccept,
    ProcmonTcpDisconnect,
    ProcmonTcpReconnect,
    ProcmonTcpRetransmit,
}

impl SystemEventKind {
    pub fn name(self) -> &'static str {
        use SystemEventKind::*;
        match self {
            ServiceCrashed => "service_crashed",
            ServiceState(_) => "service_state",
            EventLogStarted => "eventlog_started",
            EventLogStopped => "eventlog_stopped",
            UnexpectedShutdown => "unexpected_shutdown",
            OsStarted => "os_started",
            OsStopped => "os_stopped",
            AppCrash => "app_crash",
            DotNetUnhandled => "dotnet_unhandled",
            PipeCreated => "pipe_created",
            PipeConnected => "pipe_connected",
            NetworkConnect => "network_connect",
            TcpipAccept => "tcpip_accept",
            TcpipConnect => "tcpip_connect",
            TcpipConnectFailed => "tcpip_connect_failed",
            TcpipAbort => "tcpip_abort",
            TcpipDisconnect => "tcpip_disconnect",
            TcpipConnectTimeout => "tcpip_connect_timeout",
            TcpipRetransmitTimeout => "tcpip_retransmit_timeout",
            TcpipKeepaliveTimeout => "tcpip_keepalive_timeout",
            TcpipDisconnectTimeout => "tcpip_disconnect_timeout",
            TcpipReconnect => "tcpip_reconnect",
            TcpipRetransmit => "tcpip_retransmit",
            ProcmonTcpConnect => "procmon_tcp_connect",
            ProcmonTcpAccept => "procmon_tcp_accept",
            ProcmonTcpDisconnect => "procmon_tcp_disconnect",
            ProcmonTcpReconnect => "procmon_tcp_reconnect",
            ProcmonTcpRetransmit => "procmon_tcp_retransmit",
        }
    }

    /// A process or the host stopped: a crash, an unhandled exception, a shutdown, a service that
    /// entered the stopped state.
    pub fn is_stop(self) -> bool {
        use SystemEventKind::*;
        matches!(
            self,
            ServiceCrashed
                | AppCrash
                | DotNetUnhandled
                | UnexpectedShutdown
                | OsStopped
                | EventLogStopped
                | ServiceState(crate::ingest::evtx::ServiceState::Stopped)
        )
    }

    /// A Sysmon pipe event.
    pub fn is_pipe(self) -> bool {
        matches!(self, SystemEventKind::PipeCreated | SystemEventKind::PipeConnected)
    }
}

impl std::fmt::Display for SystemEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
