//! Wiring: open each input, stream it through the matching reader into the analysis,
//! then run the detectors. The CLI and the GUI both call `analyze_paths`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Receives progress; `cancelled` is polled so that a GUI can stop a long load.
pub trait ProgressSink {
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
    let listing = inputs::list(paths);
    let mut analysis = analyze_sources(listing.sources, options, progress);
    analysis.skipped = listing.skipped;
    analysis
}

/// Like `analyze_paths`, for files or in-memory inputs.
pub fn analyze_sources(sources: Vec<Source>, options: &Options, progress: &dyn ProgressSink) -> Analysis {
    let mut analysis = Analysis::default();
    let mut next_conn_id = 0u64;
    let count = sources.len();
    // Per-packet facts for matching are kept only when a second capture is given.
    let keep_packet_facts = sources.iter().filter(|s| s.may_be_capture()).count() > 1;
    // Process Monitor CSVs wait for every other input: their clock is aligned against them.
    let mut pending_csv = Vec::new();
    progress.phase(Phase::Reading);
    for (index, source) in sources.into_iter().enumerate() {
        if progress.cancelled() {
            analysis.inputs.push(InputSummary {
                path: source.name().display().to_string(),
                error: Some("not read: loading was cancelled".into()),
                ..Default::default()
            });
            continue;
        }
        let input = index as u32;
        let summary = read_one(
            input,
            index,
            count,
            source,
            &mut analysis,
            &mut next_conn_id,
            &mut pending_csv,
            progress,
            keep_packet_facts,
            options,
        );
        analysis.inputs.push(summary);
    }
    progress.phase(Phase::Analysing);
    procmon::finish_csvs(&mut analysis, options, pending_csv);
    twosided::align(&mut analysis, options);
    attribution::attribute(&mut analysis);
    detect::run_all(&mut analysis, options);
    twosided::merge_view_findings(&mut analysis);
    attribution::annotate_findings(&mut analysis);
    correlate::run(&mut analysis, options);
    correlate::attach_system_events(&mut analysis);
    analysis
}

fn read_one(
    input: u32,
    index: usize,
    count: usize,
    source: Source,
    analysis: &mut Analysis,
    next_conn_id: &mut u64,
    pending_csv: &mut Vec<procmon::PendingCsv>,
    progress: &dyn ProgressSink,
    keep_packet_facts: bool,
    options: &Options,
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
                &report,
                progress,
                analysis,
                next_conn_id,
                &mut summary,
                keep_packet_facts,
                options,
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
