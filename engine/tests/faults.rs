//! Injected I/O failures: every sync of the workload failed with EIO in turn, and every
//! write failed with ENOSPC in turn. The failing call returns an error, the node refuses
//! every later write (it never retries an fsync that may have lost data), and recovery
//! from what was durable keeps every acknowledged commit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use segexpand_engine::vfs::{CrashMode, FailKind, OpClass, SimVfs};
use segexpand_engine::{Error, Node};
use std::path::Path;
use std::sync::Arc;

const SEED: u64 = 99;
const TXNS: usize = 40;

fn matrix(class: OpClass, kind: FailKind) -> u64 {
    let clean = SimVfs::new();
    assert!(run_workload(&clean, SEED, TXNS).error.is_none());
    let total = clean.count(class);
    for n in 0..total {
        let vfs = SimVfs::new();
        vfs.fail_nth(class, n, kind);
        let outcome = run_workload(&vfs, SEED, TXNS);
        let err = outcome
            .error
            .clone()
            .unwrap_or_else(|| panic!("failure {n} of {class:?} not reported"));
        let img = vfs.crash_image(CrashMode::DropUnsynced);
        match Node::open(Arc::new(img.clone()), Path::new(DIR), small_opts()) {
            Ok(node) => check_against(
                &outcome,
                &live_rows(&node),
                &format!("{class:?} #{n}: {err}"),
            ),
            Err(Error::NotInitialized(_) | Error::DirRefused { .. }) if !outcome.created => {
                assert_creation_interrupted(&img, &format!("{class:?} #{n}"));
            }
            Err(e) => panic!("{class:?} #{n}: recovery failed: {e}"),
        }
    }
    total
}

#[test]
fn every_sync_failing_with_eio() {
    let n = matrix(OpClass::Sync, FailKind::Eio);
    assert!(n > 50, "only {n} syncs");
    eprintln!("EIO matrix: each of {n} syncs failed in turn");
}

#[test]
fn every_write_failing_with_enospc() {
    let n = matrix(OpClass::Write, FailKind::Enospc);
    assert!(n > 50, "only {n} writes");
    eprintln!("ENOSPC matrix: each of {n} writes failed in turn");
}

/// A node of one segment with one uncommitted insert, and the next `class` operation
/// (the commit's) armed to fail with `kind`.
fn commit_about_to_fail(class: OpClass, kind: FailKind) -> (SimVfs, Arc<Node>, u32, u64) {
    let vfs = SimVfs::new();
    let node = Node::create(Arc::new(vfs.clone()), Path::new(DIR), 1, small_opts()).unwrap();
    let t = node.create_raw_table("t").unwrap();
    let x = node.begin_xid().unwrap();
    node.insert(x, 0, 0, t, false, &payload(1)).unwrap();
    vfs.fail_nth(class, vfs.count(class), kind);
    (vfs, node, t, x)
}

#[test]
fn after_a_failed_fsync_the_node_refuses_writes() {
    let (vfs, node, t, x) = commit_about_to_fail(OpClass::Sync, FailKind::Eio);
    let e = node.commit_xid(x).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert!(node.is_poisoned());
    // The disk would now accept a sync again; the node must still refuse.
    for r in [
        node.begin_xid().map(|_| ()),
        node.insert(x, 0, 0, t, false, &payload(2)).map(|_| ()),
        node.commit_xid(x),
        node.checkpoint().map(|_| ()),
        node.create_raw_table("u").map(|_| ()),
    ] {
        let e = r.unwrap_err();
        assert!(
            matches!(e, Error::Poisoned(_)),
            "expected Poisoned, got {e}"
        );
        assert!(e.to_string().contains("fsync"), "{e}");
    }
    // Reads still work, and show nothing of the unacknowledged transaction.
    assert!(node.scan_committed(0, t).unwrap().is_empty());
    drop(node);
    let node = Node::open(
        Arc::new(vfs.crash_image(CrashMode::DropUnsynced)),
        Path::new(DIR),
        small_opts(),
    )
    .unwrap();
    assert!(node.scan_committed(0, t).unwrap().len() <= 1);
}

/// The poison message names the operation that failed: after a *write* failed with
/// ENOSPC, every refused write says "an earlier write on <file> failed (No space left
/// on device)", not "an earlier fsync failed" (issue 9, item 11).
#[test]
fn after_a_failed_write_the_poison_names_the_write() {
    let (_vfs, node, _, x) = commit_about_to_fail(OpClass::Write, FailKind::Enospc);
    let e = node.commit_xid(x).unwrap_err();
    let Error::Io { op, .. } = &e else {
        panic!("expected the I/O error itself, got {e}");
    };
    assert_eq!(*op, "write", "{e}");
    assert!(node.is_poisoned());
    for r in [
        node.begin_xid().map(|_| ()),
        node.checkpoint().map(|_| ()),
        node.create_raw_table("u").map(|_| ()),
    ] {
        let e = r.unwrap_err();
        assert!(
            matches!(e, Error::Poisoned(_)),
            "expected Poisoned, got {e}"
        );
        let m = e.to_string();
        assert!(m.contains("an earlier write on "), "{m}");
        assert!(m.contains(".wal failed ("), "names the WAL file: {m}");
        assert!(
            m.contains("No space left on device") || m.contains("os error 28"),
            "{m}"
        );
        assert!(!m.contains("fsync"), "a write failed, not an fsync: {m}");
    }
}
