//! Stable identifiers of a connection for joining tables across tools and runs:
//! `conn_uid` (Zeek-like) and `community_id` (Community ID v1, as Zeek, Suricata and Wireshark
//! compute it).

use std::net::IpAddr;

use super::sha1::sha1_of_parts;
use crate::model::{Endpoint, UtcNs};

/// IANA protocol number of TCP.
pub const PROTO_TCP: u8 = 6;

/// Community ID v1 of a flow: SHA-1 over seed (16-bit BE), the lower endpoint's address, the
/// other address, protocol, a zero byte, then the two ports in the same order; base64 with "1:".
/// The lower endpoint is the one with the smaller (address, port), so both directions agree.
pub fn community_id(seed: u16, a: &Endpoint, b: &Endpoint, proto: u8) -> String {
    community_id_text(seed, a, b, proto).as_str().to_owned()
}

/// [`community_id`] without an allocation (the tables write one per row).
pub fn community_id_text(seed: u16, a: &Endpoint, b: &Endpoint, proto: u8) -> IdText {
    let (src, dst) = if (ip_bytes(&a.ip), a.port) <= (ip_bytes(&b.ip), b.port) { (a, b) } else { (b, a) };
    let digest = sha1_of_parts(&[
        &seed.to_be_bytes(),
        ip_bytes(&src.ip).as_slice(),
        ip_bytes(&dst.ip).as_slice(),
        &[proto, 0],
        &src.port.to_be_bytes(),
        &dst.port.to_be_bytes(),
    ]);
    let mut out = IdText::default();
    out.push(b"1:");
    base64(&digest, &mut out);
    out
}

/// A short identifier's text, held inline: "C" and 17 digits, or "1:" and 28 base64 characters.
#[derive(Clone, Copy, Default)]
pub struct IdText {
    bytes: [u8; 32],
    len: u8,
}

impl IdText {
    /// Appends ASCII bytes (callers write at most 32).
    fn push(&mut self, b: &[u8]) {
        let at = self.len as usize;
        self.bytes[at..at + b.len()].copy_from_slice(b);
        self.len += b.len() as u8;
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// Network-order bytes of an address (4 for IPv4, 16 for IPv6), comparable as the spec orders them.
fn ip_bytes(ip: &IpAddr) -> IpBytes {
    match ip {
        IpAddr::V4(a) => IpBytes { bytes: ipv4_padded(a.octets()), len: 4 },
        IpAddr::V6(a) => IpBytes { bytes: a.octets(), len: 16 },
    }
}

fn ipv4_padded(o: [u8; 4]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&o);
    b
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct IpBytes {
    bytes: [u8; 16],
    len: usize,
}

impl IpBytes {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Standard base64 with padding of a SHA-1 digest (28 characters), four at a time.
fn base64(data: &[u8; 20], out: &mut IdText) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = [b'='; 28];
    for (chunk, quad) in data.chunks(3).zip(text.chunks_mut(4)) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // A chunk of n bytes gives n + 1 characters; the rest of its quad stays '='.
        for (i, c) in quad.iter_mut().enumerate().take(chunk.len() + 1) {
            *c = A[((v >> (18 - 6 * i)) & 63) as usize];
        }
    }
    out.push(&text);
}

/// Zeek-like connection uid: "C" and 17 base62 digits of a hash of the input's file name, the
/// 5-tuple (client first) and the first packet's time — the same connection in the same file
/// gets the same uid in every run and on every machine.
pub fn conn_uid(input_name: &str, client: &Endpoint, server: &Endpoint, proto: u8, first_ts: UtcNs) -> String {
    conn_uid_text(input_name, client, server, proto, first_ts).as_str().to_owned()
}

/// [`conn_uid`] without an allocation (the tables write one per row).
pub fn conn_uid_text(input_name: &str, client: &Endpoint, server: &Endpoint, proto: u8, first_ts: UtcNs) -> IdText {
    let d = sha1_of_parts(&[
        input_name.as_bytes(),
        &[0],
        ip_bytes(&client.ip).as_slice(),
        &client.port.to_be_bytes(),
        ip_bytes(&server.ip).as_slice(),
        &server.port.to_be_bytes(),
        &[proto],
        &first_ts.to_be_bytes(),
    ]);
    let mut out = IdText::default();
    out.push(b"C");
    out.push(&base62_of_96_bits(d[..12].try_into().unwrap_or([0; 12])));
    out
}

const B62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 96-bit big-endian number `b` in 17 base-62 digits (62^17 > 2^96, so 17 always suffice).
/// Divided by 62^5 in 32-bit limbs: u64 divisions by a constant instead of 17 u128 divisions.
fn base62_of_96_bits(b: [u8; 12]) -> [u8; 17] {
    const GROUP: u64 = 62u64.pow(5);
    let limb = |i: usize| u64::from(u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
    let mut limbs = [limb(0), limb(4), limb(8)];
    let mut digits = [b'0'; 17];
    let mut pos = digits.len();
    while pos > 0 {
        // limbs /= 62^5; each step's dividend is below 62^5 * 2^32 < 2^62.
        let mut rem = 0u64;
        for l in limbs.iter_mut() {
            let cur = (rem << 32) | *l;
            *l = cur / GROUP;
            rem = cur % GROUP;
        }
        for _ in 0..pos.min(5) {
            pos -= 1;
            digits[pos] = B62[(rem % 62) as usize];
            rem /= 62;
        }
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        let sa: std::net::SocketAddr = s.parse().unwrap();
        Endpoint { ip: sa.ip(), port: sa.port() }
    }

    /// Vectors of the specification's baseline, as Zeek's own test prints them (tshark 4.0 here has no
    /// community-id field to compare with).
    #[test]
    fn community_id_spec_vectors() {
        let a = ep("1.2.3.4:1122");
        let b = ep("5.6.7.8:3344");
        assert_eq!(community_id(0, &a, &b, PROTO_TCP), "1:wCb3OG7yAFWelaUydu0D+125CLM=");
        // Direction does not matter.
        assert_eq!(community_id(0, &b, &a, PROTO_TCP), "1:wCb3OG7yAFWelaUydu0D+125CLM=");
        assert_eq!(community_id(1, &a, &b, PROTO_TCP), "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=");
        assert_eq!(community_id(0, &a, &b, 17), "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=");
        assert_eq!(community_id(1, &a, &b, 17), "1:OShq+iKDAMVouh/4bMxB9Sz4amw=");
        // IPv6: the ICMPv6 echo vector, whose type (128) and reply type (129) stand in for ports.
        let a6 = ep("[fe80:1:203:405:607:809:a0b:c0d]:128");
        let b6 = ep("[fe80:1011:1213:1415:1617:1819:1a1b:1c1d]:129");
        assert_eq!(community_id(0, &a6, &b6, 58), "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=");
    }

    /// The limb division gives the digits of the plain u128 one.
    #[test]
    fn base62_by_limbs_equals_u128_division() {
        let by_u128 = |b: [u8; 12]| {
            let mut v = b.iter().fold(0u128, |acc, &x| (acc << 8) | u128::from(x));
            let mut digits = [b'0'; 17];
            for d in digits.iter_mut().rev() {
                *d = B62[(v % 62) as usize];
                v /= 62;
            }
            digits
        };
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut cases =
            vec![[0u8; 12], [0xff; 12], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 61], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 62]];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = [0u8; 12];
            b[..8].copy_from_slice(&x.to_be_bytes());
            b[8..].copy_from_slice(&x.rotate_left(29).to_be_bytes()[..4]);
            cases.push(b);
        }
        for b in cases {
            assert_eq!(base62_of_96_bits(b), by_u128(b), "{b:?}");
        }
    }

    #[test]
    fn conn_uid_is_stable_and_zeek_shaped() {
        let (c, s) = (ep("10.0.0.1:50000"), ep("10.0.0.2:445"));
        let u = conn_uid("a.pcap", &c, &s, PROTO_TCP, 1_700_000_000_000_000_000);
        assert_eq!(u.len(), 18);
        assert!(u.starts_with('C') && u[1..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(u, conn_uid("a.pcap", &c, &s, PROTO_TCP, 1_700_000_000_000_000_000));
        assert_ne!(u, conn_uid("b.pcap", &c, &s, PROTO_TCP, 1_700_000_000_000_000_000));
        assert_ne!(u, conn_uid("a.pcap", &s, &c, PROTO_TCP, 1_700_000_000_000_000_000));
        assert_ne!(u, conn_uid("a.pcap", &c, &s, PROTO_TCP, 1_700_000_000_000_000_001));
    }
}
