//! The mover: one batch of blocks on one segment — each live row either gets its bit
//! flipped in place or a new version on its target segment, under its row lock, in one
//! transaction; a finished block gets its VM bit.

use super::{BatchLimits, BatchReport};

use crate::catalog::{Redistribution, TableDef};
use crate::error::{Error, Result};
use crate::node::{image_body, set_bits_in_place, Claim, Node, Part, TableRt};
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
        let mut report = BatchReport::default();
        let mut xid = None;
        // The pin is held while versions are written, so the phase (and with it the bit
        // they carry) cannot change underneath; it is released before the commit.
        let pinned = pin.then(|| rt.pin());
        let def = rt.def.read().clone();
        let r = Self::redistributing(&def)?;
        let part = rt.parts.read().get(&segment).cloned().ok_or_else(|| {
            Error::InvalidArgument(format!("table {:?} has no segment {segment}", def.name))
        })?;
        let wrote = self.move_writes(
            rt,
            &def,
            r,
            &part,
            segment,
            blocks,
            limits,
            &mut xid,
            &mut report,
        );
        drop(pinned);
        let r = wrote.and_then(|()| {
            if let Some(x) = xid {
                self.failpoint("move.batch_written")?;
                xid = None;
                self.commit_xid(x)?;
                self.failpoint("move.batch_committed")?;
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
                    self.failpoint("move.vm_set")?;
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

    #[expect(
        clippy::too_many_arguments,
        reason = "one batch's context, passed down"
    )]
    pub(super) fn move_writes(
        &self,
        rt: &TableRt,
        def: &TableDef,
        r: &Redistribution,
        part: &Part,
        segment: u16,
        blocks: &[u32],
        limits: &BatchLimits,
        xid: &mut Option<u64>,
        report: &mut BatchReport,
    ) -> Result<()> {
        let (dest, dest_bit) = def.write_layout();
        let old_bit = !dest_bit;
        let natts = def.columns.len() as u16;
        let heap = part.heap().clone();
        // The parts new versions go to, looked up once per batch.
        let dest_parts = rt.parts.read().clone();
        let t0 = Instant::now();
        let mut rows = 0usize;
        let mut row = Vec::new();
        for &block in blocks {
            if rows >= limits.rows_max || t0.elapsed() >= limits.time_max {
                break;
            }
            report.blocks_visited += 1;
            let beyond = r
                .start_blocks
                .get(usize::from(segment))
                .is_none_or(|n| block >= *n);
            if beyond || block >= heap.nblocks() || part.vm_bit(block) {
                report.blocks_done.push(block);
                continue;
            }
            // Classify the block's old-bit versions under its read lock.
            let mut stays: Vec<u16> = Vec::new();
            let mut stay_bytes = 0u64;
            let mut moves: Vec<(u16, u16, Vec<u8>, crate::catalog::types::Row)> = Vec::new();
            {
                let cp = heap.page(block)?;
                let p = cp.page.read();
                // A tuple that does not decode stops the batch (the caller aborts it, and
                // the block keeps its VM bit clear).
                for t in heapwalk::tuples(&heap, &p) {
                    let t = t?;
                    let h = &t.header;
                    if h.migration_bit() != old_bit || settled_dead(self, h) {
                        continue;
                    }
                    heapwalk::decode_row(&heap, &t, def.column_types(), &mut row)?;
                    let to = dest.segment_of(def.key_hash(&dest.key, &row));
                    let slot = t.tid.slot;
                    if to == segment && !limits.rewrite_all {
                        stays.push(slot);
                        stay_bytes += t.len() as u64;
                    } else if self.clog().get(h.xmin) == XidStatus::Committed {
                        moves.push((slot, to, t.payload.to_vec(), std::mem::take(&mut row)));
                    } else {
                        report.counts.rows_skipped += 1; // its insert has not committed yet
                    }
                }
            }
            for (slot, to, bytes, row) in moves {
                let tid = Tid { block, slot };
                let x = match *xid {
                    Some(x) => x,
                    None => {
                        let x = self.begin_xid()?;
                        *xid = Some(x);
                        x
                    }
                };
                match self.claim_version(x, 0, part, tid, FLAG_MOVED, None)? {
                    Claim::Claimed => {}
                    Claim::Busy(_) => {
                        report.counts.rows_skipped += 1;
                        continue;
                    }
                    Claim::Ended { .. } => continue,
                }
                self.failpoint("move.old_version_claimed")?;
                let dpart = dest_parts.get(&to).ok_or_else(|| {
                    Error::InvalidArgument(format!("table {:?} has no segment {to}", def.name))
                })?;
                let new_tid =
                    self.insert_tuple(x, 0, dpart, dest_bit, natts, &bytes, Some((def, &row)))?;
                self.failpoint("move.new_version_written")?;
                self.claim_version(
                    x,
                    0,
                    part,
                    tid,
                    FLAG_MOVED,
                    Some(NextVersion {
                        segment: to,
                        tid: new_tid,
                    }),
                )?;
                self.failpoint("move.old_version_ended")?;
                report.counts.rows_moved += 1;
                report.counts.rows_relocated += u64::from(to != segment);
                report.counts.bytes_moved +=
                    (bytes.len() + crate::storage::tuple::TUPLE_HEADER_BYTES) as u64;
                rows += 1;
            }
            if !stays.is_empty() {
                let flipped = self.flip_bits(part, block, &stays, dest_bit)?;
                self.failpoint("move.bits_flipped")?;
                report.counts.rows_flipped += flipped.len() as u64;
                report.counts.bytes_flipped += stay_bytes;
                report.counts.flip_wal_bytes += crate::wal::record::set_bit_record_bytes(&flipped);
                rows += flipped.len();
            }
        }
        Ok(())
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
        if !set_bits_in_place(&mut p, bit, &slots) {
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
