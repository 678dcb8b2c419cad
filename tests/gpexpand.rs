//! `segexpand gpexpand` and `gpshrink` end to end, as an operator runs them against a
//! serving node while pgbench runs: setup from an input file (segments added online in
//! directories of their own), the queue reordered through psql, a run stopped by its
//! duration part way and resumed to completion, cleanup, a shrink back, a `kill -9` of
//! the server mid-run, rollback of a failed setup, and the interview.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::Server;

/// Runs `segexpand <tool> args…` against `srv` in `cwd`; (exit ok, stdout, stderr).
fn tool(srv: &Server, cwd: &Path, tool: &str, args: &[&str]) -> (bool, String, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_segexpand"))
        .arg(tool)
        .args(args)
        .current_dir(cwd)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", srv.port.to_string())
        .env("PGUSER", "tester")
        .env("PGDATABASE", "segexpand")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Loads `rows` lines of tab-separated text into `table` with psql's COPY.
fn copy_in(srv: &Server, table: &str, rows: impl Iterator<Item = String>) {
    let mut script = format!("copy {table} from stdin;\n");
    for r in rows {
        script.push_str(&r);
        script.push('\n');
    }
    script.push_str("\\.\n");
    let (_, err) = srv.psql(&script);
    assert!(!err.contains("ERROR"), "{err}");
}

/// pgbench tpcb-like in 4-second rounds until `stop`; the failed transactions summed.
fn pgbench_rounds(srv: &Server, stop: &AtomicBool) -> (u64, u64) {
    let (mut rounds, mut failed) = (0, 0);
    while !stop.load(Ordering::Acquire) {
        let out = srv
            .client("pgbench")
            .args(["-n", "-c", "4", "-j", "2", "-T", "4", "-M", "prepared"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let f = text
            .lines()
            .find_map(|l| l.strip_prefix("number of failed transactions: "))
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no failure count in {text}"));
        failed += f.parse::<u64>().unwrap();
        rounds += 1;
    }
    (rounds, failed)
}

/// The five tables' contents, as (count, checksum) lines: what must not change.
fn fingerprint(srv: &Server) -> Vec<String> {
    [
        "select count(*), sum(id), sum(length(pad)) from big",
        "select count(*), sum(n), count(distinct k), min(d), max(d) from mid",
        "select count(*), sum(a), sum(b), sum(case when c then 1 else 0 end) from small",
        "select count(*), sum(x), count(distinct y) from rnd",
        "select count(*), sum(id), max(v) from tiny",
    ]
    .iter()
    .map(|q| srv.query(q))
    .collect()
}

fn create_tables(srv: &Server) {
    let (_, err) = srv.psql(
        "create table big (id int8 primary key, pad text);\n\
         create table mid (k text, n int4, d date) distributed by (k);\n\
         create table small (a int2, b numeric, c bool) distributed by (a, b);\n\
         create table rnd (x int8, y text) distributed randomly;\n\
         create table tiny (id int4, v varchar(10)) distributed by (id);\n",
    );
    assert!(!err.contains("ERROR"), "{err}");
    copy_in(
        srv,
        "big",
        (1..=60_000).map(|i| format!("{i}\tpad-{i:0>40}")),
    );
    copy_in(
        srv,
        "mid",
        (1..=20_000).map(|i| {
            format!(
                "key{i}\t{}\t2024-{:02}-{:02}",
                i % 977,
                1 + i % 12,
                1 + i % 28
            )
        }),
    );
    copy_in(
        srv,
        "small",
        (1..=2_000).map(|i| format!("{}\t{}.{}\t{}", i % 300, i, i % 100, i % 3 == 0)),
    );
    copy_in(
        srv,
        "rnd",
        (1..=30_000).map(|i| format!("{i}\ty{}", i % 500)),
    );
    copy_in(srv, "tiny", (1..=50).map(|i| format!("{i}\tv{i}")));
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p
}

/// `name → value` of the progress view.
fn progress(srv: &Server, view: &str) -> std::collections::HashMap<String, String> {
    srv.query(&format!("select name, value from {view}"))
        .lines()
        .map(|l| {
            let (n, v) = l.split_once('|').unwrap();
            (n.to_string(), v.to_string())
        })
        .collect()
}

fn statuses(srv: &Server, schema: &str) -> Vec<String> {
    srv.query(&format!(
        "select status from {schema}.status order by updated"
    ))
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn gpexpand_then_gpshrink_under_pgbench_with_a_deadline_resume_and_cleanup() {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    let disk2 = root.path().join("disk2");
    std::fs::create_dir_all(&work).unwrap();
    let srv = Server::start_in(tempfile::tempdir().unwrap(), 4);
    srv.pgbench_init(None);
    create_tables(&srv);
    let before = fingerprint(&srv);

    let stop = Arc::new(AtomicBool::new(false));
    /// Stops the pgbench rounds also when an assertion fails (else the scope waits).
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    std::thread::scope(|scope| {
        let _guard = StopOnDrop(&stop);
        let bench = scope.spawn(|| pgbench_rounds(&srv, &stop));
        std::thread::sleep(std::time::Duration::from_millis(500));

        // Setup, online: two segments in directories of their own.
        let input = write_file(
            &work,
            "expand.txt",
            &format!(
                "# two new segments on this host\n\
                 localhost|127.0.0.1|6004|{d}/gpseg4|6|4|p\n\n\
                 localhost|127.0.0.1|6005|{d}/gpseg5|7|5|p\n",
                d = disk2.display()
            ),
        );
        let (ok, out, err) = tool(&srv, &work, "gpexpand", &["-i", input.to_str().unwrap()]);
        assert!(ok, "{out}{err}");
        assert!(out.contains("setup completed successfully"), "{out}");
        assert_eq!(statuses(&srv, "gpexpand"), ["SETUP", "SETUP DONE"]);
        assert_eq!(
            srv.query("select count(*) from gp_segment_configuration"),
            "6"
        );
        assert_eq!(
            srv.query("select datadir from gp_segment_configuration where content = 5"),
            disk2.join("gpseg5").display().to_string()
        );
        assert_eq!(
            srv.query(
                "select count(*), min(rank), max(rank), min(status), max(status) \
                 from gpexpand.status_detail"
            ),
            "9|2|2|NOT STARTED|NOT STARTED"
        );
        // A second setup is refused while this one stands.
        let (ok, _, err) = tool(&srv, &work, "gpexpand", &["-i", input.to_str().unwrap()]);
        assert!(!ok && err.contains("already set up"), "{err}");

        // The operator reorders the queue through psql, as gpexpand's docs teach.
        assert_eq!(
            srv.query(
                "update gpexpand.status_detail set rank = 1 where fq_name = 'public.tiny'; \
                 select count(*) from gpexpand.status_detail where rank = 1"
            ),
            "1"
        );
        assert_eq!(
            srv.query(
                "update gpexpand.status_detail set rank = 3 where fq_name = 'public.big'; \
                 select 1"
            ),
            "1"
        );
        let p = progress(&srv, "gpexpand.expansion_progress");
        assert_eq!(p["Tables Left"], "9");
        assert_eq!(p["Tables Expanded"], "0");

        // Phase 2, bounded by -d: stopped part way.
        let (ok, out, err) = tool(
            &srv,
            &work,
            "gpexpand",
            &["-n", "2", "-d", "0:0:3", "-S", "--max-rows-per-s", "15000"],
        );
        assert!(ok, "{out}{err}");
        assert!(out.contains("stopped"), "{out}");
        assert_eq!(
            statuses(&srv, "gpexpand"),
            [
                "SETUP",
                "SETUP DONE",
                "EXPANSION STARTED",
                "EXPANSION STOPPED"
            ]
        );
        assert_eq!(
            srv.query("select status from gpexpand.status_detail where fq_name = 'public.tiny'"),
            "COMPLETED"
        );
        let done: i64 = srv
            .query("select count(*) from gpexpand.status_detail where status = 'COMPLETED'")
            .parse()
            .unwrap();
        assert!((1..9).contains(&done), "{done} tables done");
        let partly = srv.query(
            "select count(*) from segexpand_tables \
             where state = 'redistributing' and blocks_done > 0 and blocks_done < blocks_total",
        );
        assert_ne!(partly, "0", "no table was left part way");
        let p = progress(&srv, "gpexpand.expansion_progress");
        assert_eq!(p["Tables Expanded"], done.to_string());
        assert!(p["Bytes Done"].parse::<f64>().unwrap() > 0.0, "{p:?}");
        assert!(p["Estimated Expansion Rate"].ends_with(" MB/s"), "{p:?}");
        let (ok, status, _) = tool(&srv, &work, "gpexpand", &["--status"]);
        assert!(ok && status.contains("EXPANSION STOPPED"), "{status}");

        // Run again: resumes and completes.
        let (ok, out, err) = tool(&srv, &work, "gpexpand", &["-n", "2", "-S"]);
        assert!(ok, "{out}{err}");
        assert_eq!(
            statuses(&srv, "gpexpand").last().unwrap(),
            "EXPANSION COMPLETE"
        );
        assert_eq!(
            srv.query("select count(*) from gpexpand.status_detail where status <> 'COMPLETED'"),
            "0"
        );
        assert_eq!(
            srv.query(
                "select count(*) from segexpand_tables where segments <> 6 \
                 and fq_name not like 'gpexpand.%'"
            ),
            "0"
        );
        let p = progress(&srv, "gpexpand.expansion_progress");
        assert_eq!(
            (p["Tables Expanded"].as_str(), p["Tables Left"].as_str()),
            ("9", "0")
        );
        assert_eq!(fingerprint(&srv), before);
        // The random table ends balanced over the six segments.
        for (seg, n) in srv.per_segment("rnd").iter().enumerate() {
            assert!((n - 5_000.0).abs() < 500.0, "segment {seg}: {n}");
        }
        assert_eq!(srv.per_segment("big").len(), 6);
        assert!(std::fs::read_dir(disk2.join("gpseg4")).unwrap().count() > 10);

        // Cleanup: the schema goes, status_detail dumped first.
        let (ok, out, err) = tool(&srv, &work, "gpexpand", &["-c", "-s"]);
        assert!(ok, "{out}{err}");
        let dump = std::fs::read_to_string(work.join("gpexpand.status_detail")).unwrap();
        assert_eq!(dump.lines().count(), 10, "{dump}");
        assert_eq!(
            srv.query("select count(*) from segexpand_tables where fq_name like 'gpexpand.%'"),
            "0"
        );

        // gpshrink back to four segments, online.
        let input = write_file(
            &work,
            "shrink.txt",
            &format!(
                "localhost|127.0.0.1|6004|{d}/gpseg4|6|4|p\n\
                 localhost|127.0.0.1|6005|{d}/gpseg5|7|5|p\n",
                d = disk2.display()
            ),
        );
        let (ok, out, err) = tool(&srv, &work, "gpshrink", &["-i", input.to_str().unwrap()]);
        assert!(ok, "{out}{err}");
        let (ok, out, err) = tool(&srv, &work, "gpshrink", &["-n", "2", "-S"]);
        assert!(ok, "{out}{err}");
        assert_eq!(
            statuses(&srv, "gpshrink"),
            ["SETUP", "SETUP DONE", "SHRINK STARTED", "SHRINK COMPLETE"]
        );
        assert_eq!(
            srv.query("select count(*) from gp_segment_configuration"),
            "4"
        );
        assert!(!disk2.join("gpseg4").exists() && !disk2.join("gpseg5").exists());
        assert_eq!(fingerprint(&srv), before);
        let (ok, out, err) = tool(&srv, &work, "gpshrink", &["-c", "-s"]);
        assert!(ok, "{out}{err}");

        stop.store(true, Ordering::Release);
        let (rounds, failed) = bench.join().unwrap();
        assert!(rounds >= 2, "pgbench ran {rounds} rounds");
        assert_eq!(failed, 0, "pgbench transactions failed");
    });
    srv.assert_tpcb_invariant();
    for (seg, n) in srv.per_segment("rnd").iter().enumerate() {
        assert!((n - 7_500.0).abs() < 750.0, "segment {seg}: {n}");
    }
    let dir = srv.kill9();
    let node = segexpand_engine::Node::open_dir(
        &dir.path().join("data"),
        segexpand_engine::NodeOptions::default(),
    )
    .unwrap();
    for t in node.tables() {
        let problems = node.check_placement(&t.name).unwrap();
        assert!(problems.is_empty(), "{}: {problems:?}", t.name);
    }
}

/// The number after `word` in `text`.
fn number_after(text: &str, word: &str) -> u64 {
    let i = text
        .find(word)
        .unwrap_or_else(|| panic!("{word:?} in {text:?}"))
        + word.len();
    text[i..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_killed_server_mid_expansion_resumes_without_moving_a_row_twice_and_rollback_rules() {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().to_path_buf();
    let srv = Server::start_in(tempfile::tempdir().unwrap(), 3);
    let (_, err) = srv.psql("create table t (id int8 primary key, pad text);\n");
    assert!(!err.contains("ERROR"), "{err}");
    copy_in(&srv, "t", (1..=150_000).map(|i| format!("{i}\t{i:0>60}")));
    let sums = srv.query("select count(*), sum(id) from t");

    // A bad file changes nothing, and says where.
    let bad = write_file(&work, "bad.txt", "localhost|127.0.0.1|6003|/x/gpseg3|5|3\n");
    let (ok, _, err) = tool(&srv, &work, "gpexpand", &["-i", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "Invalid input file on line 1 of file {}: expected 7 parts, obtained 6",
            bad.display()
        )),
        "{err}"
    );
    // A host that is not this server's.
    let far = write_file(&work, "far.txt", "sdw9|10.9.9.9|6003|/x/gpseg3|5|3|p\n");
    let (ok, _, err) = tool(&srv, &work, "gpexpand", &["-i", far.to_str().unwrap()]);
    assert!(!ok && err.contains("not this server's host"), "{err}");
    assert_eq!(
        srv.query("select count(*) from segexpand_tables where fq_name like 'gpexpand.%'"),
        "0"
    );

    // A directory that is not empty is refused before anything changes.
    let full = work.join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("someone-elses"), b"x").unwrap();
    let half = write_file(
        &work,
        "half.txt",
        &format!(
            "localhost|127.0.0.1|6003|{}/gpseg3|5|3|p\nlocalhost|127.0.0.1|6004|{}|6|4|p\n",
            work.display(),
            full.display()
        ),
    );
    let (ok, _, err) = tool(&srv, &work, "gpexpand", &["-i", half.to_str().unwrap()]);
    assert!(!ok && err.contains("exists and is not empty"), "{err}");
    assert_eq!(
        srv.query("select count(*) from gp_segment_configuration"),
        "3"
    );
    assert_eq!(
        srv.query("select count(*) from segexpand_tables where fq_name like 'gpexpand.%'"),
        "0"
    );
    // A setup interrupted half way (what a crash of the client between its steps leaves:
    // the status tables, SETUP, one of two segments added) is refused until rolled back.
    let seg3 = work.join("gpseg3");
    for sql in [
        "create schema gpexpand".to_string(),
        "create table gpexpand.status (status text, updated timestamp) distributed randomly"
            .to_string(),
        "insert into gpexpand.status values ('SETUP', now())".to_string(),
        format!(
            "select segexpand_add_segment('localhost', '127.0.0.1', 6003, '{}', 5, 3)",
            seg3.display()
        ),
    ] {
        srv.query(&sql);
    }
    assert_eq!(
        srv.query("select count(*) from gp_segment_configuration"),
        "4"
    );
    assert!(seg3.is_dir());
    let (ok, _, err) = tool(&srv, &work, "gpexpand", &[]);
    assert!(!ok && err.contains("did not finish"), "{err}");
    let (ok, out, err) = tool(&srv, &work, "gpexpand", &["-r"]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        srv.query("select count(*) from gp_segment_configuration"),
        "3"
    );
    assert!(!work.join("gpseg3").exists());

    // A good setup; rollback is then refused, as gpexpand refuses it. A table dropped
    // after setup is NO LONGER EXISTS.
    let (_, err) = srv.psql("create table gone (a int) distributed by (a);\n");
    assert!(!err.contains("ERROR"), "{err}");
    let input = write_file(
        &work,
        "in.txt",
        &format!(
            "localhost|127.0.0.1|6003|{d}/gpseg3|5|3|p\nlocalhost|127.0.0.1|6004|{d}/gpseg4|6|4|p\n",
            d = work.display()
        ),
    );
    let (ok, out, err) = tool(&srv, &work, "gpexpand", &["-i", input.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let (ok, _, err) = tool(&srv, &work, "gpexpand", &["-r"]);
    assert!(!ok && err.contains("past the point of rollback"), "{err}");
    srv.query("drop table gone");

    // Phase 2, throttled; the server is killed part way.
    let port = srv.port.to_string();
    let mut run = Command::new(env!("CARGO_BIN_EXE_segexpand"))
        .args(["gpexpand", "-S", "--max-rows-per-s", "40000", "-p", &port])
        .args(["-h", "127.0.0.1", "-U", "tester", "-D", "segexpand"])
        .current_dir(&work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let p = srv.query("select blocks_done::float8 / blocks_total from segexpand_tables where fq_name = 'public.t' and state = 'redistributing' and blocks_total > 0");
        if p.parse::<f64>().is_ok_and(|f| f > 0.4) {
            break;
        }
        assert!(t0.elapsed().as_secs() < 60, "no progress: {p:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // One run at a time; and no cleanup while tables are part way.
    let (ok, _, err) = tool(&srv, &work, "gpexpand", &[]);
    assert!(!ok && err.contains("another gpexpand is running"), "{err}");
    let dir = srv.kill9();
    let _ = run.wait();
    let srv = Server::start_in(dir, 3);
    assert_eq!(srv.query("select count(*), sum(id) from t"), sums);
    let on_new_before: u64 = srv
        .query("select count(*) from t where gp_segment_id >= 3")
        .parse()
        .unwrap();
    assert!(on_new_before > 0, "the moved rows were lost");
    let (ok, _, err) = tool(&srv, &work, "gpexpand", &["-c", "-s"]);
    assert!(!ok && err.contains("has not completed"), "{err}");
    let (ok, out, err) = tool(&srv, &work, "gpexpand", &["-S"]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        statuses(&srv, "gpexpand").last().unwrap(),
        "EXPANSION COMPLETE"
    );
    let moved = number_after(&out, "moved");
    let on_new_after: u64 = srv
        .query("select count(*) from t where gp_segment_id >= 3")
        .parse()
        .unwrap();
    // The resumed run moved exactly the rows not moved before the crash.
    assert_eq!(moved, on_new_after - on_new_before, "{out}");
    assert!(moved < on_new_after, "{out}");
    // Blocks finished before the kill (their VM bits rebuilt by recovery) are not
    // visited again.
    assert!(number_after(&out, "in place; ") > 0, "{out}");
    assert_eq!(srv.query("select count(*), sum(id) from t"), sums);
    assert_eq!(
        srv.query("select status from gpexpand.status_detail where fq_name = 'public.gone'"),
        "NO LONGER EXISTS"
    );
    let (ok, _, _) = tool(&srv, &work, "gpexpand", &["-c", "-s"]);
    assert!(ok);
}

#[test]
fn the_interview_writes_an_input_file_that_setup_accepts() {
    let work = tempfile::tempdir().unwrap();
    let srv = Server::start_in(tempfile::tempdir().unwrap(), 2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_segexpand"))
        .args(["gpexpand", "-p", &srv.port.to_string(), "-h", "127.0.0.1"])
        .args(["-U", "tester", "-D", "segexpand"])
        .current_dir(work.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let answers = format!("y\n\n1\n{}\n", work.path().join("new").display());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answers.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Would you like to initiate a new System Expansion"),
        "{text}"
    );
    let file = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("gpexpand_inputfile_")
        })
        .expect("no input file written");
    let contents = std::fs::read_to_string(&file).unwrap();
    assert_eq!(contents.lines().count(), 1, "{contents}");
    let (ok, out, err) = tool(
        &srv,
        work.path(),
        "gpexpand",
        &["-i", file.to_str().unwrap()],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(
        srv.query("select count(*) from gp_segment_configuration"),
        "3"
    );
}
