//! Wiring: open each input, stream it through the matching reader into the analysis,
//! then run the detectors. The CLI and the GUI both call `analyze_paths`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

mod etl;
pub mod inputs;
mod logs;
mod pcap;
mod procmon;

use crate::analysis::smb::SmbAnalyzer;
use crate::analysis::tcp::TcpAnalyzer;
use crate::analysis::{attribution, correlate, detect, twosided, Analysis, InputSummary, Options};
use crate::ingest::{self, InputKind};

/// Progress of a run, reported now and then.
#[derive(Clone, Debug)]
pub struct Progress {
    pub file_index: usize,
    pub file_count: usize,
    pub path: PathBuf,
    /// Bytes of this file read from disk so far, and its size.
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// What a run is doing, so that progress does not sit at 100 % while detectors and writers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading inputs (byte progress follows through `report`).
    Reading,
    /// Sessions are closed; detectors and correlation run (no byte measure).
    Analysing,
    /// The caller writes outputs (reported by the caller, not by the pipeline).
    Writing,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Reading => "reading",
            Phase::Analysing => "analysing",
            Phase::Writing => "writing",
        }
    }
}

/// Receives progress; `cancelled` is polled so that a GUI can stop a long load. Inputs read in
/// parallel report from their reading threads, hence `Sync`.
pub trait ProgressSink: Sync {
    fn report(&self, p: &Progress);
    /// A new phase begins. Default: ignored.
    fn phase(&self, _phase: Phase) {}
    fn cancelled(&self) -> bool {
        false
    }
}

/// A sink that ignores progress.
pub struct NoProgress;
impl ProgressSink for NoProgress {
    fn report(&self, _: &Progress) {}
}

/// A sink that only carries a cancel flag.
impl ProgressSink for AtomicBool {
    fn report(&self, _: &Progress) {}
    fn cancelled(&self) -> bool {
        self.load(Ordering::Relaxed)
    }
}

/// An input: a file, or bytes already in memory (tests, fuzzing, drag-and-drop of data), or
/// (`Ring`) ring-buffer capture files that continue each other, read as one capture.
#[derive(Debug)]
pub enum Source {
    File(PathBuf),
    Memory { name: String, bytes: Vec<u8> },
    Ring(Vec<PathBuf>),
}

impl Source {
    /// Whether this input is (or, compressed in memory, may be) a packet capture; a cheap look at
    /// its first bytes.
    fn may_be_capture(&self) -> bool {
        match self {
            Source::File(p) => {
                ingest::open(p).map(|o| matches!(o.kind, InputKind::Pcap | InputKind::PcapNg)).unwrap_or(false)
            }
            Source::Memory { bytes, .. } => {
                bytes.starts_with(&[0x1f, 0x8b]) || matches!(ingest::sniff(bytes), InputKind::Pcap | InputKind::PcapNg)
            }
            // Ring files are grouped only when they are captures.
            Source::Ring(_) => true,
        }
    }

    fn name(&self) -> PathBuf {
        match self {
            Source::File(p) => p.clone(),
            Source::Memory { name, .. } => PathBuf::from(name),
            Source::Ring(files) => files.first().cloned().unwrap_or_default(),
        }
    }
}

/// Reads every input in order (one clock: all timestamps are UTC) and analyses them. Folders are
/// walked (see [`inputs`]); ring-buffer capture files are read as one capture.
pub fn analyze_paths(paths: &[PathBuf], options: &Options, progress: &dyn ProgressSink) -> Analysis {
    analyze_paths_with::<()>(paths, options, progress, None).0
}

/// Work on the finished connection table, run while the detectors run on another core (the batch
/// mode writes connections.csv there). Nothing changes the table after that point.
pub type WhileDetecting<'a, T> = &'a (dyn Fn(&Analysis) -> T + Sync);

/// `analyze_paths`, with `while_detecting` run on the connection table as soon as it is final;
/// returns what it returned too.
pub fn analyze_paths_with<T: Send>(
    paths: &[PathBuf],
    options: &Options,
    progress: &dyn ProgressSink,
    while_detecting: Option<WhileDetecting<T>>,
) -> (Analysis, Option<T>) {
    let listing = inputs::list(paths);
    let (mut analysis, done) = analyze_sources_with(listing.sources, options, progress, while_detecting);
    analysis.skipped = listing.skipped;
    (analysis, done)
}

/// Like `analyze_paths`, for files or in-memory inputs.
pub fn analyze_sources(sources: Vec<Source>, options: &Options, progress: &dyn ProgressSink) -> Analysis {
    analyze_sources_with::<()>(sources, options, progress, None).0
}

fn analyze_sources_with<T: Send>(
    sources: Vec<Source>,
    options: &Options,
    progress: &dyn ProgressSink,
    while_detecting: Option<WhileDetecting<T>>,
) -> (Analysis, Option<T>) {
    let mut analysis = Analysis::default();
    let count = sources.len();
    // Per-packet facts for matching are kept only when a second capture is given.
    let keep_packet_facts = sources.iter().filter(|s| s.may_be_capture()).count() > 1;
    // Process Monitor CSVs wait for every other input: their clock is aligned against them.
    let mut pending_csv = Vec::new();
    progress.phase(Phase::Reading);
    let workers = match options.parallel_inputs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(count);
    if workers <= 1 {
        read_sequential(sources, options, progress, keep_packet_facts, &mut analysis, &mut pending_csv);
    } else {
        read_parallel(sources, options, progress, keep_packet_facts, workers, &mut analysis, &mut pending_csv);
    }
    progress.phase(Phase::Analysing);
    procmon::finish_csvs(&mut analysis, options, pending_csv);
    twosided::align(&mut analysis, options);
    attribution::attribute(&mut analysis);
    // The connection table is final here: the detectors only read it, and so may a writer.
    let (detected, done) = std::thread::scope(|s| {
        let side = while_detecting.map(|work| s.spawn(|| work(&analysis)));
        let detected = detect::detect_all(&analysis, options);
        let done = side.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        (detected, done)
    });
    detected.store(&mut analysis);
    twosided::merge_view_findings(&mut analysis);
    attribution::annotate_findings(&mut analysis);
    correlate::run(&mut analysis, options);
    correlate::attach_system_events(&mut analysis);
    (analysis, done)
}

/// The summary of an input not read because the user cancelled.
fn cancelled_summary(source: &Source) -> InputSummary {
    InputSummary {
        path: source.name().display().to_string(),
        error: Some("not read: loading was cancelled".into()),
        ..Default::default()
    }
}

/// One input after another into the run's analysis (`parallel_inputs` 1, or a single input).
fn read_sequential(
    sources: Vec<Source>,
    options: &Options,
    progress: &dyn ProgressSink,
    keep_packet_facts: bool,
    analysis: &mut Analysis,
    pending_csv: &mut Vec<procmon::PendingCsv>,
) {
    let count = sources.len();
    let mut next_conn_id = 0u64;
    for (index, source) in sources.into_iter().enumerate() {
        if progress.cancelled() {
            analysis.inputs.push(cancelled_summary(&source));
            continue;
        }
        let input = index as u32;
        let summary = read_one(
            input,
            index,
            count,
            source,
            options,
            analysis,
            &mut next_conn_id,
            pending_csv,
            progress,
            keep_packet_facts,
        );
        analysis.inputs.push(summary);
    }
}

/// One input read on its own, waiting to be merged in input order.
struct Partial {
    analysis: Analysis,
    summary: InputSummary,
    pending_csv: Vec<procmon::PendingCsv>,
}

/// Which inputs workers may start: input `next` is handed out only while fewer than `workers`
/// inputs are being read or wait for their merge (memory stays bounded whatever the input count).
struct Window {
    next: usize,
    merged: usize,
    /// A reader panicked: the others stop taking inputs (the scope then re-raises the panic
    /// instead of waiting for a merge that cannot come).
    aborted: bool,
}

/// Marks the window aborted when its reader thread unwinds.
struct AbortOnPanic<'a>(&'a Mutex<Window>, &'a Condvar);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).aborted = true;
            self.1.notify_all();
        }
    }
}

/// Progress of parallel readers: only the earliest input still being read reports, so that the
/// file index shown only moves forward and the bytes shown belong to that file. A later input's
/// latest report is held and passed on when the inputs before it are done.
struct EarliestReports<'a> {
    inner: &'a dyn ProgressSink,
    state: Mutex<Earliest>,
}

struct Earliest {
    earliest: usize,
    done: Vec<bool>,
    held: Vec<Option<Progress>>,
}

impl EarliestReports<'_> {
    fn new(inner: &dyn ProgressSink, count: usize) -> EarliestReports<'_> {
        EarliestReports {
            inner,
            state: Mutex::new(Earliest { earliest: 0, done: vec![false; count], held: vec![None; count] }),
        }
    }

    fn finished(&self, index: usize) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.done[index] = true;
        while st.earliest < st.done.len() && st.done[st.earliest] {
            let i = st.earliest;
            if let Some(p) = st.held[i].take() {
                self.inner.report(&p);
            }
            st.earliest += 1;
        }
        let i = st.earliest;
        if let Some(p) = st.held.get_mut(i).and_then(Option::take) {
            self.inner.report(&p);
        }
    }
}

impl ProgressSink for EarliestReports<'_> {
    fn report(&self, p: &Progress) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if p.file_index == st.earliest {
            self.inner.report(p);
        } else if let Some(h) = st.held.get_mut(p.file_index) {
            *h = Some(p.clone());
        }
    }
    fn phase(&self, phase: Phase) {
        self.inner.phase(phase);
    }
    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

/// Up to `workers` inputs at once (a capture uses a second thread of its own), each into its own
/// `Partial`, merged in input order so that the result equals `read_sequential`'s.
#[allow(clippy::too_many_arguments)]
fn read_parallel(
    sources: Vec<Source>,
    options: &Options,
    progress: &dyn ProgressSink,
    keep_packet_facts: bool,
    workers: usize,
    analysis: &mut Analysis,
    pending_csv: &mut Vec<procmon::PendingCsv>,
) {
    let count = sources.len();
    let slots: Vec<Mutex<Option<Source>>> = sources.into_iter().map(|s| Mutex::new(Some(s))).collect();
    let window = Mutex::new(Window { next: 0, merged: 0, aborted: false });
    let moved = Condvar::new();
    let reports = EarliestReports::new(progress, count);
    let (tx, rx) = mpsc::channel::<(usize, Partial)>();
    let mut next_conn_id = 0u64;
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (slots, window, moved, reports) = (&slots, &window, &moved, &reports);
            s.spawn(move || loop {
                let _abort = AbortOnPanic(window, moved);
                let index = {
                    let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
                    while !w.aborted && w.next < count && w.next >= w.merged + workers {
                        w = moved.wait(w).unwrap_or_else(|e| e.into_inner());
                    }
                    if w.aborted || w.next >= count {
                        return;
                    }
                    w.next += 1;
                    w.next - 1
                };
                let Some(source) = slots[index].lock().unwrap_or_else(|e| e.into_inner()).take() else {
                    return;
                };
                let mut part = Partial {
                    analysis: Analysis::default(),
                    summary: InputSummary::default(),
                    pending_csv: Vec::new(),
                };
                if reports.cancelled() {
                    part.summary = cancelled_summary(&source);
                } else {
                    // Ids from 0; the merge moves them behind the inputs before this one.
                    let mut ids = 0u64;
                    part.summary = read_one(
                        index as u32,
                        index,
                        count,
                        source,
                        options,
                        &mut part.analysis,
                        &mut ids,
                        &mut part.pending_csv,
                        reports,
                        keep_packet_facts,
                    );
                }
                reports.finished(index);
                if tx.send((index, part)).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut waiting: BTreeMap<usize, Partial> = BTreeMap::new();
        let mut merged = 0usize;
        // Ends when every worker has returned (a worker's panic is re-raised by the scope).
        for (index, part) in rx.iter() {
            waiting.insert(index, part);
            while let Some(part) = waiting.remove(&merged) {
                merge(analysis, &mut next_conn_id, part, pending_csv);
                merged += 1;
                window.lock().unwrap_or_else(|e| e.into_inner()).merged = merged;
                moved.notify_all();
            }
        }
    });
}

/// Appends one input's partial analysis to the run's as reading it sequentially would have: its
/// connection ids (and the facts keyed by them) move behind those of the inputs before it.
fn merge(into: &mut Analysis, next_conn_id: &mut u64, part: Partial, pending_csv: &mut Vec<procmon::PendingCsv>) {
    let Partial { analysis, summary, pending_csv: csvs } = part;
    // Spelled out so that a new field of `Analysis` cannot be forgotten here.
    let Analysis {
        inputs: _,
        mut connections,
        tcp,
        pipes,
        logs,
        log_events,
        system_events,
        mut socket_owners,
        packet_drops,
        findings: _,
        resets: _,
        verdicts: _,
        smb,
        twosided,
        skipped: _,
    } = analysis;
    let offset = *next_conn_id;
    *next_conn_id += connections.len() as u64;
    let mut facts = twosided.facts;
    if offset > 0 {
        for c in &mut connections {
            c.id += offset;
        }
        facts = facts.into_iter().map(|(id, f)| (id + offset, f)).collect();
    }
    if into.connections.is_empty() {
        // The first capture's table is taken as it is: no second copy of a million records.
        into.connections = connections;
    } else {
        into.connections.extend(connections);
    }
    into.twosided.facts.extend(facts);
    into.tcp.add(&tcp);
    into.pipes.extend(pipes);
    into.logs.extend(logs);
    into.log_events.extend(log_events);
    into.system_events.extend(system_events);
    if summary.format == InputKind::Evtx.name() {
        // An event log adds owners only while the run's list is under its bound (logs::read_evtx).
        socket_owners.truncate(etl::MAX_SOCKET_OWNERS.saturating_sub(into.socket_owners.len()));
    }
    into.socket_owners.extend(socket_owners);
    into.packet_drops.extend(packet_drops);
    into.smb.ops.extend(smb.ops);
    into.smb.counts.add(&smb.counts);
    pending_csv.extend(csvs);
    into.inputs.push(summary);
}

#[allow(clippy::too_many_arguments)]
fn read_one(
    input: u32,
    index: usize,
    count: usize,
    source: Source,
    options: &Options,
    analysis: &mut Analysis,
    next_conn_id: &mut u64,
    pending_csv: &mut Vec<procmon::PendingCsv>,
    progress: &dyn ProgressSink,
    keep_packet_facts: bool,
) -> InputSummary {
    let name = source.name();
    let path = name.as_path();
    let mut summary = InputSummary { path: path.display().to_string(), ..Default::default() };
    let opened = match source {
        Source::File(p) => ingest::open(&p),
        Source::Memory { bytes, .. } => ingest::open_bytes(bytes),
        Source::Ring(files) => {
            summary.ring_files = files.clone();
            ingest::ring::open_ring(&files)
        }
    };
    let opened = match opened {
        Ok(o) => o,
        Err(e) => {
            summary.error = Some(format!("{}: cannot open: {e}", path.display()));
            return summary;
        }
    };
    let total = opened.file_len;
    let counter = opened.disk_read.clone();
    let report = |done: u64| {
        progress.report(&Progress {
            file_index: index,
            file_count: count,
            path: path.to_path_buf(),
            bytes_done: done,
            bytes_total: total,
        })
    };
    report(0);
    summary.format = opened.kind.name().to_string();
    match opened.kind {
        InputKind::Pcap | InputKind::PcapNg => {
            pcap::read_pcap(
                input,
                opened,
                path,
                options,
                &report,
                progress,
                analysis,
                next_conn_id,
                &mut summary,
                keep_packet_facts,
            );
        }
        InputKind::Etl => {
            let tcp = TcpAnalyzer::new(*next_conn_id).keep_all_notes(options.keep_all_packet_notes);
            etl::read_etl(input, opened.reader, path, analysis, tcp, next_conn_id, &mut summary, &|| {
                report(counter.load(Ordering::Relaxed));
                !progress.cancelled()
            });
        }
        InputKind::TextLog => {
            logs::read_text_log(input, opened.reader, path, analysis, &mut summary, &|| {
                report(counter.load(Ordering::Relaxed));
                !progress.cancelled()
            });
        }
        InputKind::Evtx => {
            logs::read_evtx(input, opened.reader, opened.gzip || !opened.on_disk, path, analysis, &mut summary)
        }
        InputKind::ProcmonPml => {
            procmon::read_pml(input, opened.reader, opened.on_disk, path, analysis, &mut summary, &|| {
                report(counter.load(Ordering::Relaxed));
                !progress.cancelled()
            });
        }
        InputKind::ProcmonCsv => {
            procmon::read_csv(input, opened.reader, path, &mut summary, pending_csv, &|| {
                report(counter.load(Ordering::Relaxed));
                !progress.cancelled()
            });
        }
        InputKind::Empty => {
            summary.error = Some(format!("{}: empty file", path.display()));
        }
        InputKind::Unknown => {
            summary.error = Some(format!("{}: binary file of an unknown format; not read", path.display()));
        }
    }
    report(total);
    summary
}

/// SMB pipe opens of one capture into the run: pipes (source smb), ops and counts.
fn add_smb(smb: SmbAnalyzer, analysis: &mut Analysis, summary: &mut InputSummary) {
    let (pipes, ops, counts) = smb.finish();
    if counts.smb1_messages + counts.smb2_messages + counts.encrypted_messages > 0 {
        summary.extra = crate::analysis::inputs::FormatStats::Capture(crate::analysis::inputs::CaptureStats {
            smb_pipe_opens: counts.pipe_opens,
            smb_encrypted_sessions: (counts.encrypted_sessions > 0).then_some(counts.encrypted_sessions),
        });
    }
    analysis.pipes.extend(pipes);
    analysis.smb.ops.extend(ops);
    analysis.smb.counts.add(&counts);
}

/// One TCP frame's analysis, as Wireshark's `tcp.analysis.flags` would list it.
#[derive(Clone, Debug)]
pub struct FrameAnalysis {
    pub frame: u64,
    pub conn_id: u64,
    pub flags: u8,
    pub analysis: u32,
}

/// Per-frame TCP analysis of one capture, for checking against `tshark -T fields`.
pub fn frame_analysis(path: &Path) -> Result<(Vec<FrameAnalysis>, Option<String>), String> {
    let opened = ingest::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !matches!(opened.kind, InputKind::Pcap | InputKind::PcapNg) {
        return Err(format!("{}: not a capture", path.display()));
    }
    let mut tcp = TcpAnalyzer::new(0);
    let mut out = Vec::new();
    let (_, error) = ingest::pcap::read_capture(
        0,
        opened.reader,
        opened.kind == InputKind::PcapNg,
        &mut |seg| {
            let analysis = tcp.process(&seg);
            out.push(FrameAnalysis { frame: seg.frame, conn_id: tcp.last_connection(), flags: seg.flags, analysis });
        },
        &mut |_| true,
    );
    Ok((out, error.map(|e| e.to_string())))
}
