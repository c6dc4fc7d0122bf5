//! Writers for the batch contract. Column names and their order are a public interface:
//! extend, never rename. Every file is written to a temporary file in the output folder and
//! renamed into place, so an interrupted run leaves the previous outputs intact.

pub mod csv;
pub mod evidence;
pub mod html;
pub mod ids;
pub mod logs;
pub mod pipes;
pub mod sha1;
pub mod summary;
pub mod table;

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
    write_unrenamed(dir, name, write)?.rename_into_place()
}

/// An output written to its temporary file, not yet renamed into place.
pub struct Unrenamed {
    tmp: tempfile::NamedTempFile,
    target: std::path::PathBuf,
}

impl Unrenamed {
    pub fn rename_into_place(self) -> Result<()> {
        self.tmp.persist(&self.target).with_context(|| format!("cannot write {}", self.target.display()))?;
        Ok(())
    }
}

/// Writes `dir/name`'s temporary file; nothing is replaced until it is renamed into place.
pub fn write_unrenamed(dir: &Path, name: &str, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<Unrenamed> {
    let mut tmp = temp_file_in(dir, name)?;
    {
        let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut buffered)?;
        buffered.flush()?;
    }
    // No fsync: the rename alone makes the write atomic for readers and for an interrupted run.
    // Flushing to disk (63 ms for the 35 MB connections.csv of 150 k connections, a tenth of the
    // run) would buy durability across a power cut, which a re-run gives more cheaply.
    Ok(Unrenamed { tmp, target: dir.join(name) })
}

/// Writes tables' temporary files (CSV, Parquet or both, as `format` says); none replaces an
/// output until it is renamed into place.
fn write_tables_unrenamed(
    dir: &Path,
    format: Format,
    tables: Vec<(&str, Box<dyn table::Table + '_>)>,
) -> Result<Vec<Unrenamed>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut out = Vec::new();
    for (stem, t) in tables {
        if format != Format::Parquet {
            out.push(write_unrenamed(dir, &format!("{stem}.csv"), |w| table::write_csv(t.as_ref(), w))?);
        }
        if format != Format::Csv {
            out.push(write_unrenamed(dir, &format!("{stem}.parquet"), |w| table::write_parquet(t.as_ref(), w))?);
        }
    }
    Ok(out)
}

/// Renames written outputs into place, in order.
pub fn rename_all_into_place(files: Vec<Unrenamed>) -> Result<()> {
    files.into_iter().try_for_each(Unrenamed::rename_into_place)
}

/// Which table files `--out` gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Csv,
    Parquet,
    Both,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "parquet" => Some(Format::Parquet),
            "both" => Some(Format::Both),
            _ => None,
        }
    }
}

/// The four tables of the batch contract, by file stem.
pub fn tables(analysis: &Analysis) -> Vec<(&'static str, Box<dyn table::Table + '_>)> {
    vec![
        ("connections", Box::new(csv::Connections::new(analysis))),
        ("findings", Box::new(csv::Findings::new(analysis))),
        ("pipes", Box::new(pipes::Pipes(analysis))),
        ("log_events", Box::new(logs::LogEvents::new(analysis))),
    ]
}

/// Writes every batch output of `analysis` into `dir` (created if missing), tables as CSV.
pub fn write_all(analysis: &Analysis, dir: &Path) -> Result<()> {
    write_all_as(analysis, dir, Format::Csv)
}

/// Writes every batch output of `analysis` into `dir`, tables as CSV, Parquet or both.
pub fn write_all_as(analysis: &Analysis, dir: &Path, format: Format) -> Result<()> {
    write_connections_table(analysis, dir, format)?;
    write_all_but_connections(analysis, dir, format)
}

/// The connection table alone, left in temporary files (it is final before the findings are: the
/// batch mode writes it while the detectors run, and renames it into place with the others).
pub fn write_connections_unrenamed(analysis: &Analysis, dir: &Path, format: Format) -> Result<Vec<Unrenamed>> {
    write_tables_unrenamed(dir, format, vec![("connections", Box::new(csv::Connections::new(analysis)))])
}

/// The connection table, written and renamed into place.
pub fn write_connections_table(analysis: &Analysis, dir: &Path, format: Format) -> Result<()> {
    rename_all_into_place(write_connections_unrenamed(analysis, dir, format)?)
}

/// Every batch output but the connection table.
pub fn write_all_but_connections(analysis: &Analysis, dir: &Path, format: Format) -> Result<()> {
    let rest = tables(analysis).into_iter().filter(|(stem, _)| *stem != "connections").collect();
    rename_all_into_place(write_tables_unrenamed(dir, format, rest)?)?;
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
