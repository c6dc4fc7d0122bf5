//! Writers for the batch contract. Column names and their order are a public interface:
//! extend, never rename. Every file is written to a temporary file in the output folder and
//! renamed into place, so an interrupted run leaves the previous outputs intact.

pub mod csv;
pub mod logs;
pub mod pipes;
pub mod summary;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::analysis::Analysis;

/// Writes `bytes` to `dir/name` atomically (temporary file + rename).
pub fn write_atomic(dir: &Path, name: &str, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    {
        let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut buffered)?;
        buffered.flush()?;
    }
    tmp.as_file().sync_all().ok();
    let target = dir.join(name);
    tmp.persist(&target).with_context(|| format!("cannot write {}", target.display()))?;
    Ok(())
}

/// Writes every batch output of `analysis` into `dir` (created if missing).
pub fn write_all(analysis: &Analysis, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(dir, "connections.csv", |w| csv::write_connections(analysis, w))?;
    write_atomic(dir, "findings.csv", |w| csv::write_findings(analysis, w))?;
    write_atomic(dir, "pipes.csv", |w| pipes::write_pipes(analysis, w))?;
    write_atomic(dir, "log_events.csv", |w| logs::write_log_events(analysis, w))?;
    write_atomic(dir, "summary.json", |w| {
        serde_json::to_writer_pretty(&mut *w, &summary::summary_json(analysis))?;
        writeln!(w)?;
        Ok(())
    })?;
    Ok(())
}
