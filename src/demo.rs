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

use segexpand_engine::redistribute::{BatchLimits, MoveCounts};
use segexpand_engine::verify::verify_dir;
use segexpand_engine::vfs::RealVfs;
use segexpand_engine::{Error, Layout, Node, NodeOptions, Row, TableSpec, Type, Value};
use segexpand_redistributor::{Finish, Options, Redistributor};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `segexpand demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Data directory (created when missing).
    #[arg(long, default_value = crate::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Remove the data directory first and start over.
    #[arg(long)]
    pub fresh: bool,
    /// Rows to load (when the table does not exist yet).
    #[arg(long, default_value_t = 1_000_000)]
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
    /// Mover workers.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Seconds of workload before the redistribution (the idle latency baseline).
    #[arg(long, default_value_t = 3.0)]
    pub idle_s: f64,
    /// Throttle the mover to this many rows per second.
    #[arg(long)]
    pub max_rows_per_s: Option<f64>,
}

const TABLE: &str = "demo_accounts";
const BATCH_ROWS: u64 = 100_000;

fn row(id: u64) -> Row {
    // About 100 bytes: id, balance, and a deterministic 70-character note.
    let note: String = (0..70)
        .map(|i| (b'a' + ((id + i) % 26) as u8) as char)
        .collect();
    vec![
        Value::Int8(id as i64),
        Value::Int8((id * 7919 % 100_000) as i64),
        Value::Text(note),
    ]
}

fn bad(m: impl Into<String>) -> Error {
    Error::InvalidArgument(m.into())
}

fn int(r: &[Value], i: usize) -> i64 {
    r.get(i).and_then(Value::as_int).unwrap_or(i64::MIN)
}

/// Prints to stdout unless the summary is JSON (stdout then holds only the object).
macro_rules! say {
    ($a:expr, $($t:tt)*) => {
        if $a.json { eprintln!($($t)*) } else { println!($($t)*) }
    };
}

/// The workload's shared state.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    /// 0 idle, 1 during the redistribution, 2 after.
    phase: AtomicU8,
    select_errors: AtomicU64,
    dml_errors: AtomicU64,
    scan_mismatches: AtomicU64,
    scans: AtomicU64,
    dml_txns: AtomicU64,
    /// SELECT latencies (ns) per phase.
    lat: [parking_lot::Mutex<Vec<u64>>; 3],
}

/// The `p` quantile of sorted nanosecond latencies, in µs (0 when empty).
fn percentile(v: &[u64], p: f64) -> String {
    let i = (v.len().saturating_sub(1) as f64 * p).round() as usize;
    format!("{:.1}", v.get(i).copied().map_or(0.0, |ns| ns as f64 / 1e3))
}

/// Runs the demo.
pub fn run(a: &DemoArgs) -> Result<(), Error> {
    if a.fresh && a.dir.exists() {
        std::fs::remove_dir_all(&a.dir).map_err(|e| Error::io("remove", &a.dir, e))?;
    }
    let opts = NodeOptions::default();
    let node = if a.dir.join(segexpand_engine::node::CONTROL_FILE).exists() {
        say!(
            a,
            "reopening {} (recovery runs if it was not shut down cleanly)",
            a.dir.display()
        );
        Node::open_dir(&a.dir, opts.clone())?
    } else {
        std::fs::create_dir_all(&a.dir).map_err(|e| Error::io("mkdir", &a.dir, e))?;
        say!(
            a,
            "creating a node of {} segments in {}",
            a.from,
            a.dir.display()
        );
        Node::create_dir(&a.dir, a.from, opts.clone())?
    };
    prepare_table(a, &node)?;
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
    let from = def.layout.segments;
    let to = if from == a.to { a.from } else { a.to };
    if from == to {
        return Err(bad(format!(
            "the table already has {to} segments: nothing to redistribute (use --to)"
        )));
    }
    while (node.segments().len() as u16) < to {
        let c = node.add_new_segment()?;
        say!(a, "added segment {c}");
    }
    // The starting state: every id and the checksum (sum of balances).
    let (mut ids, sum0) = {
        let mut tx = node.begin()?;
        let mut ids = Vec::new();
        let mut sum = 0i64;
        tx.scan_with(TABLE, |r| {
            ids.push(int(r, 0));
            sum += int(r, 1);
        })?;
        tx.rollback()?;
        (ids, sum)
    };
    ids.sort_unstable();
    let rows0 = ids.len() as u64;
    say!(
        a,
        "{rows0} rows in {from} segments; redistributing to {to} {} under a workload of \
         point SELECTs, checking scans and UPDATE/INSERT/DELETE transactions",
        if a.offline {
            "OFFLINE (locked, full rewrite)"
        } else {
            "online"
        }
    );

    let load = Arc::new(Load::default());
    let next_id = AtomicU64::new(ids.last().map_or(0, |m| *m as u64 + 1));
    let live = parking_lot::Mutex::new(ids);
    let target = Layout {
        segments: to,
        ..def.layout.clone()
    };
    let mut summary = Summary::default();
    std::thread::scope(|s| -> Result<(), Error> {
        s.spawn(|| point_selects(&node, &load, rows0));
        s.spawn(|| scans(&node, &load, rows0, sum0));
        s.spawn(|| dml(&node, &load, &live, &next_id));
        std::thread::sleep(Duration::from_secs_f64(a.idle_s.max(0.1)));
        load.phase.store(1, Ordering::Release);
        let r = redistribute(a, &node, target.clone(), &mut summary);
        load.phase.store(2, Ordering::Release);
        std::thread::sleep(Duration::from_millis(300));
        load.stop.store(true, Ordering::Release);
        r
    })?;

    // Cleanup and retirement, then verify every row.
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
    let expected = live.into_inner();
    let (found, dup, lost, by_key_missing, sum) = verify_rows(&node, &expected)?;
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
    let p = &summary;
    let c = &p.counts;
    let handled = (c.rows_moved + c.rows_flipped) as f64;
    let fields: Vec<(&str, String)> = vec![
        (
            "mode",
            format!("\"{}\"", if a.offline { "offline" } else { "online" }),
        ),
        ("from_segments", from.to_string()),
        ("to_segments", to.to_string()),
        ("rows_expected", expected.len().to_string()),
        ("rows_found", found.to_string()),
        ("rows_lost", lost.to_string()),
        ("rows_duplicated", dup.to_string()),
        ("rows_not_found_by_key", by_key_missing.to_string()),
        ("placement_problems", placement.len().to_string()),
        ("checksum_ok", (sum == sum0).to_string()),
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
        (
            "dml_transactions",
            load.dml_txns.load(Ordering::Acquire).to_string(),
        ),
        (
            "dml_errors",
            load.dml_errors.load(Ordering::Acquire).to_string(),
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
        println!("{{{}}}", body.join(", "));
    } else {
        println!("summary:");
        for (k, v) in &fields {
            println!("  {k:<28} {}", v.trim_matches('"'));
        }
    }
    let ok = lost == 0
        && dup == 0
        && by_key_missing == 0
        && placement.is_empty()
        && sum == sum0
        && report.problems.is_empty()
        && load.scan_mismatches.load(Ordering::Acquire) == 0;
    if !ok {
        return Err(bad("demo check failed: see the summary"));
    }
    Ok(())
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
        workers: a.workers.max(1),
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
                    eprint!("\r{line}");
                } else {
                    eprintln!("{line}");
                }
            }
            if tty {
                eprintln!();
            }
        });
        let o = r.run();
        done.store(true, Ordering::Release);
        o
    })?;
    if outcome.finish != Finish::Flipped {
        return Err(bad(format!("redistribution ended {:?}", outcome.finish)));
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

fn point_selects(node: &Node, load: &Load, rows: u64) {
    let mut x = 0x9e37_79b9_u64;
    let mut local: [Vec<u64>; 3] = Default::default();
    while !load.stop.load(Ordering::Acquire) {
        let Ok(mut tx) = node.begin() else {
            load.select_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % rows.max(1)) as i64;
            let phase = usize::from(load.phase.load(Ordering::Acquire)).min(2);
            let t = Instant::now();
            let r = tx.get(TABLE, &[Value::Int8(id)]);
            let ns = t.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
            if r.is_err() {
                load.select_errors.fetch_add(1, Ordering::Relaxed);
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

fn scans(node: &Node, load: &Load, rows: u64, sum0: i64) {
    while !load.stop.load(Ordering::Acquire) {
        let r = (|| -> Result<(u64, i64), Error> {
            let mut tx = node.begin()?;
            let mut sum = 0i64;
            let n = tx.scan_with(TABLE, |r| sum += int(r, 1))?;
            tx.rollback()?;
            Ok((n, sum))
        })();
        match r {
            Ok((n, sum)) => {
                if n != rows || sum != sum0 {
                    eprintln!("scan saw {n} rows with checksum {sum}; expected {rows} and {sum0}");
                    load.scan_mismatches.fetch_add(1, Ordering::Relaxed);
                }
                load.scans.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                load.select_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Transfers between two rows; every fourth transaction also replaces a row by a new
/// id carrying its balance (DELETE + INSERT). Row count and balance sum stay constant.
fn dml(node: &Node, load: &Load, live: &parking_lot::Mutex<Vec<i64>>, next_id: &AtomicU64) {
    let mut x = 0x2545_f491_u64;
    let mut n = 0u64;
    while !load.stop.load(Ordering::Acquire) {
        n += 1;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (i, j, amount) = (rnd(), rnd(), (rnd() % 100) as i64);
        let r = (|| -> Result<Option<(usize, i64)>, Error> {
            let ids = live.lock();
            let len = ids.len().max(1) as u64;
            let (ia, ib) = ((i % len) as usize, (j % len) as usize);
            let (a, b) = (ids.get(ia).copied(), ids.get(ib).copied());
            drop(ids);
            let (Some(a), Some(b)) = (a, b) else {
                return Ok(None);
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
                tx.update(TABLE, &[Value::Int8(a)], add(-amount))?;
                tx.update(TABLE, &[Value::Int8(b)], add(amount))?;
            }
            let mut replaced = None;
            if n.is_multiple_of(4) {
                let old = tx.get(TABLE, &[Value::Int8(a)])?;
                if let Some(r) = old.first() {
                    let new_id = next_id.fetch_add(1, Ordering::AcqRel) as i64;
                    tx.delete(TABLE, &[Value::Int8(a)])?;
                    let mut r = r.clone();
                    if let Some(v) = r.get_mut(0) {
                        *v = Value::Int8(new_id);
                    }
                    tx.insert(TABLE, r)?;
                    replaced = Some((ia, new_id));
                }
            }
            tx.commit()?;
            Ok(replaced)
        })();
        match r {
            Ok(Some((ia, new_id))) => {
                if let Some(v) = live.lock().get_mut(ia) {
                    *v = new_id;
                }
                load.dml_txns.fetch_add(1, Ordering::Relaxed);
            }
            Ok(None) => {
                load.dml_txns.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                eprintln!("DML transaction failed: {e}");
                load.dml_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Every expected id: found once by the scan (lost and duplicated counted) and once by
/// its key; returns (found, duplicated, lost, not found by key, balance sum).
fn verify_rows(node: &Node, expected: &[i64]) -> Result<(u64, u64, u64, u64, i64), Error> {
    let mut tx = node.begin()?;
    let mut seen: HashMap<i64, u32> = HashMap::with_capacity(expected.len());
    let mut sum = 0i64;
    let found = tx.scan_with(TABLE, |r| {
        *seen.entry(int(r, 0)).or_default() += 1;
        sum += int(r, 1);
    })?;
    let dup = seen
        .values()
        .filter(|c| **c > 1)
        .map(|c| u64::from(*c - 1))
        .sum();
    let lost = expected.iter().filter(|id| !seen.contains_key(id)).count() as u64;
    let mut by_key_missing = 0;
    for id in expected {
        if tx.get(TABLE, &[Value::Int8(*id)])?.len() != 1 {
            by_key_missing += 1;
        }
    }
    tx.rollback()?;
    Ok((found, dup, lost, by_key_missing, sum))
}

/// Creates and bulk-loads the table when it does not exist.
fn prepare_table(a: &DemoArgs, node: &Node) -> Result<(), Error> {
    match node.table_def(TABLE) {
        Ok(_) => Ok(()),
        Err(Error::NoSuchTable(_)) => {
            node.create_table(
                &TableSpec::new(TABLE)
                    .not_null("id", Type::Int8)
                    .not_null("balance", Type::Int8)
                    .column("note", Type::Text)
                    .distributed_by(&["id"])
                    .segments(a.from.min(node.segments().len() as u16)),
            )?;
            let start = Instant::now();
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let mut done = 0;
            while done < a.rows {
                let end = (done + BATCH_ROWS).min(a.rows);
                node.bulk_load(TABLE, (done..end).map(row))?;
                done = end;
                if tty {
                    eprint!("\rloading: {done}/{} rows", a.rows);
                }
            }
            let s = start.elapsed().as_secs_f64();
            if tty {
                eprintln!();
            }
            say!(
                a,
                "bulk-loaded {} rows in {s:.2} s ({:.0} rows/s, durable after each {BATCH_ROWS})",
                a.rows,
                a.rows as f64 / s
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}
