//! Redo: applying one WAL record to the node's state during recovery — catalog records
//! to the catalog, page records to their page when the page is older than the record.

use super::{Node, RecoveryReport};

pub use crate::datadir::WAL_DIR;
use crate::error::{CorruptionKind, Error, Location, Result};
use crate::storage::page::Page;
use crate::txn::clog::XidStatus;
use crate::wal::record::{Body, PageRef, Record};
use std::sync::atomic::Ordering;

impl Node {
    pub(super) fn redo(&self, rec: &Record, report: &mut RecoveryReport) -> Result<()> {
        if rec.xid > 0 {
            self.txns.advance_next_xid(rec.xid + 1);
        }
        report.records_replayed += 1;
        match &rec.body {
            Body::Commit => self.clog.set(rec.xid, XidStatus::Committed),
            Body::Abort => self.clog.set(rec.xid, XidStatus::Aborted),
            Body::Checkpoint {
                next_xid,
                next_table,
                ..
            } => {
                self.txns.advance_next_xid(*next_xid);
                self.next_table.fetch_max(*next_table, Ordering::AcqRel);
            }
            Body::CreateSegment { config } => self.apply_create_segment(config.clone())?,
            Body::CreateTable { def } => {
                self.next_table.fetch_max(def.id + 1, Ordering::AcqRel);
                self.apply_create_table(def.clone())?;
            }
            Body::DropTable { table } => self.apply_drop_table(*table),
            Body::TruncateTable { table } => self.apply_truncate_table(*table)?,
            Body::PutTable { def } => self.apply_put_table(def.clone()),
            Body::RetireSegment { content } => self.apply_retire_segment(*content),
            Body::HeapSetBit { page, bit, slots } => {
                self.redo_on_page(rec, page, |p| p.set_migration_bits(*bit, slots))?;
            }
            Body::PageImage {
                page,
                hole_offset,
                hole_len,
                image,
            } => {
                let heap = self.heap(page.segment, page.table)?;
                let mut p = Page::from_image(*hole_offset, *hole_len, image, (*page).into())
                    .map_err(|k| Error::corrupt(redo_location(rec, page), k))?;
                p.set_lsn(rec.lsn);
                heap.install(p);
                report.page_images += 1;
            }
            Body::HeapInsert { page, slot, tuple } => {
                self.redo_on_page(rec, page, |p| p.insert_at(*slot, tuple))?;
            }
            Body::HeapSetXmax {
                page,
                slot,
                xmax,
                cmax,
                flags,
                next,
            } => {
                self.redo_on_page(rec, page, |p| {
                    p.set_tuple_xmax(*slot, *xmax, *cmax, *flags, *next)
                })?;
            }
        }
        Ok(())
    }

    pub(super) fn redo_on_page(
        &self,
        rec: &Record,
        page: &PageRef,
        apply: impl FnOnce(&mut Page) -> bool,
    ) -> Result<()> {
        let heap = self.heap(page.segment, page.table)?;
        let cp = heap.page(page.block).map_err(|e| match e {
            Error::NoSuchBlock { .. } => Error::corrupt(
                redo_location(rec, page),
                CorruptionKind::Invalid("record for a block with no page image".into()),
            ),
            e => e,
        })?;
        let mut p = cp.page.write();
        if p.lsn() >= rec.lsn {
            return Ok(());
        }
        if !apply(&mut p) {
            return Err(Error::corrupt(
                redo_location(rec, page),
                CorruptionKind::Invalid(format!(
                    "redo of record at LSN {} does not apply",
                    rec.lsn
                )),
            ));
        }
        p.set_lsn(rec.lsn);
        cp.mark_dirty();
        heap.set_free(page.block, p.free_space());
        Ok(())
    }
}

pub(super) fn redo_location(rec: &Record, page: &PageRef) -> Location {
    Location {
        segment: Some(page.segment),
        table: Some(page.table),
        block: Some(page.block),
        offset: Some(rec.lsn),
        ..Location::file(WAL_DIR)
    }
}
