//! The details pane: a finding's fields, or a connection's kept packets like Wireshark's list.

use eframe::egui::{self, RichText};

use super::style::{self, EndKind};
use super::timefmt::{self, TimeZoneMode};
use crate::analysis::Analysis;
use crate::model::{analysis_flags, tcp_flags, Finding, PacketNote, Side, TsArith};

/// What the finding view asks the app to do.
#[derive(Default)]
pub struct DetailsAction {
    /// Text to put on the clipboard.
    pub copy: Option<String>,
    /// Connection (index in `Analysis::connections`) to show.
    pub open_connection: Option<usize>,
    /// Pipe (index in `Analysis::pipes`) and open to show.
    pub open_pipe: Option<(usize, Option<usize>)>,
    /// Log line (index in `Analysis::log_events`) to show.
    pub open_log: Option<usize>,
    /// Save the finding's evidence as pcapng.
    pub save_evidence: bool,
    /// Save the evidence and open it in Wireshark at the evidence frame.
    pub open_wireshark: bool,
}

pub fn show_finding(
    ui: &mut egui::Ui,
    a: &Analysis,
    f: &Finding,
    conn_index: &dyn Fn(u64) -> Option<usize>,
    pipe_opens: Option<(usize, &[usize])>,
    tz: TimeZoneMode,
) -> DetailsAction {
    let mut act = DetailsAction::default();
    ui.horizontal(|ui| {
        style::severity_dot(ui, f.severity);
        ui.label(RichText::new(f.severity.name()).color(style::severity_color(f.severity)).strong());
        ui.heading(f.kind.name());
    });
    ui.label(RichText::new(&f.summary).strong());
    if !f.advice.is_empty() {
        ui.add_space(4.0);
        ui.label(format!("Advice: {}", f.advice));
    }
    ui.add_space(6.0);
    egui::Grid::new("finding_fields").num_columns(2).striped(true).show(ui, |ui| {
        let mut row = |k: &str, v: String| {
            if !v.is_empty() {
                ui.label(RichText::new(k).weak());
                ui.label(v);
                ui.end_row();
            }
        };
        row("id", f.id.to_string());
        row("first", timefmt::format_full(f.first_ts, tz));
        row("last", timefmt::format_full(f.last_ts, tz));
        row("duration", timefmt::format_duration(f.last_ts.since(f.first_ts)));
        row("client", f.client.clone());
        row("server", f.server.clone());
        row("pipe", f.pipe.clone());
        row("pid", f.pid.clone());
        row("count", f.count.to_string());
    });
    ui.add_space(6.0);
    let evidence = crate::report::csv::evidence_text(a, f);
    ui.label(RichText::new("Evidence frames").strong());
    if evidence.is_empty() {
        ui.label(RichText::new("none").weak());
    } else {
        ui.add(egui::Label::new(RichText::new(format!("Evidence: {evidence}")).monospace()).wrap());
    }
    if !f.wireshark_filter.is_empty() {
        ui.add_space(4.0);
        ui.label(RichText::new("Wireshark filter").strong());
        ui.add(egui::Label::new(RichText::new(&f.wireshark_filter).monospace()).wrap());
        if ui.button("Copy Wireshark filter").on_hover_text("Paste into Wireshark's display filter bar").clicked() {
            act.copy = Some(f.wireshark_filter.clone());
        }
    }
    if !f.evidence.is_empty() || !f.connections.is_empty() {
        ui.horizontal(|ui| {
            let save = ui.button("Save evidence as pcapng").on_hover_text(
                "A small pcapng with this finding's connections; its evidence frames carry a comment naming the finding",
            );
            act.save_evidence = save.clicked();
            let open = ui
                .button("Open in Wireshark")
                .on_hover_text("Saves the evidence and starts Wireshark at the evidence frame (wireshark -r FILE -g FRAME)");
            act.open_wireshark = open.clicked();
        });
    }
    if let Some((pipe, opens)) = pipe_opens {
        ui.add_space(6.0);
        let a2 = show_pipe_opens(ui, a, pipe, opens, "Evidence opens and outcomes", tz);
        act.open_pipe = a2.open_pipe;
    }
    if !f.log_lines.is_empty() {
        ui.add_space(6.0);
        ui.label(RichText::new(format!("Log lines ({})", f.log_lines.len())).strong());
        for &l in f.log_lines.iter().take(200) {
            ui.label(RichText::new(a.log_line_label(l)).monospace());
        }
        if f.log_lines.len() > 200 {
            ui.label(RichText::new(format!("… and {} more", f.log_lines.len() - 200)).weak());
        }
    }
    if !f.connections.is_empty() {
        ui.add_space(6.0);
        ui.label(RichText::new(format!("Connections ({})", f.connections.len())).strong());
        ui.horizontal_wrapped(|ui| {
            for &id in f.connections.iter().take(100) {
                if let Some(idx) = conn_index(id) {
                    if ui.small_button(format!("#{id}")).on_hover_text("Show this connection's packets").clicked() {
                        act.open_connection = Some(idx);
                    }
                }
            }
            if f.connections.len() > 100 {
                ui.label(RichText::new(format!("… {} more", f.connections.len() - 100)).weak());
            }
        });
    }
    act
}

fn flags_text(flags: u8) -> String {
    let mut parts = Vec::new();
    for (bit, name) in [
        (tcp_flags::SYN, "SYN"),
        (tcp_flags::FIN, "FIN"),
        (tcp_flags::RST, "RST"),
        (tcp_flags::PSH, "PSH"),
        (tcp_flags::ACK, "ACK"),
        (tcp_flags::URG, "URG"),
    ] {
        if flags & bit != 0 {
            parts.push(name);
        }
    }
    parts.join(",")
}

/// Initial sequence numbers per side, so the list shows relative numbers like Wireshark.
#[derive(Clone, Copy)]
struct Isn {
    client: Option<u32>,
    server: Option<u32>,
}

impl Isn {
    fn of(c: &crate::model::Connection) -> Isn {
        let first = |side: Side| c.head_tail().0.iter().find(|p| p.side == side).map(|p| p.seq);
        Isn { client: first(Side::Client), server: first(Side::Server) }
    }
    fn rel(&self, side: Side, v: u32) -> String {
        let base = match side {
            Side::Client => self.client,
            Side::Server => self.server,
        };
        match base {
            Some(b) => v.wrapping_sub(b).to_string(),
            None => v.to_string(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn packet_row(
    ui: &mut egui::Ui,
    a: &Analysis,
    input: u32,
    p: &PacketNote,
    first_ts: i64,
    tz: TimeZoneMode,
    evidence: &[(u32, u64)],
    isn: Isn,
) {
    let is_evidence = evidence.contains(&(input, p.frame));
    let frame = RichText::new(p.frame.to_string()).monospace();
    ui.label(if is_evidence { frame.color(style::highlight(ui.visuals())).strong() } else { frame })
        .on_hover_text(format!("{}#{}", a.input_name(input), p.frame));
    ui.label(RichText::new(timefmt::format_tick(p.ts, 1_000, tz)).monospace())
        .on_hover_text(format!("+{}", timefmt::format_duration(p.ts.since(first_ts))));
    ui.label(match p.side {
        Side::Client => "→",
        Side::Server => "←",
    });
    let flags = flags_text(p.flags);
    let mut text = RichText::new(flags).monospace();
    if p.flags & tcp_flags::RST != 0 {
        text = text.color(style::MARK_RST);
    }
    ui.label(text);
    ui.label(RichText::new(p.payload_len.to_string()).monospace());
    let ack = if p.flags & tcp_flags::ACK != 0 { isn.rel(p.side.other(), p.ack) } else { "-".into() };
    ui.label(RichText::new(format!("{} / {}", isn.rel(p.side, p.seq), ack)).monospace())
        .on_hover_text(format!("raw seq {} ack {}", p.seq, p.ack));
    ui.label(RichText::new(p.window.to_string()).monospace());
    let labels = analysis_flags::describe(p.analysis);
    let warn = ui.visuals().warn_fg_color;
    ui.label(RichText::new(labels).color(warn));
    ui.end_row();
}

/// A connection's summary and kept packets; `evidence` frames are highlighted.
pub fn show_connection(ui: &mut egui::Ui, a: &Analysis, idx: usize, tz: TimeZoneMode, evidence: &[(u32, u64)]) {
    let Some(c) = a.connections.get(idx) else {
        ui.label("This connection is no longer in the analysis.");
        return;
    };
    let end = EndKind::of(c);
    ui.horizontal(|ui| {
        ui.heading(format!("Connection #{}", c.id));
        ui.label(RichText::new(end.label()).color(end.color()).strong());
    });
    ui.label(RichText::new(format!("{} → {}", c.client, c.server)).monospace());
    egui::Grid::new("conn_fields").num_columns(2).striped(true).show(ui, |ui| {
        let mut row = |k: &str, v: String| {
            ui.label(RichText::new(k).weak());
            ui.label(v);
            ui.end_row();
        };
        row("input", a.input_name(c.input).to_string());
        if let Some(p) = super::fields::conn_owner(c).and_then(|(pid, name)| super::fields::process_label(pid, name)) {
            row("process", p);
        }
        row("state / history", format!("{}  {}", c.state, c.history));
        row("first", timefmt::format_full(c.first_ts, tz));
        row("last", timefmt::format_full(c.last_ts, tz));
        row("duration", timefmt::format_duration(c.last_ts.since(c.first_ts)));
        row("packets c/s", format!("{} / {}", c.client_packets, c.server_packets));
        row("bytes c/s", format!("{} / {}", c.client_bytes, c.server_bytes));
        row("FIN c/s", format!("{} / {}", c.client_fin, c.server_fin));
        row("RST c/s", format!("{} / {}", c.client_rst, c.server_rst));
        row("keep-alive / ack", format!("{} / {}", c.keep_alive, c.keep_alive_ack));
        row("retransmissions", c.retransmissions.to_string());
        row("frames", format!("{} .. {}", c.first_frame, c.last_frame));
        if c.reused_ports {
            row("reused ports", "yes: SYN on a 4-tuple seen before".into());
        }
    });
    ui.add_space(6.0);
    ui.label(RichText::new("Packets (kept: first and last of the connection)").strong());
    egui::ScrollArea::both().id_salt("packets").auto_shrink([false, true]).show(ui, |ui| {
        egui::Grid::new("packet_list").num_columns(8).striped(true).min_col_width(8.0).show(ui, |ui| {
            let isn = Isn::of(c);
            for h in ["No.", "Time", "Dir", "Flags", "Len", "Seq / Ack (rel)", "Win", "Analysis"] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            let (head, tail) = c.head_tail();
            for p in head {
                packet_row(ui, a, c.input, p, c.first_ts, tz, evidence, isn);
            }
            if c.elided() > 0 {
                ui.label(RichText::new("…").weak());
                ui.label(RichText::new(format!("{} packets not kept", c.elided())).weak().italics());
                ui.end_row();
            }
            for p in tail {
                packet_row(ui, a, c.input, p, c.first_ts, tz, evidence, isn);
            }
        });
    });
    crate::gui::twosided::show_views(ui, a, c.id);
}

/// Shown when nothing is selected: the inputs, TCP counts and the answers to the standing questions.
pub fn show_session(ui: &mut egui::Ui, a: &Analysis, tz: TimeZoneMode) {
    ui.label(RichText::new("Select a finding in the list, or click a connection on the timeline.").weak());
    ui.add_space(6.0);
    if !a.verdicts.is_empty() {
        ui.label(RichText::new("Questions").strong());
        for v in &a.verdicts {
            let color = match v.answer {
                "yes" => style::severity_color(crate::model::Severity::Error),
                "no" => EndKind::Graceful.color(),
                _ => ui.visuals().weak_text_color(),
            };
            ui.label(RichText::new(format!("{}: {}", v.question, v.answer)).color(color).strong());
            ui.indent(v.question, |ui| {
                ui.add(egui::Label::new(&v.reason).wrap());
            });
            ui.add_space(2.0);
        }
        ui.add_space(6.0);
    }
    ui.label(RichText::new(format!("Inputs ({})", a.inputs.len())).strong());
    for i in &a.inputs {
        let name =
            std::path::Path::new(&i.path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let span = match (i.first_ts, i.last_ts) {
            (Some(f), Some(l)) => {
                format!(", {} .. {}", timefmt::format_full(f, tz), timefmt::format_duration(l.since(f)))
            }
            _ => String::new(),
        };
        ui.label(format!("{name} ({}): {} packets{span}", i.format, i.packets)).on_hover_text(&i.path);
    }
    let t = &a.tcp;
    ui.add_space(6.0);
    ui.label(RichText::new("TCP").strong());
    ui.label(format!(
        "{} frames, {} connections, {} SYN, {} SYN/ACK, {} FIN, {} RST, {} keep-alive, {} retransmissions",
        t.tcp_frames, t.tcp_conversations, t.syn, t.synack, t.fin, t.rst, t.keep_alive, t.retransmission
    ));
    if !a.resets.is_empty() {
        let unexplained = a.resets.iter().filter(|r| r.classification == "unexplained").count();
        ui.label(format!("{} resets, {} unexplained", a.resets.len(), unexplained));
    }
}

/// Most opens listed at once (the rest are counted).
const MAX_OPENS_LISTED: usize = 300;

fn open_rows(
    ui: &mut egui::Ui,
    a: &Analysis,
    pipe: usize,
    events: &[usize],
    selected: Option<usize>,
    marked: &[usize],
    tz: TimeZoneMode,
    act: &mut DetailsAction,
) {
    let Some(p) = a.pipes.get(pipe) else { return };
    egui::Grid::new(("pipe_opens", pipe, events.first().copied()))
        .num_columns(7)
        .striped(true)
        .min_col_width(8.0)
        .show(ui, |ui| {
            for h in ["Record", "Time", "PID", "Role", "Outcome", "Status", "Handle lived"] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for &ei in events.iter().take(MAX_OPENS_LISTED) {
                let Some(e) = p.events.get(ei) else { continue };
                let is_marked = marked.contains(&ei) || selected == Some(ei);
                let rec = RichText::new(e.record.to_string()).monospace();
                let rec = if is_marked { rec.color(style::highlight(ui.visuals())).strong() } else { rec };
                if ui
                    .add(egui::Label::new(rec).sense(egui::Sense::click()))
                    .on_hover_text(format!("{}#{} (show on the timeline)", a.input_name(p.input), e.record))
                    .clicked()
                {
                    act.open_pipe = Some((pipe, Some(ei)));
                }
                ui.label(RichText::new(timefmt::format_tick(e.ts, 1_000, tz)).monospace());
                ui.label(RichText::new(e.pid.to_string()).monospace());
                ui.label(if e.server_instance { "server" } else { "client" });
                ui.label(RichText::new(e.outcome.name()).color(super::lanes::outcome_color(e.outcome)).strong());
                ui.label(RichText::new(crate::analysis::pipes::status_name(e.status)).monospace());
                ui.label(match e.closed_ts {
                    Some(c) => timefmt::format_duration(c.since(e.ts)),
                    None => "-".into(),
                });
                ui.end_row();
            }
        });
    if events.len() > MAX_OPENS_LISTED {
        ui.label(RichText::new(format!("… and {} more", events.len() - MAX_OPENS_LISTED)).weak());
    }
}

/// A compact table of some opens of a pipe (the evidence of a finding).
pub fn show_pipe_opens(
    ui: &mut egui::Ui,
    a: &Analysis,
    pipe: usize,
    events: &[usize],
    title: &str,
    tz: TimeZoneMode,
) -> DetailsAction {
    let mut act = DetailsAction::default();
    let Some(p) = a.pipes.get(pipe) else { return act };
    ui.label(RichText::new(format!("{title} ({})", events.len())).strong());
    ui.label(format!(
        "{}: {} opens, {} ok, {} busy, {} not found, {} other",
        p.name, p.opens, p.ok, p.busy, p.not_found, p.other_failures
    ));
    if events.is_empty() {
        ui.label(RichText::new("no open of this pipe among the evidence records").weak());
    } else {
        open_rows(ui, a, pipe, events, None, events, tz, &mut act);
    }
    if ui.button("Pipe details").on_hover_text("All opens and outcomes of this pipe").clicked() {
        act.open_pipe = Some((pipe, None));
    }
    act
}

/// A pipe: its counters, client processes, and its opens with outcomes (those in the visible
/// time range, evidence opens highlighted).
#[allow(clippy::too_many_arguments)]
pub fn show_pipe(
    ui: &mut egui::Ui,
    a: &Analysis,
    pipe: usize,
    lane: Option<&super::lanes::PipeLane>,
    selected: Option<usize>,
    marks: &[(usize, usize)],
    visible: (i64, i64),
    tz: TimeZoneMode,
) -> DetailsAction {
    let mut act = DetailsAction::default();
    let Some(p) = a.pipes.get(pipe) else {
        ui.label("This pipe is no longer in the analysis.");
        return act;
    };
    ui.heading(format!("Pipe {}", super::timeline::short_pipe(&p.name)));
    ui.label(RichText::new(&p.name).monospace());
    egui::Grid::new("pipe_fields").num_columns(2).striped(true).show(ui, |ui| {
        let mut row = |k: &str, v: String| {
            ui.label(RichText::new(k).weak());
            ui.label(v);
            ui.end_row();
        };
        row("input", a.input_name(p.input).to_string());
        row("seen in", super::fields::pipe_source(p).name().to_string());
        let server = super::fields::pipe_server(p).and_then(|(pid, name)| super::fields::process_label(pid, name));
        row("server", server.unwrap_or_else(|| "-".into()));
        let name = |pid: u32| {
            super::fields::process_label(Some(pid), super::fields::pipe_process_name(p, pid)).unwrap_or_default()
        };
        row("clients", p.client_pids.iter().map(|&x| name(x)).collect::<Vec<_>>().join(", "));
        row(
            "opens",
            format!(
                "{} ({} ok, {} busy, {} not found, {} other)",
                p.opens, p.ok, p.busy, p.not_found, p.other_failures
            ),
        );
        row("instances created", p.instances_created.to_string());
        row("most handles at once", p.max_concurrent.to_string());
        row("most instances at once", p.max_instances.to_string());
        row("median handle life", p.median_lifetime_ms.map(|m| format!("{m:.1} ms")).unwrap_or_else(|| "-".into()));
        row("peak open rate", format!("{:.0}/s at {}", p.opens_per_s_peak, timefmt::format_full(p.peak_ts, tz)));
        row("first", timefmt::format_full(p.first_ts, tz));
        row("last", timefmt::format_full(p.last_ts, tz));
    });
    let marked: Vec<usize> = marks.iter().filter(|m| m.0 == pipe).map(|m| m.1).collect();
    if let Some(e) = selected.and_then(|i| p.events.get(i)) {
        ui.add_space(6.0);
        ui.label(
            RichText::new(format!(
                "Selected: record {} pid {} {} ({})",
                e.record,
                e.pid,
                e.outcome.name(),
                crate::analysis::pipes::status_name(e.status)
            ))
            .strong(),
        );
    }
    if !p.clients.is_empty() {
        ui.add_space(6.0);
        ui.label(RichText::new("Clients").strong());
        egui::Grid::new("pipe_clients").num_columns(5).striped(true).show(ui, |ui| {
            for h in ["PID", "Opens", "OK", "Busy", "Not found"] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for c in p.clients.iter().take(50) {
                for v in [c.pid as u64, c.opens, c.ok, c.busy, c.not_found] {
                    ui.label(RichText::new(v.to_string()).monospace());
                }
                ui.end_row();
            }
        });
    }
    ui.add_space(6.0);
    // Opens in the visible time range, found by binary search in the lane's time order.
    let in_view: Vec<usize> = match lane {
        Some(l) => {
            let i = l.ts.partition_point(|&t| t < visible.0);
            let j = l.ts.partition_point(|&t| t <= visible.1);
            l.idx[i..j].iter().map(|&x| x as usize).collect()
        }
        None => (0..p.events.len()).collect(),
    };
    ui.label(
        RichText::new(format!("Opens and outcomes in view ({} of {} kept)", in_view.len(), p.events.len())).strong(),
    );
    open_rows(ui, a, pipe, &in_view, selected, &marked, tz, &mut act);
    act
}

/// Lines listed before and after the selected log line.
const NEIGHBOURS: usize = 5;

/// A log line: where and when, its full text, and its neighbouring error/warning lines.
pub fn show_log_event(
    ui: &mut egui::Ui,
    a: &Analysis,
    idx: usize,
    lane: Option<&super::lanes::LogLane>,
    tz: TimeZoneMode,
) -> DetailsAction {
    let mut act = DetailsAction::default();
    let Some(e) = a.log_events.get(idx) else {
        ui.label("This log line is no longer in the analysis.");
        return act;
    };
    let file = a.input_name(e.input).to_string();
    ui.heading(format!("Log line {file}:{}", e.line));
    let log = a.logs.iter().find(|l| l.input == e.input);
    egui::Grid::new("log_fields").num_columns(2).striped(true).show(ui, |ui| {
        let mut row = |k: &str, v: String| {
            if !v.is_empty() {
                ui.label(RichText::new(k).weak());
                ui.label(v);
                ui.end_row();
            }
        };
        row("severity", e.severity.to_string());
        row("time (UTC-corrected)", e.ts.map(|t| timefmt::format_full(t, tz)).unwrap_or_else(|| "no time".into()));
        row(
            "time as written",
            e.written_ts.map(crate::model::format_utc).unwrap_or_default().trim_end_matches('Z').to_string(),
        );
        if let Some(l) = log {
            row("clock offset", format!("{:+.3} s ({}, confidence {:.2})", l.offset_s, l.offset_source, l.confidence));
        }
        row("errors", e.errors.join(" "));
        if let Some(fid) = e.finding {
            let f = a.findings.iter().find(|f| f.id == fid);
            row("finding", f.map(|f| format!("#{} {}", f.id, f.kind)).unwrap_or_else(|| format!("#{fid}")));
        }
    });
    ui.add_space(6.0);
    ui.label(RichText::new("Text").strong());
    ui.add(egui::Label::new(RichText::new(format!("Text: {}", e.text)).monospace()).wrap());
    let Some(lane) = lane else { return act };
    let k = lane.by_line.iter().position(|&i| i as usize == idx).unwrap_or(0);
    let lo = k.saturating_sub(NEIGHBOURS);
    let hi = (k + NEIGHBOURS + 1).min(lane.by_line.len());
    ui.add_space(6.0);
    ui.label(RichText::new("Neighbours (error and warning lines of the same file)").strong());
    egui::Grid::new("log_neighbours").num_columns(3).striped(true).show(ui, |ui| {
        for &ni in &lane.by_line[lo..hi] {
            let Some(n) = a.log_events.get(ni as usize) else { continue };
            let this = ni as usize == idx;
            let line = RichText::new(format!("{}", n.line)).monospace();
            let line = if this { line.color(style::highlight(ui.visuals())).strong() } else { line };
            if ui.add(egui::Label::new(line).sense(egui::Sense::click())).on_hover_text("Show this line").clicked() {
                act.open_log = Some(ni as usize);
            }
            ui.label(RichText::new(n.ts.map(|t| timefmt::format_tick(t, 1_000, tz)).unwrap_or_default()).monospace());
            ui.add(egui::Label::new(RichText::new(format!("{}: {}", n.severity, n.text)).monospace()).truncate());
            ui.end_row();
        }
    });
    act
}
