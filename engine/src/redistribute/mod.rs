//! Online redistribution, the engine's side: the state transitions (start, cancel, flip)
//! behind the layout pin, the mover's batch, the readiness check, cleanup, retiring
//! segments and the offline baseline. The redistributor crate drives these (workers,
//! throttle, pause, progress) and checks its state machine around them.
//!
//! The protocol, and what a crash leaves at each step, is `docs/redistribution.md`.

use crate::catalog::{Layout, Redistribution, TableDef};
use crate::error::{Error, Result};
use crate::node::{image_body, set_bits_in_place, Claim, Node, Part, PruneStats, TableRt};
use crate::storage::heapwalk;
use crate::storage::tuple::{NextVersion, Tid, TupleHeader, FLAG_LOCK_ONLY, FLAG_MOVED};
use crate::txn::clog::XidStatus;
use crate::wal::record::{Body, PageRef};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a transition holds DML: each attempt waits at most `cap` for the running DML
/// statements to finish (new ones wait behind it); past the cap it lets them go, sleeps
/// `backoff` (times the attempt number) and tries again, up to `attempts` times.
#[derive(Debug, Clone, Copy)]
pub struct GateOptions {
    /// Longest an attempt holds DML while waiting for running statements.
    pub cap: Duration,
    /// Attempts before giving up with [`Error::DmlDrainTimeout`].
    pub attempts: u32,
    /// Pause after a failed attempt (multiplied by the attempt number).
    pub backoff: Duration,
}

impl Default for GateOptions {
    fn default() -> Self {
        Self {
            cap: Duration::from_millis(2),
            attempts: 200,
            backoff: Duration::from_millis(5),
        }
    }
}

/// What a transition did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransitionReport {
    /// Longest time any attempt held new DML statements on the table (µs).
    pub dml_stall_us_max: u64,
    /// Attempts made (1 when the first drain succeeded).
    pub attempts: u32,
}

/// Bounds on one mover batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Rows moved or flipped before the batch commits.
    pub rows_max: usize,
    /// Time before the batch commits.
    pub time_max: Duration,
    /// Copy every row, including those that stay on their segment (the offline
    /// baseline's full rewrite).
    pub rewrite_all: bool,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            rows_max: 2000,
            time_max: Duration::from_millis(50),
            rewrite_all: false,
        }
    }
}

/// What the mover did: rows and bytes (one batch's, or totals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MoveCounts {
    /// Rows given a new version in their new segment (with `rewrite_all`, also rows
    /// rewritten on their own segment).
    pub rows_moved: u64,
    /// Rows whose new version is on another segment than the old one.
    pub rows_relocated: u64,
    /// Rows that stay, their migration bit flipped in place.
    pub rows_flipped: u64,
    /// Rows skipped because a user transaction held them (or their insert had not
    /// committed yet).
    pub rows_skipped: u64,
    /// Bytes of the new versions written (tuple headers included).
    pub bytes_moved: u64,
    /// Bytes of the rows flipped in place (what a copy would have written).
    pub bytes_flipped: u64,
    /// WAL bytes of the in-place flips (what they did write; page images excluded).
    pub flip_wal_bytes: u64,
}

impl MoveCounts {
    /// Adds `o` to these counts.
    pub fn add(&mut self, o: &MoveCounts) {
        self.rows_moved += o.rows_moved;
        self.rows_relocated += o.rows_relocated;
        self.rows_flipped += o.rows_flipped;
        self.rows_skipped += o.rows_skipped;
        self.bytes_moved += o.bytes_moved;
        self.bytes_flipped += o.bytes_flipped;
        self.flip_wal_bytes += o.flip_wal_bytes;
    }
}

/// What one mover batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// How many of the blocks asked for were visited (a prefix); the rest were left for
    /// another batch because the batch reached its limits.
    pub blocks_visited: usize,
    /// Blocks finished: their VM bit is set.
    pub blocks_done: Vec<u32>,
    /// Blocks visited but not finished (a row locked by a user transaction, an insert
    /// not yet committed, or the batch's limits): visit them again.
    pub blocks_again: Vec<u32>,
    /// Rows and bytes.
    pub counts: MoveCounts,
}

/// What the offline baseline did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfflineReport {
    /// Totals over every batch.
    pub counts: MoveCounts,
    /// Time the table was locked against every statement (µs).
    pub locked_us: u64,
}

/// A version nobody can see as live any more, or never could: its insert aborted, or a
/// committed transaction deleted or replaced it.
fn settled_dead(node: &Node, h: &TupleHeader) -> bool {
    let clog = node.clog();
    clog.get(h.xmin) == XidStatus::Aborted
        || (h.xmax != 0
            && h.flags & FLAG_LOCK_ONLY == 0
            && clog.get(h.xmax) == XidStatus::Committed)
}

impl Node {
    fn redistributing(def: &TableDef) -> Result<&Redistribution> {
        def.redistribution.as_ref().ok_or_else(|| {
            Error::Redistribution(format!("table {:?} is not redistributing", def.name))
        })
    }

    /// Holds DML on `rt` (see [`GateOptions`]) and runs `f` while it is held.
    fn with_dml_held<T>(
        &self,
        rt: &TableRt,
        g: &GateOptions,
        drained: &'static str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<(T, TransitionReport)> {
        let mut report = TransitionReport::default();
        for attempt in 1..=g.attempts.max(1) {
            report.attempts = attempt;
            let t0 = Instant::now();
            if let Some(guard) = rt.close_gate(g.cap) {
                let r = self.failpoint(drained).and_then(|()| f());
                drop(guard);
                rt.open_gate();
                report.dml_stall_us_max =
                    report.dml_stall_us_max.max(t0.elapsed().as_micros() as u64);
                return r.map(|v| (v, report));
            }
            report.dml_stall_us_max = report.dml_stall_us_max.max(t0.elapsed().as_micros() as u64);
            std::thread::sleep(g.backoff * attempt);
        }
        Err(Error::DmlDrainTimeout {
            table: rt.def.read().name.clone(),
            cap_us: g.cap.as_micros() as u64,
            attempts: report.attempts,
        })
    }

    /// Logs `def` as the table's new definition and installs it, with the commit gate
    /// held across both so that no checkpoint falls between them. With `durable` the
    /// record is flushed before it is installed. An error after the record is appended
    /// poisons the node: the log and memory would disagree.
    fn log_put_table(
        &self,
        def: TableDef,
        durable: bool,
        written: &'static str,
        install: impl FnOnce(&TableDef),
    ) -> Result<()> {
        let _gate = self.commit_gate.read();
        let lsn = self.wal.append(0, &Body::PutTable { def: def.clone() })?;
        let r = (|| {
            if durable {
                self.wal.flush_through(lsn)?;
            }
            self.failpoint(written)
        })();
        if let Err(e) = r {
            self.poison.set(&e);
            return Err(e);
        }
        self.apply_put_table(def.clone());
        install(&def);
        Ok(())
    }

    /// Blocks each segment's heap has, indexed by content id, for segments `0..n`.
    fn heap_blocks(rt: &TableRt, n: u16) -> Vec<u32> {
        let parts = rt.parts.read();
        (0..n)
            .map(|s| parts.get(&s).map_or(0, |p| p.heap().nblocks()))
            .collect()
    }

    /// Clears every part's VM for a new epoch (the old bit's meaning changed).
    fn reset_vms(rt: &TableRt, epoch: u32) {
        for part in rt.parts.read().values() {
            let mut v = part.vm.lock();
            v.vm.bits.clear();
            v.vm.epoch = epoch;
            v.dirty = true;
        }
    }

    /// Sizes the target key's index on every target segment for the rows the mover will
    /// bring there (the table's versions now, spread evenly over the target's segments),
    /// so that the mover's inserts do not grow those tables while lookups run.
    fn presize_target_indexes(rt: &TableRt, from: &Layout, new: &TableDef) {
        let Some(r) = &new.redistribution else {
            return;
        };
        let index_on =
            |part: &Part, key: &[u16]| part.indexes.read().iter().find(|ix| ix.key == key).cloned();
        let parts = rt.parts.read();
        let versions: usize = parts
            .values()
            .filter_map(|p| index_on(p, &from.key))
            .map(|ix| ix.map.len())
            .sum();
        let per_segment = versions / usize::from(r.target.segments.max(1));
        for s in 0..r.target.segments {
            if let Some(ix) = parts.get(&s).and_then(|p| index_on(p, &r.target.key)) {
                ix.map.reserve(per_segment.saturating_sub(ix.map.len()));
            }
        }
    }

    /// Starts moving `table` to `target` (more segments, fewer, or another key): holds
    /// DML, records the blocks that exist, logs the new state durably, resets the VMs
    /// and (for a new key) builds the index on it, then lets DML go. From here on every
    /// new version goes to the target with the flipped bit. SELECT never waits.
    pub fn start_redistribution(
        &self,
        table: &str,
        target: Layout,
        gate: &GateOptions,
    ) -> Result<TransitionReport> {
        let rt = self.table_rt_by_name(table)?;
        let _ddl = rt.ddl.read();
        self.start_in(&rt, target, gate)
    }

    fn start_in(
        &self,
        rt: &TableRt,
        target: Layout,
        gate: &GateOptions,
    ) -> Result<TransitionReport> {
        self.poison.check()?;
        let def = rt.def.read().clone();
        if def.redistribution.is_some() {
            return Err(Error::Redistribution(format!(
                "table {:?} is already redistributing; flip or cancel first",
                def.name
            )));
        }
        if def.layout.is_random() || target.is_random() {
            return Err(Error::Redistribution(format!(
                "table {:?}: only hash-distributed layouts can be redistributed \
                 (randomly distributed tables are not supported yet)",
                def.name
            )));
        }
        let have = self.segments().len() as u16;
        if target.segments == 0 || target.segments > have {
            return Err(Error::InvalidArgument(format!(
                "target of {} segments: the node has {have} (add segments first)",
                target.segments
            )));
        }
        if let Some(k) = target
            .key
            .iter()
            .find(|k| usize::from(**k) >= def.columns.len())
        {
            return Err(Error::InvalidArgument(format!(
                "target key column {k} is not a column of {:?}",
                def.name
            )));
        }
        if target == def.layout {
            return Err(Error::InvalidArgument(format!(
                "table {:?} is already in that layout",
                def.name
            )));
        }
        self.with_dml_held(rt, gate, "start.dml_drained", || {
            let span = def.layout.segments.max(target.segments);
            let mut new = TableDef::clone(&def);
            new.epoch = def.epoch.wrapping_add(1);
            new.redistribution = Some(Redistribution {
                target,
                cancelling: false,
                start_blocks: Self::heap_blocks(rt, span),
            });
            self.log_put_table(new, true, "start.catalog_written", |new| {
                Self::reset_vms(rt, new.epoch);
                let keys = new.index_keys();
                for part in rt.parts.read().values() {
                    let created = part.set_index_keys(&keys);
                    self.build_indexes(new, part, &created);
                }
                Self::presize_target_indexes(rt, &def.layout, new);
            })
        })
        .map(|((), r)| r)
    }

    /// Cancels a redistribution, online: rows move back to the old layout (the mover
    /// does it, as for the start), and the flip that follows returns the table to its
    /// old layout and bit. Nothing is lost: rows already moved are moved back.
    pub fn cancel_redistribution(
        &self,
        table: &str,
        gate: &GateOptions,
    ) -> Result<TransitionReport> {
        let rt = self.table_rt_by_name(table)?;
        let _ddl = rt.ddl.read();
        self.poison.check()?;
        let def = rt.def.read().clone();
        let r = Self::redistributing(&def)?;
        if r.cancelling {
            return Err(Error::Redistribution(format!(
                "the redistribution of {:?} is already being cancelled",
                def.name
            )));
        }
        let span = def.layout.segments.max(r.target.segments);
        self.with_dml_held(&rt, gate, "cancel.dml_drained", || {
            let mut new = TableDef::clone(&def);
            new.epoch = def.epoch.wrapping_add(1);
            new.redistribution = Some(Redistribution {
                target: r.target.clone(),
                cancelling: true,
                start_blocks: Self::heap_blocks(&rt, span),
            });
            self.log_put_table(new, true, "cancel.catalog_written", |new| {
                Self::reset_vms(&rt, new.epoch);
            })
        })
        .map(|((), r)| r)
    }

    /// The blocks the mover has still to finish, as (segment, block): those that
    /// existed when the phase began and whose VM bit is not set.
    pub fn redistribution_work(&self, table: &str) -> Result<Vec<(u16, u32)>> {
        let rt = self.table_rt_by_name(table)?;
        let def = rt.def.read().clone();
        let r = Self::redistributing(&def)?;
        Ok(Self::work_of(&rt, r))
    }

    fn work_of(rt: &TableRt, r: &Redistribution) -> Vec<(u16, u32)> {
        let parts = rt.parts.read();
        let mut out = Vec::new();
        for (seg, n) in r.start_blocks.iter().enumerate() {
            let Some(part) = parts.get(&(seg as u16)) else {
                continue;
            };
            let n = (*n).min(part.heap().nblocks());
            let v = part.vm.lock();
            out.extend(
                (0..n)
                    .filter(|b| !v.vm.bits.contains(*b))
                    .map(|b| (seg as u16, b)),
            );
        }
        out
    }

    /// The flip: once every block of the phase is finished, holds DML (within the cap),
    /// logs and installs the stable state — the new layout and bit, or after a cancel
    /// the old ones — and lets DML go; the log is made durable after DML is released.
    /// The work under the held DML is one small record and a pointer swap, whatever the
    /// table's size. SELECT never waits.
    pub fn flip_redistribution(&self, table: &str, gate: &GateOptions) -> Result<TransitionReport> {
        let rt = self.table_rt_by_name(table)?;
        let _ddl = rt.ddl.read();
        self.flip_in(&rt, gate)
    }

    fn flip_in(&self, rt: &TableRt, gate: &GateOptions) -> Result<TransitionReport> {
        self.poison.check()?;
        let def = rt.def.read().clone();
        let r = Self::redistributing(&def)?;
        let left = Self::work_of(rt, r).len();
        if left > 0 {
            return Err(Error::Redistribution(format!(
                "table {:?} cannot flip yet: {left} blocks still hold rows to move",
                def.name
            )));
        }
        let mut new = TableDef::clone(&def);
        new.redistribution = None;
        if !r.cancelling {
            new.layout = r.target.clone();
            new.layout_version = def.layout_version.wrapping_add(1);
            new.migration_bit = !def.migration_bit;
        }
        // Every new version already goes where the stable state puts it (the target with
        // the new bit, or after a cancel the old layout with the old bit), so the record
        // need not be durable before DML resumes: a crash that loses it recovers to the
        // redistributing state with nothing left to move, and the flip runs again.
        let ((), report) = self.with_dml_held(rt, gate, "flip.dml_drained", || {
            self.log_put_table(new, false, "flip.catalog_written", |_| {})?;
            self.failpoint("flip.applied")
        })?;
        self.poison_on_io(self.wal.flush_all())?;
        Ok(report)
    }

    /// After a flip: reclaims the versions the mover ended (those no snapshot can see
    /// any more) and drops indexes on a key the table no longer has. Returns what
    /// vacuum reclaimed.
    pub fn cleanup_redistribution(&self, table: &str) -> Result<PruneStats> {
        let stats = self.vacuum(table)?;
        self.failpoint("cleanup.pruned")?;
        let rt = self.table_rt_by_name(table)?;
        let keys = rt.def.read().index_keys();
        for part in rt.parts.read().values() {
            part.set_index_keys(&keys);
        }
        Ok(stats)
    }

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

    fn move_in(
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

    fn block_settled(&self, part: &Part, block: u32, old_bit: bool) -> Result<bool> {
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
    fn move_writes(
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
            let mut moves: Vec<(u16, u16, Vec<u8>, crate::table::Row)> = Vec::new();
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
    fn flip_bits(&self, part: &Part, block: u32, slots: &[u16], bit: bool) -> Result<Vec<u16>> {
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

    /// The offline baseline, gpexpand's way: locks the table against every statement
    /// (SELECT included), rewrites every row into `target` — stayers too — in batches,
    /// flips, and unlocks. Crash-safe through the same states as the online path: a
    /// crash leaves the table redistributing, and the online mover can finish it.
    pub fn redistribute_offline(
        &self,
        table: &str,
        target: Layout,
        limits: &BatchLimits,
    ) -> Result<OfflineReport> {
        let rt = self.table_rt_by_name(table)?;
        let t0 = Instant::now();
        let mut ddl = rt.ddl.write();
        if rt.dropped.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::NoSuchTable(table.to_string()));
        }
        let gate = GateOptions::default();
        self.start_in(&rt, target, &gate)?;
        let limits = BatchLimits {
            rewrite_all: true,
            ..*limits
        };
        let mut total = MoveCounts::default();
        loop {
            let def = rt.def.read().clone();
            let work = Self::work_of(&rt, Self::redistributing(&def)?);
            if work.is_empty() {
                break;
            }
            let mut i = 0;
            let mut again = 0;
            while let Some((seg, _)) = work.get(i) {
                let blocks: Vec<u32> = work
                    .iter()
                    .skip(i)
                    .take_while(|(s, _)| s == seg)
                    .map(|(_, b)| *b)
                    .collect();
                let b = self.move_in(&rt, *seg, &blocks, &limits, false)?;
                total.add(&b.counts);
                again += b.blocks_again.len();
                i += b.blocks_visited.max(1);
            }
            if again > 0 {
                // Rows held by open transactions: their holders may be waiting for this
                // lock in their next statement. Unlike a transaction-scoped table lock,
                // this one is per statement, so let them through for a moment.
                drop(ddl);
                std::thread::sleep(Duration::from_millis(1));
                ddl = rt.ddl.write();
            }
        }
        self.flip_in(&rt, &gate)?;
        drop(ddl);
        Ok(OfflineReport {
            counts: total,
            locked_us: t0.elapsed().as_micros() as u64,
        })
    }

    /// Retires the node's highest segment once no table uses it: every table's layout
    /// (and target) is narrower, and every version left on it is dead to every snapshot
    /// (vacuum runs first). The segment leaves the configuration durably, a checkpoint
    /// records that, and then its files go. Returns its content id.
    pub fn retire_segment(&self) -> Result<u16> {
        self.poison.check()?;
        let content = self
            .segments()
            .into_iter()
            .max()
            .ok_or_else(|| Error::InvalidArgument("the node has no segments".into()))?;
        if content == 0 {
            return Err(Error::InvalidArgument(
                "the last segment cannot be retired".into(),
            ));
        }
        let rts: Vec<Arc<TableRt>> = {
            let mut v: Vec<Arc<TableRt>> = self.tables_rt.read().values().cloned().collect();
            v.sort_by_key(|t| t.id);
            v
        };
        for rt in &rts {
            let def = rt.def.read().clone();
            let span = def
                .layout
                .segments
                .max(def.target().map_or(0, |t| t.segments));
            if span > content {
                return Err(Error::Redistribution(format!(
                    "segment {content} is still in table {:?}'s layout; redistribute it \
                     to {content} segments or fewer first",
                    def.name
                )));
            }
        }
        let horizon = self.txn_manager().horizon();
        for rt in &rts {
            if !rt.parts.read().contains_key(&content) {
                continue;
            }
            self.prune(content, rt.id, horizon)?;
            let mut left = 0;
            self.for_each_tuple(content, rt.id, |_, _, _| left += 1)?;
            if left > 0 {
                return Err(Error::Redistribution(format!(
                    "segment {content} still holds {left} versions of table {:?} that \
                     running transactions may see; retry when they have ended",
                    rt.def.read().name
                )));
            }
        }
        {
            // Every table's statements are held off while the segment goes.
            let _ddls: Vec<_> = rts.iter().map(|rt| rt.ddl.write()).collect();
            self.log_ddl(&Body::RetireSegment { content })?;
            self.apply_retire_segment(content);
        }
        // Once a checkpoint has recorded the configuration without the segment, its
        // files can go; a crash before that replays the retirement, one after leaves a
        // directory that the next open removes.
        self.checkpoint()?;
        self.remove_segment_dir(content)?;
        Ok(content)
    }
}

impl Node {
    /// Checks DESIGN.md's redistribution invariants on `table` and returns what is wrong
    /// (empty when all hold); for tests, the demo's verification and tools:
    /// - every committed live version carrying the bit new versions get lies on its
    ///   segment in the layout new versions go to, and every other committed live
    ///   version on its segment in the other layout (so when stable, invariant 4: every
    ///   live row on `h_L(key)` with the current bit);
    /// - a block whose VM bit is set holds no live version with the old bit (invariant 3).
    ///
    /// A tuple that does not decode is an [`Error::Corruption`], as for every reader
    /// ([`crate::storage::heapwalk`]), not a problem in the list.
    pub fn check_placement(&self, table: &str) -> Result<Vec<String>> {
        let rt = self.table_rt_by_name(table)?;
        let def = rt.def.read().clone();
        let (write, write_bit) = def.write_layout();
        let other = match &def.redistribution {
            Some(r) if !r.cancelling => &def.layout,
            Some(r) => &r.target,
            None => &def.layout,
        };
        let mut problems = Vec::new();
        let parts: Vec<(u16, Arc<Part>)> = rt
            .parts
            .read()
            .iter()
            .map(|(s, p)| (*s, p.clone()))
            .collect();
        let mut row = Vec::new();
        for (seg, part) in parts {
            let heap = part.heap().clone();
            for block in 0..heap.nblocks() {
                let vm_set = {
                    let v = part.vm.lock();
                    v.vm.epoch == def.epoch && v.vm.bits.contains(block)
                };
                let cp = heap.page(block)?;
                let p = cp.page.read();
                for t in heapwalk::tuples(&heap, &p) {
                    let t = t?;
                    let (h, slot) = (&t.header, t.tid.slot);
                    let old = h.migration_bit() != write_bit;
                    if vm_set && old && !settled_dead(self, h) {
                        problems.push(format!(
                            "seg {seg} block {block} slot {slot}: VM bit set but the version \
                             carries the old bit and may be live"
                        ));
                    }
                    if !self.is_live(h) || def.columns.is_empty() {
                        continue;
                    }
                    heapwalk::decode_row(&heap, &t, def.column_types(), &mut row)?;
                    if old && def.redistribution.is_none() {
                        problems.push(format!(
                            "seg {seg} block {block} slot {slot}: live row {row:?} of a stable \
                             table carries the old bit"
                        ));
                    }
                    let layout = if old { other } else { write };
                    if layout.is_random() {
                        continue;
                    }
                    let want = layout.segment_of(def.key_hash(&layout.key, &row));
                    if want != seg {
                        problems.push(format!(
                            "seg {seg} block {block} slot {slot}: live row {row:?} with bit {} \
                             belongs on segment {want}",
                            h.migration_bit()
                        ));
                    }
                }
            }
        }
        Ok(problems)
    }
}
