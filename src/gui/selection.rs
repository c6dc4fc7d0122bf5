//! What the user selected (finding, connection, pipe and open, log line), which pane has focus, and
//! what the selected finding highlights on the timeline.

use super::session::Session;
use super::timeline::{Highlights, TimelineView};
use crate::analysis::Analysis;

/// What the details pane shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DetailsFocus {
    #[default]
    Finding,
    Connection,
    Pipe,
    LogLine,
}

/// The selection and its highlights; changed only through the `select_*` methods.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Index in `Analysis::findings`.
    pub finding: Option<usize>,
    /// Index in `Analysis::connections`.
    pub connection: Option<usize>,
    pub focus: DetailsFocus,
    /// Connection indices of the selected finding, sorted.
    pub finding_connections: Vec<usize>,
    /// (global row, time) of the selected finding's evidence frames.
    pub evidence_marks: Vec<(u32, i64)>,
    /// (input, frame) of the selected finding's evidence.
    pub evidence_frames: Vec<(u32, u64)>,
    /// Index in `Analysis::pipes`, and of the open in its `events`.
    pub pipe: Option<usize>,
    pub open: Option<usize>,
    /// Index in `Analysis::log_events`.
    pub log: Option<usize>,
    /// Opens highlighted for the selected finding: (pipe, event) indices.
    pub pipe_marks: Vec<(usize, usize)>,
    /// Log lines highlighted for the selected finding (indices in `Analysis::log_events`).
    pub log_marks: Vec<usize>,
}

impl Selection {
    /// Selects a finding (index in `Analysis::findings`): zooms to it and highlights its evidence.
    pub fn select_finding(&mut self, s: &Session, timeline: &mut TimelineView, index: usize) {
        let Some(f) = s.analysis.findings.get(index) else { return };
        self.finding = Some(index);
        self.focus = DetailsFocus::Finding;
        let mut conns: Vec<usize> = f.connections.iter().filter_map(|id| s.model.conn_index.get(id).copied()).collect();
        conns.sort_unstable();
        conns.dedup();
        let evidence: Vec<(u32, u64)> = f.evidence.iter().map(|e| (e.input, e.frame)).collect();
        let mut marks = Vec::new();
        for &ci in &conns {
            let c = &s.analysis.connections[ci];
            for p in c.packets() {
                if evidence.contains(&(c.input, p.frame)) {
                    marks.push((s.model.conn_row.get(ci).copied().unwrap_or(0), p.ts));
                }
            }
        }
        timeline.zoom_to(&s.model, f.first_ts, f.last_ts);
        if let Some(row) = conns.iter().filter_map(|&ci| s.model.conn_row.get(ci).copied()).min() {
            timeline.scroll_to_row(row);
        }
        self.connection = conns.first().copied();
        self.finding_connections = conns;
        self.evidence_marks = marks;

        // A pipe finding: its pipe's lane and the opens among the evidence records.
        self.pipe_marks.clear();
        self.pipe = None;
        self.open = None;
        if !f.pipe.is_empty() {
            let in_evidence: Vec<usize> =
                s.analysis.pipes.iter().enumerate().filter(|(_, p)| p.name == f.pipe).map(|(i, _)| i).collect();
            for &pi in &in_evidence {
                let p = &s.analysis.pipes[pi];
                for (ei, e) in p.events.iter().enumerate() {
                    let hit = |r: u64| evidence.contains(&(p.input, r));
                    if hit(e.record) || e.end_record.is_some_and(hit) {
                        self.pipe_marks.push((pi, ei));
                    }
                }
            }
            // The pipe with evidence, else the first of that name.
            let pi = self.pipe_marks.first().map(|m| m.0).or(in_evidence.first().copied());
            if let Some(pi) = pi {
                self.pipe = Some(pi);
                if self.finding_connections.is_empty() {
                    if let Some(lane) = s.model.pipe_lane_of.get(pi).copied().flatten() {
                        let row = s.model.pipe_opens_row[lane as usize].saturating_sub(3);
                        timeline.scroll_to_row(row);
                    }
                }
            }
        }
        // Its log lines: those linked to it, and the lines it references.
        let mut logs: Vec<usize> =
            s.analysis.log_events.iter().enumerate().filter(|(_, e)| e.finding == Some(f.id)).map(|(i, _)| i).collect();
        for l in &f.log_lines {
            let Some(lane) = s.model.log_lanes.iter().find(|x| x.input == l.input) else { continue };
            if let Some(i) = lane.event_at_line(&s.analysis, l.line) {
                logs.push(i);
            }
        }
        logs.sort_unstable();
        logs.dedup();
        // The view also covers the log lines the finding explains (their clocks are corrected,
        // but they may lie a little outside the finding's network/pipe evidence).
        let (mut lo, mut hi) = (f.first_ts, f.last_ts);
        for &i in &logs {
            if let Some(t) = s.analysis.log_events[i].ts {
                lo = lo.min(t);
                hi = hi.max(t);
            }
        }
        if (lo, hi) != (f.first_ts, f.last_ts) {
            timeline.zoom_to(&s.model, lo, hi);
        }
        self.log_marks = logs;
        self.evidence_frames = evidence;
    }

    pub fn select_connection(&mut self, index: usize) {
        self.connection = Some(index);
        self.focus = DetailsFocus::Connection;
    }

    /// Selects a pipe (index in `Analysis::pipes`) and optionally one of its opens.
    pub fn select_pipe(&mut self, pipe: usize, open: Option<usize>) {
        self.pipe = Some(pipe);
        self.open = open;
        self.focus = DetailsFocus::Pipe;
    }

    /// Selects a log line (index in `Analysis::log_events`) if `a` has it.
    pub fn select_log_event(&mut self, a: &Analysis, index: usize) {
        if index < a.log_events.len() {
            self.log = Some(index);
            self.focus = DetailsFocus::LogLine;
        }
    }

    /// Forgets everything selected; the focused pane stays.
    pub fn clear(&mut self) {
        *self = Selection { focus: self.focus, ..Selection::default() };
    }

    /// What the timeline highlights this frame.
    pub fn highlights(&self) -> Highlights<'_> {
        Highlights {
            selected_connection: self.connection,
            finding_connections: &self.finding_connections,
            evidence_marks: &self.evidence_marks,
            selected_finding: self.finding,
            selected_pipe: self.pipe,
            pipe_marks: &self.pipe_marks,
            log_marks: &self.log_marks,
            selected_log: self.log,
        }
    }
}
