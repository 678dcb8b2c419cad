//! WAL record framing and payloads.
//!
//! Layout in `docs/format.md` ("WAL record"). Every record carries its own LSN and a
//! CRC-32 over everything after the checksum field, so a torn, stale or garbage tail is
//! recognised as such; the log ends at the first record that fails any check.

use crate::catalog::codec::{get_u32, get_u64, put_u32, put_u64, Reader, Writer};
use crate::catalog::{SegmentConfig, TableDef};
use crate::storage::tuple::{NextVersion, NO_NEXT_BLOCK};

/// Offset of the checksum.
pub const CRC_OFF: usize = 0;
/// Offset of the total length.
pub const LEN_OFF: usize = CRC_OFF + 4;
/// Offset of the LSN.
pub const LSN_OFF: usize = LEN_OFF + 4;
/// Offset of the transaction id.
pub const XID_OFF: usize = LSN_OFF + 8;
/// Offset of the kind byte.
pub const KIND_OFF: usize = XID_OFF + 8;
/// Offset of the flags byte.
pub const FLAGS_OFF: usize = KIND_OFF + 1;
/// Offset of the reserved field.
pub const RESERVED_OFF: usize = FLAGS_OFF + 1;
/// Size of a record header.
pub const HEADER_BYTES: usize = RESERVED_OFF + 2;
const _: () = assert!(HEADER_BYTES == 28);
/// Largest record, header included.
pub const RECORD_BYTES_MAX: usize = 32 * 1024;
/// Largest LSN a record may end at (4 EiB of log): keeps LSN arithmetic far from overflow
/// whatever a corrupt file claims.
pub const LSN_MAX: u64 = 1 << 62;

/// Record kinds.
pub mod kind {
    /// Transaction committed.
    pub const COMMIT: u8 = 1;
    /// Transaction aborted.
    pub const ABORT: u8 = 2;
    /// Checkpoint completed.
    pub const CHECKPOINT: u8 = 3;
    /// Segment created.
    pub const CREATE_SEGMENT: u8 = 4;
    /// Table created.
    pub const CREATE_TABLE: u8 = 5;
    /// Tuple inserted.
    pub const HEAP_INSERT: u8 = 6;
    /// Tuple's xmax / flags set.
    pub const HEAP_SET_XMAX: u8 = 7;
    /// Full-page image.
    pub const PAGE_IMAGE: u8 = 8;
    /// Table dropped.
    pub const DROP_TABLE: u8 = 9;
    /// Table truncated.
    pub const TRUNCATE_TABLE: u8 = 10;
    /// Table definition replaced (a redistribution transition).
    pub const PUT_TABLE: u8 = 11;
    /// Segment retired.
    pub const RETIRE_SEGMENT: u8 = 12;
    /// Migration bits of some tuples of a page set in place.
    pub const HEAP_SET_BIT: u8 = 13;
}

/// Which heap page a page record changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageRef {
    /// Segment content id.
    pub segment: u16,
    /// Table id.
    pub table: u32,
    /// Block number.
    pub block: u32,
}

impl From<PageRef> for crate::storage::page::PageId {
    fn from(p: PageRef) -> Self {
        Self {
            segment: p.segment,
            table: p.table,
            block: p.block,
        }
    }
}

/// A decoded WAL record body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The record's xid committed.
    Commit,
    /// The record's xid aborted.
    Abort,
    /// A checkpoint completed; recovery may start at `redo_lsn`.
    Checkpoint {
        /// Where redo starts.
        redo_lsn: u64,
        /// Next transaction id at checkpoint time.
        next_xid: u64,
        /// Next table id at checkpoint time.
        next_table: u32,
    },
    /// A segment was added: its configuration row, and its directory with a heap and VM
    /// file for every table.
    CreateSegment {
        /// The segment's configuration.
        config: SegmentConfig,
    },
    /// A table was created (its files exist in every segment).
    CreateTable {
        /// The definition.
        def: TableDef,
    },
    /// A table was dropped: removed from the catalog, its files deleted.
    DropTable {
        /// Table id.
        table: u32,
    },
    /// A table was truncated: every heap file emptied, every VM file reset.
    TruncateTable {
        /// Table id.
        table: u32,
    },
    /// A table's definition was replaced whole: a redistribution started, was
    /// cancelled or flipped.
    PutTable {
        /// The new definition.
        def: TableDef,
    },
    /// A segment was retired: removed from the segment configuration, its files deleted.
    RetireSegment {
        /// Content id.
        content: u16,
    },
    /// The migration bit of the tuples in `slots` was set to `bit`, in place (the mover's
    /// "row stays" case: no new version).
    HeapSetBit {
        /// Page.
        page: PageRef,
        /// New bit value.
        bit: bool,
        /// Slots changed.
        slots: Vec<u16>,
    },
    /// A tuple was inserted at `slot`.
    HeapInsert {
        /// Page.
        page: PageRef,
        /// Slot.
        slot: u16,
        /// Whole tuple, header included.
        tuple: Vec<u8>,
    },
    /// A tuple's xmax, cmax and flags were set.
    HeapSetXmax {
        /// Page.
        page: PageRef,
        /// Slot.
        slot: u16,
        /// New xmax.
        xmax: u64,
        /// New cmax.
        cmax: u32,
        /// New flags.
        flags: u16,
        /// New next-version pointer.
        next: Option<NextVersion>,
    },
    /// A whole page, minus its unused hole.
    PageImage {
        /// Page.
        page: PageRef,
        /// Start of the hole.
        hole_offset: u16,
        /// Length of the hole.
        hole_len: u16,
        /// The page bytes without the hole.
        image: Vec<u8>,
    },
}

impl Body {
    /// The kind byte of this body.
    pub fn kind(&self) -> u8 {
        match self {
            Body::Commit => kind::COMMIT,
            Body::Abort => kind::ABORT,
            Body::Checkpoint { .. } => kind::CHECKPOINT,
            Body::CreateSegment { .. } => kind::CREATE_SEGMENT,
            Body::CreateTable { .. } => kind::CREATE_TABLE,
            Body::DropTable { .. } => kind::DROP_TABLE,
            Body::TruncateTable { .. } => kind::TRUNCATE_TABLE,
            Body::PutTable { .. } => kind::PUT_TABLE,
            Body::RetireSegment { .. } => kind::RETIRE_SEGMENT,
            Body::HeapSetBit { .. } => kind::HEAP_SET_BIT,
            Body::HeapInsert { .. } => kind::HEAP_INSERT,
            Body::HeapSetXmax { .. } => kind::HEAP_SET_XMAX,
            Body::PageImage { .. } => kind::PAGE_IMAGE,
        }
    }

    /// The page this record changes, if it is a page record.
    pub fn page(&self) -> Option<PageRef> {
        match self {
            Body::HeapInsert { page, .. }
            | Body::HeapSetXmax { page, .. }
            | Body::HeapSetBit { page, .. }
            | Body::PageImage { page, .. } => Some(*page),
            _ => None,
        }
    }

    fn encode_payload(&self, w: &mut Writer) {
        let page = |w: &mut Writer, p: &PageRef| {
            w.u16(p.segment).u32(p.table).u32(p.block);
        };
        match self {
            Body::Commit | Body::Abort => {}
            Body::Checkpoint {
                redo_lsn,
                next_xid,
                next_table,
            } => {
                w.u64(*redo_lsn).u64(*next_xid).u32(*next_table);
            }
            Body::CreateSegment { config } => config.encode(w),
            Body::CreateTable { def } | Body::PutTable { def } => def.encode(w),
            Body::RetireSegment { content } => {
                w.u16(*content);
            }
            Body::HeapSetBit {
                page: p,
                bit,
                slots,
            } => {
                page(w, p);
                let (first, span, bits) = slot_bitmap(slots);
                w.u8(u8::from(*bit)).u16(first).u16(span).bytes(&bits);
            }
            Body::DropTable { table } | Body::TruncateTable { table } => {
                w.u32(*table);
            }
            Body::HeapInsert {
                page: p,
                slot,
                tuple,
            } => {
                page(w, p);
                w.u16(*slot).bytes(tuple);
            }
            Body::HeapSetXmax {
                page: p,
                slot,
                xmax,
                cmax,
                flags,
                next,
            } => {
                page(w, p);
                w.u16(*slot).u64(*xmax).u32(*cmax).u16(*flags);
                match next {
                    Some(n) => w.u16(n.segment).u32(n.tid.block).u16(n.tid.slot),
                    None => w.u16(0).u32(NO_NEXT_BLOCK).u16(0),
                };
            }
            Body::PageImage {
                page: p,
                hole_offset,
                hole_len,
                image,
            } => {
                page(w, p);
                w.u16(*hole_offset).u16(*hole_len).bytes(image);
            }
        }
    }

    fn decode_payload(kind_byte: u8, payload: &[u8]) -> Option<Body> {
        let mut r = Reader::new(payload);
        let page = |r: &mut Reader<'_>| -> Option<PageRef> {
            Some(PageRef {
                segment: r.u16()?,
                table: r.u32()?,
                block: r.u32()?,
            })
        };
        let body = match kind_byte {
            kind::COMMIT => Body::Commit,
            kind::ABORT => Body::Abort,
            kind::CHECKPOINT => Body::Checkpoint {
                redo_lsn: r.u64()?,
                next_xid: r.u64()?,
                next_table: r.u32()?,
            },
            kind::CREATE_SEGMENT => Body::CreateSegment {
                config: SegmentConfig::decode(&mut r)?,
            },
            kind::CREATE_TABLE => Body::CreateTable {
                def: TableDef::decode(&mut r)?,
            },
            kind::PUT_TABLE => Body::PutTable {
                def: TableDef::decode(&mut r)?,
            },
            kind::RETIRE_SEGMENT => Body::RetireSegment { content: r.u16()? },
            kind::HEAP_SET_BIT => {
                let page = page(&mut r)?;
                let bit = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return None,
                };
                let first = r.u16()?;
                let span = r.u16()?;
                let bits = r.bytes(usize::from(span).div_ceil(8))?;
                let slots: Vec<u16> = (0..span)
                    .filter(|i| {
                        bits.get(usize::from(*i) / 8)
                            .is_some_and(|b| b & (1 << (i % 8)) != 0)
                    })
                    .map(|i| first.checked_add(i))
                    .collect::<Option<Vec<_>>>()?;
                if slots.is_empty()
                    || slots.first() != Some(&first)
                    || slots.last() != Some(&(first + span - 1))
                {
                    return None;
                }
                Body::HeapSetBit { page, bit, slots }
            }
            kind::DROP_TABLE => Body::DropTable { table: r.u32()? },
            kind::TRUNCATE_TABLE => Body::TruncateTable { table: r.u32()? },
            kind::HEAP_INSERT => {
                let p = page(&mut r)?;
                let slot = r.u16()?;
                let tuple = r.rest().to_vec();
                if tuple.len() < crate::storage::tuple::TUPLE_HEADER_BYTES {
                    return None;
                }
                Body::HeapInsert {
                    page: p,
                    slot,
                    tuple,
                }
            }
            kind::HEAP_SET_XMAX => Body::HeapSetXmax {
                page: page(&mut r)?,
                slot: r.u16()?,
                xmax: r.u64()?,
                cmax: r.u32()?,
                flags: r.u16()?,
                next: {
                    let (segment, block, slot) = (r.u16()?, r.u32()?, r.u16()?);
                    (block != NO_NEXT_BLOCK).then_some(NextVersion {
                        segment,
                        tid: crate::storage::tuple::Tid { block, slot },
                    })
                },
            },
            kind::PAGE_IMAGE => Body::PageImage {
                page: page(&mut r)?,
                hole_offset: r.u16()?,
                hole_len: r.u16()?,
                image: r.rest().to_vec(),
            },
            _ => return None,
        };
        r.is_empty().then_some(body)
    }
}

/// A `HeapSetBit`'s slots as (first slot, span, bitmap from the first slot): a page's
/// changed slots cost a bit each, not two bytes.
fn slot_bitmap(slots: &[u16]) -> (u16, u16, Vec<u8>) {
    let first = slots.iter().copied().min().unwrap_or(0);
    let span = slots.iter().copied().max().map_or(0, |m| m - first + 1);
    let mut bits = vec![0u8; usize::from(span).div_ceil(8)];
    for s in slots {
        let i = usize::from(s - first);
        if let Some(b) = bits.get_mut(i / 8) {
            *b |= 1 << (i % 8);
        }
    }
    (first, span, bits)
}

/// Bytes of a `HeapSetBit` record changing `slots`, header included.
pub fn set_bit_record_bytes(slots: &[u16]) -> u64 {
    let (_, span, _) = slot_bitmap(slots);
    // header, page (segment u16, table u32, block u32), bit, first, span, bitmap
    (HEADER_BYTES + 10 + 1 + 2 + 2 + usize::from(span).div_ceil(8)) as u64
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// LSN of the record's first byte.
    pub lsn: u64,
    /// Transaction id (0 = none).
    pub xid: u64,
    /// What the record says.
    pub body: Body,
}

/// Encodes a record at `lsn` into `out` (appending); returns its length.
pub fn encode(lsn: u64, xid: u64, body: &Body, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    let mut w = Writer {
        buf: std::mem::take(out),
    };
    w.buf.resize(start + HEADER_BYTES, 0);
    body.encode_payload(&mut w);
    *out = w.buf;
    let len = out.len() - start;
    debug_assert!(
        len <= RECORD_BYTES_MAX,
        "record of {len} bytes exceeds the maximum"
    );
    let rec = out.get_mut(start..).unwrap_or_default();
    put_u32(rec, LEN_OFF, len as u32);
    put_u64(rec, LSN_OFF, lsn);
    put_u64(rec, XID_OFF, xid);
    if let Some(k) = rec.get_mut(KIND_OFF) {
        *k = body.kind();
    }
    let c = crc32fast::hash(rec.get(LEN_OFF..).unwrap_or(&[]));
    put_u32(rec, CRC_OFF, c);
    len
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes remain than the record needs (a torn or empty tail).
    Short {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// The length field is out of range.
    BadLength(u32),
    /// The record names another position (stale or misplaced data).
    WrongLsn {
        /// LSN found.
        found: u64,
    },
    /// Checksum mismatch.
    Checksum {
        /// Stored.
        stored: u32,
        /// Computed.
        computed: u32,
    },
    /// Flags or reserved bits set, unknown kind, or a payload that does not parse.
    BadPayload(u8),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Short { need, have } => {
                write!(f, "record cut short ({have} of {need} bytes)")
            }
            DecodeError::BadLength(l) => write!(f, "record length {l} out of range"),
            DecodeError::WrongLsn { found } => write!(f, "record claims LSN {found}"),
            DecodeError::Checksum { stored, computed } => {
                write!(
                    f,
                    "record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            DecodeError::BadPayload(k) => write!(f, "record of kind {k} does not decode"),
        }
    }
}

/// Decodes the record at the start of `buf`, which must sit at `lsn`.
/// Returns the record and its length.
pub fn decode(buf: &[u8], lsn: u64) -> Result<(Record, usize), DecodeError> {
    let Some(len) = get_u32(buf, LEN_OFF) else {
        return Err(DecodeError::Short {
            need: HEADER_BYTES,
            have: buf.len(),
        });
    };
    let n = len as usize;
    if !(HEADER_BYTES..=RECORD_BYTES_MAX).contains(&n) {
        return Err(DecodeError::BadLength(len));
    }
    if lsn.checked_add(n as u64).is_none_or(|end| end > LSN_MAX) {
        return Err(DecodeError::BadLength(len));
    }
    let Some(rec) = buf.get(..n) else {
        return Err(DecodeError::Short {
            need: n,
            have: buf.len(),
        });
    };
    let stored = get_u32(rec, CRC_OFF).unwrap_or(0);
    let computed = crc32fast::hash(rec.get(LEN_OFF..).unwrap_or(&[]));
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    let found = get_u64(rec, LSN_OFF).unwrap_or(0);
    if found != lsn {
        return Err(DecodeError::WrongLsn { found });
    }
    let kind_byte = rec.get(KIND_OFF).copied().unwrap_or(0);
    let flags = rec.get(FLAGS_OFF).copied().unwrap_or(1);
    let reserved = crate::catalog::codec::get_u16(rec, RESERVED_OFF).unwrap_or(1);
    if flags != 0 || reserved != 0 {
        return Err(DecodeError::BadPayload(kind_byte));
    }
    let body = Body::decode_payload(kind_byte, rec.get(HEADER_BYTES..).unwrap_or(&[]))
        .ok_or(DecodeError::BadPayload(kind_byte))?;
    let xid = get_u64(rec, XID_OFF).unwrap_or(0);
    Ok((Record { lsn, xid, body }, n))
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
