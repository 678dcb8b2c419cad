//! What one harness run does (a scenario): the data, the workload, the
//! reconfiguration and the timing; read from TOML (every key optional, unknown keys
//! refused), overridden by flags, and checked whole before anything is touched, with
//! an error naming the key and its bounds. `segexpand demo` is this with the defaults.

use super::{bad, inspect_dir, DirState, Error, RealVfs};
use crate::workload::keys::KeyDist;
use crate::workload::ycsb::Mix;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Most rows `rows` may ask for.
pub const ROWS_MAX: u64 = 1_000_000_000;
/// Most mover workers.
pub const WORKERS_MAX: u64 = 64;
/// Bounds of `idle_s` and `after_s` (seconds).
pub const IDLE_S_RANGE: (f64, f64) = (0.1, 3600.0);
/// Bounds of `max_rows_per_s`.
pub const ROWS_PER_S_RANGE: (f64, f64) = (1.0, 1e9);
/// Bounds of `max_mb_per_s`.
pub const MB_PER_S_RANGE: (f64, f64) = (0.01, 1e6);
/// Bounds of `row_bytes` (the payload text of a row; the engine's text limit is 4096).
pub const ROW_BYTES_RANGE: (u64, u64) = (1, 4096);
/// Most intervals the baseline and the time after may span: each interval keeps its
/// histogram's non-empty buckets per operation type (a few KiB) until the run ends.
pub const INTERVALS_MAX: f64 = 1_000_000.0;
/// Most workload clients.
pub const CLIENTS_MAX: u64 = 256;
/// Bounds of `interval_ms`.
pub const INTERVAL_MS_RANGE: (u64, u64) = (10, 60_000);

/// The workload besides the checking one (which always runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Only the checking workload, on a table of `rows` rows.
    Checking,
    /// YCSB `mix` on `usertable` (`rows` rows), in-process.
    Ycsb,
    /// pgbench tpcb-like over the wire (scale `pgbench_scale`).
    Pgbench,
}

/// How keys are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Zipfian of skew `theta`.
    Zipfian,
    /// Zipfian over recency (the newest keys hottest).
    Latest,
}

/// The key column type of `usertable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// int8 keys `0..rows`.
    Int8,
    /// text keys `user<n>`, as YCSB names them.
    Text,
}

/// How the tables are redistributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The online mover (jump hashing: only the rows whose segment changes move).
    Online,
    /// gpexpand's way: each table locked and rewritten.
    Offline,
    /// The online mover over legacy modulo placement (`hash % n`): the full-reshuffle
    /// baseline, which shows what jump hashing saves.
    Modulo,
}

/// Where pgbench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PgTarget {
    /// This node, served in-process (the same server as `segexpand serve`).
    Segexpand,
    /// A throwaway PostgreSQL 15 cluster: the reference line (its tables are not
    /// redistributed).
    Postgres,
}

/// Lists a sweep runs through (every combination of the lists given).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sweep {
    /// Reconfigurations, `"N->M"`.
    pub reconfigs: Vec<String>,
    /// Methods.
    pub methods: Vec<Method>,
    /// Mover throttles (rows/s); 0 means unthrottled.
    pub max_rows_per_s: Vec<f64>,
    /// Mover workers.
    pub workers: Vec<u64>,
    /// Data sizes (rows).
    pub rows: Vec<u64>,
    /// Where pgbench runs.
    pub pgbench_targets: Vec<PgTarget>,
}

impl Sweep {
    /// True when nothing is swept.
    pub fn is_empty(&self) -> bool {
        self.reconfigs.is_empty()
            && self.methods.is_empty()
            && self.max_rows_per_s.is_empty()
            && self.workers.is_empty()
            && self.rows.is_empty()
            && self.pgbench_targets.is_empty()
    }
}

/// A run's configuration; `Default` is `segexpand demo`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The scenario's name (the output directory and the figures carry it).
    pub name: String,
    /// Seed of the data and of every operation sequence.
    pub seed: u64,
    /// Data directory; none: a new one inside the run's output directory, removed at
    /// the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Remove the data directory's node first.
    pub fresh: bool,
    /// Rows of the main table.
    pub rows: u64,
    /// Bytes of each row's payload text.
    pub row_bytes: u64,
    /// Rows of the checking table when the workload is YCSB or pgbench.
    pub checking_rows: u64,
    /// The workload.
    pub workload: WorkloadKind,
    /// YCSB mix: A, B, C, E or F.
    pub mix: String,
    /// YCSB key choice.
    pub distribution: Distribution,
    /// Zipfian skew θ (0 < θ ≤ 5; YCSB's default 0.99).
    pub theta: f64,
    /// `usertable`'s key type.
    pub key_type: KeyType,
    /// YCSB or pgbench clients.
    pub clients: u64,
    /// Open loop: operations per second over all YCSB clients (0: closed loop).
    pub rate: f64,
    /// pgbench's scale (100,000 accounts each).
    pub pgbench_scale: u64,
    /// Where pgbench runs.
    pub pgbench_target: PgTarget,
    /// Segments of the node, and of the tables, before.
    pub from: u16,
    /// Segments after (if the table already has `to`, it goes back to `from`).
    pub to: u16,
    /// The method.
    pub method: Method,
    /// Mover workers per table.
    pub workers: u64,
    /// Mover throttle, rows per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rows_per_s: Option<f64>,
    /// Mover throttle, MB per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_mb_per_s: Option<f64>,
    /// Seconds of workload before the reconfiguration (the baseline).
    pub idle_s: f64,
    /// Seconds of workload after it.
    pub after_s: f64,
    /// The timeline's interval (ms).
    pub interval_ms: u64,
    /// Print the summary as one JSON object on stdout.
    pub json: bool,
    /// A fault to inject, to show that the checks catch it: `"unbalanced-transfer"`
    /// (one transfer debits without crediting, during the reconfiguration); the run
    /// must then fail its checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inject_fault: Option<String>,
    /// What a sweep varies.
    #[serde(skip_serializing_if = "Sweep::is_empty")]
    pub sweep: Sweep,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "demo".into(),
            seed: 42,
            dir: None,
            fresh: false,
            rows: 1_000_000,
            row_bytes: 70,
            checking_rows: 20_000,
            workload: WorkloadKind::Checking,
            mix: "A".into(),
            distribution: Distribution::Zipfian,
            theta: 0.99,
            key_type: KeyType::Int8,
            clients: 2,
            rate: 0.0,
            pgbench_scale: 4,
            pgbench_target: PgTarget::Segexpand,
            from: 4,
            to: 6,
            method: Method::Online,
            workers: 2,
            max_rows_per_s: None,
            max_mb_per_s: None,
            idle_s: 3.0,
            after_s: 0.3,
            interval_ms: 100,
            json: false,
            inject_fault: None,
            sweep: Sweep::default(),
        }
    }
}

impl Config {
    /// Parses a scenario file's text (`what` names it in errors).
    pub fn from_toml(text: &str, what: &str) -> Result<Config, Error> {
        let mut c: Config = toml::from_str(text).map_err(|e| bad(format!("{what}: {e}")))?;
        c.mix = c.mix.to_uppercase();
        Ok(c)
    }

    /// The scenario as TOML (what the run directory records).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot write the scenario: {e}\n"))
    }

    /// Rows of the checking table.
    pub fn checking_table_rows(&self) -> u64 {
        match self.workload {
            WorkloadKind::Checking => self.rows,
            _ => self.checking_rows,
        }
    }

    /// The YCSB mix (checked by `check`).
    pub fn ycsb_mix(&self) -> Mix {
        Mix::parse(&self.mix).unwrap_or(Mix::A)
    }

    /// The key distribution.
    pub fn key_dist(&self) -> KeyDist {
        match self.distribution {
            Distribution::Uniform => KeyDist::Uniform,
            Distribution::Zipfian => KeyDist::Zipfian(self.theta),
            Distribution::Latest => KeyDist::Latest(self.theta),
        }
    }

    /// Checks every value against its bounds; the first bad one is the error.
    pub fn check(&self) -> Result<(), Error> {
        let whole = |v: u64, key: &str, (lo, hi): (u64, u64)| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(bad(format!(
                    "{key} must be a whole number between {lo} and {hi}, got {v}"
                )))
            }
        };
        let number = |v: f64, key: &str, r: (f64, f64), unit: &str| {
            check_number(v, key, r, unit).map_err(bad)
        };
        whole(self.rows, "rows", (1, ROWS_MAX))?;
        whole(self.row_bytes, "row_bytes", ROW_BYTES_RANGE)?;
        whole(self.checking_rows, "checking_rows", (1, ROWS_MAX))?;
        whole(self.clients, "clients", (1, CLIENTS_MAX))?;
        whole(self.pgbench_scale, "pgbench_scale", (1, 10_000))?;
        whole(u64::from(self.from), "from", (1, 1024))?;
        whole(u64::from(self.to), "to", (1, 1024))?;
        whole(self.workers, "workers", (1, WORKERS_MAX))?;
        whole(self.interval_ms, "interval_ms", INTERVAL_MS_RANGE)?;
        number(self.idle_s, "idle_s", IDLE_S_RANGE, " seconds")?;
        number(self.after_s, "after_s", (0.0, 3600.0), " seconds")?;
        let intervals = (self.idle_s + self.after_s) * 1000.0 / self.interval_ms as f64;
        if intervals > INTERVALS_MAX {
            return Err(bad(format!(
                "idle_s + after_s span {intervals:.0} intervals of {} ms; at most {INTERVALS_MAX} \
                 are kept (a few KiB each per operation type): use a longer interval_ms",
                self.interval_ms
            )));
        }
        if self.rate != 0.0 {
            number(
                self.rate,
                "rate",
                (1.0, 1e8),
                " operations per second (0: closed loop)",
            )?;
        }
        if !(self.theta.is_finite() && self.theta > 0.0 && self.theta <= 5.0) {
            return Err(bad(format!(
                "theta must be above 0 and at most 5, got {}",
                self.theta
            )));
        }
        if let Some(r) = self.max_rows_per_s {
            number(r, "max_rows_per_s", ROWS_PER_S_RANGE, " rows per second")?;
        }
        if let Some(r) = self.max_mb_per_s {
            number(r, "max_mb_per_s", MB_PER_S_RANGE, " MB per second")?;
        }
        if Mix::parse(&self.mix).is_none() {
            return Err(bad(format!(
                "mix must be one of A, B, C, E, F, got {:?}",
                self.mix
            )));
        }
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad(format!(
                "name must be 1 to 64 letters, digits, '-', '_' or '.', got {:?}",
                self.name
            )));
        }
        if let Some(f) = &self.inject_fault {
            if f != "unbalanced-transfer" {
                return Err(bad(format!(
                    "inject_fault must be \"unbalanced-transfer\", got {f:?}"
                )));
            }
        }
        if self.method == Method::Modulo && self.workload == WorkloadKind::Pgbench {
            return Err(bad(
                "method modulo needs workload checking or ycsb: pgbench makes its own tables \
                 (with jump placement)",
            ));
        }
        self.check_from_to()
    }

    /// Refuses what the arguments alone show to be pointless, before the directory is
    /// touched: `from` equal to `to` on a directory without a node (or with `fresh`)
    /// has nothing to redistribute.
    fn check_from_to(&self) -> Result<(), Error> {
        if self.from != self.to {
            return Ok(());
        }
        let new = self.fresh
            || match &self.dir {
                None => true,
                Some(d) => matches!(
                    inspect_dir(&RealVfs, d)?,
                    DirState::Missing | DirState::Empty | DirState::CreateInterrupted
                ),
            };
        if new {
            return Err(bad(format!(
                "--from and --to are both {}: a new table would have nothing to \
                 redistribute; nothing was changed (pick another --to)",
                self.to
            )));
        }
        Ok(())
    }
}

/// A number for a message: `1e9` rather than `1000000000`.
fn num(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn check_number(v: f64, key: &str, (lo, hi): (f64, f64), unit: &str) -> Result<f64, String> {
    // NaN fails the range test too; so do infinities.
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{key} must be a number between {} and {}{unit}, got {}",
            num(lo),
            num(hi),
            num(v)
        ))
    }
}

/// Parses a flag's whole number within bounds (clap's value parser).
pub fn parse_whole(s: &str, flag: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let refuse = || format!("{flag} must be a whole number between {lo} and {hi}, got {s}");
    let v: u64 = s.trim().parse().map_err(|_| refuse())?;
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(refuse())
    }
}

/// Parses a flag's number within bounds (clap's value parser).
pub fn parse_number(s: &str, flag: &str, r: (f64, f64), unit: &str) -> Result<f64, String> {
    // The refusal repeats what was typed, not the number it parsed to.
    let refuse = || {
        format!(
            "{flag} must be a number between {} and {}{unit}, got {s}",
            num(r.0),
            num(r.1)
        )
    };
    let v: f64 = s.trim().parse().map_err(|_| refuse())?;
    check_number(v, flag, r, unit).map_err(|_| refuse())
}

/// `--rows`.
pub fn parse_rows(s: &str) -> Result<u64, String> {
    parse_whole(s, "--rows", 1, ROWS_MAX)
}

/// `--workers`.
pub fn parse_workers(s: &str) -> Result<u64, String> {
    parse_whole(s, "--workers", 1, WORKERS_MAX)
}

/// `--idle-s`.
pub fn parse_idle_s(s: &str) -> Result<f64, String> {
    parse_number(s, "--idle-s", IDLE_S_RANGE, " seconds")
}

/// `--max-rows-per-s`.
pub fn parse_max_rows_per_s(s: &str) -> Result<f64, String> {
    parse_number(s, "--max-rows-per-s", ROWS_PER_S_RANGE, " rows per second")
}

/// `--max-mb-per-s`.
pub fn parse_max_mb_per_s(s: &str) -> Result<f64, String> {
    parse_number(s, "--max-mb-per-s", MB_PER_S_RANGE, " MB per second")
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

    #[test]
    fn scenario_files_are_checked_key_by_key() {
        let c = Config::from_toml("rows = 5000\nmix = \"F\"\n", "t.toml").unwrap();
        assert_eq!((c.rows, c.mix.as_str(), c.from), (5000, "F", 4));
        c.check().unwrap();
        let e = Config::from_toml("rowz = 5", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml") && e.contains("rowz"), "{e}");
        let e = Config::from_toml("method = \"sideways\"", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sideways"), "{e}");
        for (toml, want) in [
            ("rows = 0", "rows must be a whole number between 1 and"),
            ("theta = -1.0", "theta must be above 0"),
            ("theta = inf", "theta must be above 0"),
            ("rate = -1.0", "rate must be a number between 1 and"),
            ("mix = \"D\"", "mix must be one of"),
            ("interval_ms = 0", "interval_ms must be"),
            ("max_mb_per_s = 0.0", "max_mb_per_s must be"),
            ("name = \"../x\"", "name must be"),
            ("from = 4\nto = 4", "nothing to redistribute"),
            (
                "method = \"modulo\"\nworkload = \"pgbench\"",
                "modulo needs workload",
            ),
        ] {
            let e = Config::from_toml(toml, "t")
                .and_then(|c| c.check())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{toml}: {e}");
        }
        // What the run directory records reads back as the same scenario.
        let mut c = Config::default();
        c.sweep.reconfigs = vec!["4->5".into()];
        c.max_rows_per_s = Some(1000.0);
        assert_eq!(Config::from_toml(&c.to_toml(), "again").unwrap(), c);
    }
}
