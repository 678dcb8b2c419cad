//! Schemas and the names of relations in them.
//!
//! The engine's table names are free-form strings; schemas live only here, in the SQL
//! layer. **The rule**: table `t` of schema `public` is the engine table `t`; table `t`
//! of any other schema `s` is the engine table `s.t` (the dot is part of the engine's
//! name). Schema names never contain a dot and `public`'s table names never do, so an
//! engine name splits back at its first dot ([`split_engine`]). `pg_catalog` holds the
//! virtual catalog tables only; no user table is created in it, in `pg_toast` or in
//! `information_schema`.
//!
//! A schema exists while it holds a table, or after `CREATE SCHEMA` in this process
//! (`registry`: the engine has no schema catalog yet, so an empty schema is forgotten at
//! a restart). `ddl` has CREATE SCHEMA and DROP SCHEMA.
//!
//! Every statement that names a table goes through [`RelName`] and [`lookup`]: SELECT,
//! INSERT, UPDATE, DELETE, COPY, CREATE / DROP / TRUNCATE / ALTER TABLE, VACUUM and
//! `::regclass`.

pub(crate) mod ddl;
mod registry;

use crate::catalog::{INFORMATION_SCHEMA_OID, PG_CATALOG_OID, PG_TOAST_OID, PUBLIC_OID};
use crate::error::{SqlError, SqlResult};
use crate::expr::ident;
use crate::Session;
use segexpand_engine::{Node, TableDef};
use sqlparser::ast;
use std::sync::Arc;

/// The schema of user tables named without one.
pub(crate) const PUBLIC: &str = "public";
/// The schema of the virtual catalog tables.
pub(crate) const PG_CATALOG: &str = "pg_catalog";

/// The schemas every node has, with PostgreSQL's oids, in `pg_namespace`'s order.
pub(crate) const BUILTIN: &[(i64, &str)] = &[
    (PG_CATALOG_OID, PG_CATALOG),
    (PG_TOAST_OID, "pg_toast"),
    (PUBLIC_OID, PUBLIC),
    (INFORMATION_SCHEMA_OID, "information_schema"),
];

/// Longest engine table name, in bytes: the engine's limit (PostgreSQL's identifier
/// limit too). A table of schema `s` needs `s.` in it as well.
pub(crate) const ENGINE_NAME_BYTES_MAX: usize = 63;

/// Other schemas' oids: `SCHEMA_OID_BASE` plus the name's hash modulo `SCHEMA_OID_SPAN`.
/// User tables are 16384 + their engine id, index oids start at 2^30 (`catalog::keys`):
/// no overlap while table ids stay below 2^29 − 16384.
const SCHEMA_OID_BASE: i64 = 1 << 29;
/// See [`SCHEMA_OID_BASE`].
const SCHEMA_OID_SPAN: i64 = 1 << 28;
// Above the first user oid, below the first index oid (2^30).
const _: () = assert!(
    SCHEMA_OID_BASE > crate::catalog::FIRST_USER_OID
        && SCHEMA_OID_BASE + SCHEMA_OID_SPAN <= 1 << 30
);

/// The engine name of table `name` in schema `schema`.
pub(crate) fn engine_name(schema: &str, name: &str) -> String {
    if schema == PUBLIC {
        name.to_string()
    } else {
        format!("{schema}.{name}")
    }
}

/// The schema and bare name of the engine table `engine` (the inverse of
/// [`engine_name`]).
pub(crate) fn split_engine(engine: &str) -> (&str, &str) {
    engine.split_once('.').unwrap_or((PUBLIC, engine))
}

/// Whether `name` is one of the schemas every node has.
pub(crate) fn is_builtin(name: &str) -> bool {
    BUILTIN.iter().any(|(_, n)| *n == name)
}

/// An identifier as PostgreSQL prints it in messages and `regclass` output: quoted
/// when it must be.
pub(crate) fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// `s.t` with each part quoted when it must be (`"MixedCase".t`).
pub(crate) fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// A relation's name as a statement wrote it: `t`, `s.t` or `db.s.t`, each part folded
/// as PostgreSQL folds identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelName {
    /// The database part of a three-part name.
    pub(crate) database: Option<String>,
    /// The schema, if the name has one.
    pub(crate) schema: Option<String>,
    /// The relation's own name.
    pub(crate) name: String,
}

impl RelName {
    /// The name from its parts: one to three (42601 for more).
    pub(crate) fn from_parts(mut parts: Vec<String>) -> SqlResult<RelName> {
        if parts.len() > 3 || parts.is_empty() {
            return Err(SqlError::syntax(format!(
                "improper qualified name (too many dotted names): {}",
                parts.join(".")
            )));
        }
        let name = parts.pop().unwrap_or_default();
        let schema = parts.pop();
        let database = parts.pop();
        Ok(RelName {
            database,
            schema,
            name,
        })
    }

    /// The name a parsed statement gives.
    pub(crate) fn of(n: &ast::ObjectName) -> SqlResult<RelName> {
        let parts =
            n.0.iter()
                .map(|p| {
                    p.as_ident()
                        .map(ident)
                        .ok_or_else(|| SqlError::syntax(format!("not a relation name: {n}")))
                })
                .collect::<SqlResult<Vec<_>>>()?;
        RelName::from_parts(parts)
    }

    /// A name in text (`regclass` input): dotted identifiers, each folded to lower case
    /// unless double-quoted (42602 for anything else).
    pub(crate) fn parse(text: &str) -> SqlResult<RelName> {
        RelName::from_parts(parse_identifiers(text)?)
    }

    /// An unqualified name in `public` (tests and the engine's own names).
    #[cfg(test)]
    pub(crate) fn bare(name: &str) -> RelName {
        RelName {
            database: None,
            schema: None,
            name: name.to_string(),
        }
    }

    /// The name as written, for messages (`x.t`, `t`).
    pub(crate) fn written(&self) -> String {
        [&self.database, &self.schema]
            .into_iter()
            .flatten()
            .chain(std::iter::once(&self.name))
            .cloned()
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The schema it names: the one written, else `public`.
    pub(crate) fn schema_or_public(&self) -> &str {
        self.schema.as_deref().unwrap_or(PUBLIC)
    }

    /// Whether a catalog table may be meant: unqualified or in `pg_catalog`.
    pub(crate) fn may_be_catalog(&self) -> bool {
        matches!(self.schema.as_deref(), None | Some(PG_CATALOG))
    }
}

/// PostgreSQL's `SplitIdentifierString` for a dotted name: parts separated by dots,
/// whitespace around them ignored, `"…"` keeping case (`""` is a quote), other parts
/// folded to lower case.
fn parse_identifiers(text: &str) -> SqlResult<Vec<String>> {
    let bad = || SqlError::new("42602", "invalid name syntax");
    let mut parts = Vec::new();
    let mut it = text.trim().chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        let mut part = String::new();
        if it.peek() == Some(&'"') {
            it.next();
            loop {
                match it.next() {
                    Some('"') if it.peek() == Some(&'"') => {
                        it.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(bad()),
                }
            }
        } else {
            while let Some(&c) = it.peek() {
                if c == '.' || c.is_whitespace() {
                    break;
                }
                part.extend(c.to_lowercase());
                it.next();
            }
        }
        if part.is_empty() {
            return Err(bad());
        }
        parts.push(part);
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        match it.next() {
            None => return Ok(parts),
            Some('.') => {}
            Some(_) => return Err(bad()),
        }
    }
}

/// A user table that exists: its engine name, schema and bare name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    /// The engine's name for it.
    pub(crate) engine: String,
    /// Its schema.
    pub(crate) schema: String,
    /// Its name in the schema.
    pub(crate) name: String,
}

/// What a name finds among the user tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The table.
    Found(Table),
    /// The schema exists, the table does not.
    NoTable,
    /// The schema does not exist.
    NoSchema(String),
}

/// How a statement reports a user table that is not there (PostgreSQL differs by
/// statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// `relation "x.t" does not exist` (42P01) whatever is missing: SELECT, INSERT,
    /// UPDATE, DELETE.
    Relation,
    /// A missing schema first (`schema "x" does not exist`, 3F000), then the relation:
    /// DDL, COPY, VACUUM, `::regclass`.
    SchemaFirst,
}

/// 0A000 unless the name's database part (if any) is the session's database.
pub(crate) fn check_database(s: &Session, r: &RelName) -> SqlResult<()> {
    match &r.database {
        Some(db) if *db != s.info.database => Err(SqlError::unsupported(format!(
            "cross-database references are not implemented: \"{}\"",
            r.written()
        ))),
        _ => Ok(()),
    }
}

/// The engine name of `r`, unless `r` breaks the rule (a dot in a schema name or in a
/// `public` table's name: no table of that schema can have it).
fn engine_name_of(r: &RelName) -> Option<String> {
    let schema = r.schema_or_public();
    let valid = !schema.contains('.') && (schema != PUBLIC || !r.name.contains('.'));
    valid.then(|| engine_name(schema, &r.name))
}

/// Looks the user table `r` up.
pub(crate) fn lookup(s: &Session, r: &RelName) -> SqlResult<Lookup> {
    check_database(s, r)?;
    let schema = r.schema_or_public();
    if let Some(engine) = engine_name_of(r).filter(|e| s.node.table_id(e).is_some()) {
        return Ok(Lookup::Found(Table {
            engine,
            schema: schema.to_string(),
            name: r.name.clone(),
        }));
    }
    if exists(&s.node, schema) {
        Ok(Lookup::NoTable)
    } else {
        Ok(Lookup::NoSchema(schema.to_string()))
    }
}

/// The user table `r`, or the error `missing` says.
pub(crate) fn table(s: &Session, r: &RelName, missing: Missing) -> SqlResult<Table> {
    match (lookup(s, r)?, missing) {
        (Lookup::Found(t), _) => Ok(t),
        (Lookup::NoSchema(sch), Missing::SchemaFirst) => Err(no_schema(&sch)),
        (_, _) => Err(SqlError::undefined_table(&r.written())),
    }
}

/// The definition of user table `r` (one catalog read when it exists, as for every
/// DML statement), or the error `missing` says.
pub(crate) fn table_def(s: &Session, r: &RelName, missing: Missing) -> SqlResult<TableDef> {
    check_database(s, r)?;
    if let Some(def) = engine_name_of(r).and_then(|e| s.node.table_def(&e).ok()) {
        return Ok(def);
    }
    let t = table(s, r, missing)?;
    // Created between the two reads.
    s.node
        .table_def(&t.engine)
        .map_err(|_| SqlError::undefined_table(&r.written()))
}

/// 3F000.
pub(crate) fn no_schema(name: &str) -> SqlError {
    SqlError::new("3F000", format!("schema \"{name}\" does not exist"))
}

/// Whether schema `name` exists on `node`: a built-in one, one created in this process
/// and not dropped, or one that holds a table.
pub(crate) fn exists(node: &Arc<Node>, name: &str) -> bool {
    is_builtin(name)
        || registry::state(node, name) != registry::State::Absent
        || holds_tables(node, name)
}

/// Whether `node` has a table in schema `name` (other than `public`).
pub(crate) fn holds_tables(node: &Node, name: &str) -> bool {
    node.tables()
        .iter()
        .any(|t| t.name.contains('.') && split_engine(&t.name).0 == name)
}

/// Every schema of `node` with its oid: the built-in ones first, then the others by
/// name. `tables` are the node's table definitions.
pub(crate) fn all(node: &Arc<Node>, tables: &[TableDef]) -> Vec<(i64, String)> {
    let mut names = registry::created(node);
    names.extend(
        tables
            .iter()
            .map(|t| split_engine(&t.name).0)
            .filter(|n| *n != PUBLIC)
            .map(str::to_string),
    );
    names.retain(|n| !is_builtin(n));
    let mut out: Vec<(i64, String)> = BUILTIN
        .iter()
        .map(|(o, n)| (*o, (*n).to_string()))
        .collect();
    // BTreeSet order, then a stable oid per name: its hash, moved on past a collision.
    for name in names {
        let mut oid = SCHEMA_OID_BASE + name_hash(&name) % SCHEMA_OID_SPAN;
        while out.iter().any(|(o, _)| *o == oid) {
            oid = SCHEMA_OID_BASE + (oid - SCHEMA_OID_BASE + 1) % SCHEMA_OID_SPAN;
        }
        out.push((oid, name));
    }
    out
}

/// FNV-1a of a name, as a non-negative number (stable across builds and runs).
fn name_hash(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::try_from(h >> 2).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_split_as_postgres() {
        assert_eq!(
            RelName::parse(" GpExpand . \"Status\" ").unwrap(),
            RelName {
                database: None,
                schema: Some("gpexpand".into()),
                name: "Status".into()
            }
        );
        assert_eq!(RelName::parse("\"a\"\"b\"").unwrap(), RelName::bare("a\"b"));
        for bad in ["", "a.", ".a", "a b", "\"a", "a..b"] {
            assert_eq!(RelName::parse(bad).unwrap_err().sqlstate, "42602", "{bad}");
        }
        assert_eq!(RelName::parse("a.b.c.d").unwrap_err().sqlstate, "42601");
        assert_eq!(RelName::parse("d.s.t").unwrap().written(), "d.s.t");
        assert_eq!(engine_name("public", "t"), "t");
        assert_eq!(engine_name("gpexpand", "status"), "gpexpand.status");
        assert_eq!(split_engine("gpexpand.status"), ("gpexpand", "status"));
        assert_eq!(split_engine("s.x.y"), ("s", "x.y"));
        assert_eq!(split_engine("t"), ("public", "t"));
        assert_eq!(qualified("MixedCase", "t"), "\"MixedCase\".t");
    }

    #[test]
    fn schema_oids_are_stable_distinct_and_clear_of_other_oids() {
        let a = SCHEMA_OID_BASE + name_hash("gpexpand") % SCHEMA_OID_SPAN;
        assert_eq!(a, SCHEMA_OID_BASE + name_hash("gpexpand") % SCHEMA_OID_SPAN);
        assert!((SCHEMA_OID_BASE..SCHEMA_OID_BASE + SCHEMA_OID_SPAN).contains(&a));
        assert_ne!(name_hash("gpexpand"), name_hash("gpshrink"));
    }
}
