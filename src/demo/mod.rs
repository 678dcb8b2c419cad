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
//!
//! The run is a short sequence of phases (`run`, below); each piece lives in a module
//! of its own:
//!
//! - `args`: the flags, their bounds, and the check made before the directory is
//!   touched;
//! - `schema`: the two tables and their rows, `demo_accounts` and `demo_meta`;
//! - `check`: the node against `demo_meta`, before anything changes and at the end;
//! - `setup`: the tables created and the rows bulk-loaded (or a load finished);
//! - `redistribution`: the plan, an interrupted redistribution finished, the move
//!   (online with a progress bar, or offline), cleanup and retirement;
//! - `workload` and `threads`: the concurrent workload, its state and its threads;
//! - `report`: the summary and the verdict.

// The engine's API as the demo uses it, named in this one place: the submodules take
// these names from here (`use super::...`), so a path re-pointed in the engine is an
// edit of this block only.
use segexpand_engine::inspect as inspect_dir;
use segexpand_engine::redistribute::{BatchLimits, MoveCounts};
use segexpand_engine::verify::verify_dir;
use segexpand_engine::vfs::RealVfs;
#[cfg(test)]
use segexpand_engine::vfs::{FailKind, OpClass, SimVfs};
use segexpand_engine::{
    CorruptionKind, DataDir, DirState, Error, Layout, Location, Node, NodeOptions, PruneStats, Row,
    TableSpec, Txn, Type, Value,
};
use segexpand_redistributor::{Finish, Handle, Options, Progress, Redistributor};

use crate::out;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Prints to stdout unless the summary is JSON (stdout then holds only the object). A
/// closed stdout (`| head -1`) ends the printing, not the run.
macro_rules! say {
    ($a:expr, $($t:tt)*) => {
        if $a.json {
            $crate::out::err_line(format_args!($($t)*))
        } else {
            $crate::out::line(format_args!($($t)*))
        }
    };
}

mod args;
mod check;
mod redistribution;
mod report;
mod schema;
mod setup;
mod threads;
mod workload;

pub use args::DemoArgs;

use args::IDLE_S_RANGE;
use redistribution::Summary;
use schema::META;
use setup::Start;
use workload::{sleep_unless_stopped, with_workload, Load};

/// An error of the demo's own: a refusal, or a check that failed.
fn bad(m: impl Into<String>) -> Error {
    Error::InvalidArgument(m.into())
}

/// Runs the demo.
pub fn run(a: &DemoArgs) -> Result<(), Error> {
    args::check_args(a)?;
    let node = open_node(a)?;
    // First the check of what earlier runs committed (one read of the whole table,
    // before anything changes), then the plan, then the changes.
    let found = check::inspect(&node)?;
    let (from, to) = redistribution::plan(a, &node)?;
    let start = setup::prepare(a, &node, found)?;
    let layout = redistribution::finish_interrupted(a, &node, from)?;
    redistribution::add_segments(a, &node, to)?;
    announce(a, &start, (from, to));
    let target = Layout {
        segments: to,
        ..layout
    };
    let ran = under_workload(a, &node, &start, target)?;
    let reclaimed = redistribution::clean_up(a, &node, to)?;
    let end = check::at_end(node, &ran.live, &a.dir)?;
    report::report(a, &ran, &start, &end, &reclaimed, (from, to))
}

/// Locks the data directory, wipes it for `--fresh`, and creates or reopens the node.
fn open_node(a: &DemoArgs) -> Result<Arc<Node>, Error> {
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
    match dd.state()? {
        DirState::Empty | DirState::CreateInterrupted => {
            say!(
                a,
                "creating a node of {} segments in {}",
                a.from,
                a.dir.display()
            );
            Node::create_in(dd, a.from, opts)
        }
        _ => {
            say!(
                a,
                "reopening {} (recovery runs if it was not shut down cleanly)",
                a.dir.display()
            );
            // Refuses, naming what is there, anything that is not a node.
            Node::open_in(dd, opts)
        }
    }
}

/// Says what is about to happen: the rows, the segments, online or offline.
fn announce(a: &DemoArgs, start: &Start, (from, to): (u16, u16)) {
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
}

/// What the run under the workload left.
struct Ran {
    /// The workload's counters and latencies.
    load: Load,
    /// What the redistribution measured.
    moved: Summary,
    /// The live ids (the DML replaced some), every one of which must be found.
    live: Vec<i64>,
}

/// Runs the workload, and in it the idle baseline and the redistribution; says how
/// many workload messages were not printed.
fn under_workload(
    a: &DemoArgs,
    node: &Arc<Node>,
    start: &Start,
    target: Layout,
) -> Result<Ran, Error> {
    let load = Load::new(Box::new(out::err_line));
    let mut moved = Summary::default();
    let live = parking_lot::Mutex::new(start.ids.clone());
    let ran = with_workload(node, &load, start, &live, || {
        idle_then_redistribute(a, node, target, &mut moved, &load)
    });
    if load.unprinted() > 0 {
        out::err_line(format_args!(
            "{} more workload messages were not printed",
            load.unprinted()
        ));
    }
    ran?;
    Ok(Ran {
        load,
        moved,
        live: live.into_inner(),
    })
}

/// The idle baseline (`--idle-s` of workload alone), the redistribution, then a moment
/// of workload after it; the workload's phase tells which latencies are which.
fn idle_then_redistribute(
    a: &DemoArgs,
    node: &Arc<Node>,
    target: Layout,
    moved: &mut Summary,
    load: &Load,
) -> Result<(), Error> {
    // `--idle-s` is checked at parse time (0.1 to 3600 s); the clamp and the
    // fallback keep the conversion from panicking whatever `DemoArgs` holds.
    let (lo, hi) = IDLE_S_RANGE;
    let idle =
        Duration::try_from_secs_f64(a.idle_s.clamp(lo, hi)).unwrap_or(Duration::from_secs(3));
    sleep_unless_stopped(load, idle);
    if load.stopped() {
        return Err(bad("the workload stopped before the redistribution"));
    }
    load.phase.store(1, Ordering::Release);
    let r = redistribution::redistribute(a, node, target, moved, load);
    load.phase.store(2, Ordering::Release);
    sleep_unless_stopped(load, Duration::from_millis(300));
    r
}

/// What the unit tests share: a small run's arguments and a node on a simulated disk.
#[cfg(test)]
mod fixtures {
    use super::*;
    use std::path::PathBuf;

    pub(super) fn args(rows: u64) -> DemoArgs {
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

    pub(super) fn sim_node(vfs: &SimVfs) -> Arc<Node> {
        Node::create(
            Arc::new(vfs.clone()),
            std::path::Path::new("/d"),
            2,
            NodeOptions::default(),
        )
        .unwrap()
    }
}
