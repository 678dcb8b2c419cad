//! The catalog tables: their columns (with PostgreSQL's types) and their rows, built
//! from the node's table definitions. The columns are those psql 15 reads and a few
//! more; tables psql only looks things up in (policies, publications, triggers,
//! inheritance, …) are there and empty.

use super::{oid_value, table_oid, Catalog, PG_CATALOG_OID, ROLE_OID};
use crate::value::type_oid;
use crate::Session;
use segexpand_engine::{Type, Value};

/// A catalog column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    /// `oid` (an int8 here).
    Oid,
    /// `name`.
    Name,
    /// `"char"`.
    Char,
    /// `text`.
    Text,
    /// `bool`.
    Bool,
    /// `int2`.
    I2,
    /// `int4`.
    I4,
    /// `real` (a float8 here).
    F4,
    /// An array, in its text form.
    Arr,
}

impl Col {
    /// The engine type the executor carries it as.
    pub(crate) fn engine_type(self) -> Type {
        match self {
            Col::Oid => Type::Int8,
            Col::Bool => Type::Bool,
            Col::I2 => Type::Int2,
            Col::I4 => Type::Int4,
            Col::F4 => Type::Float8,
            Col::Name | Col::Char | Col::Text | Col::Arr => Type::Text,
        }
    }

    /// Its PostgreSQL type oid and length (`pg_attribute` of catalog tables).
    fn pg_type(self) -> (i64, i16) {
        match self {
            Col::Oid => (26, 4),
            Col::Name => (19, 64),
            Col::Char => (18, 1),
            Col::Text => (25, -1),
            Col::Bool => (16, 1),
            Col::I2 => (21, 2),
            Col::I4 => (23, 4),
            Col::F4 => (700, 4),
            Col::Arr => (1009, -1),
        }
    }
}

/// A catalog table.
pub(crate) struct CatTable {
    pub(crate) name: &'static str,
    pub(crate) oid: i64,
    /// `r` (table) or `v` (view).
    kind: &'static str,
    pub(crate) columns: &'static [(&'static str, Col)],
}

use Col::{Arr, Bool as B, Char as C, Name as N, Oid as O, Text as T, F4, I2, I4};

/// Every catalog table, with its columns in order.
#[rustfmt::skip]
pub(crate) static CATALOG: &[CatTable] = &[
    CatTable { name: "pg_namespace", oid: 2615, kind: "r", columns: &[("oid", O), ("nspname", N), ("nspowner", O), ("nspacl", Arr)] },
    CatTable { name: "pg_class", oid: 1259, kind: "r", columns: &[
        ("oid", O), ("relname", N), ("relnamespace", O), ("reltype", O), ("reloftype", O), ("relowner", O), ("relam", O),
        ("relfilenode", O), ("reltablespace", O), ("relpages", I4), ("reltuples", F4), ("relallvisible", I4),
        ("reltoastrelid", O), ("relhasindex", B), ("relisshared", B), ("relpersistence", C), ("relkind", C),
        ("relnatts", I2), ("relchecks", I2), ("relhasrules", B), ("relhastriggers", B), ("relhassubclass", B),
        ("relrowsecurity", B), ("relforcerowsecurity", B), ("relispopulated", B), ("relreplident", C),
        ("relispartition", B), ("relrewrite", O), ("relacl", Arr), ("reloptions", Arr), ("relpartbound", T)] },
    CatTable { name: "pg_attribute", oid: 1249, kind: "r", columns: &[
        ("attrelid", O), ("attname", N), ("atttypid", O), ("attstattarget", I4), ("attlen", I2), ("attnum", I2),
        ("attndims", I4), ("atttypmod", I4), ("attbyval", B), ("attstorage", C), ("attcompression", C),
        ("attnotnull", B), ("atthasdef", B), ("atthasmissing", B), ("attidentity", C), ("attgenerated", C),
        ("attisdropped", B), ("attislocal", B), ("attinhcount", I4), ("attcollation", O), ("attacl", Arr),
        ("attoptions", Arr), ("attfdwoptions", Arr)] },
    CatTable { name: "pg_type", oid: 1247, kind: "r", columns: &[
        ("oid", O), ("typname", N), ("typnamespace", O), ("typowner", O), ("typlen", I2), ("typbyval", B),
        ("typtype", C), ("typcategory", C), ("typispreferred", B), ("typisdefined", B), ("typdelim", C),
        ("typrelid", O), ("typelem", O), ("typarray", O), ("typnotnull", B), ("typbasetype", O),
        ("typtypmod", I4), ("typndims", I4), ("typcollation", O), ("typdefault", T), ("typacl", Arr)] },
    CatTable { name: "pg_am", oid: 2601, kind: "r", columns: &[("oid", O), ("amname", N), ("amhandler", T), ("amtype", C)] },
    CatTable { name: "pg_database", oid: 1262, kind: "r", columns: &[
        ("oid", O), ("datname", N), ("datdba", O), ("encoding", I4), ("datlocprovider", C), ("datistemplate", B),
        ("datallowconn", B), ("datconnlimit", I4), ("dattablespace", O), ("datcollate", T), ("datctype", T),
        ("daticulocale", T), ("datcollversion", T), ("datacl", Arr)] },
    CatTable { name: "pg_roles", oid: 12_001, kind: "v", columns: &[
        ("rolname", N), ("rolsuper", B), ("rolinherit", B), ("rolcreaterole", B), ("rolcreatedb", B),
        ("rolcanlogin", B), ("rolreplication", B), ("rolconnlimit", I4), ("rolpassword", T),
        ("rolvaliduntil", T), ("rolbypassrls", B), ("rolconfig", Arr), ("oid", O)] },
    CatTable { name: "pg_authid", oid: 1260, kind: "r", columns: &[
        ("oid", O), ("rolname", N), ("rolsuper", B), ("rolinherit", B), ("rolcreaterole", B), ("rolcreatedb", B),
        ("rolcanlogin", B), ("rolreplication", B), ("rolbypassrls", B), ("rolconnlimit", I4),
        ("rolpassword", T), ("rolvaliduntil", T)] },
    CatTable { name: "pg_user", oid: 12_002, kind: "v", columns: &[
        ("usename", N), ("usesysid", O), ("usecreatedb", B), ("usesuper", B), ("userepl", B),
        ("usebypassrls", B), ("passwd", T), ("valuntil", T), ("useconfig", Arr)] },
    CatTable { name: "pg_tablespace", oid: 1213, kind: "r", columns: &[("oid", O), ("spcname", N), ("spcowner", O), ("spcacl", Arr), ("spcoptions", Arr)] },
    CatTable { name: "pg_collation", oid: 3456, kind: "r", columns: &[
        ("oid", O), ("collname", N), ("collnamespace", O), ("collowner", O), ("collprovider", C),
        ("collisdeterministic", B), ("collencoding", I4), ("collcollate", T), ("collctype", T),
        ("colliculocale", T), ("collversion", T)] },
    CatTable { name: "pg_index", oid: 2610, kind: "r", columns: &[
        ("indexrelid", O), ("indrelid", O), ("indnatts", I2), ("indnkeyatts", I2), ("indisunique", B),
        ("indnullsnotdistinct", B), ("indisprimary", B), ("indisexclusion", B), ("indimmediate", B),
        ("indisclustered", B), ("indisvalid", B), ("indcheckxmin", B), ("indisready", B), ("indislive", B),
        ("indisreplident", B), ("indkey", T), ("indexprs", T), ("indpred", T)] },
    CatTable { name: "pg_constraint", oid: 2606, kind: "r", columns: &[
        ("oid", O), ("conname", N), ("connamespace", O), ("contype", C), ("condeferrable", B),
        ("condeferred", B), ("convalidated", B), ("conrelid", O), ("contypid", O), ("conindid", O),
        ("conparentid", O), ("confrelid", O), ("conkey", Arr), ("conbin", T)] },
    CatTable { name: "pg_attrdef", oid: 2604, kind: "r", columns: &[("oid", O), ("adrelid", O), ("adnum", I2), ("adbin", T)] },
    CatTable { name: "pg_description", oid: 2609, kind: "r", columns: &[("objoid", O), ("classoid", O), ("objsubid", I4), ("description", T)] },
    CatTable { name: "pg_shdescription", oid: 2396, kind: "r", columns: &[("objoid", O), ("classoid", O), ("description", T)] },
    CatTable { name: "pg_inherits", oid: 2611, kind: "r", columns: &[("inhrelid", O), ("inhparent", O), ("inhseqno", I4), ("inhdetachpending", B)] },
    CatTable { name: "pg_partitioned_table", oid: 3350, kind: "r", columns: &[
        ("partrelid", O), ("partstrat", C), ("partnatts", I2), ("partdefid", O), ("partattrs", T), ("partexprs", T)] },
    CatTable { name: "pg_policy", oid: 3256, kind: "r", columns: &[
        ("oid", O), ("polname", N), ("polrelid", O), ("polcmd", C), ("polpermissive", B), ("polroles", Arr),
        ("polqual", T), ("polwithcheck", T)] },
    CatTable { name: "pg_statistic_ext", oid: 3381, kind: "r", columns: &[
        ("oid", O), ("stxrelid", O), ("stxname", N), ("stxnamespace", O), ("stxowner", O),
        ("stxstattarget", I4), ("stxkeys", T), ("stxkind", Arr), ("stxexprs", T)] },
    CatTable { name: "pg_publication", oid: 6104, kind: "r", columns: &[
        ("oid", O), ("pubname", N), ("pubowner", O), ("puballtables", B), ("pubinsert", B), ("pubupdate", B),
        ("pubdelete", B), ("pubtruncate", B), ("pubviaroot", B)] },
    CatTable { name: "pg_publication_namespace", oid: 6237, kind: "r", columns: &[("oid", O), ("pnpubid", O), ("pnnspid", O)] },
    CatTable { name: "pg_publication_rel", oid: 6106, kind: "r", columns: &[("oid", O), ("prpubid", O), ("prrelid", O), ("prqual", T), ("prattrs", Arr)] },
    CatTable { name: "pg_trigger", oid: 2620, kind: "r", columns: &[
        ("oid", O), ("tgrelid", O), ("tgparentid", O), ("tgname", N), ("tgfoid", O), ("tgtype", I2),
        ("tgenabled", C), ("tgisinternal", B), ("tgconstrrelid", O), ("tgconstrindid", O),
        ("tgconstraint", O), ("tgdeferrable", B), ("tginitdeferred", B), ("tgnargs", I2)] },
    CatTable { name: "pg_rewrite", oid: 2618, kind: "r", columns: &[("oid", O), ("rulename", N), ("ev_class", O), ("ev_type", C), ("ev_enabled", C), ("is_instead", B)] },
    CatTable { name: "pg_foreign_table", oid: 3118, kind: "r", columns: &[("ftrelid", O), ("ftserver", O), ("ftoptions", Arr)] },
    CatTable { name: "gp_segment_configuration", oid: 5036, kind: "r", columns: &[
        ("dbid", I2), ("content", I2), ("role", C), ("preferred_role", C), ("mode", C), ("status", C),
        ("port", I4), ("hostname", T), ("address", T), ("datadir", T)] },
];

/// The types `pg_type` lists: (oid, name, length, category, array type oid).
const TYPES: &[(i64, &str, i16, &str, i64)] = &[
    (16, "bool", 1, "B", 1000),
    (18, "char", 1, "Z", 1002),
    (19, "name", 64, "S", 1003),
    (20, "int8", 8, "N", 1016),
    (21, "int2", 2, "N", 1005),
    (23, "int4", 4, "N", 1007),
    (25, "text", -1, "S", 1009),
    (26, "oid", 4, "N", 1028),
    (700, "float4", 4, "N", 1021),
    (701, "float8", 8, "N", 1022),
    (1042, "bpchar", -1, "S", 1014),
    (1043, "varchar", -1, "S", 1015),
    (1082, "date", 4, "D", 1182),
    (1114, "timestamp", 8, "D", 1115),
    (1700, "numeric", -1, "N", 1231),
    (2205, "regclass", 4, "N", 2210),
    (2206, "regtype", 4, "N", 2211),
    (4089, "regnamespace", 4, "N", 4090),
];

/// Types whose values have a collation (`default`, oid 100).
fn collatable(oid: i64) -> bool {
    matches!(oid, 25 | 1042 | 1043)
}

/// The name of type `oid` in `pg_type`.
pub(crate) fn type_name(oid: i64) -> Option<&'static str> {
    TYPES.iter().find(|t| t.0 == oid).map(|t| t.1)
}

fn b(v: bool) -> Value {
    Value::Bool(v)
}
fn t(s: &str) -> Value {
    Value::Text(s.to_string())
}
fn o(oid: i64) -> Value {
    oid_value(oid)
}
fn i2(n: usize) -> Value {
    Value::Int2(i16::try_from(n).unwrap_or(i16::MAX))
}

/// A column's `atttypmod`: the declared length + 4 for varchar(n) and char(n).
pub(crate) fn typmod(ty: Type) -> i32 {
    match ty {
        Type::Varchar(n) | Type::Char(n) => i32::try_from(n).map_or(-1, |n| n.saturating_add(4)),
        _ => -1,
    }
}

/// The rows of catalog table `name`.
#[rustfmt::skip]
pub(crate) fn rows(name: &str, cat: &Catalog, s: &Session) -> Vec<Vec<Value>> {
    let user = t(&cat.user);
    match name {
        "pg_namespace" => cat
            .schemas
            .iter()
            .map(|(oid, n)| vec![o(*oid), t(n), o(ROLE_OID), Value::Null])
            .collect(),
        "pg_class" => class_rows(cat),
        "pg_attribute" => attribute_rows(cat),
        "pg_type" => TYPES
            .iter()
            .map(|(oid, n, len, cat_, arr)| {
                let coll = if collatable(*oid) { 100 } else { 0 };
                vec![
                    o(*oid), t(n), o(PG_CATALOG_OID), o(ROLE_OID), Value::Int2(*len),
                    b(*len > 0 && *len <= 8), t("b"), t(cat_), b(false), b(true), t(","), o(0), o(0),
                    o(*arr), b(false), o(0), Value::Int4(-1), Value::Int4(0), o(coll), Value::Null,
                    Value::Null,
                ]
            })
            .collect(),
        "pg_am" => vec![
            vec![o(2), t("heap"), t("heap_tableam_handler"), t("t")],
            vec![o(403), t("btree"), t("bthandler"), t("i")],
        ],
        "pg_database" => vec![vec![
            o(1), t(&cat.database), o(ROLE_OID), Value::Int4(6), t("c"), b(false), b(true),
            Value::Int4(-1), o(1663), t("C.UTF-8"), t("C.UTF-8"), Value::Null, Value::Null,
            Value::Null,
        ]],
        "pg_roles" => vec![vec![
            user, b(true), b(true), b(true), b(true), b(true), b(true), Value::Int4(-1),
            t("********"), Value::Null, b(true), Value::Null, o(ROLE_OID),
        ]],
        "pg_authid" => vec![vec![
            o(ROLE_OID), user, b(true), b(true), b(true), b(true), b(true), b(true), b(true),
            Value::Int4(-1), Value::Null, Value::Null,
        ]],
        "pg_user" => vec![vec![
            user, o(ROLE_OID), b(true), b(true), b(true), b(true), t("********"), Value::Null,
            Value::Null,
        ]],
        "pg_tablespace" => vec![
            vec![o(1663), t("pg_default"), o(ROLE_OID), Value::Null, Value::Null],
            vec![o(1664), t("pg_global"), o(ROLE_OID), Value::Null, Value::Null],
        ],
        "pg_collation" => [(100, "default", "d", None), (950, "C", "c", Some("C")), (951, "POSIX", "c", Some("POSIX"))]
            .iter()
            .map(|(oid, n, p, c)| {
                let c = c.map_or(Value::Null, t);
                vec![
                    o(*oid), t(n), o(PG_CATALOG_OID), o(ROLE_OID), t(p), b(true), Value::Int4(-1),
                    c.clone(), c, Value::Null, Value::Null,
                ]
            })
            .collect(),
        "pg_index" => cat.tables.iter().flat_map(|u| u.keys.index.iter().cloned()).collect(),
        "pg_constraint" => cat.tables.iter().flat_map(|u| u.keys.constraint.iter().cloned()).collect(),
        "pg_attrdef" => cat.tables.iter().flat_map(|u| u.keys.attrdef.iter().cloned()).collect(),
        "gp_segment_configuration" => s
            .node
            .segment_configuration()
            .into_iter()
            .map(|c| {
                vec![
                    Value::Int2(i16::try_from(c.dbid).unwrap_or(i16::MAX)),
                    Value::Int2(i16::try_from(c.content).unwrap_or(i16::MAX)),
                    Value::Text(c.role.to_string()),
                    Value::Text(c.preferred_role.to_string()),
                    Value::Text(c.mode.to_string()),
                    Value::Text(c.status.to_string()),
                    Value::Int4(i32::from(c.port)),
                    Value::Text(c.hostname),
                    Value::Text(c.address),
                    Value::Text(c.datadir),
                ]
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// One `pg_class` row.
struct ClassRow<'a> {
    oid: i64,
    name: &'a str,
    namespace: i64,
    am: i64,
    has_index: bool,
    kind: &'a str,
    natts: usize,
}

#[rustfmt::skip]
fn class_row(c: &ClassRow<'_>) -> Vec<Value> {
    vec![
        o(c.oid), t(c.name), o(c.namespace), o(0), o(0), o(ROLE_OID), o(c.am), o(c.oid), o(0),
        Value::Int4(0), Value::Float8(-1.0), Value::Int4(0), o(0), b(c.has_index), b(false),
        t("p"), t(c.kind), i2(c.natts), i2(0), b(false), b(false), b(false), b(false), b(false),
        b(true), t("d"), b(false), o(0), Value::Null, Value::Null, Value::Null,
    ]
}

fn class_rows(cat: &Catalog) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for u in &cat.tables {
        out.push(class_row(&ClassRow {
            oid: table_oid(&u.def),
            name: &u.name,
            namespace: u.namespace,
            am: 2,
            has_index: !u.keys.classes.is_empty(),
            kind: "r",
            natts: u.def.columns.len(),
        }));
        for (oid, name, natts) in &u.keys.classes {
            out.push(class_row(&ClassRow {
                oid: *oid,
                name,
                namespace: u.namespace,
                am: 403,
                has_index: false,
                kind: "i",
                natts: *natts,
            }));
        }
    }
    for ct in CATALOG {
        out.push(class_row(&ClassRow {
            oid: ct.oid,
            name: ct.name,
            namespace: PG_CATALOG_OID,
            am: if ct.kind == "r" { 2 } else { 0 },
            has_index: false,
            kind: ct.kind,
            natts: ct.columns.len(),
        }));
    }
    debug_assert!(out.iter().all(|r| r.len() == 31));
    out
}

/// One `pg_attribute` row.
struct AttRow<'a> {
    rel: i64,
    name: &'a str,
    typid: i64,
    len: i16,
    num: usize,
    typmod: i32,
    not_null: bool,
    has_default: bool,
}

#[rustfmt::skip]
fn att_row(a: &AttRow<'_>) -> Vec<Value> {
    let coll = if collatable(a.typid) { 100 } else { 0 };
    let storage = if a.len < 0 { "x" } else { "p" };
    vec![
        o(a.rel), t(a.name), o(a.typid), Value::Int4(-1), Value::Int2(a.len), i2(a.num),
        Value::Int4(0), Value::Int4(a.typmod), b(a.len > 0 && a.len <= 8), t(storage), t(""),
        b(a.not_null), b(a.has_default), b(false), t(""), t(""), b(false), b(true), Value::Int4(0),
        o(coll), Value::Null, Value::Null, Value::Null,
    ]
}

fn attribute_rows(cat: &Catalog) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for u in &cat.tables {
        let (def, keys) = (&u.def, &u.keys);
        for (i, c) in def.columns.iter().enumerate() {
            let typid = i64::from(type_oid(c.ty));
            let len = TYPES.iter().find(|t| t.0 == typid).map_or(-1, |t| t.2);
            out.push(att_row(&AttRow {
                rel: table_oid(def),
                name: &c.name,
                typid,
                len,
                num: i + 1,
                typmod: typmod(c.ty),
                not_null: c.not_null,
                has_default: keys.has_default.contains(&i),
            }));
        }
    }
    for ct in CATALOG {
        for (i, (name, col)) in ct.columns.iter().enumerate() {
            let (typid, len) = col.pg_type();
            out.push(att_row(&AttRow {
                rel: ct.oid,
                name,
                typid,
                len,
                num: i + 1,
                typmod: -1,
                not_null: false,
                has_default: false,
            }));
        }
    }
    out
}
