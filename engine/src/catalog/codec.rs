//! Little-endian field access on byte slices, bounds-checked.
//!
//! Decoders of on-disk structures read through these helpers so that a short or corrupt
//! buffer becomes `None` (and then a typed corruption error), never a panic.

/// Reads a `u16` at `off`, or `None` if the slice is too short.
pub fn get_u16(buf: &[u8], off: usize) -> Option<u16> {
    let b = buf.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes(b.try_into().ok()?))
}

/// Reads a `u32` at `off`, or `None` if the slice is too short.
pub fn get_u32(buf: &[u8], off: usize) -> Option<u32> {
    let b = buf.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Reads a `u64` at `off`, or `None` if the slice is too short.
pub fn get_u64(buf: &[u8], off: usize) -> Option<u64> {
    let b = buf.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Writes `bytes` at `off`. Panics only on a broken invariant: callers write into
/// buffers they sized themselves.
#[track_caller]
pub fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    match buf.get_mut(off..off + bytes.len()) {
        Some(dst) => dst.copy_from_slice(bytes),
        None => panic!(
            "codec::put out of bounds: off {off} len {} buf {}",
            bytes.len(),
            buf.len()
        ),
    }
}

/// Writes a `u16` at `off` (see [`put`]).
#[track_caller]
pub fn put_u16(buf: &mut [u8], off: usize, v: u16) {
    put(buf, off, &v.to_le_bytes());
}

/// Writes a `u32` at `off` (see [`put`]).
#[track_caller]
pub fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    put(buf, off, &v.to_le_bytes());
}

/// Writes a `u64` at `off` (see [`put`]).
#[track_caller]
pub fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    put(buf, off, &v.to_le_bytes());
}

/// A cursor that reads fields in sequence from a payload; `None` once it runs short.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` at its beginning.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    /// Next byte.
    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }
    /// Next string stored as a `u16` byte length and UTF-8 bytes.
    pub fn str16(&mut self) -> Option<String> {
        let n = usize::from(self.u16()?);
        String::from_utf8(self.bytes(n)?.to_vec()).ok()
    }
    /// Next `u16`.
    pub fn u16(&mut self) -> Option<u16> {
        let v = get_u16(self.buf, self.pos)?;
        self.pos += 2;
        Some(v)
    }
    /// Next `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        let v = get_u32(self.buf, self.pos)?;
        self.pos += 4;
        Some(v)
    }
    /// Next `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        let v = get_u64(self.buf, self.pos)?;
        self.pos += 8;
        Some(v)
    }
    /// Next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let v = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(v)
    }
    /// Everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        let v = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        v
    }
    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// Appends fields to a growing buffer.
#[derive(Default)]
pub struct Writer {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// Appends a byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// Appends a string as a `u16` byte length and its UTF-8 bytes. Callers bound the
    /// length first; longer strings are a broken invariant.
    pub fn str16(&mut self, v: &str) -> &mut Self {
        let n = u16::try_from(v.len()).unwrap_or_else(|_| panic!("string of {} bytes", v.len()));
        self.u16(n).bytes(v.as_bytes())
    }
    /// Appends a `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends a `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends raw bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
}
