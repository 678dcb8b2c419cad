//! The checking workload's three threads: point SELECTs by random id, full scans that
//! check the row count and the balance checksum, and DML transfers (UPDATE, and every
//! fourth a DELETE + INSERT under a new id) recorded in `demo_meta` in the same
//! transaction. Every operation is recorded in the run's timeline. Beside YCSB or
//! pgbench the threads pause between batches (10 ms after 200 SELECTs, 100 ms after a
//! scan, 5 ms after a transfer), so they keep checking without taking the cores the
//! measured workload needs.

use super::schema::{int, Meta, META, TABLE};
use super::workload::Load;
use super::{CorruptionKind, Error, Location, Node, Txn, Value};
use crate::timeline::{Op, Outcome};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The DML thread vacuums `META` after this many transactions: each one adds a version
/// of its row, and a key lookup visits every version its index still lists.
const META_VACUUM_EVERY: u64 = 256;

/// Point SELECTs by random id (200 to a read-only transaction).
pub(super) fn point_selects(node: &Arc<Node>, load: &Load<'_>, id_range: u64) {
    let mut x = 0x9e37_79b9_u64;
    let mut rec = load.timeline.client();
    while !load.stopped() {
        let t = Instant::now();
        let mut tx = match node.begin() {
            Ok(tx) => tx,
            Err(e) => {
                load.select_errors.fetch_add(1, Ordering::Relaxed);
                let o = load.error("a point SELECT", e);
                rec.record(Op::PointSelect, t, Instant::now(), o);
                continue;
            }
        };
        // Back to back, one clock read per SELECT: each one's latency runs from the
        // previous one's end (so it includes the loop's own few nanoseconds; a second
        // clock read would cost more than that — docs/BENCHMARKS.md).
        rec.restart(Instant::now());
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % id_range.max(1)) as i64;
            let r = tx.get(TABLE, &[Value::Int8(id)]);
            let end = Instant::now();
            if let Err(e) = r {
                load.select_errors.fetch_add(1, Ordering::Relaxed);
                let o = load.error("a point SELECT", e);
                rec.record_next(Op::PointSelect, end, o);
                break;
            }
            rec.record_next(Op::PointSelect, end, Outcome::Ok);
        }
        let _ = tx.rollback();
        load.pause(Duration::from_millis(10));
    }
}

/// Full scans, each checking the row count and the sum of balances against the start.
pub(super) fn scans(node: &Arc<Node>, load: &Load<'_>, rows: u64, sum0: i64) {
    let mut rec = load.timeline.client();
    while !load.stopped() {
        let t = Instant::now();
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
                rec.record(Op::CheckScan, t, Instant::now(), Outcome::Ok);
                load.pause(Duration::from_millis(100));
            }
            Err(e) => {
                load.select_errors.fetch_add(1, Ordering::Relaxed);
                let o = load.error("a checking scan", e);
                rec.record(Op::CheckScan, t, Instant::now(), o);
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
pub(super) fn dml(
    node: &Arc<Node>,
    load: &Load<'_>,
    live: &parking_lot::Mutex<Vec<i64>>,
    next_id: &AtomicU64,
) {
    let mut x = 0x2545_f491_u64;
    let mut n = 0u64;
    let mut rec = load.timeline.client();
    while !load.stopped() {
        let t = Instant::now();
        n += 1;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (i, j, amount) = (rnd(), rnd(), (rnd() % 100) as i64);
        let unbalanced = load.inject_unbalanced.swap(false, Ordering::AcqRel);
        let r = transfer(
            node,
            live,
            next_id,
            (i, j, amount.max(1)),
            (n.is_multiple_of(4), unbalanced),
        );
        match r {
            Ok(DmlEnd::Committed(replaced)) => {
                if let Some((ia, new_id)) = replaced {
                    if let Some(v) = live.lock().get_mut(ia) {
                        *v = new_id;
                    }
                }
                load.dml_txns.fetch_add(1, Ordering::Relaxed);
                rec.record(Op::Transfer, t, Instant::now(), Outcome::Ok);
            }
            Ok(DmlEnd::Idle) => {}
            Ok(DmlEnd::Missing(id)) => {
                rec.record(Op::Transfer, t, Instant::now(), Outcome::Error);
                load.dml_rows_missing.fetch_add(1, Ordering::Relaxed);
                load.note(format_args!(
                    "DML transaction rolled back: row {id} of {TABLE} was not found by its key"
                ));
            }
            Err(e) => {
                load.dml_errors.fetch_add(1, Ordering::Relaxed);
                let o = load.error("a DML transaction", e);
                rec.record(Op::Transfer, t, Instant::now(), o);
            }
        }
        load.pause(Duration::from_millis(5));
        if n.is_multiple_of(META_VACUUM_EVERY) {
            if let Err(e) = node.vacuum(META) {
                let _ = load.error("vacuum of demo_meta", e);
            }
        }
    }
}

/// One DML transaction: a transfer of `amount` between the live rows `i` and `j` pick
/// and, with `replace`, the first replaced by a new id; counted in `META`.
fn transfer(
    node: &Arc<Node>,
    live: &parking_lot::Mutex<Vec<i64>>,
    next_id: &AtomicU64,
    (i, j, amount): (u64, u64, i64),
    (replace, unbalanced): (bool, bool),
) -> Result<DmlEnd, Error> {
    let Some((ia, a, b)) = pick(live, i, j) else {
        return Ok(DmlEnd::Idle);
    };
    if unbalanced {
        // The injected fault: a debit without its credit, recorded as a transfer.
        let mut tx = node.begin()?;
        tx.update(TABLE, &[Value::Int8(a)], |r| {
            let mut r = r.to_vec();
            if let Some(v) = r.get_mut(1) {
                *v = Value::Int8(v.as_int().unwrap_or(0) - amount);
            }
            r
        })?;
        record_transfer(&mut tx, 0, next_id)?;
        tx.commit()?;
        return Ok(DmlEnd::Committed(None));
    }
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
        let Some(new_id) = replace_row(&mut tx, a, next_id)? else {
            tx.rollback()?;
            return Ok(DmlEnd::Missing(a));
        };
        replaced = Some((ia, new_id));
        id_delta = new_id.wrapping_sub(a);
    }
    let n = record_transfer(&mut tx, id_delta, next_id)?;
    if n != 1 {
        tx.rollback()?;
        return Err(Error::Corruption {
            location: Location::file(META),
            kind: CorruptionKind::Invalid(format!(
                "the {META} row is missing (an update by its key found {n} rows)"
            )),
        });
    }
    tx.commit()?;
    Ok(DmlEnd::Committed(replaced))
}

/// Two live ids picked by `i` and `j`, with the index in `live` of the first (none
/// when there are no rows).
fn pick(live: &parking_lot::Mutex<Vec<i64>>, i: u64, j: u64) -> Option<(usize, i64, i64)> {
    let ids = live.lock();
    let len = ids.len().max(1) as u64;
    let (ia, ib) = ((i % len) as usize, (j % len) as usize);
    let (a, b) = (ids.get(ia).copied(), ids.get(ib).copied());
    drop(ids);
    Some((ia, a?, b?))
}

/// Replaces row `a` by a new id carrying its balance (DELETE + INSERT) in `tx`: the
/// new id, or none when row `a` was not found by its key.
fn replace_row(tx: &mut Txn, a: i64, next_id: &AtomicU64) -> Result<Option<i64>, Error> {
    let old = tx.get(TABLE, &[Value::Int8(a)])?;
    let Some(r) = old.first() else {
        return Ok(None);
    };
    let new_id = next_id.fetch_add(1, Ordering::AcqRel) as i64;
    tx.delete(TABLE, &[Value::Int8(a)])?;
    let mut r = r.clone();
    if let Some(v) = r.get_mut(0) {
        *v = Value::Int8(new_id);
    }
    tx.insert(TABLE, r)?;
    Ok(Some(new_id))
}

/// Counts the transaction in the `META` row, in `tx` (transfers, id sum, next id);
/// returns the rows the update found (one, unless the row is missing).
fn record_transfer(tx: &mut Txn, id_delta: i64, next_id: &AtomicU64) -> Result<u64, Error> {
    let next = next_id.load(Ordering::Acquire) as i64;
    tx.update(META, &[Value::Int8(0)], |r| match Meta::from_row(r) {
        Some(m) => Meta {
            transfers: m.transfers + 1,
            id_sum: m.id_sum.wrapping_add(id_delta),
            next_id: m.next_id.max(next),
            ..m
        }
        .to_row(),
        // Left as it is: the final check then finds the transfers do not add up.
        None => r.to_vec(),
    })
}
