//! `segexpand demo`: the main job, end to end, on real files.
//!
//! It creates (or reopens) a node of `--from` segments with a seeded table of `--rows`
//! rows distributed by id, starts a concurrent workload — point SELECTs, full scans that
//! check the row count and a checksum over every row, and UPDATE/INSERT/DELETE
//! transactions that keep both invariant — measures SELECT latency idle, then
//! redistributes the table to `--to` segments online (or, with `--offline`, the
//! gpexpand way: locked and rewritten) with a progress bar, flips, cleans up, retires
//! emptied segments, verifies every row and prints a summary (`--json`: one JSON
//! object on stdout).
//!
//! What the table must hold is kept in the data itself: a one-row table `demo_meta`
//! (never redistributed) records the row count, the sum of balances, the sum of ids and
//! the committed transfers, and is written in the same transactions as the rows (the
//! bulk load, which commits per batch, records an intent before each batch and the
//! result after it). A reopened demo checks the table against it before it changes
//! anything, so rows lost between runs fail the run with a message saying how many.
//!
//! Any failure stops every workload thread: the first I/O error, poisoned node or
//! corruption ends the workload (the redistribution is stopped, resumable) and the run
//! exits non-zero with that first cause; other errors are counted and the first few
//! printed.

use crate::out;
use segexpand_engine::redistribute::{BatchLimits, MoveCounts};
use segexpand_engine::verify::verify_dir;
use segexpand_engine::vfs::RealVfs;
use segexpand_engine::{
    DataDir, DirState, Error, Layout, Node, NodeOptions, Row, TableSpec, Type, Value,
};
use segexpand_redistributor::{Finish, Options, Redistributor};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most rows `--rows` may ask for.
pub const ROWS_MAX: u64 = 1_000_000_000;
/// Most mover workers `--workers` may ask for.
pub const WORKERS_MAX: u64 = 64;
/// Bounds of `--idle-s` (seconds).
pub const IDLE_S_RANGE: (f64, f64) = (0.1, 3600.0);
/// Bounds of `--max-rows-per-s`.
pub const ROWS_PER_S_RANGE: (f64, f64) = (1.0, 1e9);

/// Arguments of `segexpand demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Data directory (created when missing).
    #[arg(long, default_value = crate::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Remove the data directory first and start over.
    #[arg(long)]
    pub fresh: bool,
    /// Rows to load (when the table does not exist yet): 1 to 1000000000.
    #[arg(long, default_value_t = 1_000_000, value_parser = parse_rows, allow_negative_numbers = true)]
    pub rows: u64,
    /// Segments of a new node, and of the table's layout before.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub from: u16,
    /// Segments to redistribute to (if the table already has this many, it goes back to
    /// `--from`).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub to: u16,
    /// Use the offline baseline (exclusive lock, full rewrite) instead.
    #[arg(long)]
    pub offline: bool,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Mover workers: 1 to 64.
    #[arg(long, default_value_t = 2, value_parser = parse_workers, allow_negative_numbers = true)]
    pub workers: usize,
    /// Seconds of workload before the redistribution (the idle latency baseline): 0.1 to
    /// 3600.
    #[arg(long, default_value_t = 3.0, value_parser = parse_idle_s, allow_negative_numbers = true)]
    pub idle_s: f64,
    /// Throttle the mover to this many rows per second: 1 to 1e9 (no throttle when
    /// absent).
    #[arg(long, value_parser = parse_max_rows_per_s, allow_negative_numbers = true)]
    pub max_rows_per_s: Option<f64>,
}

/// A number for a message: `1e9` rather than `1000000000`.
fn num(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn parse_whole(s: &str, flag: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let refuse = || format!("{flag} must be a whole number between {lo} and {hi}, got {s}");
    let v: u64 = s.trim().parse().map_err(|_| refuse())?;
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(refuse())
    }
}

fn parse_number(s: &str, flag: &str, (lo, hi): (f64, f64), unit: &str) -> Result<f64, String> {
    let refuse = || {
        format!(
            "{flag} must be a number between {} and {}{unit}, got {s}",
            num(lo),
            num(hi)
        )
    };
    let v: f64 = s.trim().parse().map_err(|_| refuse())?;
    // NaN fails the range test too; so do infinities.
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(refuse())
    }
}

fn parse_rows(s: &str) -> Result<u64, String> {
    parse_whole(s, "--rows", 1, ROWS_MAX)
}

fn parse_workers(s: &str) -> Result<usize, String> {
    parse_whole(s, "--workers", 1, WORKERS_MAX).map(|v| v as usize)
}

fn parse_idle_s(s: &str) -> Result<f64, String> {
    parse_number(s, "--idle-s", IDLE_S_RANGE, " seconds")
}

fn parse_max_rows_per_s(s: &str) -> Result<f64, String> {
    parse_number(s, "--max-rows-per-s", ROWS_PER_S_RANGE, " rows per second")
}

const TABLE: &str = "demo_accounts";
/// The one-row table of what `TABLE` must hold (see the module comment).
const META: &str = "demo_meta";
/// Rows per bulk-load batch (small in unit tests, which load several batches).
const BATCH_ROWS: u64 = if cfg!(test) { 1_000 } else { 100_000 };
/// The DML thread vacuums `META` after this many transactions: each one adds a version
/// of its row, and a key lookup visits every version its index still lists.
const META_VACUUM_EVERY: u64 = 256;
/// Workload messages printed before the rest are only counted.
const MESSAGES_MAX: u64 = 5;

fn balance(id: u64) -> i64 {
    (id.wrapping_mul(7919) % 100_000) as i64
}

fn row(id: u64) -> Row {
    // About 100 bytes: id, balance, and a deterministic 70-character note.
    let note: String = (0..70)
        .map(|i| (b'a' + ((id + i) % 26) as u8) as char)
        .collect();
    vec![
        Value::Int8(id as i64),
        Value::Int8(balance(id)),
        Value::Text(note),
    ]
}

fn bad(m: impl Into<String>) -> Error {
    Error::InvalidArgument(m.into())
}

fn int(r: &[Value], i: usize) -> i64 {
    r.get(i).and_then(Value::as_int).unwrap_or(i64::MIN)
}

/// Prints to stdout unless the summary is JSON (stdout then holds only the object). A
/// closed stdout (`| head -1`) ends the printing, not the run.
macro_rules! say {
    ($a:expr, $($t:tt)*) => {
        if $a.json {
            out::err_line(format_args!($($t)*))
        } else {
            out::line(format_args!($($t)*))
        }
    };
}

/// The row of `META`: what `TABLE` must hold, kept in the same transactions as the rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Meta {
    /// Rows the load was asked for (`--rows` of the run that created the table).
    requested: i64,
    /// Rows loaded, and recorded here, so far.
    loaded: i64,
    /// End of the load batch in flight (`loaded` when none): its rows are ids
    /// `loaded..loading_to`, committed or not.
    loading_to: i64,
    /// Rows the table must hold.
    rows: i64,
    /// Sum of the balances (transfers keep it).
    balance_sum: i64,
    /// Sum of the ids (wrapping; a DELETE + INSERT under a new id changes it).
    id_sum: i64,
    /// Committed DML transactions (transfers), over every run.
    transfers: i64,
    /// The next id a replaced row gets.
    next_id: i64,
}

/// The columns of `META` after its key `id` (always 0), in `Meta`'s order.
const META_COLUMNS: [&str; 8] = [
    "rows_requested",
    "rows_loaded",
    "loading_to",
    "rows",
    "balance_sum",
    "id_sum",
    "transfers",
    "next_id",
];

impl Meta {
    fn to_row(self) -> Row {
        [
            0,
            self.requested,
            self.loaded,
            self.loading_to,
            self.rows,
            self.balance_sum,
            self.id_sum,
            self.transfers,
            self.next_id,
        ]
        .into_iter()
        .map(Value::Int8)
        .collect()
    }

    fn from_row(r: &[Value]) -> Option<Meta> {
        if r.len() != META_COLUMNS.len() + 1 || int(r, 0) != 0 {
            return None;
        }
        let f = |i: usize| r.get(i).and_then(Value::as_int);
        Some(Meta {
            requested: f(1)?,
            loaded: f(2)?,
            loading_to: f(3)?,
            rows: f(4)?,
            balance_sum: f(5)?,
            id_sum: f(6)?,
            transfers: f(7)?,
            next_id: f(8)?,
        })
    }

    /// The meta row once ids `self.loaded..end` are loaded.
    fn loaded_through(self, end: i64) -> Meta {
        let (mut b, mut i) = (self.balance_sum, self.id_sum);
        for id in self.loaded.max(0)..end.max(0) {
            b = b.wrapping_add(balance(id as u64));
            i = i.wrapping_add(id);
        }
        Meta {
            loaded: end,
            loading_to: end,
            rows: self.rows + (end - self.loaded),
            balance_sum: b,
            id_sum: i,
            next_id: self.next_id.max(end),
            ..self
        }
    }
}

/// What a scan of `TABLE` found.
#[derive(Debug, Default)]
struct Observed {
    /// Every id, sorted (duplicates kept).
    ids: Vec<i64>,
    balance_sum: i64,
    id_sum: i64,
}

impl Observed {
    fn rows(&self) -> i64 {
        self.ids.len() as i64
    }
    fn matches(&self, m: &Meta) -> bool {
        self.rows() == m.rows && self.balance_sum == m.balance_sum && self.id_sum == m.id_sum
    }
    /// What differs from `m`, for a message.
    fn differences(&self, m: &Meta) -> String {
        let mut d = Vec::new();
        let (have, want) = (self.rows(), m.rows);
        if have < want {
            d.push(format!(
                "{} rows lost: demo_accounts holds {have} rows, {want} were committed",
                want - have
            ));
        } else if have > want {
            d.push(format!(
                "{} rows more than were committed: demo_accounts holds {have} rows, {want} \
                 were committed",
                have - want
            ));
        }
        if self.balance_sum != m.balance_sum {
            d.push(format!(
                "the sum of balances is {}, {} was committed",
                self.balance_sum, m.balance_sum
            ));
        }
        if self.id_sum != m.id_sum && have == want {
            d.push(format!(
                "the rows' ids are not the committed ones (id sum {}, expected {})",
                self.id_sum, m.id_sum
            ));
        }
        d.join("; ")
    }
}

fn scan_table(tx: &mut segexpand_engine::Txn) -> Result<Observed, Error> {
    let mut o = Observed::default();
    tx.scan_with(TABLE, |r| {
        let id = int(r, 0);
        o.ids.push(id);
        o.balance_sum = o.balance_sum.wrapping_add(int(r, 1));
        o.id_sum = o.id_sum.wrapping_add(id);
    })?;
    o.ids.sort_unstable();
    Ok(o)
}

/// The `META` row, read in `tx`: exactly one well-formed row, or an error saying what
/// is there instead.
fn read_meta(tx: &mut segexpand_engine::Txn) -> Result<Option<Meta>, Error> {
    let rows = tx.scan(META, None)?;
    match rows.as_slice() {
        [] => Ok(None),
        [r] => Meta::from_row(r).map(Some).ok_or_else(|| {
            bad(format!(
                "{META} holds a row that is not a demo_meta row ({r:?}): cannot check what \
                 the earlier runs committed; nothing was changed (start over with --fresh)"
            ))
        }),
        more => Err(bad(format!(
            "{META} holds {} rows, it must hold one: cannot check what the earlier runs \
             committed; nothing was changed (start over with --fresh)",
            more.len()
        ))),
    }
}

/// What the node holds, checked against `META` before anything changes.
#[derive(Debug)]
enum Found {
    /// No demo table yet: a new node, or an earlier run stopped before its load (`meta`
    /// is that run's row, if it wrote one).
    Empty { meta: Option<Meta> },
    /// A load that an earlier run did not finish: the table holds exactly the first
    /// `meta.loaded` of `meta.requested` rows. `caught_up` when the batch in flight had
    /// committed and `meta` was advanced past it (and must be written).
    Loading { meta: Meta, caught_up: bool },
    /// Everything loaded, and the table holds what `meta` says.
    Ready { meta: Meta, seen: Observed },
}

/// Reads `META` and scans `TABLE` once (every block of it: a corrupt page fails here,
/// before anything changed) and checks one against the other.
fn inspect(node: &Arc<Node>) -> Result<Found, Error> {
    let has = |t: &str| match node.table_def(t) {
        Ok(_) => Ok(true),
        Err(Error::NoSuchTable(_)) => Ok(false),
        Err(e) => Err(e),
    };
    let (has_meta, has_table) = (has(META)?, has(TABLE)?);
    if !has_meta {
        if has_table {
            return Err(bad(format!(
                "table {TABLE} exists but {META}, the record of what it must hold, does \
                 not (a directory of an older segexpand, or {META} was dropped): the demo \
                 cannot check it; nothing was changed (start over with --fresh)"
            )));
        }
        return Ok(Found::Empty { meta: None });
    }
    let mut tx = node.begin()?;
    let meta = read_meta(&mut tx)?;
    if !has_table {
        tx.rollback()?;
        return match meta {
            Some(m) if m.loaded > 0 || m.rows > 0 => Err(bad(format!(
                "{META} says {} rows were loaded into {TABLE}, but the table does not \
                 exist: it was dropped; nothing was changed (start over with --fresh)",
                m.loaded
            ))),
            meta => Ok(Found::Empty { meta }),
        };
    }
    let Some(meta) = meta else {
        return Err(bad(format!(
            "table {TABLE} exists but {META} has no row: the record of what the table \
             must hold is lost; nothing was changed (start over with --fresh)"
        )));
    };
    let seen = scan_table(&mut tx)?;
    tx.rollback()?;
    let lost = |m: &Meta| {
        bad(format!(
            "the data directory does not hold what earlier runs committed: {} (checked \
             against {META}, written in the same transactions); the directory was damaged \
             or changed outside segexpand. Nothing was changed (run `segexpand verify`, or \
             start over with --fresh)",
            seen.differences(m)
        ))
    };
    let complete = meta.loaded >= meta.requested;
    if seen.matches(&meta) {
        return Ok(if complete {
            Found::Ready { meta, seen }
        } else {
            Found::Loading {
                meta,
                caught_up: false,
            }
        });
    }
    if !complete && meta.loading_to > meta.loaded {
        // The batch in flight committed but the run stopped before recording it.
        let after = meta.loaded_through(meta.loading_to);
        if seen.matches(&after) {
            return Ok(Found::Loading {
                meta: after,
                caught_up: true,
            });
        }
    }
    Err(lost(&meta))
}

/// Writes the meta row in a transaction of its own.
fn write_meta(node: &Arc<Node>, m: Meta) -> Result<(), Error> {
    let mut tx = node.begin()?;
    let n = tx.update(META, &[Value::Int8(0)], |_| m.to_row())?;
    if n != 1 {
        return Err(bad(format!(
            "the {META} row is missing (update found {n} rows)"
        )));
    }
    tx.commit()
}

/// The workload's shared state.
struct Load {
    stop: AtomicBool,
    /// 0 idle, 1 during the redistribution, 2 after.
    phase: AtomicU8,
    select_errors: AtomicU64,
    dml_errors: AtomicU64,
    /// DML transactions that did not find a row they were sure to find.
    dml_rows_missing: AtomicU64,
    scan_mismatches: AtomicU64,
    scans: AtomicU64,
    dml_txns: AtomicU64,
    /// SELECT latencies (ns) per phase.
    lat: [parking_lot::Mutex<Vec<u64>>; 3],
    /// The failure that stopped the workload (I/O, a poisoned node, corruption, a
    /// panic): the first one, the run's exit cause.
    fatal: parking_lot::Mutex<Option<Error>>,
    /// Messages so far (the first `MESSAGES_MAX` are printed, the rest counted).
    messages: AtomicU64,
    sink: Box<dyn Fn(fmt::Arguments<'_>) + Send + Sync>,
}

impl Load {
    fn new(sink: Box<dyn Fn(fmt::Arguments<'_>) + Send + Sync>) -> Self {
        Self {
            stop: AtomicBool::new(false),
            phase: AtomicU8::new(0),
            select_errors: AtomicU64::new(0),
            dml_errors: AtomicU64::new(0),
            dml_rows_missing: AtomicU64::new(0),
            scan_mismatches: AtomicU64::new(0),
            scans: AtomicU64::new(0),
            dml_txns: AtomicU64::new(0),
            lat: Default::default(),
            fatal: parking_lot::Mutex::new(None),
            messages: AtomicU64::new(0),
            sink,
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Prints a workload message, unless `MESSAGES_MAX` were printed already.
    fn note(&self, args: fmt::Arguments<'_>) {
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
    /// printed (the first few) and the caller counts it.
    fn error(&self, what: &str, e: Error) {
        if matches!(
            e,
            Error::Io { .. } | Error::Poisoned(_) | Error::Corruption { .. }
        ) {
            self.fail(e);
        } else {
            self.note(format_args!("{what} failed: {e}"));
        }
    }

    /// Messages not printed.
    fn unprinted(&self) -> u64 {
        self.messages
            .load(Ordering::Relaxed)
            .saturating_sub(MESSAGES_MAX)
    }
}

/// Sets a flag when dropped: on every way out of a scope, a panic included.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Sleeps `d`, waking early when the workload stopped.
fn sleep_unless_stopped(load: &Load, d: Duration) {
    let end = Instant::now() + d;
    while !load.stopped() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// The `p` quantile of sorted nanosecond latencies, in µs (0 when empty).
fn percentile(v: &[u64], p: f64) -> String {
    let i = (v.len().saturating_sub(1) as f64 * p).round() as usize;
    format!("{:.1}", v.get(i).copied().map_or(0.0, |ns| ns as f64 / 1e3))
}

/// What the run starts from, checked against `META`.
struct Start {
    meta: Meta,
    /// Every id, sorted.
    ids: Vec<i64>,
}

/// Refuses what the arguments alone show to be pointless, before the directory is
/// touched: `--from` equal to `--to` on a directory without a node (or with `--fresh`)
/// has nothing to redistribute.
fn check_args(a: &DemoArgs) -> Result<(), Error> {
    if a.from != a.to {
        return Ok(());
    }
    let new = a.fresh
        || matches!(
            segexpand_engine::datadir::inspect(&RealVfs, &a.dir)?,
            DirState::Missing | DirState::Empty | DirState::CreateInterrupted
        );
    if new {
        return Err(bad(format!(
            "--from and --to are both {}: a new table would have nothing to redistribute; \
             nothing was changed (pick another --to)",
            a.to
        )));
    }
    Ok(())
}

/// Runs the demo.
pub fn run(a: &DemoArgs) -> Result<(), Error> {
    check_args(a)?;
    // The directory is locked before anything in it is read or changed; a second demo
    // (or a server) on it fails here, and nothing is touched.
    let dd = DataDir::lock(Arc::new(RealVfs), &a.dir, true)?;
    if a.fresh {
        // Only a segexpand directory is wiped, and only the files it made.
        let w = dd.wipe()?;
        if w.files_removed > 0 {
            say!(
                a,
                "--fresh: removed the {} files of the node in {}",
                w.files_removed,
                a.dir.display()
            );
        }
    }
    let opts = NodeOptions::default();
    let node = match dd.state()? {
        DirState::Empty | DirState::CreateInterrupted => {
            say!(
                a,
                "creating a node of {} segments in {}",
                a.from,
                a.dir.display()
            );
            Node::create_in(dd, a.from, opts)?
        }
        _ => {
            say!(
                a,
                "reopening {} (recovery runs if it was not shut down cleanly)",
                a.dir.display()
            );
            // Refuses, naming what is there, anything that is not a node.
            Node::open_in(dd, opts)?
        }
    };
    // First the check of what earlier runs committed (one read of the whole table,
    // before anything changes), then the plan, then the changes.
    let found = inspect(&node)?;
    let (from, to) = plan(a, &node)?;
    let start = prepare(a, &node, found)?;
    if node.table_def(TABLE)?.redistribution.is_some() {
        say!(
            a,
            "an earlier run was interrupted while redistributing: finishing it first"
        );
        let r = Redistributor::attach(node.clone(), TABLE, Options::default())?;
        r.run()?;
        r.cleanup()?;
    }
    let def = node.table_def(TABLE)?;
    if def.layout.segments != from {
        return Err(bad(format!(
            "the table has {} segments after finishing the earlier redistribution, {from} \
             were expected",
            def.layout.segments
        )));
    }
    while (node.segments().len() as u16) < to {
        let c = node.add_new_segment()?;
        say!(a, "added segment {c}");
    }
    say!(
        a,
        "{} rows in {from} segments (as {META} records: {} transfers committed so far); \
         redistributing to {to} {} under a workload of point SELECTs, checking scans and \
         UPDATE/INSERT/DELETE transactions",
        start.ids.len(),
        start.meta.transfers,
        if a.offline {
            "OFFLINE (locked, full rewrite)"
        } else {
            "online"
        }
    );

    let load = Load::new(Box::new(out::err_line));
    let target = Layout {
        segments: to,
        ..def.layout.clone()
    };
    let mut summary = Summary::default();
    let live = parking_lot::Mutex::new(start.ids.clone());
    let ran = with_workload(&node, &load, &start, &live, || {
        // `--idle-s` is checked at parse time (0.1 to 3600 s); the clamp and the
        // fallback keep the conversion from panicking whatever `DemoArgs` holds.
        let (lo, hi) = IDLE_S_RANGE;
        let idle =
            Duration::try_from_secs_f64(a.idle_s.clamp(lo, hi)).unwrap_or(Duration::from_secs(3));
        sleep_unless_stopped(&load, idle);
        if load.stopped() {
            return Err(bad("the workload stopped before the redistribution"));
        }
        load.phase.store(1, Ordering::Release);
        let r = redistribute(a, &node, target.clone(), &mut summary, &load);
        load.phase.store(2, Ordering::Release);
        sleep_unless_stopped(&load, Duration::from_millis(300));
        r
    });
    if load.unprinted() > 0 {
        out::err_line(format_args!(
            "{} more workload messages were not printed",
            load.unprinted()
        ));
    }
    ran?;
    finish(
        a,
        node,
        &load,
        &summary,
        &start,
        live.into_inner(),
        (from, to),
    )
}

/// The table's segments now (after an interrupted redistribution finishes) and the
/// segments to go to; refuses, before anything changes, when they are the same.
fn plan(a: &DemoArgs, node: &Arc<Node>) -> Result<(u16, u16), Error> {
    let from = match node.table_def(TABLE) {
        Ok(def) => def.write_layout().0.segments,
        Err(Error::NoSuchTable(_)) => a.from.min(node.segments().len() as u16),
        Err(e) => return Err(e),
    };
    let to = if from == a.to { a.from } else { a.to };
    if from == to {
        return Err(bad(format!(
            "the table already has {to} segments: nothing to redistribute, nothing was \
             changed (use --to)"
        )));
    }
    Ok((from, to))
}

/// Creates the tables and loads (or finishes loading) the rows, recording each batch in
/// `META`; returns the checked starting state.
fn prepare(a: &DemoArgs, node: &Arc<Node>, found: Found) -> Result<Start, Error> {
    let meta = match found {
        Found::Ready { meta, seen } => {
            return Ok(Start {
                meta,
                ids: seen.ids,
            })
        }
        Found::Loading { meta, caught_up } => {
            if caught_up {
                write_meta(node, meta)?;
            }
            say!(
                a,
                "an earlier run was interrupted while loading: {} of {} rows are in the \
                 table (checked against {META}){}",
                meta.loaded,
                meta.requested,
                if meta.loaded < meta.requested {
                    "; loading the rest"
                } else {
                    ""
                }
            );
            meta
        }
        Found::Empty { meta } => {
            let meta = match meta {
                Some(m) => m,
                None => create_meta(a, node)?,
            };
            node.create_table(
                &TableSpec::new(TABLE)
                    .not_null("id", Type::Int8)
                    .not_null("balance", Type::Int8)
                    .column("note", Type::Text)
                    .distributed_by(&["id"])
                    .segments(a.from.min(node.segments().len() as u16)),
            )?;
            meta
        }
    };
    load_rows(a, node, meta)?;
    match inspect(node)? {
        Found::Ready { meta, seen } => Ok(Start {
            meta,
            ids: seen.ids,
        }),
        other => Err(bad(format!(
            "after the load the table is not what {META} says: {other:?}"
        ))),
    }
}

/// Creates `META` (on segment 0 only; it is never redistributed) and its row.
fn create_meta(a: &DemoArgs, node: &Arc<Node>) -> Result<Meta, Error> {
    let mut spec = TableSpec::new(META).not_null("id", Type::Int8);
    for c in META_COLUMNS {
        spec = spec.not_null(c, Type::Int8);
    }
    match node.create_table(&spec.distributed_by(&["id"]).segments(1)) {
        // An earlier run made the table and stopped before its row (`inspect` found
        // the table without a row and without `TABLE`).
        Ok(_) | Err(Error::TableExists(_)) => {}
        Err(e) => return Err(e),
    }
    let meta = Meta {
        requested: a.rows as i64,
        next_id: a.rows as i64,
        ..Meta::default()
    };
    let mut tx = node.begin()?;
    tx.insert(META, meta.to_row())?;
    tx.commit()?;
    Ok(meta)
}

/// Bulk-loads ids `meta.loaded..meta.requested` in batches. Each batch is one
/// transaction of its own: `META` records the batch before it (`loading_to`) and its
/// result after it, so a reopen tells a batch that committed from one that did not.
fn load_rows(a: &DemoArgs, node: &Arc<Node>, mut meta: Meta) -> Result<(), Error> {
    if meta.loaded >= meta.requested {
        return Ok(());
    }
    let start = Instant::now();
    let first = meta.loaded;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    while meta.loaded < meta.requested {
        let end = (meta.loaded + BATCH_ROWS as i64).min(meta.requested);
        write_meta(
            node,
            Meta {
                loading_to: end,
                ..meta
            },
        )?;
        node.bulk_load(TABLE, (meta.loaded as u64..end as u64).map(row))?;
        meta = meta.loaded_through(end);
        write_meta(node, meta)?;
        if tty {
            out::err_text(format_args!(
                "\rloading: {}/{} rows",
                meta.loaded, meta.requested
            ));
        }
    }
    let s = start.elapsed().as_secs_f64();
    if tty {
        out::err_line(format_args!(""));
    }
    let n = meta.loaded - first;
    say!(
        a,
        "bulk-loaded {n} rows in {s:.2} s ({:.0} rows/s, durable after each {BATCH_ROWS})",
        n as f64 / s.max(1e-9)
    );
    Ok(())
}

/// Runs the workload threads while `main` runs on this thread, and stops them on every
/// way out: `main` returning or panicking, a workload thread failing (the first I/O
/// error, poisoned node or corruption) or panicking. Returns the workload's first fatal
/// error if there was one (unless it only echoes `main`'s), else `main`'s result.
fn with_workload<T>(
    node: &Arc<Node>,
    load: &Load,
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
    match (load.fatal.lock().take(), r) {
        // `main` met the root cause (say a failed write) and the workload its echo.
        (Some(Error::Poisoned(_)), Err(m @ (Error::Io { .. } | Error::Corruption { .. }))) => {
            Err(m)
        }
        (Some(e), _) => Err(e),
        (None, r) => r,
    }
}

#[derive(Default)]
struct Summary {
    counts: MoveCounts,
    mover_s: f64,
    redistribute_s: f64,
    start_stall_us: u64,
    flip_stall_us: u64,
    flip_attempts: u32,
}

fn redistribute(
    a: &DemoArgs,
    node: &Arc<Node>,
    target: Layout,
    out: &mut Summary,
    load: &Load,
) -> Result<(), Error> {
    let t0 = Instant::now();
    if a.offline {
        let r = node.redistribute_offline(TABLE, target, &BatchLimits::default())?;
        out.counts = r.counts;
        out.mover_s = r.locked_us as f64 / 1e6;
        out.redistribute_s = t0.elapsed().as_secs_f64();
        // Every DML statement was held for the whole rewrite.
        out.flip_stall_us = r.locked_us;
        out.start_stall_us = r.locked_us;
        out.flip_attempts = 1;
        return Ok(());
    }
    let opts = Options {
        workers: a.workers,
        rows_per_s: a.max_rows_per_s,
        ..Options::default()
    };
    let r = Redistributor::start(node.clone(), TABLE, target, opts)?;
    let h = r.handle();
    let done = AtomicBool::new(false);
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(250));
                if load.stopped() {
                    // The workload failed: stop the mover (the table stays
                    // redistributing; a later run resumes).
                    h.stop();
                }
                let p = h.progress();
                let frac = p.blocks_done as f64 / (p.blocks_total as f64).max(1.0);
                let bar: String = (0..40)
                    .map(|i| if (i as f64) < frac * 40.0 { '#' } else { '.' })
                    .collect();
                let line = format!(
                    "[{bar}] {:5.1}%  blocks {}/{}  moved {}  flipped {}  skipped {}",
                    frac * 100.0,
                    p.blocks_done,
                    p.blocks_total,
                    p.counts.rows_moved,
                    p.counts.rows_flipped,
                    p.counts.rows_skipped
                );
                if tty {
                    out::err_text(format_args!("\r{line}"));
                } else {
                    out::err_line(format_args!("{line}"));
                }
            }
            if tty {
                out::err_line(format_args!(""));
            }
        });
        // The progress thread ends however the run ends (a panic included).
        let _done = SetOnDrop(&done);
        r.run()
    })?;
    if outcome.finish != Finish::Flipped {
        return Err(bad(format!(
            "redistribution ended {:?} (the table is left redistributing; the next run \
             finishes it)",
            outcome.finish
        )));
    }
    let p = outcome.progress;
    out.counts = p.counts;
    out.mover_s = outcome.mover_s;
    out.redistribute_s = t0.elapsed().as_secs_f64();
    out.start_stall_us = r.start_report().map_or(0, |s| s.dml_stall_us_max);
    let flip = outcome.flip.unwrap_or_default();
    out.flip_stall_us = flip.dml_stall_us_max;
    out.flip_attempts = flip.attempts;
    Ok(())
}

/// Point SELECTs by random id, timed per phase.
fn point_selects(node: &Arc<Node>, load: &Load, id_range: u64) {
    let mut x = 0x9e37_79b9_u64;
    let mut local: [Vec<u64>; 3] = Default::default();
    while !load.stopped() {
        let mut tx = match node.begin() {
            Ok(tx) => tx,
            Err(e) => {
                load.select_errors.fetch_add(1, Ordering::Relaxed);
                load.error("a point SELECT", e);
                continue;
            }
        };
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % id_range.max(1)) as i64;
            let phase = usize::from(load.phase.load(Ordering::Acquire)).min(2);
            let t = Instant::now();
            let r = tx.get(TABLE, &[Value::Int8(id)]);
            let ns = t.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
            if let Err(e) = r {
                load.select_errors.fetch_add(1, Ordering::Relaxed);
                load.error("a point SELECT", e);
                break;
            }
            if let Some(v) = local.get_mut(phase) {
                v.push(ns);
            }
        }
        let _ = tx.rollback();
        for (i, v) in local.iter_mut().enumerate() {
            if let Some(m) = load.lat.get(i) {
                m.lock().append(v);
            }
        }
    }
}

fn scans(node: &Arc<Node>, load: &Load, rows: u64, sum0: i64) {
    while !load.stopped() {
        let r = (|| -> Result<(u64, i64), Error> {
            let mut tx = node.begin()?;
            let mut sum = 0i64;
            let n = tx.scan_with(TABLE, |r| sum = sum.wrapping_add(int(r, 1)))?;
            tx.rollback()?;
            Ok((n, sum))
        })();
        match r {
            Ok((n, sum)) => {
                if n != rows || sum != sum0 {
                    load.note(format_args!(
                        "scan saw {n} rows with checksum {sum}; expected {rows} and {sum0}"
                    ));
                    load.scan_mismatches.fetch_add(1, Ordering::Relaxed);
                }
                load.scans.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                load.select_errors.fetch_add(1, Ordering::Relaxed);
                load.error("a checking scan", e);
            }
        }
    }
}

/// How a DML transaction ended.
enum DmlEnd {
    /// Committed; a row replaced (index in `live`, new id) if it was one.
    Committed(Option<(usize, i64)>),
    /// Rolled back: a row it was sure to find (a live id) was not found by its key.
    Missing(i64),
    /// Nothing to do (no rows).
    Idle,
}

/// Transfers between two rows; every fourth transaction also replaces a row by a new
/// id carrying its balance (DELETE + INSERT). Row count and balance sum stay constant.
/// Each transaction also updates `META` (transfers, id sum, next id).
fn dml(node: &Arc<Node>, load: &Load, live: &parking_lot::Mutex<Vec<i64>>, next_id: &AtomicU64) {
    let mut x = 0x2545_f491_u64;
    let mut n = 0u64;
    while !load.stopped() {
        n += 1;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (i, j, amount) = (rnd(), rnd(), (rnd() % 100) as i64);
        let r = transfer(node, live, next_id, (i, j, amount), n.is_multiple_of(4));
        match r {
            Ok(DmlEnd::Committed(replaced)) => {
                if let Some((ia, new_id)) = replaced {
                    if let Some(v) = live.lock().get_mut(ia) {
                        *v = new_id;
                    }
                }
                load.dml_txns.fetch_add(1, Ordering::Relaxed);
            }
            Ok(DmlEnd::Idle) => {}
            Ok(DmlEnd::Missing(id)) => {
                load.dml_rows_missing.fetch_add(1, Ordering::Relaxed);
                load.note(format_args!(
                    "DML transaction rolled back: row {id} of {TABLE} was not found by its key"
                ));
            }
            Err(e) => {
                load.dml_errors.fetch_add(1, Ordering::Relaxed);
                load.error("a DML transaction", e);
            }
        }
        if n.is_multiple_of(META_VACUUM_EVERY) {
            if let Err(e) = node.vacuum(META) {
                load.error("vacuum of demo_meta", e);
            }
        }
    }
}

fn transfer(
    node: &Arc<Node>,
    live: &parking_lot::Mutex<Vec<i64>>,
    next_id: &AtomicU64,
    (i, j, amount): (u64, u64, i64),
    replace: bool,
) -> Result<DmlEnd, Error> {
    let ids = live.lock();
    let len = ids.len().max(1) as u64;
    let (ia, ib) = ((i % len) as usize, (j % len) as usize);
    let (a, b) = (ids.get(ia).copied(), ids.get(ib).copied());
    drop(ids);
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(DmlEnd::Idle);
    };
    let mut tx = node.begin()?;
    let add = |d: i64| {
        move |r: &[Value]| {
            let mut r = r.to_vec();
            if let Some(v) = r.get_mut(1) {
                *v = Value::Int8(v.as_int().unwrap_or(0) + d);
            }
            r
        }
    };
    if a != b {
        for (id, d) in [(a, -amount), (b, amount)] {
            if tx.update(TABLE, &[Value::Int8(id)], add(d))? != 1 {
                tx.rollback()?;
                return Ok(DmlEnd::Missing(id));
            }
        }
    }
    let mut replaced = None;
    let mut id_delta = 0i64;
    if replace {
        let old = tx.get(TABLE, &[Value::Int8(a)])?;
        let Some(r) = old.first() else {
            tx.rollback()?;
            return Ok(DmlEnd::Missing(a));
        };
        let new_id = next_id.fetch_add(1, Ordering::AcqRel) as i64;
        tx.delete(TABLE, &[Value::Int8(a)])?;
        let mut r = r.clone();
        if let Some(v) = r.get_mut(0) {
            *v = Value::Int8(new_id);
        }
        tx.insert(TABLE, r)?;
        replaced = Some((ia, new_id));
        id_delta = new_id.wrapping_sub(a);
    }
    let next = next_id.load(Ordering::Acquire) as i64;
    let n = tx.update(META, &[Value::Int8(0)], |r| match Meta::from_row(r) {
        Some(m) => Meta {
            transfers: m.transfers + 1,
            id_sum: m.id_sum.wrapping_add(id_delta),
            next_id: m.next_id.max(next),
            ..m
        }
        .to_row(),
        // Left as it is: the final check then finds the transfers do not add up.
        None => r.to_vec(),
    })?;
    if n != 1 {
        tx.rollback()?;
        return Err(Error::Corruption {
            location: segexpand_engine::Location::file(META),
            kind: segexpand_engine::CorruptionKind::Invalid(format!(
                "the {META} row is missing (an update by its key found {n} rows)"
            )),
        });
    }
    tx.commit()?;
    Ok(DmlEnd::Committed(replaced))
}

/// What the final verification found.
struct Verified {
    found: u64,
    dup: u64,
    lost: u64,
    by_key_missing: u64,
    seen: Observed,
    meta: Meta,
}

/// Every expected id: found once by the scan (lost and duplicated counted) and once by
/// its key; the whole table against `META`, read in the same transaction.
fn verify_rows(node: &Arc<Node>, expected: &[i64]) -> Result<Verified, Error> {
    let mut tx = node.begin()?;
    let meta = read_meta(&mut tx)?.ok_or_else(|| bad(format!("the {META} row is gone")))?;
    let seen = scan_table(&mut tx)?;
    let mut count: HashMap<i64, u32> = HashMap::with_capacity(expected.len());
    for id in &seen.ids {
        *count.entry(*id).or_default() += 1;
    }
    let dup = count
        .values()
        .filter(|c| **c > 1)
        .map(|c| u64::from(*c - 1))
        .sum();
    let lost_by_id = expected.iter().filter(|id| !count.contains_key(id)).count() as u64;
    // Rows the meta row counts that no id accounts for (lost rows whose ids this run
    // did not know).
    let lost_by_count = (meta.rows.max(0) as u64).saturating_sub(count.len() as u64);
    let mut by_key_missing = 0;
    for id in expected {
        if tx.get(TABLE, &[Value::Int8(*id)])?.len() != 1 {
            by_key_missing += 1;
        }
    }
    tx.rollback()?;
    Ok(Verified {
        found: seen.ids.len() as u64,
        dup,
        lost: lost_by_id.max(lost_by_count),
        by_key_missing,
        seen,
        meta,
    })
}

/// Cleanup and retirement, then every row verified (against the ids of this run and
/// against `META`), the directory verified, and the summary.
fn finish(
    a: &DemoArgs,
    node: Arc<Node>,
    load: &Load,
    p: &Summary,
    start: &Start,
    expected: Vec<i64>,
    (from, to): (u16, u16),
) -> Result<(), Error> {
    let reclaimed = node.cleanup_redistribution(TABLE)?;
    while node.segments().len() as u16 > to {
        match node.retire_segment() {
            Ok(c) => say!(a, "retired segment {c}"),
            Err(e) => {
                say!(a, "segment not retired yet: {e}");
                break;
            }
        }
    }
    let v = verify_rows(&node, &expected)?;
    let placement = node.check_placement(TABLE)?;
    node.close()?;
    drop(node);
    let report = verify_dir(&RealVfs, &a.dir)?;

    let lat = |i: usize| {
        let mut v = load
            .lat
            .get(i)
            .map(|m| m.lock().clone())
            .unwrap_or_default();
        v.sort_unstable();
        v
    };
    let (idle, during) = (lat(0), lat(1));
    let expected_fraction = f64::from(from.abs_diff(to)) / f64::from(from.max(to));
    let c = &p.counts;
    let handled = (c.rows_moved + c.rows_flipped) as f64;
    let sum0 = start.meta.balance_sum;
    let checksum_ok = v.seen.balance_sum == sum0 && v.meta.balance_sum == sum0;
    let transfers = v.meta.transfers - start.meta.transfers;
    let dml_txns = load.dml_txns.load(Ordering::Acquire);
    let meta_ok =
        v.seen.matches(&v.meta) && v.meta.rows == start.meta.rows && transfers == dml_txns as i64;
    let fields: Vec<(&str, String)> = vec![
        (
            "mode",
            format!("\"{}\"", if a.offline { "offline" } else { "online" }),
        ),
        ("from_segments", from.to_string()),
        ("to_segments", to.to_string()),
        ("rows_expected", v.meta.rows.to_string()),
        ("rows_found", v.found.to_string()),
        ("rows_lost", v.lost.to_string()),
        ("rows_duplicated", v.dup.to_string()),
        ("rows_not_found_by_key", v.by_key_missing.to_string()),
        ("placement_problems", placement.len().to_string()),
        ("checksum_ok", checksum_ok.to_string()),
        ("meta_ok", meta_ok.to_string()),
        ("rows_moved", c.rows_relocated.to_string()),
        ("rows_rewritten", c.rows_moved.to_string()),
        ("rows_flipped_in_place", c.rows_flipped.to_string()),
        (
            "moved_fraction",
            format!("{:.4}", c.rows_relocated as f64 / handled.max(1.0)),
        ),
        ("moved_fraction_expected", format!("{expected_fraction:.4}")),
        ("select_count_idle", idle.len().to_string()),
        ("select_p50_us_idle", percentile(&idle, 0.5)),
        ("select_p99_us_idle", percentile(&idle, 0.99)),
        ("select_count_during", during.len().to_string()),
        ("select_p50_us_during", percentile(&during, 0.5)),
        ("select_p99_us_during", percentile(&during, 0.99)),
        ("select_max_us_during", percentile(&during, 1.0)),
        (
            "select_errors",
            load.select_errors.load(Ordering::Acquire).to_string(),
        ),
        (
            "scan_mismatches",
            load.scan_mismatches.load(Ordering::Acquire).to_string(),
        ),
        ("scans", load.scans.load(Ordering::Acquire).to_string()),
        ("dml_transactions", dml_txns.to_string()),
        ("transfers_committed", transfers.to_string()),
        ("transfers_total", v.meta.transfers.to_string()),
        (
            "dml_errors",
            load.dml_errors.load(Ordering::Acquire).to_string(),
        ),
        (
            "dml_rows_missing",
            load.dml_rows_missing.load(Ordering::Acquire).to_string(),
        ),
        ("start_dml_stall_us", p.start_stall_us.to_string()),
        ("flip_dml_stall_us_max", p.flip_stall_us.to_string()),
        ("flip_attempts", p.flip_attempts.to_string()),
        (
            "mover_rows_per_s",
            format!("{:.0}", handled / p.mover_s.max(1e-9)),
        ),
        (
            "mover_mb_per_s",
            format!("{:.2}", c.bytes_moved as f64 / 1e6 / p.mover_s.max(1e-9)),
        ),
        ("mover_workers", a.workers.to_string()),
        (
            "stay_bytes_written_ratio",
            format!(
                "{:.4}",
                c.flip_wal_bytes as f64 / (c.bytes_flipped as f64).max(1.0)
            ),
        ),
        ("redistribute_s", format!("{:.3}", p.redistribute_s)),
        ("cleanup_bytes_reclaimed", reclaimed.bytes_freed.to_string()),
        (
            "cleanup_versions_removed",
            reclaimed.versions_removed.to_string(),
        ),
        ("verify_problems", report.problems.len().to_string()),
    ];
    if a.json {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        out::line(format_args!("{{{}}}", body.join(", ")));
    } else {
        out::line(format_args!("summary:"));
        for (k, v) in &fields {
            out::line(format_args!("  {k:<28} {}", v.trim_matches('"')));
        }
    }
    let ok = v.lost == 0
        && v.dup == 0
        && v.by_key_missing == 0
        && placement.is_empty()
        && checksum_ok
        && meta_ok
        && report.problems.is_empty()
        && load.scan_mismatches.load(Ordering::Acquire) == 0
        && load.dml_rows_missing.load(Ordering::Acquire) == 0;
    if !ok {
        let mut why = Vec::new();
        if v.lost > 0 {
            why.push(format!("{} rows lost", v.lost));
        }
        if !meta_ok {
            why.push(format!(
                "the table does not match {META} ({}; transfers committed {transfers}, \
                 acknowledged {dml_txns})",
                v.seen.differences(&v.meta)
            ));
        }
        if why.is_empty() {
            why.push("see the summary".into());
        }
        return Err(bad(format!("demo check failed: {}", why.join("; "))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use segexpand_engine::vfs::{FailKind, OpClass, SimVfs};

    fn args(rows: u64) -> DemoArgs {
        DemoArgs {
            dir: PathBuf::from("/d"),
            fresh: false,
            rows,
            from: 2,
            to: 3,
            offline: false,
            json: true,
            workers: 1,
            idle_s: 0.1,
            max_rows_per_s: None,
        }
    }

    fn sim_node(vfs: &SimVfs) -> Arc<Node> {
        Node::create(
            Arc::new(vfs.clone()),
            std::path::Path::new("/d"),
            2,
            NodeOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn the_meta_row_catches_lost_rows_and_an_interrupted_load() {
        let vfs = SimVfs::new();
        let node = sim_node(&vfs);
        let a = args(2_500);
        let start = prepare(&a, &node, inspect(&node).unwrap()).unwrap();
        assert_eq!(start.ids.len(), 2_500);
        assert_eq!(start.meta.rows, 2_500);
        assert!(matches!(inspect(&node).unwrap(), Found::Ready { .. }));

        // A load stopped after its first batch: the meta row says 1000 of 2500.
        let m = start.meta;
        let partial = Meta {
            requested: m.requested,
            next_id: m.requested,
            ..Meta::default()
        }
        .loaded_through(1_000);
        let mut tx = node.begin().unwrap();
        tx.delete_where(TABLE, &|r| int(r, 0) >= 1_000).unwrap();
        tx.update(META, &[Value::Int8(0)], |_| partial.to_row())
            .unwrap();
        tx.commit().unwrap();
        let Found::Loading { meta, caught_up } = inspect(&node).unwrap() else {
            panic!("an interrupted load");
        };
        assert_eq!((meta.loaded, caught_up), (1_000, false));
        // ... and one whose second batch committed before the meta row recorded it.
        write_meta(
            &node,
            Meta {
                loading_to: 2_000,
                ..partial
            },
        )
        .unwrap();
        // (Stopped before that batch committed: the table is the first 1000 rows.)
        let Found::Loading { meta, caught_up } = inspect(&node).unwrap() else {
            panic!("an interrupted load");
        };
        assert_eq!((meta.loaded, caught_up), (1_000, false));
        node.bulk_load(TABLE, (1_000..2_000).map(row)).unwrap();
        let Found::Loading { meta, caught_up } = inspect(&node).unwrap() else {
            panic!("an interrupted load");
        };
        assert_eq!((meta.loaded, caught_up), (2_000, true));
        let start = prepare(&a, &node, Found::Loading { meta, caught_up }).unwrap();
        assert_eq!(start.meta, m);

        // Rows deleted behind the demo's back: refused, naming how many.
        let mut tx = node.begin().unwrap();
        let n = tx.delete_where(TABLE, &|r| int(r, 0) % 500 == 7).unwrap();
        tx.commit().unwrap();
        assert_eq!(n, 5);
        let e = inspect(&node).unwrap_err().to_string();
        assert!(e.contains("5 rows lost"), "{e}");
        assert!(e.contains("Nothing was changed"), "{e}");
    }

    #[test]
    fn the_workload_stops_at_the_first_failed_write_and_prints_little() {
        let vfs = SimVfs::new();
        let node = sim_node(&vfs);
        let a = args(2_000);
        let start = prepare(&a, &node, inspect(&node).unwrap()).unwrap();
        let lines = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
        let l2 = lines.clone();
        let load = Load::new(Box::new(move |m| l2.lock().push(m.to_string())));
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
        let load = Load::new(Box::new(|_| {}));
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

    #[test]
    fn bad_numbers_are_refused_with_their_bounds() {
        assert_eq!(
            parse_idle_s("inf").unwrap_err(),
            "--idle-s must be a number between 0.1 and 3600 seconds, got inf"
        );
        for s in ["1e30", "NaN", "-1", "0", "0.05", "x"] {
            assert!(parse_idle_s(s).is_err(), "{s}");
        }
        assert_eq!(parse_idle_s("0.2"), Ok(0.2));
        assert!(parse_max_rows_per_s("1e-300")
            .unwrap_err()
            .contains("between 1 and 1e9 rows per second"));
        for s in ["0", "inf", "-5", "2e9", "nan"] {
            assert!(parse_max_rows_per_s(s).is_err(), "{s}");
        }
        assert_eq!(parse_max_rows_per_s("1e9"), Ok(1e9));
        assert_eq!(
            parse_workers("100000000").unwrap_err(),
            "--workers must be a whole number between 1 and 64, got 100000000"
        );
        assert!(parse_workers("0").is_err());
        assert_eq!(parse_workers("64"), Ok(64));
        assert!(parse_rows("0").is_err());
        assert!(parse_rows("1000000001").is_err());
        assert_eq!(parse_rows("1000000000"), Ok(ROWS_MAX));
    }
}
