//! The end of a run: the summary (one `name value` line each, or with `--json` one JSON
//! object on stdout) and the verdict: the run fails, saying why, when a row was lost,
//! duplicated or not found by its key, the table does not match `demo_meta`, or any
//! check found a problem.

use super::check::Checked;
use super::redistribution::Summary;
use super::schema::META;
use super::setup::Start;
use super::workload::Load;
use super::{bad, DemoArgs, Error, MoveCounts, PruneStats, Ran};
use crate::out;
use std::sync::atomic::Ordering;

/// One line of the summary: a name and its value (JSON: strings keep their quotes).
type Field = (&'static str, String);

/// Prints the summary of the run and returns its verdict.
pub(super) fn report(
    a: &DemoArgs,
    ran: &Ran,
    start: &Start,
    end: &Checked,
    reclaimed: &PruneStats,
    (from, to): (u16, u16),
) -> Result<(), Error> {
    let verdict = Verdict::of(&ran.load, start, end);
    let mut fields = outcome_fields(a, end, &verdict, (from, to));
    fields.extend(movement_fields(&ran.moved.counts, (from, to)));
    fields.extend(workload_fields(&ran.load, end, &verdict));
    fields.extend(cost_fields(a, &ran.moved, reclaimed, end));
    print(a, &fields);
    verdict.result(&ran.load, end)
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
    fn of(load: &Load, start: &Start, end: &Checked) -> Self {
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
    fn result(&self, load: &Load, end: &Checked) -> Result<(), Error> {
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
            return Err(bad(format!("demo check failed: {}", why.join("; "))));
        }
        Ok(())
    }
}

/// What the run was, and what it found: the rows, their placement, the checksums.
fn outcome_fields(
    a: &DemoArgs,
    end: &Checked,
    verdict: &Verdict,
    (from, to): (u16, u16),
) -> Vec<Field> {
    let v = &end.rows;
    vec![
        (
            "mode",
            format!("\"{}\"", if a.offline { "offline" } else { "online" }),
        ),
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
fn movement_fields(c: &MoveCounts, (from, to): (u16, u16)) -> Vec<Field> {
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

/// The workload: SELECT latencies idle and during the redistribution, its counters,
/// and the transfers.
fn workload_fields(load: &Load, end: &Checked, verdict: &Verdict) -> Vec<Field> {
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
    let v = &end.rows;
    let (transfers, dml_txns) = (verdict.transfers, verdict.dml_txns);
    vec![
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
fn cost_fields(a: &DemoArgs, p: &Summary, reclaimed: &PruneStats, end: &Checked) -> Vec<Field> {
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

/// Prints the summary: one JSON object with `--json`, else a line per field.
fn print(a: &DemoArgs, fields: &[Field]) {
    if a.json {
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

/// The `p` quantile of sorted nanosecond latencies, in µs (0 when empty).
fn percentile(v: &[u64], p: f64) -> String {
    let i = (v.len().saturating_sub(1) as f64 * p).round() as usize;
    format!("{:.1}", v.get(i).copied().map_or(0.0, |ns| ns as f64 / 1e3))
}
