//! The operator statements behind `segexpand gpexpand`/`gpshrink`: adding a segment from
//! an input-file row (its data directory honoured), `segexpand_tables`, a deadline that
//! stops a redistribution keeping its work (resumed by the same statement, with the
//! blocks already done counted and not visited again), SHRINK TABLE TO and retiring.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
use segexpand_engine::{Node, NodeOptions, Value};
use segexpand_sql::Session;
#[path = "support/session.rs"]
mod support;
use support::{ok, rows};

/// The SQLSTATE and message of the error `sql` gives.
fn err(s: &mut Session, sql: &str) -> (String, String) {
    let e = support::err(s, sql);
    (e.sqlstate.to_string(), e.message)
}

fn one(s: &mut Session, sql: &str) -> String {
    rows(s, sql)[0][0].clone().unwrap_or_default()
}

/// The number after `word` in `text` (`moved 12 rows` → 12 for "moved").
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
fn add_segment_deadline_resume_shrink_and_retire_through_sql() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node");
    let node = Node::create_dir(&dir, 2, NodeOptions::default()).unwrap();
    let mut s = Session::new(node.clone(), "u", "d");
    ok(
        &mut s,
        "CREATE TABLE t (id int8 NOT NULL, pad text) DISTRIBUTED BY (id)",
    );
    ok(
        &mut s,
        "CREATE TABLE r (id int8, pad text) DISTRIBUTED RANDOMLY",
    );
    let pad = "x".repeat(200);
    node.bulk_load(
        "t",
        (1..=20_000).map(|i| vec![Value::Int8(i), Value::Text(pad.clone())]),
    )
    .unwrap();
    node.bulk_load(
        "r",
        (1..=3_000).map(|i| vec![Value::Int8(i), Value::Text("p".into())]),
    )
    .unwrap();

    let seg_dir = root.path().join("disk2/gpseg2");
    let add = format!(
        "SELECT segexpand_add_segment('localhost', '127.0.0.1', 7002, '{}', 4, 2)",
        seg_dir.display()
    );
    assert_eq!(one(&mut s, &add), "{2}");
    assert!(seg_dir.is_dir());
    // The same row again: content 2 is taken.
    assert_eq!(err(&mut s, &add).0, "22023");
    assert_eq!(
        one(
            &mut s,
            "SELECT datadir FROM gp_segment_configuration WHERE content = 2"
        ),
        seg_dir.display().to_string()
    );
    assert_eq!(
        err(&mut s, "SELECT segexpand_add_segment('h', 1)").0,
        "42883"
    );
    // Checked before anything changes: a directory that cannot be made (under a file),
    // one reached through a symbolic link into the node's directory, one not empty.
    let file = root.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let check = |dir: &std::path::Path| {
        format!(
            "SELECT segexpand_check_segment('localhost', '127.0.0.1', 7003, '{}', 5, 3)",
            dir.display()
        )
    };
    let (code, msg) = err(&mut s, &check(&file.join("sub")));
    assert_eq!(code, "22023", "{msg}");
    assert!(msg.contains("cannot create"), "{msg}");
    std::os::unix::fs::symlink(&dir, root.path().join("link")).unwrap();
    let (code, msg) = err(&mut s, &check(&root.path().join("link/inside")));
    assert_eq!(code, "22023");
    assert!(msg.contains("inside the node's data directory"), "{msg}");
    let full = root.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), b"x").unwrap();
    let (code, msg) = err(&mut s, &check(&full));
    assert_eq!(code, "22023");
    assert!(msg.contains("not empty"), "{msg}");
    let fresh = root.path().join("disk3/gpseg3");
    assert_eq!(one(&mut s, &check(&fresh)), "t");
    assert!(!fresh.exists(), "the check left the directory it made");
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM gp_segment_configuration"),
        "3"
    );
    // One operator run at a time: the lock is the session's.
    let mut other = Session::new(node.clone(), "u", "d");
    assert_eq!(
        one(&mut s, "SELECT segexpand_operator_lock('gpexpand')"),
        "t"
    );
    assert_eq!(
        err(&mut other, "SELECT segexpand_operator_lock('gpexpand')").0,
        "55P03"
    );
    assert_eq!(
        one(&mut other, "SELECT segexpand_operator_lock('gpshrink')"),
        "t"
    );
    drop(other);
    let mut third = Session::new(node.clone(), "u", "d");
    assert_eq!(
        one(&mut third, "SELECT segexpand_operator_lock('gpshrink')"),
        "t"
    );

    let t = rows(
        &mut s,
        "SELECT fq_name, segments, state, bytes > 0, distribution FROM segexpand_tables ORDER BY 1",
    );
    assert_eq!(
        t,
        vec![
            vec![
                Some("public.r".into()),
                Some("2".into()),
                Some("stable".into()),
                Some("t".into()),
                Some("random".into())
            ],
            vec![
                Some("public.t".into()),
                Some("2".into()),
                Some("stable".into()),
                Some("t".into()),
                Some("hash".into())
            ],
        ]
    );

    // A deadline already near: the expansion stops part way, keeping its work.
    ok(&mut s, "SET segexpand.redistribute_rows_per_second = 20000");
    assert_eq!(
        err(&mut s, "SET segexpand.redistribute_deadline = 'soon'").0,
        "22023"
    );
    let soon = chrono_free_utc_in(0.3);
    ok(
        &mut s,
        &format!("SET segexpand.redistribute_deadline = '{soon}'"),
    );
    ok(&mut s, "ALTER TABLE t EXPAND TABLE");
    let notices = s.take_notices();
    assert!(
        notices
            .iter()
            .any(|n| n.contains("stopped at the deadline")),
        "{notices:?}"
    );
    let prog = rows(
        &mut s,
        "SELECT state, target_segments, blocks_total, blocks_done FROM segexpand_tables WHERE fq_name = 'public.t'",
    );
    assert_eq!(prog[0][0].as_deref(), Some("redistributing"));
    assert_eq!(prog[0][1].as_deref(), Some("3"));
    let total: u64 = prog[0][2].as_deref().unwrap().parse().unwrap();
    let done: u64 = prog[0][3].as_deref().unwrap().parse().unwrap();
    assert!(done > 0 && done < total, "{done} of {total}");
    let moved_first: i64 = one(&mut s, "SELECT count(*) FROM t WHERE gp_segment_id = 2")
        .parse()
        .unwrap();
    assert!(moved_first > 0);

    // Resumed: the blocks done are counted as done and their rows are not moved again.
    ok(&mut s, "SET segexpand.redistribute_deadline = none");
    ok(&mut s, "SET segexpand.redistribute_rows_per_second = 0");
    ok(&mut s, "ALTER TABLE t EXPAND TABLE");
    let notices = s.take_notices();
    let n = notices
        .iter()
        .find(|n| n.starts_with("redistributed \"t\""))
        .unwrap_or_else(|| panic!("{notices:?}"));
    assert!(number_after(n, "moved") > 0);
    let already = number_after(n, "in place; ");
    // The moved rows' old versions are reclaimed by the statement (no snapshot holds them).
    let cleanup = notices
        .iter()
        .find(|n| n.starts_with("cleanup of \"t\""))
        .unwrap_or_else(|| panic!("{notices:?}"));
    assert!(number_after(cleanup, "\": ") > 0, "{cleanup}");
    assert!(already >= done, "{n}: {already} < {done}");
    let on_new: i64 = one(&mut s, "SELECT count(*) FROM t WHERE gp_segment_id = 2")
        .parse()
        .unwrap();
    assert_eq!(
        number_after(n, "moved") as i64,
        on_new - moved_first,
        "{n}: rows moved twice or missed"
    );
    assert_eq!(one(&mut s, "SELECT count(*) FROM t"), "20000");
    assert_eq!(one(&mut s, "SELECT sum(id) FROM t"), "200010000");

    // The random table too, the gpexpand way (locked and rewritten: every row moves);
    // then both back to 2 segments and the segment retired.
    ok(&mut s, "SET segexpand.redistribute_offline = on");
    ok(&mut s, "ALTER TABLE r EXPAND TABLE");
    let n = s.take_notices();
    assert!(
        n.iter()
            .any(|x| x.contains("offline") && x.contains("moved 3000 rows")),
        "{n:?}"
    );
    ok(&mut s, "SET segexpand.redistribute_offline = off");
    assert_eq!(one(&mut s, "SELECT count(*) FROM r"), "3000");
    assert_ne!(
        one(&mut s, "SELECT count(*) FROM r WHERE gp_segment_id = 2"),
        "0"
    );
    ok(&mut s, "ALTER TABLE t SHRINK TABLE TO 4");
    let n = s.take_notices();
    assert!(
        n.iter().any(|x| x.contains("already fewer than 4")),
        "{n:?}"
    );
    assert_eq!(err(&mut s, "ALTER TABLE t SHRINK TABLE TO 0").0, "22023");
    assert_eq!(err(&mut s, "ALTER TABLE t SHRINK TABLE 2").0, "42601");
    let (code, _) = err(&mut s, "SELECT segexpand_retire_segments(1)");
    assert_ne!(code, "00000");
    ok(&mut s, "ALTER TABLE t SHRINK TABLE TO 2");
    ok(&mut s, "ALTER TABLE r SHRINK TABLE TO 2");
    ok(&mut s, "VACUUM t");
    ok(&mut s, "VACUUM r");
    assert_eq!(one(&mut s, "SELECT segexpand_retire_segments(1)"), "{2}");
    assert!(!seg_dir.exists());
    assert_eq!(
        one(&mut s, "SELECT count(*) FROM gp_segment_configuration"),
        "2"
    );
    assert_eq!(one(&mut s, "SELECT sum(id) FROM t"), "200010000");
    assert_eq!(one(&mut s, "SELECT count(*) FROM r"), "3000");
    assert_eq!(
        err(&mut s, "SELECT segexpand_retire_segments(2)").0,
        "22023"
    );
}

/// A UTC time `secs` from now as `YYYY-MM-DD hh:mm:ss.ffffff`.
fn chrono_free_utc_in(secs: f64) -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + secs;
    let total_us = (d * 1e6) as i64;
    let (days, us) = (
        total_us.div_euclid(86_400_000_000),
        total_us.rem_euclid(86_400_000_000),
    );
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = us / 1_000_000;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:06}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        us % 1_000_000
    )
}
