//! The time ruler: tick steps and the ruler's shapes for a time axis (rerun's time panel ticks are
//! the model: a plain function from the visible range and a rect to shapes).

use eframe::egui::{self, Color32, CornerRadius, FontId, Pos2, Rect, Shape, Stroke};

use super::TimeAxis;
use crate::gui::timefmt::{self, TimeZoneMode};
use crate::model::TsArith;

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

/// Ticks aligned to the wall clock of `tz`, their labels, the date and the view's span, in `ruler`;
/// tick lines also run down the plot.
#[allow(clippy::too_many_arguments)]
pub fn ruler_shapes(
    shapes: &mut Vec<Shape>,
    painter: &egui::Painter,
    axis: &TimeAxis,
    ruler: Rect,
    tz: TimeZoneMode,
    text: Color32,
    weak: Color32,
    panel_fill: Color32,
) {
    let plot = axis.plot;
    let step = tick_step(axis.ns_per_px, 110.0);
    let (t_lo, t_hi) = (axis.lo(), axis.hi());
    // Align ticks to the wall clock of the chosen zone.
    let offset = tz.offset_s(t_lo) * 1_000_000_000;
    let mut t = t_lo.after(offset).div_euclid(step).saturating_mul(step).before(offset);
    let font = FontId::proportional(12.0);
    let mut n = 0;
    while t <= t_hi && n < 400 {
        let x = axis.x_of(t);
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
        t = t.after(step);
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
        painter.layout_no_wrap(format!("view {}", timefmt::format_duration((axis.t1 - axis.t0) as i64)), font, weak);
    shapes.push(Shape::galley(Pos2::new(ruler.left() + 4.0, ruler.top() + 20.0), span, weak));
    shapes.push(Shape::line_segment(
        [Pos2::new(ruler.left(), ruler.bottom()), Pos2::new(ruler.right(), ruler.bottom())],
        Stroke::new(1.0, weak),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_nice_and_wide_enough() {
        assert_eq!(tick_step(1.0, 100.0), 100);
        assert_eq!(tick_step(1e7, 100.0), 1_000_000_000);
        assert!(tick_step(1e12, 100.0) >= 100_000_000_000_000);
    }
}
