//! Headless tests of the desktop app (egui_kittest): loading through the worker thread,
//! findings, selection and zoom, copy filter, damaged inputs, export.

mod common;

use ipcscope as app;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use app::analysis::Analysis;
use app::gui::export::Table;
use app::gui::{findings, GuiApp};
use app::model::{tcp_flags, EvidenceRef, Finding, FindingKind, LogLineRef, Severity};
use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("IPCSCOPE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    if dir.join("pcap").is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: corpus not found at {} (set IPCSCOPE_CORPUS)", dir.display());
        None
    }
}

fn harness(app: GuiApp) -> Harness<'static, GuiApp> {
    Harness::builder()
        .with_size(egui::Vec2::new(1500.0, 950.0))
        .with_max_steps(20)
        // Findings and log lines may hold any Unicode; the app adds system fallback fonts at run time.
        .allow_missing_glyphs()
        .build_ui_state(|ui, app: &mut GuiApp| app.show(ui), app)
}

/// Steps frames until the worker thread has delivered (the UI keeps running meanwhile).
fn wait_loaded(h: &mut Harness<'static, GuiApp>) {
    let start = Instant::now();
    h.step();
    while h.state().is_loading() {
        assert!(start.elapsed() < Duration::from_secs(120), "loading did not finish");
        std::thread::sleep(Duration::from_millis(10));
        h.step();
    }
    h.run();
}

/// A finding on the connection that best shows a reset (hand-made while detectors are young).
fn reset_finding(a: &Analysis) -> Option<Finding> {
    let c = a
        .connections
        .iter()
        .filter(|c| c.packets().any(|p| p.flags & tcp_flags::RST != 0))
        .min_by_key(|c| c.last_ts - c.first_ts)
        .or_else(|| a.connections.first())?;
    let rst = c.packets().find(|p| p.flags & tcp_flags::RST != 0).map(|p| p.frame).unwrap_or(c.last_frame);
    Some(Finding {
        id: a.findings.len() as u64 + 1,
        kind: FindingKind::AbortiveClose,
        severity: Severity::Error,
        first_ts: c.first_ts,
        last_ts: c.last_ts,
        client: c.client.to_string(),
        server: c.server.to_string(),
        pipe: String::new(),
        pid: String::new(),
        count: 1,
        evidence: vec![EvidenceRef { input: c.input, frame: rst }],
        wireshark_filter: format!("tcp.port == {} && tcp.flags.reset == 1", c.client.port),
        log_lines: vec![LogLineRef { input: c.input, line: 12 }],
        summary: format!("connection {} was reset", c.id),
        advice: "check the server's logs at this time".into(),
        connections: vec![c.id],
    })
}

/// Loads `name` from the corpus through the app, and makes sure it has at least one finding.
fn loaded_with_finding(name: &str) -> Option<Harness<'static, GuiApp>> {
    let path = corpus()?.join("pcap").join(name);
    let mut h = harness(GuiApp::new(vec![path]));
    wait_loaded(&mut h);
    let a = h.state().analysis().expect("analysis after load").clone();
    assert_eq!(a.inputs.len(), 1);
    assert!(a.inputs[0].error.is_none(), "unexpected input error: {:?}", a.inputs[0].error);
    assert!(!a.connections.is_empty(), "no connections in {name}");
    if a.findings.is_empty() {
        let mut a = a;
        let f = reset_finding(&a).expect("a connection");
        a.findings.push(f);
        h.state_mut().set_analysis(a);
        h.run();
    }
    Some(h)
}

#[test]
fn loads_capture_and_lists_findings_in_order() {
    let Some(h) = loaded_with_finding("zeek_tcp_rst-inject-rae.pcap") else { return };
    let a = h.state().analysis().expect("analysis").clone();
    // Every finding is listed, by its row label; severity order is error, warning, info.
    for f in &a.findings {
        h.get_by_label(&findings::row_label(f));
    }
    let order = findings::display_order(&a);
    for w in order.windows(2) {
        let (x, y) = (&a.findings[w[0]], &a.findings[w[1]]);
        assert!((x.severity, x.first_ts) <= (y.severity, y.first_ts));
    }
    let status = format!("{} connections", a.connections.len());
    assert!(h.query_all_by_label_contains(&status).next().is_some(), "status bar shows counts");
    h.get_by_label("Timeline");
}

#[test]
fn selecting_a_finding_shows_evidence_and_zooms_the_timeline() {
    let Some(mut h) = loaded_with_finding("zeek_http_206_example_b.pcap") else { return };
    let a = h.state().analysis().expect("analysis").clone();
    let before = h.state().visible_range().expect("range");
    let fi = findings::display_order(&a)[0];
    let f = a.findings[fi].clone();
    h.get_by_label(&findings::row_label(&f)).click();
    h.run();
    assert_eq!(h.state().selected_finding(), Some(fi));
    let after = h.state().visible_range().expect("range");
    assert_ne!(before, after, "the timeline did not move");
    assert!(after.0 <= f.first_ts && after.1 >= f.last_ts, "view {after:?} does not cover the finding");
    let evidence = app::report::csv::evidence_text(&a, &f);
    if !evidence.is_empty() {
        h.get_by_label(&format!("Evidence: {evidence}"));
    }
    h.get_by_label(&f.summary);
    for &l in &f.log_lines {
        h.get_by_label(&a.log_line_label(l));
    }
    // Its connections are highlighted and the first is the selected one.
    if let Some(&id) = f.connections.first() {
        let idx = a.connections.iter().position(|c| c.id == id);
        assert_eq!(h.state().selected_connection(), idx);
    }
}

#[test]
fn copy_filter_button_copies_the_wireshark_filter() {
    let Some(mut h) = loaded_with_finding("zeek_http_206_example_b.pcap") else { return };
    let a = h.state().analysis().expect("analysis").clone();
    let fi = findings::display_order(&a)
        .into_iter()
        .find(|&i| !a.findings[i].wireshark_filter.is_empty())
        .expect("a finding with a filter");
    h.get_by_label(&findings::row_label(&a.findings[fi])).click();
    h.run();
    h.get_by_label("Copy Wireshark filter").click();
    h.run();
    assert_eq!(h.state().last_copied(), Some(a.findings[fi].wireshark_filter.as_str()));
}

#[test]
fn damaged_inputs_show_errors_in_the_ui() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("temp dir");
    // A valid pcap global header, then a record header promising more bytes than there are.
    let garbage = dir.path().join("truncated.pcap");
    let mut bytes = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    bytes.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 60, 0, 0, 0, 60, 0, 0, 0, 0xde, 0xad]);
    std::fs::write(&garbage, bytes).expect("write");
    let missing = dir.path().join("does-not-exist.pcap");
    let mut files = vec![garbage, missing];
    if let Some(c) = &corpus {
        files.push(c.join("pcap/sv_http-mime-truncated_cutshort.pcap"));
    }
    let mut h = harness(GuiApp::new(files.clone()));
    wait_loaded(&mut h);
    let a = h.state().analysis().expect("analysis").clone();
    assert_eq!(a.inputs.len(), files.len());
    let errors = h.state().errors();
    assert!(errors.len() >= 2, "expected errors for the damaged and the missing file: {errors:?}");
    for e in &errors {
        h.get_by_label(&format!("Input error: {e}"));
    }
    // The UI keeps working after the errors.
    h.get_by_label("Timeline");
    h.get_by_label("Reset zoom").click();
    h.run();
}

#[test]
fn adding_files_extends_the_session_on_one_clock() {
    let Some(c) = corpus() else { return };
    let mut h = harness(GuiApp::new(vec![c.join("pcap/zeek_tcp_syn-then-rst.pcap")]));
    wait_loaded(&mut h);
    let first = h.state().analysis().expect("analysis").connections.len();
    h.state_mut().open_files(vec![c.join("pcap/zeek_tcp_single-rst.pcap")]);
    wait_loaded(&mut h);
    let a = h.state().analysis().expect("analysis");
    assert_eq!(a.inputs.len(), 2);
    assert!(a.connections.len() > first);
    assert_eq!(h.state().files().len(), 2);
    assert_eq!(h.state().recent_files().len(), 2);
}

#[test]
fn keyboard_zoom_and_reset() {
    let Some(mut h) = loaded_with_finding("zeek_http_206_example_b.pcap") else { return };
    let (a0, b0) = h.state().visible_range().expect("range");
    h.key_press(egui::Key::Plus);
    h.run();
    let (a1, b1) = h.state().visible_range().expect("range");
    assert!(b1 - a1 < b0 - a0, "+ did not zoom in");
    h.key_press(egui::Key::ArrowRight);
    h.run();
    let (a2, _) = h.state().visible_range().expect("range");
    assert!(a2 > a1, "right arrow did not pan");
    h.get_by_label("Reset zoom").click();
    h.run();
    assert_eq!(h.state().visible_range(), Some((a0, b0)));
    h.get_by_label("Local").click();
    h.run();
    assert_eq!(h.state().tz, app::gui::timefmt::TimeZoneMode::Local);
}

#[test]
fn export_writes_the_batch_csv_tables() {
    let Some(mut h) = loaded_with_finding("zeek_http_206_example_b.pcap") else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let fpath = dir.path().join("f.csv");
    let cpath = dir.path().join("c.csv");
    assert!(h.state_mut().export_to(Table::Findings, &fpath));
    assert!(h.state_mut().export_to(Table::Connections, &cpath));
    let f = std::fs::read_to_string(&fpath).expect("findings.csv");
    let c = std::fs::read_to_string(&cpath).expect("connections.csv");
    assert_eq!(f.lines().next(), Some(app::report::csv::FINDING_COLUMNS.join(",").as_str()));
    assert_eq!(c.lines().next(), Some(app::report::csv::CONNECTION_COLUMNS.join(",").as_str()));
    let a = h.state().analysis().expect("analysis");
    assert_eq!(c.lines().count(), a.connections.len() + 1);
    h.run();
    assert!(h.query_all_by_label_contains("Exported").count() >= 2, "export result shown");
}

#[test]
fn clicking_a_connection_shows_its_packets() {
    let Some(mut h) = loaded_with_finding("zeek_http_206_example_b.pcap") else { return };
    let a = h.state().analysis().expect("analysis").clone();
    let fi = findings::display_order(&a)[0];
    h.get_by_label(&findings::row_label(&a.findings[fi])).click();
    h.run();
    h.get_by_label("Connection details").click();
    h.run();
    let ci = h.state().selected_connection().expect("a connection is selected");
    let c = &a.connections[ci];
    h.get_by_label(&format!("Connection #{}", c.id));
    h.get_by_label("Analysis");
    // The first kept packet's frame number is listed.
    let p = c.head_tail().0.first().expect("the app keeps every note of a connection");
    assert!(h.query_all_by_label(&p.frame.to_string()).next().is_some());
}

/// A capture of `n` tiny TCP segments on many connections (big enough that loading takes a while).
fn big_capture(n: u32) -> Vec<u8> {
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    for i in 0..n {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 1, 0, 1, 10, 0, 0, 1]);
        f.extend_from_slice(&(49152 + (i % 10000) as u16).to_be_bytes());
        f.extend_from_slice(&445u16.to_be_bytes());
        f.extend_from_slice(&i.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0]);
        for v in [1_700_000_000 + i / 1000, (i % 1000) * 1000, f.len() as u32, f.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&f);
    }
    out
}

#[test]
fn cancelling_a_load_keeps_the_session_and_the_window_alive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.pcap");
    std::fs::write(&path, big_capture(300_000)).expect("write");
    let mut h = harness(GuiApp::new(vec![path]));
    h.step();
    if h.state().is_loading() {
        // The progress bar and Cancel are shown while the worker runs.
        h.get_by_label("Cancel").click();
        h.step();
    }
    wait_loaded(&mut h);
    let cancelled = h.state().messages().iter().any(|m| m.text.contains("cancelled"));
    if cancelled {
        assert!(h.state().analysis().is_none(), "a cancelled first load must not install a session");
        h.get_by_label("Loading was cancelled; the session is unchanged.");
    } else {
        eprintln!("the load finished before the cancel arrived");
        assert!(h.state().analysis().is_some());
    }
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name)
}

#[test]
fn pipe_storm_has_pipe_and_log_lanes_and_pipe_finding_zooms_to_its_opens() {
    let mut h = harness(GuiApp::new(vec![sample("pipes_busy_storm.etl"), sample("pipes_busy_storm_client.log")]));
    wait_loaded(&mut h);
    let a = h.state().analysis().expect("analysis").clone();
    assert!(!a.pipes.is_empty(), "no pipes in the storm sample");
    let lanes = h.state().lanes();
    for p in &a.pipes {
        assert!(lanes.iter().any(|l| l.id == format!("pipe:{}", p.name)), "no lane for {}: {lanes:?}", p.name);
    }
    assert!(lanes.iter().any(|l| l.id == "log:pipes_busy_storm_client.log"), "no log lane: {lanes:?}");
    let fi = a.findings.iter().position(|f| f.kind.name() == "pipe_busy").expect("a pipe_busy finding");
    let f = a.findings[fi].clone();
    // Zoom out first so that selecting has to move the view.
    h.key_press(egui::Key::Minus);
    h.run();
    let before = h.state().visible_range().expect("range");
    h.get_by_label(&findings::row_label(&f)).click();
    h.run();
    assert_eq!(h.state().selected_finding(), Some(fi));
    let after = h.state().visible_range().expect("range");
    assert_ne!(before, after, "the timeline did not move");
    assert!(after.0 <= f.first_ts && after.1 >= f.last_ts, "view {after:?} does not cover the finding");
    assert!(after.1 - after.0 < before.1 - before.0, "view {after:?} is not zoomed in to it");
    // Its pipe lane is selected and its evidence opens are highlighted.
    let pi = h.state().selected_pipe().expect("the finding's pipe is selected");
    assert_eq!(a.pipes[pi].name, f.pipe);
    let opens = h.state().highlighted_opens().to_vec();
    assert!(!opens.is_empty(), "no evidence opens highlighted");
    for &(p, e) in &opens {
        let o = &a.pipes[p].events[e];
        assert!(
            f.evidence.iter().any(|ev| ev.frame == o.record || Some(ev.frame) == o.end_record),
            "open {} is not evidence",
            o.record
        );
    }
    // The details pane lists the opens with their outcomes.
    assert!(h.query_all_by_label_contains("Evidence opens and outcomes").next().is_some());
    // (The legend has one "busy" too.)
    assert!(h.query_all_by_label("busy").count() >= 2, "no busy outcome listed");
    // Its log lines are highlighted.
    if !f.log_lines.is_empty() {
        let hl = h.state().highlighted_log_events().to_vec();
        assert!(!hl.is_empty(), "the finding's log lines are not highlighted");
        assert!(hl.iter().all(|&i| a.log_events[i].finding == Some(f.id)
            || f.log_lines.contains(&LogLineRef { input: a.log_events[i].input, line: a.log_events[i].line })));
    }
    // The whole pipe: counters and the opens in view.
    h.state_mut().select_pipe(pi, None);
    h.run();
    h.get_by_label(&format!("Pipe {}", app::gui::timeline::short_pipe(&f.pipe)));
    assert!(h.query_all_by_label_contains("Opens and outcomes in view").next().is_some());
    assert!(h.query_all_by_label("busy").count() >= 2, "outcomes listed");
}

#[test]
fn selecting_a_log_event_shows_its_text_and_neighbours() {
    let mut h = harness(GuiApp::new(vec![sample("pipes_busy_storm.etl"), sample("pipes_busy_storm_client.log")]));
    wait_loaded(&mut h);
    let a = h.state().analysis().expect("analysis").clone();
    assert!(a.log_events.len() > 10);
    let i = a.log_events.iter().position(|e| e.line > 20).expect("a later log line");
    h.state_mut().select_log_event(i);
    h.run();
    let e = &a.log_events[i];
    h.get_by_label(&format!("Log line pipes_busy_storm_client.log:{}", e.line));
    h.get_by_label(&format!("Text: {}", e.text));
    // Neighbours: the error/warning lines around it, clickable.
    let mut by_line: Vec<&app::analysis::logs::LogEvent> = a.log_events.iter().filter(|x| x.input == e.input).collect();
    by_line.sort_by_key(|x| x.line);
    let k = by_line.iter().position(|x| x.line == e.line).expect("in its file");
    let prev = by_line[k - 1].line;
    h.get_by_label(&prev.to_string()).click();
    h.run();
    let sel = h.state().selected_log_event().expect("a log line is selected");
    assert_eq!(a.log_events[sel].line, prev, "clicking a neighbour selects it");
    h.get_by_label(&format!("Log line pipes_busy_storm_client.log:{prev}"));
}

#[test]
fn local_time_log_marks_are_at_corrected_utc_and_highlighted_for_the_stale_finding() {
    let mut h =
        harness(GuiApp::new(vec![sample("stale_connection.pcap"), sample("stale_connection_client_local.log")]));
    wait_loaded(&mut h);
    let a = h.state().analysis().expect("analysis").clone();
    let name = "stale_connection_client_local.log";
    let lanes = h.state().lanes();
    assert!(lanes.iter().any(|l| l.id == format!("log:{name}")), "no log lane: {lanes:?}");
    let input = a.inputs.iter().position(|i| i.path.ends_with(name)).expect("the log input") as u32;
    let mut want: Vec<i64> = a.log_events.iter().filter(|e| e.input == input).filter_map(|e| e.ts).collect();
    want.sort_unstable();
    assert!(!want.is_empty());
    assert_eq!(h.state().log_mark_times(name), want, "marks are not at the corrected times");
    // The log is in local time (about +01:00): corrected times differ from the written ones.
    let e = a.log_events.iter().find(|e| e.input == input && e.ts.is_some()).expect("a timed line");
    let shift = e.written_ts.expect("written") - e.ts.expect("ts");
    assert!((shift - 3_600_000_000_000).abs() < 5_000_000_000, "offset {shift} ns");
    // Selecting the stale finding highlights its log lines.
    let fi = a
        .findings
        .iter()
        .position(|f| f.kind.name() == "stale_connection" && !f.log_lines.is_empty())
        .expect("a stale finding");
    let f = a.findings[fi].clone();
    h.get_by_label(&findings::row_label(&f)).click();
    h.run();
    let hl = h.state().highlighted_log_events().to_vec();
    assert!(!hl.is_empty());
    let lines: Vec<String> = hl.iter().map(|&i| format!("{name}:{}", a.log_events[i].line)).collect();
    for &l in &f.log_lines {
        let l = a.log_line_label(l);
        assert!(lines.contains(&l), "{l} not highlighted ({lines:?})");
    }
    let (t0, t1) = h.state().visible_range().expect("range");
    assert!(
        hl.iter().all(|&i| a.log_events[i].ts.is_some_and(|t| t >= t0 && t <= t1)),
        "highlighted lines are in view"
    );
}

/// 20k opens on a pipe and a million log lines: frames must not walk them all.
#[test]
fn big_pipe_and_log_lanes_stay_fast() {
    use app::analysis::logs::{LogEvent, LogFile};
    use app::analysis::pipes::{Pipe, PipeOpen, PipeOutcome};
    use app::analysis::InputSummary;
    let t0: i64 = 1_800_000_000_000_000_000;
    let mut a = Analysis::default();
    a.inputs.push(InputSummary { path: "big.etl".into(), format: "etl".into(), ..Default::default() });
    a.inputs.push(InputSummary { path: "big.log".into(), format: "text".into(), ..Default::default() });
    let mut pipe = Pipe {
        input: 0,
        name: "\\Device\\NamedPipe\\big".into(),
        first_ts: t0,
        last_ts: t0 + 600_000_000_000,
        ..Default::default()
    };
    let mut open = 0u32;
    for i in 0..20_000u64 {
        let ts = t0 + i as i64 * 30_000_000;
        let outcome = if i % 7 == 0 { PipeOutcome::Busy } else { PipeOutcome::Ok };
        pipe.events.push(PipeOpen {
            ts,
            record: i * 2,
            pid: 100,
            tid: 1,
            file_object: i,
            status: if outcome == PipeOutcome::Busy { 0xC000_00AE } else { 0 },
            outcome,
            closed_ts: Some(ts + 5_000_000),
            server_instance: false,
            end_record: Some(i * 2 + 1),
            close_record: None,
            remote: None,
        });
        open = if i % 3 == 0 { open.saturating_sub(1) } else { (open + 1) % 50 };
        pipe.handles.push((ts, open));
    }
    pipe.opens = 20_000;
    a.pipes.push(pipe);
    a.logs.push(LogFile { input: 1, path: "big.log".into(), lines: 1_000_000, ..Default::default() });
    a.log_events = (0..1_000_000u64)
        .map(|i| LogEvent {
            input: 1,
            line: i + 1,
            written_ts: None,
            zone_offset_s: None,
            ts: Some(t0 + i as i64 * 600_000),
            severity: if i % 5 == 0 { Severity::Error } else { Severity::Warning },
            errors: Vec::new(),
            codes: Vec::new(),
            text: format!("line {i}"),
            finding: None,
        })
        .collect();
    let mut gui = GuiApp::new(Vec::new());
    gui.set_analysis(a);
    let mut h = harness(gui);
    h.run();
    let lanes = h.state().lanes();
    assert!(lanes.iter().any(|l| l.id == "pipe:\\Device\\NamedPipe\\big"));
    assert!(lanes.iter().any(|l| l.id == "log:big.log"));
    let start = Instant::now();
    for _ in 0..10 {
        h.step();
    }
    let per_frame = start.elapsed() / 10;
    eprintln!("zoomed out, 20k opens + 1M log lines: {per_frame:?} per frame (debug build)");
    assert!(per_frame < Duration::from_millis(1500), "frames too slow: {per_frame:?}");
}

/// Steps frames until the hand-off threads are done (the UI keeps running meanwhile).
fn wait_handoff(h: &mut Harness<'static, GuiApp>) -> app::gui::app::Message {
    let start = Instant::now();
    h.step();
    while h.state().handoff_running() {
        assert!(start.elapsed() < Duration::from_secs(60), "hand-off did not finish");
        std::thread::sleep(Duration::from_millis(10));
        h.step();
    }
    h.run();
    h.state().status_line().cloned().expect("a status line")
}

/// Loads a capture, selects the first finding (in display order) with capture evidence and shows
/// its details; hand-off files go to `dir`.
fn finding_selected(name: &str, dir: &Path) -> Option<(Harness<'static, GuiApp>, Finding)> {
    let mut h = loaded_with_finding(name)?;
    h.state_mut().dialogs = app::gui::handoff::Dialogs::Folder(dir.to_path_buf());
    let a = h.state().analysis().expect("analysis").clone();
    let fi = findings::display_order(&a)
        .into_iter()
        .find(|&i| !a.findings[i].evidence.is_empty() && !a.findings[i].connections.is_empty())
        .expect("a finding with capture evidence");
    h.get_by_label(&findings::row_label(&a.findings[fi])).click();
    h.run();
    Some((h, a.findings[fi].clone()))
}

/// Packets and the 1-based frames carrying a comment, read back with tshark when it is there.
fn commented_frames(path: &Path) -> Option<Vec<u64>> {
    let out = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args(["-Y", "frame.comment", "-T", "fields", "-e", "frame.number"])
        .output()
        .ok()?;
    assert!(out.status.success(), "tshark -r {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().parse().expect("frame number")).collect())
}

#[test]
fn save_evidence_button_writes_the_findings_pcapng() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some((mut h, f)) = finding_selected("zeek_tcp_rst-inject-rae.pcap", dir.path()) else { return };
    h.get_by_label("Save evidence as pcapng").click();
    let status = wait_handoff(&mut h);
    eprintln!("status: {}", status.text);
    let path = dir.path().join(app::report::evidence::file_name(&f));
    assert!(!status.error, "{}", status.text);
    assert!(status.text.contains(&path.display().to_string()), "status names the file: {}", status.text);
    let bytes = std::fs::read(&path).expect("evidence file");
    assert!(bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]), "a pcapng");
    let first = app::gui::handoff::first_commented_frame(&path).expect("readable").expect("a commented frame");
    assert!(status.text.contains(&format!("evidence at frame {first}")), "{}", status.text);
    if let Some(frames) = commented_frames(&path) {
        eprintln!("tshark: commented frames {frames:?}, finding evidence {:?}", f.evidence);
        // Wireshark sees the finding's evidence frames as commented, the first one where we say.
        assert_eq!(frames.first(), Some(&first), "tshark frame.comment");
        assert!(!frames.is_empty() && frames.len() <= f.evidence.len(), "{frames:?} vs {:?}", f.evidence);
    }
    h.get_by_label_contains("Saved evidence of finding");
}

#[test]
fn open_in_wireshark_without_wireshark_says_where_the_evidence_is() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = tempfile::tempdir().expect("temp dir");
    let Some((mut h, f)) = finding_selected("zeek_tcp_rst-inject-rae.pcap", dir.path()) else { return };
    h.state_mut().wireshark_search_path = Some(std::env::join_paths([empty.path()]).expect("path"));
    h.get_by_label("Open in Wireshark").click();
    let status = wait_handoff(&mut h);
    let path = dir.path().join(app::report::evidence::file_name(&f));
    assert!(!status.error, "{}", status.text);
    assert!(status.text.starts_with("Wireshark is not on PATH"), "{}", status.text);
    assert!(status.text.contains(&path.display().to_string()), "status says where: {}", status.text);
    assert!(path.is_file(), "evidence saved at {}", path.display());
    h.get_by_label_contains("Wireshark is not on PATH");
}

#[cfg(unix)]
#[test]
fn open_in_wireshark_starts_wireshark_at_the_evidence_frame() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = tempfile::tempdir().expect("temp dir");
    let args_file = bin.path().join("args.txt");
    // A stand-in for Wireshark that records how it was started.
    let script = bin.path().join("wireshark");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}.tmp'\nmv '{0}.tmp' '{0}'\n", args_file.display()),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let Some((mut h, f)) = finding_selected("zeek_tcp_rst-inject-rae.pcap", dir.path()) else { return };
    h.state_mut().wireshark_search_path = Some(std::env::join_paths([bin.path()]).expect("path"));
    h.get_by_label("Open in Wireshark").click();
    let status = wait_handoff(&mut h);
    assert!(!status.error && status.text.starts_with("Started Wireshark"), "{}", status.text);
    let start = Instant::now();
    while !args_file.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "the stand-in was not started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let args: Vec<String> = std::fs::read_to_string(&args_file).expect("args").lines().map(String::from).collect();
    let path = dir.path().join(app::report::evidence::file_name(&f));
    let frame = app::gui::handoff::first_commented_frame(&path).expect("readable").expect("a commented frame");
    assert_eq!(args, vec!["-r".to_string(), path.display().to_string(), "-g".into(), frame.to_string()]);
}

#[test]
fn export_report_button_writes_the_html_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mut h) = loaded_with_finding("zeek_tcp_rst-inject-rae.pcap") else { return };
    h.state_mut().dialogs = app::gui::handoff::Dialogs::Folder(dir.path().to_path_buf());
    h.get_by_label("Export report").click();
    let status = wait_handoff(&mut h);
    let path = dir.path().join("ipcscope-report.html");
    assert!(!status.error, "{}", status.text);
    assert!(status.text.contains(&path.display().to_string()), "{}", status.text);
    let html = std::fs::read_to_string(&path).expect("report");
    // The same bytes the batch mode's --html writes.
    let mut batch = Vec::new();
    app::report::html::write_html(h.state().analysis().expect("analysis"), &mut batch).expect("html");
    assert_eq!(html.as_bytes(), &batch[..]);
    let a = h.state().analysis().expect("analysis");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains(a.findings[0].kind.name()));
}

#[derive(Debug)]
struct Dropped(PathBuf);
impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn a_dropped_folder_loads_the_inputs_inside_it() {
    let Some(corpus) = corpus() else { return };
    let names = ["cs_tcp_refuseconnection.pcapng", "zeek_tcp_rst-inject-rae.pcap"];
    // The case folder links to the corpus files (nothing copied), plus a file that is not an input.
    let case = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(case.path().join("server")).expect("mkdir");
    let linked = [case.path().join(names[0]), case.path().join("server").join(names[1])];
    #[cfg(unix)]
    for (name, link) in names.iter().zip(&linked) {
        std::os::unix::fs::symlink(corpus.join("pcap").join(name), link).expect("symlink");
    }
    #[cfg(not(unix))]
    for (name, link) in names.iter().zip(&linked) {
        std::fs::copy(corpus.join("pcap").join(name), link).expect("copy");
    }
    // A Word document is a zip archive: sniffed as no known format and left out.
    std::fs::write(case.path().join("notes.docx"), b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00").expect("write");
    let mut h = harness(GuiApp::new(Vec::new()));
    h.run();
    h.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(case.path().to_path_buf())));
    wait_loaded(&mut h);
    assert_eq!(h.state().files(), &linked[..], "the folder's inputs, sorted, the other file left out");
    // The same findings as the files listed by name.
    let by_name = app::pipeline::analyze_paths(&linked, &app::analysis::Options::default(), &app::pipeline::NoProgress);
    let a = h.state().analysis().expect("analysis");
    let key = |a: &Analysis| a.findings.iter().map(|f| (f.kind, f.summary.clone())).collect::<Vec<_>>();
    assert_eq!(key(a), key(&by_name));
    assert_eq!(a.inputs.len(), 2);
    assert!(a.inputs.iter().all(|i| i.error.is_none()), "{:?}", a.inputs);
}

/// ProcMon TCP Connect events for the stale-connection sample's connections, made by w3wp.exe
/// (4120): the lanes name the process and the events are on the timeline.
#[test]
fn lanes_name_the_process_and_procmon_tcp_events_are_on_the_timeline() {
    use app::ingest::procmon::writer::write_csv;
    let pcap = sample("stale_connection.pcap");
    let cap = app::pipeline::analyze_paths(
        std::slice::from_ref(&pcap),
        &app::analysis::Options::default(),
        &app::pipeline::NoProgress,
    );
    let conns: Vec<_> = cap.connections.iter().filter(|c| c.client_syn > 0).collect();
    assert!(!conns.is_empty());
    let events = common::procmon_tcp_connects(&conns, 4120, "w3wp.exe");
    let mut csv = Vec::new();
    write_csv(&mut csv, &events, 0).expect("write");
    let a = app::pipeline::analyze_sources(
        vec![
            app::pipeline::Source::Memory { name: "server_procmon.csv".into(), bytes: csv },
            app::pipeline::Source::Memory {
                name: "stale_connection.pcap".into(),
                bytes: std::fs::read(&pcap).unwrap(),
            },
        ],
        &Default::default(),
        &app::pipeline::NoProgress,
    );
    assert!(a.connections.iter().any(|c| c.pid == Some(4120)), "attribution joined the ProcMon owners");
    let tcp_events = a.system_events.iter().filter(|e| e.kind.name().starts_with("procmon_tcp")).count();
    assert_eq!(tcp_events, conns.len(), "one timeline event per TCP Connect");
    let mut h = harness(GuiApp::new(Vec::new()));
    h.state_mut().set_analysis(a.clone());
    h.run();
    let lanes = h.state().lanes();
    let server = conns[0].server;
    let lane = lanes.iter().find(|l| l.id == format!("tcp:{server}")).expect("the server's lane");
    eprintln!("lane: {}; system lane: {:?}", lane.label, lanes.iter().find(|l| l.id == "system").map(|l| &l.label));
    assert!(lane.label.contains("w3wp.exe (4120)"), "{}", lane.label);
    let system = lanes.iter().find(|l| l.id == "system").expect("the Windows events lane");
    assert!(system.label.contains(&format!("{tcp_events} TCP")), "{}", system.label);
    let s = h.state().session().expect("session");
    assert_eq!(s.model.system.tcp_events.last().copied(), Some(tcp_events as u32));
    assert_eq!(s.model.system.ts.len(), a.system_events.len(), "every event is on the lane");
    // The connection details name the process too.
    let ci = a.connections.iter().position(|c| c.pid == Some(4120)).expect("an attributed connection");
    h.state_mut().select_connection(ci);
    h.run();
    h.get_by_label("Connection details").click();
    h.run();
    h.get_by_label("w3wp.exe (4120)");
}

/// Pipes say where they were seen: an SMB capture's pipes (opened over the network) and a
/// Process Monitor log's pipes name their source in the lane.
#[test]
fn pipe_lanes_name_their_source_and_server_process() {
    let mut h = harness(GuiApp::new(vec![sample("smb_samba_pipes.pcap"), sample("procmon_pipes_busy_storm.pml")]));
    wait_loaded(&mut h);
    let a = h.state().analysis().expect("analysis").clone();
    let lanes = h.state().lanes();
    for (pi, p) in a.pipes.iter().enumerate() {
        eprintln!("pipe {pi} lane: {:?}", lanes.iter().find(|l| l.id == format!("pipe:{}", p.name)).map(|l| &l.label));
        let lane = lanes.iter().find(|l| l.id == format!("pipe:{}", p.name)).expect("a lane per pipe");
        let src = p.source.name();
        assert!(lane.label.contains(&format!("[{src}]")), "pipe {pi} from {src}: {}", lane.label);
        if let (Some(pid), Some(name)) =
            (p.server_pid, app::gui::fields::pipe_process_name(p, p.server_pid.unwrap_or(0)))
        {
            let shown = app::gui::fields::process_label(Some(pid), Some(name)).unwrap();
            assert!(lane.label.contains(&format!("server {shown}")), "{}", lane.label);
        }
    }
    use app::analysis::pipes::PipeSource;
    assert!(a.pipes.iter().any(|p| p.source == PipeSource::Smb), "the SMB capture's pipes");
    let pm = a.pipes.iter().position(|p| p.source == PipeSource::Procmon).expect("the ProcMon log's pipes");
    // The pipe details say where it was seen and name its server.
    h.state_mut().select_pipe(pm, None);
    h.run();
    h.get_by_label("procmon");
    if let Some(server) =
        app::gui::fields::pipe_server(&a.pipes[pm]).and_then(|(pid, name)| app::gui::fields::process_label(pid, name))
    {
        h.get_by_label(&server);
    }
}
