//! `segexpand demo` as a user runs it (issue 9, items 8, 9, 11 and 12): rows lost
//! between runs are caught against the `demo_meta` row; bad numbers are refused at parse
//! time with their bounds, without a panic or a hang; arguments and the starting scan
//! are checked before anything changes; a closed stdout does not panic.
//!
//! Every run is small (20,000 rows, 0.2 s idle) and bounded by a timeout: a child still
//! running after it is killed and the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::{Node, NodeOptions, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn demo_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_segexpand"));
    c.arg("demo")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Waits for `child`, killing it (and failing) after `TIMEOUT`.
fn wait(mut child: Child, what: &str) -> Run {
    let t0 = Instant::now();
    let mut out = child.stdout.take();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what}: still running after {TIMEOUT:?} (killed); stderr: {}",
                err_t.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

fn demo(dir: &Path, args: &[&str]) -> Run {
    let r = wait(
        demo_cmd(dir, args).spawn().unwrap(),
        &format!("demo {args:?}"),
    );
    assert!(
        !r.stderr.contains("panicked"),
        "demo {args:?} panicked: {}",
        r.stderr
    );
    r
}

const SMALL: &[&str] = &[
    "--rows",
    "20000",
    "--idle-s",
    "0.2",
    "--workers",
    "2",
    "--json",
];

fn small<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = SMALL.to_vec();
    v.extend_from_slice(extra);
    v
}

fn segment_dirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seg"))
        .collect();
    v.sort();
    v
}

/// Item 8. Rows deleted behind the demo's back between two runs: the second run checks
/// the table against `demo_meta` before it changes anything, and fails naming how many
/// rows were lost. (Before: it took `rows_expected` from what it found and reported
/// success with `rows_lost 0`.)
#[test]
fn demo_detects_rows_lost_between_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let r = demo(&dir, &small(&["--from", "2", "--to", "3"]));
    assert_eq!(r.code, 0, "first run: {}", r.stderr);
    assert!(r.stdout.contains("\"rows_lost\": 0"), "{}", r.stdout);

    // Delete some rows in a committed transaction, as a damaged directory would lose them.
    let deleted = {
        let node = Node::open_dir(&dir, NodeOptions::default()).unwrap();
        let mut tx = node.begin().unwrap();
        let n = tx
            .delete_where("demo_accounts", &|r: &[Value]| {
                r[0].as_int().is_some_and(|id| id % 1000 == 7)
            })
            .unwrap();
        tx.commit().unwrap();
        node.close().unwrap();
        n
    };
    assert!(deleted > 0);

    let r = demo(&dir, &small(&["--from", "2", "--to", "3"]));
    assert_ne!(r.code, 0, "rows were lost: {}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!("{deleted} rows lost")),
        "the message names the lost rows: {}",
        r.stderr
    );
    assert!(r.stderr.contains("Nothing was changed"), "{}", r.stderr);
    // Nothing changed: still three segments, the table still in its layout.
    assert_eq!(segment_dirs(&dir), ["seg0", "seg1", "seg2"]);
    let node = Node::open_dir(&dir, NodeOptions::default()).unwrap();
    assert_eq!(node.table_def("demo_accounts").unwrap().layout.segments, 3);
    node.close().unwrap();
}

/// Item 9 and 12. Bad numbers are refused when parsing, with the bound in the message:
/// no panic, no hang, nothing created. (Before: `--idle-s inf` and `1e30`,
/// `--max-rows-per-s 1e-300` panicked "cannot convert float seconds to Duration" and
/// then hung; `--workers 100000000` hung; `--workers 0` ran one worker while
/// reporting 0; `--max-rows-per-s 0` meant no throttle.)
#[test]
fn bad_numbers_are_refused_at_parse_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let cases: &[(&str, &str, &str)] = &[
        ("--idle-s", "inf", "between 0.1 and 3600 seconds, got inf"),
        ("--idle-s", "1e30", "between 0.1 and 3600 seconds, got 1e30"),
        ("--idle-s", "NaN", "got NaN"),
        ("--idle-s", "-1", "got -1"),
        ("--idle-s", "0", "got 0"),
        (
            "--max-rows-per-s",
            "1e-300",
            "between 1 and 1e9 rows per second, got 1e-300",
        ),
        ("--max-rows-per-s", "0", "got 0"),
        ("--max-rows-per-s", "inf", "got inf"),
        ("--max-rows-per-s", "-5", "got -5"),
        (
            "--workers",
            "100000000",
            "--workers must be a whole number between 1 and 64, got 100000000",
        ),
        ("--workers", "0", "between 1 and 64, got 0"),
        ("--rows", "0", "between 1 and 1000000000, got 0"),
        ("--rows", "1e12", "got 1e12"),
    ];
    for (flag, value, want) in cases {
        // The small run's arguments, with `flag` set to `value`.
        let mut args: Vec<&str> = Vec::new();
        for pair in SMALL.chunks(2) {
            if pair[0] != *flag {
                args.extend_from_slice(pair);
            }
        }
        args.extend_from_slice(&[flag, value]);
        let r = demo(&dir, &args);
        assert_ne!(r.code, 0, "{flag} {value} accepted: {}", r.stdout);
        assert!(r.stderr.contains(want), "{flag} {value}: {}", r.stderr);
        assert!(
            !dir.exists(),
            "{flag} {value}: the data directory was created"
        );
    }
}

/// Item 12. `--from 4 --to 4` on a new directory has nothing to redistribute: refused at
/// once, before a node is created or loaded. (Before: it loaded a whole node first.)
#[test]
fn from_equal_to_on_a_new_directory_is_refused_before_anything_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let r = demo(&missing, &small(&["--from", "4", "--to", "4"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("nothing to redistribute"), "{}", r.stderr);
    assert!(!missing.exists(), "a data directory was created");

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let r = demo(&empty, &small(&["--from", "4", "--to", "4"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("nothing to redistribute"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "the directory was written"
    );
}

/// Item 12. A corrupt block fails the run before segments are added: the starting scan
/// reads the whole table first. (Before: "added segment 3", "added segment 4", then the
/// corruption error, with the segments durably added.)
#[test]
fn a_corrupt_block_fails_the_run_before_segments_are_added() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let r = demo(&dir, &small(&["--from", "2", "--to", "3"]));
    assert_eq!(r.code, 0, "first run: {}", r.stderr);
    let id = {
        let node = Node::open_dir(&dir, NodeOptions::default()).unwrap();
        let id = node.table_id("demo_accounts").unwrap();
        node.close().unwrap();
        id
    };
    let heap = dir.join("seg0").join(format!("t{id}.heap"));
    let mut bytes = std::fs::read(&heap).unwrap();
    assert!(bytes.len() > 4 * 8192, "heap too small for the test");
    bytes[3 * 8192 + 5000] ^= 0x08;
    std::fs::write(&heap, &bytes).unwrap();

    let r = demo(&dir, &small(&["--from", "2", "--to", "5"]));
    assert_ne!(r.code, 0, "a corrupt block must fail the run: {}", r.stdout);
    assert!(r.stderr.contains("block 3"), "{}", r.stderr);
    assert!(!r.stderr.contains("added segment"), "{}", r.stderr);
    assert_eq!(segment_dirs(&dir), ["seg0", "seg1", "seg2"]);
}

/// `segexpand demo | head -1`: the reader goes away after one line; the demo must not
/// panic on the broken pipe (it stops printing and runs to its end).
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut child = demo_cmd(
        &dir,
        &[
            "--rows", "20000", "--idle-s", "0.2", "--from", "2", "--to", "3",
        ],
    )
    .spawn()
    .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // stdout is closed now (the reader was dropped).
    let r = wait(child, "demo | head -1");
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
