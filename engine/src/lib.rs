//! segexpand-engine: the storage of one node — segments, heap pages, the write-ahead
//! log, checkpoints and crash recovery.
//!
//! Start at [`Node`]: [`Node::create_dir`] makes a data directory of N segments,
//! [`Node::open_dir`] opens one (replaying the WAL). All file I/O goes through the
//! [`vfs::Vfs`] seam, which tests replace with the fault-injecting [`vfs::SimVfs`].
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

pub mod catalog;
pub mod datadir;
pub mod error;
pub mod failpoint;
pub mod fuzzing;
pub mod lock;
pub mod node;
#[cfg(test)]
mod point_read_tests;
pub mod poison;
pub mod redistribute;
pub mod storage;
pub mod table;
pub mod txn;
pub mod verify;
pub mod vfs;
pub mod wal;

pub use catalog::hash::Placement;
pub use catalog::types::{Type, Value};
pub use catalog::{Column, Layout, SegmentConfig, TableDef};
pub use datadir::{DataDir, DirState};
pub use error::{CorruptionKind, Error, Location, Result};
pub use node::{CheckpointStats, Node, NodeOptions, PruneStats, RecoveryReport};
pub use table::{Predicate, Row, TableSpec, Txn};
pub use wal::SyncPolicy;
