//! Throughput and memory of `ipcscope analyze` on large generated captures, against
//! `tshark -q -z conv,tcp` when tshark is installed.
//!
//! Run: `cargo bench --bench pcap_throughput` (optional argument: size in MB of the mixed capture,
//! default 400). It writes two captures in a temporary folder: one of small packets only (64-byte
//! frames: the packets/s figure) and one mixed (small ACKs and 1514-byte segments over many
//! flows, at two sizes: peak RSS must not grow with the file), runs the release binary on each and
//! prints MB/s, packets/s and peak RSS.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const FLOWS: u32 = 20_000;

fn record(w: &mut impl Write, ts_us: u64, frame: &[u8]) -> std::io::Result<()> {
    w.write_all(&((ts_us / 1_000_000) as u32).to_le_bytes())?;
    w.write_all(&((ts_us % 1_000_000) as u32).to_le_bytes())?;
    w.write_all(&(frame.len() as u32).to_le_bytes())?;
    w.write_all(&(frame.len() as u32).to_le_bytes())?;
    w.write_all(frame)
}

/// An Ethernet/IPv4/TCP frame with `payload` bytes.
fn frame(buf: &mut Vec<u8>, flow: u32, to_server: bool, seq: u32, ack: u32, flags: u8, payload: usize) {
    buf.clear();
    buf.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
    let total = (40 + payload) as u16;
    let client = [10, 1, (flow >> 8) as u8, flow as u8];
    let server = [10, 200, 0, 1 + (flow % 50) as u8];
    let (src, dst) = if to_server { (client, server) } else { (server, client) };
    buf.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 6, 0, 0]);
    buf.extend_from_slice(&src);
    buf.extend_from_slice(&dst);
    let cport = 49152 + (flow % 16000) as u16;
    let (sp, dp) = if to_server { (cport, 445u16) } else { (445u16, cport) };
    buf.extend_from_slice(&sp.to_be_bytes());
    buf.extend_from_slice(&dp.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&ack.to_be_bytes());
    buf.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    buf.resize(buf.len() + payload, 0x5a);
}

/// Writes a capture of about `mb` megabytes over `FLOWS` long-lived connections: handshakes,
/// then rounds of request/response segments (64-byte frames when `small_only`, else a 10-byte
/// request and a 1460-byte response), then closes. A bigger file has the same connections and
/// more packets, so memory must not grow with it.
fn write_capture(path: &Path, mb: u64, small_only: bool) -> std::io::Result<u64> {
    struct Out {
        w: BufWriter<File>,
        buf: Vec<u8>,
        written: u64,
        packets: u64,
        ts: u64,
    }
    impl Out {
        fn emit(&mut self, flow: u32, to_server: bool, seq: u32, ack: u32, flags: u8, len: u32) -> std::io::Result<()> {
            frame(&mut self.buf, flow, to_server, seq, ack, flags, len as usize);
            self.ts += 3;
            record(&mut self.w, self.ts, &self.buf)?;
            self.written += 16 + self.buf.len() as u64;
            self.packets += 1;
            Ok(())
        }
    }
    let mut o = Out {
        w: BufWriter::with_capacity(1 << 20, File::create(path)?),
        buf: Vec::with_capacity(1600),
        written: 24,
        packets: 0,
        ts: 1_700_000_000_000_000,
    };
    o.w.write_all(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0])?;
    let target = mb * 1_000_000;
    let isn_c = |f: u32| f.wrapping_mul(7919);
    let isn_s = |f: u32| f.wrapping_mul(104_729);
    for f in 0..FLOWS {
        o.emit(f, true, isn_c(f), 0, 0x02, 0)?;
        o.emit(f, false, isn_s(f), isn_c(f) + 1, 0x12, 0)?;
        o.emit(f, true, isn_c(f) + 1, isn_s(f) + 1, 0x10, 0)?;
    }
    let (req, resp) = (10u32, if small_only { 10u32 } else { 1460 });
    let mut round = 0u32;
    // Leave room for the closing FINs.
    while o.written + FLOWS as u64 * 2 * 70 < target {
        for f in 0..FLOWS {
            let c = (isn_c(f) + 1).wrapping_add(round.wrapping_mul(req));
            let s = (isn_s(f) + 1).wrapping_add(round.wrapping_mul(resp));
            o.emit(f, true, c, s, 0x18, req)?;
            o.emit(f, false, s, c.wrapping_add(req), 0x18, resp)?;
        }
        round += 1;
    }
    for f in 0..FLOWS {
        let c = (isn_c(f) + 1).wrapping_add(round.wrapping_mul(req));
        let s = (isn_s(f) + 1).wrapping_add(round.wrapping_mul(resp));
        o.emit(f, true, c, s, 0x11, 0)?;
        o.emit(f, false, s, c.wrapping_add(1), 0x11, 0)?;
    }
    o.w.flush()?;
    Ok(o.packets)
}

/// Runs a command, waits for it with wait4 to read its own peak RSS and CPU time, and prints
/// throughput by wall time and by CPU time (the latter holds on a busy machine).
fn run(label: &str, mut cmd: Command, bytes: u64, packets: u64) -> f64 {
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 writes only into the status and rusage we pass; the child is ours.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::wait4(pid, &mut status, 0, &mut u);
        u
    };
    let wall = start.elapsed().as_secs_f64();
    let cpu = usage.ru_utime.tv_sec as f64
        + usage.ru_utime.tv_usec as f64 / 1e6
        + usage.ru_stime.tv_sec as f64
        + usage.ru_stime.tv_usec as f64 / 1e6;
    println!(
        "{label:<30} wall {:>6.2} s: {:>7.1} MB/s {:>5.2} Mpkt/s | cpu {:>6.2} s: {:>7.1} MB/s {:>5.2} Mpkt/s | peak RSS {:>7} KB | exit {}",
        wall,
        bytes as f64 / 1e6 / wall,
        packets as f64 / 1e6 / wall,
        cpu,
        bytes as f64 / 1e6 / cpu,
        packets as f64 / 1e6 / cpu,
        usage.ru_maxrss,
        (status >> 8) & 0xff
    );
    cpu
}

fn main() {
    let mb: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(400);
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = env!("CARGO_BIN_EXE_ipcscope");
    let analyze = |file: &Path| {
        let mut c = Command::new(bin);
        c.args(["analyze", "--quiet", "--out"]).arg(dir.path().join("out")).arg(file);
        c
    };
    let small = dir.path().join("small.pcap");
    let small_packets = write_capture(&small, mb / 2, true).expect("write");
    let small_bytes = std::fs::metadata(&small).map(|m| m.len()).unwrap_or(0);
    let half = dir.path().join("mixed_half.pcap");
    let half_packets = write_capture(&half, mb / 2, false).expect("write");
    let half_bytes = std::fs::metadata(&half).map(|m| m.len()).unwrap_or(0);
    let full = dir.path().join("mixed.pcap");
    let full_packets = write_capture(&full, mb, false).expect("write");
    let full_bytes = std::fs::metadata(&full).map(|m| m.len()).unwrap_or(0);
    println!(
        "captures: small {} MB / {} packets, mixed {} MB / {} packets and {} MB / {} packets, {FLOWS} connections each",
        small_bytes / 1_000_000,
        small_packets,
        half_bytes / 1_000_000,
        half_packets,
        full_bytes / 1_000_000,
        full_packets
    );
    // Warm the page cache so both tools read from memory; in chunks, because a child's peak RSS
    // starts from this process's at spawn time.
    for f in [&small, &half, &full] {
        if let Ok(mut file) = File::open(f) {
            let mut chunk = vec![0u8; 1 << 20];
            while matches!(std::io::Read::read(&mut file, &mut chunk), Ok(n) if n > 0) {}
        }
    }
    run("ipcscope small packets", analyze(&small), small_bytes, small_packets);
    run("ipcscope mixed (half size)", analyze(&half), half_bytes, half_packets);
    let ours = run("ipcscope mixed", analyze(&full), full_bytes, full_packets);
    if Command::new("tshark").arg("-v").output().is_ok() {
        let mut t = Command::new("tshark");
        t.args(["-q", "-n", "-z", "conv,tcp", "-r"]).arg(&full).stdout(std::process::Stdio::null());
        let theirs = run("tshark -q -z conv,tcp mixed", t, full_bytes, full_packets);
        println!("ipcscope needs {:.1}x less CPU time than tshark on the same file", theirs / ours);
    } else {
        println!("tshark not installed: no comparison");
    }
}
