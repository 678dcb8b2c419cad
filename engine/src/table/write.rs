//! Writes: INSERT, UPDATE and DELETE by key or predicate — where a row goes, and each
//! found version claimed under its row lock and replaced or ended.

use super::handle::TableRef;
use super::spec::coerce_row;
use super::{Found, Row, Stmt, Txn};

use crate::catalog::types::{encode_row, Type, Value};
use crate::catalog::{Layout, TableDef};
use crate::error::Result;
use crate::node::{Claim, Node};
use crate::storage::heapwalk::{self};
use crate::storage::tuple::{NextVersion, FLAG_UPDATED};
use std::sync::atomic::Ordering;

impl Node {
    /// The segment a new row goes to under `layout`.
    pub(super) fn place(&self, layout: &Layout, def: &TableDef, row: &[Value]) -> u16 {
        if layout.is_random() {
            let n = self.round_robin.fetch_add(1, Ordering::Relaxed);
            (n % u64::from(layout.segments.max(1))) as u16
        } else {
            layout.segment_of(def.row_key_hash(layout, row))
        }
    }
}

impl Txn {
    /// INSERT: routes the row to its key's segment.
    pub fn insert(&mut self, table: impl TableRef, row: Row) -> Result<()> {
        self.statement(&table, true, |tx, st| {
            let row = coerce_row(&st.def, row)?;
            tx.write_version(st, &st.def, &row)?;
            Ok(())
        })
    }

    /// Writes a new version of a row to its segment in the write layout (the unique
    /// constraints already checked: `unique.rs`).
    pub(super) fn put_version(
        &self,
        st: &Stmt<'_>,
        def: &TableDef,
        row: &[Value],
    ) -> Result<NextVersion> {
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

    /// UPDATE ... SET (`f`) WHERE key = `key`. `f` gets the newest committed version of
    /// each row (after waiting for a writer that held it) and returns the new row.
    /// Returns the rows updated.
    pub fn update(
        &mut self,
        table: impl TableRef,
        key: &[Value],
        f: impl FnMut(&[Value]) -> Row,
    ) -> Result<u64> {
        let key = key.to_vec();
        self.statement(&table, true, |tx, st| {
            let found = tx.find_by_key(st, &key)?;
            let recheck = key_matcher(&st.def, &key);
            tx.modify(st, found, &recheck, Some(f))
        })
    }

    /// UPDATE ... SET (`f`) WHERE `pred`, over every segment.
    pub fn update_where(
        &mut self,
        table: impl TableRef,
        pred: &dyn Fn(&[Value]) -> bool,
        f: impl FnMut(&[Value]) -> Row,
    ) -> Result<u64> {
        self.statement(&table, true, |tx, st| {
            let found = tx.find_where(st, pred)?;
            tx.modify(st, found, pred, Some(f))
        })
    }

    /// DELETE ... WHERE key = `key`. Returns the rows deleted.
    pub fn delete(&mut self, table: impl TableRef, key: &[Value]) -> Result<u64> {
        let key = key.to_vec();
        self.statement(&table, true, |tx, st| {
            let found = tx.find_by_key(st, &key)?;
            let recheck = key_matcher(&st.def, &key);
            tx.modify(st, found, &recheck, None::<fn(&[Value]) -> Row>)
        })
    }

    /// DELETE ... WHERE `pred`, over every segment.
    pub fn delete_where(&mut self, table: impl TableRef, pred: &dyn Fn(&[Value]) -> bool) -> Result<u64> {
        self.statement(&table, true, |tx, st| {
            let found = tx.find_where(st, pred)?;
            tx.modify(st, found, pred, None::<fn(&[Value]) -> Row>)
        })
    }

    /// Updates (with `f`) or deletes the rows found. For each: claim the version; if a
    /// running writer holds it, wait and retry; if a committed writer replaced it, follow
    /// to the newer version and re-check it against `recheck` (PostgreSQL's read-committed
    /// rule); if it was deleted, skip it.
    pub(super) fn modify<F: FnMut(&[Value]) -> Row>(
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
                    .claim_version(self.xid, self.cid, &part, cur.tid, flags)?
                {
                    Claim::Claimed => {
                        if let Some(row) = new_row {
                            let next = self.write_version(st, &def, &row)?;
                            self.node.link_version(
                                self.xid,
                                self.cid,
                                &part,
                                cur.tid,
                                FLAG_UPDATED,
                                next,
                            )?;
                        }
                        n += 1;
                        break;
                    }
                    Claim::Busy(holder) => {
                        let pinned = st.pin.borrow_mut().take().is_some();
                        self.wait_for_xid(holder)?;
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
}

/// A predicate "the key columns equal `key`" (for re-checking a newer version).
pub(super) fn key_matcher(def: &TableDef, key: &[Value]) -> impl Fn(&[Value]) -> bool {
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
