//! CSV tables through polars: `connections.csv`, `findings.csv`.

use std::io::Write;

use anyhow::Result;
use polars::prelude::*;

use crate::analysis::Analysis;
use crate::model::format_utc;

/// Columns of `connections.csv`, in order.
pub const CONNECTION_COLUMNS: &[&str] = &[
    "conn_id",
    "input",
    "client",
    "server",
    "first_utc",
    "last_utc",
    "duration_s",
    "state",
    "history",
    "client_packets",
    "server_packets",
    "client_bytes",
    "server_bytes",
    "client_fin",
    "server_fin",
    "client_rst",
    "server_rst",
    "keep_alive",
    "keep_alive_ack",
    "retransmissions",
    "first_frame",
    "last_frame",
    "pid",
    "process",
    "seen_in",
    "view_of",
];

/// Columns of `findings.csv`, in order.
pub const FINDING_COLUMNS: &[&str] = &[
    "finding_id",
    "kind",
    "severity",
    "first_utc",
    "last_utc",
    "client",
    "server",
    "pipe",
    "pid",
    "count",
    "evidence",
    "wireshark_filter",
    "log_lines",
    "summary",
    "advice",
];

fn write_frame(mut columns: Vec<Column>, height: usize, w: &mut dyn Write) -> Result<()> {
    let mut df = DataFrame::new(height, std::mem::take(&mut columns))?;
    CsvWriter::new(w).include_header(true).finish(&mut df)?;
    Ok(())
}

fn col<T>(name: &str, values: Vec<T>) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Column::new(name.into(), values)
}

pub fn write_connections(a: &Analysis, w: &mut dyn Write) -> Result<()> {
    let cs = &a.connections;
    let n = cs.len();
    let columns = vec![
        col("conn_id", cs.iter().map(|c| c.id).collect::<Vec<u64>>()),
        col("input", cs.iter().map(|c| a.input_name(c.input).to_string()).collect::<Vec<String>>()),
        col("client", cs.iter().map(|c| c.client.to_string()).collect::<Vec<String>>()),
        col("server", cs.iter().map(|c| c.server.to_string()).collect::<Vec<String>>()),
        col("first_utc", cs.iter().map(|c| format_utc(c.first_ts)).collect::<Vec<String>>()),
        col("last_utc", cs.iter().map(|c| format_utc(c.last_ts)).collect::<Vec<String>>()),
        col("duration_s", cs.iter().map(|c| format!("{:.6}", c.duration_s())).collect::<Vec<String>>()),
        col("state", cs.iter().map(|c| c.state.to_string()).collect::<Vec<String>>()),
        col("history", cs.iter().map(|c| c.history.to_string()).collect::<Vec<String>>()),
        col("client_packets", cs.iter().map(|c| c.client_packets).collect::<Vec<u64>>()),
        col("server_packets", cs.iter().map(|c| c.server_packets).collect::<Vec<u64>>()),
        col("client_bytes", cs.iter().map(|c| c.client_bytes).collect::<Vec<u64>>()),
        col("server_bytes", cs.iter().map(|c| c.server_bytes).collect::<Vec<u64>>()),
        col("client_fin", cs.iter().map(|c| c.client_fin).collect::<Vec<u32>>()),
        col("server_fin", cs.iter().map(|c| c.server_fin).collect::<Vec<u32>>()),
        col("client_rst", cs.iter().map(|c| c.client_rst).collect::<Vec<u32>>()),
        col("server_rst", cs.iter().map(|c| c.server_rst).collect::<Vec<u32>>()),
        col("keep_alive", cs.iter().map(|c| c.keep_alive).collect::<Vec<u32>>()),
        col("keep_alive_ack", cs.iter().map(|c| c.keep_alive_ack).collect::<Vec<u32>>()),
        col("retransmissions", cs.iter().map(|c| c.retransmissions).collect::<Vec<u32>>()),
        col("first_frame", cs.iter().map(|c| c.first_frame).collect::<Vec<u64>>()),
        col("last_frame", cs.iter().map(|c| c.last_frame).collect::<Vec<u64>>()),
        // Empty cells (nulls) where no event source named the process.
        col("pid", cs.iter().map(|c| c.pid).collect::<Vec<Option<u32>>>()),
        col("process", cs.iter().map(|c| c.process.clone()).collect::<Vec<Option<String>>>()),
        // Two-sided captures: the inputs this connection was seen in; a view's row names its connection.
        col("seen_in", cs.iter().map(|c| seen_in(a, c)).collect::<Vec<String>>()),
        col("view_of", cs.iter().map(|c| a.twosided.view_of.get(&c.id).copied()).collect::<Vec<Option<u64>>>()),
    ];
    debug_assert_eq!(columns.len(), CONNECTION_COLUMNS.len());
    write_frame(columns, n, w)
}

fn seen_in(a: &Analysis, c: &crate::model::Connection) -> String {
    a.twosided.seen_in(c).iter().map(|&i| a.input_name(i)).collect::<Vec<_>>().join(";")
}

pub fn write_findings(a: &Analysis, w: &mut dyn Write) -> Result<()> {
    let fs = &a.findings;
    let n = fs.len();
    let text = |f: &dyn Fn(&crate::model::Finding) -> String| fs.iter().map(f).collect::<Vec<String>>();
    let columns = vec![
        col("finding_id", fs.iter().map(|f| f.id).collect::<Vec<u64>>()),
        col("kind", text(&|f| f.kind.to_string())),
        col("severity", text(&|f| f.severity.name().to_string())),
        col("first_utc", text(&|f| format_utc(f.first_ts))),
        col("last_utc", text(&|f| format_utc(f.last_ts))),
        col("client", text(&|f| f.client.clone())),
        col("server", text(&|f| f.server.clone())),
        col("pipe", text(&|f| f.pipe.clone())),
        col("pid", text(&|f| f.pid.clone())),
        col("count", fs.iter().map(|f| f.count).collect::<Vec<u64>>()),
        col("evidence", text(&|f| evidence_text(a, f))),
        col("wireshark_filter", text(&|f| f.wireshark_filter.clone())),
        col("log_lines", text(&|f| f.log_lines.iter().map(|&r| a.log_line_label(r)).collect::<Vec<_>>().join(" "))),
        col("summary", text(&|f| f.summary.clone())),
        col("advice", text(&|f| f.advice.clone())),
    ];
    debug_assert_eq!(columns.len(), FINDING_COLUMNS.len());
    write_frame(columns, n, w)
}

/// `input#frame` references separated by spaces.
pub fn evidence_text(a: &Analysis, f: &crate::model::Finding) -> String {
    f.evidence.iter().map(|e| format!("{}#{}", a.input_name(e.input), e.frame)).collect::<Vec<_>>().join(" ")
}
