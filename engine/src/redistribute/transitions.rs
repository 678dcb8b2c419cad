//! A redistribution's transitions, each under the DML gate: start (the target layout
//! logged, VMs reset, target indexes built and sized), cancel, flip, and the cleanup
//! after a flip; and the work list the mover has left.

use super::{GateOptions, PhaseProgress, TransitionReport};

use crate::catalog::{Layout, Redistribution, TableDef};
use crate::error::{Error, Result};
use crate::failpoint::Failpoint;
use crate::node::{Node, Part, PruneStats, TableRt};

impl Node {
    /// Sizes the target key's index on every target segment for the rows the mover will
    /// bring there (the table's versions now, spread evenly over the target's segments),
    /// so that the mover's inserts do not grow those tables while lookups run.
    pub(super) fn presize_target_indexes(rt: &TableRt, from: &Layout, new: &TableDef) {
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

    pub(super) fn start_in(
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
        if def.layout.is_random() != target.is_random() {
            return Err(Error::Redistribution(format!(
                "table {:?}: a change between hash and random distribution is not \
                 supported online (a randomly distributed table can change its \
                 segment count only)",
                def.name
            )));
        }
        if let Some(u) = def
            .unique
            .iter()
            .find(|u| !target.key.iter().all(|k| u.columns.contains(k)))
        {
            return Err(Error::InvalidTableDefinition(format!(
                "table {:?}: the new distribution key must be contained in unique \
                 constraint {:?}'s columns",
                def.name, u.name
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
        self.with_dml_held(rt, gate, Failpoint::StartDmlDrained, || {
            let span = def.layout.segments.max(target.segments);
            let mut new = TableDef::clone(&def);
            new.epoch = def.epoch.wrapping_add(1);
            new.redistribution = Some(Redistribution {
                target,
                cancelling: false,
                start_blocks: Self::heap_blocks(rt, span),
            });
            self.log_put_table(new, true, Failpoint::StartCatalogWritten, |new| {
                Self::reset_vms(rt, new.epoch);
                let keys = new.index_keys();
                for part in rt.parts.read().values() {
                    let created = part.set_index_keys(&keys);
                    self.build_indexes(new, part, &created);
                }
            })
        })
        .map(|((), r)| {
            // After DML is let go: sizing the target indexes allocates and copies, and
            // no statement needs to wait for that (the mover has not started).
            Self::presize_target_indexes(rt, &def.layout, &rt.def.read());
            r
        })
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
        self.with_dml_held(&rt, gate, Failpoint::CancelDmlDrained, || {
            let mut new = TableDef::clone(&def);
            new.epoch = def.epoch.wrapping_add(1);
            new.redistribution = Some(Redistribution {
                target: r.target.clone(),
                cancelling: true,
                start_blocks: Self::heap_blocks(&rt, span),
            });
            self.log_put_table(new, true, Failpoint::CancelCatalogWritten, |new| {
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

    /// How far a table's redistribution is (`None` when the table is stable): the blocks
    /// of the phase and how many are finished (VM bit set). Cheap: it counts bits, so a
    /// status query may call it often.
    pub fn redistribution_progress(&self, table: &str) -> Result<Option<PhaseProgress>> {
        let rt = self.table_rt_by_name(table)?;
        let def = rt.def.read().clone();
        let Some(r) = &def.redistribution else {
            return Ok(None);
        };
        let parts = rt.parts.read();
        let (mut total, mut done) = (0u64, 0u64);
        for (seg, n) in r.start_blocks.iter().enumerate() {
            let Some(part) = parts.get(&(seg as u16)) else {
                continue;
            };
            let n = (*n).min(part.heap().nblocks());
            let v = part.vm.lock();
            total += u64::from(n);
            done += v.vm.bits.range(0..n).len() as u64;
        }
        Ok(Some(PhaseProgress {
            target_segments: r.target.segments,
            cancelling: r.cancelling,
            blocks_total: total,
            blocks_done: done,
        }))
    }

    /// Bytes of a table's heap files over every segment that holds them (gpexpand's
    /// `source_bytes`).
    pub fn table_bytes(&self, table: &str) -> Result<u64> {
        let rt = self.table_rt_by_name(table)?;
        let parts = rt.parts.read();
        Ok(parts
            .values()
            .map(|p| u64::from(p.heap().nblocks()) * crate::storage::page::PAGE_BYTES as u64)
            .sum())
    }

    pub(super) fn work_of(rt: &TableRt, r: &Redistribution) -> Vec<(u16, u32)> {
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

    pub(super) fn flip_in(&self, rt: &TableRt, gate: &GateOptions) -> Result<TransitionReport> {
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
        let ((), report) = self.with_dml_held(rt, gate, Failpoint::FlipDmlDrained, || {
            self.log_put_table(new, false, Failpoint::FlipCatalogWritten, |_| {})?;
            self.failpoint(Failpoint::FlipApplied)
        })?;
        self.poison_on_io(self.wal.flush_all())?;
        Ok(report)
    }

    /// After a flip: reclaims the versions the mover ended (those no snapshot can see
    /// any more) and drops indexes on a key the table no longer has. Returns what
    /// vacuum reclaimed.
    pub fn cleanup_redistribution(&self, table: &str) -> Result<PruneStats> {
        let stats = self.vacuum(table)?;
        self.failpoint(Failpoint::CleanupPruned)?;
        let rt = self.table_rt_by_name(table)?;
        let keys = rt.def.read().index_keys();
        for part in rt.parts.read().values() {
            part.set_index_keys(&keys);
        }
        Ok(stats)
    }
}
