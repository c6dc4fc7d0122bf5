//! Case folders: the files a folder holds (recursively, each sniffed), and which capture files
//! continue each other as one ring buffer (by their names, or by their content).
//!
//! A file named on the command line is always read (a bad one is an input error, as before); a
//! file found in a folder is read only when its content is a known format — the others are listed
//! in `summary.json` (`skipped_inputs`) with why, and do not make the run fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Source;
use crate::analysis::SkippedInput;
use crate::ingest::{self, ring, InputKind};

/// What a list of paths holds once folders are walked.
#[derive(Debug, Default)]
pub struct Listing {
    pub sources: Vec<Source>,
    pub skipped: Vec<SkippedInput>,
}

/// Folders deeper than this are not walked (a link loop or a mounted tree is not a case folder).
const MAX_DEPTH: usize = 32;

/// Files and folders to inputs: folders walked in name order, ring-buffer files grouped.
pub fn list(paths: &[PathBuf]) -> Listing {
    let mut files: Vec<(PathBuf, Option<InputKind>)> = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, 0, &mut files, &mut skipped);
        } else {
            files.push((p.clone(), None));
        }
    }
    Listing { sources: group_rings(files), skipped }
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<(PathBuf, Option<InputKind>)>, skipped: &mut Vec<SkippedInput>) {
    let skip = |skipped: &mut Vec<SkippedInput>, p: &Path, why: String| {
        skipped.push(SkippedInput { path: p.display().to_string(), reason: why })
    };
    if depth > MAX_DEPTH {
        skip(skipped, dir, format!("folder nested deeper than {MAX_DEPTH} levels; not walked"));
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => return skip(skipped, dir, format!("cannot list the folder: {e}")),
    };
    entries.sort();
    for p in entries {
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.file_type().is_symlink() && p.is_dir() {
            skip(skipped, &p, "a link to a folder; not followed".into());
        } else if p.is_dir() {
            walk(&p, depth + 1, files, skipped);
        } else {
            match ingest::open(&p) {
                Ok(o) => match o.kind {
                    InputKind::Unknown => skip(skipped, &p, "binary file of an unknown format".into()),
                    InputKind::Empty => skip(skipped, &p, "empty file".into()),
                    kind => files.push((p, Some(kind))),
                },
                Err(e) => skip(skipped, &p, format!("cannot open: {e}")),
            }
        }
    }
}

/// A dumpcap / editcap ring file name `PREFIX_NNNNN_YYYYMMDDhhmmss.EXT`: (PREFIX.EXT, NNNNN).
fn ring_name(p: &Path) -> Option<(String, u64)> {
    let name = p.file_name()?.to_str()?;
    let (rest, tail) = name.rsplit_once('_')?;
    let (stamp, ext) = (tail.get(..14)?, &tail[14..]);
    let (prefix, number) = rest.rsplit_once('_')?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(stamp) || !(ext.is_empty() || ext.starts_with('.')) || number.len() < 5 || !digits(number) {
        return None;
    }
    Some((format!("{prefix}{ext}"), number.parse().ok()?))
}

/// Groups captures of one folder whose names number one ring (consecutive numbers, same prefix,
/// extension and format) into one [`Source::Ring`]; everything else stays a single file, in order.
fn group_rings(files: Vec<(PathBuf, Option<InputKind>)>) -> Vec<Source> {
    // (folder, prefix.ext) -> indices of candidate files.
    let mut rings: BTreeMap<(PathBuf, String), Vec<(u64, usize)>> = BTreeMap::new();
    let kinds: Vec<Option<InputKind>> = files
        .iter()
        .map(|(p, k)| match k {
            Some(k) => Some(*k),
            // Named on the command line: sniffed, it may be a ring file by name or by content.
            None => ingest::open(p).ok().map(|o| o.kind),
        })
        .collect();
    for (i, (p, _)) in files.iter().enumerate() {
        if !matches!(kinds[i], Some(InputKind::Pcap | InputKind::PcapNg)) {
            continue;
        }
        if let Some((key, n)) = ring_name(p) {
            let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            rings.entry((dir, key)).or_default().push((n, i));
        }
    }
    // Index of a ring's first file -> the ring's files; other members are dropped from the list.
    let mut starts: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut member = vec![false; files.len()];
    for (_, mut v) in rings {
        v.sort();
        let mut run: Vec<(u64, usize)> = Vec::new();
        let mut flush = |run: &mut Vec<(u64, usize)>| {
            if run.len() > 1 {
                let idx: Vec<usize> = run.iter().map(|&(_, i)| i).collect();
                for &i in &idx {
                    member[i] = true;
                }
                starts.insert(*idx.iter().min().unwrap_or(&0), idx);
            }
            run.clear();
        };
        for (n, i) in v {
            let continues = run.last().is_some_and(|&(m, j)| m + 1 == n && kinds[j] == kinds[i]);
            if !continues {
                flush(&mut run);
            }
            run.push((n, i));
        }
        flush(&mut run);
    }
    group_by_content(&files, &kinds, &mut member, &mut starts);
    let mut out = Vec::new();
    for (i, (p, _)) in files.iter().enumerate() {
        if let Some(idx) = starts.get(&i) {
            out.push(Source::Ring(idx.iter().map(|&j| files[j].0.clone()).collect()));
        } else if !member[i] {
            out.push(Source::File(p.clone()));
        }
    }
    out
}

/// Captures not in a ring by name that continue each other by content ([`ring::continues`]): each
/// file, in the order of its first packet, joins the chain whose last file it continues.
fn group_by_content(
    files: &[(PathBuf, Option<InputKind>)],
    kinds: &[Option<InputKind>],
    member: &mut [bool],
    starts: &mut BTreeMap<usize, Vec<usize>>,
) {
    let candidates: Vec<usize> = (0..files.len())
        .filter(|&i| !member[i] && matches!(kinds[i], Some(InputKind::Pcap | InputKind::PcapNg)))
        .collect();
    if candidates.len() < 2 {
        return;
    }
    let mut ends: Vec<(usize, ring::Ends)> =
        candidates.into_iter().filter_map(|i| Some((i, ring::ends(&files[i].0)?))).collect();
    ends.sort_by_key(|(i, e)| (e.first_ts(), *i));
    // Chains of positions in `ends`.
    let mut chains: Vec<Vec<usize>> = Vec::new();
    for k in 0..ends.len() {
        let best = chains
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                let last = &ends[*c.last().unwrap_or(&0)];
                // A file listed twice is not its own continuation.
                files[last.0].0 != files[ends[k].0].0 && ring::continues(&last.1, &ends[k].1)
            })
            .max_by_key(|(n, c)| (ends[*c.last().unwrap_or(&0)].1.last_ts(), std::cmp::Reverse(*n)))
            .map(|(n, _)| n);
        match best {
            Some(n) => chains[n].push(k),
            None => chains.push(vec![k]),
        }
    }
    for chain in chains.into_iter().filter(|c| c.len() > 1) {
        let idx: Vec<usize> = chain.iter().map(|&k| ends[k].0).collect();
        for &i in &idx {
            member[i] = true;
        }
        starts.insert(*idx.iter().min().unwrap_or(&0), idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_names() {
        assert_eq!(ring_name(Path::new("/x/srv_00001_20240102030405.pcapng")), Some(("srv.pcapng".into(), 1)));
        assert_eq!(ring_name(Path::new("a_b_00012_20240102030405.pcap.gz")), Some(("a_b.pcap.gz".into(), 12)));
        assert_eq!(ring_name(Path::new("srv_1_20240102030405.pcapng")), None);
        assert_eq!(ring_name(Path::new("srv_00001_2024010203.pcapng")), None);
        assert_eq!(ring_name(Path::new("server.pcapng")), None);
        assert_eq!(ring_name(Path::new("h.example_00003_20240102030405")), Some(("h.example".into(), 3)));
    }
}
