//! segexpand-redistributor: moving a table from one layout to another while it stays
//! online (DESIGN.md, "Redistribution"; the protocol is `docs/redistribution.md`).
//!
//! The engine provides the steps — start, mover batch, cancel, flip, cleanup — behind
//! the table's layout pin. This crate drives them: the per-table [`State`] machine (its
//! transition table checked around every step in debug builds), parallel mover workers
//! with a throttle and a deadline, pause / resume / cancel through a [`Handle`], and
//! progress.
//!
//! ```
//! use segexpand_engine::{Node, NodeOptions, TableSpec, Type, Value};
//! use segexpand_redistributor::{Finish, Options, Redistributor};
//! let dir = tempfile::tempdir().unwrap();
//! let node = Node::create_dir(dir.path(), 2, NodeOptions::default()).unwrap();
//! node.create_table(&TableSpec::new("t").not_null("id", Type::Int8)).unwrap();
//! node.bulk_load("t", (0..1000).map(|i| vec![Value::Int8(i)])).unwrap();
//! node.add_new_segment().unwrap();
//! let mut target = node.table_def("t").unwrap().layout;
//! target.segments = 3;
//! let r = Redistributor::start(node.clone(), "t", target, Options::default()).unwrap();
//! let out = r.run().unwrap();
//! assert_eq!(out.finish, Finish::Flipped);
//! assert_eq!(node.table_def("t").unwrap().layout.segments, 3);
//! ```

use segexpand_engine::redistribute::{
    BatchLimits, BatchReport, GateOptions, MoveCounts, TransitionReport,
};
use segexpand_engine::{Error, Layout, Node, PruneStats, Result, TableDef};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Redistribution state of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// In layout `layout`; every live tuple carries migration bit `bit`.
    Stable {
        /// Layout version.
        layout: u32,
        /// Migration bit value of every live tuple.
        bit: bool,
    },
    /// Moving from layout `from` (bit `old_bit`) to `to` (bit `!old_bit`).
    Redistributing {
        /// Layout rows leave.
        from: u32,
        /// Layout rows go to.
        to: u32,
        /// Bit of tuples still in the layout they leave.
        old_bit: bool,
    },
    /// A cancelled redistribution: rows move back from `from` (the target, bit
    /// `old_bit`) to `to` (the original layout, bit `!old_bit`).
    Cancelling {
        /// Layout rows leave (the cancelled target).
        from: u32,
        /// Layout rows go back to.
        to: u32,
        /// Bit of tuples still in the cancelled target.
        old_bit: bool,
    },
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTransition {
    /// State before.
    pub from: State,
    /// State asked for.
    pub to: State,
}

impl std::fmt::Display for BadTransition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "illegal redistribution transition {:?} -> {:?}",
            self.from, self.to
        )
    }
}

impl std::error::Error for BadTransition {}

impl State {
    /// The state a table definition is in.
    pub fn of(def: &TableDef) -> State {
        let (v, b) = (def.layout_version, def.migration_bit);
        match &def.redistribution {
            None => State::Stable { layout: v, bit: b },
            Some(r) if !r.cancelling => State::Redistributing {
                from: v,
                to: v.wrapping_add(1),
                old_bit: b,
            },
            Some(_) => State::Cancelling {
                from: v.wrapping_add(1),
                to: v,
                old_bit: !b,
            },
        }
    }

    /// The transition table:
    /// - start: Stable(v, b) → Redistributing(v → v+1, old bit b);
    /// - flip: Redistributing(v → w, b) → Stable(w, !b);
    /// - cancel: Redistributing(v → w, b) → Cancelling(w → v, old bit !b);
    /// - the cancel's flip: Cancelling(w → v, b') → Stable(v, !b').
    pub fn check_transition(self, to: State) -> std::result::Result<(), BadTransition> {
        let ok = match (self, to) {
            (
                State::Stable { layout, bit },
                State::Redistributing {
                    from,
                    to: new,
                    old_bit,
                },
            ) => from == layout && new == layout.wrapping_add(1) && old_bit == bit,
            (
                State::Redistributing {
                    to: new, old_bit, ..
                }
                | State::Cancelling {
                    to: new, old_bit, ..
                },
                State::Stable { layout, bit },
            ) => layout == new && bit != old_bit,
            (
                State::Redistributing { from, to, old_bit },
                State::Cancelling {
                    from: cfrom,
                    to: cto,
                    old_bit: cbit,
                },
            ) => cfrom == to && cto == from && cbit != old_bit,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(BadTransition { from: self, to })
        }
    }
}

/// How a redistribution runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Mover threads.
    pub workers: usize,
    /// Bounds on each mover batch (one transaction).
    pub batch: BatchLimits,
    /// Blocks a worker takes at a time.
    pub chunk_blocks: usize,
    /// Throttle: rows moved or flipped per second, all workers together.
    pub rows_per_s: Option<f64>,
    /// Throttle: MB (10^6 bytes) of new versions per second, all workers together.
    pub mb_per_s: Option<f64>,
    /// Stop moving at this instant (the state stays; run again to resume).
    pub deadline: Option<Instant>,
    /// How the start, cancel and flip hold DML.
    pub gate: GateOptions,
}

/// Most mover threads [`Options::workers`] may ask for.
pub const WORKERS_MAX: usize = 256;
/// Bounds of [`Options::rows_per_s`] (rows per second).
pub const ROWS_PER_S_RANGE: (f64, f64) = (1.0, 1e12);
/// Bounds of [`Options::mb_per_s`] (MB per second).
pub const MB_PER_S_RANGE: (f64, f64) = (0.01, 1e6);
/// Longest [`GateOptions::cap`] and [`GateOptions::backoff`].
pub const GATE_WAIT_MAX: Duration = Duration::from_secs(60);
/// Most [`GateOptions::attempts`].
pub const GATE_ATTEMPTS_MAX: u32 = 1_000_000;
/// Bounds of [`BatchLimits::time_max`].
pub const BATCH_TIME_RANGE: (Duration, Duration) =
    (Duration::from_millis(1), Duration::from_secs(3600));

impl Options {
    /// Checks every field: a worker count of 1..=[`WORKERS_MAX`], a chunk and a batch of
    /// at least one block and row, a batch time and gate waits within their bounds, and
    /// throttles that are finite numbers within [`ROWS_PER_S_RANGE`] and
    /// [`MB_PER_S_RANGE`] (`None` is "no throttle"; 0, a negative number, NaN or
    /// infinity is refused rather than guessed at). [`Redistributor::start`] and
    /// [`Redistributor::attach`] call it before doing anything.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| {
            Err(Error::InvalidArgument(format!(
                "redistribution options: {m}"
            )))
        };
        if !(1..=WORKERS_MAX).contains(&self.workers) {
            return bad(format!(
                "workers must be between 1 and {WORKERS_MAX}, got {}",
                self.workers
            ));
        }
        if self.chunk_blocks == 0 {
            return bad("chunk_blocks must be at least 1, got 0".into());
        }
        if self.batch.rows_max == 0 {
            return bad("batch.rows_max must be at least 1, got 0".into());
        }
        let (lo, hi) = BATCH_TIME_RANGE;
        if !(lo..=hi).contains(&self.batch.time_max) {
            return bad(format!(
                "batch.time_max must be between {lo:?} and {hi:?}, got {:?}",
                self.batch.time_max
            ));
        }
        for (name, v) in [
            ("gate.cap", self.gate.cap),
            ("gate.backoff", self.gate.backoff),
        ] {
            if v > GATE_WAIT_MAX {
                return bad(format!(
                    "{name} must be at most {GATE_WAIT_MAX:?}, got {v:?}"
                ));
            }
        }
        if !(1..=GATE_ATTEMPTS_MAX).contains(&self.gate.attempts) {
            return bad(format!(
                "gate.attempts must be between 1 and {GATE_ATTEMPTS_MAX}, got {}",
                self.gate.attempts
            ));
        }
        for (name, v, (lo, hi)) in [
            ("rows_per_s", self.rows_per_s, ROWS_PER_S_RANGE),
            ("mb_per_s", self.mb_per_s, MB_PER_S_RANGE),
        ] {
            if let Some(v) = v {
                // NaN fails the range test too.
                if !(lo..=hi).contains(&v) {
                    return bad(format!(
                        "{name} must be a number between {} and {} (None for no \
                         throttle), got {}",
                        num(lo),
                        num(hi),
                        num(v)
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 2,
            batch: BatchLimits::default(),
            chunk_blocks: 32,
            rows_per_s: None,
            mb_per_s: None,
            deadline: None,
            gate: GateOptions::default(),
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    paused: AtomicBool,
    cancel: AtomicBool,
    stop: AtomicBool,
    progress: parking_lot::Mutex<Progress>,
}

/// Controls a running redistribution from another thread, and reads its progress.
#[derive(Debug, Clone)]
pub struct Handle(Arc<Shared>);

/// Progress so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Blocks the current phase must finish.
    pub blocks_total: u64,
    /// Blocks finished.
    pub blocks_done: u64,
    /// Mover batches committed.
    pub batches: u64,
    /// Rows and bytes moved and flipped.
    pub counts: MoveCounts,
}

impl Handle {
    /// Pauses the mover after the batches in flight (DML and SELECT go on).
    pub fn pause(&self) {
        self.0.paused.store(true, Ordering::Release);
    }
    /// Resumes a paused mover.
    pub fn resume(&self) {
        self.0.paused.store(false, Ordering::Release);
    }
    /// Asks for a cancel: the run moves the rows back and returns to the old layout.
    pub fn cancel(&self) {
        self.0.cancel.store(true, Ordering::Release);
    }
    /// Stops the run after the batches in flight, leaving the table redistributing (a
    /// later run resumes).
    pub fn stop(&self) {
        self.0.stop.store(true, Ordering::Release);
    }
    /// Progress so far.
    pub fn progress(&self) -> Progress {
        *self.0.progress.lock()
    }
    fn add(&self, b: &BatchReport) {
        let mut p = self.0.progress.lock();
        p.blocks_done += b.blocks_done.len() as u64;
        p.batches += 1;
        p.counts.add(&b.counts);
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Every row moved and the table flipped to the new layout.
    Flipped,
    /// Cancelled: every row back in the old layout, and the table flipped back to it.
    Cancelled,
    /// Stopped by [`Handle::stop`] or the deadline; the table is still redistributing.
    Stopped,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// How it ended.
    pub finish: Finish,
    /// Mover totals.
    pub progress: Progress,
    /// Time spent moving (s).
    pub mover_s: f64,
    /// The flip (or the cancel's flip), if it happened.
    pub flip: Option<TransitionReport>,
    /// The cancel transition, if there was one.
    pub cancel: Option<TransitionReport>,
}

/// Drives one table's redistribution.
#[derive(Debug)]
pub struct Redistributor {
    node: Arc<Node>,
    table: String,
    opts: Options,
    handle: Handle,
    start: Option<TransitionReport>,
}

fn checked<T>(node: &Node, table: &str, step: impl FnOnce() -> Result<T>) -> Result<T> {
    let before = State::of(&node.table_def(table)?);
    let r = step()?;
    if cfg!(debug_assertions) {
        let after = State::of(&node.table_def(table)?);
        if let Err(e) = before.check_transition(after) {
            panic!("table {table:?}: {e}");
        }
    }
    Ok(r)
}

impl Redistributor {
    /// Starts redistributing `table` to `target` (the start transition, which holds DML
    /// for a moment); [`Redistributor::run`] does the rest.
    pub fn start(node: Arc<Node>, table: &str, target: Layout, opts: Options) -> Result<Self> {
        opts.check()?;
        let report = checked(&node, table, || {
            node.start_redistribution(table, target, &opts.gate)
        })?;
        let mut r = Self::attach(node, table, opts)?;
        r.start = Some(report);
        Ok(r)
    }

    /// Attaches to a table that is already redistributing (after a stop, a pause across
    /// restarts, or a crash): [`Redistributor::run`] resumes where the mover was.
    pub fn attach(node: Arc<Node>, table: &str, opts: Options) -> Result<Self> {
        opts.check()?;
        let def = node.table_def(table)?;
        if def.redistribution.is_none() {
            return Err(Error::Redistribution(format!(
                "table {table:?} is not redistributing"
            )));
        }
        Ok(Self {
            node,
            table: table.to_string(),
            opts,
            handle: Handle(Arc::new(Shared::default())),
            start: None,
        })
    }

    /// The start transition's report (None when attached).
    pub fn start_report(&self) -> Option<TransitionReport> {
        self.start
    }

    /// A handle to pause, resume, cancel or stop the run, and to read progress.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Moves every row, then flips (or, if cancelled on the way, moves them back and
    /// flips back). Returns early, leaving the table redistributing, on
    /// [`Handle::stop`] or at the deadline.
    pub fn run(&self) -> Result<Outcome> {
        let t0 = Instant::now();
        let mut cancel = None;
        let finish = loop {
            let cancelling = self
                .node
                .table_def(&self.table)?
                .redistribution
                .is_some_and(|r| r.cancelling);
            if !cancelling && self.handle.0.cancel.load(Ordering::Acquire) {
                cancel = Some(self.cancel()?);
                continue;
            }
            if !self.move_all()? {
                if self.handle.0.cancel.load(Ordering::Acquire) && !cancelling {
                    continue;
                }
                break Finish::Stopped;
            }
            break if cancelling {
                Finish::Cancelled
            } else {
                Finish::Flipped
            };
        };
        let mover_s = t0.elapsed().as_secs_f64();
        let flip = match finish {
            Finish::Stopped => None,
            _ => Some(self.flip()?),
        };
        Ok(Outcome {
            finish,
            progress: self.handle.progress(),
            mover_s,
            flip,
            cancel,
        })
    }

    /// The cancel transition alone (see [`Handle::cancel`] for cancelling a run).
    pub fn cancel(&self) -> Result<TransitionReport> {
        checked(&self.node, &self.table, || {
            self.node
                .cancel_redistribution(&self.table, &self.opts.gate)
        })
    }

    /// The flip alone: fails unless every block is finished.
    pub fn flip(&self) -> Result<TransitionReport> {
        checked(&self.node, &self.table, || {
            self.node.flip_redistribution(&self.table, &self.opts.gate)
        })
    }

    /// After the flip: reclaims the versions the mover ended, once no snapshot can see
    /// them.
    pub fn cleanup(&self) -> Result<PruneStats> {
        self.node.cleanup_redistribution(&self.table)
    }

    fn interrupted(&self) -> bool {
        let s = &self.handle.0;
        s.stop.load(Ordering::Acquire)
            || s.cancel.load(Ordering::Acquire)
                && !self
                    .node
                    .table_def(&self.table)
                    .is_ok_and(|d| d.redistribution.is_some_and(|r| r.cancelling))
            || self.opts.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Runs the workers until every block of the phase is finished (true) or the run is
    /// interrupted (false).
    fn move_all(&self) -> Result<bool> {
        loop {
            let work = self.node.redistribution_work(&self.table)?;
            {
                let mut p = self.handle.0.progress.lock();
                p.blocks_total = p.blocks_done + work.len() as u64;
            }
            if work.is_empty() {
                return Ok(true);
            }
            let mut queue: VecDeque<(u16, Vec<u32>)> = VecDeque::new();
            for (seg, block) in work {
                match queue.back_mut() {
                    Some((s, v)) if *s == seg && v.len() < self.opts.chunk_blocks.max(1) => {
                        v.push(block)
                    }
                    _ => queue.push_back((seg, vec![block])),
                }
            }
            let queue = parking_lot::Mutex::new(queue);
            let started = Instant::now();
            let errors: parking_lot::Mutex<Vec<Error>> = parking_lot::Mutex::new(Vec::new());
            std::thread::scope(|sc| {
                for _ in 0..self.opts.workers.max(1) {
                    sc.spawn(|| {
                        if let Err(e) = self.worker(&queue, started) {
                            self.handle.stop();
                            errors.lock().push(e);
                        }
                    });
                }
            });
            // The root cause, not a worker's echo of it (another worker that then
            // found the node poisoned).
            let mut errors = errors.into_inner();
            if let Some(i) = errors
                .iter()
                .position(|e| !matches!(e, Error::Poisoned(_)))
                .or((!errors.is_empty()).then_some(0))
            {
                return Err(errors.swap_remove(i));
            }
            if self.interrupted() {
                return Ok(false);
            }
        }
    }

    fn worker(
        &self,
        queue: &parking_lot::Mutex<VecDeque<(u16, Vec<u32>)>>,
        started: Instant,
    ) -> Result<()> {
        let mut idle_rounds = 0u32;
        loop {
            if self.interrupted() {
                return Ok(());
            }
            if self.handle.0.paused.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            self.throttle(started);
            let Some((seg, blocks)) = queue.lock().pop_front() else {
                return Ok(());
            };
            let b = self
                .node
                .move_blocks(&self.table, seg, &blocks, &self.batch_limits())?;
            self.handle.add(&b);
            let mut again: Vec<u32> = b.blocks_again.clone();
            again.extend(blocks.iter().skip(b.blocks_visited));
            if again.is_empty() {
                idle_rounds = 0;
            } else {
                // Rows a user transaction holds: revisit later, never wait on them here.
                if b.blocks_visited > 0 && b.blocks_done.is_empty() {
                    idle_rounds += 1;
                    std::thread::sleep(Duration::from_micros(200 * u64::from(idle_rounds.min(50))));
                }
                queue.lock().push_back((seg, again));
            }
        }
    }

    /// Sleeps until the work done is no longer ahead of the throttle (in slices of at
    /// most 100 ms, so that a stop, cancel or pause is seen). It used to sleep one slice
    /// and go on, so a run went as fast as one batch per slice per worker whatever the
    /// limit (2.5-5x over it, found by an adversarial pass).
    fn throttle(&self, started: Instant) {
        loop {
            let p = self.handle.progress().counts;
            let elapsed = started.elapsed().as_secs_f64();
            let mut ahead = 0.0f64;
            if let Some(r) = self.opts.rows_per_s {
                ahead = ahead.max((p.rows_moved + p.rows_flipped) as f64 / r - elapsed);
            }
            if let Some(m) = self.opts.mb_per_s {
                ahead = ahead.max(p.bytes_moved as f64 / (m * 1e6) - elapsed);
            }
            let sleep = sleep_for(ahead, Duration::from_millis(100));
            if sleep.is_zero() || self.interrupted() {
                return;
            }
            std::thread::sleep(sleep);
        }
    }

    /// The batch limits a worker uses: the configured ones, and under a row throttle
    /// batches of at most a twentieth of a second's rows, so that the rate holds over
    /// short spans too (one 2,000-row batch is two seconds' worth at 1,000 rows/s).
    fn batch_limits(&self) -> BatchLimits {
        let mut b = self.opts.batch;
        if let Some(r) = self.opts.rows_per_s {
            let per_slice = (r / 20.0).clamp(1.0, b.rows_max as f64) as usize;
            b.rows_max = b.rows_max.min(per_slice).max(1);
        }
        b
    }
}

/// A number for a message: `1e-300` and `1e12` rather than hundreds of digits.
fn num(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// `secs` seconds as a `Duration` at most `cap`: zero for a negative number or NaN, `cap`
/// for a larger one or infinity (never the panic of `Duration::from_secs_f64`).
fn sleep_for(secs: f64, cap: Duration) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else if secs >= cap.as_secs_f64() {
        cap
    } else {
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::State::*;
    use super::*;
    use segexpand_engine::redistribute::BatchLimits;
    use segexpand_engine::vfs::SimVfs;
    use segexpand_engine::{NodeOptions, TableSpec, Type, Value};

    #[test]
    fn bad_options_are_refused_before_anything_changes() {
        let node = Node::create(
            Arc::new(SimVfs::new()),
            std::path::Path::new("/d"),
            2,
            NodeOptions::default(),
        )
        .unwrap();
        node.create_table(&TableSpec::new("t").not_null("id", Type::Int8))
            .unwrap();
        node.bulk_load("t", (0..500).map(|i| vec![Value::Int8(i)]))
            .unwrap();
        node.add_new_segment().unwrap();
        let mut target = node.table_def("t").unwrap().layout;
        target.segments = 3;
        let o = Options::default;
        let batch = |rows_max, time_max| BatchLimits {
            rows_max,
            time_max,
            ..BatchLimits::default()
        };
        let gate = |cap, attempts, backoff| GateOptions {
            cap,
            attempts,
            backoff,
        };
        let cases: Vec<(Options, &str)> = vec![
            (
                Options { workers: 0, ..o() },
                "workers must be between 1 and 256, got 0",
            ),
            (
                Options {
                    workers: 100_000_000,
                    ..o()
                },
                "got 100000000",
            ),
            (
                Options {
                    chunk_blocks: 0,
                    ..o()
                },
                "chunk_blocks",
            ),
            (
                Options {
                    batch: batch(0, Duration::from_millis(50)),
                    ..o()
                },
                "rows_max",
            ),
            (
                Options {
                    batch: batch(10, Duration::ZERO),
                    ..o()
                },
                "time_max",
            ),
            (
                Options {
                    batch: batch(10, Duration::MAX),
                    ..o()
                },
                "time_max",
            ),
            (
                Options {
                    gate: gate(Duration::MAX, 3, Duration::ZERO),
                    ..o()
                },
                "gate.cap",
            ),
            (
                Options {
                    gate: gate(Duration::ZERO, 3, Duration::MAX),
                    ..o()
                },
                "gate.backoff",
            ),
            (
                Options {
                    gate: gate(Duration::ZERO, 0, Duration::ZERO),
                    ..o()
                },
                "gate.attempts",
            ),
            (
                Options {
                    rows_per_s: Some(f64::INFINITY),
                    ..o()
                },
                "rows_per_s must be a number between 1 and 1e12",
            ),
            (
                Options {
                    rows_per_s: Some(f64::NAN),
                    ..o()
                },
                "got NaN",
            ),
            (
                Options {
                    rows_per_s: Some(0.0),
                    ..o()
                },
                "got 0",
            ),
            (
                Options {
                    rows_per_s: Some(-5.0),
                    ..o()
                },
                "got -5",
            ),
            (
                Options {
                    rows_per_s: Some(1e-300),
                    ..o()
                },
                "got 1e-300",
            ),
            (
                Options {
                    mb_per_s: Some(f64::INFINITY),
                    ..o()
                },
                "mb_per_s",
            ),
            (
                Options {
                    mb_per_s: Some(f64::NEG_INFINITY),
                    ..o()
                },
                "mb_per_s",
            ),
            (
                Options {
                    mb_per_s: Some(0.0),
                    ..o()
                },
                "mb_per_s",
            ),
            (
                Options {
                    mb_per_s: Some(1e-300),
                    ..o()
                },
                "mb_per_s",
            ),
        ];
        for (opts, want) in cases {
            let e =
                Redistributor::start(node.clone(), "t", target.clone(), opts.clone()).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{opts:?}: {e}");
            assert!(e.to_string().contains(want), "{opts:?}: {e}");
            // Nothing started.
            assert!(
                node.table_def("t").unwrap().redistribution.is_none(),
                "{opts:?}"
            );
        }
        // attach checks them too.
        let r = Redistributor::start(node.clone(), "t", target, o()).unwrap();
        drop(r);
        let bad = Options {
            rows_per_s: Some(f64::INFINITY),
            ..o()
        };
        assert!(matches!(
            Redistributor::attach(node.clone(), "t", bad),
            Err(Error::InvalidArgument(_))
        ));
        // The bounds themselves are accepted, and a run with them finishes.
        let ok = Options {
            workers: WORKERS_MAX,
            rows_per_s: Some(ROWS_PER_S_RANGE.1),
            mb_per_s: Some(MB_PER_S_RANGE.1),
            ..o()
        };
        let r = Redistributor::attach(node.clone(), "t", ok).unwrap();
        assert_eq!(r.run().unwrap().finish, Finish::Flipped);
    }

    #[test]
    fn sleep_for_never_panics() {
        let cap = Duration::from_millis(100);
        assert_eq!(sleep_for(f64::NAN, cap), Duration::ZERO);
        assert_eq!(sleep_for(-1.0, cap), Duration::ZERO);
        assert_eq!(sleep_for(f64::NEG_INFINITY, cap), Duration::ZERO);
        assert_eq!(sleep_for(f64::INFINITY, cap), cap);
        assert_eq!(sleep_for(1e300, cap), cap);
        assert_eq!(sleep_for(0.05, cap), Duration::from_millis(50));
    }

    #[test]
    fn transition_table() {
        let s = Stable {
            layout: 3,
            bit: false,
        };
        let r = Redistributing {
            from: 3,
            to: 4,
            old_bit: false,
        };
        let c = Cancelling {
            from: 4,
            to: 3,
            old_bit: true,
        };
        assert!(s.check_transition(r).is_ok());
        assert!(r
            .check_transition(Stable {
                layout: 4,
                bit: true
            })
            .is_ok()); // flip
        assert!(r.check_transition(c).is_ok()); // cancel
        assert!(c
            .check_transition(Stable {
                layout: 3,
                bit: false
            })
            .is_ok()); // the cancel's flip
        assert!(r
            .check_transition(Stable {
                layout: 3,
                bit: false
            })
            .is_err()); // back without moving the rows back
        assert!(c.check_transition(r).is_err());
        assert!(c.check_transition(c).is_err());
        assert!(r
            .check_transition(Stable {
                layout: 4,
                bit: false
            })
            .is_err()); // bit not flipped
        assert!(s
            .check_transition(Redistributing {
                from: 3,
                to: 5,
                old_bit: false
            })
            .is_err());
        assert!(s
            .check_transition(Redistributing {
                from: 3,
                to: 4,
                old_bit: true
            })
            .is_err());
        assert!(s
            .check_transition(Stable {
                layout: 4,
                bit: true
            })
            .is_err());
        assert!(s.check_transition(c).is_err());
        assert!(r.check_transition(r).is_err());
    }
}
