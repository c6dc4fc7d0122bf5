//! `log_events.csv`: every error/warning log line with its corrected UTC time, error identity and
//! the finding it was linked to (empty when none).

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;

use super::table::{self, col, Cell, Col, Kind, Table};
use crate::analysis::Analysis;

/// Columns of `log_events.csv`, with their types, in order.
pub const LOG_EVENT_COLS: &[Col] = &[
    col("log", Kind::Str),
    col("line", Kind::U64),
    col("utc", Kind::Ts),
    col("written", Kind::Ts),
    col("severity", Kind::Str),
    col("error", Kind::Str),
    col("finding_id", Kind::U64Text),
    col("finding_kind", Kind::Str),
    col("text", Kind::Str),
];

/// Columns of `log_events.csv`, in order.
pub const LOG_EVENT_COLUMNS: &[&str] =
    &["log", "line", "utc", "written", "severity", "error", "finding_id", "finding_kind", "text"];

/// The log events table.
pub struct LogEvents<'a> {
    a: &'a Analysis,
    kinds: HashMap<u64, &'static str>,
}

impl<'a> LogEvents<'a> {
    pub fn new(a: &'a Analysis) -> Self {
        LogEvents { a, kinds: a.findings.iter().rev().map(|f| (f.id, f.kind.name())).collect() }
    }
}

impl Table for LogEvents<'_> {
    fn columns(&self) -> &'static [Col] {
        LOG_EVENT_COLS
    }
    fn len(&self) -> usize {
        self.a.log_events.len()
    }
    fn row<'a>(&'a self, i: usize, out: &mut Vec<Cell<'a>>) {
        let e = &self.a.log_events[i];
        let kind = e.finding.and_then(|id| self.kinds.get(&id).copied()).unwrap_or("");
        out.extend([
            Cell::S(self.a.input_name(e.input)),
            Cell::U(e.line),
            e.ts.map_or(Cell::Null, Cell::T),
            e.written_ts.map_or(Cell::Null, Cell::T),
            Cell::Owned(e.severity.to_string()),
            Cell::Owned(e.errors.join(" ")),
            e.finding.map_or(Cell::Null, Cell::U),
            Cell::S(kind),
            Cell::S(&e.text),
        ]);
    }
}

pub fn write_log_events(a: &Analysis, w: &mut dyn Write) -> Result<()> {
    table::write_csv(&LogEvents::new(a), w)
}

#[cfg(test)]
mod tests {
    #[test]
    fn typed_columns_match_the_public_names() {
        assert_eq!(super::table::names(super::LOG_EVENT_COLS), super::LOG_EVENT_COLUMNS);
    }
}
