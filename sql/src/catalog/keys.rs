//! A table's unique keys and column defaults as the catalog shows them: the rows of
//! `pg_index`, `pg_constraint`, `pg_attrdef` and the indexes' `pg_class` rows, and the
//! text `pg_get_indexdef` / `pg_get_constraintdef` return.
//!
//! [`keys_of`] and [`defaults_of`] are the only places that read a table definition for
//! them; everything else works from their output.

use super::oid_value;
use segexpand_engine::{TableDef, Value};

/// A unique key: a unique index and the constraint it backs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    /// The constraint's (and index's) name, `t_pkey` for instance.
    pub(crate) name: String,
    /// Column positions (0-based), in key order.
    pub(crate) columns: Vec<usize>,
    /// PRIMARY KEY (else UNIQUE).
    pub(crate) primary: bool,
}

/// The unique keys of `def`, primary key first.
pub(crate) fn keys_of(def: &TableDef) -> Vec<Key> {
    let mut keys: Vec<Key> = def
        .unique
        .iter()
        .map(|u| Key {
            name: u.name.clone(),
            columns: u.columns.iter().map(|c| usize::from(*c)).collect(),
            primary: u.primary,
        })
        .collect();
    keys.sort_by_key(|k| !k.primary);
    keys.truncate(KEYS_PER_TABLE_MAX);
    keys
}

/// The default expressions of `def`'s columns (position, SQL text).
pub(crate) fn defaults_of(def: &TableDef) -> Vec<(usize, String)> {
    def.columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.default.clone().map(|d| (i, d)))
        .collect()
}

/// Index oids: from 2^30 on, 64 per table (tables are 16384 + id: no overlap).
const INDEX_OID_BASE: i64 = 1 << 30;
/// Constraint oids: the index's, shifted past every index oid.
const CONSTRAINT_OID_SHIFT: i64 = 1 << 29;
/// Default-expression oids: from 2^31 on (oids are unsigned 32-bit).
const ATTRDEF_OID_BASE: i64 = 1 << 31;

/// Most keys a table shows (the oid range of one table's indexes).
pub(crate) const KEYS_PER_TABLE_MAX: usize = 64;

/// The oid of table `id`'s `k`-th key's index.
pub(crate) fn index_oid(table_id: u32, k: usize) -> i64 {
    INDEX_OID_BASE + i64::from(table_id) * 64 + i64::try_from(k).unwrap_or(0)
}

/// The oid of the constraint of the index `index_oid`.
pub(crate) fn constraint_oid(index_oid: i64) -> i64 {
    index_oid + CONSTRAINT_OID_SHIFT
}

fn attrdef_oid(table_id: u32, attnum: usize) -> i64 {
    ATTRDEF_OID_BASE + i64::from(table_id) * 2048 + i64::try_from(attnum).unwrap_or(0)
}

/// One table's key and default rows.
#[derive(Debug, Default)]
pub(crate) struct KeyRows {
    /// `pg_class` rows of the indexes: (oid, name, column count).
    pub(crate) classes: Vec<(i64, String, usize)>,
    pub(crate) index: Vec<Vec<Value>>,
    pub(crate) constraint: Vec<Vec<Value>>,
    pub(crate) attrdef: Vec<Vec<Value>>,
    /// `pg_get_indexdef` and `pg_get_constraintdef` texts, by oid.
    pub(crate) defs: Vec<(i64, String)>,
    /// Column positions that have a default.
    pub(crate) has_default: Vec<usize>,
}

/// The table whose key rows are made.
#[derive(Debug)]
pub(crate) struct Owner<'a> {
    /// Its engine id.
    pub(crate) id: u32,
    /// Its oid.
    pub(crate) oid: i64,
    /// Its schema's oid (the constraints' `connamespace`).
    pub(crate) namespace: i64,
    /// `schema.table`, as `pg_get_indexdef` names it.
    pub(crate) qualified: &'a str,
}

/// The rows for table `owner`, with columns `cols`.
pub(crate) fn rows(
    owner: &Owner<'_>,
    cols: &[String],
    keys: &[Key],
    defaults: &[(usize, String)],
) -> KeyRows {
    let (id, rel) = (owner.id, owner.oid);
    let mut out = KeyRows::default();
    let col_names = |k: &Key| {
        k.columns
            .iter()
            .map(|c| cols.get(*c).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let attnums = |k: &Key, sep: &str| {
        k.columns
            .iter()
            .map(|c| (c + 1).to_string())
            .collect::<Vec<_>>()
            .join(sep)
    };
    for (k, key) in keys.iter().take(KEYS_PER_TABLE_MAX).enumerate() {
        let ioid = index_oid(id, k);
        let coid = constraint_oid(ioid);
        let n = i16::try_from(key.columns.len()).unwrap_or(i16::MAX);
        out.classes
            .push((ioid, key.name.clone(), key.columns.len()));
        out.index.push(vec![
            oid_value(ioid),
            oid_value(rel),
            Value::Int2(n),
            Value::Int2(n),
            Value::Bool(true),
            Value::Bool(false),
            Value::Bool(key.primary),
            Value::Bool(false),
            Value::Bool(true),
            Value::Bool(false),
            Value::Bool(true),
            Value::Bool(false),
            Value::Bool(true),
            Value::Bool(true),
            Value::Bool(false),
            Value::Text(attnums(key, " ")),
            Value::Null,
            Value::Null,
        ]);
        let (contype, what) = if key.primary {
            ("p", "PRIMARY KEY")
        } else {
            ("u", "UNIQUE")
        };
        out.constraint.push(vec![
            oid_value(coid),
            Value::Text(key.name.clone()),
            oid_value(owner.namespace),
            Value::Text(contype.into()),
            Value::Bool(false),
            Value::Bool(false),
            Value::Bool(true),
            oid_value(rel),
            oid_value(0),
            oid_value(ioid),
            oid_value(0),
            oid_value(0),
            Value::Text(format!("{{{}}}", attnums(key, ","))),
            Value::Null,
        ]);
        out.defs.push((
            ioid,
            format!(
                "CREATE UNIQUE INDEX {} ON {} USING btree ({})",
                key.name,
                owner.qualified,
                col_names(key)
            ),
        ));
        out.defs
            .push((coid, format!("{what} ({})", col_names(key))));
    }
    for (pos, text) in defaults {
        out.has_default.push(*pos);
        out.attrdef.push(vec![
            oid_value(attrdef_oid(id, *pos)),
            oid_value(rel),
            Value::Int2(i16::try_from(pos + 1).unwrap_or(i16::MAX)),
            Value::Text(text.clone()),
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_primary_key_gives_index_constraint_and_definitions() {
        let cols = vec!["id".to_string(), "v".to_string()];
        let keys = vec![Key {
            name: "t_pkey".into(),
            columns: vec![0],
            primary: true,
        }];
        let owner = Owner {
            id: 3,
            oid: 16387,
            namespace: super::super::PUBLIC_OID,
            qualified: "public.t",
        };
        let r = rows(&owner, &cols, &keys, &[(1, "0".into())]);
        assert_eq!(r.classes, vec![(index_oid(3, 0), "t_pkey".to_string(), 1)]);
        assert_eq!(r.index.len(), 1);
        assert_eq!(r.constraint.len(), 1);
        assert_eq!(r.attrdef.len(), 1);
        assert_eq!(r.has_default, vec![1]);
        let defs: Vec<&str> = r.defs.iter().map(|(_, d)| d.as_str()).collect();
        assert_eq!(
            defs,
            vec![
                "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)",
                "PRIMARY KEY (id)"
            ]
        );
    }
}
