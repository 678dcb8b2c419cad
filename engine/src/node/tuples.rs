//! Tuple-level writes and reads under transaction ids: begin, insert a tuple, set its
//! xmax, claim a version for an update or delete, commit, abort — each logged before its
//! page changes. The table API (`crate::table`) is built on these.

use super::part::Part;
use super::{image_body, Node};

use crate::catalog::TableDef;
use crate::error::{Error, Result};
use crate::storage::heapwalk;
use crate::storage::page::TUPLE_BYTES_MAX;
use crate::storage::tuple::{build_tuple, NextVersion, Tid, TupleHeader};
use crate::txn::clog::XidStatus;
use crate::wal::record::{Body, PageRef};
use crate::wal::SyncPolicy;
use std::ops::ControlFlow;

impl Node {
    raw! {
        /// Starts a storage-level transaction; returns its id. Applications use
        /// [`Node::begin`], which wraps this in a [`crate::Txn`].
        pub fn begin_xid(&self) -> Result<u64> {
            self.poison.check()?;
            if self.txns.next_xid() >= crate::txn::clog::XID_LIMIT {
                return Err(Error::LimitExceeded(format!(
                    "transaction ids are exhausted (the commit log holds {} of them)",
                    crate::txn::clog::XID_LIMIT
                )));
            }
            Ok(self.txns.begin())
        }
    }

    raw! {
        /// The status of a transaction.
        pub fn xid_status(&self, xid: u64) -> XidStatus {
            self.clog.get(xid)
        }
    }

    raw! {
        /// Whether a tuple version is live for "latest committed state" readers: inserted by a
        /// committed transaction and not deleted by one.
        pub fn is_live(&self, h: &TupleHeader) -> bool {
            self.clog.get(h.xmin) == XidStatus::Committed
                && (h.xmax == 0
                    || h.flags & crate::storage::tuple::FLAG_LOCK_ONLY != 0
                    || self.clog.get(h.xmax) != XidStatus::Committed)
        }
    }

    raw! {
        /// Inserts a tuple version by `xid` (command `cid`) into `table` on `segment`. For a
        /// table with columns, `payload` must be an encoded row ([`crate::catalog::types::encode_row`]).
        pub fn insert(
            &self,
            xid: u64,
            cid: u32,
            segment: u16,
            table: u32,
            migration_bit: bool,
            payload: &[u8],
        ) -> Result<Tid> {
            let part = self.part(segment, table)?;
            let def = self.table_rt(table)?.def.read().clone();
            let row = if def.columns.is_empty() {
                None
            } else {
                Some(
                    crate::catalog::types::decode_row(def.column_types(), payload).ok_or_else(
                        || {
                            Error::InvalidArgument(format!(
                                "payload is not a row of table {:?}",
                                def.name
                            ))
                        },
                    )?,
                )
            };
            let natts = def.columns.len() as u16;
            let index = row.as_deref().map(|r| (&*def, r));
            self.insert_tuple(xid, cid, &part, migration_bit, natts, payload, index)
        }
    }

    /// Inserts a tuple into `part` and, given the row it encodes, adds it to the part's
    /// key indexes.
    #[expect(clippy::too_many_arguments, reason = "one tuple's every header field")]
    pub(crate) fn insert_tuple(
        &self,
        xid: u64,
        cid: u32,
        part: &Part,
        migration_bit: bool,
        natts: u16,
        payload: &[u8],
        index: Option<(&TableDef, &[crate::catalog::types::Value])>,
    ) -> Result<Tid> {
        let header = TupleHeader {
            natts,
            ..TupleHeader::new(xid, cid, migration_bit)
        };
        let tuple = build_tuple(&header, payload);
        if tuple.len() > TUPLE_BYTES_MAX {
            return Err(Error::TupleTooLarge {
                len: tuple.len(),
                max: TUPLE_BYTES_MAX,
            });
        }
        self.poison.check()?;
        let heap = &part.heap;
        let (segment, table) = (heap.segment(), heap.table());
        loop {
            let block = heap.block_for_insert(tuple.len());
            let cp = heap.page(block)?;
            let mut p = cp.page.write();
            let before = p.lsn();
            let Some(slot) = p.insert(&tuple) else {
                heap.set_free(block, p.free_space());
                continue;
            };
            let page = PageRef {
                segment,
                table,
                block,
            };
            let lsn = self.wal.append_page(xid, before, |full| {
                if full {
                    image_body(page, &p)
                } else {
                    Body::HeapInsert {
                        page,
                        slot,
                        tuple: tuple.clone(),
                    }
                }
            })?;
            p.set_lsn(lsn);
            cp.mark_dirty();
            heap.set_free(block, p.free_space());
            drop(p);
            let tid = Tid { block, slot };
            if let Some((def, row)) = index {
                part.index_row(def, row, tid);
            }
            return Ok(tid);
        }
    }

    raw! {
        /// Sets `xmax`/`cmax`/`flags` of a tuple version (delete or lock) without waiting:
        /// fails if another transaction holds the tuple. Applications use [`crate::Txn`],
        /// which waits for row locks.
        pub fn set_xmax(
            &self,
            xid: u64,
            cid: u32,
            segment: u16,
            table: u32,
            tid: Tid,
            flags_set: u16,
        ) -> Result<()> {
            let part = self.part(segment, table)?;
            match self.claim_version(xid, cid, &part, tid, flags_set)? {
                Claim::Claimed => Ok(()),
                Claim::Busy(holder) => Err(Error::RowLocked {
                    row: format!("{tid:?} of table {table} on segment {segment}"),
                    holder,
                }),
                Claim::Ended { .. } => Err(Error::InvalidArgument(format!(
                    "tuple {tid:?} is already deleted or updated"
                ))),
            }
        }
    }

    /// Claims the tuple version at `tid` for `xid`: sets xmax = `xid` (cmax `cid`;
    /// `flags` among UPDATED / LOCK_ONLY / MOVED replace the old ones) in one logged step
    /// under the page lock — only if no running transaction holds the version and no
    /// committed one ended it; otherwise it reports who does.
    pub(crate) fn claim_version(
        &self,
        xid: u64,
        cid: u32,
        part: &Part,
        tid: Tid,
        flags: u16,
    ) -> Result<Claim> {
        use crate::storage::tuple::FLAG_LOCK_ONLY;
        self.with_version(part, tid, |h| {
            let lock_only = h.flags & FLAG_LOCK_ONLY != 0;
            // Order matters: a transaction records its final status in the commit log
            // *before* it leaves the running set, so "still running?" is asked first and
            // the status read only after a "no" — it is final then. Read the other way
            // round, a holder that aborts between the two reads looks ended by a
            // committed transaction, and an UPDATE would skip the row as deleted: a lost
            // update (found reading the code; PostgreSQL asks in the same order).
            let ended_by_commit = if h.xmax == 0 {
                false
            } else if h.xmax == xid {
                !lock_only // our own update or delete; our own row lock is ours to take
            } else if self.txns.is_running(h.xmax) {
                return Ok(Err(Claim::Busy(h.xmax)));
            } else {
                // Aborted (or ended without a status, which only an aborted one can):
                // its claim never happened. A row lock ends with its holder.
                !lock_only && self.clog.get(h.xmax) == XidStatus::Committed
            };
            if ended_by_commit {
                return Ok(Err(Claim::Ended {
                    next: h.next,
                    xmax: h.xmax,
                }));
            }
            Ok(Ok(XmaxWrite {
                xid,
                cid,
                flags,
                next: None,
            }))
        })
        .map(|r| r.err().unwrap_or(Claim::Claimed))
    }

    /// An update's second step on a version `xid` has claimed ([`Node::claim_version`]):
    /// points it at its new version `next`, setting `flags` as the claim did.
    pub(crate) fn link_version(
        &self,
        xid: u64,
        cid: u32,
        part: &Part,
        tid: Tid,
        flags: u16,
        next: NextVersion,
    ) -> Result<()> {
        self.with_version(part, tid, |h| {
            assert_eq!(h.xmax, xid, "linking {tid:?}, which {xid} has not claimed");
            Ok(Ok::<_, ()>(XmaxWrite {
                xid,
                cid,
                flags,
                next: Some(next),
            }))
        })
        .map(|_| ())
    }

    /// Reads the header of the version at `tid` under its page's write lock and asks
    /// `decide` what to do: `Ok(w)` writes `w` to the header and logs it (one step, still
    /// under the lock), `Err(e)` leaves the page as it is and is returned as is.
    fn with_version<E>(
        &self,
        part: &Part,
        tid: Tid,
        decide: impl FnOnce(&TupleHeader) -> Result<std::result::Result<XmaxWrite, E>>,
    ) -> Result<std::result::Result<(), E>> {
        use crate::storage::tuple::{FLAG_LOCK_ONLY, FLAG_MOVED, FLAG_UPDATED};
        self.poison.check()?;
        let heap = &part.heap;
        let cp = heap.page(tid.block)?;
        let mut p = cp.page.write();
        let no_tuple = || {
            Error::InvalidArgument(format!(
                "no tuple at {tid:?} of table {} segment {}",
                heap.table(),
                heap.segment()
            ))
        };
        let h = heapwalk::tuple_at(heap, &p, tid.slot)?
            .ok_or_else(no_tuple)?
            .header;
        let w = match decide(&h)? {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        let flags = (h.flags & !(FLAG_UPDATED | FLAG_LOCK_ONLY | FLAG_MOVED)) | w.flags;
        let before = p.lsn();
        if !p.set_tuple_xmax(tid.slot, w.xid, w.cid, flags, w.next) {
            return Err(no_tuple());
        }
        let page = PageRef {
            segment: heap.segment(),
            table: heap.table(),
            block: tid.block,
        };
        let lsn = self.wal.append_page(w.xid, before, |full| {
            if full {
                image_body(page, &p)
            } else {
                Body::HeapSetXmax {
                    page,
                    slot: tid.slot,
                    xmax: w.xid,
                    cmax: w.cid,
                    flags,
                    next: w.next,
                }
            }
        })?;
        p.set_lsn(lsn);
        cp.mark_dirty();
        Ok(Ok(()))
    }

    raw! {
        /// Commits `xid`. Under [`SyncPolicy::EveryCommit`] it returns once the commit
        /// record is durable (sharing an fsync with concurrent commits). If the commit cannot
        /// be made durable the transaction is not committed (and the node is poisoned).
        pub fn commit_xid(&self, xid: u64) -> Result<()> {
            let r = self.commit_inner(xid);
            if r.is_err() {
                // Not durable, so not committed: waiters must see it end (as aborted).
                self.clog.set(xid, XidStatus::Aborted);
            }
            self.txns.end(xid);
            r?;
            self.maybe_checkpoint()
        }
    }

    pub(super) fn commit_inner(&self, xid: u64) -> Result<()> {
        let _gate = self.commit_gate.read();
        let lsn = self.wal.append(xid, &Body::Commit)?;
        if self.opts.sync == SyncPolicy::EveryCommit {
            let siblings = self.txns.running_count().saturating_sub(1) as u64;
            self.wal.flush_through_grouped(lsn, siblings)?;
        }
        self.clog.set(xid, XidStatus::Committed);
        Ok(())
    }

    raw! {
        /// Aborts `xid`: its changes stay on the pages but are never visible. The abort is
        /// recorded in memory even if its WAL record cannot be written (recovery aborts
        /// every transaction without a commit record anyway).
        pub fn abort_xid(&self, xid: u64) -> Result<()> {
            let r = {
                let _gate = self.commit_gate.read();
                self.wal.append(xid, &Body::Abort)
            };
            self.clog.set(xid, XidStatus::Aborted);
            self.txns.end(xid);
            r.map(|_| ())
        }
    }

    /// Ends `xid`, which wrote nothing: no WAL record (nothing on disk names it, so
    /// recovery has nothing to settle; after a crash its xid is below the recovered next
    /// xid or unused) and no commit-log status (no tuple carries it, so nobody asks).
    /// It leaves the running set without a new publication of it: see
    /// [`TxnManager::end_read_only`](crate::txn::TxnManager::end_read_only).
    pub(crate) fn end_read_only(&self, xid: u64) {
        self.txns.end_read_only(xid);
    }

    pub(super) fn maybe_checkpoint(&self) -> Result<()> {
        if self.wal.insert_lsn().saturating_sub(self.wal.redo_lsn())
            > self.opts.checkpoint_wal_bytes
        {
            if let Some(_guard) = self.checkpoint_lock.try_lock() {
                drop(_guard);
                self.checkpoint()?;
            }
        }
        Ok(())
    }

    raw! {
        /// Reads the tuple at `tid`: header and payload, whatever its visibility; `None` for
        /// an unused slot. A tuple that does not decode is [`Error::Corruption`].
        pub fn read_tuple(
            &self,
            segment: u16,
            table: u32,
            tid: Tid,
        ) -> Result<Option<(TupleHeader, Vec<u8>)>> {
            let heap = self.heap(segment, table)?;
            let cp = heap.page(tid.block)?;
            let p = cp.page.read();
            Ok(heapwalk::tuple_at(&heap, &p, tid.slot)?.map(|t| (t.header, t.payload.to_vec())))
        }
    }

    raw! {
        /// Calls `f` for every tuple version of `table` on `segment` (header and payload), in
        /// block order. Stops at the first error: an unreadable page, or a tuple that does
        /// not decode ([`crate::storage::heapwalk`]).
        pub fn for_each_tuple(
            &self,
            segment: u16,
            table: u32,
            mut f: impl FnMut(Tid, &TupleHeader, &[u8]),
        ) -> Result<()> {
            let heap = self.heap(segment, table)?;
            heapwalk::for_each(&heap, |t| {
                f(t.tid, &t.header, t.payload);
                Ok(ControlFlow::Continue(()))
            })
        }
    }

    raw! {
        /// The payloads of all live tuples of `table` on `segment` (latest committed state).
        pub fn scan_committed(&self, segment: u16, table: u32) -> Result<Vec<(Tid, Vec<u8>)>> {
            let mut out = Vec::new();
            self.for_each_tuple(segment, table, |tid, h, payload| {
                if self.is_live(h) {
                    out.push((tid, payload.to_vec()));
                }
            })?;
            Ok(out)
        }
    }
}

/// A header change [`Node::with_version`] writes and logs.
struct XmaxWrite {
    xid: u64,
    cid: u32,
    /// Among UPDATED / LOCK_ONLY / MOVED; replace the header's.
    flags: u16,
    next: Option<NextVersion>,
}

/// What [`Node::claim_version`] found.
#[derive(Debug)]
pub(crate) enum Claim {
    /// Claimed.
    Claimed,
    /// A running transaction holds it.
    Busy(u64),
    /// A committed transaction (or this one) deleted or replaced it; `next` is the
    /// newer version, if any.
    Ended {
        /// Newer version.
        next: Option<NextVersion>,
        /// The transaction that ended it.
        xmax: u64,
    },
}
