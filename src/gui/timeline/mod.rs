//! The timeline: one shared time axis with lanes for named pipes (handle graph and opens), text
//! logs, Windows events, and one lane per TCP server endpoint with a bar per connection.
//!
//! Built to stay smooth with a million connections: connections are packed into non-overlapping
//! rows once per analysis (so ends are sorted within a row and the first visible bar is a binary
//! search away), only visible rows are walked, and bars narrower than a pixel are aggregated per
//! pixel column into one mark coloured by the worst ending among them.
//!
//! [`model`] is the layout (built once per analysis), [`view`] the user's window, input and the frame,
//! [`rows`] paints each kind of row and [`ruler`] the time ruler: painters are plain functions from a
//! [`TimeAxis`] (the visible range on the plot rect) and a row rect to shapes.

pub mod model;
pub mod rows;
pub mod ruler;
pub mod view;

use eframe::egui::Rect;

use crate::model::{TsArith, UtcNs};

pub use model::{Lane, LaneKind, RowRef, TimelineModel};
pub use ruler::tick_step;
pub use view::{legend, show, Highlights, TimelineItem, TimelineResponse, TimelineView};

pub const ROW_HEIGHT: f32 = 16.0;
pub const RULER_HEIGHT: f32 = 38.0;
pub const GUTTER_WIDTH: f32 = 190.0;
/// Narrowest zoom: one microsecond across the plot.
const MIN_SPAN_NS: f64 = 1_000.0;
/// Bars at least this wide show their packets.
const MARKS_MIN_WIDTH: f32 = 24.0;

/// `\Device\NamedPipe\NAME` as `NAME`.
pub fn short_pipe(name: &str) -> &str {
    name.strip_prefix("\\Device\\NamedPipe\\").unwrap_or(name)
}

/// The visible time range mapped onto the plot rect: all a painter needs to place a time.
#[derive(Clone, Copy, Debug)]
pub struct TimeAxis {
    /// UTC ns of view time 0 (the model's origin).
    pub origin: UtcNs,
    /// Visible window, ns after `origin`.
    pub t0: f64,
    pub t1: f64,
    pub ns_per_px: f64,
    pub plot: Rect,
}

impl TimeAxis {
    pub fn new(origin: UtcNs, t0: f64, t1: f64, plot: Rect) -> TimeAxis {
        TimeAxis { origin, t0, t1, ns_per_px: (t1 - t0) / plot.width().max(1.0) as f64, plot }
    }

    /// Screen x of UTC time `t`.
    pub fn x_of(&self, t: UtcNs) -> f32 {
        self.plot.left() + ((t.since(self.origin) as f64 - self.t0) / self.ns_per_px) as f32
    }

    /// UTC time at screen x.
    pub fn t_at(&self, x: f32) -> UtcNs {
        self.origin.after((self.t0 + (x - self.plot.left()) as f64 * self.ns_per_px) as i64)
    }

    /// First visible UTC ns.
    pub fn lo(&self) -> UtcNs {
        self.origin.after(self.t0.floor() as i64)
    }

    /// Last visible UTC ns.
    pub fn hi(&self) -> UtcNs {
        self.origin.after(self.t1.ceil() as i64)
    }
}
