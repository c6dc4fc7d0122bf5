//! The timeline: one shared time axis, lanes grouped by server endpoint, a bar per connection.
//!
//! Built to stay smooth with 100k connections: connections are packed into non-overlapping rows
//! once per analysis (so ends are sorted within a row and the first visible bar is a binary
//! search away), only visible rows are walked, and bars closer than a pixel are merged into one
//! bar coloured by the worst ending in it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use eframe::egui::{
    self, Color32, CornerRadius, FontId, Key, PointerButton, Pos2, Rect, Sense, Shape, Stroke, StrokeKind, Vec2,
};

use super::lanes::{self, LogLane, PipeLane, SystemLane};
use super::style::{self, EndKind};
use super::timefmt::{self, TimeZoneMode};
use crate::analysis::Analysis;
use crate::model::{analysis_flags, tcp_flags, Endpoint, UtcNs};

pub const ROW_HEIGHT: f32 = 16.0;
pub const RULER_HEIGHT: f32 = 38.0;
pub const GUTTER_WIDTH: f32 = 190.0;
/// Narrowest zoom: one microsecond across the plot.
const MIN_SPAN_NS: f64 = 1_000.0;
/// Bars at least this wide show their packets.
const MARKS_MIN_WIDTH: f32 = 24.0;

/// What a lane groups. Named pipes and log files get their own variants; the drawing code
/// dispatches on this enum only in `item_span`/`item_end`, so a new kind is a few match arms.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LaneKind {
    /// A named pipe; the index is in `TimelineModel::pipe_lanes`.
    Pipe(u32),
    /// A text log; the index is in `TimelineModel::log_lanes`.
    Log(u32),
    /// Windows event-log records (`Analysis::system_events`).
    System,
    /// TCP connections to one server endpoint; items index `Analysis::connections`.
    TcpServer(Endpoint),
}

impl LaneKind {
    /// A stable id for tests and tools: `pipe:NAME`, `log:FILE`, `system`, `tcp:ENDPOINT`.
    pub fn id(&self, model: &TimelineModel, a: &Analysis) -> String {
        match self {
            LaneKind::Pipe(i) => format!(
                "pipe:{}",
                model
                    .pipe_lanes
                    .get(*i as usize)
                    .and_then(|l| a.pipes.get(l.pipe))
                    .map(|p| p.name.as_str())
                    .unwrap_or("?")
            ),
            LaneKind::Log(i) => {
                format!("log:{}", model.log_lanes.get(*i as usize).map(|l| l.name.as_str()).unwrap_or("?"))
            }
            LaneKind::System => "system".into(),
            LaneKind::TcpServer(e) => format!("tcp:{e}"),
        }
    }
}

pub struct Lane {
    pub kind: LaneKind,
    pub label: String,
    pub items: usize,
    /// Item indices per packed row, sorted by start; items in a row never overlap.
    pub rows: Vec<Vec<u32>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowRef {
    Header(u32),
    Items {
        lane: u32,
        row: u32,
    },
    /// A pipe's handle graph; it is two rows tall, the second is `Spacer`.
    PipeGraph {
        lane: u32,
    },
    Spacer,
    /// A pipe's opens (failed ones as coloured marks).
    PipeOpens {
        lane: u32,
    },
    /// Marks of a log or system lane.
    Marks {
        lane: u32,
    },
}

/// Layout of one analysis on the timeline; rebuilt only when the analysis changes.
pub struct TimelineModel {
    /// Time zero of the view (first event); view times are f64 ns after it.
    pub origin: UtcNs,
    pub end: UtcNs,
    pub lanes: Vec<Lane>,
    pub rows: Vec<RowRef>,
    /// Global row of each connection (index in `Analysis::connections`).
    pub conn_row: Vec<u32>,
    pub conn_end: Vec<EndKind>,
    pub conn_index: HashMap<u64, usize>,
    pub pipe_lanes: Vec<PipeLane>,
    pub log_lanes: Vec<LogLane>,
    pub system: SystemLane,
    /// Header row of each lane.
    pub lane_row: Vec<u32>,
    /// Opens row of each pipe lane, marks row of each log lane and of the system lane.
    pub pipe_opens_row: Vec<u32>,
    pub log_row: Vec<u32>,
    pub system_row: Option<u32>,
    /// Pipe lane of each `Analysis::pipes` entry.
    pub pipe_lane_of: Vec<Option<u32>>,
}

impl TimelineModel {
    pub fn build(a: &Analysis) -> TimelineModel {
        let mut origin = i64::MAX;
        let mut end = i64::MIN;
        for c in &a.connections {
            origin = origin.min(c.first_ts);
            end = end.max(c.last_ts);
        }
        for i in &a.inputs {
            if let (Some(f), Some(l)) = (i.first_ts, i.last_ts) {
                origin = origin.min(f);
                end = end.max(l);
            }
        }
        for f in &a.findings {
            origin = origin.min(f.first_ts);
            end = end.max(f.last_ts);
        }
        for p in &a.pipes {
            if p.first_ts != 0 || p.last_ts != 0 {
                origin = origin.min(p.first_ts);
                end = end.max(p.last_ts);
            }
        }
        for e in &a.system_events {
            origin = origin.min(e.ts);
            end = end.max(e.ts);
        }
        let pipe_lanes: Vec<PipeLane> = (0..a.pipes.len()).map(|i| PipeLane::build(a, i)).collect();
        let mut log_inputs: Vec<u32> = a.logs.iter().map(|l| l.input).collect();
        for e in &a.log_events {
            if !log_inputs.contains(&e.input) {
                log_inputs.push(e.input);
            }
        }
        let log_lanes: Vec<LogLane> = log_inputs.iter().map(|&i| LogLane::build(a, i)).collect();
        for l in &log_lanes {
            if let (Some(f), Some(e)) = (l.ts.first(), l.ts.last()) {
                origin = origin.min(*f);
                end = end.max(*e);
            }
        }
        let system = SystemLane::build(a);
        if origin > end {
            origin = 0;
            end = 1_000_000_000;
        }
        if end <= origin {
            end = origin + 1_000_000;
        }

        let mut by_server: HashMap<Endpoint, Vec<u32>> = HashMap::new();
        for (i, c) in a.connections.iter().enumerate() {
            by_server.entry(c.server).or_default().push(i as u32);
        }
        let mut servers: Vec<(Endpoint, Vec<u32>)> = by_server.into_iter().collect();
        // Busiest servers first: they are usually what the user is looking at.
        servers.sort_by(|x, y| y.1.len().cmp(&x.1.len()).then(x.0.cmp(&y.0)));

        let mut lanes = Vec::with_capacity(servers.len() + pipe_lanes.len() + log_lanes.len() + 1);
        // Pipes, logs and Windows events first: a few rows each, above the (many) TCP rows.
        for (i, pl) in pipe_lanes.iter().enumerate() {
            let p = &a.pipes[pl.pipe];
            let failed = p.busy + p.not_found + p.other_failures;
            lanes.push(Lane {
                label: format!(
                    "pipe {}  ({} opens, {} failed, max {} handles)",
                    short_pipe(&p.name),
                    p.opens,
                    failed,
                    p.max_concurrent
                ),
                kind: LaneKind::Pipe(i as u32),
                items: p.events.len(),
                rows: Vec::new(),
            });
        }
        for (i, l) in log_lanes.iter().enumerate() {
            lanes.push(Lane {
                label: format!("log {}  ({} lines)", l.name, l.by_line.len()),
                kind: LaneKind::Log(i as u32),
                items: l.by_line.len(),
                rows: Vec::new(),
            });
        }
        if !a.system_events.is_empty() {
            lanes.push(Lane {
                label: format!("Windows events  ({})", a.system_events.len()),
                kind: LaneKind::System,
                items: a.system_events.len(),
                rows: Vec::new(),
            });
        }
        for (server, mut items) in servers {
            items.sort_by_key(|&i| (a.connections[i as usize].first_ts, i));
            let rows = pack_rows(&items, |i| {
                let c = &a.connections[i as usize];
                (c.first_ts, c.last_ts)
            });
            lanes.push(Lane {
                label: format!("{server}  ({})", items.len()),
                kind: LaneKind::TcpServer(server),
                items: items.len(),
                rows,
            });
        }

        let mut rows = Vec::new();
        let mut conn_row = vec![0u32; a.connections.len()];
        let mut lane_row = Vec::with_capacity(lanes.len());
        let mut pipe_opens_row = vec![0u32; pipe_lanes.len()];
        let mut log_row = vec![0u32; log_lanes.len()];
        let mut system_row = None;
        for (li, lane) in lanes.iter().enumerate() {
            lane_row.push(rows.len() as u32);
            rows.push(RowRef::Header(li as u32));
            match lane.kind {
                LaneKind::Pipe(pi) => {
                    rows.push(RowRef::PipeGraph { lane: li as u32 });
                    rows.push(RowRef::Spacer);
                    pipe_opens_row[pi as usize] = rows.len() as u32;
                    rows.push(RowRef::PipeOpens { lane: li as u32 });
                }
                LaneKind::Log(i) => {
                    log_row[i as usize] = rows.len() as u32;
                    rows.push(RowRef::Marks { lane: li as u32 });
                }
                LaneKind::System => {
                    system_row = Some(rows.len() as u32);
                    rows.push(RowRef::Marks { lane: li as u32 });
                }
                LaneKind::TcpServer(_) => {}
            }
            for (ri, row) in lane.rows.iter().enumerate() {
                let global = rows.len() as u32;
                for &item in row {
                    if let LaneKind::TcpServer(_) = lane.kind {
                        conn_row[item as usize] = global;
                    }
                }
                rows.push(RowRef::Items { lane: li as u32, row: ri as u32 });
            }
        }
        TimelineModel {
            origin,
            end,
            lanes,
            rows,
            conn_row,
            conn_end: a.connections.iter().map(EndKind::of).collect(),
            conn_index: a.connections.iter().enumerate().map(|(i, c)| (c.id, i)).collect(),
            pipe_lane_of: {
                let mut v = vec![None; a.pipes.len()];
                for (i, pl) in pipe_lanes.iter().enumerate() {
                    v[pl.pipe] = Some(i as u32);
                }
                v
            },
            pipe_lanes,
            log_lanes,
            system,
            lane_row,
            pipe_opens_row,
            log_row,
            system_row,
        }
    }

    pub fn span_ns(&self) -> f64 {
        (self.end - self.origin) as f64
    }

    fn item_span(&self, a: &Analysis, lane: &Lane, item: u32) -> (UtcNs, UtcNs) {
        match lane.kind {
            LaneKind::TcpServer(_) => {
                a.connections.get(item as usize).map(|c| (c.first_ts, c.last_ts)).unwrap_or((0, 0))
            }
            _ => (0, 0),
        }
    }

    fn item_end(&self, lane: &Lane, item: u32) -> EndKind {
        match lane.kind {
            LaneKind::TcpServer(_) => self.conn_end.get(item as usize).copied().unwrap_or(EndKind::Other),
            _ => EndKind::Other,
        }
    }
}

/// Greedy interval packing: each item goes to the row that freed up earliest, else a new row.
fn pack_rows(sorted: &[u32], span: impl Fn(u32) -> (UtcNs, UtcNs)) -> Vec<Vec<u32>> {
    let mut rows: Vec<Vec<u32>> = Vec::new();
    let mut free: BinaryHeap<Reverse<(UtcNs, usize)>> = BinaryHeap::new();
    for &item in sorted {
        let (start, end) = span(item);
        let row = match free.peek() {
            Some(Reverse((row_end, row))) if *row_end < start => {
                let r = *row;
                free.pop();
                r
            }
            _ => {
                rows.push(Vec::new());
                rows.len() - 1
            }
        };
        rows[row].push(item);
        free.push(Reverse((end.max(start), row)));
    }
    rows
}

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
        (model.origin + self.t0.floor() as i64, model.origin + self.t1.ceil() as i64)
    }

    /// Zooms so that `first..last` fills most of the view.
    pub fn zoom_to(&mut self, model: &TimelineModel, first: UtcNs, last: UtcNs) {
        let (a, b) = ((first - model.origin) as f64, (last.max(first) - model.origin) as f64);
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

/// `\Device\NamedPipe\NAME` as `NAME`.
pub fn short_pipe(name: &str) -> &str {
    name.strip_prefix("\\Device\\NamedPipe\\").unwrap_or(name)
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

struct Run {
    x0: f32,
    x1: f32,
    worst: EndKind,
    count: u32,
    first: u32,
    highlighted: bool,
    selected: bool,
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

    let ns_per_px = (view.t1 - view.t0) / plot.width().max(1.0) as f64;
    let x_of = |t: UtcNs| -> f32 { plot.left() + (((t - model.origin) as f64 - view.t0) / ns_per_px) as f32 };
    let visuals = ui.visuals().clone();
    let painter = ui.painter_at(rect);
    let mut shapes: Vec<Shape> = Vec::with_capacity(4096);
    shapes.push(Shape::rect_filled(rect, CornerRadius::ZERO, visuals.extreme_bg_color));

    // Finding bands behind everything else.
    for (fi, f) in a.findings.iter().enumerate() {
        let (x0, x1) = (x_of(f.first_ts), x_of(f.last_ts));
        if x1 < plot.left() || x0 > plot.right() {
            continue;
        }
        let selected = hl.selected_finding == Some(fi);
        let alpha = if selected { 48 } else { 24 };
        let c = style::severity_color(f.severity);
        let band = Rect::from_x_y_ranges(
            x0.max(plot.left() - 2.0)..=(x1.max(x0 + 3.0)).min(plot.right() + 2.0),
            plot.top()..=plot.bottom(),
        );
        shapes.push(Shape::rect_filled(
            band,
            CornerRadius::ZERO,
            Color32::from_rgba_unmultiplied(c.r(), c.g(), c.b(), alpha),
        ));
        if selected {
            shapes.push(Shape::rect_stroke(band, CornerRadius::ZERO, Stroke::new(1.0, c), StrokeKind::Inside));
        }
    }

    // Visible rows only.
    let mut bars = egui::Mesh::default();
    let first_bar_shape = shapes.len();
    let first_row = (view.scroll_y / ROW_HEIGHT).floor().max(0.0) as usize;
    let visible_rows = (plot.height() / ROW_HEIGHT).ceil() as usize + 1;
    let last_row = (first_row + visible_rows).min(model.rows.len());
    let t_lo = model.origin + view.t0.floor() as i64;
    let t_hi = model.origin + view.t1.ceil() as i64;
    let pointer = response.hover_pos();
    let mut hovered_item: Option<usize> = None;
    let mut hover_other: Option<(f32, TimelineItem, String)> = None;
    let label_font = FontId::proportional(12.0);
    let text_color = visuals.text_color();
    let weak = visuals.weak_text_color();

    // One row early: a pipe graph two rows tall may start just above the plot.
    for gi in first_row.saturating_sub(1)..last_row {
        let y = plot.top() + gi as f32 * ROW_HEIGHT - view.scroll_y;
        let row_rect = Rect::from_min_max(Pos2::new(plot.left(), y), Pos2::new(plot.right(), y + ROW_HEIGHT));
        match model.rows[gi] {
            RowRef::Spacer => {}
            RowRef::PipeGraph { lane: li } => {
                let LaneKind::Pipe(pi) = model.lanes[li as usize].kind else { continue };
                let pl = &model.pipe_lanes[pi as usize];
                let area = Rect::from_min_max(
                    Pos2::new(plot.left(), y + 2.0),
                    Pos2::new(plot.right(), y + 2.0 * ROW_HEIGHT - 1.0),
                );
                let ncols = plot.width().max(1.0).ceil() as usize;
                // Per pixel column, the most handles open at any moment in it.
                let cols = lanes::column_max(&pl.h_ts, &pl.h_val, t_lo, ns_per_px, ncols);
                lanes::handle_graph(&mut bars, &cols, pl.max_handles, plot.left(), area, lanes::COLOR_HANDLES);
                shapes.push(Shape::line_segment(
                    [Pos2::new(plot.left(), area.bottom() + 0.5), Pos2::new(plot.right(), area.bottom() + 0.5)],
                    Stroke::new(1.0, weak.gamma_multiply(0.4)),
                ));
                if hl.selected_pipe == Some(pl.pipe) {
                    let whole =
                        Rect::from_min_max(Pos2::new(plot.left(), y), Pos2::new(plot.right(), y + 3.0 * ROW_HEIGHT));
                    shapes.push(Shape::rect_stroke(
                        whole,
                        CornerRadius::ZERO,
                        Stroke::new(1.5, style::highlight(&visuals)),
                        StrokeKind::Inside,
                    ));
                }
                if let Some(p) = pointer {
                    if area.contains(p) {
                        let t = model.origin + (view.t0 + (p.x - plot.left()) as f64 * ns_per_px) as i64;
                        let pipe = &a.pipes[pl.pipe];
                        let col = cols.get((p.x - plot.left()) as usize).copied().unwrap_or(0);
                        hover_other = Some((
                            0.0,
                            TimelineItem::Pipe { pipe: pl.pipe, event: None },
                            format!(
                                "pipe {}: {} open client handles at {} (most in this pixel {}, max {})",
                                short_pipe(&pipe.name),
                                pl.handles_at(t),
                                timefmt::format_full(t, tz),
                                col,
                                pipe.max_concurrent
                            ),
                        ));
                    }
                }
            }
            RowRef::PipeOpens { lane: li } => {
                let LaneKind::Pipe(pi) = model.lanes[li as usize].kind else { continue };
                let pl = &model.pipe_lanes[pi as usize];
                let (top, bottom) = (row_rect.top() + 2.0, row_rect.bottom() - 2.0);
                let hover_row = pointer.filter(|p| p.y >= row_rect.top() && p.y < row_rect.bottom());
                let mut best: Option<(f32, usize, usize)> = None;
                lanes::for_columns(&pl.ts, t_lo, t_hi, ns_per_px, |i, j| {
                    let x = x_of(pl.ts[i]);
                    let (b, n, o) =
                        (pl.busy[j] - pl.busy[i], pl.not_found[j] - pl.not_found[i], pl.other[j] - pl.other[i]);
                    let color = if n > 0 {
                        lanes::COLOR_NOT_FOUND
                    } else if o > 0 {
                        lanes::COLOR_OTHER_FAIL
                    } else if b > 0 {
                        lanes::COLOR_BUSY
                    } else {
                        lanes::COLOR_OPEN_OK
                    };
                    let r = if n + o + b > 0 {
                        Rect::from_min_max(Pos2::new(x - 1.0, top), Pos2::new(x + 1.0, bottom))
                    } else {
                        Rect::from_min_max(Pos2::new(x - 0.5, row_rect.center().y), Pos2::new(x + 0.5, bottom))
                    };
                    bars.add_colored_rect(r, color);
                    if let Some(p) = hover_row {
                        let d = (p.x - x).abs();
                        if d <= 4.0 && best.is_none_or(|bb| d < bb.0) {
                            best = Some((d, i, j));
                        }
                    }
                });
                if let Some((d, i, j)) = best {
                    let pipe = &a.pipes[pl.pipe];
                    let ev = pl.idx[i] as usize;
                    if let Some(e) = pipe.events.get(ev) {
                        let mut text = format!(
                            "pipe {} {} #{} pid {} {} ({}) at {}",
                            short_pipe(&pipe.name),
                            if e.server_instance { "instance" } else { "open" },
                            e.record,
                            e.pid,
                            e.outcome.name(),
                            crate::analysis::pipes::status_name(e.status),
                            timefmt::format_full(e.ts, tz)
                        );
                        if j - i > 1 {
                            let failed = (pl.busy[j] - pl.busy[i])
                                + (pl.not_found[j] - pl.not_found[i])
                                + (pl.other[j] - pl.other[i]);
                            text.push_str(&format!("  (+{} more here, {} failed)", j - i - 1, failed));
                        }
                        hover_other = Some((d, TimelineItem::Pipe { pipe: pl.pipe, event: Some(ev) }, text));
                    }
                }
            }
            RowRef::Marks { lane: li } => {
                let (top, bottom) = (row_rect.top() + 2.0, row_rect.bottom() - 2.0);
                let hover_row = pointer.filter(|p| p.y >= row_rect.top() && p.y < row_rect.bottom());
                let mut best: Option<(f32, usize, usize)> = None;
                match model.lanes[li as usize].kind {
                    LaneKind::Log(i) => {
                        let ll = &model.log_lanes[i as usize];
                        lanes::for_columns(&ll.ts, t_lo, t_hi, ns_per_px, |i, j| {
                            let x = x_of(ll.ts[i]);
                            let color = if ll.errors[j] > ll.errors[i] {
                                lanes::COLOR_LOG_ERROR
                            } else {
                                lanes::COLOR_LOG_WARNING
                            };
                            bars.add_colored_rect(
                                Rect::from_min_max(Pos2::new(x - 1.0, top), Pos2::new(x + 1.0, bottom)),
                                color,
                            );
                            if let Some(p) = hover_row {
                                let d = (p.x - x).abs();
                                if d <= 4.0 && best.is_none_or(|bb| d < bb.0) {
                                    best = Some((d, i, j));
                                }
                            }
                        });
                        if let Some((d, i, j)) = best {
                            let ev = ll.idx[i] as usize;
                            if let Some(e) = a.log_events.get(ev) {
                                let mut text = format!("{}:{} {} {}", ll.name, e.line, e.severity, e.text);
                                if j - i > 1 {
                                    text.push_str(&format!("  (+{} more here)", j - i - 1));
                                }
                                hover_other = Some((d, TimelineItem::LogEvent(ev), text));
                            }
                        }
                    }
                    LaneKind::System => {
                        let sl = &model.system;
                        lanes::for_columns(&sl.ts, t_lo, t_hi, ns_per_px, |i, j| {
                            let x = x_of(sl.ts[i]);
                            let color = if sl.crashes[j] > sl.crashes[i] {
                                lanes::COLOR_SYS_CRASH
                            } else if sl.pipe_events[j] > sl.pipe_events[i] {
                                lanes::COLOR_SYS_PIPE
                            } else {
                                lanes::COLOR_SYS_OTHER
                            };
                            let c = Pos2::new(x, row_rect.center().y);
                            shapes.push(Shape::convex_polygon(
                                vec![
                                    Pos2::new(c.x, top),
                                    Pos2::new(c.x + 4.0, c.y),
                                    Pos2::new(c.x, bottom),
                                    Pos2::new(c.x - 4.0, c.y),
                                ],
                                color,
                                Stroke::NONE,
                            ));
                            if let Some(p) = hover_row {
                                let d = (p.x - x).abs();
                                if d <= 5.0 && best.is_none_or(|bb| d < bb.0) {
                                    best = Some((d, i, j));
                                }
                            }
                        });
                        if let Some((d, i, j)) = best {
                            let ev = sl.idx[i] as usize;
                            if let Some(e) = a.system_events.get(ev) {
                                let mut text = format!(
                                    "{} {} {} ({}): {}",
                                    timefmt::format_full(e.ts, tz),
                                    e.provider,
                                    e.event_id,
                                    e.kind,
                                    e.summary
                                );
                                if j - i > 1 {
                                    text.push_str(&format!("  (+{} more here)", j - i - 1));
                                }
                                hover_other = Some((d, TimelineItem::SystemEvent(ev), text));
                            }
                        }
                    }
                    _ => {}
                }
            }
            RowRef::Header(_) => {
                shapes.push(Shape::line_segment(
                    [Pos2::new(rect.left(), y + 0.5), Pos2::new(rect.right(), y + 0.5)],
                    Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color),
                ));
                shapes.push(Shape::rect_filled(row_rect, CornerRadius::ZERO, visuals.faint_bg_color));
            }
            RowRef::Items { lane: li, row } => {
                let lane = &model.lanes[li as usize];
                let items = &lane.rows[row as usize];
                // Ends are sorted within a row, so the first visible item is a binary search away.
                let start = items.partition_point(|&it| model.item_span(a, lane, it).1 < t_lo);
                let bar =
                    Rect::from_min_max(Pos2::new(0.0, row_rect.top() + 3.0), Pos2::new(0.0, row_rect.bottom() - 3.0));
                let mut run: Option<Run> = None;
                for &item in &items[start..] {
                    let (s, e) = model.item_span(a, lane, item);
                    if s > t_hi {
                        break;
                    }
                    let (x0, x1) = (x_of(s).max(plot.left() - 4.0), x_of(e).min(plot.right() + 4.0));
                    let idx = item as usize;
                    let highlighted = hl.finding_connections.binary_search(&idx).is_ok();
                    let selected = hl.selected_connection == Some(idx);
                    let end = model.item_end(lane, item);
                    if let Some(p) = pointer {
                        if p.y >= row_rect.top()
                            && p.y < row_rect.bottom()
                            && p.x >= x0 - 3.0
                            && p.x <= x1.max(x0 + 2.0) + 3.0
                        {
                            hovered_item = Some(idx);
                        }
                    }
                    match run.as_mut() {
                        Some(r) if x0 <= r.x1 + 1.0 => {
                            r.x1 = r.x1.max(x1);
                            r.worst = r.worst.min(end);
                            r.count += 1;
                            r.highlighted |= highlighted;
                            r.selected |= selected;
                        }
                        _ => {
                            if let Some(r) = run.take() {
                                flush_run(
                                    &mut shapes,
                                    &mut bars,
                                    a,
                                    &r,
                                    bar,
                                    &x_of,
                                    visuals.strong_text_color(),
                                    style::highlight(&visuals),
                                );
                            }
                            run = Some(Run { x0, x1, worst: end, count: 1, first: item, highlighted, selected });
                        }
                    }
                }
                if let Some(r) = run.take() {
                    flush_run(
                        &mut shapes,
                        &mut bars,
                        a,
                        &r,
                        bar,
                        &x_of,
                        visuals.strong_text_color(),
                        style::highlight(&visuals),
                    );
                }
            }
        }
    }

    // The thin bars go under the wide bars, outlines and marks pushed during the row loop.
    shapes.insert(first_bar_shape, Shape::mesh(bars));

    // Evidence opens of the selected finding (and the selected open).
    let pipe_marks = hl.pipe_marks.iter().filter_map(|&(pi, ei)| {
        let lane = model.pipe_lane_of.get(pi).copied().flatten()?;
        let e = a.pipes.get(pi)?.events.get(ei)?;
        Some((model.pipe_opens_row[lane as usize], e.ts))
    });
    // Log lines of the selected finding.
    let log_marks = hl.log_marks.iter().chain(hl.selected_log.iter()).filter_map(|&ei| {
        let e = a.log_events.get(ei)?;
        let lane = model.log_lanes.iter().position(|l| l.input == e.input)?;
        Some((model.log_row[lane], e.ts?))
    });
    let marks: Vec<(u32, UtcNs)> = pipe_marks.chain(log_marks).collect();
    if let Some(e) = hl.selected_log.and_then(|i| a.log_events.get(i)) {
        if let (Some(lane), Some(ts)) = (model.log_lanes.iter().position(|l| l.input == e.input), e.ts) {
            let (x, y) = (x_of(ts), plot.top() + model.log_row[lane] as f32 * ROW_HEIGHT - view.scroll_y);
            let r = Rect::from_min_max(Pos2::new(x - 3.0, y), Pos2::new(x + 3.0, y + ROW_HEIGHT));
            shapes.push(Shape::rect_stroke(
                r,
                CornerRadius::ZERO,
                Stroke::new(2.0, visuals.strong_text_color()),
                StrokeKind::Outside,
            ));
        }
    }
    // Evidence frames of the selected finding.
    for &(row, ts) in hl.evidence_marks.iter().chain(marks.iter()) {
        let x = x_of(ts);
        if x < plot.left() || x > plot.right() {
            continue;
        }
        let y = plot.top() + row as f32 * ROW_HEIGHT - view.scroll_y;
        if y + ROW_HEIGHT < plot.top() || y > plot.bottom() {
            continue;
        }
        shapes.push(Shape::convex_polygon(
            vec![Pos2::new(x, y + 8.0), Pos2::new(x - 5.0, y - 1.0), Pos2::new(x + 5.0, y - 1.0)],
            style::highlight(&visuals),
            Stroke::new(1.0, Color32::BLACK),
        ));
    }

    // Ruler and gutter are painted over the plot so bars never run under them.
    let ruler = Rect::from_min_max(rect.min, Pos2::new(rect.right(), rect.top() + RULER_HEIGHT));
    shapes.push(Shape::rect_filled(ruler, CornerRadius::ZERO, visuals.panel_fill));
    let gutter_bg = Rect::from_min_max(Pos2::new(rect.left(), plot.top()), Pos2::new(plot.left(), rect.bottom()));
    let mut gutter_shapes = vec![Shape::rect_filled(gutter_bg, CornerRadius::ZERO, visuals.panel_fill)];
    // Lane labels are drawn after the gutter background.
    for gi in first_row..last_row {
        if let RowRef::Header(li) = model.rows[gi] {
            let y = plot.top() + gi as f32 * ROW_HEIGHT - view.scroll_y;
            let lane = &model.lanes[li as usize];
            gutter_shapes.push(Shape::line_segment(
                [Pos2::new(rect.left(), y + 0.5), Pos2::new(plot.left(), y + 0.5)],
                Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color),
            ));
            let label = painter.layout_no_wrap(lane.label.clone(), label_font.clone(), text_color);
            gutter_shapes.push(Shape::galley(Pos2::new(rect.left() + 4.0, y + 1.0), label, text_color));
        }
    }
    shapes.extend(gutter_shapes);
    ruler_shapes(&mut shapes, &painter, view, model, plot, ruler, tz, text_color, weak, visuals.panel_fill);

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
                timefmt::format_duration(c.last_ts - c.first_ts),
                c.client_packets + c.server_packets
            ));
        }
    } else if let Some(p) = pointer {
        if plot.contains(p) {
            let t = model.origin + (view.t0 + (p.x - plot.left()) as f64 * ns_per_px) as i64;
            out.hovered_text = Some(timefmt::format_full(t, tz));
        }
    }
    if response.clicked() {
        out.clicked_connection = hovered_item;
        out.clicked = hovered_item.map(TimelineItem::Connection).or(hover_other.map(|h| h.1));
    }
    out
}

fn flush_run(
    shapes: &mut Vec<Shape>,
    mesh: &mut egui::Mesh,
    a: &Analysis,
    r: &Run,
    bar: Rect,
    x_of: &dyn Fn(UtcNs) -> f32,
    select_color: Color32,
    highlight: Color32,
) {
    let x1 = r.x1.max(r.x0 + 2.0);
    let rect = Rect::from_x_y_ranges(r.x0..=x1, bar.y_range());
    let mut color = r.worst.color();
    if r.count > 1 {
        // Merged bars are drawn a little paler so single connections stand out when zoomed in.
        color = color.gamma_multiply(0.85);
    }
    // Thin bars go into one plain mesh (no rounding, no anti-aliasing): zoomed out there are
    // thousands of them and tessellating each as a shape would dominate the frame.
    let radius = if rect.width() > 6.0 { CornerRadius::same(2) } else { CornerRadius::ZERO };
    if rect.width() > 6.0 {
        shapes.push(Shape::rect_filled(rect, radius, color));
    } else {
        mesh.add_colored_rect(rect, color);
    }
    if r.selected {
        shapes.push(Shape::rect_stroke(rect.expand(2.0), radius, Stroke::new(2.0, select_color), StrokeKind::Outside));
    } else if r.highlighted {
        shapes.push(Shape::rect_stroke(rect.expand(1.5), radius, Stroke::new(1.5, highlight), StrokeKind::Outside));
    }
    if r.count == 1 && x1 - r.x0 >= MARKS_MIN_WIDTH {
        if let Some(c) = a.connections.get(r.first as usize) {
            packet_marks(shapes, c, rect, x_of);
        }
    }
}

/// Ticks for the kept packets: SYN, FIN, RST full height, keep-alives as dots, data as small ticks.
fn packet_marks(shapes: &mut Vec<Shape>, c: &crate::model::Connection, bar: Rect, x_of: &dyn Fn(UtcNs) -> f32) {
    let mut last_x = f32::NEG_INFINITY;
    // `bar` is already clipped to the plot (plus a few pixels); marks outside it are skipped.
    let (left, right) = (bar.left() - 3.0, bar.right() + 3.0);
    for p in c.packets() {
        let x = x_of(p.ts);
        if x < left || x > right {
            continue;
        }
        let (top, bottom) = (bar.top() - 2.0, bar.bottom() + 2.0);
        if p.flags & tcp_flags::RST != 0 {
            shapes.push(Shape::line_segment(
                [Pos2::new(x, top - 1.0), Pos2::new(x, bottom + 1.0)],
                Stroke::new(2.5, style::MARK_RST),
            ));
        } else if p.flags & tcp_flags::SYN != 0 {
            shapes.push(Shape::line_segment(
                [Pos2::new(x, top), Pos2::new(x, bottom)],
                Stroke::new(2.0, style::MARK_SYN),
            ));
        } else if p.flags & tcp_flags::FIN != 0 {
            shapes.push(Shape::line_segment(
                [Pos2::new(x, top), Pos2::new(x, bottom)],
                Stroke::new(2.0, style::MARK_FIN),
            ));
        } else if p.analysis & (analysis_flags::KEEP_ALIVE | analysis_flags::KEEP_ALIVE_ACK) != 0 {
            shapes.push(Shape::circle_filled(Pos2::new(x, bar.center().y), 2.5, style::MARK_KEEPALIVE));
        } else if p.payload_len > 0 && x - last_x >= 2.0 {
            shapes.push(Shape::line_segment(
                [Pos2::new(x, bar.center().y - 2.0), Pos2::new(x, bar.bottom())],
                Stroke::new(1.0, Color32::from_gray(235)),
            ));
            last_x = x;
        }
    }
    // Packets dropped between head and tail: a dotted hint so the gap is not read as silence.
    if c.elided > 0 {
        if let (Some(h), Some(t)) = (c.head.last(), c.tail.first()) {
            let (x0, x1) = (x_of(h.ts).max(left), x_of(t.ts).min(right));
            if x1 - x0 > 8.0 {
                let y = bar.center().y;
                shapes.extend(Shape::dotted_line(
                    &[Pos2::new(x0 + 3.0, y), Pos2::new(x1 - 3.0, y)],
                    Color32::from_gray(230),
                    5.0,
                    0.8,
                ));
            }
        }
    }
}

/// Picks a "nice" tick step giving at least `min_px` between ticks.
pub fn tick_step(ns_per_px: f64, min_px: f64) -> i64 {
    const STEPS: &[i64] = &[
        1,
        2,
        5,
        10,
        20,
        50,
        100,
        200,
        500,
        1_000,
        2_000,
        5_000,
        10_000,
        20_000,
        50_000,
        100_000,
        200_000,
        500_000,
        1_000_000,
        2_000_000,
        5_000_000,
        10_000_000,
        20_000_000,
        50_000_000,
        100_000_000,
        200_000_000,
        500_000_000,
        1_000_000_000,
        2_000_000_000,
        5_000_000_000,
        10_000_000_000,
        15_000_000_000,
        30_000_000_000,
        60_000_000_000,
        120_000_000_000,
        300_000_000_000,
        600_000_000_000,
        900_000_000_000,
        1_800_000_000_000,
        3_600_000_000_000,
        7_200_000_000_000,
        10_800_000_000_000,
        21_600_000_000_000,
        43_200_000_000_000,
        86_400_000_000_000,
    ];
    let want = ns_per_px * min_px;
    STEPS
        .iter()
        .copied()
        .find(|&s| s as f64 >= want)
        .unwrap_or(86_400_000_000_000 * ((want / 86_400e9).ceil() as i64).max(1))
}

#[allow(clippy::too_many_arguments)]
fn ruler_shapes(
    shapes: &mut Vec<Shape>,
    painter: &egui::Painter,
    view: &TimelineView,
    model: &TimelineModel,
    plot: Rect,
    ruler: Rect,
    tz: TimeZoneMode,
    text: Color32,
    weak: Color32,
    panel_fill: Color32,
) {
    let ns_per_px = (view.t1 - view.t0) / plot.width().max(1.0) as f64;
    let step = tick_step(ns_per_px, 110.0);
    let t_lo = model.origin + view.t0.floor() as i64;
    let t_hi = model.origin + view.t1.ceil() as i64;
    // Align ticks to the wall clock of the chosen zone.
    let offset = tz.offset_s(t_lo) * 1_000_000_000;
    let mut t = (t_lo + offset).div_euclid(step) * step - offset;
    let font = FontId::proportional(12.0);
    let mut n = 0;
    while t <= t_hi && n < 400 {
        let x = plot.left() + (((t - model.origin) as f64 - view.t0) / ns_per_px) as f32;
        if x >= plot.left() {
            shapes.push(Shape::line_segment(
                [Pos2::new(x, ruler.bottom() - 8.0), Pos2::new(x, ruler.bottom())],
                Stroke::new(1.0, text),
            ));
            shapes.push(Shape::line_segment(
                [Pos2::new(x, plot.top()), Pos2::new(x, plot.bottom())],
                Stroke::new(1.0, weak.gamma_multiply(0.25)),
            ));
            let g = painter.layout_no_wrap(timefmt::format_tick(t, step, tz), font.clone(), text);
            // A label that would run under the gutter is left out rather than cut.
            if x - g.size().x / 2.0 >= plot.left() {
                shapes.push(Shape::galley(Pos2::new(x - g.size().x / 2.0, ruler.bottom() - 9.0 - g.size().y), g, text));
            }
        }
        t += step;
        n += 1;
    }
    let date = painter.layout_no_wrap(timefmt::format_date(t_lo, tz), font.clone(), text);
    shapes.push(Shape::rect_filled(
        Rect::from_min_max(ruler.min, Pos2::new(plot.left(), ruler.bottom())),
        CornerRadius::ZERO,
        panel_fill,
    ));
    shapes.push(Shape::galley(Pos2::new(ruler.left() + 4.0, ruler.top() + 3.0), date, text));
    let span =
        painter.layout_no_wrap(format!("view {}", timefmt::format_duration((view.t1 - view.t0) as i64)), font, weak);
    shapes.push(Shape::galley(Pos2::new(ruler.left() + 4.0, ruler.top() + 20.0), span, weak));
    shapes.push(Shape::line_segment(
        [Pos2::new(ruler.left(), ruler.bottom()), Pos2::new(ruler.right(), ruler.bottom())],
        Stroke::new(1.0, weak),
    ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_rows_never_overlap_and_stay_sorted() {
        let spans: Vec<(i64, i64)> = (0..500).map(|i| ((i * 37) % 1000, (i * 37) % 1000 + (i % 7) * 50)).collect();
        let mut items: Vec<u32> = (0..spans.len() as u32).collect();
        items.sort_by_key(|&i| spans[i as usize]);
        let rows = pack_rows(&items, |i| spans[i as usize]);
        assert_eq!(rows.iter().map(Vec::len).sum::<usize>(), spans.len());
        for row in &rows {
            for w in row.windows(2) {
                let (a, b) = (spans[w[0] as usize], spans[w[1] as usize]);
                assert!(a.1 < b.0, "overlap in a row: {a:?} {b:?}");
            }
        }
    }

    #[test]
    fn tick_steps_are_nice_and_wide_enough() {
        assert_eq!(tick_step(1.0, 100.0), 100);
        assert_eq!(tick_step(1e7, 100.0), 1_000_000_000);
        assert!(tick_step(1e12, 100.0) >= 100_000_000_000_000);
    }
}
