//! The query executor: joins (inner, LEFT, USING, CROSS, comma; hash and nested loop),
//! subqueries (scalar, correlated, EXISTS, IN, ARRAY), UNION, the parallel scan against
//! the serial one, and the pg_catalog queries psql 15 sends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "support/psql_queries.rs"]
mod psql_queries;

use segexpand_engine::{Node, NodeOptions};
use segexpand_sql::{Output, Session};
use std::sync::Arc;

fn session(segments: u16) -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), segments, NodeOptions::default()).unwrap();
    (dir, Session::new(Arc::clone(&node), "tester", "segexpand"))
}

fn ok(s: &mut Session, sql: &str) -> Output {
    let mut out = s.execute(sql);
    for r in &out {
        if let Err(e) = r {
            panic!("{sql}: {e}");
        }
    }
    out.pop().unwrap().unwrap()
}

/// Rows as text, NULL as `NULL`.
fn rows(s: &mut Session, sql: &str) -> Vec<Vec<String>> {
    match ok(s, sql) {
        Output::Rows { rows, .. } => rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| c.unwrap_or_else(|| "NULL".into()))
                    .collect()
            })
            .collect(),
        other => panic!("{sql}: {other:?}"),
    }
}

fn flat(s: &mut Session, sql: &str) -> Vec<String> {
    rows(s, sql).into_iter().map(|r| r.join("|")).collect()
}

fn err(s: &mut Session, sql: &str) -> String {
    match s.execute(sql).pop().unwrap() {
        Err(e) => e.sqlstate.to_string(),
        Ok(o) => panic!("{sql}: expected an error, got {o:?}"),
    }
}

fn shop(s: &mut Session) {
    ok(
        s,
        "create table customers (id int not null, name varchar(10), city text); \
         create table orders (oid int not null, cust int, amount numeric) distributed by (oid)",
    );
    ok(
        s,
        "insert into customers values (1, 'ann', 'oslo'), (2, 'bob', 'rome'), (3, 'cy', NULL); \
         insert into orders values (10, 1, 5), (11, 1, 7), (12, 2, 1), (13, 9, 2)",
    );
}

#[test]
fn inner_joins_in_every_spelling_agree() {
    let (_d, mut s) = session(3);
    shop(&mut s);
    let want = vec!["ann|10", "ann|11", "bob|12"];
    for sql in [
        "select c.name, o.oid from customers c join orders o on o.cust = c.id order by 2",
        "select c.name, o.oid from customers c inner join orders o on c.id = o.cust order by 2",
        "select name, oid from customers, orders where id = cust order by oid",
        "select c.name, o.oid from customers c cross join orders o where c.id = o.cust order by 2",
        "select public.customers.name, o.oid from public.customers join orders as o \
         on o.cust = customers.id order by 2",
    ] {
        assert_eq!(flat(&mut s, sql), want, "{sql}");
    }
    // A non-equality join runs as a nested loop.
    assert_eq!(
        flat(
            &mut s,
            "select c.id, o.oid from customers c join orders o on o.amount > c.id * 3 order by 1, 2"
        ),
        vec!["1|10", "1|11", "2|11"]
    );
    assert_eq!(
        flat(&mut s, "select count(*) from customers, orders"),
        vec!["12"]
    );
}

#[test]
fn left_join_pads_rows_without_a_match_with_nulls() {
    let (_d, mut s) = session(2);
    shop(&mut s);
    assert_eq!(
        flat(
            &mut s,
            "select c.name, o.oid from customers c left join orders o on o.cust = c.id \
             order by c.id, o.oid"
        ),
        vec!["ann|10", "ann|11", "bob|12", "cy|NULL"]
    );
    // WHERE on the right side runs after the join: only the unmatched row is left.
    assert_eq!(
        flat(
            &mut s,
            "select c.name from customers c left outer join orders o on o.cust = c.id \
             where o.oid is null"
        ),
        vec!["cy"]
    );
    // An ON condition on the right side restricts the matches, not the left rows.
    assert_eq!(
        flat(
            &mut s,
            "select c.name, o.oid from customers c left join orders o \
             on o.cust = c.id and o.amount > 6 order by c.id"
        ),
        vec!["ann|11", "bob|NULL", "cy|NULL"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select c.name, count(o.oid) from customers c left join orders o on o.cust = c.id \
             group by c.name order by 1"
        ),
        vec!["ann|2", "bob|1", "cy|0"]
    );
}

#[test]
fn using_merges_the_named_columns() {
    let (_d, mut s) = session(2);
    ok(
        &mut s,
        "create table a (k int, x text); create table b (k int, y text); \
         insert into a values (1, 'a1'), (2, 'a2'); insert into b values (2, 'b2'), (3, 'b3')",
    );
    let r = ok(&mut s, "select * from a join b using (k)");
    let Output::Rows { columns, rows } = r else {
        panic!()
    };
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["k", "x", "y"]);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        flat(
            &mut s,
            "select k, y from a left join b using (k) order by k"
        ),
        vec!["1|NULL", "2|b2"]
    );
    assert_eq!(err(&mut s, "select * from a join b using (nope)"), "42703");
    assert_eq!(err(&mut s, "select k from a, b"), "42702");
    assert_eq!(err(&mut s, "select a.k from a x"), "42P01");
}

#[test]
fn hash_join_of_ten_thousand_rows_equals_the_nested_loop() {
    let (_d, mut s) = session(4);
    ok(&mut s, "create table big (id int not null, g int, v int)");
    ok(&mut s, "create table small (g int not null, label text)");
    let mut sql = String::from("insert into big values ");
    for i in 0..10_000 {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("({i}, {}, {})", i % 250, i * 7 % 13));
    }
    ok(&mut s, &sql);
    let mut sql = String::from("insert into small values ");
    for g in 0..200 {
        if g > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("({g}, 'g{g}')"));
    }
    ok(&mut s, &sql);
    let explain = flat(
        &mut s,
        "explain select * from big b join small s on b.g = s.g",
    )
    .join("\n");
    assert!(explain.contains("Hash Join"), "{explain}");
    let hash = rows(
        &mut s,
        "select b.id, s.label, b.v from big b join small s on b.g = s.g order by 1",
    );
    let nested = rows(
        &mut s,
        "select b.id, s.label, b.v from big b join small s on b.g <= s.g and b.g >= s.g \
         order by 1",
    );
    assert_eq!(hash.len(), 8_000);
    assert_eq!(hash, nested);
    let left = rows(
        &mut s,
        "select count(*), count(s.g) from big b left join small s on s.g = b.g",
    );
    assert_eq!(left, vec![vec!["10000".to_string(), "8000".to_string()]]);
}

#[test]
fn subqueries_scalar_correlated_exists_in_and_array() {
    let (_d, mut s) = session(3);
    shop(&mut s);
    assert_eq!(
        flat(&mut s, "select (select max(amount) from orders)"),
        vec!["7"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select name, (select sum(o.amount) from orders o where o.cust = c.id) \
             from customers c order by id"
        ),
        vec!["ann|12", "bob|1", "cy|NULL"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select name from customers c where (select count(*) from orders o \
             where o.cust = c.id) > 1"
        ),
        vec!["ann"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select name from customers c where exists (select 1 from orders o \
             where o.cust = c.id) order by 1"
        ),
        vec!["ann", "bob"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select name from customers c where not exists (select 1 from orders o \
             where o.cust = c.id)"
        ),
        vec!["cy"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select oid from orders where cust in (select id from customers) order by 1"
        ),
        vec!["10", "11", "12"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select oid from orders where cust not in (select id from customers)"
        ),
        vec!["13"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select array_to_string(array(select name from customers order by 1), ',')"
        ),
        vec!["ann,bob,cy"]
    );
    assert_eq!(flat(&mut s, "select 1 + 2, 'x' || 'y'"), vec!["3|xy"]);
    assert_eq!(err(&mut s, "select (select id from customers)"), "21000");
    assert_eq!(
        flat(
            &mut s,
            "select name from customers union select 'zed' union select name from customers \
             order by 1 desc limit 2"
        ),
        vec!["zed", "cy"]
    );
    assert_eq!(flat(&mut s, "select 1 union all select 1"), vec!["1", "1"]);
    assert_eq!(
        flat(
            &mut s,
            "select t.n from (select id * 10 as n from customers) t where t.n > 10 order by 1"
        ),
        vec!["20", "30"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select count(*) from generate_series(1, 100) g where g % 7 = 0"
        ),
        vec!["14"]
    );
}

#[test]
fn unsupported_queries_are_refused_with_0a000() {
    let (_d, mut s) = session(2);
    shop(&mut s);
    for sql in [
        "with x as (select 1) select * from x",
        "select 1 intersect select 1",
        "select count(*) over () from customers",
        "select * from customers c right join orders o on o.cust = c.id",
        "select * from customers c full join orders o on o.cust = c.id",
        "select * from customers, lateral (select 1) x",
        "values (1)",
    ] {
        assert_eq!(err(&mut s, sql), "0A000", "{sql}");
    }
}

#[test]
fn parallel_scan_returns_what_the_serial_scan_returns() {
    let (_d, mut s) = session(6);
    ok(&mut s, "create table p (id int not null, v int)");
    let mut sql = String::from("insert into p values ");
    for i in 0..5_000 {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("({i}, {})", i % 17));
    }
    ok(&mut s, &sql);
    let queries = [
        "select id, v, gp_segment_id from p",
        "select v, count(*), sum(id) from p where id % 3 = 1 group by v order by v",
        "select gp_segment_id, count(*) from p group by 1 order by 1",
    ];
    ok(&mut s, "set max_parallel_workers_per_gather = 3");
    let explain = flat(&mut s, "explain select * from p").join("\n");
    assert!(explain.contains("(4 workers)"), "{explain}");
    let parallel: Vec<_> = queries.iter().map(|q| rows(&mut s, q)).collect();
    ok(&mut s, "set max_parallel_workers_per_gather = 0");
    let explain = flat(&mut s, "explain select * from p").join("\n");
    assert!(!explain.contains("workers"), "{explain}");
    let serial: Vec<_> = queries.iter().map(|q| rows(&mut s, q)).collect();
    assert_eq!(parallel[0].len(), 5_000);
    assert_eq!(parallel, serial);
    // Direct dispatch is kept for a pinned key.
    let explain = flat(&mut s, "explain select v from p where id = 42").join("\n");
    assert!(explain.contains("Direct dispatch"), "{explain}");
}

fn table_oid(s: &mut Session, name: &str) -> String {
    let r = rows(
        s,
        &format!(
            "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) \
             '^({name})$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid)"
        ),
    );
    assert_eq!(r.len(), 1, "{name}: {r:?}");
    r[0][0].clone()
}

#[test]
fn every_catalog_query_psql_sends_for_dt_d_and_l_succeeds() {
    let (_d, mut s) = session(2);
    ok(
        &mut s,
        "create table t (id int not null, name varchar(10), price numeric, code char(84), \
         at timestamp, ok boolean)",
    );
    let oid = table_oid(&mut s, "t");
    assert!(oid.parse::<i64>().unwrap() >= 16_384, "{oid}");
    for q in psql_queries::PSQL_QUERIES {
        let q = q.replace("{oid}", &oid);
        let _ = rows(&mut s, &q);
    }
    // \dt
    assert_eq!(
        flat(&mut s, psql_queries::PSQL_QUERIES[0]),
        vec!["public|t|table|tester"]
    );
    // \d t: the attributes.
    let atts = flat(
        &mut s,
        &psql_queries::PSQL_QUERIES[3].replace("{oid}", &oid),
    );
    assert_eq!(
        atts,
        vec![
            "id|integer|NULL|t|NULL||",
            "name|character varying(10)|NULL|f|NULL||",
            "price|numeric|NULL|f|NULL||",
            "code|character(84)|NULL|f|NULL||",
            "at|timestamp without time zone|NULL|f|NULL||",
            "ok|boolean|NULL|f|NULL||",
        ]
    );
    // \d t: relkind and access method.
    let info = rows(
        &mut s,
        &psql_queries::PSQL_QUERIES[2].replace("{oid}", &oid),
    );
    assert_eq!(info.len(), 1);
    assert_eq!(info[0][1], "r");
    assert_eq!(info[0][14], "heap");
    // \l
    let l = rows(&mut s, psql_queries::PSQL_QUERIES[10]);
    assert_eq!(l[0][..3], ["segexpand", "tester", "UTF8"]);
    // Casts and functions.
    assert_eq!(
        flat(
            &mut s,
            &format!(
                "select {oid}::regclass, 'pg_class'::regclass::oid, 23::regtype::text, \
                 pg_catalog.format_type(1700, 983046), pg_size_pretty(123456789), \
                 current_schemas(true)"
            )
        ),
        vec!["t|1259|integer|numeric(15,2)|118 MB|{pg_catalog,public}"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select nspname from pg_namespace where nspname !~ '^pg_' and nspname <> \
             'information_schema' order by 1"
        ),
        vec!["public"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select relname from pg_class where relname ~* '^T$'"
        ),
        vec!["t"]
    );
}

/// Scans read only the columns a query uses; a join key at another position on the
/// right side than on the left must still be read (a regression: tellers' bid was not).
#[test]
fn narrowed_scans_keep_every_column_the_join_reads() {
    let (_d, mut s) = session(4);
    ok(
        &mut s,
        "create table br (bid int not null, bbalance int, filler char(88)); \
         create table te (tid int not null, bid int, tbalance int, filler char(84)); \
         insert into br values (1, 0, 'x'), (2, 0, 'y'); \
         insert into te values (1, 1, 5, 'a'), (2, 1, 6, 'b'), (3, 2, 7, 'c'), (4, 3, 8, 'd')",
    );
    assert_eq!(
        flat(
            &mut s,
            "select b.bid, t.tid from br b join te t on t.bid = b.bid order by 2"
        ),
        vec!["1|1", "1|2", "2|3"]
    );
    assert_eq!(
        flat(
            &mut s,
            "select bid, sum(tbalance) from br join te using (bid) group by bid order by 1"
        ),
        vec!["1|11", "2|7"]
    );
    assert_eq!(
        flat(&mut s, "select t.tid, t.filler is null from te t left join br b on b.bid = t.bid where b.bid is null"),
        vec!["4|f"]
    );
}
