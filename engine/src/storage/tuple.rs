//! The tuple header: MVCC fields, the update chain, flags and the migration bit.
//!
//! Layout in `docs/format.md` ("Tuple"). Offsets are chained constants; the size is
//! asserted at compile time and pinned by a golden-bytes test.

use crate::catalog::codec::{get_u16, get_u32, get_u64, put_u16, put_u32, put_u64};
use crate::storage::page::Page;

/// Offset of `xmin`.
pub const XMIN_OFF: usize = 0;
/// Offset of `xmax`.
pub const XMAX_OFF: usize = XMIN_OFF + 8;
/// Offset of `cmin`.
pub const CMIN_OFF: usize = XMAX_OFF + 8;
/// Offset of `cmax`.
pub const CMAX_OFF: usize = CMIN_OFF + 4;
/// Offset of `next_block`.
pub const NEXT_BLOCK_OFF: usize = CMAX_OFF + 4;
/// Offset of `next_slot`.
pub const NEXT_SLOT_OFF: usize = NEXT_BLOCK_OFF + 4;
/// Offset of `next_segment`.
pub const NEXT_SEGMENT_OFF: usize = NEXT_SLOT_OFF + 2;
/// Offset of `flags`.
pub const FLAGS_OFF: usize = NEXT_SEGMENT_OFF + 2;
/// Offset of `natts`.
pub const NATTS_OFF: usize = FLAGS_OFF + 2;
/// Size of the tuple header.
pub const TUPLE_HEADER_BYTES: usize = NATTS_OFF + 2;
const _: () = assert!(TUPLE_HEADER_BYTES == 36);

/// `next_block` value meaning "no newer version".
pub const NO_NEXT_BLOCK: u32 = u32::MAX;

/// Flag bit: the migration bit (its meaning is kept in the catalog).
pub const FLAG_MIGRATION: u16 = 1 << 0;
/// Flag bit: `xmax` replaced this version; `next_*` locates the newer one.
pub const FLAG_UPDATED: u16 = 1 << 1;
/// Flag bit: `xmax` only row-locks this version.
pub const FLAG_LOCK_ONLY: u16 = 1 << 2;
/// Flag bit: `xmax` is a mover that relocated the row to another segment.
pub const FLAG_MOVED: u16 = 1 << 3;
/// Every flag bit defined in format version 1.
pub const FLAGS_KNOWN: u16 = FLAG_MIGRATION | FLAG_UPDATED | FLAG_LOCK_ONLY | FLAG_MOVED;

/// A tuple identifier within one segment's heap of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid {
    /// Block number.
    pub block: u32,
    /// Slot within the block.
    pub slot: u16,
}

/// Location of a newer version of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextVersion {
    /// Segment holding it.
    pub segment: u16,
    /// Its tuple id there.
    pub tid: Tid,
}

/// A decoded tuple header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TupleHeader {
    /// Inserting transaction.
    pub xmin: u64,
    /// Deleting, replacing or locking transaction; 0 = none.
    pub xmax: u64,
    /// Command id of the insert within `xmin`.
    pub cmin: u32,
    /// Command id of the delete within `xmax`.
    pub cmax: u32,
    /// Newer version, when `FLAG_UPDATED` or `FLAG_MOVED` is set.
    pub next: Option<NextVersion>,
    /// Flag bits.
    pub flags: u16,
    /// Number of attributes in the payload (0 = opaque payload).
    pub natts: u16,
}

impl TupleHeader {
    /// A header for a fresh insert by `xmin` at command `cmin`.
    pub fn new(xmin: u64, cmin: u32, migration_bit: bool) -> Self {
        Self {
            xmin,
            xmax: 0,
            cmin,
            cmax: 0,
            next: None,
            flags: if migration_bit { FLAG_MIGRATION } else { 0 },
            natts: 0,
        }
    }

    /// The migration bit.
    pub fn migration_bit(&self) -> bool {
        self.flags & FLAG_MIGRATION != 0
    }

    /// Encodes into the first [`TUPLE_HEADER_BYTES`] of `out`.
    pub fn encode(&self, out: &mut [u8]) {
        debug_assert!(out.len() >= TUPLE_HEADER_BYTES);
        debug_assert_eq!(self.flags & !FLAGS_KNOWN, 0, "unknown tuple flags");
        put_u64(out, XMIN_OFF, self.xmin);
        put_u64(out, XMAX_OFF, self.xmax);
        put_u32(out, CMIN_OFF, self.cmin);
        put_u32(out, CMAX_OFF, self.cmax);
        let (seg, block, slot) = match self.next {
            Some(n) => (n.segment, n.tid.block, n.tid.slot),
            None => (0, NO_NEXT_BLOCK, 0),
        };
        put_u32(out, NEXT_BLOCK_OFF, block);
        put_u16(out, NEXT_SLOT_OFF, slot);
        put_u16(out, NEXT_SEGMENT_OFF, seg);
        put_u16(out, FLAGS_OFF, self.flags);
        put_u16(out, NATTS_OFF, self.natts);
    }

    /// Decodes a header; `None` if `buf` is shorter than a header or has unknown flags.
    pub fn decode(buf: &[u8]) -> Option<Self> {
        let flags = get_u16(buf, FLAGS_OFF)?;
        if flags & !FLAGS_KNOWN != 0 {
            return None;
        }
        let block = get_u32(buf, NEXT_BLOCK_OFF)?;
        let next = if block == NO_NEXT_BLOCK {
            None
        } else {
            Some(NextVersion {
                segment: get_u16(buf, NEXT_SEGMENT_OFF)?,
                tid: Tid {
                    block,
                    slot: get_u16(buf, NEXT_SLOT_OFF)?,
                },
            })
        };
        Some(Self {
            xmin: get_u64(buf, XMIN_OFF)?,
            xmax: get_u64(buf, XMAX_OFF)?,
            cmin: get_u32(buf, CMIN_OFF)?,
            cmax: get_u32(buf, CMAX_OFF)?,
            next,
            flags,
            natts: get_u16(buf, NATTS_OFF)?,
        })
    }
}

/// Builds a whole tuple (header + payload).
pub fn build_tuple(header: &TupleHeader, payload: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; TUPLE_HEADER_BYTES + payload.len()];
    header.encode(&mut t);
    crate::catalog::codec::put(&mut t, TUPLE_HEADER_BYTES, payload);
    t
}

/// The payload of a whole tuple.
pub fn payload(tuple: &[u8]) -> &[u8] {
    tuple.get(TUPLE_HEADER_BYTES..).unwrap_or(&[])
}

impl Page {
    /// Sets the migration bit of the tuples in `slots` to `bit`, in place; false if a
    /// slot is empty (nothing after it is changed).
    pub(crate) fn set_migration_bits(&mut self, bit: bool, slots: &[u16]) -> bool {
        for slot in slots {
            let Some(t) = self.tuple_mut(*slot) else {
                return false;
            };
            let Some(flags) = get_u16(t, FLAGS_OFF) else {
                return false;
            };
            let flags = if bit {
                flags | FLAG_MIGRATION
            } else {
                flags & !FLAG_MIGRATION
            };
            put_u16(t, FLAGS_OFF, flags);
        }
        true
    }

    /// Sets xmax, cmax, flags and the next-version pointer of the tuple in `slot`, in
    /// place; false if there is none.
    pub(crate) fn set_tuple_xmax(
        &mut self,
        slot: u16,
        xmax: u64,
        cmax: u32,
        flags: u16,
        next: Option<NextVersion>,
    ) -> bool {
        let Some(t) = self.tuple_mut(slot) else {
            return false;
        };
        if t.len() < TUPLE_HEADER_BYTES {
            return false;
        }
        put_u64(t, XMAX_OFF, xmax);
        put_u32(t, CMAX_OFF, cmax);
        put_u16(t, FLAGS_OFF, flags);
        let (seg, block, nslot) = match next {
            Some(n) => (n.segment, n.tid.block, n.tid.slot),
            None => (0, NO_NEXT_BLOCK, 0),
        };
        put_u32(t, NEXT_BLOCK_OFF, block);
        put_u16(t, NEXT_SLOT_OFF, nslot);
        put_u16(t, NEXT_SEGMENT_OFF, seg);
        true
    }
}

