//! Catalog tables served from the node's own state: Greenplum's
//! `gp_segment_configuration`, and enough of PostgreSQL's `pg_catalog` for psql's
//! `\dt`, `\d`, `\d t`, `\l` and `\dn` (`tables`), with the catalog functions they call
//! (`funcs`). A user table has oid 16384 + the engine's table id and lives in `public`
//! or in the schema its engine name gives (`crate::schema`; each schema's oid comes
//! from its name); catalog tables are in `pg_catalog` with PostgreSQL's own oids. A
//! unique key shows as an index and a constraint (`keys`).

mod funcs;
mod keys;
mod tables;

pub use funcs::CatFunc;
pub(crate) use funcs::{eval_func, reg_cast};

use crate::error::{SqlError, SqlResult};
use crate::schema;
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

/// A user table as the catalog shows it: its definition, schema, name in the schema,
/// oids, and its keys' rows.
#[derive(Debug)]
pub(crate) struct UserRel {
    pub(crate) def: TableDef,
    /// Its schema's name.
    pub(crate) schema: String,
    /// Its name in the schema (`relname`).
    pub(crate) name: String,
    /// Its schema's oid (`relnamespace`).
    pub(crate) namespace: i64,
    pub(crate) keys: keys::KeyRows,
}

/// The catalog as one statement sees it: the schemas, the user tables (by oid) and their
/// keys, and the session's user and database.
#[derive(Debug)]
pub struct Catalog {
    pub(crate) tables: Vec<UserRel>,
    /// Every schema, (oid, name): the built-in ones first (`schema::all`).
    pub(crate) schemas: Vec<(i64, String)>,
    pub(crate) user: String,
    pub(crate) database: String,
}

impl Catalog {
    /// The catalog of `s`'s node now.
    pub(crate) fn build(s: &Session) -> Catalog {
        let mut defs = s.node.tables();
        defs.retain(|t| !t.columns.is_empty());
        defs.sort_by_key(|t| t.id);
        let schemas = schema::all(&s.node, &defs);
        let tables = defs
            .into_iter()
            .map(|def| {
                let (sch, bare) = schema::split_engine(&def.name);
                let (sch, bare) = (sch.to_string(), bare.to_string());
                let namespace = schemas
                    .iter()
                    .find(|(_, n)| *n == sch)
                    .map_or(PUBLIC_OID, |(o, _)| *o);
                let cols: Vec<String> = def.columns.iter().map(|c| c.name.clone()).collect();
                let keys = keys::rows(
                    &keys::Owner {
                        id: def.id,
                        oid: table_oid(&def),
                        namespace,
                        qualified: &schema::qualified(&sch, &bare),
                    },
                    &cols,
                    &keys::keys_of(&def),
                    &keys::defaults_of(&def),
                );
                UserRel {
                    def,
                    schema: sch,
                    name: bare,
                    namespace,
                    keys,
                }
            })
            .collect();
        Catalog {
            tables,
            schemas,
            user: s.info.user.clone(),
            database: s.info.database.clone(),
        }
    }

    /// The oid of schema `name`.
    pub(crate) fn namespace_oid(&self, name: &str) -> Option<i64> {
        self.schemas
            .iter()
            .find(|(_, n)| n == name)
            .map(|(o, _)| *o)
    }

    /// The name of schema `oid`.
    pub(crate) fn namespace_name(&self, oid: i64) -> Option<&str> {
        self.schemas
            .iter()
            .find(|(o, _)| *o == oid)
            .map(|(_, n)| n.as_str())
    }

    /// The schema and name of relation `oid` (a user table, an index or a catalog
    /// table).
    pub(crate) fn rel_name(&self, oid: i64) -> Option<(String, String)> {
        for t in &self.tables {
            if table_oid(&t.def) == oid {
                return Some((t.schema.clone(), t.name.clone()));
            }
            if let Some((_, n, _)) = t.keys.classes.iter().find(|(o, _, _)| *o == oid) {
                return Some((t.schema.clone(), n.clone()));
            }
        }
        tables::CATALOG
            .iter()
            .find(|t| t.oid == oid)
            .map(|t| (schema::PG_CATALOG.to_string(), t.name.to_string()))
    }

    /// Whether relation `oid` is visible unqualified (`pg_table_is_visible`): those of
    /// `public` and `pg_catalog` are; `None` for an unknown oid.
    pub(crate) fn rel_visible(&self, oid: i64) -> Option<bool> {
        self.rel_name(oid)
            .map(|(sch, _)| sch == schema::PUBLIC || sch == schema::PG_CATALOG)
    }

    /// The oid of relation `r` (`t`, `s.t`, `pg_catalog.pg_class`; a table or an
    /// index): unqualified, the catalog's tables come first, then `public`'s (the search
    /// path). 3F000 for a missing schema.
    pub(crate) fn rel_oid(&self, r: &schema::RelName) -> SqlResult<Option<i64>> {
        if r.database.as_ref().is_some_and(|d| *d != self.database) {
            return Err(SqlError::unsupported(format!(
                "cross-database references are not implemented: \"{}\"",
                r.written()
            )));
        }
        if r.may_be_catalog() {
            if let Some(t) = tables::CATALOG.iter().find(|t| t.name == r.name) {
                return Ok(Some(t.oid));
            }
        }
        let sch = r.schema_or_public();
        if self.namespace_oid(sch).is_none() {
            return Err(schema::no_schema(sch));
        }
        for t in self.tables.iter().filter(|t| t.schema == sch) {
            if t.name == r.name {
                return Ok(Some(table_oid(&t.def)));
            }
            if let Some((o, _, _)) = t.keys.classes.iter().find(|(_, n, _)| *n == r.name) {
                return Ok(Some(*o));
            }
        }
        Ok(None)
    }

    /// `pg_get_indexdef` / `pg_get_constraintdef` text of `oid`.
    pub(crate) fn definition(&self, oid: i64) -> Option<String> {
        self.tables
            .iter()
            .flat_map(|t| t.keys.defs.iter())
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
