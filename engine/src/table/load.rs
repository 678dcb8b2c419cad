//! Bulk load: rows written straight into new pages, each page logged whole, in one
//! transaction.

use super::spec::coerce_row;
use super::Row;

use crate::catalog::types::encode_row;
use crate::catalog::TableDef;
use crate::error::{Error, Result};
use crate::node::{image_body, Node, Part, TableRt};
use crate::storage::index::KeyedIndex;
use crate::storage::page::Page;
use crate::storage::tuple::{Tid, TupleHeader};
use crate::wal::record::PageRef;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Node {
    /// Loads rows in one transaction, whole pages at a time: each filled page is logged
    /// as one page image (instead of one record per row) and installed directly. Durable
    /// when it returns; on any error nothing of it is visible. Returns the rows loaded.
    pub fn bulk_load<I>(&self, table: &str, rows: I) -> Result<u64>
    where
        I: IntoIterator<Item = Row>,
    {
        let rt = self.table_rt_by_name(table)?;
        // A table with unique constraints is loaded with every other writer held off,
        // so that each row's check (against the table, and the rows loaded before it)
        // stays true until the load commits.
        let unique = !rt.def.read().unique.is_empty();
        let _drained = if unique {
            Some(self.drain_writers(&rt, None)?)
        } else {
            None
        };
        let _ddl = rt.ddl.read();
        let _pin = rt.pin();
        if rt.dropped.load(Ordering::Acquire) {
            return Err(Error::NoSuchTable(table.to_string()));
        }
        let def = rt.def.read().clone();
        let xid = self.begin_xid()?;
        let mut failed: Option<Error> = None;
        let mut checker = super::unique::LoadChecker::new(&def);
        let rows = rows.into_iter().map_while(|row| {
            if def.unique.is_empty() || failed.is_some() {
                return if failed.is_some() { None } else { Some(row) };
            }
            match checker.check(self, xid, &rt, &def, row) {
                Ok(row) => Some(row),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            }
        });
        let r = self.bulk_load_inner(&rt, &def, xid, 0, rows);
        let r = match (r, failed) {
            (_, Some(e)) | (Err(e), None) => Err(e),
            (Ok(n), None) => Ok(n),
        };
        match r {
            Ok(n) => {
                self.commit_xid(xid)?;
                Ok(n)
            }
            Err(e) => {
                let _ = self.abort_xid(xid);
                Err(e)
            }
        }
    }

    pub(super) fn bulk_load_inner<I>(
        &self,
        rt: &TableRt,
        def: &TableDef,
        xid: u64,
        cid: u32,
        rows: I,
    ) -> Result<u64>
    where
        I: IntoIterator<Item = Row>,
    {
        struct Builder {
            part: Arc<Part>,
            indexes: Vec<Arc<KeyedIndex>>,
            page: Option<Page>,
            /// (index number, key hash, slot) of the rows on `page`.
            index: Vec<(usize, u64, u16)>,
        }
        let (layout, bit) = def.write_layout();
        let natts = def.columns.len() as u16;
        let header = TupleHeader {
            natts,
            ..TupleHeader::new(xid, cid, bit)
        };
        let mut builders: HashMap<u16, Builder> = HashMap::new();
        let mut payload_buf = Vec::new();
        let mut tuple = Vec::new();
        let mut n = 0u64;
        let flush = |b: &mut Builder| -> Result<()> {
            let Some(mut page) = b.page.take() else {
                return Ok(());
            };
            let heap = b.part.heap();
            let id = page.id();
            let page_ref = PageRef {
                segment: id.segment,
                table: id.table,
                block: id.block,
            };
            let lsn = self.wal().append(xid, &image_body(page_ref, &page))?;
            page.set_lsn(lsn);
            heap.install(page);
            for (i, ix) in b.indexes.iter().enumerate() {
                let entries: Vec<(u64, Tid)> = b
                    .index
                    .iter()
                    .filter(|e| e.0 == i)
                    .map(|(_, h, slot)| {
                        let tid = Tid {
                            block: id.block,
                            slot: *slot,
                        };
                        (*h, tid)
                    })
                    .collect();
                ix.map.insert_many(&entries);
            }
            b.index.clear();
            Ok(())
        };
        for row in rows {
            let row = coerce_row(def, row)?;
            payload_buf.clear();
            encode_row(&row, &mut payload_buf);
            tuple.clear();
            tuple.resize(crate::storage::tuple::TUPLE_HEADER_BYTES, 0);
            header.encode(&mut tuple);
            tuple.extend_from_slice(&payload_buf);
            let segment = self.place(layout, def, &row);
            let b = match builders.get_mut(&segment) {
                Some(b) => b,
                None => {
                    let part = rt.parts.read().get(&segment).cloned().ok_or_else(|| {
                        Error::InvalidArgument(format!("no part on segment {segment}"))
                    })?;
                    let indexes = part.indexes.read().clone();
                    builders.entry(segment).or_insert(Builder {
                        indexes,
                        part,
                        page: None,
                        index: Vec::new(),
                    })
                }
            };
            let mut placed = false;
            for _ in 0..2 {
                if b.page.is_none() {
                    let heap = b.part.heap();
                    let block = heap.reserve_block();
                    b.page = Some(Page::new(Node::page_id(
                        heap.segment(),
                        heap.table(),
                        block,
                    )));
                }
                if let Some(slot) = b.page.as_mut().and_then(|p| p.insert(&tuple)) {
                    for (i, ix) in b.indexes.iter().enumerate() {
                        b.index.push((i, def.key_hash(&ix.key, &row), slot));
                    }
                    placed = true;
                    break;
                }
                flush(b)?;
            }
            if !placed {
                return Err(Error::TupleTooLarge {
                    len: tuple.len(),
                    max: crate::storage::page::TUPLE_BYTES_MAX,
                });
            }
            n += 1;
        }
        for b in builders.values_mut() {
            flush(b)?;
        }
        Ok(n)
    }
}

impl super::Txn {
    /// INSERT of many rows as one statement of this transaction (COPY FROM): written
    /// whole pages at a time as [`Node::bulk_load`] does — each filled page logged as one
    /// image — but under this transaction, so they commit or roll back with it. A table
    /// with unique constraints takes the rows one by one through the checked insert.
    /// Returns the rows inserted.
    pub fn insert_many(
        &mut self,
        table: impl super::TableRef,
        rows: impl IntoIterator<Item = Row>,
    ) -> Result<u64> {
        self.statement(&table, true, |tx, st| {
            if st.def.unique.is_empty() {
                return tx
                    .node
                    .bulk_load_inner(st.rt, &st.def, tx.xid, tx.cid, rows);
            }
            let mut n = 0;
            for row in rows {
                let row = coerce_row(&st.def, row)?;
                tx.write_version(st, &st.def, &row)?;
                n += 1;
            }
            Ok(n)
        })
    }
}
