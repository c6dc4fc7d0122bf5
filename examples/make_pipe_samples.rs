//! Writes the named-pipe sample traces into `samples/` (deterministic: fixed base time and seed):
//!
//! * `pipes_busy_storm.etl` + `pipes_busy_storm_client.log` — the seed incident: a .NET Remoting
//!   server (pid 4242) keeps 4 instances of `\Device\NamedPipe\RemotingServer`; a w3wp client
//!   (pid 5120) opens and closes the pipe for every call from 8 impersonated threads. Opens fail
//!   with STATUS_PIPE_BUSY when all 4 instances are connected, STATUS_PIPE_NOT_AVAILABLE while
//!   instances are being recycled, and STATUS_OBJECT_NAME_NOT_FOUND when the server has closed
//!   every instance and not yet created the next (its listener stalls now and then).
//! * `pipes_healthy_reuse.etl` + log — the same server; the client holds 3 connections for
//!   the whole trace and reuses them.
//! * `pipes_after_tcp.etl` + log — after the fix: no pipe; NDIS packet-capture events carry one
//!   TcpChannel connection (10.1.2.15 → 10.1.2.20:8085) reused for every call, then closed.
//!
//! * `pipes_storm_local.etl` + `pipes_storm_local_client.log` — the same storm for 8 s (thousands
//!   of failed opens); the client logs in local time (UTC+01:00) on a clock 0.25 s fast, each
//!   error line within 2 ms of its failed open.
//! * `pipes_instance_recycle.etl` + log — the close/open race alone: a healthy server recycles
//!   its 2 instances every 1.5 s (all closed, new ones 3–9 ms later, same process); client opens
//!   that fall into the gap fail not-found. The log is in local time (UTC+01:00).
//!
//! Run with `cargo run --example make_pipe_samples`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ipcscope::analysis::pipes::{STATUS_OBJECT_NAME_NOT_FOUND, STATUS_PIPE_BUSY, STATUS_PIPE_NOT_AVAILABLE};
use ipcscope::ingest::etl::writer::{write_etl, WriterConfig, WriterEvent, WriterItem};
use ipcscope::ingest::etl::{NDIS_KW_PACKET_END, NDIS_KW_PACKET_START, NDIS_KW_RECEIVE, NDIS_KW_SEND};

const PIPE: &str = r"\Device\NamedPipe\RemotingServer";
const SERVER_PID: u32 = 4242;
const CLIENT_PID: u32 = 5120;
const FT_UNIX_EPOCH: i64 = 116_444_736_000_000_000;
/// 100 ns ticks.
const MS: i64 = 10_000;
const SEC: i64 = 10_000_000;

/// 2026-11-22 10:15:00 UTC as FILETIME.
fn base_ft() -> i64 {
    let days = ipcscope::model::days_from_civil(2026, 11, 22);
    (days * 86_400 + 10 * 3600 + 15 * 60) * SEC + FT_UNIX_EPOCH
}

/// `2026-11-22 10:15:03,123` (UTC, milliseconds truncated) for a FILETIME.
fn log_time(ft: i64) -> String {
    let ns = (ft - FT_UNIX_EPOCH) * 100;
    let s = ipcscope::model::format_utc(ns);
    format!("{} {},{}", &s[..10], &s[11..19], &s[20..23])
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo).max(1) as u64)) as i64
    }
}

/// Allocates IRPs (unique) and FileObjects (reused after close, as the kernel does).
struct Ids {
    irp: u64,
    fo_next: u64,
    fo_free: Vec<u64>,
}
impl Ids {
    fn new() -> Self {
        Ids { irp: 0xFFFF_C08A_1000_0000, fo_next: 0xFFFF_C08A_5000_0000, fo_free: Vec::new() }
    }
    fn irp(&mut self) -> u64 {
        self.irp += 0x1B0;
        self.irp
    }
    fn fo(&mut self) -> u64 {
        if let Some(f) = self.fo_free.pop() {
            return f;
        }
        self.fo_next += 0x150;
        self.fo_next
    }
    fn free(&mut self, fo: u64) {
        // Reuse only after a while, so a FileObject is not reused by the very next open.
        self.fo_free.insert(0, fo);
    }
}

struct Trace {
    items: Vec<WriterItem>,
    ids: Ids,
}

impl Trace {
    fn new() -> Self {
        Trace { items: Vec::new(), ids: Ids::new() }
    }
    fn push(&mut self, ft: i64, pid: u32, tid: u32, ev: WriterEvent) {
        self.items.push(WriterItem::new(ft, pid, tid, ev).on_cpu((tid % 4) as u16));
    }
    /// Create + OperationEnd; returns the FileObject.
    fn create(&mut self, ft: i64, pid: u32, tid: u32, name: &str, disposition: u32, status: u32) -> u64 {
        let irp = self.ids.irp();
        let fo = self.ids.fo();
        self.push(
            ft,
            pid,
            tid,
            WriterEvent::KernelFileCreate {
                irp,
                file_object: fo,
                issuing_thread_id: tid,
                create_options: disposition << 24,
                create_attributes: 0,
                share_access: 3,
                file_name: name.to_string(),
            },
        );
        self.push(ft + 25, pid, tid, WriterEvent::KernelFileOperationEnd { irp, extra_information: 0, status });
        if status != 0 {
            self.ids.free(fo);
        }
        fo
    }
    /// Cleanup + Close of a handle.
    fn close(&mut self, ft: i64, pid: u32, tid: u32, fo: u64) {
        let key = fo ^ 0x7700;
        let irp = self.ids.irp();
        self.push(
            ft,
            pid,
            tid,
            WriterEvent::KernelFileCleanup { irp, file_object: fo, file_key: key, issuing_thread_id: tid },
        );
        let irp = self.ids.irp();
        self.push(
            ft + 12,
            pid,
            tid,
            WriterEvent::KernelFileClose { irp, file_object: fo, file_key: key, issuing_thread_id: tid },
        );
        self.ids.free(fo);
    }
    /// Unrelated file activity the analyzer must ignore.
    fn noise(&mut self, ft: i64, pid: u32, tid: u32, name: &str) {
        let fo = self.create(ft, pid, tid, name, 1, 0);
        self.close(ft + 2 * MS, pid, tid, fo);
    }
    fn write(self, path: &Path, start: i64, end: i64) -> std::io::Result<u64> {
        let cfg = WriterConfig {
            start_time: start,
            end_time: end,
            logger_name: "RemotingPipes".into(),
            log_file_name: r"C:\PerfLogs\RemotingPipes.etl".into(),
            ..WriterConfig::default()
        };
        let out = BufWriter::new(fs::File::create(path)?);
        let stats = write_etl(out, &cfg, self.items)?;
        Ok(stats.records)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Slot {
    Listening(u64),
    Connected(u64),
    /// The client closed; the server still holds the instance.
    Closing(u64),
    /// The server closed the instance and has not created the next one.
    Gone,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Act {
    ClientAttempt { thread: usize },
    ClientClose { thread: usize, slot: usize, fo: u64 },
    ServerClose { slot: usize },
    ServerCreate { slot: usize },
}

/// How a storm's client log is written.
struct StormLog {
    /// The log's clock minus UTC (a local zone plus skew), 100 ns ticks.
    clock_ft: i64,
    /// Lag of each error line behind its failed open: fixed (0.3 ms) or random up to this.
    max_lag_ft: Option<i64>,
}

fn busy_storm(dir: &Path) -> std::io::Result<()> {
    storm(dir, "pipes_busy_storm", 2 * SEC + 500 * MS, 3, &StormLog { clock_ft: 0, max_lag_ft: None })
}

/// The seed's incident as the client logged it: a longer storm, the client's log in local time
/// (UTC+01:00) on a clock 0.25 s fast, each error line written within 2 ms of its failed open.
fn storm_local(dir: &Path) -> std::io::Result<()> {
    let clock = 3600 * SEC + 250 * MS;
    storm(dir, "pipes_storm_local", 8 * SEC, 11, &StormLog { clock_ft: clock, max_lag_ft: Some(2 * MS) })
}

fn storm(dir: &Path, name: &str, storm_len: i64, n_stalls: i64, how: &StormLog) -> std::io::Result<()> {
    let t0 = base_ft();
    let mut rng = Rng(0x1BAD_B002_5EED_0001);
    let mut lag_rng = Rng(0x1A6_0000_0000_0005);
    let mut tr = Trace::new();
    let mut log = Vec::new();
    let threads = 8usize;
    let storm_end = t0 + storm_len;
    // The server's listener stalls (GC) now and then: instances are not re-created meanwhile.
    let stalls: Vec<(i64, i64)> = (0..n_stalls).map(|k| (t0 + 600 * MS + k * 700 * MS, 25 * MS)).collect();
    let stamp = |ft: i64| log_time(ft + how.clock_ft);
    let stalled_until = |t: i64| stalls.iter().find(|(s, d)| t >= *s && t < s + d).map(|(s, d)| s + d);
    let mut slots = [Slot::Gone; 4];
    // The server's instance FileObject per slot.
    let mut server_fo = [0u64; 4];
    let mut q: BinaryHeap<Reverse<(i64, u64, Act)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut at = |q: &mut BinaryHeap<Reverse<(i64, u64, Act)>>, t: i64, a: Act| {
        seq += 1;
        q.push(Reverse((t, seq, a)));
    };
    log.push(format!(
        "{} INFO  [1] Remoting.Client - Application started; channel ipc://RemotingServer",
        stamp(t0 - 200 * MS)
    ));
    // The server starts before the trace's first client: first instance with FILE_CREATE
    // (FILE_FLAG_FIRST_PIPE_INSTANCE), the others with FILE_OPEN_IF.
    for (i, s) in slots.iter_mut().enumerate() {
        let disp = if i == 0 { 2 } else { 3 };
        let fo = tr.create(t0 + i as i64 * MS, SERVER_PID, 4300 + i as u32, PIPE, disp, 0);
        *s = Slot::Listening(fo);
        server_fo[i] = fo;
    }
    tr.noise(t0 + 10 * MS, CLIENT_PID, 6100, r"\Device\HarddiskVolume2\inetpub\wwwroot\web.config");
    for th in 0..threads {
        let t = t0 + 50 * MS + rng.range(0, 20 * MS);
        at(&mut q, t, Act::ClientAttempt { thread: th });
    }
    let (mut n_ok, mut n_busy, mut n_nf) = (0, 0, 0);
    while let Some(Reverse((t, _, act))) = q.pop() {
        match act {
            Act::ClientAttempt { thread } => {
                if t > storm_end {
                    continue;
                }
                let tid = 6000 + thread as u32;
                let managed = 12 + thread;
                if let Some(slot) = slots.iter().position(|s| matches!(s, Slot::Listening(_))) {
                    let fo = tr.create(t, CLIENT_PID, tid, PIPE, 1, 0);
                    slots[slot] = Slot::Connected(server_fo[slot]);
                    n_ok += 1;
                    let hold = rng.range(2 * MS, 9 * MS);
                    at(&mut q, t + hold, Act::ClientClose { thread, slot, fo });
                } else {
                    let (status, text) = if slots.iter().all(|s| *s == Slot::Gone) {
                        n_nf += 1;
                        (
                            STATUS_OBJECT_NAME_NOT_FOUND,
                            "Failed to connect to an IPC Port: The system cannot find the file specified.",
                        )
                    } else if slots.iter().all(|s| matches!(s, Slot::Connected(_))) {
                        n_busy += 1;
                        (STATUS_PIPE_BUSY, "Port is Busy: All pipe instances are busy.")
                    } else {
                        n_busy += 1;
                        (STATUS_PIPE_NOT_AVAILABLE, "Port is Busy: All pipe instances are busy.")
                    };
                    tr.create(t, CLIENT_PID, tid, PIPE, 1, status);
                    let lag = match how.max_lag_ft {
                        Some(max) => lag_rng.range(MS / 10, max),
                        None => 3_000,
                    };
                    log.push(format!(
                        "{} ERROR [{managed}] Remoting.Client - RemotingException: {text}",
                        stamp(t + lag)
                    ));
                    at(&mut q, t + rng.range(8 * MS, 30 * MS), Act::ClientAttempt { thread });
                }
            }
            Act::ClientClose { thread, slot, fo } => {
                tr.close(t, CLIENT_PID, 6000 + thread as u32, fo);
                if let Slot::Connected(sfo) = slots[slot] {
                    slots[slot] = Slot::Closing(sfo);
                }
                at(&mut q, t + rng.range(MS / 5, MS), Act::ServerClose { slot });
                at(&mut q, t + rng.range(MS, 6 * MS), Act::ClientAttempt { thread });
            }
            Act::ServerClose { slot } => {
                let fo = server_fo[slot];
                tr.close(t, SERVER_PID, 4300 + slot as u32, fo);
                slots[slot] = Slot::Gone;
                let mut when = t + rng.range(MS / 2, 3 * MS);
                if let Some(end) = stalled_until(when) {
                    when = end + rng.range(0, 2 * MS);
                }
                at(&mut q, when, Act::ServerCreate { slot });
            }
            Act::ServerCreate { slot } => {
                let fo = tr.create(t, SERVER_PID, 4300 + slot as u32, PIPE, 3, 0);
                server_fo[slot] = fo;
                slots[slot] = Slot::Listening(fo);
            }
        }
    }
    // The storm is over; the server keeps its instances until the trace ends.
    let end = storm_end + 500 * MS;
    let items = tr.items.len();
    let records = tr.write(&dir.join(format!("{name}.etl")), t0 - SEC, end)?;
    log.sort();
    write_log(&dir.join(format!("{name}_client.log")), &log)?;
    println!("{name}.etl: {records} records ({items} events), {n_ok} opens ok, {n_busy} busy, {n_nf} not found");
    Ok(())
}

fn healthy_reuse(dir: &Path) -> std::io::Result<()> {
    let t0 = base_ft();
    let mut rng = Rng(0x600D_0000_0000_0002);
    let mut tr = Trace::new();
    let mut log = Vec::new();
    let mut server = Vec::new();
    for i in 0..4u32 {
        let disp = if i == 0 { 2 } else { 3 };
        server.push(tr.create(t0 + i as i64 * MS, SERVER_PID, 4300 + i, PIPE, disp, 0));
    }
    tr.noise(t0 + 10 * MS, CLIENT_PID, 6100, r"\Device\HarddiskVolume2\inetpub\wwwroot\web.config");
    log.push(format!(
        "{} INFO  [1] Remoting.Client - Application started; channel ipc://RemotingServer",
        log_time(t0 - 200 * MS)
    ));
    // Three pooled connections, opened once and reused by every call.
    let mut conns = Vec::new();
    for c in 0..3u32 {
        let t = t0 + 100 * MS + c as i64 * 5 * MS;
        conns.push((t, tr.create(t, CLIENT_PID, 6000 + c, PIPE, 1, 0)));
        log.push(format!(
            "{} INFO  [{}] Remoting.Client - Connected to ipc://RemotingServer (pooled connection {c})",
            log_time(t + 1000),
            12 + c
        ));
    }
    let mut t = t0 + 200 * MS;
    let mut n = 0;
    while t < t0 + 29 * SEC {
        let c = (n % 3) as u32;
        log.push(format!(
            "{} INFO  [{}] Remoting.Client - Call GetOrderStatus completed in {} ms (pooled connection {c})",
            log_time(t),
            12 + c,
            rng.range(1, 6)
        ));
        n += 1;
        t += rng.range(150 * MS, 600 * MS);
    }
    let close_t = t0 + 29 * SEC + 500 * MS;
    for (c, (_, fo)) in conns.iter().enumerate() {
        tr.close(close_t + c as i64 * MS, CLIENT_PID, 6000 + c as u32, *fo);
    }
    for (i, fo) in server.iter().enumerate().take(3) {
        tr.close(close_t + 2 * MS + i as i64 * MS, SERVER_PID, 4300 + i as u32, *fo);
    }
    log.push(format!(
        "{} INFO  [1] Remoting.Client - Application stopping; {n} calls on 3 connections",
        log_time(close_t)
    ));
    let records = tr.write(&dir.join("pipes_healthy_reuse.etl"), t0 - SEC, t0 + 30 * SEC)?;
    write_log(&dir.join("pipes_healthy_reuse_client.log"), &log)?;
    println!("pipes_healthy_reuse.etl: {records} records, {n} calls");
    Ok(())
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], 0]) };
        sum += w as u32;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet/IPv4/TCP frame.
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: usize,
    syn_opts: bool,
    ip_id: u16,
) -> Vec<u8> {
    let opts: &[u8] = if syn_opts { &[2, 4, 0x05, 0xB4, 1, 3, 3, 8, 4, 2, 0, 0] } else { &[] };
    let tcp_len = 20 + opts.len();
    let total = 20 + tcp_len + payload;
    let mut f = Vec::with_capacity(14 + total);
    f.extend_from_slice(&[0x00, 0x15, 0x5D, 0x01, 0x02, if dst[3] == 20 { 0x20 } else { 0x15 }]);
    f.extend_from_slice(&[0x00, 0x15, 0x5D, 0x01, 0x02, if src[3] == 20 { 0x20 } else { 0x15 }]);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 128, 6, 0, 0];
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.push(((tcp_len / 4) as u8) << 4);
    f.push(flags);
    f.extend_from_slice(&64240u16.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(opts);
    // .NET Remoting TCP preamble "\x2ENET" then zeros.
    let body: Vec<u8> = (0..payload).map(|i| if i < 4 { b".NET"[i] } else { 0 }).collect();
    f.extend_from_slice(&body);
    f
}

fn after_tcp(dir: &Path) -> std::io::Result<()> {
    let t0 = base_ft();
    let mut rng = Rng(0x7C90_0000_0000_0003);
    let mut tr = Trace::new();
    let mut log = Vec::new();
    tr.noise(t0 + 10 * MS, CLIENT_PID, 6100, r"\Device\HarddiskVolume2\inetpub\wwwroot\web.config");
    tr.noise(t0 + 20 * MS, SERVER_PID, 4300, r"\Device\HarddiskVolume2\Services\RemotingServer.exe.config");
    log.push(format!(
        "{} INFO  [1] Remoting.Client - Application started; channel tcp://10.1.2.20:8085/RemotingServer",
        log_time(t0 - 200 * MS)
    ));
    let (cli, srv) = ([10, 1, 2, 15], [10, 1, 2, 20]);
    let (cp, sp) = (50311u16, 8085u16);
    let (mut cs, mut ss) = (0x1A2B_3C4Du32, 0x5E6F_7081u32);
    let mut ip_id = 100u16;
    let mut frames: Vec<(i64, bool, Vec<u8>)> = Vec::new(); // (time, sent by this host, frame)
    let mut push = |frames: &mut Vec<(i64, bool, Vec<u8>)>,
                    t: i64,
                    from_client: bool,
                    seq: u32,
                    ack: u32,
                    flags: u8,
                    len: usize,
                    syn: bool| {
        ip_id = ip_id.wrapping_add(1);
        let f = if from_client {
            tcp_frame(cli, srv, cp, sp, seq, ack, flags, len, syn, ip_id)
        } else {
            tcp_frame(srv, cli, sp, cp, seq, ack, flags, len, syn, ip_id)
        };
        frames.push((t, from_client, f));
    };
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const PSH: u8 = 0x08;
    const ACK: u8 = 0x10;
    let mut t = t0 + 100 * MS;
    push(&mut frames, t, true, cs, 0, SYN, 0, true);
    cs += 1;
    push(&mut frames, t + 3_000, false, ss, cs, SYN | ACK, 0, true);
    ss += 1;
    push(&mut frames, t + 3_300, true, cs, ss, ACK, 0, false);
    log.push(format!(
        "{} INFO  [12] Remoting.Client - Connected to tcp://10.1.2.20:8085/RemotingServer",
        log_time(t + 3_300)
    ));
    t += 200 * MS;
    for call in 0..12 {
        let req = rng.range(180, 400) as usize;
        let resp = if call % 4 == 3 { 2_400 } else { rng.range(200, 1_200) as usize };
        push(&mut frames, t, true, cs, ss, PSH | ACK, req, false);
        cs = cs.wrapping_add(req as u32);
        let rt = t + rng.range(8_000, 30_000);
        if resp > 1460 {
            push(&mut frames, rt, false, ss, cs, ACK, 1460, false);
            ss = ss.wrapping_add(1460);
            push(&mut frames, rt + 100, false, ss, cs, PSH | ACK, resp - 1460, false);
            ss = ss.wrapping_add((resp - 1460) as u32);
        } else {
            push(&mut frames, rt, false, ss, cs, PSH | ACK, resp, false);
            ss = ss.wrapping_add(resp as u32);
        }
        push(&mut frames, rt + 2_000, true, cs, ss, ACK, 0, false);
        log.push(format!(
            "{} INFO  [{}] Remoting.Client - Call GetOrderStatus completed in {} ms (tcp)",
            log_time(rt + 2_000),
            12 + call % 8,
            (rt - t) / MS + 1
        ));
        t += rng.range(300 * MS, 900 * MS);
    }
    // Graceful close at shutdown.
    push(&mut frames, t, true, cs, ss, FIN | ACK, 0, false);
    cs += 1;
    push(&mut frames, t + 3_000, false, ss, cs, FIN | ACK, 0, false);
    ss += 1;
    push(&mut frames, t + 3_300, true, cs, ss, ACK, 0, false);
    log.push(format!("{} INFO  [1] Remoting.Client - Application stopping; channel closed", log_time(t)));
    let end = t + SEC;
    // Frames above 1000 bytes are logged as two fragments (start, then end), like ndiscap does
    // for multi-buffer NET_BUFFERs.
    for (ft, from_client, f) in frames {
        let dir_kw = if from_client { NDIS_KW_SEND } else { NDIS_KW_RECEIVE };
        let tid = if from_client { 6000 } else { 0 };
        let pid = if from_client { CLIENT_PID } else { 4 };
        if f.len() > 1000 {
            let (a, b) = f.split_at(600);
            tr.push(
                ft,
                pid,
                tid,
                WriterEvent::NdisFragment {
                    miniport_if_index: 12,
                    lower_if_index: 12,
                    keyword: NDIS_KW_PACKET_START | dir_kw,
                    fragment: a.to_vec(),
                },
            );
            tr.push(
                ft + 1,
                pid,
                tid,
                WriterEvent::NdisFragment {
                    miniport_if_index: 12,
                    lower_if_index: 12,
                    keyword: NDIS_KW_PACKET_END | dir_kw,
                    fragment: b.to_vec(),
                },
            );
        } else {
            tr.push(
                ft,
                pid,
                tid,
                WriterEvent::NdisFragment {
                    miniport_if_index: 12,
                    lower_if_index: 12,
                    keyword: NDIS_KW_PACKET_START | NDIS_KW_PACKET_END | dir_kw,
                    fragment: f,
                },
            );
        }
    }
    let records = tr.write(&dir.join("pipes_after_tcp.etl"), t0 - SEC, end)?;
    write_log(&dir.join("pipes_after_tcp_client.log"), &log)?;
    println!("pipes_after_tcp.etl: {records} records");
    Ok(())
}

/// The close/open race on its own: a healthy server (pid 4242, 2 instances) recycles its
/// listener every 1.5 s — it closes every instance and creates new ones 3–9 ms later, the same
/// process throughout. Two client threads call every 5–15 ms, opening and closing the pipe per
/// call; an open that falls into a recycle gap fails with STATUS_OBJECT_NAME_NOT_FOUND, and the
/// client logs "cannot find the file specified" in local time (UTC+01:00), within 1 ms.
fn instance_recycle(dir: &Path) -> std::io::Result<()> {
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
    enum Ev {
        Attempt { thread: u32 },
        Close { thread: u32, slot: usize, fo: u64 },
        Recycle,
        Create { slot: usize },
    }
    let t0 = base_ft();
    let clock = 3600 * SEC;
    let mut rng = Rng(0x2EC7_C1E0_0000_0006);
    let mut tr = Trace::new();
    let mut log = vec![format!(
        "{} INFO  [1] Remoting.Client - Application started; channel ipc://RemotingServer",
        log_time(t0 - 200 * MS + clock)
    )];
    // Per instance slot: the server's FileObject and whether a client holds it.
    let mut slots: [Option<(u64, bool)>; 2] = [None; 2];
    for (i, s) in slots.iter_mut().enumerate() {
        let fo = tr.create(t0 + i as i64 * MS, SERVER_PID, 4300 + i as u32, PIPE, if i == 0 { 2 } else { 3 }, 0);
        *s = Some((fo, false));
    }
    let end = t0 + 20 * SEC;
    let mut q: BinaryHeap<Reverse<(i64, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut at = |q: &mut BinaryHeap<Reverse<(i64, u64, Ev)>>, t: i64, e: Ev| {
        seq += 1;
        q.push(Reverse((t, seq, e)));
    };
    for thread in 0..2 {
        at(&mut q, t0 + 50 * MS + thread as i64 * 3 * MS, Ev::Attempt { thread });
    }
    let mut r = t0 + SEC;
    while r < end - SEC {
        at(&mut q, r + rng.range(0, 200 * MS), Ev::Recycle);
        r += 1500 * MS;
    }
    let (mut ok, mut nf, mut recycles) = (0, 0, 0);
    while let Some(Reverse((t, _, ev))) = q.pop() {
        match ev {
            Ev::Attempt { thread } => {
                if t > end {
                    continue;
                }
                let tid = 6000 + thread;
                if let Some(slot) = slots.iter().position(|s| matches!(s, Some((_, false)))) {
                    let fo = tr.create(t, CLIENT_PID, tid, PIPE, 1, 0);
                    if let Some((_, held)) = slots[slot].as_mut() {
                        *held = true;
                    }
                    ok += 1;
                    at(&mut q, t + rng.range(MS, 4 * MS), Ev::Close { thread, slot, fo });
                } else {
                    // Both instances gone (recycling); two threads never hold both instances at
                    // once while a third call comes, so the pipe is never busy here.
                    tr.create(t, CLIENT_PID, tid, PIPE, 1, STATUS_OBJECT_NAME_NOT_FOUND);
                    nf += 1;
                    log.push(format!(
                        "{} ERROR [{}] Remoting.Client - RemotingException: Failed to connect to an IPC Port: The system cannot find the file specified.",
                        log_time(t + rng.range(MS / 10, MS) + clock),
                        12 + thread
                    ));
                    at(&mut q, t + rng.range(5 * MS, 15 * MS), Ev::Attempt { thread });
                }
            }
            Ev::Close { thread, slot, fo } => {
                tr.close(t, CLIENT_PID, 6000 + thread, fo);
                if let Some((_, held)) = slots[slot].as_mut() {
                    *held = false;
                }
                at(&mut q, t + rng.range(5 * MS, 15 * MS), Ev::Attempt { thread });
            }
            Ev::Recycle => {
                recycles += 1;
                for slot in 0..slots.len() {
                    if let Some((fo, _)) = slots[slot].take() {
                        tr.close(t + slot as i64 * 2_000, SERVER_PID, 4300 + slot as u32, fo);
                    }
                    at(&mut q, t + rng.range(3 * MS, 9 * MS), Ev::Create { slot });
                }
            }
            Ev::Create { slot } => {
                let fo = tr.create(t, SERVER_PID, 4300 + slot as u32, PIPE, 3, 0);
                slots[slot] = Some((fo, false));
            }
        }
    }
    let records = tr.write(&dir.join("pipes_instance_recycle.etl"), t0 - SEC, end + SEC)?;
    log.sort();
    write_log(&dir.join("pipes_instance_recycle_client.log"), &log)?;
    println!("pipes_instance_recycle.etl: {records} records, {recycles} recycles, {ok} opens ok, {nf} not found");
    Ok(())
}

fn write_log(path: &Path, lines: &[String]) -> std::io::Result<()> {
    let mut w = BufWriter::new(fs::File::create(path)?);
    for l in lines {
        writeln!(w, "{l}")?;
    }
    w.flush()
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples"));
    fs::create_dir_all(&dir)?;
    busy_storm(&dir)?;
    storm_local(&dir)?;
    instance_recycle(&dir)?;
    healthy_reuse(&dir)?;
    after_tcp(&dir)?;
    Ok(())
}
