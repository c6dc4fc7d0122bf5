//! Frame time and memory of the desktop app's view on a synthetic session (no file needed):
//! 1,000,000 short connections over an hour on 40 servers (half of them to one busy server,
//! 5 % long-lived), 6 kept packet notes each (as a compact connection keeps), 300 findings.
//! Measures the view-model build (`Session::new`: display order, timeline layout), the view's
//! bytes per connection (`TimelineModel::heap_bytes`), and the frame time headless
//! (`egui::Context::run_ui`, no renderer, tessellation included) at the whole-capture view, with a
//! finding selected, at a minute and at a few seconds; mean, p99 and heap allocations per frame
//! (a counting allocator), so per-connection work or allocation in a frame shows.
//!
//! `cargo bench --locked --bench gui_frame` (release profile; a plain `fn main()`, harness = false).
//! `GUI_FRAME_N` frames per case (default 60), `GUI_FRAME_CONNECTIONS` (default 1000000).
//! `GUI_FRAME_CAPTURE=FILE` also loads a real capture the way the app does (pipeline, then the
//! view model) and times both, then measures frames on it.

use ipcscope as app;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use app::analysis::Analysis;
use app::gui::GuiApp;
use app::model::{analysis_flags, tcp_flags, Endpoint, EvidenceRef, Finding, FindingKind, PacketNote, Severity, Side};
use eframe::egui;

const SERVERS: usize = 40;

/// Counts heap allocations, to show that a frame allocates per pixel column or run, not per connection.
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

fn connections_wanted() -> usize {
    std::env::var("GUI_FRAME_CONNECTIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000)
}
const HOUR_NS: i64 = 3_600_000_000_000;
const T0: i64 = 1_795_000_000_000_000_000;

/// Small deterministic PRNG so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A one-connection pcap (SYN, SYN/ACK, data, FIN both ways), so that the synthetic connections
/// are clones of a real one from the pipeline and stay valid when the model gains fields.
fn template_capture() -> Vec<u8> {
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    let c = ([10, 1, 0, 1], 50000u16);
    let s = ([10, 0, 0, 1], 445u16);
    let pkts: [(bool, u8, u32, u32, usize); 8] = [
        (true, tcp_flags::SYN, 1000, 0, 0),
        (false, tcp_flags::SYN | tcp_flags::ACK, 5000, 1001, 0),
        (true, tcp_flags::ACK, 1001, 5001, 0),
        (true, tcp_flags::ACK | tcp_flags::PSH, 1001, 5001, 10),
        (false, tcp_flags::ACK, 5001, 1011, 0),
        (true, tcp_flags::FIN | tcp_flags::ACK, 1011, 5001, 0),
        (false, tcp_flags::FIN | tcp_flags::ACK, 5001, 1012, 0),
        (true, tcp_flags::ACK, 1012, 5002, 0),
    ];
    for (i, (from_client, flags, seq, ack, len)) in pkts.into_iter().enumerate() {
        let (src, dst) = if from_client { (c, s) } else { (s, c) };
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let ip_len = (40 + len) as u16;
        f.extend_from_slice(&[0x45, 0, (ip_len >> 8) as u8, ip_len as u8, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.1.to_be_bytes());
        f.extend_from_slice(&dst.1.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&ack.to_be_bytes());
        f.extend_from_slice(&[0x50, flags, 0x20, 0x00, 0, 0, 0, 0]);
        f.extend(std::iter::repeat(0x61).take(len));
        let (sec, usec) = (1_700_000_000u32, i as u32 * 1000);
        out.extend_from_slice(&sec.to_le_bytes());
        out.extend_from_slice(&usec.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&f);
    }
    out
}

fn template() -> Analysis {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("template.pcap");
    std::fs::write(&path, template_capture()).expect("write template capture");
    // As the app loads it: every packet note kept.
    let options = app::analysis::Options { keep_all_packet_notes: true, ..Default::default() };
    let a = app::pipeline::analyze_paths(&[path], &options, &app::pipeline::NoProgress);
    assert_eq!(a.connections.len(), 1, "template capture: {:?}", a.inputs);
    a
}

fn note(base: &PacketNote, frame: u64, ts: i64, side: Side, flags: u8, len: u32, analysis: u32) -> PacketNote {
    let mut n = *base;
    n.frame = frame;
    n.ts = ts;
    n.side = side;
    n.flags = flags;
    n.payload_len = len;
    n.seq = frame as u32;
    n.analysis = analysis;
    n
}

fn synthetic(connections: usize) -> Analysis {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let base = template();
    let tc = base.connections[0].clone();
    let bn = tc.head_tail().0[0];
    let mut a = base;
    a.connections.clear();
    a.inputs.clear();
    a.findings.clear();
    a.inputs.push(app::analysis::InputSummary {
        path: "synthetic.pcap".into(),
        format: "pcap".into(),
        packets: connections as u64 * 60,
        first_ts: Some(T0),
        last_ts: Some(T0 + HOUR_NS),
        ..Default::default()
    });
    let mut frame = 1u64;
    a.connections.reserve_exact(connections);
    for id in 0..connections {
        // Half of the connections go to one busy server: its lane holds 500,000 bars.
        let srv = if id % 2 == 0 { 0 } else { 1 + (id / 2) % (SERVERS - 1) };
        let server = Endpoint { ip: IpAddr::V4(Ipv4Addr::new(10, 0, (srv / 8) as u8, srv as u8 + 1)), port: 445 };
        let client = Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 1, (rng.below(8)) as u8, rng.below(250) as u8 + 1)),
            port: 49152 + rng.below(16000) as u16,
        };
        let start = T0 + (id as i64 * HOUR_NS) / connections as i64;
        // Mostly short connections, some long-lived ones.
        let dur = if rng.below(20) == 0 {
            rng.below(600_000_000_000) as i64
        } else {
            rng.below(3_000_000_000) as i64 + 1_000_000
        };
        let end = (start + dur).min(T0 + HOUR_NS);
        let kind = rng.below(10);
        let (state, client_rst, server_rst) = match kind {
            0 => ("RSTR", 0, 1),
            1 => ("RSTO", 1, 0),
            2 => ("REJ", 0, 1),
            3 => ("S1", 0, 0),
            _ => ("SF", 0, 0),
        };
        // A short connection's kept notes: handshake, a request, and how it ended.
        let step = ((end - start) / 8).max(1);
        let head = vec![
            note(&bn, frame, start, Side::Client, tcp_flags::SYN, 0, 0),
            note(&bn, frame + 1, start + step / 4, Side::Server, tcp_flags::SYN | tcp_flags::ACK, 0, 0),
            note(&bn, frame + 3, start + step, Side::Client, tcp_flags::ACK | tcp_flags::PSH, 200, 0),
        ];
        let last_flags =
            if server_rst > 0 || client_rst > 0 { tcp_flags::RST } else { tcp_flags::FIN | tcp_flags::ACK };
        let tail = vec![
            note(&bn, frame + 57, end - 2 * step, Side::Server, tcp_flags::ACK, 1, analysis_flags::KEEP_ALIVE),
            note(&bn, frame + 58, end - step, Side::Server, tcp_flags::ACK | tcp_flags::PSH, 100, 0),
            note(&bn, frame + 59, end, Side::Server, last_flags, 0, 0),
        ];
        let mut c = tc.clone();
        c.id = id as u64;
        c.input = 0;
        c.client = client;
        c.server = server;
        c.first_ts = start;
        c.last_ts = end;
        c.state = state.into();
        c.history = "ShADadFf".into();
        c.client_packets = 30;
        c.server_packets = 30;
        c.client_rst = client_rst;
        c.server_rst = server_rst;
        c.keep_alive = 3;
        c.first_frame = frame;
        c.last_frame = frame + 60;
        c.notes = app::model::PacketNotes::Kept(Box::new(app::model::KeptNotes { head, tail, elided: 54 }));
        a.connections.push(c);
        frame += 61;
    }
    for i in 0..300u64 {
        let c = &a.connections[(i as usize * 331) % connections];
        a.findings.push(Finding {
            id: i + 1,
            kind: [FindingKind::ServerRestart, FindingKind::StaleConnection, FindingKind::PortExhaustion]
                [i as usize % 3],
            severity: [Severity::Error, Severity::Warning, Severity::Info][i as usize % 3],
            first_ts: c.first_ts,
            last_ts: c.last_ts,
            client: c.client.to_string(),
            server: c.server.to_string(),
            pipe: String::new(),
            pid: String::new(),
            count: 1,
            evidence: vec![EvidenceRef { input: 0, frame: c.last_frame }],
            wireshark_filter: format!("tcp.port == {}", c.client.port),
            log_lines: Vec::new(),
            summary: format!("synthetic finding {i}"),
            advice: String::new(),
            connections: vec![c.id],
        });
    }
    a
}

fn input(t: f64) -> egui::RawInput {
    let rect = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::Vec2::new(1600.0, 1000.0));
    egui::RawInput {
        screen_rect: Some(rect),
        time: Some(t),
        // Hover over the timeline so hit testing runs too.
        events: vec![egui::Event::PointerMoved(egui::Pos2::new(800.0, 500.0))],
        ..Default::default()
    }
}

/// Mean and p99 frame time (ms), mean UI-code time (ms), and heap allocations per frame.
fn measure(
    ctx: &egui::Context,
    app: &mut GuiApp,
    frames: usize,
    setup: &dyn Fn(&mut GuiApp),
    t: &mut f64,
) -> (f64, f64, f64, f64) {
    let mut ui_ms = Vec::with_capacity(frames);
    let mut total_ms = Vec::with_capacity(frames);
    let mut allocs = 0u64;
    for _ in 0..frames {
        setup(app);
        *t += 1.0 / 60.0;
        let a0 = ALLOCS.load(Ordering::Relaxed);
        let start = Instant::now();
        let mut out = ctx.run_ui(input(*t), |ui| app.show(ui));
        // No renderer here: the font atlas updates are dropped on purpose.
        out.textures_delta.clear();
        let ui_done = start.elapsed();
        let prims = ctx.tessellate(out.shapes, out.pixels_per_point);
        std::hint::black_box(prims);
        ui_ms.push(ui_done.as_secs_f64() * 1e3);
        total_ms.push(start.elapsed().as_secs_f64() * 1e3);
        allocs += ALLOCS.load(Ordering::Relaxed) - a0;
    }
    let mean = total_ms.iter().sum::<f64>() / frames as f64;
    let ui_mean = ui_ms.iter().sum::<f64>() / frames as f64;
    total_ms.sort_by(|a, b| a.total_cmp(b));
    let p99 = total_ms[((frames as f64 * 0.99).ceil() as usize).clamp(1, frames) - 1];
    (mean, p99, ui_mean, allocs as f64 / frames as f64)
}

fn view_figures(app: &GuiApp, what: &str, build_ms: f64) {
    let Some(s) = app.session() else { return };
    let n = s.analysis.connections.len().max(1);
    let bytes = s.model.heap_bytes();
    let rows = s.model.rows.len();
    println!(
        "{what}: view model built in {build_ms:.0} ms; view {:.1} MB = {:.1} bytes per connection ({}, <= 1024); {} lanes, {rows} rows",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64,
        if bytes as f64 / n as f64 <= 1024.0 { "ok" } else { "over" },
        s.model.lanes.len()
    );
}

fn run_cases(app: &mut GuiApp, frames: usize) {
    let ctx = egui::Context::default();
    let mut clock = 0.0;
    // Warm-up: fonts, layout caches.
    measure(&ctx, app, 5, &|_| {}, &mut clock);
    let mid = app.session().map(|s| s.model.origin + s.model.span_ns() as i64 / 2).unwrap_or(0);
    let whole = |a: &mut GuiApp| {
        let mut v = a.timeline.clone();
        if let Some(s) = a.session() {
            v.reset(&s.model);
        }
        a.timeline = v;
    };
    let zoom = move |a: &mut GuiApp, span: i64| {
        let mut v = a.timeline.clone();
        if let Some(s) = a.session() {
            v.zoom_to(&s.model, mid, mid + span);
        }
        a.timeline = v;
    };
    let cases: Vec<(&str, Box<dyn Fn(&mut GuiApp)>)> = vec![
        ("whole capture", Box::new(whole)),
        (
            "whole capture, scrolled",
            Box::new(move |a: &mut GuiApp| {
                whole(a);
                a.timeline.scroll_y = 16.0 * 400.0;
            }),
        ),
        ("zoomed to 1 minute", Box::new(move |a: &mut GuiApp| zoom(a, 52_000_000_000))),
        ("zoomed to 3 seconds", Box::new(move |a: &mut GuiApp| zoom(a, 2_600_000_000))),
    ];
    let report = |name: &str, (mean, p99, ui_mean, allocs): (f64, f64, f64, f64)| {
        println!(
            "  {name:<30} {frames} frames: mean {mean:6.2} ms, p99 {p99:6.2} ms (UI code {ui_mean:.2} ms + tessellation), {allocs:.0} allocations/frame {}",
            if p99 <= 16.0 { "ok (<= 16 ms)" } else { "over 16 ms" }
        );
    };
    for (name, setup) in &cases {
        report(name, measure(&ctx, app, frames, setup.as_ref(), &mut clock));
    }
    if app.analysis().is_some_and(|a| !a.findings.is_empty()) {
        app.select_finding(0);
        report("finding selected (its zoom)", measure(&ctx, app, frames, &|_| {}, &mut clock));
        report("finding selected, whole capture", measure(&ctx, app, frames, &whole, &mut clock));
    }
}

fn main() {
    let profile = if cfg!(debug_assertions) { "debug (unoptimised crate code)" } else { "release" };
    let frames = std::env::var("GUI_FRAME_N").ok().and_then(|n| n.parse().ok()).unwrap_or(60);
    let n = connections_wanted();
    let t = Instant::now();
    let analysis = synthetic(n);
    let notes: usize = analysis.connections.iter().map(|c| c.packets().count()).sum();
    println!(
        "gui_frame [{profile}]: synthetic {} connections, {} kept packet notes, {} notional packets, built in {:.0} ms",
        analysis.connections.len(),
        notes,
        analysis.inputs[0].packets,
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut app = GuiApp::new(Vec::new());
    let t = Instant::now();
    app.set_analysis(analysis);
    view_figures(&app, "synthetic", t.elapsed().as_secs_f64() * 1e3);
    run_cases(&mut app, frames);
    drop(app);

    if let Some(path) = std::env::var_os("GUI_FRAME_CAPTURE") {
        let path = std::path::PathBuf::from(path);
        let t = Instant::now();
        // As gui::loader does: every packet note kept for the packet list.
        let options = app::analysis::Options { keep_all_packet_notes: true, ..Default::default() };
        let a = app::pipeline::analyze_paths(std::slice::from_ref(&path), &options, &app::pipeline::NoProgress);
        let analyse_ms = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "capture {}: analysed in {analyse_ms:.0} ms ({} connections, {} findings)",
            path.display(),
            a.connections.len(),
            a.findings.len()
        );
        let mut app = GuiApp::new(Vec::new());
        let t = Instant::now();
        app.set_analysis(a);
        let build_ms = t.elapsed().as_secs_f64() * 1e3;
        view_figures(&app, "capture", build_ms);
        println!(
            "  load as the app does (analysis + view model): {:.1} s ({}, <= 60 s)",
            (analyse_ms + build_ms) / 1e3,
            if analyse_ms + build_ms <= 60_000.0 { "ok" } else { "over" }
        );
        run_cases(&mut app, frames);
    }
}
