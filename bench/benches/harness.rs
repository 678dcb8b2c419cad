//! The research harness's own costs (issue 13's targets: recording a latency under
//! 100 ns; the client loop adding under 5% to an in-process point read): one HDR
//! record, one zipfian key, one YCSB operation, and a point read bare and as the
//! checking workload's client loop does it (two clock reads and a timeline record).
//! `cargo bench -p segexpand-bench --bench harness`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, Criterion};
use segexpand_bench::latency::Recorder;
use segexpand_bench::timeline::{Op, Outcome, Timeline};
use segexpand_bench::workload::keys::{KeyChooser, KeyDist, Rng};
use segexpand_bench::workload::ycsb::{Mix, OpStream};
use segexpand_engine::Value;
use std::hint::black_box;

#[path = "../shared/point_table.rs"]
mod point_table;
use point_table::{point_table, ROWS};
use std::time::{Duration, Instant};

fn harness(c: &mut Criterion) {
    let mut r = Recorder::new();
    let mut x = 1u64;
    c.bench_function("latency_record", |b| {
        b.iter(|| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            r.record(black_box(1_000 + (x >> 44)));
        })
    });
    let keys = KeyChooser::new(KeyDist::Zipfian(0.99), 1_000_000);
    let mut rng = Rng::new(1);
    c.bench_function("zipfian_key_1m", |b| {
        b.iter(|| black_box(keys.next(&mut rng, 1_000_000)))
    });
    let mut ops = OpStream::new(Mix::A, KeyDist::Zipfian(0.99), 1_000_000, 1);
    c.bench_function("ycsb_a_op", |b| b.iter(|| black_box(ops.next_op())));
    point_read(c);
}

/// A point read bare, and inside the client loop's timing and recording.
fn point_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let node = point_table(dir.path());
    let tl = Timeline::new(Duration::from_millis(100));
    let mut g = c.benchmark_group("point_read");
    let mut tx = node.begin().unwrap();
    let mut k = 0u64;
    g.bench_function("bare", |b| {
        b.iter(|| {
            k = (k + 7919) % ROWS;
            black_box(tx.get("t", &[Value::Int8(k as i64)]).unwrap());
        })
    });
    let mut rec = tl.client();
    g.bench_function("parts_clock_reads", |b| {
        b.iter(|| {
            let t = Instant::now();
            black_box(Instant::now().duration_since(t));
        })
    });
    let base = Instant::now();
    let mut n = 0u64;
    g.bench_function("parts_timeline_record", |b| {
        b.iter(|| {
            n += 1;
            let end = base + Duration::from_nanos(n * 1000);
            rec.record(
                Op::PointSelect,
                end - Duration::from_nanos(900 + (n & 511)),
                end,
                Outcome::Ok,
            );
        })
    });
    g.bench_function("client_loop", |b| {
        b.iter(|| {
            k = (k + 7919) % ROWS;
            let t = Instant::now();
            let r = tx.get("t", &[Value::Int8(k as i64)]);
            let end = Instant::now();
            black_box(r.unwrap());
            rec.record(Op::PointSelect, t, end, Outcome::Ok);
        })
    });
    // As the checking workload's point SELECTs run: back to back, one clock read per
    // operation (each one's latency runs from the previous one's end).
    rec.restart(Instant::now());
    g.bench_function("client_loop_one_clock", |b| {
        b.iter(|| {
            k = (k + 7919) % ROWS;
            let r = tx.get("t", &[Value::Int8(k as i64)]);
            let end = Instant::now();
            black_box(r.unwrap());
            rec.record_next(Op::PointSelect, end, Outcome::Ok);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = harness
}
criterion_main!(benches);
