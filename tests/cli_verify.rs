//! `segexpand verify`: exit 0 on a clean directory; one flipped bit in a heap page makes
//! it exit non-zero with a line naming the table, the segment and the block.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::{Node, NodeOptions};
use std::process::Command;

fn verify(dir: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_segexpand"))
        .args(["verify", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn verify_clean_then_one_flipped_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    std::fs::create_dir_all(&dir).unwrap();
    let node = Node::create_dir(&dir, 3, NodeOptions::default()).unwrap();
    let t = node.create_raw_table("orders").unwrap();
    let x = node.begin_xid().unwrap();
    for i in 0..3000u32 {
        node.insert(
            x,
            0,
            (i % 3) as u16,
            t,
            false,
            format!("order {i:06} ........................................").as_bytes(),
        )
        .unwrap();
    }
    node.commit_xid(x).unwrap();
    node.close().unwrap();
    drop(node);

    let (code, stdout) = verify(&dir);
    assert_eq!(code, 0, "clean directory: {stdout}");
    assert!(stdout.is_empty(), "no problem lines expected: {stdout}");

    // Flip one bit in the middle of block 2 of segment 1's heap.
    let heap = dir.join("seg1").join(format!("t{t}.heap"));
    let mut bytes = std::fs::read(&heap).unwrap();
    assert!(bytes.len() >= 3 * 8192, "heap too small for the test");
    bytes[2 * 8192 + 5000] ^= 0x08;
    std::fs::write(&heap, &bytes).unwrap();

    let (code, stdout) = verify(&dir);
    assert_eq!(code, 1, "corrupt directory must fail: {stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one problem: {stdout}");
    let l = lines[0];
    assert!(l.contains(&format!("seg1/t{t}.heap")), "{l}");
    assert!(l.contains("table \"orders\""), "{l}");
    assert!(l.contains("segment 1"), "{l}");
    assert!(l.contains("block 2"), "{l}");
    assert!(l.contains("checksum mismatch"), "{l}");
}

#[test]
fn verify_of_a_directory_without_a_node_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _) = verify(tmp.path());
    assert_eq!(code, 2);
}
