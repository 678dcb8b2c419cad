//! The control file: the checkpoint pointer, the catalog and the commit log, replaced
//! atomically at every checkpoint. Layout in `docs/format.md` ("Control file").

use crate::catalog::codec::{get_u16, get_u32, get_u64, put, put_u16, put_u32, put_u64, Writer};
pub use crate::catalog::Catalog;
use crate::error::CorruptionKind;

/// Control file magic.
pub const CONTROL_MAGIC: [u8; 4] = *b"SGCT";
/// Control file format version.
pub const CONTROL_VERSION: u16 = 4;
/// The previous version, still read: it has no heap-length section.
pub const CONTROL_VERSION_NO_HEAPS: u16 = 3;
/// Offset of the state field.
pub const STATE_OFF: usize = 6;
/// Offset of the checkpoint LSN.
pub const CHECKPOINT_LSN_OFF: usize = STATE_OFF + 2;
/// Offset of the redo LSN.
pub const REDO_LSN_OFF: usize = CHECKPOINT_LSN_OFF + 8;
/// Offset of next_xid.
pub const NEXT_XID_OFF: usize = REDO_LSN_OFF + 8;
/// Offset of next_table.
pub const NEXT_TABLE_OFF: usize = NEXT_XID_OFF + 8;
/// Offset of the catalog length.
pub const CATALOG_LEN_OFF: usize = NEXT_TABLE_OFF + 4;
/// Offset of the commit-log length.
pub const CLOG_LEN_OFF: usize = CATALOG_LEN_OFF + 4;
/// Offset of the heap-length section's length (version 4).
pub const HEAPS_LEN_OFF: usize = CLOG_LEN_OFF + 4;
/// Offset of the checksum.
pub const CHECKSUM_OFF: usize = 60;
/// Size of the fixed header.
pub const HEADER_BYTES: usize = CHECKSUM_OFF + 4;
const _: () = assert!(HEAPS_LEN_OFF + 4 + 12 == CHECKSUM_OFF && HEADER_BYTES == 64);
/// Bytes of one heap-length entry: segment u16, table u32, blocks u32.
pub const HEAP_LEN_BYTES: usize = 10;

/// Node state recorded in the control file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Shut down cleanly: the last checkpoint is the end of the log.
    ShutDown = 1,
    /// Open (or crashed while open).
    InProduction = 2,
}

/// How many blocks a heap file held when a checkpoint began: it is never shorter than
/// that until its table is truncated or dropped or its segment retired
/// (`docs/format.md`, "Heap-length section").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapLen {
    /// Segment content id.
    pub segment: u16,
    /// Table id.
    pub table: u32,
    /// Blocks.
    pub blocks: u32,
}

/// The decoded control file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// Clean shutdown or not.
    pub state: NodeState,
    /// LSN of the last checkpoint record.
    pub checkpoint_lsn: u64,
    /// Where redo starts.
    pub redo_lsn: u64,
    /// No xid at or above this appears before `redo_lsn`.
    pub next_xid: u64,
    /// Next table id.
    pub next_table: u32,
    /// The catalog.
    pub catalog: Catalog,
    /// The commit log bytes.
    pub clog: Vec<u8>,
    /// Every heap's length at the checkpoint (empty in a version-3 file).
    pub heaps: Vec<HeapLen>,
}

impl Control {
    /// Encodes the whole file.
    pub fn encode(&self) -> Vec<u8> {
        let mut cat = Writer::default();
        self.catalog.encode(&mut cat);
        let mut out = vec![0u8; HEADER_BYTES];
        put(&mut out, 0, &CONTROL_MAGIC);
        put_u16(&mut out, 4, CONTROL_VERSION);
        put_u16(&mut out, STATE_OFF, self.state as u16);
        put_u64(&mut out, CHECKPOINT_LSN_OFF, self.checkpoint_lsn);
        put_u64(&mut out, REDO_LSN_OFF, self.redo_lsn);
        put_u64(&mut out, NEXT_XID_OFF, self.next_xid);
        put_u32(&mut out, NEXT_TABLE_OFF, self.next_table);
        put_u32(&mut out, CATALOG_LEN_OFF, cat.buf.len() as u32);
        put_u32(&mut out, CLOG_LEN_OFF, self.clog.len() as u32);
        let mut heaps = vec![0u8; 4 + HEAP_LEN_BYTES * self.heaps.len()];
        put_u32(&mut heaps, 0, self.heaps.len() as u32);
        for (i, h) in self.heaps.iter().enumerate() {
            let at = 4 + HEAP_LEN_BYTES * i;
            put_u16(&mut heaps, at, h.segment);
            put_u32(&mut heaps, at + 2, h.table);
            put_u32(&mut heaps, at + 6, h.blocks);
        }
        put_u32(&mut out, HEAPS_LEN_OFF, heaps.len() as u32);
        out.extend_from_slice(&cat.buf);
        out.extend_from_slice(&self.clog);
        out.extend_from_slice(&heaps);
        let c = checksum(&out);
        put_u32(&mut out, CHECKSUM_OFF, c);
        out
    }

    /// Decodes and checks a control file.
    pub fn decode(buf: &[u8]) -> Result<Self, CorruptionKind> {
        if buf.len() < HEADER_BYTES {
            return Err(CorruptionKind::Truncated {
                need: HEADER_BYTES,
                have: buf.len(),
            });
        }
        // Magic and lengths first, so that a foreign or cut-short file is named as such
        // rather than as a checksum mismatch.
        let version = get_u16(buf, 4);
        if buf.get(..4) != Some(&CONTROL_MAGIC[..])
            || !matches!(version, Some(CONTROL_VERSION | CONTROL_VERSION_NO_HEAPS))
        {
            return Err(CorruptionKind::BadHeader(
                "control file magic/version".into(),
            ));
        }
        let cat_len = get_u32(buf, CATALOG_LEN_OFF).unwrap_or(0) as usize;
        let clog_len = get_u32(buf, CLOG_LEN_OFF).unwrap_or(0) as usize;
        let heaps_len = match version {
            Some(CONTROL_VERSION) => get_u32(buf, HEAPS_LEN_OFF).unwrap_or(0) as usize,
            _ => 0,
        };
        let need = HEADER_BYTES + cat_len + clog_len + heaps_len;
        if buf.len() != need {
            return Err(CorruptionKind::Truncated {
                need,
                have: buf.len(),
            });
        }
        let stored = get_u32(buf, CHECKSUM_OFF).unwrap_or(0);
        let computed = checksum(buf);
        if stored != computed {
            return Err(CorruptionKind::Checksum { stored, computed });
        }
        let state = match get_u16(buf, STATE_OFF) {
            Some(1) => NodeState::ShutDown,
            Some(2) => NodeState::InProduction,
            s => return Err(CorruptionKind::Invalid(format!("control state {s:?}"))),
        };
        let catalog = buf
            .get(HEADER_BYTES..HEADER_BYTES + cat_len)
            .and_then(Catalog::decode)
            .ok_or_else(|| CorruptionKind::Invalid("catalog section does not decode".into()))?;
        Ok(Self {
            state,
            checkpoint_lsn: get_u64(buf, CHECKPOINT_LSN_OFF).unwrap_or(0),
            redo_lsn: get_u64(buf, REDO_LSN_OFF).unwrap_or(0),
            next_xid: get_u64(buf, NEXT_XID_OFF).unwrap_or(0),
            next_table: get_u32(buf, NEXT_TABLE_OFF).unwrap_or(0),
            catalog,
            clog: buf
                .get(HEADER_BYTES + cat_len..HEADER_BYTES + cat_len + clog_len)
                .unwrap_or(&[])
                .to_vec(),
            heaps: decode_heaps(buf.get(HEADER_BYTES + cat_len + clog_len..).unwrap_or(&[]))?,
        })
    }
}

/// The entries of `heaps` (a control file's) that still bind after the WAL records
/// `bodies` (those from its redo point on): a table truncated or dropped, or a segment
/// retired, since then may legitimately have shorter files.
pub fn heaps_to_check<'a>(
    heaps: &[HeapLen],
    bodies: impl Iterator<Item = &'a crate::wal::record::Body>,
) -> Vec<HeapLen> {
    use crate::wal::record::Body;
    let mut tables = std::collections::HashSet::new();
    let mut segments = std::collections::HashSet::new();
    for b in bodies {
        match b {
            Body::TruncateTable { table } | Body::DropTable { table } => {
                tables.insert(*table);
            }
            Body::RetireSegment { content } => {
                segments.insert(*content);
            }
            _ => {}
        }
    }
    heaps
        .iter()
        .filter(|h| h.blocks > 0 && !tables.contains(&h.table) && !segments.contains(&h.segment))
        .copied()
        .collect()
}

fn decode_heaps(b: &[u8]) -> Result<Vec<HeapLen>, CorruptionKind> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let bad = || CorruptionKind::Invalid("heap-length section does not decode".into());
    let n = get_u32(b, 0).ok_or_else(bad)? as usize;
    if b.len() != 4 + n.checked_mul(HEAP_LEN_BYTES).ok_or_else(bad)? {
        return Err(bad());
    }
    (0..n)
        .map(|i| {
            let at = 4 + HEAP_LEN_BYTES * i;
            Ok(HeapLen {
                segment: get_u16(b, at).ok_or_else(bad)?,
                table: get_u32(b, at + 2).ok_or_else(bad)?,
                blocks: get_u32(b, at + 6).ok_or_else(bad)?,
            })
        })
        .collect()
}

/// CRC-32 of the header without its checksum field, then the sections.
fn checksum(buf: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(buf.get(..CHECKSUM_OFF).unwrap_or(&[]));
    h.update(buf.get(HEADER_BYTES..).unwrap_or(&[]));
    h.finalize()
}
