//! The table API: row locks (readers never wait, writers re-check, deadlocks detected),
//! the transfer invariant under concurrency, clear errors, key lookups touching one
//! segment, vacuum, and DROP/TRUNCATE crash safety.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use segexpand_engine::vfs::{CrashMode, SimVfs, Vfs};
use segexpand_engine::{Error, Node, NodeOptions, TableSpec, Type, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

fn accounts(node: &Arc<Node>, n: i64, balance: i64) {
    node.create_table(
        &TableSpec::new("acct")
            .not_null("id", Type::Int8)
            .not_null("v", Type::Int8)
            .distributed_by(&["id"]),
    )
    .unwrap();
    node.bulk_load(
        "acct",
        (0..n).map(|i| vec![Value::Int8(i), Value::Int8(balance)]),
    )
    .unwrap();
}

fn balance(row: &[Value]) -> i64 {
    row[1].as_int().unwrap()
}

fn add(d: i64) -> impl FnMut(&[Value]) -> Vec<Value> {
    move |row| vec![row[0].clone(), Value::Int8(balance(row) + d)]
}

fn mem_node(segments: u16) -> (SimVfs, Arc<Node>) {
    let vfs = SimVfs::new();
    let node = Node::create(
        Arc::new(vfs.clone()),
        Path::new("/db"),
        segments,
        NodeOptions::default(),
    )
    .unwrap();
    (vfs, node)
}

/// Acceptance 3: a reader finishes while a writer's transaction holds locks on the very
/// rows it reads, and it sees their last committed values.
#[test]
fn a_reader_finishes_while_a_writer_holds_locks_on_its_rows() {
    let (_vfs, node) = mem_node(3);
    accounts(&node, 100, 10);
    let mut writer = node.begin().unwrap();
    for id in 0..100 {
        assert_eq!(
            writer.update("acct", &[Value::Int8(id)], add(5)).unwrap(),
            1
        );
    }
    // Every row is now locked by the open writer. A reader on another thread must finish
    // without waiting for it; the writer commits only after the reader reports back.
    let (tx, rx) = mpsc::channel();
    let n2 = node.clone();
    let reader = std::thread::spawn(move || {
        let mut r = n2.begin().unwrap();
        let rows = r.scan("acct", None).unwrap();
        let sum: i64 = rows.iter().map(|row| balance(row)).sum();
        let got = r.get("acct", &[Value::Int8(42)]).unwrap();
        r.commit().unwrap();
        tx.send((rows.len(), sum, balance(&got[0]))).unwrap();
    });
    let (count, sum, one) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the reader was blocked by the writer's row locks");
    assert_eq!(
        (count, sum, one),
        (100, 1000, 10),
        "reader saw uncommitted data"
    );
    writer.commit().unwrap();
    reader.join().unwrap();
    let mut r = node.begin().unwrap();
    let sum: i64 = r
        .scan("acct", None)
        .unwrap()
        .iter()
        .map(|x| balance(x))
        .sum();
    assert_eq!(sum, 1500);
}

/// A writer that waited for another re-checks the newest committed version: no lost
/// update (PostgreSQL's read-committed UPDATE).
#[test]
fn a_writer_that_waited_updates_the_newest_committed_version() {
    let (_vfs, node) = mem_node(2);
    accounts(&node, 1, 100);
    let mut first = node.begin().unwrap();
    first.update("acct", &[Value::Int8(0)], add(-30)).unwrap();
    let started = Arc::new(Barrier::new(2));
    let (n2, s2) = (node.clone(), started.clone());
    let second = std::thread::spawn(move || {
        let mut t = n2.begin().unwrap();
        s2.wait();
        let n = t.update("acct", &[Value::Int8(0)], add(-50)).unwrap();
        t.commit().unwrap();
        n
    });
    started.wait();
    // Give the second writer time to block on the row, then commit the first.
    std::thread::sleep(Duration::from_millis(50));
    first.commit().unwrap();
    assert_eq!(second.join().unwrap(), 1);
    let mut r = node.begin().unwrap();
    assert_eq!(balance(&r.get("acct", &[Value::Int8(0)]).unwrap()[0]), 20);
}

#[test]
fn a_deadlock_is_detected_and_the_survivor_commits() {
    let (_vfs, node) = mem_node(2);
    accounts(&node, 2, 0);
    let barrier = Arc::new(Barrier::new(2));
    let run = |me: i64, other: i64| {
        let (node, barrier) = (node.clone(), barrier.clone());
        std::thread::spawn(move || {
            let mut t = node.begin().unwrap();
            t.update("acct", &[Value::Int8(me)], add(1)).unwrap();
            barrier.wait();
            match t.update("acct", &[Value::Int8(other)], add(1)) {
                Ok(_) => {
                    t.commit().unwrap();
                    None
                }
                Err(e) => {
                    // The failed transaction refuses further statements, then rolls back.
                    assert!(matches!(
                        t.get("acct", &[Value::Int8(0)]),
                        Err(Error::TxnAborted { .. })
                    ));
                    t.rollback().unwrap();
                    Some(e)
                }
            }
        })
    };
    let a = run(0, 1);
    let b = run(1, 0);
    let errors: Vec<Error> = [a.join().unwrap(), b.join().unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(errors.len(), 1, "exactly one side is chosen as the victim");
    let msg = errors[0].to_string();
    assert!(matches!(errors[0], Error::Deadlock { .. }), "{msg}");
    assert!(msg.contains("deadlock detected"), "{msg}");
    let mut r = node.begin().unwrap();
    let sum: i64 = r
        .scan("acct", None)
        .unwrap()
        .iter()
        .map(|x| balance(x))
        .sum();
    assert_eq!(
        sum, 2,
        "the survivor's two updates, nothing of the victim's"
    );
}

/// Acceptance 2: transfers between random accounts on several threads while others scan
/// and sum. Every scan sees the constant total; the final balances equal the committed
/// transfers exactly.
#[test]
fn concurrent_transfers_keep_every_scan_total_exact() {
    const ACCOUNTS: i64 = 40;
    const START: i64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(
        dir.path(),
        4,
        NodeOptions {
            sync: segexpand_engine::SyncPolicy::Batched { delay_us_max: 500 },
            ..NodeOptions::default()
        },
    )
    .unwrap();
    accounts(&node, ACCOUNTS, START);
    let stop = Arc::new(AtomicBool::new(false));
    let scans = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let (node, stop) = (node.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let mut rng = common::Rng(0xfeed + w);
            let mut delta = vec![0i64; ACCOUNTS as usize];
            let (mut committed, mut retried) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let from = rng.below(ACCOUNTS as u64) as i64;
                let to = (from + 1 + rng.below(ACCOUNTS as u64 - 1) as i64) % ACCOUNTS;
                let d = 1 + rng.below(20) as i64;
                let mut t = node.begin().unwrap();
                let r = t
                    .update("acct", &[Value::Int8(from)], add(-d))
                    .and_then(|n| {
                        assert_eq!(n, 1);
                        t.update("acct", &[Value::Int8(to)], add(d))
                    });
                match r {
                    Ok(1) => {
                        t.commit().unwrap();
                        delta[from as usize] -= d;
                        delta[to as usize] += d;
                        committed += 1;
                    }
                    Err(Error::Deadlock { .. }) => {
                        t.rollback().unwrap();
                        retried += 1;
                    }
                    other => panic!("transfer failed: {other:?}"),
                }
            }
            (delta, committed, retried)
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (node, stop, scans) = (node.clone(), stop.clone(), scans.clone());
        readers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut t = node.begin().unwrap();
                let mut sum = 0;
                let rows = t.scan_with("acct", |row| sum += balance(row)).unwrap();
                t.commit().unwrap();
                assert_eq!(
                    rows, ACCOUNTS as u64,
                    "a scan saw a row twice or missed one"
                );
                assert_eq!(sum, ACCOUNTS * START, "a scan saw a partial transfer");
                scans.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let mut expect = vec![START; ACCOUNTS as usize];
    let (mut committed, mut retried) = (0, 0);
    for w in writers {
        let (delta, c, r) = w.join().unwrap();
        committed += c;
        retried += r;
        for (e, d) in expect.iter_mut().zip(delta) {
            *e += d;
        }
    }
    let mut t = node.begin().unwrap();
    for id in 0..ACCOUNTS {
        let rows = t.get("acct", &[Value::Int8(id)]).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(balance(&rows[0]), expect[id as usize], "account {id}");
    }
    t.commit().unwrap();
    println!(
        "{committed} transfers committed, {retried} deadlock victims retried, {} scans",
        scans.load(Ordering::Relaxed)
    );
    assert!(committed > 100 && scans.load(Ordering::Relaxed) > 10);
    node.close().unwrap();
}

#[test]
fn bad_input_gets_a_clear_error() {
    let (_vfs, node) = mem_node(2);
    let spec = TableSpec::new("t")
        .not_null("id", Type::Int4)
        .column("name", Type::Varchar(3))
        .distributed_by(&["id"]);
    node.create_table(&spec).unwrap();
    let err = |e: Error| e.to_string();
    assert_eq!(
        err(node.create_table(&spec).unwrap_err()),
        "table \"t\" already exists"
    );
    assert_eq!(
        err(node
            .create_table(
                &TableSpec::new("u")
                    .column("a", Type::Int4)
                    .distributed_by(&["b"])
            )
            .unwrap_err()),
        "distribution key column \"b\" is not a column of \"u\""
    );
    assert!(node.create_table(&TableSpec::new("v")).is_err());
    let mut t = node.begin().unwrap();
    assert_eq!(
        err(t.insert("nope", vec![]).unwrap_err()),
        "table \"nope\" does not exist"
    );
    t.rollback().unwrap();
    let cases: Vec<(Vec<Value>, &str)> = vec![
        (
            vec![Value::Null, Value::Null],
            "violates not-null constraint",
        ),
        (vec![Value::Int8(1 << 40), Value::Null], "out of range"),
        (
            vec![Value::Int4(1), Value::Text("abcd".into())],
            "value too long",
        ),
        (
            vec![Value::Text("1".into()), Value::Null],
            "is integer but the value is a string",
        ),
        (
            vec![Value::Int4(1)],
            "has 2 columns but the row has 1 values",
        ),
    ];
    for (row, want) in cases {
        let mut t = node.begin().unwrap();
        let e = t.insert("t", row).unwrap_err().to_string();
        assert!(e.contains(want), "{e:?} lacks {want:?}");
        // After a failed statement, only rollback.
        let e2 = t
            .insert("t", vec![Value::Int4(1), Value::Null])
            .unwrap_err();
        assert!(matches!(e2, Error::TxnAborted { .. }));
        assert!(matches!(t.commit(), Err(Error::TxnAborted { .. })));
    }
    let mut t = node.begin().unwrap();
    let e = t.get("t", &[Value::Int4(1), Value::Int4(2)]).unwrap_err();
    assert!(e.to_string().contains("has 1 columns, got 2 values"), "{e}");
    t.rollback().unwrap();
    node.create_table(
        &TableSpec::new("r")
            .column("a", Type::Int4)
            .distributed_randomly(),
    )
    .unwrap();
    let mut t = node.begin().unwrap();
    let e = t.get("r", &[Value::Int4(1)]).unwrap_err();
    assert!(e.to_string().contains("distributed randomly"), "{e}");
}

/// A point lookup reads only its key's segment: with another segment's page damaged, the
/// lookup still works while a scan reports the damage.
#[test]
fn a_key_lookup_reads_only_the_keys_segment() {
    let (vfs, node) = mem_node(4);
    accounts(&node, 1000, 7);
    node.close().unwrap();
    let def = node.table_def("acct").unwrap();
    drop(node); // one owner per directory: the node goes before the reopen
    let key_seg = {
        let mut h = segexpand_engine::catalog::hash::KeyHasher::new();
        Value::Int8(5).hash_into(Type::Int8, &mut h);
        def.layout.segment_of(h.finish())
    };
    let other = (key_seg + 1) % 4;
    let path = format!("/db/seg{other}/t{}.heap", def.id);
    vfs.poke(Path::new(&path), 100, &[0xff; 4]).unwrap();
    let node = Node::open(
        Arc::new(vfs.clone()),
        Path::new("/db"),
        NodeOptions::default(),
    )
    .unwrap();
    let mut t = node.begin().unwrap();
    let rows = t.get("acct", &[Value::Int8(5)]).unwrap();
    assert_eq!(rows, vec![vec![Value::Int8(5), Value::Int8(7)]]);
    t.commit().unwrap();
    let mut t = node.begin().unwrap();
    let e = t.scan("acct", None).unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert!(e.to_string().contains(&format!("segment {other}")), "{e}");
}

/// Vacuum reclaims dead versions, reports the space, keeps what a running statement's
/// snapshot may still read, and the freed space is reused.
#[test]
fn vacuum_reclaims_dead_versions_but_not_what_a_snapshot_needs() {
    let (_vfs, node) = mem_node(2);
    accounts(&node, 500, 1);
    let pages = |node: &Arc<Node>| -> u32 {
        let id = node.table_id("acct").unwrap();
        node.segments()
            .iter()
            .map(|s| node.heap(*s, id).unwrap().nblocks())
            .sum()
    };
    // A statement snapshot registered before the deletes (as a running scan holds one).
    let old_reader = node.begin().unwrap();
    let snap = node.txn_manager().snapshot(old_reader.xid(), 0);
    let mut t = node.begin().unwrap();
    assert_eq!(
        t.delete_where("acct", &|r| r[0].as_int().unwrap() % 2 == 0)
            .unwrap(),
        250
    );
    t.commit().unwrap();
    let held = node.vacuum("acct").unwrap();
    assert_eq!(
        held.versions_removed, 0,
        "the old snapshot can still see them"
    );
    // The old snapshot still finds all 500 rows on the pages.
    let id = node.table_id("acct").unwrap();
    let mut seen = 0;
    for s in node.segments() {
        node.for_each_tuple(s, id, |_, h, _| {
            if snap.sees(h, node.clog()) {
                seen += 1;
            }
        })
        .unwrap();
    }
    assert_eq!(seen, 500);
    drop(old_reader);
    let stats = node.vacuum("acct").unwrap();
    assert_eq!(stats.versions_removed, 250);
    assert!(stats.bytes_freed >= 250 * 36, "{stats:?}");
    assert!(stats.pages_pruned > 0 && stats.pages_scanned >= stats.pages_pruned);
    let before = pages(&node);
    node.bulk_load(
        "acct",
        (1000..1200).map(|i| vec![Value::Int8(i), Value::Int8(1)]),
    )
    .unwrap();
    let mut t = node.begin().unwrap();
    for i in 1000..1200 {
        t.insert("acct", vec![Value::Int8(i + 1000), Value::Int8(1)])
            .unwrap();
    }
    t.commit().unwrap();
    // Row inserts reuse the reclaimed space (the bulk load always appends pages).
    let grown = pages(&node) - before;
    let mut t = node.begin().unwrap();
    assert_eq!(t.scan("acct", None).unwrap().len(), 250 + 200 + 200);
    assert!(
        grown <= 4,
        "inserts did not reuse freed space: {grown} new pages"
    );
}

#[test]
fn updating_the_key_moves_the_row_to_its_new_segment() {
    let (_vfs, node) = mem_node(4);
    accounts(&node, 1, 3);
    let mut t = node.begin().unwrap();
    // Find a new key that hashes to another segment.
    let def = node.table_def("acct").unwrap();
    let seg = |k: i64| {
        let mut h = segexpand_engine::catalog::hash::KeyHasher::new();
        Value::Int8(k).hash_into(Type::Int8, &mut h);
        def.layout.segment_of(h.finish())
    };
    let nk = (1..100).find(|k| seg(*k) != seg(0)).unwrap();
    t.update("acct", &[Value::Int8(0)], |_| {
        vec![Value::Int8(nk), Value::Int8(3)]
    })
    .unwrap();
    t.commit().unwrap();
    let mut t = node.begin().unwrap();
    assert!(t.get("acct", &[Value::Int8(0)]).unwrap().is_empty());
    assert_eq!(t.get("acct", &[Value::Int8(nk)]).unwrap().len(), 1);
    assert_eq!(t.scan("acct", None).unwrap().len(), 1);
    let id = def.id;
    let live = node.scan_committed(seg(nk), id).unwrap();
    assert_eq!(
        live.len(),
        1,
        "the new version lives on the new key's segment"
    );
}

#[test]
fn segment_configuration_has_gp_segment_configuration_columns() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), 3, NodeOptions::default()).unwrap();
    node.close().unwrap();
    drop(node);
    let node = Node::open_dir(dir.path(), NodeOptions::default()).unwrap();
    let cfg = node.segment_configuration();
    assert_eq!(cfg.len(), 3);
    for (i, c) in cfg.iter().enumerate() {
        assert_eq!(c.content, i as u16);
        assert_eq!(c.dbid, i as u16 + 2);
        assert_eq!(
            (c.role, c.preferred_role, c.mode, c.status),
            ('p', 'p', 'n', 'u')
        );
        assert_eq!(c.port, 6000 + i as u16);
        assert_eq!(c.hostname, "localhost");
        assert!(c.datadir.ends_with(&format!("seg{i}")), "{}", c.datadir);
    }
}

#[test]
fn bulk_load_rows_are_found_by_key_after_reopen_and_the_rebuild_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), 3, NodeOptions::default()).unwrap();
    accounts(&node, 5000, 2);
    node.close().unwrap();
    drop(node);
    let started = Instant::now();
    let node = Node::open_dir(dir.path(), NodeOptions::default()).unwrap();
    let report = node.recovery_report();
    assert_eq!(report.index_entries, 5000);
    assert!(report.index_rebuild_us as u128 <= started.elapsed().as_micros());
    let mut t = node.begin().unwrap();
    for i in (0..5000).step_by(97) {
        assert_eq!(
            t.get("acct", &[Value::Int8(i)]).unwrap().len(),
            1,
            "key {i}"
        );
    }
}

/// Runs `op` on a fresh 2-segment node holding `rows` accounts, crashing after its first
/// I/O operation, then its second, ... until it completes. After each crash, the node is
/// reopened from both crash images and handed to `check` with whether `op` completed and
/// what it returned; then closed and verified. Returns the number of crash points.
fn at_every_crash_point<T: std::fmt::Debug>(
    rows: i64,
    op: impl Fn(&Arc<Node>) -> Result<T, Error>,
    check: impl Fn(&Arc<Node>, &SimVfs, bool, &Result<T, Error>),
) -> u64 {
    let mut n = 0;
    loop {
        let (vfs, node) = mem_node(2);
        accounts(&node, rows, 1);
        vfs.crash_after(vfs.ops() + n);
        let r = op(&node);
        let finished = !vfs.has_crashed();
        assert!(r.is_ok() || !finished, "{r:?} without a crash");
        drop(node);
        for mode in [
            CrashMode::DropUnsynced,
            CrashMode::KeepUnsyncedTearLast { sectors: 1 },
        ] {
            let image = vfs.crash_image(mode);
            let node = Node::open(
                Arc::new(image.clone()),
                Path::new("/db"),
                NodeOptions::default(),
            )
            .unwrap_or_else(|e| panic!("reopen after a crash at op {n}: {e}"));
            check(&node, &image, finished, &r);
            node.close().unwrap();
            drop(node); // verify takes the directory's lock shared
            let report = segexpand_engine::verify::verify_dir(&image, Path::new("/db")).unwrap();
            assert!(
                report.problems.is_empty(),
                "crash at op {n}: {:?}",
                report.problems
            );
        }
        if finished {
            return n;
        }
        n += 1;
    }
}

/// DROP and TRUNCATE crashed at every I/O operation: the table is wholly there (with
/// its rows) or wholly gone (no files left), truncated or not, never in between; an
/// acknowledged one is never undone.
#[test]
fn drop_and_truncate_survive_a_crash_at_every_io() {
    let points = at_every_crash_point(
        300,
        |n| n.drop_table("acct"),
        |node, image, done, _| match node.begin().unwrap().scan("acct", None).map(|r| r.len()) {
            Err(Error::NoSuchTable(_)) => {
                for s in 0..2 {
                    let files = image.list_dir(Path::new(&format!("/db/seg{s}"))).unwrap();
                    assert!(
                        files.iter().all(|f| !f.starts_with("t1.")),
                        "files of the dropped table left: {files:?}"
                    );
                }
            }
            Ok(300) => assert!(!done, "an acknowledged DROP was undone"),
            other => panic!("after a crashed DROP: {other:?}"),
        },
    );
    println!("drop: {points} crash points");
    let points = at_every_crash_point(
        300,
        |n| n.truncate_table("acct"),
        |node, _, done, _| match node.begin().unwrap().scan("acct", None).unwrap().len() {
            0 => {}
            300 => assert!(!done, "an acknowledged TRUNCATE was undone"),
            other => panic!("{other} rows after a crashed TRUNCATE"),
        },
    );
    println!("truncate: {points} crash points");
}

/// Bulk load is one transaction: crashed at any I/O, recovery shows all of it or none,
/// and all of it once it returned Ok.
#[test]
fn a_crashed_bulk_load_is_all_or_nothing() {
    let load = |n: &Arc<Node>| {
        n.bulk_load(
            "acct",
            (100..5000).map(|i| vec![Value::Int8(i), Value::Int8(1)]),
        )
    };
    let points = at_every_crash_point(10, load, |node, _, _, r| {
        match node.begin().unwrap().scan("acct", None).unwrap().len() {
            4910 => {}
            10 => assert!(r.is_err(), "an acknowledged bulk load was lost"),
            other => panic!("partial bulk load: {other} rows"),
        }
    });
    println!("bulk load: {points} crash points");
}

/// Adding a segment, crashed at every I/O: after recovery the node has the old segments
/// or the new one too — and then every table has its (empty) files there — and the
/// table's rows are untouched either way.
#[test]
fn adding_a_segment_survives_a_crash_at_every_io() {
    let points = at_every_crash_point(
        50,
        |n| n.add_new_segment(),
        |node, _, done, r| {
            let segs = node.segments();
            match segs.len() {
                2 => assert!(!done, "an acknowledged new segment was lost"),
                3 => {
                    assert_eq!(segs, vec![0, 1, 2]);
                    let id = node.table_id("acct").unwrap();
                    assert_eq!(node.heap(2, id).unwrap().nblocks(), 0);
                    assert_eq!(node.segment_configuration()[2].dbid, 4);
                    if done {
                        assert_eq!(r.as_ref().ok(), Some(&2));
                    }
                }
                other => panic!("{other} segments after a crash"),
            }
            assert_eq!(node.begin().unwrap().scan("acct", None).unwrap().len(), 50);
        },
    );
    println!("add segment: {points} crash points");
}

/// Issue 10 (acceptance 5): a transaction handle owns its node and is `Send + 'static`,
/// so it can be held across threads (a server session across `.await`s): begun on one
/// thread, written on a second, committed on a third; until then a reader sees the old
/// value, after it the new one.
#[test]
fn a_transaction_handle_moves_between_threads() {
    fn owned_and_send<T: Send + 'static>(_: &T) {}
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), 2, NodeOptions::default()).unwrap();
    accounts(&node, 10, 100);
    let tx = node.begin().unwrap();
    owned_and_send(&tx);
    let (to_writer, at_writer) = mpsc::channel();
    let (to_committer, at_committer) = mpsc::channel();
    to_writer.send(tx).unwrap();
    let writer = std::thread::spawn(move || {
        let mut tx: segexpand_engine::Txn = at_writer.recv().unwrap();
        let n = tx
            .update("acct", &[Value::Int8(3)], |r| {
                let mut r = r.to_vec();
                r[1] = Value::Int8(7);
                r
            })
            .unwrap();
        assert_eq!(n, 1);
        to_committer.send(tx).unwrap();
    });
    writer.join().unwrap();
    let mut reader = node.begin().unwrap();
    assert_eq!(
        reader.get("acct", &[Value::Int8(3)]).unwrap()[0][1],
        Value::Int8(100)
    );
    let committer = std::thread::spawn(move || {
        let tx: segexpand_engine::Txn = at_committer.recv().unwrap();
        tx.commit().unwrap();
    });
    committer.join().unwrap();
    assert_eq!(
        reader.get("acct", &[Value::Int8(3)]).unwrap()[0][1],
        Value::Int8(7)
    );
    reader.rollback().unwrap();
    drop(node);
}

/// Reads `acct` through scan cursors of `batch` rows over `segments` (each its own cursor,
/// `None`: one cursor over all), returning (id, balance) sorted by id and the batch count.
fn cursor_rows(
    tx: &mut segexpand_engine::Txn,
    batch: usize,
    segments: Option<Vec<Vec<u16>>>,
) -> (Vec<(i64, i64)>, usize) {
    use segexpand_engine::ScanOptions;
    let groups: Vec<Option<Vec<u16>>> = match segments {
        None => vec![None],
        Some(g) => g.into_iter().map(Some).collect(),
    };
    let opts = ScanOptions {
        batch_rows: batch,
        // Projection: balance first, then id; a predicate dropping nothing.
        columns: Some(vec![1, 0]),
        filter: Some(Arc::new(|r: &[Value]| r[1].as_int().is_some())),
        ..Default::default()
    };
    // One snapshot for every cursor; each read on a thread of its own.
    let cursors = tx.scan_cursors("acct", opts, &groups).unwrap();
    let per_cursor: Vec<(Vec<(i64, i64)>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = cursors
            .into_iter()
            .map(|mut c| {
                s.spawn(move || {
                    assert_eq!(c.column_names(), vec!["v".to_string(), "id".to_string()]);
                    let (mut rows, mut batches) = (Vec::new(), 0);
                    while let Some(b) = c.next_batch().unwrap() {
                        assert!(!b.is_empty() && b.len() <= batch, "{} rows", b.len());
                        batches += 1;
                        rows.extend(
                            b.iter()
                                .map(|r| (r[1].as_int().unwrap(), r[0].as_int().unwrap())),
                        );
                    }
                    (rows, batches)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut rows = Vec::new();
    let mut batches = 0;
    for (r, b) in per_cursor {
        rows.extend(r);
        batches += b;
    }
    rows.sort_unstable();
    (rows, batches)
}

#[test]
fn a_scan_cursor_reads_in_batches_while_writers_run_and_matches_the_scan() {
    let (_vfs, node) = mem_node(3);
    let n = 3000;
    accounts(&node, n, 100);
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (node, stop, committed) = (node.clone(), stop.clone(), committed.clone());
            std::thread::spawn(move || {
                let mut i: i64 = w;
                while !stop.load(Ordering::Relaxed) {
                    // A transfer: the total stays n * 100 at every snapshot.
                    let (a, b) = ((i * 7919) % n, (i * 104_729 + 1) % n);
                    i += 2;
                    if a == b {
                        continue;
                    }
                    let mut tx = node.begin().unwrap();
                    let moved = tx
                        .update("acct", &[Value::Int8(a)], add(-3))
                        .and_then(|x| Ok((x, tx.update("acct", &[Value::Int8(b)], add(3))?)));
                    match moved {
                        Ok(counts) => {
                            assert_eq!(counts, (1, 1), "rows {a} and {b} updated once each");
                            tx.commit().unwrap();
                            committed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::RowLocked { .. }) | Err(Error::LockTimeout { .. }) => {
                            tx.rollback().unwrap()
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    // Cursors while the writers run: each sees one snapshot, so every row once and the
    // total exact, in many batches.
    let mut rounds = 0;
    while rounds < 20 || committed.load(Ordering::Relaxed) < 50 {
        let mut tx = node.begin().unwrap();
        let per_segment = rounds % 2 == 1;
        let segs = per_segment.then(|| vec![vec![0], vec![1, 2]]);
        let (rows, batches) = cursor_rows(&mut tx, 64, segs);
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(ids, (0..n).collect::<Vec<_>>(), "every row once");
        assert_eq!(
            rows.iter().map(|r| r.1).sum::<i64>(),
            n * 100,
            "total exact"
        );
        let groups = if per_segment { 2 } else { 1 };
        assert!(
            batches <= (n as usize).div_ceil(64) + groups && batches >= (n as usize) / 64,
            "read in batches of at most 64 rows: {batches}"
        );
        tx.commit().unwrap();
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    // With the writers stopped, the cursor's rows are exactly the scan's.
    let mut tx = node.begin().unwrap();
    let mut scanned: Vec<(i64, i64)> = tx
        .scan("acct", None)
        .unwrap()
        .iter()
        .map(|r| (r[0].as_int().unwrap(), balance(r)))
        .collect();
    scanned.sort_unstable();
    assert_eq!(cursor_rows(&mut tx, 1000, None).0, scanned);
    assert!(
        scanned.iter().any(|r| r.1 != 100),
        "the writers changed rows"
    );
    // Bad options are refused when the cursor opens.
    let bad = segexpand_engine::ScanOptions {
        columns: Some(vec![2]),
        ..Default::default()
    };
    let e = tx.scan_cursor("acct", bad).unwrap_err();
    assert!(matches!(e, Error::UndefinedColumn(_)), "{e}");
    assert_eq!(e.sqlstate(), "42703");
    // A failed statement fails the transaction; the rest is checked in a new one.
    assert!(matches!(
        tx.scan("acct", None),
        Err(Error::TxnAborted { .. })
    ));
    drop(tx);
    for segments in [vec![0, 0], vec![3], vec![u16::MAX]] {
        let mut tx = node.begin().unwrap();
        let bad = segexpand_engine::ScanOptions {
            segments: Some(segments.clone()),
            ..Default::default()
        };
        let e = tx.scan_cursor("acct", bad).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{segments:?}: {e}");
    }
    // No segments: nothing to read; a huge batch size: one batch of every row.
    let mut tx = node.begin().unwrap();
    let none = segexpand_engine::ScanOptions {
        segments: Some(vec![]),
        ..Default::default()
    };
    assert!(tx
        .scan_cursor("acct", none)
        .unwrap()
        .next_batch()
        .unwrap()
        .is_none());
    let all = segexpand_engine::ScanOptions {
        batch_rows: usize::MAX,
        ..Default::default()
    };
    let mut c = tx.scan_cursor("acct", all).unwrap();
    assert_eq!(c.next_batch().unwrap().map(|b| b.len()), Some(n as usize));
    assert!(c.next_batch().unwrap().is_none());
    drop(c);
    tx.commit().unwrap();
    // A table dropped between two batches: the next batch says so, and the transaction
    // that read it cannot commit as if the scan had finished.
    let mut tx = node.begin().unwrap();
    let small = segexpand_engine::ScanOptions {
        batch_rows: 10,
        ..Default::default()
    };
    let mut c = tx.scan_cursor("acct", small).unwrap();
    assert_eq!(c.next_batch().unwrap().map(|b| b.len()), Some(10));
    node.drop_table("acct").unwrap();
    let e = c.next_batch().unwrap_err();
    assert!(matches!(e, Error::NoSuchTable(_)), "{e}");
    drop(c);
    assert!(matches!(tx.commit(), Err(Error::TxnAborted { .. })));
}

/// A table handle reaches its table without a lookup by name, survives TRUNCATE and
/// redistribution (same table), and refuses statements once the table is dropped — also
/// after a new table of the same name was created — and when used with another node.
#[test]
fn a_table_handle_follows_its_table_and_notices_a_drop_and_redefinition() {
    let (_vfs, node) = mem_node(3);
    accounts(&node, 50, 10);
    let h = node.table("acct").unwrap();
    assert_eq!(Some(h.id()), node.table_id("acct"));
    assert!(matches!(node.table("nope"), Err(Error::NoSuchTable(_))));

    let mut tx = node.begin().unwrap();
    assert_eq!(tx.get(&h, &[Value::Int8(7)]).unwrap().len(), 1);
    tx.insert(&h, vec![Value::Int8(100), Value::Int8(1)])
        .unwrap();
    assert_eq!(tx.update(&h, &[Value::Int8(7)], add(5)).unwrap(), 1);
    assert_eq!(tx.scan(&h, None).unwrap().len(), 51);
    tx.commit().unwrap();

    // A redistribution changes the layout, not the table: the handle follows it.
    node.add_new_segment().unwrap();
    let target = segexpand_engine::Layout {
        segments: 4,
        ..h.definition().layout.clone()
    };
    node.redistribute_offline(
        "acct",
        target,
        &segexpand_engine::redistribute::BatchLimits::default(),
    )
    .unwrap();
    assert_eq!(h.definition().layout.segments, 4);
    let mut tx = node.begin().unwrap();
    assert_eq!(balance(&tx.get(&h, &[Value::Int8(7)]).unwrap()[0]), 15);
    tx.commit().unwrap();
    node.truncate_table("acct").unwrap();
    let mut tx = node.begin().unwrap();
    assert!(tx.scan(&h, None).unwrap().is_empty());
    tx.commit().unwrap();

    // DROP, then a new table of the same name: the old handle does not reach it.
    node.drop_table("acct").unwrap();
    assert!(h.is_dropped());
    accounts(&node, 5, 1);
    let mut tx = node.begin().unwrap();
    let e = tx.scan(&h, None).unwrap_err();
    assert!(matches!(e, Error::NoSuchTable(ref t) if t == "acct"), "{e}");
    tx.rollback().unwrap();
    let h2 = node.table("acct").unwrap();
    assert_ne!(h2.id(), h.id());
    let mut tx = node.begin().unwrap();
    assert_eq!(tx.scan(&h2, None).unwrap().len(), 5);
    tx.commit().unwrap();

    // A handle of one node is refused by another, even for a table of the same id.
    let (_vfs2, other) = mem_node(3);
    accounts(&other, 5, 1);
    let h3 = other.table("acct").unwrap();
    let mut tx = node.begin().unwrap();
    assert!(matches!(tx.scan(&h3, None), Err(Error::InvalidArgument(_))));
    tx.rollback().unwrap();
}

/// A transaction that only reads ends without a WAL record (a SELECT in autocommit
/// would otherwise append a commit record and, under the default sync policy, wait for
/// an fsync); one that ran a DML statement still logs its end. Neither changes what
/// later transactions see, and a reopened node has every committed row.
#[test]
fn a_read_only_transaction_ends_without_writing_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), 2, NodeOptions::default()).unwrap();
    accounts(&node, 20, 5);
    let lsn = || node.wal().insert_lsn();
    let before = lsn();
    for commit in [true, false] {
        let mut tx = node.begin().unwrap();
        assert_eq!(tx.get("acct", &[Value::Int8(3)]).unwrap().len(), 1);
        assert_eq!(tx.scan("acct", None).unwrap().len(), 20);
        if commit {
            tx.commit().unwrap();
        } else {
            tx.rollback().unwrap();
        }
    }
    drop(node.begin().unwrap()); // dropped: rolled back
    assert_eq!(lsn(), before, "a read-only transaction wrote to the WAL");

    // A writer after many read-only ends: its commit is logged and seen.
    let mut tx = node.begin().unwrap();
    assert_eq!(tx.update("acct", &[Value::Int8(3)], add(1)).unwrap(), 1);
    tx.commit().unwrap();
    assert!(lsn() > before);
    let mut tx = node.begin().unwrap();
    assert_eq!(balance(&tx.get("acct", &[Value::Int8(3)]).unwrap()[0]), 6);
    tx.commit().unwrap();
    // A DML statement that changed nothing still ends with a record (it may have).
    let l = lsn();
    let mut tx = node.begin().unwrap();
    assert_eq!(tx.delete("acct", &[Value::Int8(999)]).unwrap(), 0);
    tx.commit().unwrap();
    assert!(lsn() > l);

    // Reopen: every committed row, and the update, are there; new transactions work.
    node.close().unwrap();
    drop(node);
    let node = Node::open_dir(dir.path(), NodeOptions::default()).unwrap();
    let mut tx = node.begin().unwrap();
    let rows = tx.scan("acct", None).unwrap();
    assert_eq!(rows.len(), 20);
    assert_eq!(rows.iter().map(|r| balance(r)).sum::<i64>(), 101);
    tx.commit().unwrap();
}
