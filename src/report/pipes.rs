//! `pipes.csv`: one row per named pipe.

use std::io::Write;

use anyhow::Result;

use super::table::{self, col, Cell, Col, Kind, Table};
use crate::analysis::Analysis;

/// Columns of `pipes.csv`, with their types, in order.
pub const PIPE_COLS: &[Col] = &[
    col("pipe", Kind::Str),
    col("server_pid", Kind::U64Text),
    col("client_pids", Kind::Str),
    col("opens", Kind::U64),
    col("ok", Kind::U64),
    col("busy", Kind::U64),
    col("not_found", Kind::U64),
    col("other_failures", Kind::U64),
    col("max_concurrent", Kind::U64),
    col("median_lifetime_ms", Kind::F64(3)),
    col("opens_per_s_peak", Kind::F64(1)),
    col("first_utc", Kind::Ts),
    col("last_utc", Kind::Ts),
    col("source", Kind::Str),
];

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

/// The pipes table.
pub struct Pipes<'a>(pub &'a Analysis);

impl Table for Pipes<'_> {
    fn columns(&self) -> &'static [Col] {
        PIPE_COLS
    }
    fn len(&self) -> usize {
        self.0.pipes.len()
    }
    fn row<'a>(&'a self, i: usize, out: &mut Vec<Cell<'a>>) {
        let p = &self.0.pipes[i];
        out.extend([
            Cell::S(&p.name),
            p.server_pid.map_or(Cell::Null, |x| Cell::U(x.into())),
            Cell::Owned(p.client_pids.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ")),
            Cell::U(p.opens),
            Cell::U(p.ok),
            Cell::U(p.busy),
            Cell::U(p.not_found),
            Cell::U(p.other_failures),
            Cell::U(p.max_concurrent.into()),
            p.median_lifetime_ms.map_or(Cell::Null, Cell::F),
            Cell::F(p.opens_per_s_peak),
            Cell::T(p.first_ts),
            Cell::T(p.last_ts),
            Cell::S(p.source.name()),
        ]);
    }
}

pub fn write_pipes(a: &Analysis, w: &mut dyn Write) -> Result<()> {
    table::write_csv(&Pipes(a), w)
}

#[cfg(test)]
mod tests {
    #[test]
    fn typed_columns_match_the_public_names() {
        assert_eq!(super::table::names(super::PIPE_COLS), super::PIPE_COLUMNS);
    }
}
