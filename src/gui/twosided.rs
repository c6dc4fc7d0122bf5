//! A connection seen in two captures (issue 15): one row per capture on the common clock, the
//! same packet joined across the rows (the slant is the one-way delay), packets lost in between
//! marked × on the row that never saw them, injected packets ringed. A plain painter of the
//! analysis' `SharedConnection`; hooked into the connection details.

use eframe::egui::{self, Color32, Pos2, Rect, RichText, Sense, Stroke};

use crate::analysis::twosided::{describe_delay, facts::PacketFact, SharedConnection};
use crate::analysis::Analysis;
use crate::model::tcp_flags::{FIN, RST, SYN};
use crate::model::UtcNs;

const ROW_GAP: f32 = 34.0;
const LABEL_W: f32 = 150.0;

fn color(flags: u8, len: u32) -> Color32 {
    if flags & RST != 0 {
        Color32::from_rgb(220, 60, 60)
    } else if flags & (SYN | FIN) != 0 {
        Color32::from_rgb(70, 130, 220)
    } else if len > 0 {
        Color32::from_rgb(60, 170, 90)
    } else {
        Color32::GRAY
    }
}

/// Text lines of the comparison (also what a screen reader gets).
pub fn lines(a: &Analysis, s: &SharedConnection) -> Vec<String> {
    let end = |i: Option<u32>| i.map(|i| a.input_name(i).to_string()).unwrap_or_else(|| "unknown".into());
    let mut out = vec![
        format!(
            "Seen in {} and {} (matched by {}, {} packets paired)",
            a.input_name(s.primary_input),
            a.input_name(s.view_input),
            s.by.name(),
            s.matched_packets
        ),
        format!("client's end: {}", end(s.client_end)),
        format!(
            "one-way delay client→server {}, server→client {}",
            describe_delay(s.delay_client_to_server),
            describe_delay(s.delay_server_to_client)
        ),
        format!("lost in between: {}, injected: {}", s.lost_count, s.injected_count),
    ];
    if let Some(r) = s.first_rst {
        out.push(format!("first RST seen by {} (frame {})", a.input_name(r.input), r.frame));
    }
    out
}

/// The two aligned rows of a shared connection, if `conn_id` is one.
pub fn show_views(ui: &mut egui::Ui, a: &Analysis, conn_id: u64) {
    let Some(s) = a.twosided.shared_of(conn_id) else { return };
    let (Some(fa), Some(fb)) = (a.twosided.facts.get(&s.primary), a.twosided.facts.get(&s.view)) else { return };
    ui.add_space(6.0);
    ui.label(RichText::new("Two captures").strong());
    for l in lines(a, s) {
        ui.label(l);
    }
    let all: Vec<UtcNs> = fa.packets().chain(fb.packets()).map(|p| p.ts).collect();
    let (Some(&t0), Some(&t1)) = (all.iter().min(), all.iter().max()) else { return };
    let width = ui.available_width().max(LABEL_W + 100.0);
    let (rect, _) = ui.allocate_exact_size(egui::vec2(width, ROW_GAP * 2.0 + 10.0), Sense::hover());
    let painter = ui.painter_at(rect);
    let plot = Rect::from_min_max(Pos2::new(rect.left() + LABEL_W, rect.top()), rect.right_bottom());
    let span = (t1 - t0).max(1) as f64;
    let x = |t: UtcNs| plot.left() + ((t - t0) as f64 / span) as f32 * (plot.width() - 4.0) + 2.0;
    let y = [rect.top() + ROW_GAP * 0.5, rect.top() + ROW_GAP * 1.5];
    let text = ui.visuals().text_color();
    for (row, input) in [s.primary_input, s.view_input].into_iter().enumerate() {
        painter.text(
            Pos2::new(rect.left(), y[row]),
            egui::Align2::LEFT_CENTER,
            a.input_name(input),
            egui::FontId::proportional(11.0),
            text,
        );
        painter.line_segment(
            [Pos2::new(plot.left(), y[row]), Pos2::new(plot.right(), y[row])],
            Stroke::new(0.5, Color32::DARK_GRAY),
        );
    }
    let at = |f: &crate::analysis::twosided::facts::ConnFacts, frame: u64| -> Option<PacketFact> {
        f.packets().find(|p| p.frame == frame).copied()
    };
    for &(fr_a, fr_b) in &s.paired_frames {
        if let (Some(p), Some(q)) = (at(fa, fr_a), at(fb, fr_b)) {
            painter.line_segment(
                [Pos2::new(x(p.ts), y[0]), Pos2::new(x(q.ts), y[1])],
                Stroke::new(0.5, Color32::from_gray(120)),
            );
        }
    }
    for (row, f) in [fa, fb].into_iter().enumerate() {
        for p in f.packets() {
            let c = color(p.flags, p.len);
            painter.line_segment(
                [Pos2::new(x(p.ts), y[row] - 7.0), Pos2::new(x(p.ts), y[row] + 7.0)],
                Stroke::new(1.5, c),
            );
        }
    }
    let row_of = |input: u32| usize::from(input != s.primary_input);
    for p in &s.lost {
        // Marked on the row that never saw it.
        let missing = 1 - row_of(p.input);
        let c = Pos2::new(x(p.ts), y[missing]);
        let r = 4.0;
        let red = Stroke::new(1.5, Color32::from_rgb(220, 60, 60));
        painter.line_segment([c + egui::vec2(-r, -r), c + egui::vec2(r, r)], red);
        painter.line_segment([c + egui::vec2(-r, r), c + egui::vec2(r, -r)], red);
    }
    for p in &s.injected {
        painter.circle_stroke(
            Pos2::new(x(p.ts), y[row_of(p.input)]),
            6.0,
            Stroke::new(1.5, Color32::from_rgb(240, 150, 30)),
        );
    }
    ui.label(
        RichText::new("× lost in between (on the row that never saw it) · ○ injected (its sender's end never sent it)")
            .weak(),
    );
}
