//! Tests that a point read (a SELECT by distribution key) waits on no writer: DESIGN's
//! invariant 6, for the locks a writer holds on the way to and through its commit.

use crate::{Node, NodeOptions, TableSpec, Type, Value};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// How long the holder keeps everything before it gives up on the reader. Far longer than
/// any point read takes; the test fails only if the reader needs a held lock (before the
/// key index and the snapshot became lock-free, it hung here for the whole time).
const HOLD_AT_MOST: Duration = Duration::from_secs(30);

fn balance(rows: &[Vec<Value>]) -> Option<i64> {
    match rows {
        [row] => match row.get(1) {
            Some(Value::Int8(v)) => Some(*v),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn point_reads_complete_while_a_writer_holds_every_lock_it_takes() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::create_dir(dir.path(), 2, NodeOptions::default()).unwrap());
    node.create_table(
        &TableSpec::new("t")
            .not_null("id", Type::Int8)
            .column("v", Type::Int8),
    )
    .unwrap();
    node.bulk_load("t", (0..200).map(|i| vec![Value::Int8(i), Value::Int8(i)]))
        .unwrap();
    let table = node.table_id("t").unwrap();

    // A writer in the middle of its transaction: it updated row 7 (a new version in the
    // key index, the old one's xmax set) and inserted a row, and has not committed.
    let mut writer = node.begin().unwrap();
    let n = writer
        .update("t", &[Value::Int8(7)], |r| {
            vec![r[0].clone(), Value::Int8(-7)]
        })
        .unwrap();
    assert_eq!(n, 1);
    writer
        .insert("t", vec![Value::Int8(1000), Value::Int8(1000)])
        .unwrap();
    let mut reader = node.begin().unwrap();

    // Each segment in turn is the one whose locks are held; every key is read each time.
    for seg in 0..2 {
        let (held_tx, held_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<Vec<Option<i64>>>();
        let (read_in_time, seen) = std::thread::scope(|s| {
            let node = &node;
            let holder = s.spawn(move || {
                // Every lock a writer takes exclusively on its way to a commit, in rank
                // order: the segment's visibility map, the transaction manager (begin,
                // commit, abort, lock waits), the segment's free-space map and the WAL
                // (flush and insert), and the writers' lock of each of the segment's key
                // indexes. The commit log has no lock to hold; lookups read it and the key
                // index through atomics (before, this test took the key index's write lock
                // and the commit log's, and the reads hung).
                let part = node.part(seg, table).unwrap();
                let ixs: Vec<_> = part.indexes.read().iter().cloned().collect();
                let vm = part.vm.lock();
                let txns = node.txns.hold();
                let fsm = part.heap.hold_fsm();
                let wal = node.wal().hold();
                let writers: Vec<_> = ixs.iter().map(|ix| ix.map.hold()).collect();
                held_tx.send(()).unwrap();
                let r = done_rx.recv_timeout(HOLD_AT_MOST);
                drop((writers, wal, fsm, txns, vm));
                r
            });
            held_rx.recv().unwrap();
            let seen: Vec<Option<i64>> = (0..200)
                .map(|i| balance(&reader.get("t", &[Value::Int8(i)]).unwrap()))
                .collect();
            done_tx.send(seen).unwrap();
            holder
                .join()
                .unwrap()
                .map_or((false, Vec::new()), |seen| (true, seen))
        });
        assert!(
            read_in_time,
            "the point reads waited for a lock held on segment {seg}'s writer side"
        );
        // What the reads returned is what the statement's snapshot sees: the writer's
        // update and insert are not visible (it has not committed), every other row is.
        let want: Vec<Option<i64>> = (0..200).map(Some).collect();
        assert_eq!(seen, want);
    }
    writer.commit().unwrap();
    assert_eq!(
        balance(&reader.get("t", &[Value::Int8(7)]).unwrap()),
        Some(-7),
        "a statement after the commit sees it"
    );
    reader.commit().unwrap();
}
