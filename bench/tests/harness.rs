//! The harness binary end to end on short runs: every output is written; the plotted
//! series are the CSV's columns (read back from the SVG); the summary's totals are the
//! timeline's sums; every output names what produced it; a broken invariant fails the
//! run with exit status 1; a bad scenario is refused before anything runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_bench::plot::{svg_polylines, svg_texts};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .unwrap()
}

/// A CSV as rows of column → text.
fn csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Each polyline of `svg` (in order) is the series of `data` (in order): as many
/// points, x increasing, and a larger value drawn higher (smaller pixel y).
fn ties_out(svg: &Path, data: &[Vec<(f64, f64)>]) {
    let text = std::fs::read_to_string(svg).unwrap();
    let lines = svg_polylines(&text);
    assert_eq!(lines.len(), data.len(), "{}: polylines", svg.display());
    for (px, d) in lines.iter().zip(data) {
        assert!(!d.is_empty());
        assert_eq!(px.len(), d.len(), "{}: points of a series", svg.display());
        for w in px.windows(2) {
            assert!(w[1].0 >= w[0].0, "x goes forward");
        }
        for (i, a) in d.iter().enumerate() {
            for (j, b) in d.iter().enumerate() {
                if a.1 > b.1 * 1.05 {
                    assert!(px[i].1 <= px[j].1, "{}: {a:?} above {b:?}", svg.display());
                }
            }
        }
    }
}

fn check_run(dir: &Path, scenario: &str) {
    // What produced it.
    let s = json(&dir.join("summary.json"));
    let p = &s["provenance"];
    assert_eq!(p["scenario"], scenario);
    assert_eq!(p["seed"], 42);
    assert!(p["git_revision"].as_str().unwrap().len() >= 7, "{p}");
    assert!(p["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(p["machine"]["memory_gib"].as_f64().unwrap() > 0.0);
    assert_eq!(s["verdict"], "ok");
    let f = &s["fields"];
    assert_eq!(f["rows_lost"], 0);
    assert_eq!(f["rows_duplicated"], 0);
    assert_eq!(f["scan_mismatches"], 0);
    let moved = f["moved_fraction"].as_f64().unwrap();
    assert!((moved - 1.0 / 3.0).abs() < 0.03, "moved {moved}");
    assert!(f["migration_s"].as_f64().unwrap() > 0.0);
    assert!(std::fs::read_to_string(dir.join("scenario.toml"))
        .unwrap()
        .contains(&format!("name = \"{scenario}\"")));

    // The summary's totals are the timeline's sums, per operation type.
    let tl = csv(&dir.join("timeline.csv"));
    let mut sums: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for r in &tl {
        let e = sums.entry(r["op"].clone()).or_default();
        e.0 += r["ok"].parse::<u64>().unwrap();
        e.1 += r["aborts"].parse::<u64>().unwrap();
        e.2 += r["errors"].parse::<u64>().unwrap();
    }
    assert!(sums.contains_key("point_select") && sums.contains_key("transfer"));
    for (op, (ok, aborts, errors)) in &sums {
        assert_eq!(f[format!("{op}_ok_total")], *ok, "{op}");
        assert_eq!(f[format!("{op}_aborts_total")], *aborts, "{op}");
        assert_eq!(f[format!("{op}_errors_total")], *errors, "{op}");
        // And the phases add up to the whole.
        let phases: u64 = ["before", "during", "after"]
            .iter()
            .filter_map(|ph| f[format!("{op}_ok_{ph}")].as_u64())
            .sum();
        assert_eq!(phases, *ok, "{op}: phases");
        assert!(*ok > 0, "{op}: nothing completed");
    }
    // The checking workload counts every transfer that committed, the timeline those
    // that completed before it closed.
    assert!(f["dml_transactions"].as_u64().unwrap() >= sums["transfer"].0);

    // The throughput plot is the CSV's ops_per_s column per type (its log scale drops
    // zero rates), the latency plot its p99 column.
    let ops: Vec<String> = {
        let mut v = Vec::new();
        for r in &tl {
            if !v.contains(&r["op"]) {
                v.push(r["op"].clone());
            }
        }
        v
    };
    // An interval without completions: throughput drawn at the floor (1/s), no p99.
    let series = |col: &str, floor: Option<f64>| -> Vec<Vec<(f64, f64)>> {
        ops.iter()
            .map(|op| {
                tl.iter()
                    .filter(|r| &r["op"] == op)
                    .map(|r| (r["t_s"].parse().unwrap(), r[col].parse().unwrap()))
                    .filter_map(|p: (f64, f64)| match floor {
                        Some(f) => Some((p.0, p.1.max(f))),
                        None => (p.1 > 0.0).then_some(p),
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect()
    };
    ties_out(&dir.join("throughput.svg"), &series("ops_per_s", Some(1.0)));
    ties_out(&dir.join("latency.svg"), &series("p99_us", None));

    for (stem, y) in [
        ("throughput", "operations per second"),
        ("latency", "p99 latency (µs)"),
        ("mover", "percent"),
    ] {
        let texts = svg_texts(&std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap());
        assert!(texts.iter().any(|t| t == "time (s)"), "{stem}: {texts:?}");
        assert!(texts.iter().any(|t| t == y), "{stem}: {texts:?}");
        let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 5_000,
            "{stem}.png"
        );
    }
    for op in &ops {
        let texts = svg_texts(&std::fs::read_to_string(dir.join("throughput.svg")).unwrap());
        assert!(texts.contains(op), "legend lacks {op}");
    }
    // The mover's samples: progress reaches 100%.
    let mover = csv(&dir.join("mover.csv"));
    assert!(!mover.is_empty());
    let last: f64 = mover.last().unwrap()["progress_pct"].parse().unwrap();
    let offline = f["mode"] == "offline";
    assert!(offline || last == 100.0, "progress ends at {last}");
    let marks = std::fs::read_to_string(dir.join("marks.csv")).unwrap();
    for m in ["start", "flip", "end", "cleanup"] {
        assert!(marks.contains(m), "{marks}");
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("![throughput](throughput.png)"), "{report}");
    assert!(report.contains("git revision"), "{report}");
}

#[test]
fn the_smoke_preset_writes_every_output_and_they_tie_out() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("smoke");
    let o = harness(&["--preset", "smoke", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_run(&out.join("01-online"), "smoke");
    check_run(&out.join("02-offline"), "smoke");
    // The data directories are gone.
    assert!(!out.join("01-online/data").exists());
    // The sweep: its table, its overlay (one line per run), its report.
    let sweep = csv(&out.join("sweep.csv"));
    assert_eq!(sweep.len(), 2);
    assert_eq!(sweep[0]["method"], "online");
    assert_eq!(sweep[1]["method"], "offline");
    assert!(sweep.iter().all(|r| r["verdict"] == "ok"));
    let overlay = std::fs::read_to_string(out.join("overlay.svg")).unwrap();
    assert_eq!(svg_polylines(&overlay).len(), 2);
    let texts = svg_texts(&overlay);
    assert!(texts.iter().any(|t| t == "online") && texts.iter().any(|t| t == "offline"));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("(01-online/report.md)") && report.contains("![overlay](overlay.png)"));
    let s = json(&out.join("summary.json"));
    assert_eq!(s["runs"].as_array().unwrap().len(), 2);
    assert_eq!(s["provenance"]["scenario"], "smoke");
}

#[test]
fn a_broken_invariant_fails_the_run() {
    let (o, d) = run_text(
        "name = \"broken\"\nrows = 5000\nfrom = 2\nto = 3\nidle_s = 0.2\nafter_s = 0.2\n\
         inject_fault = \"unbalanced-transfer\"\n",
    );
    let out = d.path().join("out");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("check failed"), "{err}");
    assert!(err.contains("the sum of balances"), "{err}");
    // The outputs are still written, with the verdict.
    let s = json(&out.join("summary.json"));
    assert!(s["verdict"].as_str().unwrap().starts_with("failed"));
}

#[test]
fn bad_scenarios_are_refused_before_anything_runs() {
    let (o, d) = run_text("rowz = 5\n");
    let out = d.path().join("out");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rowz"));
    assert!(!out.exists(), "nothing is written");
    for args in [
        &["--preset", "smoke", "--rows", "0"][..],
        &["--preset", "nope"],
        &["--preset", "smoke", "--theta", "-1"],
        &[
            "--preset",
            "smoke",
            "--from",
            "3",
            "--to",
            "3",
            "--no-sweep",
        ],
    ] {
        let o = harness(&[args, &["--out", out.to_str().unwrap()]].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!out.exists(), "{args:?}");
    }
    let o = harness(&["--list-presets"]);
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(
        list.contains("headline") && list.contains("sweep-nm"),
        "{list}"
    );
}

/// Writes a scenario file's text and runs the harness on it, into `out` beside it:
/// the process's output and the directory (removed when dropped).
fn run_text(text: &str) -> (Output, tempfile::TempDir) {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("s.toml");
    std::fs::write(&f, text).unwrap();
    let out = d.path().join("out");
    let o = harness(&[
        "--scenario",
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    (o, d)
}

/// Runs a scenario file's text, which must pass; returns its summary.
fn run_scenario(text: &str) -> serde_json::Value {
    let (o, d) = run_text(text);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    json(&d.path().join("out/summary.json"))
}

#[test]
fn ycsb_in_open_loop_keeps_its_schedule_on_text_keys() {
    let s = run_scenario(
        "name = \"ycsb\"\nworkload = \"ycsb\"\nmix = \"F\"\nkey_type = \"text\"\n\
         rows = 5000\nchecking_rows = 2000\nclients = 2\nrate = 300.0\nfrom = 2\nto = 3\n\
         idle_s = 0.5\nafter_s = 0.5\n",
    );
    let f = &s["fields"];
    assert_eq!(s["verdict"], "ok");
    let ops = f["read_ok_total"].as_u64().unwrap() + f["rmw_ok_total"].as_u64().unwrap();
    // The schedule: 300 operations a second from the start to the end mark; never
    // more (an open loop does not run ahead), and this light load keeps up.
    let end = f["migration_end_s"].as_f64().unwrap() + 0.5;
    let due = 300.0 * end;
    assert!(
        (ops as f64) <= due * 1.02 + 10.0,
        "{ops} operations, {due} due"
    );
    assert!((ops as f64) >= due * 0.8, "{ops} operations, {due} due");
    assert_eq!(f["placement_problems"], 0);
}

#[test]
fn pgbench_over_the_wire_through_an_expansion() {
    let have = Command::new("pgbench").arg("--version").output();
    if have.is_err() {
        // .ci/run installs it; a developer machine without it is told.
        eprintln!("skipped: pgbench is not installed (apt-get install -y postgresql-client)");
        return;
    }
    let s = run_scenario(
        "name = \"pg\"\nworkload = \"pgbench\"\npgbench_scale = 1\nclients = 2\n\
         checking_rows = 2000\nfrom = 2\nto = 3\nidle_s = 1.0\nafter_s = 0.5\n",
    );
    let f = &s["fields"];
    assert_eq!(s["verdict"], "ok", "{s}");
    assert!(f["tpcb_ok_before"].as_u64().unwrap() > 0, "{f}");
    assert!(f["tpcb_ok_total"].as_u64().unwrap() > 0, "{f}");
    assert_eq!(f["tpcb_errors_total"], 0);
    // Every pgbench table moved and is placed right.
    assert_eq!(f["placement_problems"], 0);
    assert!(f["rows_moved"].as_u64().unwrap() > 0);
}

#[test]
fn pgbench_against_postgres_15_for_comparison() {
    let initdb = Path::new("/usr/lib/postgresql/15/bin/initdb");
    if !initdb.exists() || Command::new("pgbench").arg("--version").output().is_err() {
        eprintln!("skipped: needs postgresql-15 and postgresql-client");
        return;
    }
    let s = run_scenario(
        "name = \"pg15\"\nworkload = \"pgbench\"\npgbench_target = \"postgres\"\n\
         pgbench_scale = 1\nclients = 2\nchecking_rows = 2000\nfrom = 2\nto = 3\n\
         idle_s = 1.0\nafter_s = 0.5\n",
    );
    let f = &s["fields"];
    assert_eq!(s["verdict"], "ok", "{s}");
    assert!(f["tpcb_ok_total"].as_u64().unwrap() > 0, "{f}");
    // Only the checking table is this node's: 2,000 rows, a third of them moved.
    assert!(f["rows_moved"].as_u64().unwrap() < 2_000, "{f}");
    // The cluster is stopped and removed.
    let left = Command::new("pgrep")
        .args(["-f", "segexpand-pg"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn an_output_directory_in_use_or_a_mismatched_table_is_refused() {
    // A non-empty --out: refused before anything runs, nothing in it touched.
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("mine.txt"), "keep").unwrap();
    let o = harness(&["--preset", "smoke", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    // A data directory whose usertable has other keys than the scenario's.
    let data = d.path().join("data");
    let scenario = |key: &str, out: &str| {
        format!(
            "name = \"k\"\nworkload = \"ycsb\"\nrows = 2000\nchecking_rows = 1000\n\
             from = 2\nto = 3\nidle_s = 0.2\nafter_s = 0.1\nkey_type = \"{key}\"\n\
             dir = \"{}\"\n# {out}\n",
            data.display()
        )
    };
    let (o, _d1) = run_text(&scenario("text", "first"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (o, _d2) = run_text(&scenario("int8", "second"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("has keys of type"), "{err}");
    // A sweep with a fixed data directory is refused.
    let (o, _d3) = run_text(&(scenario("text", "third") + "[sweep]\nmethods = [\"online\"]\n"));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("a sweep needs a new data directory"));
}
