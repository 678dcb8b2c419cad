//! Slow point SELECTs (issue 10): counts point SELECTs slower than 1 ms and 4 ms while
//! the node is idle and while an online redistribution runs, next to how long this
//! machine deschedules a busy thread on its own (the "stall floor").
//!
//! Each run creates a fresh node in a temp dir under `bench/`, bulk-loads a table like
//! the demo's (`accounts`: `id int8 not null` as the distribution key, `balance int8`,
//! a 70-character `pad`), ~100-byte rows on `--from` segments, and starts:
//!
//! - `--readers` point-SELECT threads: begin, `get` one random id by key (timed from
//!   before the begin to the end of the get), then roll back (`--commit-reads`: commit);
//! - one DML thread: transfers between two random ids (two UPDATEs by key, one durable
//!   commit), throughout;
//! - one stall-floor thread (unless `--no-floor`): spins on `Instant::now()` and records
//!   every gap > 1 ms between consecutive readings — time the OS/VM took the CPU away
//!   from a thread that never blocks. It burns one core on purpose.
//!
//! Phases: IDLE for `--idle-s` seconds, then DURING MOVE: an online redistribution to
//! `--to` segments through `segexpand_redistributor` (start, move everything with
//! `--workers` mover threads, flip), as `segexpand demo` runs it. Per run and phase it
//! prints the SELECT count, how many took > 1 ms and > 4 ms, the max and p99, and the
//! floor's gaps > 1 ms and their max; then a summary over all runs. `--csv` adds
//! machine-readable lines (`csv,...`, one header line first).
//!
//! Only the engine's root re-exports and the redistributor's public API as `src/demo.rs`
//! uses them, so `bench/compare.sh` can drop this file into older commits.
//!
//! `cargo run --release -p segexpand-bench --example select_stall_probe -- [--runs N]
//! [--rows N] [--readers N] [--idle-s S] [--from N] [--to N] [--workers N] [--csv]
//! [--no-floor] [--commit-reads]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::{Layout, Node, NodeOptions, TableSpec, Type, Value};
use segexpand_redistributor::{Finish, Options, Redistributor};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TABLE: &str = "accounts";
const IDLE: usize = 0;
const DURING: usize = 1;
/// After the flip, while the threads are told to stop (not reported).
const AFTER: usize = 2;
const PHASES: [&str; 2] = ["IDLE", "DURING"];
const SLOW_1MS: u64 = 1_000_000;
const SLOW_4MS: u64 = 4_000_000;

#[derive(Debug, Clone)]
struct Args {
    runs: usize,
    rows: u64,
    readers: usize,
    idle_s: f64,
    from: u16,
    to: u16,
    workers: usize,
    csv: bool,
    floor: bool,
    commit_reads: bool,
}

const USAGE: &str = "select_stall_probe [--runs N (3)] [--rows N (200000)] [--readers N (1)] \
[--idle-s S (3)] [--from N (3)] [--to N (5)] [--workers N (2)] [--csv] [--no-floor] \
[--commit-reads]";

fn parse_args() -> Args {
    let mut a = Args {
        runs: 3,
        rows: 200_000,
        readers: 1,
        idle_s: 3.0,
        from: 3,
        to: 5,
        workers: 2,
        csv: false,
        floor: true,
        commit_reads: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> String {
            it.next()
                .unwrap_or_else(|| die(&format!("{name} needs a value")))
        };
        match flag.as_str() {
            "--runs" => a.runs = num(&value("--runs"), "--runs"),
            "--rows" => a.rows = num(&value("--rows"), "--rows"),
            "--readers" => a.readers = num(&value("--readers"), "--readers"),
            "--idle-s" => a.idle_s = num(&value("--idle-s"), "--idle-s"),
            "--from" => a.from = num(&value("--from"), "--from"),
            "--to" => a.to = num(&value("--to"), "--to"),
            "--workers" => a.workers = num(&value("--workers"), "--workers"),
            "--csv" => a.csv = true,
            "--no-floor" => a.floor = false,
            "--commit-reads" => a.commit_reads = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => die(&format!("unknown argument {other}")),
        }
    }
    if a.runs == 0 || a.rows == 0 || a.readers == 0 || a.workers == 0 {
        die("--runs, --rows, --readers and --workers must be at least 1");
    }
    if !(a.idle_s.is_finite() && a.idle_s > 0.0) {
        die("--idle-s must be a positive number of seconds");
    }
    if a.from == 0 || a.to == 0 || a.from == a.to {
        die("--from and --to must be different segment counts of at least 1");
    }
    a
}

fn die(m: &str) -> ! {
    eprintln!("select_stall_probe: {m}\nusage: {USAGE}");
    std::process::exit(2)
}

fn num<T: std::str::FromStr>(s: &str, name: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| die(&format!("{name}: not a number: {s}")))
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// One phase's figures of one run (or of all runs, in the summary).
#[derive(Debug, Default, Clone)]
struct PhaseStats {
    secs: f64,
    /// Point-SELECT latencies (ns), sorted.
    lat: Vec<u64>,
    select_errors: u64,
    floor_gaps: u64,
    floor_max_ns: u64,
    floor_stalled_ns: u64,
    dml_txns: u64,
    dml_errors: u64,
}

impl PhaseStats {
    fn slow(&self, ns: u64) -> usize {
        self.lat.len() - self.lat.partition_point(|&l| l <= ns)
    }
    fn max_ms(&self) -> f64 {
        self.lat.last().copied().unwrap_or(0) as f64 / 1e6
    }
    fn p99_us(&self) -> f64 {
        let i = (self.lat.len().saturating_sub(1) as f64 * 0.99).round() as usize;
        self.lat.get(i).copied().unwrap_or(0) as f64 / 1e3
    }
    fn merge(&mut self, o: &PhaseStats) {
        self.secs += o.secs;
        self.lat.extend_from_slice(&o.lat);
        self.lat.sort_unstable();
        self.select_errors += o.select_errors;
        self.floor_gaps += o.floor_gaps;
        self.floor_max_ns = self.floor_max_ns.max(o.floor_max_ns);
        self.floor_stalled_ns += o.floor_stalled_ns;
        self.dml_txns += o.dml_txns;
        self.dml_errors += o.dml_errors;
    }
}

/// What one run measured besides the phases.
#[derive(Debug, Default, Clone, Copy)]
struct MoveStats {
    load_s: f64,
    move_s: f64,
    start_stall_us: u64,
    flip_stall_us: u64,
    rows_relocated: u64,
}

struct Shared {
    stop: AtomicBool,
    phase: AtomicU8,
}

impl Shared {
    fn phase(&self) -> usize {
        usize::from(self.phase.load(Ordering::Acquire)).min(AFTER)
    }
}

/// Point SELECTs until stopped: per phase, every statement's latency and the errors.
fn reader(
    node: &Arc<Node>,
    sh: &Shared,
    rows: u64,
    seed: u64,
    commit: bool,
) -> [(Vec<u64>, u64); 3] {
    let mut out: [(Vec<u64>, u64); 3] = Default::default();
    let mut x = seed | 1;
    while !sh.stop.load(Ordering::Acquire) {
        let id = (xorshift(&mut x) % rows) as i64;
        let phase = sh.phase();
        let t = Instant::now();
        let r = node.begin().and_then(|mut tx| {
            let got = tx.get(TABLE, &[Value::Int8(id)]);
            let ns = t.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
            let end = if commit { tx.commit() } else { tx.rollback() };
            got.and_then(|rows| end.map(|()| (ns, rows.len())))
        });
        match r {
            Ok((ns, 1)) => out[phase].0.push(ns),
            Ok((_, n)) => {
                out[phase].1 += 1;
                if out[phase].1 <= 3 {
                    eprintln!("point SELECT of id {id} found {n} rows");
                }
            }
            Err(e) => {
                out[phase].1 += 1;
                if out[phase].1 <= 3 {
                    eprintln!("point SELECT of id {id} failed: {e}");
                }
            }
        }
    }
    out
}

/// Transfers between random ids until stopped: per phase, transactions committed and
/// failed.
fn writer(node: &Arc<Node>, sh: &Shared, rows: u64) -> [(u64, u64); 3] {
    let mut out = [(0u64, 0u64); 3];
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    while !sh.stop.load(Ordering::Acquire) {
        let a = (xorshift(&mut x) % rows) as i64;
        let b = (xorshift(&mut x) % rows) as i64;
        let amount = (xorshift(&mut x) % 100) as i64;
        let phase = sh.phase();
        let r = node.begin().and_then(|mut tx| {
            for (id, d) in [(a, -amount), (b, amount)] {
                tx.update(TABLE, &[Value::Int8(id)], |r| {
                    let mut r = r.to_vec();
                    if let Some(v) = r.get_mut(1) {
                        *v = Value::Int8(v.as_int().unwrap_or(0) + d);
                    }
                    r
                })?;
            }
            tx.commit()
        });
        match r {
            Ok(()) => out[phase].0 += 1,
            Err(e) => {
                out[phase].1 += 1;
                if out[phase].1 <= 3 {
                    eprintln!("DML transaction failed: {e}");
                }
            }
        }
    }
    out
}

/// Spins on the clock until stopped: per phase, gaps > 1 ms (count, max, sum in ns).
fn floor(sh: &Shared) -> [(u64, u64, u64); 3] {
    let mut out = [(0u64, 0u64, 0u64); 3];
    let mut last = Instant::now();
    while !sh.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let gap = now
            .duration_since(last)
            .as_nanos()
            .min(u128::from(u64::MAX)) as u64;
        if gap > SLOW_1MS {
            let o = &mut out[sh.phase()];
            o.0 += 1;
            o.1 = o.1.max(gap);
            o.2 += gap;
        }
        last = now;
    }
    out
}

fn run_once(a: &Args) -> ([PhaseStats; 2], MoveStats) {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let node = Node::create_dir(dir.path(), a.from.max(a.to), NodeOptions::default()).unwrap();
    node.create_table(
        &TableSpec::new(TABLE)
            .not_null("id", Type::Int8)
            .column("balance", Type::Int8)
            .column("pad", Type::Text)
            .distributed_by(&["id"])
            .segments(a.from),
    )
    .unwrap();
    let mut ms = MoveStats::default();
    let t = Instant::now();
    node.bulk_load(
        TABLE,
        (0..a.rows as i64).map(|i| {
            let pad: String = (0..70)
                .map(|k| (b'a' + ((i + k) % 26) as u8) as char)
                .collect();
            vec![
                Value::Int8(i),
                Value::Int8(i.wrapping_mul(7919) % 100_000),
                Value::Text(pad),
            ]
        }),
    )
    .unwrap();
    ms.load_s = t.elapsed().as_secs_f64();
    let target = Layout {
        segments: a.to,
        ..node.table_def(TABLE).unwrap().layout
    };
    let sh = Shared {
        stop: AtomicBool::new(false),
        phase: AtomicU8::new(IDLE as u8),
    };
    let mut phase_s = [0.0f64; 2];
    let (reads, dml, gaps) = std::thread::scope(|s| {
        let readers: Vec<_> = (0..a.readers)
            .map(|i| {
                let (node, sh) = (&node, &sh);
                let seed = 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1);
                s.spawn(move || reader(node, sh, a.rows, seed, a.commit_reads))
            })
            .collect();
        let dml = s.spawn(|| writer(&node, &sh, a.rows));
        let fl = a.floor.then(|| s.spawn(|| floor(&sh)));

        let t_idle = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(a.idle_s));
        phase_s[IDLE] = t_idle.elapsed().as_secs_f64();
        sh.phase.store(DURING as u8, Ordering::Release);
        let t_move = Instant::now();
        let opts = Options {
            workers: a.workers,
            ..Options::default()
        };
        let moved = Redistributor::start(node.clone(), TABLE, target, opts).and_then(|r| {
            let outcome = r.run()?;
            Ok((r.start_report(), outcome))
        });
        ms.move_s = t_move.elapsed().as_secs_f64();
        phase_s[DURING] = ms.move_s;
        sh.phase.store(AFTER as u8, Ordering::Release);
        sh.stop.store(true, Ordering::Release);
        let reads: Vec<_> = readers.into_iter().map(|h| h.join().unwrap()).collect();
        let dml = dml.join().unwrap();
        let gaps = fl.map(|h| h.join().unwrap()).unwrap_or_default();
        let (start, outcome) = moved.unwrap();
        assert_eq!(
            outcome.finish,
            Finish::Flipped,
            "the redistribution did not flip"
        );
        ms.start_stall_us = start.map_or(0, |s| s.dml_stall_us_max);
        ms.flip_stall_us = outcome.flip.map_or(0, |f| f.dml_stall_us_max);
        ms.rows_relocated = outcome.progress.counts.rows_relocated;
        (reads, dml, gaps)
    });
    node.close().unwrap();
    drop(node);
    let stats = [IDLE, DURING].map(|p| {
        let mut st = PhaseStats {
            secs: phase_s[p],
            floor_gaps: gaps[p].0,
            floor_max_ns: gaps[p].1,
            floor_stalled_ns: gaps[p].2,
            dml_txns: dml[p].0,
            dml_errors: dml[p].1,
            ..PhaseStats::default()
        };
        for r in &reads {
            st.lat.extend_from_slice(&r[p].0);
            st.select_errors += r[p].1;
        }
        st.lat.sort_unstable();
        st
    });
    (stats, ms)
}

fn human(label: &str, phase: &str, st: &PhaseStats, floor_on: bool) -> String {
    let floor = if floor_on {
        format!(
            "floor gaps>1ms {:>4}  max {:>6.2} ms  stalled {:>6.1} ms",
            st.floor_gaps,
            st.floor_max_ns as f64 / 1e6,
            st.floor_stalled_ns as f64 / 1e6
        )
    } else {
        "floor off".to_string()
    };
    format!(
        "{label:<7} {phase:<6} {:>6.2} s: selects {:>8}  >1ms {:>4}  >4ms {:>4}  max {:>7.2} ms  \
         p99 {:>6.1} us  errors {} | {floor} | dml {} txns, {} errors",
        st.secs,
        st.lat.len(),
        st.slow(SLOW_1MS),
        st.slow(SLOW_4MS),
        st.max_ms(),
        st.p99_us(),
        st.select_errors,
        st.dml_txns,
        st.dml_errors
    )
}

const CSV_HEADER: &str = "csv,run,phase,secs,selects,gt1ms,gt4ms,max_ms,p99_us,select_errors,\
floor_gaps_gt1ms,floor_max_ms,floor_stalled_ms,dml_txns,dml_errors,move_s,start_stall_us,\
flip_stall_us";

fn csv(run: &str, phase: &str, st: &PhaseStats, m: &MoveStats, floor_on: bool) -> String {
    let fl = |v: String| if floor_on { v } else { String::new() };
    format!(
        "csv,{run},{phase},{:.3},{},{},{},{:.3},{:.1},{},{},{},{},{},{},{:.3},{},{}",
        st.secs,
        st.lat.len(),
        st.slow(SLOW_1MS),
        st.slow(SLOW_4MS),
        st.max_ms(),
        st.p99_us(),
        st.select_errors,
        fl(st.floor_gaps.to_string()),
        fl(format!("{:.3}", st.floor_max_ns as f64 / 1e6)),
        fl(format!("{:.1}", st.floor_stalled_ns as f64 / 1e6)),
        st.dml_txns,
        st.dml_errors,
        m.move_s,
        m.start_stall_us,
        m.flip_stall_us
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() {
    let a = parse_args();
    println!(
        "select_stall_probe: {} rows, {} -> {} segments, {} reader(s) ({}), 1 DML thread, \
         {} mover workers, idle {:.1} s, {} run(s), stall floor thread {}; {} cores",
        a.rows,
        a.from,
        a.to,
        a.readers,
        if a.commit_reads {
            "begin, get, commit"
        } else {
            "begin, get, rollback"
        },
        a.workers,
        a.idle_s,
        a.runs,
        if a.floor { "on" } else { "off" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if a.csv {
        println!("{CSV_HEADER}");
    }
    let mut all: [PhaseStats; 2] = Default::default();
    let mut moves = Vec::new();
    for run in 1..=a.runs {
        let (stats, m) = run_once(&a);
        println!(
            "run {run}: loaded {} rows in {:.2} s; move {} -> {}: {:.2} s ({} rows relocated; \
             start stall {} us, flip stall {} us)",
            a.rows,
            m.load_s,
            a.from,
            a.to,
            m.move_s,
            m.rows_relocated,
            m.start_stall_us,
            m.flip_stall_us
        );
        for (p, st) in stats.iter().enumerate() {
            println!("{}", human(&format!("run {run}"), PHASES[p], st, a.floor));
            if a.csv {
                println!("{}", csv(&run.to_string(), PHASES[p], st, &m, a.floor));
            }
            all[p].merge(st);
        }
        moves.push(m);
    }
    let med = |f: fn(&MoveStats) -> f64| median(moves.iter().map(f).collect());
    let m = MoveStats {
        load_s: med(|m| m.load_s),
        move_s: med(|m| m.move_s),
        start_stall_us: med(|m| m.start_stall_us as f64) as u64,
        flip_stall_us: med(|m| m.flip_stall_us as f64) as u64,
        rows_relocated: med(|m| m.rows_relocated as f64) as u64,
    };
    println!(
        "summary over {} run(s) (counts summed, max of maxima, p99 of all statements; move \
         figures are medians): move {:.2} s, start stall {} us, flip stall {} us",
        a.runs, m.move_s, m.start_stall_us, m.flip_stall_us
    );
    for (p, st) in all.iter().enumerate() {
        println!("{}", human("all", PHASES[p], st, a.floor));
        if a.csv {
            println!("{}", csv("all", PHASES[p], st, &m, a.floor));
        }
    }
}
