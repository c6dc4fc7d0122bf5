//! Throughput and memory of `ipcscope analyze` (outputs included) on generated captures, against
//! `tshark -q -n -z conv,tcp` and `tcptrace -n` on the same files in the same run.
//!
//! Run: `CARGO_BUILD_JOBS=1 cargo bench --locked --bench pcap_throughput -- [CASE...] [--keep DIR]`
//! with CASE among `large` (few large flows), `short150k` (150 k short connections, one stale
//! connection inside: the needle must be the only finding), `short1m`, `small` (64-byte packets over
//! 100 k live connections), `short10k`, `short100k`, `short10m` (the cost-per-connection line; 10 M
//! skips tshark and tcptrace, which take many minutes). Default: large short150k short1m small.
//! Each case prints MB/s, packets/s, peak RSS (wait4's ru_maxrss of the child), bytes of peak RSS per
//! connection, and each tool's wall time. See docs/performance.md for the figures. `BENCH_OTHERS=0`
//! runs ipcscope alone (for profiling rounds, not for published figures).
//!
//! Short connections are spread over hours (a busy server's day): a closed connection stays in the
//! TCP table for ten minutes (`CLOSED_LINGER_NS`), so what is live at once is what ten minutes hold.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;
const SYN_ACK: u8 = 0x12;
const RST: u8 = 0x04;

struct Pcap {
    w: BufWriter<File>,
    buf: Vec<u8>,
    bytes: u64,
    packets: u64,
}

/// One side of a segment: IPv4 address and port.
type Ep = ([u8; 4], u16);

impl Pcap {
    fn create(path: &Path) -> std::io::Result<Pcap> {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
        // Classic pcap, microseconds, Ethernet.
        w.write_all(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0])?;
        Ok(Pcap { w, buf: Vec::with_capacity(1600), bytes: 24, packets: 0 })
    }

    /// An Ethernet/IPv4/TCP frame at `ts_us` with `payload` bytes.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        ts_us: u64,
        src: Ep,
        dst: Ep,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: usize,
    ) -> std::io::Result<()> {
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
        let total = (40 + payload) as u16;
        b.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 6, 0, 0]);
        b.extend_from_slice(&src.0);
        b.extend_from_slice(&dst.0);
        b.extend_from_slice(&src.1.to_be_bytes());
        b.extend_from_slice(&dst.1.to_be_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&ack.to_be_bytes());
        b.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        b.resize(b.len() + payload, 0x5a);
        let n = b.len() as u32;
        self.w.write_all(&((ts_us / 1_000_000) as u32).to_le_bytes())?;
        self.w.write_all(&((ts_us % 1_000_000) as u32).to_le_bytes())?;
        self.w.write_all(&n.to_le_bytes())?;
        self.w.write_all(&n.to_le_bytes())?;
        self.w.write_all(&self.buf)?;
        self.bytes += 16 + n as u64;
        self.packets += 1;
        Ok(())
    }
}

const T0_US: u64 = 1_700_000_000_000_000;

/// Long-lived connections: handshakes, then rounds of request/response, then closes, about `mb`
/// megabytes. `small`: 10-byte responses (64-byte frames), else 1460-byte ones.
fn write_long_flows(path: &Path, flows: u32, mb: u64, small: bool) -> std::io::Result<(u64, u64)> {
    let mut o = Pcap::create(path)?;
    let client = |f: u32| -> Ep { ([10, 1, (f >> 8) as u8, f as u8], 49152 + (f % 16000) as u16) };
    let server = |f: u32| -> Ep { ([10, 200, (f >> 16) as u8, 1 + (f % 50) as u8], 445) };
    let isn_c = |f: u32| f.wrapping_mul(7919);
    let isn_s = |f: u32| f.wrapping_mul(104_729);
    let mut ts = T0_US;
    for f in 0..flows {
        ts += 3;
        o.emit(ts, client(f), server(f), isn_c(f), 0, SYN, 0)?;
        o.emit(ts + 1, server(f), client(f), isn_s(f), isn_c(f) + 1, SYN_ACK, 0)?;
        o.emit(ts + 2, client(f), server(f), isn_c(f) + 1, isn_s(f) + 1, ACK, 0)?;
    }
    let (req, resp) = (10u32, if small { 10u32 } else { 1460 });
    let mut round = 0u32;
    while o.bytes + flows as u64 * 2 * 70 < mb * 1_000_000 {
        for f in 0..flows {
            let c = (isn_c(f) + 1).wrapping_add(round.wrapping_mul(req));
            let s = (isn_s(f) + 1).wrapping_add(round.wrapping_mul(resp));
            ts += 3;
            o.emit(ts, client(f), server(f), c, s, PSH_ACK, req as usize)?;
            o.emit(ts + 1, server(f), client(f), s, c.wrapping_add(req), PSH_ACK, resp as usize)?;
        }
        round += 1;
    }
    for f in 0..flows {
        let c = (isn_c(f) + 1).wrapping_add(round.wrapping_mul(req));
        let s = (isn_s(f) + 1).wrapping_add(round.wrapping_mul(resp));
        ts += 3;
        o.emit(ts, client(f), server(f), c, s, FIN_ACK, 0)?;
        o.emit(ts + 1, server(f), client(f), s, c.wrapping_add(1), FIN_ACK, 0)?;
        o.emit(ts + 2, client(f), server(f), c.wrapping_add(1), s.wrapping_add(1), ACK, 0)?;
    }
    o.w.flush()?;
    Ok((o.bytes, o.packets))
}

/// `n` short request/response connections spread over `span_s` seconds, each closed cleanly by the
/// server after its response (SYN, SYN/ACK, ACK, request, response, FIN, FIN, ACK). Clients have at
/// most 1000 connections each (no port is reused). With `needle`, one pooled connection in the
/// middle is the stale-connection incident: the server closes it after 60 s idle, the client acks
/// the FIN but sends its next request 5 s later, and the server answers RST.
fn write_short(path: &Path, n: u64, span_s: u64, needle: bool) -> std::io::Result<(u64, u64)> {
    let mut o = Pcap::create(path)?;
    let gap_us = (span_s * 1_000_000 / n.max(1)).max(500);
    let servers = 8u64;
    let needle_at = n / 2;
    // The needle's late packets, emitted when the clock reaches them: (ts, src, dst, seq, ack, flags, len).
    let mut pending: Vec<(u64, Ep, Ep, u32, u32, u8, usize)> = Vec::new();
    for i in 0..n {
        let ts = T0_US + i * gap_us;
        while pending.first().is_some_and(|p| p.0 <= ts) {
            let p = pending.remove(0);
            o.emit(p.0, p.1, p.2, p.3, p.4, p.5, p.6)?;
        }
        let cl = i / 1000;
        let client: Ep = ([10, 1 + (cl >> 16) as u8, (cl >> 8) as u8, cl as u8], 49152 + (i % 1000) as u16);
        let mut server: Ep = ([10, 200, 0, 1 + (i % servers) as u8], 443);
        if needle && i == needle_at {
            // A pooled connection to a backend of its own: a server that keeps accepting others
            // while one idle connection is closed reads as server_restart (its rule: "or the server
            // accepting again later"), which is not this incident.
            server = ([10, 200, 1, 1], 8443);
        }
        let (c, s) = ((i as u32).wrapping_mul(7919), (i as u32).wrapping_mul(104_729));
        o.emit(ts, client, server, c, 0, SYN, 0)?;
        o.emit(ts + 40, server, client, s, c.wrapping_add(1), SYN_ACK, 0)?;
        o.emit(ts + 80, client, server, c.wrapping_add(1), s.wrapping_add(1), ACK, 0)?;
        o.emit(ts + 90, client, server, c.wrapping_add(1), s.wrapping_add(1), PSH_ACK, 120)?;
        o.emit(ts + 200, server, client, s.wrapping_add(1), c.wrapping_add(121), PSH_ACK, 300)?;
        if needle && i == needle_at {
            // Pooled: the server closes after 60 s idle; the client's next request hits the closed
            // connection 5 s later and is answered by a reset.
            let (c2, s2) = (c.wrapping_add(121), s.wrapping_add(301));
            let fin_at = ts + 60_000_000;
            let late = fin_at + 5_000_000;
            pending.push((ts + 240, client, server, c2, s2, ACK, 0));
            pending.push((fin_at, server, client, s2, c2, FIN_ACK, 0));
            pending.push((fin_at + 40, client, server, c2, s2.wrapping_add(1), ACK, 0));
            pending.push((late, client, server, c2, s2.wrapping_add(1), PSH_ACK, 120));
            pending.push((late + 40, server, client, s2.wrapping_add(1), 0, RST, 0));
            pending.sort_by_key(|p| p.0);
            continue;
        }
        o.emit(ts + 210, server, client, s.wrapping_add(301), c.wrapping_add(121), FIN_ACK, 0)?;
        o.emit(ts + 250, client, server, c.wrapping_add(121), s.wrapping_add(302), FIN_ACK, 0)?;
        o.emit(ts + 290, server, client, s.wrapping_add(302), c.wrapping_add(122), ACK, 0)?;
    }
    for p in pending {
        o.emit(p.0, p.1, p.2, p.3, p.4, p.5, p.6)?;
    }
    o.w.flush()?;
    Ok((o.bytes, o.packets))
}

struct Run {
    wall: f64,
    cpu: f64,
    max_rss_kb: i64,
    status: i32,
}

/// Runs a command, waits for it with wait4 to read its own peak RSS and CPU time.
fn run(mut cmd: Command) -> Run {
    let start = Instant::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(_) => return Run { wall: f64::NAN, cpu: f64::NAN, max_rss_kb: 0, status: -1 },
    };
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 writes only into the status and rusage we pass; the child is ours.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::wait4(pid, &mut status, 0, &mut u);
        u
    };
    let wall = start.elapsed().as_secs_f64();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Run {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss,
        status: (status >> 8) & 0xff,
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Reads the file once so that every tool reads it from the page cache; in chunks, because a
/// child's peak RSS starts from this process's at spawn time.
fn warm(path: &Path) {
    if let Ok(mut file) = File::open(path) {
        let mut chunk = vec![0u8; 1 << 20];
        while matches!(std::io::Read::read(&mut file, &mut chunk), Ok(n) if n > 0) {}
    }
}

/// Kinds in findings.csv (second column), one per row.
fn finding_kinds(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out.join("findings.csv")).unwrap_or_default();
    text.lines().skip(1).filter_map(|l| l.split(',').nth(1).map(|k| k.to_string())).collect()
}

fn connections_rows(out: &Path) -> u64 {
    std::fs::read_to_string(out.join("connections.csv"))
        .map(|t| t.lines().count().saturating_sub(1) as u64)
        .unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn case(name: &str, file: &Path, bytes: u64, packets: u64, dir: &Path, compare: bool, needle: Option<&str>) {
    warm(file);
    let out = dir.join(format!("out-{name}"));
    // IPCSCOPE_BIN: another build of the tool (say, an optimised dev build while release builds).
    let bin = std::env::var("IPCSCOPE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ipcscope").to_string());
    let mut c = Command::new(bin);
    c.args(["analyze", "--quiet", "--out"]).arg(&out).arg(file).stdout(Stdio::null());
    let ours = run(c);
    let conns = connections_rows(&out);
    let kinds = finding_kinds(&out);
    println!(
        "{name:<10} {:>6} MB {:>9} pkts {:>8} conns | ipcscope wall {:>6.2} s (cpu {:>6.2} s) {:>7.0} MB/s {:>5.2} Mpkt/s | peak RSS {:>7.1} MB = {:>5.0} B/conn | exit {}",
        bytes / 1_000_000,
        packets,
        conns,
        ours.wall,
        ours.cpu,
        bytes as f64 / 1e6 / ours.wall,
        packets as f64 / 1e6 / ours.wall,
        ours.max_rss_kb as f64 / 1024.0,
        ours.max_rss_kb as f64 * 1024.0 / conns.max(1) as f64,
        ours.status,
    );
    match needle {
        Some(kind) => {
            let ok = kinds.len() == 1 && kinds[0] == kind;
            println!(
                "{name:<10} needle: findings {kinds:?} -> {}",
                if ok { "FOUND, nothing else flagged" } else { "WRONG" }
            );
        }
        None => println!("{name:<10} findings: {kinds:?}"),
    }
    // BENCH_OTHERS=0: ipcscope alone (profiling rounds); figures for the docs always compare.
    if !compare || std::env::var("BENCH_OTHERS").is_ok_and(|v| v == "0") {
        return;
    }
    if have("tshark") {
        let mut t = Command::new("tshark");
        t.args(["-q", "-n", "-z", "conv,tcp", "-r"]).arg(file).stdout(Stdio::null()).stderr(Stdio::null());
        let r = run(t);
        println!(
            "{name:<10} tshark -q -z conv,tcp wall {:>7.2} s (cpu {:>7.2} s) peak RSS {:>7.1} MB -> ipcscope {:.1}x faster (wall)",
            r.wall,
            r.cpu,
            r.max_rss_kb as f64 / 1024.0,
            r.wall / ours.wall
        );
    }
    if have("tcptrace") {
        let mut t = Command::new("tcptrace");
        t.arg("-n").arg(file).stdout(Stdio::null()).stderr(Stdio::null());
        let r = run(t);
        println!(
            "{name:<10} tcptrace -n          wall {:>7.2} s (cpu {:>7.2} s) peak RSS {:>7.1} MB -> ipcscope {:.1}x faster (wall)",
            r.wall,
            r.cpu,
            r.max_rss_kb as f64 / 1024.0,
            r.wall / ours.wall
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let keep = args.iter().position(|a| a == "--keep").and_then(|i| args.get(i + 1)).map(PathBuf::from);
    let mut cases: Vec<&str> = args.iter().map(|s| s.as_str()).filter(|a| !a.starts_with("--")).collect();
    if let Some(k) = &keep {
        cases.retain(|c| Path::new(c) != k.as_path());
    }
    if cases.is_empty() {
        cases = vec!["large", "short150k", "short1m", "small"];
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("bench dir");
    for name in cases {
        let file = dir.join(format!("{name}.pcap"));
        let made = match name {
            "large" => write_long_flows(&file, 2_000, 200, false).map(|r| (r, true, None)),
            "small" => write_long_flows(&file, 100_000, 200, true).map(|r| (r, true, None)),
            "short10k" => write_short(&file, 10_000, 600, false).map(|r| (r, true, None)),
            "short100k" => write_short(&file, 100_000, 3_600, false).map(|r| (r, true, None)),
            "short150k" => write_short(&file, 150_000, 7_200, true).map(|r| (r, true, Some("stale_connection"))),
            "short1m" => write_short(&file, 1_000_000, 86_400, false).map(|r| (r, true, None)),
            "short10m" => write_short(&file, 10_000_000, 86_400, false).map(|r| (r, false, None)),
            other => {
                eprintln!("unknown case {other}");
                continue;
            }
        };
        let ((bytes, packets), compare, needle) = made.expect("write capture");
        case(name, &file, bytes, packets, &dir, compare, needle);
        if keep.is_none() {
            let _ = std::fs::remove_file(&file);
        }
    }
}
