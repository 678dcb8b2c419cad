//! `segexpand demo`: the research harness's default scenario (`bench/scenarios/demo.toml`)
//! with its classic flags, on a data directory that persists between runs: a node of
//! `--from` segments with a seeded table of `--rows` rows, the checking workload (point
//! SELECTs, checking scans, transfer transactions), and an online (or `--offline`)
//! redistribution to `--to` segments; it prints the summary and fails when a check
//! does. `--out DIR` also writes the harness's run directory (CSVs, plots, report).

use segexpand_bench::harness::config::{
    parse_idle_s, parse_max_rows_per_s, parse_rows, parse_workers, Method,
};
use segexpand_bench::harness::{driver, print, run, Config};
use segexpand_engine::Error;
use std::path::PathBuf;

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
    pub workers: u64,
    /// Seconds of workload before the redistribution (the idle latency baseline): 0.1 to
    /// 3600.
    #[arg(long, default_value_t = 3.0, value_parser = parse_idle_s, allow_negative_numbers = true)]
    pub idle_s: f64,
    /// Throttle the mover to this many rows per second: 1 to 1e9 (no throttle when
    /// absent).
    #[arg(long, value_parser = parse_max_rows_per_s, allow_negative_numbers = true)]
    pub max_rows_per_s: Option<f64>,
    /// Also write the harness's run directory here: scenario, summary JSON, timeline
    /// CSVs, plots and report.md.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The demo's scenario: the `demo` preset with these flags.
fn scenario(a: &DemoArgs) -> Result<Config, Error> {
    let base = driver::preset("demo")?;
    Ok(Config {
        dir: Some(a.dir.clone()),
        fresh: a.fresh,
        rows: a.rows,
        from: a.from,
        to: a.to,
        method: if a.offline {
            Method::Offline
        } else {
            Method::Online
        },
        json: a.json,
        workers: a.workers,
        idle_s: a.idle_s,
        max_rows_per_s: a.max_rows_per_s,
        ..base
    })
}

/// Runs the demo: the summary printed, the verdict returned.
pub fn run_demo(a: &DemoArgs) -> Result<(), Error> {
    let cfg = scenario(a)?;
    if let Some(out) = &a.out {
        let r = driver::run_one(&cfg, "", out, true)?;
        let fields: Vec<(String, String)> = r
            .fields
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
            .unwrap_or_default();
        print(a.json, &fields);
        return if r.verdict == "ok" {
            Ok(())
        } else {
            Err(Error::InvalidArgument(r.verdict))
        };
    }
    let fin = run(&cfg)?;
    print(a.json, &fin.fields);
    fin.verdict
}
