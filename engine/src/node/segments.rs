//! Segments and tables at run time: adding a segment, creating, dropping, truncating and
//! redefining tables (the changes the WAL's catalog records describe), each table's
//! files on each segment, and removing only the files the engine made.

use super::part::{Part, TableRt, VmState};
use super::{io, Node, SEGMENTS_MAX};

use crate::catalog::{SegmentConfig, TableDef};
use crate::error::{Error, Result};
use crate::lock::{Condvar, Mutex, RwLock};
use crate::storage::heap::{segment_dir_name, Heap};
use crate::storage::vm::VisibilityMap;
use crate::vfs::replace_file;
use crate::wal::record::Body;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

impl Node {
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
                return Err(Error::LimitExceeded(format!(
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

    /// Adds an empty primary segment with the given configuration row (gpexpand's input
    /// file: host, address, port, data directory, dbid, content id), online, like
    /// [`Node::add_new_segment`]. Its content id must be one past the highest and its
    /// dbid unused. A `datadir` other than the node's own `segN` directory is honoured:
    /// the segment's files live there (another disk, say). It must be an absolute path
    /// outside the node's data directory and outside every other segment's directory,
    /// and must not exist or be an empty directory. The configuration row is logged and
    /// synced before the directory is made, so recovery makes it again after a crash.
    pub fn add_segment_with(&self, config: SegmentConfig) -> Result<u16> {
        let next = self.segments().iter().map(|s| s + 1).max().unwrap_or(0);
        if config.content != next {
            return Err(Error::InvalidArgument(format!(
                "content id {} is not the next one ({next})",
                config.content
            )));
        }
        let config = self.check_row(config, false)?;
        if config.external {
            // Made (and proved writable) before the row is logged: a directory that
            // cannot be made is refused here, instead of failing the node after the
            // log has promised it (and again at every recovery).
            self.prepare_segment_dir(&config)?;
        }
        let content = config.content;
        self.add_segment(config)?;
        Ok(content)
    }

    /// Checks a segment's configuration row as [`Node::add_segment_with`] does, changing
    /// nothing that stays: its content id must be unused (one past the highest when
    /// added), its dbid unused, a primary; an external directory absolute, outside the
    /// node's and every segment's (symbolic links followed), missing or empty, and
    /// creatable and writable (a missing one is made and removed again to find out).
    /// Returns the row with `external` set. gpexpand checks every new segment so before
    /// it changes anything.
    pub fn check_new_segment(&self, config: SegmentConfig) -> Result<SegmentConfig> {
        self.check_row(config, true)
    }

    /// [`Node::check_new_segment`]; `probe`: also make (and remove again, if it was
    /// missing) the directory to prove it can be made — the add makes it for good
    /// instead.
    fn check_row(&self, mut config: SegmentConfig, probe: bool) -> Result<SegmentConfig> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        let next = self.segments().iter().map(|s| s + 1).max().unwrap_or(0);
        if config.content < next {
            return bad(format!("content id {} is in use", config.content));
        }
        if config.content >= SEGMENTS_MAX {
            return Err(Error::LimitExceeded(format!(
                "a node holds at most {SEGMENTS_MAX} segments"
            )));
        }
        if config.role != 'p' || config.preferred_role != 'p' {
            return bad("this node runs primary segments only (no mirrors)".into());
        }
        for (what, v) in [
            ("hostname", &config.hostname),
            ("address", &config.address),
            ("datadir", &config.datadir),
        ] {
            if v.is_empty() || v.len() > crate::catalog::CONFIG_STRING_BYTES_MAX {
                return bad(format!(
                    "{what} must be 1..={} bytes",
                    crate::catalog::CONFIG_STRING_BYTES_MAX
                ));
            }
        }
        if self.catalog.read().segments.iter().any(|s| s.dbid == config.dbid) {
            return bad(format!("dbid {} is in use", config.dbid));
        }
        let default = self.dir.join(segment_dir_name(config.content));
        let path = std::path::PathBuf::from(&config.datadir);
        config.external = path != default;
        if !config.external {
            return Ok(config);
        }
        if !path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return bad(format!(
                "data directory {} must be an absolute path without ..",
                config.datadir
            ));
        }
        // Symbolic links followed: the deepest existing ancestor, resolved, plus the rest.
        let real = |p: &std::path::Path| -> std::path::PathBuf {
            let mut head = p.to_path_buf();
            let mut tail = Vec::new();
            loop {
                if let Ok(r) = std::fs::canonicalize(&head) {
                    return tail.iter().rev().fold(r, |acc, t| acc.join(t));
                }
                match (head.file_name().map(|f| f.to_os_string()), head.parent()) {
                    (Some(f), Some(parent)) => {
                        tail.push(f);
                        head = parent.to_path_buf();
                    }
                    _ => return p.to_path_buf(),
                }
            }
        };
        let (real_path, real_node) = (real(&path), real(&self.dir));
        if real_path.starts_with(&real_node) || real_node.starts_with(&real_path) {
            return bad(format!(
                "data directory {} is inside the node's data directory {} (or holds it); \
                 give a directory outside it, or {} for the node's own",
                config.datadir,
                self.dir.display(),
                default.display()
            ));
        }
        let overlaps: Vec<(u16, std::path::PathBuf)> = self
            .catalog
            .read()
            .segments
            .iter()
            .map(|s| (s.content, s.dir(&self.dir)))
            .collect();
        for (content, d) in overlaps {
            let d = real(&d);
            if real_path.starts_with(&d) || d.starts_with(&real_path) {
                return bad(format!(
                    "data directory {} overlaps segment {content}'s ({})",
                    config.datadir,
                    d.display()
                ));
            }
        }
        let exists = self.vfs.exists(&path).map_err(|e| {
            Error::InvalidArgument(format!(
                "data directory {}: cannot create it: {e}",
                config.datadir
            ))
        })?;
        if exists
            && !self
                .vfs
                .list_dir(&path)
                .map_err(|e| {
                    Error::InvalidArgument(format!(
                        "data directory {} cannot be read as a directory: {e}",
                        config.datadir
                    ))
                })?
                .is_empty()
        {
            return bad(format!(
                "data directory {} exists and is not empty",
                config.datadir
            ));
        }
        if probe {
            self.prepare_segment_dir(&config)?;
            if !exists {
                let _ = self.vfs.remove_dir(&path);
            }
        }
        Ok(config)
    }

    /// Makes an external segment directory and proves it writable (a probe file written,
    /// synced and removed). Errors are the caller's input's fault: InvalidArgument.
    fn prepare_segment_dir(&self, config: &SegmentConfig) -> Result<()> {
        let path = std::path::PathBuf::from(&config.datadir);
        let cannot = |what: &str, e: std::io::Error| {
            Error::InvalidArgument(format!(
                "data directory {}: cannot {what}: {e}",
                config.datadir
            ))
        };
        self.vfs
            .create_dir_all(&path)
            .map_err(|e| cannot("create it", e))?;
        let probe = path.join(".segexpand-probe");
        let f = self
            .vfs
            .open(&probe, true)
            .map_err(|e| cannot("write in it", e))?;
        f.write_all_at(b"probe", 0)
            .map_err(|e| cannot("write in it", e))?;
        f.sync().map_err(|e| cannot("sync in it", e))?;
        drop(f);
        self.vfs
            .remove_file(&probe)
            .map_err(|e| cannot("remove a file in it", e))
    }

    pub(super) fn add_segment(&self, config: SegmentConfig) -> Result<()> {
        self.log_ddl(&Body::CreateSegment {
            config: config.clone(),
        })?;
        self.poison_on_io(self.apply_create_segment(config))
    }

    pub(super) fn apply_create_segment(&self, config: SegmentConfig) -> Result<()> {
        let segment = config.content;
        let path = config.dir(&self.dir);
        self.vfs.create_dir_all(&path).map_err(io("mkdir", &path))?;
        let parent = path.parent().unwrap_or(&self.dir).to_path_buf();
        self.vfs
            .sync_dir(&parent)
            .map_err(io("fsync dir", &parent))?;
        let tables: Vec<u32> = {
            let mut cat = self.catalog.write();
            cat.put_segment(config);
            cat.tables.iter().map(|t| t.id).collect()
        };
        for t in tables {
            self.create_part_files(segment, t)?;
        }
        self.catalog_changed();
        Ok(())
    }

    raw! {
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
                unique: Vec::new(),
            })
        }
    }

    /// Logs and applies a new table definition (its id is assigned here); returns the id.
    pub(crate) fn create_table_def(&self, mut def: TableDef) -> Result<u32> {
        crate::catalog::check_name("table", &def.name)?;
        let name = &def.name;
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

    pub(super) fn apply_create_table(&self, def: TableDef) -> Result<()> {
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
        self.catalog_changed();
        Ok(())
    }

    pub(super) fn register_table(&self, def: TableDef) {
        let id = def.id;
        let mut map = self.tables_rt.write();
        match map.get(&id) {
            Some(rt) => *rt.def.write() = Arc::new(def),
            None => {
                map.insert(
                    id,
                    Arc::new(TableRt {
                        id,
                        node: self.instance,
                        def: RwLock::new(Arc::new(def)),
                        ddl: RwLock::new(()),
                        pin: RwLock::new(()),
                        closing: AtomicBool::new(false),
                        gate_mx: Mutex::new(()),
                        gate_cv: Condvar::new(),
                        dropped: AtomicBool::new(false),
                        parts: RwLock::new(HashMap::new()),
                        writers: Default::default(),
                        unique: super::writers::unique_stripes(),
                    }),
                );
            }
        }
    }

    pub(super) fn create_part_files(&self, segment: u16, table: u32) -> Result<()> {
        if self.part(segment, table).is_ok() {
            return Ok(());
        }
        let part = self.open_part(segment, table, true)?;
        let seg_dir = part.heap.seg_dir().to_path_buf();
        let vm_path = seg_dir.join(crate::storage::vm::vm_file_name(table));
        let bytes = part.vm.lock().vm.encode(segment, table);
        replace_file(&*self.vfs, &vm_path, &bytes)?;
        self.vfs
            .sync_dir(&seg_dir)
            .map_err(io("fsync dir", &seg_dir))
    }

    pub(super) fn open_part(&self, segment: u16, table: u32, create: bool) -> Result<Arc<Part>> {
        let rt = self.table_rt(table)?;
        let seg_dir = self.segment_dir(segment);
        let heap = Arc::new(Heap::open(
            &*self.vfs,
            &self.dir,
            &seg_dir,
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

    /// Deletes a retired segment's files — only the names the engine makes there — and
    /// its directory when that left it empty (anything else stays, with a warning).
    pub(crate) fn remove_segment_dir(&self, content: u16) -> Result<()> {
        self.remove_segment_files(&self.dir.join(segment_dir_name(content)), content)
    }

    /// [`Node::remove_segment_dir`] for the segment directory `seg_dir` (an external
    /// one, say).
    pub(crate) fn remove_segment_files(&self, seg_dir: &std::path::Path, content: u16) -> Result<()> {
        let seg_dir = seg_dir.to_path_buf();
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
        let parent = seg_dir.parent().unwrap_or(&self.dir).to_path_buf();
        self.vfs
            .sync_dir(&parent)
            .map_err(io("fsync dir", &parent))
    }

    /// The directory of segment `content`'s files.
    pub(crate) fn segment_dir(&self, content: u16) -> std::path::PathBuf {
        self.catalog.read().segment_dir(&self.dir, content)
    }

    /// Removes heap and VM files of tables that are not in the catalog (left by a crash
    /// between a DROP's checkpoint and its file removal), and the files of segments that
    /// are not (a crash while retiring one). Only names the engine makes go, and for
    /// tables only ids it has handed out.
    pub(super) fn remove_orphan_files(&self) -> Result<()> {
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
            let seg_dir = self.segment_dir(seg);
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
        self.catalog_changed();
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
        self.catalog_changed();
    }

    /// Removes a table from the catalog and the run-time maps (files stay until the
    /// next checkpoint has recorded the catalog without it).
    pub(crate) fn apply_drop_table(&self, table: u32) {
        self.catalog.write().tables.retain(|t| t.id != table);
        self.tables_rt.write().remove(&table);
        self.catalog_changed();
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
}
