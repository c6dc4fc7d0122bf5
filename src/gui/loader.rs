//! Background loading: runs `pipeline::analyze_paths` on a worker thread so the window never
//! freezes, with progress and cancel shared through atomics.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

use eframe::egui;

use super::session::Session;
use crate::analysis::Options;
use crate::pipeline::{Progress, ProgressSink};

/// Progress of the running load, written by the worker and read by the UI each frame.
#[derive(Default)]
pub struct SharedProgress {
    pub file_index: AtomicUsize,
    pub file_count: AtomicUsize,
    pub bytes_done: AtomicU64,
    pub bytes_total: AtomicU64,
    pub path: Mutex<String>,
    pub cancel: AtomicBool,
    /// Wakes the UI when progress moves (None in tests that drive frames themselves).
    pub repaint: Mutex<Option<egui::Context>>,
}

impl ProgressSink for SharedProgress {
    fn report(&self, p: &Progress) {
        self.file_index.store(p.file_index, Ordering::Relaxed);
        self.file_count.store(p.file_count, Ordering::Relaxed);
        self.bytes_done.store(p.bytes_done, Ordering::Relaxed);
        self.bytes_total.store(p.bytes_total, Ordering::Relaxed);
        if let Ok(mut path) = self.path.lock() {
            let shown = p.path.display().to_string();
            if *path != shown {
                *path = shown;
            }
        }
        if let Ok(ctx) = self.repaint.lock() {
            if let Some(ctx) = ctx.as_ref() {
                ctx.request_repaint();
            }
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

impl SharedProgress {
    /// Overall fraction done: whole files done plus the fraction of the current one.
    pub fn fraction(&self) -> f32 {
        let count = self.file_count.load(Ordering::Relaxed).max(1);
        let index = self.file_index.load(Ordering::Relaxed).min(count);
        let total = self.bytes_total.load(Ordering::Relaxed);
        let done = self.bytes_done.load(Ordering::Relaxed);
        let within = if total == 0 { 0.0 } else { (done as f64 / total as f64).clamp(0.0, 1.0) };
        ((index as f64 + within) / count as f64) as f32
    }

    pub fn current_path(&self) -> String {
        self.path.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// What the worker hands back.
pub enum LoadOutcome {
    /// The analysis and the views' precomputed layout (built here, off the UI thread).
    Done(Box<Session>),
    /// The analysis panicked or the thread could not start.
    Failed(String),
}

/// A load in progress.
pub struct LoadJob {
    pub paths: Vec<PathBuf>,
    pub progress: Arc<SharedProgress>,
    rx: Receiver<LoadOutcome>,
}

impl LoadJob {
    /// Starts analysing `paths` (the whole session, on one clock) on a new thread.
    pub fn start(paths: Vec<PathBuf>, options: Options, ctx: Option<egui::Context>) -> LoadJob {
        let progress = Arc::new(SharedProgress::default());
        progress.file_count.store(paths.len(), Ordering::Relaxed);
        if let Ok(mut r) = progress.repaint.lock() {
            *r = ctx.clone();
        }
        let (tx, rx) = mpsc::channel();
        let worker_paths = paths.clone();
        let sink = progress.clone();
        let spawned = std::thread::Builder::new().name("ipcscope-load".into()).spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                Session::new(crate::pipeline::analyze_paths(&worker_paths, &options, &*sink))
            }));
            let outcome = match result {
                Ok(session) => LoadOutcome::Done(Box::new(session)),
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".into());
                    LoadOutcome::Failed(format!("the analysis failed: {msg}"))
                }
            };
            // The receiver may be gone if the app closed; nothing to do then.
            let _ = tx.send(outcome);
            if let Some(ctx) = ctx {
                ctx.request_repaint();
            }
        });
        if let Err(e) = spawned {
            let (tx2, rx2) = mpsc::channel();
            let _ = tx2.send(LoadOutcome::Failed(format!("cannot start the loading thread: {e}")));
            return LoadJob { paths, progress, rx: rx2 };
        }
        LoadJob { paths, progress, rx }
    }

    pub fn cancel(&self) {
        self.progress.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.progress.cancel.load(Ordering::Relaxed)
    }

    /// The outcome once the worker is done, without blocking.
    pub fn poll(&self) -> Option<LoadOutcome> {
        match self.rx.try_recv() {
            Ok(o) => Some(o),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(LoadOutcome::Failed("the loading thread stopped without a result".into()))
            }
        }
    }
}

/// Most files a dropped folder adds, and how deep it is walked.
pub const MAX_FOLDER_FILES: usize = 10_000;
const MAX_FOLDER_DEPTH: usize = 8;
/// Names of inputs in a folder: captures, traces, event logs, text logs, Process Monitor files.
const INPUT_EXTENSIONS: &[&str] = &["pcap", "pcapng", "cap", "gz", "etl", "evtx", "log", "txt", "pml", "csv"];

/// `paths` with every folder replaced by the input files inside it (sorted, recursively, hidden
/// entries skipped); files are kept whatever their name, as given. The app's own folder walk
/// until the pipeline takes folders itself (case folders, issue 13); then this becomes a call to it.
pub fn input_files(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(&p, 0, &mut out);
        } else {
            out.push(p);
        }
    }
    out
}

fn walk(dir: &std::path::Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_FOLDER_DEPTH || out.len() >= MAX_FOLDER_FILES {
        return;
    }
    // An unreadable folder adds nothing; the files that can be read still load.
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if out.len() >= MAX_FOLDER_FILES {
            return;
        }
        if p.is_dir() {
            walk(&p, depth + 1, out);
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| INPUT_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
        {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_adds_its_inputs_sorted_and_skips_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("server");
        std::fs::create_dir_all(&sub).unwrap();
        for name in ["b.pcap", "a.log", "notes.docx", ".hidden.pcap", "server/trace.etl"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let single = dir.path().join("notes.docx");
        let got = input_files(vec![dir.path().to_path_buf(), single.clone()]);
        assert_eq!(
            got,
            vec![dir.path().join("a.log"), dir.path().join("b.pcap"), sub.join("trace.etl"), single],
            "folder inputs sorted, a file given by name kept"
        );
    }
}
