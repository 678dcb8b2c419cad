//! The table API: typed tables hash-distributed over a node's segments, read and written
//! through MVCC transactions with row locks.
//!
//! ```
//! use segexpand_engine::{Node, NodeOptions, TableSpec, Type, Value};
//! let dir = tempfile::tempdir().unwrap();
//! let node = Node::create_dir(dir.path(), 4, NodeOptions::default()).unwrap();
//! node.create_table(
//!     &TableSpec::new("accounts")
//!         .not_null("id", Type::Int8)
//!         .column("owner", Type::Varchar(40))
//!         .not_null("balance", Type::Numeric)
//!         .distributed_by(&["id"]),
//! )
//! .unwrap();
//!
//! let mut tx = node.begin().unwrap();
//! tx.insert("accounts", vec![Value::Int8(1), Value::Text("ann".into()), Value::Numeric("10.50".into())]).unwrap();
//! tx.insert("accounts", vec![Value::Int8(2), Value::Null, Value::Numeric("3".into())]).unwrap();
//! tx.commit().unwrap();
//!
//! // Point lookup: reads only the segment the key hashes to.
//! let mut tx = node.begin().unwrap();
//! let rows = tx.get("accounts", &[Value::Int8(1)]).unwrap();
//! assert_eq!(rows[0][2], Value::Numeric("10.5".into()));
//!
//! // UPDATE accounts SET owner = 'bob' WHERE id = 2
//! let n = tx
//!     .update("accounts", &[Value::Int8(2)], |row| {
//!         let mut row = row.to_vec();
//!         row[1] = Value::Text("bob".into());
//!         row
//!     })
//!     .unwrap();
//! assert_eq!(n, 1);
//! // DELETE FROM accounts WHERE id = 1
//! assert_eq!(tx.delete("accounts", &[Value::Int8(1)]).unwrap(), 1);
//! tx.commit().unwrap();
//!
//! // A scan with a predicate, over every segment.
//! let mut tx = node.begin().unwrap();
//! let named = tx.scan("accounts", Some(&|r: &[Value]| r[1] != Value::Null)).unwrap();
//! assert_eq!(named.len(), 1);
//! tx.rollback().unwrap();
//!
//! // Bulk load: one transaction, whole pages at a time; durable when it returns.
//! let loaded = node
//!     .bulk_load("accounts", (10..1010).map(|i| vec![Value::Int8(i), Value::Null, Value::Numeric("0".into())]))
//!     .unwrap();
//! assert_eq!(loaded, 1000);
//! node.close().unwrap();
//! ```

use crate::catalog::types::Value;
use crate::catalog::TableDef;
use crate::error::{Error, Result};
use crate::node::{Node, Part, TableRt};
use crate::storage::tuple::Tid;
use crate::txn::Snapshot;
use std::sync::atomic::Ordering;
use std::sync::Arc;

mod cursor;
mod ddl;
mod handle;
mod load;
mod read;
mod spec;
mod unique;
mod write;
pub use cursor::{Cursor, RowFilter, ScanOptions, BATCH_ROWS_DEFAULT};
pub use handle::{TableHandle, TableRef};
pub use spec::TableSpec;

pub use crate::catalog::types::Row;

/// A WHERE clause: true for the rows a statement is about.
pub type Predicate<'a> = &'a dyn Fn(&[Value]) -> bool;

/// A transaction. Every statement (each method call) reads a fresh snapshot: read
/// committed. Writers lock the rows they change and wait for rows other writers hold;
/// readers never wait. After any failed statement the transaction can only roll back.
/// Dropped without [`Txn::commit`], it rolls back.
///
/// The handle owns its node (an `Arc`) and is `Send`: a server session can keep it across
/// `.await`s and hand it between threads, and a C handle can own it.
pub struct Txn {
    node: Arc<Node>,
    xid: u64,
    cid: u32,
    failed: Option<String>,
    /// Set by a scan cursor whose batch failed (cursors hold no borrow to set `failed`).
    cursor_failed: Arc<std::sync::OnceLock<String>>,
    done: bool,
    /// Whether a DML statement ran (and so may have written). A transaction that only
    /// read ends without a WAL record, a commit-log status or a new publication of the
    /// running set ([`Node::end_read_only`]).
    wrote: bool,
    waits: std::cell::Cell<u64>,
    /// Tables this transaction ran DML on: it is one of their writers until it ends, so
    /// DROP, TRUNCATE and ADD PRIMARY KEY wait for it (`node/writers.rs`).
    writing: Vec<Arc<TableRt>>,
    /// Set by another thread to cancel the running statement's waits
    /// ([`Txn::set_cancel_flag`]).
    cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl std::fmt::Debug for Txn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn").field("xid", &self.xid).finish()
    }
}

/// What a statement works on: the table, held against DROP/TRUNCATE while it runs.
struct Stmt<'r> {
    rt: &'r Arc<TableRt>,
    def: Arc<TableDef>,
    snap: Snapshot,
    /// A DML statement's layout pin; given up while it waits for a row lock.
    pin: std::cell::RefCell<Option<crate::lock::RwLockReadGuard<'r, ()>>>,
}

impl Stmt<'_> {
    fn part(&self, segment: u16) -> Result<Arc<Part>> {
        self.rt.parts.read().get(&segment).cloned().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "table {:?} has no part on segment {segment}",
                self.def.name
            ))
        })
    }

    /// Segments a scan must read: those of the layout and of a redistribution target.
    fn scan_segments(&self) -> u16 {
        let target = self.def.target().map_or(0, |t| t.segments);
        self.def.layout.segments.max(target)
    }
}

/// A row version found by a statement: where it is and what it holds.
struct Found {
    segment: u16,
    tid: Tid,
    row: Row,
}

impl Node {
    /// Starts a transaction.
    pub fn begin(self: &Arc<Self>) -> Result<Txn> {
        Ok(Txn {
            node: self.clone(),
            xid: self.begin_xid()?,
            cid: 0,
            failed: None,
            cursor_failed: Arc::default(),
            done: false,
            wrote: false,
            waits: std::cell::Cell::new(0),
            writing: Vec::new(),
            cancel: None,
        })
    }
}

impl Txn {
    /// The transaction id.
    pub fn xid(&self) -> u64 {
        self.xid
    }

    /// A flag another thread sets to cancel this transaction's statements: a statement
    /// waiting for a row lock or for a conflicting writer of a unique key gives up with
    /// [`Error::Canceled`] (57014), and the transaction fails as after any error. The
    /// owner clears the flag between statements.
    pub fn set_cancel_flag(&mut self, flag: Arc<std::sync::atomic::AtomicBool>) {
        self.cancel = Some(flag);
    }

    /// Waits for transaction `holder` to end, as this transaction: bounded by the lock
    /// timeout, broken by a deadlock or by the cancel flag.
    fn wait_for_xid(&self, holder: u64) -> Result<()> {
        self.waits.set(self.waits.get() + 1);
        self.node.txns.wait_for_or_cancel(
            self.xid,
            holder,
            self.node.options().lock_timeout,
            self.cancel.as_deref(),
        )
    }

    /// Times a statement of this transaction waited: for a row lock another transaction
    /// held, or for its table's layout pin while a redistribution step held DML. SELECT
    /// statements never wait, so a read-only transaction always reports 0.
    pub fn lock_waits(&self) -> u64 {
        self.waits.get()
    }

    /// Runs one statement on `table`: checks the transaction is usable, holds the table
    /// against DROP/TRUNCATE, takes the statement's snapshot, and on error marks the
    /// transaction failed.
    ///
    /// A DML statement (`dml`) also pins the table's layout while it runs, so that a
    /// redistribution's start, cancel or flip cannot change it underneath (they wait,
    /// within a cap, for the pins). A SELECT takes no pin: it reads the definition and
    /// then its snapshot, and if the definition changed in between it reads both again,
    /// so that the segments it reads always hold every row its snapshot can see.
    fn statement<T>(
        &mut self,
        table: &dyn TableRef,
        dml: bool,
        f: impl FnOnce(&mut Self, &Stmt<'_>) -> Result<T>,
    ) -> Result<T> {
        self.take_cursor_failure();
        if let Some(cause) = &self.failed {
            return Err(Error::TxnAborted {
                xid: self.xid,
                cause: cause.clone(),
            });
        }
        let r = (|| {
            let rt = table.resolve(&self.node)?.0;
            // A writer registers before it takes the DDL lock: a DROP waiting for the
            // table's writers holds new ones off here, not while they hold the lock.
            if dml && !self.writing.iter().any(|w| Arc::ptr_eq(w, &rt)) {
                rt.writers
                    .enlist(
                        self.xid,
                        self.node.options().lock_timeout,
                        self.cancel.as_deref(),
                    )?;
                self.writing.push(rt.clone());
            }
            let _ddl = rt.ddl.read();
            if rt.dropped.load(Ordering::Acquire) {
                return Err(Error::NoSuchTable(rt.def.read().name.clone()));
            }
            self.wrote |= dml;
            let pin = dml.then(|| self.pin(&rt));
            let stmt = loop {
                let def = rt.def.read().clone();
                let snap = self.node.txns.snapshot(self.xid, self.cid);
                if Arc::ptr_eq(&def, &rt.def.read()) {
                    break Stmt {
                        rt: &rt,
                        def,
                        snap,
                        pin: std::cell::RefCell::new(pin),
                    };
                }
            };
            let r = f(self, &stmt);
            self.cid = self.cid.checked_add(1).ok_or_else(|| {
                Error::LimitExceeded("more than 2^32 statements in one transaction".into())
            })?;
            r
        })();
        if let Err(e) = &r {
            self.failed = Some(e.to_string());
        }
        r
    }

    /// Takes the layout pin of `rt`, counting a wait if a redistribution step holds it.
    fn pin<'r>(&self, rt: &'r TableRt) -> crate::lock::RwLockReadGuard<'r, ()> {
        let (guard, waited) = rt.pin();
        if waited {
            self.waits.set(self.waits.get() + 1);
        }
        guard
    }

    /// A scan cursor's failed batch fails the transaction, as a failed statement does.
    fn take_cursor_failure(&mut self) {
        if self.failed.is_none() {
            self.failed = self.cursor_failed.get().cloned();
        }
    }

    /// Commits. If an earlier statement failed, rolls back instead and says why.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.take_cursor_failure();
        if let Some(cause) = self.failed.take() {
            self.end_aborted()?;
            return Err(Error::TxnAborted {
                xid: self.xid,
                cause,
            });
        }
        if !self.wrote {
            self.node.end_read_only(self.xid);
            return Ok(());
        }
        self.node.commit_xid(self.xid)
    }

    /// Rolls back.
    pub fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.end_aborted()
    }

    fn end_aborted(&self) -> Result<()> {
        if self.wrote {
            self.node.abort_xid(self.xid)
        } else {
            self.node.end_read_only(self.xid);
            Ok(())
        }
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.end_aborted() {
                log::warn!("rolling back dropped transaction {}: {e}", self.xid);
            }
        }
        // Ended (committed, rolled back, or just now): no longer a writer of anything.
        for rt in self.writing.drain(..) {
            rt.writers.delist(self.xid);
        }
    }
}
