//! The offline path (gpexpand's way: DML held, table rewritten) and retiring an emptied
//! segment.

use super::{BatchLimits, GateOptions, MoveCounts, OfflineReport};

use crate::catalog::Layout;
use crate::error::{Error, Result};
use crate::node::{Node, TableRt};
use crate::wal::record::Body;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Node {
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
        let seg_dir = self.segment_dir(content);
        {
            // Every table's statements are held off while the segment goes.
            let _ddls = self.hold_all_statements(&rts)?;
            self.log_ddl(&Body::RetireSegment { content })?;
            self.apply_retire_segment(content);
        }
        // Once a checkpoint has recorded the configuration without the segment, its
        // files can go; a crash before that replays the retirement, one after leaves a
        // directory that the next open removes.
        self.checkpoint()?;
        self.remove_segment_files(&seg_dir, content)?;
        Ok(content)
    }

    /// Every table's DDL lock, exclusively: all their statements held off. Taken with
    /// `try_write` rounds, never a blocking `write`: a statement waiting for a row lock
    /// keeps its table's DDL lock shared, and a writer queued behind it would make the
    /// row's holder queue too at its next statement — a wait nobody sees (pgbench's
    /// clients hung for the lock timeout behind a retirement). Readers are never queued
    /// behind this: a round that cannot take every lock within 20 ms lets all go and
    /// tries again, up to the lock timeout.
    fn hold_all_statements<'a>(
        &self,
        rts: &'a [Arc<TableRt>],
    ) -> Result<Vec<crate::lock::RwLockWriteGuard<'a, ()>>> {
        let until = Instant::now() + self.options().lock_timeout;
        loop {
            let round = Instant::now() + Duration::from_millis(20);
            let mut held = Vec::with_capacity(rts.len());
            for rt in rts {
                loop {
                    if let Some(g) = rt.ddl.try_write() {
                        held.push(g);
                        break;
                    }
                    if Instant::now() >= round {
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                if held.len() < rts.len() && Instant::now() >= round {
                    break;
                }
            }
            if held.len() == rts.len() {
                return Ok(held);
            }
            drop(held);
            if Instant::now() >= until {
                return Err(Error::Redistribution(
                    "could not hold every table's statements off within the lock timeout \
                     to retire the segment; retry when the load is lighter"
                        .into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
