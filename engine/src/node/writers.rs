//! A table's open writers: the transactions that have written to it and not ended.
//! DROP, TRUNCATE and ADD PRIMARY KEY wait for them (PostgreSQL's table locks, reduced to
//! what MVCC leaves to lock): a row a transaction inserted must not vanish under it when
//! it commits, and a key must not be declared unique while a writer may still commit a
//! duplicate. A DDL statement that waits holds new writers off, so it is not starved.

use super::TableRt;

use crate::error::{Error, Result};
use crate::lock::{rank, Condvar, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// held: the DDL statement is waiting for it. `cancel` (a client's cancel request)
    /// ends the wait with [`Error::Canceled`].
    pub(crate) fn enlist(
        &self,
        xid: u64,
        timeout: Duration,
        cancel: Option<&AtomicBool>,
    ) -> Result<()> {
        let t0 = Instant::now();
        let mut g = self.state.lock();
        while g.ddl_waiting > 0 && !g.xids.contains(&xid) {
            if cancel.is_some_and(|c| c.load(Ordering::Acquire)) {
                return Err(Error::Canceled(format!(
                    "while transaction {xid} waited for DDL on its table"
                )));
            }
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
    /// `me` is a writer. Each wait for a writer goes through `wait(holder, time left)`:
    /// the caller's transaction waits for the holder's in the transaction manager's
    /// wait-for graph, so a cycle of DDL statements each waiting for the other's
    /// transaction is a deadlock (40P01), and a cancel request ends it. The returned
    /// guard lets writers in again when dropped, so the caller keeps it until its change
    /// is in place.
    pub(crate) fn drain(
        &self,
        me: Option<u64>,
        timeout: Duration,
        wait: &dyn Fn(u64, Duration) -> Result<()>,
    ) -> Result<DrainGuard<'_>> {
        let t0 = Instant::now();
        self.state.lock().ddl_waiting += 1;
        let guard = DrainGuard { set: self };
        loop {
            let holder = {
                let g = self.state.lock();
                g.xids.iter().copied().find(|x| Some(*x) != me)
            };
            let Some(holder) = holder else {
                return Ok(guard);
            };
            let left = timeout.saturating_sub(t0.elapsed());
            if left.is_zero() {
                return Err(Error::LockTimeout {
                    xid: me.unwrap_or(0),
                    holder,
                    waited_ms: t0.elapsed().as_millis() as u64,
                });
            }
            // (On an error the guard, dropped, lets writers in again.)
            wait(holder, left)?;
            // The holder has ended; it leaves the list just after.
            let mut g = self.state.lock();
            if g.xids.contains(&holder) {
                self.cv.wait_for(&mut g, Duration::from_millis(1));
            }
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
