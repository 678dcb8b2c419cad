//! The schemas created by `CREATE SCHEMA` in this process, per node, and those being
//! dropped. The engine keeps no schema catalog: a schema that holds a table is known
//! from its tables' names, and one that holds none exists only here — shared by every
//! session of the node, and forgotten when the process ends (documented in
//! `docs/ARCHITECTURE.md`, "SQL").
//!
//! Nodes are told apart by identity: the map is keyed by the node's address and each
//! entry keeps a `Weak` to it, so the address cannot be reused by another node while
//! the entry lives; entries of nodes that are gone are removed on the next access. A
//! node closed and opened again is a new node: its empty schemas are gone, as after a
//! restart.

use segexpand_engine::{Node, TableDef};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Most schema names one node keeps here (created and not dropped).
pub(crate) const SCHEMAS_MAX: usize = 10_000;

/// One node's schemas.
struct NodeSchemas {
    /// The node (keeps its address from being reused while this entry lives).
    node: Weak<Node>,
    /// Created by `CREATE SCHEMA` (or kept when their last table was dropped).
    created: BTreeSet<String>,
    /// Being dropped by a `DROP SCHEMA` now.
    dropping: BTreeSet<String>,
}

/// Every live node's schemas, by the node's address.
static SCHEMAS: Mutex<BTreeMap<usize, NodeSchemas>> = Mutex::new(BTreeMap::new());

/// Runs `f` on `node`'s entry, under the map's lock. `f` must not call back here.
fn with<R>(node: &Arc<Node>, f: impl FnOnce(&mut NodeSchemas) -> R) -> R {
    // A panic under the lock leaves the sets as they were between two whole updates.
    let mut all = SCHEMAS.lock().unwrap_or_else(PoisonError::into_inner);
    all.retain(|_, e| e.node.strong_count() > 0);
    let entry = all
        .entry(Arc::as_ptr(node).addr())
        .or_insert_with(|| NodeSchemas {
            node: Arc::downgrade(node),
            created: BTreeSet::new(),
            dropping: BTreeSet::new(),
        });
    f(entry)
}

/// What this registry knows of a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Nothing (it may still hold tables).
    Absent,
    /// Created (or kept) and not being dropped.
    Created,
    /// Being dropped now.
    Dropping,
}

/// What the registry knows of schema `name` of `node`.
pub(crate) fn state(node: &Arc<Node>, name: &str) -> State {
    with(node, |e| {
        if e.dropping.contains(name) {
            State::Dropping
        } else if e.created.contains(name) {
            State::Created
        } else {
            State::Absent
        }
    })
}

/// The schemas created and not dropped, and those being dropped (they exist until the
/// drop ends).
pub(crate) fn created(node: &Arc<Node>) -> BTreeSet<String> {
    with(node, |e| e.created.union(&e.dropping).cloned().collect())
}

/// Why a schema could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddError {
    /// It is there already.
    Exists,
    /// Another session is dropping it.
    Dropping,
    /// [`SCHEMAS_MAX`] are there.
    Full,
}

/// Adds schema `name` (CREATE SCHEMA). `holds_tables` says whether tables of it
/// exist; it is asked under the lock, so a concurrent CREATE TABLE cannot slip between.
pub(crate) fn add(
    node: &Arc<Node>,
    name: &str,
    holds_tables: impl FnOnce() -> bool,
) -> Result<(), AddError> {
    with(node, |e| {
        if e.dropping.contains(name) {
            return Err(AddError::Dropping);
        }
        if e.created.contains(name) || holds_tables() {
            return Err(AddError::Exists);
        }
        if e.created.len() >= SCHEMAS_MAX {
            return Err(AddError::Full);
        }
        e.created.insert(name.to_string());
        Ok(())
    })
}

/// Keeps schema `name` once its last table is dropped (PostgreSQL's schema outlives its
/// tables), unless it is being dropped itself. Past [`SCHEMAS_MAX`] it is not kept.
pub(crate) fn keep(node: &Arc<Node>, name: &str) {
    with(node, |e| {
        if !e.dropping.contains(name) && e.created.len() < SCHEMAS_MAX {
            e.created.insert(name.to_string());
        }
    });
}

/// Runs `f` (the creation of a table in schema `name`) if the schema exists and is not
/// being dropped, under the lock: a DROP SCHEMA either sees the new table or comes
/// after it. `holds_tables` says whether tables of the schema exist. `None` if the
/// schema is not there.
pub(crate) fn while_present<R>(
    node: &Arc<Node>,
    name: &str,
    holds_tables: impl FnOnce() -> bool,
    f: impl FnOnce() -> R,
) -> Option<R> {
    with(node, |e| {
        if e.dropping.contains(name) || !(e.created.contains(name) || holds_tables()) {
            return None;
        }
        Some(f())
    })
}

/// Marks `names` as being dropped and returns the node's tables (read under the
/// lock, after the mark: a table created in them later is refused). `Err` with a name
/// another session is dropping already (nothing is marked then).
pub(crate) fn start_drop(node: &Arc<Node>, names: &[String]) -> Result<Vec<TableDef>, String> {
    with(node, |e| {
        if let Some(n) = names.iter().find(|n| e.dropping.contains(*n)) {
            return Err(n.clone());
        }
        e.dropping.extend(names.iter().cloned());
        Ok(node.tables())
    })
}

/// Ends a drop [`start_drop`] began: the schemas are gone if `dropped`; else they stay
/// (some of their tables may be gone, and an emptied schema is kept).
pub(crate) fn end_drop(node: &Arc<Node>, names: &[String], dropped: bool) {
    with(node, |e| {
        for n in names {
            e.dropping.remove(n);
            if dropped {
                e.created.remove(n);
            } else if e.created.len() < SCHEMAS_MAX {
                e.created.insert(n.clone());
            }
        }
    });
}
