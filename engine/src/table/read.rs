//! Reads at a statement's snapshot: point lookups by distribution key (through the key
//! index, or the segment when the index cannot be trusted) and scans.

use super::handle::TableRef;
use super::{Found, Predicate, Row, Stmt, Txn};

use crate::catalog::hash::KeyHasher;
use crate::catalog::types::Value;
use crate::error::{Error, Result};
use crate::node::Part;
use crate::storage::heap::Heap;
use crate::storage::heapwalk::{self, HeapTuple};
use crate::storage::tuple::Tid;
use std::ops::ControlFlow;

impl Txn {
    /// SELECT ... WHERE key = `key`: the visible rows with this distribution key, read
    /// from the key's segment only.
    pub fn get(&mut self, table: impl TableRef, key: &[Value]) -> Result<Vec<Row>> {
        self.statement(&table, false, |tx, st| {
            Ok(tx
                .find_by_key(st, key)?
                .into_iter()
                .map(|f| f.row)
                .collect())
        })
    }

    pub(super) fn find_by_key(&self, st: &Stmt<'_>, key: &[Value]) -> Result<Vec<Found>> {
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
            let mut dead = Vec::new();
            index.for_each(hash, |tid| {
                if r.is_ok() {
                    match self.found_at(st, clog, &part, segment, tid, &want, &mut out) {
                        Ok(true) => dead.push(tid),
                        Ok(false) => {}
                        Err(e) => r = Err(e),
                    }
                }
            });
            // Versions every snapshot, running or future, sees as deleted: their index
            // entries go now (PostgreSQL's killed index tuples), so a row updated
            // thousands of times since the last vacuum is not found by walking
            // thousands of dead versions. Vacuum removes the versions themselves.
            if !dead.is_empty() {
                let horizon = self.node.txns.horizon();
                for tid in dead {
                    if self.dead_to_all(&part, tid, horizon)? {
                        index.remove(hash, tid);
                    }
                }
            }
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
    pub(super) fn find_by_scan(
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
    /// equal `want`; says whether a committed transaction below the snapshot's xmin
    /// ended it (a candidate for [`Txn::dead_to_all`]).
    #[expect(
        clippy::too_many_arguments,
        reason = "the lookup's context, passed down"
    )]
    pub(super) fn found_at(
        &self,
        st: &Stmt<'_>,
        clog: &crate::txn::clog::Clog,
        part: &Part,
        segment: u16,
        tid: Tid,
        want: &[(usize, Value)],
        out: &mut Vec<Found>,
    ) -> Result<bool> {
        let heap = part.heap();
        let cp = heap.page(tid.block)?;
        let p = cp.page.read();
        match heapwalk::tuple_at(heap, &p, tid.slot)? {
            Some(t) => {
                self.match_version(st, clog, heap, segment, &t, want, out)?;
                // Only versions ended below this snapshot's xmin are worth a look at the
                // horizon (which takes the transaction manager's lock): newer ones are
                // almost never dead to all yet, and a later lookup or vacuum gets them.
                // `dead_to_all` decides; this only spares the lock.
                Ok(t.header.xmax < st.snap.xmin && ended_by_commit(&t.header, clog))
            }
            None => Ok(false),
        }
    }

    /// Whether the version at `tid` was deleted or replaced by a committed transaction
    /// below `horizon` (the oldest xid any running snapshot may see as running): no
    /// snapshot can see it, now or later — vacuum's rule (`Node::prune`).
    fn dead_to_all(&self, part: &Part, tid: Tid, horizon: u64) -> Result<bool> {
        let heap = part.heap();
        let cp = heap.page(tid.block)?;
        let p = cp.page.read();
        Ok(match heapwalk::tuple_at(heap, &p, tid.slot)? {
            Some(t) => {
                t.header.xmax < horizon && ended_by_commit(&t.header, self.node.clog())
            }
            None => false,
        })
    }

    /// Adds version `t` to `out` if the statement sees it and its key columns equal
    /// `want`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the lookup's context, passed down"
    )]
    pub(super) fn match_version(
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

    /// Calls `f` with every row this statement sees, segment by segment, through a scan
    /// cursor: `f` runs outside every lock. Returns the rows seen.
    pub fn scan_with(&mut self, table: impl TableRef, mut f: impl FnMut(&[Value])) -> Result<u64> {
        let mut cursor = self.scan_cursor(table, super::ScanOptions::default())?;
        let mut n = 0;
        while let Some(batch) = cursor.next_batch()? {
            for row in &batch {
                f(row);
            }
            n += batch.len() as u64;
        }
        Ok(n)
    }

    /// Visits the visible rows; `f` returns false to stop.
    pub(super) fn scan_found(
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
    pub fn scan(&mut self, table: impl TableRef, pred: Option<Predicate<'_>>) -> Result<Vec<Row>> {
        self.statement(&table, false, |tx, st| {
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

    pub(super) fn find_where(
        &self,
        st: &Stmt<'_>,
        pred: &dyn Fn(&[Value]) -> bool,
    ) -> Result<Vec<Found>> {
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
}

/// Whether a committed transaction deleted or replaced the version (a row lock only,
/// `FLAG_LOCK_ONLY`, does not end it).
fn ended_by_commit(h: &crate::storage::tuple::TupleHeader, clog: &crate::txn::clog::Clog) -> bool {
    h.xmax != 0
        && h.flags & crate::storage::tuple::FLAG_LOCK_ONLY == 0
        && clog.get(h.xmax) == crate::txn::clog::XidStatus::Committed
}
