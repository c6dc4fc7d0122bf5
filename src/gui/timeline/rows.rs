//! Painters for each kind of timeline row: plain functions from the [`TimeAxis`] and a row rect to
//! shapes (or to the shared mesh for the many thin marks), returning what the pointer is over.

use eframe::egui::{self, Color32, CornerRadius, FontId, Pos2, Rect, Shape, Stroke, StrokeKind, Visuals};

use super::model::{Lane, RowRef, TimelineModel};
use super::view::{Highlights, TimelineItem};
use super::{short_pipe, TimeAxis, MARKS_MIN_WIDTH, ROW_HEIGHT};
use crate::analysis::Analysis;
use crate::gui::lanes::{self, LogLane, PipeLane, SystemLane};
use crate::gui::style::{self, EndKind};
use crate::gui::timefmt::{self, TimeZoneMode};
use crate::model::{analysis_flags, tcp_flags, Finding, UtcNs};

/// A hover candidate: distance from the pointer in pixels, the item, and its hover text.
pub type Hover = (f32, TimelineItem, String);

/// What every row painter reads besides its own row.
pub struct Ctx<'a> {
    pub a: &'a Analysis,
    pub model: &'a TimelineModel,
    pub axis: TimeAxis,
    pub visuals: &'a Visuals,
    pub tz: TimeZoneMode,
    pub pointer: Option<Pos2>,
}

impl Ctx<'_> {
    /// The pointer when it is within the vertical extent of `row`.
    fn pointer_in_row(&self, row: Rect) -> Option<Pos2> {
        self.pointer.filter(|p| p.y >= row.top() && p.y < row.bottom())
    }
}

/// Finding bands behind everything else, the selected one outlined.
pub fn finding_bands(shapes: &mut Vec<Shape>, axis: &TimeAxis, findings: &[Finding], selected: Option<usize>) {
    let plot = axis.plot;
    for (fi, f) in findings.iter().enumerate() {
        let (x0, x1) = (axis.x_of(f.first_ts), axis.x_of(f.last_ts));
        if x1 < plot.left() || x0 > plot.right() {
            continue;
        }
        let selected = selected == Some(fi);
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
}

/// A pipe's handle graph, two rows tall from `y`; the whole lane is outlined when the pipe is selected.
pub fn pipe_graph(
    cx: &Ctx<'_>,
    pl: &PipeLane,
    y: f32,
    selected: bool,
    shapes: &mut Vec<Shape>,
    mesh: &mut egui::Mesh,
) -> Option<Hover> {
    let plot = cx.axis.plot;
    let weak = cx.visuals.weak_text_color();
    let area = Rect::from_min_max(Pos2::new(plot.left(), y + 2.0), Pos2::new(plot.right(), y + 2.0 * ROW_HEIGHT - 1.0));
    let ncols = plot.width().max(1.0).ceil() as usize;
    // Per pixel column, the most handles open at any moment in it.
    let cols = lanes::column_max(&pl.h_ts, &pl.h_val, cx.axis.lo(), cx.axis.ns_per_px, ncols);
    lanes::handle_graph(mesh, &cols, pl.max_handles, plot.left(), area, lanes::COLOR_HANDLES);
    shapes.push(Shape::line_segment(
        [Pos2::new(plot.left(), area.bottom() + 0.5), Pos2::new(plot.right(), area.bottom() + 0.5)],
        Stroke::new(1.0, weak.gamma_multiply(0.4)),
    ));
    if selected {
        let whole = Rect::from_min_max(Pos2::new(plot.left(), y), Pos2::new(plot.right(), y + 3.0 * ROW_HEIGHT));
        shapes.push(Shape::rect_stroke(
            whole,
            CornerRadius::ZERO,
            Stroke::new(1.5, style::highlight(cx.visuals)),
            StrokeKind::Inside,
        ));
    }
    let p = cx.pointer.filter(|p| area.contains(*p))?;
    let t = cx.axis.t_at(p.x);
    let pipe = &cx.a.pipes[pl.pipe];
    let col = cols.get((p.x - plot.left()) as usize).copied().unwrap_or(0);
    Some((
        0.0,
        TimelineItem::Pipe { pipe: pl.pipe, event: None },
        format!(
            "pipe {}: {} open client handles at {} (most in this pixel {}, max {})",
            short_pipe(&pipe.name),
            pl.handles_at(t),
            timefmt::format_full(t, cx.tz),
            col,
            pipe.max_concurrent
        ),
    ))
}

/// The nearest mark within `reach` pixels of the pointer: (distance, first, end) of its column.
fn nearest(best: &mut Option<(f32, usize, usize)>, pointer: Option<Pos2>, x: f32, reach: f32, i: usize, j: usize) {
    if let Some(p) = pointer {
        let d = (p.x - x).abs();
        if d <= reach && best.is_none_or(|bb| d < bb.0) {
            *best = Some((d, i, j));
        }
    }
}

/// A pipe's opens: thin marks for successes, taller coloured ones for failures, merged per pixel column.
pub fn pipe_opens(cx: &Ctx<'_>, pl: &PipeLane, row_rect: Rect, mesh: &mut egui::Mesh) -> Option<Hover> {
    let (top, bottom) = (row_rect.top() + 2.0, row_rect.bottom() - 2.0);
    let hover_row = cx.pointer_in_row(row_rect);
    let mut best: Option<(f32, usize, usize)> = None;
    lanes::for_columns(&pl.ts, cx.axis.lo(), cx.axis.hi(), cx.axis.ns_per_px, |i, j| {
        let x = cx.axis.x_of(pl.ts[i]);
        let (b, n, o) = (pl.busy[j] - pl.busy[i], pl.not_found[j] - pl.not_found[i], pl.other[j] - pl.other[i]);
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
        mesh.add_colored_rect(r, color);
        nearest(&mut best, hover_row, x, 4.0, i, j);
    });
    let (d, i, j) = best?;
    let pipe = &cx.a.pipes[pl.pipe];
    let ev = pl.idx[i] as usize;
    let e = pipe.events.get(ev)?;
    let mut text = format!(
        "pipe {} {} #{} pid {} {} ({}) at {}",
        short_pipe(&pipe.name),
        if e.server_instance { "instance" } else { "open" },
        e.record,
        e.pid,
        e.outcome.name(),
        crate::analysis::pipes::status_name(e.status),
        timefmt::format_full(e.ts, cx.tz)
    );
    if j - i > 1 {
        let failed = (pl.busy[j] - pl.busy[i]) + (pl.not_found[j] - pl.not_found[i]) + (pl.other[j] - pl.other[i]);
        text.push_str(&format!("  (+{} more here, {} failed)", j - i - 1, failed));
    }
    Some((d, TimelineItem::Pipe { pipe: pl.pipe, event: Some(ev) }, text))
}

/// A text log's error and warning lines as marks.
pub fn log_marks(cx: &Ctx<'_>, ll: &LogLane, row_rect: Rect, mesh: &mut egui::Mesh) -> Option<Hover> {
    let (top, bottom) = (row_rect.top() + 2.0, row_rect.bottom() - 2.0);
    let hover_row = cx.pointer_in_row(row_rect);
    let mut best: Option<(f32, usize, usize)> = None;
    lanes::for_columns(&ll.ts, cx.axis.lo(), cx.axis.hi(), cx.axis.ns_per_px, |i, j| {
        let x = cx.axis.x_of(ll.ts[i]);
        let color = if ll.errors[j] > ll.errors[i] { lanes::COLOR_LOG_ERROR } else { lanes::COLOR_LOG_WARNING };
        mesh.add_colored_rect(Rect::from_min_max(Pos2::new(x - 1.0, top), Pos2::new(x + 1.0, bottom)), color);
        nearest(&mut best, hover_row, x, 4.0, i, j);
    });
    let (d, i, j) = best?;
    let ev = ll.idx[i] as usize;
    let e = cx.a.log_events.get(ev)?;
    let mut text = format!("{}:{} {} {}", ll.name, e.line, e.severity, e.text);
    if j - i > 1 {
        text.push_str(&format!("  (+{} more here)", j - i - 1));
    }
    Some((d, TimelineItem::LogEvent(ev), text))
}

/// Windows event-log records as diamonds (red: crash, purple: pipe event).
pub fn system_marks(cx: &Ctx<'_>, sl: &SystemLane, row_rect: Rect, shapes: &mut Vec<Shape>) -> Option<Hover> {
    let (top, bottom) = (row_rect.top() + 2.0, row_rect.bottom() - 2.0);
    let hover_row = cx.pointer_in_row(row_rect);
    let mut best: Option<(f32, usize, usize)> = None;
    lanes::for_columns(&sl.ts, cx.axis.lo(), cx.axis.hi(), cx.axis.ns_per_px, |i, j| {
        let x = cx.axis.x_of(sl.ts[i]);
        let color = if sl.crashes[j] > sl.crashes[i] {
            lanes::COLOR_SYS_CRASH
        } else if sl.pipe_events[j] > sl.pipe_events[i] {
            lanes::COLOR_SYS_PIPE
        } else if sl.tcp_events[j] > sl.tcp_events[i] {
            lanes::COLOR_SYS_TCP
        } else {
            lanes::COLOR_SYS_OTHER
        };
        let c = Pos2::new(x, row_rect.center().y);
        shapes.push(Shape::convex_polygon(
            vec![Pos2::new(c.x, top), Pos2::new(c.x + 4.0, c.y), Pos2::new(c.x, bottom), Pos2::new(c.x - 4.0, c.y)],
            color,
            Stroke::NONE,
        ));
        nearest(&mut best, hover_row, x, 5.0, i, j);
    });
    let (d, i, j) = best?;
    let ev = sl.idx[i] as usize;
    let e = cx.a.system_events.get(ev)?;
    let mut text =
        format!("{} {} {} ({}): {}", timefmt::format_full(e.ts, cx.tz), e.provider, e.event_id, e.kind, e.summary);
    if j - i > 1 {
        text.push_str(&format!("  (+{} more here)", j - i - 1));
    }
    Some((d, TimelineItem::SystemEvent(ev), text))
}

/// A lane's header row: a separator across the whole widget (`left..right`) and a faint band.
pub fn header(shapes: &mut Vec<Shape>, visuals: &Visuals, left: f32, right: f32, row_rect: Rect) {
    let y = row_rect.top();
    shapes.push(Shape::line_segment(
        [Pos2::new(left, y + 0.5), Pos2::new(right, y + 0.5)],
        Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color),
    ));
    shapes.push(Shape::rect_filled(row_rect, CornerRadius::ZERO, visuals.faint_bg_color));
}

/// One mark: a bar, or the bars starting in one pixel column.
struct Run {
    x0: f32,
    x1: f32,
    worst: EndKind,
    count: u32,
    first: u32,
}

/// First position in `0..=n` where `pred` turns false (`pred` true on a prefix), searching
/// outward from 0 first: a run usually takes a few bars, so this costs O(log step), not O(log n).
fn gallop(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let mut bound = 1;
    while bound <= n && pred(bound - 1) {
        bound *= 2;
    }
    // `pred` holds below `bound / 2`; the turn is in `bound / 2 .. min(bound, n)`.
    let lo = bound / 2;
    lo + partition(lo, bound.min(n), &pred)
}

/// First position in `lo..hi` where `pred` turns false, minus `lo`.
fn partition(lo: usize, hi: usize, pred: &impl Fn(usize) -> bool) -> usize {
    let (mut a, mut b) = (lo, hi);
    while a < b {
        let m = a + (b - a) / 2;
        if pred(m) {
            a = m + 1;
        } else {
            b = m;
        }
    }
    a - lo
}

/// One packed row of connection bars. Returns the connection under the pointer, if any.
///
/// Level of detail: bars narrower than a pixel are aggregated per pixel column, one mark coloured
/// by the worst ending among the bars starting in it; wider bars are drawn on their own. A column's
/// last bar is found by galloping search over the row's sorted starts and its colour is the minimum
/// over a byte slice, so a frame costs O(columns × log) per row, not O(connections): at the
/// whole-capture view a row of 500,000 bars is at most one mark per pixel.
pub fn connections(
    cx: &Ctx<'_>,
    lane: &Lane,
    row: u32,
    row_rect: Rect,
    shapes: &mut Vec<Shape>,
    mesh: &mut egui::Mesh,
) -> Option<usize> {
    let (a, plot, axis) = (cx.a, cx.axis.plot, &cx.axis);
    let Some(r) = lane.rows.get(row as usize) else { return None };
    let n = r.items.len().min(r.start.len()).min(r.end.len()).min(r.kind.len());
    let (t_lo, t_hi) = (axis.lo(), axis.hi());
    let bar = Rect::from_min_max(Pos2::new(0.0, row_rect.top() + 3.0), Pos2::new(0.0, row_rect.bottom() - 3.0));
    let (left, right) = (plot.left() - 4.0, plot.right() + 4.0);
    let x_end = |i: usize| axis.x_of(r.end[i]).min(right);
    // Ends are sorted within a row, so the first visible bar is a binary search away.
    let mut k = r.end[..n].partition_point(|&e| e < t_lo);
    // Touching column marks of one colour are drawn as one rect: a busy row is a few rects, not
    // one per pixel, which keeps tessellation small.
    let mut pending: Option<Run> = None;
    while k < n && r.start[k] <= t_hi {
        let x0 = axis.x_of(r.start[k]).max(left);
        let x1 = x_end(k);
        if x1 - x0 >= 1.0 {
            // A bar a pixel wide or more is drawn on its own.
            if let Some(p) = pending.take() {
                flush_run(shapes, mesh, a, &p, bar, axis);
            }
            let run = Run { x0, x1, worst: EndKind::ALL[r.kind[k] as usize], count: 1, first: r.items[k] };
            flush_run(shapes, mesh, a, &run, bar, axis);
            k += 1;
            continue;
        }
        // Bars narrower than a pixel: all of those starting in this pixel column become one mark
        // coloured by the worst ending among them, so a reset among thousands still shows.
        let col = x0.floor();
        let mut j = k + gallop(n - k, |q| axis.x_of(r.start[k + q]) < col + 1.0).max(1);
        // Bars never overlap, so only the column's last bar can be wide: it keeps its own colour.
        if j - 1 > k && x_end(j - 1) - axis.x_of(r.start[j - 1]) >= 1.0 {
            j -= 1;
        }
        let worst = r.kind[k..j].iter().copied().min().map(|w| EndKind::ALL[w as usize]).unwrap_or(EndKind::Other);
        // Contiguous columns make a continuous bar; the last bar may reach further.
        let run = Run { x0: col, x1: x_end(j - 1).max(col + 1.0), worst, count: (j - k) as u32, first: r.items[k] };
        match pending.as_mut() {
            Some(p) if p.worst == run.worst && run.x0 <= p.x1 + 0.5 => {
                p.x1 = p.x1.max(run.x1);
                p.count += run.count;
            }
            _ => {
                if let Some(p) = pending.replace(run) {
                    flush_run(shapes, mesh, a, &p, bar, axis);
                }
            }
        }
        k = j;
    }
    if let Some(p) = pending.take() {
        flush_run(shapes, mesh, a, &p, bar, axis);
    }
    // The bar under the pointer: the last one starting left of it, if it reaches the pointer.
    let p = cx.pointer_in_row(row_rect)?;
    let last = r.start[..n].partition_point(|&s| axis.x_of(s) <= p.x + 3.0);
    (last.saturating_sub(2)..last).rev().find_map(|i| {
        let (x0, x1) = (axis.x_of(r.start[i]).max(left), x_end(i));
        (p.x >= x0 - 3.0 && p.x <= x1.max(x0 + 2.0) + 3.0).then_some(r.items[i] as usize)
    })
}

fn flush_run(shapes: &mut Vec<Shape>, mesh: &mut egui::Mesh, a: &Analysis, r: &Run, bar: Rect, axis: &TimeAxis) {
    let x1 = r.x1.max(r.x0 + 2.0);
    let rect = Rect::from_x_y_ranges(r.x0..=x1, bar.y_range());
    let mut color = r.worst.color();
    if r.count > 1 {
        // Merged bars are drawn a little paler so single connections stand out when zoomed in.
        color = color.gamma_multiply(0.85);
    }
    // Thin bars go into one plain mesh (no rounding, no anti-aliasing): zoomed out there are
    // thousands of them and tessellating each as a shape would dominate the frame.
    if rect.width() > 6.0 && r.count == 1 {
        shapes.push(Shape::rect_filled(rect, CornerRadius::same(2), color));
    } else {
        mesh.add_colored_rect(rect, color);
    }
    if r.count == 1 && x1 - r.x0 >= MARKS_MIN_WIDTH {
        if let Some(c) = a.connections.get(r.first as usize) {
            packet_marks(shapes, c, rect, axis);
        }
    }
}

/// Most highlighted connections outlined per frame (a finding may list thousands).
const MAX_OUTLINES: usize = 5_000;

/// Outlines of the selected connection and the selected finding's connections, drawn over the
/// (possibly aggregated) bars so a highlighted connection stays visible at any zoom.
pub fn connection_outlines(cx: &Ctx<'_>, hl: &Highlights<'_>, scroll_y: f32, shapes: &mut Vec<Shape>) {
    let (a, model, plot) = (cx.a, cx.model, cx.axis.plot);
    let select_color = cx.visuals.strong_text_color();
    let highlight = style::highlight(cx.visuals);
    let selected = hl.selected_connection.into_iter().map(|i| (i, true));
    let found = hl.finding_connections.iter().take(MAX_OUTLINES).map(|&i| (i, false));
    for (idx, is_selected) in found.chain(selected) {
        let (Some(c), Some(&row)) = (a.connections.get(idx), model.conn_row.get(idx)) else { continue };
        let y = plot.top() + row as f32 * ROW_HEIGHT - scroll_y;
        if y + ROW_HEIGHT < plot.top() || y > plot.bottom() {
            continue;
        }
        let (s, e) = crate::gui::fields::conn_span(c);
        let x0 = cx.axis.x_of(s).max(plot.left() - 4.0);
        let x1 = cx.axis.x_of(e).min(plot.right() + 4.0).max(x0 + 2.0);
        if x1 < plot.left() || x0 > plot.right() {
            continue;
        }
        let rect = Rect::from_min_max(Pos2::new(x0, y + 3.0), Pos2::new(x1, y + ROW_HEIGHT - 3.0));
        let radius = if rect.width() > 6.0 { CornerRadius::same(2) } else { CornerRadius::ZERO };
        let (width, color, grow) = if is_selected { (2.0, select_color, 2.0) } else { (1.5, highlight, 1.5) };
        shapes.push(Shape::rect_stroke(rect.expand(grow), radius, Stroke::new(width, color), StrokeKind::Outside));
    }
}

/// Ticks for the kept packets: SYN, FIN, RST full height, keep-alives as dots, data as small ticks.
fn packet_marks(shapes: &mut Vec<Shape>, c: &crate::model::Connection, bar: Rect, axis: &TimeAxis) {
    let mut last_x = f32::NEG_INFINITY;
    // `bar` is already clipped to the plot (plus a few pixels); marks outside it are skipped.
    let (left, right) = (bar.left() - 3.0, bar.right() + 3.0);
    for p in c.packets() {
        let x = axis.x_of(p.ts);
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
    if c.elided() > 0 {
        if let (Some(h), Some(t)) = (c.head_tail().0.last(), c.head_tail().1.first()) {
            let (x0, x1) = (axis.x_of(h.ts).max(left), axis.x_of(t.ts).min(right));
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

/// The selected finding's evidence (frames, opens, log lines) as triangles, and the selected log line
/// outlined. `scroll_y` places global rows on screen.
pub fn selection_marks(cx: &Ctx<'_>, hl: &Highlights<'_>, scroll_y: f32, shapes: &mut Vec<Shape>) {
    let (a, model, plot) = (cx.a, cx.model, cx.axis.plot);
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
            let (x, y) = (cx.axis.x_of(ts), plot.top() + model.log_row[lane] as f32 * ROW_HEIGHT - scroll_y);
            let r = Rect::from_min_max(Pos2::new(x - 3.0, y), Pos2::new(x + 3.0, y + ROW_HEIGHT));
            shapes.push(Shape::rect_stroke(
                r,
                CornerRadius::ZERO,
                Stroke::new(2.0, cx.visuals.strong_text_color()),
                StrokeKind::Outside,
            ));
        }
    }
    // Evidence frames of the selected finding.
    for &(row, ts) in hl.evidence_marks.iter().chain(marks.iter()) {
        let x = cx.axis.x_of(ts);
        if x < plot.left() || x > plot.right() {
            continue;
        }
        let y = plot.top() + row as f32 * ROW_HEIGHT - scroll_y;
        if y + ROW_HEIGHT < plot.top() || y > plot.bottom() {
            continue;
        }
        shapes.push(Shape::convex_polygon(
            vec![Pos2::new(x, y + 8.0), Pos2::new(x - 5.0, y - 1.0), Pos2::new(x + 5.0, y - 1.0)],
            style::highlight(cx.visuals),
            Stroke::new(1.0, Color32::BLACK),
        ));
    }
}

/// The gutter left of the plot (`rect.left()..plot.left()`): background and the labels of the lanes
/// whose header rows are among `rows`.
#[allow(clippy::too_many_arguments)]
pub fn gutter(
    shapes: &mut Vec<Shape>,
    painter: &egui::Painter,
    model: &TimelineModel,
    visuals: &Visuals,
    rect: Rect,
    plot: Rect,
    rows: std::ops::Range<usize>,
    scroll_y: f32,
) {
    let gutter_bg = Rect::from_min_max(Pos2::new(rect.left(), plot.top()), Pos2::new(plot.left(), rect.bottom()));
    shapes.push(Shape::rect_filled(gutter_bg, CornerRadius::ZERO, visuals.panel_fill));
    let label_font = FontId::proportional(12.0);
    let text_color = visuals.text_color();
    // Lane labels are drawn after the gutter background.
    for gi in rows {
        if let RowRef::Header(li) = model.rows[gi] {
            let y = plot.top() + gi as f32 * ROW_HEIGHT - scroll_y;
            let lane = &model.lanes[li as usize];
            shapes.push(Shape::line_segment(
                [Pos2::new(rect.left(), y + 0.5), Pos2::new(plot.left(), y + 0.5)],
                Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color),
            ));
            let label = painter.layout_no_wrap(lane.label.clone(), label_font.clone(), text_color);
            shapes.push(Shape::galley(Pos2::new(rect.left() + 4.0, y + 1.0), label, text_color));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Connection, Endpoint};

    /// 200,000 back-to-back connections in one row over 400 pixels: the row is drawn as at most a
    /// run per pixel, the one reset among them keeps its colour, and hover finds the bar under it.
    #[test]
    fn a_row_of_many_bars_draws_per_pixel_and_keeps_the_worst_ending() {
        let n = 200_000u64;
        let server = Endpoint { ip: "10.0.0.1".parse().unwrap(), port: 445 };
        let client = Endpoint { ip: "10.0.0.2".parse().unwrap(), port: 50000 };
        let mut a = Analysis::default();
        for i in 0..n {
            let mut c = Connection::opened(i, 0, i as u32, client, server, i as i64 * 1000, i);
            c.last_ts = i as i64 * 1000 + 900;
            c.state = if i == 123_457 { "RSTR".into() } else { "SF".into() };
            a.connections.push(c);
        }
        let model = TimelineModel::build(&a);
        let lane = model.lanes.iter().find(|l| matches!(l.kind, super::super::LaneKind::TcpServer(_))).unwrap();
        assert_eq!(lane.rows.len(), 1, "back-to-back connections share a row");
        let plot = Rect::from_min_max(Pos2::new(0.0, 0.0), Pos2::new(400.0, 100.0));
        let axis = TimeAxis::new(model.origin, 0.0, model.span_ns(), plot);
        let visuals = Visuals::dark();
        let row_rect = Rect::from_min_max(Pos2::new(0.0, 0.0), Pos2::new(400.0, ROW_HEIGHT));
        let reset_x = axis.x_of(a.connections[123_457].first_ts);
        let cx = Ctx {
            a: &a,
            model: &model,
            axis,
            visuals: &visuals,
            tz: TimeZoneMode::Utc,
            pointer: Some(Pos2::new(reset_x, 8.0)),
        };
        let (mut shapes, mut mesh) = (Vec::new(), egui::Mesh::default());
        let hovered = connections(&cx, lane, 0, row_rect, &mut shapes, &mut mesh);
        assert!(shapes.is_empty(), "aggregated columns go into the mesh");
        let rects: Vec<(f32, f32, Color32)> = mesh
            .vertices
            .chunks(4)
            .map(|v| {
                let xs = v.iter().map(|p| p.pos.x);
                (xs.clone().fold(f32::MAX, f32::min), xs.fold(f32::MIN, f32::max), v[0].color)
            })
            .collect();
        assert!(rects.len() <= 5, "touching columns of one colour are one rect: {rects:?}");
        let (red, green) =
            (EndKind::ServerReset.color().gamma_multiply(0.85), EndKind::Graceful.color().gamma_multiply(0.85));
        let reds: Vec<_> = rects.iter().filter(|r| r.2 == red).collect();
        assert_eq!(reds.len(), 1, "one red mark for the reset: {rects:?}");
        assert!(reds[0].1 - reds[0].0 <= 2.0 && (reds[0].0..=reds[0].1).contains(&reset_x.floor()), "{reds:?}");
        let green_px: f32 = rects.iter().filter(|r| r.2 == green).map(|r| r.1 - r.0).sum();
        assert!(green_px >= 395.0, "the other columns stay green: {green_px} px");
        let i = hovered.expect("a bar under the pointer");
        let (s, e) = (a.connections[i].first_ts, a.connections[i].last_ts);
        assert!((axis.x_of(s) - 3.0..=axis.x_of(e).max(axis.x_of(s) + 2.0) + 3.0).contains(&reset_x));
    }

    #[test]
    fn gallop_finds_where_a_prefix_ends() {
        for n in 0..70usize {
            for cut in 0..=n {
                assert_eq!(gallop(n, |i| i < cut), cut, "n {n} cut {cut}");
            }
        }
    }
}
