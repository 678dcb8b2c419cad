//! The poison message names the operation that failed: after a *write* failed with
//! ENOSPC, every refused write says "an earlier write on <file> failed (No space left
//! on device)", not "an earlier fsync failed" (issue 9, item 11).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use segexpand_engine::vfs::{FailKind, OpClass, SimVfs};
use segexpand_engine::{Error, Node};
use std::path::Path;
use std::sync::Arc;

#[test]
fn after_a_failed_write_the_poison_names_the_write() {
    let vfs = SimVfs::new();
    let node = Node::create(Arc::new(vfs.clone()), Path::new(DIR), 1, small_opts()).unwrap();
    let t = node.create_raw_table("t").unwrap();
    let x = node.begin_xid().unwrap();
    node.insert(x, 0, 0, t, false, &payload(1)).unwrap();
    // The next write (the commit's WAL write) finds the disk full.
    vfs.fail_nth(OpClass::Write, vfs.count(OpClass::Write), FailKind::Enospc);
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
