//! Text logs and Windows event logs into the analysis. Only error and warning lines are kept
//! (with their written time); the clock offset is settled later by `analysis::correlate`.

use std::io::BufRead;
use std::path::Path;

use crate::analysis::inputs::{EventLogStats, FormatStats, TextLogStats};
use crate::analysis::logs::{LogEvent, LogFile, SystemEvent, SystemEventKind};
use crate::analysis::pipes::{PipeAnalyzer, PipeSeen, PipeSource};
use crate::analysis::{Analysis, InputSummary};
use crate::ingest::evtx::{for_each_event_in_file, read_evtx_reader, EvtxEvent};
use crate::ingest::textlog::TextLogReader;
use crate::model::Severity;

/// More error/warning lines than this per log are counted but not kept.
pub const MAX_EVENTS_PER_LOG: usize = 1_000_000;
/// Longest text kept per line in `log_events.csv`.
const MAX_TEXT: usize = 400;

pub(super) fn read_text_log(
    input: u32,
    reader: Box<dyn BufRead + Send>,
    path: &Path,
    analysis: &mut Analysis,
    summary: &mut InputSummary,
    tick: &dyn Fn() -> bool,
) {
    let mut rd = TextLogReader::new(reader);
    let mut file = LogFile { input, path: path.display().to_string(), offset_source: "none", ..Default::default() };
    let mut kept = 0usize;
    let (mut first, mut last): (Option<i64>, Option<i64>) = (None, None);
    while let Some(line) = rd.next() {
        file.lines += 1;
        if file.lines % 65_536 == 0 && !tick() {
            summary.error = Some("loading was cancelled".into());
            break;
        }
        if let Some(t) = line.ts_utc_ns(0.0) {
            first = Some(first.map_or(t, |f| f.min(t)));
            last = Some(last.map_or(t, |l| l.max(t)));
        }
        let severity = match line.severity {
            s @ (Severity::Error | Severity::Warning) => s,
            // Lines without a level still count when they carry an error identity.
            _ if !line.errors.is_empty() => Severity::Error,
            _ => continue,
        };
        file.errors += 1;
        if kept >= MAX_EVENTS_PER_LOG {
            continue;
        }
        kept += 1;
        let first_line = line.text.lines().next().unwrap_or("");
        let mut text: String = first_line.chars().take(MAX_TEXT).collect();
        if text.len() < first_line.len() {
            text.push('…');
        }
        analysis.log_events.push(LogEvent {
            input,
            line: line.line_no,
            written_ts: line.ts_local_ns,
            zone_offset_s: line.zone_offset_s,
            ts: None,
            severity,
            errors: line
                .errors
                .iter()
                .map(|e| match e.code {
                    Some(c) => format!("{}({c})", e.name),
                    None => e.name.clone(),
                })
                .collect(),
            codes: line.errors.iter().filter_map(|e| e.code).collect(),
            text,
            finding: None,
        });
    }
    if let Some(e) = rd.io_error() {
        summary.error = Some(format!("{} (after line {})", e.in_input(path), file.lines));
    }
    file.format = rd.format().map(|f| f.name().to_string()).unwrap_or_default();
    summary.packets = 0;
    summary.first_ts = first;
    summary.last_ts = last;
    summary.extra = FormatStats::TextLog(TextLogStats { lines: file.lines, log_format: file.format.clone() });
    analysis.logs.push(file);
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
}

fn system_event(input: u32, e: &EvtxEvent) -> Option<SystemEvent> {
    use crate::ingest::evtx::EvtxKind::*;
    use SystemEventKind as K;
    let (kind, summary) = match &e.kind {
        Other => return None,
        ServiceCrashed { service, .. } => (K::ServiceCrashed, format!("service {service} terminated unexpectedly")),
        ServiceState { service, state, .. } => {
            (K::ServiceState(*state), format!("service {service} entered the {} state", state.name()))
        }
        EventLogStarted => (K::EventLogStarted, "event log service started (system boot)".into()),
        EventLogStopped => (K::EventLogStopped, "event log service stopped (shutdown)".into()),
        UnexpectedShutdown { .. } => (K::UnexpectedShutdown, "the previous system shutdown was unexpected".into()),
        OsStarted { .. } => (K::OsStarted, "operating system started".into()),
        OsStopped { .. } => (K::OsStopped, "operating system shutting down".into()),
        AppCrash { app, module, exception_code, process_id, .. } => (
            K::AppCrash,
            format!(
                "{app} crashed in {module} (exception {}, pid {})",
                exception_code.map(|c| format!("{c:#010x}")).unwrap_or_else(|| "?".into()),
                pid_text(*process_id)
            ),
        ),
        DotNetUnhandled { app, exception } => {
            (K::DotNetUnhandled, format!("{app}: unhandled .NET exception {exception}"))
        }
        PipeCreated(p) => {
            (K::PipeCreated, format!("pipe {} created by {} (pid {})", p.pipe_name, p.image, pid_text(p.process_id)))
        }
        PipeConnected(p) => (
            K::PipeConnected,
            format!("pipe {} connected by {} (pid {})", p.pipe_name, p.image, pid_text(p.process_id)),
        ),
        NetworkConnect(n) => (K::NetworkConnect, crate::ingest::evtx::network_connect_text(n)),
    };
    Some(SystemEvent {
        input,
        record_id: e.record_id,
        ts: e.time_utc_ns,
        provider: e.provider.clone(),
        event_id: e.event_id,
        kind,
        summary,
    })
}

pub(super) fn read_evtx(
    input: u32,
    reader: Box<dyn BufRead + Send>,
    in_memory: bool,
    path: &Path,
    analysis: &mut Analysis,
    summary: &mut InputSummary,
) {
    let mut records = 0u64;
    let (mut first, mut last): (Option<i64>, Option<i64>) = (None, None);
    let mut warnings: Vec<String> = Vec::new();
    let mut sysmon_pipes = PipeAnalyzer::opens_only(input, PipeSource::Sysmon);
    let mut on_event = |e: EvtxEvent| {
        records += 1;
        first = Some(first.map_or(e.time_utc_ns, |f| f.min(e.time_utc_ns)));
        last = Some(last.map_or(e.time_utc_ns, |l| l.max(e.time_utc_ns)));
        add_sysmon_pipe(&e, &mut sysmon_pipes);
        if let Some(o) = sysmon_socket_owner(input, &e) {
            if analysis.socket_owners.len() < super::etl::MAX_SOCKET_OWNERS {
                analysis.socket_owners.push(o);
            }
        }
        if let Some(s) = system_event(input, &e) {
            analysis.system_events.push(s);
        }
    };
    // The evtx crate reads by path (seekable); a .gz event log is inflated into memory first.
    let opened = if in_memory {
        read_evtx_reader(reader).map(|log| {
            log.events.into_iter().for_each(&mut on_event);
            warnings.extend(log.warnings.iter().map(|w| w.to_string()));
        })
    } else {
        drop(reader);
        for_each_event_in_file(path, &mut on_event, |w| warnings.push(w.to_string())).map(|_| ())
    };
    if let Err(e) = opened {
        summary.error = Some(e.in_input(path));
    } else if let Some(w) = warnings.first() {
        summary.error =
            Some(format!("{}: {} damaged chunk(s) or record(s) skipped; first: {w}", path.display(), warnings.len()));
    }
    summary.extra = FormatStats::EventLog(EventLogStats { records });
    summary.first_ts = first;
    summary.last_ts = last;
    analysis.pipes.extend(sysmon_pipes.finish().0);
}

/// Sysmon 3 (NetworkConnect, TCP): the process behind a connection, for `analysis::attribution`.
fn sysmon_socket_owner(input: u32, e: &EvtxEvent) -> Option<crate::model::SocketOwner> {
    let crate::ingest::evtx::EvtxKind::NetworkConnect(n) = &e.kind else { return None };
    if n.protocol != "tcp" {
        return None;
    }
    let (l, r) = n.local_remote()?;
    let ep = |a: std::net::SocketAddr| crate::model::Endpoint { ip: a.ip(), port: a.port() };
    Some(crate::model::SocketOwner {
        input,
        record: e.record_id,
        // UtcTime is when Sysmon saw the connection; TimeCreated can trail it by seconds.
        ts: n.utc_time_ns.unwrap_or(e.time_utc_ns),
        local: ep(l),
        remote: ep(r),
        pid: n.process_id?,
        process: n.process_name().map(str::to_string),
        op: if n.initiated { crate::model::SocketOp::Connect } else { crate::model::SocketOp::Accept },
    })
}

/// Sysmon 17 (PipeCreated: a server creates an instance) and 18 (PipeConnected: a client opens
/// it) into the pipe analyzer, one `Pipe` per name and event log. Sysmon sees only successful
/// operations and no closes, so these pipes count opens, never failures or handles.
fn add_sysmon_pipe(e: &EvtxEvent, pipes: &mut PipeAnalyzer) {
    use crate::ingest::evtx::EvtxKind;
    let (p, created) = match &e.kind {
        EvtxKind::PipeCreated(p) => (p, true),
        EvtxKind::PipeConnected(p) => (p, false),
        _ => return,
    };
    pipes.seen(&PipeSeen {
        name: p.pipe_name.strip_prefix('\\').unwrap_or(&p.pipe_name),
        ts: p.utc_time_ns.unwrap_or(e.time_utc_ns),
        record: e.record_id,
        pid: p.process_id,
        server_instance: created,
    });
}
