//! `segexpand serve` driven by the real PostgreSQL 15 clients, `psql` and `pgbench`, as
//! users would. `.ci/run` installs them (Debian's `postgresql-client`) when missing; a
//! machine without them fails here with a message saying so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use support::Server;

#[test]
fn psql_creates_writes_reads_copies_and_sees_errors_with_their_sqlstate() {
    let mut srv = Server::start();
    let (out, err) = srv.psql(
        "create table acct (id int not null, owner varchar(10), bal numeric) distributed by (id);\n\
         create table r (a int, b text) distributed randomly;\n\
         insert into acct values (1, 'ann', 10.5), (2, 'bob', 3), (3, NULL, 0);\n\
         insert into r values (1, 'x'), (2, 'y');\n\
         update acct set bal = bal + 1 where id = 2;\n\
         delete from acct where id = 3;\n\
         begin;\n\
         insert into acct values (9, 'gone', 1);\n\
         rollback;\n\
         select id, owner, bal from acct order by id;\n\
         select count(*) from r;\n\
         select * from nosuch;\n",
    );
    let row = |id: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split('|').next().map(str::trim) == Some(id))
            .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(row("1"), ["1", "ann", "10.5"], "{out}\n{err}");
    assert_eq!(row("2"), ["2", "bob", "4"], "{out}");
    assert!(!out.contains("gone"), "rolled back: {out}");
    assert!(out.contains("(2 rows)"), "{out}");
    assert!(
        err.contains("ERROR:  42P01: relation \"nosuch\" does not exist"),
        "the SQLSTATE is shown with VERBOSITY verbose: {err}"
    );

    // COPY in (psql's \copy sends the rows in chunks that do not follow lines) and out.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rows.tsv");
    let mut data = String::new();
    for i in 100..5100 {
        data.push_str(&format!("{i}\towner{i}\t{}.25\n", i % 50));
    }
    data.push_str("99\t\\N\t0\n");
    std::fs::write(&file, &data).unwrap();
    let (out, err) = srv.psql(&format!("\\copy acct from '{}'\n", file.display()));
    assert!(err.is_empty(), "{err}");
    let _ = out;
    assert_eq!(srv.query("select count(*) from acct"), "5003");
    assert_eq!(
        srv.query("select count(*) from acct where owner is null"),
        "1"
    );
    let copied = srv.query("copy acct to stdout");
    assert_eq!(copied.lines().count(), 5003);
    assert!(copied.lines().any(|l| l == "99\t\\N\t0"), "NULL is \\N");

    // Where rows live: four segments, every row counted once.
    let per_seg = srv.query("select gp_segment_id, count(*) from acct group by 1 order by 1");
    let counts: Vec<i64> = per_seg
        .lines()
        .map(|l| l.split('|').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 4, "{per_seg}");
    assert_eq!(counts.iter().sum::<i64>(), 5003);
    assert!(srv
        .query("explain select * from acct where id = 7")
        .contains("Direct dispatch"));
    srv.stop();
}

/// A psql session fed line by line, whose output is read as it comes.
struct Interactive {
    child: Child,
    stdin: std::process::ChildStdin,
    out: std::sync::mpsc::Receiver<String>,
    err: std::sync::mpsc::Receiver<String>,
}

impl Interactive {
    fn start(srv: &Server) -> Interactive {
        let mut child = srv
            .client("psql")
            .args(["-X", "-q", "-At", "-v", "VERBOSITY=verbose"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let pipe = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
            rx
        };
        let out = pipe(Box::new(child.stdout.take().unwrap()));
        let err = pipe(Box::new(child.stderr.take().unwrap()));
        Interactive {
            child,
            stdin,
            out,
            err,
        }
    }

    fn send(&mut self, sql: &str) {
        writeln!(self.stdin, "{sql}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends `sql` and returns its first output line.
    fn ask(&mut self, sql: &str) -> String {
        self.send(sql);
        self.out
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{sql}: no answer ({e})"))
    }

    /// The next ERROR line on stderr (psql says "Cancel request sent" first).
    fn error(&mut self) -> String {
        loop {
            let l = self
                .err
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap();
            if l.contains("ERROR") {
                return l;
            }
        }
    }

    /// psql's Ctrl-C: it sends the server a cancel request for the running query.
    fn interrupt(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_cancel_request_stops_a_waiting_statement_and_an_expansion_online() {
    let mut srv = Server::start();
    srv.query("create table c (id int primary key, v int)");
    srv.query("insert into c values (1, 0), (2, 0)");

    // A holds row 1; B waits for it and is cancelled with psql's Ctrl-C.
    let mut a = Interactive::start(&srv);
    a.send("begin;");
    a.send("update c set v = 1 where id = 1;");
    assert_eq!(a.ask("select 'held';"), "held");
    let mut b = Interactive::start(&srv);
    assert_eq!(b.ask("select 'ready';"), "ready");
    b.send("update c set v = 2 where id = 1;");
    std::thread::sleep(std::time::Duration::from_millis(300));
    b.interrupt();
    let e = b.error();
    assert!(
        e.contains("57014") && e.contains("canceling statement due to user request"),
        "{e}"
    );
    // (psql reading a script ends after a Ctrl-C.) Then by pg_cancel_backend from
    // another session; the cancelled session goes on.
    let mut b = Interactive::start(&srv);
    let pid = b.ask("select pg_backend_pid();");
    b.send("update c set v = 3 where id = 1;");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(srv.query(&format!("select pg_cancel_backend({pid})")), "t");
    let e = b.error();
    assert!(e.contains("57014"), "{e}");
    assert_eq!(b.ask("select v from c where id = 2;"), "0");
    assert_eq!(srv.query("select pg_cancel_backend(999999)"), "f");
    a.send("commit;");
    assert_eq!(a.ask("select v from c where id = 1;"), "1");
    drop((a, b));

    // An expansion cancelled halfway: the table is whole, on its old layout.
    srv.pgbench_init(Some("dtg"));
    assert_eq!(srv.query("select segexpand_add_segments(2)"), "{4,5}");
    let mut x = Interactive::start(&srv);
    x.send("set segexpand.redistribute_rows_per_second = 50000;");
    assert_eq!(x.ask("select 'go';"), "go");
    x.send("alter table pgbench_accounts expand table;");
    std::thread::sleep(std::time::Duration::from_millis(700));
    // Others keep reading and writing meanwhile.
    assert_eq!(srv.query("select count(*) from pgbench_accounts"), "100000");
    srv.query("update pgbench_accounts set abalance = abalance + 5 where aid = 77");
    x.interrupt();
    let e = x.error();
    assert!(e.contains("57014"), "{e}");
    drop(x);
    assert_eq!(srv.per_segment("pgbench_accounts").len(), 4);
    assert_eq!(srv.query("select count(*) from pgbench_accounts"), "100000");
    assert_eq!(srv.query("select sum(abalance) from pgbench_accounts"), "5");
    // The session setting is checked.
    let (_, err) = srv.psql("set segexpand.redistribute_rows_per_second = -1;");
    assert!(err.contains("22023"), "{err}");
    srv.stop();
    let node =
        segexpand_engine::Node::open_dir(&srv.dir(), segexpand_engine::NodeOptions::default())
            .unwrap();
    let def = node.table_def("pgbench_accounts").unwrap();
    assert_eq!(def.layout.segments, 4);
    assert!(def.redistribution.is_none());
    assert!(node.check_placement("pgbench_accounts").unwrap().is_empty());
    node.close().unwrap();
}

/// Runs pgbench tpcb-like (4 clients, prepared, 6 s) while `changes` run through psql
/// (each must print nothing or what is given); then checks 0 failed transactions, the
/// TPC-B invariant, every row on its segment (read by the engine after the stop), and
/// returns the (stopped) server, whose directory lives as long as it does,
/// pgbench_accounts' rows per segment, and the node, reopened, for the caller's checks.
fn under_pgbench(
    steps: Option<&str>,
    changes: &[(&str, &str)],
) -> (Server, Vec<f64>, std::sync::Arc<segexpand_engine::Node>) {
    let mut srv = Server::start();
    srv.pgbench_init(steps);
    let bench = srv
        .client("pgbench")
        .args(["-n", "-c", "4", "-j", "2", "-T", "6", "-M", "prepared"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    for (sql, expect) in changes {
        assert_eq!(srv.query(sql), *expect, "{sql}");
    }
    let out = bench.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("number of failed transactions: 0 (0.000%)"),
        "{text}"
    );
    srv.assert_tpcb_invariant();
    let counts = srv.per_segment("pgbench_accounts");
    assert_eq!(counts.iter().sum::<f64>(), 100_000.0, "{counts:?}");
    srv.stop();
    let node =
        segexpand_engine::Node::open_dir(&srv.dir(), segexpand_engine::NodeOptions::default())
            .unwrap();
    for t in ["pgbench_accounts", "pgbench_tellers", "pgbench_branches"] {
        let problems = node.check_placement(t).unwrap();
        assert!(problems.is_empty(), "{t}: {problems:?}");
    }
    (srv, counts, node)
}

#[test]
fn pgbench_runs_every_protocol_mode_without_failures_and_keeps_the_tpcb_invariant() {
    let mut srv = Server::start();
    srv.pgbench_init(None);
    for mode in ["simple", "extended", "prepared"] {
        for script in [&["-S"][..], &[][..]] {
            let out = srv
                .client("pgbench")
                .args(["-n", "-c", "4", "-j", "2", "-t", "40", "-M", mode])
                .args(script)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{mode} {script:?}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                text.contains("number of failed transactions: 0 (0.000%)"),
                "{mode} {script:?}: {text}"
            );
            assert!(
                text.contains("number of transactions actually processed: 160/160"),
                "{text}"
            );
        }
    }
    srv.assert_tpcb_invariant();
    assert_eq!(srv.query("select count(*) from pgbench_history"), "480");
    srv.stop();
}

#[test]
fn pgbench_keeps_running_while_its_accounts_table_expands_online_through_sql() {
    let (_srv, counts, node) = under_pgbench(
        None,
        &[
            ("select segexpand_add_segments(2)", "{4,5}"),
            ("alter table pgbench_accounts expand table", ""),
            // A key change, online, on the table without a primary key (the others'
            // keys must contain their distribution key).
            ("alter table pgbench_history set distributed by (aid)", ""),
        ],
    );
    assert_eq!(
        node.table_def("pgbench_history").unwrap().layout.key,
        vec![2]
    );
    assert_eq!(counts.len(), 6, "{counts:?}");
    for c in &counts {
        assert!((c / 100_000.0 - 1.0 / 6.0).abs() < 0.02, "{counts:?}");
    }
    assert_eq!(
        node.table_def("pgbench_accounts").unwrap().layout.segments,
        6
    );
    node.close().unwrap();
}

/// Found a lost-update bug (1 failing run in 4: the sum of tbalance ended below the
/// others, with 0 failed transactions) while pgbench tpcb-like ran, segments were added,
/// pgbench_accounts expanded 4 -> 6 and `ALTER TABLE pgbench_tellers SET DISTRIBUTED BY
/// (bid)` ran. The cause: the SQL layer chose "update by key" from the definition it
/// read, and the engine took the key values as the key of the definition *it* read at
/// the statement's start — a flip in between made `WHERE tid = 6` look up `bid = 6`
/// (UPDATE 0). A table whose key is changing is now read by scan (`dml::key_of`; the
/// deterministic test is `sql/tests/session.rs::a_table_whose_key_is_changing_is_not_read_by_key`).
/// This race test is kept ignored until it has run often enough to trust (6 of 6 since
/// the fix): `cargo test --release --test serve_clients -- --ignored key_change`.
#[test]
#[ignore = "a race that needs many runs; see the comment"]
fn key_change_of_pgbench_tellers_under_pgbench_keeps_the_invariant() {
    // Without the primary keys (`-I dtgv`): tellers' key (tid) would not allow bid.
    let (_srv, _counts, node) = under_pgbench(
        Some("dtgv"),
        &[
            ("select segexpand_add_segments(2)", "{4,5}"),
            ("alter table pgbench_accounts expand table", ""),
            ("alter table pgbench_tellers set distributed by (bid)", ""),
        ],
    );
    assert_eq!(
        node.table_def("pgbench_tellers").unwrap().layout.key,
        vec![1]
    );
    node.close().unwrap();
}

/// psql's describing commands against the server: `\dt`, `\d t`, `\d`, `\l` and `\dn`
/// print what they print against PostgreSQL (the pg_catalog queries behind them all
/// succeed; an error in any would cut the output short). A join and a correlated
/// subquery run through the same server.
#[test]
fn psql_describes_tables_columns_and_databases_through_pg_catalog() {
    let srv = Server::start();
    let (_, err) = srv.psql(
        "create table t (id int not null, name varchar(10), price numeric(15,2), \
         code char(84), at timestamp);\n\
         create table u (a int not null, b text) distributed by (a);\n\
         insert into t values (1, 'x', 2.5, 'c', '2024-01-02 03:04:05');\n\
         insert into u values (1, 'one'), (2, 'two');\n",
    );
    assert!(!err.contains("ERROR"), "{err}");
    let (out, err) = srv.psql("\\dt\n\\d t\n\\d\n\\l\n\\dn\n");
    assert!(!err.contains("ERROR"), "{err}");
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    let has = |want: &str| assert!(lines.contains(&want), "no line {want:?} in:\n{out}");
    // \dt and \d (no argument): the user tables, type table, owned by the user.
    let title = |want: &str| {
        assert!(
            lines.iter().any(|l| l.trim() == want),
            "no title {want:?} in:\n{out}"
        )
    };
    title("List of relations");
    has(" Schema | Name | Type  | Owner");
    has(" public | t    | table | tester");
    has(" public | u    | table | tester");
    assert_eq!(
        lines.iter().filter(|l| l.contains("(2 rows)")).count(),
        2,
        "{out}"
    );
    // \d t: the columns with PostgreSQL's type names and NOT NULL. The engine keeps no
    // precision for numeric, so numeric(15,2) shows as numeric.
    title("Table \"public.t\"");
    has(" Column |            Type             | Collation | Nullable | Default");
    has(" id     | integer                     |           | not null |");
    has(" name   | character varying(10)       |           |          |");
    has(" price  | numeric                     |           |          |");
    has(" code   | character(84)               |           |          |");
    has(" at     | timestamp without time zone |           |          |");
    // \l: the database, owned by the user, in UTF8.
    title("List of databases");
    title("List of schemas");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(" segexpand | tester | UTF8")),
        "{out}"
    );
    // \dn: public only (pg_catalog and information_schema are hidden).
    has(" public | tester");
    assert_eq!(
        srv.query(
            "select t.name, u.b, (select count(*) from u u2 where u2.a <= u.a) \
             from t join u on u.a = t.id"
        ),
        "x|one|1"
    );
    // No such relation: nothing printed (psql -q keeps its "Did not find" quiet), and
    // no error from the lookup query.
    // Keys and defaults, as PostgreSQL prints them.
    let (out, err) = srv.psql(
        "create table k (id int primary key, n int default 7, tag text, unique (id, tag));\n\
         \\d k\n",
    );
    assert!(!err.contains("ERROR"), "{err}");
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    for want in [
        " id     | integer |           | not null |",
        " n      | integer |           |          | 7",
        "Indexes:",
        "    \"k_pkey\" PRIMARY KEY, btree (id)",
        "    \"k_id_tag_key\" UNIQUE CONSTRAINT, btree (id, tag)",
    ] {
        assert!(lines.contains(&want), "no line {want:?} in:\n{out}");
    }
    let (out, err) = srv.psql("\\d nosuch\n");
    assert_eq!((out.trim(), err.contains("ERROR")), ("", false), "{err}");
}

#[test]
fn psql_lists_and_describes_a_schema_and_updates_its_tables() {
    let srv = Server::start();
    let (_, err) = srv.psql(
        "create table t (a int, b text) distributed by (a);\n\
         create schema gpexpand;\n\
         create table gpexpand.status (status text, updated timestamp);\n\
         create table gpexpand.status_detail (dbname text, fq_name text primary key, \
         rank int, status text) distributed by (fq_name);\n\
         insert into t values (1, 'public');\n\
         insert into gpexpand.status_detail values ('segexpand', 'public.t', 2, 'NOT STARTED');\n\
         update gpexpand.status_detail set rank = 1 where fq_name = 'public.t';\n",
    );
    assert!(!err.contains("ERROR"), "{err}");
    let (out, err) = srv.psql("\\dn\n\\dt\n\\dt gpexpand.*\n\\d gpexpand.status_detail\n");
    assert!(!err.contains("ERROR"), "{err}");
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    let has = |want: &str| assert!(lines.contains(&want), "no line {want:?} in:\n{out}");
    // \dn: the new schema beside public.
    has(" gpexpand | tester");
    has(" public   | tester");
    // \dt: public's tables only (the schema is off the search path); \dt gpexpand.*.
    has(" public | t    | table | tester");
    has(" gpexpand | status        | table | tester");
    has(" gpexpand | status_detail | table | tester");
    // \d gpexpand.status_detail: the columns and the key, named PostgreSQL's way.
    assert!(
        lines
            .iter()
            .any(|l| l.trim() == "Table \"gpexpand.status_detail\""),
        "{out}"
    );
    has(" fq_name | text    |           | not null |");
    has(" rank    | integer |           |          |");
    has("    \"status_detail_pkey\" PRIMARY KEY, btree (fq_name)");
    assert_eq!(
        srv.query("select fq_name, rank from gpexpand.status_detail"),
        "public.t|1"
    );
    // Errors with PostgreSQL's SQLSTATEs; DROP SCHEMA … CASCADE with its notice.
    let (_, err) = srv.psql("create table nosuch.t (a int);\ndrop schema gpexpand;\n");
    assert!(
        err.contains("ERROR:  3F000: schema \"nosuch\" does not exist"),
        "{err}"
    );
    assert!(
        err.contains(
            "ERROR:  2BP01: cannot drop schema gpexpand because other objects depend on it"
        ),
        "{err}"
    );
    let (_, err) = srv.psql("drop schema gpexpand cascade;\n");
    assert!(
        err.contains("NOTICE:  00000: drop cascades to 2 other objects"),
        "{err}"
    );
    let (out, _) = srv.psql("\\dn\n");
    assert!(!out.contains("gpexpand"), "{out}");
    assert_eq!(srv.query("select b from t"), "public");
}
