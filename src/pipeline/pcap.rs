//! A pcap/pcapng input: reading, decoding and SMB on the calling thread, TCP analysis on a second
//! thread fed batches of segments through a bounded channel (the machine's two cores both work;
//! memory in flight is bounded by the channel's depth, not by the file).

use std::sync::atomic::Ordering;
use std::sync::mpsc;

use super::{add_smb, ProgressSink};
use crate::analysis::smb::SmbAnalyzer;
use crate::analysis::tcp::TcpAnalyzer;
use crate::analysis::{twosided, Analysis, InputSummary, Options};
use crate::ingest::{self, InputKind};
use crate::model::TcpSegment;

/// Segments per batch: large enough that the channel costs nothing per packet.
const BATCH: usize = 2048;
/// Batches in flight (full or being refilled): bounds memory to a few MB whatever the file.
const DEPTH: usize = 8;

/// Reads one capture into the analysis; fills the summary's counts and damage note.
#[allow(clippy::too_many_arguments)]
pub(super) fn read_pcap(
    input: u32,
    opened: ingest::Opened,
    path: &std::path::Path,
    options: &Options,
    report: &dyn Fn(u64),
    progress: &dyn ProgressSink,
    analysis: &mut Analysis,
    next_conn_id: &mut u64,
    summary: &mut InputSummary,
    keep_packet_facts: bool,
) {
    let gz_note = if opened.gzip { " (offset in the decompressed stream)" } else { "" };
    let counter = opened.disk_read.clone();
    let is_ng = opened.kind == InputKind::PcapNg;
    let first_id = *next_conn_id;
    let mut smb = SmbAnalyzer::new(input);
    let mut cancelled = false;

    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<TcpSegment>>(DEPTH);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<TcpSegment>>();
    let ((stats, error), ((connections, counts, evicted), facts)) = std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let mut tcp = TcpAnalyzer::new(first_id).keep_all_notes(options.keep_all_packet_notes).track_finalized();
            // Per-packet facts for two-sided matching, keyed by the connection TCP just assigned.
            let mut facts = twosided::facts::Collector::new(input, keep_packet_facts);
            for mut batch in full_rx {
                for seg in &batch {
                    tcp.process(seg);
                    facts.observe(tcp.last_connection(), seg);
                }
                tcp.drain_finalized(|id| facts.finalized(id));
                batch.clear();
                // The reader may have finished already; the batch is then simply dropped.
                let _ = empty_tx.send(batch);
            }
            (tcp.finish(), facts)
        });
        let mut batch: Vec<TcpSegment> = Vec::with_capacity(BATCH);
        let mut in_flight = 1usize;
        let send = |batch: &mut Vec<TcpSegment>, in_flight: &mut usize| {
            let next = match empty_rx.try_recv() {
                Ok(b) => b,
                Err(_) if *in_flight < DEPTH + 2 => {
                    *in_flight += 1;
                    Vec::with_capacity(BATCH)
                }
                // All batches are queued: wait for the analysis to hand one back.
                Err(_) => empty_rx.recv().unwrap_or_else(|_| Vec::with_capacity(BATCH)),
            };
            let full = std::mem::replace(batch, next);
            // A send fails only if the worker is gone (it panicked); the join below reports it.
            let _ = full_tx.send(full);
        };
        let read = ingest::pcap::read_capture_with_payload(
            input,
            opened.reader,
            is_ng,
            &mut |seg, payload| {
                smb.segment(&seg, payload);
                batch.push(seg);
                if batch.len() == BATCH {
                    send(&mut batch, &mut in_flight);
                }
            },
            &mut |_| {
                report(counter.load(Ordering::Relaxed));
                cancelled = progress.cancelled();
                !cancelled
            },
        );
        if !batch.is_empty() {
            let _ = full_tx.send(batch);
        }
        drop(full_tx);
        let done = match worker.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        };
        (read, done)
    });

    *next_conn_id += connections.len() as u64;
    if analysis.connections.is_empty() {
        // The first capture's table is taken as it is: no second copy of a million records.
        analysis.connections = connections;
    } else {
        analysis.connections.extend(connections);
    }
    summary.connections_not_matchable = facts.over_cap;
    analysis.twosided.facts.extend(facts.finish());
    analysis.tcp.add(&counts);
    add_smb(smb, analysis, summary);
    summary.link_types = stats.link_types;
    summary.packets = stats.packets;
    summary.bytes = stats.bytes;
    summary.first_ts = stats.first_ts;
    summary.last_ts = stats.last_ts;
    summary.evicted_connections = evicted;
    summary.error = error.map(|e| format!("{}{gz_note}", e.in_input(path)));
    if cancelled && summary.error.is_none() {
        summary.error = Some("loading was cancelled".into());
    }
}
