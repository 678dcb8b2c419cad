//! Table DDL and maintenance: CREATE, DROP and TRUNCATE TABLE, and VACUUM.

use super::spec::TableSpec;

use crate::catalog::types::Type;
use crate::catalog::{Layout, TableDef};
use crate::error::{Error, Result};
use crate::node::{Node, Part, PruneStats};
use crate::wal::record::Body;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Node {
    /// Creates a typed table from `spec`; returns its id.
    pub fn create_table(&self, spec: &TableSpec) -> Result<u32> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if spec.columns.is_empty() {
            return bad(format!("table {:?} needs at least one column", spec.name));
        }
        if spec.columns.len() > crate::catalog::COLUMNS_MAX {
            return bad(format!(
                "table {:?} has {} columns; the limit is {}",
                spec.name,
                spec.columns.len(),
                crate::catalog::COLUMNS_MAX
            ));
        }
        for (i, c) in spec.columns.iter().enumerate() {
            if c.name.is_empty() || c.name.len() > crate::catalog::NAME_BYTES_MAX {
                return bad(format!(
                    "column name must be 1..={} bytes, got {:?}",
                    crate::catalog::NAME_BYTES_MAX,
                    c.name
                ));
            }
            if spec.columns.iter().take(i).any(|o| o.name == c.name) {
                return bad(format!("column {:?} specified more than once", c.name));
            }
            if let Type::Varchar(0) | Type::Char(0) = c.ty {
                return bad(format!("column {:?}: length must be at least 1", c.name));
            }
        }
        let key_names: Vec<String> = match &spec.key {
            Some(k) => k.clone(),
            None => spec
                .columns
                .iter()
                .take(1)
                .map(|c| c.name.clone())
                .collect(),
        };
        let mut key = Vec::with_capacity(key_names.len());
        for k in &key_names {
            let Some(i) = spec.columns.iter().position(|c| &c.name == k) else {
                return bad(format!(
                    "distribution key column {k:?} is not a column of {:?}",
                    spec.name
                ));
            };
            if key.contains(&(i as u16)) {
                return bad(format!("distribution key names column {k:?} twice"));
            }
            key.push(i as u16);
        }
        let all = self.segments().len() as u16;
        let segments = spec.segments.unwrap_or(all);
        if segments == 0 || segments > all {
            return bad(format!(
                "table {:?} cannot be spread over {segments} segments; the node has {all}",
                spec.name
            ));
        }
        self.create_table_def(TableDef {
            id: 0,
            name: spec.name.clone(),
            columns: spec.columns.clone(),
            layout: Layout {
                key,
                segments,
                placement: spec.placement,
            },
            layout_version: 1,
            migration_bit: false,
            redistribution: None,
            epoch: 0,
        })
    }

    /// Drops a table: waits for statements on it to finish, removes it from the catalog
    /// durably, then deletes its files.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        let rt = self.table_rt_by_name(name)?;
        let _ddl = rt.ddl.write();
        if rt.dropped.swap(true, Ordering::AcqRel) {
            return Err(Error::NoSuchTable(name.to_string()));
        }
        let r = self.log_ddl(&Body::DropTable { table: rt.id });
        if let Err(e) = r {
            rt.dropped.store(false, Ordering::Release);
            return Err(e);
        }
        self.apply_drop_table(rt.id);
        // Once a checkpoint has recorded the catalog without the table, its files can
        // go; a crash before that replays the drop, one after leaves orphans that the
        // next open removes.
        self.checkpoint()?;
        let parts: Vec<Arc<Part>> = rt.parts.read().values().cloned().collect();
        for part in parts {
            let heap = part.heap();
            let seg_dir = self
                .dir()
                .join(crate::storage::heap::segment_dir_name(heap.segment()));
            for file in [
                crate::storage::heap::heap_file_name(rt.id),
                crate::storage::vm::vm_file_name(rt.id),
            ] {
                let path = seg_dir.join(file);
                match self.vfs().remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove", &path, e)),
                }
            }
            self.vfs()
                .sync_dir(&seg_dir)
                .map_err(|e| Error::io("fsync dir", &seg_dir, e))?;
        }
        Ok(())
    }

    /// Empties a table on every segment. Like PostgreSQL's TRUNCATE it is not MVCC-safe:
    /// it waits for running statements on the table, and rows of transactions that have
    /// not committed yet are gone too.
    pub fn truncate_table(&self, name: &str) -> Result<()> {
        let rt = self.table_rt_by_name(name)?;
        let _ddl = rt.ddl.write();
        if rt.dropped.load(Ordering::Acquire) {
            return Err(Error::NoSuchTable(name.to_string()));
        }
        // No checkpoint may write a page of the old contents after the truncation.
        let _ck = self.checkpoint_guard();
        self.log_ddl(&Body::TruncateTable { table: rt.id })?;
        let r = self.apply_truncate_table(rt.id);
        self.poison_on_io(r)
    }

    /// Removes the versions of `table` that no snapshot can see any more (deleted or
    /// replaced by transactions every running snapshot sees as committed, or inserted by
    /// aborted ones) and reports the space reclaimed.
    pub fn vacuum(&self, table: &str) -> Result<PruneStats> {
        let rt = self.table_rt_by_name(table)?;
        let _ddl = rt.ddl.read();
        let horizon = self.txns.horizon();
        let segments: Vec<u16> = rt.parts.read().keys().copied().collect();
        let mut total = PruneStats::default();
        for seg in segments {
            let s = self.prune(seg, rt.id, horizon)?;
            total.pages_scanned += s.pages_scanned;
            total.pages_pruned += s.pages_pruned;
            total.versions_removed += s.versions_removed;
            total.bytes_freed += s.bytes_freed;
        }
        log::info!(
            "vacuum {table}: removed {} dead versions from {} of {} pages, {} bytes reclaimed",
            total.versions_removed,
            total.pages_pruned,
            total.pages_scanned,
            total.bytes_freed
        );
        Ok(total)
    }
}
