//! Transaction ids, snapshots, and waiting for row locks.
//!
//! The manager keeps the set of running transactions. A snapshot (one per statement under
//! read committed) is `(xmin, xmax, running xids)`: a transaction's effects are visible to
//! it when the transaction committed and was not running when the snapshot was taken.
//! Each running transaction also records the `xmin` of its latest snapshot, so vacuum's
//! horizon (the oldest xid any snapshot may still treat as running) is exact.
//!
//! Row locks live in tuple headers (xmax); what lives here is the waiting: a writer that
//! finds a row held by a running transaction waits for that transaction to end. Every
//! wait is recorded in a wait-for graph, checked for a cycle before each sleep: a cycle
//! is a deadlock and the transaction that would close it gets [`Error::Deadlock`]. A wait
//! longer than the lock timeout gets [`Error::LockTimeout`].

use crate::clog::{Clog, XidStatus, BOOTSTRAP_XID};
use crate::error::{Error, Result};
use crate::lock::{rank, Condvar, Mutex};
use crate::tuple::{TupleHeader, FLAG_LOCK_ONLY};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// "No snapshot taken yet" in the running set.
const NO_SNAPSHOT: u64 = u64::MAX;

#[derive(Debug, Default)]
struct State {
    /// Running xid → xmin of its latest snapshot (`NO_SNAPSHOT` before the first).
    running: BTreeMap<u64, u64>,
    /// Waiting xid → the xid it waits for.
    waits_for: HashMap<u64, u64>,
}

/// The running transactions.
#[derive(Debug)]
pub struct TxnManager {
    state: Mutex<State, rank::Txns>,
    ended: Condvar,
    next_xid: AtomicU64,
}

/// What a statement sees: transactions that committed before it began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The transaction taking it (its own changes are visible by command id).
    pub xid: u64,
    /// The current command id: own changes of earlier commands are visible.
    pub cid: u32,
    /// Every xid below this had ended or is in `running`.
    pub xmin: u64,
    /// No xid at or above this is visible.
    pub xmax: u64,
    /// Transactions running when the snapshot was taken (sorted).
    pub running: Vec<u64>,
}

impl Snapshot {
    /// Whether `xid`'s effects are visible: it committed before the snapshot was taken.
    pub fn committed_before(&self, xid: u64, clog: &Clog) -> bool {
        if xid == BOOTSTRAP_XID {
            return true;
        }
        if xid >= self.xmax || (xid >= self.xmin && self.running.binary_search(&xid).is_ok()) {
            return false;
        }
        clog.get(xid) == XidStatus::Committed
    }

    /// Whether this snapshot sees the tuple version with header `h`.
    pub fn sees(&self, h: &TupleHeader, clog: &Clog) -> bool {
        let inserted = if h.xmin == self.xid {
            h.cmin < self.cid
        } else {
            self.committed_before(h.xmin, clog)
        };
        if !inserted {
            return false;
        }
        if h.xmax == 0 || h.flags & FLAG_LOCK_ONLY != 0 {
            return true;
        }
        if h.xmax == self.xid {
            return h.cmax >= self.cid;
        }
        !self.committed_before(h.xmax, clog)
    }
}

impl TxnManager {
    /// A manager whose next transaction id is `next_xid`.
    pub fn new(next_xid: u64) -> Self {
        Self {
            state: Mutex::new(State::default()),
            ended: Condvar::new(),
            next_xid: AtomicU64::new(next_xid),
        }
    }

    /// The next xid to be handed out.
    pub fn next_xid(&self) -> u64 {
        self.next_xid.load(Ordering::Acquire)
    }

    /// Raises the next xid to at least `xid` (recovery).
    pub fn advance_next_xid(&self, xid: u64) {
        self.next_xid.fetch_max(xid, Ordering::AcqRel);
    }

    /// Starts a transaction: a new xid, now running.
    pub fn begin(&self) -> u64 {
        let mut st = self.state.lock();
        let xid = self.next_xid.fetch_add(1, Ordering::AcqRel);
        st.running.insert(xid, NO_SNAPSHOT);
        xid
    }

    /// Ends a transaction (after its commit-log status is set) and wakes its waiters.
    pub fn end(&self, xid: u64) {
        let mut st = self.state.lock();
        st.running.remove(&xid);
        st.waits_for.remove(&xid);
        drop(st);
        self.ended.notify_all();
    }

    /// Number of running transactions.
    pub fn running_count(&self) -> usize {
        self.state.lock().running.len()
    }

    /// Whether `xid` is running.
    pub fn is_running(&self, xid: u64) -> bool {
        self.state.lock().running.contains_key(&xid)
    }

    /// A snapshot for `xid` at command `cid`, recorded as `xid`'s latest.
    pub fn snapshot(&self, xid: u64, cid: u32) -> Snapshot {
        let mut st = self.state.lock();
        let xmax = self.next_xid.load(Ordering::Acquire);
        let running: Vec<u64> = st.running.keys().copied().filter(|x| *x != xid).collect();
        let xmin = st.running.keys().next().copied().unwrap_or(xmax).min(xmax);
        if let Some(s) = st.running.get_mut(&xid) {
            *s = xmin;
        }
        Snapshot {
            xid,
            cid,
            xmin,
            xmax,
            running,
        }
    }

    /// The oldest xid some snapshot may still see as running: versions deleted by
    /// transactions that committed below it are invisible to every snapshot.
    pub fn horizon(&self) -> u64 {
        let st = self.state.lock();
        let next = self.next_xid.load(Ordering::Acquire);
        st.running
            .iter()
            .map(|(x, s)| (*x).min(*s))
            .min()
            .unwrap_or(next)
            .min(next)
    }

    /// Waits until `holder` ends. Fails with [`Error::Deadlock`] if `holder` waits
    /// (directly or through others) for `me`, and with [`Error::LockTimeout`] after
    /// `timeout`.
    pub fn wait_for(&self, me: u64, holder: u64, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut st = self.state.lock();
        loop {
            if !st.running.contains_key(&holder) {
                st.waits_for.remove(&me);
                return Ok(());
            }
            let mut cur = holder;
            for _ in 0..=st.waits_for.len() {
                match st.waits_for.get(&cur) {
                    Some(&next) if next == me => {
                        st.waits_for.remove(&me);
                        return Err(Error::Deadlock { xid: me, holder });
                    }
                    Some(&next) => cur = next,
                    None => break,
                }
            }
            st.waits_for.insert(me, holder);
            if self.ended.wait_until(&mut st, deadline).timed_out()
                && st.running.contains_key(&holder)
            {
                st.waits_for.remove(&me);
                return Err(Error::LockTimeout {
                    xid: me,
                    holder,
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn header(xmin: u64, xmax: u64) -> TupleHeader {
        TupleHeader {
            xmax,
            ..TupleHeader::new(xmin, 0, false)
        }
    }

    #[test]
    fn snapshots_see_only_what_committed_before_them() {
        let clog = Clog::default();
        let m = TxnManager::new(2);
        let a = m.begin();
        let b = m.begin();
        let s = m.snapshot(b, 0);
        clog.set(a, XidStatus::Committed);
        m.end(a);
        // a committed after s was taken: still invisible to s, visible to a new one.
        assert!(!s.sees(&header(a, 0), &clog));
        assert!(m.snapshot(b, 0).sees(&header(a, 0), &clog));
        // Deleted by a: s still sees the row, a new snapshot does not.
        assert!(s.sees(&header(BOOTSTRAP_XID, a), &clog));
        assert!(!m.snapshot(b, 0).sees(&header(BOOTSTRAP_XID, a), &clog));
        // A lock-only xmax hides nothing.
        let locked = TupleHeader {
            flags: FLAG_LOCK_ONLY,
            ..header(BOOTSTRAP_XID, a)
        };
        assert!(m.snapshot(b, 0).sees(&locked, &clog));
        // Own changes: visible from the next command on.
        let own = TupleHeader::new(b, 3, false);
        assert!(!m.snapshot(b, 3).sees(&own, &clog));
        assert!(m.snapshot(b, 4).sees(&own, &clog));
    }

    #[test]
    fn horizon_is_held_by_the_oldest_snapshot_not_the_oldest_xid() {
        let m = TxnManager::new(10);
        let a = m.begin(); // 10
        let b = m.begin(); // 11
        let _ = m.snapshot(b, 0); // b's snapshot has xmin 10 (a running)
        m.end(a);
        assert_eq!(m.horizon(), 10, "b's snapshot still treats 10 as running");
        let _ = m.snapshot(b, 1);
        assert_eq!(m.horizon(), 11);
        m.end(b);
        assert_eq!(m.horizon(), 12);
    }

    #[test]
    fn a_cycle_of_waits_is_a_deadlock_and_a_long_wait_times_out() {
        let m = Arc::new(TxnManager::new(2));
        let a = m.begin();
        let b = m.begin();
        let m2 = m.clone();
        let waiter = std::thread::spawn(move || m2.wait_for(a, b, Duration::from_secs(30)));
        while !m.state.lock().waits_for.contains_key(&a) {
            std::thread::yield_now();
        }
        let e = m.wait_for(b, a, Duration::from_secs(30)).unwrap_err();
        assert!(matches!(e, Error::Deadlock { xid, holder } if xid == b && holder == a));
        m.end(b);
        waiter.join().unwrap().unwrap();
        let c = m.begin();
        let e = m.wait_for(c, a, Duration::from_millis(20)).unwrap_err();
        assert!(matches!(e, Error::LockTimeout { .. }), "{e}");
    }
}
