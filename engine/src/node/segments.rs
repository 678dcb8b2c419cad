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

    pub(super) fn add_segment(&self, config: SegmentConfig) -> Result<()> {
        self.log_ddl(&Body::CreateSegment {
            config: config.clone(),
        })?;
        self.poison_on_io(self.apply_create_segment(config))
    }

    pub(super) fn apply_create_segment(&self, config: SegmentConfig) -> Result<()> {
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
        let seg_dir = self.dir.join(segment_dir_name(segment));
        let part = self.open_part(segment, table, true)?;
        let vm_path = seg_dir.join(crate::storage::vm::vm_file_name(table));
        let bytes = part.vm.lock().vm.encode(segment, table);
        replace_file(&*self.vfs, &vm_path, &bytes)?;
        self.vfs
            .sync_dir(&seg_dir)
            .map_err(io("fsync dir", &seg_dir))
    }

    pub(super) fn open_part(&self, segment: u16, table: u32, create: bool) -> Result<Arc<Part>> {
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
