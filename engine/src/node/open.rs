//! A node's life cycle, first half: creating a data directory and opening one — the
//! control file read, recovery run (WAL scanned, torn tail cut, records redone from the
//! redo point), heaps checked against their recorded lengths, indexes rebuilt.

use super::{io, Node, NodeOptions, RecoveryReport, SEGMENTS_MAX};

use crate::catalog::control::Control;
use crate::catalog::{Catalog, SegmentConfig};
use crate::datadir::{DataDir, DirState};
pub use crate::datadir::{CONTROL_FILE, WAL_DIR};
use crate::error::{CorruptionKind, Error, Location, Result};
use crate::lock::{Mutex, RwLock};
use crate::poison::Poison;
use crate::storage::heap::segment_dir_name;
use crate::txn::clog::{Clog, FIRST_XID};
use crate::txn::TxnManager;
use crate::vfs::{read_all, tmp_path, RealVfs, Vfs};
use crate::wal::record::{Body, Record};
use crate::wal::scan::scan;
use crate::wal::{SyncPolicy, Wal};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

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
    pub(super) fn assemble(
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
            catalog_version: AtomicU64::new(0),
            commit_gate: RwLock::new(()),
            failpoints: crate::failpoint::Failpoints::default(),
            checkpoint_lock: Mutex::new(()),
            recovery: RecoveryReport::default(),
            stop_flusher: Arc::new(AtomicBool::new(false)),
            flusher: Mutex::new(None),
            instance: super::NODE_INSTANCES.fetch_add(1, Ordering::Relaxed),
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
        // External directories of segments retired by the replayed log: their files go
        // once the end-of-recovery checkpoint no longer names them.
        let mut retired_external = Vec::new();
        for rec in scanned.records.iter().filter(|r| r.lsn >= control.redo_lsn) {
            if let crate::wal::record::Body::RetireSegment { content } = &rec.body {
                let cat = node.catalog.read();
                if let Some(cfg) = cat.segments.iter().find(|s| s.content == *content) {
                    if cfg.external {
                        retired_external.push((*content, cfg.dir(&node.dir)));
                    }
                }
            }
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
        for (content, seg_dir) in retired_external {
            if node.vfs.exists(&seg_dir).map_err(io("stat", &seg_dir))? {
                log::info!("removing the files of retired segment {content}");
                node.remove_segment_files(&seg_dir, content)?;
            }
        }
        node.datadir.end_create()?;
        let node = Arc::new(node);
        node.start_flusher();
        Ok(node)
    }

    pub(super) fn start_flusher(self: &Arc<Self>) {
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

    pub(super) fn cut_wal(
        &self,
        scanned: &crate::wal::scan::Scan,
        cut: &crate::wal::scan::Cut,
    ) -> Result<()> {
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
}

pub(super) fn check_segment_count(segments: u16) -> Result<()> {
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
pub(super) fn check_heap_lengths(
    vfs: &dyn Vfs,
    dir: &Path,
    control: &Control,
    records: &[Record],
) -> Result<()> {
    let since_redo = records
        .iter()
        .filter(|r| r.lsn >= control.redo_lsn)
        .map(|r| &r.body);
    // Segment directories: the checkpoint's configuration and segments added since.
    let mut catalog = control.catalog.clone();
    for r in records.iter().filter(|r| r.lsn >= control.redo_lsn) {
        if let crate::wal::record::Body::CreateSegment { config } = &r.body {
            catalog.put_segment(config.clone());
        }
    }
    for h in crate::catalog::control::heaps_to_check(&control.heaps, since_redo) {
        let path = catalog
            .segment_dir(dir, h.segment)
            .join(crate::storage::heap::heap_file_name(h.table));
        let rel = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
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
