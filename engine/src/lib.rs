//! segexpand-engine: the storage of one node — segments, heap pages, the write-ahead
//! log, checkpoints and crash recovery.
//!
//! Start at [`Node`]: [`Node::create_dir`] makes a data directory of N segments,
//! [`Node::open_dir`] opens one (replaying the WAL). All file I/O goes through the
//! [`vfs::Vfs`] seam, which tests replace with the fault-injecting [`vfs::SimVfs`].
//! `docs/ARCHITECTURE.md` has the map; `docs/format.md` every byte on disk.
//!
//! ```
//! use segexpand_engine::{Node, NodeOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let node = Node::create_dir(dir.path(), 2, NodeOptions::default()).unwrap();
//! let t = node.create_table("accounts").unwrap();
//! let x = node.begin().unwrap();
//! node.insert(x, 0, 1, t, false, b"alice,100").unwrap();
//! node.commit(x).unwrap();
//! assert_eq!(node.scan_committed(1, t).unwrap().len(), 1);
//! node.close().unwrap();
//! ```

pub mod clog;
pub mod codec;
pub mod control;
pub mod error;
pub mod fuzzing;
pub mod hash;
pub mod heap;
pub mod node;
pub mod page;
pub mod poison;
pub mod tuple;
pub mod verify;
pub mod vfs;
pub mod vm;
pub mod wal;

pub use error::{CorruptionKind, Error, Location, Result};
pub use node::{CheckpointStats, Node, NodeOptions, RecoveryReport};
pub use wal::SyncPolicy;
