//! A table's open writers: the transactions that have written to it and not ended.
//! DROP, TRUNCATE and ADD PRIMARY KEY wait for them (PostgreSQL's table locks, reduced to
//! what MVCC leaves to lock): a row a transaction inserted must not vanish under it when
//! it commits, and a key must not be declared unique while a writer may still commit a
//! duplicate. A DDL statement that waits holds new writers off, so it is not starved.

use super::TableRt;

use crate::error::{Error, Result};
use crate::lock::{rank, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The open writers of one table (`TableRt::writers`).
#[derive(Default)]
pub(crate) struct Writers {
    /// Transactions that ran DML on the table and have not ended.
    xids: Vec<u64>,
    /// DDL statements waiting for the writers: new writers wait while this is not 0.
    ddl_waiting: u32,
}

/// The lock and wake-up of [`Writers`].
#[derive(Default)]
pub(crate) struct WriterSet {
    state: Mutex<Writers, rank::TableWriters>,
    cv: Condvar,
}

/// The slice a wait sleeps at most before checking its deadline again.
const WAIT_SLICE: Duration = Duration::from_millis(50);

impl WriterSet {
    /// Registers `xid` as a writer, first waiting (up to `timeout`) while a DDL
    /// statement waits for the table's writers. A transaction already registered is not
    /// held: the DDL statement is waiting for it.
    pub(crate) fn enlist(&self, xid: u64, timeout: Duration) -> Result<()> {
        let t0 = Instant::now();
        let mut g = self.state.lock();
        while g.ddl_waiting > 0 && !g.xids.contains(&xid) {
            if t0.elapsed() >= timeout {
                return Err(Error::LockTimeout {
                    xid,
                    holder: 0,
                    waited_ms: t0.elapsed().as_millis() as u64,
                });
            }
            self.cv.wait_for(&mut g, WAIT_SLICE);
        }
        if !g.xids.contains(&xid) {
            g.xids.push(xid);
        }
        Ok(())
    }

    /// Removes `xid` (its transaction ended) and wakes waiting DDL.
    pub(crate) fn delist(&self, xid: u64) {
        let mut g = self.state.lock();
        g.xids.retain(|x| *x != xid);
        drop(g);
        self.cv.notify_all();
    }

    /// Holds new writers off and waits (up to `timeout`) until no transaction but
    /// `except` is a writer. The returned guard lets writers in again when dropped, so
    /// the caller keeps it until its change is in place.
    pub(crate) fn drain(&self, except: Option<u64>, timeout: Duration) -> Result<DrainGuard<'_>> {
        let t0 = Instant::now();
        let mut g = self.state.lock();
        g.ddl_waiting += 1;
        loop {
            let holder = g.xids.iter().copied().find(|x| Some(*x) != except);
            let Some(holder) = holder else {
                return Ok(DrainGuard { set: self });
            };
            if t0.elapsed() >= timeout {
                g.ddl_waiting -= 1;
                drop(g);
                self.cv.notify_all();
                return Err(Error::LockTimeout {
                    xid: except.unwrap_or(0),
                    holder,
                    waited_ms: t0.elapsed().as_millis() as u64,
                });
            }
            self.cv.wait_for(&mut g, WAIT_SLICE);
        }
    }
}

/// Held by a DDL statement that drained a table's writers: new writers wait until it is
/// dropped.
pub(crate) struct DrainGuard<'a> {
    set: &'a WriterSet,
}

impl Drop for DrainGuard<'_> {
    fn drop(&mut self) {
        let mut g = self.set.state.lock();
        g.ddl_waiting = g.ddl_waiting.saturating_sub(1);
        drop(g);
        self.set.cv.notify_all();
    }
}

impl TableRt {
    /// The stripe lock of a unique key's hash ([`rank::UniqueCheck`]).
    pub(crate) fn unique_stripe(
        &self,
        hash: u64,
    ) -> crate::lock::MutexGuard<'_, ()> {
        let i = (hash % UNIQUE_STRIPES as u64) as usize;
        match self.unique.get(i) {
            Some(m) => m.lock(),
            None => unreachable!("stripe {i} of {UNIQUE_STRIPES}"),
        }
    }
}

/// How many stripe locks a table's unique checks spread over.
pub(crate) const UNIQUE_STRIPES: usize = 64;

/// A table's unique-check stripes.
pub(crate) fn unique_stripes() -> Vec<Mutex<(), rank::UniqueCheck>> {
    (0..UNIQUE_STRIPES).map(|_| Mutex::new(())).collect()
}
