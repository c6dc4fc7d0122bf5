//! Severity of a record: syslog PRI or a level token near the start of the message.

pub use crate::model::Severity;

/// Syslog PRI (facility*8+severity) to a severity.
pub fn from_syslog_pri(pri: u32) -> Severity {
    match pri & 7 {
        0..=3 => Severity::Error,
        4 => Severity::Warning,
        5 | 6 => Severity::Info,
        _ => Severity::Debug,
    }
}

/// Level token near the start of the message (first match wins). `body` is where the timestamp ends.
pub fn detect_severity(line: &[u8], body: usize) -> Severity {
    let start = body.min(line.len());
    let end = (start + 160).min(line.len());
    let region = &line[start..end];
    let mut i = 0;
    while i < region.len() {
        if !region[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let s = i;
        while i < region.len() && region[i].is_ascii_alphabetic() {
            i += 1;
        }
        let w = &region[s..i];
        let prev = if s > 0 { region[s - 1] } else { b' ' };
        let next = region.get(i).copied().unwrap_or(b' ');
        // Glued to digits or underscores means identifier, not a level.
        if prev.is_ascii_digit() || prev == b'_' || next.is_ascii_digit() || next == b'_' {
            continue;
        }
        let bracketed = matches!(prev, b'[' | b'<' | b'(' | b'|') && matches!(next, b']' | b'>' | b')' | b'|' | b':');
        let before = &region[..s];
        let after_level = [&b"level="[..], b"level\":\"", b"level: "]
            .iter()
            .any(|k| before.len() >= k.len() && before[before.len() - k.len()..].eq_ignore_ascii_case(k));
        if w.len() == 1 {
            if prev == b'[' && next == b']' {
                match w[0] {
                    b'E' | b'F' => return Severity::Error,
                    b'W' => return Severity::Warning,
                    b'I' => return Severity::Info,
                    b'D' | b'V' | b'T' => return Severity::Debug,
                    _ => {}
                }
            }
            continue;
        }
        let upper = w.to_ascii_uppercase();
        let all_upper = upper == w;
        let capitalized = w[0].is_ascii_uppercase() && w[1..].iter().all(|c| c.is_ascii_lowercase());
        let sev = match &upper[..] {
            b"FATAL" | b"CRITICAL" | b"ERROR" | b"EMERG" | b"EMERGENCY" | b"ALERT" | b"SEVERE" => {
                Some((Severity::Error, true))
            }
            b"ERR" | b"FTL" | b"CRIT" | b"EROR" => Some((Severity::Error, false)),
            b"WARNING" | b"WARN" => Some((Severity::Warning, true)),
            b"WRN" => Some((Severity::Warning, false)),
            b"INFO" | b"INFORMATION" | b"NOTICE" => Some((Severity::Info, true)),
            b"INF" => Some((Severity::Info, false)),
            b"DEBUG" | b"TRACE" | b"VERBOSE" => Some((Severity::Debug, true)),
            b"DBG" | b"TRC" | b"VRB" => Some((Severity::Debug, false)),
            _ => None,
        };
        if let Some((sev, long)) = sev {
            // Lower/mixed case words are only levels when clearly placed as one.
            let ok = all_upper || bracketed || after_level || (long && capitalized && s == first_word(region));
            if ok {
                return sev;
            }
        }
    }
    Severity::Unknown
}

fn first_word(region: &[u8]) -> usize {
    region.iter().position(|c| c.is_ascii_alphabetic()).unwrap_or(usize::MAX)
}
