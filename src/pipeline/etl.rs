//! ETL traces into the analysis: record counts and header facts for the summary, named pipes
//! from file-I/O events, TCP from NDIS packet-capture events, TCPIP events on the timeline.

use std::io::BufRead;
use std::path::Path;

use crate::analysis::logs::SystemEvent;
use crate::analysis::pipes::PipeAnalyzer;
use crate::analysis::tcp::TcpAnalyzer;
use crate::analysis::{Analysis, InputSummary};
use crate::ingest::decode::{decode_frame, linktype};
use crate::ingest::etl::{
    decode_classic_tcpip, decode_file_event, decode_ndis_fragment, decode_tcpip, filetime_to_unix_ns, EtlReader,
    FrameAssembler, TcpIpOp, TcpipTcbEvent, TcpipTcbEventKind, DEFAULT_MERGE_WINDOW,
};

/// TCPIP events kept per trace for the timeline (a busy server logs millions).
pub const MAX_TCPIP_EVENTS: usize = 10_000;

fn ns(ft: i64) -> i64 {
    filetime_to_unix_ns(ft) as i64
}

/// Reads one trace in time order. `tick` is called now and then and returns false to cancel.
pub(super) fn read_etl(
    input: u32,
    reader: Box<dyn BufRead + Send>,
    path: &Path,
    analysis: &mut Analysis,
    next_conn_id: &mut u64,
    summary: &mut InputSummary,
    tick: &dyn Fn() -> bool,
) {
    let etl = match EtlReader::new(reader) {
        Ok(r) => r,
        Err(e) => {
            summary.error = Some(format!("{}: damaged {e}", path.display()));
            return;
        }
    };
    if let Some(h) = etl.logfile_header() {
        let facts = serde_json::json!({
            "pointer_size": h.pointer_size,
            "clock_type": h.clock_type,
            "perf_freq": h.perf_freq,
            "number_of_processors": h.number_of_processors,
            "logger_name": h.logger_name,
            "buffer_size": h.buffer_size,
            "os_build": h.provider_version,
        });
        summary.extra.insert("logfile_header".into(), facts);
    }
    let mut pipes = PipeAnalyzer::new(input);
    let mut tcp = TcpAnalyzer::new(*next_conn_id);
    let mut assembler = FrameAssembler::default();
    let mut frames = 0u64;
    let mut frame_bytes = 0u64;
    let mut tcpip_events = 0u64;
    let mut system_events: Vec<SystemEvent> = Vec::new();
    let mut records = 0u64;
    let (mut first, mut last): (Option<i64>, Option<i64>) = (None, None);
    for (n, item) in etl.time_ordered_window(DEFAULT_MERGE_WINDOW).enumerate() {
        if n % 65_536 == 0 && !tick() {
            summary.error = Some("loading was cancelled".into());
            break;
        }
        match item {
            Ok(rec) => {
                records += 1;
                // Record 0 is the logfile header: not an event.
                if rec.header.record_index == 0 {
                    continue;
                }
                let ft = rec.header.filetime;
                first = Some(first.map_or(ft, |f| f.min(ft)));
                last = Some(last.map_or(ft, |l| l.max(ft)));
                let r = rec.as_ref();
                if let Some(fe) = decode_file_event(&r) {
                    pipes.process(&fe);
                } else if let Some(frag) = decode_ndis_fragment(&r) {
                    if let Some(frame) = assembler.push(frag) {
                        frames += 1;
                        frame_bytes += frame.data.len() as u64;
                        if let Some(t) = decode_frame(linktype::ETHERNET, &frame.data) {
                            tcp.process(&t.into_segment(input, frames, ns(frame.origin.filetime)));
                        }
                    }
                } else if let Some(t) = decode_tcpip(&r) {
                    tcpip_events += 1;
                    if system_events.len() < MAX_TCPIP_EVENTS {
                        system_events.push(tcb_event(input, &t));
                    }
                } else if let Some(t) = decode_classic_tcpip(&r) {
                    // Send/Recv/Copy are per-packet noise; connection events go on the timeline.
                    let kind = match t.op {
                        TcpIpOp::Connect => "tcpip_connect",
                        TcpIpOp::Accept => "tcpip_accept",
                        TcpIpOp::Disconnect => "tcpip_disconnect",
                        TcpIpOp::Reconnect => "tcpip_reconnect",
                        TcpIpOp::Retransmit => "tcpip_retransmit",
                        _ => continue,
                    };
                    tcpip_events += 1;
                    if system_events.len() < MAX_TCPIP_EVENTS {
                        let (src, dst) =
                            (std::net::SocketAddr::new(t.saddr, t.sport), std::net::SocketAddr::new(t.daddr, t.dport));
                        system_events.push(SystemEvent {
                            input,
                            record_id: t.origin.record_index,
                            ts: ns(t.origin.filetime),
                            provider: "Kernel TcpIp".into(),
                            event_id: t.opcode as u32,
                            kind: kind.into(),
                            summary: format!("{kind} {src} -> {dst} (pid {})", t.process_id),
                        });
                    }
                }
            }
            Err(e) => {
                summary.error = Some(format!("{}: damaged {e}", path.display()));
            }
        }
    }
    summary.extra.insert("records".into(), records.into());
    summary.first_ts = first.map(ns);
    summary.last_ts = last.map(ns);

    let (found, stats) = pipes.finish();
    summary.extra.insert("pipes".into(), found.len().into());
    if stats.evicted_irps + stats.evicted_handles + stats.pipes_dropped + stats.clients_dropped > 0 {
        summary.extra.insert(
            "pipe_limits".into(),
            serde_json::json!({
                "evicted_irps": stats.evicted_irps,
                "evicted_handles": stats.evicted_handles,
                "pipes_dropped": stats.pipes_dropped,
                "clients_dropped": stats.clients_dropped,
            }),
        );
    }
    analysis.pipes.extend(found);

    let (connections, counts, evicted) = tcp.finish();
    *next_conn_id += connections.len() as u64;
    analysis.connections.extend(connections);
    analysis.tcp.add(&counts);
    summary.evicted_connections = evicted;
    if frames > 0 {
        summary.packets = frames;
        summary.bytes = frame_bytes;
        summary.link_types = vec![linktype::name(linktype::ETHERNET)];
    }
    if assembler.dropped > 0 {
        summary.extra.insert("ndis_fragments_dropped".into(), assembler.dropped.into());
    }
    if tcpip_events > 0 {
        summary.extra.insert("tcpip_events".into(), tcpip_events.into());
    }
    analysis.system_events.extend(system_events);
}

fn tcb_event(input: u32, t: &TcpipTcbEvent) -> SystemEvent {
    let kind = match t.kind {
        TcpipTcbEventKind::AcceptComplete => "tcpip_accept",
        TcpipTcbEventKind::ConnectComplete => "tcpip_connect",
        TcpipTcbEventKind::ConnectFailure => "tcpip_connect_failed",
        TcpipTcbEventKind::AbortRequest | TcpipTcbEventKind::AbortComplete => "tcpip_abort",
        TcpipTcbEventKind::DisconnectComplete => "tcpip_disconnect",
        TcpipTcbEventKind::ConnectTimeout => "tcpip_connect_timeout",
        TcpipTcbEventKind::RetransmitTimeout => "tcpip_retransmit_timeout",
        TcpipTcbEventKind::KeepaliveTimeout => "tcpip_keepalive_timeout",
        TcpipTcbEventKind::DisconnectTimeout => "tcpip_disconnect_timeout",
    };
    let addr = |a: Option<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_else(|| "?".into());
    SystemEvent {
        input,
        record_id: t.origin.record_index,
        ts: ns(t.origin.filetime),
        provider: "Microsoft-Windows-TCPIP".into(),
        event_id: t.kind.id() as u32,
        kind: kind.into(),
        summary: format!(
            "{kind} {} -> {} (pid {}, status 0x{:08X})",
            addr(t.local),
            addr(t.remote),
            t.process_id,
            t.status
        ),
    }
}
