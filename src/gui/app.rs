//! App state and layout: the loaded session, loading, and the panels. The session lives in `session`,
//! the selection and what it highlights in `selection`.

use std::path::PathBuf;
use std::time::Duration;

use eframe::egui::{self, RichText};

use super::details::{self, DetailsAction};
use super::export::{self, Table};
use super::findings;
use super::loader::{LoadJob, LoadOutcome};
pub use super::selection::DetailsFocus;
use super::selection::Selection;
pub use super::session::Session;
use super::style;
use super::timefmt::{self, TimeZoneMode};
use super::timeline::{self, TimelineItem, TimelineView};
use crate::analysis::{Analysis, Options};

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
    kind_filter: Option<String>,
    pub timeline: TimelineView,
    pub tz: TimeZoneMode,
    messages: Vec<Message>,
    last_copied: Option<String>,
    recent: Vec<String>,
    hover_text: Option<String>,
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

    /// Adds inputs to the session; the analysis re-runs over all of them on one clock.
    pub fn open_files(&mut self, paths: Vec<PathBuf>) {
        self.pending.extend(paths);
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
        self.session.as_ref().map(|s| &s.analysis)
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

    fn toolbar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if ui.button("Open…").on_hover_text("Add captures, traces, event logs or text logs (Ctrl+O)").clicked() {
                if let Some(p) = export::ask_open_paths() {
                    self.open_files(p);
                }
            }
            let recent = self.recent.clone();
            ui.add_enabled_ui(!recent.is_empty(), |ui| {
                ui.menu_button("Recent", |ui| {
                    for r in &recent {
                        if ui.button(r).clicked() {
                            self.open_files(vec![PathBuf::from(r)]);
                            ui.close();
                        }
                    }
                    ui.separator();
                    if ui.button("Forget recent files").clicked() {
                        self.recent.clear();
                        ui.close();
                    }
                });
            });
            let has = self.session.is_some();
            if ui.add_enabled(has, egui::Button::new("Close all")).on_hover_text("Start an empty session").clicked() {
                self.close_all();
            }
            ui.separator();
            ui.add_enabled_ui(has, |ui| {
                ui.menu_button("Export", |ui| {
                    for t in [Table::Findings, Table::Connections] {
                        let label = match t {
                            Table::Findings => "Findings as CSV…",
                            Table::Connections => "Connections as CSV…",
                        };
                        if ui.button(label).clicked() {
                            ui.close();
                            if let Some(path) = export::ask_save_path(t) {
                                self.export_to(t, &path);
                            }
                        }
                    }
                });
            });
            ui.separator();
            ui.label("Time:");
            ui.selectable_value(&mut self.tz, TimeZoneMode::Utc, "UTC");
            ui.selectable_value(&mut self.tz, TimeZoneMode::Local, "Local");
            ui.separator();
            ui.label("Theme:");
            // egui's own theme buttons use emoji the bundled fonts lack; plain words instead.
            let mut pref = ui.ctx().options(|o| o.theme_preference);
            let before = pref;
            ui.selectable_value(&mut pref, egui::ThemePreference::System, "System");
            ui.selectable_value(&mut pref, egui::ThemePreference::Dark, "Dark");
            ui.selectable_value(&mut pref, egui::ThemePreference::Light, "Light");
            if pref != before {
                ui.ctx().set_theme(pref);
            }

            if let Some(job) = &self.job {
                ui.separator();
                let p = &job.progress;
                let file = std::path::Path::new(&p.current_path())
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                ui.add(
                    egui::ProgressBar::new(p.fraction())
                        .desired_width(220.0)
                        .show_percentage()
                        .text(format!("Loading {file} {:.0}%", p.fraction() * 100.0)),
                );
                if ui.add_enabled(!job.is_cancelled(), egui::Button::new("Cancel")).clicked() {
                    job.cancel();
                }
                ui.spinner();
            }
        });
    }

    fn banner(&mut self, ui: &mut egui::Ui) {
        let input_errors: Vec<String> =
            self.analysis().map(|a| a.inputs.iter().filter_map(|i| i.error.clone()).collect()).unwrap_or_default();
        let red = style::severity_color(crate::model::Severity::Error);
        for e in &input_errors {
            ui.label(RichText::new(format!("Input error: {e}")).color(red));
        }
        let mut dismiss = false;
        for m in &self.messages {
            ui.horizontal(|ui| {
                let text = if m.error {
                    RichText::new(format!("Error: {}", m.text)).color(red)
                } else {
                    RichText::new(&m.text)
                };
                ui.label(text);
            });
        }
        if !self.messages.is_empty() && ui.small_button("Dismiss messages").clicked() {
            dismiss = true;
        }
        if dismiss {
            self.messages.clear();
        }
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match &self.session {
                Some(s) => {
                    let a = &s.analysis;
                    let packets: u64 = a.inputs.iter().map(|i| i.packets).sum();
                    ui.label(format!(
                        "{} input(s), {} packets, {} connections, {} findings",
                        a.inputs.len(),
                        packets,
                        a.connections.len(),
                        a.findings.len()
                    ));
                }
                None if self.job.is_none() => {
                    ui.label("Open or drop captures (pcap, pcapng, gz), ETW traces, event logs or text logs.");
                }
                None => {
                    ui.label("Loading…");
                }
            }
            if let Some(h) = &self.hover_text {
                ui.separator();
                ui.label(RichText::new(h).monospace());
            }
        });
    }

    fn findings_panel(&mut self, ui: &mut egui::Ui) {
        let Some(s) = &self.session else {
            ui.heading("Findings");
            ui.label(RichText::new("No session yet.").weak());
            return;
        };
        let clicked =
            findings::show(ui, &s.analysis, &s.order, &s.kinds, &mut self.kind_filter, self.sel.finding, self.tz);
        if let Some(i) = clicked {
            self.select_finding(i);
        }
    }

    fn details_panel(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.sel.focus, DetailsFocus::Finding, "Finding details");
            ui.selectable_value(&mut self.sel.focus, DetailsFocus::Connection, "Connection details");
            ui.selectable_value(&mut self.sel.focus, DetailsFocus::Pipe, "Pipe");
            ui.selectable_value(&mut self.sel.focus, DetailsFocus::LogLine, "Log line");
        });
        ui.separator();
        let Some(s) = &self.session else {
            ui.label(RichText::new("Select a finding or click a connection on the timeline.").weak());
            return;
        };
        let mut action = DetailsAction::default();
        egui::ScrollArea::vertical().id_salt("details_scroll").auto_shrink([false, false]).show(ui, |ui| {
            match self.sel.focus {
                DetailsFocus::Finding => match self.sel.finding.and_then(|i| s.analysis.findings.get(i)) {
                    Some(f) => {
                        let index = |id: u64| s.model.conn_index.get(&id).copied();
                        let opens: Vec<usize> = match self.sel.pipe {
                            Some(pi) => self.sel.pipe_marks.iter().filter(|m| m.0 == pi).map(|m| m.1).collect(),
                            None => Vec::new(),
                        };
                        let pipe = self
                            .sel
                            .pipe
                            .filter(|&pi| s.analysis.pipes[pi].name == f.pipe)
                            .map(|pi| (pi, opens.as_slice()));
                        action = details::show_finding(ui, &s.analysis, f, &index, pipe, self.tz);
                    }
                    None => details::show_session(ui, &s.analysis, self.tz),
                },
                DetailsFocus::Connection => match self.sel.connection {
                    Some(ci) => details::show_connection(ui, &s.analysis, ci, self.tz, &self.sel.evidence_frames),
                    None => {
                        ui.label(RichText::new("Click a connection on the timeline.").weak());
                    }
                },
                DetailsFocus::Pipe => match self.sel.pipe {
                    Some(pi) => {
                        let (t0, t1) = self.timeline.visible_utc(&s.model);
                        let pl =
                            s.model.pipe_lane_of.get(pi).copied().flatten().map(|l| &s.model.pipe_lanes[l as usize]);
                        action = details::show_pipe(
                            ui,
                            &s.analysis,
                            pi,
                            pl,
                            self.sel.open,
                            &self.sel.pipe_marks,
                            (t0, t1),
                            self.tz,
                        );
                    }
                    None => {
                        ui.label(RichText::new("Click a pipe lane on the timeline, or select a pipe finding.").weak());
                    }
                },
                DetailsFocus::LogLine => match self.sel.log {
                    Some(li) => {
                        let lane = s
                            .analysis
                            .log_events
                            .get(li)
                            .and_then(|e| s.model.log_lanes.iter().find(|l| l.input == e.input));
                        action = details::show_log_event(ui, &s.analysis, li, lane, self.tz);
                    }
                    None => {
                        ui.label(RichText::new("Click a log mark on the timeline.").weak());
                    }
                },
            }
        });
        if let Some(text) = action.copy {
            let ctx = ui.ctx().clone();
            self.copy(&ctx, text);
        }
        if let Some(ci) = action.open_connection {
            self.select_connection(ci);
        }
        if let Some((pi, ei)) = action.open_pipe {
            self.select_pipe(pi, ei);
        }
        if let Some(li) = action.open_log {
            self.select_log_event(li);
        }
    }

    fn timeline_panel(&mut self, ui: &mut egui::Ui) {
        let Some(s) = &self.session else {
            ui.centered_and_justified(|ui| {
                ui.label(RichText::new("Open or drop inputs to see their connections on one timeline.").weak());
            });
            return;
        };
        ui.horizontal(|ui| {
            if ui.button("Reset zoom").on_hover_text("Whole session (Home, or double-click)").clicked() {
                self.timeline.reset(&s.model);
            }
            let mid = (self.timeline.t0 + self.timeline.t1) / 2.0;
            let half = (self.timeline.t1 - self.timeline.t0) / 2.0;
            if ui.button("Zoom in").on_hover_text("+ key, Ctrl+wheel").clicked() {
                self.timeline.t0 = mid - half / 1.5;
                self.timeline.t1 = mid + half / 1.5;
            }
            if ui.button("Zoom out").on_hover_text("- key, Ctrl+wheel").clicked() {
                self.timeline.t0 = mid - half * 1.5;
                self.timeline.t1 = mid + half * 1.5;
            }
            if let Some(f) = self.sel.finding.and_then(|i| s.analysis.findings.get(i)) {
                if ui.button("Zoom to finding").clicked() {
                    self.timeline.zoom_to(&s.model, f.first_ts, f.last_ts);
                }
            }
            let (t0, t1) = self.timeline.visible_utc(&s.model);
            ui.label(
                RichText::new(format!("{} … {}", timefmt::format_full(t0, self.tz), timefmt::format_full(t1, self.tz)))
                    .small()
                    .weak(),
            );
        });
        timeline::legend(ui);
        ui.separator();
        let hl = self.sel.highlights();
        let r = timeline::show(ui, &s.analysis, &s.model, &mut self.timeline, &hl, self.tz);
        self.hover_text = r.hovered_text;
        match r.clicked {
            Some(TimelineItem::Connection(ci)) => self.select_connection(ci),
            Some(TimelineItem::Pipe { pipe, event }) => self.select_pipe(pipe, event),
            Some(TimelineItem::LogEvent(i)) => self.select_log_event(i),
            Some(TimelineItem::SystemEvent(_)) | None => {}
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
