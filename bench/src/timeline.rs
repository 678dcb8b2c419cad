//! A run's measurements over time: per interval (default 100 ms) and per operation
//! type, the completions, aborts, errors and an HDR histogram of latencies; per phase
//! of the run (before, during and after the reconfiguration) the same, at full
//! precision; the phase marks (start, flip, cleanup …); and samples of the mover's
//! progress and the process's CPU and memory.
//!
//! Each client thread records into a [`Client`] of its own (no lock, no sharing): the
//! cells of its current interval and phase, one histogram increment per operation.
//! When an operation completes in a later interval (or the phase changes), the client
//! adds its cells into the timeline (one lock per client per interval), and at its end
//! it adds what it holds. The timeline keeps a cell per (interval, phase, type), so
//! the per-interval rows and the per-phase figures are both exact sums of the same
//! cells. An operation belongs to
//! the interval in which it *completed*; its latency runs from its *intended* start
//! (an open-loop client's schedule), so a stalled server shows as latency, not as
//! missing samples (no coordinated omission).
//!
//! The whole-run and per-phase figures are the sums of what the clients recorded,
//! exactly as the per-interval cells are: the summary's counts equal the timeline's.

use crate::latency::{Compact, Recorder, Summary};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// The operation types a run records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// YCSB read (a point lookup by key).
    Read,
    /// YCSB update (one field of one row).
    Update,
    /// YCSB insert (a new key).
    Insert,
    /// YCSB short scan (up to 100 consecutive keys).
    Scan,
    /// YCSB read-modify-write.
    ReadModifyWrite,
    /// The checking workload's point SELECT.
    PointSelect,
    /// The checking workload's transfer transaction.
    Transfer,
    /// The checking workload's full scan that checks the invariant.
    CheckScan,
    /// A pgbench transaction (tpcb-like), from pgbench's own log.
    Tpcb,
}

impl Op {
    /// Every operation type, in the order of the CSV files.
    pub const ALL: [Op; 9] = [
        Op::Read,
        Op::Update,
        Op::Insert,
        Op::Scan,
        Op::ReadModifyWrite,
        Op::PointSelect,
        Op::Transfer,
        Op::CheckScan,
        Op::Tpcb,
    ];

    /// The name in CSV files, JSON and plots.
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Update => "update",
            Op::Insert => "insert",
            Op::Scan => "scan",
            Op::ReadModifyWrite => "rmw",
            Op::PointSelect => "point_select",
            Op::Transfer => "transfer",
            Op::CheckScan => "check_scan",
            Op::Tpcb => "tpcb",
        }
    }

    /// The type of a name (`name`'s inverse).
    pub fn from_name(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done (committed, for a transaction).
    Ok,
    /// Rolled back by a conflict (lock timeout, deadlock, serialization): the client
    /// may retry.
    Abort,
    /// Failed otherwise.
    Error,
}

/// The phases of a run.
pub const PHASES: [&str; 3] = ["before", "during", "after"];

/// Counts and latencies of one operation type over a span (an interval or a phase).
#[derive(Debug, Clone, Default)]
pub struct Cell {
    /// Latencies of the operations that completed.
    pub lat: Recorder,
    /// Operations that completed.
    pub ok: u64,
    /// Operations rolled back by a conflict.
    pub aborts: u64,
    /// Operations that failed otherwise.
    pub errors: u64,
}

impl Cell {
    fn coarse() -> Self {
        Cell {
            lat: Recorder::coarse(),
            ..Cell::default()
        }
    }

    fn add(&mut self, o: &Cell) {
        self.lat.merge(&o.lat);
        self.ok += o.ok;
        self.aborts += o.aborts;
        self.errors += o.errors;
    }

    #[inline]
    fn record(&mut self, ns: u64, outcome: Outcome) {
        match outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.lat.record(ns);
            }
            Outcome::Abort => self.aborts += 1,
            Outcome::Error => self.errors += 1,
        }
    }
}

/// A cell as the timeline keeps it: the histogram's non-empty buckets.
#[derive(Debug, Clone, Default)]
struct Kept {
    lat: Compact,
    ok: u64,
    aborts: u64,
    errors: u64,
}

impl Kept {
    fn add(&mut self, c: &Cell) {
        self.merge(&Kept {
            lat: c.lat.compact(),
            ok: c.ok,
            aborts: c.aborts,
            errors: c.errors,
        });
    }

    fn merge(&mut self, o: &Kept) {
        self.lat.merge(&o.lat);
        self.ok += o.ok;
        self.aborts += o.aborts;
        self.errors += o.errors;
    }
}

/// A sample of the mover and of the process, taken once per interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the timeline's start.
    pub t_s: f64,
    /// Rows given a new version on another segment, so far.
    pub rows_moved: u64,
    /// Bytes of the new versions written, so far.
    pub bytes_moved: u64,
    /// Blocks of the phase finished.
    pub blocks_done: u64,
    /// Blocks of the phase.
    pub blocks_total: u64,
    /// CPU time of this process over the interval, as a share of one core (100 = one
    /// core busy).
    pub cpu_pct: f64,
    /// Resident memory of this process (MB).
    pub rss_mb: f64,
}

/// One row of the timeline: an interval and an operation type.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Start of the interval, seconds since the timeline's start.
    pub t_s: f64,
    /// The operation type.
    pub op: Op,
    /// Operations completed in the interval.
    pub ok: u64,
    /// Aborts in the interval.
    pub aborts: u64,
    /// Errors in the interval.
    pub errors: u64,
    /// Latency summary of the completed operations (ns).
    pub lat: Summary,
}

/// The shared timeline of a run.
pub struct Timeline {
    t0: Instant,
    /// `t0` as seconds since the Unix epoch (to place pgbench's logged times).
    t0_unix: f64,
    interval: Duration,
    phase: AtomicU8,
    /// Nanoseconds from `t0` at which the timeline closed (`u64::MAX`: open).
    closed_at: AtomicU64,
    /// The intervals' cells, compacted as clients add them (a 37 KiB histogram becomes
    /// its non-empty buckets, typically a few KiB), so a long run's timeline stays
    /// small.
    cells: parking_lot::Mutex<BTreeMap<(u64, u8, Op), Kept>>,
    marks: parking_lot::Mutex<Vec<(f64, String)>>,
    samples: parking_lot::Mutex<Vec<Sample>>,
}

impl Timeline {
    /// A timeline starting now, of intervals of `interval` (at least 1 ms).
    pub fn new(interval: Duration) -> Self {
        let t0 = Instant::now();
        let t0_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Self {
            t0,
            t0_unix,
            interval: interval.max(Duration::from_millis(1)),
            phase: AtomicU8::new(0),
            closed_at: AtomicU64::new(u64::MAX),
            cells: parking_lot::Mutex::new(BTreeMap::new()),
            marks: parking_lot::Mutex::new(Vec::new()),
            samples: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// The start.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// The start, in seconds since the Unix epoch.
    pub fn t0_unix(&self) -> f64 {
        self.t0_unix
    }

    /// The interval length.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Nanoseconds from the start to `t` (0 before it).
    #[inline]
    fn at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.t0)
            .as_nanos()
            .min(u128::from(u64::MAX - 1)) as u64
    }

    /// Seconds from the start to `t` (0 before it).
    pub fn secs(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64()
    }

    /// The phase operations are counted in from now on (0 before, 1 during, 2 after).
    pub fn set_phase(&self, phase: u8) {
        self.phase.store(phase.min(2), Ordering::Release);
    }

    /// The current phase.
    pub fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    /// Closes the timeline now, with the mark `what`: an operation that completes
    /// later is not recorded (the workload's stragglers, a pgbench round that runs
    /// on), so the last interval is not a false drop and every count ends here.
    pub fn close(&self, what: &str) {
        let now = Instant::now();
        let ns = now.saturating_duration_since(self.t0).as_nanos();
        self.closed_at
            .store(ns.min(u128::from(u64::MAX - 1)) as u64, Ordering::Release);
        self.mark_at(self.secs(now), what);
    }

    /// Records a phase mark (`start`, `flip`, `cleanup` …) at the present moment.
    pub fn mark(&self, what: &str) {
        let t = self.secs(Instant::now());
        self.marks.lock().push((t, what.to_string()));
    }

    /// Records a mark at `t_s` seconds.
    pub fn mark_at(&self, t_s: f64, what: &str) {
        self.marks.lock().push((t_s, what.to_string()));
    }

    /// The marks, in time order.
    pub fn marks(&self) -> Vec<(f64, String)> {
        let mut m = self.marks.lock().clone();
        m.sort_by(|a, b| a.0.total_cmp(&b.0));
        m
    }

    /// The first mark named `what`.
    pub fn mark_time(&self, what: &str) -> Option<f64> {
        self.marks()
            .into_iter()
            .find(|(_, w)| w == what)
            .map(|m| m.0)
    }

    /// Adds a sample.
    pub fn sample(&self, s: Sample) {
        self.samples.lock().push(s);
    }

    /// The samples, in time order.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().clone()
    }

    /// A recorder for one client thread.
    pub fn client(&self) -> Client<'_> {
        Client {
            tl: self,
            cur: 0,
            span: (0, 0),
            phase: 0,
            cells: Default::default(),
            last_at: 0,
        }
    }

    /// The timeline's rows, in time then operation order; only (interval, operation)
    /// pairs with something recorded. Intervals with nothing at all for an operation
    /// that appears elsewhere are included with zero counts, so a stall shows as zero
    /// throughput rather than a gap.
    pub fn rows(&self) -> Vec<Row> {
        // Per (interval, type): the phases' cells added.
        let mut merged: BTreeMap<(u64, Op), Kept> = BTreeMap::new();
        for (&(i, _, op), k) in self.cells.lock().iter() {
            merged.entry((i, op)).or_default().merge(k);
        }
        let ops: Vec<Op> = {
            let mut v: Vec<Op> = merged.keys().map(|k| k.1).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let mut out = Vec::new();
        let Some(last) = merged.keys().map(|k| k.0).max() else {
            return out;
        };
        let step = self.interval.as_secs_f64();
        for i in 0..=last {
            for &op in &ops {
                let t_s = i as f64 * step;
                match merged.get(&(i, op)) {
                    Some(c) => out.push(Row {
                        t_s,
                        op,
                        ok: c.ok,
                        aborts: c.aborts,
                        errors: c.errors,
                        lat: Recorder::from_compact(&c.lat).summary(),
                    }),
                    None => out.push(Row {
                        t_s,
                        op,
                        ok: 0,
                        aborts: 0,
                        errors: 0,
                        lat: Summary::default(),
                    }),
                }
            }
        }
        out
    }

    /// Per phase (`PHASES`), per operation type with something recorded: the cell
    /// (the phase's intervals added).
    pub fn phase_cells(&self) -> Vec<(usize, Op, Cell)> {
        let mut merged: BTreeMap<(u8, Op), Kept> = BTreeMap::new();
        for (&(_, phase, op), k) in self.cells.lock().iter() {
            merged.entry((phase, op)).or_default().merge(k);
        }
        merged
            .into_iter()
            .filter(|(_, k)| k.ok + k.aborts + k.errors > 0)
            .map(|((phase, op), k)| {
                let cell = Cell {
                    lat: Recorder::from_compact(&k.lat),
                    ok: k.ok,
                    aborts: k.aborts,
                    errors: k.errors,
                };
                (usize::from(phase), op, cell)
            })
            .collect()
    }

    /// The whole run's cell of one operation type (the phases added).
    pub fn total(&self, op: Op) -> Cell {
        let mut t = Cell::default();
        for (_, o, c) in self.phase_cells() {
            if o == op {
                t.add(&c);
            }
        }
        t
    }
}

/// One client thread's recorder (see the module comment); adds itself into the
/// timeline when its interval changes and when dropped.
pub struct Client<'a> {
    tl: &'a Timeline,
    /// The current interval and phase, and the interval's span in nanoseconds from
    /// the start.
    cur: u64,
    phase: u8,
    span: (u64, u64),
    /// The current interval and phase's cells, by `Op::index`.
    cells: [Option<Cell>; OPS],
    /// Nanoseconds from the start to the last operation's end (or to `restart`): where
    /// `record_next`'s latency begins.
    last_at: u64,
}

/// The number of operation types.
const OPS: usize = Op::ALL.len();

impl Client<'_> {
    /// Records an operation of type `op` that was meant to start at `intended` and
    /// ended at `end`.
    #[inline]
    pub fn record(&mut self, op: Op, intended: Instant, end: Instant, outcome: Outcome) {
        let ns = end
            .saturating_duration_since(intended)
            .as_nanos()
            .min(u128::from(u64::MAX)) as u64;
        self.record_ns(op, ns, end, outcome);
    }

    /// Back-to-back operations (a closed loop with one clock read per operation):
    /// the next one's latency runs from `t`.
    pub fn restart(&mut self, t: Instant) {
        self.last_at = self.tl.at(t);
    }

    /// Records an operation of type `op` that ended at `end` and began where the last
    /// one recorded ended (or at `restart`): one clock read and one subtraction from
    /// the start per operation.
    #[inline]
    pub fn record_next(&mut self, op: Op, end: Instant, outcome: Outcome) {
        let at = self.tl.at(end);
        let ns = at.saturating_sub(self.last_at);
        let phase = self.tl.phase();
        self.record_at(phase, op, ns, at, outcome);
    }

    /// Records an operation of `ns` nanoseconds that ended at `end`, in the current
    /// phase.
    #[inline]
    pub fn record_ns(&mut self, op: Op, ns: u64, end: Instant, outcome: Outcome) {
        let phase = self.tl.phase();
        self.record_in(phase, op, ns, end, outcome);
    }

    /// Records an operation of `ns` nanoseconds that ended at `end`, in `phase` (for
    /// operations read back from a log after the run).
    #[inline]
    pub fn record_in(&mut self, phase: u8, op: Op, ns: u64, end: Instant, outcome: Outcome) {
        let at = self.tl.at(end);
        self.record_at(phase, op, ns, at, outcome);
    }

    /// Records an operation of `ns` nanoseconds that ended `at` nanoseconds from the
    /// start, in `phase`.
    #[inline]
    fn record_at(&mut self, phase: u8, op: Op, ns: u64, at: u64, outcome: Outcome) {
        self.last_at = at;
        if at >= self.tl.closed_at.load(Ordering::Acquire) {
            return;
        }
        let phase = phase.min(2);
        if at < self.span.0 || at >= self.span.1 || phase != self.phase {
            self.flush();
            let step = u64::try_from(self.tl.interval.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1);
            self.cur = at / step;
            let lo = self.cur.saturating_mul(step);
            self.span = (lo, lo.saturating_add(step));
            self.phase = phase;
        }
        if let Some(slot) = self.cells.get_mut(op.index()) {
            slot.get_or_insert_with(Cell::coarse).record(ns, outcome);
        }
    }

    /// Adds the cells held into the timeline.
    fn flush(&mut self) {
        if self.cells.iter().all(Option::is_none) {
            return;
        }
        let mut all = self.tl.cells.lock();
        for (i, slot) in self.cells.iter_mut().enumerate() {
            let (Some(c), Some(&op)) = (slot.take(), Op::ALL.get(i)) else {
                continue;
            };
            all.entry((self.cur, self.phase, op)).or_default().add(&c);
        }
    }
}

impl Drop for Client<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// CPU time (user + system) this process has used, from `/proc/self/stat` (Linux;
/// `None` elsewhere or when it cannot be read).
pub fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields
    // after its closing parenthesis. utime and stime are fields 14 and 15.
    let rest = s.get(s.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // /proc reports in USER_HZ, which Linux fixes at 100 for user space on every
    // architecture it supports.
    Some(Duration::from_millis(ticks * 10))
}

/// Resident memory of this process in MB, from `/proc/self/status`.
pub fn rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn clients_add_up_per_interval_and_per_phase() {
        let tl = Timeline::new(Duration::from_millis(100));
        let t0 = tl.t0();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        std::thread::scope(|s| {
            for c in 0..3u64 {
                let tl = &tl;
                s.spawn(move || {
                    let mut cl = tl.client();
                    // 10 reads in interval 0, 5 in interval 2 (1 aborts), none in 1.
                    for k in 0..10 {
                        cl.record_ns(Op::Read, 1_000 * (k + 1), at(5 * k + c), Outcome::Ok);
                    }
                    for k in 0..5 {
                        let o = if k == 0 { Outcome::Abort } else { Outcome::Ok };
                        cl.record_ns(Op::Read, 2_000_000, at(200 + k), o);
                    }
                });
            }
        });
        let rows = tl.rows();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!((rows[0].ok, rows[1].ok, rows[2].ok), (30, 0, 12));
        assert_eq!(rows[2].aborts, 3);
        assert_eq!(rows[1].t_s, 0.1);
        assert!(rows[2].lat.p50 >= 1_990_000 && rows[2].lat.p50 <= 2_010_000);
        let total = tl.total(Op::Read);
        assert_eq!((total.ok, total.aborts), (42, 3));
    }

    #[test]
    fn back_to_back_operations_time_from_the_last_end() {
        let tl = Timeline::new(Duration::from_millis(100));
        let t0 = tl.t0();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        {
            let mut c = tl.client();
            c.restart(ms(10));
            c.record_next(Op::Read, ms(13), Outcome::Ok); // 3 ms
            c.record_next(Op::Read, ms(20), Outcome::Ok); // 7 ms
            c.restart(ms(50));
            c.record_next(Op::Read, ms(51), Outcome::Ok); // 1 ms
        }
        let s = tl.total(Op::Read).lat.summary();
        assert_eq!(s.count, 3);
        let near = |v: u64, want: u64| v.abs_diff(want) <= want / 100;
        assert!(near(s.max, 7_000_000), "{s:?}");
        assert!(near(s.p50, 3_000_000), "{s:?}");
    }

    #[test]
    fn nothing_is_recorded_after_the_close() {
        let tl = Timeline::new(Duration::from_millis(100));
        let t0 = tl.t0();
        let mut c = tl.client();
        c.record_ns(Op::Read, 5, Instant::now(), Outcome::Ok);
        tl.close("end");
        c.record_ns(
            Op::Read,
            5,
            Instant::now() + Duration::from_millis(1),
            Outcome::Ok,
        );
        // Read back from a log: before the close counts, after it does not.
        c.record_in(2, Op::Tpcb, 5, t0, Outcome::Ok);
        c.record_in(
            2,
            Op::Tpcb,
            5,
            Instant::now() + Duration::from_secs(1),
            Outcome::Ok,
        );
        drop(c);
        assert_eq!(tl.total(Op::Read).ok, 1);
        assert_eq!(tl.total(Op::Tpcb).ok, 1);
        assert!(tl.mark_time("end").is_some());
    }

    #[test]
    fn latency_runs_from_the_intended_start() {
        let tl = Timeline::new(Duration::from_millis(100));
        let t0 = tl.t0();
        {
            let mut c = tl.client();
            // Meant to start at 0, began late at 50 ms, ended at 51 ms: 51 ms.
            c.record(Op::Update, t0, t0 + Duration::from_millis(51), Outcome::Ok);
        }
        let p = tl.total(Op::Update).lat.summary();
        assert!((50_400_000..=51_600_000).contains(&p.max), "{p:?}");
    }

    #[test]
    fn proc_readings_are_plausible() {
        assert!(rss_mb().unwrap() > 1.0);
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(cpu_time().is_some());
    }
}
