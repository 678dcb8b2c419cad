//! The table the point-read costs are measured on (the harness bench and the
//! `client_loop_cost` probe, included by `#[path]`): 100,000 rows of (id, v) on a node
//! of 4 segments in a temporary directory.

use segexpand_engine::{Node, NodeOptions, TableSpec, Type, Value};
use std::sync::Arc;

/// Rows of table `t`.
pub const ROWS: u64 = 100_000;

/// A node in `dir` with table `t` of `ROWS` rows, distributed by id.
pub fn point_table(dir: &std::path::Path) -> Arc<Node> {
    let node = Node::create_dir(&dir.join("n"), 4, NodeOptions::default()).unwrap();
    node.create_table(
        &TableSpec::new("t")
            .not_null("id", Type::Int8)
            .not_null("v", Type::Int8)
            .distributed_by(&["id"]),
    )
    .unwrap();
    node.bulk_load(
        "t",
        (0..ROWS).map(|i| vec![Value::Int8(i as i64), Value::Int8(0)]),
    )
    .unwrap();
    node
}
