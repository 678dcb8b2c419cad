//! The research harness's run: one scenario ([`Config`]), end to end, on real files.
//! `segexpand demo` is the run with the default scenario.
//!
//! It creates (or reopens) a node of `from` segments with a seeded table of rows
//! distributed by id and starts the **checking workload** — point SELECTs, full scans
//! that check the row count and a checksum over every row, and UPDATE/INSERT/DELETE
//! transfer transactions that keep both invariant — which runs in every scenario, so
//! every run is also a correctness test. Beside it runs the scenario's workload: YCSB
//! on `usertable` in-process (closed or open loop), or pgbench tpcb-like over the wire
//! against this node served in-process. After `idle_s` of workload (the baseline) every
//! table is redistributed to `to` segments — online (jump hashing), offline (locked and
//! rewritten, gpexpand's way) or online over legacy modulo placement (the
//! full-reshuffle baseline) — then cleaned up and emptied segments retired; every row
//! is verified and the directory checked. The whole time, a [`Timeline`] records every
//! operation per interval and per phase, and samples the mover and the process.
//!
//! What the checking table must hold is kept in the data itself: a one-row table
//! `demo_meta` (never redistributed) records the row count, the sum of balances, the
//! sum of ids and the committed transfers, and is written in the same transactions as
//! the rows (the bulk load, which commits per batch, records an intent before each
//! batch and the result after it). A reopened directory is checked against it before
//! anything changes, so rows lost between runs fail the run with a message saying how
//! many.
//!
//! Any failure stops every workload thread: the first I/O error, poisoned node or
//! corruption ends the workload (the redistribution is stopped, resumable) and the run
//! fails with that first cause; other errors are counted and the first few printed. A
//! broken invariant fails the run too ([`Finished::verdict`]).
//!
//! Modules:
//!
//! - `config`: the scenario, its bounds and checks;
//! - `schema`: the checking tables and their rows, `demo_accounts` and `demo_meta`;
//! - `check`: the node against `demo_meta`, before anything changes and at the end;
//! - `setup`: the checking tables created and bulk-loaded (or a load finished);
//! - `ycsb` and `pgbench`: the other workloads, their tables and clients;
//! - `redistribution`: the plan, an interrupted redistribution finished, the move
//!   (online, offline or modulo), the mover samples, cleanup and retirement;
//! - `workload` and `threads`: the checking workload's state and threads;
//! - `report`: the summary's fields and the verdict;
//! - `output`: the run directory's files (scenario, summary JSON, CSVs);
//! - `figures`: its plots, drawn from the CSVs as written, and `report.md`;
//! - `driver`: presets, sweeps, and a scenario run into its directory.

// The engine's API as the harness uses it, named in this one place.
use segexpand_engine::inspect as inspect_dir;
use segexpand_engine::redistribute::{BatchLimits, MoveCounts};
use segexpand_engine::verify::verify_dir;
use segexpand_engine::vfs::RealVfs;
#[cfg(test)]
use segexpand_engine::vfs::{FailKind, OpClass, SimVfs};
use segexpand_engine::{
    CorruptionKind, DataDir, DirState, Error, Layout, Location, Node, NodeOptions, Placement,
    PruneStats, Row, TableSpec, Txn, Type, Value,
};
use segexpand_redistributor::{Finish, Handle, Options, Redistributor};

use crate::timeline::Timeline;
use std::sync::atomic::{AtomicBool, Ordering};
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

mod check;
pub mod config;
pub mod driver;
mod figures;
pub mod output;
mod pgbench;
mod redistribution;
mod report;
mod schema;
mod setup;
mod threads;
mod workload;
mod ycsb;

pub use config::Config;
pub use report::{print, Field};

use config::{Method, WorkloadKind};
use redistribution::Summary;
use schema::{META, TABLE};
use setup::Start;
use workload::{sleep_unless_stopped, with_workload, Load};

/// Set when the process is asked to stop (the harness binary's SIGINT/SIGTERM
/// handler): the workload stops, the movers stop (the tables stay redistributing), and
/// the run unwinds, stopping its servers and removing what it made.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The error of an interrupted run.
fn interrupted() -> Error {
    bad("interrupted (SIGINT or SIGTERM): the workload and the movers were stopped")
}

/// An error of the harness's own: a refusal, or a check that failed.
fn bad(m: impl Into<String>) -> Error {
    Error::InvalidArgument(m.into())
}

/// What a run leaves: its summary, its timeline and its verdict.
pub struct Finished {
    /// The summary's fields, in order.
    pub fields: Vec<Field>,
    /// Everything recorded over time.
    pub timeline: Timeline,
    /// Ok when every check passed (no row lost, duplicated or unfindable, the checking
    /// invariant held in every scan and at the end, the directory verifies), else why.
    pub verdict: Result<(), Error>,
}

/// Runs one scenario on `a.dir` (which must be set: the caller picks the directory).
/// An error is a run that could not be carried out; a run that was carried out and
/// found a problem returns `Finished` with a failed verdict.
pub fn run(a: &Config) -> Result<Finished, Error> {
    a.check()?;
    let node = open_node(a)?;
    // First the check of what earlier runs committed (one read of the whole table,
    // before anything changes), then the plan, then the changes.
    let found = check::inspect(&node)?;
    let (from, to) = redistribution::plan(a, &node)?;
    let start = setup::prepare(a, &node, found)?;
    let extra = match a.workload {
        WorkloadKind::Checking => Extra::None,
        WorkloadKind::Ycsb => Extra::Ycsb(ycsb::prepare(a, &node)?),
        WorkloadKind::Pgbench => Extra::Pgbench(pgbench::prepare(a, &node)?),
    };
    let tables = extra.tables();
    let layout = redistribution::finish_interrupted(a, &node, from, &tables)?;
    redistribution::add_segments(a, &node, to)?;
    announce(a, &start, (from, to));
    let target = Layout {
        segments: to,
        ..layout
    };
    let timeline = Timeline::new(Duration::from_millis(a.interval_ms));
    let ran = under_workload(a, &node, &start, &extra, &tables, target, &timeline);
    if INTERRUPTED.load(Ordering::Acquire) {
        return Err(interrupted());
    }
    let ran = ran?;
    let reclaimed = redistribution::clean_up(a, &node, to, &tables)?;
    timeline.mark("cleanup");
    extra.finish(a, &timeline)?;
    let end = check::at_end(node, &ran.live, data_dir(a), &tables)?;
    let (fields, verdict) = report::report(a, &ran, &start, &end, &reclaimed, (from, to));
    let mut fields = fields;
    fields.extend(report::timeline_fields(&timeline));
    let verdict = verdict.and(report::workload_verdict(a, &timeline));
    Ok(Finished {
        fields,
        timeline,
        verdict,
    })
}

/// The data directory (the caller sets `a.dir`; the demo's default otherwise).
fn data_dir(a: &Config) -> &std::path::Path {
    a.dir
        .as_deref()
        .unwrap_or(std::path::Path::new("segexpand-data"))
}

/// The scenario's workload besides the checking one.
enum Extra {
    None,
    Ycsb(ycsb::Ycsb),
    Pgbench(pgbench::Pgbench),
}

impl Extra {
    /// Every table the reconfiguration moves: the checking table first.
    fn tables(&self) -> Vec<String> {
        let mut t = vec![TABLE.to_string()];
        match self {
            Extra::None => {}
            Extra::Ycsb(_) => t.push(ycsb::TABLE.to_string()),
            // pgbench's tables in PostgreSQL are not this node's.
            Extra::Pgbench(p) if p.in_process() => {
                t.extend(pgbench::TABLES.iter().map(|s| s.to_string()))
            }
            Extra::Pgbench(_) => {}
        }
        t
    }

    /// Starts its clients in `s`; they run until `stop` (or the workload's stop).
    fn spawn<'s>(
        &'s self,
        s: &'s std::thread::Scope<'s, '_>,
        node: &'s Arc<Node>,
        load: &'s Load,
        tl: &'s Timeline,
        stop: &'s AtomicBool,
    ) {
        match self {
            Extra::None => {}
            Extra::Ycsb(y) => y.spawn(s, node, load, tl, stop),
            Extra::Pgbench(p) => p.spawn(s, load, stop),
        }
    }

    /// After the run: pgbench's log read into the timeline, its server stopped.
    fn finish(&self, a: &Config, tl: &Timeline) -> Result<(), Error> {
        match self {
            Extra::Pgbench(p) => p.finish(a, tl),
            _ => Ok(()),
        }
    }
}

/// Locks the data directory, wipes it for `fresh`, and creates or reopens the node.
fn open_node(a: &Config) -> Result<Arc<Node>, Error> {
    let dir = data_dir(a);
    // The directory is locked before anything in it is read or changed; a second run
    // (or a server) on it fails here, and nothing is touched.
    let dd = DataDir::lock(Arc::new(RealVfs), dir, true)?;
    if a.fresh {
        // Only a segexpand directory is wiped, and only the files it made.
        let w = dd.wipe()?;
        if w.files_removed > 0 {
            say!(
                a,
                "--fresh: removed the {} files of the node in {}",
                w.files_removed,
                dir.display()
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
                dir.display()
            );
            Node::create_in(dd, a.from, opts)
        }
        _ => {
            say!(
                a,
                "reopening {} (recovery runs if it was not shut down cleanly)",
                dir.display()
            );
            // Refuses, naming what is there, anything that is not a node.
            Node::open_in(dd, opts)
        }
    }
}

/// Says what is about to happen: the rows, the segments, the method and workload.
fn announce(a: &Config, start: &Start, (from, to): (u16, u16)) {
    let method = match a.method {
        Method::Online => "online",
        Method::Offline => "OFFLINE (locked, full rewrite)",
        Method::Modulo => "online over modulo placement (full reshuffle)",
    };
    let workload = match a.workload {
        WorkloadKind::Checking => String::new(),
        WorkloadKind::Ycsb => format!(
            " and YCSB-{} ({:?}) on {} rows with {} clients",
            a.mix, a.distribution, a.rows, a.clients
        ),
        WorkloadKind::Pgbench => format!(
            " and pgbench tpcb-like (scale {}, {} clients) over the wire",
            a.pgbench_scale, a.clients
        ),
    };
    say!(
        a,
        "{} rows in {from} segments (as {META} records: {} transfers committed so far); \
         redistributing to {to} {method} under a workload of point SELECTs, checking scans \
         and UPDATE/INSERT/DELETE transactions{workload}",
        start.ids.len(),
        start.meta.transfers,
    );
}

/// What the run under the workload left.
struct Ran<'t> {
    /// The checking workload's counters.
    load: Load<'t>,
    /// What the redistribution measured.
    moved: Summary,
    /// The live ids (the DML replaced some), every one of which must be found.
    live: Vec<i64>,
}

/// Runs the workloads, and in them the baseline and the redistribution; says how many
/// workload messages were not printed.
fn under_workload<'t>(
    a: &Config,
    node: &Arc<Node>,
    start: &Start,
    extra: &Extra,
    tables: &[String],
    target: Layout,
    tl: &'t Timeline,
) -> Result<Ran<'t>, Error> {
    let load = Load::new(Box::new(crate::out::err_line), tl);
    load.light
        .store(a.workload != WorkloadKind::Checking, Ordering::Relaxed);
    let mut moved = Summary::default();
    let live = parking_lot::Mutex::new(start.ids.clone());
    let ran = with_workload(node, &load, start, &live, || {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            extra.spawn(s, node, &load, tl, &stop);
            let r = idle_then_redistribute(a, node, tables, target, &mut moved, &load);
            stop.store(true, Ordering::Release);
            r
        })
    });
    if load.unprinted() > 0 {
        crate::out::err_line(format_args!(
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

/// The baseline (`idle_s` of workload alone), the redistribution, then `after_s` of
/// workload after it; the timeline's phase tells which latencies are which.
fn idle_then_redistribute(
    a: &Config,
    node: &Arc<Node>,
    tables: &[String],
    target: Layout,
    moved: &mut Summary,
    load: &Load,
) -> Result<(), Error> {
    // The bounds are checked (0.1 to 3600 s); the fallback keeps the conversion from
    // panicking whatever `Config` holds.
    let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(3));
    sleep_unless_stopped(load, secs(a.idle_s));
    if load.stopped() {
        return Err(bad("the workload stopped before the redistribution"));
    }
    let tl = load.timeline;
    tl.set_phase(1);
    tl.mark("start");
    if a.inject_fault.is_some() {
        load.inject_unbalanced.store(true, Ordering::Release);
    }
    let r = redistribution::redistribute(a, node, tables, target, moved, load);
    tl.mark("flip");
    tl.set_phase(2);
    sleep_unless_stopped(load, secs(a.after_s));
    tl.close("end");
    r
}

/// What the unit tests share: a small run's configuration and a node on a simulated
/// disk.
#[cfg(test)]
mod fixtures {
    use super::*;
    use std::path::PathBuf;

    pub(super) fn args(rows: u64) -> Config {
        Config {
            dir: Some(PathBuf::from("/d")),
            rows,
            from: 2,
            to: 3,
            json: true,
            workers: 1,
            idle_s: 0.1,
            ..Config::default()
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
