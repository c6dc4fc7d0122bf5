//! A record's JSON (as the `evtx` crate renders it) into an `EvtxEvent`: System fields, flattened
//! EventData, and the kinds that matter for IPC analysis.

use serde_json::Value;

use super::{EvtxEvent, EvtxKind, NetworkConnect, PipeEvent, ServiceState};

/// Limits that keep one event small.
const MAX_FIELDS: usize = 48;
const MAX_VALUE_CHARS: usize = 1024;
const MAX_DEPTH: usize = 8;

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
