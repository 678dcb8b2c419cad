//! Golden bytes: the exact encodings of the page header, tuple header, VM file, WAL
//! record, WAL file header and control file. A format change makes these fail; update
//! `docs/format.md` and bump the format version along with them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::catalog::control::{Catalog, Control, HeapLen, NodeState};
use segexpand_engine::catalog::{Column, Layout, SegmentConfig, TableDef};
use segexpand_engine::storage::page::{Page, PageId};
use segexpand_engine::storage::tuple::{
    build_tuple, NextVersion, Tid, TupleHeader, FLAG_MIGRATION, FLAG_UPDATED,
};
use segexpand_engine::storage::vm::VisibilityMap;
use segexpand_engine::wal::file::encode_header;
use segexpand_engine::wal::record::{encode, Body, PageRef};
use segexpand_engine::{Placement, Type};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn tuple_header() {
    let h = TupleHeader {
        xmin: 0x0102030405060708,
        xmax: 0x1112131415161718,
        cmin: 0x21222324,
        cmax: 0x31323334,
        next: Some(NextVersion {
            segment: 0x4142,
            tid: Tid {
                block: 0x51525354,
                slot: 0x6162,
            },
        }),
        flags: FLAG_MIGRATION | FLAG_UPDATED,
        natts: 7,
    };
    let t = build_tuple(&h, b"ab");
    assert_eq!(
        hex(&t),
        concat!(
            "0807060504030201", // xmin
            "1817161514131211", // xmax
            "24232221",         // cmin
            "34333231",         // cmax
            "54535251",         // next_block
            "6261",             // next_slot
            "4241",             // next_segment
            "0300",             // flags: MIGRATION | UPDATED
            "0700",             // natts
            "6162",             // payload
        )
    );
    assert_eq!(TupleHeader::decode(&t), Some(h));
    let none = TupleHeader::new(9, 0, false);
    assert_eq!(
        hex(&build_tuple(&none, b"")[24..30]),
        "ffffffff0000",
        "no next version"
    );
}

#[test]
fn page_header_and_slots() {
    let id = PageId {
        segment: 3,
        table: 0x0a0b0c0d,
        block: 0x11223344,
    };
    let mut p = Page::new(id);
    p.insert(&build_tuple(&TupleHeader::new(2, 0, true), b"xyz"))
        .unwrap();
    p.set_lsn(0x0000_00aa_bbcc_ddee);
    let disk = p.seal();
    assert_eq!(
        hex(&disk[..36]),
        concat!(
            "a1d8d6a6",         // checksum (CRC-32 of bytes 4..8192)
            "5347",             // magic "SG"
            "01",               // version
            "00",               // flags
            "eeddccbbaa000000", // page_lsn
            "44332211",         // block
            "0d0c0b0a",         // table
            "0300",             // segment
            "0100",             // slot_count
            "d91f",             // upper = 8192 - 39
            "0000",             // reserved
            "d91f2700",         // slot 0: offset 8153, length 39
        )
    );
    assert_eq!(
        hex(&disk[8153..8153 + 8]),
        "0200000000000000",
        "tuple xmin at the slot's offset"
    );
    assert!(disk[36..8153].iter().all(|b| *b == 0), "free space is zero");
}

#[test]
fn vm_file() {
    let mut vm = VisibilityMap {
        epoch: 2,
        lsn: 0x1234,
        ..Default::default()
    };
    vm.bits.insert(1);
    vm.bits.insert(5);
    let b = vm.encode(4, 9);
    assert_eq!(
        hex(&b),
        concat!(
            "5347564d",         // magic "SGVM"
            "0100",             // version
            "0400",             // segment
            "09000000",         // table
            "02000000",         // epoch
            "3412000000000000", // lsn
            "14000000",         // payload_len = 20
            "593b2d19",         // checksum
            // roaring portable format: cookie 12346 (no runs), 1 container,
            // key 0 cardinality-1 = 1, offset 16, values 1 and 5
            "3a30000001000000000001001000000001000500",
        )
    );
    assert_eq!(b.len(), 32 + 20);
}

#[test]
fn wal_record_and_file_header() {
    let mut buf = Vec::new();
    let page = PageRef {
        segment: 1,
        table: 2,
        block: 3,
    };
    encode(
        0x40,
        0x77,
        &Body::HeapSetXmax {
            page,
            slot: 4,
            xmax: 0x77,
            cmax: 1,
            flags: 2,
            next: Some(NextVersion {
                segment: 5,
                tid: Tid { block: 6, slot: 7 },
            }),
        },
        &mut buf,
    );
    assert_eq!(
        hex(&buf),
        concat!(
            "0774422b",         // checksum (CRC-32 of bytes 4..)
            "3e000000",         // total_len = 62
            "4000000000000000", // lsn
            "7700000000000000", // xid
            "07",               // kind HeapSetXmax
            "00",               // flags
            "0000",             // reserved
            "0100",             // segment
            "02000000",         // table
            "03000000",         // block
            "0400",             // slot
            "7700000000000000", // xmax
            "01000000",         // cmax
            "0200",             // flags
            "0500",             // next: segment
            "06000000",         // next: block
            "0700",             // next: slot
        )
    );
    assert_eq!(
        hex(&encode_header(0x1000)),
        concat!(
            "5347574c",
            "0100",
            "0000",
            "0010000000000000",
            "08da5ac5",
            "00000000"
        )
    );
}

#[test]
fn control_file() {
    let c = Control {
        state: NodeState::InProduction,
        checkpoint_lsn: 0x100,
        redo_lsn: 0x80,
        next_xid: 5,
        next_table: 2,
        catalog: Catalog {
            segments: vec![SegmentConfig {
                dbid: 2,
                content: 0,
                role: 'p',
                preferred_role: 'p',
                mode: 'n',
                status: 'u',
                port: 6000,
                hostname: "h".into(),
                address: "a".into(),
                datadir: "d".into(),
                external: false,
            }],
            tables: vec![TableDef {
                id: 1,
                name: "t".into(),
                columns: vec![Column {
                    name: "c".into(),
                    ty: Type::Int4,
                    not_null: true,
                    default: None,
                }],
                layout: Layout {
                    key: vec![0],
                    segments: 1,
                    placement: Placement::Jump,
                },
                layout_version: 1,
                migration_bit: false,
                redistribution: None,
                epoch: 0,
                unique: Vec::new(),
            }],
        },
        clog: vec![0b0101],
        heaps: vec![HeapLen {
            segment: 0,
            table: 1,
            blocks: 3,
        }],
    };
    let b = c.encode();
    assert_eq!(
        hex(&b),
        concat!(
            "53474354",                 // magic "SGCT"
            "0400",                     // version
            "0200",                     // state: in production
            "0001000000000000",         // checkpoint_lsn
            "8000000000000000",         // redo_lsn
            "0500000000000000",         // next_xid
            "02000000",                 // next_table
            "3c000000",                 // catalog_len = 60
            "01000000",                 // clog_len = 1
            "0e000000",                 // heaps_len = 14
            "000000000000000000000000", // reserved
            "f6e3add5",                 // checksum (cross-checked with zlib)
            "0100",                     // 1 segment:
            "0200",                     //   dbid 2
            "0000",                     //   content 0
            "70706e75",                 //   role p, preferred p, mode n, status u
            "7017",                     //   port 6000
            "010068",                   //   hostname "h"
            "010061",                   //   address "a"
            "010064",                   //   datadir "d"
            "01000000",                 // 1 table:
            "01000000",                 //   id 1
            "010074",                   //   name "t"
            "0100",                     //   1 column:
            "010063",                   //     name "c"
            "03",                       //     type int4
            "00000000",                 //     type length
            "01",                       //     NOT NULL
            "0100",                     //   layout: 1 segment
            "01",                       //   placement jump
            "0100",                     //   1 key column:
            "0000",                     //     column 0
            "01000000",                 //   layout version 1
            "00",                       //   migration bit 0
            "00000000",                 //   epoch 0
            "00",                       //   not redistributing
            "05",                       // clog: xids 0 and 1 committed
            "01000000",                 // 1 heap length:
            "0000",                     //   segment 0
            "01000000",                 //   table 1
            "03000000",                 //   3 blocks
        )
    );
    assert_eq!(Control::decode(&b).unwrap(), c);
}

/// A version-3 control file (before the heap-length section) still decodes, with no
/// heap lengths: a directory written by the previous release opens.
#[test]
fn control_file_version_3_still_decodes() {
    let v3 = "5347435403000200000100000000000080000000000000000500000000000000020000003c00000001000000000000000000000000000000000000005cd4797d01000200000070706e75701701006801006101006401000000010000000100740100010063030000000001010001010000000100000000000000000005";
    let bytes: Vec<u8> = (0..v3.len() / 2)
        .map(|i| u8::from_str_radix(&v3[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let c = Control::decode(&bytes).unwrap();
    assert!(c.heaps.is_empty());
    assert_eq!(c.next_table, 2);
    assert_eq!(c.clog, vec![0b0101]);
}
