//! Crash after every single I/O operation of a scripted workload (inserts, deletes,
//! commits, aborts, prunes, checkpoints), under two crash models, then recover and check:
//! every acknowledged commit present, nothing uncommitted visible, no row twice, every
//! checksum clean, and recovery twice equal to recovery once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use segexpand_engine::verify::verify_dir;
use segexpand_engine::vfs::{CrashMode, SimVfs, Vfs};
use segexpand_engine::{Error, Node};
use std::path::Path;
use std::sync::Arc;

const SEED: u64 = 0x5e9e_7a4d;
const TXNS: usize = 150;

fn recover_and_check(image: SimVfs, outcome: &Outcome, ctx: &str) {
    let vfs: Arc<dyn Vfs> = Arc::new(image.clone());
    let node = match Node::open(vfs, Path::new(DIR), small_opts()) {
        Ok(n) => n,
        // A creation cut short before its control file existed: refused as such.
        Err(Error::NotInitialized(_) | Error::DirRefused { .. }) if !outcome.created => {
            assert_creation_interrupted(&image, ctx);
            return;
        }
        Err(e) => panic!("{ctx}: recovery failed: {e}"),
    };
    let rows = live_rows(&node);
    check_against(outcome, &rows, ctx);
    for t in &outcome.tables {
        assert!(
            node.tables().iter().any(|e| e.id == *t),
            "{ctx}: acknowledged table {t} lost"
        );
    }
    // Verify holds the directory's lock shared: the node must be gone first. Recovery
    // twice equals recovery once: crash right after the first recovery (dropping
    // anything it left unsynced) and recover again.
    drop(node);
    let report = verify_dir(&image, Path::new(DIR)).unwrap();
    assert!(
        report.problems.is_empty(),
        "{ctx}: verify after recovery: {:?}",
        report.problems
    );
    let again = image.crash_image(CrashMode::DropUnsynced);
    let node2 = Node::open(Arc::new(again), Path::new(DIR), small_opts())
        .unwrap_or_else(|e| panic!("{ctx}: second recovery failed: {e}"));
    assert_eq!(
        live_rows(&node2),
        rows,
        "{ctx}: second recovery differs from the first"
    );
}

#[test]
fn crash_after_every_io_operation() {
    // A clean run counts the operations and must itself check out.
    let clean = SimVfs::new();
    let outcome = run_workload(&clean, SEED, TXNS);
    assert!(
        outcome.error.is_none(),
        "clean run failed: {:?}",
        outcome.error
    );
    assert!(
        outcome.live.len() > 50,
        "workload too small to mean anything"
    );
    let total = clean.ops();
    // The workload must cross WAL files and have checkpoints remove old ones, so that
    // file creation and removal are among the crash points.
    let wal = segexpand_engine::wal::scan::list_files(&clean, &Path::new(DIR).join("wal")).unwrap();
    assert!(
        wal.first().unwrap().start > 0,
        "no WAL file was ever removed: {wal:?}"
    );
    recover_and_check(
        clean.crash_image(CrashMode::DropUnsynced),
        &outcome,
        "clean run",
    );

    let mut rng = Rng(SEED);
    let mut points = 0u64;
    for n in 0..total {
        let vfs = SimVfs::new();
        vfs.crash_after(n);
        let outcome = run_workload(&vfs, SEED, TXNS);
        assert!(vfs.has_crashed(), "crash point {n} was never reached");
        recover_and_check(
            vfs.crash_image(CrashMode::DropUnsynced),
            &outcome,
            &format!("op {n}, drop unsynced"),
        );
        let sectors = 1 + rng.below(15) as usize;
        recover_and_check(
            vfs.crash_image(CrashMode::KeepUnsyncedTearLast { sectors }),
            &outcome,
            &format!("op {n}, keep unsynced, last write torn after {sectors} sectors"),
        );
        points += 1;
    }
    assert_eq!(points, total);
    eprintln!("crash test: {total} I/O operations, each a crash point under 2 crash models ({} recoveries, each recovered twice)", 2 * total);
}
