//! Writers for the batch contract. Column names and their order are a public interface:
//! extend, never rename. Every file is written to a temporary file in the output folder and
//! renamed into place, so an interrupted run leaves the previous outputs intact.

pub mod csv;
pub mod evidence;
pub mod html;
pub mod logs;
pub mod pipes;
pub mod summary;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::analysis::Analysis;

/// A temporary file in `dir` for `name`, to be renamed into place: 0666 masked by the umask
/// (0644 under the default one), like any program's outputs — the temporary file's own 0600
/// would otherwise survive the rename.
pub fn temp_file_in(dir: &Path, name: &str) -> Result<tempfile::NamedTempFile> {
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    builder.permissions(<std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o666));
    builder.tempfile_in(dir).with_context(|| format!("cannot create a temporary file in {}", dir.display()))
}

/// Writes `bytes` to `dir/name` atomically (temporary file + rename).
pub fn write_atomic(dir: &Path, name: &str, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut tmp = temp_file_in(dir, name)?;
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

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn outputs_get_the_permissions_of_an_ordinary_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        super::write_atomic(dir.path(), "x.csv", |w| Ok(w.write_all(b"a\n")?)).unwrap();
        // What File::create gives under this process's umask (0644 under the default 022).
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("x.csv")), mode(&plain));
        assert_ne!(mode(&dir.path().join("x.csv")), 0o600, "the temporary file's mode leaked");
        assert_eq!(std::fs::read(dir.path().join("x.csv")).unwrap(), b"a\n");
    }
}
