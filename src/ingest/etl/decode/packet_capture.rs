//! NDIS-PacketCapture 1001: packet fragments and their assembly into whole frames.

use super::super::bytes::Cur;
use super::super::record::{HeaderKind, RecordRef};
use super::{EventOrigin, NDIS_PACKET_CAPTURE_PROVIDER};
use std::collections::HashMap;

/// NDIS keyword bits (ndiscap manifest).
pub const NDIS_KW_PACKET_START: u64 = 0x4000_0000;
pub const NDIS_KW_PACKET_END: u64 = 0x8000_0000;
pub const NDIS_KW_SEND: u64 = 0x1_0000_0000;
pub const NDIS_KW_RECEIVE: u64 = 0x2_0000_0000;

/// NDIS-PacketCapture 1001 packet fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NdisFragment {
    pub origin: EventOrigin,
    pub keyword: u64,
    pub miniport_if_index: u32,
    pub lower_if_index: u32,
    pub fragment: Vec<u8>,
}

impl NdisFragment {
    pub fn is_start(&self) -> bool {
        self.keyword & NDIS_KW_PACKET_START != 0
    }
    pub fn is_end(&self) -> bool {
        self.keyword & NDIS_KW_PACKET_END != 0
    }
    pub fn is_send(&self) -> bool {
        self.keyword & NDIS_KW_SEND != 0
    }
    pub fn is_receive(&self) -> bool {
        self.keyword & NDIS_KW_RECEIVE != 0
    }
}

/// Decode NDIS-PacketCapture event 1001 (trailing Win10 fields are ignored).
pub fn decode_ndis_fragment(r: &RecordRef<'_>) -> Option<NdisFragment> {
    let h = &r.header;
    if !matches!(h.kind, HeaderKind::EventHeader32 | HeaderKind::EventHeader64)
        || h.provider != NDIS_PACKET_CAPTURE_PROVIDER
        || h.id != Some(1001)
    {
        return None;
    }
    let mut c = Cur::new(r.payload, h.pointer_size);
    let miniport_if_index = c.u32()?;
    let lower_if_index = c.u32()?;
    let n = c.u32()? as usize;
    let fragment = c.bytes(n)?.to_vec();
    Some(NdisFragment { origin: EventOrigin::of(r), keyword: h.keyword, miniport_if_index, lower_if_index, fragment })
}

/// A whole captured frame (Ethernet for 802.3 miniports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EthernetFrame {
    /// Timestamp of the first fragment.
    pub origin: EventOrigin,
    pub miniport_if_index: u32,
    pub lower_if_index: u32,
    pub send: bool,
    pub receive: bool,
    pub data: Vec<u8>,
}

/// Joins NDIS fragments into frames: a start+end fragment is a frame by itself; a start
/// opens a frame per (miniport, lower) interface pair, middles append, an end closes it.
/// Fragments without an open frame are dropped and counted; frames are capped at `max_frame`.
pub struct FrameAssembler {
    open: HashMap<(u32, u32), EthernetFrame>,
    max_frame: usize,
    /// Fragments dropped (orphan middle/end, restarted start, or oversize).
    pub dropped: u64,
}

impl Default for FrameAssembler {
    fn default() -> Self {
        FrameAssembler::new(256 * 1024)
    }
}

impl FrameAssembler {
    pub fn new(max_frame: usize) -> Self {
        FrameAssembler { open: HashMap::new(), max_frame, dropped: 0 }
    }

    pub fn push(&mut self, f: NdisFragment) -> Option<EthernetFrame> {
        let key = (f.miniport_if_index, f.lower_if_index);
        let (start, end) = (f.is_start(), f.is_end());
        if start {
            if self.open.remove(&key).is_some() {
                self.dropped += 1;
            }
            let frame = EthernetFrame {
                origin: f.origin,
                miniport_if_index: f.miniport_if_index,
                lower_if_index: f.lower_if_index,
                send: f.is_send(),
                receive: f.is_receive(),
                data: f.fragment,
            };
            if frame.data.len() > self.max_frame {
                self.dropped += 1;
                return None;
            }
            if end {
                return Some(frame);
            }
            self.open.insert(key, frame);
            return None;
        }
        let Some(frame) = self.open.get_mut(&key) else {
            self.dropped += 1;
            return None;
        };
        if frame.data.len().saturating_add(f.fragment.len()) > self.max_frame {
            self.open.remove(&key);
            self.dropped += 1;
            return None;
        }
        frame.data.extend_from_slice(&f.fragment);
        if end {
            return self.open.remove(&key);
        }
        None
    }

    /// Frames still waiting for their end fragment.
    pub fn pending(&self) -> usize {
        self.open.len()
    }
}
