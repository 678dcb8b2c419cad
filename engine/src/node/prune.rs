//! Pruning (vacuum of one page at a time): removing versions no snapshot can see, with
//! their key-index entries, logged as page images.

use super::{image_body, Node};

use crate::error::Result;
use crate::storage::heapwalk;
use crate::storage::index::KeyedIndex;
use crate::storage::tuple::Tid;
use crate::txn::clog::XidStatus;
use crate::wal::record::PageRef;
use std::sync::Arc;

impl Node {
    raw! {
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
                let mut dead_rows: Vec<(Tid, crate::catalog::types::Row)> = Vec::new();
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
    }
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
