//! PRIMARY KEY, UNIQUE and DEFAULT through SQL: declared inline, as table constraints or
//! with ALTER TABLE; enforced (23505 with PostgreSQL's message and detail); Greenplum's
//! rule that a unique key contains the distribution key (42P16); defaults filled in for
//! INSERT and COPY.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#[path = "support/session.rs"]
mod support;
use support::{err, ok, rows, session};

fn text(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|x| Some(x.to_string())).collect()
}

#[test]
fn primary_keys_and_unique_constraints_are_enforced() {
    let (_d, node, mut s) = session();
    // Inline primary key, no DISTRIBUTED BY: the key becomes the distribution key.
    ok(&mut s, "CREATE TABLE a (id int PRIMARY KEY, v text)");
    assert!(s.take_notices().iter().any(|n| n.contains("'id'")));
    ok(&mut s, "INSERT INTO a VALUES (1, 'x'), (2, 'y')");
    let e = err(&mut s, "INSERT INTO a VALUES (2, 'again')");
    assert_eq!(e.sqlstate, "23505");
    assert_eq!(
        e.message,
        "duplicate key value violates unique constraint \"a_pkey\""
    );
    assert_eq!(e.detail.as_deref(), Some("Key (id)=(2) already exists."));
    // The failed multi-row insert left nothing behind.
    assert_eq!(
        err(&mut s, "INSERT INTO a VALUES (3, 'n'), (1, 'dup')").sqlstate,
        "23505"
    );
    assert_eq!(rows(&mut s, "SELECT count(*) FROM a"), vec![text(&["2"])]);
    // A primary key's column is NOT NULL.
    assert_eq!(
        err(&mut s, "INSERT INTO a VALUES (NULL, 'z')").sqlstate,
        "23502"
    );
    // An update onto another row's key.
    assert_eq!(
        err(&mut s, "UPDATE a SET id = 1 WHERE id = 2").sqlstate,
        "23505"
    );
    ok(&mut s, "UPDATE a SET v = 'w' WHERE id = 2");

    // Table constraints, named and not.
    ok(
        &mut s,
        "CREATE TABLE b (x int, y int, z int, CONSTRAINT b_key PRIMARY KEY (x, y), UNIQUE (x, z)) \
         DISTRIBUTED BY (x)",
    );
    let def = node.table_def("b").unwrap();
    let names: Vec<&str> = def.unique.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["b_key", "b_x_z_key"]);
    ok(
        &mut s,
        "INSERT INTO b VALUES (1, 1, 1), (1, 2, NULL), (1, 3, NULL)",
    );
    assert_eq!(
        err(&mut s, "INSERT INTO b VALUES (1, 4, 1)").message,
        "duplicate key value violates unique constraint \"b_x_z_key\""
    );

    // Greenplum's rule, and the constraints this engine does not keep.
    for sql in [
        "CREATE TABLE c (x int, y int PRIMARY KEY) DISTRIBUTED BY (x)",
        "CREATE TABLE c (x int PRIMARY KEY) DISTRIBUTED RANDOMLY",
    ] {
        assert_eq!(err(&mut s, sql).sqlstate, "42P16", "{sql}");
    }
    assert_eq!(
        err(&mut s, "CREATE TABLE c (x int CHECK (x > 0))").sqlstate,
        "0A000"
    );
    assert_eq!(
        err(
            &mut s,
            "CREATE TABLE c (x int, FOREIGN KEY (x) REFERENCES a (id))"
        )
        .sqlstate,
        "0A000"
    );
    assert!(node.table_def("c").is_err());

    // A key change to columns outside the primary key is refused.
    assert_eq!(
        err(&mut s, "ALTER TABLE a SET DISTRIBUTED BY (v)").sqlstate,
        "42P16"
    );
}

#[test]
fn alter_table_add_primary_key_as_pgbench_does() {
    let (_d, node, mut s) = session();
    ok(
        &mut s,
        "CREATE TABLE t (aid int NOT NULL, bid int, abalance int)",
    );
    ok(
        &mut s,
        "INSERT INTO t VALUES (1, 1, 0), (2, 1, 0), (2, 1, 5)",
    );
    let e = err(&mut s, "ALTER TABLE t ADD PRIMARY KEY (aid)");
    assert_eq!(e.sqlstate, "23505");
    assert!(node.table_def("t").unwrap().unique.is_empty());
    ok(&mut s, "DELETE FROM t WHERE abalance = 5");
    assert_eq!(
        ok(&mut s, "ALTER TABLE t ADD PRIMARY KEY (aid)").tag(),
        "ALTER TABLE"
    );
    assert_eq!(
        err(&mut s, "INSERT INTO t VALUES (1, 2, 3)").sqlstate,
        "23505"
    );
    assert_eq!(
        err(&mut s, "ALTER TABLE t ADD UNIQUE (bid)").sqlstate,
        "42P16"
    );
    assert_eq!(
        err(&mut s, "ALTER TABLE t ADD COLUMN c int").sqlstate,
        "0A000"
    );
    assert_eq!(
        err(&mut s, "ALTER TABLE nosuch ADD PRIMARY KEY (a)").sqlstate,
        "42P01"
    );
    ok(&mut s, "ALTER TABLE IF EXISTS nosuch ADD PRIMARY KEY (a)");
    // Not inside an explicit block (DDL is not transactional here).
    ok(&mut s, "BEGIN");
    assert_eq!(
        err(&mut s, "ALTER TABLE t ADD UNIQUE (aid, bid)").sqlstate,
        "25001"
    );
    ok(&mut s, "ROLLBACK");
    // In one query string after writing to the table, it does not wait for itself.
    ok(
        &mut s,
        "INSERT INTO t VALUES (10, 1, 0); ALTER TABLE t ADD UNIQUE (aid, bid)",
    );
    assert_eq!(node.table_def("t").unwrap().unique.len(), 2);
}

#[test]
fn defaults_fill_the_columns_an_insert_or_copy_leaves_out() {
    let (_d, _node, mut s) = session();
    ok(
        &mut s,
        "CREATE TABLE d (id int, n int DEFAULT 7, t text DEFAULT 'x' || 'y', m int) \
         DISTRIBUTED BY (id)",
    );
    ok(&mut s, "INSERT INTO d (id) VALUES (1)");
    ok(&mut s, "INSERT INTO d VALUES (2, DEFAULT, 'z', DEFAULT)");
    ok(&mut s, "INSERT INTO d (id, n) VALUES (3, NULL)");
    s.copy_in("d", &[0, 3], b"4\t40\n").unwrap();
    assert_eq!(
        rows(&mut s, "SELECT id, n, t, m FROM d ORDER BY id"),
        vec![
            vec![Some("1".into()), Some("7".into()), Some("xy".into()), None],
            vec![Some("2".into()), Some("7".into()), Some("z".into()), None],
            vec![Some("3".into()), None, Some("xy".into()), None],
            vec![
                Some("4".into()),
                Some("7".into()),
                Some("xy".into()),
                Some("40".into())
            ],
        ]
    );
    // A default must be a constant expression of the column's type.
    assert_eq!(
        err(&mut s, "CREATE TABLE e (a int, b int DEFAULT a)").sqlstate,
        "0A000"
    );
    assert_eq!(
        err(&mut s, "CREATE TABLE e (a int, b int DEFAULT 'nope')").sqlstate,
        "22P02"
    );
}

#[test]
fn copy_loads_whole_pages_in_the_sessions_transaction() {
    let (_d, _node, mut s) = session();
    ok(
        &mut s,
        "CREATE TABLE c (id int, v text) DISTRIBUTED BY (id)",
    );
    let data: String = (0..3000).map(|i| format!("{i}\tv{i}\n")).collect();
    // Rolled back with its block.
    ok(&mut s, "BEGIN");
    s.copy_in("c", &[0, 1], data.as_bytes()).unwrap();
    assert_eq!(
        rows(&mut s, "SELECT count(*) FROM c"),
        vec![text(&["3000"])]
    );
    ok(&mut s, "ROLLBACK");
    assert_eq!(rows(&mut s, "SELECT count(*) FROM c"), vec![text(&["0"])]);
    // Committed with it, and found by key afterwards.
    ok(&mut s, "BEGIN");
    s.copy_in("c", &[0, 1], data.as_bytes()).unwrap();
    ok(&mut s, "COMMIT");
    assert_eq!(
        rows(&mut s, "SELECT v FROM c WHERE id = 2999"),
        vec![text(&["v2999"])]
    );
    // Into a table with a primary key, a duplicate fails the whole COPY.
    ok(&mut s, "CREATE TABLE k (id int PRIMARY KEY, v text)");
    let e = s.copy_in("k", &[0, 1], b"1\ta\n2\tb\n1\tc\n").unwrap_err();
    assert_eq!(e.sqlstate, "23505");
    assert_eq!(rows(&mut s, "SELECT count(*) FROM k"), vec![text(&["0"])]);
    s.copy_in("k", &[0, 1], b"1\ta\n2\tb\n").unwrap();
    assert_eq!(rows(&mut s, "SELECT count(*) FROM k"), vec![text(&["2"])]);
}

#[test]
fn generated_constraint_names_that_collide_are_numbered_and_show_takes_dotted_names() {
    let (_d, node, mut s) = session();
    let long = "c".repeat(62);
    ok(
        &mut s,
        &format!(
            "create table {long} (x int primary key, y int, z int, unique (x, y), unique (x, z))"
        ),
    );
    let def = node.table_def(&long).unwrap();
    let names: Vec<&str> = def.unique.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names.len(), 3);
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| n.len() <= 63), "{names:?}");
    ok(&mut s, "set segexpand.redistribute_rows_per_second = 5000");
    assert_eq!(
        rows(&mut s, "show segexpand.redistribute_rows_per_second"),
        vec![text(&["5000"])]
    );
}
