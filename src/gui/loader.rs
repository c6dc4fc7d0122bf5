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
    pub fn start(paths: Vec<PathBuf>, mut options: Options, ctx: Option<egui::Context>) -> LoadJob {
        // The packet list shows every kept packet of every connection.
        options.keep_all_packet_notes = true;
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

/// `paths` with every folder replaced by the input files inside it, as the batch mode lists them
/// (`pipeline::inputs::list`: walked in name order, each file sniffed, files of no known format
/// left out; ring-buffer files kept in their order). Files given by name are kept as given.
pub fn input_files(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    use crate::pipeline::Source;
    crate::pipeline::inputs::list(&paths)
        .sources
        .into_iter()
        .flat_map(|s| match s {
            Source::File(p) => vec![p],
            Source::Ring(files) => files,
            Source::Memory { .. } => Vec::new(),
        })
        .collect()
}
