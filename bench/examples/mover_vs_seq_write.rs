//! The mover against the disk: redistributes a 1M-row table (~100-byte rows) 4 → 6
//! segments online with 2 workers and no other load, then writes the same number of
//! bytes the mover wrote to the WAL sequentially, in 1 MiB chunks, plus one fsync, in
//! the same directory — and prints both rates and their ratio (DESIGN target: the mover
//! at least half the plain write). Also prints the in-place flips' WAL bytes against
//! the bytes of the rows that stayed (target: at most 1 %).
//! `cargo run --release -p segexpand-bench --example mover_vs_seq_write [rows]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::redistribute::{BatchLimits, GateOptions, MoveCounts};
use segexpand_engine::{Layout, Node, NodeOptions, TableSpec, Type, Value};
use std::io::Write;
use std::time::Instant;

fn main() {
    let rows: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let node = Node::create_dir(dir.path(), 6, NodeOptions::default()).unwrap();
    node.create_table(
        &TableSpec::new("t")
            .not_null("id", Type::Int8)
            .column("a", Type::Int8)
            .column("pad", Type::Text)
            .segments(4),
    )
    .unwrap();
    let pad = "x".repeat(70);
    node.bulk_load(
        "t",
        (0..rows).map(|i| vec![Value::Int8(i), Value::Int8(i), Value::Text(pad.clone())]),
    )
    .unwrap();
    node.checkpoint().unwrap();
    let target = Layout {
        segments: 6,
        ..node.table_def("t").unwrap().layout
    };
    node.start_redistribution("t", target, &GateOptions::default())
        .unwrap();
    let wal0 = node.wal().insert_lsn();
    let t = Instant::now();
    let work = node.redistribution_work("t").unwrap();
    let chunks: Vec<(u16, Vec<u32>)> = {
        let mut v: Vec<(u16, Vec<u32>)> = Vec::new();
        for (s, b) in work {
            match v.last_mut() {
                Some((ls, bs)) if *ls == s && bs.len() < 32 => bs.push(b),
                _ => v.push((s, vec![b])),
            }
        }
        v
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let totals = std::sync::Mutex::new(MoveCounts::default());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                let Some((seg, blocks)) = chunks.get(i) else {
                    return;
                };
                let mut left = blocks.clone();
                while !left.is_empty() {
                    let b = node
                        .move_blocks("t", *seg, &left, &BatchLimits::default())
                        .unwrap();
                    totals.lock().unwrap().add(&b.counts);
                    left = left.split_off(b.blocks_visited.max(1).min(left.len()));
                }
            });
        }
    });
    node.wal().flush_all().unwrap();
    let mover_s = t.elapsed().as_secs_f64();
    let wal_bytes = node.wal().insert_lsn() - wal0;
    assert!(node.redistribution_work("t").unwrap().is_empty());
    node.flip_redistribution("t", &GateOptions::default())
        .unwrap();
    let c = totals.into_inner().unwrap();
    let (moved, flipped, bytes_moved, bytes_flipped, flip_wal) = (
        c.rows_moved,
        c.rows_flipped,
        c.bytes_moved,
        c.bytes_flipped,
        c.flip_wal_bytes,
    );
    println!(
        "mover: {moved} rows moved ({:.1} MB of new versions), {flipped} flipped in place, \
         {:.1} MB of WAL in {mover_s:.2} s = {:.1} MB/s of WAL ({:.1} MB/s of new versions)",
        bytes_moved as f64 / 1e6,
        wal_bytes as f64 / 1e6,
        wal_bytes as f64 / 1e6 / mover_s,
        bytes_moved as f64 / 1e6 / mover_s
    );
    println!(
        "stayers: {:.1} MB of rows cost {:.3} MB of flip records = {:.2} % (page images \
         are counted with the moves that touch the same pages)",
        bytes_flipped as f64 / 1e6,
        flip_wal as f64 / 1e6,
        100.0 * flip_wal as f64 / bytes_flipped.max(1) as f64
    );
    node.close().unwrap();
    // The same bytes written plainly.
    let path = dir.path().join("seq.bin");
    let chunk = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    let mut f = std::fs::File::create(&path).unwrap();
    let mut left = wal_bytes as usize;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    f.sync_all().unwrap();
    let seq_s = t.elapsed().as_secs_f64();
    println!(
        "sequential write + fsync of the same {:.1} MB: {seq_s:.2} s = {:.1} MB/s; \
         mover / plain = {:.2}",
        wal_bytes as f64 / 1e6,
        wal_bytes as f64 / 1e6 / seq_s,
        seq_s / mover_s
    );
}
