//! Test-only writer of Process Monitor logs (PML version 9, 64-bit, and the CSV export), in the
//! layout the readers were proven on with the real corpus files (docs/procmon.md). It writes
//! only what the readers use: file-system CreateFile/CreatePipe/CloseFile and TCP events, a
//! process table without modules, empty icon, host and port tables. Used by
//! `examples/make_procmon_samples.rs` and tests.

use std::io::{self, Write};
use std::net::SocketAddr;

use super::pml::{FS_CLOSE_FILE, FS_CREATE_FILE, FS_CREATE_PIPE, HEADER_SIZE};
use super::result_text;

/// What an event does.
#[derive(Clone, Debug)]
pub enum WriterOp {
    /// A client open; `disposition` as in NtCreateFile (FILE_OPEN = 1).
    CreateFile { disposition: u8 },
    /// A server creating a pipe instance (IRP_MJ_CREATE_NAMED_PIPE).
    CreatePipe,
    /// IRP_MJ_CLEANUP of a handle.
    CloseFile,
    /// A TCP event (`op` is Procmon's network operation number: 2 Send, 3 Receive, 4 Accept,
    /// 5 Connect, 6 Disconnect, 7 Reconnect, 8 Retransmit); `local -> remote`.
    Tcp { op: u16, local: SocketAddr, remote: SocketAddr, length: u32 },
}

#[derive(Clone, Debug)]
pub struct WriterEvent {
    /// UTC, ns since the Unix epoch.
    pub ts: i64,
    pub pid: u32,
    pub tid: u32,
    pub process: String,
    pub op: WriterOp,
    /// File path (ignored for TCP events: the path is the addresses).
    pub path: String,
    pub status: u32,
}

const FT_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

fn filetime(ns: i64) -> u64 {
    (ns.div_euclid(100) + FT_UNIX_EPOCH) as u64
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn ip16(a: &SocketAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        SocketAddr::V4(v) => b[..4].copy_from_slice(&v.ip().octets()),
        SocketAddr::V6(v) => b.copy_from_slice(&v.ip().octets()),
    }
    b
}

fn details(ev: &WriterEvent) -> (u32, u16, Vec<u8>) {
    match &ev.op {
        WriterOp::Tcp { op, local, remote, length } => {
            let mut d = Vec::new();
            let flags: u16 = 4 | u16::from(local.is_ipv4()) | (u16::from(remote.is_ipv4()) << 1);
            d.extend_from_slice(&flags.to_le_bytes());
            d.extend_from_slice(&[0, 0]);
            d.extend_from_slice(&length.to_le_bytes());
            d.extend_from_slice(&ip16(local));
            d.extend_from_slice(&ip16(remote));
            d.extend_from_slice(&local.port().to_le_bytes());
            d.extend_from_slice(&remote.port().to_le_bytes());
            // No extra "name: value" pairs: an empty multi-string.
            d.extend_from_slice(&[0, 0, 0, 0]);
            (5, *op, d)
        }
        op => {
            let (code, disposition) = match op {
                WriterOp::CreateFile { disposition } => (FS_CREATE_FILE, *disposition),
                WriterOp::CreatePipe => (FS_CREATE_PIPE, 3),
                _ => (FS_CLOSE_FILE, 0),
            };
            // Sub-operation, padding, the 64-bit parameter block (disposition in the top byte of
            // the u32 at 0x14), then the path.
            let mut d = vec![0u8; 4 + 8 * 5 + 0x14];
            if code != FS_CLOSE_FILE {
                let v = (disposition as u32) << 24;
                d[4 + 0x14..4 + 0x18].copy_from_slice(&v.to_le_bytes());
            }
            let units = ev.path.encode_utf16().count().min(0x7fff) as u16;
            d.extend_from_slice(&units.to_le_bytes());
            d.extend_from_slice(&[0, 0]);
            d.extend_from_slice(&utf16(&ev.path));
            (3, code, d)
        }
    }
}

/// Writes a 64-bit PML version 9 file.
pub fn write_pml(out: &mut impl Write, events: &[WriterEvent], computer: &str) -> io::Result<()> {
    // Processes in order of first appearance.
    let mut procs: Vec<(u32, String)> = Vec::new();
    for e in events {
        if !procs.iter().any(|(p, n)| *p == e.pid && *n == e.process) {
            procs.push((e.pid, e.process.clone()));
        }
    }
    let proc_index = |e: &WriterEvent| procs.iter().position(|(p, n)| *p == e.pid && *n == e.process).unwrap_or(0);

    let mut body = Vec::new();
    let mut offsets = Vec::with_capacity(events.len());
    for e in events {
        offsets.push(HEADER_SIZE + body.len());
        let (class, op, d) = details(e);
        body.extend_from_slice(&(proc_index(e) as u32).to_le_bytes());
        body.extend_from_slice(&e.tid.to_le_bytes());
        body.extend_from_slice(&class.to_le_bytes());
        body.extend_from_slice(&op.to_le_bytes());
        body.extend_from_slice(&[0u8; 6]);
        body.extend_from_slice(&0u64.to_le_bytes()); // duration
        body.extend_from_slice(&filetime(e.ts).to_le_bytes());
        body.extend_from_slice(&e.status.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes()); // stack depth
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&(d.len() as u32).to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes()); // no extra details
        body.extend_from_slice(&d);
    }
    let offsets_at = HEADER_SIZE + body.len();
    for o in &offsets {
        body.extend_from_slice(&(*o as u32).to_le_bytes());
        body.push(0);
    }

    // Strings: 0 = empty, then each process name.
    let mut strings: Vec<String> = vec![String::new()];
    strings.extend(procs.iter().map(|(_, n)| n.clone()));

    let proc_at = HEADER_SIZE + body.len();
    let n = procs.len();
    let mut table = Vec::new();
    table.extend_from_slice(&(n as u32).to_le_bytes());
    for i in 0..n {
        table.extend_from_slice(&(i as u32).to_le_bytes());
    }
    // Fixed fields up to the module count (0x68) for a 64-bit log; no modules.
    let entry_len = 0x6C;
    let first = 4 + 8 * n;
    for i in 0..n {
        table.extend_from_slice(&((first + i * entry_len) as u32).to_le_bytes());
    }
    for (i, (pid, _)) in procs.iter().enumerate() {
        let mut p = vec![0u8; entry_len];
        p[0..4].copy_from_slice(&(i as u32).to_le_bytes());
        p[4..8].copy_from_slice(&pid.to_le_bytes());
        p[0x34..0x38].copy_from_slice(&1u32.to_le_bytes()); // 64-bit process
        p[0x40..0x44].copy_from_slice(&((i + 1) as u32).to_le_bytes()); // name
        table.extend_from_slice(&p);
    }
    body.extend_from_slice(&table);

    let strings_at = HEADER_SIZE + body.len();
    let mut st = Vec::new();
    st.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    let mut data = Vec::new();
    let data_start = 4 + 4 * strings.len();
    for s in &strings {
        st.extend_from_slice(&((data_start + data.len()) as u32).to_le_bytes());
        let mut u = utf16(s);
        u.extend_from_slice(&[0, 0]);
        data.extend_from_slice(&(u.len() as u32).to_le_bytes());
        data.extend_from_slice(&u);
    }
    st.extend_from_slice(&data);
    body.extend_from_slice(&st);

    let icons_at = HEADER_SIZE + body.len();
    body.extend_from_slice(&0u32.to_le_bytes());
    let hosts_at = HEADER_SIZE + body.len();
    body.extend_from_slice(&0u32.to_le_bytes()); // host names
    body.extend_from_slice(&0u32.to_le_bytes()); // ports

    let mut h = vec![0u8; HEADER_SIZE];
    h[0..4].copy_from_slice(b"PML_");
    h[4..8].copy_from_slice(&9u32.to_le_bytes());
    h[8..12].copy_from_slice(&1u32.to_le_bytes());
    let name: Vec<u8> = utf16(computer).into_iter().take(0x1e).collect();
    h[0x0C..0x0C + name.len()].copy_from_slice(&name);
    let root = utf16(r"C:\Windows");
    h[0x2C..0x2C + root.len()].copy_from_slice(&root);
    h[0x234..0x238].copy_from_slice(&(events.len() as u32).to_le_bytes());
    for (at, v) in [
        (0x240, HEADER_SIZE),
        (0x248, offsets_at),
        (0x250, proc_at),
        (0x258, strings_at),
        (0x260, icons_at),
        (0x398, HEADER_SIZE),
        (0x3A0, hosts_at),
    ] {
        h[at..at + 8].copy_from_slice(&(v as u64).to_le_bytes());
    }
    for (at, v) in [(0x274, 10u32), (0x278, 0), (0x27C, 19045), (0x38C, 2)] {
        h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    out.write_all(&h)?;
    out.write_all(&body)
}

/// `7:37:18.2093997 AM` for ns since midnight.
fn time_of_day(ns: i64) -> String {
    let ticks = ns.rem_euclid(86_400 * 1_000_000_000) / 100;
    let secs = ticks / 10_000_000;
    let frac = ticks % 10_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    format!("{h12}:{m:02}:{s:02}.{frac:07} {}", if h < 12 { "AM" } else { "PM" })
}

fn csv_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Writes Procmon's CSV export with its default columns (Time of Day, Process Name, PID,
/// Operation, Path, Result, Detail) plus TID, UTF-8 with BOM, at local time = UTC + `offset_s`.
pub fn write_csv(out: &mut impl Write, events: &[WriterEvent], offset_s: i64) -> io::Result<()> {
    out.write_all(b"\xEF\xBB\xBF")?;
    writeln!(out, "\"Time of Day\",\"Process Name\",\"PID\",\"Operation\",\"Path\",\"Result\",\"Detail\",\"TID\"\r")?;
    for e in events {
        let local = e.ts + offset_s * 1_000_000_000;
        let disposition = |d: u8| {
            ["Supersede", "Open", "Create", "OpenIf", "Overwrite", "OverwriteIf"]
                .get(d as usize)
                .copied()
                .unwrap_or("?")
        };
        let (operation, path, detail) = match &e.op {
            WriterOp::CreateFile { disposition: d } => (
                "CreateFile".to_string(),
                e.path.clone(),
                format!("Desired Access: Generic Read/Write, Disposition: {}, Options: Non-Directory File, Attributes: n/a, ShareMode: None, AllocationSize: n/a", disposition(*d)),
            ),
            WriterOp::CreatePipe => (
                "CreatePipe".to_string(),
                e.path.clone(),
                "Desired Access: Generic Read/Write, Disposition: OpenIf, Options: Synchronous IO Non-Alert".to_string(),
            ),
            WriterOp::CloseFile => ("CloseFile".to_string(), e.path.clone(), String::new()),
            WriterOp::Tcp { op, local, remote, length } => {
                let name = ["Unknown", "Other", "Send", "Receive", "Accept", "Connect", "Disconnect", "Reconnect", "Retransmit"]
                    .get(*op as usize)
                    .copied()
                    .unwrap_or("Other");
                (format!("TCP {name}"), format!("{local} -> {remote}"), format!("Length: {length}"))
            }
        };
        writeln!(
            out,
            "{},{},{},{},{},{},{},{}\r",
            csv_quote(&time_of_day(local)),
            csv_quote(&e.process),
            csv_quote(&e.pid.to_string()),
            csv_quote(&operation),
            csv_quote(&path),
            csv_quote(&result_text(e.status)),
            csv_quote(&detail),
            csv_quote(&e.tid.to_string()),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::pml::filetime_ns;
    use super::super::{CsvReader, PmlReader};
    use super::*;

    fn sample() -> Vec<WriterEvent> {
        let base = 1_795_342_500_000_000_000; // 2026-11-22 10:15:00 UTC
        let ev = |ms: i64, op: WriterOp, status: u32| WriterEvent {
            ts: base + ms * 1_000_000 + 1234,
            pid: 5120,
            tid: 77,
            process: "w3wp.exe".into(),
            op,
            path: r"\Device\NamedPipe\RemotingServer".into(),
            status,
        };
        vec![
            ev(0, WriterOp::CreatePipe, 0),
            ev(1, WriterOp::CreateFile { disposition: 1 }, 0xC000_00AE),
            ev(2, WriterOp::CloseFile, 0),
            ev(
                3,
                WriterOp::Tcp {
                    op: 5,
                    local: "10.1.2.15:50000".parse().expect("addr"),
                    remote: "10.1.2.20:8085".parse().expect("addr"),
                    length: 0,
                },
                0,
            ),
        ]
    }

    #[test]
    fn pml_round_trip() {
        let evs = sample();
        let mut b = Vec::new();
        write_pml(&mut b, &evs, "WEB01").expect("write");
        let len = b.len() as u64;
        let rd = PmlReader::new(std::io::Cursor::new(b), len).expect("header");
        assert!(rd.header.is_64bit);
        let got: Vec<_> = rd.map(|r| r.expect("event")).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].operation, "CreatePipe");
        assert_eq!(got[0].disposition, Some(3));
        assert_eq!(got[1].operation, "CreateFile");
        assert_eq!(got[1].result, "PIPE BUSY");
        assert_eq!(got[1].path, r"\Device\NamedPipe\RemotingServer");
        assert_eq!(got[1].process, "w3wp.exe");
        assert_eq!(got[1].ts, evs[1].ts / 100 * 100);
        assert_eq!(filetime_ns(filetime(evs[1].ts)), evs[1].ts / 100 * 100);
        assert_eq!(got[3].operation, "TCP Connect");
        assert_eq!(got[3].path, "10.1.2.15:50000 -> 10.1.2.20:8085");
    }

    #[test]
    fn csv_round_trip_and_truncation_keeps_the_prefix() {
        let evs = sample();
        let mut b = Vec::new();
        write_csv(&mut b, &evs, 3600).expect("write");
        let got: Vec<_> = CsvReader::new(&b[..]).expect("header").map(|r| r.expect("row")).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[1].status, Some(0xC000_00AE));
        assert_eq!(got[1].ts, (evs[1].ts + 3_600_000_000_000).rem_euclid(86_400_000_000_000) / 100 * 100);
        assert_eq!(got[3].net.map(|n| n.dst.port()), Some(8085));
        // A PML cut inside the events: the events before the cut are read, then one error.
        let mut p = Vec::new();
        write_pml(&mut p, &evs, "WEB01").expect("write");
        let len = p.len() as u64;
        let mut rd = PmlReader::new(std::io::Cursor::new(p.clone()), len).expect("header");
        assert!(rd.next().expect("first").is_ok());
        // Damage the second event's offset in the offset array.
        let arr = u64::from_le_bytes(p[0x248..0x250].try_into().expect("8")) as usize;
        p[arr + 5..arr + 9].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut rd = PmlReader::new(std::io::Cursor::new(p), len).expect("header");
        assert!(rd.next().expect("first").is_ok());
        let err = rd.next().expect("second").expect_err("damaged");
        assert!(err.to_string().contains("outside the file"), "{err}");
        assert!(rd.next().is_none());
    }
}
