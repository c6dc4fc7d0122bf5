//! What an event-log record is reduced to: its System fields and a classified kind.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceState {
    Running,
    Stopped,
    StartPending,
    StopPending,
    Paused,
    PausePending,
    ContinuePending,
    Unknown,
}

impl ServiceState {
    /// From the text in 7036's param2 (English) or the numeric state in its binary data.
    pub fn parse(s: &str) -> ServiceState {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "running" | "4" => ServiceState::Running,
            "stopped" | "1" => ServiceState::Stopped,
            "start pending" | "starting" | "2" => ServiceState::StartPending,
            "stop pending" | "stopping" | "3" => ServiceState::StopPending,
            "paused" | "7" => ServiceState::Paused,
            "pause pending" | "6" => ServiceState::PausePending,
            "continue pending" | "5" => ServiceState::ContinuePending,
            _ => ServiceState::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ServiceState::Running => "running",
            ServiceState::Stopped => "stopped",
            ServiceState::StartPending => "start_pending",
            ServiceState::StopPending => "stop_pending",
            ServiceState::Paused => "paused",
            ServiceState::PausePending => "pause_pending",
            ServiceState::ContinuePending => "continue_pending",
            ServiceState::Unknown => "unknown",
        }
    }
}

/// Sysmon 17/18 payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeEvent {
    pub pipe_name: String,
    pub image: String,
    pub process_id: Option<u32>,
    /// `CreatePipe` / `ConnectPipe`.
    pub event_type: String,
    /// Sysmon's `UtcTime`, verbatim (`YYYY-MM-DD HH:MM:SS.mmm`).
    pub utc_time: String,
    pub utc_time_ns: Option<i64>,
}

/// Sysmon 3 (NetworkConnect) payload: one TCP/UDP connection and the process behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConnect {
    pub image: String,
    pub process_id: Option<u32>,
    /// `tcp` / `udp`.
    pub protocol: String,
    /// The process opened the connection (Source is then its end); else it accepted it.
    pub initiated: bool,
    pub source: Option<std::net::SocketAddr>,
    pub destination: Option<std::net::SocketAddr>,
    pub utc_time_ns: Option<i64>,
}

impl NetworkConnect {
    /// (local, remote): Sysmon names the initiator Source, so an accepted connection's local
    /// end is the Destination.
    pub fn local_remote(&self) -> Option<(std::net::SocketAddr, std::net::SocketAddr)> {
        let (s, d) = (self.source?, self.destination?);
        Some(if self.initiated { (s, d) } else { (d, s) })
    }
    /// `svchost.exe` from `C:\Windows\System32\svchost.exe`.
    pub fn process_name(&self) -> Option<&str> {
        self.image.rsplit(['\\', '/']).next().filter(|n| !n.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvtxKind {
    /// Service Control Manager 7031 (terminated unexpectedly, recovery follows) / 7034 (terminated unexpectedly).
    ServiceCrashed {
        service: String,
        event_id: u32,
    },
    /// Service Control Manager 7036.
    ServiceState {
        service: String,
        state: ServiceState,
        raw_state: String,
    },
    /// EventLog 6005.
    EventLogStarted,
    /// EventLog 6006.
    EventLogStopped,
    /// EventLog 6008; `previous_shutdown` as the event words it (time and date, local).
    UnexpectedShutdown {
        previous_shutdown: String,
    },
    /// Kernel-General 12.
    OsStarted {
        start_time_ns: Option<i64>,
    },
    /// Kernel-General 13.
    OsStopped {
        stop_time_ns: Option<i64>,
    },
    /// Application Error 1000.
    AppCrash {
        app: String,
        module: String,
        exception_code: Option<u32>,
        process_id: Option<u32>,
        app_path: String,
    },
    /// .NET Runtime 1026.
    DotNetUnhandled {
        app: String,
        exception: String,
    },
    /// Sysmon 17.
    PipeCreated(PipeEvent),
    /// Sysmon 18.
    PipeConnected(PipeEvent),
    /// Sysmon 3.
    NetworkConnect(NetworkConnect),
    Other,
}

impl EvtxKind {
    /// Stable name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            EvtxKind::ServiceCrashed { .. } => "service_crashed",
            EvtxKind::ServiceState { .. } => "service_state",
            EvtxKind::EventLogStarted => "eventlog_started",
            EvtxKind::EventLogStopped => "eventlog_stopped",
            EvtxKind::UnexpectedShutdown { .. } => "unexpected_shutdown",
            EvtxKind::OsStarted { .. } => "os_started",
            EvtxKind::OsStopped { .. } => "os_stopped",
            EvtxKind::AppCrash { .. } => "app_crash",
            EvtxKind::DotNetUnhandled { .. } => "dotnet_unhandled",
            EvtxKind::PipeCreated(_) => "pipe_created",
            EvtxKind::PipeConnected(_) => "pipe_connected",
            EvtxKind::NetworkConnect(_) => "network_connect",
            EvtxKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvtxEvent {
    /// System/EventRecordID (falls back to the record header's id).
    pub record_id: u64,
    /// System/TimeCreated (falls back to the record header's time).
    pub time_utc_ns: i64,
    /// System/Provider/@Name.
    pub provider: String,
    /// EventID without Qualifiers.
    pub event_id: u32,
    pub level: Option<u8>,
    pub channel: String,
    pub computer: String,
    pub kind: EvtxKind,
    /// EventData/UserData flattened (positional `<Data>` as `Data[i]`), capped.
    pub fields: Vec<(String, String)>,
    /// One-line human summary.
    pub message: String,
}

impl EvtxEvent {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}
