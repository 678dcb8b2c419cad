//! The lock-rank checker (`engine/src/lock.rs`, issue 9 item 7) is on in the test suite —
//! `cargo test --release` included — and an acquisition against the lock order panics,
//! naming both locks, instead of deadlocking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::vfs::SimVfs;
use segexpand_engine::{Node, NodeOptions, TableSpec, Type, Value};
use std::path::Path;
use std::sync::Arc;

#[test]
#[expect(
    clippy::assertions_on_constants,
    reason = "the constant is what the build configured"
)]
fn the_lock_rank_checker_is_on_in_the_test_suite() {
    assert!(
        segexpand_engine::lock::CHECKED,
        "the engine's tests must build it with the lock-rank feature (engine/Cargo.toml)"
    );
}

/// Acceptance: a thread that holds a heap page's lock and then runs a key lookup panics at
/// the lookup's first lock ranked below the page (the catalog, where it finds the table),
/// naming both. Without the checker this deadlocks when the lookup reaches the page.
#[test]
fn lock_rank_out_of_order_panics() {
    let node = Node::create(
        Arc::new(SimVfs::new()),
        Path::new("/db"),
        1,
        NodeOptions::default(),
    )
    .unwrap();
    node.create_table(&TableSpec::new("t").not_null("id", Type::Int8))
        .unwrap();
    node.bulk_load("t", (0..10).map(|i| vec![Value::Int8(i)]))
        .unwrap();
    let heap = node.heap(0, node.table_id("t").unwrap()).unwrap();
    let page = heap.page(0).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _held = page.page.write();
        let _ = node.begin().unwrap().get("t", &[Value::Int8(3)]);
    }));
    let e = r.expect_err("a lookup under a page lock must panic");
    let msg = e
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        msg.contains("lock order violation")
            && msg.contains("taking the catalog (rank 7)")
            && msg.contains("while holding the heap page (rank 14"),
        "{msg}"
    );
    // Every guard unwound: the node goes on.
    let rows = node.begin().unwrap().get("t", &[Value::Int8(3)]).unwrap();
    assert_eq!(rows, vec![vec![Value::Int8(3)]]);
}
