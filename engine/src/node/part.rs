//! One table on one segment at run time (a *part*): its heap, key indexes and visibility
//! map; a table's run-time state (definition, parts, DDL lock, DML gate, layout pin);
//! loading a part's VM and building its key indexes from the heap.

use super::{io, Node};

use crate::catalog::TableDef;
use crate::error::{Error, Result};
use crate::lock::{rank, Condvar, Mutex, RwLock};
use crate::storage::heap::Heap;
use crate::storage::heapwalk;
use crate::storage::index::KeyedIndex;
use crate::storage::page::Page;
use crate::storage::tuple::Tid;
use crate::storage::vm::VisibilityMap;
use crate::vfs::read_all;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    raw! {
        /// The heap.
        pub fn heap(&self) -> &Arc<Heap> {
            &self.heap
        }
    }

    raw! {
        /// Entries in each key index (for tests of index upkeep).
        pub fn index_entries(&self) -> Vec<usize> {
            self.indexes.read().iter().map(|ix| ix.map.len()).collect()
        }
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
    /// The [`Node::instance`] it belongs to.
    pub(crate) node: u64,
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
    pub(super) gate_mx: Mutex<(), rank::DmlGate>,
    pub(super) gate_cv: Condvar,
    /// Set (under `ddl` held exclusively) when the table is dropped.
    pub(crate) dropped: AtomicBool,
    pub(crate) parts: RwLock<HashMap<u16, Arc<Part>>, rank::Parts>,
    /// Transactions that have written to the table and not ended (`writers.rs`).
    pub(crate) writers: super::writers::WriterSet,
    /// Stripe locks of unique checks (`writers.rs`, [`TableRt::unique_stripe`]).
    pub(crate) unique: Vec<Mutex<(), rank::UniqueCheck>>,
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

impl Node {
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

    raw! {
        /// Table `table` on `segment`.
        pub fn part(&self, segment: u16, table: u32) -> Result<Arc<Part>> {
            self.table_rt(table)?
                .parts
                .read()
                .get(&segment)
                .cloned()
                .ok_or_else(|| Error::InvalidArgument(format!("no table {table} on segment {segment}")))
        }
    }

    raw! {
        /// The heap of `table` on `segment`.
        pub fn heap(&self, segment: u16, table: u32) -> Result<Arc<Heap>> {
            Ok(self.part(segment, table)?.heap.clone())
        }
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
    pub(super) fn load_vm(&self, table: &TableRt, part: &Part) -> Result<bool> {
        let heap = &part.heap;
        let (seg, id) = (heap.segment(), heap.table());
        let path = heap.seg_dir().join(crate::storage::vm::vm_file_name(id));
        let rel = path.strip_prefix(&self.dir).unwrap_or(&path).to_path_buf();
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
    pub(super) fn rebuild_index(
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
        let mut entries: Vec<Vec<(u64, Tid)>> = vec![Vec::new(); ixs.len()];
        let built = heapwalk::for_each(heap, |t| {
            heapwalk::decode_row(heap, t, def.column_types(), &mut row)?;
            for (ix, e) in ixs.iter().zip(entries.iter_mut()) {
                e.push((def.key_hash(&ix.key, &row), t.tid));
            }
            Ok(ControlFlow::Continue(()))
        });
        for (ix, e) in ixs.iter().zip(&entries) {
            ix.map.reserve(e.len());
            ix.map.insert_many(e);
        }
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
}
