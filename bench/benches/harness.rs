//! The research harness's own costs (issue 13's target: recording a latency under
//! 100 ns): one HDR record, one zipfian key, one YCSB operation.
//! `cargo bench -p segexpand-bench --bench harness`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, Criterion};
use segexpand_bench::latency::Recorder;
use segexpand_bench::workload::keys::{KeyChooser, KeyDist, Rng};
use segexpand_bench::workload::ycsb::{Mix, OpStream};
use std::hint::black_box;

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
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = harness
}
criterion_main!(benches);
