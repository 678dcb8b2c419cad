//! Table API benchmarks (issue: transactions and the table API). Run with
//! `cargo bench -p segexpand-bench --bench tables`; figures are in `docs/BENCHMARKS.md`.
//!
//! The table is 1,000,000 rows of about 100 bytes (`id int8, a int8, pad text` with a
//! 70-character pad: 89 payload bytes + a 36-byte tuple header) over 4 segments, warm in
//! the page cache. Bulk load is measured beside row-at-a-time inserts in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use segexpand_engine::{Node, NodeOptions, Row, TableSpec, Type, Value};
use std::sync::Arc;
use std::time::Duration;

const ROWS: i64 = 1_000_000;

fn row(i: i64) -> Row {
    let pad: String = (0..70)
        .map(|j| (b'a' + ((i + j) % 26) as u8) as char)
        .collect();
    vec![Value::Int8(i), Value::Int8(i * 3), Value::Text(pad)]
}

fn new_node(dir: &std::path::Path, name: &str) -> Arc<Node> {
    let node = Node::create_dir(&dir.join(name), 4, NodeOptions::default()).unwrap();
    node.create_table(
        &TableSpec::new("t")
            .not_null("id", Type::Int8)
            .column("a", Type::Int8)
            .column("pad", Type::Text)
            .distributed_by(&["id"]),
    )
    .unwrap();
    node
}

fn scratch() -> tempfile::TempDir {
    // On the project's disk, not a tmpfs, so fsync means something.
    tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap()
}

fn load(c: &mut Criterion) {
    const N: i64 = 100_000;
    let dir = scratch();
    let mut g = c.benchmark_group("load_100k_rows");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    let mut round = 0;
    // A fresh node per iteration, made in the untimed setup.
    let mut fresh = |kind: &str| {
        round += 1;
        new_node(dir.path(), &format!("{kind}{round}"))
    };
    g.bench_function("bulk_load", |b| {
        b.iter_batched(
            || fresh("bulk"),
            |node| {
                node.bulk_load("t", (0..N).map(row)).unwrap();
                node
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("insert_row_at_a_time_1000_per_txn", |b| {
        b.iter_batched(
            || fresh("ins"),
            |node| {
                for chunk in 0..N / 1000 {
                    let mut tx = node.begin().unwrap();
                    for i in chunk * 1000..(chunk + 1) * 1000 {
                        tx.insert("t", row(i)).unwrap();
                    }
                    tx.commit().unwrap();
                }
                node
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let dir = scratch();
    let node = new_node(dir.path(), "read");
    node.bulk_load("t", (0..ROWS).map(row)).unwrap();
    let mut g = c.benchmark_group("warm_1m_rows");
    g.throughput(Throughput::Elements(1));
    let mut tx = node.begin().unwrap();
    let mut k: i64 = 0;
    g.bench_function("point_get", |b| {
        b.iter(|| {
            k = (k + 7_919) % ROWS;
            let rows = tx.get("t", &[Value::Int8(k)]).unwrap();
            assert_eq!(rows.len(), 1);
            rows
        })
    });
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    g.bench_function("scan_sum", |b| {
        b.iter(|| {
            let mut sum = 0i64;
            let n = tx
                .scan_with("t", |r| sum += r[1].as_int().unwrap_or(0))
                .unwrap();
            assert_eq!(n, ROWS as u64);
            sum
        })
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function("insert_1000_rows_one_txn", |b| {
        let mut next = ROWS;
        b.iter(|| {
            let mut t = node.begin().unwrap();
            for _ in 0..1000 {
                t.insert("t", row(next)).unwrap();
                next += 1;
            }
            t.commit().unwrap();
        })
    });
    g.finish();
    drop(tx);
}

criterion_group!(benches, load, read);
criterion_main!(benches);
