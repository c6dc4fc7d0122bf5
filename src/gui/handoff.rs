//! Hand-off from the app: a finding's evidence as pcapng (`report::evidence`), the finding opened
//! in Wireshark at its evidence frame, and the HTML report (`report::html`). Each runs on its own
//! thread, file dialog included, so the window never freezes; the outcome comes back as a line
//! for the status bar.

use std::ffi::OsStr;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use anyhow::{bail, Context as _, Result};
use eframe::egui;

use crate::analysis::Analysis;
use crate::report::{self, evidence};

/// Where hand-off files go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Dialogs {
    /// Ask with the native save dialog (Wireshark evidence goes to [`wireshark_folder`]).
    #[default]
    Native,
    /// No dialog: every file goes into this folder under its default name (tests, scripted use).
    Folder(PathBuf),
}

/// How a hand-off task ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub error: bool,
    pub text: String,
    /// The file written, if any.
    pub path: Option<PathBuf>,
}

impl Outcome {
    fn ok(text: String, path: Option<PathBuf>) -> Outcome {
        Outcome { error: false, text, path }
    }
    fn failed(text: String) -> Outcome {
        Outcome { error: true, text, path: None }
    }
}

/// A hand-off running on its own thread.
pub struct Task {
    /// What it does, for the status bar while it runs.
    pub what: String,
    rx: Receiver<Outcome>,
}

impl Task {
    /// Runs `work` on a new thread; a panic in it becomes a failed outcome.
    pub fn spawn(what: String, ctx: Option<egui::Context>, work: impl FnOnce() -> Outcome + Send + 'static) -> Task {
        let (tx, rx) = mpsc::channel();
        let name = what.clone();
        let spawned = std::thread::Builder::new().name("ipcscope-handoff".into()).spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or_else(|_| Outcome::failed(format!("{name} failed unexpectedly")));
            let _ = tx.send(out);
            if let Some(ctx) = ctx {
                ctx.request_repaint();
            }
        });
        if let Err(e) = spawned {
            let (tx2, rx2) = mpsc::channel();
            let _ = tx2.send(Outcome::failed(format!("cannot start a thread: {e}")));
            return Task { what, rx: rx2 };
        }
        Task { what, rx }
    }

    /// The outcome once the thread is done, without blocking.
    pub fn poll(&self) -> Option<Outcome> {
        match self.rx.try_recv() {
            Ok(o) => Some(o),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Outcome::failed(format!("{}: the thread stopped", self.what))),
        }
    }
}

/// An analysis holding only finding `index`, its connections and the inputs: what
/// `report::evidence::write_evidence` needs to write that one finding's file, built on the UI
/// thread in O(the finding's connections).
pub fn evidence_subset(a: &Analysis, index: usize, conn_index: &dyn Fn(u64) -> Option<usize>) -> Option<Analysis> {
    let f = a.findings.get(index)?;
    let connections =
        f.connections.iter().filter_map(|&id| conn_index(id)).filter_map(|i| a.connections.get(i).cloned()).collect();
    Some(Analysis { inputs: a.inputs.clone(), connections, findings: vec![f.clone()], ..Default::default() })
}

/// What was saved for a finding.
#[derive(Clone, Debug)]
pub struct SavedEvidence {
    pub path: PathBuf,
    pub packets: u64,
    /// 1-based frame of the first evidence packet in the saved file (the one with a comment).
    pub frame: Option<u64>,
    pub problems: Vec<String>,
}

/// Writes the one finding of `subset` to `target` (written next to it first, then renamed).
pub fn save_evidence(subset: &Analysis, target: &Path) -> Result<SavedEvidence> {
    let Some(f) = subset.findings.first() else { bail!("no finding selected") };
    let dir = parent_dir(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".ipcscope-evidence")
        .tempdir_in(&dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    let rep = evidence::write_evidence(subset, tmp.path())?;
    let Some(file) = rep.files.into_iter().next() else {
        let why = if rep.problems.is_empty() {
            "its evidence is in logs, traces or pipe events, not in a capture".to_string()
        } else {
            rep.problems.join("; ")
        };
        bail!("finding {} has no capture packets to save: {why}", f.id);
    };
    std::fs::rename(&file.path, target).with_context(|| format!("cannot move the evidence to {}", target.display()))?;
    let frame = first_commented_frame(target).unwrap_or(None);
    Ok(SavedEvidence { path: target.to_path_buf(), packets: file.packets, frame, problems: rep.problems })
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The 1-based number of the first packet carrying a comment in a pcapng written by
/// `report::evidence` (the finding's evidence frame): Wireshark's `-g` takes it.
pub fn first_commented_frame(path: &Path) -> Result<Option<u64>> {
    use pcap_parser::pcapng::Block;
    use pcap_parser::traits::PcapReaderIterator;
    use pcap_parser::{PcapBlockOwned, PcapError, PcapNGReader};
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut rd = PcapNGReader::new(1 << 20, file).map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
    let mut frame = 0u64;
    loop {
        match rd.next() {
            Ok((len, block)) => {
                let commented = match block {
                    PcapBlockOwned::NG(Block::EnhancedPacket(e)) => {
                        frame += 1;
                        e.options.iter().any(|o| o.code.0 == 1)
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(_)) => {
                        frame += 1;
                        false
                    }
                    _ => false,
                };
                rd.consume(len);
                if commented {
                    return Ok(Some(frame));
                }
            }
            Err(PcapError::Eof) => return Ok(None),
            Err(PcapError::Incomplete(_)) => {
                rd.refill().map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
            }
            Err(e) => bail!("{}: {e:?}", path.display()),
        }
    }
}

/// `program` in the folders of `search` (a PATH-like list), as `Command` would find it.
pub fn find_on_path(program: &str, search: &OsStr) -> Option<PathBuf> {
    let names: Vec<String> =
        if cfg!(windows) { vec![format!("{program}.exe"), program.to_string()] } else { vec![program.to_string()] };
    std::env::split_paths(search)
        .filter(|d| !d.as_os_str().is_empty())
        .find_map(|d| names.iter().map(|n| d.join(n)).find(|p| is_executable(p)))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// Where evidence opened in Wireshark is kept (Wireshark reads the file while it is open).
pub fn wireshark_folder() -> PathBuf {
    std::env::temp_dir().join("ipcscope-evidence")
}

/// Starts `wireshark -r FILE -g FRAME` and does not wait for it (a thread reaps it).
pub fn start_wireshark(program: &Path, file: &Path, frame: Option<u64>) -> Result<()> {
    let mut cmd = std::process::Command::new(program);
    cmd.arg("-r").arg(file);
    if let Some(n) = frame {
        cmd.arg("-g").arg(n.to_string());
    }
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", program.display()))?;
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// Writes the HTML report of `a` to `path` atomically.
pub fn write_report(a: &Analysis, path: &Path) -> Result<()> {
    let name =
        path.file_name().and_then(|n| n.to_str()).with_context(|| format!("not a file name: {}", path.display()))?;
    report::write_atomic(&parent_dir(path), name, |w| report::html::write_html(a, w))
}

/// The file to write: asked with the native save dialog (from this worker thread, through rfd's
/// async dialog, which macOS runs on the main thread for us), or `default_name` in the fixed folder.
/// `None` when the user cancels.
pub fn ask_target(dialogs: &Dialogs, title: &str, default_name: &str, filter: (&str, &[&str])) -> Option<PathBuf> {
    match dialogs {
        Dialogs::Folder(dir) => Some(dir.join(default_name)),
        Dialogs::Native => block_on(
            rfd::AsyncFileDialog::new()
                .set_title(title)
                .set_file_name(default_name)
                .add_filter(filter.0, filter.1)
                .save_file(),
        )
        .map(|h| h.path().to_path_buf()),
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread (the dialog's only; no executor needed).
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// The evidence file name of finding `f` (`finding-0003-stale_connection.pcapng`).
pub fn evidence_name(f: &crate::model::Finding) -> String {
    evidence::file_name(f)
}

/// Saves finding evidence for the "Save evidence as pcapng" button.
pub fn save_evidence_task(subset: Analysis, dialogs: Dialogs) -> Outcome {
    let Some(f) = subset.findings.first() else { return Outcome::failed("no finding selected".into()) };
    let Some(target) = ask_target(&dialogs, "Save evidence as pcapng", &evidence_name(f), ("pcapng", &["pcapng"]))
    else {
        return Outcome::ok("Saving evidence was cancelled.".into(), None);
    };
    match save_evidence(&subset, &target) {
        Ok(s) => Outcome::ok(
            format!(
                "Saved evidence of finding {} to {} ({} packets{}){}",
                f.id,
                s.path.display(),
                s.packets,
                s.frame.map(|n| format!(", evidence at frame {n}")).unwrap_or_default(),
                problems_note(&s.problems)
            ),
            Some(s.path),
        ),
        Err(e) => Outcome::failed(format!("Saving evidence failed: {e:#}")),
    }
}

/// "Open in Wireshark": saves the evidence and starts Wireshark on it, or says where it was saved
/// when Wireshark is not on `search_path`.
pub fn wireshark_task(subset: Analysis, dialogs: Dialogs, search_path: std::ffi::OsString) -> Outcome {
    let Some(f) = subset.findings.first() else { return Outcome::failed("no finding selected".into()) };
    let dir = match &dialogs {
        Dialogs::Folder(d) => d.clone(),
        Dialogs::Native => wireshark_folder(),
    };
    let target = dir.join(evidence_name(f));
    let saved = match save_evidence(&subset, &target) {
        Ok(s) => s,
        Err(e) => return Outcome::failed(format!("Open in Wireshark: {e:#}")),
    };
    let at = saved.frame.map(|n| format!(" at frame {n}")).unwrap_or_default();
    match find_on_path("wireshark", &search_path) {
        Some(program) => match start_wireshark(&program, &saved.path, saved.frame) {
            Ok(()) => Outcome::ok(format!("Started Wireshark on {}{at}", saved.path.display()), Some(saved.path)),
            Err(e) => Outcome::failed(format!("{e:#}; the evidence is saved at {}{at}", saved.path.display())),
        },
        None => Outcome::ok(
            format!(
                "Wireshark is not on PATH; evidence of finding {} saved to {}{at}{}",
                f.id,
                saved.path.display(),
                problems_note(&saved.problems)
            ),
            Some(saved.path),
        ),
    }
}

/// "Export report": the self-contained HTML report.
pub fn report_task(a: Arc<Analysis>, dialogs: Dialogs) -> Outcome {
    let Some(target) = ask_target(&dialogs, "Export report", "ipcscope-report.html", ("HTML", &["html", "htm"])) else {
        return Outcome::ok("Exporting the report was cancelled.".into(), None);
    };
    match write_report(&a, &target) {
        Ok(()) => Outcome::ok(format!("Exported the report to {}", target.display()), Some(target)),
        Err(e) => Outcome::failed(format!("Exporting the report failed: {e:#}")),
    }
}

fn problems_note(problems: &[String]) -> String {
    if problems.is_empty() {
        String::new()
    } else {
        format!("; warning: {}", problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_only_where_the_search_path_says() {
        let dir = tempfile::tempdir().unwrap();
        let search = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(find_on_path("wireshark", &search), None);
        let prog = dir.path().join(if cfg!(windows) { "wireshark.exe" } else { "wireshark" });
        std::fs::write(&prog, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Not executable: not a program.
            assert_eq!(find_on_path("wireshark", &search), None);
            std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert_eq!(find_on_path("wireshark", &search), Some(prog));
    }

    #[test]
    fn block_on_runs_a_ready_future() {
        assert_eq!(block_on(async { 7 }), 7);
    }
}
