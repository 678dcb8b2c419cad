//! The checking workload's shared state and lifetime: its counters, its timeline and
//! its messages (`Load`), and `with_workload`, which runs the workload threads around a
//! step and stops them on every way out, keeping the first failure as the run's cause.

use super::setup::Start;
use super::threads::{dml, point_selects, scans};
use super::{bad, Error, Node};
use crate::timeline::{Outcome, Timeline};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Workload messages printed before the rest are only counted.
const MESSAGES_MAX: u64 = 5;

/// The workload's shared state.
pub(super) struct Load<'t> {
    stop: AtomicBool,
    /// Where every operation is recorded (its phase: 0 before, 1 during the
    /// redistribution, 2 after).
    pub(super) timeline: &'t Timeline,
    pub(super) select_errors: AtomicU64,
    pub(super) dml_errors: AtomicU64,
    /// DML transactions that did not find a row they were sure to find.
    pub(super) dml_rows_missing: AtomicU64,
    pub(super) scan_mismatches: AtomicU64,
    pub(super) scans: AtomicU64,
    pub(super) dml_txns: AtomicU64,
    /// A fault to inject once (`inject_fault = "unbalanced-transfer"`): the next
    /// transfer debits without crediting, which the checks must catch.
    pub(super) inject_unbalanced: AtomicBool,
    /// Beside another workload the checking threads pace themselves (see `pause`), so
    /// that they check without taking the cores the measured workload runs on.
    pub(super) light: AtomicBool,
    /// The failure that stopped the workload (I/O, a poisoned node, corruption, a
    /// panic): the first one, the run's exit cause.
    fatal: parking_lot::Mutex<Option<Error>>,
    /// Messages so far (the first `MESSAGES_MAX` are printed, the rest counted).
    messages: AtomicU64,
    sink: Box<dyn Fn(fmt::Arguments<'_>) + Send + Sync>,
}

impl<'t> Load<'t> {
    pub(super) fn new(
        sink: Box<dyn Fn(fmt::Arguments<'_>) + Send + Sync>,
        timeline: &'t Timeline,
    ) -> Self {
        Self {
            stop: AtomicBool::new(false),
            timeline,
            select_errors: AtomicU64::new(0),
            dml_errors: AtomicU64::new(0),
            dml_rows_missing: AtomicU64::new(0),
            scan_mismatches: AtomicU64::new(0),
            scans: AtomicU64::new(0),
            dml_txns: AtomicU64::new(0),
            inject_unbalanced: AtomicBool::new(false),
            light: AtomicBool::new(false),
            fatal: parking_lot::Mutex::new(None),
            messages: AtomicU64::new(0),
            sink,
        }
    }

    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire) || super::INTERRUPTED.load(Ordering::Relaxed)
    }

    /// Prints a workload message, unless `MESSAGES_MAX` were printed already.
    pub(super) fn note(&self, args: fmt::Arguments<'_>) {
        let n = self.messages.fetch_add(1, Ordering::Relaxed);
        if n < MESSAGES_MAX {
            (self.sink)(args);
        } else if n == MESSAGES_MAX {
            (self.sink)(format_args!(
                "(further workload errors are counted in the summary, not printed)"
            ));
        }
    }

    /// Stops the workload; the first cause is kept.
    fn fail(&self, e: Error) {
        let mut f = self.fatal.lock();
        if f.is_none() {
            *f = Some(e);
        }
        self.stop.store(true, Ordering::Release);
    }

    /// An error of a workload statement: one that says the node can no longer be
    /// trusted or written (I/O, poison, corruption) stops the workload; any other is
    /// printed (the first few) and the caller counts it. Returns how the timeline
    /// counts it: a conflict (lock timeout, deadlock) is an abort, the rest errors.
    pub(super) fn error(&self, what: &str, e: Error) -> Outcome {
        let outcome = outcome_of(&e);
        if matches!(
            e,
            Error::Io { .. } | Error::Poisoned(_) | Error::Corruption { .. }
        ) {
            self.fail(e);
        } else {
            self.note(format_args!("{what} failed: {e}"));
        }
        outcome
    }

    /// Beside another workload, a checking thread's pause between its batches (`d`),
    /// cut short when the workload stops; nothing otherwise.
    pub(super) fn pause(&self, d: Duration) {
        if self.light.load(Ordering::Relaxed) {
            sleep_unless_stopped(self, d);
        }
    }

    /// True when the workload or `extra` says stop.
    pub(super) fn stopped_or(&self, extra: &AtomicBool) -> bool {
        self.stopped() || extra.load(Ordering::Acquire)
    }

    /// Messages not printed.
    pub(super) fn unprinted(&self) -> u64 {
        self.messages
            .load(Ordering::Relaxed)
            .saturating_sub(MESSAGES_MAX)
    }
}

/// How the timeline counts a failed operation: a conflict that a client would retry
/// (lock timeout, deadlock) is an abort, the rest errors.
pub(super) fn outcome_of(e: &Error) -> Outcome {
    match e {
        Error::LockTimeout { .. } | Error::Deadlock { .. } => Outcome::Abort,
        _ => Outcome::Error,
    }
}

/// Sets a flag when dropped: on every way out of a scope, a panic included.
pub(super) struct SetOnDrop<'a>(pub(super) &'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Sleeps `d`, waking early when the workload stopped.
pub(super) fn sleep_unless_stopped(load: &Load<'_>, d: Duration) {
    let end = Instant::now() + d;
    while !load.stopped() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Runs the workload threads while `main` runs on this thread, and stops them on every
/// way out: `main` returning or panicking, a workload thread failing (the first I/O
/// error, poisoned node or corruption) or panicking. Returns the workload's first fatal
/// error if there was one (unless it only echoes `main`'s), else `main`'s result.
pub(super) fn with_workload<T>(
    node: &Arc<Node>,
    load: &Load<'_>,
    start: &Start,
    live: &parking_lot::Mutex<Vec<i64>>,
    main: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let next_id = AtomicU64::new(start.meta.next_id.max(0) as u64);
    let id_range = start.meta.next_id.max(1) as u64;
    let sum0 = start.meta.balance_sum;
    let rows0 = start.ids.len() as u64;
    let r = std::thread::scope(|s| {
        let _stop = SetOnDrop(&load.stop);
        let threads = [
            s.spawn(|| {
                let _stop = SetOnDrop(&load.stop);
                point_selects(node, load, id_range)
            }),
            s.spawn(|| {
                let _stop = SetOnDrop(&load.stop);
                scans(node, load, rows0, sum0)
            }),
            s.spawn(|| {
                let _stop = SetOnDrop(&load.stop);
                dml(node, load, live, &next_id)
            }),
        ];
        let r = main();
        load.stop.store(true, Ordering::Release);
        for t in threads {
            if t.join().is_err() {
                load.fail(bad("a workload thread panicked (see above)"));
            }
        }
        r
    });
    first_cause(load.fatal.lock().take(), r)
}

/// The run's cause: the workload's first fatal error if there was one (unless it only
/// echoes `main`'s), else `main`'s result.
fn first_cause<T>(fatal: Option<Error>, r: Result<T, Error>) -> Result<T, Error> {
    match (fatal, r) {
        // `main` met the root cause (say a failed write) and the workload its echo.
        (Some(Error::Poisoned(_)), Err(m @ (Error::Io { .. } | Error::Corruption { .. }))) => {
            Err(m)
        }
        (Some(e), _) => Err(e),
        (None, r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::check::inspect;
    use crate::harness::fixtures::{args, sim_node};
    use crate::harness::setup::prepare;
    use crate::harness::{FailKind, OpClass, SimVfs};

    #[test]
    fn the_workload_stops_at_the_first_failed_write_and_prints_little() {
        let vfs = SimVfs::new();
        let node = sim_node(&vfs);
        let a = args(2_000);
        let start = prepare(&a, &node, inspect(&node).unwrap()).unwrap();
        let lines = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
        let l2 = lines.clone();
        let tl = Timeline::new(Duration::from_millis(100));
        let load = Load::new(Box::new(move |m| l2.lock().push(m.to_string())), &tl);
        // The disk is full at the next write (the poison refuses every later one).
        vfs.fail_nth(OpClass::Write, vfs.count(OpClass::Write), FailKind::Enospc);
        let live = parking_lot::Mutex::new(start.ids.clone());
        let t0 = Instant::now();
        let r = with_workload(&node, &load, &start, &live, || {
            // The redistribution's place: wait (at most 30 s) for the workload to stop.
            sleep_unless_stopped(&load, Duration::from_secs(30));
            Ok(())
        });
        let e = r.unwrap_err().to_string();
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the workload did not stop"
        );
        assert!(e.contains("write"), "the first cause names the write: {e}");
        assert!(!e.contains("fsync"), "{e}");
        let lines = lines.lock();
        assert!(
            lines.len() as u64 <= MESSAGES_MAX + 1,
            "{} lines printed: {lines:?}",
            lines.len()
        );
        assert_eq!(
            load.dml_errors.load(Ordering::Relaxed),
            1,
            "one failed DML, then stop"
        );
    }

    #[test]
    fn a_panicking_step_stops_the_workload() {
        let vfs = SimVfs::new();
        let node = sim_node(&vfs);
        let start = prepare(&args(1000), &node, inspect(&node).unwrap()).unwrap();
        let tl = Timeline::new(Duration::from_millis(100));
        let load = Load::new(Box::new(|_| {}), &tl);
        let live = parking_lot::Mutex::new(start.ids.clone());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_workload(&node, &load, &start, &live, || -> Result<(), Error> {
                std::thread::sleep(Duration::from_millis(100));
                panic!("a step panicked");
            })
        }));
        // It returned (the threads stopped) instead of hanging.
        assert!(r.is_err());
        assert!(load.stopped());
    }
}
