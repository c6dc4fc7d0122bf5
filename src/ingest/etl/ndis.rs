//! NDIS-PacketCapture events to TCP segments: fragments joined into Ethernet frames, numbered in
//! trace order (as etl2pcapng numbers them) and decoded like a capture's frames, so the pipeline
//! gets segments from a trace exactly as from a pcap.

use super::decode::{decode_ndis_fragment, FrameAssembler};
use super::RecordRef;
use crate::ingest::decode::{decode_frame, linktype};
use crate::model::TcpSegment;

/// What an NDIS-PacketCapture record amounted to.
#[derive(Debug)]
pub enum NdisStep {
    /// A fragment of a frame that is not complete yet.
    Fragment,
    /// A whole frame: its length in bytes and its TCP segment, when it carries one.
    Frame { len: u64, segment: Option<TcpSegment> },
}

/// Streams NDIS fragments of one trace into frames. Memory: the assembler's open frames (one per
/// interface pair, each capped).
#[derive(Default)]
pub struct NdisFrames {
    assembler: FrameAssembler,
    frames: u64,
}

impl NdisFrames {
    /// `None` when `r` is no NDIS-PacketCapture fragment.
    pub fn push(&mut self, r: &RecordRef<'_>, input: u32) -> Option<NdisStep> {
        let frag = decode_ndis_fragment(r)?;
        let Some(frame) = self.assembler.push(frag) else { return Some(NdisStep::Fragment) };
        self.frames += 1;
        let segment = decode_frame(linktype::ETHERNET, &frame.data)
            .map(|t| t.into_segment(input, self.frames, frame.origin.utc()));
        Some(NdisStep::Frame { len: frame.data.len() as u64, segment })
    }

    /// Frames completed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Fragments dropped (orphans, restarts, oversize frames).
    pub fn dropped(&self) -> u64 {
        self.assembler.dropped
    }
}
