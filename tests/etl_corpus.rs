//! ETL reader against the public corpus and the dissect.etl oracle files
//! (`$IPCSCOPE_CORPUS/etl` or `../shared/corpus/etl` from the crate root), plus damage,
//! merge and writer round-trip tests. Corpus files are read in place, never copied.

use ipcscope::ingest::etl::writer::{write_etl_to_vec, StackTrace, WriterConfig, WriterEvent, WriterItem};
use ipcscope::ingest::etl::*;
use ipcscope::ingest::{Damage, DamageKind, Part};
use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::path::{Path, PathBuf};

fn corpus_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("IPCSCOPE_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    let dir = base.join("etl");
    if dir.join("oracle-summary.tsv").is_file() {
        Some(dir)
    } else {
        eprintln!("corpus not found at {}, skipping", dir.display());
        None
    }
}

type Row = HashMap<String, String>;

fn tsv(dir: &Path, name: &str) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join(name)).expect("read oracle");
    let mut lines = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty());
    let head: Vec<String> = lines.next().expect("header").split('\t').map(String::from).collect();
    lines
        .map(|l| {
            head.iter().cloned().zip(l.split('\t').map(String::from).chain(std::iter::repeat(String::new()))).collect()
        })
        .collect()
}

/// FILETIME to `YYYY-MM-DDTHH:MM:SS.ffffffZ`, floored to the microsecond.
fn iso(ft: i64) -> String {
    let us = filetime_to_unix_us(ft);
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", y, m, d, sod / 3600, sod % 3600 / 60, sod % 60, frac)
}

/// (header_kind, header_type, provider_guid, group, id, opcode, version) as in oracle-events.tsv.
type CountKey = (String, String, String, String, String, String, String);

struct Walk {
    records: u64,
    buffers: u64,
    compressed: u64,
    first_buffer_size: u32,
    min_ft: i64,
    max_ft: i64,
    counts: BTreeMap<CountKey, u64>,
    errors: Vec<Damage>,
}

fn walk_bytes<R: std::io::Read>(r: R) -> Result<(Option<LogfileHeader>, Walk), Damage> {
    let mut rd = EtlReader::new(r)?;
    let lh = rd.logfile_header().cloned();
    let mut w = Walk {
        records: 0,
        buffers: 0,
        compressed: 0,
        first_buffer_size: 0,
        min_ft: i64::MAX,
        max_ft: i64::MIN,
        counts: BTreeMap::new(),
        errors: Vec::new(),
    };
    while let Some(b) = rd.next_buffer() {
        let b = match b {
            Ok(b) => b,
            Err(e) => {
                w.errors.push(e);
                continue;
            }
        };
        if w.buffers == 0 {
            w.first_buffer_size = b.header.buffer_size;
        }
        w.buffers += 1;
        w.compressed += b.is_compressed() as u64;
        for r in b.records() {
            let Ok(r) = r else { break };
            let h = r.header;
            assert_eq!(h.record_index, w.records, "record indices are dense in file order");
            if h.record_index > 0 {
                w.min_ft = w.min_ft.min(h.filetime);
                w.max_ft = w.max_ft.max(h.filetime);
            }
            w.records += 1;
            let key = (
                h.kind.dissect_name().to_string(),
                format!("0x{:02x}", h.header_type),
                h.provider.to_string(),
                h.group.map(|g| format!("0x{g:02x}")).unwrap_or_default(),
                h.id.map(|i| i.to_string()).unwrap_or_default(),
                h.opcode.to_string(),
                h.version.to_string(),
            );
            *w.counts.entry(key).or_default() += 1;
        }
        if let Some(d) = b.damage() {
            w.errors.push(d.clone());
        }
    }
    Ok((lh, w))
}

fn walk_file(dir: &Path, name: &str) -> (Option<LogfileHeader>, Walk) {
    let f = std::fs::File::open(dir.join(name)).expect("open corpus file");
    walk_bytes(std::io::BufReader::new(f)).expect("reader")
}

#[test]
fn summary_matches_oracle() {
    let Some(dir) = corpus_dir() else { return };
    let rows = tsv(&dir, "oracle-summary.tsv");
    assert!(!rows.is_empty(), "oracle-summary.tsv has rows");
    let mut checks = 0;
    for row in &rows {
        let name = &row["file"];
        let (lh, w) = walk_file(&dir, name);
        assert!(w.errors.is_empty(), "{name}: {:?}", w.errors);
        let lh = lh.expect("logfile header");
        let mut eq = |what: &str, ours: String| {
            assert_eq!(ours, row[what], "{name}: {what}");
            checks += 1;
        };
        eq("records_total", w.records.to_string());
        eq("buffers", w.buffers.to_string());
        eq("compressed_buffers", w.compressed.to_string());
        eq("first_buffer_size", w.first_buffer_size.to_string());
        eq("first_event_filetime", w.min_ft.to_string());
        eq("last_event_filetime", w.max_ft.to_string());
        eq("first_event_utc", iso(w.min_ft));
        eq("last_event_utc", iso(w.max_ft));
        eq("pointer_size", lh.pointer_size.to_string());
        eq("buffer_size", lh.buffer_size.to_string());
        eq("perf_freq", lh.perf_freq.to_string());
        eq("clock_type", lh.clock_type.to_string());
        eq("start_time_utc", iso(lh.start_time));
        eq("end_time_utc", iso(lh.end_time));
        eq("number_of_processors", lh.number_of_processors.to_string());
        eq("log_file_mode", format!("0x{:08x}", lh.log_file_mode));
        eq("os_build", lh.provider_version.to_string());
        eq("logger_name", lh.logger_name.clone());
        let bytes = std::fs::metadata(dir.join(name)).unwrap().len();
        eq("bytes", bytes.to_string());
    }
    eprintln!("summary: {checks} oracle checks passed");
}

#[test]
fn event_counts_match_oracle() {
    let Some(dir) = corpus_dir() else { return };
    let rows = tsv(&dir, "oracle-events.tsv");
    let mut want: BTreeMap<String, BTreeMap<CountKey, u64>> = BTreeMap::new();
    for r in &rows {
        let key = (
            r["header_kind"].clone(),
            r["header_type"].clone(),
            r["provider_guid"].clone(),
            r["group"].clone(),
            r["id"].clone(),
            r["opcode"].clone(),
            r["version"].clone(),
        );
        want.entry(r["file"].clone()).or_default().insert(key, r["count"].parse::<u64>().unwrap());
    }
    assert!(!want.is_empty(), "oracle-events.tsv has rows");
    let mut checks = 0;
    for (file, exp) in &want {
        let (_, w) = walk_file(&dir, file);
        for (k, n) in exp {
            assert_eq!(w.counts.get(k), Some(n), "{file}: {k:?}");
            checks += 1;
        }
        assert_eq!(
            w.counts.len(),
            exp.len(),
            "{file}: extra keys {:?}",
            w.counts.keys().filter(|k| !exp.contains_key(*k)).collect::<Vec<_>>()
        );
        assert_eq!(w.counts.values().sum::<u64>(), w.records);
    }
    eprintln!("events: {checks} oracle count rows matched");
}

fn sample_fields(r: &RecordRef<'_>) -> Option<String> {
    if let Some(ev) = decode_file_event(r) {
        return Some(match ev {
            FileEvent::Create(c)
                if r.header.kind == HeaderKind::EventHeader64 || r.header.kind == HeaderKind::EventHeader32 =>
            {
                let mut s = format!(
                    "Irp=0x{:x}|FileObject=0x{:x}|IssuingThreadId={}|CreateOptions=0x{:08x}|CreateAttributes=0x{:08x}|ShareAccess=0x{:08x}|FileName={}",
                    c.irp, c.file_object, c.issuing_thread_id, c.create_options, c.create_attributes, c.share_access, c.file_name
                );
                let ext: Vec<String> = r.ext_items().map(|e| e.ext_type.to_string()).collect();
                if !ext.is_empty() {
                    s += &format!("|ext_types={}|user_data_offset=0x{:x}", ext.join(","), r.payload_offset);
                }
                s
            }
            FileEvent::Name(n) => format!("FileObject=0x{:x}|FileName={}", n.file_object, n.file_name),
            other => format!("{other:?}"),
        });
    }
    let t = decode_classic_tcpip(r)?;
    let mut s = format!(
        "PID={}|size={}|daddr={}|saddr={}|dport={}|sport={}",
        t.process_id, t.size, t.daddr, t.saddr, t.dport, t.sport
    );
    if let (Some(a), Some(b)) = (t.startime, t.endtime) {
        s += &format!("|startime={a}|endtime={b}");
    }
    if let Some(o) = t.options {
        s += &format!(
            "|mss={}|sackopt={}|tsopt={}|wsopt={}|rcvwin={}|rcvwinscale={}|sndwinscale={}",
            o.mss, o.sackopt, o.tsopt, o.wsopt, o.rcvwin, o.rcvwinscale, o.sndwinscale
        );
    }
    s += &format!("|seqnum={}|connid=0x{:x}", t.seqnum, t.connid);
    Some(s)
}

#[test]
fn samples_match_oracle() {
    let Some(dir) = corpus_dir() else { return };
    let rows = tsv(&dir, "oracle-samples.tsv");
    assert!(rows.len() >= 60);
    let mut by_file: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        by_file.entry(r["file"].clone()).or_default().push(r);
    }
    let mut checks = 0;
    for (file, rows) in by_file {
        let want: HashMap<u64, &Row> = rows.iter().map(|r| (r["record_index"].parse().unwrap(), *r)).collect();
        let mut seen = 0;
        for rec in EtlReader::open(dir.join(&file)).unwrap().records() {
            let rec = rec.unwrap();
            let Some(row) = want.get(&rec.header.record_index) else { continue };
            let r = rec.as_ref();
            let h = r.header;
            let ctx = format!("{file} #{}", h.record_index);
            assert_eq!(h.buffer_index.to_string(), row["buffer_index"], "{ctx}");
            assert_eq!(h.filetime.to_string(), row["filetime"], "{ctx}");
            assert_eq!(iso(h.filetime), row["timestamp_utc"], "{ctx}");
            assert_eq!(h.provider.to_string(), row["provider_guid"], "{ctx}");
            assert_eq!(format!("0x{:02x}", h.header_type), row["header_type"], "{ctx}");
            let ev = match h.id {
                Some(id) => format!("id={id}"),
                None => format!("opcode={}", h.opcode),
            };
            assert_eq!(ev, row["event"], "{ctx}");
            assert_eq!(h.version.to_string(), row["version"], "{ctx}");
            assert_eq!(h.pid.map(|p| p.to_string()).unwrap_or_default(), row["pid"], "{ctx}");
            assert_eq!(h.tid.map(|p| p.to_string()).unwrap_or_default(), row["tid"], "{ctx}");
            assert_eq!(sample_fields(&r).as_deref(), Some(row["fields"].as_str()), "{ctx}");
            checks += 1;
            seen += 1;
        }
        assert_eq!(seen, want.len(), "{file}: all sample records found");
    }
    eprintln!("samples: {checks} oracle sample records matched");
}

#[test]
fn time_ordered_merge_is_sorted_and_complete() {
    let Some(dir) = corpus_dir() else { return };
    for name in ["net.4.5.2.x64.etl", "ShutdownPerfDiagLogger.etl", "SelfDescribingSingleEvent.etl"] {
        let total = walk_file(&dir, name).1.records;
        let file_order: Vec<i64> =
            EtlReader::open(dir.join(name)).unwrap().records().map(|r| r.unwrap().header.filetime).collect();
        let mut merged = EtlReader::open(dir.join(name)).unwrap().time_ordered();
        let mut fts = Vec::new();
        let mut idx = Vec::new();
        for r in &mut merged {
            let r = r.unwrap();
            fts.push(r.header.filetime);
            idx.push(r.header.record_index);
        }
        assert_eq!(fts.len() as u64, total, "{name}");
        assert_eq!(merged.out_of_order(), 0, "{name}");
        assert!(fts.windows(2).all(|w| w[0] <= w[1]), "{name}: merged output sorted");
        idx.sort_unstable();
        assert!(idx.iter().enumerate().all(|(i, &x)| i as u64 == x), "{name}: every record once");
        let mut sorted = file_order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, fts, "{name}: same timestamps as the file walk");
        if name.starts_with("net") {
            assert!(file_order.windows(2).any(|w| w[0] > w[1]), "file order is not time order");
        }
        // Streaming window merge: exact with the default window, counted inversions with a tiny one.
        let f = std::io::BufReader::new(std::fs::File::open(dir.join(name)).unwrap());
        let mut wm = EtlReader::new(f).unwrap().time_ordered_window(DEFAULT_MERGE_WINDOW);
        let wfts: Vec<i64> = (&mut wm).map(|r| r.unwrap().header.filetime).collect();
        assert_eq!(wm.out_of_order(), 0, "{name}");
        assert_eq!(wfts, fts, "{name}");
        let f = std::io::BufReader::new(std::fs::File::open(dir.join(name)).unwrap());
        let mut small = EtlReader::new(f).unwrap().time_ordered_window(2);
        assert_eq!((&mut small).count() as u64, total);
        if name.starts_with("net") {
            assert!(small.out_of_order() > 0);
        }
    }
}

/// Records (by walk) and errors for a damaged image; must not panic.
fn damaged(bytes: &[u8]) -> (u64, Vec<Damage>) {
    match walk_bytes(Cursor::new(bytes)) {
        Ok((_, w)) => (w.records, w.errors),
        Err(e) => (0, vec![e]),
    }
}

/// (offset, size, records) per buffer of a corpus file.
fn buffer_map(bytes: &[u8]) -> Vec<(u64, u32, u64)> {
    let mut rd = EtlReader::new(Cursor::new(bytes)).unwrap();
    let mut v = Vec::new();
    while let Some(b) = rd.next_buffer() {
        let b = b.unwrap();
        v.push((b.file_offset, b.header.buffer_size, b.record_count));
    }
    v
}

#[test]
fn truncated_files_keep_prefix_and_report_offset() {
    let Some(dir) = corpus_dir() else { return };
    for name in ["net.4.5.2.x64.etl", "ShutdownPerfDiagLogger.etl", "AMSITrace.etl"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let map = buffer_map(&bytes);
        let total: u64 = map.iter().map(|b| b.2).sum();
        for frac in [0.13, 0.5, 0.77, 0.999] {
            let cut = ((bytes.len() as f64) * frac) as usize | 1; // odd: never a buffer boundary
            let (n, errs) = damaged(&bytes[..cut]);
            // Records of the buffers wholly before the cut are all there.
            let whole: u64 = map.iter().filter(|b| b.0 + b.1 as u64 <= cut as u64).map(|b| b.2).sum();
            let (boff, _, bn) = *map.iter().find(|b| b.0 + b.1 as u64 > cut as u64).unwrap();
            assert!(n >= whole && n <= whole + bn && n <= total, "{name} cut {cut}: {n} vs {whole}");
            let e = errs.last().unwrap_or_else(|| panic!("{name} cut {cut}: no error"));
            assert!(matches!(e.kind, DamageKind::Truncated { .. }), "{name}: {e}");
            assert!(e.offset >= boff && e.offset <= cut as u64, "{name}: offset {:#x} cut {cut:#x}", e.offset);
        }
        // Cut inside a buffer header.
        let (_, errs) = damaged(&bytes[..(map[1].0 as usize + 20)]);
        assert_eq!(errs.last().unwrap().offset, map[1].0);
    }
}

#[test]
fn bad_lengths_give_offsets_and_keep_prefix() {
    let Some(dir) = corpus_dir() else { return };
    for name in ["net.4.5.2.x64.etl", "ShutdownPerfDiagLogger.etl"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let map = buffer_map(&bytes);
        let k = map.len() / 2;
        let before: u64 = map[..k].iter().map(|b| b.2).sum();
        for bad in [0x10u32, 0xFFFF_FFF0, 0x47] {
            let mut img = bytes.clone();
            img[map[k].0 as usize..][..4].copy_from_slice(&bad.to_le_bytes());
            let (n, errs) = damaged(&img);
            assert_eq!(n, before, "{name} BufferSize {bad:#x}");
            assert_eq!(errs.len(), 1);
            assert_eq!(errs[0].offset, map[k].0);
            assert_eq!(
                errs[0].kind,
                DamageKind::BadField { part: Part::Buffer, field: "BufferSize", value: bad as u64 }
            );
        }
    }
    // Absurd record size in an uncompressed buffer: that buffer stops there, later ones go on.
    let bytes = std::fs::read(dir.join("ShutdownPerfDiagLogger.etl")).unwrap();
    let map = buffer_map(&bytes);
    let k = 5;
    let mut img = bytes.clone();
    let rec0 = map[k].0 as usize + 0x48;
    img[rec0 + 4..rec0 + 6].copy_from_slice(&0xFFF0u16.to_le_bytes()); // SYSTEM Size field
    let (n, errs) = damaged(&img);
    let total: u64 = map.iter().map(|b| b.2).sum();
    assert_eq!(n, total - map[k].2);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].offset, rec0 as u64);
    // Corrupt compressed stream: error at that buffer, the rest still read.
    let bytes = std::fs::read(dir.join("net.4.5.2.x64.etl")).unwrap();
    let map = buffer_map(&bytes);
    let mut img = bytes.clone();
    let k = 10;
    img[map[k].0 as usize + 0x30..][..4].copy_from_slice(&0x00FF_0000u32.to_le_bytes()); // Offset: absurd size
    let (n, errs) = damaged(&img);
    let total: u64 = map.iter().map(|b| b.2).sum();
    assert_eq!(n, total - map[k].2);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].offset, map[k].0 + 0x48);
}

#[test]
fn random_corruption_never_panics() {
    let Some(dir) = corpus_dir() else { return };
    let names = [
        "net.4.5.2.x86.etl",
        "ShutdownPerfDiagLogger.etl",
        "AMSITrace.etl",
        "lxcore_kernel.etl",
        "SelfDescribingSingleEvent.etl",
        "smallEtlFile.etl",
    ];
    for name in names {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Fewer rounds on big files and in unoptimised builds (kept under a few seconds).
        let big = bytes.len() > 1_000_000;
        let rounds = match (big, cfg!(debug_assertions)) {
            (true, true) => 3,
            (true, false) => 12,
            (false, true) => 40,
            (false, false) => 200,
        };
        for n in 0..rounds {
            let mut img = bytes.clone();
            for _ in 0..8 {
                let p = (next() % img.len() as u64) as usize;
                img[p] = next() as u8;
            }
            let _ = damaged(&img);
            let mut count = 0;
            if let Ok(rd) = EtlReader::new(Cursor::new(&img)) {
                let merged: Box<dyn Iterator<Item = Result<Record, Damage>>> =
                    if n % 2 == 0 { Box::new(rd.time_ordered()) } else { Box::new(rd.time_ordered_window(4)) };
                for r in merged {
                    if let Ok(r) = r {
                        let rr = r.as_ref();
                        let _ = decode_file_event(&rr);
                        let _ = decode_classic_tcpip(&rr);
                        let _ = decode_tcpip(&rr);
                        let _ = decode_ndis_fragment(&rr);
                        let _ = rr.ext_items().count();
                    }
                    count += 1;
                    assert!(count < 10_000_000);
                }
            }
        }
    }
}

/// Finds the first Kernel-File Create v1 of net.4.5.2.x64 (record 7880, as in the oracle).
fn real_create_v1(dir: &Path) -> Record {
    EtlReader::open(dir.join("net.4.5.2.x64.etl"))
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .find(|r| r.header.provider == KERNEL_FILE_PROVIDER && r.header.id == Some(12) && r.header.version == 1)
        .unwrap()
}

#[test]
fn writer_create_v1_is_byte_identical_to_real_trace() {
    let Some(dir) = corpus_dir() else { return };
    let real = real_create_v1(&dir);
    assert_eq!(real.header.record_index, 7880);
    let rr = real.as_ref();
    let Some(FileEvent::Create(c)) = decode_kernel_file(&rr) else { panic!("decode") };
    let ext = rr.ext_items().next().unwrap();
    assert_eq!(ext.ext_type, 6);
    let addrs: Vec<u64> = ext.data.chunks(8).skip(1).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
    let stack = StackTrace { match_id: u64::from_le_bytes(ext.data[..8].try_into().unwrap()), addresses: addrs };
    let item = WriterItem::new(
        real.header.filetime,
        real.header.pid.unwrap(),
        real.header.tid.unwrap(),
        WriterEvent::KernelFileCreate {
            irp: c.irp,
            file_object: c.file_object,
            issuing_thread_id: c.issuing_thread_id as u32,
            create_options: c.create_options,
            create_attributes: c.create_attributes,
            share_access: c.share_access,
            file_name: c.file_name.clone(),
        },
    )
    .with_stack(stack);
    let cfg = WriterConfig::default();
    let img = write_etl_to_vec(&cfg, vec![item.clone(), WriterItem { stack: None, ..item }]).unwrap();
    let recs: Vec<Record> = EtlReader::new(Cursor::new(&img)).unwrap().records().map(|r| r.unwrap()).collect();
    assert_eq!(recs.len(), 3);
    let ours = &recs[1];
    // Byte-identical except ProcessorTime (0x38..0x40) and the raw clock value (0x10..0x18).
    let mask = |v: &[u8]| {
        let mut v = v.to_vec();
        v[0x10..0x18].fill(0);
        v[0x38..0x40].fill(0);
        v
    };
    assert_eq!(mask(&ours.raw), mask(&real.raw));
    assert_eq!(ours.header.filetime, real.header.filetime);
    let Some(FileEvent::Create(c2)) = decode_kernel_file(&ours.as_ref()) else { panic!() };
    assert_eq!(FileCreate { origin: c.origin, ..c2.clone() }, c);
    // Without the stack item the payload is the same bytes right after the 0x50 header.
    let plain = &recs[2];
    assert_eq!(plain.payload(), real.payload());
    assert_eq!(plain.as_ref().payload_offset, 0x50);
}

#[test]
fn writer_named_pipe_scenario_round_trip() {
    const STATUS_PIPE_BUSY: u32 = 0xC000_00AE;
    let t0 = WriterConfig::default().start_time;
    let mut items = Vec::new();
    for i in 0..2000u64 {
        let t = t0 + (i as i64) * 1000;
        let (irp, fo) = (0xffff_a000_0000_0000 + i * 0x100, 0xffff_b000_0000_0000 + i * 0x100);
        let cpu = (i % 3) as u16;
        let name = format!(r"\Device\NamedPipe\svc-{}", i % 7);
        items.push(
            WriterItem::new(
                t,
                1000 + (i % 5) as u32,
                2000 + i as u32,
                WriterEvent::KernelFileCreate {
                    irp,
                    file_object: fo,
                    issuing_thread_id: 2000 + i as u32,
                    create_options: 0x0100_0040,
                    create_attributes: 0,
                    share_access: 3,
                    file_name: name,
                },
            )
            .on_cpu(cpu),
        );
        let status = if i % 4 == 0 { STATUS_PIPE_BUSY } else { 0 };
        items.push(
            WriterItem::new(t + 10, 4, 8, WriterEvent::KernelFileOperationEnd { irp, extra_information: 1, status })
                .on_cpu(cpu),
        );
        if status == 0 {
            items.push(
                WriterItem::new(
                    t + 20,
                    1000,
                    2000,
                    WriterEvent::KernelFileCleanup { irp, file_object: fo, file_key: 7, issuing_thread_id: 2000 },
                )
                .on_cpu((cpu + 1) % 3),
            );
            items.push(
                WriterItem::new(
                    t + 30,
                    1000,
                    2000,
                    WriterEvent::KernelFileClose { irp, file_object: fo, file_key: 7, issuing_thread_id: 2000 },
                )
                .on_cpu((cpu + 1) % 3),
            );
        }
    }
    let cfg = WriterConfig { buffer_size: 8192, ..WriterConfig::default() };
    let img = write_etl_to_vec(&cfg, items.clone()).unwrap();
    let rd = EtlReader::new(Cursor::new(&img)).unwrap();
    let lh = rd.logfile_header().unwrap().clone();
    assert_eq!((lh.buffer_size, lh.pointer_size, lh.perf_freq, lh.clock_type), (8192, 8, 10_000_000, 1));
    assert_eq!(lh.logger_name, cfg.logger_name);
    assert_eq!(lh.start_time, cfg.start_time);
    let mut merged = rd.time_ordered();
    let mut got = Vec::new();
    for r in &mut merged {
        let r = r.unwrap();
        if r.header.record_index == 0 {
            continue;
        }
        got.push(decode_kernel_file(&r.as_ref()).expect("kernel-file"));
    }
    assert_eq!(merged.out_of_order(), 0);
    assert_eq!(got.len(), items.len());
    let busy = got.iter().filter(|e| matches!(e, FileEvent::OperationEnd(o) if o.status == STATUS_PIPE_BUSY)).count();
    assert_eq!(busy, 500);
    let mut want = items.clone();
    want.sort_by_key(|i| i.filetime);
    for (w, g) in want.iter().zip(&got) {
        match (&w.event, g) {
            (WriterEvent::KernelFileCreate { file_name, irp, .. }, FileEvent::Create(c)) => {
                assert_eq!(
                    (&c.file_name, c.irp, c.origin.pid, c.origin.filetime),
                    (file_name, *irp, Some(w.pid), w.filetime)
                );
                assert_eq!(c.create_disposition(), 1);
            }
            (WriterEvent::KernelFileOperationEnd { status, .. }, FileEvent::OperationEnd(o)) => {
                assert_eq!(o.status, *status)
            }
            (WriterEvent::KernelFileCleanup { file_object, .. }, FileEvent::Cleanup(o)) => {
                assert_eq!(o.file_object, *file_object)
            }
            (WriterEvent::KernelFileClose { file_object, .. }, FileEvent::Close(o)) => {
                assert_eq!(o.file_object, *file_object)
            }
            other => panic!("mismatch {other:?}"),
        }
    }
}

#[test]
fn writer_ndis_fragments_join_into_frames() {
    let t0 = WriterConfig::default().start_time;
    let frame: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let kw = NDIS_KW_SEND | 1;
    let ev = |kw: u64, part: &[u8]| WriterEvent::NdisFragment {
        miniport_if_index: 12,
        lower_if_index: 12,
        keyword: kw,
        fragment: part.to_vec(),
    };
    let items = vec![
        WriterItem::new(t0 + 1, 4, 4, ev(kw | NDIS_KW_PACKET_START, &frame[..1000])),
        WriterItem::new(t0 + 2, 4, 4, ev(kw, &frame[1000..2000])),
        WriterItem::new(t0 + 3, 4, 4, ev(kw | NDIS_KW_PACKET_END, &frame[2000..])),
        WriterItem::new(t0 + 4, 4, 4, ev(kw | NDIS_KW_PACKET_START | NDIS_KW_PACKET_END, &frame[..60])),
        WriterItem::new(t0 + 5, 4, 4, ev(kw | NDIS_KW_PACKET_END, &frame[..10])), // orphan end
    ];
    let img = write_etl_to_vec(&WriterConfig::default(), items).unwrap();
    let mut asm = FrameAssembler::default();
    let mut frames = Vec::new();
    for r in EtlReader::new(Cursor::new(&img)).unwrap().time_ordered() {
        let r = r.unwrap();
        if let Some(f) = decode_ndis_fragment(&r.as_ref()) {
            frames.extend(asm.push(f));
        }
    }
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].data, frame);
    assert_eq!(frames[0].origin.filetime, t0 + 1);
    assert!(frames[0].send && !frames[0].receive);
    assert_eq!(frames[1].data, &frame[..60]);
    assert_eq!(asm.dropped, 1);
    assert_eq!(asm.pending(), 0);
}

#[test]
fn clock_conversion() {
    // smallEtlFile: PerfFreq 3117777 (real QPC scaling) matches the oracle in the summary test;
    // here the formula pieces themselves.
    let c = Clock {
        start_time: 131_159_502_220_379_266,
        header_timestamp: 1000,
        clock_type: 1,
        perf_freq: 3_117_777,
        cpu_speed_mhz: 0,
    };
    let s = 1e7 / 3_117_777f64;
    let want = c.start_time - (s * 1000f64).trunc() as i64 + (s * 5000f64).trunc() as i64;
    assert_eq!(c.filetime(5000), want);
    let q = Clock { start_time: 100, header_timestamp: 50, clock_type: 1, perf_freq: 10_000_000, cpu_speed_mhz: 0 };
    assert_eq!(q.filetime(75), 125);
    assert_eq!(filetime_to_unix_ns(FILETIME_UNIX_EPOCH + 15), 1500);
    assert_eq!(filetime_to_unix_us(132_404_548_206_236_167), 1_595_981_220_623_616);
}

/// `undecoded_providers` in the pipeline's summary counts exactly the oracle's records of every
/// provider we have no decoder for, and never more than the oracle's for the others.
#[test]
fn undecoded_providers_follow_the_oracle() {
    use ipcscope::analysis::Options;
    use ipcscope::pipeline::{analyze_paths, NoProgress};
    let Some(dir) = corpus_dir() else { return };
    let decoded = [
        "edd08927-9cc4-4e65-b970-c2560fb5c289", // Kernel-File
        "90cbdc39-4a3e-11d1-84f4-0000f80464e3", // classic FileIo
        "9a280ac0-c8e0-11d1-84e2-00c04fb998a2", // classic TcpIp
        "2f07e2ee-15db-40f1-90ef-9d7ba282188a", // TCPIP
        "2ed6006e-4729-4609-b423-3ee7bcd678ef", // NDIS-PacketCapture
        "4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac", // PktMon
        "68fdd900-4a3e-11d1-84f4-0000f80464e3", // EventTrace (session header)
    ];
    let mut oracle: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in tsv(&dir, "oracle-events.tsv") {
        if r["header_kind"] == "MessageTraceHeader" {
            continue; // WPP: counted by the reader under the message GUID, not comparable here
        }
        *oracle.entry(r["file"].clone()).or_default().entry(r["provider_guid"].clone()).or_default() +=
            r["count"].parse::<u64>().unwrap();
    }
    for (file, providers) in &oracle {
        let a = analyze_paths(&[dir.join(file)], &Options::default(), &NoProgress);
        let und: BTreeMap<String, u64> = a.inputs[0].extra.to_json()["undecoded_providers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["provider"].as_str().unwrap().to_string(), u["records"].as_u64().unwrap()))
            .collect();
        for (guid, n) in providers {
            let ours = und.get(guid).copied().unwrap_or(0);
            if decoded.contains(&guid.as_str()) {
                assert!(ours <= *n, "{file} {guid}: {ours} undecoded of {n}");
            } else {
                assert_eq!(ours, *n, "{file} {guid}");
            }
        }
        for guid in und.keys() {
            assert!(providers.contains_key(guid), "{file}: {guid} not in the oracle");
        }
    }
}
