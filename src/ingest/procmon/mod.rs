//! Process Monitor logs: the native PML backing file (32- and 64-bit, version 9) and Procmon's CSV
//! export. Both readers yield the same `ProcmonEvent`, with Procmon's own (CSV-compatible)
//! operation and result names. See docs/procmon.md for the layouts.

pub mod csv;
pub mod pml;
#[doc(hidden)]
pub mod writer;

use std::net::SocketAddr;

pub use self::csv::{looks_like_procmon_csv, CsvClock, CsvReader};
pub use self::pml::PmlReader;

/// Procmon's event classes (PML numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventClass {
    Unknown,
    Process,
    Registry,
    FileSystem,
    Profiling,
    Network,
}

impl EventClass {
    pub fn from_pml(v: u32) -> EventClass {
        match v {
            1 => EventClass::Process,
            2 => EventClass::Registry,
            3 => EventClass::FileSystem,
            4 => EventClass::Profiling,
            5 => EventClass::Network,
            _ => EventClass::Unknown,
        }
    }

    /// From the CSV's "Event Class" column.
    pub fn from_name(s: &str) -> EventClass {
        match s {
            "Process" => EventClass::Process,
            "Registry" => EventClass::Registry,
            "File System" => EventClass::FileSystem,
            "Profiling" => EventClass::Profiling,
            "Network" => EventClass::Network,
            _ => EventClass::Unknown,
        }
    }
}

/// A network event's protocol and addresses, when they are numeric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetInfo {
    pub tcp: bool,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// One Process Monitor event.
#[derive(Clone, Debug)]
pub struct ProcmonEvent {
    /// 0-based position in file order (PML event index, CSV data row).
    pub index: u64,
    /// PML: UTC, ns since the Unix epoch. CSV: the local wall time read as if it were UTC
    /// (the reader's `CsvClock` says whether the date was known); the pipeline applies the offset.
    pub ts: i64,
    pub pid: u32,
    pub tid: u32,
    pub process: String,
    pub class: EventClass,
    /// Procmon's operation name as its CSV shows it (`CreateFile`, `TCP Connect`, `Thread Create`).
    pub operation: String,
    pub path: String,
    /// Procmon's result text (`SUCCESS`, `PIPE BUSY`, …).
    pub result: String,
    /// NTSTATUS: PML's raw value; CSV: mapped back from the result text when known.
    pub status: Option<u32>,
    /// CreateFile's disposition (FILE_SUPERSEDE 0 … FILE_OVERWRITE_IF 5), when known.
    pub disposition: Option<u8>,
    pub net: Option<NetInfo>,
}

/// (NTSTATUS, Procmon's result text) for the results Procmon names. Procmon prints other
/// values as hex (`0xC0000XYZ`).
const RESULTS: &[(u32, &str)] = &[
    (0x0000_0000, "SUCCESS"),
    (0x0000_0104, "REPARSE"),
    (0x0000_0105, "MORE ENTRIES"),
    (0x0000_0108, "OPLOCK BREAK IN PROGRESS"),
    (0x0000_010B, "NOTIFY CLEANUP"),
    (0x0000_010C, "NOTIFY ENUM DIR"),
    (0x0000_012A, "FILE LOCKED WITH ONLY READERS"),
    (0x0000_012B, "FILE LOCKED WITH WRITERS"),
    (0x0000_0367, "WAIT FOR OPLOCK"),
    (0x8000_0005, "BUFFER OVERFLOW"),
    (0x8000_0006, "NO MORE FILES"),
    (0x8000_001A, "NO MORE ENTRIES"),
    (0xC000_0001, "UNSUCCESSFUL"),
    (0xC000_0002, "NOT IMPLEMENTED"),
    (0xC000_0003, "INVALID INFO CLASS"),
    (0xC000_0004, "INFO LENGTH MISMATCH"),
    (0xC000_0005, "ACCESS VIOLATION"),
    (0xC000_0008, "INVALID HANDLE"),
    (0xC000_000D, "INVALID PARAMETER"),
    (0xC000_000E, "NO SUCH DEVICE"),
    (0xC000_000F, "NO SUCH FILE"),
    (0xC000_0010, "INVALID DEVICE REQUEST"),
    (0xC000_0011, "END OF FILE"),
    (0xC000_0022, "ACCESS DENIED"),
    (0xC000_0023, "BUFFER TOO SMALL"),
    (0xC000_0024, "OBJECT TYPE MISMATCH"),
    (0xC000_0033, "NAME INVALID"),
    (0xC000_0034, "NAME NOT FOUND"),
    (0xC000_0035, "NAME COLLISION"),
    (0xC000_0039, "OBJECT PATH INVALID"),
    (0xC000_003A, "PATH NOT FOUND"),
    (0xC000_003B, "PATH SYNTAX BAD"),
    (0xC000_0043, "SHARING VIOLATION"),
    (0xC000_0054, "FILE LOCK CONFLICT"),
    (0xC000_0056, "DELETE PENDING"),
    (0xC000_0061, "PRIVILEGE NOT HELD"),
    (0xC000_006D, "LOGON FAILURE"),
    (0xC000_007F, "DISK FULL"),
    (0xC000_009A, "INSUFFICIENT RESOURCES"),
    (0xC000_00A5, "BAD IMPERSONATION"),
    (0xC000_00AB, "INSTANCE NOT AVAILABLE"),
    (0xC000_00AC, "PIPE NOT AVAILABLE"),
    (0xC000_00AD, "INVALID PIPE STATE"),
    (0xC000_00AE, "PIPE BUSY"),
    (0xC000_00B0, "PIPE DISCONNECTED"),
    (0xC000_00B1, "PIPE CLOSING"),
    (0xC000_00B2, "PIPE CONNECTED"),
    (0xC000_00B3, "PIPE LISTENING"),
    (0xC000_00B4, "INVALID READ MODE"),
    (0xC000_00B5, "IO TIMEOUT"),
    (0xC000_00BA, "IS DIRECTORY"),
    (0xC000_00BB, "NOT SUPPORTED"),
    (0xC000_00BD, "DUPLICATE NAME"),
    (0xC000_00BE, "BAD NETWORK PATH"),
    (0xC000_00C4, "NETWORK ERROR"),
    (0xC000_00CC, "BAD NETWORK NAME"),
    (0xC000_00D8, "CANT WAIT"),
    (0xC000_00D9, "PIPE EMPTY"),
    (0xC000_0101, "NOT EMPTY"),
    (0xC000_0103, "NOT A DIRECTORY"),
    (0xC000_0120, "CANCELLED"),
    (0xC000_0121, "CANNOT DELETE"),
    (0xC000_0123, "FILE DELETED"),
    (0xC000_0128, "FILE CLOSED"),
    (0xC000_014B, "PIPE BROKEN"),
    (0xC000_0184, "INVALID DEVICE STATE"),
    (0xC000_0185, "IO DEVICE ERROR"),
    (0xC000_020C, "DISCONNECTED"),
    (0xC000_0225, "NOT FOUND"),
    (0xC000_0275, "NOT REPARSE POINT"),
    (0x0000_0215, "OPLOCK SWITCHED TO NEW HANDLE"),
    (0x0000_0216, "OPLOCK HANDLE CLOSED"),
    (0x4000_0016, "PREDEFINED HANDLE"),
    (0x8000_0002, "DATATYPE MISALIGNMENT"),
    (0x8000_0015, "INVALID EA FLAG"),
    (0xC000_0006, "IN PAGE ERROR"),
    (0xC000_0012, "WRONG VOLUME"),
    (0xC000_0013, "NO MEDIA"),
    (0xC000_0015, "NONEXISTENT SECTOR"),
    (0xC000_0017, "NO MEMORY"),
    (0xC000_0032, "DISK CORRUPT"),
    (0xC000_003C, "DATA OVERRUN"),
    (0xC000_003F, "CRC ERROR"),
    (0xC000_0044, "QUOTA EXCEEDED"),
    (0xC000_004F, "EAS NOT SUPPORTED"),
    (0xC000_0050, "EA TOO LARGE"),
    (0xC000_0051, "NONEXISTENT EA ENTRY"),
    (0xC000_0052, "NO EAS ON FILE"),
    (0xC000_0053, "EA CORRUPTED ERROR"),
    (0xC000_0055, "NOT GRANTED"),
    (0xC000_007E, "RANGE NOT LOCKED"),
    (0xC000_0098, "FILE INVALID"),
    (0xC000_009C, "DEVICE DATA ERROR"),
    (0xC000_009D, "DEVICE NOT CONNECTED"),
    (0xC000_00A2, "MEDIA WRITE PROTECTED"),
    (0xC000_00C3, "INVALID NETWORK RESPONSE"),
    (0xC000_00E2, "OPLOCK NOT GRANTED"),
    (0xC000_0102, "FILE CORRUPT"),
    (0xC000_0107, "FILES OPEN"),
    (0xC000_010D, "CANNOT IMPERSONATE"),
    (0xC000_0148, "INVALID LEVEL"),
    (0xC000_014C, "REGISTRY CORRUPT"),
    (0xC000_014D, "IO FAILED"),
    (0xC000_017C, "KEY DELETED"),
    (0xC000_0181, "CHILD MUST BE VOLATILE"),
    (0xC000_0188, "LOG FILE FULL"),
    (0xC000_0205, "INSUFFICIENT SERVER RESOURCES"),
    (0xC000_0243, "USER MAPPED FILE"),
    (0xC000_0257, "PATH NOT COVERED"),
    (0xC000_0273, "NO MORE MATCHES"),
    (0xC000_02F0, "OBJECTID NOT FOUND"),
    (0xC000_0425, "HIVE UNLOADED"),
    (0xC000_0427, "FILE SYSTEM LIMITATION"),
    (0xC000_0909, "CANNOT BREAK OPLOCK"),
    (0xC01C_0004, "FAST IO DISALLOWED"),
];

/// Procmon's result text for an NTSTATUS.
pub fn result_text(status: u32) -> String {
    match status {
        // STATUS_NO_MORE_DATA: Procmon leaves the column empty.
        0x0000_0103 => String::new(),
        _ => RESULTS
            .iter()
            .find(|(c, _)| *c == status)
            .map(|(_, t)| t.to_string())
            .unwrap_or_else(|| format!("0x{status:X}")),
    }
}

/// The NTSTATUS behind a result text (`PIPE BUSY` → STATUS_PIPE_BUSY; `0xC00000AE` → itself).
pub fn result_status(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    RESULTS.iter().find(|(_, n)| n.eq_ignore_ascii_case(t)).map(|(c, _)| *c)
}

/// `"a:b -> c:d"` (Procmon's network Path) to numeric addresses; `None` when a side is a host or
/// service name (Procmon resolves them unless told not to).
pub fn parse_net_path(path: &str) -> Option<(SocketAddr, SocketAddr)> {
    let (a, b) = path.split_once(" -> ")?;
    Some((parse_addr(a)?, parse_addr(b)?))
}

fn parse_addr(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

/// Procmon's Path for a network event, as it prints numeric addresses.
pub fn net_path(n: &NetInfo) -> String {
    let side = |a: &SocketAddr| match a {
        SocketAddr::V4(v) => format!("{}:{}", v.ip(), v.port()),
        SocketAddr::V6(v) => format!("{}:{}", v.ip(), v.port()),
    };
    format!("{} -> {}", side(&n.src), side(&n.dst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_names_map_both_ways() {
        assert_eq!(result_status("PIPE BUSY"), Some(0xC000_00AE));
        assert_eq!(result_status("PIPE NOT AVAILABLE"), Some(0xC000_00AC));
        assert_eq!(result_status("NAME NOT FOUND"), Some(0xC000_0034));
        assert_eq!(result_status("ACCESS DENIED"), Some(0xC000_0022));
        assert_eq!(result_status("0xC0000999"), Some(0xC000_0999));
        assert_eq!(result_status("no such thing"), None);
        assert_eq!(result_text(0xC000_00AE), "PIPE BUSY");
        assert_eq!(result_text(0xC000_0999), "0xC0000999");
        for (c, t) in RESULTS {
            assert_eq!(result_status(t), Some(*c), "{t}");
        }
    }

    #[test]
    fn network_paths() {
        let (a, b) = parse_net_path("10.1.2.15:50123 -> 10.1.2.20:8085").expect("numeric");
        assert_eq!(a.to_string(), "10.1.2.15:50123");
        assert_eq!(b.port(), 8085);
        assert!(parse_net_path("web01.corp:50123 -> db:ms-sql-s").is_none());
        let (a, _) = parse_net_path("fe80::1:443 -> ::1:50000").expect("v6");
        assert_eq!(a.port(), 443);
    }
}
