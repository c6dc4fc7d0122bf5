//! Streaming pcap / pcapng reader (pcap-parser): yields TCP segments with Wireshark frame numbers.
//! Memory is one bounded read buffer; nothing is kept per packet.

use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use super::decode::{decode_frame, linktype};
use super::{Damage, DamageKind, Part};
use crate::model::{TcpSegment, UtcNs};

/// Largest record Wireshark accepts (WTAP_MAX_PACKET_SIZE_STANDARD); larger means damage.
pub const MAX_RECORD: usize = 262_144;
/// The read buffer: a record plus its header always fits.
const BUFFER: usize = 2 * MAX_RECORD + 4096;

/// What a capture held, for `summary.json`.
#[derive(Clone, Debug, Default)]
pub struct CaptureStats {
    pub format: &'static str,
    pub link_types: Vec<String>,
    pub packets: u64,
    /// Sum of the frames' original lengths.
    pub bytes: u64,
    pub first_ts: Option<UtcNs>,
    pub last_ts: Option<UtcNs>,
}

impl CaptureStats {
    fn saw(&mut self, ts: UtcNs, orig_len: u32) {
        self.packets += 1;
        self.bytes += orig_len as u64;
        self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
    }
    fn add_link(&mut self, lt: u32) {
        let n = linktype::name(lt);
        if !self.link_types.contains(&n) {
            self.link_types.push(n);
        }
    }
}

/// Makes every `read` fill the buffer unless at EOF: pcap-parser treats a short first read as a
/// bad header, and gzip streams return short reads.
pub struct FillingReader<R>(pub R);

impl<R: Read> Read for FillingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.0.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

struct Interface {
    linktype: u32,
    /// Timestamp units per second.
    units: u64,
    offset_s: i64,
}

fn units_to_ns(ticks: u64, units: u64) -> i64 {
    if units == 0 {
        return 0;
    }
    i64::try_from((ticks as u128 * 1_000_000_000u128) / units as u128).unwrap_or(i64::MAX)
}

/// A pcapng packet time: ticks in the interface's units plus its `if_tsoffset` (seconds). Both come
/// from the file, so the sum saturates instead of overflowing.
fn ng_ts(ticks: u64, ifc: &Interface) -> UtcNs {
    units_to_ns(ticks, ifc.units).saturating_add(ifc.offset_s.saturating_mul(1_000_000_000))
}

/// An Obsolete Packet Block's header: interface id, timestamp ticks, captured and original length
/// (if_id u16, drops u16, ts_high, ts_low, caplen, len), in the section's byte order.
fn obsolete_packet_header(d: &[u8], big_endian: bool) -> Option<(u16, u64, usize, u32)> {
    let rd32 = |at: usize| -> Option<u32> {
        let b: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    };
    let b: [u8; 2] = d.get(0..2)?.try_into().ok()?;
    let ifid = if big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) };
    let ticks = ((rd32(4)? as u64) << 32) | rd32(8)? as u64;
    Some((ifid, ticks, rd32(12)? as usize, rd32(16)?))
}

/// What a reader error other than the end of the stream or a refill says about the bytes.
fn stream_damage(e: PcapError<&[u8]>, is_pcapng: bool) -> DamageKind {
    let part = if is_pcapng { Part::Block } else { Part::Record };
    match e {
        PcapError::UnexpectedEof => DamageKind::CutShort(Part::Record),
        PcapError::BufferTooSmall => DamageKind::LengthField { part, max: MAX_RECORD as u64 },
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            DamageKind::FailedCheck { part, check: format!("{kind:?}") }
        }
        e => DamageKind::Unreadable { part: Part::Record, detail: e.to_string() },
    }
}

/// Reads a pcap or pcapng stream. `sink` gets every TCP segment in file order; `progress` gets the
/// byte offset now and then and returns false to stop early (cancel). Damage stops the walk with
/// a [`Damage`]; what was read before stays valid (the reader contract of [`crate::ingest`]).
pub fn read_capture<R: Read + Send>(
    input: u32,
    reader: R,
    is_pcapng: bool,
    sink: &mut dyn FnMut(TcpSegment),
    progress: &mut dyn FnMut(u64) -> bool,
) -> (CaptureStats, Option<Damage>) {
    read_capture_with_payload(input, reader, is_pcapng, &mut |seg, _| sink(seg), progress)
}

/// Like `read_capture`, and the sink also gets the captured TCP payload of each segment
/// (for the SMB reader).
pub fn read_capture_with_payload<R: Read + Send>(
    input: u32,
    reader: R,
    is_pcapng: bool,
    sink: &mut dyn FnMut(TcpSegment, &[u8]),
    progress: &mut dyn FnMut(u64) -> bool,
) -> (CaptureStats, Option<Damage>) {
    let mut stats = CaptureStats { format: if is_pcapng { "pcapng" } else { "pcap" }, ..Default::default() };
    let reader = FillingReader(reader);
    let made: Result<Box<dyn PcapReaderIterator + Send>, _> = if is_pcapng {
        PcapNGReader::new(BUFFER, reader).map(|r| Box::new(r) as _)
    } else {
        LegacyPcapReader::new(BUFFER, reader).map(|r| Box::new(r) as _)
    };
    let mut rd = match made {
        Ok(r) => r,
        Err(e) => {
            let kind = DamageKind::Unreadable { part: Part::CaptureHeader, detail: e.to_string() };
            return (stats, Some(Damage::at(0, kind)));
        }
    };

    let mut frame_no: u64 = 0;
    let mut legacy_link = linktype::ETHERNET;
    let mut legacy_nanos = false;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut big_endian = false;
    let mut since_progress = 0u32;

    let error = loop {
        let offset = rd.consumed() as u64;
        match rd.next() {
            Ok((len, block)) => {
                let mut handle = |lt: u32, ts: UtcNs, data: &[u8], orig_len: u32| {
                    frame_no += 1;
                    stats.saw(ts, orig_len);
                    if let Some(t) = decode_frame(lt, data) {
                        let payload = t.payload(data);
                        sink(t.into_segment(input, frame_no, ts), payload);
                    }
                };
                let mut damage = None;
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy_link = h.network.0 as u32;
                        legacy_nanos = h.is_nanosecond_precision();
                        stats.add_link(legacy_link);
                    }
                    PcapBlockOwned::Legacy(b) => {
                        if b.caplen as usize > MAX_RECORD {
                            damage = Some(DamageKind::TooLarge {
                                part: Part::Record,
                                len: b.caplen as u64,
                                max: MAX_RECORD as u64,
                            });
                        } else {
                            let sub = if legacy_nanos { b.ts_usec as i64 } else { b.ts_usec as i64 * 1000 };
                            let ts = b.ts_sec as i64 * 1_000_000_000 + sub;
                            let data = b.data.get(..b.caplen as usize).unwrap_or(b.data);
                            handle(legacy_link, ts, data, b.origlen);
                        }
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                        // A new section restarts interface numbering.
                        interfaces.clear();
                        big_endian = shb.big_endian();
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let lt = idb.linktype.0 as u32;
                        stats.add_link(lt);
                        interfaces.push(Interface {
                            linktype: lt,
                            units: idb.ts_resolution().unwrap_or(1_000_000),
                            offset_s: idb.ts_offset(),
                        });
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => match interfaces.get(epb.if_id as usize) {
                        None => {
                            damage = Some(DamageKind::Undeclared {
                                part: Part::Packet,
                                target: "interface",
                                index: epb.if_id as u64,
                            })
                        }
                        Some(_) if epb.caplen as usize > MAX_RECORD => {
                            damage = Some(DamageKind::TooLarge {
                                part: Part::Packet,
                                len: epb.caplen as u64,
                                max: MAX_RECORD as u64,
                            })
                        }
                        Some(ifc) => {
                            let ticks = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                            let ts = ng_ts(ticks, ifc);
                            let data = epb.data.get(..epb.caplen as usize).unwrap_or(epb.data);
                            let lt = ifc.linktype;
                            handle(lt, ts, data, epb.origlen);
                        }
                    },
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        // No timestamp in a Simple Packet Block; interface 0 is implied.
                        if let Some(ifc) = interfaces.first() {
                            let cap = spb.data.len().min(spb.origlen as usize);
                            let lt = ifc.linktype;
                            handle(lt, 0, &spb.data[..cap], spb.origlen);
                        }
                    }
                    PcapBlockOwned::NG(Block::Unknown(ub)) if ub.block_type == 2 => {
                        let d = ub.data;
                        match obsolete_packet_header(d, big_endian)
                            .and_then(|(ifid, t, cap, orig)| interfaces.get(ifid as usize).map(|i| (i, t, cap, orig)))
                        {
                            Some((ifc, ticks, cap, orig)) => {
                                let ts = ng_ts(ticks, ifc);
                                let data = d.get(20..).unwrap_or(&[]);
                                let data = data.get(..cap).unwrap_or(data);
                                let lt = ifc.linktype;
                                handle(lt, ts, data, orig);
                            }
                            None => {
                                damage = Some(DamageKind::Unreadable {
                                    part: Part::ObsoletePacketBlock,
                                    detail: "no packet header or an undeclared interface".into(),
                                })
                            }
                        }
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                if let Some(kind) = damage {
                    break Some(Damage::at(offset, kind));
                }
                rd.consume(len);
                since_progress += 1;
                if since_progress >= 4096 {
                    since_progress = 0;
                    if !progress(rd.consumed() as u64) {
                        break None;
                    }
                }
            }
            Err(PcapError::Eof) => break None,
            Err(PcapError::Incomplete(_)) => {
                if let Err(e) = rd.refill() {
                    break Some(Damage::at(offset, DamageKind::Io(e.to_string())));
                }
            }
            Err(e) => break Some(Damage::at(offset, stream_damage(e, is_pcapng))),
        }
    };
    progress(rd.consumed() as u64);
    (stats, error)
}

/// An interface as a capture declares it (a legacy pcap file header declares one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawInterface {
    pub linktype: u32,
    pub snaplen: u32,
    /// `if_tsresol` as written (6 = µs, 9 = ns); a legacy pcap header gives 6 or 9.
    pub tsresol: u8,
    /// `if_tsoffset`, seconds.
    pub tsoffset: i64,
    /// `if_name`.
    pub name: Option<Vec<u8>>,
}

/// A packet record as stored in the capture.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// Frame number, counted as `read_capture` counts them.
    pub frame: u64,
    /// Index into every interface declared so far in the stream (all sections).
    pub iface: usize,
    /// Time in the interface's own units (`tsresol`), before `tsoffset`.
    pub ticks: u64,
    pub ts: UtcNs,
    pub data: &'a [u8],
    pub orig_len: u32,
}

/// What `read_capture_raw` hands its sink, in file order.
#[derive(Debug)]
pub enum RawItem<'a> {
    /// A new interface; its index is the number of interfaces before it.
    Interface(&'a RawInterface),
    Packet(RawPacket<'a>),
    /// An Obsolete Packet Block: it has a frame number (Wireshark counts it) but is not copied.
    Obsolete {
        frame: u64,
    },
}

/// Reads a pcap or pcapng stream record by record for copying packets out (evidence files) or
/// looking at a file's first packets (ring files): frames are numbered and damage stops the walk
/// where `read_capture` stops. `sink` returns false to stop early. Returns the frames seen.
pub fn read_capture_raw<R: Read + Send>(
    reader: R,
    is_pcapng: bool,
    sink: &mut dyn FnMut(RawItem<'_>) -> bool,
) -> (u64, Option<Damage>) {
    let reader = FillingReader(reader);
    let made: Result<Box<dyn PcapReaderIterator + Send>, _> = if is_pcapng {
        PcapNGReader::new(BUFFER, reader).map(|r| Box::new(r) as _)
    } else {
        LegacyPcapReader::new(BUFFER, reader).map(|r| Box::new(r) as _)
    };
    let mut rd = match made {
        Ok(r) => r,
        Err(e) => {
            let kind = DamageKind::Unreadable { part: Part::CaptureHeader, detail: e.to_string() };
            return (0, Some(Damage::at(0, kind)));
        }
    };
    // Every interface of the stream, and the current section's ids into it.
    let mut ifaces: Vec<(RawInterface, u64)> = Vec::new();
    let mut section: Vec<usize> = Vec::new();
    let mut frame: u64 = 0;
    let mut big_endian = false;
    let error = loop {
        let offset = rd.consumed() as u64;
        match rd.next() {
            Ok((len, block)) => {
                let mut go = true;
                let mut damage = None;
                let mut packet = |i: usize, ticks: u64, data: &[u8], orig_len: u32, ifaces: &[(RawInterface, u64)]| {
                    frame += 1;
                    let (ifc, units) = &ifaces[i];
                    let ts = ng_ts(ticks, &Interface { linktype: ifc.linktype, units: *units, offset_s: ifc.tsoffset });
                    sink(RawItem::Packet(RawPacket { frame, iface: i, ticks, ts, data, orig_len }))
                };
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        let nanos = h.is_nanosecond_precision();
                        let ifc = RawInterface {
                            linktype: h.network.0 as u32,
                            snaplen: h.snaplen,
                            tsresol: if nanos { 9 } else { 6 },
                            tsoffset: 0,
                            name: None,
                        };
                        go = sink(RawItem::Interface(&ifc));
                        ifaces.push((ifc, if nanos { 1_000_000_000 } else { 1_000_000 }));
                        section = vec![ifaces.len() - 1];
                    }
                    PcapBlockOwned::Legacy(b) => match section.first() {
                        Some(&i) if b.caplen as usize <= MAX_RECORD => {
                            let ticks = (b.ts_sec as u64) * ifaces[i].1 + b.ts_usec as u64;
                            let data = b.data.get(..b.caplen as usize).unwrap_or(b.data);
                            go = packet(i, ticks, data, b.origlen, &ifaces);
                        }
                        _ => {
                            damage = Some(DamageKind::TooLarge {
                                part: Part::Record,
                                len: b.caplen as u64,
                                max: MAX_RECORD as u64,
                            })
                        }
                    },
                    PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                        section.clear();
                        big_endian = shb.big_endian();
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let name = idb.options.iter().find(|o| o.code.0 == 2).map(|o| {
                            let v: &[u8] = &o.value;
                            v[..(o.len as usize).min(v.len())].to_vec()
                        });
                        let ifc = RawInterface {
                            linktype: idb.linktype.0 as u32,
                            snaplen: idb.snaplen,
                            tsresol: idb.if_tsresol,
                            tsoffset: idb.ts_offset(),
                            name,
                        };
                        go = sink(RawItem::Interface(&ifc));
                        ifaces.push((ifc, idb.ts_resolution().unwrap_or(1_000_000)));
                        section.push(ifaces.len() - 1);
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => match section.get(epb.if_id as usize) {
                        Some(&i) if epb.caplen as usize <= MAX_RECORD => {
                            let ticks = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                            let data = epb.data.get(..epb.caplen as usize).unwrap_or(epb.data);
                            go = packet(i, ticks, data, epb.origlen, &ifaces);
                        }
                        Some(_) => {
                            damage = Some(DamageKind::TooLarge {
                                part: Part::Packet,
                                len: epb.caplen as u64,
                                max: MAX_RECORD as u64,
                            })
                        }
                        None => {
                            damage = Some(DamageKind::Undeclared {
                                part: Part::Packet,
                                target: "interface",
                                index: epb.if_id as u64,
                            })
                        }
                    },
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        if let Some(&i) = section.first() {
                            let cap = spb.data.len().min(spb.origlen as usize);
                            go = packet(i, 0, &spb.data[..cap], spb.origlen, &ifaces);
                        }
                    }
                    PcapBlockOwned::NG(Block::Unknown(ub)) if ub.block_type == 2 => {
                        // Numbered only when readable, as read_capture does.
                        match obsolete_packet_header(ub.data, big_endian) {
                            Some((i, ..)) if (i as usize) < section.len() => {
                                frame += 1;
                                go = sink(RawItem::Obsolete { frame });
                            }
                            _ => {
                                damage = Some(DamageKind::Unreadable {
                                    part: Part::ObsoletePacketBlock,
                                    detail: "no packet header or an undeclared interface".into(),
                                })
                            }
                        }
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                if let Some(kind) = damage {
                    break Some(Damage::at(offset, kind));
                }
                rd.consume(len);
                if !go {
                    break None;
                }
            }
            Err(PcapError::Eof) => break None,
            Err(PcapError::Incomplete(_)) => {
                if let Err(e) = rd.refill() {
                    break Some(Damage::at(offset, DamageKind::Io(e.to_string())));
                }
            }
            Err(e) => break Some(Damage::at(offset, stream_damage(e, is_pcapng))),
        }
    };
    (frame, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (fuzz/regressions/pcap/): an IDB with `if_tsoffset` = i64::MAX made
    /// `offset_s * 1_000_000_000` overflow (a panic in debug builds, a wrapped time in release).
    #[test]
    fn huge_ts_offset_does_not_overflow() {
        let block = |t: u32, mut body: Vec<u8>| {
            while body.len() % 4 != 0 {
                body.push(0);
            }
            let len = (12 + body.len()) as u32;
            let mut b = t.to_le_bytes().to_vec();
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(&body);
            b.extend_from_slice(&len.to_le_bytes());
            b
        };
        let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut idb = vec![1, 0, 0, 0, 0xff, 0xff, 0, 0];
        idb.extend_from_slice(&[14, 0, 8, 0]); // if_tsoffset
        idb.extend_from_slice(&i64::MAX.to_le_bytes());
        idb.extend_from_slice(&[0, 0, 0, 0]);
        let mut epb = Vec::new();
        for v in [0u32, 0xffff_ffff, 0xffff_ffff, 4, 4] {
            epb.extend_from_slice(&v.to_le_bytes());
        }
        epb.extend_from_slice(b"abcd");
        let mut file = block(0x0A0D_0D0A, shb);
        file.extend(block(1, idb));
        file.extend(block(6, epb));
        let (stats, err) = read_capture(0, &file[..], true, &mut |_| {}, &mut |_| true);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(stats.packets, 1);
        assert_eq!(stats.first_ts, Some(i64::MAX));
    }
}
