//! Reading a user table for a query: one segment when the source's conditions pin the
//! whole distribution key (direct dispatch: `Txn::get`), else every segment through
//! scan cursors opened together at one snapshot. Those are read in parallel, one worker
//! thread per group of segments (up to the core count, or one more than
//! `max_parallel_workers_per_gather`), as Greenplum's slices; each worker applies the
//! source's conditions to its rows. The result is the same as reading the segments one after another, in segment order.

use super::exec::Exec;
use super::from::Source;
use super::output::SegRow;
use crate::dml::{key_of, table_def};
use crate::error::{SqlError, SqlResult};
use crate::expr::{Ctx, Expr, SessionInfo};
use crate::walk::conjunction;
use crate::Session;
use segexpand_engine::{Cursor, ScanOptions, Value};

/// One segment's rows.
type SegmentRows = (u16, Vec<SegRow>);

/// Most worker threads one scan starts.
pub(crate) const SCAN_WORKERS_MAX: usize = 64;

/// How a table source will be read (EXPLAIN).
pub(crate) enum Access {
    /// One segment, by key.
    Direct(Vec<Value>),
    /// Every segment: how many, and how many workers.
    Scan { segments: u16, workers: usize },
}

/// How table `name` is read under conditions `filter`.
pub(crate) fn access(
    s: &Session,
    name: &str,
    filter: &[Expr],
    uses_segment_id: bool,
    params: &[Value],
) -> SqlResult<Access> {
    let def = table_def(s, name)?;
    if !uses_segment_id {
        if let Some((key, _)) = key_of(&def, conjunction(filter).as_ref(), params) {
            return Ok(Access::Direct(key));
        }
    }
    let segments = def
        .layout
        .segments
        .max(def.target().map_or(0, |l| l.segments));
    let workers = workers(s).min(usize::from(segments)).max(1);
    Ok(Access::Scan { segments, workers })
}

/// Worker threads a scan may use: the cores, or PostgreSQL's
/// `max_parallel_workers_per_gather` (plus the leader) when the session set it (0: one
/// thread, the serial path).
pub(crate) fn workers(s: &Session) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    s.settings
        .get("max_parallel_workers_per_gather")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(cores, |n| n.saturating_add(1))
        .clamp(1, SCAN_WORKERS_MAX)
}

/// The rows of table `name` that pass `filter` (positions in the table's row).
pub(crate) fn read(
    ex: &Exec<'_>,
    name: &str,
    src: &Source,
    uses_segment_id: bool,
) -> SqlResult<Vec<SegRow>> {
    let filter = src.filter.as_slice();
    let access = access(ex.session(), name, filter, uses_segment_id, ex.params())?;
    let handle = ex.session().node().table(name)?;
    let base = Ctx {
        params: ex.params(),
        session: Some(ex.info()),
        ..Ctx::default()
    };
    let mut tx = ex.txn()?;
    let (segments, workers) = match access {
        Access::Direct(key) => {
            let mut out = Vec::new();
            for r in tx.get(&handle, &key)? {
                keep(filter, &base, None, r, &mut out)?;
            }
            return Ok(out);
        }
        Access::Scan { segments, workers } => (segments, workers),
    };
    let groups: Vec<Option<Vec<u16>>> = (0..segments).map(|g| Some(vec![g])).collect();
    let opts = ScanOptions {
        columns: src.needed.clone(),
        ..ScanOptions::default()
    };
    let shape = Shape {
        width: src.width,
        needed: src.needed.as_deref(),
    };
    let cursors = tx.scan_cursors(&handle, opts, &groups)?;
    let cursors: Vec<(u16, Cursor<'_>)> = (0..segments).zip(cursors).collect();
    let (params, info) = (ex.params(), ex.info());
    if workers <= 1 {
        return read_cursors(cursors, filter, shape, params, info);
    }
    // Cursor i goes to worker i % workers; results come back in segment order.
    let mut buckets: Vec<Vec<(u16, Cursor<'_>)>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, c) in cursors.into_iter().enumerate() {
        if let Some(b) = buckets.get_mut(i % workers) {
            b.push(c);
        }
    }
    let parts: Vec<SqlResult<Vec<SegmentRows>>> = std::thread::scope(|sc| {
        let handles: Vec<_> = buckets
            .into_iter()
            .map(|bucket| {
                sc.spawn(move || {
                    bucket
                        .into_iter()
                        .map(|(seg, cur)| {
                            read_cursors(vec![(seg, cur)], filter, shape, params, info)
                                .map(|rows| (seg, rows))
                        })
                        .collect::<SqlResult<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(SqlError::new("XX000", "a scan worker panicked")))
            })
            .collect()
    });
    let mut per_segment: Vec<(u16, Vec<SegRow>)> = Vec::with_capacity(usize::from(segments));
    for p in parts {
        per_segment.extend(p?);
    }
    per_segment.sort_by_key(|(seg, _)| *seg);
    let total = per_segment.iter().map(|(_, r)| r.len()).sum();
    let mut out = Vec::with_capacity(total);
    for (_, rows) in per_segment {
        out.extend(rows);
    }
    Ok(out)
}

/// A projected scan's rows: `width` columns of which the cursor returns `needed`.
#[derive(Clone, Copy)]
struct Shape<'a> {
    width: usize,
    needed: Option<&'a [usize]>,
}

impl Shape<'_> {
    /// A projected row back at its table's width, the columns not read NULL.
    fn widen(self, row: Vec<Value>) -> Vec<Value> {
        let Some(needed) = self.needed else {
            return row;
        };
        let mut full = vec![Value::Null; self.width];
        for (i, v) in needed.iter().zip(row) {
            if let Some(slot) = full.get_mut(*i) {
                *slot = v;
            }
        }
        full
    }
}

/// Reads `cursors` one after another, keeping the rows that pass `filter`.
fn read_cursors(
    cursors: Vec<(u16, Cursor<'_>)>,
    filter: &[Expr],
    shape: Shape<'_>,
    params: &[Value],
    info: &SessionInfo,
) -> SqlResult<Vec<SegRow>> {
    let base = Ctx {
        params,
        session: Some(info),
        ..Ctx::default()
    };
    let mut out = Vec::new();
    for (seg, mut cur) in cursors {
        while let Some(batch) = cur.next_batch()? {
            info.check_cancel()?;
            for r in batch {
                keep(filter, &base, Some(seg), shape.widen(r), &mut out)?;
            }
        }
    }
    Ok(out)
}

fn keep(
    filter: &[Expr],
    base: &Ctx<'_>,
    segment: Option<u16>,
    row: Vec<Value>,
    out: &mut Vec<SegRow>,
) -> SqlResult<()> {
    let ctx = Ctx {
        row: &row,
        segment,
        ..*base
    };
    for f in filter {
        if !f.passes(&ctx)? {
            return Ok(());
        }
    }
    out.push((segment, row));
    Ok(())
}
