//! The one heap walk: the tuples of a page, or of a whole heap, with their decoded
//! headers — and the one rule for a tuple that does not decode.
//!
//! Every reader of heap tuples walks pages through here: table scans and lookups, the
//! mover's batch, its block-settled check and its in-place flips, vacuum (prune), the key
//! index build, [`crate::Node::for_each_tuple`] (and with it segment retirement), the
//! placement check, the VM rebuild and `verify`. A tuple whose header does not decode is
//! [`Error::Corruption`] for all of them, located by file, segment, table and block, with
//! the slot in the message — never skipped. (Skipping it let the mover give its block a
//! VM bit, and retirement delete a segment, with the unreadable tuple still inside.)
//! Readers that need the row use [`decode_row`], whose failure is the same kind of error.
//!
//! A reader holds the page lock it needs (read, or write to change the page) and walks
//! the page with [`tuples`]; [`for_each`] walks a whole heap under each page's read lock.

use crate::catalog::types::{decode_row_into, Type, Value};
use crate::error::{CorruptionKind, Error, Result};
use crate::storage::heap::Heap;
use crate::storage::page::Page;
use crate::storage::tuple::{
    payload, Tid, TupleHeader, FLAGS_KNOWN, FLAGS_OFF, TUPLE_HEADER_BYTES,
};
use std::ops::ControlFlow;

/// One tuple version of a page: where it is, its header and its payload.
#[derive(Debug, Clone, Copy)]
pub struct HeapTuple<'p> {
    /// Its tuple id.
    pub tid: Tid,
    /// Its decoded header.
    pub header: TupleHeader,
    /// Its payload (an encoded row, or opaque bytes for a raw table).
    pub payload: &'p [u8],
}

impl HeapTuple<'_> {
    /// Bytes the tuple takes on its page (header included).
    pub fn len(&self) -> usize {
        TUPLE_HEADER_BYTES + self.payload.len()
    }

    /// Never true: a tuple has at least a header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A tuple of a page that cannot be read: its slot and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTuple {
    /// The slot.
    pub slot: u16,
    /// What is wrong with it.
    pub what: String,
}

impl std::fmt::Display for BadTuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tuple in slot {}: {}", self.slot, self.what)
    }
}

impl BadTuple {
    /// The corruption error for this tuple in block `block` of `heap`.
    pub fn error(&self, heap: &Heap, block: u32) -> Error {
        Error::corrupt(
            heap.location(block),
            CorruptionKind::Invalid(self.to_string()),
        )
    }
}

/// Decodes the tuple in `slot` of `page`: `Ok(None)` for an unused slot.
pub fn decode_at(page: &Page, slot: u16) -> Result<Option<HeapTuple<'_>>, BadTuple> {
    let Some(t) = page.tuple(slot) else {
        return Ok(None);
    };
    let header = TupleHeader::decode(t).ok_or_else(|| BadTuple {
        slot,
        what: why_undecodable(t),
    })?;
    Ok(Some(HeapTuple {
        tid: Tid {
            block: page.id().block,
            slot,
        },
        header,
        payload: payload(t),
    }))
}

fn why_undecodable(t: &[u8]) -> String {
    match crate::catalog::codec::get_u16(t, FLAGS_OFF) {
        _ if t.len() < TUPLE_HEADER_BYTES => format!(
            "header does not decode: {} bytes, shorter than a header ({TUPLE_HEADER_BYTES})",
            t.len()
        ),
        Some(flags) if flags & !FLAGS_KNOWN != 0 => format!(
            "header does not decode: unknown flag bits {:#06x}",
            flags & !FLAGS_KNOWN
        ),
        _ => "header does not decode".to_string(),
    }
}

/// The tuples of one page, in slot order (unused slots skipped), each decoded or
/// [`BadTuple`]. The walk goes on after a bad tuple, so a checker can list every one.
#[derive(Debug)]
pub struct PageTuples<'p> {
    page: &'p Page,
    next: u16,
}

impl<'p> Iterator for PageTuples<'p> {
    type Item = Result<HeapTuple<'p>, BadTuple>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.next < self.page.slot_count() {
            let slot = self.next;
            self.next += 1;
            match decode_at(self.page, slot) {
                Ok(None) => continue,
                Ok(Some(t)) => return Some(Ok(t)),
                Err(bad) => return Some(Err(bad)),
            }
        }
        None
    }
}

/// The tuples of `page`, with bad ones as [`BadTuple`] (for readers outside a heap:
/// `verify`, the VM rebuild).
pub fn page_tuples(page: &Page) -> PageTuples<'_> {
    PageTuples { page, next: 0 }
}

/// The tuples of `page`, a page of `heap` that the caller holds locked; a tuple that
/// does not decode is [`Error::Corruption`].
pub fn tuples<'p>(heap: &'p Heap, page: &'p Page) -> impl Iterator<Item = Result<HeapTuple<'p>>> {
    let block = page.id().block;
    page_tuples(page).map(move |r| r.map_err(|bad| bad.error(heap, block)))
}

/// The tuple at `slot` of `page` (a page of `heap` the caller holds locked): `Ok(None)`
/// for an unused or absent slot, [`Error::Corruption`] if it does not decode.
pub fn tuple_at<'p>(heap: &Heap, page: &'p Page, slot: u16) -> Result<Option<HeapTuple<'p>>> {
    decode_at(page, slot).map_err(|bad| bad.error(heap, page.id().block))
}

/// Calls `f` with every tuple of `heap`, block by block, each page under its read lock
/// (`f` must not take a lock ranked below the heap page: `crate::lock`). Stops at the
/// first error — an unreadable page, a tuple that does not decode, or `f`'s — or when
/// `f` breaks.
pub fn for_each(
    heap: &Heap,
    mut f: impl FnMut(&HeapTuple<'_>) -> Result<ControlFlow<()>>,
) -> Result<()> {
    for block in 0..heap.nblocks() {
        let cp = heap.page(block)?;
        let p = cp.page.read();
        for t in tuples(heap, &p) {
            if f(&t?)?.is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The error for a tuple at `tid` of `heap` whose payload is not a row of its table.
pub fn corrupt_row(heap: &Heap, tid: Tid) -> Error {
    Error::corrupt(
        heap.location(tid.block),
        CorruptionKind::Invalid(format!(
            "tuple in slot {} is not a row of its table",
            tid.slot
        )),
    )
}

/// Decodes the row of `t` (a tuple of `heap`) into `row`; a payload that is not a row
/// of columns `types` is [`Error::Corruption`] ([`corrupt_row`]).
pub fn decode_row<I>(heap: &Heap, t: &HeapTuple<'_>, types: I, row: &mut Vec<Value>) -> Result<()>
where
    I: IntoIterator<Item = Type>,
    I::IntoIter: ExactSizeIterator,
{
    decode_row_into(types, t.payload, row).ok_or_else(|| corrupt_row(heap, t.tid))
}

/// Everything unreadable in `page`, one message per tuple: headers that do not decode
/// and, when `types` is not empty (a table with columns), payloads that are not rows of
/// those columns. For `verify`.
pub fn check_page(page: &Page, types: &[Type]) -> Vec<String> {
    let mut out = Vec::new();
    let mut row = Vec::new();
    for t in page_tuples(page) {
        match t {
            Err(bad) => out.push(bad.to_string()),
            Ok(t) => {
                if !types.is_empty()
                    && decode_row_into(types.iter().copied(), t.payload, &mut row).is_none()
                {
                    out.push(format!(
                        "tuple in slot {} is not a row of its table",
                        t.tid.slot
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::page::PageId;
    use crate::storage::tuple::{build_tuple, FLAGS_OFF};

    #[test]
    fn a_bad_header_is_reported_by_slot_and_the_walk_goes_on() {
        let mut p = Page::new(PageId {
            segment: 0,
            table: 1,
            block: 7,
        });
        for i in 0..3u8 {
            p.insert(&build_tuple(&TupleHeader::new(2, 0, false), &[i; 8]))
                .unwrap();
        }
        p.prune(&[0]); // slot 0 unused: skipped
        let t = p.tuple_mut(1).unwrap();
        crate::catalog::codec::put_u16(t, FLAGS_OFF, 0x8000);
        let got: Vec<_> = page_tuples(&p).collect();
        assert_eq!(got.len(), 2);
        let bad = got[0].as_ref().unwrap_err();
        assert_eq!(bad.slot, 1);
        assert!(
            bad.to_string().contains("unknown flag bits 0x8000"),
            "{bad}"
        );
        let ok = got[1].as_ref().unwrap();
        assert_eq!(ok.tid, Tid { block: 7, slot: 2 });
        assert_eq!(ok.payload, &[2u8; 8]);
        assert_eq!(check_page(&p, &[]).len(), 1);
        // With columns, an opaque payload is not a row either.
        assert_eq!(check_page(&p, &[Type::Int8, Type::Int8]).len(), 2);
    }
}
