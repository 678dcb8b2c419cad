//! Model-based test of the table API: random sequences of begin, insert, update (also of
//! the key, which moves the row to another segment), delete, get, scan, commit,
//! rollback, bulk load, truncate, vacuum, checkpoint and crash-and-reopen, on an
//! in-memory file system, checked step by step against a reference model.
//!
//! `MODEL_CASES` (default 1000) sets the number of cases; a failure prints the seed and
//! the operations so far (`MODEL_SEED=<seed>` re-runs one case).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::Rng;
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
struct MTxn<'a> {
    tx: Txn<'a>,
    writes: BTreeMap<i64, Option<Val>>,
}

#[derive(Default)]
struct Model {
    committed: BTreeMap<i64, Val>,
}

impl Model {
    fn view(&self, t: &MTxn<'_>) -> BTreeMap<i64, Val> {
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

fn row_of(k: i64, (v, s): &Val) -> Row {
    vec![
        Value::Int8(k),
        Value::Int8(*v),
        s.clone().map_or(Value::Null, Value::Text),
    ]
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

fn scan_all(tx: &mut Txn<'_>) -> BTreeMap<i64, Val> {
    let mut out = BTreeMap::new();
    for r in tx.scan(TABLE, None).unwrap() {
        let (k, v) = val_of(&r);
        assert!(out.insert(k, v).is_none(), "key {k} seen twice");
    }
    out
}

fn check_committed(node: &Node, model: &Model, log: &[String]) {
    let mut tx = node.begin().unwrap();
    let got = scan_all(&mut tx);
    tx.rollback().unwrap();
    assert_eq!(
        got, model.committed,
        "committed state diverged after {log:#?}"
    );
}

/// A key no open transaction has written and that is not committed.
fn fresh_key(rng: &mut Rng, model: &Model, txns: &[Option<MTxn<'_>>]) -> Option<i64> {
    let busy = |k: i64| {
        model.committed.contains_key(&k) || txns.iter().flatten().any(|t| t.writes.contains_key(&k))
    };
    let start = rng.below(KEYS as u64) as i64;
    (0..KEYS).map(|i| (start + i) % KEYS).find(|k| !busy(*k))
}

/// Whether another open transaction holds a write on `k`.
fn held_by_other(txns: &[Option<MTxn<'_>>], me: usize, k: i64) -> bool {
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
    txns: &mut [Option<MTxn<'_>>],
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
    node: &Node,
    rng: &mut Rng,
    model: &mut Model,
    steps: &mut usize,
    log: &mut Vec<String>,
) -> EpochEnd {
    let mut txns: Vec<Option<MTxn<'_>>> = (0..SLOTS).map(|_| None).collect();
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
                10..=14 if txns.iter().all(Option::is_none) => {
                    log.push("truncate".into());
                    node.truncate_table(TABLE).unwrap();
                    model.committed.clear();
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
                let r = t.tx.update(TABLE, &[Value::Int8(k)], |row| {
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
                let r = t.tx.delete(TABLE, &[Value::Int8(k)]);
                if written_one(r, conflict, &mut txns, slot, log) {
                    txns[slot].as_mut().unwrap().writes.insert(k, None);
                }
            }
            50..=64 => {
                let k = rng.below(KEYS as u64) as i64;
                log.push(format!("[{slot}] get {k}"));
                let t = txns[slot].as_mut().unwrap();
                let got: Vec<(i64, Val)> =
                    t.tx.get(TABLE, &[Value::Int8(k)])
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
                check_committed(&node, &model, &log);
            }
        }
    }
    node.close().unwrap();
    let node = open(&vfs);
    check_committed(&node, &model, &log);
    node.close().unwrap();
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
    ] {
        assert!(
            ops.get(op).copied().unwrap_or(0) >= 20,
            "too few {op}: {ops:?}"
        );
    }
}
