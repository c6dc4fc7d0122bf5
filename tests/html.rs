//! `--html`: the report is self-contained (nothing loaded, no script) and every string from an
//! input is escaped — a log error line carrying markup, and a log file whose name carries markup,
//! show as text. Checked on the project's server-restart sample (with a hostile line spliced into
//! its log) and on a corpus capture (`cs_*`: Chris Sanders, Practical Packet Analysis).

mod common;

use ipcscope::analysis::Options;
use ipcscope::pipeline;
use ipcscope::report::html::{esc, write_html};

fn render(paths: &[std::path::PathBuf]) -> (ipcscope::analysis::Analysis, String) {
    let a = pipeline::analyze_paths(paths, &Options::default(), &pipeline::NoProgress);
    let mut out = Vec::new();
    write_html(&a, &mut out).unwrap();
    (a, String::from_utf8(out).unwrap())
}

/// Nothing in the page loads or runs anything. (Escaped input text holds no `<` and no `"`, so
/// tags and quoted attributes found here are the writer's own.)
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in
        ["<script", "<link", "<img", "<iframe", "<object", " src=\"", "url(", "@import", "onerror=\"", " href=\""]
    {
        assert!(!lower.contains(bad), "report contains {bad:?}");
    }
    assert!(html.contains("Content-Security-Policy") && html.contains("default-src 'none'"));
}

#[test]
fn hostile_log_line_and_file_name_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let samples = common::samples();
    let log = std::fs::read_to_string(samples.join("server_restart_refused_client_utc.log")).unwrap();
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    // The first refused connect's error line gets the markup appended (the line stays an error line).
    let first_error = log.lines().position(|l| l.contains(" ERROR ")).unwrap();
    let edited: String = log
        .lines()
        .enumerate()
        .map(|(i, l)| if i == first_error { format!("{l} {hostile}\n") } else { format!("{l}\n") })
        .collect();
    let log_path = dir.path().join("client<b onclick=x>.log");
    std::fs::write(&log_path, edited).unwrap();
    let (a, html) = render(&[samples.join("server_restart_refused.pcap"), log_path]);

    assert_self_contained(&html);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert!(!html.contains("<b onclick") && html.contains("client&lt;b onclick=x&gt;.log"));
    // The hostile line is one of the log lines read, and linked to a finding shown on the page.
    let ev = a.log_events.iter().find(|l| l.text.contains(hostile)).expect("the edited line is an error line");
    let linked = ev.finding.expect("the refused connect's log line is linked to its finding");
    let start = html.find(&format!("id=\"finding-{linked}\"")).unwrap();
    let end = html[start..].find("</svg>").map(|e| start + e).unwrap_or(html.len());
    assert!(html[start..end].contains("&lt;script&gt;alert(1)"), "shown under its finding");
    // Every finding and every verdict is on the page, with its summary and reason.
    assert!(!a.findings.is_empty() && !a.verdicts.is_empty());
    for f in &a.findings {
        assert!(html.contains(&format!("id=\"finding-{}\"", f.id)));
        assert!(html.contains(&esc(&f.summary)) && html.contains(&esc(&f.advice)));
    }
    for v in &a.verdicts {
        assert!(html.contains(&esc(&v.reason)), "verdict {}", v.question);
    }
    // One timeline per finding with connections, one bar per drawn connection.
    assert_eq!(html.matches("<svg ").count(), a.findings.iter().filter(|f| !f.connections.is_empty()).count());
}

#[test]
fn corpus_capture_report_lists_inputs_findings_and_evidence() {
    let Some(dir) = common::corpus("pcap") else { return };
    let file = dir.join("cs_tcp_refuseconnection.pcapng");
    let (a, html) = render(&[file]);
    assert_self_contained(&html);
    assert!(html.contains("cs_tcp_refuseconnection.pcapng"));
    assert_eq!(a.findings.len(), 1);
    let f = &a.findings[0];
    assert_eq!(f.kind.name(), "connection_refused");
    for e in &f.evidence {
        assert!(html.contains(&format!("cs_tcp_refuseconnection.pcapng#{}", e.frame)));
    }
    assert!(html.contains(&esc(&f.wireshark_filter)));
    // Its one connection is drawn (REJ) on the finding's timeline.
    assert!(html.contains("192.168.100.138:3372 → 192.168.100.1:80 REJ"));
}
