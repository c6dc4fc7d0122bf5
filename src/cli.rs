//! Command-line arguments and the batch command. Parsing and wiring only.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use ipcscope::analysis::{Analysis, Options};
use ipcscope::pipeline::{self, Phase, Progress, ProgressSink};
use ipcscope::report;

#[derive(Parser, Debug)]
#[command(
    name = "ipcscope",
    version,
    about = "Why did these Windows processes stop talking? TCP and named-pipe forensics.",
    after_help = ANALYZE_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Files to open in the desktop app.
    pub files: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse captures (pcap, pcapng, gzip), ETW traces (.etl), event logs (.evtx), Process Monitor
    /// logs (.pml, CSV) and text logs together on one clock, and write findings.
    #[command(after_help = ANALYZE_HELP)]
    Analyze(AnalyzeArgs),
    /// Print the TCP analysis of every frame of one capture (frame, stream, flags), as
    /// `tshark -T fields -e frame.number -e tcp.stream -e tcp.analysis.flags` would.
    Frames { file: PathBuf },
}

/// Printed after `ipcscope analyze --help`: every input format and every output file.
const ANALYZE_HELP: &str = "\
Inputs (recognised by content, not by name; gzip-compressed files are read through):
  pcap, pcapng           packet captures (Wireshark, tcpdump, dumpcap, pktmon pcapng)
  .etl                   ETW traces (netsh trace, pktmon: NDIS packets and TCP/IP events)
  .evtx                  Windows event logs (System, Application, Sysmon, ...)
  .pml, Procmon CSV      Process Monitor logs (pipe opens and closes, TCP events with processes)
  text logs              application logs with timestamps (ERROR lines are linked to findings)
  FOLDER                 a case folder: walked recursively, every file sniffed, files read in
                         parallel; files of unknown format are listed in summary.json
                         (skipped_inputs); ring-buffer captures (NAME_00001_YYYYMMDDhhmmss.pcapng,
                         or captures whose connections continue from one file into the next) are
                         read as one capture

Outputs written by --out DIR:
  summary.json           inputs, verdicts on the standing questions, findings, counters
  connections.csv        one row per TCP connection
  findings.csv           one row per finding (kind, severity, evidence, advice, Wireshark filter)
  pipes.csv              named-pipe instances and their accounting
  log_events.csv         log lines read (text logs and event logs) and the findings they belong to
  *.parquet              the same four tables as Parquet with --format parquet|both (docs/schema.md;
                         not in builds with --no-default-features)
Written by --html FILE: one self-contained HTML report (no script, no external resource).
Written by --evidence DIR:
  finding-NNNN-KIND.pcapng   per finding, its evidence packets; evidence frames carry a comment

Examples:
  ipcscope analyze server.pcapng app.log --out results/ --html results/report.html
  ipcscope analyze trace.etl System.evtx --log-offset app.log=+01:00 app.log --out results/ --quiet
";

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Input files and case folders, recognised by content.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Tables written by --out: csv, parquet or both.
    #[arg(long, default_value = "csv", value_parser = parse_format)]
    pub format: report::Format,
    /// Write summary.json, connections.csv, findings.csv, pipes.csv and log_events.csv into this
    /// folder (without it, a summary is printed).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write one pcapng per finding into this folder: the packets of its evidence connections,
    /// each evidence frame commented with the finding (Wireshark: frame.comment).
    #[arg(long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
    /// Write a self-contained HTML report (inputs, verdicts, findings with timelines) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Keep every packet note of every connection, as the app does (more memory; the same
    /// findings and tables). By default an uneventful connection keeps only its landmarks.
    #[arg(long)]
    pub all_packet_notes: bool,
    /// Client ephemeral port range, e.g. 49152-65535 (Windows' default).
    #[arg(long, value_parser = parse_range)]
    pub ephemeral_range: Option<(u16, u16)>,
    /// TIME_WAIT duration in seconds (Windows' default 240).
    #[arg(long, default_value_t = 240)]
    pub time_wait: u32,
    /// A text log's clock offset, FILE=OFFSET: the log's clock minus UTC, as ±HH:MM[:SS[.f]] or
    /// seconds (e.g. app.log=+01:00, app.log=+3600.8). Repeatable. Without it the offset is
    /// estimated from the network/pipe evidence.
    #[arg(long = "log-offset", value_parser = parse_log_offset)]
    pub log_offsets: Vec<(String, f64)>,
    /// A capture's clock minus the first capture's, in seconds (`server.pcap=+3.217`); estimated
    /// from the packets two captures share when not given.
    #[arg(long = "clock-offset", value_parser = parse_clock_offset, value_name = "FILE=OFFSET")]
    pub clock_offsets: Vec<(String, f64)>,
}

fn parse_clock_offset(s: &str) -> Result<(String, f64), String> {
    let (file, off) = s.rsplit_once('=').ok_or_else(|| format!("expected FILE=SECONDS, got {s:?}"))?;
    let secs: f64 = off.trim().parse().map_err(|_| format!("{off:?} is not a number of seconds"))?;
    if file.is_empty() || !secs.is_finite() || secs.abs() > 1e9 {
        return Err(format!("expected FILE=SECONDS, got {s:?}"));
    }
    Ok((file.to_string(), secs))
}

fn parse_format(s: &str) -> Result<report::Format, String> {
    report::Format::parse(s).ok_or_else(|| format!("{s}: expected csv, parquet or both"))
}

fn parse_log_offset(s: &str) -> Result<(String, f64), String> {
    ipcscope::ingest::textlog::parse_log_offset_arg(s)
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s.split_once('-').ok_or("expected LO-HI, e.g. 49152-65535")?;
    let lo: u16 = lo.trim().parse().map_err(|_| format!("bad port {lo}"))?;
    let hi: u16 = hi.trim().parse().map_err(|_| format!("bad port {hi}"))?;
    if lo > hi {
        return Err(format!("{lo} is above {hi}"));
    }
    Ok((lo, hi))
}

/// Progress on stderr through indicatif, one bar per file while reading, then a spinner naming
/// the phase (analysing, writing).
struct TerminalProgress {
    bar: ProgressBar,
    current: Mutex<Option<usize>>,
}

impl TerminalProgress {
    fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("reading {msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        TerminalProgress { bar, current: Mutex::new(None) }
    }
}

impl ProgressSink for TerminalProgress {
    fn phase(&self, phase: Phase) {
        if phase == Phase::Reading {
            return;
        }
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.bar.set_message(match phase {
            Phase::Analysing => "analysing: sessions, detectors, correlation…",
            _ => "writing outputs…",
        });
        self.bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }

    fn report(&self, p: &Progress) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if *cur != Some(p.file_index) {
            *cur = Some(p.file_index);
            self.bar.set_length(p.bytes_total);
            self.bar.set_position(0);
            self.bar.set_message(format!(
                "[{}/{}] {}",
                p.file_index + 1,
                p.file_count,
                p.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            ));
        }
        self.bar.set_position(p.bytes_done.min(p.bytes_total));
    }
}

/// Runs `ipcscope analyze`; returns the process exit code.
pub fn analyze(args: AnalyzeArgs) -> Result<i32> {
    for f in &args.files {
        if !f.exists() {
            bail!("{}: no such file or folder", f.display());
        }
    }
    let options = Options {
        ephemeral_range: args.ephemeral_range.unwrap_or((49152, 65535)),
        ephemeral_range_given: args.ephemeral_range.is_some(),
        time_wait_s: args.time_wait,
        log_offsets: args.log_offsets.clone(),
        clock_offsets: args.clock_offsets.clone(),
        keep_all_packet_notes: args.all_packet_notes,
        ..Options::default()
    };
    let terminal = (!args.quiet && std::io::stderr().is_terminal()).then(TerminalProgress::new);
    let sink: &dyn ProgressSink = match &terminal {
        Some(t) => t,
        None => &pipeline::NoProgress,
    };
    // connections.csv is final before the findings: it is written while the detectors run, and
    // renamed into place with the other outputs (a run that fails later replaces none of them).
    let format = args.format;
    let write_connections =
        args.out.as_deref().map(|dir| move |a: &Analysis| report::write_connections_unrenamed(a, dir, format));
    let hook: Option<pipeline::WhileDetecting<_>> = write_connections.as_ref().map(|f| f as _);
    let (analysis, connections) = pipeline::analyze_paths_with(&args.files, &options, sink, hook);
    if args.out.is_some() || args.evidence.is_some() || args.html.is_some() {
        sink.phase(Phase::Writing);
    }
    let written = connections.unwrap_or(Ok(Vec::new())).and_then(|c| write_outputs(&args, &analysis, c));
    if let Some(t) = &terminal {
        t.bar.finish_and_clear();
    }
    for line in written? {
        eprintln!("{line}");
    }
    for i in &analysis.inputs {
        if let Some(e) = &i.error {
            eprintln!("error: {e}");
        }
    }
    if !analysis.skipped.is_empty() && !args.quiet {
        eprintln!(
            "{} files in the folders given were not read (see skipped_inputs in summary.json)",
            analysis.skipped.len()
        );
    }
    match &args.out {
        Some(dir) if !args.quiet => eprintln!(
            "{} connections, {} findings written to {}",
            analysis.connections.len(),
            analysis.findings.len(),
            dir.display()
        ),
        Some(_) => {}
        None if args.html.is_some() || args.evidence.is_some() => {}
        None => print!("{}", report::summary::human_summary(&analysis)),
    }
    // 2: an input was damaged (partial results were still written).
    Ok(if analysis.any_input_error() { 2 } else { 0 })
}

/// Writes the files asked for on the command line.
fn write_outputs(args: &AnalyzeArgs, analysis: &Analysis, connections: Vec<report::Unrenamed>) -> Result<Vec<String>> {
    // Messages are returned, to be printed once the progress line is cleared.
    let mut said = Vec::new();
    if let Some(dir) = &args.out {
        // The connection table was written during the analysis (`analyze`).
        report::rename_all_into_place(connections)?;
        report::write_all_but_connections(analysis, dir, args.format)?;
    }
    if let Some(file) = &args.html {
        let (dir, name) = split_output_path(file)?;
        report::write_atomic(&dir, &name, |w| report::html::write_html(analysis, w))?;
    }
    if let Some(dir) = &args.evidence {
        let ev = report::evidence::write_evidence(analysis, dir)?;
        for p in &ev.problems {
            said.push(format!("evidence: {p}"));
        }
        if !args.quiet {
            said.push(format!(
                "{} evidence files written to {} ({} findings have no capture packets)",
                ev.files.len(),
                dir.display(),
                ev.without_packets.len()
            ));
        }
    }
    Ok(said)
}

/// A file to write: its folder (created if missing) and name.
fn split_output_path(file: &std::path::Path) -> Result<(PathBuf, String)> {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some(name) = name else { bail!("{}: not a file name", file.display()) };
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    Ok((dir, name))
}

/// Runs `ipcscope frames FILE`.
pub fn frames(file: &std::path::Path) -> Result<i32> {
    use std::io::Write;
    let (frames, error) = pipeline::frame_analysis(file).map_err(anyhow::Error::msg)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for f in frames {
        writeln!(
            out,
            "{}\t{}\t{:#04x}\t{}",
            f.frame,
            f.conn_id,
            f.flags,
            ipcscope::model::analysis_flags::describe(f.analysis)
        )?;
    }
    out.flush()?;
    if let Some(e) = error {
        eprintln!("error: {e}");
        return Ok(2);
    }
    Ok(0)
}
