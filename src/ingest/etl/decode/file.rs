//! Kernel-File and classic FileIo: creates, cleanups, closes, completions and names of files
//! (named pipes are files to the I/O manager).

use super::super::bytes::Cur;
use super::super::record::{HeaderKind, RecordRef};
use super::{EventOrigin, KERNEL_FILE_PROVIDER};

/// File create (Kernel-File 12 v0/v1, classic FileIo 64).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCreate {
    pub origin: EventOrigin,
    pub irp: u64,
    pub file_object: u64,
    /// v1: IssuingThreadId (u32); v0 / classic v2: the TTID pointer field.
    pub issuing_thread_id: u64,
    /// CreateDisposition in the top byte, create options below.
    pub create_options: u32,
    pub create_attributes: u32,
    pub share_access: u32,
    pub file_name: String,
}

impl FileCreate {
    /// FILE_OPEN, FILE_CREATE, ... (top byte of CreateOptions).
    pub fn create_disposition(&self) -> u8 {
        (self.create_options >> 24) as u8
    }
}

/// Cleanup or Close (Kernel-File 13/14, classic FileIo 65/66).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHandleOp {
    pub origin: EventOrigin,
    pub irp: u64,
    pub file_object: u64,
    pub file_key: u64,
    pub issuing_thread_id: u64,
}

/// OperationEnd (Kernel-File 24, classic FileIo 76): completion status of an IRP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOpEnd {
    pub origin: EventOrigin,
    pub irp: u64,
    pub extra_information: u64,
    /// NTSTATUS, e.g. 0xC00000AE STATUS_PIPE_BUSY.
    pub status: u32,
}

/// Classic FileIo name events (0 Name, 32 FileCreate, 35 FileDelete, 36 FileRundown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileNameInfo {
    pub origin: EventOrigin,
    pub opcode: u8,
    pub file_object: u64,
    pub file_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileEvent {
    Create(FileCreate),
    Cleanup(FileHandleOp),
    Close(FileHandleOp),
    OperationEnd(FileOpEnd),
    Name(FileNameInfo),
}

/// Decode Microsoft-Windows-Kernel-File ids 12 (v0, v1), 13, 14 (v0, v1) and 24.
pub fn decode_kernel_file(r: &RecordRef<'_>) -> Option<FileEvent> {
    let h = &r.header;
    if !matches!(h.kind, HeaderKind::EventHeader32 | HeaderKind::EventHeader64) || h.provider != KERNEL_FILE_PROVIDER {
        return None;
    }
    let mut c = Cur::new(r.payload, h.pointer_size);
    let o = EventOrigin::of(r);
    match (h.id?, h.version) {
        (12, v) => create(&mut c, o, v == 0),
        (id @ (13 | 14), v) => {
            let op = handle_op(&mut c, o, v == 0)?;
            Some(if id == 13 { FileEvent::Cleanup(op) } else { FileEvent::Close(op) })
        }
        (24, _) => op_end(&mut c, o),
        _ => None,
    }
}

/// A create: IRP, then the issuing thread as a pointer before the FileObject (`ttid_first`: Kernel-File
/// v0, classic MOF v2) or as a u32 after it (later versions), then options and the name.
fn create(c: &mut Cur<'_>, o: EventOrigin, ttid_first: bool) -> Option<FileEvent> {
    let irp = c.ptr()?;
    let (file_object, issuing_thread_id) = if ttid_first {
        let t = c.ptr()?;
        (c.ptr()?, t)
    } else {
        let f = c.ptr()?;
        (f, c.u32()? as u64)
    };
    Some(FileEvent::Create(FileCreate {
        origin: o,
        irp,
        file_object,
        issuing_thread_id,
        create_options: c.u32()?,
        create_attributes: c.u32()?,
        share_access: c.u32()?,
        file_name: c.utf16z()?,
    }))
}

/// A cleanup or close: IRP, FileObject and FileKey, with the issuing thread placed as in `create`.
fn handle_op(c: &mut Cur<'_>, o: EventOrigin, ttid_first: bool) -> Option<FileHandleOp> {
    let irp = c.ptr()?;
    Some(if ttid_first {
        let ttid = c.ptr()?;
        FileHandleOp { origin: o, irp, issuing_thread_id: ttid, file_object: c.ptr()?, file_key: c.ptr()? }
    } else {
        let fo = c.ptr()?;
        let key = c.ptr()?;
        FileHandleOp { origin: o, irp, file_object: fo, file_key: key, issuing_thread_id: c.u32()? as u64 }
    })
}

/// An operation's end: IRP, extra information, NTSTATUS.
fn op_end(c: &mut Cur<'_>, o: EventOrigin) -> Option<FileEvent> {
    Some(FileEvent::OperationEnd(FileOpEnd { origin: o, irp: c.ptr()?, extra_information: c.ptr()?, status: c.u32()? }))
}

/// Decode classic FileIo (group 0x04): 64 Create, 65 Cleanup, 66 Close, 76 OpEnd,
/// 0/32/35/36 names. MOF v2 uses a TTID pointer before FileObject; v3+ moves a u32 TTID last.
pub fn decode_classic_fileio(r: &RecordRef<'_>) -> Option<FileEvent> {
    let h = &r.header;
    if !h.kind.is_classic_kernel() || h.group != Some(0x04) {
        return None;
    }
    let mof_version = h.version & 0xFF;
    let mut c = Cur::new(r.payload, h.pointer_size);
    let o = EventOrigin::of(r);
    match h.opcode {
        0 | 32 | 35 | 36 => Some(FileEvent::Name(FileNameInfo {
            origin: o,
            opcode: h.opcode,
            file_object: c.ptr()?,
            file_name: c.utf16z()?,
        })),
        64 => create(&mut c, o, mof_version <= 2),
        op @ (65 | 66) => {
            let fop = handle_op(&mut c, o, mof_version <= 2)?;
            Some(if op == 65 { FileEvent::Cleanup(fop) } else { FileEvent::Close(fop) })
        }
        76 => op_end(&mut c, o),
        _ => None,
    }
}

/// Either file decoder.
pub fn decode_file_event(r: &RecordRef<'_>) -> Option<FileEvent> {
    decode_kernel_file(r).or_else(|| decode_classic_fileio(r))
}
