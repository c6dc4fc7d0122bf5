//! Per-direction TCP reassembly of SMB messages: in-order bytes by sequence number, NetBIOS
//! framing, hunting for the next message start after a gap. A flow holds at most one message of
//! `MAX_MESSAGE` bytes; larger ones are skipped by their length (which never sizes an allocation).

use super::summary::SmbCounts;
use super::MAX_MESSAGE;
use crate::ingest::smb as wire;
use crate::model::{TcpSegment, UtcNs};

/// Reassembly state of one direction of a TCP connection.
#[derive(Default)]
pub(super) struct Flow {
    pub next_seq: Option<u32>,
    /// At a message boundary (false: hunting for the next NetBIOS header + SMB magic).
    pub synced: bool,
    /// Bytes of the current (partial) message, at most `MAX_MESSAGE` + header.
    pub buf: Vec<u8>,
    /// Bytes still to skip of an oversized message.
    pub skip: u64,
    pub last_ts: UtcNs,
    /// The flow's first request was counted as a connection.
    pub counted: bool,
}

impl Flow {
    /// A flow that starts at a SYN: the next byte is a message boundary.
    pub fn at_syn(seg: &TcpSegment) -> Flow {
        Flow { next_seq: Some(seg.seq.wrapping_add(1)), synced: true, last_ts: seg.ts, ..Default::default() }
    }

    /// One data segment's captured payload; complete messages (without their NetBIOS header) go to `out`.
    pub fn accept(&mut self, seg: &TcpSegment, payload: &[u8], counts: &mut SmbCounts, out: &mut Vec<Vec<u8>>) {
        self.last_ts = seg.ts;
        let mut data = payload;
        if let Some(next) = self.next_seq {
            let d = seg.seq.wrapping_sub(next) as i32;
            if d < 0 {
                // Retransmission or overlap: keep only the new bytes.
                let old = d.unsigned_abs() as usize;
                if old >= seg.payload_len as usize {
                    counts.retransmitted_bytes += seg.payload_len as u64;
                    return;
                }
                counts.retransmitted_bytes += old as u64;
                data = data.get(old..).unwrap_or(&[]);
            } else if d > 0 {
                // Bytes missing (not captured, or this segment came early): resync after the gap.
                lose_sync(self, counts);
            }
            let end = seg.seq.wrapping_add(seg.payload_len);
            if (end.wrapping_sub(next) as i32) > 0 {
                self.next_seq = Some(end);
            }
        } else {
            self.next_seq = Some(seg.seq.wrapping_add(seg.payload_len));
        }
        let truncated = payload.len() < seg.payload_len as usize;
        feed(self, data, out, counts);
        if truncated {
            // The rest of this segment was not captured.
            lose_sync(self, counts);
        }
    }
}

fn lose_sync(flow: &mut Flow, counts: &mut SmbCounts) {
    if flow.synced || flow.skip > 0 || !flow.buf.is_empty() {
        counts.gaps += 1;
    }
    flow.synced = false;
    flow.skip = 0;
    flow.buf.clear();
}

/// Appends in-order bytes to a flow; complete messages (without their NetBIOS header) go to `out`.
pub(super) fn feed(flow: &mut Flow, mut data: &[u8], out: &mut Vec<Vec<u8>>, counts: &mut SmbCounts) {
    const HUNT_CHUNK: usize = 4096;
    loop {
        if flow.skip > 0 {
            if data.is_empty() {
                break;
            }
            let n = (flow.skip.min(data.len() as u64)) as usize;
            flow.skip -= n as u64;
            data = &data[n..];
            continue;
        }
        if !flow.synced {
            let (chunk, rest) = data.split_at(data.len().min(HUNT_CHUNK));
            data = rest;
            if hunt_step(&mut flow.buf, chunk) {
                flow.synced = true;
                counts.resyncs += 1;
            } else if data.is_empty() {
                break;
            }
            continue;
        }
        // Synced: the 4-byte header, then the magic, then the whole message.
        let need = match wire::nb_header(&flow.buf) {
            None => wire::NB_HEADER,
            Some((ty, len)) => {
                let total = wire::NB_HEADER as u64 + len as u64;
                if ty != wire::NB_SESSION_MESSAGE {
                    // NetBIOS session request/response/keep-alive: short, skipped.
                    if !matches!(ty, 0x81..=0x85) || len > 1024 {
                        desync(flow, counts);
                        continue;
                    }
                    total as usize
                } else if flow.buf.len() < 8 {
                    8
                } else if !wire::is_message_start(&flow.buf) {
                    desync(flow, counts);
                    continue;
                } else if len as usize > MAX_MESSAGE {
                    counts.oversized_skipped += 1;
                    flow.skip = total.saturating_sub(flow.buf.len() as u64);
                    flow.buf = Vec::new();
                    continue;
                } else {
                    total as usize
                }
            }
        };
        let n = need.saturating_sub(flow.buf.len()).min(data.len());
        flow.buf.extend_from_slice(&data[..n]);
        data = &data[n..];
        if flow.buf.len() < need {
            break;
        }
        if flow.buf.len() >= 8 || nb_control(&flow.buf) {
            if let Some((ty, len)) = wire::nb_header(&flow.buf) {
                let total = wire::NB_HEADER + len as usize;
                if flow.buf.len() >= total {
                    if ty == wire::NB_SESSION_MESSAGE {
                        out.push(flow.buf[wire::NB_HEADER..total].to_vec());
                    }
                    flow.buf.drain(..total);
                }
            }
        }
    }
}

/// Bytes kept between hunted chunks: enough to hold the start of a header cut by the chunk's end.
const HUNT_TAIL: usize = 9;
/// What `is_message_start` reads at most of a candidate.
const START_LOOKS_AT: usize = 10;

/// One chunk of the hunt for a message start: true with `buf` holding the stream from the start
/// on, or false with `buf` holding the last bytes, which may begin a header the next chunk ends.
/// The chunk is searched where it lies: a long non-SMB stream on port 445 is not copied into the
/// flow's buffer packet by packet.
fn hunt_step(buf: &mut Vec<u8>, chunk: &[u8]) -> bool {
    let held = buf.len();
    match hunt(buf, chunk) {
        Some(i) if i < held => {
            buf.drain(..i);
            buf.extend_from_slice(chunk);
            true
        }
        Some(i) => {
            buf.clear();
            buf.extend_from_slice(&chunk[i - held..]);
            true
        }
        None if chunk.len() >= HUNT_TAIL => {
            buf.clear();
            buf.extend_from_slice(&chunk[chunk.len() - HUNT_TAIL..]);
            false
        }
        None => {
            buf.extend_from_slice(chunk);
            let cut = buf.len().saturating_sub(HUNT_TAIL);
            buf.drain(..cut);
            false
        }
    }
}

/// The first message start in `held` followed by `chunk`, as an offset into the two together.
/// Every message start has "SMB" five bytes in (after the NetBIOS header and the protocol
/// byte): only those offsets are tried, found by a vectorised search built once.
fn hunt(held: &[u8], chunk: &[u8]) -> Option<usize> {
    static MAGIC: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"SMB"));
    let starts_at =
        |b: &[u8]| MAGIC.find_iter(b).filter_map(|at| at.checked_sub(5)).find(|&i| wire::is_message_start(&b[i..]));
    if !held.is_empty() {
        // Starts inside `held` read at most START_LOOKS_AT bytes, so the chunk's first ones
        // suffice; while hunting `held` is a short tail, joined on the stack.
        let head = &chunk[..chunk.len().min(START_LOOKS_AT)];
        let mut stack = [0u8; 2 * START_LOOKS_AT];
        let heap;
        let joined: &[u8] = if held.len() + head.len() <= stack.len() {
            stack[..held.len()].copy_from_slice(held);
            stack[held.len()..held.len() + head.len()].copy_from_slice(head);
            &stack[..held.len() + head.len()]
        } else {
            heap = [held, head].concat();
            &heap
        };
        let first = MAGIC
            .find_iter(joined)
            .filter_map(|at| at.checked_sub(5))
            .take_while(|&i| i < held.len())
            .find(|&i| wire::is_message_start(&joined[i..]));
        if first.is_some() {
            return first;
        }
    }
    starts_at(chunk).map(|i| held.len() + i)
}

fn nb_control(b: &[u8]) -> bool {
    b.first().is_some_and(|&t| t != wire::NB_SESSION_MESSAGE)
}

/// Bytes at a supposed message start are not one: hunt from the next byte on.
fn desync(flow: &mut Flow, counts: &mut SmbCounts) {
    counts.gaps += 1;
    flow.synced = false;
    if !flow.buf.is_empty() {
        flow.buf.drain(..1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow {
        Flow { next_seq: Some(0), synced: true, ..Default::default() }
    }

    fn msg(len: usize) -> Vec<u8> {
        let mut m = vec![0u8, 0, 0, 0];
        m[1..4].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        let mut body = vec![0u8; len];
        body[..4].copy_from_slice(&wire::MAGIC_SMB2);
        body[4] = 64;
        m.extend(body);
        m
    }

    #[test]
    fn messages_split_and_joined_across_segments() {
        let mut f = flow();
        let (mut out, mut c) = (Vec::new(), SmbCounts::default());
        let mut stream = msg(100);
        stream.extend(msg(70));
        feed(&mut f, &stream[..3], &mut out, &mut c);
        feed(&mut f, &stream[3..50], &mut out, &mut c);
        assert!(out.is_empty());
        feed(&mut f, &stream[50..], &mut out, &mut c);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), 100);
        assert_eq!(out[1].len(), 70);
        assert!(f.buf.is_empty());
    }

    #[test]
    fn oversized_message_is_skipped_not_buffered() {
        let mut f = flow();
        let (mut out, mut c) = (Vec::new(), SmbCounts::default());
        let mut big = vec![0u8, 0x10, 0, 0]; // 1 MiB message
        big.extend(&wire::MAGIC_SMB2);
        big.extend([64, 0]);
        feed(&mut f, &big, &mut out, &mut c);
        assert_eq!(c.oversized_skipped, 1);
        let rest = vec![0u8; 0x10_0000 - 6];
        feed(&mut f, &rest, &mut out, &mut c);
        assert!(f.buf.capacity() <= 64);
        feed(&mut f, &msg(80), &mut out, &mut c);
        assert_eq!(out.len(), 1);
    }

    /// The hunt as it was written first: the chunk copied into the buffer and searched there.
    fn hunt_by_copy(flow: &mut Flow, chunk: &[u8]) -> bool {
        flow.buf.extend_from_slice(chunk);
        let start = memchr::memmem::find_iter(&flow.buf, b"SMB")
            .filter_map(|at| at.checked_sub(5))
            .find(|&i| wire::is_message_start(&flow.buf[i..]));
        match start {
            Some(i) => {
                flow.buf.drain(..i);
                true
            }
            None => {
                let cut = flow.buf.len().saturating_sub(HUNT_TAIL);
                flow.buf.drain(..cut);
                false
            }
        }
    }

    /// Searching the chunk where it lies finds the same start and leaves the same buffer as
    /// copying it first, for starts in the held bytes, across the boundary, in the chunk, cut
    /// short by the chunk's end, and none.
    #[test]
    fn hunting_in_place_equals_hunting_in_a_copy() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let pieces: [&[u8]; 6] = [b"SMB", b"\xfeSMB", b"\0\0\0\x80\xfeSMB@\0", b"\0\0\x01\0\xffSMB", b"\0", b"x@"];
        let (mut found, mut found_in_held) = (0, 0);
        for _ in 0..20_000 {
            let mut held = Vec::new();
            let mut chunk = Vec::new();
            for part in [&mut held, &mut chunk] {
                let target = (next() % 24) as usize;
                while part.len() < target {
                    match next() % 4 {
                        0 => part.extend_from_slice(pieces[(next() % 6) as usize]),
                        _ => part.push((next() % 256) as u8),
                    }
                }
            }
            let mut by_copy = Flow { buf: held.clone(), ..Default::default() };
            let copied = hunt_by_copy(&mut by_copy, &chunk);
            let mut in_place = held.clone();
            assert_eq!(hunt_step(&mut in_place, &chunk), copied, "held {held:?} chunk {chunk:?}");
            assert_eq!(in_place, by_copy.buf, "held {held:?} chunk {chunk:?}");
            if let Some(i) = hunt(&held, &chunk) {
                found += 1;
                found_in_held += usize::from(i < held.len());
            }
        }
        assert!(found > 1000 && found_in_held > 100, "{found} {found_in_held}");
    }

    #[test]
    fn resyncs_after_garbage() {
        let mut f = Flow::default();
        let (mut out, mut c) = (Vec::new(), SmbCounts::default());
        let mut stream = vec![0x55u8; 37];
        stream.extend(msg(90));
        feed(&mut f, &stream, &mut out, &mut c);
        assert_eq!(out.len(), 1);
        assert_eq!(c.resyncs, 1);
    }
}
