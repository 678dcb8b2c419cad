//! Schemas other than `public`: CREATE / DROP SCHEMA, every statement on a qualified
//! table (`s.t` is the engine table `s.t`, beside `public`'s `t`), PostgreSQL 15's
//! errors for unknown schemas and reserved names, the catalog rows psql's `\dn`, `\dt
//! s.*` and `\d s.t` read, and what survives a restart (tables, and so their schemas;
//! not an empty schema).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
use segexpand_engine::{Node, NodeOptions, Value};
use segexpand_sql::{Output, Session};
#[path = "support/session.rs"]
mod support;
use support::{err, ok, session};

/// The error's SQLSTATE and message.
fn fails(s: &mut Session, sql: &str) -> (&'static str, String) {
    let e = err(s, sql);
    (e.sqlstate, e.message)
}

fn rows(s: &mut Session, sql: &str) -> Vec<Vec<String>> {
    match ok(s, sql) {
        Output::Rows { rows, .. } => rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| v.unwrap_or_else(|| "NULL".into()))
                    .collect()
            })
            .collect(),
        other => panic!("{sql}: {other:?}"),
    }
}

fn row(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn a_schema_table_lives_beside_the_public_table_of_the_same_name() {
    let (_d, node, mut s) = session();
    ok(&mut s, "CREATE SCHEMA s");
    ok(&mut s, "CREATE TABLE t (a int, b text) DISTRIBUTED BY (a)");
    ok(
        &mut s,
        "CREATE TABLE s.t (a int, b text) DISTRIBUTED BY (a)",
    );
    assert!(node.table_id("s.t").is_some(), "the engine's name is s.t");
    ok(
        &mut s,
        "INSERT INTO t VALUES (1, 'public one'), (2, 'public two')",
    );
    ok(
        &mut s,
        "INSERT INTO s.t (a, b) VALUES (1, 's one'), (2, 's two'), (3, 's three')",
    );
    ok(&mut s, "INSERT INTO public.t VALUES (3, 'public three')");
    assert_eq!(
        rows(&mut s, "SELECT b FROM t ORDER BY a"),
        vec![
            row(&["public one"]),
            row(&["public two"]),
            row(&["public three"])
        ]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT s.t.b, t.a FROM s.t ORDER BY s.t.a DESC LIMIT 1"
        ),
        vec![row(&["s three", "3"])]
    );
    assert_eq!(
        rows(&mut s, "SELECT x.b FROM s.t AS x WHERE x.a = 2"),
        vec![row(&["s two"])]
    );
    // Both in one query, told apart by schema.
    assert_eq!(
        rows(
            &mut s,
            "SELECT public.t.b, s.t.b FROM public.t JOIN s.t ON public.t.a = s.t.a \
             WHERE s.t.a = 1"
        ),
        vec![row(&["public one", "s one"])]
    );
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM s.t AS x, t WHERE x.a = t.a"),
        vec![row(&["3"])]
    );
    assert_eq!(
        rows(&mut s, "SELECT s.t.* FROM s.t WHERE a = 1"),
        vec![row(&["1", "s one"])]
    );
    // gp_segment_id: the rows are spread, and each names a segment of the node.
    let segs = rows(&mut s, "SELECT DISTINCT gp_segment_id FROM s.t");
    assert!(!segs.is_empty() && segs.iter().all(|r| r[0].parse::<u16>().unwrap() < 3));
    // UPDATE by a text column (the gpexpand statement's shape), and by the key.
    assert_eq!(
        ok(&mut s, "UPDATE s.t SET b = 'S TWO' WHERE b = 's two'").tag(),
        "UPDATE 1"
    );
    assert_eq!(
        ok(&mut s, "UPDATE s.t SET b = b || '!' WHERE s.t.a = 3").tag(),
        "UPDATE 1"
    );
    assert_eq!(
        rows(&mut s, "SELECT b FROM s.t ORDER BY a"),
        vec![row(&["s one"]), row(&["S TWO"]), row(&["s three!"])]
    );
    assert_eq!(
        rows(&mut s, "SELECT b FROM t WHERE a = 2"),
        vec![row(&["public two"])],
        "the public table is untouched"
    );
    assert_eq!(
        ok(&mut s, "DELETE FROM s.t WHERE b LIKE 's %'").tag(),
        "DELETE 2"
    );
    assert_eq!(rows(&mut s, "SELECT count(*) FROM s.t"), vec![row(&["1"])]);
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t"), vec![row(&["3"])]);
    // COPY in and out.
    let Output::CopyIn { table, columns } = ok(&mut s, "COPY s.t (b, a) FROM STDIN") else {
        panic!("COPY FROM STDIN")
    };
    assert_eq!(table, "s.t");
    s.copy_in(&table, &columns, b"ten\t10\neleven\t11\n")
        .unwrap();
    match ok(&mut s, "COPY s.t TO STDOUT") {
        Output::CopyOut { mut lines, .. } => {
            lines.sort();
            assert_eq!(lines, vec!["10\tten\n", "11\televen\n", "2\tS TWO\n"]);
        }
        other => panic!("{other:?}"),
    }
    // TRUNCATE and DROP take the qualified name and leave the public table alone.
    ok(&mut s, "TRUNCATE s.t");
    assert_eq!(rows(&mut s, "SELECT count(*) FROM s.t"), vec![row(&["0"])]);
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t"), vec![row(&["3"])]);
    ok(&mut s, "VACUUM s.t, t");
    ok(&mut s, "DROP TABLE s.t");
    assert!(node.table_id("s.t").is_none());
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t"), vec![row(&["3"])]);
    // The schema outlives its last table.
    ok(&mut s, "CREATE TABLE s.t2 (a int)");
    ok(&mut s, "DROP TABLE s.t2");
    assert_eq!(
        rows(
            &mut s,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 's'"
        ),
        vec![row(&["1"])]
    );
}

#[test]
fn the_gpexpand_workflow_runs_on_qualified_tables() {
    let (_d, node, mut s) = session();
    ok(&mut s, "CREATE TABLE t (a int, b int) DISTRIBUTED BY (a)");
    ok(&mut s, "CREATE SCHEMA gpexpand");
    ok(
        &mut s,
        "CREATE TABLE gpexpand.status (status text, updated timestamp)",
    );
    ok(
        &mut s,
        "CREATE TABLE gpexpand.status_detail (dbname text, fq_name text, table_oid int8, \
         rank int, status text, expansion_started timestamp) DISTRIBUTED BY (table_oid)",
    );
    ok(
        &mut s,
        "INSERT INTO gpexpand.status VALUES ('SETUP DONE', '2024-01-01 00:00:00')",
    );
    let oid = rows(&mut s, "SELECT 'public.t'::regclass::oid")[0][0].clone();
    ok(
        &mut s,
        &format!(
            "INSERT INTO gpexpand.status_detail VALUES ('d', 'public.t', {oid}, 2, \
             'NOT STARTED', NULL)"
        ),
    );
    assert_eq!(
        ok(
            &mut s,
            "UPDATE gpexpand.status_detail SET rank = 1 WHERE fq_name = 'public.t'"
        )
        .tag(),
        "UPDATE 1"
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT fq_name, rank, status FROM gpexpand.status_detail ORDER BY rank"
        ),
        vec![row(&["public.t", "1", "NOT STARTED"])]
    );
    // Prepared statements with parameters, typed from the qualified table's columns.
    let (types, _) = s
        .describe("UPDATE gpexpand.status_detail SET status = $1 WHERE table_oid = $2")
        .unwrap();
    assert_eq!(
        types,
        vec![segexpand_engine::Type::Text, segexpand_engine::Type::Int8]
    );
    s.execute_with(
        "UPDATE gpexpand.status_detail SET status = $1 WHERE table_oid = $2",
        &[
            Value::Text("COMPLETED".into()),
            Value::Int8(oid.parse().unwrap()),
        ],
    )
    .unwrap();
    let (p, _, _) = s
        .prepare("SELECT status FROM gpexpand.status_detail WHERE table_oid = $1")
        .unwrap();
    match s
        .execute_prepared(&p, &[Value::Int8(oid.parse().unwrap())])
        .unwrap()
    {
        Output::Rows { rows, .. } => assert_eq!(rows, vec![vec![Some("COMPLETED".into())]]),
        other => panic!("{other:?}"),
    }
    // A key lookup on a qualified table is Greenplum's direct dispatch.
    let plan = rows(
        &mut s,
        "EXPLAIN SELECT status FROM gpexpand.status_detail WHERE table_oid = 1",
    );
    assert!(plan[0][0].starts_with("Direct dispatch"), "{plan:?}");
    // Redistribution through SQL on a qualified table: new segments, expand, new key.
    let values: Vec<String> = (0..200)
        .map(|i| format!("('d', 't{i}', {i}, {i}, 'x', NULL)"))
        .collect();
    ok(
        &mut s,
        &format!(
            "INSERT INTO gpexpand.status_detail VALUES {}",
            values.join(",")
        ),
    );
    ok(&mut s, "SELECT segexpand_add_segments(1)");
    ok(&mut s, "ALTER TABLE gpexpand.status_detail EXPAND TABLE");
    let def = node.table_def("gpexpand.status_detail").unwrap();
    assert_eq!(def.layout.segments, 4);
    assert!(node
        .check_placement("gpexpand.status_detail")
        .unwrap()
        .is_empty());
    ok(
        &mut s,
        "ALTER TABLE ONLY gpexpand.status_detail SET DISTRIBUTED BY (rank)",
    );
    let def = node.table_def("gpexpand.status_detail").unwrap();
    assert_eq!(def.layout.key, vec![3]);
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM gpexpand.status_detail"),
        vec![row(&["201"])]
    );
    // Keys get PostgreSQL's names (the bare table's), not the engine name's.
    ok(&mut s, "ALTER TABLE gpexpand.status ADD UNIQUE (status)");
    ok(
        &mut s,
        "CREATE TABLE gpexpand.k (id int PRIMARY KEY, v int)",
    );
    let e = err(&mut s, "INSERT INTO gpexpand.k VALUES (1, 1), (1, 2)");
    assert_eq!(e.sqlstate, "23505");
    assert_eq!(
        e.message,
        "duplicate key value violates unique constraint \"k_pkey\""
    );
    let keys: Vec<String> = node
        .table_def("gpexpand.status")
        .unwrap()
        .unique
        .iter()
        .map(|u| u.name.clone())
        .collect();
    assert_eq!(keys, vec!["status_status_key"]);
    // gpexpand's clean-up.
    s.take_notices();
    ok(&mut s, "DROP SCHEMA gpexpand CASCADE");
    assert_eq!(
        s.take_notices(),
        vec!["drop cascades to 3 other objects".to_string()]
    );
    assert!(node
        .tables()
        .iter()
        .all(|t| !t.name.starts_with("gpexpand.")));
    assert_eq!(rows(&mut s, "SELECT count(*) FROM t"), vec![row(&["0"])]);
}

#[test]
fn drop_schema_refuses_a_non_empty_schema_unless_cascade() {
    let (_d, node, mut s) = session();
    ok(&mut s, "CREATE SCHEMA s");
    ok(&mut s, "CREATE TABLE s.t (a int)");
    ok(&mut s, "INSERT INTO s.t VALUES (1)");
    for sql in ["DROP SCHEMA s", "DROP SCHEMA s RESTRICT"] {
        let e = err(&mut s, sql);
        assert_eq!(e.sqlstate, "2BP01");
        assert_eq!(
            e.message,
            "cannot drop schema s because other objects depend on it"
        );
        assert_eq!(e.detail.as_deref(), Some("table s.t depends on schema s"));
        assert_eq!(
            e.hint.as_deref(),
            Some("Use DROP ... CASCADE to drop the dependent objects too.")
        );
    }
    assert_eq!(rows(&mut s, "SELECT a FROM s.t"), vec![row(&["1"])]);
    // Several schemas at once: PostgreSQL's other wording, every dependent listed.
    ok(&mut s, "CREATE SCHEMA \"Other\"");
    ok(&mut s, "CREATE TABLE \"Other\".\"U\" (a int)");
    let e = err(&mut s, "DROP SCHEMA s, \"Other\"");
    assert_eq!(e.sqlstate, "2BP01");
    assert_eq!(
        e.message,
        "cannot drop desired object(s) because other objects depend on them"
    );
    assert_eq!(
        e.detail.as_deref(),
        Some("table s.t depends on schema s\ntable \"Other\".\"U\" depends on schema \"Other\"")
    );
    // CASCADE: one table is named, more are counted.
    s.take_notices();
    ok(&mut s, "DROP SCHEMA s CASCADE");
    assert_eq!(
        s.take_notices(),
        vec!["drop cascades to table s.t".to_string()]
    );
    assert!(node.table_id("s.t").is_none());
    assert_eq!(
        fails(&mut s, "CREATE TABLE s.t (a int)"),
        ("3F000", "schema \"s\" does not exist".into())
    );
    ok(&mut s, "CREATE TABLE \"Other\".v (a int)");
    s.take_notices();
    ok(&mut s, "DROP SCHEMA \"Other\" CASCADE");
    assert_eq!(
        s.take_notices(),
        vec!["drop cascades to 2 other objects".to_string()]
    );
    assert!(node.tables().is_empty());
    // An empty schema drops without CASCADE.
    ok(&mut s, "CREATE SCHEMA e");
    ok(&mut s, "DROP SCHEMA e");
    assert_eq!(
        rows(
            &mut s,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'e'"
        ),
        vec![row(&["0"])]
    );
    // The system's schemas are not dropped.
    for name in ["public", "pg_catalog", "information_schema"] {
        assert_eq!(
            fails(&mut s, &format!("DROP SCHEMA {name} CASCADE")),
            (
                "2BP01",
                format!("cannot drop schema {name} because it is required by the database system")
            )
        );
    }
    // DDL is not transactional: refused in a block.
    ok(&mut s, "BEGIN");
    assert_eq!(err(&mut s, "CREATE SCHEMA b").sqlstate, "25001");
    ok(&mut s, "ROLLBACK");
    ok(&mut s, "BEGIN");
    assert_eq!(err(&mut s, "DROP SCHEMA IF EXISTS b").sqlstate, "25001");
    ok(&mut s, "ROLLBACK");
}

#[test]
fn if_exists_and_if_not_exists_skip_with_postgres_notices() {
    let (_d, _node, mut s) = session();
    ok(&mut s, "CREATE SCHEMA s");
    assert_eq!(
        fails(&mut s, "CREATE SCHEMA s"),
        ("42P06", "schema \"s\" already exists".into())
    );
    assert_eq!(
        fails(&mut s, "CREATE SCHEMA public"),
        ("42P06", "schema \"public\" already exists".into())
    );
    ok(&mut s, "CREATE SCHEMA IF NOT EXISTS s");
    assert_eq!(
        s.take_notices(),
        vec!["schema \"s\" already exists, skipping".to_string()]
    );
    ok(&mut s, "CREATE TABLE s.t (a int)");
    s.take_notices();
    assert_eq!(
        fails(&mut s, "CREATE TABLE s.t (a int)"),
        ("42P07", "relation \"t\" already exists".into())
    );
    ok(&mut s, "CREATE TABLE IF NOT EXISTS s.t (a int)");
    assert_eq!(
        s.take_notices(),
        vec!["relation \"t\" already exists, skipping".to_string()]
    );
    ok(&mut s, "DROP SCHEMA IF EXISTS nosuch, other");
    assert_eq!(
        s.take_notices(),
        vec![
            "schema \"nosuch\" does not exist, skipping".to_string(),
            "schema \"other\" does not exist, skipping".to_string()
        ]
    );
    ok(&mut s, "DROP TABLE IF EXISTS x.t, s.nosuch");
    assert_eq!(
        s.take_notices(),
        vec![
            "schema \"x\" does not exist, skipping".to_string(),
            "table \"nosuch\" does not exist, skipping".to_string()
        ]
    );
    ok(&mut s, "ALTER TABLE IF EXISTS x.t ADD PRIMARY KEY (a)");
    assert_eq!(
        s.take_notices(),
        vec!["relation \"t\" does not exist, skipping".to_string()]
    );
    // A missing table in a list drops nothing.
    assert_eq!(
        fails(&mut s, "DROP TABLE s.t, s.nosuch"),
        ("42P01", "table \"nosuch\" does not exist".into())
    );
    assert_eq!(rows(&mut s, "SELECT count(*) FROM s.t"), vec![row(&["0"])]);
    ok(&mut s, "DROP SCHEMA IF EXISTS s, x CASCADE");
    assert_eq!(
        s.take_notices(),
        vec![
            "schema \"x\" does not exist, skipping".to_string(),
            "drop cascades to table s.t".to_string()
        ]
    );
}

#[test]
fn unknown_schemas_and_reserved_names_get_postgres_errors() {
    let (_d, _node, mut s) = session();
    ok(&mut s, "CREATE TABLE t (a int)");
    let no_x = || ("3F000", "schema \"x\" does not exist".to_string());
    // PostgreSQL 15: DDL, COPY and regclass name the missing schema...
    for sql in [
        "CREATE TABLE x.t (a int)",
        "DROP TABLE x.t",
        "TRUNCATE x.t",
        "ALTER TABLE x.t ADD PRIMARY KEY (a)",
        "ALTER TABLE x.t EXPAND TABLE",
        "ALTER TABLE x.t SET DISTRIBUTED BY (a)",
        "COPY x.t FROM STDIN",
        "COPY x.t TO STDOUT",
        "VACUUM x.t",
        "SELECT 'x.t'::regclass",
        "DROP SCHEMA x",
    ] {
        assert_eq!(fails(&mut s, sql), no_x(), "{sql}");
    }
    // ...a query or DML statement the relation.
    for sql in [
        "SELECT * FROM x.t",
        "INSERT INTO x.t VALUES (1)",
        "UPDATE x.t SET a = 1",
        "DELETE FROM x.t",
        "EXPLAIN SELECT * FROM x.t",
    ] {
        assert_eq!(
            fails(&mut s, sql),
            ("42P01", "relation \"x.t\" does not exist".into()),
            "{sql}"
        );
    }
    assert_eq!(
        s.prepare("SELECT a FROM x.t WHERE a = $1")
            .unwrap_err()
            .sqlstate,
        "42P01"
    );
    assert_eq!(
        s.prepare("UPDATE x.t SET a = $1").unwrap_err().sqlstate,
        "42P01"
    );
    ok(&mut s, "CREATE SCHEMA s");
    for sql in [
        "SELECT * FROM s.nosuch",
        "TRUNCATE s.nosuch",
        "COPY s.nosuch FROM STDIN",
        "SELECT 's.nosuch'::regclass",
        "SELECT * FROM pg_catalog.nosuch",
        "SELECT * FROM information_schema.nosuch",
    ] {
        assert_eq!(fails(&mut s, sql).0, "42P01", "{sql}");
    }
    // An unqualified name is public's (or the catalog's): not another schema's.
    ok(&mut s, "CREATE TABLE s.only_here (a int)");
    assert_eq!(
        fails(&mut s, "SELECT * FROM only_here"),
        ("42P01", "relation \"only_here\" does not exist".into())
    );
    assert_eq!(
        fails(&mut s, "SELECT * FROM public.only_here"),
        (
            "42P01",
            "relation \"public.only_here\" does not exist".into()
        )
    );
    // Reserved schemas and names.
    let e = err(&mut s, "CREATE TABLE pg_catalog.t (a int)");
    assert_eq!(
        (e.sqlstate, e.message.as_str()),
        ("42501", "permission denied to create \"pg_catalog.t\"")
    );
    assert_eq!(
        e.detail.as_deref(),
        Some("System catalog modifications are currently disallowed.")
    );
    assert_eq!(
        err(&mut s, "CREATE TABLE pg_toast.t (a int)").sqlstate,
        "42501"
    );
    assert_eq!(
        err(&mut s, "CREATE TABLE information_schema.t (a int)").sqlstate,
        "42939"
    );
    let e = err(&mut s, "CREATE SCHEMA pg_mine");
    assert_eq!(
        (e.sqlstate, e.message.as_str()),
        ("42939", "unacceptable schema name \"pg_mine\"")
    );
    assert_eq!(
        e.detail.as_deref(),
        Some("The prefix \"pg_\" is reserved for system schemas.")
    );
    assert_eq!(err(&mut s, "CREATE SCHEMA pg_catalog").sqlstate, "42939");
    assert_eq!(err(&mut s, "CREATE SCHEMA \"a.b\"").sqlstate, "0A000");
    assert_eq!(
        err(&mut s, "CREATE TABLE \"a.b\" (x int)").sqlstate,
        "0A000"
    );
    assert_eq!(
        err(&mut s, "CREATE SCHEMA AUTHORIZATION u").sqlstate,
        "0A000"
    );
    let long = "n".repeat(62);
    assert_eq!(
        err(&mut s, &format!("CREATE SCHEMA {long}")).sqlstate,
        "42622"
    );
    let long = "n".repeat(62);
    assert_eq!(
        err(&mut s, &format!("CREATE TABLE s.{long} (a int)")).sqlstate,
        "42622"
    );
    // Names with too many parts, or another database's.
    assert_eq!(
        fails(&mut s, "SELECT * FROM a.b.c.d"),
        (
            "42601",
            "improper qualified name (too many dotted names): a.b.c.d".into()
        )
    );
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM d.public.t"),
        vec![row(&["0"])]
    );
    assert_eq!(
        fails(&mut s, "SELECT * FROM other.public.t"),
        (
            "0A000",
            "cross-database references are not implemented: \"other.public.t\"".into()
        )
    );
    // A qualifier that names no FROM item.
    assert_eq!(err(&mut s, "SELECT x.t.a FROM t").sqlstate, "42P01");
    assert_eq!(
        err(&mut s, "UPDATE t SET a = 1 WHERE x.t.a = 1").sqlstate,
        "42P01"
    );
    ok(&mut s, "UPDATE t SET a = 1 WHERE public.t.a = 1");
}

// psql 15's queries, captured from a PostgreSQL 15 session.
const PSQL_DN: &str = r#"SELECT n.nspname AS "Name",
  pg_catalog.pg_get_userbyid(n.nspowner) AS "Owner"
FROM pg_catalog.pg_namespace n
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
ORDER BY 1;"#;

const PSQL_DT_SCHEMA: &str = r#"SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','t','s','')
  AND n.nspname OPERATOR(pg_catalog.~) '^(gpexpand)$' COLLATE pg_catalog.default
ORDER BY 1,2;"#;

const PSQL_DT: &str = r#"SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;"#;

const PSQL_D_FIND: &str = r#"SELECT c.oid,
  n.nspname,
  c.relname
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.~) '^(status_detail)$' COLLATE pg_catalog.default
  AND n.nspname OPERATOR(pg_catalog.~) '^(gpexpand)$' COLLATE pg_catalog.default
ORDER BY 2, 3;"#;

const PSQL_D_COLUMNS: &str = r#"SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull,
  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,
  a.attidentity,
  a.attgenerated
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '{oid}' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;"#;

const PSQL_D_INDEXES: &str = r#"SELECT c2.relname, i.indisprimary, i.indisunique, i.indisclustered, i.indisvalid, pg_catalog.pg_get_indexdef(i.indexrelid, 0, true),
  pg_catalog.pg_get_constraintdef(con.oid, true), contype, condeferrable, condeferred, i.indisreplident, c2.reltablespace
FROM pg_catalog.pg_class c, pg_catalog.pg_class c2, pg_catalog.pg_index i
  LEFT JOIN pg_catalog.pg_constraint con ON (conrelid = i.indrelid AND conindid = i.indexrelid AND contype IN ('p','u','x'))
WHERE c.oid = '{oid}' AND c.oid = i.indrelid AND i.indexrelid = c2.oid
ORDER BY i.indisprimary DESC, c2.relname;"#;

#[test]
fn the_catalog_lists_schemas_and_their_tables_as_psql_reads_them() {
    let (_d, node, mut s) = session();
    ok(&mut s, "CREATE TABLE t (a int)");
    ok(&mut s, "CREATE SCHEMA gpexpand");
    ok(&mut s, "CREATE SCHEMA empty");
    ok(
        &mut s,
        "CREATE TABLE gpexpand.status_detail (fq_name text PRIMARY KEY, rank int NOT NULL)",
    );
    ok(&mut s, "CREATE TABLE gpexpand.status (status text)");
    // \dn
    assert_eq!(
        rows(&mut s, PSQL_DN),
        vec![
            row(&["empty", "u"]),
            row(&["gpexpand", "u"]),
            row(&["public", "u"])
        ]
    );
    // Schema oids: above the first user oid, apart from every table's, stable.
    let ns = |s: &mut Session, name: &str| -> i64 {
        rows(
            s,
            &format!("SELECT oid FROM pg_namespace WHERE nspname = '{name}'"),
        )[0][0]
            .parse()
            .unwrap()
    };
    let gp = ns(&mut s, "gpexpand");
    assert!(gp > 16_384);
    assert_ne!(gp, ns(&mut s, "empty"));
    assert_eq!(ns(&mut s, "public"), 2200);
    let table_oids = rows(&mut s, "SELECT oid FROM pg_class WHERE relkind = 'r'");
    assert!(table_oids.iter().all(|r| r[0] != gp.to_string()));
    ok(&mut s, "CREATE SCHEMA another");
    assert_eq!(ns(&mut s, "gpexpand"), gp, "a new schema moves no oid");
    assert_eq!(
        rows(
            &mut s,
            &format!("SELECT {gp}::regnamespace, 'gpexpand'::regnamespace::oid")
        )[0],
        row(&["gpexpand", &gp.to_string()])
    );
    // pg_class: the bare name in its schema; visible only in public.
    assert_eq!(
        rows(
            &mut s,
            "SELECT c.relname, n.nspname, pg_table_is_visible(c.oid) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid >= 16384 ORDER BY 2, 1"
        ),
        vec![
            row(&["status", "gpexpand", "f"]),
            row(&["status_detail", "gpexpand", "f"]),
            row(&["status_detail_pkey", "gpexpand", "f"]),
            row(&["t", "public", "t"]),
        ]
    );
    // \dt shows public's tables; \dt gpexpand.* the schema's.
    assert_eq!(
        rows(&mut s, PSQL_DT),
        vec![row(&["public", "t", "table", "u"])]
    );
    assert_eq!(
        rows(&mut s, PSQL_DT_SCHEMA),
        vec![
            row(&["gpexpand", "status", "table", "u"]),
            row(&["gpexpand", "status_detail", "table", "u"])
        ]
    );
    // \d gpexpand.status_detail
    let found = rows(&mut s, PSQL_D_FIND);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0][1..], row(&["gpexpand", "status_detail"])[..]);
    let oid = found[0][0].clone();
    assert_eq!(
        rows(&mut s, &PSQL_D_COLUMNS.replace("{oid}", &oid)),
        vec![
            row(&["fq_name", "text", "NULL", "t", "NULL", "", ""]),
            row(&["rank", "integer", "NULL", "t", "NULL", "", ""]),
        ]
    );
    assert_eq!(
        rows(&mut s, &PSQL_D_INDEXES.replace("{oid}", &oid))[0][..7],
        row(&[
            "status_detail_pkey",
            "t",
            "t",
            "f",
            "t",
            "CREATE UNIQUE INDEX status_detail_pkey ON gpexpand.status_detail USING btree (fq_name)",
            "PRIMARY KEY (fq_name)"
        ])[..]
    );
    // regclass: qualified off the search path, both ways.
    assert_eq!(
        rows(
            &mut s,
            &format!(
                "SELECT {oid}::regclass, 'GPEXPAND.status_detail'::regclass::oid, \
                 '\"gpexpand\".status_detail_pkey'::regclass::oid::regclass, \
                 't'::regclass::oid::regclass, 'public.t'::regclass::oid::regclass, \
                 'pg_class'::regclass::oid"
            )
        )[0],
        row(&[
            "gpexpand.status_detail",
            &oid,
            "gpexpand.status_detail_pkey",
            "t",
            "t",
            "1259"
        ])
    );
    assert_eq!(
        node.table_def("gpexpand.status_detail").unwrap().unique[0].name,
        "status_detail_pkey"
    );
    // A dropped schema leaves pg_namespace.
    ok(&mut s, "DROP SCHEMA gpexpand CASCADE");
    assert_eq!(
        rows(
            &mut s,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'gpexpand'"
        ),
        vec![row(&["0"])]
    );
}

#[test]
fn an_empty_schema_is_shared_by_the_sessions_of_its_node_only() {
    let (_d, node, mut s) = session();
    let mut other = Session::new(node.clone(), "u", "d");
    ok(&mut s, "CREATE SCHEMA shared");
    ok(&mut other, "CREATE TABLE shared.t (a int)");
    ok(&mut s, "INSERT INTO shared.t VALUES (7)");
    assert_eq!(
        rows(&mut other, "SELECT a FROM shared.t"),
        vec![row(&["7"])]
    );
    // Another node in the same process does not see it.
    let (_d2, _node2, mut elsewhere) = session();
    assert_eq!(
        err(&mut elsewhere, "CREATE TABLE shared.t (a int)").sqlstate,
        "3F000"
    );
    ok(&mut other, "DROP SCHEMA shared CASCADE");
    assert_eq!(err(&mut s, "SELECT * FROM shared.t").sqlstate, "42P01");
}

#[test]
fn schema_tables_survive_a_reopen_and_an_empty_schema_does_not() {
    let dir = tempfile::tempdir().unwrap();
    {
        let node = Node::create_dir(dir.path(), 2, NodeOptions::default()).unwrap();
        let mut s = Session::new(node.clone(), "u", "d");
        ok(&mut s, "CREATE SCHEMA kept");
        ok(&mut s, "CREATE SCHEMA forgotten");
        ok(&mut s, "CREATE TABLE kept.t (a int PRIMARY KEY, b text)");
        ok(&mut s, "CREATE TABLE t (a int, b text)");
        ok(
            &mut s,
            "INSERT INTO kept.t VALUES (1, 'in kept'), (2, 'two')",
        );
        ok(&mut s, "INSERT INTO t VALUES (1, 'in public')");
        drop(s);
        node.close().unwrap();
    }
    let node = Node::open_dir(dir.path(), NodeOptions::default()).unwrap();
    let mut s = Session::new(node.clone(), "u", "d");
    assert_eq!(
        rows(&mut s, "SELECT b FROM kept.t ORDER BY a"),
        vec![row(&["in kept"]), row(&["two"])]
    );
    assert_eq!(rows(&mut s, "SELECT b FROM t"), vec![row(&["in public"])]);
    assert_eq!(
        rows(
            &mut s,
            "SELECT nspname FROM pg_namespace WHERE nspname IN ('kept', 'forgotten')"
        ),
        vec![row(&["kept"])]
    );
    assert_eq!(
        err(&mut s, "CREATE TABLE forgotten.t (a int)").sqlstate,
        "3F000"
    );
    assert_eq!(
        ok(&mut s, "UPDATE kept.t SET b = 'updated' WHERE b = 'two'").tag(),
        "UPDATE 1"
    );
    ok(&mut s, "DROP SCHEMA kept CASCADE");
    assert!(node.tables().iter().all(|t| t.name == "t"));
}
