//! Bounds-checked little-endian reads; every accessor returns None instead of panicking.

#[inline]
pub(crate) fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

#[inline]
pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

#[inline]
pub(crate) fn u16_be_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(s))
}

#[inline]
pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s: [u8; 8] = b.get(off..off.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(s))
}

#[inline]
pub(crate) fn i64_at(b: &[u8], off: usize) -> Option<i64> {
    u64_at(b, off).map(|v| v as i64)
}

/// Pointer-sized value (4 or 8 bytes), widened to u64.
#[inline]
pub(crate) fn ptr_at(b: &[u8], off: usize, ptr_size: u8) -> Option<u64> {
    if ptr_size == 4 {
        u32_at(b, off).map(u64::from)
    } else {
        u64_at(b, off)
    }
}

/// NUL-terminated UTF-16LE string starting at `off`; returns the string and the offset after
/// the terminator (or the end of the slice when unterminated).
pub(crate) fn utf16z_at(b: &[u8], off: usize) -> Option<(String, usize)> {
    let rest = b.get(off..)?;
    let mut units = Vec::new();
    let mut i = 0usize;
    let mut end = rest.len();
    while let Some(s) = rest.get(i..i + 2) {
        let u = u16::from_le_bytes([s[0], s[1]]);
        i += 2;
        if u == 0 {
            end = i;
            break;
        }
        units.push(u);
        end = i;
    }
    Some((String::from_utf16_lossy(&units), off.checked_add(end)?))
}

/// Cursor over a payload that reads fields in manifest order.
pub(crate) struct Cur<'a> {
    pub b: &'a [u8],
    pub pos: usize,
    pub ptr: u8,
}

impl<'a> Cur<'a> {
    pub fn new(b: &'a [u8], ptr: u8) -> Self {
        Cur { b, pos: 0, ptr }
    }
    pub fn u16(&mut self) -> Option<u16> {
        let v = u16_at(self.b, self.pos)?;
        self.pos += 2;
        Some(v)
    }
    pub fn u16_be(&mut self) -> Option<u16> {
        let v = u16_be_at(self.b, self.pos)?;
        self.pos += 2;
        Some(v)
    }
    pub fn u32(&mut self) -> Option<u32> {
        let v = u32_at(self.b, self.pos)?;
        self.pos += 4;
        Some(v)
    }
    pub fn ptr(&mut self) -> Option<u64> {
        let v = ptr_at(self.b, self.pos, self.ptr)?;
        self.pos += if self.ptr == 4 { 4 } else { 8 };
        Some(v)
    }
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }
    pub fn utf16z(&mut self) -> Option<String> {
        let (s, next) = utf16z_at(self.b, self.pos)?;
        self.pos = next;
        Some(s)
    }
}
