//! One entry point per fuzz target. Each runs the parser the way the pipeline does and touches
//! every value it yields; the fuzzer reports a panic, a hang or runaway memory.
//!
//! This file is also compiled into the main crate's `tests/fuzz_regressions.rs` (by path, with
//! `crate::ingest` resolving to `ipcscope::ingest`), so regression inputs replay through exactly
//! the code the fuzzer ran.

use std::hint::black_box;
use std::io::Cursor;

use crate::ingest;
use crate::ingest::etl::{
    decode_classic_tcpip, decode_file_event, decode_ndis_fragment, decode_pktmon_component, decode_pktmon_packet,
    decode_tcpip, decompress_plain_lz77, filetime_to_unix_ns, EtlReader, FrameAssembler, RecordRef,
    DEFAULT_MERGE_WINDOW,
};
use crate::ingest::textlog::{extract_errors, parse_offset, TextLogOptions, TextLogReader, TsFormat};

/// pcap / pcapng: sniff + open as the pipeline does, then read as both formats.
pub fn pcap(data: &[u8]) {
    let mut segments = 0u64;
    let mut sink = |s: crate::model::TcpSegment| {
        segments += 1;
        black_box((s.ts, s.src, s.dst, s.seq, s.ack, s.flags, s.window, s.payload_len, s.window_scale));
    };
    let mut progress = |off: u64| {
        black_box(off);
        true
    };
    if let Ok(opened) = ingest::open_bytes(data.to_vec()) {
        let is_ng = opened.kind == ingest::InputKind::PcapNg;
        let (stats, err) = ingest::pcap::read_capture(0, opened.reader, is_ng, &mut sink, &mut progress);
        black_box((stats.packets, stats.bytes, stats.first_ts, stats.last_ts, err.map(|e| e.to_string())));
    }
    for is_ng in [false, true] {
        let (stats, err) = ingest::pcap::read_capture(1, Cursor::new(data), is_ng, &mut sink, &mut progress);
        black_box((stats.link_types.len(), stats.packets, err.map(|e| e.to_string())));
    }
    // Every captured frame also goes through the link decoder directly, for each link type.
    for lt in [0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276] {
        black_box(ingest::decode::decode_frame(lt, data));
    }
    black_box(segments);
}

fn decode_all(r: &RecordRef<'_>, assembler: &mut FrameAssembler) {
    black_box((r.header.filetime, r.ext_items().count()));
    black_box(filetime_to_unix_ns(r.header.filetime));
    black_box(decode_file_event(r));
    black_box(decode_tcpip(r));
    black_box(decode_classic_tcpip(r));
    if let Some(p) = decode_pktmon_packet(r) {
        black_box((p.network_bytes(), p.link_type(), p.truncated()));
    }
    black_box(decode_pktmon_component(r));
    if let Some(frag) = decode_ndis_fragment(r) {
        if let Some(frame) = assembler.push(frag) {
            black_box(ingest::decode::decode_frame(ingest::decode::linktype::ETHERNET, &frame.data));
            black_box(filetime_to_unix_ns(frame.origin.filetime));
        }
    }
}

/// ETL: file-order walk (owned records and borrowed per-buffer records) and the window merge,
/// every record through every decoder.
pub fn etl(data: &[u8]) {
    if let Ok(rd) = EtlReader::new(Cursor::new(data)) {
        let clock = rd.clock();
        black_box(rd.logfile_header().map(|h| h.clock()));
        let mut assembler = FrameAssembler::default();
        for item in rd.records().take(1_000_000) {
            match item {
                Ok(rec) => {
                    black_box(clock.unix_ns(rec.header.raw_timestamp));
                    black_box(rec.payload().len());
                    decode_all(&rec.as_ref(), &mut assembler);
                }
                Err(e) => {
                    black_box(e.to_string());
                }
            }
        }
        black_box(assembler.pending());
    }
    if let Ok(mut rd) = EtlReader::new(Cursor::new(data)) {
        let mut assembler = FrameAssembler::new(4096);
        let mut n = 0;
        while let Some(b) = rd.next_buffer() {
            n += 1;
            if n > 100_000 {
                break;
            }
            if let Ok(b) = b {
                black_box((b.record_count, b.damage().map(|d| d.to_string()), b.data().len(), b.is_compressed()));
                for r in b.records() {
                    match r {
                        Ok(r) => decode_all(&r, &mut assembler),
                        Err(e) => {
                            black_box(e.to_string());
                        }
                    }
                }
            }
        }
    }
    for window in [1, DEFAULT_MERGE_WINDOW] {
        if let Ok(rd) = EtlReader::new(Cursor::new(data)) {
            let mut merged = rd.time_ordered_window(window);
            let mut assembler = FrameAssembler::default();
            for rec in merged.by_ref().take(1_000_000).flatten() {
                decode_all(&rec.as_ref(), &mut assembler);
            }
            black_box(merged.out_of_order());
        }
    }
    if let Ok(rd) = EtlReader::new(Cursor::new(data)) {
        let mut ordered = rd.time_ordered();
        for rec in ordered.by_ref().take(1_000_000).flatten() {
            black_box(rec.header.filetime);
        }
        black_box(ordered.out_of_order());
    }
}

/// LZ77: the first 4 bytes (LE) give the expected output size, capped at the ETL buffer cap.
pub fn lz77(data: &[u8]) {
    let Some(head) = data.get(..4) else { return };
    let expected = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let expected = expected % (ingest::etl::MAX_BUFFER_SIZE as usize + 1);
    let mut out = Vec::new();
    let res = decompress_plain_lz77(&data[4..], expected, &mut out);
    if res.is_ok() {
        assert_eq!(out.len(), expected, "decompressor reported success with a wrong size");
    }
    assert!(out.len() <= expected, "decompressor wrote past the expected size");
    // Differential check against a byte-by-byte reference of [MS-XCA] 2.4 (small outputs only).
    if expected <= 1 << 20 {
        let reference = reference_lz77(&data[4..], expected);
        assert_eq!(res.is_ok(), reference.is_some(), "success differs from the reference");
        if let Some(r) = reference {
            assert!(out == r, "output differs from the reference");
        }
    }
}

/// The plain LZ77 decoder written as literally as possible (byte-by-byte match copy).
fn reference_lz77(input: &[u8], expected: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut ip, mut flags, mut flag_count, mut last_half) = (0usize, 0u32, 0u32, None::<usize>);
    while out.len() < expected {
        if flag_count == 0 {
            flags = u32::from_le_bytes(input.get(ip..ip + 4)?.try_into().ok()?);
            ip += 4;
            flag_count = 32;
        }
        flag_count -= 1;
        if flags & (1 << flag_count) == 0 {
            out.push(*input.get(ip)?);
            ip += 1;
            continue;
        }
        let mb = u16::from_le_bytes(input.get(ip..ip + 2)?.try_into().ok()?);
        ip += 2;
        let mut len = (mb & 7) as usize;
        let dist = (mb >> 3) as usize + 1;
        if len == 7 {
            match last_half.take() {
                None => {
                    len = (*input.get(ip)? & 0x0f) as usize;
                    last_half = Some(ip);
                    ip += 1;
                }
                Some(p) => len = (*input.get(p)? >> 4) as usize,
            }
            if len == 15 {
                len = *input.get(ip)? as usize;
                ip += 1;
                if len == 255 {
                    len = u16::from_le_bytes(input.get(ip..ip + 2)?.try_into().ok()?) as usize;
                    ip += 2;
                    if len == 0 {
                        len = u32::from_le_bytes(input.get(ip..ip + 4)?.try_into().ok()?) as usize;
                        ip += 4;
                    }
                    len = len.checked_sub(22)?;
                }
                len += 15;
            }
            len += 7;
        }
        len += 3;
        let start = out.len().checked_sub(dist)?;
        if out.len() + len > expected {
            return None;
        }
        for i in 0..len {
            let b = out[start + i];
            out.push(b);
        }
    }
    Some(out)
}

/// Text logs: the reader over the bytes (detected format, and each format forced, with small caps),
/// then the error extractor and the offset parser over the bytes as text.
pub fn textlog(data: &[u8]) {
    let run = |opts: TextLogOptions| {
        let mut rd = TextLogReader::with_options(Cursor::new(data), opts);
        black_box(rd.format());
        for line in rd.by_ref().take(1_000_000) {
            black_box((line.ts_utc_ns(0.0), line.ts_utc_ns(-3600.5), line.body().len(), line.errors.len()));
            black_box(line.severity.name());
        }
        black_box(rd.io_error().map(|e| e.to_string()));
    };
    run(TextLogOptions { syslog_year: Some(2026), ..TextLogOptions::default() });
    let forced = TsFormat::ALL[data.first().copied().unwrap_or(0) as usize % TsFormat::ALL.len()];
    run(TextLogOptions {
        syslog_year: Some(2026),
        format: Some(forced),
        max_line_bytes: 64,
        max_record_bytes: 256,
        detect_lines: 3,
        detect_max_physical_lines: 10,
    });
    let text = String::from_utf8_lossy(data);
    black_box(extract_errors(&text));
    black_box(ingest::textlog::detect_format(data));
    black_box(parse_offset(&text).ok());
    for line in text.lines().take(64) {
        black_box(parse_offset(line).ok());
        black_box(ingest::textlog::parse_log_offset_arg(line).ok());
        black_box(ingest::textlog::detect_severity(line.as_bytes(), 0));
    }
}

/// EVTX: the handoff from the evtx crate into ipcscope's event model. Panics the evtx crate
/// raises are caught inside `ingest::evtx` by design; a panic escaping it is a bug.
pub fn evtx(data: &[u8]) {
    let mut events = 0u64;
    let res = ingest::evtx::for_each_event_in_bytes(
        data.to_vec(),
        |e| {
            events += 1;
            black_box(e.field("Image"));
            black_box(e);
        },
        |w| {
            black_box(w.to_string());
        },
    );
    let _ = black_box((res.map_err(|e| e.to_string()), events));
    // The JSON → event mapping also sees arbitrary JSON (records whose shape the crate never checks).
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        black_box(ingest::evtx::event_from_json(&v, 1, 0).ok());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        black_box(ingest::evtx::parse_utc_ns(s));
    }
}
