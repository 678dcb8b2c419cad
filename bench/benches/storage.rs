//! Storage micro-benchmarks (issue: foundation). Run with
//! `cargo bench -p segexpand-bench --bench storage`; figures are in `docs/BENCHMARKS.md`.
//!
//! Each group puts the thing measured beside its baseline in the same run (1 vs 8
//! committing threads; WAL append vs a plain write+fsync; pread vs mmap), so ratios hold
//! even on a noisy shared machine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
#[path = "../shared/commit_round.rs"]
mod commit;
use commit::commit_round;
use segexpand_engine::storage::page::{Page, PageId, PAGE_BYTES};
use segexpand_engine::storage::tuple::{build_tuple, TupleHeader};
use segexpand_engine::wal::record::{Body, PageRef};
use segexpand_engine::{Node, NodeOptions};
use std::io::Write;
use std::time::Duration;

const ID: PageId = PageId {
    segment: 0,
    table: 1,
    block: 0,
};

fn scratch() -> tempfile::TempDir {
    // On the project's disk, not a tmpfs, so fsync means something.
    tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap()
}

fn tuple100() -> Vec<u8> {
    build_tuple(&TupleHeader::new(2, 0, false), &[b'x'; 64]) // 36 + 64 = 100 bytes
}

fn page_insert(c: &mut Criterion) {
    let t = tuple100();
    let per_page = {
        let mut p = Page::new(ID);
        let mut n = 0;
        while p.insert(&t).is_some() {
            n += 1;
        }
        n
    };
    let mut g = c.benchmark_group("page");
    g.throughput(Throughput::Elements(per_page));
    g.bench_function("insert_100B_until_full", |b| {
        b.iter(|| {
            let mut p = Page::new(ID);
            while p.insert(&t).is_some() {}
            p
        })
    });
    let mut full = Page::new(ID);
    while full.insert(&t).is_some() {}
    g.bench_function("read_all_tuples_and_headers", |b| {
        b.iter(|| {
            let mut xmin = 0;
            for s in 0..full.slot_count() {
                let h = TupleHeader::decode(full.tuple(s).unwrap()).unwrap();
                xmin += h.xmin;
            }
            xmin
        })
    });
    g.throughput(Throughput::Bytes(PAGE_BYTES as u64));
    let sealed = full.seal();
    g.bench_function("checksum_and_check_from_disk", |b| {
        b.iter(|| Page::from_disk(&sealed[..], ID).unwrap())
    });
    g.finish();
}

fn node_insert(c: &mut Criterion) {
    let dir = scratch();
    let node = Node::create_dir(dir.path(), 4, NodeOptions::default()).unwrap();
    let t = node.create_raw_table("b").unwrap();
    let payload = [b'y'; 64];
    let mut g = c.benchmark_group("node");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(20);
    g.bench_function("insert_1000_rows_one_commit", |b| {
        b.iter(|| {
            let x = node.begin_xid().unwrap();
            for i in 0..1000u16 {
                node.insert(x, 0, i % 4, t, false, &payload).unwrap();
            }
            node.commit_xid(x).unwrap();
        })
    });
    g.finish();
}

fn group_commit(c: &mut Criterion) {
    let dir = scratch();
    let node = Node::create_dir(dir.path(), 4, NodeOptions::default()).unwrap();
    let t = node.create_raw_table("c").unwrap();
    let mut g = c.benchmark_group("group_commit");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for threads in [1usize, 2, 8] {
        // Long rounds, so thread start-up and the ragged end weigh little.
        let per_thread = 256;
        g.throughput(Throughput::Elements(threads as u64 * per_thread));
        g.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| commit_round(&node, t, n, per_thread).unwrap())
                    .sum()
            })
        });
    }
    g.finish();
}

fn wal_large_batches(c: &mut Criterion) {
    const RECORDS: usize = 1024;
    let tuple = build_tuple(&TupleHeader::new(2, 0, false), &[b'z'; 8000]);
    let body = Body::HeapInsert {
        page: PageRef {
            segment: 0,
            table: 1,
            block: 0,
        },
        slot: 0,
        tuple,
    };
    let mut one = Vec::new();
    segexpand_engine::wal::record::encode(0, 2, &body, &mut one);
    let bytes = (one.len() * RECORDS) as u64;
    let mut g = c.benchmark_group("wal_large_batch");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    let dir = scratch();
    let node = Node::create_dir(dir.path(), 1, NodeOptions::default()).unwrap();
    g.bench_function("wal_append_8KiB_records_then_sync", |b| {
        b.iter(|| {
            for _ in 0..RECORDS {
                node.wal().append(2, &body).unwrap();
            }
            node.wal().flush_all().unwrap();
        })
    });
    let raw_dir = scratch();
    let path = raw_dir.path().join("plain");
    let data = vec![7u8; bytes as usize];
    let mut f = std::fs::File::create(&path).unwrap();
    g.bench_function("plain_write_then_fdatasync", |b| {
        b.iter(|| {
            f.write_all(&data).unwrap();
            f.sync_data().unwrap();
        })
    });
    g.finish();
}

fn read_path(c: &mut Criterion) {
    // pread into a buffer + checksum check, against mmap + the same check (which copies
    // the page out, as the cache must own it): the choice recorded in heap.rs.
    const PAGES: usize = 4096; // 32 MiB, warm in the OS cache
    let dir = scratch();
    let path = dir.path().join("heap");
    {
        let mut f = std::fs::File::create(&path).unwrap();
        for b in 0..PAGES {
            let mut p = Page::new(PageId {
                block: b as u32,
                ..ID
            });
            while p.insert(&tuple100()).is_some() {}
            f.write_all(&p.seal()[..]).unwrap();
        }
        f.sync_all().unwrap();
    }
    let file = std::fs::File::open(&path).unwrap();
    let mut g = c.benchmark_group("read_path");
    g.sample_size(10);
    g.throughput(Throughput::Bytes((PAGES * PAGE_BYTES) as u64));
    g.bench_function("pread_8KiB_pages", |b| {
        use std::os::unix::fs::FileExt;
        b.iter(|| {
            for blk in 0..PAGES {
                // As the engine's read path: read straight into the page's own buffer.
                let mut buf = Box::new([0u8; PAGE_BYTES]);
                file.read_exact_at(&mut buf[..], (blk * PAGE_BYTES) as u64)
                    .unwrap();
                Page::from_disk_buf(
                    buf,
                    PageId {
                        block: blk as u32,
                        ..ID
                    },
                )
                .unwrap();
            }
        })
    });
    #[expect(
        unsafe_code,
        reason = "mmap of a file this benchmark owns and never truncates"
    )]
    let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
    g.bench_function("mmap_8KiB_pages", |b| {
        b.iter(|| {
            for blk in 0..PAGES {
                let s = &map[blk * PAGE_BYTES..(blk + 1) * PAGE_BYTES];
                Page::from_disk(
                    s,
                    PageId {
                        block: blk as u32,
                        ..ID
                    },
                )
                .unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    page_insert,
    node_insert,
    group_commit,
    wal_large_batches,
    read_path
);
criterion_main!(benches);
