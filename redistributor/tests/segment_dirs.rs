//! A segment added with a data directory of its own (gpexpand's input file names one
//! per new segment, another disk say) keeps its files there: rows moved onto it are
//! found after a clean reopen and after a crash, `verify` follows it, retiring it
//! removes the files, and bad directories are refused before anything changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::catalog::SegmentConfig;
use segexpand_engine::vfs::RealVfs;
use segexpand_engine::{Error, Layout, Node, NodeOptions, TableSpec, Type, Value};
use segexpand_redistributor::{Finish, Options, Redistributor};
use std::path::Path;
use std::sync::Arc;

const ROWS: i64 = 6_000;

fn sum(node: &Arc<Node>) -> (usize, i64) {
    let mut tx = node.begin().unwrap();
    let rows = tx.scan("t", None).unwrap();
    tx.rollback().unwrap();
    let s = rows
        .iter()
        .map(|r| match r[0] {
            Value::Int8(v) => v,
            _ => panic!("id"),
        })
        .sum();
    (rows.len(), s)
}

fn config(content: u16, datadir: &Path) -> SegmentConfig {
    SegmentConfig {
        dbid: content + 2,
        port: 7000 + content,
        hostname: "localhost".into(),
        address: "127.0.0.1".into(),
        ..SegmentConfig::local(content, datadir.display().to_string())
    }
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_segment_in_its_own_directory_survives_reopen_crash_verify_and_retirement() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node");
    let disk2 = root.path().join("disk2");
    std::fs::create_dir(&disk2).unwrap();
    let node = Node::create_dir(&dir, 2, NodeOptions::default()).unwrap();
    node.create_table(
        &TableSpec::new("t")
            .not_null("id", Type::Int8)
            .column("v", Type::Text)
            .distributed_by(&["id"]),
    )
    .unwrap();
    node.bulk_load(
        "t",
        (0..ROWS).map(|i| vec![Value::Int8(i), Value::Text(format!("v{i}"))]),
    )
    .unwrap();
    let want = (ROWS as usize, ROWS * (ROWS - 1) / 2);

    // Refused, nothing changed: relative, inside the node, not empty, wrong content id,
    // a dbid in use, a mirror.
    let refused = |c: SegmentConfig| {
        let e = node.add_segment_with(c).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        e.to_string()
    };
    refused(config(2, Path::new("rel/dir")));
    refused(config(2, &dir.join("inside")));
    std::fs::create_dir(disk2.join("full")).unwrap();
    std::fs::write(disk2.join("full/x"), b"not ours").unwrap();
    assert!(refused(config(2, &disk2.join("full"))).contains("not empty"));
    refused(config(3, &disk2.join("gpseg3")));
    refused(SegmentConfig {
        dbid: 2,
        ..config(2, &disk2.join("gpseg2"))
    });
    refused(SegmentConfig {
        role: 'm',
        preferred_role: 'm',
        ..config(2, &disk2.join("gpseg2"))
    });
    assert_eq!(node.segments().len(), 2);

    let seg_dir = disk2.join("gpseg2");
    assert_eq!(node.add_segment_with(config(2, &seg_dir)).unwrap(), 2);
    assert!(
        !dir.join("seg2").exists(),
        "files went to the node's own directory"
    );
    assert!(
        files_in(&seg_dir) >= 2,
        "no heap or VM file in {}",
        seg_dir.display()
    );
    let cfg = node.segment_configuration();
    let row = cfg.iter().find(|s| s.content == 2).unwrap();
    assert_eq!(row.datadir, seg_dir.display().to_string());
    assert_eq!((row.port, row.dbid), (7002, 4));

    let target = Layout {
        segments: 3,
        ..node.table_def("t").unwrap().layout
    };
    let out = Redistributor::start(node.clone(), "t", target, Options::default())
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(out.finish, Finish::Flipped);
    assert!(out.progress.counts.rows_moved > 0);
    node.close().unwrap();
    drop(node);

    let report = segexpand_engine::verify::verify_dir(&RealVfs, &dir).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let node = Node::open_dir(&dir, NodeOptions::default()).unwrap();
    assert_eq!(sum(&node), want);
    assert!(node.check_placement("t").unwrap().is_empty());
    // A crash (no close) after writes to the external segment: recovery finds them.
    let mut tx = node.begin().unwrap();
    for i in ROWS..ROWS + 300 {
        tx.insert("t", vec![Value::Int8(i), Value::Null]).unwrap();
    }
    tx.commit().unwrap();
    drop(node);
    let node = Node::open_dir(&dir, NodeOptions::default()).unwrap();
    let n = ROWS + 300;
    assert_eq!(sum(&node), (n as usize, n * (n - 1) / 2));

    // Shrink back to 2 and retire: the external directory's files go with it.
    let target = Layout {
        segments: 2,
        ..node.table_def("t").unwrap().layout
    };
    let out = Redistributor::start(node.clone(), "t", target, Options::default())
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(out.finish, Finish::Flipped);
    node.cleanup_redistribution("t").unwrap();
    assert_eq!(node.retire_segment().unwrap(), 2);
    assert!(!seg_dir.exists(), "retired segment's directory left behind");
    assert_eq!(sum(&node), (n as usize, n * (n - 1) / 2));
    node.close().unwrap();
    drop(node);
    let report = segexpand_engine::verify::verify_dir(&RealVfs, &dir).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Retiring a segment holds every table's statements off, but never queues behind a
/// statement waiting for a row lock: the row's holder must still get its next statement
/// through, commit, and let the waiter go (before, the holder queued behind the
/// retirement, which waited for the waiter, which waited for the holder: every one of
/// them stuck until the lock timeout failed the waiter).
#[test]
fn retiring_a_segment_does_not_stall_a_lock_holder_behind_a_lock_waiter() {
    let root = tempfile::tempdir().unwrap();
    let node = Node::create_dir(
        root.path(),
        3,
        NodeOptions {
            lock_timeout: std::time::Duration::from_secs(3),
            ..NodeOptions::default()
        },
    )
    .unwrap();
    node.create_table(
        &TableSpec::new("t")
            .not_null("id", Type::Int8)
            .column("v", Type::Int8)
            .distributed_by(&["id"]),
    )
    .unwrap();
    node.bulk_load("t", (0..100).map(|i| vec![Value::Int8(i), Value::Int8(0)]))
        .unwrap();
    let target = Layout {
        segments: 2,
        ..node.table_def("t").unwrap().layout
    };
    Redistributor::start(node.clone(), "t", target, Options::default())
        .unwrap()
        .run()
        .unwrap();
    node.cleanup_redistribution("t").unwrap();
    let set = |tx: &mut segexpand_engine::Txn, id: i64| {
        tx.update("t", &[Value::Int8(id)], |r: &[Value]| {
            vec![r[0].clone(), Value::Int8(1)]
        })
    };
    let mut holder = node.begin().unwrap();
    set(&mut holder, 1).unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut tx = node.begin().unwrap();
            set(&mut tx, 1)?;
            tx.commit()
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        let retire = s.spawn(|| node.retire_segment());
        std::thread::sleep(std::time::Duration::from_millis(200));
        // The holder's next statement and commit go through while the retirement waits.
        set(&mut holder, 2).unwrap();
        holder.commit().unwrap();
        waiter.join().unwrap().unwrap();
        assert_eq!(retire.join().unwrap().unwrap(), 2);
    });
}
