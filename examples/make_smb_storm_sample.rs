//! Writes `samples/smb_pipes_busy_storm.pcap`: the seed-1 pipe storm as a remote client would
//! show it in a packet capture, SMB2 over TCP 445.
//!
//! Samba cannot be made to answer a pipe open busy (its pipes have no instance limit) and its
//! rpc servers do not close and re-create instances, so this capture is generated, not staged.
//! The operations are those of `samples/pipes_busy_storm.etl` (made by `make_pipe_samples`), at
//! the same times: each client Create of `\Device\NamedPipe\RemotingServer` (pid 5120) with its
//! OperationEnd status becomes an SMB2 CREATE of `RemotingServer` on the IPC$ tree with a
//! response of that status (STATUS_PIPE_BUSY / STATUS_PIPE_NOT_AVAILABLE /
//! STATUS_OBJECT_NAME_NOT_FOUND pass through from the server's pipe file system, as srv2 does),
//! and the first Cleanup/Close of its FileObject an SMB2 CLOSE. The server's own instance
//! creations are local to the server and never cross the wire, so they are not in the capture.
//! The client is WEB01 10.1.2.15:49720, the server APP01 10.1.2.20:445, one TCP connection, one
//! session, one tree, responses 120 µs after their requests.
//!
//! The message layout follows the real Samba capture `samples/smb_samba_pipes.pcap` (TREE
//! CONNECT, CREATE, CLOSE and error bodies field by field); `tshark` reads every CREATE with its
//! status (see tests/smb_pipes.rs). Negotiate and session setup are left out: the capture starts
//! at the TCP handshake and goes straight to TREE CONNECT (nothing in them is read for pipes).
//!
//! Run with `cargo run --example make_smb_storm_sample` (after `make_pipe_samples`).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use ipcscope::analysis::pipes::{is_server_disposition, pipe_name};
use ipcscope::ingest::etl::{decode_file_event, filetime_to_unix_ns, EtlReader, FileEvent, DEFAULT_MERGE_WINDOW};

const CLIENT: ([u8; 4], u16) = ([10, 1, 2, 15], 49720);
const SERVER: ([u8; 4], u16) = ([10, 1, 2, 20], 445);
const SESSION: u64 = 0x0000_1c00_2400_0045;
const TREE: u32 = 0x0000_0005;
const RTT_NS: i64 = 120_000;

/// A client operation of the storm, from the ETL.
enum Op {
    Open { ts: i64, status: u32, fo: u64 },
    Close { ts: i64, fo: u64 },
}

fn storm_ops(etl: &Path) -> Result<Vec<Op>, Box<dyn std::error::Error>> {
    let rd = EtlReader::new(BufReader::new(File::open(etl)?))?;
    let mut pending: HashMap<u64, (i64, u64)> = HashMap::new();
    let mut open: HashMap<u64, ()> = HashMap::new();
    let mut out = Vec::new();
    for rec in rd.time_ordered_window(DEFAULT_MERGE_WINDOW) {
        let rec = rec?;
        let Some(fe) = decode_file_event(&rec.as_ref()) else { continue };
        match fe {
            FileEvent::Create(c) if pipe_name(&c.file_name).is_some() => {
                if is_server_disposition(c.create_disposition()) {
                    continue; // the server's instances: local to the server
                }
                pending.insert(c.irp, (filetime_to_unix_ns(c.origin.filetime) as i64, c.file_object));
            }
            FileEvent::OperationEnd(e) => {
                if let Some((ts, fo)) = pending.remove(&e.irp) {
                    out.push(Op::Open { ts, status: e.status, fo });
                    if e.status >> 30 <= 1 {
                        open.insert(fo, ());
                    }
                }
            }
            FileEvent::Cleanup(h) | FileEvent::Close(h) => {
                if open.remove(&h.file_object).is_some() {
                    out.push(Op::Close { ts: filetime_to_unix_ns(h.origin.filetime) as i64, fo: h.file_object });
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// One SMB2 message to write at `ts`: from the client (`dir` 0) or the server (1).
struct Msg {
    ts: i64,
    dir: usize,
    cmd: u16,
    mid: u64,
    status: u32,
    body: Vec<u8>,
}

fn smb2_bytes(m: &Msg) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(&[0xfe, b'S', b'M', b'B']);
    h[4] = 64;
    h[6] = 1; // CreditCharge
    h[8..12].copy_from_slice(&m.status.to_le_bytes());
    h[12..14].copy_from_slice(&m.cmd.to_le_bytes());
    h[14] = if m.dir == 0 { 0x18 } else { 0x19 }; // credits requested / granted
    h[16..20].copy_from_slice(&(m.dir as u32).to_le_bytes()); // SMB2_FLAGS_SERVER_TO_REDIR on responses
    h[24..32].copy_from_slice(&m.mid.to_le_bytes());
    h[36..40].copy_from_slice(&TREE.to_le_bytes());
    h[40..48].copy_from_slice(&SESSION.to_le_bytes());
    h.extend(&m.body);
    let mut out = vec![0u8];
    out.extend(&(h.len() as u32).to_be_bytes()[1..]);
    out.extend(h);
    out
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet/IPv4/TCP frames in a pcap (microsecond timestamps).
struct Pcap {
    out: Vec<u8>,
    seq: [u32; 2],
    ip_id: [u16; 2],
}

impl Pcap {
    fn new() -> Pcap {
        let mut out = Vec::new();
        out.extend(0xa1b2_c3d4u32.to_le_bytes());
        out.extend([2, 0, 4, 0]);
        out.extend([0u8; 8]);
        out.extend(262_144u32.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        Pcap { out, seq: [0x3a1f_0c01, 0x9b44_7e10], ip_id: [0x1200, 0x6400] }
    }

    fn segment(&mut self, ts: i64, dir: usize, flags: u8, payload: &[u8]) {
        let (src, dst) = if dir == 0 { (CLIENT, SERVER) } else { (SERVER, CLIENT) };
        let mut tcp = Vec::with_capacity(20 + payload.len());
        tcp.extend(src.1.to_be_bytes());
        tcp.extend(dst.1.to_be_bytes());
        tcp.extend(self.seq[dir].to_be_bytes());
        let ack = if flags == 0x02 { 0 } else { self.seq[1 - dir] };
        tcp.extend(ack.to_be_bytes());
        tcp.extend([0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]); // window 64240
        tcp.extend(payload);
        let mut pseudo = Vec::new();
        pseudo.extend(src.0);
        pseudo.extend(dst.0);
        pseudo.extend([0, 6]);
        pseudo.extend((tcp.len() as u16).to_be_bytes());
        pseudo.extend(&tcp);
        let c = checksum(&pseudo);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        let mut ip = vec![0x45, 0];
        ip.extend(((20 + tcp.len()) as u16).to_be_bytes());
        ip.extend(self.ip_id[dir].to_be_bytes());
        self.ip_id[dir] = self.ip_id[dir].wrapping_add(1);
        ip.extend([0x40, 0, 128, 6, 0, 0]);
        ip.extend(src.0);
        ip.extend(dst.0);
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        // Ethernet: destination then source MAC (WEB01 …:0f, APP01 …:14).
        let (web, app) = ([0x00, 0x15, 0x5d, 0x01, 0x02, 0x0f], [0x00, 0x15, 0x5d, 0x01, 0x02, 0x14]);
        let mut f: Vec<u8> = if dir == 0 { [app, web].concat() } else { [web, app].concat() };
        f.extend([0x08, 0x00]);
        f.extend(ip);
        f.extend(tcp);
        let syn_fin = (flags & 0x03 != 0) as u32;
        self.seq[dir] = self.seq[dir].wrapping_add(payload.len() as u32 + syn_fin);
        let us = ts.div_euclid(1000);
        self.out.extend(((us / 1_000_000) as u32).to_le_bytes());
        self.out.extend(((us % 1_000_000) as u32).to_le_bytes());
        self.out.extend((f.len() as u32).to_le_bytes());
        self.out.extend((f.len() as u32).to_le_bytes());
        self.out.extend(f);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples");
    let ops = storm_ops(&dir.join("pipes_busy_storm.etl"))?;
    let first = ops.iter().map(|o| match o {
        Op::Open { ts, .. } | Op::Close { ts, .. } => *ts,
    });
    let (t0, t_end) = (first.clone().min().unwrap_or(0), first.max().unwrap_or(0));
    let mut msgs: Vec<Msg> = Vec::new();
    let mut mid = 4u64;
    // TREE CONNECT \\APP01\IPC$ (as in the Samba capture: PathOffset 0x48).
    let path = utf16(r"\\APP01\IPC$");
    let mut tc = vec![9, 0, 0, 0, 0x48, 0];
    tc.extend((path.len() as u16).to_le_bytes());
    tc.extend(&path);
    msgs.push(Msg { ts: t0 - 5_000_000, dir: 0, cmd: 3, mid, status: 0, body: tc });
    let mut tr = vec![0x10, 0, 2, 0, 0x30, 0, 0, 0, 0, 0, 0, 0];
    tr.extend(0x001f_00a9u32.to_le_bytes());
    msgs.push(Msg { ts: t0 - 5_000_000 + RTT_NS, dir: 1, cmd: 3, mid, status: 0, body: tr });
    mid += 1;
    let name = utf16("RemotingServer");
    let mut file_ids: HashMap<u64, u64> = HashMap::new();
    let mut next_fid = 0x0000_0000_0000_1001u64;
    let (mut opens, mut failed, mut closes) = (0, 0, 0);
    for op in &ops {
        match *op {
            Op::Open { ts, status, fo } => {
                let mut b = vec![0u8; 56];
                b[0] = 0x39;
                b[4] = 2; // ImpersonationLevel: Impersonation
                b[24..28].copy_from_slice(&0x0012_019fu32.to_le_bytes()); // read/write, synchronize
                b[32..36].copy_from_slice(&3u32.to_le_bytes()); // share read/write
                b[36..40].copy_from_slice(&1u32.to_le_bytes()); // FILE_OPEN
                b[40..44].copy_from_slice(&0x40u32.to_le_bytes()); // FILE_NON_DIRECTORY_FILE
                b[44..46].copy_from_slice(&0x78u16.to_le_bytes());
                b[46..48].copy_from_slice(&(name.len() as u16).to_le_bytes());
                b.extend(&name);
                msgs.push(Msg { ts, dir: 0, cmd: 5, mid, status: 0, body: b });
                let resp = if status >> 30 <= 1 {
                    let fid = next_fid;
                    next_fid += 1;
                    file_ids.insert(fo, fid);
                    let mut r = vec![0u8; 89];
                    r[0] = 0x59;
                    r[4] = 1; // FILE_OPENED
                    r[56..60].copy_from_slice(&0x80u32.to_le_bytes());
                    r[64..72].copy_from_slice(&fid.to_le_bytes());
                    r[72..80].copy_from_slice(&(fid ^ 0x00a5_0000).to_le_bytes());
                    r
                } else {
                    failed += 1;
                    vec![9, 0, 0, 0, 0, 0, 0, 0, 0]
                };
                opens += 1;
                msgs.push(Msg { ts: ts + RTT_NS, dir: 1, cmd: 5, mid, status, body: resp });
                mid += 1;
            }
            Op::Close { ts, fo } => {
                let Some(fid) = file_ids.remove(&fo) else { continue };
                let mut b = vec![0u8; 24];
                b[0] = 0x18;
                b[8..16].copy_from_slice(&fid.to_le_bytes());
                b[16..24].copy_from_slice(&(fid ^ 0x00a5_0000).to_le_bytes());
                msgs.push(Msg { ts, dir: 0, cmd: 6, mid, status: 0, body: b });
                let mut r = vec![0u8; 60];
                r[0] = 0x3c;
                msgs.push(Msg { ts: ts + RTT_NS, dir: 1, cmd: 6, mid, status: 0, body: r });
                mid += 1;
                closes += 1;
            }
        }
    }
    msgs.sort_by_key(|m| m.ts);
    let mut w = Pcap::new();
    let hs = t0 - 5_100_000;
    w.segment(hs, 0, 0x02, &[]);
    w.segment(hs + RTT_NS / 2, 1, 0x12, &[]);
    w.segment(hs + RTT_NS, 0, 0x10, &[]);
    for m in &msgs {
        w.segment(m.ts, m.dir, 0x18, &smb2_bytes(m));
    }
    // The client keeps its connection open: the capture ends with an SMB2 ECHO after the storm.
    let echo = t_end + 500_000_000;
    w.segment(echo, 0, 0x18, &smb2_bytes(&Msg { ts: echo, dir: 0, cmd: 0x0d, mid, status: 0, body: vec![4, 0, 0, 0] }));
    let pong = Msg { ts: echo + RTT_NS, dir: 1, cmd: 0x0d, mid, status: 0, body: vec![4, 0, 0, 0] };
    w.segment(pong.ts, 1, 0x18, &smb2_bytes(&pong));
    let out = dir.join("smb_pipes_busy_storm.pcap");
    std::fs::write(&out, &w.out)?;
    println!("{}: {} CREATEs ({} failed), {} CLOSEs", out.display(), opens, failed, closes);
    Ok(())
}
