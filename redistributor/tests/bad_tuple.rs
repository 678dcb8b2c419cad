//! Issue 9, item 6, through the redistributor: a tuple that does not decode stops the run
//! with the engine's corruption error (it used to be skipped and its block finished), and
//! the redistribution stays where it was, resumable once the tuple is repaired.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::storage::heap::{heap_file_name, segment_dir_name};
use segexpand_engine::storage::page::{Page, PAGE_BYTES};
use segexpand_engine::storage::tuple::FLAGS_OFF;
use segexpand_engine::vfs::SimVfs;
use segexpand_engine::{Error, Layout, Node, NodeOptions, TableSpec, Type, Value};
use segexpand_redistributor::{Options, Redistributor, State};
use std::path::Path;
use std::sync::Arc;

#[test]
fn a_run_stops_at_an_undecodable_tuple_and_stays_resumable() {
    let vfs = SimVfs::new();
    let dir = Path::new("/db");
    let node = Node::create(Arc::new(vfs.clone()), dir, 2, NodeOptions::default()).unwrap();
    node.create_table(&TableSpec::new("t").not_null("id", Type::Int8))
        .unwrap();
    node.bulk_load("t", (0..400).map(|i| vec![Value::Int8(i)]))
        .unwrap();
    let t = node.table_id("t").unwrap();
    node.close().unwrap();
    drop(node);
    // Block 0 of segment 0: one tuple header gets an unknown flag bit, the page a valid
    // checksum.
    let path = dir.join(segment_dir_name(0)).join(heap_file_name(t));
    let bytes = vfs.read_file(&path).unwrap();
    let mut page = Page::from_disk(&bytes[..PAGE_BYTES], Node::page_id(0, t, 0)).unwrap();
    page.tuple_mut(3).unwrap()[FLAGS_OFF + 1] |= 0x80;
    vfs.poke(&path, 0, &page.seal()[..]).unwrap();
    let node = Node::open(Arc::new(vfs.clone()), dir, NodeOptions::default()).unwrap();

    let target = Layout {
        segments: 1,
        ..node.table_def("t").unwrap().layout
    };
    let r = Redistributor::start(node.clone(), "t", target, Options::default()).unwrap();
    match r.run() {
        Err(e @ Error::Corruption { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("segment 0") && m.contains("block 0") && m.contains("slot 3"),
                "{m}"
            );
        }
        other => panic!("expected the corruption, got {other:?}"),
    }
    assert!(matches!(
        State::of(&node.table_def("t").unwrap()),
        State::Redistributing { .. }
    ));
    assert!(node.redistribution_work("t").unwrap().contains(&(0, 0)));
    // Still attachable (resumable): a new run meets the same tuple, nothing else.
    let again = Redistributor::attach(node.clone(), "t", Options::default()).unwrap();
    assert!(again.run().unwrap_err().is_corruption());
    assert!(again.flip().is_err(), "block 0 is not finished");
}
