//! Replays the fuzz corpus (`fuzz/corpus/<target>/*`) through the same entry points the
//! cargo-fuzz targets call, so CI on stable runs every input the fuzzer kept, and every
//! crash it ever found (kept in the corpus as a regression input).
//!
//! `cargo test -p segexpand-engine --test fuzz_corpus -- --ignored write_seed_corpus`
//! regenerates the hand-made seeds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::fuzzing;
use segexpand_engine::storage::page::{Page, PageId};
use segexpand_engine::storage::tuple::{build_tuple, TupleHeader};
use segexpand_engine::storage::vm::VisibilityMap;
use segexpand_engine::wal::record::{encode, Body, PageRef};
use std::path::PathBuf;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = corpus(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        f(&std::fs::read(&p).unwrap());
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", dir.display());
    n
}

#[test]
fn replay_page_corpus() {
    replay("page", fuzzing::page);
}

#[test]
fn replay_wal_record_corpus() {
    replay("wal_record", fuzzing::wal);
}

#[test]
fn replay_vm_file_corpus() {
    replay("vm_file", fuzzing::vm);
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus"]
fn write_seed_corpus() {
    let write = |t: &str, name: &str, b: &[u8]| {
        std::fs::create_dir_all(corpus(t)).unwrap();
        std::fs::write(corpus(t).join(name), b).unwrap();
    };
    let id = PageId {
        segment: 1,
        table: 2,
        block: 0,
    };
    let mut p = Page::new(id);
    for i in 0..5u8 {
        p.insert(&build_tuple(
            &TupleHeader::new(2 + u64::from(i), 0, i % 2 == 0),
            &[i; 30],
        ))
        .unwrap();
    }
    p.prune(&[1]);
    write("page", "seed-page-5-tuples", &p.seal()[..]);
    write("page", "seed-page-empty", &Page::new(id).seal()[..]);
    let page = PageRef {
        segment: 1,
        table: 2,
        block: 0,
    };
    let mut buf = Vec::new();
    let mut lsn = 24;
    for b in [
        Body::CreateTable {
            def: segexpand_engine::TableDef {
                id: 2,
                name: "t".into(),
                columns: vec![segexpand_engine::Column {
                    name: "k".into(),
                    ty: segexpand_engine::Type::Int8,
                    not_null: true,
                    default: None,
                }],
                layout: segexpand_engine::Layout {
                    key: vec![0],
                    segments: 2,
                    placement: segexpand_engine::Placement::Jump,
                },
                layout_version: 1,
                migration_bit: false,
                redistribution: None,
                epoch: 0,
                unique: Vec::new(),
            },
        },
        Body::HeapInsert {
            page,
            slot: 0,
            tuple: build_tuple(&TupleHeader::new(2, 0, false), b"row"),
        },
        Body::HeapSetXmax {
            page,
            slot: 0,
            xmax: 3,
            cmax: 0,
            flags: 0,
            next: None,
        },
        Body::Commit,
        Body::Checkpoint {
            redo_lsn: 24,
            next_xid: 4,
            next_table: 3,
        },
    ] {
        lsn += encode(lsn, 2, &b, &mut buf) as u64;
    }
    write("wal_record", "seed-wal-run", &buf);
    let (ho, hl, img) = p.image();
    let mut one = Vec::new();
    encode(
        4096,
        0,
        &Body::PageImage {
            page,
            hole_offset: ho,
            hole_len: hl,
            image: img,
        },
        &mut one,
    );
    write("wal_record", "seed-wal-page-image", &one);
    let mut vm = VisibilityMap {
        epoch: 1,
        lsn: 77,
        ..Default::default()
    };
    vm.bits.insert_range(0..100);
    vm.bits.insert(70_000);
    write("vm_file", "seed-vm", &vm.encode(1, 2));
    write(
        "vm_file",
        "seed-vm-empty",
        &VisibilityMap::default().encode(0, 1),
    );
}
