//! A node: one data directory holding several segments, one WAL, one commit log.
//!
//! This module owns the life cycle — create, open (with recovery), checkpoint, close —
//! and the storage-level write paths (insert a tuple, set a tuple's xmax, prune a page,
//! commit, abort). The typed table API of the transactions issue is built on these.
//!
//! Lock order (never taken in the other direction): checkpoint lock → commit gate →
//! catalog → page lock → WAL insert lock → WAL flush lock.

use crate::clog::{Clog, XidStatus, FIRST_XID};
use crate::control::{Catalog, Control, NodeState, TableEntry, TABLE_NAME_BYTES_MAX};
use crate::error::{CorruptionKind, Error, Location, Result};
use crate::heap::{segment_dir_name, Heap};
use crate::page::{Page, PageId, TUPLE_BYTES_MAX};
use crate::poison::Poison;
use crate::tuple::{build_tuple, Tid, TupleHeader, FLAGS_OFF, XMAX_OFF};
use crate::vfs::{read_all, replace_file, tmp_path, RealVfs, Vfs};
use crate::vm::VisibilityMap;
use crate::wal::record::{Body, PageRef, Record};
use crate::wal::scan::scan;
use crate::wal::{SyncPolicy, Wal};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Name of the control file.
pub const CONTROL_FILE: &str = "control";
/// Name of the WAL directory.
pub const WAL_DIR: &str = "wal";
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
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::EveryCommit,
            cache_pages_max: 1 << 20,
            checkpoint_wal_bytes: 256 * 1024 * 1024,
            wal_file_bytes: crate::wal::file::WAL_FILE_BYTES_MAX,
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

struct VmState {
    vm: VisibilityMap,
    dirty: bool,
}

type HeapKey = (u16, u32);

/// One node of segments.
pub struct Node {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    opts: NodeOptions,
    wal: Wal,
    clog: Clog,
    poison: Arc<Poison>,
    catalog: RwLock<Catalog>,
    heaps: RwLock<HashMap<HeapKey, Arc<Heap>>>,
    vms: Mutex<HashMap<HeapKey, VmState>>,
    next_xid: AtomicU64,
    next_table: AtomicU32,
    /// Transactions begun and not yet committed or aborted (for group commit).
    open_txns: AtomicU64,
    commit_gate: RwLock<()>,
    checkpoint_lock: Mutex<()>,
    recovery: RecoveryReport,
    stop_flusher: Arc<AtomicBool>,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
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

    /// Creates a node of `segments` empty segments (content ids `0..segments`).
    pub fn create(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        segments: u16,
        opts: NodeOptions,
    ) -> Result<Arc<Node>> {
        if segments == 0 || segments > SEGMENTS_MAX {
            return Err(Error::InvalidArgument(format!(
                "segment count {segments} out of range 1..={SEGMENTS_MAX}"
            )));
        }
        let control_path = dir.join(CONTROL_FILE);
        if vfs
            .exists(&control_path)
            .map_err(io("stat", &control_path))?
        {
            return Err(Error::AlreadyExists(dir.to_path_buf()));
        }
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
            vfs,
            dir,
            opts,
            wal,
            Clog::default(),
            poison,
            Catalog::default(),
            FIRST_XID,
            1,
        );
        for s in 0..segments {
            node.add_segment(s)?;
        }
        // The first checkpoint writes the control file: from here on the node exists.
        node.checkpoint()?;
        let node = Arc::new(node);
        node.start_flusher();
        Ok(node)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "private constructor shared by create and open"
    )]
    fn assemble(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        opts: NodeOptions,
        wal: Wal,
        clog: Clog,
        poison: Arc<Poison>,
        catalog: Catalog,
        next_xid: u64,
        next_table: u32,
    ) -> Node {
        Node {
            dir: dir.to_path_buf(),
            vfs,
            opts,
            wal,
            clog,
            poison,
            catalog: RwLock::new(catalog),
            heaps: RwLock::new(HashMap::new()),
            vms: Mutex::new(HashMap::new()),
            next_xid: AtomicU64::new(next_xid),
            next_table: AtomicU32::new(next_table),
            open_txns: AtomicU64::new(0),
            commit_gate: RwLock::new(()),
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
        let control_path = dir.join(CONTROL_FILE);
        if !vfs
            .exists(&control_path)
            .map_err(io("stat", &control_path))?
        {
            return Err(Error::NotInitialized(dir.to_path_buf()));
        }
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
        let scanned = scan(&*vfs, &wal_dir, control.redo_lsn)?;
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
            vfs.clone(),
            dir,
            opts,
            wal,
            Clog::from_bytes(control.clog.clone()),
            poison,
            control.catalog.clone(),
            control.next_xid,
            control.next_table,
        );
        let catalog = control.catalog.clone();
        for seg in &catalog.segments {
            for t in &catalog.tables {
                node.open_heap(*seg, t.id, false)?;
            }
        }
        let mut report = RecoveryReport::default();
        for rec in &scanned.records {
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
        report.aborted_in_flight = node
            .clog
            .abort_in_progress(node.next_xid.load(Ordering::Acquire));
        let heaps: Vec<Arc<Heap>> = node.heaps.read().values().cloned().collect();
        for h in &heaps {
            for (block, e) in h.build_fsm() {
                log::error!(
                    "{}: block {block} unreadable after recovery: {e}",
                    h.rel_path().display()
                );
                report.unreadable_blocks.push(e.to_string());
            }
            if node.load_vm(h)? {
                report.vm_rebuilt += 1;
            }
        }
        node.recovery = report;
        // End-of-recovery checkpoint: makes the recovered state the new starting point.
        node.checkpoint()?;
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

    /// The segments of this node.
    pub fn segments(&self) -> Vec<u16> {
        self.catalog.read().segments.clone()
    }

    /// The tables of this node.
    pub fn tables(&self) -> Vec<TableEntry> {
        self.catalog.read().tables.clone()
    }

    /// The table called `name`.
    pub fn table_id(&self, name: &str) -> Option<u32> {
        self.catalog
            .read()
            .tables
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.id)
    }

    /// The WAL (for statistics and benchmarks).
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    // ----- segments and tables -------------------------------------------------------

    fn add_segment(&self, segment: u16) -> Result<()> {
        let _gate = self.commit_gate.read();
        let lsn = self.wal.append(0, &Body::CreateSegment { segment })?;
        self.wal.flush_through(lsn)?;
        self.poison_on_io(self.apply_create_segment(segment))
    }

    /// A write path that failed on I/O leaves the node's files in an unknown state:
    /// poison, so nothing builds on it until recovery.
    fn poison_on_io<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e @ Error::Io { .. }) = &r {
            self.poison.set(e);
        }
        r
    }

    fn apply_create_segment(&self, segment: u16) -> Result<()> {
        let path = self.dir.join(segment_dir_name(segment));
        self.vfs.create_dir_all(&path).map_err(io("mkdir", &path))?;
        self.vfs
            .sync_dir(&self.dir)
            .map_err(io("fsync dir", &self.dir))?;
        let tables: Vec<u32> = {
            let mut cat = self.catalog.write();
            if !cat.segments.contains(&segment) {
                cat.segments.push(segment);
            }
            cat.tables.iter().map(|t| t.id).collect()
        };
        for t in tables {
            self.create_table_files(segment, t)?;
        }
        Ok(())
    }

    /// Creates a table with a heap and a VM file in every segment; returns its id.
    pub fn create_table(&self, name: &str) -> Result<u32> {
        if name.is_empty() || name.len() > TABLE_NAME_BYTES_MAX {
            return Err(Error::InvalidArgument(format!(
                "table name must be 1..={TABLE_NAME_BYTES_MAX} bytes, got {:?}",
                name
            )));
        }
        if self.table_id(name).is_some() {
            return Err(Error::InvalidArgument(format!(
                "table {name:?} already exists"
            )));
        }
        let _gate = self.commit_gate.read();
        let id = self.next_table.fetch_add(1, Ordering::AcqRel);
        let lsn = self.wal.append(
            0,
            &Body::CreateTable {
                table: id,
                name: name.to_string(),
            },
        )?;
        self.wal.flush_through(lsn)?;
        self.poison_on_io(self.apply_create_table(id, name))?;
        Ok(id)
    }

    fn apply_create_table(&self, id: u32, name: &str) -> Result<()> {
        let segments = {
            let mut cat = self.catalog.write();
            if cat.table(id).is_none() {
                cat.tables.push(TableEntry {
                    id,
                    name: name.to_string(),
                });
            }
            cat.segments.clone()
        };
        for s in segments {
            self.create_table_files(s, id)?;
        }
        Ok(())
    }

    fn create_table_files(&self, segment: u16, table: u32) -> Result<()> {
        if self.heaps.read().contains_key(&(segment, table)) {
            return Ok(());
        }
        let seg_dir = self.dir.join(segment_dir_name(segment));
        self.open_heap(segment, table, true)?;
        let vm_path = seg_dir.join(crate::vm::vm_file_name(table));
        replace_file(
            &*self.vfs,
            &vm_path,
            &VisibilityMap::default().encode(segment, table),
        )?;
        self.vfs
            .sync_dir(&seg_dir)
            .map_err(io("fsync dir", &seg_dir))?;
        self.vms.lock().insert(
            (segment, table),
            VmState {
                vm: VisibilityMap::default(),
                dirty: false,
            },
        );
        Ok(())
    }

    fn open_heap(&self, segment: u16, table: u32, create: bool) -> Result<Arc<Heap>> {
        let heap = Arc::new(Heap::open(
            &*self.vfs,
            &self.dir,
            segment,
            table,
            create,
            self.opts.cache_pages_max,
        )?);
        self.heaps.write().insert((segment, table), heap.clone());
        Ok(heap)
    }

    /// The heap of `table` on `segment`.
    pub fn heap(&self, segment: u16, table: u32) -> Result<Arc<Heap>> {
        self.heaps
            .read()
            .get(&(segment, table))
            .cloned()
            .ok_or_else(|| Error::InvalidArgument(format!("no table {table} on segment {segment}")))
    }

    /// Loads the VM of a heap, rebuilding it when missing or corrupt. True if rebuilt.
    fn load_vm(&self, heap: &Heap) -> Result<bool> {
        let (seg, table) = (heap.segment(), heap.table());
        let rel = Path::new(&segment_dir_name(seg)).join(crate::vm::vm_file_name(table));
        let path = self.dir.join(&rel);
        let loaded = match self.vfs.open(&path, false) {
            Ok(f) => {
                let bytes = read_all(&*f).map_err(io("read", &path))?;
                VisibilityMap::decode(&bytes, seg, table).map_err(|k| k.to_string())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("file missing".to_string()),
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let (vm, rebuilt) = match loaded {
            Ok(vm) => (vm, false),
            Err(why) => {
                // Stable tables carry migration bit 0, so the "old" bit is 1 (format.md).
                let pages: Vec<Page> = (0..heap.nblocks())
                    .filter_map(|b| heap.page(b).ok().map(|p| p.page.read().clone()))
                    .collect();
                let vm = VisibilityMap::rebuild(&pages, true, 0, |h| self.is_live(h));
                log::warn!(
                    "{}: {why}; rebuilt from the heap ({} blocks)",
                    rel.display(),
                    pages.len()
                );
                (vm, true)
            }
        };
        self.vms
            .lock()
            .insert((seg, table), VmState { vm, dirty: rebuilt });
        Ok(rebuilt)
    }

    // ----- redo ----------------------------------------------------------------------

    fn redo(&self, rec: &Record, report: &mut RecoveryReport) -> Result<()> {
        if rec.xid >= self.next_xid.load(Ordering::Acquire) {
            self.next_xid.store(rec.xid + 1, Ordering::Release);
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
                self.next_xid.fetch_max(*next_xid, Ordering::AcqRel);
                self.next_table.fetch_max(*next_table, Ordering::AcqRel);
            }
            Body::CreateSegment { segment } => self.apply_create_segment(*segment)?,
            Body::CreateTable { table, name } => {
                self.next_table.fetch_max(table + 1, Ordering::AcqRel);
                self.apply_create_table(*table, name)?;
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
            } => {
                self.redo_on_page(rec, page, |p| {
                    set_xmax_in_place(p, *slot, *xmax, *cmax, *flags)
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
            Error::InvalidArgument(_) => Error::corrupt(
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

    /// Starts a transaction; returns its id.
    pub fn begin(&self) -> Result<u64> {
        self.poison.check()?;
        self.open_txns.fetch_add(1, Ordering::AcqRel);
        Ok(self.next_xid.fetch_add(1, Ordering::AcqRel))
    }

    /// Counts a transaction as finished (committed, aborted, or failed to commit).
    fn end_txn(&self) {
        let _ = self
            .open_txns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
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
                || h.flags & crate::tuple::FLAG_LOCK_ONLY != 0
                || self.clog.get(h.xmax) != XidStatus::Committed)
    }

    /// Inserts a tuple version by `xid` (command `cid`) into `table` on `segment`.
    pub fn insert(
        &self,
        xid: u64,
        cid: u32,
        segment: u16,
        table: u32,
        migration_bit: bool,
        payload: &[u8],
    ) -> Result<Tid> {
        let tuple = build_tuple(&TupleHeader::new(xid, cid, migration_bit), payload);
        if tuple.len() > TUPLE_BYTES_MAX {
            return Err(Error::TupleTooLarge {
                len: tuple.len(),
                max: TUPLE_BYTES_MAX,
            });
        }
        self.poison.check()?;
        let heap = self.heap(segment, table)?;
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
            return Ok(Tid { block, slot });
        }
    }

    /// Sets `xmax`/`cmax`/`flags` of a tuple version (delete, update or lock). Fails if
    /// another live transaction already holds the tuple's xmax.
    pub fn set_xmax(
        &self,
        xid: u64,
        cid: u32,
        segment: u16,
        table: u32,
        tid: Tid,
        flags_set: u16,
    ) -> Result<()> {
        self.poison.check()?;
        let heap = self.heap(segment, table)?;
        let cp = heap.page(tid.block)?;
        let mut p = cp.page.write();
        let header = p
            .tuple(tid.slot)
            .and_then(TupleHeader::decode)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "no tuple at {tid:?} of table {table} segment {segment}"
                ))
            })?;
        if header.xmax != 0
            && header.xmax != xid
            && self.clog.get(header.xmax) != XidStatus::Aborted
        {
            return Err(Error::InvalidArgument(format!(
                "tuple {tid:?} is already deleted or locked by transaction {}",
                header.xmax
            )));
        }
        let flags = header.flags | flags_set;
        let before = p.lsn();
        if !set_xmax_in_place(&mut p, tid.slot, xid, cid, flags) {
            return Err(Error::InvalidArgument(format!("no tuple at {tid:?}")));
        }
        let page = PageRef {
            segment,
            table,
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
                }
            }
        })?;
        p.set_lsn(lsn);
        cp.mark_dirty();
        Ok(())
    }

    /// Commits `xid`. Under [`SyncPolicy::EveryCommit`] it returns once the commit
    /// record is durable (sharing an fsync with concurrent commits).
    pub fn commit(&self, xid: u64) -> Result<()> {
        let r = self.commit_inner(xid);
        self.end_txn();
        r?;
        self.maybe_checkpoint()
    }

    fn commit_inner(&self, xid: u64) -> Result<()> {
        let _gate = self.commit_gate.read();
        let lsn = self.wal.append(xid, &Body::Commit)?;
        if self.opts.sync == SyncPolicy::EveryCommit {
            let siblings = self.open_txns.load(Ordering::Acquire).saturating_sub(1);
            self.wal.flush_through_grouped(lsn, siblings)?;
        }
        self.clog.set(xid, XidStatus::Committed);
        Ok(())
    }

    /// Aborts `xid`: its changes stay on the pages but are never visible.
    pub fn abort(&self, xid: u64) -> Result<()> {
        let _gate = self.commit_gate.read();
        let r = self.wal.append(xid, &Body::Abort);
        self.end_txn();
        r?;
        self.clog.set(xid, XidStatus::Aborted);
        Ok(())
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

    /// Reads the tuple at `tid`: header and payload, whatever its visibility.
    pub fn read_tuple(
        &self,
        segment: u16,
        table: u32,
        tid: Tid,
    ) -> Result<Option<(TupleHeader, Vec<u8>)>> {
        let heap = self.heap(segment, table)?;
        let cp = heap.page(tid.block)?;
        let p = cp.page.read();
        Ok(p.tuple(tid.slot)
            .and_then(|t| TupleHeader::decode(t).map(|h| (h, crate::tuple::payload(t).to_vec()))))
    }

    /// Calls `f` for every tuple version of `table` on `segment` (header and payload), in
    /// block order. Stops at the first error (an unreadable page, say).
    pub fn for_each_tuple(
        &self,
        segment: u16,
        table: u32,
        mut f: impl FnMut(Tid, &TupleHeader, &[u8]),
    ) -> Result<()> {
        let heap = self.heap(segment, table)?;
        for block in 0..heap.nblocks() {
            let cp = heap.page(block)?;
            let p = cp.page.read();
            for slot in 0..p.slot_count() {
                if let Some(t) = p.tuple(slot) {
                    if let Some(h) = TupleHeader::decode(t) {
                        f(Tid { block, slot }, &h, crate::tuple::payload(t));
                    }
                }
            }
        }
        Ok(())
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
    /// `horizon_xid`. Returns the bytes freed. Each pruned page is logged as a page image.
    pub fn prune(&self, segment: u16, table: u32, horizon_xid: u64) -> Result<usize> {
        self.poison.check()?;
        let heap = self.heap(segment, table)?;
        let mut freed = 0;
        for block in 0..heap.nblocks() {
            let cp = heap.page(block)?;
            let mut p = cp.page.write();
            let dead: Vec<u16> = (0..p.slot_count())
                .filter(|s| {
                    p.tuple(*s).and_then(TupleHeader::decode).is_some_and(|h| {
                        self.clog.get(h.xmin) == XidStatus::Aborted
                            || (h.xmax != 0
                                && h.xmax < horizon_xid
                                && h.flags & crate::tuple::FLAG_LOCK_ONLY == 0
                                && self.clog.get(h.xmax) == XidStatus::Committed)
                    })
                })
                .collect();
            if dead.is_empty() {
                continue;
            }
            let before = p.lsn();
            freed += p.prune(&dead);
            let page = PageRef {
                segment,
                table,
                block,
            };
            let lsn = self.wal.append_page(0, before, |_| image_body(page, &p))?;
            p.set_lsn(lsn);
            cp.mark_dirty();
            heap.set_free(block, p.free_space());
        }
        Ok(freed)
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
                self.next_xid.load(Ordering::Acquire),
                self.next_table.load(Ordering::Acquire),
            )
        };
        self.wal.flush_all()?;
        let heaps: Vec<Arc<Heap>> = self.heaps.read().values().cloned().collect();
        let mut pages_written = 0;
        for h in &heaps {
            pages_written += h.write_dirty(&self.wal, &self.poison)?;
            h.sync(&self.poison)?;
        }
        self.write_vms()?;
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

    fn write_vms(&self) -> Result<()> {
        let dirty: Vec<(HeapKey, Vec<u8>)> = self
            .vms
            .lock()
            .iter_mut()
            .filter(|(_, v)| v.dirty)
            .map(|(k, v)| {
                v.dirty = false;
                (*k, v.vm.encode(k.0, k.1))
            })
            .collect();
        for ((seg, table), bytes) in dirty {
            let path = self
                .dir
                .join(segment_dir_name(seg))
                .join(crate::vm::vm_file_name(table));
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

fn image_body(page: PageRef, p: &Page) -> Body {
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

/// Sets xmax, cmax and flags of the tuple in `slot`; false if there is none.
fn set_xmax_in_place(p: &mut Page, slot: u16, xmax: u64, cmax: u32, flags: u16) -> bool {
    let Some(t) = p.tuple_mut(slot) else {
        return false;
    };
    if t.len() < crate::tuple::TUPLE_HEADER_BYTES {
        return false;
    }
    crate::codec::put_u64(t, XMAX_OFF, xmax);
    crate::codec::put_u32(t, crate::tuple::CMAX_OFF, cmax);
    crate::codec::put_u16(t, FLAGS_OFF, flags);
    true
}
