//! YCSB in-process: `usertable` (a key, int8 or YCSB's `user<n>` text, and one payload
//! field of `row_bytes` seeded characters), bulk-loaded with `rows` rows, and `clients`
//! client threads each running a seeded operation stream of the scenario's mix, closed
//! loop (the next operation when the last returns) or open loop (`rate` operations per
//! second over all clients, each timed from its scheduled start).
//!
//! The operations: read = a point lookup by key in a read-only transaction; update =
//! the payload of one row rewritten, committed; insert = a new key (taken from a
//! counter shared by the clients, so no two insert the same one), committed; scan = the
//! keys `k..k+n` looked up in one read-only transaction (a hash-distributed table has
//! no key order, so a YCSB range scan is its keys read one by one); read-modify-write =
//! a lookup and an update of the same row, committed.

use super::config::KeyType;
use super::setup::placement;
use super::workload::{outcome_of, Load};
use super::{bad, Config, Error, Node, Row, TableSpec, Type, Value};
use crate::timeline::{Op as TOp, Outcome, Timeline};
use crate::workload::keys::Rng;
use crate::workload::ycsb::{Op, OpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The YCSB table.
pub(super) const TABLE: &str = "usertable";

/// Rows per bulk-load batch.
const BATCH_ROWS: u64 = 100_000;

/// The prepared YCSB workload.
pub(super) struct Ycsb {
    cfg: Config,
    /// Keys `0..rows` were loaded; inserts take the next ones.
    next_insert: AtomicU64,
}

/// Key `k` as a value of the table's key type.
fn key_value(t: KeyType, k: u64) -> Value {
    match t {
        KeyType::Int8 => Value::Int8(k as i64),
        KeyType::Text => Value::Text(format!("user{k}")),
    }
}

/// Row `k`: its key and a payload of `len` characters drawn from `seed` and `k`.
fn row(t: KeyType, k: u64, len: usize, seed: u64) -> Row {
    vec![key_value(t, k), Value::Text(payload(k, len, seed))]
}

/// A payload of `len` letters, from a generator seeded by `seed` and `k`.
fn payload(k: u64, len: usize, seed: u64) -> String {
    let mut r = Rng::new(seed ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    (0..len)
        .map(|_| (b'a' + r.below(26) as u8) as char)
        .collect()
}

/// The key column's type for `t`.
fn key_type(t: KeyType) -> Type {
    match t {
        KeyType::Int8 => Type::Int8,
        KeyType::Text => Type::Text,
    }
}

/// Creates and loads `usertable` (or checks the one an earlier run left: its key must
/// be of the scenario's type and it must hold at least `rows` rows).
pub(super) fn prepare(a: &Config, node: &Arc<Node>) -> Result<Ycsb, Error> {
    let have = match node.table_def(TABLE) {
        Ok(def) => {
            let key = def.columns.first().map(|c| c.ty);
            if key != Some(key_type(a.key_type)) {
                return Err(bad(format!(
                    "{TABLE}, left by an earlier run, has keys of type {key:?}, the scenario \
                     asks for {:?}: nothing was changed (start over with --fresh)",
                    key_type(a.key_type)
                )));
            }
            Some(count(node)?)
        }
        Err(Error::NoSuchTable(_)) => None,
        Err(e) => return Err(e),
    };
    let next = match have {
        Some(n) if n >= a.rows => n,
        Some(n) => {
            return Err(bad(format!(
                "{TABLE} holds {n} rows, fewer than the {} asked for: nothing was changed \
                 (start over with --fresh)",
                a.rows
            )))
        }
        None => {
            node.create_table(
                &TableSpec::new(TABLE)
                    .not_null("ycsb_key", key_type(a.key_type))
                    .not_null("field0", Type::Text)
                    .distributed_by(&["ycsb_key"])
                    .placement(placement(a))
                    .segments(a.from.min(node.segments().len() as u16)),
            )?;
            let t0 = Instant::now();
            let mut k = 0;
            while k < a.rows {
                let end = (k + BATCH_ROWS).min(a.rows);
                let (t, len, seed) = (a.key_type, a.row_bytes as usize, a.seed);
                node.bulk_load(TABLE, (k..end).map(|i| row(t, i, len, seed)))?;
                k = end;
            }
            say!(
                a,
                "loaded {} rows into {TABLE} in {:.2} s",
                a.rows,
                t0.elapsed().as_secs_f64()
            );
            a.rows
        }
    };
    Ok(Ycsb {
        cfg: a.clone(),
        next_insert: AtomicU64::new(next),
    })
}

/// Rows of `usertable`.
fn count(node: &Arc<Node>) -> Result<u64, Error> {
    let mut tx = node.begin()?;
    let n = tx.scan_with(TABLE, |_| {})?;
    tx.rollback()?;
    Ok(n)
}

impl Ycsb {
    /// Starts the client threads in `s`.
    pub(super) fn spawn<'s>(
        &'s self,
        s: &'s std::thread::Scope<'s, '_>,
        node: &'s Arc<Node>,
        load: &'s Load<'_>,
        tl: &'s Timeline,
        stop: &'s AtomicBool,
    ) {
        for c in 0..self.cfg.clients {
            s.spawn(move || self.client(c, node, load, tl, stop));
        }
    }

    /// One client: its stream (seeded by the scenario's seed and its number), closed
    /// or open loop, until stopped.
    fn client(&self, c: u64, node: &Arc<Node>, load: &Load<'_>, tl: &Timeline, stop: &AtomicBool) {
        let a = &self.cfg;
        let seed = a.seed.wrapping_add(c.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut ops = OpStream::new(a.ycsb_mix(), a.key_dist(), a.rows, seed);
        let mut rec = tl.client();
        // Open loop: this client's share of the rate, on a fixed schedule.
        let gap = (a.rate > 0.0).then(|| Duration::from_secs_f64(a.clients as f64 / a.rate));
        let start = Instant::now();
        let mut n: u32 = 0;
        let mut payload_rng = Rng::new(seed ^ 0x5555);
        while !load.stopped_or(stop) {
            let intended = match gap {
                Some(g) => {
                    let due = start + g.saturating_mul(n);
                    n = n.saturating_add(1);
                    // Slices, so that a long gap (a low rate) does not outlive the run.
                    while !load.stopped_or(stop) {
                        let now = Instant::now();
                        if due <= now {
                            break;
                        }
                        std::thread::sleep((due - now).min(Duration::from_millis(20)));
                    }
                    due
                }
                None => Instant::now(),
            };
            let op = ops.next_op();
            let v = payload_rng.next_u64();
            let r = self.one(node, op, v);
            let end = Instant::now();
            let (kind, outcome) = match r {
                Ok(()) => (kind_of(op), Outcome::Ok),
                Err(e) => {
                    let o = outcome_of(&e);
                    let _ = load.error("a YCSB operation", e);
                    (kind_of(op), o)
                }
            };
            rec.record(kind, intended, end, outcome);
        }
    }

    /// Carries out one operation; `v` seeds an update's new payload.
    fn one(&self, node: &Arc<Node>, op: Op, v: u64) -> Result<(), Error> {
        let a = &self.cfg;
        let key = |k: u64| [key_value(a.key_type, k)];
        let new_payload = |k: u64| payload(k, a.row_bytes as usize, v);
        let set = |k: u64| {
            let p = new_payload(k);
            move |r: &[Value]| {
                let mut r = r.to_vec();
                if let Some(f) = r.get_mut(1) {
                    *f = Value::Text(p.clone());
                }
                r
            }
        };
        let mut tx = node.begin()?;
        match op {
            Op::Read(k) => {
                tx.get(TABLE, &key(k))?;
                tx.rollback()
            }
            Op::Scan(k, n) => {
                for i in k..k.saturating_add(u64::from(n)) {
                    tx.get(TABLE, &key(i))?;
                }
                tx.rollback()
            }
            Op::Update(k) => {
                tx.update(TABLE, &key(k), set(k))?;
                tx.commit()
            }
            Op::ReadModifyWrite(k) => {
                tx.get(TABLE, &key(k))?;
                tx.update(TABLE, &key(k), set(k))?;
                tx.commit()
            }
            Op::Insert(_) => {
                // The stream's own count knows only its inserts: the key comes from
                // the counter all clients share.
                let k = self.next_insert.fetch_add(1, Ordering::AcqRel);
                tx.insert(TABLE, row(a.key_type, k, a.row_bytes as usize, v))?;
                tx.commit()
            }
        }
    }
}

/// The timeline's type of a YCSB operation.
fn kind_of(op: Op) -> TOp {
    match op {
        Op::Read(_) => TOp::Read,
        Op::Update(_) => TOp::Update,
        Op::Insert(_) => TOp::Insert,
        Op::Scan(..) => TOp::Scan,
        Op::ReadModifyWrite(_) => TOp::ReadModifyWrite,
    }
}
