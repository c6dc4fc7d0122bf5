//! Writes the Process Monitor samples of the seed-1 pipe storm into `samples/`:
//!
//! * `procmon_pipes_busy_storm.pml` — a 64-bit PML (version 9) as Procmon would log the storm;
//! * `procmon_pipes_busy_storm.csv` — its CSV export with Procmon's default columns plus TID,
//!   local time UTC+1 (Procmon exports local wall time, with no zone and no date).
//!
//! The operations are those of `samples/pipes_busy_storm.etl` (made by `make_pipe_samples`): each
//! ETW Create of `\Device\NamedPipe\RemotingServer` with its OperationEnd status becomes a
//! CreateFile (client: w3wp.exe, pid 5120) or CreatePipe (server instance: RemotingHost.exe,
//! pid 4242) with that result, and the first Cleanup/Close of its FileObject a CloseFile, at the
//! same times, so both sources must give the same pipe findings. A few TCP events of the web
//! site's own HTTP connection are added for the socket-owner records.
//!
//! Run with `cargo run --example make_procmon_samples` (after `make_pipe_samples`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use ipcscope::analysis::pipes::{is_server_disposition, pipe_name};
use ipcscope::ingest::etl::{decode_file_event, filetime_to_unix_ns, EtlReader, FileEvent, DEFAULT_MERGE_WINDOW};
use ipcscope::ingest::procmon::writer::{write_csv, write_pml, WriterEvent, WriterOp};

const SERVER_PID: u32 = 4242;
const CLIENT_PID: u32 = 5120;
/// The CSV's local clock: UTC+1 (e.g. Central European Time in November).
const CSV_OFFSET_S: i64 = 3600;

fn process_name(pid: u32) -> &'static str {
    match pid {
        SERVER_PID => "RemotingHost.exe",
        CLIENT_PID => "w3wp.exe",
        _ => "unknown.exe",
    }
}

struct Open {
    ts: i64,
    pid: u32,
    tid: u32,
    path: String,
    server: bool,
    file_object: u64,
}

fn storm_events(etl: &Path) -> Result<Vec<WriterEvent>, Box<dyn std::error::Error>> {
    let rd = EtlReader::new(BufReader::new(File::open(etl)?))?;
    let mut pending: HashMap<u64, Open> = HashMap::new();
    let mut open_fo: HashMap<u64, (u32, u32, String, bool)> = HashMap::new();
    let mut out = Vec::new();
    let ev = |ts: i64, pid: u32, tid: u32, op: WriterOp, path: &str, status: u32| WriterEvent {
        ts,
        pid,
        tid,
        process: process_name(pid).to_string(),
        op,
        path: path.to_string(),
        status,
    };
    let create = |o: &Open, status: u32| {
        let op = if o.server { WriterOp::CreatePipe } else { WriterOp::CreateFile { disposition: 1 } };
        ev(o.ts, o.pid, o.tid, op, &o.path, status)
    };
    for rec in rd.time_ordered_window(DEFAULT_MERGE_WINDOW) {
        let rec = rec?;
        let Some(fe) = decode_file_event(&rec.as_ref()) else { continue };
        match fe {
            FileEvent::Create(c) if pipe_name(&c.file_name).is_some() => {
                let o = Open {
                    ts: filetime_to_unix_ns(c.origin.filetime) as i64,
                    pid: c.origin.pid.unwrap_or(0),
                    tid: c.origin.tid.unwrap_or(c.issuing_thread_id as u32),
                    path: c.file_name.clone(),
                    server: is_server_disposition(c.create_disposition()),
                    file_object: c.file_object,
                };
                pending.insert(c.irp, o);
            }
            FileEvent::OperationEnd(e) => {
                if let Some(o) = pending.remove(&e.irp) {
                    out.push(create(&o, e.status));
                    if e.status >> 30 <= 1 {
                        open_fo.insert(o.file_object, (o.pid, o.tid, o.path.clone(), o.server));
                    }
                }
            }
            FileEvent::Cleanup(h) | FileEvent::Close(h) => {
                // A close of a create whose end was not traced: the create succeeded.
                if let Some(irp) = pending.iter().find(|(_, o)| o.file_object == h.file_object).map(|(k, _)| *k) {
                    if let Some(o) = pending.remove(&irp) {
                        out.push(create(&o, 0));
                        open_fo.insert(o.file_object, (o.pid, o.tid, o.path.clone(), o.server));
                    }
                }
                if let Some((pid, tid, path, _)) = open_fo.remove(&h.file_object) {
                    let ts = filetime_to_unix_ns(h.origin.filetime) as i64;
                    out.push(ev(ts, pid, tid, WriterOp::CloseFile, &path, 0));
                }
            }
            _ => {}
        }
    }
    if !pending.is_empty() {
        eprintln!("{} creates without a result were left out", pending.len());
    }
    // The web site's HTTP connection from a browser, around the storm.
    let first = out.iter().map(|e| e.ts).min().unwrap_or(0);
    let last = out.iter().map(|e| e.ts).max().unwrap_or(0);
    let local = "10.1.2.15:80".parse()?;
    let remote = "10.1.2.50:52001".parse()?;
    for (ts, op, length) in
        [(first - 400_000_000, 4u16, 0u32), (first - 399_000_000, 3, 512), (last + 1_000_000, 2, 1460)]
            .into_iter()
            .chain([(last + 2_000_000, 6u16, 0u32)])
    {
        out.push(ev(ts, CLIENT_PID, 900, WriterOp::Tcp { op, local, remote, length }, "", 0));
    }
    out.sort_by_key(|e| e.ts);
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples");
    let events = storm_events(&dir.join("pipes_busy_storm.etl"))?;
    let pml = dir.join("procmon_pipes_busy_storm.pml");
    let mut w = BufWriter::new(File::create(&pml)?);
    write_pml(&mut w, &events, "WEB01")?;
    w.flush()?;
    let csv = dir.join("procmon_pipes_busy_storm.csv");
    let mut w = BufWriter::new(File::create(&csv)?);
    write_csv(&mut w, &events, CSV_OFFSET_S)?;
    w.flush()?;
    let count = |f: &dyn Fn(&WriterEvent) -> bool| events.iter().filter(|e| f(e)).count();
    println!(
        "{} and {}: {} events ({} CreateFile, {} busy, {} CreatePipe, {} CloseFile, {} TCP)",
        pml.display(),
        csv.display(),
        events.len(),
        count(&|e| matches!(e.op, WriterOp::CreateFile { .. })),
        count(&|e| matches!(e.op, WriterOp::CreateFile { .. }) && matches!(e.status, 0xC000_00AE | 0xC000_00AC)),
        count(&|e| matches!(e.op, WriterOp::CreatePipe)),
        count(&|e| matches!(e.op, WriterOp::CloseFile)),
        count(&|e| matches!(e.op, WriterOp::Tcp { .. })),
    );
    Ok(())
}
