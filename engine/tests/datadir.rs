//! The data directory as an unfriendly user treats it (issue 9): two openers, a missing
//! control file, a foreign directory, user files among ours, a wipe cut short, a heap
//! file cut short, a read-only `verify`, a table created since the last checkpoint.
//! Each test names the item it pins and failed on the code before it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use segexpand_engine::datadir::{inspect, DataDir, DirState, CONTROL_FILE};
use segexpand_engine::storage::page::PAGE_BYTES;
use segexpand_engine::verify::verify_dir;
use segexpand_engine::vfs::{CrashMode, LockOutcome, RealVfs, SimVfs, VFile, Vfs};
use segexpand_engine::{CorruptionKind, Error, Node, NodeOptions, TableSpec, Type, Value};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn real_node(dir: &Path, rows: i64) -> Arc<Node> {
    let node = Node::create_dir(dir, 2, NodeOptions::default()).unwrap();
    node.create_table(
        &TableSpec::new("t")
            .not_null("id", Type::Int8)
            .column("v", Type::Text)
            .distributed_by(&["id"]),
    )
    .unwrap();
    node.bulk_load(
        "t",
        (0..rows).map(|i| vec![Value::Int8(i), Value::Text(format!("row {i:0>60}"))]),
    )
    .unwrap();
    node
}

fn count(node: &Arc<Node>) -> u64 {
    let mut tx = node.begin().unwrap();
    let n = tx.scan_with("t", |_| {}).unwrap();
    tx.rollback().unwrap();
    n
}

/// Every file under `dir` (relative path, length), for "nothing changed" checks; the
/// lock file is left out (it holds its owner's pid only while owned).
fn tree(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                if rel != Path::new("lock") {
                    out.push((rel, e.metadata().unwrap().len()));
                }
            }
        }
    }
    out.sort();
    out
}

/// Item 1: a second opener of a directory in use is refused, naming the holder, and the
/// first is not disturbed; when the first goes, the directory opens.
#[test]
fn a_second_opener_is_refused_while_the_first_holds_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let node = real_node(&dir, 1000);
    let pid = std::process::id();
    for e in [
        Node::open_dir(&dir, NodeOptions::default()).unwrap_err(),
        Node::create_dir(&dir, 2, NodeOptions::default()).unwrap_err(),
        DataDir::lock(Arc::new(RealVfs), &dir, true).unwrap_err(),
        verify_dir(&RealVfs, &dir).unwrap_err(),
    ] {
        assert!(
            matches!(e, Error::DirInUse { pid: Some(p), .. } if p == pid),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "data directory {} is in use by process {pid}",
                dir.display()
            )
        );
    }
    // The first node goes on as if nothing happened.
    let mut tx = node.begin().unwrap();
    tx.insert("t", vec![Value::Int8(5000), Value::Text("x".into())])
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(count(&node), 1001);
    node.close().unwrap();
    drop(node);
    assert!(verify_dir(&RealVfs, &dir).unwrap().problems.is_empty());
    let node = Node::open_dir(&dir, NodeOptions::default()).unwrap();
    assert_eq!(count(&node), 1001);
}

/// Item 4: a directory whose control file is missing is not a new directory: open and
/// create refuse, saying what is there, and change nothing.
#[test]
fn a_directory_without_its_control_file_is_refused_not_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let node = real_node(&dir, 2000);
    node.close().unwrap();
    drop(node);
    std::fs::remove_file(dir.join(CONTROL_FILE)).unwrap();
    let before = tree(&dir);
    for e in [
        Node::open_dir(&dir, NodeOptions::default()).unwrap_err(),
        Node::create_dir(&dir, 2, NodeOptions::default()).unwrap_err(),
        DataDir::lock(Arc::new(RealVfs), &dir, false)
            .unwrap()
            .wipe()
            .unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(matches!(e, Error::DirRefused { .. }), "{msg}");
        assert!(
            msg.contains("control file is missing") && msg.contains("wal") && msg.contains("seg0"),
            "{msg}"
        );
    }
    assert_eq!(tree(&dir), before, "nothing may change");
}

/// Item 5: a directory that is not ours is neither used nor wiped.
#[test]
fn a_foreign_directory_is_neither_used_nor_wiped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("u");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("thesis.txt"), "four years").unwrap();
    let dd = DataDir::lock(Arc::new(RealVfs), &dir, false).unwrap();
    assert!(matches!(dd.state().unwrap(), DirState::Foreign { .. }));
    let e = dd.wipe().unwrap_err();
    assert!(e.to_string().contains("thesis.txt"), "{e}");
    let e = Node::create_in(dd, 2, NodeOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("not a segexpand data directory"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(dir.join("thesis.txt")).unwrap(),
        b"four years"
    );
}

/// Item 5: an open deletes only what the engine made (a user's file in a `seg9/` that
/// is no segment stays), and a wipe of a node directory holding anything the engine did
/// not make refuses up front, deleting nothing (found by the adversarial pass: it used
/// to wipe the node and then refuse to create a new one beside the user's files).
#[test]
fn wipe_and_open_delete_only_what_the_engine_made() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let node = real_node(&dir, 100);
    node.close().unwrap();
    drop(node);
    std::fs::create_dir_all(dir.join("seg9")).unwrap();
    std::fs::write(dir.join("seg9/photo.jpg"), "jpeg").unwrap();
    std::fs::write(dir.join("seg1/notes.txt"), "mine").unwrap();
    std::fs::write(dir.join("control.bak"), "old").unwrap();
    // Open used to remove seg9/ whole as a "retired segment".
    let node = Node::open_dir(&dir, NodeOptions::default()).unwrap();
    assert_eq!(count(&node), 100);
    node.close().unwrap();
    drop(node);
    assert!(dir.join("seg9/photo.jpg").exists());
    let before = tree(&dir);
    let dd = DataDir::lock(Arc::new(RealVfs), &dir, false).unwrap();
    let e = dd.wipe().unwrap_err();
    let msg = e.to_string();
    for name in [
        "seg9/photo.jpg",
        "seg1/notes.txt",
        "control.bak",
        "nothing was deleted",
    ] {
        assert!(msg.contains(name), "{msg}");
    }
    assert_eq!(tree(&dir), before, "a refused wipe deletes nothing");
    // Once the user's files are moved away, the wipe empties the directory.
    for f in ["seg9/photo.jpg", "seg1/notes.txt", "control.bak"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    std::fs::remove_dir(dir.join("seg9")).unwrap();
    let r = dd.wipe().unwrap();
    assert!(r.files_removed > 0 && r.left.is_empty(), "{r:?}");
    assert_eq!(dd.state().unwrap(), DirState::Empty);
    Node::create_in(dd, 2, NodeOptions::default()).unwrap();
}

/// Item 5: a file named `control` that is not a control file is not the engine's: the
/// wipe refuses it (found by the adversarial pass: `--fresh` deleted it).
#[test]
fn a_control_file_that_is_not_ours_is_not_wiped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("u");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("control"), "a\n").unwrap();
    let dd = DataDir::lock(Arc::new(RealVfs), &dir, false).unwrap();
    let e = dd.wipe().unwrap_err();
    assert!(
        e.to_string().contains("not a segexpand control file"),
        "{e}"
    );
    assert_eq!(std::fs::read(dir.join("control")).unwrap(), b"a\n");
}

/// Item 5: a wipe crashed at any of its operations leaves a directory the next run
/// recognises (a node, an interrupted wipe, or empty) — never "damaged" — and wiping
/// again finishes it.
#[test]
fn a_wipe_crashed_at_every_operation_is_recognised_and_finished() {
    let base = SimVfs::new();
    let node = Node::create(Arc::new(base.clone()), Path::new(DIR), 2, small_opts()).unwrap();
    node.create_raw_table("t").unwrap();
    node.close().unwrap();
    drop(node);
    // A snapshot counts its operations from 0.
    let total = {
        let v = base.snapshot();
        let dd = DataDir::lock(Arc::new(v.clone()), Path::new(DIR), false).unwrap();
        dd.wipe().unwrap();
        v.ops()
    };
    assert!(total > 5, "{total}");
    for n in 0..total {
        let v = base.snapshot();
        v.crash_after(n);
        let dd = DataDir::lock(Arc::new(v.clone()), Path::new(DIR), false).unwrap();
        // Fails, except when the crash comes after its very last operation.
        assert_eq!(dd.wipe().is_err(), n + 1 < total, "op {n}");
        drop(dd);
        let img = v.crash_image(CrashMode::DropUnsynced);
        let state = inspect(&img, Path::new(DIR)).unwrap();
        assert!(
            matches!(
                state,
                DirState::Node | DirState::WipeInterrupted | DirState::Empty
            ),
            "crash after op {n} of the wipe left {state:?}"
        );
        if state == DirState::WipeInterrupted {
            let e = Node::open(Arc::new(img.clone()), Path::new(DIR), small_opts()).unwrap_err();
            assert!(e.to_string().contains("wipe"), "{e}");
        }
        let dd = DataDir::lock(Arc::new(img.clone()), Path::new(DIR), false).unwrap();
        dd.wipe().unwrap();
        assert_eq!(dd.state().unwrap(), DirState::Empty, "op {n}");
        Node::create_in(dd, 2, small_opts()).unwrap();
    }
}

/// A creation crashed before its control file existed is recognised as such, and
/// creating again works (its partial files are removed first).
#[test]
fn an_interrupted_creation_is_recognised_and_can_be_redone() {
    let probe = SimVfs::new();
    Node::create(Arc::new(probe.clone()), Path::new(DIR), 2, small_opts()).unwrap();
    let total = probe.ops();
    for n in 0..total {
        let v = SimVfs::new();
        v.crash_after(n);
        let _ = Node::create(Arc::new(v.clone()), Path::new(DIR), 2, small_opts());
        let img = v.crash_image(CrashMode::DropUnsynced);
        let state = inspect(&img, Path::new(DIR)).unwrap();
        assert!(
            matches!(
                state,
                DirState::Empty | DirState::CreateInterrupted | DirState::Node
            ),
            "crash after op {n} of create left {state:?}"
        );
        if state != DirState::Node {
            let node = Node::create(Arc::new(img.clone()), Path::new(DIR), 2, small_opts())
                .unwrap_or_else(|e| panic!("op {n}: {e}"));
            assert_eq!(node.segments(), vec![0, 1]);
        }
    }
}

fn heap_path(dir: &Path, seg: u16, table: u32) -> PathBuf {
    dir.join(format!("seg{seg}")).join(format!("t{table}.heap"))
}

/// Item 3: a heap file cut at a page boundary (or to nothing) behind the node's back is
/// corruption, refused at open and reported by verify, naming the file; it used to be
/// read as a shorter table with the rows silently gone.
#[test]
fn a_heap_cut_at_a_page_boundary_is_refused_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let node = real_node(&dir, 20_000);
    let table = node.table_id("t").unwrap();
    node.close().unwrap();
    drop(node);
    let path = heap_path(&dir, 1, table);
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 4 * PAGE_BYTES as u64);
    for cut in [2 * PAGE_BYTES as u64, 0] {
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let e = Node::open_dir(&dir, NodeOptions::default()).unwrap_err();
        let Error::Corruption { location, kind } = &e else {
            panic!("expected corruption, got {e}");
        };
        assert_eq!(
            location.file,
            Path::new("seg1").join(format!("t{table}.heap"))
        );
        assert_eq!(
            *kind,
            CorruptionKind::ShortFile {
                expected_bytes: len,
                found_bytes: cut
            }
        );
        let r = verify_dir(&RealVfs, &dir).unwrap();
        assert!(
            r.problems
                .iter()
                .any(|p| p.file == format!("seg1/t{table}.heap") && p.what.contains("shorter")),
            "{:?}",
            r.problems
        );
    }
}

/// Item 3, the other side: a heap that a TRUNCATE (logged since the checkpoint) emptied
/// is not mistaken for a short one after a crash.
#[test]
fn a_truncated_table_after_a_crash_is_not_a_short_heap() {
    let (vfs, node, t) = node_with_table(SEGMENTS, small_opts());
    let x = node.begin_xid().unwrap();
    for id in 0..300 {
        node.insert(x, 0, segment_of(id), t, false, &payload(id))
            .unwrap();
    }
    node.commit_xid(x).unwrap();
    node.checkpoint().unwrap();
    node.truncate_table("t").unwrap();
    let img = vfs.crash_image(CrashMode::DropUnsynced);
    drop(node);
    let node = Node::open(Arc::new(img.clone()), Path::new(DIR), small_opts()).unwrap();
    assert!(live_rows(&node).is_empty());
    drop(node);
    assert!(verify_dir(&img, Path::new(DIR))
        .unwrap()
        .problems
        .is_empty());
}

/// A file system that refuses every write: `verify` must need none (item 10).
struct ReadOnly(SimVfs);

fn ro() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "read-only file system")
}

impl Vfs for ReadOnly {
    fn open(&self, _: &Path, _: bool) -> io::Result<Arc<dyn VFile>> {
        Err(ro())
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        self.0.open_read(path)
    }
    fn try_lock(&self, path: &Path, exclusive: bool) -> io::Result<LockOutcome> {
        if exclusive {
            return Err(ro());
        }
        self.0.try_lock(path, false)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.0.exists(path)
    }
    fn create_dir_all(&self, _: &Path) -> io::Result<()> {
        Err(ro())
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.0.list_dir(path)
    }
    fn remove_file(&self, _: &Path) -> io::Result<()> {
        Err(ro())
    }
    fn remove_dir(&self, _: &Path) -> io::Result<()> {
        Err(ro())
    }
    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(ro())
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        Err(ro())
    }
}

/// Item 10: verify opens nothing for writing (a read-only mount, another user's files),
/// and, after a crash, checks the tables the WAL created since the last checkpoint: a
/// damaged page of such a table is reported (it used to check 0 pages of it).
#[test]
fn verify_is_read_only_and_checks_tables_created_since_the_checkpoint() {
    let (vfs, node, _) = node_with_table(SEGMENTS, small_opts());
    node.checkpoint().unwrap();
    let t2 = node.create_raw_table("later").unwrap();
    let x = node.begin_xid().unwrap();
    for id in 0..200 {
        node.insert(x, 0, segment_of(id), t2, false, &payload(id))
            .unwrap();
    }
    node.commit_xid(x).unwrap();
    let img = vfs.crash_image(CrashMode::DropUnsynced);
    drop(node);
    let clean = verify_dir(&ReadOnly(img.clone()), Path::new(DIR)).unwrap();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    assert!(clean.vm_files >= 2 * u64::from(SEGMENTS), "{clean:?}");
    // A garbage page in the new table's heap (its pages are only in the WAL so far).
    let heap = heap_path(Path::new(DIR), 0, t2);
    let f = img.open(&heap, false).unwrap();
    f.write_all_at(&[0xAB; PAGE_BYTES], 0).unwrap();
    f.sync().unwrap();
    let r = verify_dir(&ReadOnly(img.clone()), Path::new(DIR)).unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.table == Some(t2) && p.block == Some(0)),
        "{:?}",
        r.problems
    );
}

/// Item 10: a bad record before the checkpoint is reported as what it is, not as a
/// missing checkpoint record.
#[test]
fn verify_names_a_bad_record_before_the_checkpoint_for_what_it_is() {
    let (vfs, node, t) = node_with_table(SEGMENTS, small_opts());
    for id in 0..200 {
        let x = node.begin_xid().unwrap();
        node.insert(x, 0, segment_of(id), t, false, &payload(id))
            .unwrap();
        node.commit_xid(x).unwrap();
    }
    node.close().unwrap();
    drop(node);
    let wal = Path::new(DIR).join("wal");
    let first = vfs.list_dir(&wal).unwrap()[0].clone();
    let path = wal.join(&first);
    let len = vfs.read_file(&path).unwrap().len();
    let at = (len / 2) as u64;
    let b = vfs.read_file(&path).unwrap()[at as usize];
    vfs.poke(&path, at, &[b ^ 1]).unwrap();
    let r = verify_dir(&vfs, Path::new(DIR)).unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let p = &r.problems[0];
    assert!(p.file.ends_with(&first), "{p}");
    assert!(p.what.contains("not a torn tail"), "{p}");
    assert!(!p.what.contains("checkpoint record"), "{p}");
}

/// Adversarial pass: a control file restored from an older copy (before a DROP) names
/// heaps that are gone. Open refuses (it opens them before replaying the WAL); verify
/// used to say "0 problems" — now both agree.
#[test]
fn verify_agrees_with_open_on_a_stale_control_file() {
    let (vfs, node, _) = node_with_table(SEGMENTS, small_opts());
    let t2 = node.create_raw_table("gone").unwrap();
    node.checkpoint().unwrap();
    let control = Path::new(DIR).join(CONTROL_FILE);
    let old = vfs.read_file(&control).unwrap();
    node.drop_table("gone").unwrap();
    node.close().unwrap();
    drop(node);
    assert!(!vfs.exists(&heap_path(Path::new(DIR), 0, t2)).unwrap());
    let f = vfs.open(&control, false).unwrap();
    f.set_len(0).unwrap();
    f.write_all_at(&old, 0).unwrap();
    f.sync().unwrap();
    let e = Node::open(Arc::new(vfs.clone()), Path::new(DIR), small_opts()).unwrap_err();
    assert!(e.is_corruption(), "{e}");
    let r = verify_dir(&vfs, Path::new(DIR)).unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.table == Some(t2) && p.what.contains("heap file missing")),
        "{:?}",
        r.problems
    );
}

/// A data directory path that names a file is refused as such, the file untouched.
#[test]
fn a_file_given_as_the_data_directory_is_refused_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("afile");
    std::fs::write(&f, "x").unwrap();
    for e in [
        Node::create_dir(&f, 2, NodeOptions::default()).unwrap_err(),
        Node::open_dir(&f, NodeOptions::default()).unwrap_err(),
        verify_dir(&RealVfs, &f).unwrap_err(),
    ] {
        assert!(e.to_string().ends_with("not a directory"), "{e}");
    }
    assert_eq!(std::fs::read(&f).unwrap(), b"x");
}
