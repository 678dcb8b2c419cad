//! CREATE SCHEMA and DROP SCHEMA, where CREATE TABLE may put a table, and the names of
//! the keys of a table outside `public`.
//!
//! DDL is not transactional here: DROP SCHEMA … CASCADE drops the schema's tables one
//! by one (each waits for the table's writers, as DROP TABLE does); one that fails
//! stops the statement and leaves the schema with the tables not yet dropped.

use super::registry::{self, AddError};
use super::{
    engine_name, exists, holds_tables, is_builtin, no_schema, qualified, quote_ident, split_engine,
    RelName, ENGINE_NAME_BYTES_MAX, PG_CATALOG, PUBLIC,
};
use crate::error::{SqlError, SqlResult};
use crate::expr::ident;
use crate::{Output, Session};
use segexpand_engine::{Node, TableDef};
use sqlparser::ast;
use std::sync::Arc;

/// Dependent objects a 2BP01 detail lists (PostgreSQL's `MAX_REPORTED_DEPS`).
const REPORTED_DEPS_MAX: usize = 100;

/// A schema name of a CREATE or DROP SCHEMA: one identifier (42601 otherwise).
fn schema_name(n: &ast::ObjectName) -> SqlResult<String> {
    match n.0.as_slice() {
        [p] => p
            .as_ident()
            .map(ident)
            .ok_or_else(|| SqlError::syntax(format!("not a schema name: {n}"))),
        _ => Err(SqlError::syntax(format!(
            "a schema name is one identifier, not \"{n}\""
        ))),
    }
}

/// `CREATE SCHEMA [IF NOT EXISTS] name`.
pub(crate) fn create_schema(s: &mut Session, stmt: &ast::Statement) -> SqlResult<Output> {
    let ast::Statement::CreateSchema {
        schema_name: sn,
        if_not_exists,
        or_replace,
        with,
        options,
        default_collate_spec,
        clone,
    } = stmt
    else {
        return Err(SqlError::unsupported("statement not supported"));
    };
    let ast::SchemaName::Simple(n) = sn else {
        return Err(SqlError::unsupported(
            "CREATE SCHEMA … AUTHORIZATION is not supported: there is one role",
        ));
    };
    if *or_replace
        || with.is_some()
        || options.is_some()
        || default_collate_spec.is_some()
        || clone.is_some()
    {
        return Err(SqlError::unsupported(
            "CREATE SCHEMA takes only a name and IF NOT EXISTS here",
        ));
    }
    let name = schema_name(n)?;
    // PostgreSQL checks the reserved prefix first, even for pg_catalog itself.
    if name.starts_with("pg_") {
        return Err(SqlError {
            detail: Some("The prefix \"pg_\" is reserved for system schemas.".into()),
            ..SqlError::new("42939", format!("unacceptable schema name \"{name}\""))
        });
    }
    if name.contains('.') {
        return Err(SqlError::unsupported(format!(
            "schema names containing a dot are not supported (\"{name}\"): a table t of \
             schema s is stored under the name s.t"
        )));
    }
    // Room for `name.` and a one-byte table name.
    if name.len() + 2 > ENGINE_NAME_BYTES_MAX {
        return Err(SqlError::new(
            "42622",
            format!(
                "schema name \"{name}\" is too long: a schema's table is stored as \
                 schema.table, at most {ENGINE_NAME_BYTES_MAX} bytes"
            ),
        ));
    }
    let node = s.node.clone();
    let added = if is_builtin(&name) {
        Err(AddError::Exists)
    } else {
        registry::add(&node, &name, || holds_tables(&node, &name))
    };
    match added {
        Ok(()) => Ok(Output::Command("CREATE SCHEMA".into())),
        Err(AddError::Exists) if *if_not_exists => {
            s.notices
                .push(format!("schema \"{name}\" already exists, skipping"));
            Ok(Output::Command("CREATE SCHEMA".into()))
        }
        Err(AddError::Exists) => Err(SqlError::new(
            "42P06",
            format!("schema \"{name}\" already exists"),
        )),
        Err(AddError::Dropping) => Err(being_dropped(&name)),
        Err(AddError::Full) => Err(SqlError::new(
            "54000",
            format!(
                "too many empty schemas: at most {} are kept in memory",
                registry::SCHEMAS_MAX
            ),
        )),
    }
}

fn being_dropped(name: &str) -> SqlError {
    SqlError::new(
        "55006",
        format!("schema \"{name}\" is being dropped by another session"),
    )
}

/// Marks schemas as being dropped while it lives; ends the drop when it goes.
struct Dropping {
    node: Arc<Node>,
    names: Vec<String>,
    dropped: bool,
}

impl Drop for Dropping {
    fn drop(&mut self) {
        registry::end_drop(&self.node, &self.names, self.dropped);
    }
}

/// `DROP SCHEMA [IF EXISTS] a, b [CASCADE | RESTRICT]`.
pub(crate) fn drop_schema(
    s: &mut Session,
    names: &[ast::ObjectName],
    if_exists: bool,
    cascade: bool,
) -> SqlResult<Output> {
    let mut targets: Vec<String> = Vec::new();
    for n in names {
        let name = schema_name(n)?;
        if is_builtin(&name) {
            return Err(SqlError::new(
                "2BP01",
                format!("cannot drop schema {name} because it is required by the database system"),
            ));
        }
        let gone =
            registry::state(&s.node, &name) == registry::State::Dropping || !exists(&s.node, &name);
        if gone {
            if !if_exists {
                return Err(no_schema(&name));
            }
            s.notices
                .push(format!("schema \"{name}\" does not exist, skipping"));
        } else if !targets.contains(&name) {
            targets.push(name);
        }
    }
    if targets.is_empty() {
        return Ok(Output::Command("DROP SCHEMA".into()));
    }
    let mut tables: Vec<TableDef> = registry::start_drop(&s.node, &targets)
        .map_err(|n| being_dropped(&n))?
        .into_iter()
        .filter(|t| t.name.contains('.') && targets.iter().any(|n| n == split_engine(&t.name).0))
        .collect();
    let mut mark = Dropping {
        node: s.node.clone(),
        names: targets.clone(),
        dropped: false,
    };
    tables.sort_by_key(|t| t.id);
    let shown = |t: &TableDef| {
        let (sch, bare) = split_engine(&t.name);
        qualified(sch, bare)
    };
    if !tables.is_empty() && !cascade {
        let mut lines: Vec<String> = tables
            .iter()
            .take(REPORTED_DEPS_MAX)
            .map(|t| {
                let sch = split_engine(&t.name).0;
                format!("table {} depends on schema {}", shown(t), quote_ident(sch))
            })
            .collect();
        if tables.len() > REPORTED_DEPS_MAX {
            lines.push(format!(
                "and {} other objects",
                tables.len() - REPORTED_DEPS_MAX
            ));
        }
        let message = match targets.as_slice() {
            [one] => format!("cannot drop schema {one} because other objects depend on it"),
            _ => "cannot drop desired object(s) because other objects depend on them".into(),
        };
        return Err(SqlError {
            detail: Some(lines.join("\n")),
            ..SqlError::new("2BP01", message)
                .with_hint("Use DROP ... CASCADE to drop the dependent objects too.")
        });
    }
    match tables.as_slice() {
        [] => {}
        [one] => s
            .notices
            .push(format!("drop cascades to table {}", shown(one))),
        many => s
            .notices
            .push(format!("drop cascades to {} other objects", many.len())),
    }
    for t in &tables {
        crate::ddl::with_txn(s, |tx| tx.drop_table(&t.name))?;
    }
    mark.dropped = true;
    drop(mark);
    Ok(Output::Command("DROP SCHEMA".into()))
}

/// Where CREATE TABLE `r` goes: its engine name, schema and bare name. Refuses the
/// catalog's schemas (42501 as PostgreSQL for `pg_catalog` and `pg_toast`, 42939 for
/// `information_schema`, which holds nothing here), a missing schema (3F000), a dot in
/// a `public` table's name and a name past the engine's limit.
pub(crate) fn create_target(s: &Session, r: &RelName) -> SqlResult<super::Table> {
    super::check_database(s, r)?;
    let schema = r.schema_or_public();
    match schema {
        PG_CATALOG | "pg_toast" => {
            return Err(SqlError {
                detail: Some("System catalog modifications are currently disallowed.".into()),
                ..SqlError::new(
                    "42501",
                    format!("permission denied to create \"{schema}.{}\"", r.name),
                )
            })
        }
        "information_schema" => {
            return Err(SqlError::new(
                "42939",
                format!(
                    "cannot create \"{schema}.{}\": schema {schema} is reserved for the \
                     system's views",
                    r.name
                ),
            ))
        }
        PUBLIC if r.name.contains('.') => {
            return Err(SqlError::unsupported(format!(
                "a table name containing a dot is not supported in schema public (\"{}\"): \
                 the name s.t is table t of schema s",
                r.name
            )))
        }
        _ => {}
    }
    if schema != PUBLIC && !exists(&s.node, schema) {
        return Err(no_schema(schema));
    }
    let engine = engine_name(schema, &r.name);
    if engine.len() > ENGINE_NAME_BYTES_MAX {
        return Err(SqlError::new(
            "42622",
            format!(
                "table name \"{}\" is too long: schema, dot and name together may be at most \
                 {ENGINE_NAME_BYTES_MAX} bytes",
                r.written()
            ),
        ));
    }
    Ok(super::Table {
        engine,
        schema: schema.to_string(),
        name: r.name.clone(),
    })
}

/// Runs `create` (making table `t`) while `t`'s schema exists: in `public` at once; in
/// another schema under the registry's lock, so a concurrent DROP SCHEMA either drops
/// the new table or comes after it (3F000 if the schema went meanwhile).
pub(crate) fn while_schema_exists<R>(
    s: &Session,
    t: &super::Table,
    create: impl FnOnce() -> SqlResult<R>,
) -> SqlResult<R> {
    if t.schema == PUBLIC {
        return create();
    }
    let node = s.node.clone();
    registry::while_present(&node, &t.schema, || holds_tables(&node, &t.schema), create)
        .unwrap_or_else(|| Err(no_schema(&t.schema)))
}

/// Before table `t` is dropped: its schema outlives it (PostgreSQL's schemas do).
pub(crate) fn keep_schema_of(s: &Session, t: &super::Table) {
    if t.schema != PUBLIC {
        registry::keep(&s.node, &t.schema);
    }
}

/// PostgreSQL's name for an unnamed key of table `table` (its name in its schema):
/// `t_pkey`, `t_a_b_key`, cut to the name limit on a character boundary and numbered
/// past the names in `taken` (`t_a_key1`) — the engine's rule for the keys it names,
/// which would name them after the engine's `s.t` in schema s.
pub(crate) fn key_name(table: &str, cols: &[String], primary: bool, taken: &[String]) -> String {
    let mut base = String::from(table);
    if !primary {
        for c in cols {
            base.push('_');
            base.push_str(c);
        }
    }
    base.push_str(if primary { "_pkey" } else { "_key" });
    let cut = |mut n: String, room: usize| {
        while n.len() > ENGINE_NAME_BYTES_MAX.saturating_sub(room) {
            n.pop();
        }
        n
    };
    let base = cut(base, 0);
    let mut n = base.clone();
    let mut i = 0u32;
    while taken.contains(&n) {
        i += 1;
        let suffix = i.to_string();
        n = cut(base.clone(), suffix.len()) + &suffix;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_keys_are_named_after_the_bare_table() {
        assert_eq!(key_name("status", &[], true, &[]), "status_pkey");
        let cols = vec!["a".to_string(), "b".to_string()];
        assert_eq!(key_name("t", &cols, false, &[]), "t_a_b_key");
        assert_eq!(
            key_name("t", &cols, false, &["t_a_b_key".into()]),
            "t_a_b_key1"
        );
        let long = "x".repeat(70);
        let n = key_name(&long, &[], true, &[]);
        assert_eq!(n.len(), ENGINE_NAME_BYTES_MAX);
        let m = key_name(&long, &[], true, std::slice::from_ref(&n));
        assert_eq!((m.len(), m.ends_with('1')), (ENGINE_NAME_BYTES_MAX, true));
    }
}
