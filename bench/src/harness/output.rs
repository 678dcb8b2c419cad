//! A run's directory: `scenario.toml` (the scenario as run), `summary.json` (what
//! produced it — scenario, seed, git revision, machine — the verdict and every summary
//! field), the timeline CSVs (`timeline.csv`: per interval and operation type;
//! `mover.csv`: the mover and process samples; `marks.csv`: the phase marks), the plots
//! drawn from those CSVs, and `report.md`.
//!
//! The CSVs are written first and the plots are drawn from the files as written (see
//! `figures`), so a plotted series is its CSV column.

use super::{Config, Field, Finished};

#[path = "../../shared/git_rev.rs"]
mod git_rev;
use crate::timeline::{Row, Sample, Timeline};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// An output error: the path and what went wrong.
#[derive(Debug)]
pub struct OutputError(pub String);

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutputError {}

fn io(path: &Path, e: std::io::Error) -> OutputError {
    OutputError(format!("{}: {e}", path.display()))
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, OutputError> {
    let p = dir.join(name);
    std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    Ok(p)
}

/// The machine, for the record: cores, memory, CPU model, kernel.
pub fn machine() -> serde_json::Value {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown", str::trim)
        .to_string();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown".into(), |s| s.trim().to_string());
    serde_json::json!({
        "cores": cores,
        "memory_gib": (mem_kb / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "cpu": model,
        "kernel": kernel,
    })
}

/// The git revision this harness was built from, with `-dirty` when tracked files
/// differed from it at build time ("unknown" outside a checkout; `build.rs`).
pub fn git_revision() -> &'static str {
    env!("SEGEXPAND_BUILD_REV")
}

/// The source checkout's revision now (it can differ from the build's if the checkout
/// moved on after the build).
pub fn checkout_revision() -> String {
    git_rev::revision(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// What produced a figure: scenario, seed, revision, machine, time.
pub fn provenance(cfg: &Config) -> serde_json::Value {
    serde_json::json!({
        "scenario": cfg.name,
        "seed": cfg.seed,
        "git_revision": git_revision(),
        "checkout_revision_at_run": checkout_revision(),
        "machine": machine(),
        "started_unix_s": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "harness": concat!("segexpand-bench ", env!("CARGO_PKG_VERSION")),
    })
}

/// The summary fields as a JSON object (each value is JSON text; one that does not
/// parse is kept as a string).
pub fn fields_json(fields: &[Field]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in fields {
        let val = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.clone()));
        m.insert(k.clone(), val);
    }
    serde_json::Value::Object(m)
}

/// The timeline CSV: one row per interval and operation type. The rate is over the
/// part of the interval before `end_s` (the workload's end), so the last, partial
/// interval is not shown as a drop.
pub fn timeline_csv(rows: &[Row], interval_s: f64, end_s: Option<f64>) -> String {
    let mut s = String::from("t_s,op,ok,aborts,errors,ops_per_s,p50_us,p99_us,p999_us,max_us\n");
    for r in rows {
        let us = |ns: u64| ns as f64 / 1e3;
        let span = match end_s {
            Some(e) if e > r.t_s && e < r.t_s + interval_s => (e - r.t_s).max(1e-3),
            _ => interval_s,
        };
        let _ = writeln!(
            s,
            "{:.3},{},{},{},{},{:.1},{:.1},{:.1},{:.1},{:.1}",
            r.t_s,
            r.op.name(),
            r.ok,
            r.aborts,
            r.errors,
            r.ok as f64 / span.max(1e-9),
            us(r.lat.p50),
            us(r.lat.p99),
            us(r.lat.p999),
            us(r.lat.max)
        );
    }
    s
}

/// The mover CSV: one row per sample.
pub fn mover_csv(samples: &[Sample]) -> String {
    let mut s = String::from(
        "t_s,rows_moved,bytes_moved,blocks_done,blocks_total,progress_pct,cpu_pct,rss_mb\n",
    );
    for x in samples {
        let _ = writeln!(
            s,
            "{:.3},{},{},{},{},{:.2},{:.1},{:.1}",
            x.t_s,
            x.rows_moved,
            x.bytes_moved,
            x.blocks_done,
            x.blocks_total,
            100.0 * x.blocks_done as f64 / (x.blocks_total as f64).max(1.0),
            x.cpu_pct,
            x.rss_mb
        );
    }
    s
}

/// The marks CSV.
pub fn marks_csv(marks: &[(f64, String)]) -> String {
    let mut s = String::from("t_s,mark\n");
    for (t, m) in marks {
        let _ = writeln!(s, "{t:.3},{m}");
    }
    s
}

/// The summary document of one run.
pub fn summary_json(cfg: &Config, fin: &Finished) -> serde_json::Value {
    serde_json::json!({
        "provenance": provenance(cfg),
        "verdict": match &fin.verdict {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("failed: {e}"),
        },
        "interval_ms": cfg.interval_ms,
        "fields": fields_json(&fin.fields),
    })
}

/// Writes a run's directory (without its plots): scenario, summary, CSVs.
pub fn write_run(dir: &Path, cfg: &Config, fin: &Finished) -> Result<(), OutputError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    write(dir, "scenario.toml", &cfg.to_toml())?;
    let tl: &Timeline = &fin.timeline;
    write(
        dir,
        "timeline.csv",
        &timeline_csv(&tl.rows(), tl.interval().as_secs_f64(), tl.mark_time("end")),
    )?;
    write(dir, "mover.csv", &mover_csv(&tl.samples()))?;
    write(dir, "marks.csv", &marks_csv(&tl.marks()))?;
    let summary = summary_json(cfg, fin);
    let text = serde_json::to_string_pretty(&summary)
        .map_err(|e| OutputError(format!("summary.json: {e}")))?;
    write(dir, "summary.json", &text)?;
    Ok(())
}
