//! Online redistribution, the engine's side: the state transitions (start, cancel, flip)
//! behind the layout pin, the mover's batch, the readiness check, cleanup, retiring
//! segments and the offline baseline. The redistributor crate drives these (workers,
//! throttle, pause, progress) and checks its state machine around them.
//!
//! The protocol, and what a crash leaves at each step, is `docs/redistribution.md`.

use crate::catalog::{Redistribution, TableDef};
use crate::error::{Error, Result};
use crate::failpoint::Failpoint;
use crate::node::{Node, TableRt};
use crate::wal::record::Body;
use std::time::{Duration, Instant};

mod checks;
mod mover;
mod offline;
mod transitions;

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
        drained: Failpoint,
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
        written: Failpoint,
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
}

impl Node {}

/// How far a redistribution is ([`Node::redistribution_progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseProgress {
    /// Segments of the target layout.
    pub target_segments: u16,
    /// True while a cancel takes the moved rows back.
    pub cancelling: bool,
    /// Blocks of the phase: every heap block that existed when it began.
    pub blocks_total: u64,
    /// Of those, the blocks finished (their VM bit set).
    pub blocks_done: u64,
}
