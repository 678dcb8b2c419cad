//! Catalog tables served from the node's own state: Greenplum's
//! `gp_segment_configuration`, and enough of PostgreSQL's `pg_catalog` for psql's
//! `\dt`, `\d`, `\d t`, `\l` and `\dn` (`tables`), with the catalog functions they call
//! (`funcs`). User tables live in schema `public` with oid 16384 + the engine's table
//! id; catalog tables in `pg_catalog` with PostgreSQL's own oids. A unique key shows as
//! an index and a constraint (`keys`).

mod funcs;
mod keys;
mod tables;

pub use funcs::CatFunc;
pub(crate) use funcs::{eval_func, reg_cast};

use crate::Session;
use segexpand_engine::{TableDef, Type, Value};

/// `pg_catalog`'s oid.
pub(crate) const PG_CATALOG_OID: i64 = 11;
/// `public`'s oid.
pub(crate) const PUBLIC_OID: i64 = 2200;
/// `information_schema`'s oid.
pub(crate) const INFORMATION_SCHEMA_OID: i64 = 13_183;
/// `pg_toast`'s oid.
pub(crate) const PG_TOAST_OID: i64 = 99;
/// The one role's oid (the session's user, as PostgreSQL's bootstrap superuser).
pub(crate) const ROLE_OID: i64 = 10;
/// The first user table's oid (PostgreSQL's FirstNormalObjectId).
pub(crate) const FIRST_USER_OID: i64 = 16_384;

/// An oid as a value (oids are columns of type int8 here).
pub(crate) fn oid_value(oid: i64) -> Value {
    Value::Int8(oid)
}

/// A user table's oid.
pub(crate) fn table_oid(def: &TableDef) -> i64 {
    FIRST_USER_OID + i64::from(def.id)
}

/// The catalog as one statement sees it: the user tables (by oid), their keys, and
/// the session's user and database.
#[derive(Debug)]
pub struct Catalog {
    pub(crate) tables: Vec<TableDef>,
    pub(crate) keys: Vec<keys::KeyRows>,
    pub(crate) user: String,
    pub(crate) database: String,
}

impl Catalog {
    /// The catalog of `s`'s node now.
    pub(crate) fn build(s: &Session) -> Catalog {
        let mut tables = s.node.tables();
        tables.retain(|t| !t.columns.is_empty());
        tables.sort_by_key(|t| t.id);
        let keys = tables
            .iter()
            .map(|t| {
                let cols: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
                keys::rows(
                    t.id,
                    table_oid(t),
                    &t.name,
                    &cols,
                    &keys::keys_of(t),
                    &keys::defaults_of(t),
                )
            })
            .collect();
        Catalog {
            tables,
            keys,
            user: s.info.user.clone(),
            database: s.info.database.clone(),
        }
    }

    /// The name of relation `oid` (a user table, an index or a catalog table).
    pub(crate) fn rel_name(&self, oid: i64) -> Option<String> {
        if let Some(t) = self.tables.iter().find(|t| table_oid(t) == oid) {
            return Some(t.name.clone());
        }
        if let Some((_, n, _)) = self
            .keys
            .iter()
            .flat_map(|k| k.classes.iter())
            .find(|(o, _, _)| *o == oid)
        {
            return Some(n.clone());
        }
        tables::CATALOG
            .iter()
            .find(|t| t.oid == oid)
            .map(|t| t.name.to_string())
    }

    /// The oid of relation `name` (`public.t`, `pg_catalog.pg_class` or unqualified).
    pub(crate) fn rel_oid(&self, name: &str) -> Option<i64> {
        let (schema, bare) = match name.split_once('.') {
            Some((s, n)) => (Some(s), n),
            None => (None, name),
        };
        let bare = bare.trim_matches('"');
        if schema.is_none_or(|s| s == "public") {
            if let Some(t) = self.tables.iter().find(|t| t.name == bare) {
                return Some(table_oid(t));
            }
        }
        if schema.is_none_or(|s| s == "pg_catalog") {
            return tables::CATALOG
                .iter()
                .find(|t| t.name == bare)
                .map(|t| t.oid);
        }
        None
    }

    /// `pg_get_indexdef` / `pg_get_constraintdef` text of `oid`.
    pub(crate) fn definition(&self, oid: i64) -> Option<String> {
        self.keys
            .iter()
            .flat_map(|k| k.defs.iter())
            .find(|(o, _)| *o == oid)
            .map(|(_, d)| d.clone())
    }
}

/// Columns (name, type) and rows of a catalog table.
pub(crate) type TableRows = (Vec<(String, Type)>, Vec<Vec<Value>>);

/// The columns and rows of catalog table `name`; `None` if it is not one.
pub(crate) fn virtual_table(s: &Session, name: &str) -> Option<TableRows> {
    if name == "segexpand_tables" {
        return Some(crate::admin::tables_relation(s));
    }
    let t = tables::CATALOG.iter().find(|t| t.name == name)?;
    let cat = Catalog::build(s);
    let rows = tables::rows(name, &cat, s);
    let cols = t
        .columns
        .iter()
        .map(|(n, c)| (n.to_string(), c.engine_type()))
        .collect();
    Some((cols, rows))
}
