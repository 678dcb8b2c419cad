//! PRIMARY KEY / UNIQUE constraints (enforced: duplicates refused with 23505, also
//! between concurrent writers and while the table is redistributing), and DDL that waits
//! for a table's open writers (DROP and TRUNCATE no longer take a running transaction's
//! rows out from under it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::redistribute::{BatchLimits, GateOptions};
use segexpand_engine::{Error, Layout, Node, NodeOptions, TableSpec, Type, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn node(segments: u16) -> (tempfile::TempDir, Arc<Node>) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), segments, NodeOptions::default()).unwrap();
    (dir, node)
}

/// `acct (id int8 primary key, v int8)`, distributed by id.
fn keyed(node: &Node) {
    node.create_table(
        &TableSpec::new("acct")
            .column("id", Type::Int8)
            .column("v", Type::Int8)
            .distributed_by(&["id"])
            .primary_key(None, &["id"]),
    )
    .unwrap();
}

fn row(id: i64, v: i64) -> Vec<Value> {
    vec![Value::Int8(id), Value::Int8(v)]
}

fn is_dup(e: &Error) -> bool {
    matches!(e, Error::UniqueViolation { constraint, .. } if constraint == "acct_pkey")
        && e.sqlstate() == "23505"
}

fn count(node: &Arc<Node>, table: &str) -> usize {
    let mut tx = node.begin().unwrap();
    let n = tx.scan(table, None).unwrap().len();
    tx.commit().unwrap();
    n
}

#[test]
fn a_duplicate_key_is_refused_and_nothing_else_is() {
    let (_d, node) = node(4);
    keyed(&node);
    let def = node.table_def("acct").unwrap();
    assert!(
        def.columns[0].not_null,
        "a primary key's columns are NOT NULL"
    );
    let mut tx = node.begin().unwrap();
    for i in 0..100 {
        tx.insert("acct", row(i, 0)).unwrap();
    }
    tx.commit().unwrap();

    // Against a committed row.
    let mut tx = node.begin().unwrap();
    let e = tx.insert("acct", row(7, 1)).unwrap_err();
    assert!(is_dup(&e), "{e}");
    assert!(e.to_string().contains("Key (id)=(7) already exists"), "{e}");
    tx.rollback().unwrap();

    // Against a row of the same transaction.
    let mut tx = node.begin().unwrap();
    tx.insert("acct", row(1000, 1)).unwrap();
    assert!(is_dup(&tx.insert("acct", row(1000, 2)).unwrap_err()));
    tx.rollback().unwrap();

    // An update keeping its key is no conflict; one moving onto another key is.
    let mut tx = node.begin().unwrap();
    assert_eq!(
        tx.update("acct", &[Value::Int8(3)], |r| row(
            3,
            r[1].as_int().unwrap() + 1
        ))
        .unwrap(),
        1
    );
    let e = tx
        .update("acct", &[Value::Int8(4)], |_| row(5, 0))
        .unwrap_err();
    assert!(is_dup(&e), "{e}");
    tx.rollback().unwrap();

    // Deleted (committed) rows, rolled-back rows and a delete earlier in the same
    // transaction free the key.
    let mut tx = node.begin().unwrap();
    assert_eq!(tx.delete("acct", &[Value::Int8(9)]).unwrap(), 1);
    tx.insert("acct", row(9, 99)).unwrap();
    tx.commit().unwrap();
    let mut tx = node.begin().unwrap();
    tx.insert("acct", row(500, 0)).unwrap();
    tx.rollback().unwrap();
    let mut tx = node.begin().unwrap();
    tx.insert("acct", row(500, 1)).unwrap();
    tx.commit().unwrap();
    assert_eq!(count(&node, "acct"), 101);

    // NULL is never a duplicate in a UNIQUE constraint (and not allowed in a key).
    node.create_table(
        &TableSpec::new("u")
            .column("a", Type::Int4)
            .column("b", Type::Int4)
            .distributed_by(&["a"])
            .unique(None, &["a", "b"]),
    )
    .unwrap();
    assert_eq!(node.table_def("u").unwrap().unique[0].name, "u_a_b_key");
    let mut tx = node.begin().unwrap();
    tx.insert("u", vec![Value::Int4(1), Value::Null]).unwrap();
    tx.insert("u", vec![Value::Int4(1), Value::Null]).unwrap();
    tx.insert("u", vec![Value::Int4(1), Value::Int4(2)])
        .unwrap();
    let e = tx
        .insert("u", vec![Value::Int4(1), Value::Int4(2)])
        .unwrap_err();
    assert!(matches!(e, Error::UniqueViolation { .. }), "{e}");
    tx.rollback().unwrap();
}

#[test]
fn definitions_that_cannot_be_enforced_are_refused() {
    let (_d, node) = node(2);
    let bad = [
        TableSpec::new("r")
            .column("a", Type::Int4)
            .distributed_randomly()
            .primary_key(None, &["a"]),
        TableSpec::new("k")
            .column("a", Type::Int4)
            .column("b", Type::Int4)
            .distributed_by(&["a"])
            .primary_key(None, &["b"]),
        TableSpec::new("p")
            .column("a", Type::Int4)
            .distributed_by(&["a"])
            .primary_key(None, &["a"])
            .primary_key(Some("other"), &["a"]),
    ];
    for spec in bad {
        let e = node.create_table(&spec).unwrap_err();
        assert_eq!(e.sqlstate(), "42P16", "{e}");
    }
    assert!(node.tables().is_empty());
    let e = node
        .create_table(
            &TableSpec::new("c")
                .column("a", Type::Int4)
                .primary_key(None, &["nosuch"]),
        )
        .unwrap_err();
    assert_eq!(e.sqlstate(), "42703", "{e}");

    // A key change to columns outside the primary key is refused before anything moves.
    keyed(&node);
    let mut target = node.table_def("acct").unwrap().layout;
    target.key = vec![1];
    let e = node
        .start_redistribution("acct", target, &GateOptions::default())
        .unwrap_err();
    assert_eq!(e.sqlstate(), "42P16", "{e}");
    assert!(node.table_def("acct").unwrap().redistribution.is_none());
}

#[test]
fn concurrent_inserts_of_one_key_let_one_win_and_the_other_gets_23505() {
    let (_d, node) = node(4);
    keyed(&node);
    for commit_first in [true, false] {
        let key = if commit_first { 1 } else { 2 };
        let mut a = node.begin().unwrap();
        a.insert("acct", row(key, 1)).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let b = {
            let node = node.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut b = node.begin().unwrap();
                let r = b.insert("acct", row(key, 2));
                done.store(true, Ordering::SeqCst);
                match r {
                    Ok(()) => b.commit().map(|()| true),
                    Err(e) => {
                        b.rollback().unwrap();
                        Err(e)
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !done.load(Ordering::SeqCst),
            "B must wait for A's uncommitted row"
        );
        if commit_first {
            a.commit().unwrap();
            let e = b.join().unwrap().unwrap_err();
            assert!(is_dup(&e), "{e}");
        } else {
            a.rollback().unwrap();
            assert!(b.join().unwrap().unwrap());
        }
        let mut tx = node.begin().unwrap();
        let rows = tx.get("acct", &[Value::Int8(key)]).unwrap();
        tx.commit().unwrap();
        assert_eq!(rows, vec![row(key, if commit_first { 1 } else { 2 })]);
    }

    // Many threads racing on a few keys: each key ends up exactly once.
    let keys = 20i64;
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let node = node.clone();
            std::thread::spawn(move || {
                let mut won = 0;
                for k in 100..100 + keys {
                    let mut tx = node.begin().unwrap();
                    match tx.insert("acct", row(k, t)) {
                        Ok(()) => {
                            tx.commit().unwrap();
                            won += 1;
                        }
                        Err(e) => {
                            assert!(is_dup(&e), "{e}");
                            tx.rollback().unwrap();
                        }
                    }
                }
                won
            })
        })
        .collect();
    let won: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(won, keys);
    assert_eq!(count(&node, "acct") as i64, 1 + 1 + keys);
}

#[test]
fn both_layouts_are_checked_while_the_table_redistributes() {
    let (_d, node) = node(3);
    keyed(&node);
    node.bulk_load("acct", (0..300).map(|i| row(i, 0))).unwrap();
    node.add_new_segment().unwrap();
    node.add_new_segment().unwrap();
    let target = Layout {
        segments: 5,
        ..node.table_def("acct").unwrap().layout
    };
    node.start_redistribution("acct", target, &GateOptions::default())
        .unwrap();
    // Nothing has moved: every row is in the old layout, new ones go to the target.
    let dup_of_each = |node: &Arc<Node>| {
        for i in (0..300).step_by(7) {
            let mut tx = node.begin().unwrap();
            let e = tx.insert("acct", row(i, 1)).unwrap_err();
            assert!(is_dup(&e), "{i}: {e}");
            tx.rollback().unwrap();
        }
    };
    dup_of_each(&node);
    let mut tx = node.begin().unwrap();
    tx.insert("acct", row(1000, 0)).unwrap();
    tx.commit().unwrap();
    // Half moved, then all moved: still one row per key.
    let work = node.redistribution_work("acct").unwrap();
    for (seg, block) in work.iter().take(work.len() / 2) {
        node.move_blocks("acct", *seg, &[*block], &BatchLimits::default())
            .unwrap();
    }
    dup_of_each(&node);
    let mut tx = node.begin().unwrap();
    assert!(is_dup(&tx.insert("acct", row(1000, 1)).unwrap_err()));
    tx.rollback().unwrap();
    for (seg, block) in node.redistribution_work("acct").unwrap() {
        node.move_blocks("acct", seg, &[block], &BatchLimits::default())
            .unwrap();
    }
    node.flip_redistribution("acct", &GateOptions::default())
        .unwrap();
    dup_of_each(&node);
    assert_eq!(count(&node, "acct"), 301);
    assert!(node.check_placement("acct").unwrap().is_empty());
}

#[test]
fn add_primary_key_checks_existing_rows_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), 2, NodeOptions::default()).unwrap();
    node.create_table(
        &TableSpec::new("t")
            .column("a", Type::Int4)
            .column("b", Type::Text)
            .distributed_by(&["a"])
            .default("b", "'x'"),
    )
    .unwrap();
    node.bulk_load(
        "t",
        vec![
            vec![Value::Int4(1), Value::Text("one".into())],
            vec![Value::Int4(1), Value::Text("again".into())],
            vec![Value::Int4(2), Value::Null],
        ],
    )
    .unwrap();
    let e = node.add_unique("t", None, &["a"], true).unwrap_err();
    assert_eq!(e.sqlstate(), "23505", "{e}");
    let e = node.add_unique("t", None, &["b"], false).unwrap_err();
    assert_eq!(
        e.sqlstate(),
        "42P16",
        "{e}: must contain the distribution key"
    );
    let e = node.add_unique("t", None, &["a", "b"], true).unwrap_err();
    assert_eq!(e.sqlstate(), "23502", "{e}: b has a NULL");
    assert!(node.table_def("t").unwrap().unique.is_empty());
    let mut tx = node.begin().unwrap();
    assert_eq!(tx.delete("t", &[Value::Int4(1)]).unwrap(), 2);
    tx.insert("t", vec![Value::Int4(1), Value::Text("one".into())])
        .unwrap();
    tx.commit().unwrap();
    node.add_unique("t", None, &["a"], true).unwrap();
    let mut tx = node.begin().unwrap();
    let e = tx
        .insert("t", vec![Value::Int4(2), Value::Null])
        .unwrap_err();
    assert_eq!(e.sqlstate(), "23505");
    tx.rollback().unwrap();
    // The bulk loader checks too: against the table and within the load.
    let e = node
        .bulk_load("t", vec![vec![Value::Int4(2), Value::Null]])
        .unwrap_err();
    assert_eq!(e.sqlstate(), "23505", "{e}");
    let e = node
        .bulk_load(
            "t",
            vec![
                vec![Value::Int4(5), Value::Null],
                vec![Value::Int4(5), Value::Null],
            ],
        )
        .unwrap_err();
    assert_eq!(e.sqlstate(), "23505", "{e}");
    assert_eq!(count(&node, "t"), 2);
    node.close().unwrap();
    drop(node);

    let node = Node::open_dir(dir.path(), NodeOptions::default()).unwrap();
    let def = node.table_def("t").unwrap();
    assert_eq!(def.unique.len(), 1);
    assert_eq!(def.unique[0].name, "t_pkey");
    assert!(def.unique[0].primary);
    assert!(def.columns[0].not_null);
    assert_eq!(def.columns[1].default.as_deref(), Some("'x'"));
    let mut tx = node.begin().unwrap();
    assert_eq!(
        tx.insert("t", vec![Value::Int4(1), Value::Null])
            .unwrap_err()
            .sqlstate(),
        "23505"
    );
    tx.rollback().unwrap();
}

/// Before: TRUNCATE and DROP ran while a transaction that had written to the table was
/// open, so the rows it wrote before the TRUNCATE vanished and the ones after it stayed
/// (half a transaction), or a committed transaction's rows were gone with the table.
#[test]
fn drop_and_truncate_wait_for_the_tables_open_writers() {
    let (_d, node) = node(2);
    keyed(&node);
    let mut a = node.begin().unwrap();
    a.insert("acct", row(1, 1)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let t = {
        let (node, done) = (node.clone(), done.clone());
        std::thread::spawn(move || {
            let r = node.truncate_table("acct");
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !done.load(Ordering::SeqCst),
        "TRUNCATE must wait for the open writer"
    );
    a.insert("acct", row(2, 1)).unwrap();
    a.commit().unwrap();
    t.join().unwrap().unwrap();
    assert_eq!(
        count(&node, "acct"),
        0,
        "the whole transaction, then the truncation"
    );

    // A transaction may truncate a table it wrote to itself.
    let mut a = node.begin().unwrap();
    a.insert("acct", row(3, 1)).unwrap();
    a.truncate("acct").unwrap();
    a.insert("acct", row(4, 1)).unwrap();
    a.commit().unwrap();
    assert_eq!(count(&node, "acct"), 1);

    // DROP waits the same way; a writer arriving meanwhile waits behind it and then
    // finds no table.
    let mut a = node.begin().unwrap();
    a.insert("acct", row(5, 1)).unwrap();
    let d = {
        let node = node.clone();
        std::thread::spawn(move || node.drop_table("acct"))
    };
    std::thread::sleep(Duration::from_millis(100));
    let late = {
        let node = node.clone();
        std::thread::spawn(move || {
            let mut b = node.begin().unwrap();
            b.insert("acct", row(6, 1))
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(!d.is_finished() && !late.is_finished());
    a.commit().unwrap();
    d.join().unwrap().unwrap();
    let e = late.join().unwrap().unwrap_err();
    assert_eq!(e.sqlstate(), "42P01", "{e}");

    // With a short lock timeout, DROP gives up and the table and its rows stay.
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(
        dir.path(),
        2,
        NodeOptions {
            lock_timeout: Duration::from_millis(100),
            ..NodeOptions::default()
        },
    )
    .unwrap();
    keyed(&node);
    let mut a = node.begin().unwrap();
    a.insert("acct", row(1, 1)).unwrap();
    let e = node.drop_table("acct").unwrap_err();
    assert_eq!(e.sqlstate(), "55P03", "{e}");
    a.insert("acct", row(2, 1)).unwrap();
    a.commit().unwrap();
    assert_eq!(count(&node, "acct"), 2);
}

/// A row updated many times since the last vacuum: a lookup removes the index entries of
/// versions no snapshot can see, so the next one does not walk them. Before, every
/// update of pgbench's ten branches walked every version since the last vacuum (1 ms
/// per update after a few seconds of pgbench, and growing).
#[test]
fn lookups_drop_the_index_entries_of_versions_dead_to_every_snapshot() {
    let (_d, node) = node(1);
    keyed(&node);
    let mut tx = node.begin().unwrap();
    tx.insert("acct", row(1, 0)).unwrap();
    tx.commit().unwrap();
    // A reader whose snapshot still needs the old versions keeps them indexed.
    let mut old = node.begin().unwrap();
    assert_eq!(old.get("acct", &[Value::Int8(1)]).unwrap(), vec![row(1, 0)]);
    for i in 1..=200 {
        let mut tx = node.begin().unwrap();
        assert_eq!(
            tx.update("acct", &[Value::Int8(1)], |_| row(1, i)).unwrap(),
            1
        );
        tx.commit().unwrap();
    }
    let id = node.table_id("acct").unwrap();
    let entries = || node.part(0, id).unwrap().index_entries()[0];
    assert!(entries() > 150, "{}", entries());
    // Read committed: the old reader's next statement sees the newest version.
    assert_eq!(
        old.get("acct", &[Value::Int8(1)]).unwrap(),
        vec![row(1, 200)]
    );
    old.commit().unwrap();
    // (A read-only end does not publish the running set: the next writer's end does,
    // and only then is the old reader's horizon gone — `TxnManager::end_read_only`.)
    let mut tx = node.begin().unwrap();
    assert_eq!(
        tx.update("acct", &[Value::Int8(1)], |_| row(1, 201))
            .unwrap(),
        1
    );
    tx.commit().unwrap();
    let mut tx = node.begin().unwrap();
    assert_eq!(
        tx.get("acct", &[Value::Int8(1)]).unwrap(),
        vec![row(1, 201)]
    );
    tx.commit().unwrap();
    assert!(entries() <= 2, "dead entries left: {}", entries());
    // The row is still found, updated and unique after vacuum removes the versions.
    node.vacuum("acct").unwrap();
    let mut tx = node.begin().unwrap();
    assert_eq!(
        tx.update("acct", &[Value::Int8(1)], |_| row(1, 7)).unwrap(),
        1
    );
    assert!(is_dup(&tx.insert("acct", row(1, 8)).unwrap_err()));
    tx.rollback().unwrap();
    assert_eq!(count(&node, "acct"), 1);
}

/// Two transactions, each truncating the table the other wrote to, wait for each other:
/// a deadlock, found at once (40P01), not after the lock timeout. A waiting TRUNCATE
/// ends with 57014 when its transaction's cancel flag is set.
#[test]
fn ddl_waits_are_in_the_deadlock_graph_and_cancellable() {
    let (_d, node) = node(2);
    for t in ["t1", "t2"] {
        node.create_table(
            &TableSpec::new(t)
                .column("id", Type::Int8)
                .column("v", Type::Int8),
        )
        .unwrap();
    }
    let mut a = node.begin().unwrap();
    a.insert("t1", row(1, 1)).unwrap();
    let mut b = node.begin().unwrap();
    b.insert("t2", row(1, 1)).unwrap();
    let t0 = std::time::Instant::now();
    let ta = std::thread::spawn(move || {
        let r = a.truncate("t2");
        (a, r)
    });
    std::thread::sleep(Duration::from_millis(100));
    let rb = b.truncate("t1");
    let mut errors = Vec::new();
    if let Err(e) = &rb {
        errors.push(e.sqlstate());
    }
    // Whichever was refused rolls back; the other then proceeds.
    if rb.is_err() {
        b.rollback().unwrap();
    } else {
        b.commit().unwrap();
    }
    let (a, ra) = ta.join().unwrap();
    if let Err(e) = &ra {
        errors.push(e.sqlstate());
    }
    drop(a);
    assert_eq!(errors, ["40P01"], "{ra:?} {rb:?}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());

    // Cancelled while waiting.
    let mut w = node.begin().unwrap();
    w.insert("t1", row(2, 2)).unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let mut c = node.begin().unwrap();
    c.set_cancel_flag(flag.clone());
    let tc = std::thread::spawn(move || c.truncate("t1"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!tc.is_finished());
    flag.store(true, Ordering::SeqCst);
    let e = tc.join().unwrap().unwrap_err();
    assert_eq!(e.sqlstate(), "57014", "{e}");
    w.commit().unwrap();
    assert!(count(&node, "t1") >= 1);
}
