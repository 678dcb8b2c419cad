//! A broken WAL tail — torn mid-record, garbage after the last record, a flipped bit in
//! the last record, a new file with a torn header — is cut at the last valid record and
//! recovery goes on with everything before it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use segexpand_engine::node::WAL_DIR;
use segexpand_engine::vfs::{CrashMode, SimVfs, Vfs};
use segexpand_engine::wal::file::{encode_header, file_name};
use segexpand_engine::wal::scan::list_files;
use segexpand_engine::Node;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A node with `acked` committed rows in table 1 and one last committed transaction whose
/// records are the very end of the WAL. Returns the crash image, the last WAL file and the
/// LSN range of the last transaction's records.
fn setup() -> (SimVfs, PathBuf, u64, u64) {
    let (vfs, node, t) = node_with_table(SEGMENTS, small_opts());
    for id in 0..20 {
        let x = node.begin_xid().unwrap();
        node.insert(x, 0, segment_of(id), t, false, &payload(id))
            .unwrap();
        node.commit_xid(x).unwrap();
    }
    let last_start = node.wal().insert_lsn();
    let x = node.begin_xid().unwrap();
    node.insert(x, 0, 0, t, false, &payload(1000)).unwrap();
    node.commit_xid(x).unwrap();
    let end = node.wal().insert_lsn();
    let img = vfs.crash_image(CrashMode::DropUnsynced);
    let files = list_files(&img, &Path::new(DIR).join(WAL_DIR)).unwrap();
    let last = files.last().unwrap();
    let path = Path::new(DIR).join(WAL_DIR).join(&last.name);
    (img, path, last_start - last.start, end - last.start)
}

fn ids(node: &Node) -> Vec<u64> {
    live_rows(node).keys().copied().collect()
}

/// Recovers `img`; checks the rows are `expect` and the log was cut for a reason
/// mentioning `cut_because`.
fn recover_cut(img: &SimVfs, expect: &[u64], cut_because: &str) -> Arc<Node> {
    let node = Node::open(Arc::new(img.clone()), Path::new(DIR), small_opts()).unwrap();
    assert_eq!(ids(&node), expect);
    let (_, why) = node
        .recovery_report()
        .cut
        .clone()
        .expect("the log must be cut");
    assert!(
        why.contains(cut_because),
        "cut because {why:?}, expected {cut_because:?}"
    );
    node
}

fn all_rows() -> Vec<u64> {
    (0..20).chain([1000]).collect()
}

fn set_len(vfs: &SimVfs, path: &Path, len: u64) {
    let f = vfs.open(path, false).unwrap();
    f.set_len(len).unwrap();
    f.sync().unwrap();
}

#[test]
fn intact_log_recovers_everything() {
    let (img, _, _, _) = setup();
    let node = Node::open(Arc::new(img), Path::new(DIR), small_opts()).unwrap();
    assert_eq!(ids(&node), all_rows());
    assert_eq!(node.recovery_report().cut, None);
}

#[test]
fn torn_last_record_is_cut_and_recovery_goes_on() {
    let (img, path, start, end) = setup();
    // Cut inside the last transaction's commit record: the commit is not durable.
    set_len(&img, &path, end - 5);
    let node = Node::open(Arc::new(img.clone()), Path::new(DIR), small_opts()).unwrap();
    assert_eq!(ids(&node), (0..20).collect::<Vec<_>>());
    let (cut_lsn, why) = node.recovery_report().cut.clone().expect("a cut");
    assert!(cut_lsn > start, "cut at {cut_lsn}");
    assert!(why.contains("cut short"), "{why}");
    // The log keeps working after the cut, and a second open sees no cut.
    let x = node.begin_xid().unwrap();
    node.insert(x, 0, 1, 1, false, &payload(2001)).unwrap();
    node.commit_xid(x).unwrap();
    drop(node);
    let again = img.crash_image(CrashMode::DropUnsynced);
    let node = Node::open(Arc::new(again), Path::new(DIR), small_opts()).unwrap();
    assert_eq!(node.recovery_report().cut, None);
    assert_eq!(ids(&node), (0..20).chain([2001]).collect::<Vec<_>>());
}

#[test]
fn garbage_after_the_last_record_is_cut() {
    let (img, path, _, end) = setup();
    let mut rng = Rng(7);
    let junk: Vec<u8> = (0..3000).map(|_| rng.next() as u8).collect();
    img.poke(&path, end, &junk).unwrap();
    // Random bytes fail one check or another; which one depends on the bytes.
    recover_cut(&img, &all_rows(), "");
}

#[test]
fn zeroed_tail_is_cut() {
    let (img, path, _, end) = setup();
    img.poke(&path, end, &[0u8; 8192]).unwrap();
    recover_cut(&img, &all_rows(), "length");
}

#[test]
fn flipped_bit_in_last_transaction_cuts_it_whole() {
    let (img, path, start, _) = setup();
    let byte = img.read_file(&path).unwrap()[(start + 40) as usize];
    img.poke(&path, start + 40, &[byte ^ 0x04]).unwrap();
    // The damaged record and everything after it (the commit) are gone: the transaction
    // is not visible, and nothing half-applied is.
    recover_cut(&img, &(0..20).collect::<Vec<_>>(), "checksum");
}

#[test]
fn torn_header_of_a_new_file_is_removed() {
    let (img, _, _, end) = setup();
    // A next file that was being created when the crash hit: half a header.
    let files = list_files(&img, &Path::new(DIR).join(WAL_DIR)).unwrap();
    let next_start = files.last().unwrap().start + end;
    let next = Path::new(DIR).join(WAL_DIR).join(file_name(next_start));
    let f = img.open(&next, true).unwrap();
    f.write_all_at(&encode_header(next_start)[..10], 0).unwrap();
    f.sync().unwrap();
    img.sync_dir(&Path::new(DIR).join(WAL_DIR)).unwrap();
    recover_cut(&img, &all_rows(), "header");
    assert!(!img.exists(&next).unwrap(), "the torn file must be removed");
}
