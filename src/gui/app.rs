//! App state and layout: the loaded session, loading, and the panels. The session lives in `session`,
//! the selection and what it highlights in `selection`.

use std::path::PathBuf;
use std::time::Duration;

use eframe::egui;

use super::export::{self, Table};
use super::handoff::{self, Dialogs, Task};
use super::loader::{LoadJob, LoadOutcome};
pub use super::selection::DetailsFocus;
use super::selection::Selection;
pub use super::session::Session;
use super::timefmt::TimeZoneMode;
use super::timeline::TimelineView;
use crate::analysis::{Analysis, Options};

mod panels;

const RECENT_KEY: &str = "ipcscope.recent_files";
const TZ_KEY: &str = "ipcscope.time_zone";
const MAX_RECENT: usize = 12;

/// A lane of the timeline as tests and tools see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneInfo {
    /// `pipe:NAME`, `log:FILE`, `system` or `tcp:ENDPOINT`.
    pub id: String,
    /// The label shown in the gutter.
    pub label: String,
    /// Global row of the lane's header.
    pub row: u32,
}

/// A message in the banner (load failures, cancellations, export results).
#[derive(Clone, Debug)]
pub struct Message {
    pub error: bool,
    pub text: String,
}

/// The whole app; `show` draws it into any `Ui`, so tests and the benchmark drive it headless.
pub struct GuiApp {
    pub options: Options,
    /// Inputs of the current session, in load order.
    files: Vec<PathBuf>,
    session: Option<Session>,
    job: Option<LoadJob>,
    /// Files asked for before the first frame (or while a load was starting).
    pending: Vec<PathBuf>,
    sel: Selection,
    kind_filter: Option<crate::model::FindingKind>,
    pub timeline: TimelineView,
    pub tz: TimeZoneMode,
    messages: Vec<Message>,
    last_copied: Option<String>,
    recent: Vec<String>,
    hover_text: Option<String>,
    /// Hand-offs running on their threads (evidence, Wireshark, report).
    tasks: Vec<Task>,
    /// The last hand-off's outcome, shown in the status bar.
    status: Option<Message>,
    /// Where hand-off files go: native dialogs, or a fixed folder (tests).
    pub dialogs: Dialogs,
    /// Where to look for `wireshark` (a PATH-like list); `None` is the process's `PATH`.
    pub wireshark_search_path: Option<std::ffi::OsString>,
}

impl Default for GuiApp {
    fn default() -> Self {
        GuiApp::new(Vec::new())
    }
}

impl GuiApp {
    /// An app that loads `files` on its first frame.
    pub fn new(files: Vec<PathBuf>) -> GuiApp {
        GuiApp {
            options: Options::default(),
            files: Vec::new(),
            session: None,
            job: None,
            pending: files,
            sel: Selection::default(),
            kind_filter: None,
            timeline: TimelineView::default(),
            tz: TimeZoneMode::Utc,
            messages: Vec::new(),
            last_copied: None,
            recent: Vec::new(),
            hover_text: None,
            tasks: Vec::new(),
            status: None,
            dialogs: Dialogs::Native,
            wireshark_search_path: None,
        }
    }

    /// Restores recent files and the time zone from eframe storage.
    pub fn restore(&mut self, storage: &dyn eframe::Storage) {
        if let Some(r) = eframe::get_value::<Vec<String>>(storage, RECENT_KEY) {
            self.recent = r;
        }
        if let Some(tz) = eframe::get_value::<TimeZoneMode>(storage, TZ_KEY) {
            self.tz = tz;
        }
    }

    /// Adds inputs to the session; the analysis re-runs over all of them on one clock. A folder
    /// adds the inputs inside it, listed as the batch mode lists them (`loader::input_files`).
    pub fn open_files(&mut self, paths: Vec<PathBuf>) {
        self.pending.extend(super::loader::input_files(paths));
    }

    /// Starts a fresh, empty session.
    pub fn close_all(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel();
        }
        self.files.clear();
        self.pending.clear();
        self.session = None;
        self.sel.clear();
    }

    pub fn is_loading(&self) -> bool {
        self.job.is_some() || !self.pending.is_empty()
    }

    /// Cancels the running load; the session stays as it was.
    pub fn cancel_loading(&mut self) {
        if let Some(job) = &self.job {
            job.cancel();
        }
    }

    pub fn analysis(&self) -> Option<&Analysis> {
        self.session.as_ref().map(|s| &*s.analysis)
    }

    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Replaces the session with an analysis computed elsewhere (tests, benchmark).
    pub fn set_analysis(&mut self, analysis: Analysis) {
        self.install(Session::new(analysis), Vec::new());
    }

    pub fn last_copied(&self) -> Option<&str> {
        self.last_copied.as_deref()
    }

    pub fn recent_files(&self) -> &[String] {
        &self.recent
    }

    /// Every error the app currently shows: damaged inputs, then failures.
    pub fn errors(&self) -> Vec<String> {
        let mut out: Vec<String> =
            self.analysis().map(|a| a.inputs.iter().filter_map(|i| i.error.clone()).collect()).unwrap_or_default();
        out.extend(self.messages.iter().filter(|m| m.error).map(|m| m.text.clone()));
        out
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    pub fn selected_finding(&self) -> Option<usize> {
        self.sel.finding
    }

    pub fn selected_connection(&self) -> Option<usize> {
        self.sel.connection
    }

    pub fn focus(&self) -> DetailsFocus {
        self.sel.focus
    }

    /// The timeline's lanes, top to bottom.
    pub fn lanes(&self) -> Vec<LaneInfo> {
        let Some(s) = &self.session else { return Vec::new() };
        s.model
            .lanes
            .iter()
            .enumerate()
            .map(|(i, l)| LaneInfo {
                id: l.kind.id(&s.model, &s.analysis),
                label: l.label.clone(),
                row: s.model.lane_row[i],
            })
            .collect()
    }

    /// Times (UTC ns, sorted) of the marks in the lane of log file `name`.
    pub fn log_mark_times(&self, name: &str) -> Vec<i64> {
        self.session
            .as_ref()
            .and_then(|s| s.model.log_lanes.iter().find(|l| l.name == name).map(|l| l.ts.clone()))
            .unwrap_or_default()
    }

    /// Selected pipe (index in `Analysis::pipes`) and open (index in its `events`).
    pub fn selected_pipe(&self) -> Option<usize> {
        self.sel.pipe
    }

    pub fn selected_open(&self) -> Option<usize> {
        self.sel.open
    }

    /// Selected log line (index in `Analysis::log_events`).
    pub fn selected_log_event(&self) -> Option<usize> {
        self.sel.log
    }

    /// Opens highlighted for the selected finding: (pipe, event) indices.
    pub fn highlighted_opens(&self) -> &[(usize, usize)] {
        &self.sel.pipe_marks
    }

    /// Log lines highlighted for the selected finding (indices in `Analysis::log_events`).
    pub fn highlighted_log_events(&self) -> &[usize] {
        &self.sel.log_marks
    }

    /// Selects a pipe (index in `Analysis::pipes`) and optionally one of its opens.
    pub fn select_pipe(&mut self, pipe: usize, open: Option<usize>) {
        self.sel.select_pipe(pipe, open);
    }

    /// Selects a log line (index in `Analysis::log_events`): the details show its text and neighbours.
    pub fn select_log_event(&mut self, index: usize) {
        if let Some(s) = &self.session {
            self.sel.select_log_event(&s.analysis, index);
        }
    }

    /// The visible time window of the timeline, UTC ns.
    pub fn visible_range(&self) -> Option<(i64, i64)> {
        self.session.as_ref().map(|s| self.timeline.visible_utc(&s.model))
    }

    /// Selects a finding (index in `Analysis::findings`): zooms to it and highlights its evidence.
    pub fn select_finding(&mut self, index: usize) {
        if let Some(s) = &self.session {
            self.sel.select_finding(s, &mut self.timeline, index);
        }
    }

    pub fn select_connection(&mut self, index: usize) {
        self.sel.select_connection(index);
    }

    fn install(&mut self, session: Session, files: Vec<PathBuf>) {
        self.timeline.reset(&session.model);
        self.session = Some(session);
        if !files.is_empty() {
            self.files = files;
        }
        self.sel.clear();
        self.kind_filter = None;
    }

    fn remember_recent(&mut self, paths: &[PathBuf]) {
        for p in paths {
            let s = p.display().to_string();
            self.recent.retain(|r| r != &s);
            self.recent.insert(0, s);
        }
        self.recent.truncate(MAX_RECENT);
    }

    /// Starts pending loads and collects a finished one.
    fn poll_loading(&mut self, ctx: &egui::Context) {
        if !self.pending.is_empty() {
            let mut all = match &self.job {
                // A load is running: restart it with the extra files.
                Some(job) => {
                    job.cancel();
                    job.paths.clone()
                }
                None => self.files.clone(),
            };
            for p in self.pending.drain(..) {
                if !all.contains(&p) {
                    all.push(p);
                }
            }
            self.job = Some(LoadJob::start(all, self.options.clone(), Some(ctx.clone())));
        }
        let Some(job) = &self.job else { return };
        match job.poll() {
            None => {
                // Keep frames coming so the progress bar moves even if the worker is quiet.
                ctx.request_repaint_after(Duration::from_millis(100));
            }
            Some(outcome) => {
                let cancelled = job.is_cancelled();
                let paths = job.paths.clone();
                self.job = None;
                match outcome {
                    LoadOutcome::Done(_) if cancelled => self.messages.push(Message {
                        error: false,
                        text: "Loading was cancelled; the session is unchanged.".into(),
                    }),
                    LoadOutcome::Done(session) => {
                        self.remember_recent(&paths);
                        self.install(*session, paths);
                    }
                    LoadOutcome::Failed(e) => self.messages.push(Message { error: true, text: e }),
                }
            }
        }
    }

    fn copy(&mut self, ctx: &egui::Context, text: String) {
        ctx.copy_text(text.clone());
        self.last_copied = Some(text);
    }

    /// Exports a table to `path` and reports the result in the banner.
    pub fn export_to(&mut self, table: Table, path: &std::path::Path) -> bool {
        let Some(a) = self.analysis() else {
            self.messages.push(Message { error: true, text: "Nothing to export: no inputs loaded.".into() });
            return false;
        };
        match export::write_table(a, table, path) {
            Ok(()) => {
                self.messages.push(Message { error: false, text: format!("Exported {}", path.display()) });
                true
            }
            Err(e) => {
                self.messages.push(Message { error: true, text: format!("Export failed: {e:#}") });
                false
            }
        }
    }

    /// The status line of the last hand-off (evidence, Wireshark, report).
    pub fn status_line(&self) -> Option<&Message> {
        self.status.as_ref()
    }

    /// Whether a hand-off is still running on its thread.
    pub fn handoff_running(&self) -> bool {
        !self.tasks.is_empty()
    }

    fn start_task(
        &mut self,
        what: String,
        ctx: Option<egui::Context>,
        work: impl FnOnce() -> handoff::Outcome + Send + 'static,
    ) {
        self.status = Some(Message { error: false, text: format!("{what}…") });
        self.tasks.push(Task::spawn(what, ctx, work));
    }

    fn finding_subset(&mut self, index: usize) -> Option<Analysis> {
        let s = self.session.as_ref()?;
        let subset = handoff::evidence_subset(&s.analysis, index, &|id| s.model.conn_index.get(&id).copied());
        if subset.is_none() {
            self.status = Some(Message { error: true, text: "Select a finding first.".into() });
        }
        subset
    }

    /// "Save evidence as pcapng" for finding `index` (index in `Analysis::findings`): asks where,
    /// then writes it on a thread; the outcome is the status line.
    pub fn save_evidence(&mut self, index: usize, ctx: Option<egui::Context>) {
        let Some(subset) = self.finding_subset(index) else { return };
        let dialogs = self.dialogs.clone();
        self.start_task("Saving evidence".into(), ctx, move || handoff::save_evidence_task(subset, dialogs));
    }

    /// "Open in Wireshark" for finding `index`: saves its evidence and starts
    /// `wireshark -r FILE -g FRAME`, or says in the status line where the file is when Wireshark
    /// is not on the search path.
    pub fn open_in_wireshark(&mut self, index: usize, ctx: Option<egui::Context>) {
        let Some(subset) = self.finding_subset(index) else { return };
        let dialogs = self.dialogs.clone();
        let search = self.wireshark_search_path.clone().or_else(|| std::env::var_os("PATH")).unwrap_or_default();
        self.start_task("Opening in Wireshark".into(), ctx, move || handoff::wireshark_task(subset, dialogs, search));
    }

    /// "Export report": the HTML report of the whole session, written on a thread.
    pub fn export_report(&mut self, ctx: Option<egui::Context>) {
        let Some(a) = self.session.as_ref().map(|s| s.analysis.clone()) else {
            self.status = Some(Message { error: true, text: "Nothing to export: no inputs loaded.".into() });
            return;
        };
        let dialogs = self.dialogs.clone();
        self.start_task("Exporting the report".into(), ctx, move || handoff::report_task(a, dialogs));
    }

    /// Collects finished hand-offs into the status line.
    fn poll_tasks(&mut self, ctx: &egui::Context) {
        let mut i = 0;
        while i < self.tasks.len() {
            match self.tasks[i].poll() {
                Some(o) => {
                    self.tasks.swap_remove(i);
                    self.status = Some(Message { error: o.error, text: o.text });
                }
                None => i += 1,
            }
        }
        if !self.tasks.is_empty() {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
    }

    /// Draws the whole app.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let dropped: Vec<PathBuf> = ctx.input(|i| i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).collect());
        if !dropped.is_empty() {
            self.open_files(dropped);
        }
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::O)) {
            if let Some(p) = export::ask_open_paths() {
                self.open_files(p);
            }
        }
        self.poll_loading(&ctx);
        self.poll_tasks(&ctx);

        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        if !self.errors().is_empty() || !self.messages.is_empty() {
            egui::Panel::top("banner").show(ui, |ui| self.banner(ui));
        }
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        egui::Panel::left("findings").default_size(360.0).min_size(220.0).show(ui, |ui| {
            self.findings_panel(ui);
            // Claim the panel's width, or it shrinks to its content and cannot be resized.
            ui.take_available_space();
        });
        egui::Panel::right("details").default_size(430.0).min_size(260.0).show(ui, |ui| {
            self.details_panel(ui);
            ui.take_available_space();
        });
        egui::CentralPanel::default_margins().show(ui, |ui| self.timeline_panel(ui));

        let hovering = ctx.input(|i| !i.raw.hovered_files.is_empty());
        if hovering {
            let screen = ctx.content_rect();
            let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop")));
            painter.rect_filled(screen, 0.0, egui::Color32::from_black_alpha(160));
            painter.text(
                screen.center(),
                egui::Align2::CENTER_CENTER,
                "Drop to add to the session",
                egui::FontId::proportional(24.0),
                egui::Color32::WHITE,
            );
        }
    }
}

impl eframe::App for GuiApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, RECENT_KEY, &self.recent);
        eframe::set_value(storage, TZ_KEY, &self.tz);
    }
}
