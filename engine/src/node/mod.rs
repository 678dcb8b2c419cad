//! A node: one data directory holding several segments, one WAL, one commit log.
//!
//! This module owns the life cycle — create, open (with recovery), checkpoint, close —
//! and the storage-level write paths (insert a tuple, set a tuple's xmax, prune a page,
//! commit, abort). The typed table API of the transactions issue is built on these.
//!
//! Every lock here is ranked ([`crate::lock`]); the order is the rank table in
//! `docs/ARCHITECTURE.md` ("Lock order"), checked in debug and test builds.

use crate::catalog::{Catalog, SegmentConfig, TableDef};
use crate::txn::clog::{Clog, XidStatus, FIRST_XID};
use crate::catalog::control::{Control, HeapLen, NodeState};
use crate::datadir::{DataDir, DirState};
use crate::error::{CorruptionKind, Error, Location, Result};
use crate::storage::heap::{segment_dir_name, Heap};
use crate::storage::heapwalk;
use crate::storage::index::KeyedIndex;
use crate::lock::{rank, Condvar, Mutex, RwLock};
use crate::storage::page::{Page, PageId, TUPLE_BYTES_MAX};
use crate::poison::Poison;
use crate::storage::tuple::{build_tuple, NextVersion, Tid, TupleHeader, FLAGS_OFF, XMAX_OFF};
use crate::txn::TxnManager;
use crate::vfs::{read_all, replace_file, tmp_path, RealVfs, Vfs};
use crate::storage::vm::VisibilityMap;
use crate::wal::record::{Body, PageRef, Record};
use crate::wal::scan::scan;
use crate::wal::{SyncPolicy, Wal};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use crate::datadir::{CONTROL_FILE, WAL_DIR};
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

/// A part's visibility map and whether it changed since it was last written.
pub(crate) struct VmState {
    pub(crate) vm: VisibilityMap,
    pub(crate) dirty: bool,
}

/// One table on one segment: its heap, its key indexes and its visibility map.
pub struct Part {
    pub(crate) heap: Arc<Heap>,
    /// One index per distribution key the rows are looked up by (`TableDef::index_keys`,
    /// plus, until cleanup, the key a flip retired).
    pub(crate) indexes: RwLock<Vec<Arc<KeyedIndex>>, rank::IndexSet>,
    pub(crate) vm: Mutex<VmState, rank::Vm>,
}

impl Part {
    /// The heap.
    pub fn heap(&self) -> &Arc<Heap> {
        &self.heap
    }

    /// Adds a version of `row` at `tid` to every index.
    pub(crate) fn index_row(&self, def: &TableDef, row: &[crate::catalog::types::Value], tid: Tid) {
        for ix in self.indexes.read().iter() {
            ix.map.insert(def.key_hash(&ix.key, row), tid);
        }
    }

    /// Makes the index set exactly one index per key in `keys` (existing ones kept);
    /// returns the indexes created, which are empty.
    pub(crate) fn set_index_keys(&self, keys: &[Vec<u16>]) -> Vec<Arc<KeyedIndex>> {
        let mut ixs = self.indexes.write();
        ixs.retain(|ix| keys.contains(&ix.key));
        let mut created = Vec::new();
        for k in keys {
            if !ixs.iter().any(|ix| &ix.key == k) {
                let ix = Arc::new(KeyedIndex::new(k.clone()));
                ixs.push(ix.clone());
                created.push(ix);
            }
        }
        created
    }

    /// Whether the VM bit of `block` is set.
    pub(crate) fn vm_bit(&self, block: u32) -> bool {
        self.vm.lock().vm.bits.contains(block)
    }
}

/// A table's run-time state.
pub(crate) struct TableRt {
    pub(crate) id: u32,
    /// The definition (a copy of the catalog's, swapped whole on change).
    pub(crate) def: RwLock<Arc<TableDef>, rank::TableDef>,
    /// Held shared by every statement on the table, exclusively by DROP and TRUNCATE.
    pub(crate) ddl: RwLock<(), rank::TableDdl>,
    /// The layout pin: held shared by every DML statement (and bulk load, and mover
    /// batch) while it runs, exclusively — for a bounded time — by a redistribution's
    /// start, cancel and flip. SELECT never takes it. Take it with [`TableRt::pin`].
    pub(crate) pin: RwLock<(), rank::LayoutPin>,
    /// Set while a redistribution step holds new DML off (it then spins for `pin`
    /// exclusively, so that it takes it the moment the running statements finish).
    pub(crate) closing: AtomicBool,
    gate_mx: Mutex<(), rank::DmlGate>,
    gate_cv: Condvar,
    /// Set (under `ddl` held exclusively) when the table is dropped.
    pub(crate) dropped: AtomicBool,
    pub(crate) parts: RwLock<HashMap<u16, Arc<Part>>, rank::Parts>,
}

impl TableRt {
    /// Takes the layout pin shared, first waiting while a redistribution step holds DML
    /// off; the flag says whether it waited.
    pub(crate) fn pin(&self) -> (crate::lock::RwLockReadGuard<'_, ()>, bool) {
        let mut waited = false;
        loop {
            if self.closing.load(Ordering::SeqCst) {
                waited = true;
                let mut g = self.gate_mx.lock();
                while self.closing.load(Ordering::SeqCst) {
                    self.gate_cv.wait_for(&mut g, Duration::from_millis(1));
                }
            }
            let guard = self.pin.read();
            // Checked again after taking it: a step that closed the gate meanwhile is
            // spinning for the pin; let it have it.
            if !self.closing.load(Ordering::SeqCst) {
                return (guard, waited);
            }
        }
    }

    /// Holds new DML off and waits up to `cap` for the running statements to finish;
    /// on success returns the exclusive pin (call [`TableRt::open_gate`] after dropping
    /// it). On failure the gate is open again.
    pub(crate) fn close_gate(
        &self,
        cap: Duration,
    ) -> Option<crate::lock::RwLockWriteGuard<'_, ()>> {
        self.closing.store(true, Ordering::SeqCst);
        let t0 = std::time::Instant::now();
        loop {
            if let Some(g) = self.pin.try_write() {
                return Some(g);
            }
            if t0.elapsed() >= cap {
                self.open_gate();
                return None;
            }
            // Running statements take microseconds: stay on the CPU for a while (a
            // yield can cost a whole time slice on a busy machine), then yield so that
            // a preempted holder can finish.
            std::hint::spin_loop();
            if t0.elapsed() >= Duration::from_micros(200) {
                std::thread::yield_now();
            }
        }
    }

    /// Lets DML in again.
    pub(crate) fn open_gate(&self) {
        self.closing.store(false, Ordering::SeqCst);
        let _g = self.gate_mx.lock();
        self.gate_cv.notify_all();
    }
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
    pub(crate) commit_gate: RwLock<(), rank::CommitGate>,
    checkpoint_lock: Mutex<(), rank::Checkpoint>,
    recovery: RecoveryReport,
    stop_flusher: Arc<AtomicBool>,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>, rank::Flusher>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("dir", &self.dir).finish()
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

impl Node {
    /// Creates a node of `segments` empty segments in `dir` on the real file system.
    pub fn create_dir(dir: &Path, segments: u16, opts: NodeOptions) -> Result<Arc<Node>> {
        Self::create(Arc::new(RealVfs), dir, segments, opts)
    }

    /// Opens (recovering) the node in `dir` on the real file system.
    pub fn open_dir(dir: &Path, opts: NodeOptions) -> Result<Arc<Node>> {
        Self::open(Arc::new(RealVfs), dir, opts)
    }

    /// Creates a node of `segments` empty segments (content ids `0..segments`) in `dir`,
    /// which must be missing or empty (it is created and locked first).
    pub fn create(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        segments: u16,
        opts: NodeOptions,
    ) -> Result<Arc<Node>> {
        check_segment_count(segments)?;
        Self::create_in(DataDir::lock(vfs, dir, true)?, segments, opts)
    }

    /// Creates a node in a directory this process has locked ([`DataDir::lock`]). The
    /// directory must be empty, or hold a creation that was interrupted (whose files are
    /// removed first); anything else is refused with nothing changed.
    pub fn create_in(datadir: DataDir, segments: u16, opts: NodeOptions) -> Result<Arc<Node>> {
        check_segment_count(segments)?;
        match datadir.state()? {
            DirState::Empty => {}
            DirState::CreateInterrupted => {
                datadir.wipe()?;
            }
            s => return Err(datadir.refuse(&s)),
        }
        // From here until the control file exists the directory says "creation
        // interrupted", never "empty" or "damaged".
        datadir.begin_create()?;
        let vfs = datadir.vfs().clone();
        let dir = datadir.path().to_path_buf();
        let dir = dir.as_path();
        let wal_dir = dir.join(WAL_DIR);
        vfs.create_dir_all(&wal_dir)
            .map_err(io("mkdir", &wal_dir))?;
        let poison = Arc::new(Poison::default());
        let wal = Wal::new(
            vfs.clone(),
            &wal_dir,
            0,
            0,
            true,
            0,
            opts.wal_file_bytes,
            poison.clone(),
        );
        let node = Self::assemble(
            datadir,
            opts,
            wal,
            Clog::default(),
            poison,
            Catalog::default(),
            FIRST_XID,
            1,
        );
        for s in 0..segments {
            let datadir = dir.join(segment_dir_name(s)).display().to_string();
            node.add_segment(SegmentConfig::local(s, datadir))?;
        }
        // The first checkpoint writes the control file: from here on the node exists.
        node.checkpoint()?;
        node.datadir.end_create()?;
        let node = Arc::new(node);
        node.start_flusher();
        Ok(node)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "private constructor shared by create and open"
    )]
    fn assemble(
        datadir: DataDir,
        opts: NodeOptions,
        wal: Wal,
        clog: Clog,
        poison: Arc<Poison>,
        catalog: Catalog,
        next_xid: u64,
        next_table: u32,
    ) -> Node {
        Node {
            dir: datadir.path().to_path_buf(),
            vfs: datadir.vfs().clone(),
            datadir,
            opts,
            wal,
            clog,
            poison,
            catalog: RwLock::new(catalog),
            tables_rt: RwLock::new(HashMap::new()),
            txns: TxnManager::new(next_xid),
            next_table: AtomicU32::new(next_table),
            round_robin: AtomicU64::new(0),
            commit_gate: RwLock::new(()),
            failpoints: crate::failpoint::Failpoints::default(),
            checkpoint_lock: Mutex::new(()),
            recovery: RecoveryReport::default(),
            stop_flusher: Arc::new(AtomicBool::new(false)),
            flusher: Mutex::new(None),
        }
    }

    /// Opens the node in `dir`, replaying the WAL from the last checkpoint.
    ///
    /// Recovery is idempotent: page records apply only to pages older than them, and the
    /// open ends with a checkpoint, so opening twice gives what opening once gives.
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path, opts: NodeOptions) -> Result<Arc<Node>> {
        Self::open_in(DataDir::lock(vfs, dir, false)?, opts)
    }

    /// Opens the node in a directory this process has locked ([`DataDir::lock`]); a
    /// directory that holds no node (empty, foreign, damaged, an interrupted creation or
    /// wipe) is refused with nothing changed.
    pub fn open_in(datadir: DataDir, opts: NodeOptions) -> Result<Arc<Node>> {
        match datadir.state()? {
            DirState::Node => {}
            s => return Err(datadir.refuse(&s)),
        }
        let vfs = datadir.vfs().clone();
        let dir = datadir.path().to_path_buf();
        let dir = dir.as_path();
        let control_path = dir.join(CONTROL_FILE);
        let f = vfs
            .open(&control_path, false)
            .map_err(io("open", &control_path))?;
        let bytes = read_all(&*f).map_err(io("read", &control_path))?;
        let control =
            Control::decode(&bytes).map_err(|k| Error::corrupt(Location::file(CONTROL_FILE), k))?;
        let tmp = tmp_path(&control_path);
        if vfs.exists(&tmp).map_err(io("stat", &tmp))? {
            vfs.remove_file(&tmp).map_err(io("remove", &tmp))?;
        }
        let wal_dir = dir.join(WAL_DIR);
        // Every WAL file kept is read and judged, as `verify` does, though only the
        // records from the redo point on are replayed: damage before it is corruption
        // too (a crash cannot put an invalid record before synced ones), and the
        // checkpoint at the end of this open would otherwise delete the evidence.
        let oldest = crate::wal::scan::list_files(&*vfs, &wal_dir)?
            .first()
            .map_or(control.redo_lsn, |f| f.start.min(control.redo_lsn));
        let scanned = scan(&*vfs, &wal_dir, oldest)?;
        let has_checkpoint = scanned.records.iter().any(|r| {
            r.lsn == control.checkpoint_lsn
                && matches!(r.body, Body::Checkpoint { redo_lsn, .. } if redo_lsn == control.redo_lsn)
        });
        if !has_checkpoint {
            return Err(Error::corrupt(
                Location {
                    offset: Some(control.checkpoint_lsn),
                    ..Location::file(WAL_DIR)
                },
                CorruptionKind::Invalid(
                    "the checkpoint record named by the control file is missing".into(),
                ),
            ));
        }
        check_heap_lengths(&*vfs, dir, &control, &scanned.records)?;
        let poison = Arc::new(Poison::default());
        // The WAL is attached after redo; until then appends are impossible.
        let wal = Wal::new(
            vfs.clone(),
            &wal_dir,
            scanned.end_lsn,
            scanned.end_file_start,
            false,
            control.redo_lsn,
            opts.wal_file_bytes,
            poison.clone(),
        );
        let mut node = Self::assemble(
            datadir,
            opts,
            wal,
            Clog::from_bytes(control.clog.clone()),
            poison,
            control.catalog.clone(),
            control.next_xid,
            control.next_table,
        );
        for t in &control.catalog.tables {
            node.register_table(t.clone());
            for seg in control.catalog.contents() {
                node.open_part(seg, t.id, false)?;
            }
        }
        let mut report = RecoveryReport::default();
        for rec in scanned.records.iter().filter(|r| r.lsn >= control.redo_lsn) {
            node.redo(rec, &mut report)?;
        }
        if let Some(cut) = &scanned.cut {
            node.cut_wal(&scanned, cut)?;
            log::warn!(
                "WAL ends at an invalid record at LSN {} ({}); cut {} bytes",
                cut.lsn,
                cut.reason,
                cut.bytes_discarded
            );
            report.cut = Some((cut.lsn, cut.reason.clone()));
        }
        report.aborted_in_flight = node.clog.abort_in_progress(node.txns.next_xid());
        let index_start = std::time::Instant::now();
        for (table, part) in node.all_parts() {
            let h = &part.heap;
            for (block, e) in h.build_fsm() {
                log::error!(
                    "{}: block {block} unreadable after recovery: {e}",
                    h.rel_path().display()
                );
                report.unreadable_blocks.push(e.to_string());
            }
            if node.load_vm(&table, &part)? {
                report.vm_rebuilt += 1;
            }
            report.index_entries +=
                node.rebuild_index(&table, &part, &mut report.damaged_indexes)?;
        }
        report.index_rebuild_us = index_start.elapsed().as_micros() as u64;
        node.recovery = report;
        // End-of-recovery checkpoint: makes the recovered state the new starting point.
        node.checkpoint()?;
        node.remove_orphan_files()?;
        node.datadir.end_create()?;
        let node = Arc::new(node);
        node.start_flusher();
        Ok(node)
    }

    fn start_flusher(self: &Arc<Self>) {
        let SyncPolicy::Batched { delay_us_max } = self.opts.sync else {
            return;
        };
        let weak = Arc::downgrade(self);
        let stop = self.stop_flusher.clone();
        let period = std::time::Duration::from_micros(delay_us_max.max(100));
        let handle = std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(period);
                let Some(node) = weak.upgrade() else { return };
                if let Err(e) = node.wal.flush_all() {
                    log::error!("background WAL flush failed: {e}");
                    return;
                }
            }
        });
        *self.flusher.lock() = Some(handle);
    }

    fn cut_wal(&self, scanned: &crate::wal::scan::Scan, cut: &crate::wal::scan::Cut) -> Result<()> {
        let wal_dir = self.dir.join(WAL_DIR);
        for (i, f) in scanned.files.iter().enumerate().skip(cut.file_index) {
            let path = wal_dir.join(&f.name);
            if i == cut.file_index && cut.lsn > f.start {
                let file = self.vfs.open(&path, false).map_err(io("open", &path))?;
                file.set_len(cut.lsn - f.start)
                    .map_err(io("truncate", &path))?;
                file.sync().map_err(io("fsync", &path))?;
            } else {
                self.vfs.remove_file(&path).map_err(io("remove", &path))?;
            }
        }
        self.vfs
            .sync_dir(&wal_dir)
            .map_err(io("fsync dir", &wal_dir))
    }

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

    /// The WAL (for statistics and benchmarks).
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// The commit log.
    pub fn clog(&self) -> &Clog {
        &self.clog
    }

    /// The options the node runs with.
    pub fn options(&self) -> &NodeOptions {
        &self.opts
    }

    /// The I/O seam.
    pub fn vfs(&self) -> &Arc<dyn Vfs> {
        &self.vfs
    }

    /// The transaction manager (running transactions, snapshots, lock waits).
    pub fn txn_manager(&self) -> &TxnManager {
        &self.txns
    }

    /// Arms the failpoint `name` (one of [`crate::failpoint::FAILPOINTS`]) to fire
    /// `action` at its `skip + 1`-th hit.
    pub fn arm_failpoint(
        &self,
        name: &str,
        action: crate::failpoint::FailAction,
        skip: u64,
    ) -> Result<()> {
        self.failpoints.arm(name, action, skip)
    }

    /// Disarms every failpoint.
    pub fn clear_failpoints(&self) {
        self.failpoints.clear();
    }

    /// Passes the failpoint `name`: fails if it is armed and due (poisoning the node for
    /// a simulated crash).
    pub(crate) fn failpoint(&self, name: &'static str) -> Result<()> {
        match self.failpoints.hit(name) {
            None => Ok(()),
            Some(action) => {
                let e = Error::Failpoint(name.to_string());
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

    // ----- segments and tables -------------------------------------------------------

    /// Adds an empty segment (content id one past the highest) with a heap and a VM file
    /// for every table, registered in the segment configuration; returns its content id.
    /// Tables keep their layouts: rows reach the new segment only by redistribution.
    pub fn add_new_segment(&self) -> Result<u16> {
        let content = {
            let cat = self.catalog.read();
            let next = cat
                .segments
                .iter()
                .map(|s| s.content + 1)
                .max()
                .unwrap_or(0);
            if next >= SEGMENTS_MAX {
                return Err(Error::InvalidArgument(format!(
                    "a node holds at most {SEGMENTS_MAX} segments"
                )));
            }
            next
        };
        let datadir = self
            .dir
            .join(segment_dir_name(content))
            .display()
            .to_string();
        self.add_segment(SegmentConfig::local(content, datadir))?;
        Ok(content)
    }

    fn add_segment(&self, config: SegmentConfig) -> Result<()> {
        self.log_ddl(&Body::CreateSegment {
            config: config.clone(),
        })?;
        self.poison_on_io(self.apply_create_segment(config))
    }

    /// A write path that failed on I/O leaves the node's files in an unknown state:
    /// poison, so nothing builds on it until recovery.
    pub(crate) fn poison_on_io<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e @ Error::Io { .. }) = &r {
            self.poison.set(e);
        }
        r
    }

    fn apply_create_segment(&self, config: SegmentConfig) -> Result<()> {
        let segment = config.content;
        let path = self.dir.join(segment_dir_name(segment));
        self.vfs.create_dir_all(&path).map_err(io("mkdir", &path))?;
        self.vfs
            .sync_dir(&self.dir)
            .map_err(io("fsync dir", &self.dir))?;
        let tables: Vec<u32> = {
            let mut cat = self.catalog.write();
            cat.put_segment(config);
            cat.tables.iter().map(|t| t.id).collect()
        };
        for t in tables {
            self.create_part_files(segment, t)?;
        }
        Ok(())
    }

    /// Creates a raw table (no columns: payloads are opaque bytes, placed by the caller on
    /// any segment) with a heap and a VM file in every segment; returns its id. The
    /// storage-level tests use raw tables; applications use [`Node::create_table`].
    pub fn create_raw_table(&self, name: &str) -> Result<u32> {
        let segments = self.segments().len() as u16;
        self.create_table_def(TableDef {
            id: 0,
            name: name.to_string(),
            columns: Vec::new(),
            layout: crate::catalog::Layout {
                key: Vec::new(),
                segments,
                placement: crate::catalog::hash::Placement::Jump,
            },
            layout_version: 1,
            migration_bit: false,
            redistribution: None,
            epoch: 0,
        })
    }

    /// Logs and applies a new table definition (its id is assigned here); returns the id.
    pub(crate) fn create_table_def(&self, mut def: TableDef) -> Result<u32> {
        let name = &def.name;
        if name.is_empty() || name.len() > crate::catalog::NAME_BYTES_MAX {
            return Err(Error::InvalidArgument(format!(
                "table name must be 1..={} bytes, got {name:?}",
                crate::catalog::NAME_BYTES_MAX
            )));
        }
        self.poison.check()?;
        let _gate = self.commit_gate.read();
        // Name check and id assignment under the catalog lock, so two creators of one
        // name cannot both pass.
        let mut cat = self.catalog.write();
        if cat.table_by_name(name).is_some() {
            return Err(Error::TableExists(name.clone()));
        }
        def.id = self.next_table.fetch_add(1, Ordering::AcqRel);
        let lsn = self
            .wal
            .append(0, &Body::CreateTable { def: def.clone() })?;
        self.wal.flush_through(lsn)?;
        cat.put_table(def.clone());
        drop(cat);
        let id = def.id;
        self.poison_on_io(self.apply_create_table(def))?;
        Ok(id)
    }

    fn apply_create_table(&self, def: TableDef) -> Result<()> {
        let id = def.id;
        let segments = {
            let mut cat = self.catalog.write();
            cat.put_table(def.clone());
            cat.contents()
        };
        self.register_table(def);
        for s in segments {
            self.create_part_files(s, id)?;
        }
        Ok(())
    }

    fn register_table(&self, def: TableDef) {
        let id = def.id;
        let mut map = self.tables_rt.write();
        match map.get(&id) {
            Some(rt) => *rt.def.write() = Arc::new(def),
            None => {
                map.insert(
                    id,
                    Arc::new(TableRt {
                        id,
                        def: RwLock::new(Arc::new(def)),
                        ddl: RwLock::new(()),
                        pin: RwLock::new(()),
                        closing: AtomicBool::new(false),
                        gate_mx: Mutex::new(()),
                        gate_cv: Condvar::new(),
                        dropped: AtomicBool::new(false),
                        parts: RwLock::new(HashMap::new()),
                    }),
                );
            }
        }
    }

    fn create_part_files(&self, segment: u16, table: u32) -> Result<()> {
        if self.part(segment, table).is_ok() {
            return Ok(());
        }
        let seg_dir = self.dir.join(segment_dir_name(segment));
        let part = self.open_part(segment, table, true)?;
        let vm_path = seg_dir.join(crate::storage::vm::vm_file_name(table));
        let bytes = part.vm.lock().vm.encode(segment, table);
        replace_file(&*self.vfs, &vm_path, &bytes)?;
        self.vfs
            .sync_dir(&seg_dir)
            .map_err(io("fsync dir", &seg_dir))
    }

    fn open_part(&self, segment: u16, table: u32, create: bool) -> Result<Arc<Part>> {
        let rt = self.table_rt(table)?;
        let heap = Arc::new(Heap::open(
            &*self.vfs,
            &self.dir,
            segment,
            table,
            create,
            self.opts.cache_pages_max,
        )?);
        let def = rt.def.read().clone();
        let part = Arc::new(Part {
            heap,
            indexes: RwLock::new(Vec::new()),
            vm: Mutex::new(VmState {
                vm: VisibilityMap {
                    epoch: def.epoch,
                    ..VisibilityMap::default()
                },
                dirty: false,
            }),
        });
        part.set_index_keys(&def.index_keys());
        rt.parts.write().insert(segment, part.clone());
        Ok(part)
    }

    pub(crate) fn table_rt(&self, table: u32) -> Result<Arc<TableRt>> {
        self.tables_rt
            .read()
            .get(&table)
            .cloned()
            .ok_or_else(|| Error::InvalidArgument(format!("no table with id {table}")))
    }

    pub(crate) fn table_rt_by_name(&self, name: &str) -> Result<Arc<TableRt>> {
        let id = self
            .table_id(name)
            .ok_or_else(|| Error::NoSuchTable(name.to_string()))?;
        self.table_rt(id)
    }

    /// Table `table` on `segment`.
    pub fn part(&self, segment: u16, table: u32) -> Result<Arc<Part>> {
        self.table_rt(table)?
            .parts
            .read()
            .get(&segment)
            .cloned()
            .ok_or_else(|| Error::InvalidArgument(format!("no table {table} on segment {segment}")))
    }

    /// The heap of `table` on `segment`.
    pub fn heap(&self, segment: u16, table: u32) -> Result<Arc<Heap>> {
        Ok(self.part(segment, table)?.heap.clone())
    }

    /// Every (table, part) of the node.
    pub(crate) fn all_parts(&self) -> Vec<(Arc<TableRt>, Arc<Part>)> {
        let tables: Vec<Arc<TableRt>> = self.tables_rt.read().values().cloned().collect();
        let mut out = Vec::new();
        for t in tables {
            let parts: Vec<Arc<Part>> = t.parts.read().values().cloned().collect();
            out.extend(parts.into_iter().map(|p| (t.clone(), p)));
        }
        out
    }

    /// Loads the VM of a part, rebuilding it when missing or corrupt. True if rebuilt.
    fn load_vm(&self, table: &TableRt, part: &Part) -> Result<bool> {
        let heap = &part.heap;
        let (seg, id) = (heap.segment(), heap.table());
        let rel = Path::new(&segment_dir_name(seg)).join(crate::storage::vm::vm_file_name(id));
        let path = self.dir.join(&rel);
        let loaded = match self.vfs.open(&path, false) {
            Ok(f) => {
                let bytes = read_all(&*f).map_err(io("read", &path))?;
                VisibilityMap::decode(&bytes, seg, id).map_err(|k| k.to_string())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("file missing".to_string()),
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let def = table.def.read().clone();
        let loaded = loaded.and_then(|vm| {
            if vm.epoch == def.epoch {
                Ok(vm)
            } else {
                Err(format!(
                    "epoch {} is not the table's {} (a redistribution started or was \
                     cancelled after it was written)",
                    vm.epoch, def.epoch
                ))
            }
        });
        let (vm, rebuilt) = match loaded {
            Ok(vm) => (vm, false),
            Err(why) => {
                // A bit means "no live tuple carries the old bit": the complement of the
                // bit new versions get (format.md).
                let old_bit = !def.write_layout().1;
                let pages: Vec<Page> = (0..heap.nblocks())
                    .filter_map(|b| heap.page(b).ok().map(|p| p.page.read().clone()))
                    .collect();
                let vm = VisibilityMap::rebuild(&pages, old_bit, def.epoch, |h| self.is_live(h));
                log::warn!(
                    "{}: {why}; rebuilt from the heap ({} blocks)",
                    rel.display(),
                    pages.len()
                );
                (vm, true)
            }
        };
        *part.vm.lock() = VmState { vm, dirty: rebuilt };
        Ok(rebuilt)
    }

    /// Rebuilds a part's key indexes (one per key of `TableDef::index_keys`) from its
    /// heap; returns the entries added. A part whose heap could not be indexed whole is
    /// added to `damaged` (see [`Node::build_indexes`]).
    fn rebuild_index(
        &self,
        table: &TableRt,
        part: &Part,
        damaged: &mut Vec<String>,
    ) -> Result<usize> {
        let def = table.def.read().clone();
        part.indexes.write().clear();
        let ixs = part.set_index_keys(&def.index_keys());
        let (n, e) = self.build_indexes(&def, part, &ixs);
        damaged.extend(e.map(|e| e.to_string()));
        Ok(n)
    }

    /// Fills the (new, empty) indexes `ixs` from every tuple of `part`'s heap; returns
    /// the entries added, and the error that stopped the build if one did.
    ///
    /// An index must never silently miss a version: if a block cannot be read, or a tuple
    /// does not decode (its header, or its row — then its key is unknown), the indexes
    /// are marked damaged ([`KeyIndex::mark_damaged`]) and lookups on them read the whole
    /// segment instead, which reports the corruption. The node still opens: other
    /// segments and tables stay usable (`docs/ARCHITECTURE.md`, "A tuple that does not
    /// decode").
    pub(crate) fn build_indexes(
        &self,
        def: &TableDef,
        part: &Part,
        ixs: &[Arc<KeyedIndex>],
    ) -> (usize, Option<Error>) {
        if ixs.is_empty() {
            return (0, None);
        }
        // The indexes are new and empty, and no writer adds to them yet (open, or a
        // redistribution's start with DML held), so they are filled in place.
        let before: Vec<usize> = ixs.iter().map(|ix| ix.map.len()).collect();
        let mut row = Vec::new();
        let heap = &part.heap;
        let built = heapwalk::for_each(heap, |t| {
            heapwalk::decode_row(heap, t, def.column_types(), &mut row)?;
            for ix in ixs {
                ix.map.insert(def.key_hash(&ix.key, &row), t.tid);
            }
            Ok(ControlFlow::Continue(()))
        });
        if let Err(e) = &built {
            log::error!(
                "{}: key index not built from every tuple ({e}); lookups on segment {} of \
                 table {:?} read the whole segment",
                heap.rel_path().display(),
                heap.segment(),
                def.name
            );
            for ix in ixs {
                ix.map.mark_damaged(e.to_string());
            }
        }
        let n = ixs
            .iter()
            .zip(before)
            .map(|(ix, b)| ix.map.len().saturating_sub(b))
            .sum();
        (n, built.err())
    }

    /// Deletes a retired segment's files — only the names the engine makes there — and
    /// its directory when that left it empty (anything else stays, with a warning).
    pub(crate) fn remove_segment_dir(&self, content: u16) -> Result<()> {
        let seg_dir = self.dir.join(segment_dir_name(content));
        let mut left = Vec::new();
        for name in self.vfs.list_dir(&seg_dir).map_err(io("list", &seg_dir))? {
            if crate::datadir::parse_part_file(&name).is_some() {
                let path = seg_dir.join(&name);
                self.vfs.remove_file(&path).map_err(io("remove", &path))?;
            } else {
                left.push(name);
            }
        }
        self.vfs
            .sync_dir(&seg_dir)
            .map_err(io("fsync dir", &seg_dir))?;
        if !left.is_empty() {
            log::warn!(
                "{}: kept (segment {content} is not in this node's configuration, but the \
                 directory holds files segexpand did not make: {})",
                seg_dir.display(),
                left.join(", ")
            );
            return Ok(());
        }
        self.vfs
            .remove_dir(&seg_dir)
            .map_err(io("rmdir", &seg_dir))?;
        self.vfs
            .sync_dir(&self.dir)
            .map_err(io("fsync dir", &self.dir))
    }

    /// Removes heap and VM files of tables that are not in the catalog (left by a crash
    /// between a DROP's checkpoint and its file removal), and the files of segments that
    /// are not (a crash while retiring one). Only names the engine makes go, and for
    /// tables only ids it has handed out.
    fn remove_orphan_files(&self) -> Result<()> {
        let contents = self.segments();
        for name in self
            .vfs
            .list_dir(&self.dir)
            .map_err(io("list", &self.dir))?
        {
            let retired =
                crate::datadir::parse_segment_dir(&name).filter(|c| !contents.contains(c));
            if let Some(c) = retired {
                log::info!("removing the files of retired segment {c}");
                self.remove_segment_dir(c)?;
            }
        }
        let live: std::collections::HashSet<u32> =
            self.catalog.read().tables.iter().map(|t| t.id).collect();
        let next_table = self.next_table.load(Ordering::Acquire);
        for seg in self.segments() {
            let seg_dir = self.dir.join(segment_dir_name(seg));
            let mut removed = false;
            for name in self.vfs.list_dir(&seg_dir).map_err(io("list", &seg_dir))? {
                let id = crate::datadir::parse_part_file(&name);
                if let Some(id) = id.filter(|id| !live.contains(id) && *id < next_table) {
                    log::info!("removing {name} of dropped table {id} from segment {seg}");
                    let path = seg_dir.join(&name);
                    self.vfs.remove_file(&path).map_err(io("remove", &path))?;
                    removed = true;
                }
            }
            if removed {
                self.vfs
                    .sync_dir(&seg_dir)
                    .map_err(io("fsync dir", &seg_dir))?;
            }
        }
        Ok(())
    }

    /// Installs a new definition of an existing table (a redistribution transition) in
    /// the catalog and the run-time map.
    pub(crate) fn apply_put_table(&self, def: TableDef) {
        self.catalog.write().put_table(def.clone());
        self.register_table(def);
    }

    /// Removes a segment from the segment configuration and every table's parts (its
    /// files stay until the next checkpoint has recorded the catalog without it).
    pub(crate) fn apply_retire_segment(&self, content: u16) {
        self.catalog
            .write()
            .segments
            .retain(|s| s.content != content);
        for rt in self.tables_rt.read().values() {
            rt.parts.write().remove(&content);
        }
    }

    /// Removes a table from the catalog and the run-time maps (files stay until the
    /// next checkpoint has recorded the catalog without it).
    pub(crate) fn apply_drop_table(&self, table: u32) {
        self.catalog.write().tables.retain(|t| t.id != table);
        self.tables_rt.write().remove(&table);
    }

    /// Empties every heap of a table and resets its VMs and indexes. The caller holds the
    /// checkpoint lock (or is recovery), so no checkpoint writes a page of the old contents
    /// after the truncation.
    pub(crate) fn apply_truncate_table(&self, table: u32) -> Result<()> {
        let rt = self.table_rt(table)?;
        let epoch = rt.def.read().epoch;
        let parts: Vec<Arc<Part>> = rt.parts.read().values().cloned().collect();
        for part in parts {
            part.heap.truncate()?;
            for ix in part.indexes.read().iter() {
                ix.map.clear();
            }
            *part.vm.lock() = VmState {
                vm: VisibilityMap {
                    epoch,
                    ..VisibilityMap::default()
                },
                dirty: true,
            };
        }
        Ok(())
    }

    // ----- redo ----------------------------------------------------------------------

    fn redo(&self, rec: &Record, report: &mut RecoveryReport) -> Result<()> {
        if rec.xid > 0 {
            self.txns.advance_next_xid(rec.xid + 1);
        }
        report.records_replayed += 1;
        match &rec.body {
            Body::Commit => self.clog.set(rec.xid, XidStatus::Committed),
            Body::Abort => self.clog.set(rec.xid, XidStatus::Aborted),
            Body::Checkpoint {
                next_xid,
                next_table,
                ..
            } => {
                self.txns.advance_next_xid(*next_xid);
                self.next_table.fetch_max(*next_table, Ordering::AcqRel);
            }
            Body::CreateSegment { config } => self.apply_create_segment(config.clone())?,
            Body::CreateTable { def } => {
                self.next_table.fetch_max(def.id + 1, Ordering::AcqRel);
                self.apply_create_table(def.clone())?;
            }
            Body::DropTable { table } => self.apply_drop_table(*table),
            Body::TruncateTable { table } => self.apply_truncate_table(*table)?,
            Body::PutTable { def } => self.apply_put_table(def.clone()),
            Body::RetireSegment { content } => self.apply_retire_segment(*content),
            Body::HeapSetBit { page, bit, slots } => {
                self.redo_on_page(rec, page, |p| set_bits_in_place(p, *bit, slots))?;
            }
            Body::PageImage {
                page,
                hole_offset,
                hole_len,
                image,
            } => {
                let heap = self.heap(page.segment, page.table)?;
                let mut p = Page::from_image(*hole_offset, *hole_len, image, (*page).into())
                    .map_err(|k| Error::corrupt(redo_location(rec, page), k))?;
                p.set_lsn(rec.lsn);
                heap.install(p);
                report.page_images += 1;
            }
            Body::HeapInsert { page, slot, tuple } => {
                self.redo_on_page(rec, page, |p| p.insert_at(*slot, tuple))?;
            }
            Body::HeapSetXmax {
                page,
                slot,
                xmax,
                cmax,
                flags,
                next,
            } => {
                self.redo_on_page(rec, page, |p| {
                    set_xmax_in_place(p, *slot, *xmax, *cmax, *flags, *next)
                })?;
            }
        }
        Ok(())
    }

    fn redo_on_page(
        &self,
        rec: &Record,
        page: &PageRef,
        apply: impl FnOnce(&mut Page) -> bool,
    ) -> Result<()> {
        let heap = self.heap(page.segment, page.table)?;
        let cp = heap.page(page.block).map_err(|e| match e {
            Error::NoSuchBlock { .. } => Error::corrupt(
                redo_location(rec, page),
                CorruptionKind::Invalid("record for a block with no page image".into()),
            ),
            e => e,
        })?;
        let mut p = cp.page.write();
        if p.lsn() >= rec.lsn {
            return Ok(());
        }
        if !apply(&mut p) {
            return Err(Error::corrupt(
                redo_location(rec, page),
                CorruptionKind::Invalid(format!(
                    "redo of record at LSN {} does not apply",
                    rec.lsn
                )),
            ));
        }
        p.set_lsn(rec.lsn);
        cp.mark_dirty();
        heap.set_free(page.block, p.free_space());
        Ok(())
    }

    // ----- transactions and tuples -----------------------------------------------------

    /// Starts a storage-level transaction; returns its id. Applications use
    /// [`Node::begin`], which wraps this in a [`crate::Txn`].
    pub fn begin_xid(&self) -> Result<u64> {
        self.poison.check()?;
        if self.txns.next_xid() >= crate::txn::clog::XID_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "transaction ids are exhausted (the commit log holds {} of them)",
                crate::txn::clog::XID_LIMIT
            )));
        }
        Ok(self.txns.begin())
    }

    /// The status of a transaction.
    pub fn xid_status(&self, xid: u64) -> XidStatus {
        self.clog.get(xid)
    }

    /// Whether a tuple version is live for "latest committed state" readers: inserted by a
    /// committed transaction and not deleted by one.
    pub fn is_live(&self, h: &TupleHeader) -> bool {
        self.clog.get(h.xmin) == XidStatus::Committed
            && (h.xmax == 0
                || h.flags & crate::storage::tuple::FLAG_LOCK_ONLY != 0
                || self.clog.get(h.xmax) != XidStatus::Committed)
    }

    /// Inserts a tuple version by `xid` (command `cid`) into `table` on `segment`. For a
    /// table with columns, `payload` must be an encoded row ([`crate::catalog::types::encode_row`]).
    pub fn insert(
        &self,
        xid: u64,
        cid: u32,
        segment: u16,
        table: u32,
        migration_bit: bool,
        payload: &[u8],
    ) -> Result<Tid> {
        let part = self.part(segment, table)?;
        let def = self.table_rt(table)?.def.read().clone();
        let row = if def.columns.is_empty() {
            None
        } else {
            Some(
                crate::catalog::types::decode_row(def.column_types(), payload).ok_or_else(|| {
                    Error::InvalidArgument(format!("payload is not a row of table {:?}", def.name))
                })?,
            )
        };
        let natts = def.columns.len() as u16;
        let index = row.as_deref().map(|r| (&*def, r));
        self.insert_tuple(xid, cid, &part, migration_bit, natts, payload, index)
    }

    /// Inserts a tuple into `part` and, given the row it encodes, adds it to the part's
    /// key indexes.
    #[expect(clippy::too_many_arguments, reason = "one tuple's every header field")]
    pub(crate) fn insert_tuple(
        &self,
        xid: u64,
        cid: u32,
        part: &Part,
        migration_bit: bool,
        natts: u16,
        payload: &[u8],
        index: Option<(&TableDef, &[crate::catalog::types::Value])>,
    ) -> Result<Tid> {
        let header = TupleHeader {
            natts,
            ..TupleHeader::new(xid, cid, migration_bit)
        };
        let tuple = build_tuple(&header, payload);
        if tuple.len() > TUPLE_BYTES_MAX {
            return Err(Error::TupleTooLarge {
                len: tuple.len(),
                max: TUPLE_BYTES_MAX,
            });
        }
        self.poison.check()?;
        let heap = &part.heap;
        let (segment, table) = (heap.segment(), heap.table());
        loop {
            let block = heap.block_for_insert(tuple.len());
            let cp = heap.page(block)?;
            let mut p = cp.page.write();
            let before = p.lsn();
            let Some(slot) = p.insert(&tuple) else {
                heap.set_free(block, p.free_space());
                continue;
            };
            let page = PageRef {
                segment,
                table,
                block,
            };
            let lsn = self.wal.append_page(xid, before, |full| {
                if full {
                    image_body(page, &p)
                } else {
                    Body::HeapInsert {
                        page,
                        slot,
                        tuple: tuple.clone(),
                    }
                }
            })?;
            p.set_lsn(lsn);
            cp.mark_dirty();
            heap.set_free(block, p.free_space());
            drop(p);
            let tid = Tid { block, slot };
            if let Some((def, row)) = index {
                part.index_row(def, row, tid);
            }
            return Ok(tid);
        }
    }

    /// Sets `xmax`/`cmax`/`flags` of a tuple version (delete or lock) without waiting:
    /// fails if another transaction holds the tuple. Applications use [`crate::Txn`],
    /// which waits for row locks.
    pub fn set_xmax(
        &self,
        xid: u64,
        cid: u32,
        segment: u16,
        table: u32,
        tid: Tid,
        flags_set: u16,
    ) -> Result<()> {
        let part = self.part(segment, table)?;
        match self.claim_version(xid, cid, &part, tid, flags_set, None)? {
            Claim::Claimed => Ok(()),
            Claim::Busy(holder) => Err(Error::RowLocked {
                row: format!("{tid:?} of table {table} on segment {segment}"),
                holder,
            }),
            Claim::Ended { .. } => Err(Error::InvalidArgument(format!(
                "tuple {tid:?} is already deleted or updated"
            ))),
        }
    }

    /// Sets xmax = `xid` (cmax `cid`; `flags` among UPDATED / LOCK_ONLY / MOVED replace
    /// the old ones) on the tuple version at `tid`, in one logged step under the page lock.
    ///
    /// With `link: None` this *claims* the version: only if no running transaction holds
    /// it and no committed one ended it; otherwise it reports who does. With
    /// `link: Some(next)` it is an update's second step on a version `xid` already
    /// claimed: pointing it at its new version.
    pub(crate) fn claim_version(
        &self,
        xid: u64,
        cid: u32,
        part: &Part,
        tid: Tid,
        flags: u16,
        link: Option<NextVersion>,
    ) -> Result<Claim> {
        use crate::storage::tuple::{FLAG_LOCK_ONLY, FLAG_MOVED, FLAG_UPDATED};
        self.poison.check()?;
        let heap = &part.heap;
        let cp = heap.page(tid.block)?;
        let mut p = cp.page.write();
        let h = heapwalk::tuple_at(heap, &p, tid.slot)?
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "no tuple at {tid:?} of table {} segment {}",
                    heap.table(),
                    heap.segment()
                ))
            })?
            .header;
        if link.is_some() {
            assert_eq!(h.xmax, xid, "linking {tid:?}, which {xid} has not claimed");
        } else {
            let lock_only = h.flags & FLAG_LOCK_ONLY != 0;
            // Order matters: a transaction records its final status in the commit log
            // *before* it leaves the running set, so "still running?" is asked first and
            // the status read only after a "no" — it is final then. Read the other way
            // round, a holder that aborts between the two reads looks ended by a
            // committed transaction, and an UPDATE would skip the row as deleted: a lost
            // update (found reading the code; PostgreSQL asks in the same order).
            let ended_by_commit = if h.xmax == 0 {
                false
            } else if h.xmax == xid {
                !lock_only // our own update or delete; our own row lock is ours to take
            } else if self.txns.is_running(h.xmax) {
                return Ok(Claim::Busy(h.xmax));
            } else {
                // Aborted (or ended without a status, which only an aborted one can):
                // its claim never happened. A row lock ends with its holder.
                !lock_only && self.clog.get(h.xmax) == XidStatus::Committed
            };
            if ended_by_commit {
                return Ok(Claim::Ended {
                    next: h.next,
                    xmax: h.xmax,
                });
            }
        }
        let flags = (h.flags & !(FLAG_UPDATED | FLAG_LOCK_ONLY | FLAG_MOVED)) | flags;
        let before = p.lsn();
        if !set_xmax_in_place(&mut p, tid.slot, xid, cid, flags, link) {
            return Err(Error::InvalidArgument(format!("no tuple at {tid:?}")));
        }
        let page = PageRef {
            segment: heap.segment(),
            table: heap.table(),
            block: tid.block,
        };
        let lsn = self.wal.append_page(xid, before, |full| {
            if full {
                image_body(page, &p)
            } else {
                Body::HeapSetXmax {
                    page,
                    slot: tid.slot,
                    xmax: xid,
                    cmax: cid,
                    flags,
                    next: link,
                }
            }
        })?;
        p.set_lsn(lsn);
        cp.mark_dirty();
        Ok(Claim::Claimed)
    }

    /// Commits `xid`. Under [`SyncPolicy::EveryCommit`] it returns once the commit
    /// record is durable (sharing an fsync with concurrent commits). If the commit cannot
    /// be made durable the transaction is not committed (and the node is poisoned).
    pub fn commit_xid(&self, xid: u64) -> Result<()> {
        let r = self.commit_inner(xid);
        if r.is_err() {
            // Not durable, so not committed: waiters must see it end (as aborted).
            self.clog.set(xid, XidStatus::Aborted);
        }
        self.txns.end(xid);
        r?;
        self.maybe_checkpoint()
    }

    fn commit_inner(&self, xid: u64) -> Result<()> {
        let _gate = self.commit_gate.read();
        let lsn = self.wal.append(xid, &Body::Commit)?;
        if self.opts.sync == SyncPolicy::EveryCommit {
            let siblings = self.txns.running_count().saturating_sub(1) as u64;
            self.wal.flush_through_grouped(lsn, siblings)?;
        }
        self.clog.set(xid, XidStatus::Committed);
        Ok(())
    }

    /// Aborts `xid`: its changes stay on the pages but are never visible. The abort is
    /// recorded in memory even if its WAL record cannot be written (recovery aborts
    /// every transaction without a commit record anyway).
    pub fn abort_xid(&self, xid: u64) -> Result<()> {
        let r = {
            let _gate = self.commit_gate.read();
            self.wal.append(xid, &Body::Abort)
        };
        self.clog.set(xid, XidStatus::Aborted);
        self.txns.end(xid);
        r.map(|_| ())
    }

    fn maybe_checkpoint(&self) -> Result<()> {
        if self.wal.insert_lsn().saturating_sub(self.wal.redo_lsn())
            > self.opts.checkpoint_wal_bytes
        {
            if let Some(_guard) = self.checkpoint_lock.try_lock() {
                drop(_guard);
                self.checkpoint()?;
            }
        }
        Ok(())
    }

    /// Reads the tuple at `tid`: header and payload, whatever its visibility; `None` for
    /// an unused slot. A tuple that does not decode is [`Error::Corruption`].
    pub fn read_tuple(
        &self,
        segment: u16,
        table: u32,
        tid: Tid,
    ) -> Result<Option<(TupleHeader, Vec<u8>)>> {
        let heap = self.heap(segment, table)?;
        let cp = heap.page(tid.block)?;
        let p = cp.page.read();
        Ok(heapwalk::tuple_at(&heap, &p, tid.slot)?.map(|t| (t.header, t.payload.to_vec())))
    }

    /// Calls `f` for every tuple version of `table` on `segment` (header and payload), in
    /// block order. Stops at the first error: an unreadable page, or a tuple that does
    /// not decode ([`crate::storage::heapwalk`]).
    pub fn for_each_tuple(
        &self,
        segment: u16,
        table: u32,
        mut f: impl FnMut(Tid, &TupleHeader, &[u8]),
    ) -> Result<()> {
        let heap = self.heap(segment, table)?;
        heapwalk::for_each(&heap, |t| {
            f(t.tid, &t.header, t.payload);
            Ok(ControlFlow::Continue(()))
        })
    }

    /// The payloads of all live tuples of `table` on `segment` (latest committed state).
    pub fn scan_committed(&self, segment: u16, table: u32) -> Result<Vec<(Tid, Vec<u8>)>> {
        let mut out = Vec::new();
        self.for_each_tuple(segment, table, |tid, h, payload| {
            if self.is_live(h) {
                out.push((tid, payload.to_vec()));
            }
        })?;
        Ok(out)
    }

    /// Removes from `table` on `segment` every tuple version no transaction can see any
    /// more: inserted by an aborted transaction, or deleted by a committed one below
    /// `horizon_xid`. Each pruned page is logged as a page image; index entries of the
    /// removed versions go too. A tuple that does not decode (header, or the row of a
    /// removed version) stops it with [`Error::Corruption`]; pages pruned before stay
    /// pruned.
    pub fn prune(&self, segment: u16, table: u32, horizon_xid: u64) -> Result<PruneStats> {
        self.poison.check()?;
        let rt = self.table_rt(table)?;
        let def = rt.def.read().clone();
        let part = self.part(segment, table)?;
        let heap = &part.heap;
        // Rows are needed to find the removed versions' index entries (tables with
        // columns; a raw table has no index).
        let typed = !def.columns.is_empty();
        let mut stats = PruneStats::default();
        for block in 0..heap.nblocks() {
            let cp = heap.page(block)?;
            let mut p = cp.page.write();
            stats.pages_scanned += 1;
            let mut dead: Vec<u16> = Vec::new();
            let mut dead_rows: Vec<(Tid, crate::table::Row)> = Vec::new();
            for t in heapwalk::tuples(heap, &p) {
                let t = t?;
                let h = &t.header;
                let removable = self.clog.get(h.xmin) == XidStatus::Aborted
                    || (h.xmax != 0
                        && h.xmax < horizon_xid
                        && h.flags & crate::storage::tuple::FLAG_LOCK_ONLY == 0
                        && self.clog.get(h.xmax) == XidStatus::Committed);
                if !removable {
                    continue;
                }
                dead.push(t.tid.slot);
                if typed {
                    let mut row = Vec::new();
                    heapwalk::decode_row(heap, &t, def.column_types(), &mut row)?;
                    dead_rows.push((t.tid, row));
                }
            }
            if dead.is_empty() {
                continue;
            }
            let before = p.lsn();
            stats.bytes_freed += p.prune(&dead) as u64;
            stats.versions_removed += dead.len() as u64;
            stats.pages_pruned += 1;
            let page = PageRef {
                segment,
                table,
                block,
            };
            let lsn = self.wal.append_page(0, before, |_| image_body(page, &p))?;
            p.set_lsn(lsn);
            cp.mark_dirty();
            heap.set_free(block, p.free_space());
            drop(p);
            // The index set is read, and the indexes changed, only after the page lock is
            // released: lookups hold the index set and an index while they read pages
            // (lock order: index set, key index, heap page). Taking the set under the
            // page lock deadlocked with a lookup and a writer queued on the set.
            if !dead_rows.is_empty() {
                let indexes: Vec<Arc<KeyedIndex>> = part.indexes.read().clone();
                for ix in &indexes {
                    for (tid, row) in &dead_rows {
                        ix.map.remove(def.key_hash(&ix.key, row), *tid);
                    }
                }
            }
        }
        Ok(stats)
    }

    // ----- checkpoint and close --------------------------------------------------------

    /// Writes every dirty page and VM file, records a checkpoint in the WAL, replaces the
    /// control file, and removes WAL files no longer needed.
    ///
    /// Order, and what a crash after each step leaves:
    /// 1. redo point taken, with the commit log and catalog as of that instant (no commit
    ///    is between its WAL record and its commit-log update then). Crash: nothing changed.
    /// 2. WAL synced; dirty pages written (each after the WAL covering it) and synced.
    ///    Crash: the old control file's redo point still covers every change.
    /// 3. VM files replaced (each atomically). Crash: VMs are hints, newer is fine.
    /// 4. Checkpoint record appended and synced. Crash: control still names the old one.
    /// 5. Control file replaced atomically. Crash after: the new checkpoint is in force.
    /// 6. WAL files wholly before the redo point removed. Crash: leftovers, removed later.
    pub fn checkpoint(&self) -> Result<CheckpointStats> {
        let r = self.checkpoint_inner();
        self.poison_on_io(r)
    }

    fn checkpoint_inner(&self) -> Result<CheckpointStats> {
        let _ck = self.checkpoint_lock.lock();
        self.poison.check()?;
        let (redo_lsn, clog, catalog, next_xid, next_table) = {
            let _gate = self.commit_gate.write();
            (
                self.wal.begin_checkpoint(),
                self.clog.to_bytes(),
                self.catalog.read().clone(),
                self.txns.next_xid(),
                self.next_table.load(Ordering::Acquire),
            )
        };
        self.wal.flush_all()?;
        let parts = self.all_parts();
        // Taken before the dirty pages are written: every block below each count is on
        // disk once this checkpoint completes (format.md, "Heap-length section").
        let heaps: Vec<HeapLen> = parts
            .iter()
            .map(|(_, p)| HeapLen {
                segment: p.heap.segment(),
                table: p.heap.table(),
                blocks: p.heap.nblocks(),
            })
            .collect();
        let mut pages_written = 0;
        for (_, part) in &parts {
            pages_written += part.heap.write_dirty(&self.wal, &self.poison)?;
            part.heap.sync(&self.poison)?;
        }
        self.write_vms(&parts)?;
        let ckpt_lsn = self.wal.append(
            0,
            &Body::Checkpoint {
                redo_lsn,
                next_xid,
                next_table,
            },
        )?;
        self.wal.flush_through(ckpt_lsn)?;
        let control = Control {
            state: NodeState::InProduction,
            checkpoint_lsn: ckpt_lsn,
            redo_lsn,
            next_xid,
            next_table,
            catalog,
            clog,
            heaps,
        };
        self.write_control(&control)?;
        let wal_files_removed = self.wal.remove_before(redo_lsn)?;
        Ok(CheckpointStats {
            redo_lsn,
            pages_written,
            wal_files_removed,
        })
    }

    fn write_control(&self, control: &Control) -> Result<()> {
        let res = replace_file(&*self.vfs, &self.dir.join(CONTROL_FILE), &control.encode());
        if let Err(e) = &res {
            self.poison.set(e);
        }
        res
    }

    fn write_vms(&self, parts: &[(Arc<TableRt>, Arc<Part>)]) -> Result<()> {
        // A VM bit is set after the commit of the mover batch that earned it, which
        // (under batched sync) may not be durable yet: make it so first.
        self.wal.flush_all()?;
        for (_, part) in parts {
            let (seg, table) = (part.heap.segment(), part.heap.table());
            let bytes = {
                let mut v = part.vm.lock();
                if !v.dirty {
                    continue;
                }
                v.dirty = false;
                v.vm.encode(seg, table)
            };
            let path = self
                .dir
                .join(segment_dir_name(seg))
                .join(crate::storage::vm::vm_file_name(table));
            if let Err(e) = replace_file(&*self.vfs, &path, &bytes) {
                self.poison.set(&e);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Shuts down cleanly: a final checkpoint marked as a clean shutdown.
    pub fn close(&self) -> Result<()> {
        self.stop_flusher.store(true, Ordering::Release);
        if let Some(h) = self.flusher.lock().take() {
            let _ = h.join();
        }
        self.checkpoint()?;
        // Mark the clean shutdown in the control file.
        let path = self.dir.join(CONTROL_FILE);
        let f = self.vfs.open(&path, false).map_err(io("open", &path))?;
        let bytes = read_all(&*f).map_err(io("read", &path))?;
        let mut control =
            Control::decode(&bytes).map_err(|k| Error::corrupt(Location::file(CONTROL_FILE), k))?;
        control.state = NodeState::ShutDown;
        self.write_control(&control)?;
        Ok(())
    }

    /// True once poisoned by a failed fsync.
    pub fn is_poisoned(&self) -> bool {
        self.poison.is_set()
    }

    /// The identity of a block (for tools).
    pub fn page_id(segment: u16, table: u32, block: u32) -> PageId {
        PageId {
            segment,
            table,
            block,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_flusher.store(true, Ordering::Release);
    }
}

fn check_segment_count(segments: u16) -> Result<()> {
    if segments == 0 || segments > SEGMENTS_MAX {
        return Err(Error::InvalidArgument(format!(
            "segment count {segments} out of range 1..={SEGMENTS_MAX}"
        )));
    }
    Ok(())
}

/// Refuses to open a node one of whose heap files is shorter than the last checkpoint
/// wrote it (and no truncate, drop or retirement since explains it): the rows of the
/// missing blocks would otherwise vanish without a word.
fn check_heap_lengths(
    vfs: &dyn Vfs,
    dir: &Path,
    control: &Control,
    records: &[Record],
) -> Result<()> {
    let since_redo = records
        .iter()
        .filter(|r| r.lsn >= control.redo_lsn)
        .map(|r| &r.body);
    for h in crate::catalog::control::heaps_to_check(&control.heaps, since_redo) {
        let rel =
            Path::new(&segment_dir_name(h.segment)).join(crate::storage::heap::heap_file_name(h.table));
        let path = dir.join(&rel);
        let location = Location {
            segment: Some(h.segment),
            table: Some(h.table),
            ..Location::file(&rel)
        };
        let found = match vfs.open_read(&path) {
            Ok(f) => f.len().map_err(io("stat", &path))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::corrupt(location, CorruptionKind::Missing))
            }
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let expected = u64::from(h.blocks) * crate::storage::page::PAGE_BYTES as u64;
        if found < expected {
            return Err(Error::corrupt(
                location,
                CorruptionKind::ShortFile {
                    expected_bytes: expected,
                    found_bytes: found,
                },
            ));
        }
    }
    Ok(())
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

fn redo_location(rec: &Record, page: &PageRef) -> Location {
    Location {
        segment: Some(page.segment),
        table: Some(page.table),
        block: Some(page.block),
        offset: Some(rec.lsn),
        ..Location::file(WAL_DIR)
    }
}

/// Sets the migration bit of the tuples in `slots` to `bit`; false if a slot is empty.
pub(crate) fn set_bits_in_place(p: &mut Page, bit: bool, slots: &[u16]) -> bool {
    for slot in slots {
        let Some(t) = p.tuple_mut(*slot) else {
            return false;
        };
        let Some(flags) = crate::catalog::codec::get_u16(t, FLAGS_OFF) else {
            return false;
        };
        let flags = if bit {
            flags | crate::storage::tuple::FLAG_MIGRATION
        } else {
            flags & !crate::storage::tuple::FLAG_MIGRATION
        };
        crate::catalog::codec::put_u16(t, FLAGS_OFF, flags);
    }
    true
}

/// Sets xmax, cmax, flags and the next-version pointer of the tuple in `slot`; false if
/// there is none.
fn set_xmax_in_place(
    p: &mut Page,
    slot: u16,
    xmax: u64,
    cmax: u32,
    flags: u16,
    next: Option<NextVersion>,
) -> bool {
    let Some(t) = p.tuple_mut(slot) else {
        return false;
    };
    if t.len() < crate::storage::tuple::TUPLE_HEADER_BYTES {
        return false;
    }
    crate::catalog::codec::put_u64(t, XMAX_OFF, xmax);
    crate::catalog::codec::put_u32(t, crate::storage::tuple::CMAX_OFF, cmax);
    crate::catalog::codec::put_u16(t, FLAGS_OFF, flags);
    let (seg, block, nslot) = match next {
        Some(n) => (n.segment, n.tid.block, n.tid.slot),
        None => (0, crate::storage::tuple::NO_NEXT_BLOCK, 0),
    };
    crate::catalog::codec::put_u32(t, crate::storage::tuple::NEXT_BLOCK_OFF, block);
    crate::catalog::codec::put_u16(t, crate::storage::tuple::NEXT_SLOT_OFF, nslot);
    crate::catalog::codec::put_u16(t, crate::storage::tuple::NEXT_SEGMENT_OFF, seg);
    true
}

/// What [`Node::claim_version`] found.
#[derive(Debug)]
pub(crate) enum Claim {
    /// Claimed.
    Claimed,
    /// A running transaction holds it.
    Busy(u64),
    /// A committed transaction (or this one) deleted or replaced it; `next` is the
    /// newer version, if any.
    Ended {
        /// Newer version.
        next: Option<NextVersion>,
        /// The transaction that ended it.
        xmax: u64,
    },
}

/// What pruning (vacuum) reclaimed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Pages looked at.
    pub pages_scanned: u64,
    /// Pages that had dead versions.
    pub pages_pruned: u64,
    /// Dead versions removed.
    pub versions_removed: u64,
    /// Bytes of page space reclaimed (tuples and their slots' share).
    pub bytes_freed: u64,
}
