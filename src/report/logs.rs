//! `log_events.csv`: every error/warning log line with its corrected UTC time, error identity and
//! the finding it was linked to (empty when none).

use std::io::Write;

use anyhow::Result;
use polars::prelude::*;

use crate::analysis::Analysis;
use crate::model::format_utc;

/// Columns of `log_events.csv`, in order.
pub const LOG_EVENT_COLUMNS: &[&str] =
    &["log", "line", "utc", "written", "severity", "error", "finding_id", "finding_kind", "text"];

pub fn write_log_events(a: &Analysis, w: &mut dyn Write) -> Result<()> {
    let es = &a.log_events;
    let text = |f: &dyn Fn(&crate::analysis::logs::LogEvent) -> String| es.iter().map(f).collect::<Vec<String>>();
    let kind_of = |id: Option<u64>| {
        id.and_then(|id| a.findings.iter().find(|f| f.id == id)).map(|f| f.kind.to_string()).unwrap_or_default()
    };
    let columns = vec![
        Column::new("log".into(), text(&|e| a.input_name(e.input).to_string())),
        Column::new("line".into(), es.iter().map(|e| e.line).collect::<Vec<u64>>()),
        Column::new("utc".into(), text(&|e| e.ts.map(format_utc).unwrap_or_default())),
        Column::new("written".into(), text(&|e| e.written_ts.map(format_utc).unwrap_or_default())),
        Column::new("severity".into(), text(&|e| e.severity.to_string())),
        Column::new("error".into(), text(&|e| e.errors.join(" "))),
        Column::new("finding_id".into(), text(&|e| e.finding.map(|f| f.to_string()).unwrap_or_default())),
        Column::new("finding_kind".into(), text(&|e| kind_of(e.finding))),
        Column::new("text".into(), text(&|e| e.text.clone())),
    ];
    let mut df = DataFrame::new(es.len(), columns)?;
    CsvWriter::new(w).include_header(true).finish(&mut df)?;
    Ok(())
}
