//! Link layer → IP → TCP header decoding. Works on snap-length-truncated frames: lengths come
//! from the IP headers, and whatever header fields were captured are used.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::Endpoint;

/// pcap/pcapng link types we decode.
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW_DLT12: u32 = 12;
    pub const RAW_DLT14: u32 = 14;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;

    pub fn name(lt: u32) -> String {
        match lt {
            NULL => "null".into(),
            ETHERNET => "ethernet".into(),
            RAW | RAW_DLT12 | RAW_DLT14 => "raw".into(),
            LOOP => "loop".into(),
            LINUX_SLL => "linux_sll".into(),
            IPV4 => "ipv4".into(),
            IPV6 => "ipv6".into(),
            LINUX_SLL2 => "linux_sll2".into(),
            other => format!("linktype_{other}"),
        }
    }
}

/// The TCP fields of one frame.
#[derive(Clone, Debug)]
pub struct DecodedTcp {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload_len: u32,
    pub window_scale: Option<u8>,
    pub has_sack: bool,
    /// Offset of the TCP payload from the start of the decoded frame (see `payload`).
    pub payload_at: usize,
    /// IPv4 TTL or IPv6 hop limit (hop counts of injected resets, issue 15).
    pub ttl: u8,
    /// IPv4 identification; `None` for IPv6 (no such field without a fragment header).
    pub ip_id: Option<u16>,
}

impl DecodedTcp {
    /// The captured part of the TCP payload, from the frame this was decoded from (at most
    /// `payload_len` bytes: Ethernet padding is not payload).
    pub fn payload<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        let end = self.payload_at.saturating_add(self.payload_len as usize).min(frame.len());
        frame.get(self.payload_at..end).unwrap_or(&[])
    }

    /// The segment as the analysis sees it: where it came from and when.
    pub fn into_segment(self, input: u32, frame: u64, ts: crate::model::UtcNs) -> crate::model::TcpSegment {
        crate::model::TcpSegment {
            input,
            frame,
            ts,
            src: self.src,
            dst: self.dst,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            payload_len: self.payload_len,
            window_scale: self.window_scale,
            has_sack: self.has_sack,
            ttl: self.ttl,
            ip_id: self.ip_id,
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MC: u16 = 0x8848;

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes a frame of the given link type; `None` when it is not (decodable) TCP.
pub fn decode_frame(linktype: u32, frame: &[u8]) -> Option<DecodedTcp> {
    let mut t = decode_link(linktype, frame)?;
    // decode_tcp saw a sub-slice of `frame`: turn the payload's address into an offset.
    t.payload_at = t.payload_at.saturating_sub(frame.as_ptr() as usize);
    Some(t)
}

fn decode_link(linktype: u32, frame: &[u8]) -> Option<DecodedTcp> {
    match linktype {
        linktype::ETHERNET => decode_ethertype(be16(frame, 12)?, frame.get(14..)?),
        linktype::NULL | linktype::LOOP => {
            let raw = frame.get(0..4)?;
            // The family is in the capturing host's byte order (NULL) or network order (LOOP).
            let le = u32::from_le_bytes(raw.try_into().ok()?);
            let be = u32::from_be_bytes(raw.try_into().ok()?);
            let family = if le < 256 { le } else { be };
            match family {
                2 => decode_ipv4(frame.get(4..)?),
                10 | 24 | 28 | 30 => decode_ipv6(frame.get(4..)?),
                _ => None,
            }
        }
        linktype::RAW | linktype::RAW_DLT12 | linktype::RAW_DLT14 => decode_ip(frame),
        linktype::IPV4 => decode_ipv4(frame),
        linktype::IPV6 => decode_ipv6(frame),
        linktype::LINUX_SLL => decode_ethertype(be16(frame, 14)?, frame.get(16..)?),
        linktype::LINUX_SLL2 => decode_ethertype(be16(frame, 0)?, frame.get(20..)?),
        _ => None,
    }
}

fn decode_ip(d: &[u8]) -> Option<DecodedTcp> {
    match d.first()? >> 4 {
        4 => decode_ipv4(d),
        6 => decode_ipv6(d),
        _ => None,
    }
}

fn decode_ethertype(mut ethertype: u16, mut d: &[u8]) -> Option<DecodedTcp> {
    // Bounded: each step consumes at least 4 bytes.
    loop {
        match ethertype {
            ETHERTYPE_IPV4 => return decode_ipv4(d),
            ETHERTYPE_IPV6 => return decode_ipv6(d),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                ethertype = be16(d, 2)?;
                d = d.get(4..)?;
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MC => {
                loop {
                    let bottom = d.get(2)? & 1 == 1;
                    d = d.get(4..)?;
                    if bottom {
                        break;
                    }
                }
                return decode_ip(d);
            }
            _ => return None,
        }
    }
}

fn decode_ipv4(d: &[u8]) -> Option<DecodedTcp> {
    let vihl = *d.first()?;
    if vihl >> 4 != 4 {
        return None;
    }
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if ihl < 20 {
        return None;
    }
    let total_len = be16(d, 2)? as usize;
    let frag = be16(d, 6)?;
    if frag & 0x1fff != 0 {
        return None; // a later fragment carries no TCP header
    }
    if *d.get(9)? != 6 {
        return None;
    }
    let src = IpAddr::V4(Ipv4Addr::from(be32(d, 12)?));
    let dst = IpAddr::V4(Ipv4Addr::from(be32(d, 16)?));
    // TSO captures have total_len 0: fall back to what was captured.
    let ip_payload = if total_len == 0 { d.len().saturating_sub(ihl) } else { total_len.checked_sub(ihl)? };
    let mut t = decode_tcp(src, dst, d.get(ihl..)?, ip_payload)?;
    t.ttl = *d.get(8)?;
    t.ip_id = Some(be16(d, 4)?);
    Some(t)
}

fn decode_ipv6(d: &[u8]) -> Option<DecodedTcp> {
    if d.first()? >> 4 != 6 {
        return None;
    }
    let payload_len = be16(d, 4)? as usize;
    let mut next = *d.get(6)?;
    let hop_limit = *d.get(7)?;
    let src = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(d.get(8..24)?).ok()?));
    let dst = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(d.get(24..40)?).ok()?));
    let mut off = 40usize;
    let mut remaining = payload_len;
    // Skip extension headers; at most a handful are legal, cap the walk anyway.
    for _ in 0..16 {
        match next {
            6 => {
                let mut t = decode_tcp(src, dst, d.get(off..)?, remaining)?;
                t.ttl = hop_limit;
                return Some(t);
            }
            0 | 43 | 60 | 135 | 139 | 140 => {
                let len = (*d.get(off + 1)? as usize + 1) * 8;
                next = *d.get(off)?;
                off += len;
                remaining = remaining.checked_sub(len)?;
            }
            44 => {
                let frag_off = be16(d, off + 2)? >> 3;
                if frag_off != 0 {
                    return None;
                }
                next = *d.get(off)?;
                off += 8;
                remaining = remaining.checked_sub(8)?;
            }
            51 => {
                let len = (*d.get(off + 1)? as usize + 2) * 4;
                next = *d.get(off)?;
                off += len;
                remaining = remaining.checked_sub(len)?;
            }
            _ => return None,
        }
    }
    None
}

fn decode_tcp(src: IpAddr, dst: IpAddr, d: &[u8], ip_payload_len: usize) -> Option<DecodedTcp> {
    // Ports, seq, ack, offset, flags and window must have been captured.
    let sport = be16(d, 0)?;
    let dport = be16(d, 2)?;
    let seq = be32(d, 4)?;
    let ack = be32(d, 8)?;
    let hdr_len = ((*d.get(12)? >> 4) as usize) * 4;
    let flags = *d.get(13)?;
    let window = be16(d, 14)?;
    if hdr_len < 20 {
        return None;
    }
    let payload_len = ip_payload_len.saturating_sub(hdr_len) as u32;
    let mut window_scale = None;
    let mut has_sack = false;
    // Options: only what was captured.
    let opts = d.get(20..hdr_len.min(d.len())).unwrap_or(&[]);
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&len) = opts.get(i + 1) else { break };
                let len = len as usize;
                if len < 2 {
                    break;
                }
                match kind {
                    3 if len == 3 => window_scale = opts.get(i + 2).copied(),
                    5 => has_sack = true,
                    _ => {}
                }
                i += len;
            }
        }
    }
    Some(DecodedTcp {
        src: Endpoint { ip: src, port: sport },
        dst: Endpoint { ip: dst, port: dport },
        seq,
        ack,
        flags,
        window,
        payload_len,
        window_scale,
        has_sack,
        // An address until decode_frame makes it an offset.
        payload_at: d.as_ptr() as usize + hdr_len,
        ttl: 0,
        ip_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp(flags: u8, payload: usize) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let total = 20 + 20 + payload;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&1234u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[4..8].copy_from_slice(&100u32.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&8192u16.to_be_bytes());
        p.extend(t);
        p.extend(std::iter::repeat(0xaa).take(payload));
        p
    }

    #[test]
    fn ethernet_vlan_mpls() {
        let ip = ipv4_tcp(0x02, 0);
        let mut eth = vec![0u8; 12];
        eth.extend([0x81, 0x00, 0, 5, 0x88, 0x47]);
        eth.extend([0, 0, 0x01, 64]); // one MPLS label, bottom of stack
        eth.extend(&ip);
        let t = decode_frame(linktype::ETHERNET, &eth).expect("decodes");
        assert_eq!(t.src.to_string(), "10.0.0.1:1234");
        assert_eq!(t.dst.port, 80);
        assert_eq!(t.flags, 0x02);
        assert_eq!((t.ttl, t.ip_id), (64, Some(0)));
    }

    #[test]
    fn truncated_payload_keeps_ip_length() {
        let ip = ipv4_tcp(0x18, 500);
        let t = decode_frame(linktype::RAW, &ip[..40]).expect("decodes");
        assert_eq!(t.payload_len, 500);
        assert!(decode_frame(linktype::RAW, &ip[..30]).is_none());
        assert!(t.payload(&ip[..40]).is_empty());
    }

    #[test]
    fn payload_slice_excludes_ethernet_padding() {
        let ip = ipv4_tcp(0x18, 3);
        let mut eth = vec![0u8; 12];
        eth.extend([0x08, 0x00]);
        eth.extend(&ip);
        eth.extend([0u8; 3]); // padding to the Ethernet minimum
        let t = decode_frame(linktype::ETHERNET, &eth).expect("decodes");
        assert_eq!(t.payload_at, 14 + 40);
        assert_eq!(t.payload(&eth), &[0xaa, 0xaa, 0xaa]);
    }

    #[test]
    fn null_loopback_both_orders() {
        let ip = ipv4_tcp(0x10, 3);
        let mut le = 2u32.to_le_bytes().to_vec();
        le.extend(&ip);
        let mut be = 2u32.to_be_bytes().to_vec();
        be.extend(&ip);
        assert!(decode_frame(linktype::NULL, &le).is_some());
        assert!(decode_frame(linktype::LOOP, &be).is_some());
    }
}
