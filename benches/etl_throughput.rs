//! ETL reader throughput: writes a large uncompressed trace with the test writer (default
//! ~500 MB, `ETL_BENCH_MB` to change) in the temp dir, then times a full buffer+record walk.
//! Plain `fn main()` (harness = false). Run: `cargo bench --bench etl_throughput`.

use ipcscope::ingest::etl::writer::{EtlWriter, WriterConfig, WriterEvent, WriterItem};
use ipcscope::ingest::etl::EtlReader;
use std::io::BufWriter;
use std::time::Instant;

fn main() {
    let target_mb: u64 = std::env::var("ETL_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let path = std::env::temp_dir().join(format!("ipcscope-etl-bench-{}.etl", std::process::id()));
    let cfg = WriterConfig::default();
    let t0 = cfg.start_time;

    let started = Instant::now();
    let file = std::fs::File::create(&path).expect("create temp trace");
    let mut w = EtlWriter::new(BufWriter::with_capacity(1 << 20, file), cfg).expect("writer");
    let target = target_mb * 1_000_000;
    let mut i: u64 = 0;
    // Rough record mix of a named-pipe workload: create, op-end, cleanup, close.
    while !i.is_multiple_of(4096) || i * 128 < target {
        let t = t0 + i as i64 * 10;
        let irp = 0xffff_a000_0000_0000 + (i / 4) * 0x40;
        let fo = 0xffff_b000_0000_0000 + (i / 4) * 0x40;
        let ev = match i % 4 {
            0 => WriterEvent::KernelFileCreate {
                irp,
                file_object: fo,
                issuing_thread_id: 4000 + (i % 64) as u32,
                create_options: 0x0100_0040,
                create_attributes: 0,
                share_access: 3,
                file_name: format!(r"\Device\NamedPipe\ipcscope\bench-{}", i % 97),
            },
            1 => WriterEvent::KernelFileOperationEnd {
                irp,
                extra_information: 1,
                status: if i % 12 == 1 { 0xC000_00AE } else { 0 },
            },
            2 => WriterEvent::KernelFileCleanup { irp, file_object: fo, file_key: 1, issuing_thread_id: 4000 },
            _ => WriterEvent::KernelFileClose { irp, file_object: fo, file_key: 1, issuing_thread_id: 4000 },
        };
        let item = WriterItem::new(t, 1000 + (i % 13) as u32, 4000 + (i % 64) as u32, ev).on_cpu((i / 4 % 4) as u16);
        w.push(&item).expect("push");
        i += 1;
    }
    let (_, stats) = w.finish().expect("finish");
    let write_s = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).expect("stat").len();
    eprintln!(
        "wrote {} records in {} buffers, {:.1} MB, in {:.2} s ({:.0} MB/s)",
        stats.records,
        stats.buffers,
        size as f64 / 1e6,
        write_s,
        size as f64 / 1e6 / write_s
    );

    // Best of 3 full walks (the first also warms the page cache).
    let mut best = f64::MAX;
    let mut records = 0u64;
    for _ in 0..3 {
        let started = Instant::now();
        let mut rd = EtlReader::open(&path).expect("open");
        let mut n = 0u64;
        let mut payload = 0u64;
        let mut ts_mix = 0i64;
        while let Some(b) = rd.next_buffer() {
            let b = b.expect("buffer");
            for r in b.records() {
                let r = r.expect("record");
                n += 1;
                payload += r.payload.len() as u64;
                ts_mix ^= r.header.filetime;
            }
        }
        let s = started.elapsed().as_secs_f64();
        std::hint::black_box((payload, ts_mix));
        records = n;
        best = best.min(s);
    }
    let _ = std::fs::remove_file(&path);
    assert_eq!(records, stats.records);
    println!(
        "etl_throughput: full walk of {:.1} MB, {} records: {:.2} s -> {:.0} MB/s, {:.1} M records/s",
        size as f64 / 1e6,
        records,
        best,
        size as f64 / 1e6 / best,
        records as f64 / 1e6 / best
    );
}
