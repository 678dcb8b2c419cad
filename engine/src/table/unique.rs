//! PRIMARY KEY and UNIQUE: the check a write makes before its new version goes in.
//!
//! Every unique constraint contains the distribution key of the table's layout and of a
//! redistribution target (`TableDef::unique_keys_ok`), so all versions with one value of
//! the constraint's columns live on one segment per layout: the check reads the key's
//! segment in the layout and in the target (both, while rows move), through the key
//! index of that layout's key. It looks at every version, not at a snapshot: a version
//! of a running transaction is a conflict if that transaction commits, so the writer
//! waits for it (giving up its stripe and layout pin) and checks again — PostgreSQL's
//! rule. Two writers of one value cannot both find it free: each holds the stripe of
//! its distribution-key hash from the check until its version and index entry are in
//! (rows that conflict under any constraint have equal distribution-key values, so
//! equal hashes and one stripe).

use super::{Stmt, Txn};

use crate::node::{Node, TableRt};

use crate::catalog::types::{Row, Value};
use crate::catalog::{TableDef, UniqueKey};
use crate::error::{Error, Result};
use crate::storage::heapwalk::{self, HeapTuple};
use crate::storage::tuple::{NextVersion, FLAG_LOCK_ONLY};
use crate::txn::clog::XidStatus;
use std::ops::ControlFlow;
use std::sync::Arc;

/// What the check found for one constraint.
pub(super) enum Verdict {
    /// No other live version has the values.
    Free,
    /// A running transaction wrote (or deleted) a version with the values: wait for it.
    Wait(u64),
    /// A committed (or this transaction's own) live version has them.
    Taken,
}

impl Txn {
    /// Writes a new version of `row` to its segment in the write layout, after checking
    /// the table's unique constraints (if any) under the key's stripe.
    pub(super) fn write_version(
        &self,
        st: &Stmt<'_>,
        def: &TableDef,
        row: &[Value],
    ) -> Result<NextVersion> {
        if def.unique.is_empty() {
            return self.put_version(st, def, row);
        }
        let mut def = Arc::new(def.clone());
        loop {
            let stripe = st.rt.unique_stripe(def.key_hash(&def.layout.key, row));
            let mut wait = None;
            for u in &def.unique {
                match self.node.unique_verdict(self.xid, st.rt, &def, u, row)? {
                    Verdict::Free => {}
                    Verdict::Taken => return Err(violation(&def, u, row)),
                    Verdict::Wait(holder) => {
                        wait = Some(holder);
                        break;
                    }
                }
            }
            let Some(holder) = wait else {
                let next = self.put_version(st, &def, row);
                drop(stripe);
                return next;
            };
            drop(stripe);
            let pinned = st.pin.borrow_mut().take().is_some();
            self.wait_for_xid(holder)?;
            if pinned {
                *st.pin.borrow_mut() = Some(self.pin(st.rt));
                def = st.rt.def.read().clone();
            }
        }
    }

}

impl Node {
    /// Whether `row`'s values of `u` are free, taken, or held by a running transaction,
    /// as transaction `me` sees them.
    pub(super) fn unique_verdict(
        &self,
        me: u64,
        rt: &TableRt,
        def: &TableDef,
        u: &UniqueKey,
        row: &[Value],
    ) -> Result<Verdict> {
        let cols: Vec<usize> = u.columns.iter().map(|c| usize::from(*c)).collect();
        // NULL is never equal to anything: a row with a NULL in the key conflicts with none.
        if cols.iter().any(|c| row.get(*c).is_none_or(|v| *v == Value::Null)) {
            return Ok(Verdict::Free);
        }
        let mut verdict = Verdict::Free;
        let mut segments_seen: Vec<u16> = Vec::new();
        for layout in std::iter::once(&def.layout).chain(def.target()) {
            let hash = def.key_hash(&layout.key, row);
            let segment = layout.segment_of(hash);
            if segments_seen.contains(&segment) && layout.key == def.layout.key {
                continue;
            }
            segments_seen.push(segment);
            let part = rt.parts.read().get(&segment).cloned().ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "table {:?} has no part on segment {segment}",
                    def.name
                ))
            })?;
            let heap = part.heap();
            let mut judge = |t: &HeapTuple<'_>| -> Result<ControlFlow<()>> {
                let v = self.judge_version(me, heap, def, t, &cols, row)?;
                match v {
                    Verdict::Free => Ok(ControlFlow::Continue(())),
                    Verdict::Taken => {
                        verdict = Verdict::Taken;
                        Ok(ControlFlow::Break(()))
                    }
                    Verdict::Wait(x) => {
                        verdict = Verdict::Wait(x);
                        Ok(ControlFlow::Continue(()))
                    }
                }
            };
            let ix = part
                .indexes
                .read()
                .iter()
                .find(|ix| ix.key == layout.key)
                .cloned();
            match ix {
                Some(ix) if !ix.map.damaged() => {
                    let mut tids = Vec::new();
                    ix.map.for_each(hash, |tid| tids.push(tid));
                    for tid in tids {
                        let cp = heap.page(tid.block)?;
                        let p = cp.page.read();
                        if let Some(t) = heapwalk::tuple_at(heap, &p, tid.slot)? {
                            if judge(&t)?.is_break() {
                                break;
                            }
                        }
                    }
                }
                // No index over this key (a statement that read the definition before a
                // flip, and cleanup dropped it since) or one that may miss versions: the
                // segment's heap answers.
                _ => heapwalk::for_each(heap, |t| judge(t))?,
            }
            if let Verdict::Taken = verdict {
                return Ok(verdict);
            }
        }
        Ok(verdict)
    }

    /// Whether version `t` holds `row`'s values of `cols` and is live, or may become so.
    fn judge_version(
        &self,
        me: u64,
        heap: &crate::storage::heap::Heap,
        def: &TableDef,
        t: &HeapTuple<'_>,
        cols: &[usize],
        row: &[Value],
    ) -> Result<Verdict> {
        let mut other = Vec::new();
        heapwalk::decode_row(heap, t, def.column_types(), &mut other)?;
        let equal = cols.iter().all(|c| match (other.get(*c), row.get(*c)) {
            (Some(a), Some(b)) => a.key_eq(b),
            _ => false,
        });
        if !equal {
            return Ok(Verdict::Free);
        }
        let h = &t.header;
        let inserted = match self.status(me, h.xmin) {
            Status::Aborted => return Ok(Verdict::Free),
            Status::Running(x) => return Ok(Verdict::Wait(x)),
            Status::Mine | Status::Committed => true,
        };
        debug_assert!(inserted);
        if h.xmax == 0 || h.flags & FLAG_LOCK_ONLY != 0 {
            return Ok(Verdict::Taken);
        }
        Ok(match self.status(me, h.xmax) {
            // Deleted or replaced by this transaction or a committed one: gone.
            Status::Mine | Status::Committed => Verdict::Free,
            Status::Aborted => Verdict::Taken,
            Status::Running(x) => Verdict::Wait(x),
        })
    }

    /// The state of transaction `x` as seen by this one. "Still running?" is asked
    /// before the commit log (see `Node::claim_version`): a transaction records its
    /// status before it leaves the running set.
    fn status(&self, me: u64, x: u64) -> Status {
        if x == me {
            Status::Mine
        } else if self.txns.is_running(x) {
            Status::Running(x)
        } else if self.clog().get(x) == XidStatus::Committed {
            Status::Committed
        } else {
            Status::Aborted
        }
    }
}

enum Status {
    Mine,
    Running(u64),
    Committed,
    Aborted,
}

/// The error for `row` colliding on `u`, with PostgreSQL's detail.
pub(super) fn violation(def: &TableDef, u: &UniqueKey, row: &[Value]) -> Error {
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for c in &u.columns {
        let i = usize::from(*c);
        columns.push(def.columns.get(i).map_or("?", |c| &c.name).to_string());
        values.push(row.get(i).map_or_else(String::new, value_text));
    }
    Error::UniqueViolation {
        constraint: u.name.clone(),
        columns: columns.join(", "),
        values: values.join(", "),
    }
}

/// A value as the detail of a violation shows it.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => if *b { "t" } else { "f" }.into(),
        Value::Int2(i) => i.to_string(),
        Value::Int4(i) => i.to_string(),
        Value::Int8(i) => i.to_string(),
        Value::Float8(f) => f.to_string(),
        Value::Numeric(s) | Value::Text(s) => s.clone(),
        Value::Date(d) => format!("date {d}"),
        Value::Timestamp(t) => format!("timestamp {t}"),
    }
}

/// The unique check of a bulk load: each row against the table (whose other writers the
/// load holds off) and against the rows loaded before it.
pub(super) struct LoadChecker {
    /// Per constraint: values hash → the constraint's values of the rows loaded with it.
    seen: Vec<std::collections::HashMap<u64, Vec<Row>>>,
}

impl LoadChecker {
    pub(super) fn new(def: &TableDef) -> Self {
        Self {
            seen: def.unique.iter().map(|_| Default::default()).collect(),
        }
    }

    /// Checks `row` (coerced to the table's types first); returns it as given.
    pub(super) fn check(
        &mut self,
        node: &Node,
        xid: u64,
        rt: &TableRt,
        def: &TableDef,
        row: Row,
    ) -> Result<Row> {
        let coerced = super::spec::coerce_row(def, row.clone())?;
        for (u, seen) in def.unique.iter().zip(&mut self.seen) {
            loop {
                match node.unique_verdict(xid, rt, def, u, &coerced)? {
                    Verdict::Free => break,
                    Verdict::Taken => return Err(violation(def, u, &coerced)),
                    // Only a mover batch can be running on a table the load holds other
                    // writers off: it ends within its batch.
                    Verdict::Wait(holder) => {
                        node.txns
                            .wait_for(xid, holder, node.options().lock_timeout)?
                    }
                }
            }
            if u.columns
                .iter()
                .any(|c| coerced.get(usize::from(*c)).is_none_or(|v| *v == Value::Null))
            {
                continue;
            }
            let values: Row = u
                .columns
                .iter()
                .filter_map(|c| coerced.get(usize::from(*c)).cloned())
                .collect();
            let same = seen.entry(def.key_hash(&u.columns, &coerced)).or_default();
            let equal = |r: &Row| r.iter().zip(&values).all(|(a, b)| a.key_eq(b));
            if same.iter().any(equal) {
                return Err(violation(def, u, &coerced));
            }
            same.push(values);
        }
        Ok(row)
    }
}
