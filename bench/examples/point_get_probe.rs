//! Point-get probe for profiling (`perf record`): loads a 1M-row table of ~100-byte rows,
//! runs 3M gets, then closes and reopens the node and reports what rebuilding the key
//! index (and the free-space maps and VMs) cost at open.
//! `cargo run --release -p segexpand-bench --example point_get_probe`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::{Node, NodeOptions, TableSpec, Type, Value};
use std::time::Instant;

fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let node = Node::create_dir(dir.path(), 4, NodeOptions::default()).unwrap();
    node.create_table(
        &TableSpec::new("t")
            .not_null("id", Type::Int8)
            .column("a", Type::Int8)
            .column("pad", Type::Text),
    )
    .unwrap();
    let rows: i64 = 1_000_000;
    let pad = "x".repeat(70);
    let t = Instant::now();
    node.bulk_load(
        "t",
        (0..rows).map(|i| vec![Value::Int8(i), Value::Int8(i), Value::Text(pad.clone())]),
    )
    .unwrap();
    println!(
        "bulk load: {:.0} rows/s",
        rows as f64 / t.elapsed().as_secs_f64()
    );
    let mut tx = node.begin().unwrap();
    let n = 3_000_000;
    let t = Instant::now();
    let mut k = 0i64;
    for _ in 0..n {
        k = (k + 7_919) % rows;
        assert_eq!(tx.get("t", &[Value::Int8(k)]).unwrap().len(), 1);
    }
    println!("point get: {:.0} /s", n as f64 / t.elapsed().as_secs_f64());
    drop(tx);
    node.close().unwrap();
    drop(node);
    let t = Instant::now();
    let node = Node::open_dir(dir.path(), NodeOptions::default()).unwrap();
    let open = t.elapsed();
    let r = node.recovery_report();
    println!(
        "reopen: {:.1} ms in all; free-space maps, VMs and key index ({} entries) rebuilt in {:.1} ms",
        open.as_secs_f64() * 1e3,
        r.index_entries,
        r.index_rebuild_us as f64 / 1e3
    );
}
