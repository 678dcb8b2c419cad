//! Scan cursors: a table read in batches of rows at one statement's snapshot, with a
//! projection and a predicate pushed down, over every segment or a chosen few (so a query
//! engine can read segments in parallel, one cursor each).
//!
//! Cursors opened together ([`Txn::scan_cursors`]) share one snapshot, so segments read in
//! parallel add up to one consistent table (two statements, each its own snapshot under
//! read committed, would not: a transfer committed between them would be seen half).
//!
//! A batch is read page by page: under a page's read lock the cursor only decodes the
//! versions its snapshot sees; the predicate (caller code) and the projection run after
//! the lock is let go. Between batches the cursor holds no lock at all — writers, the
//! mover and flips go on — and the snapshot keeps every version it sees from vacuum
//! (its transaction is running, so the horizon stays at or below its `xmin`).

use super::handle::TableRef;
use super::{Row, Stmt, Txn};
use crate::catalog::types::Value;
use crate::catalog::TableDef;
use crate::error::{Error, Result};
use crate::node::Node;
use crate::node::TableRt;
use crate::storage::heapwalk;
use crate::txn::Snapshot;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

/// Rows per batch when [`ScanOptions::batch_rows`] is 0.
pub const BATCH_ROWS_DEFAULT: usize = 1024;

/// A row predicate pushed down into a scan.
pub type RowFilter = Arc<dyn Fn(&[Value]) -> bool + Send + Sync>;

/// What a scan cursor reads.
#[derive(Clone, Default)]
pub struct ScanOptions {
    /// Column positions to return, in this order (`None`: every column).
    pub columns: Option<Vec<usize>>,
    /// Rows to return: those for which this is true (`None`: every row). It sees the
    /// whole row, before projection.
    pub filter: Option<RowFilter>,
    /// Segments to read (`None`: every segment that may hold the table's rows).
    pub segments: Option<Vec<u16>>,
    /// Rows per batch, at most (only the last batch has fewer); 0 means
    /// [`BATCH_ROWS_DEFAULT`].
    pub batch_rows: usize,
}

impl std::fmt::Debug for ScanOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanOptions")
            .field("columns", &self.columns)
            .field("filter", &self.filter.as_ref().map(|_| "..."))
            .field("segments", &self.segments)
            .field("batch_rows", &self.batch_rows)
            .finish()
    }
}

/// A scan in progress: [`Cursor::next_batch`] until it returns `None`. It borrows its
/// transaction, so the transaction cannot end (and its snapshot's versions be vacuumed)
/// while the cursor lives; it is `Send`, so cursors of one snapshot can be read on
/// several threads.
pub struct Cursor<'t> {
    txn: PhantomData<&'t ()>,
    node: Arc<Node>,
    /// Where a failed batch records its error: the transaction then fails, as after a
    /// failed statement.
    failed: Arc<OnceLock<String>>,
    rt: Arc<TableRt>,
    def: Arc<TableDef>,
    snap: Snapshot,
    opts: ScanOptions,
    /// (segment, blocks it had when the cursor opened), in reading order.
    segments: Vec<(u16, u32)>,
    /// Where the next batch starts: an index into `segments`, and a block.
    at: usize,
    block: u32,
    /// Rows read but not yet returned (a page's rows beyond a batch's end).
    pending: std::collections::VecDeque<Row>,
}

impl std::fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("table", &self.def.name)
            .field("segments", &self.segments)
            .field("at", &self.at)
            .field("block", &self.block)
            .finish()
    }
}

impl Txn {
    /// Opens a scan of `table` at a new statement snapshot (one command of this
    /// transaction: it sees the transaction's earlier commands, not its later ones).
    /// Bad options — a column or segment the table does not have — are refused here.
    pub fn scan_cursor(&mut self, table: impl TableRef, opts: ScanOptions) -> Result<Cursor<'_>> {
        let segments = opts.segments.clone();
        let mut v = self.scan_cursors(table, opts, &[segments])?;
        v.pop()
            .ok_or_else(|| Error::InvalidArgument("no cursor opened".into()))
    }

    /// Opens one cursor per entry of `groups` (each a set of segments, `None`: all),
    /// every one at the same new statement snapshot: for reading segments in parallel
    /// (`opts.segments` is ignored).
    pub fn scan_cursors(
        &mut self,
        table: impl TableRef,
        opts: ScanOptions,
        groups: &[Option<Vec<u16>>],
    ) -> Result<Vec<Cursor<'_>>> {
        let failed = self.cursor_failed.clone();
        let node = self.node.clone();
        self.statement(&table, false, |_, st| {
            groups
                .iter()
                .map(|g| {
                    let opts = ScanOptions {
                        segments: g.clone(),
                        ..opts.clone()
                    };
                    Ok(Cursor {
                        txn: PhantomData,
                        node: node.clone(),
                        failed: failed.clone(),
                        rt: st.rt.clone(),
                        def: st.def.clone(),
                        snap: st.snap.clone(),
                        segments: cursor_segments(st, &opts)?,
                        opts,
                        at: 0,
                        block: 0,
                        pending: std::collections::VecDeque::new(),
                    })
                })
                .collect()
        })
    }
}

/// The segments a cursor reads, each with its block count now (versions the snapshot
/// sees are all in blocks that exist now), after checking the options against the table.
fn cursor_segments(st: &Stmt<'_>, opts: &ScanOptions) -> Result<Vec<(u16, u32)>> {
    let ncols = st.def.columns.len();
    if let Some(c) = opts.columns.iter().flatten().find(|c| **c >= ncols) {
        return Err(Error::UndefinedColumn(format!(
            "column {c} of {:?}, which has {ncols} columns",
            st.def.name
        )));
    }
    let all = st.scan_segments();
    let wanted: Vec<u16> = match &opts.segments {
        None => (0..all).collect(),
        Some(s) => s.clone(),
    };
    let mut out: Vec<(u16, u32)> = Vec::with_capacity(wanted.len());
    for s in wanted {
        if out.iter().any(|(seen, _)| *seen == s) {
            return Err(Error::InvalidArgument(format!(
                "segment {s} named twice: its rows would be returned twice"
            )));
        }
        if s >= all {
            return Err(Error::InvalidArgument(format!(
                "segment {s}: table {:?} spans segments 0..{all}",
                st.def.name
            )));
        }
        out.push((s, st.part(s)?.heap().nblocks()));
    }
    Ok(out)
}

impl Cursor<'_> {
    /// The next batch of rows (projected), or `None` when the scan is done. An error
    /// ends the scan and fails the transaction, as a failed statement does.
    pub fn next_batch(&mut self) -> Result<Option<Vec<Row>>> {
        let r = self.read_batch();
        if let Err(e) = &r {
            let _ = self.failed.set(e.to_string());
            self.at = self.segments.len();
            self.pending.clear();
        }
        r
    }

    fn read_batch(&mut self) -> Result<Option<Vec<Row>>> {
        let want = match self.opts.batch_rows {
            0 => BATCH_ROWS_DEFAULT,
            n => n,
        };
        // A dropped table ends the scan at the next batch, even one that rows already
        // read could fill.
        if self.rt.dropped.load(Ordering::Acquire) {
            return Err(Error::NoSuchTable(self.def.name.clone()));
        }
        while self.pending.len() < want && self.at < self.segments.len() {
            self.read_page()?;
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let n = want.min(self.pending.len());
        Ok(Some(self.pending.drain(..n).collect()))
    }

    /// Reads the next page of the scan into `pending` (filtered and projected), or moves
    /// to the next segment.
    fn read_page(&mut self) -> Result<()> {
        let Some(&(segment, end)) = self.segments.get(self.at) else {
            return Ok(());
        };
        if self.block >= end {
            self.at += 1;
            self.block = 0;
            return Ok(());
        }
        // The DDL lock is held for one page at a time: a DROP or TRUNCATE waits for it,
        // and a dropped table ends the scan with an error.
        let _ddl = self.rt.ddl.read();
        if self.rt.dropped.load(Ordering::Acquire) {
            return Err(Error::NoSuchTable(self.def.name.clone()));
        }
        let part = self.rt.parts.read().get(&segment).cloned().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "table {:?} has no segment {segment} any more",
                self.def.name
            ))
        })?;
        let heap = part.heap();
        let clog = self.node.clog();
        let mut seen: Vec<Row> = Vec::new();
        {
            let cp = heap.page(self.block)?;
            let page = cp.page.read();
            for t in heapwalk::tuples(heap, &page) {
                let t = t?;
                if self.snap.sees(&t.header, clog) {
                    let mut row = Vec::with_capacity(self.def.columns.len());
                    heapwalk::decode_row(heap, &t, self.def.column_types(), &mut row)?;
                    seen.push(row);
                }
            }
        }
        self.block += 1;
        for row in seen {
            if self.opts.filter.as_ref().is_none_or(|f| f(&row)) {
                let row = self.project(row);
                self.pending.push_back(row);
            }
        }
        Ok(())
    }

    fn project(&self, row: Row) -> Row {
        match &self.opts.columns {
            None => row,
            Some(cols) => cols
                .iter()
                .map(|c| row.get(*c).cloned().unwrap_or(Value::Null))
                .collect(),
        }
    }

    /// The names of the columns each row has, in order.
    pub fn column_names(&self) -> Vec<String> {
        let all = &self.def.columns;
        match &self.opts.columns {
            None => all.iter().map(|c| c.name.clone()).collect(),
            Some(cols) => cols
                .iter()
                .filter_map(|c| all.get(*c).map(|c| c.name.clone()))
                .collect(),
        }
    }
}
