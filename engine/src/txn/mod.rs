//! Transaction ids, snapshots, and waiting for row locks.
//!
//! The manager keeps the set of running transactions. A snapshot (one per statement under
//! read committed) is `(xmin, xmax, running xids)`: a transaction's effects are visible to
//! it when the transaction committed and was not running when the snapshot was taken.
//! Each running transaction also records the `xmin` of its latest snapshot, so vacuum's
//! horizon (the oldest xid any snapshot may still treat as running) is exact.
//!
//! Taking a snapshot takes no lock. `end` (and recovery's `advance_next_xid`) change the
//! running set under the manager's mutex and then *publish* it: an immutable `(xmax,
//! running xids, their snapshot slots)` swapped in atomically (`arc-swap`). A statement
//! loads the latest publication — a few atomic operations — so a committer preempted
//! while it holds the mutex holds up no reader (DESIGN invariant 6; `docs/BENCHMARKS.md`,
//! "Slow point SELECTs").
//!
//! `begin` does not publish (a publication's store costs a walk over every thread's
//! reader slots in `arc-swap`; publishing at begin and end made a begin-read-rollback
//! loop 0.66x as fast as the locked snapshot had been). A snapshot is still exact:
//! - an xid below the publication's `xmax` and not in its running list had ended when
//!   it was published, and every commit publishes before it is acknowledged, so a
//!   statement sees every commit that finished before it began;
//! - an xid at or above `xmax` began after the publication and is treated as running;
//!   if it has since committed, its `end` published a newer set, which a statement
//!   starting after that commit loads;
//! - the transaction's own xid may be above `xmax`: its own changes are recognised by
//!   xid and command id before the running list is consulted.
//!
//! Why the horizon stays exact without the lock: each running transaction's slot holds
//! the `xmin` of its newest snapshot, and `begin` sets it, under the mutex, to the lower
//! of the oldest running xid and the latest publication's `xmin`. Publications'
//! `xmin`s never go down (the oldest running xid only rises, and so does `xmax`), and a
//! snapshot loads that publication or a newer one, so every snapshot's `xmin` is at or
//! above the slot; a snapshot raises the slot *after* loading its publication. A
//! horizon computed in between reads the lower, older value: it can only be too low
//! (keeping a version longer), never too high. A transaction that began after the
//! latest publication is not in it, so its snapshots cannot find its slot to raise it
//! until some transaction ends and publishes again: its slot stays at the begin value,
//! which again only keeps versions longer.
//!
//! Row locks live in tuple headers (xmax); what lives here is the waiting: a writer that
//! finds a row held by a running transaction waits for that transaction to end. Every
//! wait is recorded in a wait-for graph, checked for a cycle before each sleep: a cycle
//! is a deadlock and the transaction that would close it gets [`Error::Deadlock`]. A wait
//! longer than the lock timeout gets [`Error::LockTimeout`].

pub mod clog;

use crate::error::{Error, Result};
use crate::lock::{rank, Condvar, Mutex};
use crate::storage::tuple::{TupleHeader, FLAG_LOCK_ONLY};
use crate::txn::clog::{Clog, XidStatus, BOOTSTRAP_XID};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    /// Running xid → the xmin of its latest snapshot (at begin: the oldest running xid).
    running: BTreeMap<u64, Arc<AtomicU64>>,
    /// Waiting xid → the xid it waits for.
    waits_for: HashMap<u64, u64>,
    /// The `xmin` of the latest publication (`min(oldest running, xmax)` then).
    published_xmin: u64,
}

/// The running set as of one `begin` or `end`, read by snapshots without a lock.
#[derive(Debug, Default)]
struct Published {
    /// The next xid then.
    xmax: u64,
    /// The running xids, sorted.
    xids: Arc<[u64]>,
    /// Their snapshot slots, in the same order.
    slots: Box<[Arc<AtomicU64>]>,
}

/// The running transactions.
#[derive(Debug)]
pub struct TxnManager {
    state: Mutex<State, rank::Txns>,
    ended: Condvar,
    next_xid: AtomicU64,
    published: ArcSwap<Published>,
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
    /// Transactions running when the snapshot was taken (sorted; may include `xid`).
    pub running: Arc<[u64]>,
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
            state: Mutex::new(State {
                published_xmin: next_xid,
                ..State::default()
            }),
            ended: Condvar::new(),
            next_xid: AtomicU64::new(next_xid),
            published: ArcSwap::from_pointee(Published {
                xmax: next_xid,
                ..Published::default()
            }),
        }
    }

    /// Publishes the running set for snapshots. The caller holds the state lock, so
    /// publications follow one another in the order of the changes.
    fn publish(&self, st: &mut State) {
        let xmax = self.next_xid.load(Ordering::Acquire);
        st.published_xmin = st.running.keys().next().map_or(xmax, |&x| x.min(xmax));
        self.published.store(Arc::new(Published {
            xmax,
            xids: st.running.keys().copied().collect(),
            slots: st.running.values().cloned().collect(),
        }));
    }

    /// The next xid to be handed out.
    pub fn next_xid(&self) -> u64 {
        self.next_xid.load(Ordering::Acquire)
    }

    /// Raises the next xid to at least `xid` (recovery).
    pub fn advance_next_xid(&self, xid: u64) {
        let mut st = self.state.lock();
        self.next_xid.fetch_max(xid, Ordering::AcqRel);
        self.publish(&mut st);
    }

    /// Starts a transaction: a new xid, now running. It does not publish: see the
    /// module header for why snapshots stay correct without the new xid in them, and
    /// why its slot starts at the latest publication's `xmin`.
    pub fn begin(&self) -> u64 {
        let mut st = self.state.lock();
        let xid = self.next_xid.fetch_add(1, Ordering::AcqRel);
        let oldest = st.running.keys().next().copied().unwrap_or(xid);
        let slot = oldest.min(st.published_xmin);
        st.running.insert(xid, Arc::new(AtomicU64::new(slot)));
        xid
    }

    /// Ends a transaction (after its commit-log status is set) and wakes its waiters.
    pub fn end(&self, xid: u64) {
        let mut st = self.state.lock();
        st.running.remove(&xid);
        st.waits_for.remove(&xid);
        self.publish(&mut st);
        drop(st);
        self.ended.notify_all();
    }

    /// Ends a transaction that wrote nothing. It leaves the running set but the
    /// publication is not renewed, so snapshots may still list it as running until the
    /// next `end`: that hides nothing (it has no effects to hide) and only keeps their
    /// `xmin`, and with it the vacuum horizon, lower for a while. Nobody waits for it (it
    /// holds no row lock), but waiters are woken as for `end`.
    pub fn end_read_only(&self, xid: u64) {
        let mut st = self.state.lock();
        st.running.remove(&xid);
        st.waits_for.remove(&xid);
        drop(st);
        self.ended.notify_all();
    }

    /// Holds the manager's lock, as `begin`, `end` and lock waits do, until the guard
    /// is dropped (tests of what waits on it).
    #[cfg(test)]
    pub(crate) fn hold(&self) -> impl Sized + '_ {
        self.state.lock()
    }

    /// Number of running transactions.
    pub fn running_count(&self) -> usize {
        self.state.lock().running.len()
    }

    /// Whether `xid` is running.
    pub fn is_running(&self, xid: u64) -> bool {
        self.state.lock().running.contains_key(&xid)
    }

    /// A snapshot for `xid` at command `cid`, recorded as `xid`'s latest. Takes no
    /// lock (see the module header for why the horizon stays exact).
    pub fn snapshot(&self, xid: u64, cid: u32) -> Snapshot {
        let p = self.published.load();
        let xmax = p.xmax;
        let xmin = p.xids.first().copied().unwrap_or(xmax).min(xmax);
        if let Some(slot) = p.xids.binary_search(&xid).ok().and_then(|i| p.slots.get(i)) {
            slot.fetch_max(xmin, Ordering::AcqRel);
        }
        Snapshot {
            xid,
            cid,
            xmin,
            xmax,
            running: p.xids.clone(),
        }
    }

    /// The oldest xid some snapshot may still see as running: versions deleted by
    /// transactions that committed below it are invisible to every snapshot.
    pub fn horizon(&self) -> u64 {
        let st = self.state.lock();
        let next = self.next_xid.load(Ordering::Acquire);
        st.running
            .iter()
            .map(|(x, s)| (*x).min(s.load(Ordering::Acquire)))
            .min()
            .unwrap_or(next)
            .min(next)
    }

    /// Waits until `holder` ends. Fails with [`Error::Deadlock`] if `holder` waits
    /// (directly or through others) for `me`, and with [`Error::LockTimeout`] after
    /// `timeout`.
    pub fn wait_for(&self, me: u64, holder: u64, timeout: Duration) -> Result<()> {
        self.wait_for_or_cancel(me, holder, timeout, None)
    }

    /// [`TxnManager::wait_for`], and gives up with [`Error::Canceled`] once `cancel` is
    /// set (checked at least every [`CANCEL_POLL`]).
    pub fn wait_for_or_cancel(
        &self,
        me: u64,
        holder: u64,
        timeout: Duration,
        cancel: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<()> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut st = self.state.lock();
        loop {
            if !st.running.contains_key(&holder) {
                st.waits_for.remove(&me);
                return Ok(());
            }
            if cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Acquire)) {
                st.waits_for.remove(&me);
                return Err(Error::Canceled(format!(
                    "while transaction {me} waited for transaction {holder}"
                )));
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
            let until = match cancel {
                Some(_) => deadline.min(Instant::now() + CANCEL_POLL),
                None => deadline,
            };
            if self.ended.wait_until(&mut st, until).timed_out()
                && Instant::now() >= deadline
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

/// How often a lock wait that can be cancelled looks at its cancel flag.
pub const CANCEL_POLL: Duration = Duration::from_millis(20);

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
    fn transactions_begun_since_the_last_publication_are_seen_exactly_when_committed() {
        // begin publishes nothing: b and c are not in any publication when c snapshots.
        let clog = Clog::default();
        let m = TxnManager::new(20);
        let a = m.begin();
        m.end(a); // published: xmax 21, nobody running
        let b = m.begin();
        let c = m.begin();
        let s = m.snapshot(c, 0);
        assert!(!s.sees(&header(b, 0), &clog), "b is running");
        assert!(m.snapshot(c, 1).sees(&TupleHeader::new(c, 0, false), &clog), "own insert");
        // b commits: its end publishes. A version deleted by b is still needed by c's
        // current statement (its snapshot is from before b's commit): the horizon must not
        // pass b, although c was in no publication when that snapshot was taken.
        let s = m.snapshot(c, 2);
        clog.set(b, XidStatus::Committed);
        m.end(b);
        assert!(!s.sees(&header(b, 0), &clog));
        assert!(s.sees(&header(BOOTSTRAP_XID, b), &clog));
        assert!(m.horizon() <= b, "horizon {} passed b = {b}", m.horizon());
        // c's next statement sees b's commit, and lets the horizon pass b.
        assert!(m.snapshot(c, 3).sees(&header(b, 0), &clog));
        assert!(m.horizon() > b);
        m.end(c);
        assert_eq!(m.horizon(), m.next_xid());
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
