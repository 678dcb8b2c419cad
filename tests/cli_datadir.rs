//! The CLI and the data directory, as issue 9 reproduced the holes: two demos on one
//! directory, `--fresh` on a directory that is not ours, a missing control file, a
//! killed owner, and `verify | head -1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_segexpand"))
}

fn demo(dir: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args(["demo", "--json", "--dir"]).arg(dir).args(extra);
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Waits (bounded) until the lock file names a process id.
fn wait_for_owner(dir: &Path, child: &mut Child) -> u32 {
    let t0 = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(dir.join("lock")) {
            if let Ok(pid) = s.trim().parse() {
                return pid;
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "the demo ended early");
        assert!(t0.elapsed() < Duration::from_secs(60), "no owner appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a child, killing it (and failing) if it takes more than `limit`.
fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("the command did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Item 1: `demo & demo` on one directory: the second (plain or `--fresh`) exits
/// non-zero naming the first's process, and the first finishes untouched and clean.
#[test]
fn a_second_demo_on_a_directory_in_use_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut first = demo(&dir, &["--rows", "20000", "--idle-s", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = wait_for_owner(&dir, &mut first);
    assert_eq!(pid, first.id());
    for extra in [&[][..], &["--fresh", "--rows", "100"][..]] {
        let out = demo(&dir, extra).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "data directory {} is in use by process {pid}",
                dir.display()
            )),
            "{err}"
        );
    }
    let verify = bin().args(["verify", "--dir"]).arg(&dir).output().unwrap();
    assert_eq!(verify.status.code(), Some(2));
    assert!(text(&verify.stderr).contains("in use by process"));
    let out = wait_bounded(first, Duration::from_secs(300));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"rows_lost\": 0"));
    let verify = bin().args(["verify", "--dir"]).arg(&dir).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
}

/// Item 1: a killed owner's lock goes with it.
#[test]
fn a_killed_owner_does_not_hold_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let mut first = demo(&dir, &["--rows", "200000", "--idle-s", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_owner(&dir, &mut first);
    first.kill().unwrap();
    first.wait().unwrap();
    let out = bin().args(["verify", "--dir"]).arg(&dir).output().unwrap();
    assert!(
        !text(&out.stderr).contains("in use"),
        "{}",
        text(&out.stderr)
    );
}

/// Item 5: `--fresh` on a directory that is not a segexpand directory deletes nothing.
#[test]
fn fresh_refuses_a_directory_that_is_not_ours() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("u");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("thesis.txt"), "x").unwrap();
    let out = demo(&dir, &["--fresh", "--rows", "100"]).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not a segexpand data directory") && err.contains("thesis.txt"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("thesis.txt")).unwrap(), b"x");
}

/// Item 4: with its control file gone, the demo refuses the directory instead of
/// building a second node on top of the first (which doubled the rows).
#[test]
fn a_missing_control_file_is_refused_by_demo_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let out = demo(&dir, &["--rows", "5000", "--idle-s", "0.2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_file(dir.join("control")).unwrap();
    let out = demo(&dir, &["--rows", "5000", "--idle-s", "0.2"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("control file is missing"), "{err}");
    assert!(!dir.join("control").exists(), "no new node may be made");
    let out = bin().args(["verify", "--dir"]).arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("control file is missing"));
}

/// Item 10: `segexpand verify --dir D | head -1` — the reader goes away — ends with the
/// verify's own exit code, not a panic on the broken pipe.
#[test]
fn verify_into_a_closed_pipe_does_not_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let out = demo(&dir, &["--rows", "20000", "--idle-s", "0.2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Damage the first byte of every page of one heap: many problem lines.
    let heap = dir.join("seg0").join("t1.heap");
    let mut bytes = std::fs::read(&heap).unwrap();
    for page in bytes.chunks_mut(8192) {
        page[100] ^= 0xff;
    }
    std::fs::write(&heap, &bytes).unwrap();
    let mut child = bin()
        .args(["verify", "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // `| head -0`: the reader is gone before the first line
    let out = wait_bounded(child, Duration::from_secs(60));
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
}
