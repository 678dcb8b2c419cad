//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the corpus replay test
//! (`engine/tests/fuzz_corpus.rs`), so that stable `cargo test` runs exactly what the
//! fuzzer ran. Each takes arbitrary bytes; none may panic, and every successful decode
//! must survive a round trip.
//!
//! Because random bytes almost never carry a valid CRC, each target also decodes a copy
//! with its checksum fixed up, which sends the fuzzer into the structural checks behind it.

use crate::catalog::codec::{get_u16, get_u32, get_u64, put_u32};
use crate::storage::page::{Page, PageId, PAGE_BYTES};
use crate::storage::tuple::TupleHeader;
use crate::storage::vm::VisibilityMap;
use crate::wal::record::{decode, encode, HEADER_BYTES, LEN_OFF, LSN_OFF};

fn page_id_of(b: &[u8]) -> PageId {
    PageId {
        segment: get_u16(b, crate::storage::page::SEGMENT_OFF).unwrap_or(0),
        table: get_u32(b, crate::storage::page::TABLE_OFF).unwrap_or(0),
        block: get_u32(b, crate::storage::page::BLOCK_OFF).unwrap_or(0),
    }
}

/// Decodes `data` as a heap page (raw, and with its checksum fixed), then exercises the
/// decoded page: tuple headers, insert, prune, image round trip, seal and re-read.
pub fn page(data: &[u8]) {
    let _ = Page::from_disk(data, page_id_of(data));
    let mut buf = data.to_vec();
    buf.resize(PAGE_BYTES, 0);
    let crc = crc32fast::hash(buf.get(4..).unwrap_or(&[]));
    put_u32(&mut buf, 0, crc);
    let id = page_id_of(&buf);
    let Ok(mut p) = Page::from_disk(&buf, id) else {
        return;
    };
    for s in 0..p.slot_count() {
        if let Some(t) = p.tuple(s) {
            if let Some(h) = TupleHeader::decode(t) {
                let mut again = vec![0u8; crate::storage::tuple::TUPLE_HEADER_BYTES];
                h.encode(&mut again);
                assert_eq!(
                    TupleHeader::decode(&again),
                    Some(h),
                    "tuple header round trip"
                );
            }
        }
    }
    let (ho, hl, img) = p.image();
    let q = Page::from_image(ho, hl, &img, id);
    assert!(q.is_ok(), "image of a valid page must decode");
    let _ = p.insert(&[7u8; 60]);
    let n = p.slot_count();
    let _ = p.prune(&(0..n).step_by(2).collect::<Vec<_>>());
    assert_eq!(p.validate(), Ok(()), "insert/prune broke a valid page");
    let sealed = p.seal();
    assert!(
        Page::from_disk(&sealed[..], id).is_ok(),
        "sealed page must re-read"
    );
}

/// Decodes `data` as a run of WAL records starting at the LSN written in its first
/// record's header (raw, and with the first record's checksum fixed); every record
/// decoded must re-encode to the same bytes.
pub fn wal(data: &[u8]) {
    let lsn = get_u64(data, LSN_OFF).unwrap_or(0);
    decode_run(data, lsn);
    let mut buf = data.to_vec();
    if let Some(len) = get_u32(&buf, LEN_OFF) {
        let len = len as usize;
        if (HEADER_BYTES..=buf.len()).contains(&len) {
            let crc = crc32fast::hash(buf.get(LEN_OFF..len).unwrap_or(&[]));
            put_u32(&mut buf, 0, crc);
            decode_run(&buf, lsn);
        }
    }
}

fn decode_run(data: &[u8], mut lsn: u64) {
    let mut off = 0;
    // Bounded: every successful decode consumes at least a header.
    while let Ok((rec, n)) = decode(data.get(off..).unwrap_or(&[]), lsn) {
        let mut again = Vec::new();
        encode(rec.lsn, rec.xid, &rec.body, &mut again);
        assert_eq!(
            Some(&again[..]),
            data.get(off..off + n),
            "WAL record round trip"
        );
        off += n;
        // decode() guarantees lsn + n <= LSN_MAX.
        lsn += n as u64;
    }
}

/// Decodes `data` as a VM file (raw, and with its checksum fixed); a successful decode
/// must re-encode to a file that decodes to the same map.
pub fn vm(data: &[u8]) {
    let seg = get_u16(data, crate::storage::vm::SEGMENT_OFF).unwrap_or(0);
    let table = get_u32(data, crate::storage::vm::TABLE_OFF).unwrap_or(0);
    check_vm(data, seg, table);
    if data.len() >= crate::storage::vm::HEADER_BYTES {
        let mut buf = data.to_vec();
        let mut h = crc32fast::Hasher::new();
        h.update(buf.get(..crate::storage::vm::CHECKSUM_OFF).unwrap_or(&[]));
        h.update(buf.get(crate::storage::vm::HEADER_BYTES..).unwrap_or(&[]));
        put_u32(&mut buf, crate::storage::vm::CHECKSUM_OFF, h.finalize());
        check_vm(&buf, seg, table);
    }
}

fn check_vm(data: &[u8], seg: u16, table: u32) {
    if let Ok(vm) = VisibilityMap::decode(data, seg, table) {
        let again = vm.encode(seg, table);
        assert_eq!(
            VisibilityMap::decode(&again, seg, table).ok(),
            Some(vm),
            "VM round trip"
        );
    }
}
