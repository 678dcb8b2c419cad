//! A heap page torn by a crash mid-write is either repaired from the WAL (its full-page
//! image) or reported as a checksum error naming table, segment and block — never
//! returned as data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use segexpand_engine::storage::heap::{heap_file_name, segment_dir_name};
use segexpand_engine::storage::page::PAGE_BYTES;
use segexpand_engine::vfs::CrashMode;
use segexpand_engine::{CorruptionKind, Error, Node};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn heap_path(segment: u16, table: u32) -> PathBuf {
    Path::new(DIR)
        .join(segment_dir_name(segment))
        .join(heap_file_name(table))
}

fn load(node: &Arc<Node>, t: u32, ids: std::ops::Range<u64>) {
    let x = node.begin_xid().unwrap();
    for id in ids {
        node.insert(x, 0, 0, t, false, &payload(id)).unwrap();
    }
    node.commit_xid(x).unwrap();
}

#[test]
fn torn_page_is_repaired_from_its_full_page_image() {
    let (vfs, node, t) = node_with_table(SEGMENTS, small_opts());
    load(&node, t, 0..10);
    node.checkpoint().unwrap();
    // Change block 0 after the checkpoint (logged as a full-page image), then write it
    // out as a checkpoint would, and crash with the write torn: only its first sector
    // reached the disk.
    load(&node, t, 10..15);
    let heap = node.heap(0, t).unwrap();
    heap.write_dirty(node.wal(), &segexpand_engine::poison::Poison::default())
        .unwrap();
    let img = vfs.crash_image(CrashMode::KeepUnsyncedTearLast { sectors: 1 });
    // The page on disk really is torn.
    let disk = img.read_file(&heap_path(0, t)).unwrap();
    assert!(
        segexpand_engine::storage::page::Page::from_disk(
            &disk[..PAGE_BYTES],
            Node::page_id(0, t, 0)
        )
        .is_err(),
        "the test must tear the page"
    );
    let node = Node::open(Arc::new(img), Path::new(DIR), small_opts()).unwrap();
    assert!(node.recovery_report().page_images > 0);
    let ids: Vec<u64> = live_rows(&node).keys().copied().collect();
    assert_eq!(ids, (0..15).collect::<Vec<_>>());
}

#[test]
fn torn_page_without_wal_cover_is_a_checksum_error_never_data() {
    let (vfs, node, t) = node_with_table(SEGMENTS, small_opts());
    load(&node, t, 0..40);
    node.close().unwrap();
    drop(node);
    // Tear block 0 on disk: its second half replaced by stale bytes. The WAL holds no
    // image of it after the last checkpoint, so recovery cannot repair it.
    vfs.poke(&heap_path(0, t), 4096, &[0xAB; 4096]).unwrap();
    let node = Node::open(Arc::new(vfs.clone()), Path::new(DIR), small_opts()).unwrap();
    assert_eq!(node.recovery_report().unreadable_blocks.len(), 1);
    let err = node.scan_committed(0, t).unwrap_err();
    match &err {
        Error::Corruption {
            location,
            kind: CorruptionKind::Checksum { .. },
        } => {
            assert_eq!(
                (location.segment, location.table, location.block),
                (Some(0), Some(t), Some(0))
            );
        }
        e => panic!("expected a checksum error, got {e}"),
    }
    assert!(node
        .read_tuple(
            0,
            t,
            segexpand_engine::storage::tuple::Tid { block: 0, slot: 0 }
        )
        .is_err());
    let msg = err.to_string();
    assert!(
        msg.contains("segment 0") && msg.contains("table 1") && msg.contains("block 0"),
        "{msg}"
    );
}
