//! Windows event logs (.evtx) through the `evtx` crate, reduced to what matters for
//! IPC analysis: service crashes and state changes, boots and shutdowns, application
//! crashes, .NET unhandled exceptions and Sysmon named-pipe events.
//!
//! Damaged chunks and records become warnings; the good records still come out.
//! Independent of the other ingest modules.

use std::fmt;
use std::io::{Read, Seek};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use evtx::err::EvtxError;
use evtx::EvtxParser;
use serde_json::Value;

/// EVTX layout constants, to turn chunk numbers into file offsets.
const FILE_HEADER_SIZE: u64 = 4096;
const CHUNK_SIZE: u64 = 65536;
/// Limits that keep one event small.
const MAX_FIELDS: usize = 48;
const MAX_VALUE_CHARS: usize = 1024;
const MAX_DEPTH: usize = 8;

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

/// A chunk or record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvtxWarning {
    pub chunk: Option<u64>,
    pub record_id: Option<u64>,
    pub file_offset: Option<u64>,
    pub message: String,
}

impl fmt::Display for EvtxWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = self.chunk {
            write!(f, "chunk {c}: ")?;
        }
        if let Some(r) = self.record_id {
            write!(f, "record {r}: ")?;
        }
        if let Some(o) = self.file_offset {
            write!(f, "at file offset {o:#x}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// The file could not be opened as EVTX at all.
#[derive(Debug, Clone)]
pub struct EvtxOpenError {
    pub message: String,
}

impl fmt::Display for EvtxOpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read EVTX: {}", self.message)
    }
}

impl std::error::Error for EvtxOpenError {}

/// Everything read from one file.
#[derive(Debug, Clone, Default)]
pub struct EvtxLog {
    pub events: Vec<EvtxEvent>,
    pub warnings: Vec<EvtxWarning>,
    /// Chunk count declared in the file header (the parser reads past it).
    pub chunks_declared: u64,
}

/// True when the bytes start with the EVTX file signature.
pub fn sniff(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(b"ElfFile\0")
}

/// Read a whole file into memory as events and warnings.
pub fn read_evtx_file(path: impl AsRef<Path>) -> Result<EvtxLog, EvtxOpenError> {
    let mut log = EvtxLog::default();
    let (mut ev, mut wa) = (Vec::new(), Vec::new());
    log.chunks_declared = for_each_event_in_file(path, |e| ev.push(e), |w| wa.push(w))?;
    log.events = ev;
    log.warnings = wa;
    Ok(log)
}

/// Same as [`read_evtx_file`] for bytes already in memory.
pub fn read_evtx_bytes(bytes: Vec<u8>) -> Result<EvtxLog, EvtxOpenError> {
    let (mut ev, mut wa) = (Vec::new(), Vec::new());
    let chunks_declared = for_each_event_in_bytes(bytes, |e| ev.push(e), |w| wa.push(w))?;
    Ok(EvtxLog { events: ev, warnings: wa, chunks_declared })
}

/// For streams that cannot seek (e.g. a gunzipped `.evtx.gz`): reads everything into memory first.
pub fn read_evtx_reader(mut reader: impl Read) -> Result<EvtxLog, EvtxOpenError> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|e| EvtxOpenError { message: format!("read failed: {e}") })?;
    read_evtx_bytes(bytes)
}

/// Streaming over bytes in memory; see [`for_each_event_in_file`].
pub fn for_each_event_in_bytes(
    bytes: Vec<u8>,
    mut on_event: impl FnMut(EvtxEvent),
    mut on_warning: impl FnMut(EvtxWarning),
) -> Result<u64, EvtxOpenError> {
    let parser = open_guarded(|| EvtxParser::from_buffer(bytes))?;
    let declared = u64::from(parser.header().chunk_count);
    drive(parser, &mut on_event, &mut on_warning);
    Ok(declared)
}

/// Streaming: calls `on_event` per good record and `on_warning` per damaged chunk/record, in file order.
/// Returns the header's declared chunk count.
pub fn for_each_event_in_file(
    path: impl AsRef<Path>,
    mut on_event: impl FnMut(EvtxEvent),
    mut on_warning: impl FnMut(EvtxWarning),
) -> Result<u64, EvtxOpenError> {
    let path = path.as_ref();
    let parser = open_guarded(|| EvtxParser::from_path(path))
        .map_err(|e| EvtxOpenError { message: format!("{}: {}", path.display(), e.message) })?;
    let declared = u64::from(parser.header().chunk_count);
    drive(parser, &mut on_event, &mut on_warning);
    Ok(declared)
}

fn open_guarded<T>(f: impl FnOnce() -> evtx::err::Result<T>) -> Result<T, EvtxOpenError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(EvtxOpenError { message: error_chain(&e) }),
        Err(_) => Err(EvtxOpenError { message: "the EVTX parser panicked on the file header".into() }),
    }
}

fn drive<T: Read + Seek + Send + Sync + 'static>(
    mut parser: EvtxParser<T>,
    on_event: &mut dyn FnMut(EvtxEvent),
    on_warning: &mut dyn FnMut(EvtxWarning),
) {
    // The crate is not supposed to panic, but a damaged file must not take the tool down.
    let res = catch_unwind(AssertUnwindSafe(|| {
        for rec in parser.records_json_value() {
            match rec {
                Ok(r) => {
                    let ts = i64::try_from(r.timestamp.as_nanosecond()).unwrap_or(0);
                    match event_from_json(&r.data, r.event_record_id, ts) {
                        Ok(ev) => on_event(ev),
                        Err(msg) => on_warning(EvtxWarning {
                            chunk: None,
                            record_id: Some(r.event_record_id),
                            file_offset: None,
                            message: msg,
                        }),
                    }
                }
                Err(e) => on_warning(warning_from_error(&e)),
            }
        }
    }));
    if res.is_err() {
        on_warning(EvtxWarning {
            chunk: None,
            record_id: None,
            file_offset: None,
            message: "the EVTX parser panicked; the rest of the file was skipped".into(),
        });
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    let mut depth = 0;
    while let Some(inner) = src {
        if depth >= 6 {
            break;
        }
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
        depth += 1;
    }
    s
}

fn warning_from_error(e: &EvtxError) -> EvtxWarning {
    let message = error_chain(e);
    match e {
        EvtxError::FailedToParseChunk { chunk_id, .. } => EvtxWarning {
            chunk: Some(*chunk_id),
            record_id: None,
            file_offset: chunk_id.checked_mul(CHUNK_SIZE).and_then(|o| o.checked_add(FILE_HEADER_SIZE)),
            message,
        },
        EvtxError::FailedToParseRecord { record_id, .. } => {
            EvtxWarning { chunk: None, record_id: Some(*record_id), file_offset: None, message }
        }
        EvtxError::FailedToReadRecordAt { chunk, offset, .. } => EvtxWarning {
            chunk: *chunk,
            record_id: None,
            file_offset: chunk
                .and_then(|c| c.checked_mul(CHUNK_SIZE))
                .and_then(|o| o.checked_add(FILE_HEADER_SIZE))
                .and_then(|o| o.checked_add(*offset)),
            message,
        },
        _ => EvtxWarning { chunk: None, record_id: None, file_offset: None, message },
    }
}

// ---------------------------------------------------------------------------
// JSON record -> event

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(o) => o.get("#text").and_then(as_text),
        Value::Null => Some(String::new()),
        Value::Array(_) => None,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(o) => o.get("#text").and_then(as_u64),
        _ => None,
    }
}

fn attr<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get("#attributes").and_then(|a| a.get(name))
}

fn cap(mut s: String) -> String {
    if s.len() > MAX_VALUE_CHARS {
        let mut cut = MAX_VALUE_CHARS;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn flatten(v: &Value, key: &str, depth: usize, out: &mut Vec<(String, String)>) {
    if out.len() >= MAX_FIELDS || depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(o) => {
            for (k, vv) in o {
                match k.as_str() {
                    "#attributes" | "Binary" => {}
                    "#text" => flatten(vv, key, depth + 1, out),
                    _ => flatten(vv, k, depth + 1, out),
                }
            }
        }
        Value::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                flatten(item, &format!("{key}[{i}]"), depth + 1, out);
            }
        }
        other => {
            let name = if key == "Data" { "Data[0]".to_string() } else { key.to_string() };
            if let Some(t) = as_text(other) {
                out.push((name, cap(t)));
            }
        }
    }
}

/// Build an event from one record rendered by `records_json_value` (`{"Event": {...}}`).
/// `header_record_id`/`header_time_ns` are used when System lacks them. Public so callers
/// and tests can classify records from other sources.
pub fn event_from_json(data: &Value, header_record_id: u64, header_time_ns: i64) -> Result<EvtxEvent, String> {
    let ev = data.get("Event").unwrap_or(data);
    let sys = ev.get("System").ok_or_else(|| "record has no System element".to_string())?;
    let provider = sys
        .get("Provider")
        .and_then(|p| attr(p, "Name").or_else(|| attr(p, "EventSourceName")))
        .and_then(as_text)
        .unwrap_or_default();
    let event_id = sys
        .get("EventID")
        .and_then(as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| "record has no EventID".to_string())?;
    let record_id = sys.get("EventRecordID").and_then(as_u64).unwrap_or(header_record_id);
    let time_utc_ns = sys
        .get("TimeCreated")
        .and_then(|t| attr(t, "SystemTime"))
        .and_then(Value::as_str)
        .and_then(parse_utc_ns)
        .unwrap_or(header_time_ns);
    let level = sys.get("Level").and_then(as_u64).and_then(|l| u8::try_from(l).ok());
    let channel = sys.get("Channel").and_then(as_text).unwrap_or_default();
    let computer = sys.get("Computer").and_then(as_text).unwrap_or_default();

    let mut fields = Vec::new();
    for part in ["EventData", "UserData"] {
        if let Some(p) = ev.get(part) {
            flatten(p, part, 0, &mut fields);
        }
    }
    let binary = ev.get("EventData").and_then(|d| d.get("Binary")).and_then(Value::as_str).unwrap_or("");
    let kind = classify(&provider, event_id, &fields, binary);
    let message = summarize(&provider, event_id, &kind, &fields);
    Ok(EvtxEvent { record_id, time_utc_ns, provider, event_id, level, channel, computer, kind, fields, message })
}

fn get<'a>(fields: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()))
}

fn get_s(fields: &[(String, String)], names: &[&str]) -> String {
    get(fields, names).unwrap_or("").to_string()
}

/// Decimal or `0x` hex.
fn parse_num(s: &str) -> Option<u64> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

fn classify(provider: &str, id: u32, f: &[(String, String)], binary: &str) -> EvtxKind {
    match (provider, id) {
        ("Service Control Manager", 7031 | 7034) => {
            EvtxKind::ServiceCrashed { service: get_s(f, &["param1", "Data[0]"]), event_id: id }
        }
        ("Service Control Manager", 7036) => {
            let service = get_s(f, &["param1", "Data[0]"]);
            let raw_state = get_s(f, &["param2", "Data[1]"]);
            let mut state = ServiceState::parse(&raw_state);
            if state == ServiceState::Unknown {
                // The binary data holds "ServiceKey/N" in UTF-16LE; N is the numeric state.
                if let Some(n) = decode_utf16_hex(binary).and_then(|s| s.rsplit('/').next().map(str::to_string)) {
                    state = ServiceState::parse(&n);
                }
            }
            EvtxKind::ServiceState { service, state, raw_state }
        }
        ("EventLog", 6005) => EvtxKind::EventLogStarted,
        ("EventLog", 6006) => EvtxKind::EventLogStopped,
        ("EventLog", 6008) => {
            let t = get(f, &["Data[0]"]).unwrap_or("");
            let d = get(f, &["Data[1]"]).unwrap_or("");
            EvtxKind::UnexpectedShutdown { previous_shutdown: format!("{t} {d}").trim().to_string() }
        }
        ("Microsoft-Windows-Kernel-General", 12) => {
            EvtxKind::OsStarted { start_time_ns: get(f, &["StartTime"]).and_then(parse_utc_ns) }
        }
        ("Microsoft-Windows-Kernel-General", 13) => {
            EvtxKind::OsStopped { stop_time_ns: get(f, &["StopTime"]).and_then(parse_utc_ns) }
        }
        ("Application Error", 1000) => {
            let code = get(f, &["ExceptionCode", "Data[6]"]).and_then(|s| {
                let t = s.trim();
                let h = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
                u32::from_str_radix(h, 16).ok()
            });
            EvtxKind::AppCrash {
                app: get_s(f, &["AppName", "Data[0]"]),
                module: get_s(f, &["ModuleName", "Data[3]"]),
                exception_code: code,
                process_id: get(f, &["ProcessId", "Data[8]"]).and_then(parse_num).and_then(|v| u32::try_from(v).ok()),
                app_path: get_s(f, &["AppPath", "Data[10]"]),
            }
        }
        (".NET Runtime", 1026) => {
            let text = get(f, &["Data[0]", "Data"]).unwrap_or("");
            let mut app = String::new();
            let mut exception = String::new();
            for line in text.lines() {
                let l = line.trim();
                if let Some(v) = l.strip_prefix("Application:") {
                    app = v.trim().to_string();
                } else if let Some(v) = l.strip_prefix("Exception Info:") {
                    if exception.is_empty() {
                        exception = v.trim().to_string();
                    }
                }
            }
            EvtxKind::DotNetUnhandled { app, exception }
        }
        ("Microsoft-Windows-Sysmon", 17 | 18) => {
            let utc_time = get_s(f, &["UtcTime"]);
            let p = PipeEvent {
                pipe_name: get_s(f, &["PipeName"]),
                image: get_s(f, &["Image"]),
                process_id: get(f, &["ProcessId"]).and_then(parse_num).and_then(|v| u32::try_from(v).ok()),
                event_type: get_s(f, &["EventType"]),
                utc_time_ns: parse_utc_ns(&utc_time),
                utc_time,
            };
            if id == 17 {
                EvtxKind::PipeCreated(p)
            } else {
                EvtxKind::PipeConnected(p)
            }
        }
        ("Microsoft-Windows-Sysmon", 3) => {
            let addr = |ip: &str, port: &str| {
                let ip: std::net::IpAddr = get(f, &[ip])?.trim().parse().ok()?;
                let port = get(f, &[port]).and_then(parse_num).and_then(|v| u16::try_from(v).ok())?;
                Some(std::net::SocketAddr::new(ip, port))
            };
            EvtxKind::NetworkConnect(NetworkConnect {
                image: get_s(f, &["Image"]),
                process_id: get(f, &["ProcessId"]).and_then(parse_num).and_then(|v| u32::try_from(v).ok()),
                protocol: get_s(f, &["Protocol"]).to_ascii_lowercase(),
                initiated: get(f, &["Initiated"]).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
                source: addr("SourceIp", "SourcePort"),
                destination: addr("DestinationIp", "DestinationPort"),
                utc_time_ns: get(f, &["UtcTime"]).and_then(parse_utc_ns),
            })
        }
        _ => EvtxKind::Other,
    }
}

/// `tcp 10.0.0.5:50000 -> 10.0.0.9:443 opened by C:\x.exe (pid 7)`.
pub fn network_connect_text(n: &NetworkConnect) -> String {
    let a = |x: Option<std::net::SocketAddr>| x.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
    format!(
        "{} {} -> {} {} by {} (pid {})",
        n.protocol,
        a(n.source),
        a(n.destination),
        if n.initiated { "opened" } else { "accepted" },
        n.image,
        n.process_id.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
    )
}

fn summarize(provider: &str, id: u32, kind: &EvtxKind, f: &[(String, String)]) -> String {
    match kind {
        EvtxKind::ServiceCrashed { service, .. } => {
            format!("service {service:?} terminated unexpectedly ({provider} {id})")
        }
        EvtxKind::ServiceState { service, state, .. } => {
            format!("service {service:?} entered the {} state", state.name())
        }
        EvtxKind::EventLogStarted => "event log service started (boot)".into(),
        EvtxKind::EventLogStopped => "event log service stopped (clean shutdown)".into(),
        EvtxKind::UnexpectedShutdown { previous_shutdown } => {
            format!("previous shutdown at {previous_shutdown} was unexpected")
        }
        EvtxKind::OsStarted { .. } => "operating system started".into(),
        EvtxKind::OsStopped { .. } => "operating system is shutting down".into(),
        EvtxKind::AppCrash { app, module, exception_code, process_id, .. } => format!(
            "application {app} crashed in {module}, exception {}, pid {}",
            exception_code.map_or("?".to_string(), |c| format!("0x{c:08x}")),
            process_id.map_or("?".to_string(), |p| p.to_string())
        ),
        EvtxKind::DotNetUnhandled { app, exception } => {
            format!("{app} died of unhandled .NET exception {exception}")
        }
        EvtxKind::PipeCreated(p) => format!("pipe {} created by {} (pid {})", p.pipe_name, p.image, opt(p.process_id)),
        EvtxKind::PipeConnected(p) => {
            format!("pipe {} connected by {} (pid {})", p.pipe_name, p.image, opt(p.process_id))
        }
        EvtxKind::NetworkConnect(n) => network_connect_text(n),
        EvtxKind::Other => {
            let mut s = format!("{provider} {id}");
            for (i, (k, v)) in f.iter().take(6).enumerate() {
                s.push_str(if i == 0 { ": " } else { ", " });
                s.push_str(k);
                s.push('=');
                s.extend(v.chars().take(80));
            }
            s
        }
    }
}

fn opt(v: Option<u32>) -> String {
    v.map_or("?".to_string(), |p| p.to_string())
}

fn decode_utf16_hex(hex: &str) -> Option<String> {
    let b = hex.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return None;
    }
    let mut units = Vec::with_capacity(b.len() / 4);
    for q in b.chunks(4) {
        let s = std::str::from_utf8(q).ok()?;
        let v = u16::from_str_radix(s, 16).ok()?;
        units.push(v.swap_bytes());
    }
    while units.last() == Some(&0) {
        units.pop();
    }
    Some(String::from_utf16_lossy(&units))
}

// ---------------------------------------------------------------------------
// Time

/// `YYYY-MM-DD[T ]HH:MM:SS[.fffffff][Z]` as UTC ns since the Unix epoch.
pub fn parse_utc_ns(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b' ')) {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut frac: i64 = 0;
    let mut i = 19;
    if matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        let mut n = 0;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if n < 9 {
                frac = frac * 10 + i64::from(c - b'0');
                n += 1;
            }
            i += 1;
        }
        while n < 9 {
            frac *= 10;
            n += 1;
        }
    }
    match b.get(i) {
        None | Some(b'Z' | b'z') => {}
        _ => return None,
    }
    let secs = crate::model::days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + sec;
    secs.checked_mul(1_000_000_000)?.checked_add(frac)
}
