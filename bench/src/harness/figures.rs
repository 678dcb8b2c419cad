//! The figures and `report.md` of a run and of a sweep. Every timeline figure is drawn
//! from the CSV files as written (read back here), so what is plotted is what the CSV
//! holds; the sweep's figures are drawn from each run's summary.
//!
//! A run: `throughput` (operations per second per type, the migration window shaded),
//! `latency` (p99 per type, log scale), `mover` (progress and CPU). A sweep: `overlay`
//! (the main workload's throughput of every run, aligned at the migration's start),
//! and, when they vary, `moved_fraction` (moved against (M−N)/M, with the ideal) and
//! `migration_time`, and `duration_vs_degradation` (the throttle sweep's curve).

use super::config::{PgTarget, WorkloadKind};
use super::driver::{degradation, expected_fraction, main_ops, throughput, RunOut};
use super::Config;
use crate::plot::{render, Chart, PlotError, Series, SeriesStyle, Shade};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Where a throughput chart on a log scale draws an interval without completions.
pub const THROUGHPUT_FLOOR: f64 = 1.0;

/// A drawn figure: its file stem (relative to the report) and a caption.
pub struct Figure {
    /// `<stem>.png` and `<stem>.svg`, relative to the report's directory.
    pub stem: String,
    /// What it shows.
    pub caption: String,
}

/// A CSV file read back: its header and rows.
pub struct Csv {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, as text.
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Csv, PlotError> {
        let text = std::fs::read_to_string(path).map_err(PlotError::Io)?;
        let mut lines = text.lines();
        let header = lines
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect();
        let rows = lines
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        Ok(Csv { header, rows })
    }

    /// Column `name`'s index.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// `(x, y)` of every row whose `filter` column (if any) equals the value.
    pub fn points(&self, x: &str, y: &str, filter: Option<(&str, &str)>) -> Vec<(f64, f64)> {
        let (Some(xi), Some(yi)) = (self.col(x), self.col(y)) else {
            return Vec::new();
        };
        let fi = filter.and_then(|(c, v)| self.col(c).map(|i| (i, v)));
        self.rows
            .iter()
            .filter(|r| fi.is_none_or(|(i, v)| r.get(i).is_some_and(|s| s == v)))
            .filter_map(|r| {
                let x: f64 = r.get(xi)?.parse().ok()?;
                let y: f64 = r.get(yi)?.parse().ok()?;
                Some((x, y))
            })
            .collect()
    }

    /// The distinct values of column `name`, in order of appearance.
    pub fn distinct(&self, name: &str) -> Vec<String> {
        let Some(i) = self.col(name) else {
            return Vec::new();
        };
        let mut seen = Vec::new();
        for r in &self.rows {
            if let Some(v) = r.get(i) {
                if !seen.contains(v) {
                    seen.push(v.clone());
                }
            }
        }
        seen
    }
}

/// The migration window from `marks.csv`: (start, flip).
fn window(dir: &Path) -> Result<Option<(f64, f64)>, PlotError> {
    let marks = Csv::read(&dir.join("marks.csv"))?;
    let at = |m: &str| {
        marks
            .rows
            .iter()
            .find(|r| r.get(1).is_some_and(|s| s == m))
            .and_then(|r| r.first()?.parse::<f64>().ok())
    };
    Ok(at("start").zip(at("flip")))
}

fn method_label(c: &Config) -> String {
    let m = format!("{:?}", c.method).to_lowercase();
    if c.workload == WorkloadKind::Pgbench && c.pgbench_target == PgTarget::Postgres {
        // pgbench's tables are in PostgreSQL: only the checking table moved.
        format!("{m}, checking table only (pgbench on PostgreSQL 15)")
    } else {
        m
    }
}

fn shade_of(run: &RunOut, w: Option<(f64, f64)>) -> Vec<Shade> {
    w.map(|(a, b)| Shade {
        from: a,
        to: b,
        label: format!("migration ({})", method_label(&run.cfg)),
        color_index: 0,
    })
    .into_iter()
    .collect()
}

/// A run's figures, into its directory.
pub fn run_figures(run: &RunOut) -> Result<Vec<Figure>, PlotError> {
    let dir = &run.dir;
    let tl = Csv::read(&dir.join("timeline.csv"))?;
    let w = window(dir)?;
    let c = &run.cfg;
    let title = |what: &str| {
        format!(
            "{}: {what}, {} -> {} segments, {}",
            c.name,
            c.from,
            c.to,
            method_label(c)
        )
    };
    let ops = tl.distinct("op");
    // `floor`: on a log scale a zero cannot be drawn; an interval with no
    // completions is drawn at the floor instead of being skipped (a line across it
    // would hide the outage).
    let per_op = |y: &str, style: SeriesStyle, floor: Option<f64>| -> Vec<Series> {
        ops.iter()
            .map(|op| Series {
                label: op.clone(),
                points: tl
                    .points("t_s", y, Some(("op", op)))
                    .into_iter()
                    .map(|(x, v)| match floor {
                        Some(f) if v < f => (x, f),
                        _ => (x, v),
                    })
                    .collect(),
                style,
            })
            .collect()
    };
    let mut figs = Vec::new();
    render(
        &Chart {
            title: title("throughput"),
            x_label: "time (s)".into(),
            y_label: "operations per second".into(),
            series: per_op("ops_per_s", SeriesStyle::Line, Some(THROUGHPUT_FLOOR)),
            shades: shade_of(run, w),
            log_y: true,
            y_from_zero: false,
        },
        &dir.join("throughput"),
    )?;
    figs.push(Figure {
        stem: "throughput".into(),
        caption: "Operations completed per second, per type and interval (log scale; \
                  an interval in which a type completed nothing is drawn at 1/s, the \
                  axis's floor); the migration window is shaded."
            .into(),
    });
    render(
        &Chart {
            title: title("p99 latency"),
            x_label: "time (s)".into(),
            y_label: "p99 latency (µs)".into(),
            series: per_op("p99_us", SeriesStyle::Line, None),
            shades: shade_of(run, w),
            log_y: true,
            y_from_zero: false,
        },
        &dir.join("latency"),
    )?;
    figs.push(Figure {
        stem: "latency".into(),
        caption: "p99 latency per type and interval (log scale; an interval without \
                  completions has no point)."
            .into(),
    });
    let mover = Csv::read(&dir.join("mover.csv"))?;
    if !mover.rows.is_empty() {
        render(
            &Chart {
                title: title("mover"),
                x_label: "time (s)".into(),
                y_label: "percent".into(),
                series: vec![
                    Series {
                        label: "blocks done (%)".into(),
                        points: mover.points("t_s", "progress_pct", None),
                        style: SeriesStyle::Line,
                    },
                    Series {
                        label: "CPU (% of one core)".into(),
                        points: mover.points("t_s", "cpu_pct", None),
                        style: SeriesStyle::Line,
                    },
                ],
                shades: shade_of(run, w),
                log_y: false,
                y_from_zero: true,
            },
            &dir.join("mover"),
        )?;
        figs.push(Figure {
            stem: "mover".into(),
            caption: "The mover's progress (blocks of the phase done) and the process's \
                      CPU, sampled per interval."
                .into(),
        });
    }
    Ok(figs)
}

/// A run's throughput points and migration window, shifted.
type Aligned = (Vec<(f64, f64)>, Option<(f64, f64)>);

/// The main workload's throughput over time (summed over its operation types),
/// shifted so that the migration starts at 0.
fn aligned_throughput(run: &RunOut) -> Result<Aligned, PlotError> {
    let tl = Csv::read(&run.dir.join("timeline.csv"))?;
    let w = window(&run.dir)?;
    let shift = w.map_or(0.0, |w| w.0);
    let mut sum: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for op in main_ops(&run.cfg) {
        for (t, y) in tl.points("t_s", "ops_per_s", Some(("op", op))) {
            // Keyed by the interval's start in ms (exact: the CSV has 3 decimals).
            let e = sum.entry((t * 1000.0).round() as i64).or_insert((t, 0.0));
            e.1 += y;
        }
    }
    let pts = sum.values().map(|(t, y)| (t - shift, *y)).collect();
    Ok((pts, w.map(|(a, b)| (a - shift, b - shift))))
}

/// A sweep's figures, into `out`.
pub fn sweep_figures(cfg: &Config, runs: &[RunOut], out: &Path) -> Result<Vec<Figure>, PlotError> {
    let mut figs = Vec::new();
    let mut series = Vec::new();
    let mut shades = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let (pts, w) = aligned_throughput(r)?;
        series.push(Series {
            label: r.label.clone(),
            points: pts,
            style: SeriesStyle::Line,
        });
        if let Some((a, b)) = w {
            shades.push(Shade {
                from: a,
                to: b,
                label: format!("{} migration", r.label),
                color_index: i,
            });
        }
    }
    let ops = main_ops(cfg).join("+");
    render(
        &Chart {
            title: format!(
                "{}: {ops} throughput, runs aligned at the migration's start",
                cfg.name
            ),
            x_label: "time from the migration's start (s)".into(),
            y_label: "operations per second".into(),
            series,
            shades,
            log_y: false,
            y_from_zero: true,
        },
        &out.join("overlay"),
    )?;
    figs.push(Figure {
        stem: "overlay".into(),
        caption: format!(
            "Throughput of the workload's main operations ({ops}) in every run, aligned \
             at the migration's start; each run's migration window is shaded."
        ),
    });
    let varies = |f: &dyn Fn(&Config) -> String| {
        let mut v: Vec<String> = runs.iter().map(|r| f(&r.cfg)).collect();
        v.dedup();
        v.len() > 1
    };
    if varies(&|c| format!("{}->{}", c.from, c.to)) {
        figs.extend(reconfig_figures(cfg, runs, out)?);
    }
    if varies(&|c| format!("{:?}", c.max_rows_per_s)) {
        // One point per throttle, each its own labelled series, and the curve through
        // them in order of migration time.
        let mut pts: Vec<(f64, f64, String)> = runs
            .iter()
            .map(|r| {
                (
                    r.num("migration_s"),
                    degradation(throughput(r, "before"), throughput(r, "during")),
                    r.cfg
                        .max_rows_per_s
                        .map_or("unthrottled".into(), |v| format!("{v:.0} rows/s")),
                )
            })
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut series = vec![Series {
            label: String::new(),
            points: pts.iter().map(|p| (p.0, p.1)).collect(),
            style: SeriesStyle::Line,
        }];
        series.extend(pts.iter().map(|p| Series {
            label: p.2.clone(),
            points: vec![(p.0, p.1)],
            style: SeriesStyle::Points,
        }));
        render(
            &Chart {
                title: format!("{}: migration time against throughput lost", cfg.name),
                x_label: "migration time (s)".into(),
                y_label: "throughput lost during the migration (%)".into(),
                series,
                shades: Vec::new(),
                log_y: false,
                y_from_zero: true,
            },
            &out.join("duration_vs_degradation"),
        )?;
        figs.push(Figure {
            stem: "duration_vs_degradation".into(),
            caption: "Each point a mover throttle: how long the migration took against \
                      how much of the baseline throughput the workload lost meanwhile."
                .into(),
        });
    }
    Ok(figs)
}

/// Moved fraction against (M−N)/M, and migration time, per method.
fn reconfig_figures(cfg: &Config, runs: &[RunOut], out: &Path) -> Result<Vec<Figure>, PlotError> {
    let mut by_method: BTreeMap<String, Vec<&RunOut>> = BTreeMap::new();
    for r in runs {
        by_method.entry(method_label(&r.cfg)).or_default().push(r);
    }
    let sorted = |pts: Vec<(f64, f64)>| {
        let mut p = pts;
        p.sort_by(|a, b| a.0.total_cmp(&b.0));
        p
    };
    let mut moved = Vec::new();
    let mut time = Vec::new();
    for (m, rs) in &by_method {
        moved.push(Series {
            label: m.clone(),
            points: sorted(
                rs.iter()
                    .map(|r| (expected_fraction(&r.cfg), r.num("moved_fraction")))
                    .collect(),
            ),
            style: SeriesStyle::Points,
        });
        time.push(Series {
            label: m.clone(),
            points: sorted(
                rs.iter()
                    .map(|r| (expected_fraction(&r.cfg), r.num("migration_s")))
                    .collect(),
            ),
            style: SeriesStyle::Points,
        });
    }
    moved.push(Series {
        label: "ideal: (M-N)/M".into(),
        points: vec![(0.0, 0.0), (1.0, 1.0)],
        style: SeriesStyle::Dashed,
    });
    render(
        &Chart {
            title: format!("{}: rows moved against the minimum", cfg.name),
            x_label: "(M-N)/M: the fraction that must move".into(),
            y_label: "fraction of rows moved".into(),
            series: moved,
            shades: Vec::new(),
            log_y: false,
            y_from_zero: true,
        },
        &out.join("moved_fraction"),
    )?;
    render(
        &Chart {
            title: format!("{}: migration time", cfg.name),
            x_label: "(M-N)/M: the fraction that must move".into(),
            y_label: "migration time (s)".into(),
            series: time,
            shades: Vec::new(),
            log_y: false,
            y_from_zero: true,
        },
        &out.join("migration_time"),
    )?;
    Ok(vec![
        Figure {
            stem: "moved_fraction".into(),
            caption: "Fraction of the rows each reconfiguration moved to another segment, \
                      against the fraction that must move; jump hashing sits on the \
                      ideal, modulo placement far above it."
                .into(),
        },
        Figure {
            stem: "migration_time".into(),
            caption: "Time from the migration's start to its flip, per reconfiguration.".into(),
        },
    ])
}

/// The provenance lines of a report.
fn provenance_md(cfg: &Config) -> String {
    let p = super::output::provenance(cfg);
    let text = |ptr: &str| match p.pointer(ptr) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "unknown".into(),
    };
    format!(
        "- scenario `{}`, seed {}\n- git revision `{}`\n- machine: {} cores, {} GiB, {}, \
         Linux {}\n",
        cfg.name,
        cfg.seed,
        text("/git_revision"),
        text("/machine/cores"),
        text("/machine/memory_gib"),
        text("/machine/cpu"),
        text("/machine/kernel"),
    )
}

fn images_md(figs: &[Figure]) -> String {
    let mut s = String::new();
    for f in figs {
        let _ = writeln!(
            s,
            "![{}]({}.png)\n\n{} ([SVG]({}.svg))\n",
            f.stem, f.stem, f.caption, f.stem
        );
    }
    s
}

/// One run's report.
pub fn run_report(run: &RunOut, figs: &[Figure]) -> String {
    let c = &run.cfg;
    let mut s = format!(
        "# {}: {} -> {} segments, {}\n\n",
        c.name,
        c.from,
        c.to,
        method_label(c)
    );
    s += &provenance_md(c);
    let _ = writeln!(s, "- verdict: **{}**\n", run.verdict);
    s += "| measure | value |\n|---|---|\n";
    for k in [
        "rows_expected",
        "rows_found",
        "rows_lost",
        "rows_duplicated",
        "migration_s",
        "rows_moved",
        "moved_fraction",
        "moved_fraction_expected",
        "mover_mb_per_s",
        "flip_dml_stall_us_max",
        "longest_write_gap_ms",
        "select_p99_us_idle",
        "select_p99_us_during",
        "scan_mismatches",
        "rss_mb_peak",
    ] {
        if let Some(v) = run.fields.get(k) {
            let _ = writeln!(s, "| {k} | {v} |");
        }
    }
    let _ = writeln!(
        s,
        "| throughput before / during (ops/s, {}) | {:.0} / {:.0} |",
        main_ops(c).join("+"),
        throughput(run, "before"),
        throughput(run, "during")
    );
    for op in main_ops(c) {
        let v = |k: &str| {
            run.fields
                .get(format!("{op}_{k}"))
                .map_or("-".into(), |v| v.to_string())
        };
        if run.fields.get(format!("{op}_ok_total")).is_some() {
            let _ = writeln!(
                s,
                "| {op} p50 / p99 / max before; during (µs) | {} / {} / {}; {} / {} / {} |",
                v("p50_us_before"),
                v("p99_us_before"),
                v("max_us_before"),
                v("p50_us_during"),
                v("p99_us_during"),
                v("max_us_during")
            );
        }
    }
    s.push('\n');
    s += &images_md(figs);
    s += "Files: `scenario.toml`, `summary.json`, `timeline.csv`, `mover.csv`, `marks.csv`.\n";
    s
}

/// A sweep's report.
pub fn sweep_report(cfg: &Config, runs: &[RunOut], figs: &[Figure]) -> String {
    let mut s = format!("# {}: a sweep of {} runs\n\n", cfg.name, runs.len());
    s += &provenance_md(cfg);
    s += "\n| run | N->M | method | throttle (rows/s) | migration (s) | moved | (M-N)/M | \
          MB/s | throughput before | during | lost | verdict |\n\
          |---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for r in runs {
        let c = &r.cfg;
        let (b, d) = (throughput(r, "before"), throughput(r, "during"));
        let _ = writeln!(
            s,
            "| [{}]({}/report.md) | {}->{} | {} | {} | {:.2} | {:.4} | {:.4} | {:.1} | {:.0} | {:.0} | {:.1}% | {} |",
            r.label,
            r.dir.file_name().map_or(String::new(), |n| n.to_string_lossy().to_string()),
            c.from,
            c.to,
            method_label(c),
            c.max_rows_per_s.map_or("none".into(), |v| format!("{v:.0}")),
            r.num("migration_s"),
            r.num("moved_fraction"),
            expected_fraction(c),
            r.num("mover_mb_per_s"),
            b,
            d,
            degradation(b, d),
            r.verdict
        );
    }
    s += "\n";
    s += &images_md(figs);
    s += "Files: `sweep.csv` (this table), `summary.json` (every run's summary), one \
          directory per run.\n";
    s
}
