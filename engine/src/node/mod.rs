//! A node: one data directory holding several segments, one WAL, one commit log — the
//! [`Node`] type, its options and reports, and its accessors.
//!
//! The node's rooms: [`open`] (create, open, recovery), [`redo`] (one record applied),
//! [`segments`] (segments and tables at run time), [`part`] (one table on one segment),
//! [`tuples`] (tuple-level writes, commit, abort), [`prune`] (vacuum of a page) and
//! [`checkpoint`] (checkpoint, close). The table API (`crate::table`) is built on them.
//!
//! Every lock here is ranked ([`crate::lock`]); the order is the rank table in
//! `docs/ARCHITECTURE.md` ("Lock order"), checked in debug and test builds.

use crate::catalog::{Catalog, SegmentConfig, TableDef};
use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::lock::{rank, Mutex, RwLock};
use crate::poison::Poison;
use crate::storage::page::{Page, PageId};
use crate::txn::clog::Clog;
use crate::txn::TxnManager;
use crate::vfs::Vfs;
use crate::wal::record::{Body, PageRef};
use crate::wal::{SyncPolicy, Wal};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use crate::datadir::{CONTROL_FILE, WAL_DIR};

mod open;
mod part;
mod redo;
mod segments;
mod tuples;
mod writers;
pub(crate) use writers::DrainGuard;
pub use part::Part;
pub(crate) use part::TableRt;
pub use prune::PruneStats;
pub(crate) use tuples::Claim;
mod checkpoint;
mod prune;
/// Most segments a node may hold.
pub const SEGMENTS_MAX: u16 = 1024;

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// When commits are acknowledged.
    pub sync: SyncPolicy,
    /// Pages each heap keeps cached before evicting clean ones.
    pub cache_pages_max: usize,
    /// WAL bytes after a redo point that trigger an automatic checkpoint, bounding
    /// recovery time (checked after each commit).
    pub checkpoint_wal_bytes: u64,
    /// Size at which a WAL file is closed and the next one started (tests use small files
    /// to exercise the switch; clamped to `WAL_FILE_BYTES_MIN..=WAL_FILE_BYTES_MAX`).
    pub wal_file_bytes: u64,
    /// How long a writer waits for a row lock before [`Error::LockTimeout`] (zero: fail
    /// at once). Deadlocks are detected without waiting for this.
    pub lock_timeout: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::EveryCommit,
            cache_pages_max: 1 << 20,
            checkpoint_wal_bytes: 256 * 1024 * 1024,
            wal_file_bytes: crate::wal::file::WAL_FILE_BYTES_MAX,
            lock_timeout: Duration::from_secs(60),
        }
    }
}

/// What recovery did at open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Records replayed.
    pub records_replayed: usize,
    /// Full-page images installed.
    pub page_images: usize,
    /// Transactions found in flight and aborted.
    pub aborted_in_flight: u64,
    /// If the log ended at an invalid record: its LSN and why.
    pub cut: Option<(u64, String)>,
    /// VM files rebuilt from the heap.
    pub vm_rebuilt: usize,
    /// Heap blocks that could not be read after redo (checksum errors, ...).
    pub unreadable_blocks: Vec<String>,
    /// Key-index entries rebuilt from the heaps.
    pub index_entries: usize,
    /// Parts whose key indexes could not be built from every tuple (an unreadable block,
    /// or a tuple that does not decode), with the error: lookups on them read the whole
    /// segment, and so report the corruption rather than miss the row.
    pub damaged_indexes: Vec<String>,
    /// Time spent building free-space maps, loading VMs and rebuilding key indexes (µs).
    pub index_rebuild_us: u64,
}

/// What a checkpoint did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Redo point of the new checkpoint.
    pub redo_lsn: u64,
    /// Pages written.
    pub pages_written: usize,
    /// WAL files removed.
    pub wal_files_removed: usize,
}

/// One node of segments.
pub struct Node {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    /// The directory, held exclusively for the node's life (released on drop).
    datadir: DataDir,
    opts: NodeOptions,
    pub(crate) wal: Wal,
    clog: Clog,
    pub(crate) poison: Arc<Poison>,
    pub(crate) failpoints: crate::failpoint::Failpoints,
    pub(crate) catalog: RwLock<Catalog, rank::Catalog>,
    pub(crate) tables_rt: RwLock<HashMap<u32, Arc<TableRt>>, rank::Tables>,
    pub(crate) txns: TxnManager,
    next_table: AtomicU32,
    /// Round-robin counter placing rows of randomly distributed tables.
    pub(crate) round_robin: AtomicU64,
    /// Bumped after every change to the catalog (tables, layouts, segments):
    /// [`Node::catalog_version`].
    pub(crate) catalog_version: AtomicU64,
    pub(crate) commit_gate: RwLock<(), rank::CommitGate>,
    checkpoint_lock: Mutex<(), rank::Checkpoint>,
    recovery: RecoveryReport,
    stop_flusher: Arc<AtomicBool>,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>, rank::Flusher>,
    /// This node object's number among those the process opened (a table handle records
    /// it, so a handle cannot be used with another node).
    pub(crate) instance: u64,
}

/// Numbers node objects: see [`Node::instance`].
pub(crate) static NODE_INSTANCES: AtomicU64 = AtomicU64::new(1);

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("dir", &self.dir).finish()
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

impl Node {
    /// What recovery did when this node was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segments of this node (content ids).
    pub fn segments(&self) -> Vec<u16> {
        self.catalog.read().contents()
    }

    /// The segment configuration, one row per segment (`gp_segment_configuration`).
    pub fn segment_configuration(&self) -> Vec<SegmentConfig> {
        self.catalog.read().segments.clone()
    }

    /// The table definitions.
    pub fn tables(&self) -> Vec<TableDef> {
        self.catalog.read().tables.clone()
    }

    /// The id of the table called `name`.
    pub fn table_id(&self, name: &str) -> Option<u32> {
        self.catalog.read().table_by_name(name).map(|t| t.id)
    }

    /// The definition of the table called `name`.
    pub fn table_def(&self, name: &str) -> Result<TableDef> {
        self.catalog
            .read()
            .table_by_name(name)
            .cloned()
            .ok_or_else(|| Error::NoSuchTable(name.to_string()))
    }

    raw! {
        /// The WAL (for statistics and benchmarks).
        pub fn wal(&self) -> &Wal {
            &self.wal
        }
    }

    raw! {
        /// The commit log.
        pub fn clog(&self) -> &Clog {
            &self.clog
        }
    }

    /// The options the node runs with.
    pub fn options(&self) -> &NodeOptions {
        &self.opts
    }

    /// The I/O seam.
    pub fn vfs(&self) -> &Arc<dyn Vfs> {
        &self.vfs
    }

    raw! {
        /// The transaction manager (running transactions, snapshots, lock waits).
        pub fn txn_manager(&self) -> &TxnManager {
            &self.txns
        }
    }

    raw! {
        /// Arms `point` to fire `action` at its `skip + 1`-th hit.
        pub fn arm_failpoint(
            &self,
            point: crate::failpoint::Failpoint,
            action: crate::failpoint::FailAction,
            skip: u64,
        ) {
            self.failpoints.arm(point, action, skip);
        }
    }

    raw! {
        /// Disarms every failpoint.
        pub fn clear_failpoints(&self) {
            self.failpoints.clear();
        }
    }

    /// Passes `point`: fails if it is armed and due (poisoning the node for a simulated
    /// crash).
    pub(crate) fn failpoint(&self, point: crate::failpoint::Failpoint) -> Result<()> {
        match self.failpoints.hit(point) {
            None => Ok(()),
            Some(action) => {
                let e = Error::Failpoint(point);
                if action == crate::failpoint::FailAction::Crash {
                    self.poison.set(&e);
                }
                Err(e)
            }
        }
    }

    /// Holds off checkpoints (DDL that must not race one).
    pub(crate) fn checkpoint_guard(&self) -> crate::lock::MutexGuard<'_, ()> {
        self.checkpoint_lock.lock()
    }

    /// Logs a catalog record (xid 0) and waits until it is durable. The commit gate keeps
    /// a checkpoint from copying the catalog between the record and its application.
    pub(crate) fn log_ddl(&self, body: &Body) -> Result<()> {
        let _gate = self.commit_gate.read();
        let lsn = self.wal.append(0, body)?;
        self.wal.flush_through(lsn)
    }

    /// Logs a changed table definition durably and installs it, under the commit gate
    /// (so no checkpoint's redo point falls between the record and the change). A failed
    /// append or sync poisons the node.
    pub(crate) fn log_and_put_table(&self, def: TableDef) -> Result<()> {
        let _gate = self.commit_gate.read();
        let r = self
            .wal
            .append(0, &Body::PutTable { def: def.clone() })
            .and_then(|lsn| self.wal.flush_through(lsn));
        if let Err(e) = r {
            self.poison.set(&e);
            return Err(e);
        }
        self.apply_put_table(def);
        Ok(())
    }

    /// A write path that failed on I/O leaves the node's files in an unknown state:
    /// poison, so nothing builds on it until recovery.
    pub(crate) fn poison_on_io<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e @ Error::Io { .. }) = &r {
            self.poison.set(e);
        }
        r
    }

    /// A number that changes after every change to the catalog (a table created,
    /// dropped or redefined — a redistribution's start, cancel and flip, a new
    /// constraint — a segment added or retired). Read it before reading definitions;
    /// anything derived from them (a cached plan) is current while it is unchanged.
    pub fn catalog_version(&self) -> u64 {
        self.catalog_version.load(Ordering::Acquire)
    }

    /// Marks the catalog changed (after the change is in place).
    pub(crate) fn catalog_changed(&self) {
        self.catalog_version.fetch_add(1, Ordering::AcqRel);
    }

    /// True once poisoned by a failed fsync.
    pub fn is_poisoned(&self) -> bool {
        self.poison.is_set()
    }

    raw! {
        /// The identity of a block (for tools).
        pub fn page_id(segment: u16, table: u32, block: u32) -> PageId {
            PageId {
                segment,
                table,
                block,
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_flusher.store(true, Ordering::Release);
    }
}

/// A page-image record body for page `p`.
pub(crate) fn image_body(page: PageRef, p: &Page) -> Body {
    let (hole_offset, hole_len, image) = p.image();
    Body::PageImage {
        page,
        hole_offset,
        hole_len,
        image,
    }
}
