//! `pipes.csv`: one row per named pipe.

use std::io::Write;

use anyhow::Result;
use polars::prelude::*;

use crate::analysis::Analysis;
use crate::model::format_utc;

/// Columns of `pipes.csv`, in order.
pub const PIPE_COLUMNS: &[&str] = &[
    "pipe",
    "server_pid",
    "client_pids",
    "opens",
    "ok",
    "busy",
    "not_found",
    "other_failures",
    "max_concurrent",
    "median_lifetime_ms",
    "opens_per_s_peak",
    "first_utc",
    "last_utc",
    "source",
];

pub fn write_pipes(a: &Analysis, w: &mut dyn Write) -> Result<()> {
    let ps = &a.pipes;
    let text = |f: &dyn Fn(&crate::analysis::pipes::Pipe) -> String| ps.iter().map(f).collect::<Vec<String>>();
    let num = |f: &dyn Fn(&crate::analysis::pipes::Pipe) -> u64| ps.iter().map(f).collect::<Vec<u64>>();
    let columns = vec![
        Column::new("pipe".into(), text(&|p| p.name.clone())),
        Column::new("server_pid".into(), text(&|p| p.server_pid.map(|x| x.to_string()).unwrap_or_default())),
        Column::new(
            "client_pids".into(),
            text(&|p| p.client_pids.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ")),
        ),
        Column::new("opens".into(), num(&|p| p.opens)),
        Column::new("ok".into(), num(&|p| p.ok)),
        Column::new("busy".into(), num(&|p| p.busy)),
        Column::new("not_found".into(), num(&|p| p.not_found)),
        Column::new("other_failures".into(), num(&|p| p.other_failures)),
        Column::new("max_concurrent".into(), num(&|p| p.max_concurrent as u64)),
        Column::new(
            "median_lifetime_ms".into(),
            text(&|p| p.median_lifetime_ms.map(|m| format!("{m:.3}")).unwrap_or_default()),
        ),
        Column::new("opens_per_s_peak".into(), text(&|p| format!("{:.1}", p.opens_per_s_peak))),
        Column::new("first_utc".into(), text(&|p| format_utc(p.first_ts))),
        Column::new("last_utc".into(), text(&|p| format_utc(p.last_ts))),
        Column::new("source".into(), text(&|p| p.source.name().to_string())),
    ];
    let mut df = DataFrame::new(ps.len(), columns)?;
    CsvWriter::new(w).include_header(true).finish(&mut df)?;
    Ok(())
}
