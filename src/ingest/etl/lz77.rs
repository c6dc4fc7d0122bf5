//! MS-XCA "plain LZ77" decompression ([MS-XCA] 2.3/2.4), written from the published algorithm.
//!
//! Output is bounded: the caller says how many bytes to expect and decoding never writes more.

/// Decompress `input` into `out` (cleared first), expecting exactly `expected` bytes.
///
/// Stops successfully when `expected` bytes were produced, or when the input ends exactly at
/// a flag boundary having produced them. Any reference before the start of the output, a
/// match running past `expected`, or input ending early is an error.
pub fn decompress_plain_lz77(input: &[u8], expected: usize, out: &mut Vec<u8>) -> Result<(), &'static str> {
    out.clear();
    out.reserve(expected);
    let mut ip = 0usize;
    let mut flags: u32 = 0;
    let mut flag_count: u32 = 0;
    let mut last_half: Option<usize> = None;
    while out.len() < expected {
        if flag_count == 0 {
            let s: [u8; 4] = input.get(ip..ip + 4).and_then(|s| s.try_into().ok()).ok_or("input ended in flag word")?;
            flags = u32::from_le_bytes(s);
            ip += 4;
            flag_count = 32;
        }
        flag_count -= 1;
        if flags & (1u32 << flag_count) == 0 {
            let b = *input.get(ip).ok_or("input ended in literal")?;
            out.push(b);
            ip += 1;
            continue;
        }
        let mb = input.get(ip..ip + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or("input ended in match")?;
        ip += 2;
        let mut len = (mb & 7) as usize;
        let dist = (mb >> 3) as usize + 1;
        if len == 7 {
            match last_half.take() {
                None => {
                    let b = *input.get(ip).ok_or("input ended in length nibble")?;
                    len = (b & 0x0f) as usize;
                    last_half = Some(ip);
                    ip += 1;
                }
                Some(p) => {
                    let b = *input.get(p).ok_or("bad nibble position")?;
                    len = (b >> 4) as usize;
                }
            }
            if len == 15 {
                len = *input.get(ip).ok_or("input ended in length byte")? as usize;
                ip += 1;
                if len == 255 {
                    len = input
                        .get(ip..ip + 2)
                        .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
                        .ok_or("input ended in length word")?;
                    ip += 2;
                    if len == 0 {
                        len = input
                            .get(ip..ip + 4)
                            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
                            .ok_or("input ended in length dword")?;
                        ip += 4;
                    }
                    len = len.checked_sub(15 + 7).ok_or("match length underflow")?;
                }
                len += 15;
            }
            len += 7;
        }
        len += 3;
        let start = out.len().checked_sub(dist).ok_or("match before start of output")?;
        let end = out.len().checked_add(len).ok_or("match length overflow")?;
        if end > expected {
            return Err("match runs past expected size");
        }
        if dist >= len {
            // Non-overlapping: one bulk copy.
            out.extend_from_within(start..start + len);
        } else {
            // Overlapping: the output repeats with period `dist`, so copy whole periods from
            // `start`, doubling each round (a byte-by-byte loop made long runs, e.g. a 64 MiB
            // match of distance 1, cost seconds in debug builds).
            let mut copied = 0;
            while copied < len {
                let periods = (out.len() - start) / dist * dist;
                let n = (len - copied).min(periods);
                out.extend_from_within(start..start + n);
                copied += n;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_match() {
        // flags: bit31 literal 'a', bit30 literal 'b', bit29 match dist 2 len 3 -> "ababa"
        let flags: u32 = 0b001u32 << 29;
        let mut inp = flags.to_le_bytes().to_vec();
        inp.extend_from_slice(b"ab");
        let mb: u16 = (2 - 1) << 3; // distance 2, length 0 + 3
        inp.extend_from_slice(&mb.to_le_bytes());
        let mut out = Vec::new();
        decompress_plain_lz77(&inp, 5, &mut out).unwrap();
        assert_eq!(out, b"ababa");
    }

    #[test]
    fn long_match_and_errors() {
        // 'x' literal then match dist 1 len 7+3+... using nibble 15 and byte
        let flags: u32 = 0b01u32 << 30;
        let mut inp = flags.to_le_bytes().to_vec();
        inp.push(b'x');
        inp.extend_from_slice(&7u16.to_le_bytes()); // dist 1, len 7
        inp.push(0x0f); // nibble 15
        inp.push(10); // 10 + 15 + 7 + 3 = 35
        let mut out = Vec::new();
        decompress_plain_lz77(&inp, 36, &mut out).unwrap();
        assert_eq!(out.len(), 36);
        assert!(out.iter().all(|&b| b == b'x'));
        assert!(decompress_plain_lz77(&inp, 20, &mut out).is_err());
        assert!(decompress_plain_lz77(&inp[..6], 36, &mut out).is_err());
        // match before start
        let mut bad = (1u32 << 31).to_le_bytes().to_vec();
        bad.extend_from_slice(&0u16.to_le_bytes());
        assert!(decompress_plain_lz77(&bad, 3, &mut out).is_err());
    }

    /// Overlapping matches of every small distance against a byte-by-byte reference.
    #[test]
    fn overlapping_matches_repeat_the_period() {
        for dist in 1..=9usize {
            for len in [3usize, 4, 9, 10, 17, 100, 1000] {
                let lits = &b"abcdefghi"[..dist];
                // `dist` literals, then one match (length via nibble/byte/word escapes as needed).
                let mut inp = ((1u32 << (31 - dist)).to_le_bytes()).to_vec();
                inp.extend_from_slice(lits);
                let l = len - 3;
                if l < 7 {
                    inp.extend_from_slice(&((((dist - 1) << 3) | l) as u16).to_le_bytes());
                } else {
                    inp.extend_from_slice(&((((dist - 1) << 3) | 7) as u16).to_le_bytes());
                    if l - 7 < 15 {
                        inp.push((l - 7) as u8);
                    } else {
                        inp.push(15);
                        let l2 = l - 7 - 15;
                        if l2 < 255 {
                            inp.push(l2 as u8);
                        } else {
                            inp.push(255);
                            inp.extend_from_slice(&((l + 3 - 3) as u16).to_le_bytes());
                        }
                    }
                }
                let mut out = Vec::new();
                decompress_plain_lz77(&inp, dist + len, &mut out).unwrap();
                let want: Vec<u8> = (0..dist + len).map(|i| lits[i % dist]).collect();
                assert_eq!(out, want, "dist {dist} len {len}");
            }
        }
    }
}
