//! The panels of the window: toolbar, banner, status bar, findings list, details pane and timeline.

use std::path::PathBuf;

use eframe::egui::{self, RichText};

use super::{DetailsFocus, GuiApp};
use crate::gui::details::{self, DetailsAction};
use crate::gui::export::{self, Table};
use crate::gui::findings;
use crate::gui::style;
use crate::gui::timefmt::{self, TimeZoneMode};
use crate::gui::timeline::{self, TimelineItem};

impl GuiApp {
    pub(super) fn toolbar(&mut self, ui: &mut egui::Ui) {
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
            if ui
                .add_enabled(has, egui::Button::new("Export report"))
                .on_hover_text("One self-contained HTML file for the ticket: findings, answers, inputs")
                .clicked()
            {
                self.export_report(Some(ui.ctx().clone()));
            }
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

    pub(super) fn banner(&mut self, ui: &mut egui::Ui) {
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

    pub(super) fn status_bar(&mut self, ui: &mut egui::Ui) {
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
            if !self.tasks.is_empty() {
                ui.separator();
                ui.spinner();
                let what: Vec<&str> = self.tasks.iter().map(|t| t.what.as_str()).collect();
                ui.label(format!("{}…", what.join(", ")));
            } else if let Some(m) = &self.status {
                ui.separator();
                let red = style::severity_color(crate::model::Severity::Error);
                let text = if m.error { RichText::new(&m.text).color(red) } else { RichText::new(&m.text) };
                ui.label(text);
            }
            if let Some(h) = &self.hover_text {
                ui.separator();
                ui.label(RichText::new(h).monospace());
            }
        });
    }

    pub(super) fn findings_panel(&mut self, ui: &mut egui::Ui) {
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

    pub(super) fn details_panel(&mut self, ui: &mut egui::Ui) {
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
        if let Some(fi) = self.sel.finding {
            if action.save_evidence {
                self.save_evidence(fi, Some(ui.ctx().clone()));
            }
            if action.open_wireshark {
                self.open_in_wireshark(fi, Some(ui.ctx().clone()));
            }
        }
    }

    pub(super) fn timeline_panel(&mut self, ui: &mut egui::Ui) {
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
