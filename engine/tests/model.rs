//! Model-based test of the table API and online redistribution: random sequences of
//! begin, insert, update (also of the key, which moves the row to another segment),
//! delete, get, scan, commit, rollback, bulk load, truncate, vacuum, checkpoint and
//! crash-and-reopen, interleaved with redistribution steps — start (expand, shrink or
//! key change), mover batch, pause, resume, cancel, flip, cleanup, retiring a segment —
//! on an in-memory file system, checked step by step against a reference model and
//! against the placement invariants (`Node::check_placement`).
//!
//! `MODEL_CASES` (default 1000) sets the number of cases; a failure prints the seed and
//! the operations so far (`MODEL_SEED=<seed>` re-runs one case).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::Rng;
use segexpand_engine::redistribute::{BatchLimits, GateOptions};
use segexpand_engine::vfs::{CrashMode, SimVfs};
use segexpand_engine::{Error, Node, NodeOptions, Row, TableSpec, Txn, Type, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const TABLE: &str = "m";
const KEYS: i64 = 24;
const SLOTS: usize = 3;

type Val = (i64, Option<String>);

/// One open transaction of the model: its engine handle and its pending writes.
struct MTxn {
    tx: Txn,
    writes: BTreeMap<i64, Option<Val>>,
}

#[derive(Default)]
struct Model {
    committed: BTreeMap<i64, Val>,
    /// The mover is paused: no batches until resumed.
    paused: bool,
}

impl Model {
    fn view(&self, t: &MTxn) -> BTreeMap<i64, Val> {
        let mut v = self.committed.clone();
        for (k, w) in &t.writes {
            match w {
                Some(val) => v.insert(*k, val.clone()),
                None => v.remove(k),
            };
        }
        v
    }
}

/// Rows carry their key twice: as `id` (int8) and as `id2` (text), so that a key change
/// between the two moves rows while a lookup can always name the current key.
fn row_of(k: i64, (v, s): &Val) -> Row {
    vec![
        Value::Int8(k),
        Value::Int8(*v),
        s.clone().map_or(Value::Null, Value::Text),
        Value::Text(format!("k{k}")),
    ]
}

/// The lookup key for `k` under the table's current distribution key.
fn key_of(node: &Arc<Node>, k: i64) -> Vec<Value> {
    if node.table_def(TABLE).unwrap().layout.key == [0] {
        vec![Value::Int8(k)]
    } else {
        vec![Value::Text(format!("k{k}"))]
    }
}

fn val_of(row: &[Value]) -> (i64, Val) {
    let k = row[0].as_int().unwrap();
    let v = row[1].as_int().unwrap();
    let s = match &row[2] {
        Value::Null => None,
        Value::Text(s) => Some(s.clone()),
        other => panic!("unexpected {other:?}"),
    };
    (k, (v, s))
}

fn opts() -> NodeOptions {
    NodeOptions {
        cache_pages_max: 16,
        wal_file_bytes: 40 * 1024,
        checkpoint_wal_bytes: 64 * 1024,
        lock_timeout: Duration::ZERO,
        ..NodeOptions::default()
    }
}

fn open(vfs: &SimVfs) -> Arc<Node> {
    Node::open(Arc::new(vfs.clone()), Path::new("/db"), opts()).unwrap()
}

fn scan_all(tx: &mut Txn) -> BTreeMap<i64, Val> {
    let mut out = BTreeMap::new();
    for r in tx.scan(TABLE, None).unwrap() {
        let (k, v) = val_of(&r);
        assert!(out.insert(k, v).is_none(), "key {k} seen twice");
    }
    out
}

fn check_committed(node: &Arc<Node>, model: &Model, log: &[String]) {
    let mut tx = node.begin().unwrap();
    let got = scan_all(&mut tx);
    tx.rollback().unwrap();
    assert_eq!(
        got, model.committed,
        "committed state diverged after {log:#?}"
    );
    let problems = node.check_placement(TABLE).unwrap();
    assert!(problems.is_empty(), "{problems:#?} after {log:#?}");
}

/// A redistribution step (no transaction of the script is in a statement, so none
/// holds a layout pin). Returns false if the step did not apply.
fn redistribution_step(
    node: &Arc<Node>,
    rng: &mut Rng,
    model: &mut Model,
    log: &mut Vec<String>,
) -> bool {
    let gate = GateOptions::default();
    let def = node.table_def(TABLE).unwrap();
    if model.paused && rng.below(3) == 0 {
        model.paused = false;
        log.push("redist_resume".into());
        return true;
    }
    match (&def.redistribution, rng.below(10)) {
        (None, 0..=3) => {
            let mut target = def.layout.clone();
            let kind = match rng.below(3) {
                0 if target.segments < 5 => {
                    if node.segments().len() as u16 == target.segments {
                        node.add_new_segment().unwrap();
                        log.push("add_segment".into());
                    }
                    target.segments += 1;
                    "expand"
                }
                1 if target.segments > 1 => {
                    target.segments -= 1;
                    "shrink"
                }
                _ => {
                    target.key = if target.key == [0] { vec![3] } else { vec![0] };
                    "key_change"
                }
            };
            log.push(format!("start_{kind}"));
            log.push(format!("redist_start {target:?}"));
            node.start_redistribution(TABLE, target, &gate).unwrap();
        }
        (None, 4..=5) => {
            log.push("redist_cleanup".into());
            node.cleanup_redistribution(TABLE).unwrap();
        }
        (None, 6..=8) if (node.segments().len() as u16) > def.layout.segments => {
            log.push("retire_segment".into());
            match node.retire_segment() {
                Ok(_) => {}
                // An open transaction's snapshot may still see versions there.
                Err(Error::Redistribution(m)) if m.contains("may see") => {
                    log.push("retire_refused".into());
                }
                Err(e) => panic!("retire: {e} after {log:#?}"),
            }
        }
        (Some(_), 0..=5) if !model.paused => {
            let work = node.redistribution_work(TABLE).unwrap();
            if work.is_empty() {
                return false;
            }
            let (seg, first) = work[rng.below(work.len() as u64) as usize];
            let blocks: Vec<u32> = work
                .iter()
                .filter(|(s, b)| *s == seg && *b >= first)
                .map(|(_, b)| *b)
                .take(1 + rng.below(3) as usize)
                .collect();
            let limits = BatchLimits {
                rows_max: 1 + rng.below(40) as usize,
                ..BatchLimits::default()
            };
            log.push(format!(
                "redist_move seg {seg} blocks {blocks:?} rows {}",
                limits.rows_max
            ));
            node.move_blocks(TABLE, seg, &blocks, &limits).unwrap();
        }
        (Some(_), 6) if !model.paused => {
            model.paused = true;
            log.push("redist_pause".into());
        }
        (Some(r), 7) if !r.cancelling => {
            log.push("redist_cancel".into());
            node.cancel_redistribution(TABLE, &gate).unwrap();
        }
        (Some(_), _) => {
            let left = node.redistribution_work(TABLE).unwrap().len();
            log.push(format!("redist_flip ({left} blocks left)"));
            match node.flip_redistribution(TABLE, &gate) {
                Ok(_) => assert_eq!(left, 0, "flipped with work left after {log:#?}"),
                Err(Error::Redistribution(_)) => assert!(left > 0, "flip refused after {log:#?}"),
                Err(e) => panic!("flip: {e} after {log:#?}"),
            }
        }
        _ => return false,
    }
    true
}

/// Moves every remaining row and flips, so that a case ends stable.
fn finish_redistribution(node: &Arc<Node>, log: &mut Vec<String>) {
    if node.table_def(TABLE).unwrap().redistribution.is_none() {
        return;
    }
    for round in 0.. {
        let work = node.redistribution_work(TABLE).unwrap();
        if work.is_empty() {
            break;
        }
        // No transaction is open: every block finishes in one visit or two.
        assert!(
            round < 3,
            "the mover does not finish {work:?} after {log:#?}"
        );
        for (seg, b) in work {
            node.move_blocks(TABLE, seg, &[b], &BatchLimits::default())
                .unwrap();
        }
    }
    log.push("redist_finish".into());
    node.flip_redistribution(TABLE, &GateOptions::default())
        .unwrap();
}

/// A key no open transaction has written and that is not committed.
fn fresh_key(rng: &mut Rng, model: &Model, txns: &[Option<MTxn>]) -> Option<i64> {
    let busy = |k: i64| {
        model.committed.contains_key(&k) || txns.iter().flatten().any(|t| t.writes.contains_key(&k))
    };
    let start = rng.below(KEYS as u64) as i64;
    (0..KEYS).map(|i| (start + i) % KEYS).find(|k| !busy(*k))
}

/// Whether another open transaction holds a write on `k`.
fn held_by_other(txns: &[Option<MTxn>], me: usize, k: i64) -> bool {
    txns.iter()
        .enumerate()
        .any(|(i, t)| i != me && t.as_ref().is_some_and(|t| t.writes.contains_key(&k)))
}

/// Checks the result of a one-row write: with a conflict predicted, a lock timeout (and
/// the transaction is rolled back, as an application must); otherwise one row written.
/// True when the write happened.
fn written_one(
    r: Result<u64, Error>,
    conflict: bool,
    txns: &mut [Option<MTxn>],
    slot: usize,
    log: &mut Vec<String>,
) -> bool {
    if conflict {
        assert!(
            matches!(r, Err(Error::LockTimeout { .. })),
            "{r:?} after {log:#?}"
        );
        log.push(format!("[{slot}] lock_conflict_rollback"));
        txns[slot].take().unwrap().tx.rollback().unwrap();
        false
    } else {
        assert_eq!(r.unwrap(), 1, "after {log:#?}");
        true
    }
}

enum EpochEnd {
    Done,
    Crash,
}

/// Runs operations on one incarnation of the node until the script ends or a crash.
fn epoch(
    node: &Arc<Node>,
    rng: &mut Rng,
    model: &mut Model,
    steps: &mut usize,
    log: &mut Vec<String>,
) -> EpochEnd {
    let mut txns: Vec<Option<MTxn>> = (0..SLOTS).map(|_| None).collect();
    while *steps > 0 {
        *steps -= 1;
        let slot = rng.below(SLOTS as u64) as usize;
        let roll = rng.below(100);
        if txns[slot].is_none() {
            match roll {
                0..=2 => {
                    log.push("crash".into());
                    return EpochEnd::Crash;
                }
                3..=5 => {
                    log.push("vacuum".into());
                    node.vacuum(TABLE).unwrap();
                }
                6..=7 => {
                    log.push("checkpoint".into());
                    node.checkpoint().unwrap();
                }
                8..=9 => {
                    let mut rows = Vec::new();
                    for _ in 0..1 + rng.below(4) {
                        if let Some(k) = fresh_key(rng, model, &txns) {
                            if rows.iter().all(|(rk, _)| *rk != k) {
                                rows.push((k, (rng.below(1000) as i64, None)));
                            }
                        }
                    }
                    log.push(format!("bulk_load {rows:?}"));
                    let n = node
                        .bulk_load(TABLE, rows.iter().map(|(k, v)| row_of(*k, v)))
                        .unwrap();
                    assert_eq!(n, rows.len() as u64);
                    model.committed.extend(rows);
                }
                10..=11 if txns.iter().all(Option::is_none) => {
                    log.push("truncate".into());
                    node.truncate_table(TABLE).unwrap();
                    model.committed.clear();
                }
                12..=34 => {
                    if !redistribution_step(node, rng, model, log) {
                        continue;
                    }
                }
                _ => {
                    log.push(format!("begin [{slot}]"));
                    txns[slot] = Some(MTxn {
                        tx: node.begin().unwrap(),
                        writes: BTreeMap::new(),
                    });
                    continue;
                }
            }
            check_committed(node, model, log);
            continue;
        }
        let view = model.view(txns[slot].as_ref().unwrap());
        let visible: Vec<i64> = view.keys().copied().collect();
        let pick = |rng: &mut Rng| -> Option<i64> {
            (!visible.is_empty()).then(|| visible[rng.below(visible.len() as u64) as usize])
        };
        match roll {
            0..=19 => {
                let Some(k) = fresh_key(rng, model, &txns) else {
                    continue;
                };
                let val = (
                    rng.below(1000) as i64,
                    (rng.below(3) > 0).then(|| format!("s{}", rng.below(50))),
                );
                log.push(format!("[{slot}] insert {k} {val:?}"));
                let t = txns[slot].as_mut().unwrap();
                t.tx.insert(TABLE, row_of(k, &val)).unwrap();
                t.writes.insert(k, Some(val));
            }
            20..=39 => {
                let Some(k) = pick(rng) else { continue };
                // Sometimes change the key too: the new version may go to another segment.
                let new_key = if rng.below(5) == 0 {
                    fresh_key(rng, model, &txns).filter(|nk| !view.contains_key(nk))
                } else {
                    None
                };
                let s = (rng.below(2) == 0).then(|| format!("u{}", rng.below(50)));
                log.push(format!("[{slot}] update {k} -> key {new_key:?} s {s:?}"));
                let conflict = held_by_other(&txns, slot, k);
                let t = txns[slot].as_mut().unwrap();
                let r = t.tx.update(TABLE, &key_of(node, k), |row| {
                    let (_, (v, _)) = val_of(row);
                    row_of(new_key.unwrap_or(k), &(v + 1, s.clone()))
                });
                if written_one(r, conflict, &mut txns, slot, log) {
                    let t = txns[slot].as_mut().unwrap();
                    let (v, _) = view[&k].clone();
                    match new_key {
                        Some(nk) => {
                            t.writes.insert(k, None);
                            t.writes.insert(nk, Some((v + 1, s)));
                        }
                        None => {
                            t.writes.insert(k, Some((v + 1, s)));
                        }
                    }
                }
            }
            40..=49 => {
                let Some(k) = pick(rng) else { continue };
                log.push(format!("[{slot}] delete {k}"));
                let conflict = held_by_other(&txns, slot, k);
                let t = txns[slot].as_mut().unwrap();
                let r = t.tx.delete(TABLE, &key_of(node, k));
                if written_one(r, conflict, &mut txns, slot, log) {
                    txns[slot].as_mut().unwrap().writes.insert(k, None);
                }
            }
            50..=64 => {
                let k = rng.below(KEYS as u64) as i64;
                log.push(format!("[{slot}] get {k}"));
                let t = txns[slot].as_mut().unwrap();
                let got: Vec<(i64, Val)> =
                    t.tx.get(TABLE, &key_of(node, k))
                        .unwrap()
                        .iter()
                        .map(|r| val_of(r))
                        .collect();
                let want: Vec<(i64, Val)> =
                    view.get(&k).map(|v| (k, v.clone())).into_iter().collect();
                assert_eq!(got, want, "get {k} after {log:#?}");
            }
            65..=72 => {
                log.push(format!("[{slot}] scan"));
                let t = txns[slot].as_mut().unwrap();
                assert_eq!(scan_all(&mut t.tx), view, "scan after {log:#?}");
            }
            73..=89 => {
                log.push(format!("[{slot}] commit"));
                let t = txns[slot].take().unwrap();
                t.tx.commit().unwrap();
                for (k, w) in t.writes {
                    match w {
                        Some(v) => model.committed.insert(k, v),
                        None => model.committed.remove(&k),
                    };
                }
            }
            _ => {
                log.push(format!("[{slot}] rollback"));
                txns[slot].take().unwrap().tx.rollback().unwrap();
            }
        }
        check_committed(node, model, log);
    }
    EpochEnd::Done
}

fn run_case(seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut vfs = SimVfs::new();
    let node = Node::create(Arc::new(vfs.clone()), Path::new("/db"), 3, opts()).unwrap();
    node.create_table(
        &TableSpec::new(TABLE)
            .not_null("id", Type::Int8)
            .not_null("v", Type::Int8)
            .column("s", Type::Varchar(8))
            .not_null("id2", Type::Text)
            .distributed_by(&["id"]),
    )
    .unwrap();
    let mut node = node;
    let mut model = Model::default();
    let mut steps = 30 + rng.below(40) as usize;
    let mut log = vec![format!("seed {seed}")];
    loop {
        match epoch(&node, &mut rng, &mut model, &mut steps, &mut log) {
            EpochEnd::Done => break,
            EpochEnd::Crash => {
                let mode = if rng.below(2) == 0 {
                    CrashMode::DropUnsynced
                } else {
                    CrashMode::KeepUnsyncedTearLast {
                        sectors: rng.below(17) as usize,
                    }
                };
                let image = vfs.crash_image(mode);
                drop(node);
                vfs = image;
                node = open(&vfs);
                model.paused = false;
                check_committed(&node, &model, &log);
            }
        }
    }
    finish_redistribution(&node, &mut log);
    check_committed(&node, &model, &log);
    if node.segments().len() as u16 > node.table_def(TABLE).unwrap().layout.segments {
        log.push("retire_segment".into());
        node.retire_segment().unwrap();
        check_committed(&node, &model, &log);
    }
    node.close().unwrap();
    drop(node); // one owner per directory: the node goes before the reopen
    let node = open(&vfs);
    check_committed(&node, &model, &log);
    node.close().unwrap();
    drop(node); // verify takes the directory's lock shared
    let report = segexpand_engine::verify::verify_dir(&vfs, Path::new("/db")).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    log
}

#[test]
fn table_api_agrees_with_the_model() {
    if let Ok(seed) = std::env::var("MODEL_SEED") {
        println!(
            "{:#?}",
            run_case(seed.parse().expect("MODEL_SEED is a number"))
        );
        return;
    }
    let cases: u64 = std::env::var("MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1000);
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    for case in 0..cases {
        for op in run_case(0x5eed_0000 + case).iter().skip(1) {
            let name = op
                .split_whitespace()
                .find(|w| !w.starts_with('['))
                .unwrap_or("");
            *ops.entry(name.to_string()).or_default() += 1;
        }
    }
    println!("{cases} model cases passed; operations: {ops:?}");
    // The script must really exercise every kind of step.
    for op in [
        "begin",
        "insert",
        "update",
        "delete",
        "get",
        "scan",
        "commit",
        "rollback",
        "crash",
        "vacuum",
        "bulk_load",
        "truncate",
        "lock_conflict_rollback",
        "redist_start",
        "start_expand",
        "start_shrink",
        "start_key_change",
        "redist_move",
        "redist_pause",
        "redist_resume",
        "redist_cancel",
        "redist_flip",
        "redist_cleanup",
        "retire_segment",
        "add_segment",
    ] {
        assert!(
            ops.get(op).copied().unwrap_or(0) >= 20,
            "too few {op}: {ops:?}"
        );
    }
}
