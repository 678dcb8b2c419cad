//! Concurrent committers sharing fsyncs (group commit), the batched sync policy, and
//! automatic checkpoints that bound how much WAL recovery must replay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use segexpand_engine::vfs::{CrashMode, OpClass, SimVfs};
use segexpand_engine::{Node, NodeOptions, SyncPolicy};
use std::path::Path;
use std::sync::Arc;

#[test]
fn concurrent_commits_are_all_durable_and_share_syncs() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 150;
    let (vfs, node, t) = node_with_table(SEGMENTS, small_opts());
    let syncs_before = vfs.count(OpClass::Sync);
    std::thread::scope(|s| {
        for th in 0..THREADS {
            let node = node.clone();
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let id = th * PER_THREAD + i;
                    let x = node.begin_xid().unwrap();
                    node.insert(x, 0, segment_of(id), t, false, &payload(id))
                        .unwrap();
                    node.commit_xid(x).unwrap();
                }
            });
        }
    });
    let syncs = vfs.count(OpClass::Sync) - syncs_before;
    // Every commit acknowledged must survive a crash that drops everything unsynced.
    let img = vfs.crash_image(CrashMode::DropUnsynced);
    let node = Node::open(Arc::new(img), Path::new(DIR), small_opts()).unwrap();
    let ids: Vec<u64> = live_rows(&node).keys().copied().collect();
    assert_eq!(ids, (0..THREADS * PER_THREAD).collect::<Vec<_>>());
    // Not a speed claim (that is the group_commit benchmark): just that the mechanism
    // never issues more syncs than commits.
    assert!(
        syncs <= THREADS * PER_THREAD + 8,
        "{syncs} syncs for {} commits",
        THREADS * PER_THREAD
    );
}

#[test]
fn batched_policy_makes_commits_durable_within_its_bound() {
    let vfs = SimVfs::new();
    let opts = NodeOptions {
        sync: SyncPolicy::Batched {
            delay_us_max: 2_000,
        },
        ..small_opts()
    };
    let node = Node::create(Arc::new(vfs.clone()), Path::new(DIR), 1, opts.clone()).unwrap();
    let t = node.create_raw_table("t").unwrap();
    drop(node);
    // The background flusher runs on an opened node.
    let node = Node::open(Arc::new(vfs.clone()), Path::new(DIR), opts.clone()).unwrap();
    let x = node.begin_xid().unwrap();
    node.insert(x, 0, 0, t, false, &payload(1)).unwrap();
    node.commit_xid(x).unwrap();
    let lsn = node.wal().insert_lsn();
    // Wait (bounded) for the flusher; the commit must become durable without any
    // further call on the node.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while node.wal().flushed_lsn() < lsn {
        assert!(
            std::time::Instant::now() < deadline,
            "batched commit never flushed"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let img = vfs.crash_image(CrashMode::DropUnsynced);
    let node2 = Node::open(Arc::new(img), Path::new(DIR), opts).unwrap();
    assert_eq!(node2.scan_committed(0, t).unwrap().len(), 1);
}

#[test]
fn checkpoints_run_automatically_and_bound_replay() {
    let vfs = SimVfs::new();
    let opts = NodeOptions {
        checkpoint_wal_bytes: 64 * 1024,
        ..small_opts()
    };
    let node = Node::create(Arc::new(vfs.clone()), Path::new(DIR), 1, opts.clone()).unwrap();
    let t = node.create_raw_table("t").unwrap();
    for id in 0..2000 {
        let x = node.begin_xid().unwrap();
        node.insert(x, 0, 0, t, false, &payload(id)).unwrap();
        node.commit_xid(x).unwrap();
        let behind = node.wal().insert_lsn() - node.wal().redo_lsn();
        assert!(
            behind < 64 * 1024 + 32 * 1024,
            "redo point fell {behind} bytes behind"
        );
    }
    let img = vfs.crash_image(CrashMode::DropUnsynced);
    let node = Node::open(Arc::new(img), Path::new(DIR), opts).unwrap();
    let r = node.recovery_report();
    assert!(
        r.records_replayed < 1000,
        "replayed {} records",
        r.records_replayed
    );
    assert_eq!(node.scan_committed(0, t).unwrap().len(), 2000);
}
