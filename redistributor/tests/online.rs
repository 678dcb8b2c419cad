//! Online redistribution under load: the transfer invariant during an expansion and a
//! shrink with parallel mover workers, SELECT not waiting for a flip that holds DML, and
//! the controls (pause, resume, stop and resume after reopen, throttle, cancel).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::redistribute::{BatchLimits, GateOptions};
use segexpand_engine::{Error, Layout, Node, NodeOptions, SyncPolicy, TableSpec, Type, Value};
use segexpand_redistributor::{Finish, Options, Redistributor};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACCOUNTS: i64 = 40;
const FILLER: i64 = 30_000;
const START: i64 = 1_000;

fn node(dir: &std::path::Path, segments: u16) -> Arc<Node> {
    let node = Node::create_dir(
        dir,
        segments,
        NodeOptions {
            sync: SyncPolicy::Batched { delay_us_max: 500 },
            lock_timeout: Duration::from_secs(10),
            ..NodeOptions::default()
        },
    )
    .unwrap();
    node.create_table(
        &TableSpec::new("acct")
            .not_null("id", Type::Int8)
            .not_null("balance", Type::Int8)
            .column("note", Type::Text)
            .distributed_by(&["id"]),
    )
    .unwrap();
    let rows = (0..ACCOUNTS + FILLER).map(|i| {
        let balance = if i < ACCOUNTS { START } else { 0 };
        vec![
            Value::Int8(i),
            Value::Int8(balance),
            Value::Text(format!("row {i} padding padding padding")),
        ]
    });
    node.bulk_load("acct", rows).unwrap();
    node
}

/// Rows a fresh scan sees.
fn rows(node: &Arc<Node>) -> i64 {
    let mut tx = node.begin().unwrap();
    let n = tx.scan("acct", None).unwrap().len() as i64;
    tx.rollback().unwrap();
    n
}

fn layout(node: &Arc<Node>, segments: u16) -> Layout {
    Layout {
        segments,
        ..node.table_def("acct").unwrap().layout
    }
}

fn transfer(node: &Arc<Node>, seed: &mut u64) -> Result<(), Error> {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let a = (*seed >> 33) as i64 % ACCOUNTS;
    let b = (*seed >> 17) as i64 % ACCOUNTS;
    let amount = (*seed >> 50) as i64 % 50;
    if a == b {
        return Ok(());
    }
    let mut tx = node.begin()?;
    let add = |d: i64| {
        move |r: &[Value]| {
            let mut r = r.to_vec();
            r[1] = Value::Int8(r[1].as_int().unwrap() + d);
            r
        }
    };
    tx.update("acct", &[Value::Int8(a)], add(-amount))?;
    tx.update("acct", &[Value::Int8(b)], add(amount))?;
    tx.commit()
}

/// Transfers keep the sum constant; every concurrent scan sees exactly ACCOUNTS+FILLER
/// rows and the constant sum, and every point get finds its row once, while the table
/// expands 4 → 6 and then shrinks 6 → 4 with two mover workers each. No SELECT waits.
#[test]
fn transfers_and_scans_stay_exact_during_online_redistribution() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path(), 4);
    node.add_new_segment().unwrap();
    node.add_new_segment().unwrap();
    let stop = AtomicBool::new(false);
    let transfers = AtomicU64::new(0);
    let scans = AtomicU64::new(0);
    let gets = AtomicU64::new(0);
    let max_select_us = AtomicU64::new(0);
    let victims = AtomicU64::new(0);
    let opts = Options {
        workers: 2,
        chunk_blocks: 4,
        batch: BatchLimits {
            rows_max: 200,
            ..BatchLimits::default()
        },
        ..Options::default()
    };
    let mut flips = Vec::new();
    let mut moved = 0;
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let (node, stop, transfers, victims) = (&node, &stop, &transfers, &victims);
            s.spawn(move || {
                let mut seed = t + 1;
                while !stop.load(Ordering::Acquire) {
                    match transfer(node, &mut seed) {
                        Ok(()) => {
                            transfers.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::Deadlock { .. } | Error::TxnAborted { .. }) => {
                            victims.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("transfer: {e}"),
                    }
                }
            });
        }
        for r in 0..2u64 {
            let (node, stop, scans, gets, max_select_us) =
                (&node, &stop, &scans, &gets, &max_select_us);
            s.spawn(move || {
                let mut i = r;
                while !stop.load(Ordering::Acquire) {
                    let mut tx = node.begin().unwrap();
                    let t0 = Instant::now();
                    let (mut n, mut sum) = (0i64, 0i64);
                    tx.scan_with("acct", |row| {
                        n += 1;
                        sum += row[1].as_int().unwrap();
                    })
                    .unwrap();
                    assert_eq!(n, ACCOUNTS + FILLER, "scan saw {n} rows");
                    assert_eq!(sum, ACCOUNTS * START, "scan total");
                    for _ in 0..20 {
                        i = (i * 7919 + 13) % (ACCOUNTS + FILLER) as u64;
                        let got = tx.get("acct", &[Value::Int8(i as i64)]).unwrap();
                        assert_eq!(got.len(), 1, "get {i}: {got:?}");
                        gets.fetch_add(1, Ordering::Relaxed);
                    }
                    max_select_us.fetch_max(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                    assert_eq!(tx.lock_waits(), 0, "a SELECT waited");
                    tx.rollback().unwrap();
                    scans.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for segments in [6u16, 4] {
            let before = scans.load(Ordering::Acquire);
            let r =
                Redistributor::start(node.clone(), "acct", layout(&node, segments), opts.clone())
                    .unwrap();
            let out = r.run().unwrap();
            assert_eq!(out.finish, Finish::Flipped);
            moved += out.progress.counts.rows_moved;
            flips.push(out.flip.unwrap());
            r.cleanup().unwrap();
            assert!(
                scans.load(Ordering::Acquire) > before,
                "no scan ran during the redistribution to {segments}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Release);
    });
    let mut tx = node.begin().unwrap();
    let rows = tx.scan("acct", None).unwrap();
    assert_eq!(rows.len() as i64, ACCOUNTS + FILLER);
    assert_eq!(
        rows.iter().map(|r| r[1].as_int().unwrap()).sum::<i64>(),
        ACCOUNTS * START
    );
    tx.rollback().unwrap();
    assert!(node.check_placement("acct").unwrap().is_empty());
    assert_eq!(node.table_def("acct").unwrap().layout.segments, 4);
    node.retire_segment().unwrap();
    node.retire_segment().unwrap();
    assert_eq!(node.segments(), vec![0, 1, 2, 3]);
    println!(
        "{} transfers ({} deadlock victims), {} scans, {} gets, {moved} rows moved; \
         longest SELECT statement group {} us; flips: {flips:?}",
        transfers.load(Ordering::Relaxed),
        victims.load(Ordering::Relaxed),
        scans.load(Ordering::Relaxed),
        gets.load(Ordering::Relaxed),
        max_select_us.load(Ordering::Relaxed),
    );
    node.close().unwrap();
}

/// A flip that is holding DML (waiting for a running bulk load, which pins the layout)
/// does not hold SELECT: a scan and a point get finish while the flip is still pending.
#[test]
fn select_does_not_wait_for_a_pending_flip() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path(), 2);
    node.add_new_segment().unwrap();
    let _r =
        Redistributor::start(node.clone(), "acct", layout(&node, 3), Options::default()).unwrap();
    // Move everything, but do not flip yet.
    for (seg, b) in node.redistribution_work("acct").unwrap() {
        node.move_blocks("acct", seg, &[b], &BatchLimits::default())
            .unwrap();
    }
    assert!(node.redistribution_work("acct").unwrap().is_empty());
    let flip_done = AtomicBool::new(false);
    let (send, recv) = std::sync::mpsc::channel::<i64>();
    std::thread::scope(|s| {
        // A bulk load that runs until the channel closes: it holds the layout pin.
        s.spawn(|| {
            let rows = recv
                .into_iter()
                .map(|i| vec![Value::Int8(i), Value::Int8(0), Value::Null]);
            node.bulk_load("acct", rows).unwrap();
        });
        send.send(-1).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.spawn(|| {
            let gate = GateOptions {
                cap: Duration::from_secs(30),
                attempts: 1,
                backoff: Duration::ZERO,
            };
            let r = node.flip_redistribution("acct", &gate).unwrap();
            flip_done.store(true, Ordering::Release);
            r
        });
        std::thread::sleep(Duration::from_millis(100));
        // The flip is waiting for the bulk load. SELECT goes through.
        let mut reader = node.begin().unwrap();
        assert_eq!(
            reader.scan("acct", None).unwrap().len() as i64,
            ACCOUNTS + FILLER
        );
        assert_eq!(reader.get("acct", &[Value::Int8(5)]).unwrap().len(), 1);
        assert_eq!(reader.lock_waits(), 0);
        reader.rollback().unwrap();
        assert!(
            !flip_done.load(Ordering::Acquire),
            "the flip should still be waiting for the bulk load"
        );
        send.send(-2).unwrap();
        drop(send);
    });
    assert!(flip_done.load(Ordering::Acquire));
    assert_eq!(node.table_def("acct").unwrap().layout.segments, 3);
    assert!(node.check_placement("acct").unwrap().is_empty());
    assert_eq!(rows(&node), ACCOUNTS + FILLER + 2);
}

/// Pause holds the mover (the table stays redistributing with DML going on), resume
/// finishes it; a stop leaves it redistributing across a close and reopen, and a
/// resumed run on the reopened node completes with nothing lost; a cancel in the
/// middle returns the table to its old layout.
#[test]
fn pause_resume_stop_reopen_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path(), 3);
    node.add_new_segment().unwrap();
    let opts = Options {
        workers: 2,
        chunk_blocks: 2,
        rows_per_s: Some(100_000.0),
        ..Options::default()
    };
    let r = Redistributor::start(node.clone(), "acct", layout(&node, 4), opts.clone()).unwrap();
    let h = r.handle();
    h.pause();
    std::thread::scope(|s| {
        let run = s.spawn(|| r.run().unwrap());
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(h.progress().batches, 0, "paused mover moved rows");
        let mut tx = node.begin().unwrap();
        tx.insert("acct", vec![Value::Int8(-1), Value::Int8(0), Value::Null])
            .unwrap();
        tx.commit().unwrap();
        h.resume();
        std::thread::sleep(Duration::from_millis(50));
        h.stop();
        let out = run.join().unwrap();
        assert_eq!(out.finish, Finish::Stopped);
        assert!(out.progress.batches > 0);
    });
    assert!(node.table_def("acct").unwrap().redistribution.is_some());
    node.close().unwrap();
    drop(r);
    drop(node);
    let node = Node::open_dir(dir.path(), NodeOptions::default()).unwrap();
    assert!(node.check_placement("acct").unwrap().is_empty());
    let r = Redistributor::attach(node.clone(), "acct", Options::default()).unwrap();
    let out = r.run().unwrap();
    assert_eq!(out.finish, Finish::Flipped);
    assert_eq!(rows(&node), ACCOUNTS + FILLER + 1);
    // Now 4 → 3, cancelled halfway: back to 4 segments, nothing lost.
    let r = Redistributor::start(node.clone(), "acct", layout(&node, 3), opts).unwrap();
    let h = r.handle();
    std::thread::scope(|s| {
        let run = s.spawn(|| r.run().unwrap());
        while h.progress().counts.rows_moved == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        h.cancel();
        let out = run.join().unwrap();
        assert_eq!(out.finish, Finish::Cancelled);
        assert!(out.cancel.is_some());
    });
    let def = node.table_def("acct").unwrap();
    assert!(def.redistribution.is_none());
    assert_eq!(def.layout.segments, 4);
    assert!(node.check_placement("acct").unwrap().is_empty());
    assert_eq!(rows(&node), ACCOUNTS + FILLER + 1);
}

/// Moving 4 → 6 moves about a third of the rows (jump hash: (M−N)/M), flips the rest
/// in place, and a key change moves rows to where the new key puts them.
#[test]
fn expansion_moves_the_expected_fraction_and_key_change_works() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path(), 4);
    node.add_new_segment().unwrap();
    node.add_new_segment().unwrap();
    let r =
        Redistributor::start(node.clone(), "acct", layout(&node, 6), Options::default()).unwrap();
    let out = r.run().unwrap();
    let p = out.progress.counts;
    let total = (ACCOUNTS + FILLER) as f64;
    let frac = p.rows_moved as f64 / total;
    assert!((frac - 2.0 / 6.0).abs() < 0.01, "moved fraction {frac}");
    assert_eq!(p.rows_moved + p.rows_flipped, total as u64);
    // Flips write a small record per page instead of a copy of each row.
    assert!(p.flip_wal_bytes * 20 < p.bytes_flipped, "{p:?}");
    // Key change: distribute by note instead of id.
    let mut t = node.table_def("acct").unwrap().layout;
    t.key = vec![2];
    let r = Redistributor::start(node.clone(), "acct", t, Options::default()).unwrap();
    assert_eq!(r.run().unwrap().finish, Finish::Flipped);
    assert!(node.check_placement("acct").unwrap().is_empty());
    let mut tx = node.begin().unwrap();
    let got = tx
        .get(
            "acct",
            &[Value::Text("row 7 padding padding padding".into())],
        )
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0], Value::Int8(7));
    tx.rollback().unwrap();
    // Refused: a second start while one runs.
    let mut t2 = node.table_def("acct").unwrap().layout;
    t2.segments = 5;
    node.start_redistribution("acct", t2.clone(), &GateOptions::default())
        .unwrap();
    assert!(matches!(
        node.start_redistribution("acct", t2, &GateOptions::default()),
        Err(Error::Redistribution(_))
    ));
}

/// The offline baseline locks out SELECT and DML for the rewrite, and still finishes
/// when an open transaction holds rows it must rewrite and waits for the lock in its next
/// statement (the lock is per statement, so the rewrite lets such transactions through).
#[test]
fn offline_rewrite_finishes_around_an_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path(), 2);
    node.add_new_segment().unwrap();
    let mut t1 = node.begin().unwrap();
    t1.update("acct", &[Value::Int8(1)], |r| r.to_vec())
        .unwrap();
    let report = std::thread::scope(|s| {
        let off = s.spawn(|| {
            node.redistribute_offline("acct", layout(&node, 3), &BatchLimits::default())
                .unwrap()
        });
        std::thread::sleep(Duration::from_millis(50));
        t1.update("acct", &[Value::Int8(2)], |r| r.to_vec())
            .unwrap();
        t1.commit().unwrap();
        off.join().unwrap()
    });
    assert_eq!(report.counts.rows_moved as i64, ACCOUNTS + FILLER);
    assert_eq!(node.table_def("acct").unwrap().layout.segments, 3);
    assert!(node.check_placement("acct").unwrap().is_empty());
    assert_eq!(rows(&node), ACCOUNTS + FILLER);
}

/// A row throttle holds: the run takes at least as long as its rows at the rate allow
/// (less one batch per worker). It used to sleep one 100 ms slice before each chunk and
/// go on, moving 2.5-5x faster than asked.
#[test]
fn the_row_throttle_holds_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path(), 3);
    node.add_new_segment().unwrap();
    let rate = 30_000.0;
    let opts = Options {
        workers: 2,
        rows_per_s: Some(rate),
        ..Options::default()
    };
    let t0 = Instant::now();
    let r = Redistributor::start(node.clone(), "acct", layout(&node, 4), opts).unwrap();
    let out = r.run().unwrap();
    let took = t0.elapsed().as_secs_f64();
    assert_eq!(out.finish, Finish::Flipped);
    let counted = (out.progress.counts.rows_moved + out.progress.counts.rows_flipped) as f64;
    let least = counted / rate - 2.0 * (rate / 20.0) / rate;
    assert!(
        took >= least,
        "{counted} rows in {took:.2} s at {rate}/s (at least {least:.2} s)"
    );
    assert_eq!(rows(&node), ACCOUNTS + FILLER);
}

/// Rows a fresh scan sees on each of segments `0..n` of table `t`.
fn per_segment(node: &Arc<Node>, t: &str, n: u16) -> Vec<u64> {
    (0..n)
        .map(|s| {
            let mut tx = node.begin().unwrap();
            let opts = segexpand_engine::ScanOptions {
                segments: Some(vec![s]),
                ..Default::default()
            };
            let mut c = tx.scan_cursor(t, opts).unwrap();
            let mut k = 0;
            while let Some(b) = c.next_batch().unwrap() {
                k += b.len() as u64;
            }
            drop(c);
            tx.rollback().unwrap();
            k
        })
        .collect()
}

/// A randomly distributed table expands 4 → 6 by moving (M−N)/M of its rows, onto the
/// new segments only, and ends balanced; a cancel halfway takes them back; a shrink
/// 6 → 4 empties the dropped segments. Every row is kept (sum of ids) throughout.
#[test]
fn a_randomly_distributed_table_expands_cancels_and_shrinks_balanced() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), 4, NodeOptions::default()).unwrap();
    node.create_table(
        &TableSpec::new("r")
            .not_null("id", Type::Int8)
            .column("pad", Type::Text)
            .distributed_randomly(),
    )
    .unwrap();
    let n: i64 = 24_000;
    node.bulk_load(
        "r",
        (0..n).map(|i| vec![Value::Int8(i), Value::Text(format!("pad {i}"))]),
    )
    .unwrap();
    let sum = |node: &Arc<Node>| -> (i64, i64) {
        let mut tx = node.begin().unwrap();
        let rows = tx.scan("r", None).unwrap();
        tx.rollback().unwrap();
        let s = rows
            .iter()
            .map(|r| match r[0] {
                Value::Int8(v) => v,
                _ => panic!("id"),
            })
            .sum();
        (rows.len() as i64, s)
    };
    let want = (n, n * (n - 1) / 2);
    assert_eq!(per_segment(&node, "r", 4).iter().sum::<u64>(), n as u64);
    node.add_new_segment().unwrap();
    node.add_new_segment().unwrap();
    let to = |segments| Layout {
        segments,
        ..node.table_def("r").unwrap().layout
    };
    // Cancelled halfway: back on 4 segments, exactly as before.
    let opts = Options {
        chunk_blocks: 1,
        rows_per_s: Some(40_000.0),
        ..Options::default()
    };
    let r = Redistributor::start(node.clone(), "r", to(6), opts).unwrap();
    let h = r.handle();
    std::thread::scope(|s| {
        let run = s.spawn(|| r.run().unwrap());
        while h.progress().counts.rows_moved == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        h.cancel();
        assert_eq!(run.join().unwrap().finish, Finish::Cancelled);
    });
    assert_eq!(node.table_def("r").unwrap().layout.segments, 4);
    assert_eq!(sum(&node), want);
    // Rows taken back go to a segment picked by their place, not necessarily the one
    // they came from: the old segments stay balanced.
    let back = per_segment(&node, "r", 4);
    assert_eq!(back.iter().sum::<u64>(), n as u64);
    assert!(
        back.iter().all(|k| (*k as f64 - 6_000.0).abs() < 300.0),
        "{back:?}"
    );
    let before = back;
    // Expansion: only (6−4)/6 of the rows move, and only to the new segments.
    let r = Redistributor::start(node.clone(), "r", to(6), Options::default()).unwrap();
    let out = r.run().unwrap();
    assert_eq!(out.finish, Finish::Flipped);
    let c = out.progress.counts;
    let frac = c.rows_moved as f64 / n as f64;
    assert!((frac - 2.0 / 6.0).abs() < 0.02, "moved fraction {frac}");
    assert_eq!(sum(&node), want);
    let after = per_segment(&node, "r", 6);
    for s in 0..4 {
        assert!(
            after[s] <= before[s],
            "segment {s} gained rows: {before:?} → {after:?}"
        );
    }
    let each = n as f64 / 6.0;
    for (s, k) in after.iter().enumerate() {
        assert!(
            (*k as f64 - each).abs() < each * 0.05,
            "segment {s} holds {k} of {n}: {after:?}"
        );
    }
    assert_eq!(after.iter().sum::<u64>(), n as u64);
    // Shrink back: the two new segments are emptied onto the others.
    let r = Redistributor::start(node.clone(), "r", to(4), Options::default()).unwrap();
    assert_eq!(r.run().unwrap().finish, Finish::Flipped);
    assert_eq!(sum(&node), want);
    let back = per_segment(&node, "r", 4);
    assert_eq!(back.iter().sum::<u64>(), n as u64);
    for (s, k) in back.iter().enumerate() {
        assert!(
            (*k as f64 - n as f64 / 4.0).abs() < n as f64 / 4.0 * 0.05,
            "{s}: {back:?}"
        );
    }
    assert!(node.check_placement("r").unwrap().is_empty());
    // And out again: each phase draws anew, so the rows that stayed the first time are
    // as likely to move as the others (before, only the shrink's rows could: 4%).
    let r = Redistributor::start(node.clone(), "r", to(6), Options::default()).unwrap();
    assert_eq!(r.run().unwrap().finish, Finish::Flipped);
    assert_eq!(sum(&node), want);
    let again = per_segment(&node, "r", 6);
    for (s, k) in again.iter().enumerate() {
        assert!(
            (*k as f64 - each).abs() < each * 0.05,
            "segment {s}: {again:?}"
        );
    }
}
