//! `connections.csv` and `findings.csv` (and their Parquet twins): table descriptions for
//! [`super::table`].

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;

use super::ids;
use super::table::{self, col, Cell, Col, Kind, Table};
use crate::analysis::Analysis;
use crate::model::{Connection, Finding};

/// Columns of `connections.csv`, with their types, in order.
pub const CONNECTION_COLS: &[Col] = &[
    col("conn_id", Kind::U64),
    col("input", Kind::Str),
    col("client", Kind::Str),
    col("server", Kind::Str),
    col("first_utc", Kind::Ts),
    col("last_utc", Kind::Ts),
    col("duration_s", Kind::F64(6)),
    col("state", Kind::Str),
    col("history", Kind::Str),
    col("client_packets", Kind::U64),
    col("server_packets", Kind::U64),
    col("client_bytes", Kind::U64),
    col("server_bytes", Kind::U64),
    col("client_fin", Kind::U64),
    col("server_fin", Kind::U64),
    col("client_rst", Kind::U64),
    col("server_rst", Kind::U64),
    col("keep_alive", Kind::U64),
    col("keep_alive_ack", Kind::U64),
    col("retransmissions", Kind::U64),
    col("first_frame", Kind::U64),
    col("last_frame", Kind::U64),
    // Empty cells (nulls) where no event source named the process.
    col("pid", Kind::U64),
    col("process", Kind::Str),
    col("conn_uid", Kind::Str),
    col("community_id", Kind::Str),
    // Two-sided captures: the inputs this connection was seen in; a view's row names its connection.
    col("seen_in", Kind::Str),
    col("view_of", Kind::U64),
];

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
    "conn_uid",
    "community_id",
    "seen_in",
    "view_of",
];

/// Columns of `findings.csv`, with their types, in order.
pub const FINDING_COLS: &[Col] = &[
    col("finding_id", Kind::U64),
    col("kind", Kind::Str),
    col("severity", Kind::Str),
    col("first_utc", Kind::Ts),
    col("last_utc", Kind::Ts),
    col("client", Kind::Str),
    col("server", Kind::Str),
    col("pipe", Kind::Str),
    col("pid", Kind::Str),
    col("count", Kind::U64),
    col("evidence", Kind::Str),
    col("wireshark_filter", Kind::Str),
    col("log_lines", Kind::Str),
    col("summary", Kind::Str),
    col("advice", Kind::Str),
    col("conn_uids", Kind::Str),
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
    "conn_uids",
];

/// The connection table.
pub struct Connections<'a> {
    a: &'a Analysis,
    /// Each input's file name, found once (not three times per row).
    names: Vec<&'a str>,
}

impl<'a> Connections<'a> {
    pub fn new(a: &'a Analysis) -> Self {
        let names = (0..a.inputs.len()).map(|i| a.input_name(i as u32)).collect();
        Connections { a, names }
    }

    fn name(&self, input: u32) -> &'a str {
        self.names.get(input as usize).copied().unwrap_or_else(|| self.a.input_name(input))
    }

    /// The inputs a connection was seen in, `;`-separated (its own input, borrowed, when no
    /// connection was seen twice).
    fn seen_in(&self, c: &Connection) -> Cell<'a> {
        if self.a.twosided.shared.is_empty() {
            return Cell::S(self.name(c.input));
        }
        let names: Vec<&str> = self.a.twosided.seen_in(c).iter().map(|&i| self.name(i)).collect();
        Cell::Owned(names.join(";"))
    }
}

/// The uid of a connection (see [`ids::conn_uid`]).
pub fn conn_uid(a: &Analysis, c: &Connection) -> String {
    conn_uid_in(a.input_name(c.input), c).as_str().to_owned()
}

fn conn_uid_in(input_name: &str, c: &Connection) -> ids::IdText {
    ids::conn_uid_text(input_name, &c.client, &c.server, ids::PROTO_TCP, c.first_ts)
}

/// The Community ID v1 (seed 0) of a connection.
pub fn community_id(c: &Connection) -> String {
    ids::community_id(0, &c.client, &c.server, ids::PROTO_TCP)
}

impl Table for Connections<'_> {
    fn columns(&self) -> &'static [Col] {
        CONNECTION_COLS
    }
    fn len(&self) -> usize {
        self.a.connections.len()
    }
    fn row<'a>(&'a self, i: usize, out: &mut Vec<Cell<'a>>) {
        let a = self.a;
        let c = &a.connections[i];
        let name = self.name(c.input);
        out.extend([
            Cell::U(c.id),
            Cell::S(name),
            Cell::Ep(&c.client),
            Cell::Ep(&c.server),
            Cell::T(c.first_ts),
            Cell::T(c.last_ts),
            Cell::Seconds(c.last_ts - c.first_ts),
            Cell::S(c.state.as_str()),
            Cell::S(c.history.as_str()),
            Cell::U(c.client_packets.into()),
            Cell::U(c.server_packets.into()),
            Cell::U(c.client_bytes),
            Cell::U(c.server_bytes),
            Cell::U(c.client_fin.into()),
            Cell::U(c.server_fin.into()),
            Cell::U(c.client_rst.into()),
            Cell::U(c.server_rst.into()),
            Cell::U(c.keep_alive.into()),
            Cell::U(c.keep_alive_ack.into()),
            Cell::U(c.retransmissions.into()),
            Cell::U(c.first_frame),
            Cell::U(c.last_frame),
            c.pid.map_or(Cell::Null, |p| Cell::U(p.into())),
            c.process.as_deref().map_or(Cell::Null, Cell::S),
            Cell::Id(conn_uid_in(name, c)),
            Cell::Id(ids::community_id_text(0, &c.client, &c.server, ids::PROTO_TCP)),
            self.seen_in(c),
            a.twosided.view_of.get(&c.id).map_or(Cell::Null, |&v| Cell::U(v)),
        ]);
    }
}

/// The findings table.
pub struct Findings<'a> {
    a: &'a Analysis,
    /// Connection id → index in `a.connections`, for the connections findings name.
    by_id: HashMap<u64, usize>,
}

impl<'a> Findings<'a> {
    pub fn new(a: &'a Analysis) -> Self {
        // Only the named connections: a million-connection table needs no full index.
        let mut by_id: HashMap<u64, usize> =
            a.findings.iter().flat_map(|f| f.connections.iter().map(|&id| (id, usize::MAX))).collect();
        if !by_id.is_empty() {
            for (i, c) in a.connections.iter().enumerate() {
                if let Some(slot) = by_id.get_mut(&c.id) {
                    *slot = i;
                }
            }
            by_id.retain(|_, i| *i != usize::MAX);
        }
        Findings { a, by_id }
    }

    /// The uids of a finding's connections, `;`-separated.
    pub fn conn_uids(&self, f: &Finding) -> String {
        let uids: Vec<String> = f
            .connections
            .iter()
            .filter_map(|id| self.by_id.get(id))
            .map(|&i| conn_uid(self.a, &self.a.connections[i]))
            .collect();
        uids.join(";")
    }
}

impl Table for Findings<'_> {
    fn columns(&self) -> &'static [Col] {
        FINDING_COLS
    }
    fn len(&self) -> usize {
        self.a.findings.len()
    }
    fn row<'a>(&'a self, i: usize, out: &mut Vec<Cell<'a>>) {
        let f = &self.a.findings[i];
        out.extend([
            Cell::U(f.id),
            Cell::S(f.kind.name()),
            Cell::S(f.severity.name()),
            Cell::T(f.first_ts),
            Cell::T(f.last_ts),
            Cell::S(&f.client),
            Cell::S(&f.server),
            Cell::S(&f.pipe),
            Cell::S(&f.pid),
            Cell::U(f.count),
            Cell::Owned(evidence_text(self.a, f)),
            Cell::S(&f.wireshark_filter),
            Cell::Owned(f.log_lines.iter().map(|&r| self.a.log_line_label(r)).collect::<Vec<_>>().join(" ")),
            Cell::S(&f.summary),
            Cell::S(&f.advice),
            Cell::Owned(self.conn_uids(f)),
        ]);
    }
}

pub fn write_connections(a: &Analysis, w: &mut dyn Write) -> Result<()> {
    table::write_csv(&Connections::new(a), w)
}

pub fn write_findings(a: &Analysis, w: &mut dyn Write) -> Result<()> {
    table::write_csv(&Findings::new(a), w)
}

/// `input#frame` references separated by spaces.
pub fn evidence_text(a: &Analysis, f: &crate::model::Finding) -> String {
    f.evidence.iter().map(|e| format!("{}#{}", a.input_name(e.input), e.frame)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_columns_match_the_public_names() {
        assert_eq!(table::names(CONNECTION_COLS), CONNECTION_COLUMNS);
        assert_eq!(table::names(FINDING_COLS), FINDING_COLUMNS);
    }
}
