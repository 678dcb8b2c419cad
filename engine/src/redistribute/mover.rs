//! The mover: one batch of blocks on one segment — each live row either gets its bit
//! flipped in place or a new version on its target segment, under its row lock, in one
//! transaction; a finished block gets its VM bit.

use super::{BatchLimits, BatchReport};

use crate::catalog::hash::{random_destination, version_identity};
use crate::catalog::{Redistribution, TableDef};
use crate::error::{Error, Result};
use crate::failpoint::Failpoint;
use crate::node::{image_body, Claim, Node, Part, TableRt};
use crate::storage::heapwalk;
use crate::storage::tuple::{NextVersion, Tid, TupleHeader, FLAG_LOCK_ONLY, FLAG_MOVED};
use crate::txn::clog::XidStatus;
use crate::wal::record::{Body, PageRef};
use std::time::Instant;

/// A version nobody can see as live any more, or never could: its insert aborted, or a
/// committed transaction deleted or replaced it.
pub(super) fn settled_dead(node: &Node, h: &TupleHeader) -> bool {
    let clog = node.clog();
    clog.get(h.xmin) == XidStatus::Aborted
        || (h.xmax != 0
            && h.flags & FLAG_LOCK_ONLY == 0
            && clog.get(h.xmax) == XidStatus::Committed)
}

/// One mover batch on one segment: what it works on, and what it has done.
struct Batch<'a> {
    def: &'a TableDef,
    r: &'a Redistribution,
    part: &'a Part,
    segment: u16,
    limits: &'a BatchLimits,
    /// The table's parts by segment, where new versions go (looked up once).
    dest_parts: std::collections::HashMap<u16, std::sync::Arc<Part>>,
    /// The batch's transaction, begun at its first moved row.
    xid: Option<u64>,
    report: BatchReport,
}

/// A block's old-bit versions, sorted by [`Node::classify_block`].
#[derive(Default)]
struct Classified {
    /// Slots of versions whose rows stay on the segment (their bit is flipped).
    stays: Vec<u16>,
    stay_bytes: u64,
    moves: Vec<Move>,
}

/// A version to move: its slot, target segment, payload and decoded row.
struct Move {
    slot: u16,
    to: u16,
    bytes: Vec<u8>,
    row: crate::catalog::types::Row,
}

impl Node {
    /// One mover batch on `segment` of `table`: visits `blocks` in order (skipping those
    /// already finished) until the limits are reached. Rows whose new segment is their
    /// own get their bit flipped in place; the others get a new version there and their
    /// old version ended, under their row lock, in one transaction. A row a user
    /// transaction holds is skipped, never waited for. After the commit, every visited
    /// block with no live row left in the old bit gets its VM bit.
    pub fn move_blocks(
        &self,
        table: &str,
        segment: u16,
        blocks: &[u32],
        limits: &BatchLimits,
    ) -> Result<BatchReport> {
        let rt = self.table_rt_by_name(table)?;
        let _ddl = rt.ddl.read();
        if rt.dropped.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::NoSuchTable(table.to_string()));
        }
        self.move_in(&rt, segment, blocks, limits, true)
    }

    pub(super) fn move_in(
        &self,
        rt: &TableRt,
        segment: u16,
        blocks: &[u32],
        limits: &BatchLimits,
        pin: bool,
    ) -> Result<BatchReport> {
        self.poison.check()?;
        // The pin is held while versions are written, so the phase (and with it the bit
        // they carry) cannot change underneath; it is released before the commit.
        let pinned = pin.then(|| rt.pin());
        let def = rt.def.read().clone();
        let r = Self::redistributing(&def)?;
        let part = rt.parts.read().get(&segment).cloned().ok_or_else(|| {
            Error::InvalidArgument(format!("table {:?} has no segment {segment}", def.name))
        })?;
        let mut batch = Batch {
            def: &def,
            r,
            part: &part,
            segment,
            limits,
            dest_parts: rt.parts.read().clone(),
            xid: None,
            report: BatchReport::default(),
        };
        let wrote = self.move_writes(&mut batch, blocks);
        let (mut xid, mut report) = (batch.xid, batch.report);
        drop(pinned);
        let r = wrote.and_then(|()| {
            if let Some(x) = xid {
                self.failpoint(Failpoint::MoveBatchWritten)?;
                xid = None;
                self.commit_xid(x)?;
                self.failpoint(Failpoint::MoveBatchCommitted)?;
            }
            Ok(())
        });
        if let Err(e) = r {
            if let Some(x) = xid {
                let _ = self.abort_xid(x);
            }
            return Err(e);
        }
        // A block is finished when no version in it that carries the old bit can be
        // live: its insert aborted, or a committed transaction ended it. Nothing can
        // add such a version (new versions carry the new bit), so the check holds once
        // made; the VM bit is set only if the phase is still the batch's.
        let old_bit = !def.write_layout().1;
        let visited: Vec<u32> = blocks.iter().take(report.blocks_visited).copied().collect();
        for block in visited {
            if report.blocks_done.contains(&block) {
                continue;
            }
            if self.block_settled(&part, block, old_bit)? {
                let mut v = part.vm.lock();
                if v.vm.epoch == def.epoch {
                    v.vm.bits.insert(block);
                    v.dirty = true;
                    drop(v);
                    report.blocks_done.push(block);
                    self.failpoint(Failpoint::MoveVmSet)?;
                    continue;
                }
            }
            report.blocks_again.push(block);
        }
        Ok(report)
    }

    pub(super) fn block_settled(&self, part: &Part, block: u32, old_bit: bool) -> Result<bool> {
        let heap = part.heap();
        if block >= heap.nblocks() {
            return Ok(true);
        }
        let cp = heap.page(block)?;
        let p = cp.page.read();
        for t in heapwalk::tuples(heap, &p) {
            let h = t?.header;
            if h.migration_bit() == old_bit && !settled_dead(self, &h) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Visits `blocks` in order until the batch's row or time limit: flips the bit of
    /// the versions that stay and moves the others ([`Node::move_row`]).
    fn move_writes(&self, b: &mut Batch<'_>, blocks: &[u32]) -> Result<()> {
        let dest_bit = b.def.write_layout().1;
        let heap = b.part.heap().clone();
        let t0 = Instant::now();
        let mut rows = 0usize;
        for &block in blocks {
            if rows >= b.limits.rows_max || t0.elapsed() >= b.limits.time_max {
                break;
            }
            b.report.blocks_visited += 1;
            let beyond =
                b.r.start_blocks
                    .get(usize::from(b.segment))
                    .is_none_or(|n| block >= *n);
            if beyond || block >= heap.nblocks() || b.part.vm_bit(block) {
                b.report.blocks_done.push(block);
                continue;
            }
            let c = self.classify_block(b, block)?;
            for m in c.moves {
                if self.move_row(
                    b,
                    Tid {
                        block,
                        slot: m.slot,
                    },
                    m,
                )? {
                    rows += 1;
                }
            }
            if !c.stays.is_empty() {
                let flipped = self.flip_bits(b.part, block, &c.stays, dest_bit)?;
                self.failpoint(Failpoint::MoveBitsFlipped)?;
                let counts = &mut b.report.counts;
                counts.rows_flipped += flipped.len() as u64;
                counts.bytes_flipped += c.stay_bytes;
                counts.flip_wal_bytes += crate::wal::record::set_bit_record_bytes(&flipped);
                rows += flipped.len();
            }
        }
        Ok(())
    }

    /// Sorts the old-bit versions of `block` that may be live, under its read lock:
    /// those whose row stays on this segment, and those that move (with their bytes
    /// and row). A version whose insert has not committed is skipped (counted); a tuple
    /// that does not decode stops the batch (the caller aborts it, and the block keeps
    /// its VM bit clear).
    fn classify_block(&self, b: &mut Batch<'_>, block: u32) -> Result<Classified> {
        let (dest, dest_bit) = b.def.write_layout();
        // Segments of the layout the old-bit versions were placed by.
        let from = match &b.def.redistribution {
            Some(r) if r.cancelling => r.target.segments,
            _ => b.def.layout.segments,
        };
        let heap = b.part.heap();
        let mut c = Classified::default();
        let mut row = Vec::new();
        let cp = heap.page(block)?;
        let p = cp.page.read();
        for t in heapwalk::tuples(heap, &p) {
            let t = t?;
            let h = &t.header;
            if h.migration_bit() == dest_bit || settled_dead(self, h) {
                continue;
            }
            heapwalk::decode_row(heap, &t, b.def.column_types(), &mut row)?;
            let slot = t.tid.slot;
            let to = if dest.is_random() {
                let identity = version_identity(b.segment, block, slot, b.def.epoch);
                random_destination(b.segment, from, dest.segments, identity)
            } else {
                dest.segment_of(b.def.key_hash(&dest.key, &row))
            };
            if to == b.segment && !b.limits.rewrite_all {
                c.stays.push(slot);
                c.stay_bytes += t.len() as u64;
            } else if self.clog().get(h.xmin) == XidStatus::Committed {
                c.moves.push(Move {
                    slot,
                    to,
                    bytes: t.payload.to_vec(),
                    row: std::mem::take(&mut row),
                });
            } else {
                b.report.counts.rows_skipped += 1;
            }
        }
        Ok(c)
    }

    /// Moves one version in the batch's transaction (begun at the first): claims the
    /// old version, writes the new one on its target segment, and ends the old one
    /// pointing at it. A version a user transaction holds is skipped, and one a
    /// committed transaction ended since it was classified is left; false for both.
    fn move_row(&self, b: &mut Batch<'_>, tid: Tid, m: Move) -> Result<bool> {
        let x = match b.xid {
            Some(x) => x,
            None => {
                let x = self.begin_xid()?;
                b.xid = Some(x);
                x
            }
        };
        match self.claim_version(x, 0, b.part, tid, FLAG_MOVED)? {
            Claim::Claimed => {}
            Claim::Busy(_) => {
                b.report.counts.rows_skipped += 1;
                return Ok(false);
            }
            Claim::Ended { .. } => return Ok(false),
        }
        self.failpoint(Failpoint::MoveOldVersionClaimed)?;
        let dpart = b.dest_parts.get(&m.to).ok_or_else(|| {
            Error::InvalidArgument(format!("table {:?} has no segment {}", b.def.name, m.to))
        })?;
        let dest_bit = b.def.write_layout().1;
        let natts = b.def.columns.len() as u16;
        let new_tid = self.insert_tuple(
            x,
            0,
            dpart,
            dest_bit,
            natts,
            &m.bytes,
            Some((b.def, &m.row)),
        )?;
        self.failpoint(Failpoint::MoveNewVersionWritten)?;
        let next = NextVersion {
            segment: m.to,
            tid: new_tid,
        };
        self.link_version(x, 0, b.part, tid, FLAG_MOVED, next)?;
        self.failpoint(Failpoint::MoveOldVersionEnded)?;
        let counts = &mut b.report.counts;
        counts.rows_moved += 1;
        counts.rows_relocated += u64::from(m.to != b.segment);
        counts.bytes_moved += (m.bytes.len() + crate::storage::tuple::TUPLE_HEADER_BYTES) as u64;
        Ok(true)
    }

    /// Sets the migration bit of the tuples in `slots` of `block` that still carry the
    /// other bit, in one logged step under the page lock; returns the slots changed.
    pub(super) fn flip_bits(
        &self,
        part: &Part,
        block: u32,
        slots: &[u16],
        bit: bool,
    ) -> Result<Vec<u16>> {
        let heap = part.heap();
        let cp = heap.page(block)?;
        let mut p = cp.page.write();
        let mut changed = Vec::with_capacity(slots.len());
        for s in slots {
            if heapwalk::tuple_at(heap, &p, *s)?.is_some_and(|t| t.header.migration_bit() != bit) {
                changed.push(*s);
            }
        }
        let slots = changed;
        if slots.is_empty() {
            return Ok(slots);
        }
        let before = p.lsn();
        if !p.set_migration_bits(bit, &slots) {
            return Err(Error::InvalidArgument(format!(
                "block {block}: a slot to flip is empty"
            )));
        }
        let page = PageRef {
            segment: heap.segment(),
            table: heap.table(),
            block,
        };
        let lsn = self.wal.append_page(0, before, |full| {
            if full {
                image_body(page, &p)
            } else {
                Body::HeapSetBit {
                    page,
                    bit,
                    slots: slots.clone(),
                }
            }
        })?;
        p.set_lsn(lsn);
        cp.mark_dirty();
        Ok(slots)
    }
}
