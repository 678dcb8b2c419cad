//! The starting state: the two tables created and the rows bulk-loaded in batches (or
//! an interrupted load finished), each batch recorded in `demo_meta` before and after
//! it, then checked once more against `demo_meta`.

use super::check::{inspect, Found};
use super::config::Method;
use super::schema::{row, write_meta, Meta, META, META_COLUMNS, TABLE};
use super::{bad, Config, Error, Node, Placement, TableSpec, Type};
use crate::out;
use std::sync::Arc;
use std::time::Instant;

/// Rows per bulk-load batch (small in unit tests, which load several batches).
const BATCH_ROWS: u64 = if cfg!(test) { 1_000 } else { 100_000 };

/// What the run starts from, checked against `META`.
pub(super) struct Start {
    pub(super) meta: Meta,
    /// Every id, sorted.
    pub(super) ids: Vec<i64>,
}

/// Creates the tables and loads (or finishes loading) the rows, recording each batch in
/// `META`; returns the checked starting state.
pub(super) fn prepare(a: &Config, node: &Arc<Node>, found: Found) -> Result<Start, Error> {
    let meta = match found {
        Found::Ready { meta, seen } => {
            return Ok(Start {
                meta,
                ids: seen.ids,
            })
        }
        Found::Loading { meta, caught_up } => resume_load(a, node, meta, caught_up)?,
        Found::Empty { meta } => create_tables(a, node, meta)?,
    };
    load_rows(a, node, meta)?;
    match inspect(node)? {
        Found::Ready { meta, seen } => Ok(Start {
            meta,
            ids: seen.ids,
        }),
        other => Err(bad(format!(
            "after the load the table is not what {META} says: {other:?}"
        ))),
    }
}

/// An earlier run's load, taken up where it stopped: `meta` written first when it was
/// advanced past a batch that committed (`caught_up`).
fn resume_load(a: &Config, node: &Arc<Node>, meta: Meta, caught_up: bool) -> Result<Meta, Error> {
    if caught_up {
        write_meta(node, meta)?;
    }
    say!(
        a,
        "an earlier run was interrupted while loading: {} of {} rows are in the \
         table (checked against {META}){}",
        meta.loaded,
        meta.requested,
        if meta.loaded < meta.requested {
            "; loading the rest"
        } else {
            ""
        }
    );
    Ok(meta)
}

/// Creates `META` and its row (unless an earlier run left them: `meta`), then `TABLE`
/// on `--from` segments (at most the node's).
fn create_tables(a: &Config, node: &Arc<Node>, meta: Option<Meta>) -> Result<Meta, Error> {
    let meta = match meta {
        Some(m) => m,
        None => create_meta(a, node)?,
    };
    node.create_table(
        &TableSpec::new(TABLE)
            .not_null("id", Type::Int8)
            .not_null("balance", Type::Int8)
            .column("note", Type::Text)
            .distributed_by(&["id"])
            .placement(placement(a))
            .segments(a.from.min(node.segments().len() as u16)),
    )?;
    Ok(meta)
}

/// The placement a new table gets: modulo for the full-reshuffle baseline, else jump.
pub(super) fn placement(a: &Config) -> Placement {
    if a.method == Method::Modulo {
        Placement::Modulo
    } else {
        Placement::Jump
    }
}

/// Creates `META` (on segment 0 only; it is never redistributed) and its row.
fn create_meta(a: &Config, node: &Arc<Node>) -> Result<Meta, Error> {
    let mut spec = TableSpec::new(META).not_null("id", Type::Int8);
    for c in META_COLUMNS {
        spec = spec.not_null(c, Type::Int8);
    }
    match node.create_table(&spec.distributed_by(&["id"]).segments(1)) {
        // An earlier run made the table and stopped before its row (`inspect` found
        // the table without a row and without `TABLE`).
        Ok(_) | Err(Error::TableExists(_)) => {}
        Err(e) => return Err(e),
    }
    let meta = Meta {
        requested: a.checking_table_rows() as i64,
        next_id: a.checking_table_rows() as i64,
        ..Meta::default()
    };
    let mut tx = node.begin()?;
    tx.insert(META, meta.to_row())?;
    tx.commit()?;
    Ok(meta)
}

/// Bulk-loads ids `meta.loaded..meta.requested` in batches. Each batch is one
/// transaction of its own: `META` records the batch before it (`loading_to`) and its
/// result after it, so a reopen tells a batch that committed from one that did not.
fn load_rows(a: &Config, node: &Arc<Node>, mut meta: Meta) -> Result<(), Error> {
    if meta.loaded >= meta.requested {
        return Ok(());
    }
    let start = Instant::now();
    let first = meta.loaded;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    while meta.loaded < meta.requested {
        let end = (meta.loaded + BATCH_ROWS as i64).min(meta.requested);
        write_meta(
            node,
            Meta {
                loading_to: end,
                ..meta
            },
        )?;
        let note = a.row_bytes as usize;
        node.bulk_load(
            TABLE,
            (meta.loaded as u64..end as u64).map(|id| row(id, note)),
        )?;
        meta = meta.loaded_through(end);
        write_meta(node, meta)?;
        if tty {
            out::err_text(format_args!(
                "\rloading: {}/{} rows",
                meta.loaded, meta.requested
            ));
        }
    }
    let s = start.elapsed().as_secs_f64();
    if tty {
        out::err_line(format_args!(""));
    }
    let n = meta.loaded - first;
    say!(
        a,
        "bulk-loaded {n} rows in {s:.2} s ({:.0} rows/s, durable after each {BATCH_ROWS})",
        n as f64 / s.max(1e-9)
    );
    Ok(())
}
