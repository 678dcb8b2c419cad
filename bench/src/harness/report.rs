//! The end of a run: the summary (one `name value` line each, or with `--json` one JSON
//! object on stdout) and the verdict: the run fails, saying why, when a row was lost,
//! duplicated or not found by its key, the table does not match `demo_meta`, a checking
//! scan saw the invariant broken, or any check found a problem.

use super::check::Checked;
use super::config::Method;
use super::redistribution::Summary;
use super::schema::META;
use super::setup::Start;
use super::workload::Load;
use super::{bad, Config, Error, MoveCounts, PruneStats, Ran};
use crate::out;
use crate::timeline::{Op, Timeline, PHASES};
use std::sync::atomic::Ordering;

/// One line of the summary: a name and its value (JSON text: strings keep their
/// quotes).
pub type Field = (String, String);

/// The summary of the run and its verdict.
pub(super) fn report(
    a: &Config,
    ran: &Ran<'_>,
    start: &Start,
    end: &Checked,
    reclaimed: &PruneStats,
    (from, to): (u16, u16),
) -> (Vec<Field>, Result<(), Error>) {
    let verdict = Verdict::of(&ran.load, start, end);
    let mut fields = outcome_fields(a, end, &verdict, (from, to));
    fields.extend(movement_fields(&ran.moved.counts, (from, to)));
    fields.extend(workload_fields(&ran.load, end, &verdict));
    fields.extend(cost_fields(a, &ran.moved, reclaimed, end));
    let fields = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    (fields, verdict.result(&ran.load, end))
}

/// The checks that span the run: the balances, the table against `META` and the
/// start, and the transfers `META` gained against those the workload saw commit.
struct Verdict {
    checksum_ok: bool,
    meta_ok: bool,
    /// Transfers `META` gained in this run.
    transfers: i64,
    /// DML transactions the workload saw commit.
    dml_txns: u64,
}

impl Verdict {
    fn of(load: &Load<'_>, start: &Start, end: &Checked) -> Self {
        let v = &end.rows;
        let sum0 = start.meta.balance_sum;
        let checksum_ok = v.seen.balance_sum == sum0 && v.meta.balance_sum == sum0;
        let transfers = v.meta.transfers - start.meta.transfers;
        let dml_txns = load.dml_txns.load(Ordering::Acquire);
        let meta_ok = v.seen.matches(&v.meta)
            && v.meta.rows == start.meta.rows
            && transfers == dml_txns as i64;
        Verdict {
            checksum_ok,
            meta_ok,
            transfers,
            dml_txns,
        }
    }

    /// Ok when every check passed, else an error naming the main failures.
    fn result(&self, load: &Load<'_>, end: &Checked) -> Result<(), Error> {
        let v = &end.rows;
        let (transfers, dml_txns) = (self.transfers, self.dml_txns);
        let ok = v.lost == 0
            && v.dup == 0
            && v.by_key_missing == 0
            && end.placement_problems == 0
            && self.checksum_ok
            && self.meta_ok
            && end.verify_problems == 0
            && load.scan_mismatches.load(Ordering::Acquire) == 0
            && load.dml_rows_missing.load(Ordering::Acquire) == 0;
        if !ok {
            let mut why = Vec::new();
            if v.lost > 0 {
                why.push(format!("{} rows lost", v.lost));
            }
            let mismatches = load.scan_mismatches.load(Ordering::Acquire);
            if mismatches > 0 {
                why.push(format!(
                    "{mismatches} checking scans saw the row count or the balance sum broken"
                ));
            }
            if !self.meta_ok {
                why.push(format!(
                    "the table does not match {META} ({}; transfers committed {transfers}, \
                     acknowledged {dml_txns})",
                    v.seen.differences(&v.meta)
                ));
            }
            if why.is_empty() {
                why.push("see the summary".into());
            }
            return Err(bad(format!("check failed: {}", why.join("; "))));
        }
        Ok(())
    }
}

/// What the run was, and what it found: the rows, their placement, the checksums.
fn outcome_fields(
    a: &Config,
    end: &Checked,
    verdict: &Verdict,
    (from, to): (u16, u16),
) -> Vec<(&'static str, String)> {
    let v = &end.rows;
    let mode = match a.method {
        Method::Online => "online",
        Method::Offline => "offline",
        Method::Modulo => "modulo",
    };
    vec![
        ("mode", format!("\"{mode}\"")),
        ("from_segments", from.to_string()),
        ("to_segments", to.to_string()),
        ("rows_expected", v.meta.rows.to_string()),
        ("rows_found", v.found.to_string()),
        ("rows_lost", v.lost.to_string()),
        ("rows_duplicated", v.dup.to_string()),
        ("rows_not_found_by_key", v.by_key_missing.to_string()),
        ("placement_problems", end.placement_problems.to_string()),
        ("checksum_ok", verdict.checksum_ok.to_string()),
        ("meta_ok", verdict.meta_ok.to_string()),
    ]
}

/// How many rows moved, against the share that had to.
fn movement_fields(c: &MoveCounts, (from, to): (u16, u16)) -> Vec<(&'static str, String)> {
    let expected_fraction = f64::from(from.abs_diff(to)) / f64::from(from.max(to));
    let handled = handled(c);
    vec![
        ("rows_moved", c.rows_relocated.to_string()),
        ("rows_rewritten", c.rows_moved.to_string()),
        ("rows_flipped_in_place", c.rows_flipped.to_string()),
        (
            "moved_fraction",
            format!("{:.4}", c.rows_relocated as f64 / handled.max(1.0)),
        ),
        ("moved_fraction_expected", format!("{expected_fraction:.4}")),
    ]
}

/// The checking workload: point SELECT latencies before and during the
/// redistribution, its counters, and the transfers.
fn workload_fields(
    load: &Load<'_>,
    end: &Checked,
    verdict: &Verdict,
) -> Vec<(&'static str, String)> {
    let lat = |phase: usize| {
        load.timeline
            .phase_cells()
            .into_iter()
            .find(|(p, op, _)| *p == phase && *op == Op::PointSelect)
            .map(|(_, _, c)| c.lat.summary())
            .unwrap_or_default()
    };
    let (idle, during) = (lat(0), lat(1));
    let us = |ns: u64| format!("{:.1}", ns as f64 / 1e3);
    let v = &end.rows;
    let (transfers, dml_txns) = (verdict.transfers, verdict.dml_txns);
    vec![
        ("select_count_idle", idle.count.to_string()),
        ("select_p50_us_idle", us(idle.p50)),
        ("select_p99_us_idle", us(idle.p99)),
        ("select_count_during", during.count.to_string()),
        ("select_p50_us_during", us(during.p50)),
        ("select_p99_us_during", us(during.p99)),
        ("select_max_us_during", us(during.max)),
        (
            "select_errors",
            load.select_errors.load(Ordering::Acquire).to_string(),
        ),
        (
            "scan_mismatches",
            load.scan_mismatches.load(Ordering::Acquire).to_string(),
        ),
        ("scans", load.scans.load(Ordering::Acquire).to_string()),
        ("dml_transactions", dml_txns.to_string()),
        ("transfers_committed", transfers.to_string()),
        ("transfers_total", v.meta.transfers.to_string()),
        (
            "dml_errors",
            load.dml_errors.load(Ordering::Acquire).to_string(),
        ),
        (
            "dml_rows_missing",
            load.dml_rows_missing.load(Ordering::Acquire).to_string(),
        ),
    ]
}

/// What the redistribution cost: DML stalls, the mover's rate, the writes for rows that
/// stayed, the time, and the cleanup; and the directory's verification.
fn cost_fields(
    a: &Config,
    p: &Summary,
    reclaimed: &PruneStats,
    end: &Checked,
) -> Vec<(&'static str, String)> {
    let c = &p.counts;
    let handled = handled(c);
    vec![
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
        ("verify_problems", end.verify_problems.to_string()),
    ]
}

/// Rows the mover handled: moved, or flipped in place.
fn handled(c: &MoveCounts) -> f64 {
    (c.rows_moved + c.rows_flipped) as f64
}

/// The timeline's figures: the migration window (from the marks), per phase and
/// operation type the throughput, counts and latencies, the longest stretch of
/// intervals in which a write type completed nothing during the migration, and the
/// process's peak memory and mean CPU.
pub(super) fn timeline_fields(tl: &Timeline) -> Vec<Field> {
    let mut f: Vec<Field> = Vec::new();
    let mark = |w: &str| tl.mark_time(w);
    let (start, flip, end) = (mark("start"), mark("flip"), mark("end"));
    let num = |v: f64| {
        if v.is_finite() {
            format!("{v:.3}")
        } else {
            "null".into()
        }
    };
    f.push(("migration_start_s".into(), start.map_or("null".into(), num)));
    f.push(("migration_end_s".into(), flip.map_or("null".into(), num)));
    let window = match (start, flip) {
        (Some(s), Some(e)) => e - s,
        _ => 0.0,
    };
    f.push(("migration_s".into(), num(window)));
    // Phase lengths, for rates: before = 0..start, during = start..flip, after =
    // flip..end.
    let lens = [
        start.unwrap_or(0.0),
        window,
        match (flip, end) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        },
    ];
    // Every phase of every type that ran: a phase in which a type did nothing gives
    // zeros, not missing fields.
    let cells = tl.phase_cells();
    let ops: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|op| cells.iter().any(|(_, o, _)| o == op))
        .collect();
    let empty = crate::timeline::Cell::default();
    for (phase, op) in (0..PHASES.len()).flat_map(|p| ops.iter().map(move |&op| (p, op))) {
        let (Some(name), Some(len)) = (PHASES.get(phase), lens.get(phase)) else {
            continue;
        };
        let c = cells
            .iter()
            .find(|(p, o, _)| *p == phase && *o == op)
            .map_or(&empty, |x| &x.2);
        let s = c.lat.summary();
        let k = |what: &str| format!("{}_{what}_{name}", op.name());
        f.push((k("ok"), c.ok.to_string()));
        f.push((k("aborts"), c.aborts.to_string()));
        f.push((k("errors"), c.errors.to_string()));
        f.push((k("per_s"), num(c.ok as f64 / len.max(1e-9))));
        for (what, ns) in [
            ("p50_us", s.p50),
            ("p99_us", s.p99),
            ("p999_us", s.p999),
            ("max_us", s.max),
        ] {
            f.push((k(what), num(ns as f64 / 1e3)));
        }
    }
    for op in Op::ALL {
        let t = tl.total(op);
        if t.ok + t.aborts + t.errors > 0 {
            f.push((format!("{}_ok_total", op.name()), t.ok.to_string()));
            f.push((format!("{}_aborts_total", op.name()), t.aborts.to_string()));
            f.push((format!("{}_errors_total", op.name()), t.errors.to_string()));
        }
    }
    f.push((
        "longest_write_gap_ms".into(),
        num(longest_write_gap(tl, start, flip) * 1e3),
    ));
    let samples = tl.samples();
    let peak = samples.iter().map(|s| s.rss_mb).fold(0.0, f64::max);
    let cpu = samples.iter().map(|s| s.cpu_pct).sum::<f64>() / (samples.len().max(1) as f64);
    f.push(("rss_mb_peak".into(), num(peak)));
    f.push(("cpu_pct_mean_migration".into(), num(cpu)));
    f
}

/// The measured workload's own checks: no operation of any type failed (an abort — a
/// lock timeout or deadlock a client would retry — is not a failure), and the
/// scenario's main workload completed something.
pub(super) fn workload_verdict(a: &Config, tl: &Timeline) -> Result<(), Error> {
    let failed: Vec<String> = Op::ALL
        .iter()
        .filter_map(|&op| {
            let e = tl.total(op).errors;
            (e > 0).then(|| format!("{e} {} operations", op.name()))
        })
        .collect();
    if !failed.is_empty() {
        return Err(bad(format!("check failed: {} failed", failed.join(", "))));
    }
    let main = super::driver::main_ops(a);
    let done: u64 = Op::ALL
        .iter()
        .filter(|op| main.contains(&op.name()))
        .map(|&op| tl.total(op).ok)
        .sum();
    if done == 0 {
        return Err(bad(format!(
            "check failed: the workload's {} completed nothing",
            main.join("/")
        )));
    }
    Ok(())
}

/// The longest run of consecutive intervals, inside the migration window, in which a
/// write operation type that completed somewhere in the run completed nothing (s): the
/// unavailability a writer saw.
fn longest_write_gap(tl: &Timeline, start: Option<f64>, flip: Option<f64>) -> f64 {
    let (Some(start), Some(flip)) = (start, flip) else {
        return 0.0;
    };
    let step = tl.interval().as_secs_f64();
    let rows = tl.rows();
    let writes = [
        Op::Update,
        Op::Insert,
        Op::ReadModifyWrite,
        Op::Transfer,
        Op::Tpcb,
    ];
    let mut longest: f64 = 0.0;
    for op in writes {
        let mut run = 0.0;
        for r in rows.iter().filter(|r| r.op == op) {
            let inside = r.t_s + step > start && r.t_s < flip;
            if inside && r.ok == 0 {
                run += step;
                longest = longest.max(run);
            } else {
                run = 0.0;
            }
        }
    }
    longest
}

/// Prints the summary: one JSON object with `json`, else a line per field.
pub fn print(json: bool, fields: &[Field]) {
    if json {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        out::line(format_args!("{{{}}}", body.join(", ")));
    } else {
        out::line(format_args!("summary:"));
        for (k, v) in fields {
            out::line(format_args!("  {k:<28} {}", v.trim_matches('"')));
        }
    }
}
