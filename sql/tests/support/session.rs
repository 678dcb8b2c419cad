//! Helpers the SQL layer's tests share: a node with a session, and statements run
//! expecting success or an error.
#![allow(dead_code, clippy::unwrap_used)]

use segexpand_engine::{Node, NodeOptions};
use segexpand_sql::{Output, Session, SqlError};
use std::sync::Arc;

/// A 3-segment node in a temporary directory and a session on it.
pub fn session() -> (tempfile::TempDir, Arc<Node>, Session) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), 3, NodeOptions::default()).unwrap();
    let s = Session::new(node.clone(), "u", "d");
    (dir, node, s)
}

/// Runs `sql`, expecting every statement to succeed; the last one's output.
pub fn ok(s: &mut Session, sql: &str) -> Output {
    let mut out = s.execute(sql);
    for r in &out {
        if let Err(e) = r {
            panic!("{sql}: {e}");
        }
    }
    out.pop().unwrap().unwrap()
}

/// Runs `sql`, expecting its last statement to fail; the error.
pub fn err(s: &mut Session, sql: &str) -> SqlError {
    match s.execute(sql).pop().unwrap() {
        Err(e) => e,
        Ok(o) => panic!("{sql}: expected an error, got {o:?}"),
    }
}

/// The rows of a query (NULL as `None`).
pub fn rows(s: &mut Session, sql: &str) -> Vec<Vec<Option<String>>> {
    match ok(s, sql) {
        Output::Rows { rows, .. } => rows,
        other => panic!("{sql}: {other:?}"),
    }
}
