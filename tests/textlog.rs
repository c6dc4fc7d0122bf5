//! Text log reader: formats, records, severity, error identities, offsets.

use ipcscope::ingest::textlog::{
    detect_format, extract_errors, parse_log_offset_arg, parse_offset, read_all, ErrorId, ErrorKind, LogLine, Severity,
    TextLogOptions, TextLogReader, TsFormat,
};

fn read(text: &str) -> (Option<TsFormat>, Vec<LogLine>) {
    read_all(text.as_bytes(), TextLogOptions { syslog_year: Some(2026), ..Default::default() })
}

/// ns since epoch for a UTC civil time.
fn ns(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64, frac_ns: i64) -> i64 {
    let days = ipcscope::ingest::textlog::days_from_civil(y, mo, d);
    (days * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000_000 + frac_ns
}

fn has(errors: &[ErrorId], kind: ErrorKind, code: Option<i64>, name: &str) -> bool {
    errors.iter().any(|e| e.kind == kind && e.code == code && e.name == name)
}

fn ids(text: &str) -> Vec<ErrorId> {
    extract_errors(text)
}

// ---------------------------------------------------------------- formats

#[test]
fn iso_log4net_comma_fraction() {
    let (f, l) = read("2026-11-22 10:15:03,123 [12] ERROR Net.Client - send failed\n2026-11-22 10:15:04,000 [12] INFO Net.Client - ok\n");
    assert_eq!(f, Some(TsFormat::Iso8601));
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].ts_local_ns, Some(ns(2026, 11, 22, 10, 15, 3, 123_000_000)));
    assert_eq!(l[0].zone_offset_s, None);
    assert_eq!(l[0].severity, Severity::Error);
    assert_eq!(l[1].severity, Severity::Info);
    assert_eq!(l[0].line_no, 1);
    assert_eq!(l[1].line_no, 2);
    assert_eq!(l[0].body(), "[12] ERROR Net.Client - send failed");
}

#[test]
fn iso_t_separator_and_zones() {
    let (f, l) = read(
        "2026-11-22T10:15:03.1234567Z one\n2026-11-22T10:15:03+01:00 two\n2026-11-22T10:15:03-05:30 three\n2026-11-22T10:15:03.5+0100 four\n",
    );
    assert_eq!(f, Some(TsFormat::Iso8601));
    assert_eq!(l.len(), 4);
    assert_eq!(l[0].ts_local_ns, Some(ns(2026, 11, 22, 10, 15, 3, 123_456_700)));
    assert_eq!(l[0].zone_offset_s, Some(0));
    assert_eq!(l[1].zone_offset_s, Some(3600));
    assert_eq!(l[2].zone_offset_s, Some(-(5 * 3600 + 30 * 60)));
    assert_eq!(l[3].zone_offset_s, Some(3600));
    // UTC = local - zone.
    assert_eq!(l[1].ts_utc_ns(0.0), Some(ns(2026, 11, 22, 9, 15, 3, 0)));
    assert_eq!(l[2].ts_utc_ns(0.0), Some(ns(2026, 11, 22, 15, 45, 3, 0)));
    assert_eq!(l[1].body(), "two");
}

#[test]
fn serilog_space_zone_and_short_levels() {
    let (f, l) = read(
        "2026-11-22 10:15:03.123 +01:00 [ERR] Pipe failed\n2026-11-22 10:15:04.000 +01:00 [WRN] slow\n2026-11-22 10:15:05.000 +01:00 [INF] ok\n2026-11-22 10:15:06.000 +01:00 [DBG] x\n",
    );
    assert_eq!(f, Some(TsFormat::Iso8601));
    assert_eq!(l[0].zone_offset_s, Some(3600));
    assert_eq!(l[0].ts_local_ns, Some(ns(2026, 11, 22, 10, 15, 3, 123_000_000)));
    let sev: Vec<Severity> = l.iter().map(|x| x.severity).collect();
    assert_eq!(sev, vec![Severity::Error, Severity::Warning, Severity::Info, Severity::Debug]);
    assert_eq!(l[0].body(), "[ERR] Pipe failed");
}

#[test]
fn python_logging_and_nlog() {
    let (f, l) = read("2026-11-22 10:15:03,123 - worker - WARNING - retrying\n");
    assert_eq!(f, Some(TsFormat::Iso8601));
    assert_eq!(l[0].severity, Severity::Warning);
    let (f, l) = read("2026-11-22 10:15:03.1234|FATAL|App.Main|boom\n2026-11-22 10:15:03.2000|Trace|App.Main|x\n");
    assert_eq!(f, Some(TsFormat::Iso8601));
    assert_eq!(l[0].severity, Severity::Error);
    assert_eq!(l[1].severity, Severity::Debug);
    assert_eq!(l[0].ts_local_ns, Some(ns(2026, 11, 22, 10, 15, 3, 123_400_000)));
}

#[test]
fn iis_w3c_is_utc_and_uses_status_fields() {
    let text = "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: 2026-11-22 10:00:00\n#Fields: date time s-ip cs-method cs-uri-stem s-port c-ip sc-status sc-substatus sc-win32-status time-taken\n2026-11-22 10:15:03 10.0.0.5 GET /api 443 10.0.0.9 200 0 0 15\n2026-11-22 10:15:04 10.0.0.5 POST /api 443 10.0.0.9 500 0 10054 30000\n";
    let (f, l) = read(text);
    assert_eq!(f, Some(TsFormat::IisW3c));
    assert_eq!(l.len(), 6);
    assert_eq!(l[0].ts_local_ns, None);
    assert_eq!(l[3].ts_local_ns, None);
    assert_eq!(l[4].ts_local_ns, Some(ns(2026, 11, 22, 10, 15, 3, 0)));
    assert_eq!(l[4].zone_offset_s, Some(0));
    assert!(l[4].errors.is_empty(), "{:?}", l[4].errors);
    assert_eq!(l[4].severity, Severity::Info);
    assert_eq!(l[5].severity, Severity::Error);
    assert!(has(&l[5].errors, ErrorKind::Winsock, Some(10054), "WSAECONNRESET"));
    // Port 443 and time-taken 30000 are not errors.
    assert_eq!(l[5].errors.len(), 1);
    assert_eq!(l[5].line_no, 6);
}

#[test]
fn syslog_3164_uses_caller_year_and_pri() {
    let text = "<11>Nov 22 10:15:03 host1 app[123]: connection lost\nNov  2 01:02:03 host1 app[123]: WARNING disk\n";
    let (f, l) = read(text);
    assert_eq!(f, Some(TsFormat::Syslog3164));
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].ts_local_ns, Some(ns(2026, 11, 22, 10, 15, 3, 0)));
    assert_eq!(l[0].severity, Severity::Error); // PRI 11 = user.err
    assert_eq!(l[1].ts_local_ns, Some(ns(2026, 11, 2, 1, 2, 3, 0)));
    assert_eq!(l[1].severity, Severity::Warning);
    assert_eq!(l[0].zone_offset_s, None);
}

#[test]
fn syslog_3164_year_rolls_over_in_january() {
    let (_, l) = read("Dec 31 23:59:59 h a: x\nJan  1 00:00:01 h a: y\n");
    assert_eq!(l[0].ts_local_ns, Some(ns(2026, 12, 31, 23, 59, 59, 0)));
    assert_eq!(l[1].ts_local_ns, Some(ns(2027, 1, 1, 0, 0, 1, 0)));
}

#[test]
fn syslog_5424() {
    let text = "<34>1 2026-11-22T10:15:03.123Z host app 42 ID47 - BOM'su root' failed\n<165>1 2026-11-22T10:15:04.000+01:00 host app - - - notice\n";
    let (f, l) = read(text);
    assert_eq!(f, Some(TsFormat::Syslog5424));
    assert_eq!(l[0].ts_local_ns, Some(ns(2026, 11, 22, 10, 15, 3, 123_000_000)));
    assert_eq!(l[0].zone_offset_s, Some(0));
    assert_eq!(l[0].severity, Severity::Error); // 34 = auth.crit
    assert_eq!(l[1].zone_offset_s, Some(3600));
    assert_eq!(l[1].severity, Severity::Info); // 165 = local4.notice
}

#[test]
fn us_datetime_12_and_24_hour() {
    let (f, l) = read("3/30/2009 2:02:11 PM Error: x\n3/30/2009 12:00:00 AM y\n3/30/2009 12:30:00 PM z\n");
    assert_eq!(f, Some(TsFormat::UsDateTime));
    assert_eq!(l[0].ts_local_ns, Some(ns(2009, 3, 30, 14, 2, 11, 0)));
    assert_eq!(l[1].ts_local_ns, Some(ns(2009, 3, 30, 0, 0, 0, 0)));
    assert_eq!(l[2].ts_local_ns, Some(ns(2009, 3, 30, 12, 30, 0, 0)));
    assert_eq!(l[0].severity, Severity::Error);
    let (f, l) = read("12/01/2026 14:02:11 started\n12/01/2026 14:02:12.250 next\n");
    assert_eq!(f, Some(TsFormat::UsDateTime));
    assert_eq!(l[0].ts_local_ns, Some(ns(2026, 12, 1, 14, 2, 11, 0)));
    assert_eq!(l[1].ts_local_ns, Some(ns(2026, 12, 1, 14, 2, 12, 250_000_000)));
}

#[test]
fn epoch_seconds_and_millis() {
    let (f, l) = read("1795342503 INFO a\n1795342504.250 ERROR b\n");
    assert_eq!(f, Some(TsFormat::EpochS));
    assert_eq!(l[0].ts_local_ns, Some(1_795_342_503_000_000_000));
    assert_eq!(l[1].ts_local_ns, Some(1_795_342_504_250_000_000));
    assert_eq!(l[0].zone_offset_s, Some(0));
    let (f, l) = read("1795342503123 a\n1795342503999 b\n");
    assert_eq!(f, Some(TsFormat::EpochMs));
    assert_eq!(l[1].ts_local_ns, Some(1_795_342_503_999_000_000));
    assert_eq!(l.len(), 2);
}

#[test]
fn format_names_are_stable() {
    let names: Vec<&str> = TsFormat::ALL.iter().map(|f| f.name()).collect();
    for n in ["iso8601", "iis_w3c", "syslog3164", "syslog5424", "us_datetime", "epoch_s", "epoch_ms"] {
        assert!(names.contains(&n), "{n}");
        assert_eq!(TsFormat::from_name(n).map(|f| f.name()), Some(n));
    }
    assert_eq!(detect_format(b"2026-11-22T10:15:03Z x\n"), Some(TsFormat::Iso8601));
    assert_eq!(detect_format(b"no timestamps here\nat all\n"), None);
}

#[test]
fn format_is_detected_once_per_file() {
    // Majority is ISO; the lone epoch-looking line is a continuation, not a new record.
    let (f, l) =
        read("2026-11-22 10:15:03 a\n2026-11-22 10:15:04 b\n1795342503 looks like epoch\n2026-11-22 10:15:05 c\n");
    assert_eq!(f, Some(TsFormat::Iso8601));
    assert_eq!(l.len(), 3);
    assert!(l[1].text.ends_with("\n1795342503 looks like epoch"));
}

// ---------------------------------------------------------------- records

#[test]
fn continuation_lines_join_the_record() {
    let text = "2026-11-22 10:15:03,123 ERROR Client - Receive failed\r\nSystem.Net.Sockets.SocketException (0x80004005): An existing connection was forcibly closed by the remote host\r\n   at System.Net.Sockets.Socket.Receive(Byte[] buffer)\r\n   at Client.Loop()\r\n2026-11-22 10:15:04,000 INFO Client - reconnecting\r\n";
    let (_, l) = read(text);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].physical_lines, 4);
    assert_eq!(l[0].line_no, 1);
    assert_eq!(l[1].line_no, 5);
    assert!(l[0].text.contains("\n   at Client.Loop()"));
    assert!(!l[0].text.contains('\r'));
    assert!(has(&l[0].errors, ErrorKind::Winsock, Some(10054), "WSAECONNRESET"));
    assert!(has(&l[0].errors, ErrorKind::DotNet, Some(10054), "SocketException"));
    assert!(has(&l[0].errors, ErrorKind::HResult, Some(0x8000_4005), "E_FAIL"));
    assert!(l[1].errors.is_empty());
}

#[test]
fn lines_before_the_first_timestamp_stand_alone() {
    let (_, l) = read("Log started\n=====\n2026-11-22 10:15:03 a\n  more\n");
    assert_eq!(l.len(), 3);
    assert_eq!(l[0].ts_local_ns, None);
    assert_eq!(l[1].line_no, 2);
    assert_eq!(l[2].physical_lines, 2);
}

#[test]
fn long_lines_are_truncated_and_flagged() {
    let mut text = String::from("2026-11-22 10:15:03 ");
    text.push_str(&"x".repeat(200_000));
    text.push_str("\n2026-11-22 10:15:04 next\n");
    let (_, l) = read_all(text.as_bytes(), TextLogOptions { max_line_bytes: 1000, ..Default::default() });
    assert_eq!(l.len(), 2);
    assert!(l[0].truncated);
    assert_eq!(l[0].text.len(), 1000);
    assert!(!l[1].truncated);
    assert_eq!(l[1].body(), "next");
}

#[test]
fn record_cap_limits_continuations() {
    let mut text = String::from("2026-11-22 10:15:03 start\n");
    for _ in 0..10_000 {
        text.push_str("   at Frame.Method()\n");
    }
    let (_, l) = read_all(text.as_bytes(), TextLogOptions { max_record_bytes: 4096, ..Default::default() });
    assert_eq!(l.len(), 1);
    assert!(l[0].truncated);
    assert!(l[0].text.len() <= 4096);
    assert_eq!(l[0].physical_lines, 10_001);
}

#[test]
fn non_utf8_and_bom_are_tolerated() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(b"2026-11-22 10:15:03 caf\xe9 \xff\xfe ERROR\n2026-11-22 10:15:04 ok\n");
    let (f, l) = read_all(&bytes[..], TextLogOptions::default());
    assert_eq!(f, Some(TsFormat::Iso8601));
    assert_eq!(l.len(), 2);
    assert!(l[0].text.contains('\u{FFFD}'));
    assert_eq!(l[0].severity, Severity::Error);
}

#[test]
fn garbage_never_panics() {
    let mut seed: u64 = 12345;
    for round in 0..200 {
        let mut b = Vec::new();
        for _ in 0..(round * 7 % 500) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let pool = b"0123456789-:T ZE+.,/<>[]#\nAPMerrorcode0xC0000x8007WSAE()\r\xff";
            b.push(pool[(seed as usize) % pool.len()]);
        }
        let (_, l) = read_all(&b[..], TextLogOptions::default());
        for x in l {
            let _ = extract_errors(&x.text);
        }
    }
    let (_, l) = read_all(&b""[..], TextLogOptions::default());
    assert!(l.is_empty());
}

#[test]
fn streaming_reader_exposes_format() {
    let mut r = TextLogReader::new(&b"Nov 22 10:15:03 h a: x\n"[..]);
    assert_eq!(r.format(), Some(TsFormat::Syslog3164));
    assert_eq!(r.by_ref().count(), 1);
    assert!(r.io_error().is_none());
}

// ---------------------------------------------------------------- severity

#[test]
fn severity_tokens() {
    let cases = [
        ("2026-11-22 10:15:03 [E] x", Severity::Error),
        ("2026-11-22 10:15:03 [W] x", Severity::Warning),
        ("2026-11-22 10:15:03 [I] x", Severity::Info),
        ("2026-11-22 10:15:03 [D] x", Severity::Debug),
        ("2026-11-22 10:15:03 CRITICAL x", Severity::Error),
        ("2026-11-22 10:15:03 ERR x", Severity::Error),
        ("2026-11-22 10:15:03 WARN x", Severity::Warning),
        ("2026-11-22 10:15:03 TRACE x", Severity::Debug),
        ("2026-11-22 10:15:03 level=error msg=x", Severity::Error),
        ("2026-11-22 10:15:03 [warning] x", Severity::Warning),
        ("2026-11-22 10:15:03 Error connecting", Severity::Error),
        ("2026-11-22 10:15:03 no level here, the errors were fine", Severity::Unknown),
        ("2026-11-22 10:15:03 ERROR_PIPE_BUSY seen", Severity::Unknown),
    ];
    for (line, want) in cases {
        let (_, l) = read(line);
        assert_eq!(l[0].severity, want, "{line}");
    }
}

// ---------------------------------------------------------------- error identities

#[test]
fn winsock_by_name_and_number() {
    let e = ids("recv failed: WSAECONNRESET");
    assert!(has(&e, ErrorKind::Winsock, Some(10054), "WSAECONNRESET"));
    for (code, name) in [
        (10054, "WSAECONNRESET"),
        (10053, "WSAECONNABORTED"),
        (10060, "WSAETIMEDOUT"),
        (10061, "WSAECONNREFUSED"),
        (10048, "WSAEADDRINUSE"),
        (10055, "WSAENOBUFS"),
        (10065, "WSAEHOSTUNREACH"),
        (10052, "WSAENETRESET"),
        (10057, "WSAENOTCONN"),
        (10058, "WSAESHUTDOWN"),
    ] {
        for text in [
            format!("send failed with error {code}"),
            format!("socket error: {code}"),
            format!("failed ({code})"),
            format!("x {name} y"),
        ] {
            let e = ids(&text);
            assert!(has(&e, ErrorKind::Winsock, Some(code), name), "{text}: {e:?}");
        }
    }
    assert!(has(&ids("WSAGetLastError() = 10060"), ErrorKind::Winsock, Some(10060), "WSAETIMEDOUT"));
    assert!(has(&ids("[WinError 10054] An existing"), ErrorKind::Winsock, Some(10054), "WSAECONNRESET"));
    assert!(has(&ids("Connection reset (os error 10054)"), ErrorKind::Winsock, Some(10054), "WSAECONNRESET"));
    assert!(has(&ids("SocketErrorCode: ConnectionRefused"), ErrorKind::Winsock, Some(10061), "WSAECONNREFUSED"));
    assert!(has(&ids("NativeErrorCode=10053"), ErrorKind::Winsock, Some(10053), "WSAECONNABORTED"));
}

#[test]
fn win32_pipe_errors() {
    for (code, name) in [
        (2, "ERROR_FILE_NOT_FOUND"),
        (231, "ERROR_PIPE_BUSY"),
        (232, "ERROR_NO_DATA"),
        (233, "ERROR_PIPE_NOT_CONNECTED"),
        (535, "ERROR_PIPE_CONNECTED"),
        (109, "ERROR_BROKEN_PIPE"),
        (121, "ERROR_SEM_TIMEOUT"),
    ] {
        for text in [
            format!("CreateFile failed, Win32 error {code}"),
            format!("code {code}"),
            format!("ConnectNamedPipe: {name}"),
        ] {
            assert!(has(&ids(&text), ErrorKind::Win32, Some(code), name), "{text}: {:?}", ids(&text));
        }
    }
    assert!(has(&ids("GetLastError()=231"), ErrorKind::Win32, Some(231), "ERROR_PIPE_BUSY"));
    assert!(has(&ids("Win32 error 1784 on write"), ErrorKind::Win32, Some(1784), "Win32 error 1784"));
}

#[test]
fn errno_family() {
    assert!(has(&ids("read: Connection reset by peer"), ErrorKind::Errno, Some(104), "ECONNRESET"));
    assert!(has(&ids("write: Broken pipe"), ErrorKind::Errno, Some(32), "EPIPE"));
    for n in ["ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNREFUSED", "EADDRNOTAVAIL", "EADDRINUSE"] {
        let e = ids(&format!("failed: {n}"));
        assert!(e.iter().any(|x| x.kind == ErrorKind::Errno && x.name == n), "{n}: {e:?}");
    }
    let e = ids("ConnectionResetError: [Errno 104] Connection reset by peer");
    assert!(has(&e, ErrorKind::Errno, Some(104), "ECONNRESET"));
    assert_eq!(e.iter().filter(|x| x.kind == ErrorKind::Errno).count(), 1, "{e:?}");
    assert!(has(&ids("connect() failed, errno=111"), ErrorKind::Errno, Some(111), "ECONNREFUSED"));
    // Lower-case words are not errno names.
    assert!(ids("the epipe module").is_empty());
}

#[test]
fn dotnet_exceptions_and_messages() {
    let cases: [(&str, ErrorKind, i64, &str); 12] = [
        ("An existing connection was forcibly closed by the remote host", ErrorKind::Winsock, 10054, "WSAECONNRESET"),
        (
            "No connection could be made because the target machine actively refused it 127.0.0.1:9000",
            ErrorKind::Winsock,
            10061,
            "WSAECONNREFUSED",
        ),
        (
            "A connection attempt failed because the connected party did not properly respond after a period of time",
            ErrorKind::Winsock,
            10060,
            "WSAETIMEDOUT",
        ),
        (
            "Only one usage of each socket address (protocol/network address/port) is normally permitted",
            ErrorKind::Winsock,
            10048,
            "WSAEADDRINUSE",
        ),
        (
            "An established connection was aborted by the software in your host machine",
            ErrorKind::Winsock,
            10053,
            "WSAECONNABORTED",
        ),
        ("All pipe instances are busy.", ErrorKind::Win32, 231, "ERROR_PIPE_BUSY"),
        ("RemotingException: Failed to connect to an IPC Port: Port is Busy", ErrorKind::Win32, 231, "ERROR_PIPE_BUSY"),
        (
            "Failed to connect to an IPC Port: The system cannot find the file specified.",
            ErrorKind::Win32,
            2,
            "ERROR_FILE_NOT_FOUND",
        ),
        ("The system cannot find the file specified", ErrorKind::Win32, 2, "ERROR_FILE_NOT_FOUND"),
        ("IOException: The pipe is being closed.", ErrorKind::Win32, 232, "ERROR_NO_DATA"),
        ("Connection reset by peer", ErrorKind::Errno, 104, "ECONNRESET"),
        ("Broken pipe", ErrorKind::Errno, 32, "EPIPE"),
    ];
    for (text, kind, code, name) in cases {
        let e = ids(text);
        assert!(has(&e, kind, Some(code), name), "{text}: {e:?}");
    }
    let e = ids("System.Runtime.Remoting.RemotingException: Failed to connect to an IPC Port: Port is Busy: All pipe instances are busy.");
    assert!(has(&e, ErrorKind::DotNet, Some(231), "RemotingException"), "{e:?}");
    for ex in [
        "SocketException",
        "IOException",
        "RemotingException",
        "TimeoutException",
        "WebException",
        "ObjectDisposedException",
    ] {
        let e = ids(&format!("Unhandled: System.Foo.{ex}: something"));
        assert!(e.iter().any(|x| x.kind == ErrorKind::DotNet && x.name == ex), "{ex}: {e:?}");
    }
    let e = ids("System.ObjectDisposedException: Cannot access a disposed object.");
    assert!(has(&e, ErrorKind::DotNet, None, "ObjectDisposedException"));
}

#[test]
fn hresult_and_ntstatus() {
    let e = ids("COMException (0x800700E7): All pipe instances are busy");
    assert!(has(&e, ErrorKind::HResult, Some(0x8007_00E7), "HRESULT 0x800700E7"), "{e:?}");
    assert!(has(&e, ErrorKind::Win32, Some(231), "ERROR_PIPE_BUSY"));
    let e = ids("hr=0x80072746");
    assert!(has(&e, ErrorKind::Winsock, Some(10054), "WSAECONNRESET"), "{e:?}");
    assert!(has(&e, ErrorKind::HResult, Some(0x8007_2746), "HRESULT 0x80072746"), "{e:?}");
    assert!(has(&ids("failed 0x80004005"), ErrorKind::HResult, Some(0x8000_4005), "E_FAIL"));
    assert!(has(&ids("HResult=-2147467259"), ErrorKind::HResult, Some(0x8000_4005), "E_FAIL"));
    let e = ids("NtCreateNamedPipeFile returned 0xC00000AE");
    assert!(has(&e, ErrorKind::NtStatus, Some(0xC000_00AE), "STATUS_PIPE_BUSY"), "{e:?}");
    assert!(has(&ids("status 0xc000014b"), ErrorKind::NtStatus, Some(0xC000_014B), "STATUS_PIPE_BROKEN"));
    assert!(has(&ids("STATUS_PIPE_DISCONNECTED"), ErrorKind::NtStatus, Some(0xC000_00B0), "STATUS_PIPE_DISCONNECTED"));
    // Other hex values are not error codes.
    assert!(ids("handle 0x00001234 ptr 0x7ffe12345678 id 0x12345678").is_empty());
}

// ---------------------------------------------------------------- false positives

#[test]
fn ports_addresses_and_timestamps_are_not_errors() {
    for text in [
        "2026-11-22 10:10:54 connected to 10.0.0.1:10054",
        "listening on port 10054",
        "listening on 0.0.0.0:10061 and [::1]:10060",
        "took 10054 ms, sent 231 bytes, 232 packets",
        "version 10.0.10054.2",
        "pid=10054 tid=231",
        "process exited with exit code 2",
        "HTTP status code 232",
        "request id 10054-231",
        "build 10048 (retry 2)",
        "retry (2) of 5",
        "user ERROR_COUNT is fine",
        "C:\\logs\\10054\\231.txt",
        "1795342503 epoch only",
    ] {
        let e = ids(text);
        assert!(e.is_empty(), "{text}: {e:?}");
    }
}

#[test]
fn duplicate_mentions_are_reported_once() {
    let e = ids("WSAECONNRESET (10054): An existing connection was forcibly closed by the remote host; error 10054");
    assert_eq!(e.iter().filter(|x| x.name == "WSAECONNRESET").count(), 1, "{e:?}");
}

// ---------------------------------------------------------------- offsets

#[test]
fn user_offsets() {
    assert_eq!(parse_offset("+01:00"), Ok(3600.0));
    assert_eq!(parse_offset("-05:30"), Ok(-19800.0));
    assert_eq!(parse_offset("+3600.8"), Ok(3600.8));
    assert_eq!(parse_offset("-2.5"), Ok(-2.5));
    assert_eq!(parse_offset("+00:00:01.5"), Ok(1.5));
    assert_eq!(parse_offset("250ms"), Ok(0.25));
    assert_eq!(parse_offset("Z"), Ok(0.0));
    for bad in ["", "+", "abc", "+1:99", "--5", "+NaN", "inf", "+01:00:00:00", "1:"] {
        assert!(parse_offset(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_log_offset_arg("C:\\logs\\a=b.log=+01:00"), Ok(("C:\\logs\\a=b.log".to_string(), 3600.0)));
    assert!(parse_log_offset_arg("noequals").is_err());
    // The file offset is used only when the line has no zone of its own.
    let (_, l) = read("2026-11-22 10:15:03 a\n2026-11-22T10:15:03Z b\n");
    assert_eq!(l[0].ts_utc_ns(3600.0), Some(ns(2026, 11, 22, 9, 15, 3, 0)));
    assert_eq!(l[1].ts_utc_ns(3600.0), Some(ns(2026, 11, 22, 10, 15, 3, 0)));
}

// ---------------------------------------------------------------- encodings

fn utf16(text: &str, le: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if le { &[0xFF, 0xFE] } else { &[0xFE, 0xFF] });
    }
    for u in text.encode_utf16() {
        out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
    }
    out
}

#[test]
fn utf16_logs_are_decoded() {
    let text = "2026-11-22 10:15:03 ERROR Pipe \u{1F600} failed: All pipe instances are busy\r\n  at X\r\n2026-11-22 10:15:04 INFO ok\r\n";
    for (le, bom) in [(true, true), (false, true), (true, false)] {
        let bytes = utf16(text, le, bom);
        // A tiny buffer splits code units and surrogate pairs across reads.
        let rd = std::io::BufReader::with_capacity(3, &bytes[..]);
        let (f, l) = read_all(rd, TextLogOptions::default());
        assert_eq!(f, Some(TsFormat::Iso8601), "le={le} bom={bom}");
        assert_eq!(l.len(), 2);
        assert!(l[0].text.contains('\u{1F600}'));
        assert!(l[0].text.ends_with("\n  at X"));
        assert!(has(&l[0].errors, ErrorKind::Win32, Some(231), "ERROR_PIPE_BUSY"));
        assert_eq!(l[1].body(), "INFO ok");
    }
    // Odd trailing byte: replacement char, no panic.
    let mut bytes = utf16("2026-11-22 10:15:03 x", true, true);
    bytes.push(0x41);
    let (_, l) = read_all(&bytes[..], TextLogOptions::default());
    assert!(l[0].text.ends_with('\u{FFFD}'));
    // Short UTF-8 inputs pass through unchanged.
    let (_, l) = read_all(&b"ab"[..], TextLogOptions::default());
    assert_eq!(l[0].text, "ab");
}

#[test]
fn windows_firewall_w3c_log_is_local_time() {
    let text = "#Version: 1.5\n#Software: Microsoft Windows Firewall\n#Time Format: Local\n#Fields: date time action protocol src-ip dst-ip src-port dst-port size\n\n2026-11-22 10:15:03 DROP TCP 10.0.0.9 10.0.0.5 49332 10054 52\n";
    let (f, l) = read(text);
    assert_eq!(f, Some(TsFormat::Iso8601));
    let last = l.last().unwrap();
    assert_eq!(last.ts_local_ns, Some(ns(2026, 11, 22, 10, 15, 3, 0)));
    assert_eq!(last.zone_offset_s, None);
    assert!(last.errors.is_empty(), "{:?}", last.errors);
}
