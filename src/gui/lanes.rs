//! The lanes that are not TCP: named pipes (open client handles over time, marks for failed
//! opens), text logs (marks by severity) and Windows event-log records.
//!
//! Everything is sorted by time once per analysis (on the loading thread) with prefix counts, so
//! a frame binary-searches the visible range and walks pixel columns, never all events: a column
//! with many events is one mark whose colour comes from the prefix counts.

use eframe::egui::{Color32, Mesh, Pos2, Rect};

use crate::analysis::logs::SystemEventKind;
use crate::analysis::pipes::PipeOutcome;
use crate::analysis::Analysis;
use crate::model::UtcNs;

pub const COLOR_BUSY: Color32 = Color32::from_rgb(240, 140, 30);
pub const COLOR_NOT_FOUND: Color32 = Color32::from_rgb(170, 90, 220);
pub const COLOR_OTHER_FAIL: Color32 = Color32::from_rgb(230, 50, 50);
pub const COLOR_OPEN_OK: Color32 = Color32::from_rgb(120, 160, 120);
pub const COLOR_HANDLES: Color32 = Color32::from_rgb(80, 150, 220);
pub const COLOR_LOG_ERROR: Color32 = Color32::from_rgb(225, 60, 55);
pub const COLOR_LOG_WARNING: Color32 = Color32::from_rgb(235, 175, 30);
pub const COLOR_SYS_CRASH: Color32 = Color32::from_rgb(225, 60, 55);
pub const COLOR_SYS_PIPE: Color32 = Color32::from_rgb(170, 120, 230);
pub const COLOR_SYS_OTHER: Color32 = Color32::from_rgb(80, 170, 220);
/// Socket events (Process Monitor TCP Connect/Accept/Disconnect, tcpip events).
pub const COLOR_SYS_TCP: Color32 = Color32::from_rgb(60, 190, 150);

/// One named pipe's lane data.
pub struct PipeLane {
    /// Index in `Analysis::pipes`.
    pub pipe: usize,
    pub max_handles: u32,
    /// Handle-count changes, sorted by time.
    pub h_ts: Vec<UtcNs>,
    pub h_val: Vec<u32>,
    /// Opens (and instance creations) sorted by time: time and index in `Pipe::events`.
    pub ts: Vec<UtcNs>,
    pub idx: Vec<u32>,
    /// Prefix counts over `ts` order (length n + 1): busy, not found, other failures.
    pub busy: Vec<u32>,
    pub not_found: Vec<u32>,
    pub other: Vec<u32>,
}

impl PipeLane {
    pub fn build(a: &Analysis, pipe: usize) -> PipeLane {
        let p = &a.pipes[pipe];
        let mut h: Vec<(UtcNs, u32)> = p.handles.clone();
        h.sort_by_key(|x| x.0);
        let mut order: Vec<u32> = (0..p.events.len() as u32).collect();
        order.sort_by_key(|&i| (p.events[i as usize].ts, i));
        let mut busy = vec![0u32; order.len() + 1];
        let mut not_found = vec![0u32; order.len() + 1];
        let mut other = vec![0u32; order.len() + 1];
        for (k, &i) in order.iter().enumerate() {
            let e = &p.events[i as usize];
            let (b, n, o) = match e.outcome {
                PipeOutcome::Busy => (1, 0, 0),
                PipeOutcome::NotFound => (0, 1, 0),
                PipeOutcome::Other => (0, 0, 1),
                _ => (0, 0, 0),
            };
            busy[k + 1] = busy[k] + b;
            not_found[k + 1] = not_found[k] + n;
            other[k + 1] = other[k] + o;
        }
        PipeLane {
            pipe,
            max_handles: h.iter().map(|x| x.1).max().unwrap_or(0).max(1),
            h_ts: h.iter().map(|x| x.0).collect(),
            h_val: h.iter().map(|x| x.1).collect(),
            ts: order.iter().map(|&i| p.events[i as usize].ts).collect(),
            idx: order,
            busy,
            not_found,
            other,
        }
    }

    pub fn heap_bytes(&self) -> usize {
        (self.h_ts.capacity() + self.ts.capacity()) * 8
            + (self.h_val.capacity()
                + self.idx.capacity()
                + self.busy.capacity()
                + self.not_found.capacity()
                + self.other.capacity())
                * 4
    }

    /// Open client handles at `t` (the last change at or before it).
    pub fn handles_at(&self, t: UtcNs) -> u32 {
        let k = self.h_ts.partition_point(|&x| x <= t);
        if k == 0 {
            0
        } else {
            self.h_val[k - 1]
        }
    }
}

/// One text log's lane data.
pub struct LogLane {
    pub input: u32,
    pub name: String,
    /// Events with a time, sorted by it: time and index in `Analysis::log_events`.
    pub ts: Vec<UtcNs>,
    pub idx: Vec<u32>,
    /// Prefix count of error lines over `ts` order (length n + 1).
    pub errors: Vec<u32>,
    /// All this file's events (also those without a time), sorted by line number.
    pub by_line: Vec<u32>,
}

impl LogLane {
    pub fn build(a: &Analysis, input: u32) -> LogLane {
        let mut timed: Vec<(UtcNs, u32)> = Vec::new();
        let mut by_line: Vec<u32> = Vec::new();
        for (i, e) in a.log_events.iter().enumerate() {
            if e.input != input {
                continue;
            }
            by_line.push(i as u32);
            if let Some(t) = e.ts {
                timed.push((t, i as u32));
            }
        }
        timed.sort_unstable();
        by_line.sort_by_key(|&i| (a.log_events[i as usize].line, i));
        let mut errors = vec![0u32; timed.len() + 1];
        for (k, &(_, i)) in timed.iter().enumerate() {
            errors[k + 1] = errors[k] + u32::from(a.log_events[i as usize].severity == crate::model::Severity::Error);
        }
        LogLane {
            input,
            name: a.input_name(input).to_string(),
            ts: timed.iter().map(|x| x.0).collect(),
            idx: timed.iter().map(|x| x.1).collect(),
            errors,
            by_line,
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.name.capacity()
            + self.ts.capacity() * 8
            + (self.idx.capacity() + self.errors.capacity() + self.by_line.capacity()) * 4
    }

    /// The event at `line` of this file, if it is an error/warning line.
    pub fn event_at_line(&self, a: &Analysis, line: u64) -> Option<usize> {
        let k = self.by_line.partition_point(|&i| a.log_events[i as usize].line < line);
        let i = *self.by_line.get(k)? as usize;
        (a.log_events[i].line == line).then_some(i)
    }
}

/// Windows event-log records, sorted by time.
#[derive(Default)]
pub struct SystemLane {
    pub ts: Vec<UtcNs>,
    pub idx: Vec<u32>,
    /// Prefix count of crash-like records (length n + 1).
    pub crashes: Vec<u32>,
    pub pipe_events: Vec<u32>,
    /// Prefix count of socket events (ProcMon `TCP Connect` and the like).
    pub tcp_events: Vec<u32>,
}

/// A socket event: ProcMon's TCP records, TCPIP events (a failed connect is one too).
pub fn is_tcp(kind: SystemEventKind) -> bool {
    use SystemEventKind::*;
    matches!(
        kind,
        TcpipAccept
            | TcpipConnect
            | TcpipConnectFailed
            | TcpipAbort
            | TcpipDisconnect
            | TcpipConnectTimeout
            | TcpipRetransmitTimeout
            | TcpipKeepaliveTimeout
            | TcpipDisconnectTimeout
            | TcpipReconnect
            | TcpipRetransmit
            | ProcmonTcpConnect
            | ProcmonTcpAccept
            | ProcmonTcpDisconnect
            | ProcmonTcpReconnect
            | ProcmonTcpRetransmit
    )
}

/// Drawn red: a crashed service or application, a connect that failed. Not `is_stop`: an
/// orderly shutdown or a stopped service is no crash.
pub fn is_crash(kind: SystemEventKind) -> bool {
    matches!(kind, SystemEventKind::ServiceCrashed | SystemEventKind::AppCrash | SystemEventKind::TcpipConnectFailed)
}

impl SystemLane {
    pub fn build(a: &Analysis) -> SystemLane {
        let mut order: Vec<u32> = (0..a.system_events.len() as u32).collect();
        order.sort_by_key(|&i| (a.system_events[i as usize].ts, i));
        let mut crashes = vec![0u32; order.len() + 1];
        let mut pipe_events = vec![0u32; order.len() + 1];
        let mut tcp_events = vec![0u32; order.len() + 1];
        for (k, &i) in order.iter().enumerate() {
            let kind = a.system_events[i as usize].kind;
            crashes[k + 1] = crashes[k] + u32::from(is_crash(kind));
            pipe_events[k + 1] = pipe_events[k] + u32::from(kind.is_pipe());
            tcp_events[k + 1] = tcp_events[k] + u32::from(is_tcp(kind));
        }
        SystemLane {
            ts: order.iter().map(|&i| a.system_events[i as usize].ts).collect(),
            idx: order,
            crashes,
            pipe_events,
            tcp_events,
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.ts.capacity() * 8
            + (self.idx.capacity() + self.crashes.capacity() + self.pipe_events.capacity() + self.tcp_events.capacity())
                * 4
    }
}

/// Walks the pixel columns between `t_lo` and `t_hi` that hold events of `ts` (sorted):
/// `f(first, end)` gets the positions of one column's events. Cost: O(columns with events ×
/// log n), whatever the number of events.
pub fn for_columns(ts: &[UtcNs], t_lo: UtcNs, t_hi: UtcNs, ns_per_px: f64, mut f: impl FnMut(usize, usize)) {
    let npx = ns_per_px.max(1.0);
    let mut i = ts.partition_point(|&t| t < t_lo);
    while i < ts.len() && ts[i] <= t_hi {
        let col = ((ts[i] - t_lo) as f64 / npx).floor();
        // The last column stops at the visible end.
        let col_end = (t_lo as f64 + (col + 1.0) * npx).min(t_hi as f64 + 1.0);
        let j = i + ts[i..].partition_point(|&t| (t as f64) < col_end).max(1);
        f(i, j);
        i = j;
    }
}

/// Per-pixel-column maximum of a step function (`h_ts`/`h_val`, sorted) over `ncols` columns
/// starting at `t_lo`; walks only the changes inside the visible range.
pub fn column_max(h_ts: &[UtcNs], h_val: &[u32], t_lo: UtcNs, ns_per_px: f64, ncols: usize) -> Vec<u32> {
    let mut out = vec![0u32; ncols];
    let start = h_ts.partition_point(|&t| t <= t_lo);
    let mut cur = if start == 0 { 0 } else { h_val[start - 1] };
    let mut k = start;
    for (col, slot) in out.iter_mut().enumerate() {
        let col_end = t_lo as f64 + (col as f64 + 1.0) * ns_per_px;
        let mut m = cur;
        while k < h_ts.len() && (h_ts[k] as f64) < col_end {
            cur = h_val[k];
            m = m.max(cur);
            k += 1;
        }
        *slot = m;
        if k >= h_ts.len() && cur == 0 && col > 0 {
            break;
        }
    }
    out
}

/// Adds the handle graph (one rect per run of equal columns) to `mesh`.
pub fn handle_graph(mesh: &mut Mesh, cols: &[u32], max: u32, left: f32, area: Rect, color: Color32) {
    let h = area.height() - 2.0;
    let mut c = 0;
    while c < cols.len() {
        let v = cols[c];
        let mut e = c + 1;
        while e < cols.len() && cols[e] == v {
            e += 1;
        }
        if v > 0 {
            let top = area.bottom() - (v as f32 / max.max(1) as f32) * h;
            let r = Rect::from_min_max(
                Pos2::new(left + c as f32, top.min(area.bottom() - 1.0)),
                Pos2::new(left + e as f32, area.bottom()),
            );
            mesh.add_colored_rect(r.intersect(area), color);
        }
        c = e;
    }
}

pub fn outcome_color(o: PipeOutcome) -> Color32 {
    match o {
        PipeOutcome::Busy => COLOR_BUSY,
        PipeOutcome::NotFound => COLOR_NOT_FOUND,
        PipeOutcome::Other => COLOR_OTHER_FAIL,
        _ => COLOR_OPEN_OK,
    }
}

pub fn system_color(kind: SystemEventKind) -> Color32 {
    if is_crash(kind) {
        COLOR_SYS_CRASH
    } else if kind.is_pipe() {
        COLOR_SYS_PIPE
    } else if is_tcp(kind) {
        COLOR_SYS_TCP
    } else {
        COLOR_SYS_OTHER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed predicates pick the kinds the name matching picked before.
    #[test]
    fn typed_kinds_keep_the_lanes() {
        use crate::analysis::logs::SystemEventKind as K;
        use crate::ingest::evtx::ServiceState;
        let all = [
            K::ServiceCrashed,
            K::ServiceState(ServiceState::Stopped),
            K::EventLogStarted,
            K::EventLogStopped,
            K::UnexpectedShutdown,
            K::OsStarted,
            K::OsStopped,
            K::AppCrash,
            K::DotNetUnhandled,
            K::PipeCreated,
            K::PipeConnected,
            K::NetworkConnect,
            K::TcpipAccept,
            K::TcpipConnect,
            K::TcpipConnectFailed,
            K::TcpipAbort,
            K::TcpipDisconnect,
            K::TcpipConnectTimeout,
            K::TcpipRetransmitTimeout,
            K::TcpipKeepaliveTimeout,
            K::TcpipDisconnectTimeout,
            K::TcpipReconnect,
            K::TcpipRetransmit,
            K::ProcmonTcpConnect,
            K::ProcmonTcpAccept,
            K::ProcmonTcpDisconnect,
            K::ProcmonTcpReconnect,
            K::ProcmonTcpRetransmit,
        ];
        for k in all {
            let n = k.name();
            let crash = ["crash", "fail", "error", "terminated"].iter().any(|w| n.contains(w));
            assert_eq!(is_crash(k), crash, "{n}");
            assert_eq!(is_tcp(k), n.contains("tcp"), "{n}");
            assert_eq!(k.is_pipe(), n.starts_with("pipe"), "{n}");
        }
    }

    #[test]
    fn columns_cover_every_visible_event_once() {
        let ts: Vec<i64> = (0..10_000).map(|i| i * 7).collect();
        let mut n = 0;
        for_columns(&ts, 700, 7000, 50.0, |i, j| {
            assert!(j > i);
            n += j - i;
        });
        assert_eq!(n, ts.iter().filter(|&&t| (700..=7000).contains(&t)).count());
    }

    #[test]
    fn column_max_keeps_the_peak() {
        let h_ts = vec![10, 11, 12, 50];
        let h_val = vec![1, 9, 2, 0];
        let cols = column_max(&h_ts, &h_val, 0, 20.0, 4);
        assert_eq!(cols[0], 9);
        assert_eq!(cols[1], 2);
        assert_eq!(cols[2], 2);
    }
}
