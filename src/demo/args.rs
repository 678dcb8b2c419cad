//! The flags of `segexpand demo`: their bounds, their parsing (a bad number is refused
//! at parse time, naming its bounds) and the check of what the flags alone show to be
//! pointless, made before the data directory is touched.

use super::{bad, inspect_dir, DirState, Error, RealVfs};
use std::path::PathBuf;

/// Most rows `--rows` may ask for.
pub const ROWS_MAX: u64 = 1_000_000_000;
/// Most mover workers `--workers` may ask for.
pub const WORKERS_MAX: u64 = 64;
/// Bounds of `--idle-s` (seconds).
pub const IDLE_S_RANGE: (f64, f64) = (0.1, 3600.0);
/// Bounds of `--max-rows-per-s`.
pub const ROWS_PER_S_RANGE: (f64, f64) = (1.0, 1e9);

/// Arguments of `segexpand demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Data directory (created when missing).
    #[arg(long, default_value = crate::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Remove the data directory first and start over.
    #[arg(long)]
    pub fresh: bool,
    /// Rows to load (when the table does not exist yet): 1 to 1000000000.
    #[arg(long, default_value_t = 1_000_000, value_parser = parse_rows, allow_negative_numbers = true)]
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
    /// Mover workers: 1 to 64.
    #[arg(long, default_value_t = 2, value_parser = parse_workers, allow_negative_numbers = true)]
    pub workers: usize,
    /// Seconds of workload before the redistribution (the idle latency baseline): 0.1 to
    /// 3600.
    #[arg(long, default_value_t = 3.0, value_parser = parse_idle_s, allow_negative_numbers = true)]
    pub idle_s: f64,
    /// Throttle the mover to this many rows per second: 1 to 1e9 (no throttle when
    /// absent).
    #[arg(long, value_parser = parse_max_rows_per_s, allow_negative_numbers = true)]
    pub max_rows_per_s: Option<f64>,
}

/// A number for a message: `1e9` rather than `1000000000`.
fn num(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn parse_whole(s: &str, flag: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let refuse = || format!("{flag} must be a whole number between {lo} and {hi}, got {s}");
    let v: u64 = s.trim().parse().map_err(|_| refuse())?;
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(refuse())
    }
}

fn parse_number(s: &str, flag: &str, (lo, hi): (f64, f64), unit: &str) -> Result<f64, String> {
    let refuse = || {
        format!(
            "{flag} must be a number between {} and {}{unit}, got {s}",
            num(lo),
            num(hi)
        )
    };
    let v: f64 = s.trim().parse().map_err(|_| refuse())?;
    // NaN fails the range test too; so do infinities.
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(refuse())
    }
}

fn parse_rows(s: &str) -> Result<u64, String> {
    parse_whole(s, "--rows", 1, ROWS_MAX)
}

fn parse_workers(s: &str) -> Result<usize, String> {
    parse_whole(s, "--workers", 1, WORKERS_MAX).map(|v| v as usize)
}

fn parse_idle_s(s: &str) -> Result<f64, String> {
    parse_number(s, "--idle-s", IDLE_S_RANGE, " seconds")
}

fn parse_max_rows_per_s(s: &str) -> Result<f64, String> {
    parse_number(s, "--max-rows-per-s", ROWS_PER_S_RANGE, " rows per second")
}

/// Refuses what the arguments alone show to be pointless, before the directory is
/// touched: `--from` equal to `--to` on a directory without a node (or with `--fresh`)
/// has nothing to redistribute.
pub(super) fn check_args(a: &DemoArgs) -> Result<(), Error> {
    if a.from != a.to {
        return Ok(());
    }
    let new = a.fresh
        || matches!(
            inspect_dir(&RealVfs, &a.dir)?,
            DirState::Missing | DirState::Empty | DirState::CreateInterrupted
        );
    if new {
        return Err(bad(format!(
            "--from and --to are both {}: a new table would have nothing to redistribute; \
             nothing was changed (pick another --to)",
            a.to
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_numbers_are_refused_with_their_bounds() {
        assert_eq!(
            parse_idle_s("inf").unwrap_err(),
            "--idle-s must be a number between 0.1 and 3600 seconds, got inf"
        );
        for s in ["1e30", "NaN", "-1", "0", "0.05", "x"] {
            assert!(parse_idle_s(s).is_err(), "{s}");
        }
        assert_eq!(parse_idle_s("0.2"), Ok(0.2));
        assert!(parse_max_rows_per_s("1e-300")
            .unwrap_err()
            .contains("between 1 and 1e9 rows per second"));
        for s in ["0", "inf", "-5", "2e9", "nan"] {
            assert!(parse_max_rows_per_s(s).is_err(), "{s}");
        }
        assert_eq!(parse_max_rows_per_s("1e9"), Ok(1e9));
        assert_eq!(
            parse_workers("100000000").unwrap_err(),
            "--workers must be a whole number between 1 and 64, got 100000000"
        );
        assert!(parse_workers("0").is_err());
        assert_eq!(parse_workers("64"), Ok(64));
        assert!(parse_rows("0").is_err());
        assert!(parse_rows("1000000001").is_err());
        assert_eq!(parse_rows("1000000000"), Ok(ROWS_MAX));
    }
}
