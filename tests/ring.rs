//! Ring-buffer files recognised by content: a corpus capture split into files (as `editcap -c N`
//! splits, done here in Rust so the test needs no Wireshark) and renamed to unrelated names reads
//! as the whole file; captures that do not continue each other stay apart.
//!
//! `cs_*` captures are Chris Sanders' (Practical Packet Analysis); `sv_*` come from the
//! Suricata-verify suite (see the corpus README).

mod common;

use std::path::{Path, PathBuf};

use ipcscope::analysis::{Analysis, Options};
use ipcscope::pipeline::{analyze_paths, NoProgress};

fn analyze(paths: &[PathBuf]) -> Analysis {
    analyze_paths(paths, &Options::default(), &NoProgress)
}

/// Splits a capture into files of `per_file` packets, each starting with the file's header (pcap)
/// or its section header and interface blocks (pcapng), as `editcap -c` does.
fn split(bytes: &[u8], per_file: usize) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    if bytes[..4] == [0x0A, 0x0D, 0x0D, 0x0A] {
        let le = bytes[8..12] == [0x4D, 0x3C, 0x2B, 0x1A];
        let u32_at = |at: usize| {
            let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
            if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let (mut head, mut cur, mut n) = (Vec::new(), Vec::new(), 0usize);
        let mut at = 0;
        while at + 12 <= bytes.len() {
            let (kind, len) = (u32_at(at), u32_at(at + 4) as usize);
            let block = &bytes[at..at + len];
            match kind {
                // Section header, interface description: part of every file's head.
                0x0A0D_0D0A | 1 => head.extend_from_slice(block),
                6 | 3 => {
                    if n == 0 {
                        cur = head.clone();
                    }
                    cur.extend_from_slice(block);
                    n += 1;
                    if n == per_file {
                        parts.push(std::mem::take(&mut cur));
                        n = 0;
                    }
                }
                // Statistics, name resolution, …: dropped, as editcap keeps them only in the first file.
                _ => {}
            }
            at += len;
        }
        if n > 0 {
            parts.push(cur);
        }
    } else {
        let le = bytes[0] == 0xD4 || bytes[0] == 0x4D;
        let u32_at = |at: usize| {
            let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
            if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let head = &bytes[..24];
        let (mut cur, mut n, mut at) = (Vec::new(), 0usize, 24);
        while at + 16 <= bytes.len() {
            let len = 16 + u32_at(at + 8) as usize;
            if n == 0 {
                cur = head.to_vec();
            }
            cur.extend_from_slice(&bytes[at..at + len]);
            n += 1;
            if n == per_file {
                parts.push(std::mem::take(&mut cur));
                n = 0;
            }
            at += len;
        }
        if n > 0 {
            parts.push(cur);
        }
    }
    parts
}

fn finding_keys(a: &Analysis) -> Vec<String> {
    let mut v: Vec<String> = a.findings.iter().map(|f| format!("{} {} {:?}", f.kind, f.summary, f.evidence)).collect();
    v.sort();
    v
}

/// Writes the parts under names that say nothing of their order (`NAME-x-K.EXT`, K scrambled).
fn write_parts(dir: &Path, stem: &str, ext: &str, parts: &[Vec<u8>]) -> Vec<PathBuf> {
    let n = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(k, b)| {
            // A permutation of 0..n, so that name order is not time order.
            let scrambled = (k * 7 + 3) % n.max(1);
            let p = dir.join(format!("{stem}-x{scrambled}-{}.{ext}", (b'a' + (k % 26) as u8) as char));
            std::fs::write(&p, b).unwrap();
            p
        })
        .collect()
}

/// (capture, packets per file): a pcapng (Chris Sanders) and legacy pcaps (Suricata-verify); the
/// last one's parts are larger than the tail read from each (512 KiB), so their last packets are
/// found by resynchronising on record headers.
const CASES: [(&str, usize); 3] =
    [("cs_http_espn_fail.pcapng", 97), ("sv_dcerpc-zerologon.pcap", 150), ("sv_tls-subjectaltname.pcap", 1300)];

#[test]
fn split_files_with_unrelated_names_read_as_the_whole_capture() {
    let Some(pcap) = common::corpus("pcap") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut all_parts = Vec::new();
    for (name, per_file) in CASES {
        let whole_path = pcap.join(name);
        let whole = analyze(std::slice::from_ref(&whole_path));
        let parts = split(&std::fs::read(&whole_path).unwrap(), per_file);
        assert!(parts.len() >= 3, "{name}: {} parts", parts.len());
        if name.starts_with("sv_tls") {
            assert!(parts[..2].iter().all(|p| p.len() > 512 * 1024), "{name}: parts larger than the tail read");
        }
        let sub = dir.path().join(name.replace('.', "_"));
        std::fs::create_dir(&sub).unwrap();
        let ext = name.rsplit('.').next().unwrap();
        let files = write_parts(&sub, "capture", ext, &parts);
        // The folder, and the files listed on the command line in name order.
        let mut listed = files.clone();
        listed.sort();
        for (how, inputs) in [("folder", vec![sub.clone()]), ("listed", listed)] {
            let ring = analyze(&inputs);
            assert_eq!(ring.inputs.len(), 1, "{name} ({how}): one input for the ring");
            let input = &ring.inputs[0];
            assert_eq!(input.error, None, "{name} ({how})");
            assert_eq!(input.ring_files.len(), parts.len(), "{name} ({how}): every part");
            // In time order: the order they were cut in.
            assert_eq!(input.ring_files, files, "{name} ({how}): files in time order");
            assert_eq!(input.packets, whole.inputs[0].packets, "{name} ({how})");
            let a: Vec<String> = whole.connections.iter().map(common::conn_key).collect();
            let b: Vec<String> = ring.connections.iter().map(common::conn_key).collect();
            assert_eq!(a, b, "{name} ({how}): the ring's connections are the whole file's");
            assert_eq!(finding_keys(&whole), finding_keys(&ring), "{name} ({how}): same findings");
        }
        // Each part alone starts its connections again.
        let apart: usize = files.iter().map(|f| analyze(std::slice::from_ref(f)).connections.len()).sum();
        assert!(apart > whole.connections.len(), "{name}: parts read apart cut connections");
        eprintln!(
            "{name}: {} parts; as a ring {} connections = whole file; {apart} read apart",
            parts.len(),
            whole.connections.len()
        );
        all_parts.push((name, files, whole));
    }
    // All captures' parts listed together (in reverse): one ring each.
    let mut listed: Vec<PathBuf> = all_parts.iter().flat_map(|(_, f, _)| f.clone()).collect();
    listed.reverse();
    let a = analyze(&listed);
    assert_eq!(a.inputs.len(), all_parts.len(), "several captures' parts: one ring each");
    for (name, files, whole) in &all_parts {
        let input = a.inputs.iter().find(|i| i.ring_files == *files).unwrap_or_else(|| panic!("{name}'s ring"));
        assert_eq!(input.packets, whole.inputs[0].packets, "{name}");
    }
}

/// Whole captures that do not continue each other are not grouped, whatever their names.
#[test]
fn unrelated_captures_stay_apart() {
    let Some(pcap) = common::corpus("pcap") else { return };
    let names = [
        "cs_http_espn_fail.pcapng",
        "cs_tcp_retransmissions.pcapng",
        "cs_tcp_dupack.pcapng",
        "sv_dcerpc-zerologon.pcap",
        "sv_dcerpc-ctxids.pcap",
        "sv_smb-filename.pcap",
    ];
    let paths: Vec<PathBuf> = names.iter().map(|n| pcap.join(n)).collect();
    let a = analyze(&paths);
    assert_eq!(a.inputs.len(), names.len());
    assert!(a.inputs.iter().all(|i| i.ring_files.is_empty()));
    // Two consecutive parts of a legacy pcap, the second moved an hour later: too long a pause.
    let (name, per_file) = CASES[1];
    let parts = split(&std::fs::read(pcap.join(name)).unwrap(), per_file);
    let mut later = parts[1].clone();
    let mut at = 24;
    while at + 16 <= later.len() {
        let sec = u32::from_le_bytes(later[at..at + 4].try_into().unwrap()) + 3600;
        later[at..at + 4].copy_from_slice(&sec.to_le_bytes());
        at += 16 + u32::from_le_bytes(later[at + 8..at + 12].try_into().unwrap()) as usize;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = write_parts(dir.path(), "gap", "pcap", &[parts[0].clone(), parts[1].clone()]);
    assert_eq!(analyze(&files).inputs.len(), 1, "{name}: two consecutive parts are one ring");
    std::fs::write(&files[1], &later).unwrap();
    assert_eq!(analyze(&files).inputs.len(), 2, "{name}: an hour's pause between the parts: not one ring");
    // The two-sided samples: two captures of the same connections at once, not one after the other.
    let s = common::samples();
    let pair = [s.join("twosided/twosided_injected_client.pcap"), s.join("twosided/twosided_injected_server.pcap")];
    assert_eq!(analyze(&pair).inputs.len(), 2, "two sides of one conversation stay two inputs");
}
