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

/// Writes a capture of about `mb` megabytes; `small_only` keeps every frame at 64 bytes.
fn write_capture(path: &Path, mb: u64, small_only: bool) -> std::io::Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    w.write_all(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0])?;
    let target = mb * 1_000_000;
    let (mut written, mut packets, mut ts) = (24u64, 0u64, 1_700_000_000_000_000u64);
    let mut buf = Vec::with_capacity(1600);
    let mut round = 0u32;
    while written < target {
        // Each round: every flow opens, exchanges a few segments and closes.
        for flow in 0..FLOWS {
            let isn_c = flow.wrapping_mul(7919).wrapping_add(round);
            let isn_s = flow.wrapping_mul(104_729).wrapping_add(round);
            let big = if small_only { 10 } else { 1460 };
            let steps: [(bool, u32, u32, u8, usize); 7] = [
                (true, isn_c, 0, 0x02, 0),
                (false, isn_s, isn_c + 1, 0x12, 0),
                (true, isn_c + 1, isn_s + 1, 0x10, 0),
                (true, isn_c + 1, isn_s + 1, 0x18, 10),
                (false, isn_s + 1, isn_c + 11, 0x18, big),
                (true, isn_c + 11, isn_s + 1 + big as u32, 0x11, 0),
                (false, isn_s + 1 + big as u32, isn_c + 12, 0x11, 0),
            ];
            for (to_server, seq, ack, flags, len) in steps {
                frame(&mut buf, flow, to_server, seq, ack, flags, len);
                ts += 7;
                record(&mut w, ts, &buf)?;
                written += 16 + buf.len() as u64;
                packets += 1;
            }
            if written >= target {
                break;
            }
        }
        round += 1;
        ts += 300_000_000; // past TIME_WAIT, so 4-tuples are reused cleanly
    }
    w.flush()?;
    Ok(packets)
}

fn peak_rss_kb_of_children() -> i64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss
    }
}

fn run(label: &str, mut cmd: Command, bytes: u64, packets: u64) -> f64 {
    let start = Instant::now();
    let status = cmd.status().expect("run");
    let secs = start.elapsed().as_secs_f64();
    let rss = peak_rss_kb_of_children();
    println!(
        "{label:<34} {:>8.1} MB/s {:>7.2} M packets/s  {:>6.2} s  peak RSS so far {:>7} KB  ({status})",
        bytes as f64 / 1e6 / secs,
        packets as f64 / 1e6 / secs,
        secs,
        rss
    );
    secs
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
        "captures: small {} MB / {} packets, mixed {} MB / {} packets and {} MB / {} packets, {FLOWS} flows per round",
        small_bytes / 1_000_000, small_packets, half_bytes / 1_000_000, half_packets, full_bytes / 1_000_000, full_packets
    );
    // Warm the page cache so both tools read from memory.
    for f in [&small, &half, &full] {
        let _ = std::fs::read(f).map(|d| d.len());
    }
    run("ipcscope small packets", analyze(&small), small_bytes, small_packets);
    run("ipcscope mixed (half size)", analyze(&half), half_bytes, half_packets);
    let ours = run("ipcscope mixed", analyze(&full), full_bytes, full_packets);
    if Command::new("tshark").arg("-v").output().is_ok() {
        let mut t = Command::new("tshark");
        t.args(["-q", "-n", "-z", "conv,tcp", "-r"]).arg(&full).stdout(std::process::Stdio::null());
        let theirs = run("tshark -q -z conv,tcp mixed", t, full_bytes, full_packets);
        println!("ipcscope is {:.1}x tshark's throughput", theirs / ours);
    } else {
        println!("tshark not installed: no comparison");
    }
}
