//! The few analysis fields the timeline reads, behind small functions: the connection record and
//! the pipe model are being reshaped (compact connections, typed states), and the merge then only
//! touches this file.

use crate::analysis::pipes::{Pipe, PipeSource};
use crate::model::{Connection, UtcNs};

/// First and last packet time.
pub fn conn_span(c: &Connection) -> (UtcNs, UtcNs) {
    (c.first_ts, c.last_ts)
}

/// Zeek's `conn_state` (`SF`, `RSTR`, …).
pub fn conn_state(c: &Connection) -> &str {
    c.state.as_str()
}

/// RSTs sent by (client, server).
pub fn conn_rst(c: &Connection) -> (u32, u32) {
    (c.client_rst, c.server_rst)
}

/// The process owning the connection's local end, when an event source named it.
pub fn conn_owner(c: &Connection) -> Option<(Option<u32>, Option<&str>)> {
    match (c.pid, c.process.as_deref()) {
        (None, None) => None,
        (pid, name) => Some((pid, name.filter(|n| !n.is_empty()))),
    }
}

/// A pipe's server process: its pid and, where the source names it, its image name.
pub fn pipe_server(p: &Pipe) -> Option<(Option<u32>, Option<&str>)> {
    let pid = p.server_pid?;
    Some((Some(pid), pipe_process_name(p, pid)))
}

/// The name the pipe's source gave process `pid`.
pub fn pipe_process_name(p: &Pipe, pid: u32) -> Option<&str> {
    p.process_names.iter().find(|(q, _)| *q == pid).map(|(_, n)| n.as_str()).filter(|n| !n.is_empty())
}

/// Where the pipe's operations were seen.
pub fn pipe_source(p: &Pipe) -> PipeSource {
    p.source
}

/// `w3wp.exe (4120)`, `pid 4120` or `w3wp.exe`, as findings name processes.
pub fn process_label(pid: Option<u32>, name: Option<&str>) -> Option<String> {
    // A full image path is long in a lane label; its file name is what people recognise.
    let name = name.map(|n| n.rsplit(['\\', '/']).next().unwrap_or(n)).filter(|n| !n.is_empty());
    match (pid, name) {
        (Some(pid), Some(n)) => Some(format!("{n} ({pid})")),
        (Some(pid), None) => Some(format!("pid {pid}")),
        (None, Some(n)) => Some(n.to_string()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_labels_name_the_image_and_pid() {
        assert_eq!(process_label(Some(4120), Some("w3wp.exe")).as_deref(), Some("w3wp.exe (4120)"));
        assert_eq!(
            process_label(Some(4120), Some("C:\\Windows\\System32\\inetsrv\\w3wp.exe")).as_deref(),
            Some("w3wp.exe (4120)")
        );
        assert_eq!(process_label(Some(7), None).as_deref(), Some("pid 7"));
        assert_eq!(process_label(None, None), None);
    }
}
