//! The user's view of the timeline (time window, scroll, input) and the frame: `show` lays out the
//! plot, runs the row painters over the visible rows and resolves hover and click.

use eframe::egui::{
    self, Color32, CornerRadius, Key, PointerButton, Pos2, Rect, Sense, Shape, Stroke, StrokeKind, Vec2,
};

use super::model::{LaneKind, RowRef, TimelineModel};
use super::{rows, ruler, TimeAxis, GUTTER_WIDTH, MIN_SPAN_NS, ROW_HEIGHT, RULER_HEIGHT};
use crate::analysis::Analysis;
use crate::gui::lanes;
use crate::gui::style::{self, EndKind};
use crate::gui::timefmt::{self, TimeZoneMode};
use crate::model::{TsArith, UtcNs};

/// The user's view of the timeline: a time window and a vertical scroll.
#[derive(Clone, Debug)]
pub struct TimelineView {
    /// Visible window, ns after the model origin.
    pub t0: f64,
    pub t1: f64,
    pub scroll_y: f32,
    /// Plot size of the last frame, for keyboard zoom and scroll-into-view.
    pub plot_width: f32,
    pub plot_height: f32,
    box_start: Option<Pos2>,
}

impl Default for TimelineView {
    fn default() -> Self {
        TimelineView { t0: 0.0, t1: 1e9, scroll_y: 0.0, plot_width: 800.0, plot_height: 400.0, box_start: None }
    }
}

impl TimelineView {
    /// Shows the whole session with a small margin.
    pub fn reset(&mut self, model: &TimelineModel) {
        let span = model.span_ns().max(MIN_SPAN_NS);
        self.t0 = -span * 0.02;
        self.t1 = span * 1.02;
        self.scroll_y = 0.0;
    }

    /// The visible window in UTC ns.
    pub fn visible_utc(&self, model: &TimelineModel) -> (UtcNs, UtcNs) {
        (model.origin.after(self.t0.floor() as i64), model.origin.after(self.t1.ceil() as i64))
    }

    /// Zooms so that `first..last` fills most of the view.
    pub fn zoom_to(&mut self, model: &TimelineModel, first: UtcNs, last: UtcNs) {
        let (a, b) = (first.since(model.origin) as f64, last.max(first).since(model.origin) as f64);
        let margin = ((b - a) * 0.15).max(2e6);
        self.t0 = a - margin;
        self.t1 = b + margin;
        self.clamp(model);
    }

    /// Scrolls vertically so that global row `row` is visible.
    pub fn scroll_to_row(&mut self, row: u32) {
        let y = row as f32 * ROW_HEIGHT;
        let h = (self.plot_height - ROW_HEIGHT).max(ROW_HEIGHT);
        if y < self.scroll_y || y > self.scroll_y + h {
            self.scroll_y = (y - h / 3.0).max(0.0);
        }
    }

    fn zoom_around(&mut self, factor: f64, at: f64) {
        self.t0 = at - (at - self.t0) / factor;
        self.t1 = at + (self.t1 - at) / factor;
    }

    fn clamp(&mut self, model: &TimelineModel) {
        let total = model.span_ns().max(MIN_SPAN_NS);
        let max_span = total * 1.5;
        let mut span = (self.t1 - self.t0).clamp(MIN_SPAN_NS, max_span);
        if !span.is_finite() {
            span = total;
        }
        let mid = (self.t0 + self.t1) / 2.0;
        let mid = mid.clamp(-total * 0.25, total * 1.25);
        self.t0 = mid - span / 2.0;
        self.t1 = mid + span / 2.0;
        let content = model.rows.len() as f32 * ROW_HEIGHT;
        self.scroll_y = self.scroll_y.clamp(0.0, (content - self.plot_height * 0.5).max(0.0));
    }
}

/// Something on the timeline the user can hover or click.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimelineItem {
    Connection(usize),
    /// A pipe (index in `Analysis::pipes`) and, for a mark, the open (index in `Pipe::events`).
    Pipe {
        pipe: usize,
        event: Option<usize>,
    },
    /// Index in `Analysis::log_events`.
    LogEvent(usize),
    /// Index in `Analysis::system_events`.
    SystemEvent(usize),
}

/// What the user did in the timeline this frame.
#[derive(Default)]
pub struct TimelineResponse {
    pub clicked_connection: Option<usize>,
    pub clicked: Option<TimelineItem>,
    pub hovered_text: Option<String>,
}

/// Per-frame inputs besides the model: what to highlight.
pub struct Highlights<'a> {
    pub selected_connection: Option<usize>,
    /// Connection indices of the selected finding, sorted.
    pub finding_connections: &'a [usize],
    /// (global row, time) of the selected finding's evidence frames.
    pub evidence_marks: &'a [(u32, UtcNs)],
    pub selected_finding: Option<usize>,
    /// Selected pipe (index in `Analysis::pipes`).
    pub selected_pipe: Option<usize>,
    /// Highlighted opens: (index in `Analysis::pipes`, index in `Pipe::events`).
    pub pipe_marks: &'a [(usize, usize)],
    /// Highlighted log lines (indices in `Analysis::log_events`).
    pub log_marks: &'a [usize],
    pub selected_log: Option<usize>,
}

pub fn show(
    ui: &mut egui::Ui,
    a: &Analysis,
    model: &TimelineModel,
    view: &mut TimelineView,
    hl: &Highlights<'_>,
    tz: TimeZoneMode,
) -> TimelineResponse {
    let mut out = TimelineResponse::default();
    let rect = ui.available_rect_before_wrap();
    let response = ui.interact(rect, ui.scope_id().with("timeline"), Sense::click_and_drag());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, "Timeline"));
    let plot = Rect::from_min_max(Pos2::new(rect.left() + GUTTER_WIDTH, rect.top() + RULER_HEIGHT), rect.max);
    view.plot_width = plot.width().max(1.0);
    view.plot_height = plot.height().max(1.0);

    handle_input(ui, &response, model, view, plot);
    view.clamp(model);

    let axis = TimeAxis::new(model.origin, view.t0, view.t1, plot);
    let visuals = ui.visuals().clone();
    let painter = ui.painter_at(rect);
    let mut shapes: Vec<Shape> = Vec::with_capacity(4096);
    shapes.push(Shape::rect_filled(rect, CornerRadius::ZERO, visuals.extreme_bg_color));
    rows::finding_bands(&mut shapes, &axis, &a.findings, hl.selected_finding);

    // Visible rows only.
    let mut bars = egui::Mesh::default();
    let first_bar_shape = shapes.len();
    let first_row = (view.scroll_y / ROW_HEIGHT).floor().max(0.0) as usize;
    let visible_rows = (plot.height() / ROW_HEIGHT).ceil() as usize + 1;
    let last_row = (first_row + visible_rows).min(model.rows.len());
    let pointer = response.hover_pos();
    let cx = rows::Ctx { a, model, axis, visuals: &visuals, tz, pointer };
    let mut hovered_item: Option<usize> = None;
    let mut hover_other: Option<rows::Hover> = None;

    // One row early: a pipe graph two rows tall may start just above the plot.
    for gi in first_row.saturating_sub(1)..last_row {
        let y = plot.top() + gi as f32 * ROW_HEIGHT - view.scroll_y;
        let row_rect = Rect::from_min_max(Pos2::new(plot.left(), y), Pos2::new(plot.right(), y + ROW_HEIGHT));
        let hover = match model.rows[gi] {
            RowRef::Spacer => None,
            RowRef::PipeGraph { lane: li } => {
                let LaneKind::Pipe(pi) = model.lanes[li as usize].kind else { continue };
                let pl = &model.pipe_lanes[pi as usize];
                rows::pipe_graph(&cx, pl, y, hl.selected_pipe == Some(pl.pipe), &mut shapes, &mut bars)
            }
            RowRef::PipeOpens { lane: li } => {
                let LaneKind::Pipe(pi) = model.lanes[li as usize].kind else { continue };
                rows::pipe_opens(&cx, &model.pipe_lanes[pi as usize], row_rect, &mut bars)
            }
            RowRef::Marks { lane: li } => match model.lanes[li as usize].kind {
                LaneKind::Log(i) => rows::log_marks(&cx, &model.log_lanes[i as usize], row_rect, &mut bars),
                LaneKind::System => rows::system_marks(&cx, &model.system, row_rect, &mut shapes),
                _ => None,
            },
            RowRef::Header(_) => {
                rows::header(&mut shapes, &visuals, rect.left(), rect.right(), row_rect);
                None
            }
            RowRef::Items { lane: li, row } => {
                let lane = &model.lanes[li as usize];
                if let Some(i) = rows::connections(&cx, lane, row, row_rect, &mut shapes, &mut bars) {
                    hovered_item = Some(i);
                }
                None
            }
        };
        if hover.is_some() {
            hover_other = hover;
        }
    }

    // The thin bars go under the wide bars, outlines and marks pushed during the row loop.
    shapes.insert(first_bar_shape, Shape::mesh(bars));
    rows::connection_outlines(&cx, hl, view.scroll_y, &mut shapes);
    rows::selection_marks(&cx, hl, view.scroll_y, &mut shapes);

    // Ruler and gutter are painted over the plot so bars never run under them.
    let ruler = Rect::from_min_max(rect.min, Pos2::new(rect.right(), rect.top() + RULER_HEIGHT));
    shapes.push(Shape::rect_filled(ruler, CornerRadius::ZERO, visuals.panel_fill));
    rows::gutter(&mut shapes, &painter, model, &visuals, rect, plot, first_row..last_row, view.scroll_y);
    let weak = visuals.weak_text_color();
    ruler::ruler_shapes(&mut shapes, &painter, &axis, ruler, tz, visuals.text_color(), weak, visuals.panel_fill);

    // Box zoom rectangle.
    if let (Some(start), Some(now)) = (view.box_start, response.hover_pos().or(response.interact_pointer_pos())) {
        let r =
            Rect::from_min_max(Pos2::new(start.x.min(now.x), plot.top()), Pos2::new(start.x.max(now.x), plot.bottom()));
        shapes.push(Shape::rect_filled(r, CornerRadius::ZERO, Color32::from_rgba_unmultiplied(120, 170, 255, 40)));
        shapes.push(Shape::rect_stroke(r, CornerRadius::ZERO, Stroke::new(1.0, style::MARK_FIN), StrokeKind::Inside));
    }
    if let Some(p) = pointer {
        if plot.contains(p) {
            shapes.push(Shape::line_segment(
                [Pos2::new(p.x, plot.top()), Pos2::new(p.x, plot.bottom())],
                Stroke::new(1.0, weak.gamma_multiply(0.6)),
            ));
        }
    }
    painter.extend(shapes);

    if let (None, Some((_, _, text))) = (hovered_item, &hover_other) {
        out.hovered_text = Some(text.clone());
    } else if let Some(idx) = hovered_item {
        if let Some(c) = a.connections.get(idx) {
            out.hovered_text = Some(format!(
                "#{} {} → {}  {} ({})  {} .. {}  {} pkts",
                c.id,
                c.client,
                c.server,
                c.state,
                model.conn_end.get(idx).map(|e| e.label()).unwrap_or(""),
                timefmt::format_full(c.first_ts, tz),
                timefmt::format_duration(c.last_ts.since(c.first_ts)),
                c.client_packets + c.server_packets
            ));
        }
    } else if let Some(p) = pointer {
        if plot.contains(p) {
            out.hovered_text = Some(timefmt::format_full(axis.t_at(p.x), tz));
        }
    }
    if response.clicked() {
        out.clicked_connection = hovered_item;
        out.clicked = hovered_item.map(TimelineItem::Connection).or(hover_other.map(|h| h.1));
    }
    out
}

fn handle_input(ui: &egui::Ui, response: &egui::Response, model: &TimelineModel, view: &mut TimelineView, plot: Rect) {
    let ns_per_px = (view.t1 - view.t0) / plot.width().max(1.0) as f64;
    // Times under the pointer are taken from the view as it was at the start of the frame.
    let t0 = view.t0;
    let t_at = |x: f32| t0 + (x - plot.left()) as f64 * ns_per_px;

    if response.hovered() {
        let (zoom, scroll, pos) = ui.input(|i| (i.zoom_delta(), i.smooth_scroll_delta, i.pointer.hover_pos()));
        if zoom != 1.0 {
            let at = pos.map(|p| t_at(p.x.clamp(plot.left(), plot.right()))).unwrap_or((view.t0 + view.t1) / 2.0);
            view.zoom_around(zoom as f64, at);
        }
        // Plain wheel scrolls lanes; shift+wheel (horizontal scroll) pans time.
        if scroll.y != 0.0 {
            view.scroll_y -= scroll.y;
        }
        if scroll.x != 0.0 {
            let dt = -scroll.x as f64 * ns_per_px;
            view.t0 += dt;
            view.t1 += dt;
        }
    }
    if response.dragged_by(PointerButton::Primary) {
        let d = response.drag_delta();
        let dt = -d.x as f64 * ns_per_px;
        view.t0 += dt;
        view.t1 += dt;
        view.scroll_y -= d.y;
    }
    // Box zoom with the right (secondary) button.
    if response.drag_started_by(PointerButton::Secondary) {
        view.box_start = response.interact_pointer_pos();
    }
    if response.drag_stopped_by(PointerButton::Secondary) {
        if let (Some(s), Some(e)) = (view.box_start.take(), response.interact_pointer_pos().or(response.hover_pos())) {
            if (s.x - e.x).abs() > 4.0 {
                let (a, b) = (t_at(s.x.min(e.x)), t_at(s.x.max(e.x)));
                view.t0 = a;
                view.t1 = b;
            }
        }
    }
    if response.double_clicked() {
        view.reset(model);
    }
    // Keyboard works whenever no text field has focus.
    if !ui.ctx().egui_wants_keyboard_input() {
        let mid = (view.t0 + view.t1) / 2.0;
        let span = view.t1 - view.t0;
        ui.input(|i| {
            if i.key_pressed(Key::Plus) || i.key_pressed(Key::Equals) {
                view.zoom_around(1.5, mid);
            }
            if i.key_pressed(Key::Minus) {
                view.zoom_around(1.0 / 1.5, mid);
            }
            if i.key_pressed(Key::ArrowLeft) {
                view.t0 -= span * 0.15;
                view.t1 -= span * 0.15;
            }
            if i.key_pressed(Key::ArrowRight) {
                view.t0 += span * 0.15;
                view.t1 += span * 0.15;
            }
            if i.key_pressed(Key::ArrowUp) {
                view.scroll_y -= ROW_HEIGHT * 3.0;
            }
            if i.key_pressed(Key::ArrowDown) {
                view.scroll_y += ROW_HEIGHT * 3.0;
            }
            if i.key_pressed(Key::PageUp) {
                view.scroll_y -= view.plot_height * 0.9;
            }
            if i.key_pressed(Key::PageDown) {
                view.scroll_y += view.plot_height * 0.9;
            }
            if i.key_pressed(Key::Home) || i.key_pressed(Key::Num0) {
                view.reset(model);
            }
        });
    }
}

/// Legend entries for the colours, in display order.
pub fn legend(ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        for k in EndKind::ALL {
            let (r, _) = ui.allocate_exact_size(Vec2::new(14.0, 10.0), Sense::hover());
            ui.painter().rect_filled(r, CornerRadius::same(2), k.color());
            ui.label(egui::RichText::new(k.label()).small()).on_hover_text(k.states());
        }
        ui.separator();
        for (c, l) in [
            (style::MARK_SYN, "SYN"),
            (style::MARK_FIN, "FIN"),
            (style::MARK_RST, "RST"),
            (style::MARK_KEEPALIVE, "keep-alive"),
        ] {
            let (r, _) = ui.allocate_exact_size(Vec2::new(6.0, 12.0), Sense::hover());
            ui.painter().rect_filled(r, CornerRadius::ZERO, c);
            ui.label(egui::RichText::new(l).small());
        }
        ui.separator();
        for (c, l, tip) in [
            (
                lanes::COLOR_HANDLES,
                "pipe handles",
                "open client handles of a pipe over time (per pixel: the most at once)",
            ),
            (lanes::COLOR_BUSY, "busy", "failed open: all instances busy (ERROR_PIPE_BUSY)"),
            (lanes::COLOR_NOT_FOUND, "not found", "failed open: no such pipe (ERROR_FILE_NOT_FOUND)"),
            (lanes::COLOR_LOG_ERROR, "log error", "error line of a text log (corrected UTC time)"),
            (lanes::COLOR_LOG_WARNING, "log warning", "warning line of a text log"),
            (lanes::COLOR_SYS_OTHER, "Windows event", "event-log record (red: crash, purple: pipe event)"),
        ] {
            let (r, _) = ui.allocate_exact_size(Vec2::new(6.0, 12.0), Sense::hover());
            ui.painter().rect_filled(r, CornerRadius::ZERO, c);
            ui.label(egui::RichText::new(l).small()).on_hover_text(tip);
        }
    });
}
