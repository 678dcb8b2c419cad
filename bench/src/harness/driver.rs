//! Runs scenarios into output directories: one run, or a sweep (every combination of
//! the lists in `[sweep]`, each a run of its own in a subdirectory), with the sweep's
//! table (`sweep.csv`), its figures and a `report.md` over all of it.
//!
//! Presets are the scenario files in `bench/scenarios/`, built in.

use super::config::{Method, PgTarget, Sweep, WorkloadKind};
use super::{bad, figures, output, Config, Error, Finished};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The built-in scenarios: name, file text.
pub const PRESETS: [(&str, &str); 7] = [
    ("demo", include_str!("../../scenarios/demo.toml")),
    ("headline", include_str!("../../scenarios/headline.toml")),
    ("smoke", include_str!("../../scenarios/smoke.toml")),
    ("sweep-nm", include_str!("../../scenarios/sweep-nm.toml")),
    (
        "sweep-throttle",
        include_str!("../../scenarios/sweep-throttle.toml"),
    ),
    ("ycsb-a", include_str!("../../scenarios/ycsb-a.toml")),
    ("pgbench", include_str!("../../scenarios/pgbench.toml")),
];

/// A preset's scenario.
pub fn preset(name: &str) -> Result<Config, Error> {
    let Some((_, text)) = PRESETS.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
        return Err(bad(format!(
            "no preset {name:?}; the presets are {}",
            names.join(", ")
        )));
    };
    Config::from_toml(text, &format!("preset {name}"))
}

/// A change a sweep makes to the scenario.
type Setter = Box<dyn Fn(&mut Config)>;

/// Parses `"N->M"`.
fn parse_reconfig(s: &str) -> Result<(u16, u16), Error> {
    let refuse = || {
        bad(format!(
            "a reconfiguration is \"N->M\" with N and M from 1 to 1024, got {s:?}"
        ))
    };
    let (n, m) = s.split_once("->").ok_or_else(refuse)?;
    let n: u16 = n.trim().parse().map_err(|_| refuse())?;
    let m: u16 = m.trim().parse().map_err(|_| refuse())?;
    if !(1..=1024).contains(&n) || !(1..=1024).contains(&m) {
        return Err(refuse());
    }
    Ok((n, m))
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Online => "online",
        Method::Offline => "offline",
        Method::Modulo => "modulo",
    }
}

/// The runs a scenario makes: itself, or one per combination of its sweep's lists,
/// each with a label naming what varies.
pub fn expand(cfg: &Config) -> Result<Vec<(String, Config)>, Error> {
    let s: &Sweep = &cfg.sweep;
    if !s.is_empty() && cfg.dir.is_some() {
        return Err(bad(
            "a sweep needs a new data directory for each run: remove `dir` from the \
             scenario (each run gets one in its output directory)",
        ));
    }
    let mut runs = vec![(
        String::new(),
        Config {
            sweep: Sweep::default(),
            ..cfg.clone()
        },
    )];
    let mut vary = |labels: Vec<(String, Setter)>| {
        if labels.is_empty() {
            return;
        }
        let mut next = Vec::new();
        for (l, c) in &runs {
            for (lab, f) in &labels {
                let mut c = c.clone();
                f(&mut c);
                let l = if l.is_empty() {
                    lab.clone()
                } else {
                    format!("{l}_{lab}")
                };
                next.push((l, c));
            }
        }
        runs = next;
    };
    let mut recon = Vec::new();
    for r in &s.reconfigs {
        let (n, m) = parse_reconfig(r)?;
        recon.push((
            format!("{n}to{m}"),
            Box::new(move |c: &mut Config| {
                c.from = n;
                c.to = m;
            }) as Setter,
        ));
    }
    vary(recon);
    vary(
        s.methods
            .iter()
            .map(|&m| {
                (
                    method_name(m).to_string(),
                    Box::new(move |c: &mut Config| c.method = m) as Setter,
                )
            })
            .collect(),
    );
    vary(
        s.max_rows_per_s
            .iter()
            .map(|&r| {
                let label = if r == 0.0 {
                    "unthrottled".into()
                } else {
                    format!("thr{r:.0}")
                };
                (
                    label,
                    Box::new(move |c: &mut Config| {
                        // 0 is unthrottled; anything else is checked as the key is.
                        c.max_rows_per_s = (r != 0.0).then_some(r);
                    }) as Setter,
                )
            })
            .collect(),
    );
    vary(
        s.workers
            .iter()
            .map(|&w| {
                (
                    format!("w{w}"),
                    Box::new(move |c: &mut Config| c.workers = w) as Setter,
                )
            })
            .collect(),
    );
    vary(
        s.pgbench_targets
            .iter()
            .map(|&t| {
                let label = match t {
                    PgTarget::Segexpand => "segexpand",
                    PgTarget::Postgres => "postgres15",
                };
                (
                    label.to_string(),
                    Box::new(move |c: &mut Config| c.pgbench_target = t) as Setter,
                )
            })
            .collect(),
    );
    vary(
        s.rows
            .iter()
            .map(|&r| {
                (
                    format!("rows{r}"),
                    Box::new(move |c: &mut Config| c.rows = r) as Setter,
                )
            })
            .collect(),
    );
    for (_, c) in &runs {
        c.check()?;
    }
    Ok(runs)
}

/// One finished run, as the sweep's table and the report see it.
pub struct RunOut {
    /// What varies (empty for a single run).
    pub label: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its scenario.
    pub cfg: Config,
    /// Its summary fields as JSON.
    pub fields: serde_json::Value,
    /// "ok", or why it failed.
    pub verdict: String,
}

impl RunOut {
    /// A numeric summary field (`NaN` when absent).
    pub fn num(&self, key: &str) -> f64 {
        self.fields
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    }
}

/// The operation types whose throughput stands for the workload's: the checking
/// workload's point SELECTs, YCSB's operations, pgbench's transactions.
pub fn main_ops(cfg: &Config) -> Vec<&'static str> {
    match cfg.workload {
        WorkloadKind::Checking => vec!["point_select"],
        WorkloadKind::Ycsb => vec!["read", "update", "insert", "scan", "rmw"],
        WorkloadKind::Pgbench => vec!["tpcb"],
    }
}

/// Makes `dir` this run's: it must be missing or empty (runs are never mixed), and a
/// marker file made with `create_new` keeps a second harness started at the same
/// moment out.
fn claim(dir: &Path) -> Result<(), Error> {
    let refuse = |why: String| bad(format!("--out {}: {why}", dir.display()));
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(refuse(
                    "is not empty: pick a new directory (runs are never written over)".into(),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(refuse(e.to_string())),
    }
    std::fs::create_dir_all(dir).map_err(|e| refuse(e.to_string()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(".harness"))
        .map(|_| ())
        .map_err(|e| refuse(format!("another harness run took it ({e})")))
}

/// Runs one scenario (no sweep) in `dir`: its node in `dir/data` unless the scenario
/// names a directory (removed at the end unless `keep_data`), then the run's files and
/// figures.
pub fn run_one(cfg: &Config, label: &str, dir: &Path, keep_data: bool) -> Result<RunOut, Error> {
    let fail = |e: output::OutputError| bad(e.to_string());
    claim(dir)?;
    let mut c = cfg.clone();
    let own_dir = c.dir.is_none();
    if own_dir {
        c.dir = Some(dir.join("data"));
        // The harness's own directory: whatever an interrupted run left there goes.
        c.fresh = true;
    }
    let ran = super::run(&c);
    if own_dir && !keep_data {
        if let Some(d) = &c.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    let fin: Finished = ran?;
    // The scenario as run: without the directory the harness picked, and with the
    // segments the table really went from and to (a reused directory whose table
    // already has `to` segments goes back to `from`).
    let mut recorded = c.clone();
    if own_dir {
        recorded.dir = None;
        recorded.fresh = cfg.fresh;
    }
    let seg = |k: &str| {
        fin.fields
            .iter()
            .find(|f| f.0 == k)
            .and_then(|f| f.1.parse::<u16>().ok())
    };
    if let (Some(f), Some(t)) = (seg("from_segments"), seg("to_segments")) {
        (recorded.from, recorded.to) = (f, t);
    }
    output::write_run(dir, &recorded, &fin).map_err(fail)?;
    let run = RunOut {
        label: label.to_string(),
        dir: dir.to_path_buf(),
        cfg: recorded,
        fields: output::fields_json(&fin.fields),
        verdict: match &fin.verdict {
            Ok(()) => "ok".into(),
            Err(e) => format!("failed: {e}"),
        },
    };
    let figs = figures::run_figures(&run).map_err(|e| bad(e.to_string()))?;
    let report = figures::run_report(&run, &figs);
    output::write(dir, "report.md", &report).map_err(fail)?;
    Ok(run)
}

/// Runs a scenario into `out`: a single run there, or a sweep with one subdirectory
/// per run and the sweep's table, figures and report at the top. `progress` hears a
/// line per run.
pub fn run_all(
    cfg: &Config,
    out: &Path,
    keep_data: bool,
    progress: &dyn Fn(&str),
) -> Result<Vec<RunOut>, Error> {
    let runs = expand(cfg)?;
    if runs
        .iter()
        .any(|(_, c)| c.workload == WorkloadKind::Pgbench && c.pgbench_target == PgTarget::Postgres)
    {
        // Found missing before the first run rather than after it.
        super::pgbench::check_postgres()?;
    }
    if cfg.sweep.is_empty() {
        let r = run_one(cfg, "", out, keep_data)?;
        progress(&format!("{}: {}", out.display(), r.verdict));
        return Ok(vec![r]);
    }
    claim(out)?;
    output::write(out, "scenario.toml", &cfg.to_toml()).map_err(|e| bad(e.to_string()))?;
    let mut done = Vec::new();
    for (i, (label, c)) in runs.iter().enumerate() {
        progress(&format!("run {}/{}: {label}", i + 1, runs.len()));
        let dir = out.join(format!("{:02}-{label}", i + 1));
        done.push(run_one(c, label, &dir, keep_data)?);
    }
    output::write(out, "sweep.csv", &sweep_csv(&done)).map_err(|e| bad(e.to_string()))?;
    let figs = figures::sweep_figures(cfg, &done, out).map_err(|e| bad(e.to_string()))?;
    let report = figures::sweep_report(cfg, &done, &figs);
    output::write(out, "report.md", &report).map_err(|e| bad(e.to_string()))?;
    let summary = serde_json::json!({
        "provenance": output::provenance(cfg),
        "runs": done.iter().map(|r| serde_json::json!({
            "label": r.label,
            "dir": r.dir.file_name().map(|n| n.to_string_lossy().to_string()),
            "verdict": r.verdict,
            "fields": r.fields,
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| bad(e.to_string()))?;
    output::write(out, "summary.json", &text).map_err(|e| bad(e.to_string()))?;
    Ok(done)
}

/// The throughput of the workload's main operations in a phase (ops/s).
pub fn throughput(r: &RunOut, phase: &str) -> f64 {
    // `+ 0.0`: an empty sum is −0.0, which prints as "-0".
    main_ops(&r.cfg)
        .iter()
        .map(|op| r.num(&format!("{op}_per_s_{phase}")))
        .filter(|v| v.is_finite())
        .sum::<f64>()
        + 0.0
}

/// The fraction of rows the reconfiguration had to move: (M−N)/M growing, (N−M)/N
/// shrinking.
pub fn expected_fraction(c: &Config) -> f64 {
    f64::from(c.from.abs_diff(c.to)) / f64::from(c.from.max(c.to))
}

/// One row per run: what varied and what it measured.
pub fn sweep_csv(runs: &[RunOut]) -> String {
    let mut s = String::from(
        "label,from,to,method,max_rows_per_s,workers,rows,migration_s,moved_fraction,\
         expected_fraction,rows_moved,mover_mb_per_s,throughput_before,throughput_during,\
         degradation_pct,p99_us_before,p99_us_during,longest_write_gap_ms,verdict\n",
    );
    for r in runs {
        let c = &r.cfg;
        let (before, during) = (throughput(r, "before"), throughput(r, "during"));
        let op = main_ops(c).first().copied().unwrap_or("point_select");
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{:.3},{:.4},{:.4},{},{:.2},{:.1},{:.1},{:.2},{:.1},{:.1},{:.1},{}",
            r.label,
            c.from,
            c.to,
            method_name(c.method),
            c.max_rows_per_s.unwrap_or(0.0),
            c.workers,
            c.rows,
            r.num("migration_s"),
            r.num("moved_fraction"),
            expected_fraction(c),
            r.num("rows_moved"),
            r.num("mover_mb_per_s"),
            before,
            during,
            degradation(before, during),
            r.num(&format!("{op}_p99_us_before")),
            r.num(&format!("{op}_p99_us_during")),
            r.num("longest_write_gap_ms"),
            r.verdict.replace(',', ";")
        );
    }
    s
}

/// Throughput lost during the migration, in percent of the baseline.
pub fn degradation(before: f64, during: f64) -> f64 {
    if before > 0.0 {
        100.0 * (1.0 - during / before)
    } else {
        f64::NAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_sweeps_expand() {
        for (name, _) in PRESETS {
            let c = preset(name).unwrap();
            assert_eq!(c.name, name);
            assert!(!expand(&c).unwrap().is_empty());
        }
        let nm = expand(&preset("sweep-nm").unwrap()).unwrap();
        assert_eq!(nm.len(), 10);
        assert_eq!(nm[0].0, "4to5_online");
        assert_eq!(
            (nm[7].1.from, nm[7].1.to, nm[7].1.method),
            (8, 12, Method::Modulo)
        );
        let thr = expand(&preset("sweep-throttle").unwrap()).unwrap();
        assert_eq!(thr[0].1.max_rows_per_s, None);
        assert_eq!(thr[5].1.max_rows_per_s, Some(25_000.0));
        assert!(preset("nope").unwrap_err().to_string().contains("headline"));
        let mut c = Config::default();
        c.sweep.reconfigs = vec!["4-5".into()];
        assert!(expand(&c).unwrap_err().to_string().contains("N->M"));
        c.sweep.reconfigs = vec!["0->5".into()];
        assert!(expand(&c).is_err());
    }
}
