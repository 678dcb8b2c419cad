//! Table DDL and maintenance: CREATE, DROP and TRUNCATE TABLE, and VACUUM.

use super::spec::TableSpec;

use crate::catalog::types::Type;
use crate::catalog::{Layout, TableDef, UniqueKey};
use crate::error::{Error, Result};
use crate::node::{Node, Part, PruneStats};
use crate::wal::record::Body;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The longest DEFAULT expression text a column may have.
pub const DEFAULT_BYTES_MAX: usize = 4096;

/// PostgreSQL's name for an unnamed constraint: `<table>_pkey`, `<table>_<cols>_key`,
/// cut to the name limit on a character boundary.
pub(crate) fn constraint_name(table: &str, cols: &[String], primary: bool) -> String {
    let mut n = String::from(table);
    for c in cols {
        n.push('_');
        n.push_str(c);
    }
    n.push_str(if primary { "_pkey" } else { "_key" });
    while n.len() > crate::catalog::NAME_BYTES_MAX {
        n.pop();
    }
    n
}

/// Who runs a DDL statement: a transaction (its xid, and the flag that cancels its
/// waits), or nobody in particular (the node's own API).
pub(super) type Me<'a> = Option<(u64, Option<&'a std::sync::atomic::AtomicBool>)>;

impl Node {
    /// Waits until no transaction but `me`'s has written to `rt`'s table and holds new
    /// writers off ([`crate::node::DrainGuard`]). `me`'s waits go through the
    /// transaction manager, so a cycle of DDL statements waiting for each other's
    /// transactions is a deadlock (40P01), and a cancel request ends them (57014).
    pub(super) fn drain_writers<'r>(
        &self,
        rt: &'r crate::node::TableRt,
        me: Me<'_>,
    ) -> Result<crate::node::DrainGuard<'r>> {
        let timeout = self.options().lock_timeout;
        match me {
            Some((xid, cancel)) => rt.writers.drain(Some(xid), timeout, &|holder, left| {
                self.txns.wait_for_or_cancel(xid, holder, left, cancel)
            }),
            None => rt.writers.drain(None, timeout, &|holder, left| {
                let t0 = std::time::Instant::now();
                while self.txns.is_running(holder) && t0.elapsed() < left {
                    std::thread::sleep(crate::txn::CANCEL_POLL);
                }
                Ok(())
            }),
        }
    }

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
            crate::catalog::check_name("column", &c.name)?;
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
        let mut columns = spec.columns.clone();
        if let Some(c) = columns
            .iter()
            .find(|c| c.default.as_ref().is_some_and(|d| d.len() > DEFAULT_BYTES_MAX))
        {
            return bad(format!(
                "column {:?}: a DEFAULT expression may be at most {DEFAULT_BYTES_MAX} bytes",
                c.name
            ));
        }
        let mut unique: Vec<UniqueKey> = Vec::new();
        for (name, cols, primary) in &spec.unique {
            let mut positions = Vec::with_capacity(cols.len());
            for c in cols {
                let Some(i) = columns.iter().position(|col| &col.name == c) else {
                    return Err(Error::UndefinedColumn(format!(
                        "column {c:?} named in a key does not exist in table {:?}",
                        spec.name
                    )));
                };
                positions.push(i as u16);
                if *primary {
                    if let Some(col) = columns.get_mut(i) {
                        col.not_null = true;
                    }
                }
            }
            let name = match name {
                Some(n) => n.clone(),
                None => {
                    // PostgreSQL numbers a generated name that is taken (`t_a_key1`).
                    let base =
                        constraint_name(&spec.name, if *primary { &[] } else { cols }, *primary);
                    let mut n = base.clone();
                    let mut i = 0u32;
                    while unique.iter().any(|u| u.name == n) {
                        i += 1;
                        let suffix = i.to_string();
                        let mut b = base.clone();
                        while b.len() + suffix.len() > crate::catalog::NAME_BYTES_MAX {
                            b.pop();
                        }
                        n = b + &suffix;
                    }
                    n
                }
            };
            crate::catalog::check_name("constraint", &name)?;
            if unique.iter().any(|u| u.name == name) {
                return Err(Error::InvalidTableDefinition(format!(
                    "constraint {name:?} is defined twice"
                )));
            }
            unique.push(UniqueKey {
                name,
                columns: positions,
                primary: *primary,
            });
        }
        let def = TableDef {
            id: 0,
            name: spec.name.clone(),
            columns,
            layout: Layout {
                key,
                segments,
                placement: spec.placement,
            },
            layout_version: 1,
            migration_bit: false,
            redistribution: None,
            epoch: 0,
            unique,
        };
        def.unique_keys_ok()
            .map_err(Error::InvalidTableDefinition)?;
        self.create_table_def(def)
    }

    /// Drops a table: waits for statements on it to finish, removes it from the catalog
    /// durably, then deletes its files.
    ///
    /// It first waits (up to [`crate::NodeOptions::lock_timeout`]) for every transaction
    /// that has written to the table to end, holding new writers off meanwhile: a
    /// transaction's rows do not vanish under it.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        self.drop_table_for(name, None)
    }

    /// DROP run by transaction `xid` (which then does not wait for itself).
    fn drop_table_for(&self, name: &str, me: Me<'_>) -> Result<()> {
        let rt = self.table_rt_by_name(name)?;
        let _drained = self.drain_writers(&rt, me)?;
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
            let seg_dir = heap.seg_dir().to_path_buf();
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

    /// Empties a table on every segment. Like PostgreSQL's TRUNCATE it is not MVCC-safe
    /// for readers: a snapshot taken before it sees an empty table after it. It waits (up
    /// to [`crate::NodeOptions::lock_timeout`]) for every transaction that has written to
    /// the table to end, holding new writers off meanwhile, and for running statements.
    pub fn truncate_table(&self, name: &str) -> Result<()> {
        self.truncate_table_for(name, None)
    }

    /// TRUNCATE run by the transaction `xid`, which may itself have written to the
    /// table: it waits for the table's other writers only ([`Txn::truncate`]).
    pub(super) fn truncate_table_for(&self, name: &str, me: Me<'_>) -> Result<()> {
        let rt = self.table_rt_by_name(name)?;
        let _drained = self.drain_writers(&rt, me)?;
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

impl super::Txn {
    /// Fails if the transaction cannot run statements any more.
    fn usable(&mut self) -> Result<()> {
        self.take_cursor_failure();
        match &self.failed {
            Some(cause) => Err(Error::TxnAborted {
                xid: self.xid,
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// TRUNCATE from inside this transaction, which may have written to the table
    /// itself: it waits for the table's other writers only. Not transactional (as
    /// [`Node::truncate_table`]): a rollback does not bring the rows back.
    pub fn truncate(&mut self, table: &str) -> Result<()> {
        self.usable()?;
        self.node.truncate_table_for(table, Some((self.xid, self.cancel.as_deref())))
    }

    /// DROP TABLE from inside this transaction ([`Node::drop_table`], not waiting for
    /// this transaction; not undone by a rollback).
    pub fn drop_table(&mut self, table: &str) -> Result<()> {
        self.usable()?;
        self.node.drop_table_for(table, Some((self.xid, self.cancel.as_deref())))
    }

    /// ADD PRIMARY KEY / UNIQUE from inside this transaction ([`Node::add_unique`], not
    /// waiting for this transaction, whose uncommitted rows count as rows; not undone
    /// by a rollback).
    pub fn add_unique(
        &mut self,
        table: &str,
        name: Option<&str>,
        columns: &[&str],
        primary: bool,
    ) -> Result<()> {
        self.usable()?;
        self.node
            .add_unique_for(table, name, columns, primary, Some((self.xid, self.cancel.as_deref())))
    }
}

impl Node {
    /// `ALTER TABLE t ADD [CONSTRAINT name] PRIMARY KEY | UNIQUE (columns)`: waits for
    /// the table's open writers to end (holding new ones off) and for its running
    /// statements, checks that no two live rows have equal values in `columns` (and, for
    /// a primary key, that none is NULL), then records the constraint durably. From then
    /// on every insert and update is checked against it.
    pub fn add_unique(
        &self,
        table: &str,
        name: Option<&str>,
        columns: &[&str],
        primary: bool,
    ) -> Result<()> {
        self.add_unique_for(table, name, columns, primary, None)
    }

    /// ADD PRIMARY KEY / UNIQUE run by transaction `xid` (which then does not wait for
    /// itself; its own rows are checked like the others).
    fn add_unique_for(
        &self,
        table: &str,
        name: Option<&str>,
        columns: &[&str],
        primary: bool,
        me: Me<'_>,
    ) -> Result<()> {
        self.poison.check()?;
        let rt = self.table_rt_by_name(table)?;
        let _drained = self.drain_writers(&rt, me)?;
        let _ddl = rt.ddl.write();
        if rt.dropped.load(Ordering::Acquire) {
            return Err(Error::NoSuchTable(table.to_string()));
        }
        let mut def = (**rt.def.read()).clone();
        let mut positions = Vec::with_capacity(columns.len());
        for c in columns {
            let i = def.column_index(c).ok_or_else(|| {
                Error::UndefinedColumn(format!(
                    "column {c:?} named in a key does not exist in table {table:?}"
                ))
            })?;
            positions.push(i as u16);
        }
        let owned: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| constraint_name(table, if primary { &[] } else { &owned }, primary));
        crate::catalog::check_name("constraint", &name)?;
        if def.unique.iter().any(|u| u.name == name) {
            return Err(Error::InvalidTableDefinition(format!(
                "relation {table:?} already has a constraint named {name:?}"
            )));
        }
        let newly_not_null: Vec<usize> = if primary {
            positions
                .iter()
                .map(|p| usize::from(*p))
                .filter(|p| def.columns.get(*p).is_some_and(|c| !c.not_null))
                .collect()
        } else {
            Vec::new()
        };
        for p in &newly_not_null {
            if let Some(c) = def.columns.get_mut(*p) {
                c.not_null = true;
            }
        }
        let key = UniqueKey {
            name,
            columns: positions,
            primary,
        };
        def.unique.push(key.clone());
        def.unique_keys_ok().map_err(Error::InvalidTableDefinition)?;
        self.check_existing_unique(&rt, &def, &key, &newly_not_null, me.map(|m| m.0))?;
        self.log_and_put_table(def)
    }

    /// Reads every live row of the table (no writer but `me` is open: the caller drained
    /// them) and fails on a NULL in `not_null` or two rows equal in `key`.
    fn check_existing_unique(
        &self,
        rt: &crate::node::TableRt,
        def: &TableDef,
        key: &UniqueKey,
        not_null: &[usize],
        me: Option<u64>,
    ) -> Result<()> {
        use crate::txn::clog::XidStatus;
        // Live: inserted by a committed transaction (or `me`) and not ended by one.
        let done = |x: u64| Some(x) == me || self.clog().get(x) == XidStatus::Committed;
        let live = |h: &crate::storage::tuple::TupleHeader| {
            done(h.xmin)
                && (h.xmax == 0
                    || h.flags & crate::storage::tuple::FLAG_LOCK_ONLY != 0
                    || !done(h.xmax))
        };
        let segments: Vec<u16> = rt.parts.read().keys().copied().collect();
        let mut seen: std::collections::HashMap<u64, Vec<Vec<crate::catalog::types::Value>>> =
            std::collections::HashMap::new();
        for seg in segments {
            let part = rt.parts.read().get(&seg).cloned();
            let Some(part) = part else { continue };
            let heap = part.heap();
            crate::storage::heapwalk::for_each(heap, |t| {
                if !live(&t.header) {
                    return Ok(std::ops::ControlFlow::Continue(()));
                }
                let mut row = Vec::new();
                crate::storage::heapwalk::decode_row(heap, t, def.column_types(), &mut row)?;
                for p in not_null {
                    if row.get(*p) == Some(&crate::catalog::types::Value::Null) {
                        return Err(Error::NotNullViolation {
                            table: def.name.clone(),
                            column: def.columns.get(*p).map_or("?", |c| &c.name).to_string(),
                        });
                    }
                }
                let values: Vec<_> = key
                    .columns
                    .iter()
                    .filter_map(|c| row.get(usize::from(*c)).cloned())
                    .collect();
                if values.contains(&crate::catalog::types::Value::Null) {
                    return Ok(std::ops::ControlFlow::Continue(()));
                }
                let same = seen.entry(def.key_hash(&key.columns, &row)).or_default();
                if same
                    .iter()
                    .any(|o| o.iter().zip(&values).all(|(a, b)| a.key_eq(b)))
                {
                    return Err(super::unique::violation(def, key, &row));
                }
                same.push(values);
                Ok(std::ops::ControlFlow::Continue(()))
            })?;
        }
        Ok(())
    }
}
