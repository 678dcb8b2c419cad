//! The SQL layer driven as a client would, without sockets: DDL, DML, queries,
//! transactions and errors with their SQLSTATEs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
use segexpand_engine::{Node, NodeOptions};
use segexpand_sql::{Output, Session, TxnStatus};
use std::sync::Arc;

fn node(segments: u16) -> (tempfile::TempDir, Arc<Node>) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), segments, NodeOptions::default()).unwrap();
    (dir, node)
}

/// Runs `sql`, expecting success; the last statement's output.
fn ok(s: &mut Session, sql: &str) -> Output {
    let mut out = s.execute(sql);
    for r in &out {
        if let Err(e) = r {
            panic!("{sql}: {e}");
        }
    }
    out.pop().unwrap().unwrap()
}

fn rows(s: &mut Session, sql: &str) -> Vec<Vec<Option<String>>> {
    match ok(s, sql) {
        Output::Rows { rows, .. } => rows,
        other => panic!("{sql}: {other:?}"),
    }
}

fn err(s: &mut Session, sql: &str) -> String {
    match s.execute(sql).pop().unwrap() {
        Err(e) => e.sqlstate.to_string(),
        Ok(o) => panic!("{sql}: expected an error, got {o:?}"),
    }
}

fn cell(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn create_insert_select_update_delete_through_sql() {
    let (_d, node) = node(3);
    let mut s = Session::new(node, "u", "d");
    ok(
        &mut s,
        "CREATE TABLE acct (id int NOT NULL, owner varchar(8), bal numeric) DISTRIBUTED BY (id)",
    );
    assert_eq!(
        ok(
            &mut s,
            "INSERT INTO acct VALUES (1, 'ann', 10.5), (2, 'bob', 3), (3, NULL, 0)"
        )
        .tag(),
        "INSERT 0 3"
    );
    ok(
        &mut s,
        "insert into acct (owner, id, bal) values ('cy', 4, '7.25')",
    );
    assert_eq!(
        rows(&mut s, "select owner, bal from acct where id = 1"),
        vec![vec![cell("ann"), cell("10.5")]]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT count(*), sum(bal), min(id), max(owner) FROM acct"
        ),
        vec![vec![cell("4"), cell("20.75"), cell("1"), cell("cy")]]
    );
    assert_eq!(
        ok(&mut s, "UPDATE acct SET bal = bal + 1 WHERE id = 2").tag(),
        "UPDATE 1"
    );
    assert_eq!(
        ok(&mut s, "update acct set bal = bal * 2 where bal > 5").tag(),
        "UPDATE 2"
    );
    assert_eq!(
        rows(
            &mut s,
            "select id, bal from acct order by id desc limit 2 offset 1"
        ),
        vec![vec![cell("3"), cell("0")], vec![cell("2"), cell("4")]]
    );
    assert_eq!(
        ok(&mut s, "DELETE FROM acct WHERE owner IS NULL").tag(),
        "DELETE 1"
    );
    assert_eq!(
        ok(&mut s, "delete from acct where id = 4").tag(),
        "DELETE 1"
    );
    assert_eq!(
        rows(&mut s, "select count(*) from acct"),
        vec![vec![cell("2")]]
    );

    // gp_segment_id shows where rows live; the counts add up.
    ok(&mut s, "create table t (k int, v int)");
    let values: Vec<String> = (0..300).map(|i| format!("({i}, {})", i % 7)).collect();
    ok(
        &mut s,
        &format!("insert into t values {}", values.join(",")),
    );
    let per_seg = rows(
        &mut s,
        "SELECT gp_segment_id, count(*) FROM t GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(per_seg.len(), 3);
    let total: i64 = per_seg
        .iter()
        .map(|r| r[1].as_ref().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, 300);
    assert_eq!(
        rows(
            &mut s,
            "select v, count(*) from t group by v having count(*) < 43 order by v"
        ),
        vec![vec![cell("6"), cell("42")]]
    );
    assert_eq!(
        s.take_notices().len(),
        1,
        "the default distribution key is announced"
    );
    match ok(&mut s, "explain select * from t where k = 5") {
        Output::Rows { rows, .. } => {
            assert!(rows[0][0].as_ref().unwrap().contains("Direct dispatch"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn transactions_roll_back_and_a_failed_block_refuses_until_its_end() {
    let (_d, node) = node(2);
    let mut s = Session::new(node.clone(), "u", "d");
    ok(&mut s, "create table t (k int, v int) distributed by (k)");
    ok(&mut s, "begin; insert into t values (1, 1); rollback");
    assert_eq!(
        rows(&mut s, "select count(*) from t"),
        vec![vec![cell("0")]]
    );
    ok(&mut s, "BEGIN");
    assert_eq!(s.status(), TxnStatus::InBlock);
    ok(&mut s, "insert into t values (2, 2)");
    // Another session does not see the uncommitted row.
    let mut other = Session::new(node, "u", "d");
    assert_eq!(
        rows(&mut other, "select count(*) from t"),
        vec![vec![cell("0")]]
    );
    assert_eq!(err(&mut s, "select nope from t"), "42703");
    assert_eq!(s.status(), TxnStatus::Failed);
    assert_eq!(err(&mut s, "select 1"), "25P02");
    assert_eq!(ok(&mut s, "commit").tag(), "ROLLBACK");
    assert_eq!(s.status(), TxnStatus::Idle);
    assert_eq!(
        rows(&mut other, "select count(*) from t"),
        vec![vec![cell("0")]]
    );
    // A session dropped mid-block rolls back.
    ok(&mut other, "begin; insert into t values (3, 3)");
    drop(other);
    assert_eq!(
        rows(&mut s, "select count(*) from t"),
        vec![vec![cell("0")]]
    );
}

#[test]
fn bad_input_gets_the_right_sqlstate_and_changes_nothing() {
    let (_d, node) = node(2);
    let mut s = Session::new(node, "u", "d");
    ok(
        &mut s,
        "create table t (k int not null, s varchar(3), n smallint) distributed by (k)",
    );
    assert_eq!(err(&mut s, "selec 1"), "42601");
    assert_eq!(err(&mut s, "select * from nope"), "42P01");
    assert_eq!(err(&mut s, "select zz from t"), "42703");
    assert_eq!(
        err(&mut s, "insert into t values (99999999999, 'a', 1)"),
        "22003"
    );
    assert_eq!(err(&mut s, "insert into t values (1, 'abcd', 1)"), "22001");
    assert_eq!(err(&mut s, "insert into t values (1, 'a', 40000)"), "22003");
    assert_eq!(err(&mut s, "insert into t values ('x', 'a', 1)"), "22P02");
    assert_eq!(err(&mut s, "insert into t values (NULL, 'a', 1)"), "23502");
    // Fewer values than columns fill the leading ones (PostgreSQL); more is an error.
    assert_eq!(err(&mut s, "insert into t values (1, 'a', 1, 2)"), "42601");
    assert_eq!(err(&mut s, "select 1/0"), "22012");
    assert_eq!(
        err(&mut s, "create table r (a int) distributed replicated"),
        "0A000"
    );
    assert_eq!(err(&mut s, "create table t (a int)"), "42P07");
    assert_eq!(
        err(
            &mut s,
            "create table r (a int, b int, c int) distributed by (zz)"
        ),
        "42703"
    );
    assert_eq!(
        err(&mut s, "update t set n = n + 1 where k = 1 and nope = 2"),
        "42703"
    );
    assert_eq!(
        rows(&mut s, "select count(*) from t"),
        vec![vec![cell("0")]]
    );
    // A multi-statement string stops at the first error, and is one transaction: the
    // statements before the error roll back too (as in PostgreSQL).
    let out = s.execute(
        "insert into t values (1, 'a', 1); select * from nope; insert into t values (2, 'b', 2)",
    );
    assert_eq!(out.len(), 2);
    assert_eq!(
        rows(&mut s, "select count(*) from t"),
        vec![vec![cell("0")]]
    );
}

#[test]
fn parameters_are_typed_from_context() {
    let (_d, node) = node(2);
    let mut s = Session::new(node, "u", "d");
    ok(
        &mut s,
        "create table a (aid int not null, abalance int, filler char(10)) distributed by (aid)",
    );
    ok(&mut s, "insert into a values (1, 0, ''), (2, 0, '')");
    let (types, cols) = s
        .describe("UPDATE a SET abalance = abalance + $1 WHERE aid = $2;")
        .unwrap();
    assert_eq!(
        types,
        vec![segexpand_engine::Type::Int4, segexpand_engine::Type::Int4]
    );
    assert!(cols.is_empty());
    let (types, cols) = s.describe("SELECT abalance FROM a WHERE aid = $1").unwrap();
    assert_eq!(types, vec![segexpand_engine::Type::Int4]);
    assert_eq!(cols.len(), 1);
    use segexpand_engine::Value;
    s.execute_with(
        "UPDATE a SET abalance = abalance + $1 WHERE aid = $2;",
        &[Value::Int4(-5), Value::Int4(2)],
    )
    .unwrap();
    match s
        .execute_with("SELECT abalance FROM a WHERE aid = $1", &[Value::Int4(2)])
        .unwrap()
    {
        Output::Rows { rows, .. } => assert_eq!(rows, vec![vec![cell("-5")]]),
        other => panic!("{other:?}"),
    }
}

/// Found by an adversarial pass: each of these once crashed the server, committed what
/// the client was told was rolled back, or ran half of a string.
#[test]
fn what_an_unfriendly_client_found_stays_fixed() {
    // Debug builds take far bigger stack frames than the release server's threads
    // (8 MiB, see segexpand-server): give this test the same room.
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(unfriendly_client)
        .unwrap()
        .join()
        .unwrap();
}

fn unfriendly_client() {
    let (_d, node) = node(2);
    let mut s = Session::new(node.clone(), "u", "d");
    ok(&mut s, "create table t (k int, v int) distributed by (k)");
    // A long flat chain overflowed a thread's stack (2,000 terms); now a clear error.
    let chain = vec!["1"; 5000].join("+");
    assert_eq!(err(&mut s, &format!("select {chain}")), "54001");
    let ands = vec!["k = 1"; 10_000].join(" and ");
    assert_eq!(
        err(&mut s, &format!("select * from t where {ands}")),
        "54001"
    );
    let chain = vec!["1"; 600].join("+");
    assert_eq!(
        err(&mut s, &format!("select {chain}")),
        "54001",
        "compile depth"
    );
    // Many values are not a chain: a long VALUES list with negative numbers is fine.
    let values: Vec<String> = (0..3000).map(|i| format!("({i}, -{i})")).collect();
    ok(
        &mut s,
        &format!("insert into t values {}; delete from t", values.join(",")),
    );
    assert_eq!(
        rows(&mut s, &format!("select {}", vec!["1"; 100].join("+"))),
        vec![vec![cell("100")]]
    );
    // A parameter number past 65535 allocated 8 bytes per number.
    assert_eq!(
        s.describe("select $4294967297").unwrap_err().sqlstate,
        "42P02"
    );
    // Any error in a block fails it: a syntax error or a refused statement too.
    for bad in [
        "selec 1",
        "create table t (a int)",
        "rollback to savepoint s",
        "drop table nosuch",
    ] {
        ok(&mut s, "begin; insert into t values (1, 1)");
        assert!(s.execute(bad).pop().unwrap().is_err(), "{bad}");
        assert_eq!(s.status(), TxnStatus::Failed, "{bad}");
        assert_eq!(err(&mut s, "insert into t values (2, 2)"), "25P02");
        assert_eq!(ok(&mut s, "commit").tag(), "ROLLBACK", "{bad}");
    }
    assert_eq!(
        rows(&mut s, "select count(*) from t"),
        vec![vec![cell("0")]]
    );
    // DDL in an explicit block is refused (ROLLBACK could not undo it).
    ok(&mut s, "begin");
    assert_eq!(err(&mut s, "create table u (a int)"), "25001");
    ok(&mut s, "rollback");
    assert!(node.table_id("u").is_none());
    // A multi-statement string is one transaction: all or nothing; a syntax error
    // anywhere runs nothing.
    let out = s.execute("insert into t values (1, 1); insert into t values (2, 2); select 1/0");
    assert!(out.last().unwrap().is_err());
    let out = s.execute("insert into t values (3, 3); selec 1");
    assert_eq!(out.len(), 1);
    assert_eq!(
        rows(&mut s, "select count(*) from t"),
        vec![vec![cell("0")]]
    );
    ok(
        &mut s,
        "insert into t values (1, 1); insert into t values (2, 2)",
    );
    assert_eq!(
        rows(&mut s, "select count(*) from t"),
        vec![vec![cell("2")]]
    );
    assert_eq!(s.status(), TxnStatus::Idle);
    // A server shutting down: nothing commits any more.
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    s.set_terminate_flag(flag.clone());
    flag.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(err(&mut s, "insert into t values (9, 9)"), "57P01");
    let mut other = Session::new(node, "u", "d");
    assert_eq!(
        rows(&mut other, "select count(*) from t"),
        vec![vec![cell("2")]]
    );
}

/// While a redistribution changes a table's key, a WHERE on the old key is read by scan:
/// the engine takes key values as the key of the definition it reads at the statement's
/// start, and a flip between the SQL layer's read and the engine's would make
/// `WHERE tid = 6` look up `bid = 6` (pgbench lost teller updates that way).
#[test]
fn a_table_whose_key_is_changing_is_not_read_by_key() {
    let (_d, node) = node(3);
    let mut s = Session::new(node.clone(), "u", "d");
    ok(
        &mut s,
        "create table tel (tid int not null, bid int, bal int) distributed by (tid)",
    );
    let values: Vec<String> = (1..=10).map(|i| format!("({i}, 1, 0)")).collect();
    ok(
        &mut s,
        &format!("insert into tel values {}", values.join(",")),
    );
    let plan = |s: &mut Session| match ok(s, "explain select * from tel where tid = 6") {
        Output::Rows { rows, .. } => rows[0][0].clone().unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(plan(&mut s).contains("Direct dispatch"));
    let def = node.table_def("tel").unwrap();
    let target = segexpand_engine::Layout {
        key: vec![1],
        ..def.layout.clone()
    };
    node.start_redistribution("tel", target, &Default::default())
        .unwrap();
    assert!(
        !plan(&mut s).contains("Direct dispatch"),
        "{}",
        plan(&mut s)
    );
    assert_eq!(
        ok(&mut s, "update tel set bal = bal + 5 where tid = 6").tag(),
        "UPDATE 1"
    );
    assert_eq!(
        rows(&mut s, "select bal from tel where tid = 6"),
        vec![vec![cell("5")]]
    );
}

#[test]
fn isolation_levels_the_engine_does_not_give_are_refused() {
    let (_d, node) = node(2);
    let mut s = Session::new(node, "u", "d");
    for sql in [
        "BEGIN ISOLATION LEVEL SERIALIZABLE",
        "START TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "BEGIN READ ONLY",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET default_transaction_isolation = 'serializable'",
    ] {
        assert_eq!(err(&mut s, sql), "0A000", "{sql}");
        assert_eq!(s.status(), TxnStatus::Idle, "{sql}");
    }
    for sql in [
        "BEGIN ISOLATION LEVEL READ COMMITTED",
        "COMMIT",
        "START TRANSACTION ISOLATION LEVEL READ UNCOMMITTED, READ WRITE",
        "ROLLBACK",
        "SET default_transaction_isolation = 'read committed'",
    ] {
        ok(&mut s, sql);
    }
}

#[test]
fn casts_and_limits_give_postgresqls_results_and_sqlstates() {
    let (_d, node) = node(2);
    let mut s = Session::new(node, "u", "d");
    assert_eq!(err(&mut s, "select 70000::smallint"), "22003");
    assert_eq!(
        rows(&mut s, "select 7::smallint, 70000::int8"),
        vec![vec![cell("7"), cell("70000")]]
    );
    assert_eq!(err(&mut s, "select 1 limit 'a'"), "22P02");
    assert_eq!(err(&mut s, "select 1 limit -1"), "2201W");
    // An explicit cast cuts a string to the length; an assignment refuses it.
    assert_eq!(
        rows(&mut s, "select 'abcdef'::varchar(3)"),
        vec![vec![cell("abc")]]
    );
    ok(&mut s, "create table v (s varchar(3)) distributed randomly");
    assert_eq!(err(&mut s, "insert into v values ('abcdef')"), "22001");
    ok(&mut s, "insert into v values ('abcdef'::varchar(3))");
    assert_eq!(rows(&mut s, "select s from v"), vec![vec![cell("abc")]]);
}

#[test]
fn a_prepared_select_is_planned_again_after_the_catalog_changes() {
    let (_d, node) = node(2);
    let mut s = Session::new(node, "u", "d");
    ok(&mut s, "create table t (id int, v int) distributed by (id)");
    ok(&mut s, "insert into t values (1, 10), (2, 20)");
    let (p, _, _) = s.prepare("select v from t where id = $1").unwrap();
    let run = |s: &mut Session, id: i32| match s
        .execute_prepared(&p, &[segexpand_engine::Value::Int4(id)])
        .unwrap()
    {
        Output::Rows { rows, .. } => rows,
        other => panic!("{other:?}"),
    };
    assert_eq!(run(&mut s, 2), vec![vec![cell("20")]]);
    assert_eq!(run(&mut s, 1), vec![vec![cell("10")]]);
    // A key change (the cached plan looked rows up by id) and new segments.
    ok(&mut s, "alter table t set distributed by (v)");
    assert_eq!(run(&mut s, 2), vec![vec![cell("20")]]);
    ok(&mut s, "select segexpand_add_segments(1)");
    ok(&mut s, "alter table t expand table");
    assert_eq!(run(&mut s, 1), vec![vec![cell("10")]]);
    // The table dropped and made again with other columns.
    ok(&mut s, "drop table t");
    ok(
        &mut s,
        "create table t (v text, id int) distributed by (id)",
    );
    ok(&mut s, "insert into t values ('new', 2)");
    assert_eq!(run(&mut s, 2), vec![vec![cell("new")]]);
    ok(&mut s, "drop table t");
    assert!(s
        .execute_prepared(&p, &[segexpand_engine::Value::Int4(2)])
        .is_err());
}

#[test]
fn string_literals_with_quotes_survive_the_statement_splitter() {
    let (_d, node) = node(2);
    let mut s = Session::new(node, "u", "d");
    assert_eq!(
        rows(&mut s, "select 'it''s', E'it\\'s', $$it's$$; "),
        vec![vec![cell("it's"), cell("it's"), cell("it's")]]
    );
    ok(
        &mut s,
        "create table q (a int, t text default 'it''s') distributed by (a)",
    );
    ok(
        &mut s,
        "insert into q (a) values (1); insert into q values (2, 'o''brien')",
    );
    assert_eq!(
        rows(&mut s, "select t from q order by a"),
        vec![vec![cell("it's")], vec![cell("o'brien")]]
    );
}

#[test]
fn a_redistribution_left_by_a_crash_is_resumed_by_the_statement_that_asks_for_it() {
    use segexpand_engine::redistribute::GateOptions;
    let (_d, node) = node(2);
    let mut s = Session::new(node.clone(), "u", "d");
    ok(&mut s, "create table t (id int, v int) distributed by (id)");
    let values: Vec<String> = (0..500).map(|i| format!("({i}, {i})")).collect();
    ok(
        &mut s,
        &format!("insert into t values {}", values.join(",")),
    );
    ok(&mut s, "select segexpand_add_segments(1)");
    // The state a crash leaves: started, nothing moved yet (the mover's work is lost).
    let target = segexpand_engine::Layout {
        segments: 3,
        ..node.table_def("t").unwrap().layout
    };
    node.start_redistribution("t", target.clone(), &GateOptions::default())
        .unwrap();
    // Another target is refused, saying which statement resumes it.
    assert_eq!(err(&mut s, "alter table t set distributed by (v)"), "55000");
    ok(&mut s, "alter table t expand table");
    assert!(s.take_notices().iter().any(|n| n.contains("resuming")));
    let def = node.table_def("t").unwrap();
    assert!(def.redistribution.is_none());
    assert_eq!(def.layout.segments, 3);
    assert!(node.check_placement("t").unwrap().is_empty());
    assert_eq!(
        rows(&mut s, "select count(*) from t"),
        vec![vec![cell("500")]]
    );
    // A cancelled one is finished first, then the new one runs.
    let key = segexpand_engine::Layout {
        key: vec![1],
        ..node.table_def("t").unwrap().layout
    };
    node.start_redistribution("t", key, &GateOptions::default())
        .unwrap();
    node.cancel_redistribution("t", &GateOptions::default())
        .unwrap();
    ok(&mut s, "alter table t set distributed by (v)");
    let def = node.table_def("t").unwrap();
    assert!(def.redistribution.is_none());
    assert_eq!(def.layout.key, vec![1]);
    assert!(node.check_placement("t").unwrap().is_empty());
    assert_eq!(
        rows(&mut s, "select count(*) from t"),
        vec![vec![cell("500")]]
    );
}
