//! ETL traces into the analysis: record counts and header facts for the summary, named pipes
//! from file-I/O events, TCP from NDIS packet-capture events, TCPIP events on the timeline.

use std::io::BufRead;
use std::path::Path;

use crate::analysis::inputs::{
    LogfileFacts, PipeLimits, PktmonComponentStats, PktmonPath, PktmonStats, UndecodedProvider,
};
use crate::analysis::logs::{SystemEvent, SystemEventKind};
use crate::analysis::pipes::PipeAnalyzer;
use crate::analysis::tcp::TcpAnalyzer;
use crate::analysis::{Analysis, InputSummary};
use crate::ingest::decode::{decode_frame, linktype};
use crate::ingest::etl::ndis::{NdisFrames, NdisStep};
use crate::ingest::etl::{
    decode_classic_tcpip, decode_file_event, decode_pktmon_component, decode_pktmon_packet, decode_tcpip,
    direction_name, drop_reason_label, filetime_to_utc, Appearance, Dedupe, EtlReader, Guid, PktmonComponent, TcpIpOp,
    TcpipTcbEvent, TcpipTcbEventKind, DEFAULT_MERGE_WINDOW, PKTMON_PROVIDER,
};
use crate::model::{Endpoint, PacketDrop, SocketOp, SocketOwner};
use std::collections::{HashMap, HashSet};

/// TCPIP events kept per trace for the timeline (a busy server logs millions).
pub const MAX_TCPIP_EVENTS: usize = 10_000;
/// Socket owners kept per trace (connection events, plus the first send/receive of each 4-tuple).
pub const MAX_SOCKET_OWNERS: usize = 100_000;
/// PktMon drop events kept per trace for the `packet_drop` detector (all are counted).
pub const MAX_PACKET_DROPS: usize = 10_000;
/// Distinct providers counted for `undecoded_providers`.
const MAX_PROVIDERS: usize = 1_000;
/// PktMon components remembered from the trace's metadata.
const MAX_COMPONENTS: usize = 4_096;

/// Names of providers commonly met in traces, for `undecoded_providers`.
fn provider_name(g: &Guid) -> Option<&'static str> {
    let known: &[(&str, &str)] = &[
        ("4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac", "Microsoft-Windows-PktMon"),
        ("edd08927-9cc4-4e65-b970-c2560fb5c289", "Microsoft-Windows-Kernel-File"),
        ("2f07e2ee-15db-40f1-90ef-9d7ba282188a", "Microsoft-Windows-TCPIP"),
        ("2ed6006e-4729-4609-b423-3ee7bcd678ef", "Microsoft-Windows-NDIS-PacketCapture"),
        ("e13c0d23-ccbc-4e12-931b-d9cc2eee27e4", "Microsoft-Windows-DotNETRuntime"),
        ("a669021c-c450-4609-a035-5af59af4df18", "Microsoft-Windows-DotNETRuntimeRundown"),
        ("22fb2cd6-0e7b-422b-a0c7-2fad1fd0e716", "Microsoft-Windows-Kernel-Process"),
        ("9a280ac0-c8e0-11d1-84e2-00c04fb998a2", "Kernel TcpIp (classic)"),
        ("90cbdc39-4a3e-11d1-84f4-0000f80464e3", "Kernel FileIo (classic)"),
        ("3d6fa8d0-fe05-11d0-9dda-00c04fd7ba7c", "Kernel Process (classic)"),
        ("3d6fa8d1-fe05-11d0-9dda-00c04fd7ba7c", "Kernel Thread (classic)"),
        ("2cb15d1d-5fc1-11d2-abe1-00a0c911f518", "Kernel Image (classic)"),
        ("ce1dbfb4-137e-4da6-87b0-3f59aa102cbc", "Kernel PerfInfo (classic)"),
        ("bbccf6c1-6cd1-48c4-80ff-839482e37671", "EventMetadata (merge metadata: event schemas)"),
        ("9b79ee91-b5fd-41c0-a243-4248e266e9d0", "SystemConfigEx (merge metadata: system configuration)"),
    ];
    let s = g.to_string();
    known.iter().find(|(k, _)| *k == s).map(|(_, n)| *n)
}

/// EventTrace (session header, partition info): read by the reader itself, not an event source.
const EVENT_TRACE_GUID: &str = "68fdd900-4a3e-11d1-84f4-0000f80464e3";

/// PID 4 is always the System process.
fn system_name(pid: u32) -> Option<String> {
    (pid == 4).then(|| "System".to_string())
}

fn op_of(op: TcpIpOp) -> SocketOp {
    match op {
        TcpIpOp::Connect => SocketOp::Connect,
        TcpIpOp::Accept => SocketOp::Accept,
        TcpIpOp::Disconnect => SocketOp::Disconnect,
        TcpIpOp::Reconnect => SocketOp::Reconnect,
        TcpIpOp::Retransmit => SocketOp::Retransmit,
        TcpIpOp::Send => SocketOp::Send,
        TcpIpOp::Recv => SocketOp::Receive,
        _ => SocketOp::Other,
    }
}

/// Reads one trace in time order. `tick` is called now and then and returns false to cancel.
pub(super) fn read_etl(
    input: u32,
    reader: Box<dyn BufRead + Send>,
    path: &Path,
    analysis: &mut Analysis,
    tcp: TcpAnalyzer,
    next_conn_id: &mut u64,
    summary: &mut InputSummary,
    tick: &dyn Fn() -> bool,
) {
    let etl = match EtlReader::new(reader) {
        Ok(r) => r,
        Err(e) => {
            summary.error = Some(e.in_input(path));
            return;
        }
    };
    if let Some(h) = etl.logfile_header() {
        summary.extra.etl().logfile_header = Some(LogfileFacts {
            pointer_size: h.pointer_size,
            clock_type: h.clock_type,
            perf_freq: h.perf_freq,
            number_of_processors: h.number_of_processors,
            logger_name: h.logger_name.clone(),
            buffer_size: h.buffer_size,
            os_build: h.provider_version,
        });
    }
    let mut pipes = PipeAnalyzer::new(input);
    let mut tcp = tcp;
    let mut ndis = NdisFrames::default();
    let mut frame_bytes = 0u64;
    let mut tcpip_events = 0u64;
    let mut system_events: Vec<SystemEvent> = Vec::new();
    let mut records = 0u64;
    let (mut first, mut last): (Option<i64>, Option<i64>) = (None, None);
    let mut undecoded: HashMap<Guid, u64> = HashMap::new();
    let mut owners: Vec<SocketOwner> = Vec::new();
    let mut owner_keys: HashSet<(Endpoint, Endpoint, u32)> = HashSet::new();
    let mut components: HashMap<u16, PktmonComponent> = HashMap::new();
    let mut comp_stats: HashMap<u16, (u64, u64)> = HashMap::new();
    let mut dedupe = Dedupe::default();
    let mut drops: Vec<PacketDrop> = Vec::new();
    let (mut pk_events, mut pk_drops, mut pk_truncated, mut pk_not_ip) = (0u64, 0u64, 0u64, 0u64);
    let mut pk_types: HashMap<u16, u64> = HashMap::new();
    let mut pk_first_kept = 0u64;
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
                if let Some(p) = decode_pktmon_packet(&r) {
                    // etl2pcapng writes one frame per event: number them the same way.
                    pk_events += 1;
                    let frame = pk_events;
                    *pk_types.entry(p.packet_type).or_default() += 1;
                    if p.truncated() {
                        pk_truncated += 1;
                    }
                    if comp_stats.len() < MAX_COMPONENTS || comp_stats.contains_key(&p.component_id) {
                        let e = comp_stats.entry(p.component_id).or_default();
                        e.0 += 1;
                        e.1 += p.dropped as u64;
                    }
                    let net = p.network_bytes();
                    let tcp_seg = net
                        .and_then(|b| decode_frame(linktype::RAW, b))
                        .map(|t| t.into_segment(input, frame, p.origin.utc()));
                    if net.is_none() {
                        pk_not_ip += 1;
                    }
                    if p.dropped {
                        pk_drops += 1;
                        if drops.len() < MAX_PACKET_DROPS {
                            drops.push(PacketDrop {
                                input,
                                frame,
                                ts: p.origin.utc(),
                                component_id: p.component_id,
                                component: String::new(),
                                reason: p.drop_reason,
                                reason_label: drop_reason_label(p.drop_reason),
                                location: p.drop_location,
                                direction: direction_name(p.dir_tag),
                                tcp: tcp_seg.as_ref().map(|s| (s.src, s.dst, s.flags)),
                            });
                        }
                    }
                    // Each packet goes to the TCP pipeline once, at its first appearance.
                    if let Appearance::First(_) = dedupe.push(&p) {
                        pk_first_kept += 1;
                        frame_bytes += p.original_size as u64;
                        if let Some(seg) = tcp_seg {
                            tcp.process(&seg);
                        }
                    }
                    continue;
                } else if let Some(c) = decode_pktmon_component(&r) {
                    if components.len() < MAX_COMPONENTS {
                        components.insert(c.id, c);
                    }
                    continue;
                } else if r.header.provider == PKTMON_PROVIDER {
                    // Component properties, edges and counters: metadata we do not need.
                    continue;
                }
                if let Some(fe) = decode_file_event(&r) {
                    pipes.process(&fe);
                } else if let Some(step) = ndis.push(&r, input) {
                    if let NdisStep::Frame { len, segment } = step {
                        frame_bytes += len;
                        if let Some(seg) = segment {
                            tcp.process(&seg);
                        }
                    }
                } else if let Some(t) = decode_tcpip(&r) {
                    tcpip_events += 1;
                    if let (Some(l), Some(rm)) = (t.local, t.remote) {
                        let op = match t.kind {
                            TcpipTcbEventKind::AcceptComplete => SocketOp::Accept,
                            TcpipTcbEventKind::ConnectComplete
                            | TcpipTcbEventKind::ConnectFailure
                            | TcpipTcbEventKind::ConnectTimeout => SocketOp::Connect,
                            TcpipTcbEventKind::DisconnectComplete | TcpipTcbEventKind::DisconnectTimeout => {
                                SocketOp::Disconnect
                            }
                            TcpipTcbEventKind::RetransmitTimeout => SocketOp::Retransmit,
                            _ => SocketOp::Other,
                        };
                        // ProcessId 0 (Idle) names no owner; 4 is System (http.sys, SMB own sockets).
                        if t.process_id != 0 && owners.len() < MAX_SOCKET_OWNERS {
                            owners.push(SocketOwner {
                                input,
                                record: t.origin.record_index,
                                ts: t.origin.utc(),
                                local: Endpoint { ip: l.ip(), port: l.port() },
                                remote: Endpoint { ip: rm.ip(), port: rm.port() },
                                pid: t.process_id,
                                process: system_name(t.process_id),
                                op,
                            });
                        }
                    }
                    if system_events.len() < MAX_TCPIP_EVENTS {
                        system_events.push(tcb_event(input, &t));
                    }
                } else if let Some(t) = decode_classic_tcpip(&r) {
                    // saddr/sport is the local end for sends and receives alike (the MOF's layout).
                    let local = Endpoint { ip: t.saddr, port: t.sport };
                    let remote = Endpoint { ip: t.daddr, port: t.dport };
                    let op = op_of(t.op);
                    let first_of_tuple =
                        owner_keys.len() < MAX_SOCKET_OWNERS && owner_keys.insert((local, remote, t.process_id));
                    let per_packet = matches!(op, SocketOp::Send | SocketOp::Receive | SocketOp::Other);
                    if t.process_id != 0 && owners.len() < MAX_SOCKET_OWNERS && (!per_packet || first_of_tuple) {
                        owners.push(SocketOwner {
                            input,
                            record: t.origin.record_index,
                            ts: t.origin.utc(),
                            local,
                            remote,
                            pid: t.process_id,
                            process: system_name(t.process_id),
                            op,
                        });
                    }
                    // Send/Recv/Copy are per-packet noise; connection events go on the timeline.
                    let kind = match t.op {
                        TcpIpOp::Connect => SystemEventKind::TcpipConnect,
                        TcpIpOp::Accept => SystemEventKind::TcpipAccept,
                        TcpIpOp::Disconnect => SystemEventKind::TcpipDisconnect,
                        TcpIpOp::Reconnect => SystemEventKind::TcpipReconnect,
                        TcpIpOp::Retransmit => SystemEventKind::TcpipRetransmit,
                        _ => continue,
                    };
                    tcpip_events += 1;
                    if system_events.len() < MAX_TCPIP_EVENTS {
                        let (src, dst) =
                            (std::net::SocketAddr::new(t.saddr, t.sport), std::net::SocketAddr::new(t.daddr, t.dport));
                        system_events.push(SystemEvent {
                            input,
                            record_id: t.origin.record_index,
                            ts: t.origin.utc(),
                            provider: "Kernel TcpIp".into(),
                            event_id: t.opcode as u32,
                            kind,
                            summary: format!("{kind} {src} -> {dst} (pid {})", t.process_id),
                        });
                    }
                } else if r.header.provider.to_string() != EVENT_TRACE_GUID
                    && (undecoded.len() < MAX_PROVIDERS || undecoded.contains_key(&r.header.provider))
                {
                    *undecoded.entry(r.header.provider).or_default() += 1;
                }
            }
            Err(e) => {
                summary.error = Some(e.in_input(path));
            }
        }
    }
    summary.extra.etl().records = records;
    summary.first_ts = first.map(filetime_to_utc);
    summary.last_ts = last.map(filetime_to_utc);

    let (found, stats) = pipes.finish();
    summary.extra.etl().pipes = found.len() as u64;
    if stats.evicted_irps + stats.evicted_handles + stats.pipes_dropped + stats.clients_dropped > 0 {
        summary.extra.etl().pipe_limits = Some(PipeLimits {
            evicted_irps: Some(stats.evicted_irps),
            evicted_handles: stats.evicted_handles,
            pipes_dropped: stats.pipes_dropped,
            clients_dropped: stats.clients_dropped,
            handles_not_tracked: None,
        });
    }
    analysis.pipes.extend(found);

    let (connections, counts, evicted) = tcp.finish();
    *next_conn_id += connections.len() as u64;
    analysis.connections.extend(connections);
    analysis.tcp.add(&counts);
    summary.evicted_connections = evicted;
    if ndis.frames() > 0 {
        summary.packets = ndis.frames();
        summary.bytes = frame_bytes;
        summary.link_types = vec![linktype::name(linktype::ETHERNET)];
    }
    if ndis.dropped() > 0 {
        summary.extra.etl().ndis_fragments_dropped = Some(ndis.dropped());
    }
    if tcpip_events > 0 {
        summary.extra.etl().tcpip_events = Some(tcpip_events);
    }
    analysis.system_events.extend(system_events);
    if !owners.is_empty() {
        summary.extra.etl().socket_owners = Some(owners.len() as u64);
    }
    analysis.socket_owners.extend(owners);

    if pk_events > 0 {
        let packets = dedupe.finish();
        let label = |id: u16| components.get(&id).map(|c| c.label()).unwrap_or_else(|| format!("component {id}"));
        for d in &mut drops {
            d.component = label(d.component_id);
        }
        let mut comps: Vec<_> = comp_stats.iter().collect();
        comps.sort();
        let comps: Vec<PktmonComponentStats> = comps
            .into_iter()
            .map(|(id, (events, dropped))| PktmonComponentStats {
                id: *id,
                name: label(*id),
                events: *events,
                drops: *dropped,
            })
            .collect();
        let mut paths: Vec<_> = dedupe.paths.iter().collect();
        paths.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let paths: Vec<PktmonPath> = paths
            .into_iter()
            .take(20)
            .map(|(p, n)| PktmonPath {
                components: p.clone(),
                names: p.iter().map(|id| label(*id)).collect(),
                packets: *n,
            })
            .collect();
        let mut types: Vec<_> = pk_types.into_iter().collect();
        types.sort();
        let packet_types = types.into_iter().collect();
        summary.extra.etl().pktmon = Some(PktmonStats {
            events: pk_events,
            packets,
            repeated_appearances: dedupe.repeats,
            drops: pk_drops,
            truncated: pk_truncated,
            not_ip: pk_not_ip,
            packet_types,
            components: comps,
            paths,
        });
        summary.packets += pk_first_kept;
        summary.bytes = frame_bytes;
        if summary.link_types.is_empty() {
            summary.link_types = vec!["pktmon".into()];
        }
        analysis.packet_drops.extend(drops);
    }
    let mut und: Vec<(Guid, u64)> = undecoded.into_iter().collect();
    und.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.to_string().cmp(&b.0.to_string())));
    summary.extra.etl().undecoded_providers = und
        .into_iter()
        .map(|(g, n)| UndecodedProvider { provider: g.to_string(), name: provider_name(&g), records: n })
        .collect();
}

fn tcb_event(input: u32, t: &TcpipTcbEvent) -> SystemEvent {
    let kind = match t.kind {
        TcpipTcbEventKind::AcceptComplete => SystemEventKind::TcpipAccept,
        TcpipTcbEventKind::ConnectComplete => SystemEventKind::TcpipConnect,
        TcpipTcbEventKind::ConnectFailure => SystemEventKind::TcpipConnectFailed,
        TcpipTcbEventKind::AbortRequest | TcpipTcbEventKind::AbortComplete => SystemEventKind::TcpipAbort,
        TcpipTcbEventKind::DisconnectComplete => SystemEventKind::TcpipDisconnect,
        TcpipTcbEventKind::ConnectTimeout => SystemEventKind::TcpipConnectTimeout,
        TcpipTcbEventKind::RetransmitTimeout => SystemEventKind::TcpipRetransmitTimeout,
        TcpipTcbEventKind::KeepaliveTimeout => SystemEventKind::TcpipKeepaliveTimeout,
        TcpipTcbEventKind::DisconnectTimeout => SystemEventKind::TcpipDisconnectTimeout,
    };
    let addr = |a: Option<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_else(|| "?".into());
    SystemEvent {
        input,
        record_id: t.origin.record_index,
        ts: t.origin.utc(),
        provider: "Microsoft-Windows-TCPIP".into(),
        event_id: t.kind.id() as u32,
        kind,
        summary: format!(
            "{kind} {} -> {} (pid {}, status 0x{:08X})",
            addr(t.local),
            addr(t.remote),
            t.process_id,
            t.status
        ),
    }
}
