//! SHA-1, as conn_uid and community_id need it: RustCrypto's implementation, which uses the CPU's
//! SHA instructions where it has them (a portable SHA-1 took about a fifth of the CPU time of
//! writing connections.csv). The FIPS vectors below pin it.

use ::sha1::{Digest, Sha1};

/// The SHA-1 digest of the concatenation of `parts` (no buffer to assemble them in).
pub fn sha1_of_parts(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    parts.iter().for_each(|p| h.update(p));
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::sha1_of_parts;

    fn sha1(data: &[u8]) -> [u8; 20] {
        sha1_of_parts(&[data])
    }

    fn hex(d: [u8; 20]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// FIPS 180 / RFC 3174 test vectors, including the two-block padding case (56..63 bytes left).
    #[test]
    fn fips_vectors() {
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(hex(sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex(sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(sha1(
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
            )),
            "a49b2446a02c645bf419f995b67091253a04a259"
        );
        assert_eq!(hex(sha1(&vec![b'a'; 1_000_000])), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
        assert_eq!(
            hex(sha1(b"The quick brown fox jumps over the lazy dog")),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
        );
        assert_eq!(
            hex(sha1_of_parts(&[b"The quick brown ", b"", b"fox jumps over the lazy dog"])),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
        );
    }
}
