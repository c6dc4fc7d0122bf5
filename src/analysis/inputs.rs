//! Format-specific facts about one input, typed per format. The pipeline fills them while reading;
//! `summary.json` merges `FormatStats::to_json` into the input's entry (keys and values as
//! before: absent `Option`s are left out), and the stdout summary reads the typed fields.
//! serde_json keeps key order here (its `preserve_order` feature is on in this build), so the field
//! order of each struct is the key order of `summary.json`: append new fields at the end.

use std::collections::BTreeMap;

use serde::Serialize;

/// What one reader learnt about its input beyond the common `InputSummary` fields.
#[derive(Clone, Debug, Default)]
pub enum FormatStats {
    /// Nothing format-specific (unreadable input, or a capture without SMB).
    #[default]
    None,
    Capture(CaptureStats),
    Etl(EtlStats),
    TextLog(TextLogStats),
    EventLog(EventLogStats),
    Procmon(ProcmonStats),
}

impl FormatStats {
    /// The facts as `summary.json` keys.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = match self {
            FormatStats::None => return serde_json::Map::new(),
            FormatStats::Capture(s) => serde_json::to_value(s),
            FormatStats::Etl(s) => serde_json::to_value(s),
            FormatStats::TextLog(s) => serde_json::to_value(s),
            FormatStats::EventLog(s) => serde_json::to_value(s),
            FormatStats::Procmon(s) => serde_json::to_value(s),
        };
        match v {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    }

    /// How much of a record-oriented input was read: (count, `lines` or `records`).
    pub fn lines_or_records(&self) -> Option<(u64, &'static str)> {
        match self {
            FormatStats::TextLog(s) => Some((s.lines, "lines")),
            FormatStats::Etl(s) => Some((s.records, "records")),
            FormatStats::EventLog(s) => Some((s.records, "records")),
            FormatStats::Procmon(s) => s.records.map(|r| (r, "records")),
            FormatStats::None | FormatStats::Capture(_) => None,
        }
    }

    /// The ETL facts, starting them when this input has none yet.
    pub fn etl(&mut self) -> &mut EtlStats {
        if !matches!(self, FormatStats::Etl(_)) {
            *self = FormatStats::Etl(EtlStats::default());
        }
        match self {
            FormatStats::Etl(s) => s,
            _ => unreachable!("set just above"),
        }
    }

    /// The Process Monitor facts, starting them when this input has none yet.
    pub fn procmon(&mut self) -> &mut ProcmonStats {
        if !matches!(self, FormatStats::Procmon(_)) {
            *self = FormatStats::Procmon(ProcmonStats::default());
        }
        match self {
            FormatStats::Procmon(s) => s,
            _ => unreachable!("set just above"),
        }
    }
}

/// A packet capture's SMB counts (present when the capture carried SMB).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CaptureStats {
    pub smb_pipe_opens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smb_encrypted_sessions: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct TextLogStats {
    pub lines: u64,
    /// Timestamp format detected, empty when none was found.
    pub log_format: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EventLogStats {
    pub records: u64,
}

/// What the pipe analyzer had to drop (reported only when something was).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PipeLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evicted_irps: Option<u64>,
    pub evicted_handles: u64,
    pub pipes_dropped: u64,
    pub clients_dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handles_not_tracked: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EtlStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logfile_header: Option<LogfileFacts>,
    pub records: u64,
    pub pipes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipe_limits: Option<PipeLimits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ndis_fragments_dropped: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcpip_events: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_owners: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pktmon: Option<PktmonStats>,
    pub undecoded_providers: Vec<UndecodedProvider>,
}

/// The trace's logfile header, as far as it matters for reading it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LogfileFacts {
    pub pointer_size: u32,
    pub clock_type: u32,
    pub perf_freq: i64,
    pub number_of_processors: u32,
    pub logger_name: String,
    pub buffer_size: u32,
    pub os_build: u32,
}

/// Records of a provider no decoder handles.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UndecodedProvider {
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    pub records: u64,
}

/// Packet Monitor events of a trace.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PktmonStats {
    pub events: u64,
    pub packets: u64,
    pub repeated_appearances: u64,
    pub drops: u64,
    pub truncated: u64,
    pub not_ip: u64,
    /// Packet type number to events (numeric order; keys are text in JSON).
    pub packet_types: BTreeMap<u16, u64>,
    pub components: Vec<PktmonComponentStats>,
    pub paths: Vec<PktmonPath>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PktmonComponentStats {
    pub id: u16,
    pub name: String,
    pub events: u64,
    pub drops: u64,
}

/// One path packets took through the components, with how many took it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PktmonPath {
    pub components: Vec<u16>,
    pub names: Vec<String>,
    pub packets: u64,
}

/// A Process Monitor log (PML or CSV export). Every field is optional: a log that fails part-way
/// reports what it got to.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcmonStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pml_header: Option<PmlFacts>,
    /// Columns of a CSV export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock: Option<ProcmonClock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_not_analysed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipe_limits: Option<PipeLimits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_events: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_owners: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PmlFacts {
    pub version: u32,
    pub is_64bit: bool,
    pub computer_name: String,
    pub windows: String,
    pub logical_processors: u32,
    pub events_in_header: u32,
    pub process_table_entries: u32,
}

/// How a CSV export's local times were put on the UTC clock.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcmonClock {
    pub offset_s: f64,
    /// `user`, `estimated` or `none`.
    pub source: &'static str,
    pub columns: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assumed: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchors_matched: Option<u64>,
}
