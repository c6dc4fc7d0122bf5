//! ETL writer **for tests, samples and benchmarks only** (not a general ETW logger).
//!
//! Produces files our reader and the real format agree on: buffer 0 holds the SYSTEM64
//! logfile header record (TRACE_LOGFILE_HEADER, x64 layout, QPC clock at 10 MHz); every other
//! record is a 64-bit EVENT_HEADER laid out exactly like the Kernel-File records of real traces
//! (checked byte for byte against net.4.5.2.x64 in tests/etl_corpus.rs). Records go to per-CPU
//! buffers that are flushed when full, so, like real traces, file order is not time order.
//!
//! ```no_run
//! use ipcscope::ingest::etl::writer::*;
//! let items = vec![WriterItem::new(132_404_548_207_934_501, 4242, 77, WriterEvent::KernelFileCreate {
//!     irp: 0x1, file_object: 0x2, issuing_thread_id: 77, create_options: 0x0100_0000,
//!     create_attributes: 0, share_access: 3, file_name: r"\Device\NamedPipe\svc".into() })];
//! let bytes = write_etl_to_vec(&WriterConfig::default(), items).unwrap();
//! ```

use super::decode::{KERNEL_FILE_PROVIDER, NDIS_PACKET_CAPTURE_PROVIDER};
use super::pktmon::PKTMON_PROVIDER;
use super::record::Guid;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Session parameters written into the logfile header.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Buffer size on disk (≥ 1024, multiple of 8).
    pub buffer_size: u32,
    /// TRACE_LOGFILE_HEADER.StartTime (FILETIME); event times are relative to it.
    pub start_time: i64,
    /// TRACE_LOGFILE_HEADER.EndTime (FILETIME).
    pub end_time: i64,
    pub number_of_processors: u32,
    pub os_build: u32,
    pub logger_name: String,
    pub log_file_name: String,
    /// Raw QPC value of record 0 (any base works; kept non-zero like real traces).
    pub header_timestamp: i64,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            buffer_size: 64 * 1024,
            start_time: 132_404_548_206_236_167,
            end_time: 132_404_548_306_935_923,
            number_of_processors: 4,
            os_build: 19045,
            logger_name: "ipcscope-test".into(),
            log_file_name: r"C:\ipcscope\test.etl".into(),
            header_timestamp: 1_000_000_000,
        }
    }
}

/// STACK_TRACE64 extended item (ExtType 6): MatchId then return addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackTrace {
    pub match_id: u64,
    pub addresses: Vec<u64>,
}

/// Events the writer knows how to lay out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriterEvent {
    /// Kernel-File 12 v1.
    KernelFileCreate {
        irp: u64,
        file_object: u64,
        issuing_thread_id: u32,
        create_options: u32,
        create_attributes: u32,
        share_access: u32,
        file_name: String,
    },
    /// Kernel-File 13 v1.
    KernelFileCleanup { irp: u64, file_object: u64, file_key: u64, issuing_thread_id: u32 },
    /// Kernel-File 14 v1.
    KernelFileClose { irp: u64, file_object: u64, file_key: u64, issuing_thread_id: u32 },
    /// Kernel-File 24 v0.
    KernelFileOperationEnd { irp: u64, extra_information: u64, status: u32 },
    /// NDIS-PacketCapture 1001 v0 (`keyword` carries the packet start/end/direction bits).
    NdisFragment { miniport_if_index: u32, lower_if_index: u32, keyword: u64, fragment: Vec<u8> },
    /// PktMon 160 (packet) or 170 (`dropped`), v0: the descriptor of demikernel_PktMon.etl's
    /// packet events (channel 0, level 4, keyword 0x10).
    PktmonPacket {
        dropped: bool,
        group_id: u64,
        pkt_number: u16,
        appearance: u16,
        dir_tag: u16,
        packet_type: u16,
        component_id: u16,
        edge_id: u16,
        filter_id: u16,
        drop_reason: u32,
        drop_location: u32,
        original_size: u16,
        payload: Vec<u8>,
    },
    /// PktMon 20 v0 component (keyword 0x2, as in the real trace).
    PktmonComponent { id: u16, comp_type: u16, name: String, description: String },
    /// Any manifest event with a prebuilt payload.
    Raw {
        provider: Guid,
        id: u16,
        version: u8,
        channel: u8,
        level: u8,
        opcode: u8,
        task: u16,
        keyword: u64,
        payload: Vec<u8>,
    },
}

/// One event to write: when (FILETIME), who, on which CPU buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterItem {
    pub filetime: i64,
    pub pid: u32,
    pub tid: u32,
    pub cpu: u16,
    pub stack: Option<StackTrace>,
    pub event: WriterEvent,
}

impl WriterItem {
    pub fn new(filetime: i64, pid: u32, tid: u32, event: WriterEvent) -> Self {
        WriterItem { filetime, pid, tid, cpu: 0, stack: None, event }
    }
    pub fn on_cpu(mut self, cpu: u16) -> Self {
        self.cpu = cpu;
        self
    }
    pub fn with_stack(mut self, stack: StackTrace) -> Self {
        self.stack = Some(stack);
        self
    }
}

fn utf16z(s: &str, out: &mut Vec<u8>) {
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out.extend_from_slice(&[0, 0]);
}

/// Descriptor and payload of an event (Kernel-File descriptors copied from real traces:
/// channel 16 Analytic, level 4, keyword bit 63 for the channel plus FILEIO 0x20 /
/// OP_END 0x40 / CREATE 0x80).
fn layout(ev: &WriterEvent) -> (Guid, u16, u8, u8, u8, u8, u16, u64, Vec<u8>) {
    const KF_CHANNEL_KW: u64 = 0x8000_0000_0000_0000;
    let mut p = Vec::with_capacity(64);
    match ev {
        WriterEvent::KernelFileCreate {
            irp,
            file_object,
            issuing_thread_id,
            create_options,
            create_attributes,
            share_access,
            file_name,
        } => {
            p.extend_from_slice(&irp.to_le_bytes());
            p.extend_from_slice(&file_object.to_le_bytes());
            p.extend_from_slice(&issuing_thread_id.to_le_bytes());
            p.extend_from_slice(&create_options.to_le_bytes());
            p.extend_from_slice(&create_attributes.to_le_bytes());
            p.extend_from_slice(&share_access.to_le_bytes());
            utf16z(file_name, &mut p);
            (KERNEL_FILE_PROVIDER, 12, 1, 16, 4, 0, 12, KF_CHANNEL_KW | 0xA0, p)
        }
        WriterEvent::KernelFileCleanup { irp, file_object, file_key, issuing_thread_id }
        | WriterEvent::KernelFileClose { irp, file_object, file_key, issuing_thread_id } => {
            p.extend_from_slice(&irp.to_le_bytes());
            p.extend_from_slice(&file_object.to_le_bytes());
            p.extend_from_slice(&file_key.to_le_bytes());
            p.extend_from_slice(&issuing_thread_id.to_le_bytes());
            let id = if matches!(ev, WriterEvent::KernelFileCleanup { .. }) { 13 } else { 14 };
            (KERNEL_FILE_PROVIDER, id, 1, 16, 4, 0, id, KF_CHANNEL_KW | 0x20, p)
        }
        WriterEvent::KernelFileOperationEnd { irp, extra_information, status } => {
            p.extend_from_slice(&irp.to_le_bytes());
            p.extend_from_slice(&extra_information.to_le_bytes());
            p.extend_from_slice(&status.to_le_bytes());
            (KERNEL_FILE_PROVIDER, 24, 0, 16, 4, 0, 24, KF_CHANNEL_KW | 0x60, p)
        }
        WriterEvent::NdisFragment { miniport_if_index, lower_if_index, keyword, fragment } => {
            p.extend_from_slice(&miniport_if_index.to_le_bytes());
            p.extend_from_slice(&lower_if_index.to_le_bytes());
            p.extend_from_slice(&(fragment.len() as u32).to_le_bytes());
            p.extend_from_slice(fragment);
            (NDIS_PACKET_CAPTURE_PROVIDER, 1001, 0, 16, 4, 0, 0, *keyword, p)
        }
        WriterEvent::PktmonPacket {
            dropped,
            group_id,
            pkt_number,
            appearance,
            dir_tag,
            packet_type,
            component_id,
            edge_id,
            filter_id,
            drop_reason,
            drop_location,
            original_size,
            payload,
        } => {
            p.extend_from_slice(&group_id.to_le_bytes());
            for v in [*pkt_number, *appearance, *dir_tag, *packet_type, *component_id, *edge_id, *filter_id] {
                p.extend_from_slice(&v.to_le_bytes());
            }
            p.extend_from_slice(&drop_reason.to_le_bytes());
            p.extend_from_slice(&drop_location.to_le_bytes());
            p.extend_from_slice(&original_size.to_le_bytes());
            p.extend_from_slice(&(payload.len().min(u16::MAX as usize) as u16).to_le_bytes());
            p.extend_from_slice(&payload[..payload.len().min(u16::MAX as usize)]);
            let id = if *dropped { 170 } else { 160 };
            (PKTMON_PROVIDER, id, 0, 0, 4, 0, 0, 0x10, p)
        }
        WriterEvent::PktmonComponent { id, comp_type, name, description } => {
            p.extend_from_slice(&id.to_le_bytes());
            p.extend_from_slice(&comp_type.to_le_bytes());
            utf16z(name, &mut p);
            utf16z(description, &mut p);
            (PKTMON_PROVIDER, 20, 0, 0, 4, 0, 0, 0x2, p)
        }
        WriterEvent::Raw { provider, id, version, channel, level, opcode, task, keyword, payload } => {
            (*provider, *id, *version, *channel, *level, *opcode, *task, *keyword, payload.clone())
        }
    }
}

/// Encode one 64-bit EVENT_HEADER record (unpadded; the buffer aligns it to 8).
pub fn encode_event_record(item: &WriterItem, raw_timestamp: i64) -> io::Result<Vec<u8>> {
    let (provider, id, version, channel, level, opcode, task, keyword, payload) = layout(&item.event);
    let mut ext = Vec::new();
    if let Some(st) = &item.stack {
        let data_size = 8 + 8 * st.addresses.len();
        let padded = (data_size + 7) & !7;
        let item_size = u16::try_from(8 + padded).map_err(|_| invalid("stack trace too large"))?;
        ext.extend_from_slice(&item_size.to_le_bytes());
        ext.extend_from_slice(&6u16.to_le_bytes()); // STACK_TRACE64
        ext.extend_from_slice(&0u16.to_le_bytes()); // Linkage: last item
        ext.extend_from_slice(&(data_size as u16).to_le_bytes());
        ext.extend_from_slice(&st.match_id.to_le_bytes());
        for a in &st.addresses {
            ext.extend_from_slice(&a.to_le_bytes());
        }
        ext.resize(8 + padded, 0);
    }
    let size = 0x50 + ext.len() + payload.len();
    let size16 = u16::try_from(size).map_err(|_| invalid("record larger than 65535 bytes"))?;
    let mut r = Vec::with_capacity(size);
    r.extend_from_slice(&size16.to_le_bytes());
    r.extend_from_slice(&0xC013u16.to_le_bytes());
    let flags: u16 = if ext.is_empty() { 0 } else { 0x0001 };
    r.extend_from_slice(&flags.to_le_bytes());
    r.extend_from_slice(&0u16.to_le_bytes()); // EventProperty
    r.extend_from_slice(&item.tid.to_le_bytes());
    r.extend_from_slice(&item.pid.to_le_bytes());
    r.extend_from_slice(&raw_timestamp.to_le_bytes());
    r.extend_from_slice(&provider.to_bytes_le());
    r.extend_from_slice(&id.to_le_bytes());
    r.push(version);
    r.push(channel);
    r.push(level);
    r.push(opcode);
    r.extend_from_slice(&task.to_le_bytes());
    r.extend_from_slice(&keyword.to_le_bytes());
    r.extend_from_slice(&0u64.to_le_bytes()); // ProcessorTime
    r.extend_from_slice(&[0u8; 16]); // ActivityId
    r.extend_from_slice(&ext);
    r.extend_from_slice(&payload);
    Ok(r)
}

fn invalid(m: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, m.to_string())
}

/// Streaming writer: call [`EtlWriter::push`] per item, then [`EtlWriter::finish`].
pub struct EtlWriter<W: Write> {
    out: W,
    cfg: WriterConfig,
    open: BTreeMap<u16, Vec<u8>>,
    buffers_written: u64,
    records_written: u64,
    bytes_written: u64,
    scratch: Vec<u8>,
}

/// What was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteStats {
    pub buffers: u64,
    /// Including the logfile header record.
    pub records: u64,
    pub bytes: u64,
}

impl<W: Write> EtlWriter<W> {
    /// Writes buffer 0 (logfile header) immediately.
    pub fn new(out: W, cfg: WriterConfig) -> io::Result<Self> {
        if cfg.buffer_size < 1024 || !cfg.buffer_size.is_multiple_of(8) || cfg.buffer_size > super::MAX_BUFFER_SIZE {
            return Err(invalid("buffer_size must be a multiple of 8 in 1 KiB..=64 MiB"));
        }
        let mut w = EtlWriter {
            out,
            cfg,
            open: BTreeMap::new(),
            buffers_written: 0,
            records_written: 0,
            bytes_written: 0,
            scratch: Vec::new(),
        };
        let rec = w.logfile_record();
        let mut buf = w.new_buffer();
        push_aligned(&mut buf, &rec);
        w.emit(buf, 0, w.cfg.header_timestamp, 4)?;
        w.records_written += 1;
        Ok(w)
    }

    fn logfile_record(&self) -> Vec<u8> {
        let c = &self.cfg;
        let mut p = vec![0u8; 0x118];
        let put32 = |p: &mut Vec<u8>, o: usize, v: u32| p[o..o + 4].copy_from_slice(&v.to_le_bytes());
        let put64 = |p: &mut Vec<u8>, o: usize, v: i64| p[o..o + 8].copy_from_slice(&v.to_le_bytes());
        put32(&mut p, 0x00, c.buffer_size);
        put32(&mut p, 0x04, 0x0501_000A); // Version 10.0.1.5 as in Win10 traces
        put32(&mut p, 0x08, c.os_build);
        put32(&mut p, 0x0C, c.number_of_processors);
        put64(&mut p, 0x10, c.end_time);
        put32(&mut p, 0x18, 156_250); // TimerResolution (15.625 ms)
        put32(&mut p, 0x20, 0x0000_0001); // EVENT_TRACE_FILE_MODE_SEQUENTIAL
        put32(&mut p, 0x2C, 8); // PointerSize
        put32(&mut p, 0x34, 3000); // CpuSpeedInMHz
        put64(&mut p, 0xF8, c.start_time - c.header_timestamp); // BootTime (QPC 0)
        put64(&mut p, 0x100, 10_000_000); // PerfFreq
        put64(&mut p, 0x108, c.start_time);
        put32(&mut p, 0x110, 1); // ReservedFlags: QPC
        utf16z(&c.logger_name, &mut p);
        utf16z(&c.log_file_name, &mut p);
        let size = 0x20 + p.len();
        let mut r = Vec::with_capacity(size);
        r.extend_from_slice(&0xC002_0002u32.to_le_bytes()); // SYSTEM64, Version 2
        r.extend_from_slice(&(size as u16).to_le_bytes());
        r.extend_from_slice(&0u16.to_le_bytes()); // HookId 0x0000: EventTrace header
        r.extend_from_slice(&0u32.to_le_bytes()); // tid
        r.extend_from_slice(&0u32.to_le_bytes()); // pid
        r.extend_from_slice(&c.header_timestamp.to_le_bytes());
        r.extend_from_slice(&0u64.to_le_bytes()); // Kernel/UserTime
        r.extend_from_slice(&p);
        r
    }

    fn new_buffer(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.cfg.buffer_size as usize);
        b.resize(super::BUFFER_HEADER_SIZE, 0);
        b
    }

    fn emit(&mut self, mut buf: Vec<u8>, cpu: u16, ts: i64, buffer_type: u16) -> io::Result<()> {
        let filled = buf.len() as u32;
        let size = self.cfg.buffer_size;
        let h = &mut buf[..super::BUFFER_HEADER_SIZE];
        h[0x00..0x04].copy_from_slice(&size.to_le_bytes());
        h[0x04..0x08].copy_from_slice(&filled.to_le_bytes());
        h[0x08..0x0C].copy_from_slice(&filled.to_le_bytes());
        h[0x10..0x18].copy_from_slice(&ts.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&(self.buffers_written as i64).to_le_bytes());
        h[0x28..0x2A].copy_from_slice(&cpu.to_le_bytes());
        h[0x30..0x34].copy_from_slice(&filled.to_le_bytes());
        h[0x36..0x38].copy_from_slice(&buffer_type.to_le_bytes());
        buf.resize(size as usize, 0xFF);
        self.out.write_all(&buf)?;
        self.buffers_written += 1;
        self.bytes_written += size as u64;
        buf.clear();
        self.scratch = buf;
        Ok(())
    }

    /// Raw QPC value for a FILETIME (10 MHz, so one tick per 100 ns).
    pub fn raw_timestamp(&self, filetime: i64) -> i64 {
        self.cfg.header_timestamp.wrapping_add(filetime.wrapping_sub(self.cfg.start_time))
    }

    pub fn push(&mut self, item: &WriterItem) -> io::Result<()> {
        let ts = self.raw_timestamp(item.filetime);
        let rec = encode_event_record(item, ts)?;
        let cap = self.cfg.buffer_size as usize;
        if super::BUFFER_HEADER_SIZE + ((rec.len() + 7) & !7) > cap {
            return Err(invalid("record does not fit in a buffer"));
        }
        let need_flush = self.open.get(&item.cpu).is_some_and(|b| b.len() + ((rec.len() + 7) & !7) > cap);
        if need_flush {
            if let Some(b) = self.open.remove(&item.cpu) {
                self.emit(b, item.cpu, ts, 0)?;
            }
        }
        if !self.open.contains_key(&item.cpu) {
            let mut b = std::mem::take(&mut self.scratch);
            b.clear();
            b.reserve(cap);
            b.resize(super::BUFFER_HEADER_SIZE, 0);
            self.open.insert(item.cpu, b);
        }
        if let Some(b) = self.open.get_mut(&item.cpu) {
            push_aligned(b, &rec);
        }
        self.records_written += 1;
        Ok(())
    }

    /// Flush the open per-CPU buffers (in CPU order) and return the sink.
    pub fn finish(mut self) -> io::Result<(W, WriteStats)> {
        let open = std::mem::take(&mut self.open);
        let ts = self.raw_timestamp(self.cfg.end_time);
        for (cpu, b) in open {
            self.emit(b, cpu, ts, 0)?;
        }
        self.out.flush()?;
        let stats =
            WriteStats { buffers: self.buffers_written, records: self.records_written, bytes: self.bytes_written };
        Ok((self.out, stats))
    }
}

fn push_aligned(buf: &mut Vec<u8>, rec: &[u8]) {
    buf.extend_from_slice(rec);
    let pad = ((rec.len() + 7) & !7) - rec.len();
    buf.extend(std::iter::repeat_n(0u8, pad));
}

/// Write all items to `out` (items may be in any order; each lands in its CPU's buffer).
pub fn write_etl<W: Write>(
    out: W,
    cfg: &WriterConfig,
    items: impl IntoIterator<Item = WriterItem>,
) -> io::Result<WriteStats> {
    let mut w = EtlWriter::new(out, cfg.clone())?;
    for it in items {
        w.push(&it)?;
    }
    Ok(w.finish()?.1)
}

/// Convenience: the whole file in memory.
pub fn write_etl_to_vec(cfg: &WriterConfig, items: impl IntoIterator<Item = WriterItem>) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    write_etl(&mut v, cfg, items)?;
    Ok(v)
}
