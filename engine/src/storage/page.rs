//! Slotted heap pages: header, slot array, tuple data, checksum.
//!
//! Layout in `docs/format.md` ("Heap page"). A page is checked ([`Page::from_disk`]) on
//! every read from disk and again ([`Page::validate`], debug builds) just before it is
//! sealed for writing, so the two sides of the disk boundary assert the same invariants.

use crate::catalog::codec::{get_u16, get_u32, get_u64, put_u16, put_u32, put_u64};
use crate::error::CorruptionKind;
use crate::storage::tuple::TUPLE_HEADER_BYTES;

/// Size of a page in bytes.
pub const PAGE_BYTES: usize = 8192;
/// Offset of the checksum.
pub const CHECKSUM_OFF: usize = 0;
/// Offset of the magic number.
pub const MAGIC_OFF: usize = CHECKSUM_OFF + 4;
/// Offset of the format version.
pub const VERSION_OFF: usize = MAGIC_OFF + 2;
/// Offset of the page flags.
pub const FLAGS_OFF: usize = VERSION_OFF + 1;
/// Offset of the page LSN.
pub const LSN_OFF: usize = FLAGS_OFF + 1;
/// Offset of the block number.
pub const BLOCK_OFF: usize = LSN_OFF + 8;
/// Offset of the table id.
pub const TABLE_OFF: usize = BLOCK_OFF + 4;
/// Offset of the segment id.
pub const SEGMENT_OFF: usize = TABLE_OFF + 4;
/// Offset of the slot count.
pub const SLOT_COUNT_OFF: usize = SEGMENT_OFF + 2;
/// Offset of `upper`.
pub const UPPER_OFF: usize = SLOT_COUNT_OFF + 2;
/// Offset of the reserved field.
pub const RESERVED_OFF: usize = UPPER_OFF + 2;
/// Size of the page header; the slot array starts here.
pub const HEADER_BYTES: usize = RESERVED_OFF + 2;
/// Size of one slot.
pub const SLOT_BYTES: usize = 4;
const _: () = assert!(HEADER_BYTES == 32);

/// Page magic ("SG").
pub const PAGE_MAGIC: u16 = u16::from_le_bytes(*b"SG");
/// Page format version.
pub const PAGE_VERSION: u8 = 1;
/// Largest tuple (header included) a page can hold.
pub const TUPLE_BYTES_MAX: usize = PAGE_BYTES - HEADER_BYTES - SLOT_BYTES;

/// Identity of a page: which segment, table and block it must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageId {
    /// Segment content id.
    pub segment: u16,
    /// Table id.
    pub table: u32,
    /// Block number.
    pub block: u32,
}

/// One 8 KiB page in memory.
#[derive(Clone)]
pub struct Page {
    buf: Box<[u8; PAGE_BYTES]>,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("id", &self.id())
            .field("lsn", &self.lsn())
            .field("slots", &self.slot_count())
            .field("upper", &self.upper())
            .finish()
    }
}

fn crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

impl Page {
    /// A new empty page.
    pub fn new(id: PageId) -> Self {
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        put_u16(&mut buf[..], MAGIC_OFF, PAGE_MAGIC);
        crate::catalog::codec::put(&mut buf[..], VERSION_OFF, &[PAGE_VERSION]);
        put_u32(&mut buf[..], BLOCK_OFF, id.block);
        put_u32(&mut buf[..], TABLE_OFF, id.table);
        put_u16(&mut buf[..], SEGMENT_OFF, id.segment);
        put_u16(&mut buf[..], UPPER_OFF, PAGE_BYTES as u16);
        Self { buf }
    }

    /// Decodes a page read from disk and checks it is the page `expect`.
    pub fn from_disk(bytes: &[u8], expect: PageId) -> Result<Self, CorruptionKind> {
        if bytes.len() != PAGE_BYTES {
            return Err(CorruptionKind::Truncated {
                need: PAGE_BYTES,
                have: bytes.len(),
            });
        }
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        buf.copy_from_slice(bytes);
        Self::from_disk_buf(buf, expect)
    }

    /// Like [`Page::from_disk`], taking ownership of the buffer the page was read into
    /// (the read path uses this to avoid a second copy).
    pub fn from_disk_buf(
        buf: Box<[u8; PAGE_BYTES]>,
        expect: PageId,
    ) -> Result<Self, CorruptionKind> {
        let bytes = &buf[..];
        let stored = get_u32(bytes, CHECKSUM_OFF).unwrap_or(0);
        let computed = crc(bytes.get(MAGIC_OFF..).unwrap_or(&[]));
        if stored != computed {
            // Only now pay for telling a never-written page from a damaged one.
            if bytes.iter().all(|b| *b == 0) {
                return Err(CorruptionKind::ZeroPage);
            }
            return Err(CorruptionKind::Checksum { stored, computed });
        }
        let page = Self { buf };
        page.validate()?;
        if page.id() != expect {
            return Err(CorruptionKind::Invalid(format!(
                "page claims to be {:?}, expected {:?}",
                page.id(),
                expect
            )));
        }
        Ok(page)
    }

    /// Checks every structural invariant of the page (not the checksum).
    pub fn validate(&self) -> Result<(), CorruptionKind> {
        let b = &self.buf[..];
        if get_u16(b, MAGIC_OFF) != Some(PAGE_MAGIC) || b.get(VERSION_OFF) != Some(&PAGE_VERSION) {
            return Err(CorruptionKind::BadHeader("heap page magic/version".into()));
        }
        if b.get(FLAGS_OFF) != Some(&0) || get_u16(b, RESERVED_OFF) != Some(0) {
            return Err(CorruptionKind::Invalid(
                "reserved page header bits set".into(),
            ));
        }
        let upper = self.upper();
        let lower = self.lower();
        if lower > upper || upper > PAGE_BYTES {
            return Err(CorruptionKind::Invalid(format!(
                "slot array end {lower} > upper {upper}"
            )));
        }
        let mut used: Vec<(usize, usize, u16)> = Vec::with_capacity(usize::from(self.slot_count()));
        for slot in 0..self.slot_count() {
            let (off, len) = self.slot(slot);
            if off == 0 {
                continue;
            }
            if off < upper || len < TUPLE_HEADER_BYTES || off + len > PAGE_BYTES {
                return Err(CorruptionKind::Invalid(format!(
                    "slot {slot} at {off}+{len} outside tuple area [{upper}, {PAGE_BYTES})"
                )));
            }
            used.push((off, len, slot));
        }
        // Tuples must not overlap (a page that passes this can always be compacted).
        used.sort_unstable();
        for pair in used.windows(2) {
            if let [(a_off, a_len, a), (b_off, _, b)] = pair {
                if a_off + a_len > *b_off {
                    return Err(CorruptionKind::Invalid(format!(
                        "tuples of slots {a} and {b} overlap"
                    )));
                }
            }
        }
        Ok(())
    }

    /// A copy of the page with its checksum set, ready to write.
    pub fn seal(&self) -> Box<[u8; PAGE_BYTES]> {
        debug_assert_eq!(self.validate(), Ok(()), "sealing an invalid page");
        let mut out = self.buf.clone();
        let c = crc(out.get(MAGIC_OFF..).unwrap_or(&[]));
        put_u32(&mut out[..], CHECKSUM_OFF, c);
        out
    }

    /// Which page this is.
    pub fn id(&self) -> PageId {
        let b = &self.buf[..];
        PageId {
            segment: get_u16(b, SEGMENT_OFF).unwrap_or(0),
            table: get_u32(b, TABLE_OFF).unwrap_or(0),
            block: get_u32(b, BLOCK_OFF).unwrap_or(0),
        }
    }

    /// LSN of the last WAL record applied.
    pub fn lsn(&self) -> u64 {
        get_u64(&self.buf[..], LSN_OFF).unwrap_or(0)
    }

    /// Sets the page LSN.
    pub fn set_lsn(&mut self, lsn: u64) {
        put_u64(&mut self.buf[..], LSN_OFF, lsn);
    }

    /// Number of slots (used or not).
    pub fn slot_count(&self) -> u16 {
        get_u16(&self.buf[..], SLOT_COUNT_OFF).unwrap_or(0)
    }

    fn upper(&self) -> usize {
        usize::from(get_u16(&self.buf[..], UPPER_OFF).unwrap_or(0))
    }

    fn lower(&self) -> usize {
        HEADER_BYTES + SLOT_BYTES * usize::from(self.slot_count())
    }

    fn slot(&self, slot: u16) -> (usize, usize) {
        let at = HEADER_BYTES + SLOT_BYTES * usize::from(slot);
        let b = &self.buf[..];
        (
            usize::from(get_u16(b, at).unwrap_or(0)),
            usize::from(get_u16(b, at + 2).unwrap_or(0)),
        )
    }

    fn set_slot(&mut self, slot: u16, off: usize, len: usize) {
        let at = HEADER_BYTES + SLOT_BYTES * usize::from(slot);
        put_u16(&mut self.buf[..], at, off as u16);
        put_u16(&mut self.buf[..], at + 2, len as u16);
    }

    fn first_unused_slot(&self) -> Option<u16> {
        (0..self.slot_count()).find(|s| self.slot(*s).0 == 0)
    }

    /// Bytes an insert of a `len`-byte tuple would leave, or `None` if it does not fit.
    pub fn fits(&self, len: usize) -> bool {
        let slot_cost = if self.first_unused_slot().is_some() {
            0
        } else {
            SLOT_BYTES
        };
        self.upper() >= self.lower() + slot_cost + len
    }

    /// Free bytes for a new tuple (counting the cost of a new slot).
    pub fn free_space(&self) -> usize {
        (self.upper() - self.lower()).saturating_sub(SLOT_BYTES)
    }

    /// Inserts a tuple into the first unused slot or a new one; `None` if it does not fit.
    pub fn insert(&mut self, tuple: &[u8]) -> Option<u16> {
        if !self.fits(tuple.len()) {
            return None;
        }
        let slot = self.first_unused_slot().unwrap_or(self.slot_count());
        self.insert_at(slot, tuple).then_some(slot)
    }

    /// Inserts a tuple at a given slot (redo); false if the slot is taken or it does not fit.
    pub fn insert_at(&mut self, slot: u16, tuple: &[u8]) -> bool {
        let count = self.slot_count();
        if slot > count || (slot < count && self.slot(slot).0 != 0) {
            return false;
        }
        let new_lower = if slot == count {
            self.lower() + SLOT_BYTES
        } else {
            self.lower()
        };
        let upper = self.upper();
        if tuple.is_empty() || upper < new_lower + tuple.len() {
            return false;
        }
        let off = upper - tuple.len();
        crate::catalog::codec::put(&mut self.buf[..], off, tuple);
        put_u16(&mut self.buf[..], UPPER_OFF, off as u16);
        if slot == count {
            put_u16(&mut self.buf[..], SLOT_COUNT_OFF, count + 1);
        }
        self.set_slot(slot, off, tuple.len());
        true
    }

    /// The tuple in `slot` (header + payload), or `None` if the slot is unused or absent.
    pub fn tuple(&self, slot: u16) -> Option<&[u8]> {
        if slot >= self.slot_count() {
            return None;
        }
        let (off, len) = self.slot(slot);
        if off == 0 {
            return None;
        }
        self.buf.get(off..off + len)
    }

    /// The tuple in `slot`, mutable (to set xmax or flags in place).
    pub fn tuple_mut(&mut self, slot: u16) -> Option<&mut [u8]> {
        if slot >= self.slot_count() {
            return None;
        }
        let (off, len) = self.slot(slot);
        if off == 0 {
            return None;
        }
        self.buf.get_mut(off..off + len)
    }

    /// Removes the tuples in `slots` and compacts the page; returns bytes freed.
    pub fn prune(&mut self, slots: &[u16]) -> usize {
        let before = self.upper();
        for s in slots {
            if *s < self.slot_count() {
                self.set_slot(*s, 0, 0);
            }
        }
        // Trailing unused slots can be dropped from the array.
        let mut count = self.slot_count();
        while count > 0 && self.slot(count - 1).0 == 0 {
            count -= 1;
        }
        put_u16(&mut self.buf[..], SLOT_COUNT_OFF, count);
        // Re-pack the remaining tuples from the end of the page.
        let mut live: Vec<(u16, Vec<u8>)> = (0..count)
            .filter_map(|s| self.tuple(s).map(|t| (s, t.to_vec())))
            .collect();
        live.sort_by_key(|(s, _)| *s);
        let mut upper = PAGE_BYTES;
        for (s, t) in &live {
            upper -= t.len();
            crate::catalog::codec::put(&mut self.buf[..], upper, t);
            self.set_slot(*s, upper, t.len());
        }
        let lower = self.lower();
        if let Some(hole) = self.buf.get_mut(lower..upper) {
            hole.fill(0);
        }
        put_u16(&mut self.buf[..], UPPER_OFF, upper as u16);
        upper.saturating_sub(before)
    }

    /// The page without its unused hole, for a full-page image:
    /// `(hole_offset, hole_len, bytes)`.
    pub fn image(&self) -> (u16, u16, Vec<u8>) {
        let lower = self.lower();
        let upper = self.upper();
        let mut v = Vec::with_capacity(PAGE_BYTES - (upper - lower));
        v.extend_from_slice(self.buf.get(..lower).unwrap_or(&[]));
        v.extend_from_slice(self.buf.get(upper..).unwrap_or(&[]));
        (lower as u16, (upper - lower) as u16, v)
    }

    /// Rebuilds a page from a full-page image and checks it is the page `expect`.
    pub fn from_image(
        hole_off: u16,
        hole_len: u16,
        bytes: &[u8],
        expect: PageId,
    ) -> Result<Self, CorruptionKind> {
        let (ho, hl) = (usize::from(hole_off), usize::from(hole_len));
        if ho + hl > PAGE_BYTES || bytes.len() + hl != PAGE_BYTES {
            return Err(CorruptionKind::Invalid(
                "page image hole out of range".into(),
            ));
        }
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        let (head, tail) = bytes.split_at(ho.min(bytes.len()));
        crate::catalog::codec::put(&mut buf[..], 0, head);
        crate::catalog::codec::put(&mut buf[..], ho + hl, tail);
        let page = Self { buf };
        page.validate()?;
        if page.id() != expect {
            return Err(CorruptionKind::Invalid(
                "page image is of another page".into(),
            ));
        }
        Ok(page)
    }

    /// Raw bytes (for tests and golden-bytes checks).
    pub fn as_bytes(&self) -> &[u8; PAGE_BYTES] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const ID: PageId = PageId {
        segment: 1,
        table: 2,
        block: 3,
    };

    #[test]
    fn insert_read_prune_reuse() {
        let mut p = Page::new(ID);
        let t = vec![9u8; 100];
        let mut n = 0;
        while p.insert(&t).is_some() {
            n += 1;
        }
        assert_eq!(n, (PAGE_BYTES - HEADER_BYTES) / (100 + SLOT_BYTES));
        assert!(p.insert(&t).is_none());
        let freed = p.prune(&[0, 5]);
        assert_eq!(freed, 200);
        assert_eq!(p.insert(&t), Some(0));
        assert_eq!(p.insert(&t), Some(5));
        assert_eq!(p.tuple(7), Some(&t[..]));
        p.validate().unwrap();
    }

    #[test]
    fn seal_and_reread_roundtrip_and_bitflip_detected() {
        let mut p = Page::new(ID);
        p.insert(&[1u8; 40]).unwrap();
        p.set_lsn(77);
        let mut disk = p.seal();
        let back = Page::from_disk(&disk[..], ID).unwrap();
        assert_eq!(back.as_bytes()[4..], p.as_bytes()[4..]);
        disk[5000] ^= 0x10;
        assert!(matches!(
            Page::from_disk(&disk[..], ID),
            Err(CorruptionKind::Checksum { .. })
        ));
    }

    #[test]
    fn misplaced_page_rejected() {
        let p = Page::new(ID);
        let disk = p.seal();
        let other = PageId { block: 4, ..ID };
        assert!(matches!(
            Page::from_disk(&disk[..], other),
            Err(CorruptionKind::Invalid(_))
        ));
    }

    /// Regression (found by the page fuzzer): slots whose tuples overlap passed
    /// validation, and pruning such a page underflowed.
    #[test]
    fn overlapping_tuples_are_rejected() {
        let mut p = Page::new(ID);
        p.insert(&[1u8; 40]).unwrap();
        p.insert(&[2u8; 40]).unwrap();
        let (off0, _) = p.slot(0);
        p.set_slot(1, off0 - 20, 40); // slot 1 now overlaps slot 0
        let disk = p.clone();
        assert!(
            matches!(disk.validate(), Err(CorruptionKind::Invalid(m)) if m.contains("overlap"))
        );
    }

    #[test]
    fn image_roundtrip() {
        let mut p = Page::new(ID);
        p.insert(&[3u8; 50]).unwrap();
        p.insert(&[4u8; 60]).unwrap();
        let (ho, hl, img) = p.image();
        assert_eq!(img.len() + usize::from(hl), PAGE_BYTES);
        let q = Page::from_image(ho, hl, &img, ID).unwrap();
        assert_eq!(q.as_bytes()[..], p.as_bytes()[..]);
    }
}
