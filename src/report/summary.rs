//! `summary.json` and the short human summary printed without `--out`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::analysis::Analysis;
use crate::model::format_utc;

pub fn summary_json(a: &Analysis) -> Value {
    let inputs: Vec<Value> = a
        .inputs
        .iter()
        .enumerate()
        .map(|(n, i)| {
            let mut v = json!({
                "path": i.path,
                "format": i.format,
                "link_types": i.link_types,
                "packets": i.packets,
                "bytes": i.bytes,
                "first_utc": i.first_ts.map(format_utc),
                "last_utc": i.last_ts.map(format_utc),
                "error": i.error,
                "evicted_connections": i.evicted_connections,
            });
            if let Some(obj) = v.as_object_mut() {
                obj.extend(i.extra.to_json());
                if !i.ring_files.is_empty() {
                    let names: Vec<String> = i.ring_files.iter().map(|f| f.display().to_string()).collect();
                    obj.insert("ring_files".into(), json!(names));
                }
                if i.connections_not_matchable > 0 {
                    obj.insert("connections_not_matchable".into(), i.connections_not_matchable.into());
                }
                // Two-sided captures: this input's clock against the reference capture's.
                if let Some(c) = a.twosided.clocks.iter().find(|c| c.input as usize == n) {
                    let secs = |ns: Option<i64>| ns.map(|n| json!(n as f64 / 1e9)).unwrap_or(Value::Null);
                    obj.insert("clock_offset_s".into(), secs(c.offset_ns));
                    obj.insert("clock_offset_error_s".into(), secs(c.error_ns));
                    obj.insert("offset_source".into(), c.source.name().into());
                    obj.insert("matched_connections".into(), (c.matched_connections as u64).into());
                    // Only for a pair that shares nothing with the first capture: its own reference.
                    if c.reference != c.input && a.twosided.clocks.first().is_some_and(|r| r.input != c.reference) {
                        obj.insert("clock_reference".into(), a.input_name(c.reference).into());
                    }
                }
            }
            v
        })
        .collect();
    let mut per_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &a.findings {
        *per_kind.entry(f.kind.name()).or_default() += 1;
    }
    let logs: Vec<Value> = a
        .logs
        .iter()
        .map(|l| {
            json!({
                "path": l.path,
                "format": l.format,
                "lines": l.lines,
                "errors": l.errors,
                "offset_s": l.offset_s,
                "offset_source": l.offset_source,
                "confidence": l.confidence,
                "unexplained_errors": l.unexplained_errors,
                "matched_lines": l.matched_lines,
                "lags": l.lags.iter().map(|g| json!({"identity": g.identity, "lines": g.lines, "p50_ms": g.p50_ms, "p95_ms": g.p95_ms})).collect::<Vec<_>>(),
                "note": l.note,
            })
        })
        .collect();
    let system_events: Vec<Value> = a
        .system_events
        .iter()
        .take(1000)
        .map(|e| json!({"utc": format_utc(e.ts), "provider": e.provider, "event_id": e.event_id, "kind": e.kind.name(), "summary": e.summary}))
        .collect();
    let mut out = json!({
        "inputs": inputs,
        "logs": logs,
        "system_events": system_events,
        "tcp": a.tcp,
        "connections": a.connections.len(),
        "findings": per_kind,
        "resets": a.resets,
        "verdicts": a.verdicts,
    });
    // Only runs that saw SMB traffic get the block (outputs without SMB stay as they were).
    let c = &a.smb.counts;
    if c.smb1_messages + c.smb2_messages + c.encrypted_messages + c.compressed_messages > 0 {
        if let Some(obj) = out.as_object_mut() {
            obj.insert("smb".into(), smb_json(a));
        }
    }
    // Only runs that aligned several captures get the block.
    if !a.twosided.clocks.is_empty() {
        if let Some(obj) = out.as_object_mut() {
            obj.insert("shared_connections".into(), crate::analysis::twosided::summary_json(a));
        }
    }
    // Only runs given folders that held files not read (outputs of file lists stay as they were).
    if !a.skipped.is_empty() {
        if let Some(obj) = out.as_object_mut() {
            let skipped: Vec<Value> = a.skipped.iter().map(|s| json!({"path": s.path, "reason": s.reason})).collect();
            obj.insert("skipped_inputs".into(), Value::Array(skipped));
        }
    }
    out
}

/// SMB seen in captures: counts, and what could not be read.
fn smb_json(a: &Analysis) -> Value {
    let c = &a.smb.counts;
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        let notes: Vec<String> = [
            (c.encrypted_sessions > 0).then(|| {
                format!(
                    "{} encrypted SMB3 session(s), {} message(s): unreadable, their pipe opens are not counted",
                    c.encrypted_sessions, c.encrypted_messages
                )
            }),
            (c.compressed_messages > 0)
                .then(|| format!("{} compressed SMB3 message(s) not read", c.compressed_messages)),
            (c.ipc_inferred > 0).then(|| {
                format!(
                    "{} pipe open(s) on trees connected before the capture started: IPC$ inferred from the response's \
                     FileType (SMB1) or a well-known pipe name (SMB2)",
                    c.ipc_inferred
                )
            }),
            (c.not_ipc > 0).then(|| {
                format!("{} SMB1 open(s) on a tree connected before the capture were not pipes (FileType)", c.not_ipc)
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        obj.insert("notes".into(), json!(notes));
    }
    v
}

/// Resets listed one by one in the text summary (all are in `summary.json`).
const MAX_RESETS_LISTED: usize = 40;

/// The short text printed on stdout when no `--out` is given.
pub fn human_summary(a: &Analysis) -> String {
    let mut out = String::new();
    for i in &a.inputs {
        match i.extra.lines_or_records() {
            Some((n, unit)) if i.packets == 0 => out.push_str(&format!("{} ({}): {n} {unit}", i.path, i.format)),
            _ => out.push_str(&format!("{} ({}): {} packets", i.path, i.format, i.packets)),
        }
        if let (Some(f), Some(l)) = (i.first_ts, i.last_ts) {
            out.push_str(&format!(", {} .. {}", format_utc(f), format_utc(l)));
        }
        out.push('\n');
        if let Some(e) = &i.error {
            out.push_str(&format!("  ERROR: {e}\n"));
        }
    }
    let t = &a.tcp;
    out.push_str(&format!(
        "TCP: {} frames, {} connections, {} SYN, {} SYN/ACK, {} FIN, {} RST, {} keep-alive, {} retransmissions\n",
        t.tcp_frames, t.tcp_conversations, t.syn, t.synack, t.fin, t.rst, t.keep_alive, t.retransmission
    ));
    if a.findings.is_empty() {
        out.push_str("Findings: none\n");
    } else {
        out.push_str(&format!("Findings ({}):\n", a.findings.len()));
        let mut sorted: Vec<_> = a.findings.iter().collect();
        sorted.sort_by_key(|f| (f.severity, f.first_ts));
        for f in sorted {
            out.push_str(&format!("  [{}] {}: {}\n", f.severity.name(), f.kind, f.summary));
        }
    }
    for l in &a.logs {
        out.push_str(&format!(
            "Log {}: {} lines, {} errors/warnings, clock offset {:+.3} s ({}, confidence {:.2})",
            l.path, l.lines, l.errors, l.offset_s, l.offset_source, l.confidence
        ));
        if l.matched_lines > 0 {
            out.push_str(&format!("; {} lines aligned with their events", l.matched_lines));
        }
        if !l.note.is_empty() {
            out.push_str(&format!("; {}", l.note));
        }
        if l.unexplained_errors > 0 {
            out.push_str(&format!(
                "; {} error lines have no network or pipe evidence around them: look elsewhere for their cause",
                l.unexplained_errors
            ));
        }
        out.push('\n');
    }
    if !a.resets.is_empty() {
        out.push_str(&format!("Resets ({}):\n", a.resets.len()));
        for r in a.resets.iter().take(MAX_RESETS_LISTED) {
            out.push_str(&format!(
                "  {}#{} from the {}: {}\n",
                a.input_name(r.input),
                r.frame,
                r.sender,
                r.classification
            ));
        }
        if a.resets.len() > MAX_RESETS_LISTED {
            out.push_str(&format!("  … {} more in summary.json\n", a.resets.len() - MAX_RESETS_LISTED));
        }
    }
    if !a.verdicts.is_empty() {
        out.push_str("Questions:\n");
        for v in &a.verdicts {
            out.push_str(&format!("  {}: {} ({})\n", v.question, v.answer, v.reason));
        }
    }
    out
}
