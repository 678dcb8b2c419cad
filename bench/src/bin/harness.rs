//! The research harness: `cargo run --release -p segexpand-bench --bin harness -- …`.
//!
//! ```text
//! harness --preset headline                 # online vs offline at 1 M rows (< 5 min)
//! harness --scenario my.toml --out runs/x   # a scenario file
//! harness --preset ycsb-a --rows 200000 --clients 4 --rate 20000
//! harness --list-presets
//! ```
//!
//! A scenario comes from a preset or a file (every key optional; see
//! `bench/scenarios/`), then flags override it. The output directory (default
//! `harness-runs/<name>-<unix time>`) gets the scenario, `summary.json`, the timeline
//! CSVs, the plots and `report.md`. Exit status: 0 when every run's checks passed, 1
//! when a run's verdict failed (a row lost, the checking invariant broken …), 2 when a
//! run could not be carried out.

use clap::Parser;
use segexpand_bench::harness::config::{
    parse_idle_s, parse_max_mb_per_s, parse_max_rows_per_s, parse_rows, parse_workers,
    Distribution, KeyType, Method, PgTarget, WorkloadKind,
};
use segexpand_bench::harness::driver::{preset, run_all, PRESETS};
use segexpand_bench::harness::{Config, INTERRUPTED};
use segexpand_bench::out;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "harness",
    about = "segexpand's research harness: workloads, reconfigurations, timelines, figures"
)]
struct Cli {
    /// A built-in scenario (see --list-presets).
    #[arg(long, conflicts_with = "scenario")]
    preset: Option<String>,
    /// A scenario file (TOML).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Output directory, missing or empty (default harness-runs/<name>-<unix time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep each run's data directory.
    #[arg(long)]
    keep_data: bool,
    /// List the presets and exit.
    #[arg(long)]
    list_presets: bool,
    /// Print each run's summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// The run's name (letters, digits, -_.; up to 64).
    #[arg(long)]
    name: Option<String>,
    /// Seed of the data and of every client's operation stream.
    #[arg(long)]
    seed: Option<u64>,
    /// Rows of the main table.
    #[arg(long, value_parser = parse_rows, allow_negative_numbers = true)]
    rows: Option<u64>,
    /// Payload characters per row: 1 to 4096.
    #[arg(long)]
    row_bytes: Option<u64>,
    /// The workload beside the checking one (which always runs).
    #[arg(long, value_enum)]
    workload: Option<WorkloadArg>,
    /// YCSB mix: A, B, C, E, F.
    #[arg(long)]
    mix: Option<String>,
    /// YCSB key choice.
    #[arg(long, value_enum)]
    distribution: Option<DistArg>,
    /// Zipfian skew: above 0, at most 5 (YCSB's 0.99).
    #[arg(long, allow_negative_numbers = true)]
    theta: Option<f64>,
    /// usertable's key type.
    #[arg(long, value_enum)]
    key_type: Option<KeyArg>,
    /// YCSB client threads, or pgbench's -c/-j: 1 to 256.
    #[arg(long)]
    clients: Option<u64>,
    /// Open loop: operations per second over all YCSB clients (0: closed loop).
    #[arg(long, allow_negative_numbers = true)]
    rate: Option<f64>,
    /// pgbench -i -s.
    #[arg(long)]
    pgbench_scale: Option<u64>,
    /// Where pgbench runs: this node served in-process, or a throwaway PostgreSQL 15.
    #[arg(long, value_enum)]
    pgbench_target: Option<TargetArg>,
    /// Rows of the checking table beside YCSB or pgbench.
    #[arg(long, value_parser = parse_rows, allow_negative_numbers = true)]
    checking_rows: Option<u64>,
    /// Segments before (replaces the sweep's reconfigs).
    #[arg(long)]
    from: Option<u16>,
    /// Segments after (replaces the sweep's reconfigs).
    #[arg(long)]
    to: Option<u16>,
    /// Online (jump hashing), offline (gpexpand's locked rewrite) or modulo (the
    /// full-reshuffle baseline); replaces the sweep's methods.
    #[arg(long, value_enum)]
    method: Option<MethodArg>,
    /// Mover workers per table: 1 to 64.
    #[arg(long, value_parser = parse_workers, allow_negative_numbers = true)]
    workers: Option<u64>,
    /// Mover throttle in rows per second (replaces the sweep's throttles).
    #[arg(long, value_parser = parse_max_rows_per_s, allow_negative_numbers = true)]
    max_rows_per_s: Option<f64>,
    /// Mover throttle in MB per second.
    #[arg(long, value_parser = parse_max_mb_per_s, allow_negative_numbers = true)]
    max_mb_per_s: Option<f64>,
    /// Seconds of workload before the reconfiguration (the baseline).
    #[arg(long, value_parser = parse_idle_s, allow_negative_numbers = true)]
    idle_s: Option<f64>,
    /// Seconds of workload after the flip.
    #[arg(long, allow_negative_numbers = true)]
    after_s: Option<f64>,
    /// The timeline's interval: 10 to 60000 ms.
    #[arg(long)]
    interval_ms: Option<u64>,
    /// Run the scenario once, without its sweep.
    #[arg(long)]
    no_sweep: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum WorkloadArg {
    Checking,
    Ycsb,
    Pgbench,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DistArg {
    Uniform,
    Zipfian,
    Latest,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum KeyArg {
    Int8,
    Text,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum TargetArg {
    Segexpand,
    Postgres,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum MethodArg {
    Online,
    Offline,
    Modulo,
}

/// The scenario: preset or file (or the default), then the flags.
fn scenario(cli: &Cli) -> Result<Config, String> {
    let mut c = match (&cli.preset, &cli.scenario) {
        (Some(p), _) => preset(p).map_err(|e| e.to_string())?,
        (None, Some(f)) => {
            let text =
                std::fs::read_to_string(f).map_err(|e| format!("scenario {}: {e}", f.display()))?;
            Config::from_toml(&text, &f.display().to_string()).map_err(|e| e.to_string())?
        }
        (None, None) => Config {
            name: "run".into(),
            ..Config::default()
        },
    };
    macro_rules! set {
        ($($f:ident),*) => {$( if let Some(v) = cli.$f.clone() { c.$f = v; } )*};
    }
    set!(
        name,
        seed,
        rows,
        row_bytes,
        mix,
        theta,
        clients,
        rate,
        pgbench_scale,
        checking_rows,
        from,
        to,
        workers,
        idle_s,
        after_s,
        interval_ms
    );
    // A flag wins over the sweep's list of the same thing.
    if cli.from.is_some() || cli.to.is_some() {
        c.sweep.reconfigs.clear();
    }
    if cli.method.is_some() {
        c.sweep.methods.clear();
    }
    if cli.max_rows_per_s.is_some() {
        c.sweep.max_rows_per_s.clear();
    }
    if cli.workers.is_some() {
        c.sweep.workers.clear();
    }
    if cli.rows.is_some() {
        c.sweep.rows.clear();
    }
    if let Some(t) = cli.pgbench_target {
        c.sweep.pgbench_targets.clear();
        c.pgbench_target = match t {
            TargetArg::Segexpand => PgTarget::Segexpand,
            TargetArg::Postgres => PgTarget::Postgres,
        };
    }
    c.mix = c.mix.to_uppercase();
    if let Some(w) = cli.workload {
        c.workload = match w {
            WorkloadArg::Checking => WorkloadKind::Checking,
            WorkloadArg::Ycsb => WorkloadKind::Ycsb,
            WorkloadArg::Pgbench => WorkloadKind::Pgbench,
        };
    }
    if let Some(d) = cli.distribution {
        c.distribution = match d {
            DistArg::Uniform => Distribution::Uniform,
            DistArg::Zipfian => Distribution::Zipfian,
            DistArg::Latest => Distribution::Latest,
        };
    }
    if let Some(k) = cli.key_type {
        c.key_type = match k {
            KeyArg::Int8 => KeyType::Int8,
            KeyArg::Text => KeyType::Text,
        };
    }
    if let Some(m) = cli.method {
        c.method = match m {
            MethodArg::Online => Method::Online,
            MethodArg::Offline => Method::Offline,
            MethodArg::Modulo => Method::Modulo,
        };
    }
    if cli.max_rows_per_s.is_some() {
        c.max_rows_per_s = cli.max_rows_per_s;
    }
    if cli.max_mb_per_s.is_some() {
        c.max_mb_per_s = cli.max_mb_per_s;
    }
    if cli.no_sweep {
        c.sweep = Default::default();
    }
    c.json = cli.json;
    c.check().map_err(|e| e.to_string())?;
    Ok(c)
}

/// Watches for SIGINT and SIGTERM: the first asks the run to stop and clean up (the
/// workload and movers stop, servers and PostgreSQL clusters are stopped, data
/// directories removed); a second ends the process at once.
fn watch_signals() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            for n in 0.. {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                if n > 0 {
                    out::err_line(format_args!("harness: interrupted again: exiting now"));
                    std::process::exit(130);
                }
                INTERRUPTED.store(true, std::sync::atomic::Ordering::Release);
                out::err_line(format_args!(
                    "harness: interrupted: stopping the workload and cleaning up (again to \
                     exit at once)"
                ));
            }
        });
    });
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    watch_signals();
    if cli.list_presets {
        for (name, text) in PRESETS {
            let about: Vec<&str> = text
                .lines()
                .take_while(|l| l.starts_with('#'))
                .map(|l| l.trim_start_matches('#').trim())
                .collect();
            out::line(format_args!("{name:<16} {}", about.join(" ")));
        }
        return ExitCode::SUCCESS;
    }
    let cfg = match scenario(&cli) {
        Ok(c) => c,
        Err(e) => {
            out::err_line(format_args!("harness: {e}"));
            return ExitCode::from(2);
        }
    };
    let dir = cli.out.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from("harness-runs").join(format!("{}-{t}", cfg.name))
    });
    let t0 = std::time::Instant::now();
    let said = |m: &str| out::err_line(format_args!("harness: {m}"));
    match run_all(&cfg, &dir, cli.keep_data, &said) {
        Ok(runs) => {
            for r in &runs {
                if cfg.json {
                    out::line(format_args!("{}", r.fields));
                }
            }
            out::err_line(format_args!(
                "harness: {} run(s) in {:.1} s; report: {}",
                runs.len(),
                t0.elapsed().as_secs_f64(),
                dir.join("report.md").display()
            ));
            let failed: Vec<&str> = runs
                .iter()
                .filter(|r| r.verdict != "ok")
                .map(|r| r.verdict.as_str())
                .collect();
            if failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                for f in failed {
                    out::err_line(format_args!("harness: a run's checks failed: {f}"));
                }
                ExitCode::from(1)
            }
        }
        Err(e) => {
            out::err_line(format_args!("harness: {e}"));
            if INTERRUPTED.load(std::sync::atomic::Ordering::Acquire) {
                ExitCode::from(130)
            } else {
                ExitCode::from(2)
            }
        }
    }
}
