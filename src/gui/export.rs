//! CSV export from the app: the same writers and columns as the batch mode.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::analysis::Analysis;
use crate::report::{self, csv};

/// Which table to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Findings,
    Connections,
}

impl Table {
    pub fn default_name(self) -> &'static str {
        match self {
            Table::Findings => "findings.csv",
            Table::Connections => "connections.csv",
        }
    }
}

/// Writes `table` of `a` to `path` atomically (temporary file in the same folder, then rename).
pub fn write_table(a: &Analysis, table: Table, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name =
        path.file_name().and_then(|n| n.to_str()).with_context(|| format!("not a file name: {}", path.display()))?;
    report::write_atomic(&dir, name, |w| match table {
        Table::Findings => csv::write_findings(a, w),
        Table::Connections => csv::write_connections(a, w),
    })
}

/// Asks where to save (native dialog); `None` when the user cancels or no dialog is available.
pub fn ask_save_path(table: Table) -> Option<PathBuf> {
    rfd::FileDialog::new()
        .set_title(match table {
            Table::Findings => "Export findings",
            Table::Connections => "Export connections",
        })
        .set_file_name(table.default_name())
        .add_filter("CSV", &["csv"])
        .save_file()
}

/// Asks for inputs to add to the session (native dialog, several at once).
pub fn ask_open_paths() -> Option<Vec<PathBuf>> {
    rfd::FileDialog::new()
        .set_title("Add inputs")
        .add_filter("All supported", &["pcap", "pcapng", "cap", "gz", "etl", "evtx", "log", "txt"])
        .add_filter("Captures (pcap, pcapng, gz)", &["pcap", "pcapng", "cap", "gz"])
        .add_filter("ETW traces (etl)", &["etl"])
        .add_filter("Event logs (evtx)", &["evtx"])
        .add_filter("Text logs (log, txt)", &["log", "txt"])
        .add_filter("All files", &["*"])
        .pick_files()
}
