//! The table API: typed tables hash-distributed over a node's segments, read and written
//! through MVCC transactions with row locks.
//!
//! ```
//! use segexpand_engine::{Node, NodeOptions, TableSpec, Type, Value};
//! let dir = tempfile::tempdir().unwrap();
//! let node = Node::create_dir(dir.path(), 4, NodeOptions::default()).unwrap();
//! node.create_table(
//!     &TableSpec::new("accounts")
//!         .not_null("id", Type::Int8)
//!         .column("owner", Type::Varchar(40))
//!         .not_null("balance", Type::Numeric)
//!         .distributed_by(&["id"]),
//! )
//! .unwrap();
//!
//! let mut tx = node.begin().unwrap();
//! tx.insert("accounts", vec![Value::Int8(1), Value::Text("ann".into()), Value::Numeric("10.50".into())]).unwrap();
//! tx.insert("accounts", vec![Value::Int8(2), Value::Null, Value::Numeric("3".into())]).unwrap();
//! tx.commit().unwrap();
//!
//! // Point lookup: reads only the segment the key hashes to.
//! let mut tx = node.begin().unwrap();
//! let rows = tx.get("accounts", &[Value::Int8(1)]).unwrap();
//! assert_eq!(rows[0][2], Value::Numeric("10.5".into()));
//!
//! // UPDATE accounts SET owner = 'bob' WHERE id = 2
//! let n = tx
//!     .update("accounts", &[Value::Int8(2)], |row| {
//!         let mut row = row.to_vec();
//!         row[1] = Value::Text("bob".into());
//!         row
//!     })
//!     .unwrap();
//! assert_eq!(n, 1);
//! // DELETE FROM accounts WHERE id = 1
//! assert_eq!(tx.delete("accounts", &[Value::Int8(1)]).unwrap(), 1);
//! tx.commit().unwrap();
//!
//! // A scan with a predicate, over every segment.
//! let mut tx = node.begin().unwrap();
//! let named = tx.scan("accounts", Some(&|r: &[Value]| r[1] != Value::Null)).unwrap();
//! assert_eq!(named.len(), 1);
//! tx.rollback().unwrap();
//!
//! // Bulk load: one transaction, whole pages at a time; durable when it returns.
//! let loaded = node
//!     .bulk_load("accounts", (10..1010).map(|i| vec![Value::Int8(i), Value::Null, Value::Numeric("0".into())]))
//!     .unwrap();
//! assert_eq!(loaded, 1000);
//! node.close().unwrap();
//! ```

use crate::catalog::hash::{KeyHasher, Placement};
use crate::catalog::types::{encode_row, Type, Value};
use crate::catalog::{Column, Layout, TableDef};
use crate::error::{Error, Result};
use crate::node::{image_body, Claim, Node, Part, PruneStats, TableRt};
use crate::storage::heap::Heap;
use crate::storage::heapwalk::{self, HeapTuple};
use crate::storage::index::KeyedIndex;
use crate::storage::page::Page;
use crate::storage::tuple::{NextVersion, Tid, TupleHeader, FLAG_UPDATED};
use crate::txn::Snapshot;
use crate::wal::record::{Body, PageRef};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A row: one value per column.
pub type Row = Vec<Value>;

/// A WHERE clause: true for the rows a statement is about.
pub type Predicate<'a> = &'a dyn Fn(&[Value]) -> bool;

/// How to create a table.
#[derive(Debug, Clone)]
pub struct TableSpec {
    name: String,
    columns: Vec<Column>,
    key: Option<Vec<String>>,
    placement: Placement,
    segments: Option<u16>,
}

impl TableSpec {
    /// A table called `name`, with no columns yet.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            columns: Vec::new(),
            key: None,
            placement: Placement::Jump,
            segments: None,
        }
    }

    /// Adds a nullable column.
    pub fn column(mut self, name: &str, ty: Type) -> Self {
        self.columns.push(Column {
            name: name.to_string(),
            ty,
            not_null: false,
        });
        self
    }

    /// Adds a NOT NULL column.
    pub fn not_null(mut self, name: &str, ty: Type) -> Self {
        self.columns.push(Column {
            name: name.to_string(),
            ty,
            not_null: true,
        });
        self
    }

    /// `DISTRIBUTED BY (columns)`. Without this or [`TableSpec::distributed_randomly`],
    /// the first column is the key (Greenplum's default).
    pub fn distributed_by(mut self, columns: &[&str]) -> Self {
        self.key = Some(columns.iter().map(|c| c.to_string()).collect());
        self
    }

    /// `DISTRIBUTED RANDOMLY`: rows are spread round-robin and there is no key lookup.
    pub fn distributed_randomly(mut self) -> Self {
        self.key = Some(Vec::new());
        self
    }

    /// Key-to-segment placement (jump consistent hash unless set).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// Spread over the first `n` segments instead of all of them.
    pub fn segments(mut self, n: u16) -> Self {
        self.segments = Some(n);
        self
    }
}

/// A transaction. Every statement (each method call) reads a fresh snapshot: read
/// committed. Writers lock the rows they change and wait for rows other writers hold;
/// readers never wait. After any failed statement the transaction can only roll back.
/// Dropped without [`Txn::commit`], it rolls back.
///
/// The handle owns its node (an `Arc`) and is `Send`: a server session can keep it across
/// `.await`s and hand it between threads, and a C handle can own it.
pub struct Txn {
    node: Arc<Node>,
    xid: u64,
    cid: u32,
    failed: Option<String>,
    done: bool,
    waits: std::cell::Cell<u64>,
}

impl std::fmt::Debug for Txn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn").field("xid", &self.xid).finish()
    }
}

/// What a statement works on: the table, held against DROP/TRUNCATE while it runs.
struct Stmt<'r> {
    rt: &'r TableRt,
    def: Arc<TableDef>,
    snap: Snapshot,
    /// A DML statement's layout pin; given up while it waits for a row lock.
    pin: std::cell::RefCell<Option<crate::lock::RwLockReadGuard<'r, ()>>>,
}

impl Stmt<'_> {
    fn part(&self, segment: u16) -> Result<Arc<Part>> {
        self.rt.parts.read().get(&segment).cloned().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "table {:?} has no part on segment {segment}",
                self.def.name
            ))
        })
    }

    /// Segments a scan must read: those of the layout and of a redistribution target.
    fn scan_segments(&self) -> u16 {
        let target = self.def.target().map_or(0, |t| t.segments);
        self.def.layout.segments.max(target)
    }
}

/// A row version found by a statement: where it is and what it holds.
struct Found {
    segment: u16,
    tid: Tid,
    row: Row,
}

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

    /// Starts a transaction.
    pub fn begin(self: &Arc<Self>) -> Result<Txn> {
        Ok(Txn {
            node: self.clone(),
            xid: self.begin_xid()?,
            cid: 0,
            failed: None,
            done: false,
            waits: std::cell::Cell::new(0),
        })
    }

    /// Loads rows in one transaction, whole pages at a time: each filled page is logged
    /// as one page image (instead of one record per row) and installed directly. Durable
    /// when it returns; on any error nothing of it is visible. Returns the rows loaded.
    pub fn bulk_load<I>(&self, table: &str, rows: I) -> Result<u64>
    where
        I: IntoIterator<Item = Row>,
    {
        let rt = self.table_rt_by_name(table)?;
        let _ddl = rt.ddl.read();
        let _pin = rt.pin();
        if rt.dropped.load(Ordering::Acquire) {
            return Err(Error::NoSuchTable(table.to_string()));
        }
        let def = rt.def.read().clone();
        let xid = self.begin_xid()?;
        match self.bulk_load_inner(&rt, &def, xid, rows) {
            Ok(n) => {
                self.commit_xid(xid)?;
                Ok(n)
            }
            Err(e) => {
                let _ = self.abort_xid(xid);
                Err(e)
            }
        }
    }

    fn bulk_load_inner<I>(&self, rt: &TableRt, def: &TableDef, xid: u64, rows: I) -> Result<u64>
    where
        I: IntoIterator<Item = Row>,
    {
        struct Builder {
            part: Arc<Part>,
            indexes: Vec<Arc<KeyedIndex>>,
            page: Option<Page>,
            /// (index number, key hash, slot) of the rows on `page`.
            index: Vec<(usize, u64, u16)>,
        }
        let (layout, bit) = def.write_layout();
        let natts = def.columns.len() as u16;
        let header = TupleHeader {
            natts,
            ..TupleHeader::new(xid, 0, bit)
        };
        let mut builders: HashMap<u16, Builder> = HashMap::new();
        let mut payload_buf = Vec::new();
        let mut tuple = Vec::new();
        let mut n = 0u64;
        let flush = |b: &mut Builder| -> Result<()> {
            let Some(mut page) = b.page.take() else {
                return Ok(());
            };
            let heap = b.part.heap();
            let id = page.id();
            let page_ref = PageRef {
                segment: id.segment,
                table: id.table,
                block: id.block,
            };
            let lsn = self.wal().append(xid, &image_body(page_ref, &page))?;
            page.set_lsn(lsn);
            heap.install(page);
            for (i, ix) in b.indexes.iter().enumerate() {
                for (_, h, slot) in b.index.iter().filter(|e| e.0 == i) {
                    ix.map.insert(
                        *h,
                        Tid {
                            block: id.block,
                            slot: *slot,
                        },
                    );
                }
            }
            b.index.clear();
            Ok(())
        };
        for row in rows {
            let row = coerce_row(def, row)?;
            payload_buf.clear();
            encode_row(&row, &mut payload_buf);
            tuple.clear();
            tuple.resize(crate::storage::tuple::TUPLE_HEADER_BYTES, 0);
            header.encode(&mut tuple);
            tuple.extend_from_slice(&payload_buf);
            let segment = self.place(layout, def, &row);
            let b = match builders.get_mut(&segment) {
                Some(b) => b,
                None => {
                    let part = rt.parts.read().get(&segment).cloned().ok_or_else(|| {
                        Error::InvalidArgument(format!("no part on segment {segment}"))
                    })?;
                    let indexes = part.indexes.read().clone();
                    builders.entry(segment).or_insert(Builder {
                        indexes,
                        part,
                        page: None,
                        index: Vec::new(),
                    })
                }
            };
            let mut placed = false;
            for _ in 0..2 {
                if b.page.is_none() {
                    let heap = b.part.heap();
                    let block = heap.reserve_block();
                    b.page = Some(Page::new(Node::page_id(
                        heap.segment(),
                        heap.table(),
                        block,
                    )));
                }
                if let Some(slot) = b.page.as_mut().and_then(|p| p.insert(&tuple)) {
                    for (i, ix) in b.indexes.iter().enumerate() {
                        b.index.push((i, def.key_hash(&ix.key, &row), slot));
                    }
                    placed = true;
                    break;
                }
                flush(b)?;
            }
            if !placed {
                return Err(Error::TupleTooLarge {
                    len: tuple.len(),
                    max: crate::storage::page::TUPLE_BYTES_MAX,
                });
            }
            n += 1;
        }
        for b in builders.values_mut() {
            flush(b)?;
        }
        Ok(n)
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

    /// The segment a new row goes to under `layout`.
    fn place(&self, layout: &Layout, def: &TableDef, row: &[Value]) -> u16 {
        if layout.is_random() {
            let n = self.round_robin.fetch_add(1, Ordering::Relaxed);
            (n % u64::from(layout.segments.max(1))) as u16
        } else {
            layout.segment_of(def.row_key_hash(layout, row))
        }
    }
}

/// Checks and converts a row for `def`: one value per column, each of the column's type
/// (NOT NULL honoured).
fn coerce_row(def: &TableDef, row: Row) -> Result<Row> {
    if row.len() != def.columns.len() {
        return Err(Error::InvalidArgument(format!(
            "table {:?} has {} columns but the row has {} values",
            def.name,
            def.columns.len(),
            row.len()
        )));
    }
    row.into_iter()
        .zip(&def.columns)
        .map(|(v, c)| {
            let v = c.ty.coerce(v, &c.name)?;
            if c.not_null && v == Value::Null {
                return Err(Error::NotNullViolation {
                    table: def.name.clone(),
                    column: c.name.clone(),
                });
            }
            Ok(v)
        })
        .collect()
}

impl Txn {
    /// The transaction id.
    pub fn xid(&self) -> u64 {
        self.xid
    }

    /// Times a statement of this transaction waited: for a row lock another transaction
    /// held, or for its table's layout pin while a redistribution step held DML. SELECT
    /// statements never wait, so a read-only transaction always reports 0.
    pub fn lock_waits(&self) -> u64 {
        self.waits.get()
    }

    /// Runs one statement on `table`: checks the transaction is usable, holds the table
    /// against DROP/TRUNCATE, takes the statement's snapshot, and on error marks the
    /// transaction failed.
    ///
    /// A DML statement (`dml`) also pins the table's layout while it runs, so that a
    /// redistribution's start, cancel or flip cannot change it underneath (they wait,
    /// within a cap, for the pins). A SELECT takes no pin: it reads the definition and
    /// then its snapshot, and if the definition changed in between it reads both again,
    /// so that the segments it reads always hold every row its snapshot can see.
    fn statement<T>(
        &mut self,
        table: &str,
        dml: bool,
        f: impl FnOnce(&mut Self, &Stmt<'_>) -> Result<T>,
    ) -> Result<T> {
        if let Some(cause) = &self.failed {
            return Err(Error::TxnAborted {
                xid: self.xid,
                cause: cause.clone(),
            });
        }
        let r = (|| {
            let rt = self.node.table_rt_by_name(table)?;
            let _ddl = rt.ddl.read();
            if rt.dropped.load(Ordering::Acquire) {
                return Err(Error::NoSuchTable(table.to_string()));
            }
            let pin = dml.then(|| self.pin(&rt));
            let stmt = loop {
                let def = rt.def.read().clone();
                let snap = self.node.txns.snapshot(self.xid, self.cid);
                if Arc::ptr_eq(&def, &rt.def.read()) {
                    break Stmt {
                        rt: &rt,
                        def,
                        snap,
                        pin: std::cell::RefCell::new(pin),
                    };
                }
            };
            let r = f(self, &stmt);
            self.cid = self.cid.checked_add(1).ok_or_else(|| {
                Error::InvalidArgument("more than 2^32 statements in one transaction".into())
            })?;
            r
        })();
        if let Err(e) = &r {
            self.failed = Some(e.to_string());
        }
        r
    }

    /// Takes the layout pin of `rt`, counting a wait if a redistribution step holds it.
    fn pin<'r>(&self, rt: &'r TableRt) -> crate::lock::RwLockReadGuard<'r, ()> {
        let (guard, waited) = rt.pin();
        if waited {
            self.waits.set(self.waits.get() + 1);
        }
        guard
    }

    /// INSERT: routes the row to its key's segment.
    pub fn insert(&mut self, table: &str, row: Row) -> Result<()> {
        self.statement(table, true, |tx, st| {
            let row = coerce_row(&st.def, row)?;
            tx.write_version(st, &st.def, &row)?;
            Ok(())
        })
    }

    /// Writes a new version of a row to its segment in the write layout.
    fn write_version(&self, st: &Stmt<'_>, def: &TableDef, row: &[Value]) -> Result<NextVersion> {
        let (layout, bit) = def.write_layout();
        let segment = self.node.place(layout, def, row);
        let part = st.part(segment)?;
        let mut payload = Vec::new();
        encode_row(row, &mut payload);
        let tid = self.node.insert_tuple(
            self.xid,
            self.cid,
            &part,
            bit,
            def.columns.len() as u16,
            &payload,
            Some((def, row)),
        )?;
        Ok(NextVersion { segment, tid })
    }

    /// SELECT ... WHERE key = `key`: the visible rows with this distribution key, read
    /// from the key's segment only.
    pub fn get(&mut self, table: &str, key: &[Value]) -> Result<Vec<Row>> {
        self.statement(table, false, |tx, st| {
            Ok(tx
                .find_by_key(st, key)?
                .into_iter()
                .map(|f| f.row)
                .collect())
        })
    }

    fn find_by_key(&self, st: &Stmt<'_>, key: &[Value]) -> Result<Vec<Found>> {
        let def = &st.def;
        if def.layout.is_random() {
            return Err(Error::InvalidArgument(format!(
                "table {:?} is distributed randomly: it has no key to look up",
                def.name
            )));
        }
        if key.len() != def.layout.key.len() {
            return Err(Error::InvalidArgument(format!(
                "the distribution key of {:?} has {} columns, got {} values",
                def.name,
                def.layout.key.len(),
                key.len()
            )));
        }
        let mut h = KeyHasher::new();
        let mut want = Vec::with_capacity(key.len());
        for (v, k) in key.iter().zip(&def.layout.key) {
            let c = def
                .columns
                .get(usize::from(*k))
                .unwrap_or_else(|| panic!("key column {k} of {:?} out of range", def.name));
            let v = c.ty.coerce(v.clone(), &c.name)?;
            v.hash_into(c.ty, &mut h);
            want.push((usize::from(*k), v));
        }
        let hash = h.finish();
        // While redistributing, the key's segment in the target layout too. With the same
        // key that is one more segment; a new key cannot be computed from the old one, so
        // then every segment of the target layout is a candidate.
        let mut segments = vec![];
        if let Some(t) = def.target() {
            segments.push(def.layout.segment_of(hash));
            let extra: Vec<u16> = if t.key == def.layout.key {
                vec![t.segment_of(hash)]
            } else {
                (0..t.segments).collect()
            };
            for s in extra {
                if !segments.contains(&s) {
                    segments.push(s);
                }
            }
        }
        let clog = self.node.clog();
        let mut out = Vec::new();
        let mut visit = |segment: u16| -> Result<()> {
            let part = st.part(segment)?;
            // The index is found in the set, and the set let go, before any page is read:
            // a lookup holds no lock while it reads the index (it has none) or the pages.
            let ix = part
                .indexes
                .read()
                .iter()
                .find(|ix| ix.key == def.layout.key)
                .cloned();
            let Some(ix) = ix else {
                // The index over this key is gone: a statement that read the definition
                // before a flip changed the key, and cleanup dropped the index since.
                // Rare; a scan of the segment answers it.
                return self.find_by_scan(st, &part, segment, &want, &mut out);
            };
            let index = &ix.map;
            if index.damaged() {
                // The index could not be built from every tuple (see `build_indexes`): it
                // may miss the row, so read the segment, which reports the bad tuple.
                return self.find_by_scan(st, &part, segment, &want, &mut out);
            }
            let mut r = Ok(());
            index.for_each(hash, |tid| {
                if r.is_ok() {
                    r = self.found_at(st, clog, &part, segment, tid, &want, &mut out);
                }
            });
            r
        };
        if segments.is_empty() {
            visit(def.layout.segment_of(hash))?;
        }
        for s in segments {
            visit(s)?;
        }
        Ok(out)
    }

    /// Adds every version on `segment` that the statement sees and whose key columns
    /// equal `want` to `out`, by reading the whole heap.
    fn find_by_scan(
        &self,
        st: &Stmt<'_>,
        part: &Part,
        segment: u16,
        want: &[(usize, Value)],
        out: &mut Vec<Found>,
    ) -> Result<()> {
        let clog = self.node.clog();
        let heap = part.heap();
        heapwalk::for_each(heap, |t| {
            self.match_version(st, clog, heap, segment, t, want, out)?;
            Ok(ControlFlow::Continue(()))
        })
    }

    /// Adds the version at `tid` to `out` if the statement sees it and its key columns
    /// equal `want`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the lookup's context, passed down"
    )]
    fn found_at(
        &self,
        st: &Stmt<'_>,
        clog: &crate::txn::clog::Clog,
        part: &Part,
        segment: u16,
        tid: Tid,
        want: &[(usize, Value)],
        out: &mut Vec<Found>,
    ) -> Result<()> {
        let heap = part.heap();
        let cp = heap.page(tid.block)?;
        let p = cp.page.read();
        match heapwalk::tuple_at(heap, &p, tid.slot)? {
            Some(t) => self.match_version(st, clog, heap, segment, &t, want, out),
            None => Ok(()),
        }
    }

    /// Adds version `t` to `out` if the statement sees it and its key columns equal
    /// `want`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the lookup's context, passed down"
    )]
    fn match_version(
        &self,
        st: &Stmt<'_>,
        clog: &crate::txn::clog::Clog,
        heap: &Heap,
        segment: u16,
        t: &HeapTuple<'_>,
        want: &[(usize, Value)],
        out: &mut Vec<Found>,
    ) -> Result<()> {
        if !st.snap.sees(&t.header, clog) {
            return Ok(());
        }
        let mut row = Vec::new();
        heapwalk::decode_row(heap, t, st.def.column_types(), &mut row)?;
        if want
            .iter()
            .all(|(i, v)| row.get(*i).is_some_and(|r| r.key_eq(v)))
        {
            out.push(Found {
                segment,
                tid: t.tid,
                row,
            });
        }
        Ok(())
    }

    /// Calls `f` with every row this statement sees, segment by segment. `f` runs under a
    /// page's read lock: it must not call back into the node. Returns the rows seen.
    pub fn scan_with(&mut self, table: &str, mut f: impl FnMut(&[Value])) -> Result<u64> {
        self.statement(table, false, |tx, st| {
            tx.scan_found(st, |_, _, row| {
                f(row);
                true
            })
        })
    }

    /// Visits the visible rows; `f` returns false to stop.
    fn scan_found(
        &self,
        st: &Stmt<'_>,
        mut f: impl FnMut(u16, Tid, &[Value]) -> bool,
    ) -> Result<u64> {
        let mut row = Vec::new();
        let clog = self.node.clog();
        let mut n = 0;
        let mut stopped = false;
        for segment in 0..st.scan_segments() {
            let part = st.part(segment)?;
            let heap = part.heap();
            heapwalk::for_each(heap, |t| {
                if !st.snap.sees(&t.header, clog) {
                    return Ok(ControlFlow::Continue(()));
                }
                heapwalk::decode_row(heap, t, st.def.column_types(), &mut row)?;
                n += 1;
                if f(segment, t.tid, &row) {
                    Ok(ControlFlow::Continue(()))
                } else {
                    stopped = true;
                    Ok(ControlFlow::Break(()))
                }
            })?;
            if stopped {
                break;
            }
        }
        Ok(n)
    }

    /// SELECT * [WHERE `pred`]: every visible row on every segment.
    pub fn scan(&mut self, table: &str, pred: Option<Predicate<'_>>) -> Result<Vec<Row>> {
        self.statement(table, false, |tx, st| {
            let mut out = Vec::new();
            tx.scan_found(st, |_, _, row| {
                if pred.is_none_or(|p| p(row)) {
                    out.push(row.to_vec());
                }
                true
            })?;
            Ok(out)
        })
    }

    fn find_where(&self, st: &Stmt<'_>, pred: &dyn Fn(&[Value]) -> bool) -> Result<Vec<Found>> {
        let mut out = Vec::new();
        self.scan_found(st, |segment, tid, row| {
            if pred(row) {
                out.push(Found {
                    segment,
                    tid,
                    row: row.to_vec(),
                });
            }
            true
        })?;
        Ok(out)
    }

    /// UPDATE ... SET (`f`) WHERE key = `key`. `f` gets the newest committed version of
    /// each row (after waiting for a writer that held it) and returns the new row.
    /// Returns the rows updated.
    pub fn update(
        &mut self,
        table: &str,
        key: &[Value],
        f: impl FnMut(&[Value]) -> Row,
    ) -> Result<u64> {
        let key = key.to_vec();
        self.statement(table, true, |tx, st| {
            let found = tx.find_by_key(st, &key)?;
            let recheck = key_matcher(&st.def, &key);
            tx.modify(st, found, &recheck, Some(f))
        })
    }

    /// UPDATE ... SET (`f`) WHERE `pred`, over every segment.
    pub fn update_where(
        &mut self,
        table: &str,
        pred: &dyn Fn(&[Value]) -> bool,
        f: impl FnMut(&[Value]) -> Row,
    ) -> Result<u64> {
        self.statement(table, true, |tx, st| {
            let found = tx.find_where(st, pred)?;
            tx.modify(st, found, pred, Some(f))
        })
    }

    /// DELETE ... WHERE key = `key`. Returns the rows deleted.
    pub fn delete(&mut self, table: &str, key: &[Value]) -> Result<u64> {
        let key = key.to_vec();
        self.statement(table, true, |tx, st| {
            let found = tx.find_by_key(st, &key)?;
            let recheck = key_matcher(&st.def, &key);
            tx.modify(st, found, &recheck, None::<fn(&[Value]) -> Row>)
        })
    }

    /// DELETE ... WHERE `pred`, over every segment.
    pub fn delete_where(&mut self, table: &str, pred: &dyn Fn(&[Value]) -> bool) -> Result<u64> {
        self.statement(table, true, |tx, st| {
            let found = tx.find_where(st, pred)?;
            tx.modify(st, found, pred, None::<fn(&[Value]) -> Row>)
        })
    }

    /// Updates (with `f`) or deletes the rows found. For each: claim the version; if a
    /// running writer holds it, wait and retry; if a committed writer replaced it, follow
    /// to the newer version and re-check it against `recheck` (PostgreSQL's read-committed
    /// rule); if it was deleted, skip it.
    fn modify<F: FnMut(&[Value]) -> Row>(
        &self,
        st: &Stmt<'_>,
        found: Vec<Found>,
        recheck: &dyn Fn(&[Value]) -> bool,
        mut f: Option<F>,
    ) -> Result<u64> {
        let mut n = 0;
        // The definition new versions follow: a wait for a row lock gives up the layout
        // pin (so that a redistribution step is not held by it), and a step that ran
        // meanwhile changes where new versions go. The rows found under the older
        // definition are still right: its lookups covered the newer one's segments,
        // and moved or updated rows are followed to their newest version.
        let mut def = st.def.clone();
        for mut cur in found {
            loop {
                // Versions never change content, so the new row can be computed before
                // the claim.
                let new_row = match f.as_mut() {
                    Some(f) => Some(coerce_row(&st.def, f(&cur.row))?),
                    None => None,
                };
                let part = st.part(cur.segment)?;
                let flags = if new_row.is_some() { FLAG_UPDATED } else { 0 };
                match self
                    .node
                    .claim_version(self.xid, self.cid, &part, cur.tid, flags, None)?
                {
                    Claim::Claimed => {
                        if let Some(row) = new_row {
                            let next = self.write_version(st, &def, &row)?;
                            self.node.claim_version(
                                self.xid,
                                self.cid,
                                &part,
                                cur.tid,
                                FLAG_UPDATED,
                                Some(next),
                            )?;
                        }
                        n += 1;
                        break;
                    }
                    Claim::Busy(holder) => {
                        self.waits.set(self.waits.get() + 1);
                        let pinned = st.pin.borrow_mut().take().is_some();
                        self.node.txns.wait_for(
                            self.xid,
                            holder,
                            self.node.options().lock_timeout,
                        )?;
                        if pinned {
                            *st.pin.borrow_mut() = Some(self.pin(st.rt));
                            def = st.rt.def.read().clone();
                        }
                    }
                    Claim::Ended { next: None, .. } => break,
                    Claim::Ended { xmax, .. } if xmax == self.xid => break,
                    Claim::Ended {
                        next: Some(next),
                        xmax,
                    } => {
                        let npart = st.part(next.segment)?;
                        let nheap = npart.heap();
                        let cp = nheap.page(next.tid.block)?;
                        let p = cp.page.read();
                        let Some(t) = heapwalk::tuple_at(nheap, &p, next.tid.slot)? else {
                            break;
                        };
                        if t.header.xmin != xmax {
                            break; // the newer version is gone (pruned): the row was deleted
                        }
                        let mut row = Vec::new();
                        heapwalk::decode_row(nheap, &t, st.def.column_types(), &mut row)?;
                        if !recheck(&row) {
                            break;
                        }
                        cur = Found {
                            segment: next.segment,
                            tid: next.tid,
                            row,
                        };
                    }
                }
            }
        }
        Ok(n)
    }

    /// Commits. If an earlier statement failed, rolls back instead and says why.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        if let Some(cause) = self.failed.take() {
            self.node.abort_xid(self.xid)?;
            return Err(Error::TxnAborted {
                xid: self.xid,
                cause,
            });
        }
        self.node.commit_xid(self.xid)
    }

    /// Rolls back.
    pub fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.node.abort_xid(self.xid)
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.node.abort_xid(self.xid) {
                log::warn!("rolling back dropped transaction {}: {e}", self.xid);
            }
        }
    }
}

/// A predicate "the key columns equal `key`" (for re-checking a newer version).
fn key_matcher(def: &TableDef, key: &[Value]) -> impl Fn(&[Value]) -> bool {
    let cols: Vec<(usize, Type, Value)> = def
        .layout
        .key
        .iter()
        .zip(key)
        .filter_map(|(k, v)| {
            let c = def.columns.get(usize::from(*k))?;
            Some((usize::from(*k), c.ty, c.ty.coerce(v.clone(), &c.name).ok()?))
        })
        .collect();
    move |row: &[Value]| {
        cols.iter()
            .all(|(i, _, v)| row.get(*i).is_some_and(|r| r.key_eq(v)))
    }
}
