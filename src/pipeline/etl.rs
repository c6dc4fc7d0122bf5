//! ETL traces into the analysis: record counts and header facts for the summary.

use std::io::BufRead;
use std::path::Path;

use crate::analysis::{Analysis, InputSummary};
use crate::ingest::etl::{filetime_to_unix_ns, EtlReader, DEFAULT_MERGE_WINDOW};

/// Reads one trace in time order. `tick` is called now and then and returns false to cancel.
pub(super) fn read_etl(
    _input: u32,
    reader: Box<dyn BufRead + Send>,
    path: &Path,
    _analysis: &mut Analysis,
    _next_conn_id: &mut u64,
    summary: &mut InputSummary,
    tick: &dyn Fn() -> bool,
) {
    let etl = match EtlReader::new(reader) {
        Ok(r) => r,
        Err(e) => {
            summary.error = Some(format!("{}: damaged {e}", path.display()));
            return;
        }
    };
    if let Some(h) = etl.logfile_header() {
        let facts = serde_json::json!({
            "pointer_size": h.pointer_size,
            "clock_type": h.clock_type,
            "perf_freq": h.perf_freq,
            "number_of_processors": h.number_of_processors,
            "logger_name": h.logger_name,
            "buffer_size": h.buffer_size,
            "os_build": h.provider_version,
        });
        summary.extra.insert("logfile_header".into(), facts);
    }
    let mut records = 0u64;
    let (mut first, mut last): (Option<i64>, Option<i64>) = (None, None);
    for (n, item) in etl.time_ordered_window(DEFAULT_MERGE_WINDOW).enumerate() {
        if n % 65_536 == 0 && !tick() {
            summary.error = Some("loading was cancelled".into());
            break;
        }
        match item {
            Ok(rec) => {
                records += 1;
                // Record 0 is the logfile header: not an event.
                if rec.header.record_index == 0 {
                    continue;
                }
                let ft = rec.header.filetime;
                first = Some(first.map_or(ft, |f| f.min(ft)));
                last = Some(last.map_or(ft, |l| l.max(ft)));
            }
            Err(e) => {
                summary.error = Some(format!("{}: damaged {e}", path.display()));
            }
        }
    }
    summary.extra.insert("records".into(), records.into());
    summary.first_ts = first.map(|f| filetime_to_unix_ns(f) as i64);
    summary.last_ts = last.map(|l| filetime_to_unix_ns(l) as i64);
}
