//! Issue 9, item 6: every reader treats a tuple that does not decode the same way — as
//! corruption naming file, segment, table, block and slot — instead of some readers
//! skipping it. Skipping it let the mover give its block a VM bit and retirement delete a
//! segment with the unreadable tuple still inside.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::redistribute::{BatchLimits, GateOptions};
use segexpand_engine::storage::heap::{heap_file_name, segment_dir_name};
use segexpand_engine::storage::page::{Page, PAGE_BYTES};
use segexpand_engine::storage::tuple::{Tid, FLAGS_OFF};
use segexpand_engine::vfs::{SimVfs, Vfs};
use segexpand_engine::{Error, Layout, Node, NodeOptions, TableSpec, Type, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DIR: &str = "/db";

fn open(vfs: &SimVfs) -> Arc<Node> {
    Node::open(
        Arc::new(vfs.clone()),
        Path::new(DIR),
        NodeOptions::default(),
    )
    .unwrap()
}

fn heap_path(segment: u16, table: u32) -> PathBuf {
    Path::new(DIR)
        .join(segment_dir_name(segment))
        .join(heap_file_name(table))
}

/// Sets an unknown flag bit in the header of the tuple in `slot` of `block` and seals
/// the page again, so its checksum is valid: the page reads, only that tuple is bad.
fn damage_tuple_header(vfs: &SimVfs, segment: u16, table: u32, block: u32, slot: u16) {
    let path = heap_path(segment, table);
    let bytes = vfs.read_file(&path).unwrap();
    let off = block as usize * PAGE_BYTES;
    let id = Node::page_id(segment, table, block);
    let mut page = Page::from_disk(&bytes[off..off + PAGE_BYTES], id).unwrap();
    let t = page.tuple_mut(slot).unwrap();
    t[FLAGS_OFF + 1] |= 0x80; // flag bit 15: not defined in format version 1
    vfs.poke(&path, off as u64, &page.seal()[..]).unwrap();
}

/// Asserts `r` failed with corruption of the tuple in slot 0 of block 0 of `table` on
/// `segment`.
fn assert_reports<T: std::fmt::Debug>(what: &str, r: Result<T, Error>, segment: u16, table: u32) {
    match r {
        Err(e @ Error::Corruption { .. }) => {
            let Error::Corruption { location, .. } = &e else {
                unreachable!()
            };
            assert_eq!(
                (location.segment, location.table, location.block),
                (Some(segment), Some(table), Some(0)),
                "{what}: {e}"
            );
            assert!(
                location
                    .file
                    .ends_with(heap_path(segment, table).strip_prefix(DIR).unwrap()),
                "{what}: {e}"
            );
            assert!(e.to_string().contains("slot 0"), "{what}: {e}");
        }
        other => panic!("{what}: expected corruption in slot 0, got {other:?}"),
    }
}

fn spec(name: &str) -> TableSpec {
    TableSpec::new(name)
        .not_null("id", Type::Int8)
        .column("v", Type::Text)
        .distributed_by(&["id"])
}

fn rows(n: i64) -> impl Iterator<Item = Vec<Value>> {
    (0..n).map(|i| vec![Value::Int8(i), Value::Text(format!("row {i}"))])
}

/// Moves every block of `table` that still holds rows to move.
fn drain(node: &Arc<Node>, table: &str) {
    for _ in 0..100 {
        let work = node.redistribution_work(table).unwrap();
        if work.is_empty() {
            return;
        }
        for (seg, block) in work {
            node.move_blocks(table, seg, &[block], &BatchLimits::default())
                .unwrap();
        }
    }
    panic!("the mover did not finish {table}");
}

/// The key of the row in slot 0 of block 0 of `table` on `segment`.
fn key_at(node: &Arc<Node>, segment: u16, table: &str) -> Value {
    let def = node.table_def(table).unwrap();
    let (_, payload) = node
        .read_tuple(segment, def.id, Tid { block: 0, slot: 0 })
        .unwrap()
        .unwrap();
    let row = segexpand_engine::catalog::types::decode_row(def.column_types(), &payload).unwrap();
    row[0].clone()
}

/// A node of 3 segments: table "a" was shrunk from 3 segments to 2 (its old versions on
/// segment 2 are dead, waiting for vacuum), table "b" lives on segments 0 and 1. Then,
/// on disk, one tuple header is damaged in block 0 of "b" on segment 0 (a live row) and
/// one in block 0 of "a" on segment 2 (a dead version). Returns the reopened node and
/// the key of the damaged row of "b".
fn damaged_node(vfs: &SimVfs) -> (Arc<Node>, Value) {
    let node = Node::create(
        Arc::new(vfs.clone()),
        Path::new(DIR),
        3,
        NodeOptions::default(),
    )
    .unwrap();
    node.create_table(&spec("a")).unwrap();
    node.create_table(&spec("b").segments(2)).unwrap();
    node.bulk_load("a", rows(300)).unwrap();
    node.bulk_load("b", rows(300)).unwrap();
    let gate = GateOptions::default();
    let to_two = Layout {
        segments: 2,
        ..node.table_def("a").unwrap().layout
    };
    node.start_redistribution("a", to_two, &gate).unwrap();
    drain(&node, "a");
    node.flip_redistribution("a", &gate).unwrap();
    let key = key_at(&node, 0, "b");
    let (a, b) = (node.table_id("a").unwrap(), node.table_id("b").unwrap());
    node.close().unwrap();
    drop(node);
    damage_tuple_header(vfs, 0, b, 0, 0);
    damage_tuple_header(vfs, 2, a, 0, 0);
    (open(vfs), key)
}

/// Regression (issue 9, item 6). Before the fix: scan and get reported the bad tuple, but
/// the mover skipped it and gave its block the VM bit, vacuum skipped it, retirement
/// deleted segment 2 with it inside, and verify said the directory was clean.
#[test]
fn undecodable_tuple_is_reported_by_every_reader() {
    let vfs = SimVfs::new();
    let (node, key) = damaged_node(&vfs);
    let (a, b) = (node.table_id("a").unwrap(), node.table_id("b").unwrap());

    // Table reads.
    assert_reports("scan", node.begin().unwrap().scan("b", None), 0, b);
    assert_reports("get", node.begin().unwrap().get("b", &[key]), 0, b);
    assert_reports("scan_committed", node.scan_committed(2, a), 2, a);
    assert_reports("check_placement", node.check_placement("b"), 0, b);

    // The mover: shrinking "b" to one segment keeps segment 0's rows in place (their
    // bits are flipped). The batch stops at the bad tuple; no block of it gets its VM
    // bit, and the redistribution goes on elsewhere and can be resumed.
    let gate = GateOptions::default();
    let to_one = Layout {
        segments: 1,
        ..node.table_def("b").unwrap().layout
    };
    node.start_redistribution("b", to_one, &gate).unwrap();
    let seg0 = |node: &Arc<Node>| -> Vec<u32> {
        let work = node.redistribution_work("b").unwrap();
        work.iter()
            .filter(|(s, _)| *s == 0)
            .map(|(_, b)| *b)
            .collect()
    };
    let blocks = seg0(&node);
    assert_eq!(blocks.first(), Some(&0));
    assert_reports(
        "move_blocks",
        node.move_blocks("b", 0, &blocks, &BatchLimits::default()),
        0,
        b,
    );
    assert_eq!(
        seg0(&node),
        blocks,
        "no block of the failed batch is finished"
    );
    let seg1: Vec<u32> = node
        .redistribution_work("b")
        .unwrap()
        .iter()
        .filter(|(s, _)| *s == 1)
        .map(|(_, b)| *b)
        .collect();
    let moved = node
        .move_blocks("b", 1, &seg1, &BatchLimits::default())
        .unwrap();
    assert!(moved.counts.rows_moved > 0);
    assert!(node.flip_redistribution("b", &gate).is_err());

    // Vacuum, and retirement (which vacuums the segment first): segment 2 stays.
    assert_reports("vacuum", node.vacuum("b"), 0, b);
    assert_reports("retire_segment", node.retire_segment(), 2, a);
    assert_eq!(node.segments(), vec![0, 1, 2]);
    assert!(vfs.exists(&heap_path(2, a)).unwrap());

    // The VM bit of the block stays clear across a restart.
    node.close().unwrap();
    drop(node);
    let node = open(&vfs);
    assert!(node.redistribution_work("b").unwrap().contains(&(0, 0)));
    node.close().unwrap();
    drop(node);

    // verify names both tuples.
    let report = segexpand_engine::verify::verify_dir(&vfs, Path::new(DIR)).unwrap();
    for (segment, table) in [(0, b), (2, a)] {
        assert!(
            report.problems.iter().any(|p| p.segment == Some(segment)
                && p.table == Some(table)
                && p.block == Some(0)
                && p.what.contains("slot 0")),
            "verify misses segment {segment} table {table}: {:?}",
            report.problems
        );
    }
}

/// The key index is rebuilt at open; a tuple it cannot index (the key of a tuple whose
/// header does not decode is not trusted) must not make lookups miss rows silently: the
/// part's index is reported damaged, and every lookup on that segment reads the segment,
/// meeting the bad tuple. Other segments answer as before.
#[test]
fn an_index_built_around_a_bad_tuple_is_not_trusted() {
    let vfs = SimVfs::new();
    let (node, _) = damaged_node(&vfs);
    let b = node.table_id("b").unwrap();
    let damaged = &node.recovery_report().damaged_indexes;
    assert_eq!(damaged.len(), 2, "{damaged:?}");
    assert!(damaged.iter().any(|d| d.contains("slot 0")), "{damaged:?}");
    let def = node.table_def("b").unwrap();
    let segment_of = |i: i64| {
        let mut h = segexpand_engine::catalog::hash::KeyHasher::new();
        Value::Int8(i).hash_into(Type::Int8, &mut h);
        def.layout.segment_of(h.finish())
    };
    let on = |seg: u16| (0..300).find(|i| segment_of(*i) == seg).unwrap();
    let lookup = |i: i64| node.begin().unwrap().get("b", &[Value::Int8(i)]);
    assert_reports("get on segment 0", lookup(on(0)), 0, b);
    assert_eq!(lookup(on(1)).unwrap().len(), 1);
}
