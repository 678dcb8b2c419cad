//! The failpoint matrix: every named failpoint of the redistribution protocol × {error,
//! crash} × several seeds. Each case redistributes a table (expanding 3 → 4 segments, or
//! for the cancel failpoints, starting and then cancelling), fires the failpoint once,
//! recovers (after a crash: from the crash image, reopening the node), finishes the work
//! with DML in between, and checks: no row lost, none duplicated, every row on its right
//! segment with the right bit (`Node::check_placement`), and `verify` clean.
//!
//! `FAILPOINT_SEEDS` (default 3) sets the seeds per failpoint and action.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::failpoint::FailAction;
use segexpand_engine::redistribute::BatchLimits;
use segexpand_engine::vfs::{CrashMode, SimVfs};
use segexpand_engine::Failpoint;
use segexpand_engine::{Error, Layout, Node, NodeOptions, TableSpec, Type, Value};
use segexpand_redistributor::{Finish, Options, Redistributor};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const TABLE: &str = "fp";

fn opts() -> NodeOptions {
    NodeOptions {
        cache_pages_max: 64,
        wal_file_bytes: 256 * 1024,
        checkpoint_wal_bytes: 512 * 1024,
        ..NodeOptions::default()
    }
}

fn row(k: i64, v: i64) -> Vec<Value> {
    vec![
        Value::Int8(k),
        Value::Int8(v),
        Value::Text(format!("row {k}")),
    ]
}

fn run_opts() -> Options {
    Options {
        workers: 2,
        chunk_blocks: 2,
        batch: BatchLimits {
            rows_max: 25,
            ..BatchLimits::default()
        },
        ..Options::default()
    }
}

fn target(node: &Arc<Node>) -> Layout {
    Layout {
        segments: 4,
        ..node.table_def(TABLE).unwrap().layout
    }
}

/// Scans the table and checks it against the model, the placement invariants and
/// (when `stable_in`) that the table is stable in a layout of that many segments.
fn check(node: &Arc<Node>, model: &BTreeMap<i64, i64>, stable_in: Option<u16>, what: &str) {
    let mut tx = node.begin().unwrap();
    let mut got = BTreeMap::new();
    for r in tx.scan(TABLE, None).unwrap() {
        let k = r[0].as_int().unwrap();
        assert!(
            got.insert(k, r[1].as_int().unwrap()).is_none(),
            "{what}: row {k} seen twice"
        );
    }
    tx.rollback().unwrap();
    let lost: Vec<&i64> = model.keys().filter(|k| !got.contains_key(k)).collect();
    assert!(lost.is_empty(), "{what}: rows lost: {lost:?}");
    assert_eq!(&got, model, "{what}: contents differ");
    let problems = node.check_placement(TABLE).unwrap();
    assert!(problems.is_empty(), "{what}: {problems:#?}");
    if let Some(n) = stable_in {
        let def = node.table_def(TABLE).unwrap();
        assert!(def.redistribution.is_none(), "{what}: still redistributing");
        assert_eq!(def.layout.segments, n, "{what}: wrong layout");
    }
}

/// Some DML between steps: updates, deletes and inserts, applied to the model too.
fn dml(node: &Arc<Node>, model: &mut BTreeMap<i64, i64>, round: i64) {
    let mut tx = node.begin().unwrap();
    for k in (round..model.len() as i64).step_by(17).take(10) {
        if model.contains_key(&k) {
            tx.update(TABLE, &[Value::Int8(k)], |r| {
                row(k, r[1].as_int().unwrap() + 1)
            })
            .unwrap();
            *model.get_mut(&k).unwrap() += 1;
        }
    }
    let del = round * 7 + 3;
    if model.remove(&del).is_some() {
        assert_eq!(tx.delete(TABLE, &[Value::Int8(del)]).unwrap(), 1);
    }
    let new = 100_000 + round;
    tx.insert(TABLE, row(new, round)).unwrap();
    model.insert(new, round);
    tx.commit().unwrap();
}

/// Runs the scenario up to and including the step that fails.
fn scenario(node: &Arc<Node>, cancel: bool, model: &mut BTreeMap<i64, i64>) -> Result<(), Error> {
    if node.table_def(TABLE)?.redistribution.is_none() {
        let t = target(node);
        Redistributor::start(node.clone(), TABLE, t, run_opts())?;
    }
    dml(node, model, 1);
    let r = Redistributor::attach(node.clone(), TABLE, run_opts())?;
    if cancel {
        // Move part of the table, then cancel.
        let work = node.redistribution_work(TABLE)?;
        for (seg, b) in work.iter().take(work.len() / 2) {
            node.move_blocks(TABLE, *seg, &[*b], &BatchLimits::default())?;
        }
        r.handle().cancel();
        let out = r.run()?;
        assert_eq!(out.finish, Finish::Cancelled);
    } else {
        let out = r.run()?;
        assert_eq!(out.finish, Finish::Flipped);
        r.cleanup()?;
    }
    Ok(())
}

/// Finishes whatever state recovery left: resumes a redistribution (a cancelled one
/// completes its cancel), or starts it again if the start never became durable.
fn finish(node: &Arc<Node>, cancel: bool, model: &mut BTreeMap<i64, i64>) {
    dml(node, model, 2);
    let def = node.table_def(TABLE).unwrap();
    match &def.redistribution {
        Some(_) => {
            let r = Redistributor::attach(node.clone(), TABLE, run_opts()).unwrap();
            if cancel {
                r.handle().cancel();
            }
            let out = r.run().unwrap();
            assert_ne!(out.finish, Finish::Stopped);
            node.cleanup_redistribution(TABLE).unwrap();
        }
        None if def.layout.segments == 3 && !cancel => {
            let r = Redistributor::start(node.clone(), TABLE, target(node), run_opts()).unwrap();
            assert_eq!(r.run().unwrap().finish, Finish::Flipped);
        }
        None => {}
    }
}

fn case(point: Failpoint, action: FailAction, seed: u64) {
    let name = point.name();
    let what = format!("{name} {action:?} seed {seed}");
    let cancel = name.starts_with("cancel.");
    let vfs = SimVfs::new();
    let node = Node::create(Arc::new(vfs.clone()), Path::new("/db"), 3, opts()).unwrap();
    node.create_table(
        &TableSpec::new(TABLE)
            .not_null("id", Type::Int8)
            .not_null("v", Type::Int8)
            .column("note", Type::Text)
            .distributed_by(&["id"]),
    )
    .unwrap();
    let rows = 400 + 97 * seed as i64;
    let mut model: BTreeMap<i64, i64> = (0..rows).map(|k| (k, k * 3)).collect();
    node.bulk_load(TABLE, model.iter().map(|(k, v)| row(*k, *v)))
        .unwrap();
    node.add_new_segment().unwrap();
    let skip = if name.starts_with("move.") {
        seed % 3
    } else {
        0
    };
    node.arm_failpoint(point, action, skip);
    let before = model.clone();
    let r = scenario(&node, cancel, &mut model);
    match &r {
        Err(Error::Failpoint(p)) if *p == point => {}
        other => panic!("{what}: the failpoint did not fire: {other:?}"),
    }
    node.clear_failpoints();
    let (node, vfs) = if node.is_poisoned() {
        let mode = if seed.is_multiple_of(2) {
            CrashMode::DropUnsynced
        } else {
            CrashMode::KeepUnsyncedTearLast { sectors: 3 }
        };
        let image = vfs.crash_image(mode);
        drop(node);
        let node = Node::open(Arc::new(image.clone()), Path::new("/db"), opts())
            .unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
        // The DML of the failed run may or may not have committed durably; the row
        // versions tell which (their values are all known to the model or one behind).
        resync(&node, &mut model, &before, &what);
        (node, image)
    } else {
        (node, vfs)
    };
    check(&node, &model, None, &format!("{what}, after the failure"));
    finish(&node, cancel, &mut model);
    let layout = if cancel { 3 } else { 4 };
    check(&node, &model, Some(layout), &format!("{what}, finished"));
    // Recovery from the finished state, twice, changes nothing.
    node.close().unwrap();
    drop(node);
    for _ in 0..2 {
        let image = vfs.crash_image(CrashMode::DropUnsynced);
        let node = Node::open(Arc::new(image.clone()), Path::new("/db"), opts()).unwrap();
        check(&node, &model, Some(layout), &format!("{what}, reopened"));
        node.close().unwrap();
        drop(node); // verify takes the directory's lock shared
        let report = segexpand_engine::verify::verify_dir(&image, Path::new("/db")).unwrap();
        assert!(report.problems.is_empty(), "{what}: {:?}", report.problems);
    }
}

/// After a crash the scenario's DML is durable or not as a whole: the table must equal
/// the model after it or the model before it; the model follows.
fn resync(
    node: &Arc<Node>,
    model: &mut BTreeMap<i64, i64>,
    before: &BTreeMap<i64, i64>,
    what: &str,
) {
    let mut tx = node.begin().unwrap();
    let got: BTreeMap<i64, i64> = tx
        .scan(TABLE, None)
        .unwrap()
        .iter()
        .map(|r| (r[0].as_int().unwrap(), r[1].as_int().unwrap()))
        .collect();
    tx.rollback().unwrap();
    if &got != model {
        assert_eq!(
            &got, before,
            "{what}: after recovery the table is neither before nor after the DML"
        );
        *model = before.clone();
    }
}

#[test]
fn every_failpoint_error_and_crash() {
    let seeds: u64 = std::env::var("FAILPOINT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut cases = 0;
    for &point in Failpoint::ALL {
        for action in [FailAction::Error, FailAction::Crash] {
            for seed in 0..seeds {
                case(point, action, seed);
                cases += 1;
            }
        }
    }
    println!(
        "{cases} failpoint cases passed ({} failpoints x 2 actions x {seeds} seeds)",
        Failpoint::ALL.len()
    );
}
