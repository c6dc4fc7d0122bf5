//! `--html FILE`: one self-contained page for a ticket — inputs, the verdicts on the standing
//! questions with their reasons, and every finding with summary, advice, evidence, linked log lines
//! and an inline-SVG timeline of its connections, pipe and log lines. No external resource and no
//! script at all (a Content-Security-Policy forbids both); every string that came from an input
//! (paths, log lines, pipe and process names, summaries that quote them) goes through `esc`.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;

use crate::analysis::logs::LogEvent;
use crate::analysis::Analysis;
use crate::model::{format_utc, Connection, Finding, UtcNs};

/// Connections drawn per finding; the rest are counted.
const MAX_DRAWN: usize = 24;

/// HTML-escapes text for element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab/newline cannot be shown; make them visible.
            c if c.is_control() && c != '\t' && c != '\n' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1180px;color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
h3{font-size:15px;margin:0 0 6px}.muted{color:#5f6b7a}table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e6e9ef;vertical-align:top}th{background:#f4f6f9;font-weight:600}
.nw{white-space:nowrap}code,.mono{font-family:ui-monospace,Consolas,monospace;font-size:12.5px}
.finding{border:1px solid #d8dde6;border-left:5px solid #8a94a6;border-radius:6px;padding:12px 14px;margin:14px 0;background:#fff}
.sev-error{border-left-color:#c62828}.sev-warning{border-left-color:#ef8f00}.sev-info{border-left-color:#1e6fd9}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff;background:#8a94a6;margin-right:6px}
.b-error,.b-yes{background:#c62828}.b-warning{background:#ef8f00}.b-info{background:#1e6fd9}.b-no{background:#2e7d32}.b-unknown{background:#8a94a6}
.advice{background:#f4f8ee;border-radius:4px;padding:6px 10px;margin:8px 0}.err{color:#b00020}
svg{display:block;margin:8px 0;background:#fafbfc;border:1px solid #e6e9ef;border-radius:4px}
.log{white-space:pre-wrap;overflow-wrap:anywhere}
";

/// Writes the report.
pub fn write_html(a: &Analysis, w: &mut dyn Write) -> Result<()> {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    // Nothing may load or run: the page is opened from tickets, and its text comes from inputs.
    h.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n",
    );
    h.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n");
    let _ = write!(h, "<title>ipcscope report</title><style>{STYLE}</style></head><body>\n");
    let _ = writeln!(
        h,
        "<h1>ipcscope report</h1><p class=\"muted\">{} findings, {} connections, {} pipes, {} log lines — ipcscope {}</p>",
        a.findings.len(),
        a.connections.len(),
        a.pipes.len(),
        a.log_events.len(),
        env!("CARGO_PKG_VERSION")
    );
    inputs(a, &mut h);
    verdicts(a, &mut h);
    h.push_str("<h2>Findings</h2>\n");
    if a.findings.is_empty() {
        h.push_str("<p>No findings.</p>\n");
    }
    for f in &a.findings {
        finding(a, f, &mut h);
    }
    unlinked_logs(a, &mut h);
    h.push_str("</body></html>\n");
    w.write_all(h.as_bytes())?;
    Ok(())
}

fn ts(t: Option<UtcNs>) -> String {
    t.map(format_utc).unwrap_or_default()
}

fn inputs(a: &Analysis, h: &mut String) {
    h.push_str("<h2>Inputs</h2>\n<table><tr><th>file</th><th>format</th><th>packets / lines</th><th>first (UTC)</th><th>last (UTC)</th><th>problems</th></tr>\n");
    for (i, inp) in a.inputs.iter().enumerate() {
        let count = match a.logs.iter().find(|l| l.input as usize == i) {
            Some(l) => format!(
                "{} lines, {} errors/warnings (clock offset {:+.1} s, {})",
                l.lines,
                l.errors,
                (l.offset_s * 10.0).round() / 10.0 + 0.0,
                l.offset_source
            ),
            None => format!("{} packets", inp.packets),
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono nw\">{}</td><td class=\"mono nw\">{}</td><td class=\"err\">{}</td></tr>",
            esc(&inp.path),
            esc(&inp.format),
            esc(&count),
            ts(inp.first_ts),
            ts(inp.last_ts),
            esc(inp.error.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>\n");
}

fn verdicts(a: &Analysis, h: &mut String) {
    h.push_str("<h2>Answers to the standing questions</h2>\n");
    if a.verdicts.is_empty() {
        h.push_str("<p class=\"muted\">No verdicts.</p>\n");
        return;
    }
    h.push_str("<table><tr><th>question</th><th>answer</th><th>reason</th></tr>\n");
    for v in &a.verdicts {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><span class=\"badge b-{}\">{}</span></td><td>{}</td></tr>",
            esc(&v.question.replace('_', " ")),
            esc(v.answer),
            esc(v.answer),
            esc(&v.reason)
        );
    }
    h.push_str("</table>\n");
}

fn finding(a: &Analysis, f: &Finding, h: &mut String) {
    let sev = f.severity.name();
    let _ = writeln!(h, "<div class=\"finding sev-{}\" id=\"finding-{}\">", esc(sev), f.id);
    let _ = writeln!(
        h,
        "<h3><span class=\"badge b-{s}\">{s}</span>#{} {} <span class=\"muted\">{} — {}</span></h3>",
        f.id,
        esc(f.kind.name()),
        format_utc(f.first_ts),
        format_utc(f.last_ts),
        s = esc(sev)
    );
    let _ = writeln!(h, "<p>{}</p>", esc(&f.summary));
    let _ = writeln!(h, "<div class=\"advice\"><b>Advice.</b> {}</div>", esc(&f.advice));
    let mut facts = Vec::new();
    for (k, v) in [("client", &f.client), ("server", &f.server), ("pipe", &f.pipe), ("pid", &f.pid)] {
        if !v.is_empty() {
            facts.push(format!("{k} <span class=\"mono\">{}</span>", esc(v)));
        }
    }
    facts.push(format!("count {}", f.count));
    if !f.wireshark_filter.is_empty() {
        facts.push(format!("Wireshark filter <code>{}</code>", esc(&f.wireshark_filter)));
    }
    let _ = writeln!(h, "<p class=\"muted\">{}</p>", facts.join(" · "));
    if !f.evidence.is_empty() {
        let shown: Vec<String> =
            f.evidence.iter().take(40).map(|e| format!("{}#{}", a.input_name(e.input), e.frame)).collect();
        let more = f.evidence.len().saturating_sub(40);
        let _ = writeln!(
            h,
            "<p><b>Evidence</b> <span class=\"mono\">{}</span>{}</p>",
            esc(&shown.join(" ")),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
    }
    let logs: Vec<_> = a.log_events.iter().filter(|l| l.finding == Some(f.id)).collect();
    if !logs.is_empty() {
        log_table(a, &logs, 30, h);
    } else if !f.log_lines.is_empty() {
        let _ = writeln!(
            h,
            "<p><b>Log lines</b> <span class=\"mono\">{}</span></p>",
            esc(&f.log_lines.iter().map(|&r| a.log_line_label(r)).collect::<Vec<_>>().join(" "))
        );
    }
    let conns: Vec<&Connection> = a.connections.iter().filter(|c| f.connections.contains(&c.id)).collect();
    let log_ts: Vec<UtcNs> = logs.iter().filter_map(|l| l.ts).collect();
    let pipe = (!f.pipe.is_empty()).then(|| a.pipes.iter().find(|p| p.name == f.pipe)).flatten();
    timeline(f, &conns, pipe.map(|p| (p.name.as_str(), p.first_ts, p.last_ts)), &log_ts, h);
    h.push_str("</div>\n");
}

/// Error and warning log lines that no finding explains (bounded).
fn unlinked_logs(a: &Analysis, h: &mut String) {
    let rest: Vec<_> = a.log_events.iter().filter(|l| l.finding.is_none()).collect();
    if rest.is_empty() {
        return;
    }
    let _ = writeln!(h, "<h2>Log errors and warnings not linked to a finding ({})</h2>", rest.len());
    log_table(a, &rest, 100, h);
}

/// A table of log lines (file:line, UTC, escaped text), at most `max` rows and a count of the rest.
fn log_table(a: &Analysis, lines: &[&LogEvent], max: usize, h: &mut String) {
    h.push_str("<table><tr><th>log line</th><th>UTC</th><th>text</th></tr>\n");
    for l in lines.iter().take(max) {
        let _ = writeln!(
            h,
            "<tr><td class=\"mono nw\">{}:{}</td><td class=\"mono nw\">{}</td><td class=\"mono log\">{}</td></tr>",
            esc(a.input_name(l.input)),
            l.line,
            ts(l.ts),
            esc(&l.text)
        );
    }
    if lines.len() > max {
        let _ = writeln!(h, "<tr><td colspan=\"3\" class=\"muted\">and {} more</td></tr>", lines.len() - max);
    }
    h.push_str("</table>\n");
}

/// A small time axis: one bar per connection (coloured by how it ended), the pipe's active span,
/// the log lines as ticks, and the finding's own span shaded.
fn timeline(f: &Finding, conns: &[&Connection], pipe: Option<(&str, UtcNs, UtcNs)>, logs: &[UtcNs], h: &mut String) {
    let mut lo = f.first_ts;
    let mut hi = f.last_ts;
    for c in conns.iter().take(MAX_DRAWN) {
        lo = lo.min(c.first_ts);
        hi = hi.max(c.last_ts);
    }
    if let Some((_, a, b)) = pipe {
        lo = lo.min(a);
        hi = hi.max(b);
    }
    for &t in logs {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    if conns.is_empty() && pipe.is_none() && logs.is_empty() {
        return;
    }
    let span = ((hi - lo) as f64).max(1.0);
    let (left, width, row) = (270.0, 820.0, 16.0);
    let x = |t: UtcNs| left + (t - lo) as f64 / span * width;
    let rows = conns.len().min(MAX_DRAWN) + pipe.is_some() as usize + (!logs.is_empty()) as usize;
    let height = 28.0 + rows as f64 * row + 18.0;
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {height}\" width=\"100%\" role=\"img\" aria-label=\"timeline\">",
        w = left + width + 20.0
    );
    // The finding's span.
    let _ = writeln!(
        h,
        "<rect x=\"{:.1}\" y=\"4\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#fff3cd\"/>",
        x(f.first_ts),
        (x(f.last_ts) - x(f.first_ts)).max(1.5),
        height - 22.0
    );
    let mut y = 12.0;
    for c in conns.iter().take(MAX_DRAWN) {
        let colour = match c.state.as_str() {
            "REJ" | "RSTO" | "RSTR" | "RSTOS0" | "RSTRH" => "#c62828",
            "SF" => "#2e7d32",
            "S0" | "S1" | "OTH" => "#ef8f00",
            _ => "#1e6fd9",
        };
        let label = format!("{} → {} {}", c.client, c.server, c.state);
        let _ = writeln!(
            h,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"10.5\" font-family=\"monospace\" fill=\"#333\">{}</text><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"9\" rx=\"2\" fill=\"{colour}\"><title>{}</title></rect>",
            y + 8.0,
            esc(&label),
            x(c.first_ts),
            y,
            (x(c.last_ts) - x(c.first_ts)).max(2.0),
            esc(&format!("{label} {} — {}", format_utc(c.first_ts), format_utc(c.last_ts)))
        );
        y += row;
    }
    if let Some((name, a, b)) = pipe {
        let _ = writeln!(
            h,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"10.5\" font-family=\"monospace\" fill=\"#333\">pipe {}</text><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"9\" rx=\"2\" fill=\"#7b1fa2\"/>",
            y + 8.0,
            esc(name),
            x(a),
            y,
            (x(b) - x(a)).max(2.0)
        );
        y += row;
    }
    if !logs.is_empty() {
        let _ = writeln!(
            h,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"10.5\" font-family=\"monospace\" fill=\"#333\">log lines ({})</text>",
            y + 8.0,
            logs.len()
        );
        for &t in logs {
            let _ = writeln!(
                h,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"2\" height=\"11\" fill=\"#b00020\"/>",
                x(t) - 1.0,
                y - 1.0
            );
        }
        y += row;
    }
    if conns.len() > MAX_DRAWN {
        let _ = writeln!(
            h,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"10.5\" fill=\"#5f6b7a\">and {} more connections</text>",
            y + 8.0,
            conns.len() - MAX_DRAWN
        );
    }
    let axis = height - 8.0;
    let _ = writeln!(
        h,
        "<text x=\"{left}\" y=\"{axis}\" font-size=\"10\" fill=\"#5f6b7a\">{}</text><text x=\"{}\" y=\"{axis}\" font-size=\"10\" fill=\"#5f6b7a\" text-anchor=\"end\">{} (+{:.3} s)</text>",
        format_utc(lo),
        left + width,
        format_utc(hi),
        (hi - lo) as f64 / 1e9
    );
    h.push_str("</svg>\n");
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{7}b"), "a\u{FFFD}b");
    }
}
