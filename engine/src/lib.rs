//! segexpand-engine: the storage of one node — segments, heap pages, the write-ahead
//! log, checkpoints and crash recovery.
//!
//! This is the facade: the types a server, a harness or a C ABI builds on. The raw
//! storage API (tuple-level writes under explicit xids, heaps, the WAL, the commit log)
//! and the fault-injecting file system are reachable only with the `testing` feature.
//!
//! Start at [`Node`]: [`Node::create_dir`] makes a data directory of N segments,
//! [`Node::open_dir`] opens one (replaying the WAL). All file I/O goes through the
//! [`vfs::Vfs`] seam, which tests replace with the fault-injecting `vfs::SimVfs`.
//! `docs/ARCHITECTURE.md` has the map; `docs/format.md` every byte on disk.
//!
//! ```
//! use segexpand_engine::{Node, NodeOptions, TableSpec, Type, Value};
//! let dir = tempfile::tempdir().unwrap();
//! let node = Node::create_dir(dir.path(), 2, NodeOptions::default()).unwrap();
//! node.create_table(&TableSpec::new("t").not_null("id", Type::Int4).column("v", Type::Text))
//!     .unwrap();
//! let mut tx = node.begin().unwrap();
//! tx.insert("t", vec![Value::Int4(1), Value::Text("alice".into())]).unwrap();
//! tx.commit().unwrap();
//! let mut tx = node.begin().unwrap();
//! assert_eq!(tx.get("t", &[Value::Int4(1)]).unwrap().len(), 1);
//! node.close().unwrap();
//! ```

// Without `testing`, the internal modules are private, so items that only tests,
// benchmarks and the other crates' tests use (accessors, counters, the lock checker's
// names) look dead to the compiler. They are kept; the `testing` build (the README test
// command and clippy with --all-targets) checks them for real use.
#![cfg_attr(not(feature = "testing"), allow(dead_code, unused_imports))]

/// Declares modules that other crates reach only with the `testing` feature: the raw
/// storage API (heaps, pages, the WAL, the commit log, tuple-level writes) is for the
/// engine's own tests, benchmarks and fuzzers, not for users, who see the facade below.
macro_rules! internal_mods {
    ($($name:ident;)*) => {$(
        #[cfg(feature = "testing")]
        pub mod $name;
        #[cfg(not(feature = "testing"))]
        mod $name;
    )*};
}

/// Makes a method public only with the `testing` feature (crate-private otherwise):
/// `raw! { /// doc \n pub fn name(...) -> ... { ... } }` inside an `impl`.
macro_rules! raw {
    ($(#[$m:meta])* pub fn $($rest:tt)*) => {
        $(#[$m])*
        #[cfg(feature = "testing")]
        pub fn $($rest)*
        $(#[$m])*
        #[cfg(not(feature = "testing"))]
        #[allow(dead_code, reason = "used by tests and benchmarks through `testing`")]
        pub(crate) fn $($rest)*
    };
}

internal_mods! {
    catalog;
    datadir;
    error;
    failpoint;
    lock;
    node;
    poison;
    storage;
    table;
    txn;
    wal;
}
#[cfg(any(feature = "fuzzing", feature = "testing"))]
pub mod fuzzing;
#[cfg(test)]
mod point_read_tests;
/// Options and reports of a redistribution's steps (the steps are methods of [`Node`]).
pub mod redistribute;
pub mod verify;
pub mod vfs;

pub use catalog::hash::Placement;
pub use catalog::types::{Type, Value};
pub use catalog::{Column, Layout, SegmentConfig, TableDef, UniqueKey};
pub use datadir::{inspect, DataDir, DirState};
pub use error::{CorruptionKind, Error, Location, Result};
pub use failpoint::Failpoint;
pub use node::{CheckpointStats, Node, NodeOptions, PruneStats, RecoveryReport};
pub use table::{
    Cursor, Predicate, Row, RowFilter, ScanOptions, TableHandle, TableRef, TableSpec, Txn,
    BATCH_ROWS_DEFAULT,
};
pub use wal::SyncPolicy;
