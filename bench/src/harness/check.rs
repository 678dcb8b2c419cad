//! The checks against `demo_meta`: before anything changes, what the node holds (no
//! table yet, a load to finish, or a table that holds exactly what earlier runs
//! committed, else a refusal saying what differs); at the end, every row by scan and by
//! key, the whole table against `demo_meta`, the placement, and the directory.

use super::schema::{read_meta, scan_table, Meta, Observed, META, TABLE};
use super::{bad, verify_dir, Error, Node, RealVfs, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// What the node holds, checked against `META` before anything changes.
#[derive(Debug)]
pub(super) enum Found {
    /// No demo table yet: a new node, or an earlier run stopped before its load (`meta`
    /// is that run's row, if it wrote one).
    Empty { meta: Option<Meta> },
    /// A load that an earlier run did not finish: the table holds exactly the first
    /// `meta.loaded` of `meta.requested` rows. `caught_up` when the batch in flight had
    /// committed and `meta` was advanced past it (and must be written).
    Loading { meta: Meta, caught_up: bool },
    /// Everything loaded, and the table holds what `meta` says.
    Ready { meta: Meta, seen: Observed },
}

/// What `inspect` read, before it compares.
enum Read {
    /// No demo table; `META`'s row, if there is one.
    NoTable(Option<Meta>),
    /// `META`'s row and a scan of the table, read in one transaction.
    Table(Meta, Observed),
}

/// Reads `META` and scans `TABLE` once (every block of it: a corrupt page fails here,
/// before anything changed) and checks one against the other.
pub(super) fn inspect(node: &Arc<Node>) -> Result<Found, Error> {
    match read(node)? {
        Read::NoTable(meta) => Ok(Found::Empty { meta }),
        Read::Table(meta, seen) => compare(meta, seen),
    }
}

/// Reads `META` and, when both tables exist, scans `TABLE` in the same transaction;
/// refuses a table without its record, and a record of rows whose table is gone.
fn read(node: &Arc<Node>) -> Result<Read, Error> {
    let has = |t: &str| match node.table_def(t) {
        Ok(_) => Ok(true),
        Err(Error::NoSuchTable(_)) => Ok(false),
        Err(e) => Err(e),
    };
    let (has_meta, has_table) = (has(META)?, has(TABLE)?);
    if !has_meta {
        if has_table {
            return Err(bad(format!(
                "table {TABLE} exists but {META}, the record of what it must hold, does \
                 not (a directory of an older segexpand, or {META} was dropped): the demo \
                 cannot check it; nothing was changed (start over with --fresh)"
            )));
        }
        return Ok(Read::NoTable(None));
    }
    let mut tx = node.begin()?;
    let meta = read_meta(&mut tx)?;
    if !has_table {
        tx.rollback()?;
        return match meta {
            Some(m) if m.loaded > 0 || m.rows > 0 => Err(bad(format!(
                "{META} says {} rows were loaded into {TABLE}, but the table does not \
                 exist: it was dropped; nothing was changed (start over with --fresh)",
                m.loaded
            ))),
            meta => Ok(Read::NoTable(meta)),
        };
    }
    let Some(meta) = meta else {
        return Err(bad(format!(
            "table {TABLE} exists but {META} has no row: the record of what the table \
             must hold is lost; nothing was changed (start over with --fresh)"
        )));
    };
    let seen = scan_table(&mut tx)?;
    tx.rollback()?;
    Ok(Read::Table(meta, seen))
}

/// The table against its record: what is there (all of it, or a load to finish), or
/// an error saying what differs.
fn compare(meta: Meta, seen: Observed) -> Result<Found, Error> {
    let lost = |m: &Meta| {
        bad(format!(
            "the data directory does not hold what earlier runs committed: {} (checked \
             against {META}, written in the same transactions); the directory was damaged \
             or changed outside segexpand. Nothing was changed (run `segexpand verify`, or \
             start over with --fresh)",
            seen.differences(m)
        ))
    };
    let complete = meta.loaded >= meta.requested;
    if seen.matches(&meta) {
        return Ok(if complete {
            Found::Ready { meta, seen }
        } else {
            Found::Loading {
                meta,
                caught_up: false,
            }
        });
    }
    if !complete && meta.loading_to > meta.loaded {
        // The batch in flight committed but the run stopped before recording it.
        let after = meta.loaded_through(meta.loading_to);
        if seen.matches(&after) {
            return Ok(Found::Loading {
                meta: after,
                caught_up: true,
            });
        }
    }
    Err(lost(&meta))
}

/// What the final verification found.
pub(super) struct Verified {
    pub(super) found: u64,
    pub(super) dup: u64,
    pub(super) lost: u64,
    pub(super) by_key_missing: u64,
    pub(super) seen: Observed,
    pub(super) meta: Meta,
}

/// Every expected id: found once by the scan (lost and duplicated counted) and once by
/// its key; the whole table against `META`, read in the same transaction.
fn verify_rows(node: &Arc<Node>, expected: &[i64]) -> Result<Verified, Error> {
    let mut tx = node.begin()?;
    let meta = read_meta(&mut tx)?.ok_or_else(|| bad(format!("the {META} row is gone")))?;
    let seen = scan_table(&mut tx)?;
    let mut count: HashMap<i64, u32> = HashMap::with_capacity(expected.len());
    for id in &seen.ids {
        *count.entry(*id).or_default() += 1;
    }
    let dup = count
        .values()
        .filter(|c| **c > 1)
        .map(|c| u64::from(*c - 1))
        .sum();
    let lost_by_id = expected.iter().filter(|id| !count.contains_key(id)).count() as u64;
    // Rows the meta row counts that no id accounts for (lost rows whose ids this run
    // did not know).
    let lost_by_count = (meta.rows.max(0) as u64).saturating_sub(count.len() as u64);
    let mut by_key_missing = 0;
    for id in expected {
        if tx.get(TABLE, &[Value::Int8(*id)])?.len() != 1 {
            by_key_missing += 1;
        }
    }
    tx.rollback()?;
    Ok(Verified {
        found: seen.ids.len() as u64,
        dup,
        lost: lost_by_id.max(lost_by_count),
        by_key_missing,
        seen,
        meta,
    })
}

/// What the end of the run found.
pub(super) struct Checked {
    /// Every row, and the table against `META`.
    pub(super) rows: Verified,
    /// Rows on a segment their key does not hash to.
    pub(super) placement_problems: usize,
    /// Problems `verify_dir` found in the closed directory.
    pub(super) verify_problems: usize,
}

/// Every row verified (against the ids of this run and against `META`) and their
/// placement (of every table the run moved) checked; then the node closed and the directory verified.
pub(super) fn at_end(
    node: Arc<Node>,
    expected: &[i64],
    dir: &Path,
    tables: &[String],
) -> Result<Checked, Error> {
    let rows = verify_rows(&node, expected)?;
    let mut placement = Vec::new();
    for t in tables {
        placement.extend(node.check_placement(t)?);
    }
    node.close()?;
    drop(node);
    let report = verify_dir(&RealVfs, dir)?;
    Ok(Checked {
        rows,
        placement_problems: placement.len(),
        verify_problems: report.problems.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::fixtures::{args, sim_node};
    use crate::harness::schema::{int, row, write_meta};
    use crate::harness::setup::prepare;
    use crate::harness::SimVfs;

    #[test]
    fn the_meta_row_catches_lost_rows_and_an_interrupted_load() {
        let vfs = SimVfs::new();
        let node = sim_node(&vfs);
        let a = args(2_500);
        let start = prepare(&a, &node, inspect(&node).unwrap()).unwrap();
        assert_eq!(start.ids.len(), 2_500);
        assert_eq!(start.meta.rows, 2_500);
        assert!(matches!(inspect(&node).unwrap(), Found::Ready { .. }));

        // A load stopped after its first batch: the meta row says 1000 of 2500.
        let m = start.meta;
        let partial = Meta {
            requested: m.requested,
            next_id: m.requested,
            ..Meta::default()
        }
        .loaded_through(1_000);
        let mut tx = node.begin().unwrap();
        tx.delete_where(TABLE, &|r| int(r, 0) >= 1_000).unwrap();
        tx.update(META, &[Value::Int8(0)], |_| partial.to_row())
            .unwrap();
        tx.commit().unwrap();
        let Found::Loading { meta, caught_up } = inspect(&node).unwrap() else {
            panic!("an interrupted load");
        };
        assert_eq!((meta.loaded, caught_up), (1_000, false));
        // ... and one whose second batch committed before the meta row recorded it.
        write_meta(
            &node,
            Meta {
                loading_to: 2_000,
                ..partial
            },
        )
        .unwrap();
        // (Stopped before that batch committed: the table is the first 1000 rows.)
        let Found::Loading { meta, caught_up } = inspect(&node).unwrap() else {
            panic!("an interrupted load");
        };
        assert_eq!((meta.loaded, caught_up), (1_000, false));
        node.bulk_load(TABLE, (1_000..2_000).map(|id| row(id, 70)))
            .unwrap();
        let Found::Loading { meta, caught_up } = inspect(&node).unwrap() else {
            panic!("an interrupted load");
        };
        assert_eq!((meta.loaded, caught_up), (2_000, true));
        let start = prepare(&a, &node, Found::Loading { meta, caught_up }).unwrap();
        assert_eq!(start.meta, m);

        // Rows deleted behind the demo's back: refused, naming how many.
        let mut tx = node.begin().unwrap();
        let n = tx.delete_where(TABLE, &|r| int(r, 0) % 500 == 7).unwrap();
        tx.commit().unwrap();
        assert_eq!(n, 5);
        let e = inspect(&node).unwrap_err().to_string();
        assert!(e.contains("5 rows lost"), "{e}");
        assert!(e.contains("Nothing was changed"), "{e}");
    }
}
