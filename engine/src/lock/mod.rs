//! Ranked locks: `parking_lot` mutexes and read/write locks that carry a *rank*, and in
//! checked builds panic when a thread takes them out of order.
//!
//! Every engine lock has a rank ([`rank`]; the table with what each guards is
//! `docs/ARCHITECTURE.md`, "Lock order"). A thread may take a lock only if its rank is
//! higher than the rank of every lock it already holds. Checked builds
//! (`cfg(any(debug_assertions, feature = "lock-rank"))`) keep a thread-local stack of the
//! locks held and panic, naming both locks and where each was taken, on:
//! - a blocking acquisition whose rank is lower than or equal to a held lock's (equal is
//!   allowed only for a class marked `MULTI`, whose code keeps its own order: the DDL
//!   locks that retirement takes in table-id order);
//! - a blocking acquisition of a lock the thread already holds (a recursive read can
//!   deadlock behind a queued writer).
//!
//! `try_lock`/`try_write` cannot wait, so they are not checked against the order, but the
//! lock is pushed on the stack so that what is taken under it is. A condition-variable
//! wait keeps its mutex on the stack (nothing else is taken while waiting). Nothing is
//! checked while the thread unwinds from a panic (a second panic would abort).
//!
//! Release builds without the feature compile the wrappers to the plain `parking_lot`
//! lock: the rank is a type parameter, the guards are `parking_lot`'s own, and no state
//! is kept. The engine's tests turn the feature on (a dev-dependency of the engine on
//! itself), so `cargo test --release` runs checked; `cargo build` and
//! `cargo bench -p segexpand-bench` do not.
//!
//! Call sites keep `parking_lot`'s method names (`lock`, `read`, `write`, `try_lock`,
//! `try_write`); a declaration names its rank: `Mutex<State, rank::Txns>`.

use std::marker::PhantomData;

/// True when this build checks lock ranks.
pub const CHECKED: bool = cfg!(any(debug_assertions, feature = "lock-rank"));

/// A lock class: its place in the lock order and its name in messages.
pub trait Rank: 'static {
    /// Position in the lock order: a lock may be taken only while every lock held has a
    /// lower rank.
    const RANK: u8;
    /// What the lock is, for panic messages.
    const NAME: &'static str;
    /// Whether a thread may hold several locks of this class at once (in an order the
    /// code that takes them keeps, documented in the rank table).
    const MULTI: bool = false;
}

macro_rules! ranks {
    ($($(#[$doc:meta])* $name:ident = $rank:literal, $text:literal $(, multi = $multi:literal)?;)*) => {
        /// The lock classes, in lock order (`docs/ARCHITECTURE.md` has the table).
        pub mod rank {
            $(
                $(#[$doc])*
                #[derive(Debug)]
                pub struct $name;
                impl super::Rank for $name {
                    const RANK: u8 = $rank;
                    const NAME: &'static str = $text;
                    $(const MULTI: bool = $multi;)?
                }
            )*
            /// Every class as (rank, name), in rank order.
            pub const ALL: &[(u8, &str)] = &[$(($rank, $text)),*];
        }
    };
}

ranks! {
    /// `TableRt::ddl`: statements shared, DROP/TRUNCATE/offline rewrite exclusive;
    /// retirement takes every table's in table-id order.
    TableDdl = 1, "table DDL lock", multi = true;
    /// `TableRt::gate_mx` (with `gate_cv`): where DML waits while a transition holds it off.
    DmlGate = 2, "DML gate";
    /// `TableRt::pin`: the layout pin.
    LayoutPin = 3, "layout pin";
    /// `TableRt::unique`: one stripe per hash of a unique key's values, held by a write
    /// from its uniqueness check through its insert, so that two writers of the same key
    /// cannot both find it free.
    UniqueCheck = 4, "unique-key stripe";
    /// `Node::checkpoint_lock`: one checkpoint (or DDL that must not race one) at a time.
    Checkpoint = 5, "checkpoint lock";
    /// `Node::commit_gate`: commits and catalog changes shared, a checkpoint's redo
    /// point exclusive.
    CommitGate = 6, "commit gate";
    /// `Node::catalog`.
    Catalog = 7, "catalog";
    /// `Node::tables_rt`: the run-time table map.
    Tables = 8, "table map";
    /// `TableRt::def`: the table's current definition.
    TableDef = 9, "table definition";
    /// `TableRt::parts`: the table's parts by segment.
    Parts = 10, "part map";
    /// `Part::vm`: the part's visibility map.
    Vm = 11, "visibility map";
    /// `Part::indexes`: the part's set of key indexes.
    IndexSet = 12, "key index set";
    /// `KeyIndex::why`: why a key index may miss versions (lookups read an atomic flag;
    /// this holds only the reason's text).
    IndexDamage = 13, "key index damage note";
    /// `CachedPage::page`: one heap page.
    HeapPage = 14, "heap page";
    /// `TxnManager::state` (with `ended`): running transactions and lock waits.
    Txns = 15, "transaction manager";
    /// (Rank 16 was the commit log's lock; its statuses are atomic words now, read and
    /// written without a lock.)
    /// `Heap::fsm`: free space per block; new blocks are made under it.
    Fsm = 17, "free-space map";
    /// `Heap::pages`: the page cache map.
    PageCache = 18, "page cache";
    /// `Wal::flush`: the one writer of WAL files.
    WalFlush = 19, "WAL flush lock";
    /// `Wal::inner`: the WAL insert position and buffer.
    WalInsert = 20, "WAL insert lock";
    /// `Wal::waiters` (a `std::sync::Mutex`, with `wake`): group-commit followers.
    WalWaiters = 21, "WAL waiters";
    /// `Failpoints::armed`.
    Failpoints = 22, "failpoints";
    /// `Node::flusher`: the background WAL flusher's handle.
    Flusher = 23, "flusher handle";
    /// `KeyIndex::writer`: the key index's writers (lookups take nothing); a leaf.
    IndexWrite = 24, "key index writers";
    /// `TableRt::writers` (with `writers_cv`): the transactions that have written to the
    /// table and not ended, which DROP, TRUNCATE and ADD PRIMARY KEY wait for; a leaf.
    TableWriters = 25, "table writers";
}

#[cfg(any(debug_assertions, feature = "lock-rank"))]
pub use checked::{scope, Condvar, MutexGuard, RankScope, RwLockReadGuard, RwLockWriteGuard};
#[cfg(not(any(debug_assertions, feature = "lock-rank")))]
pub use plain::{scope, Condvar, MutexGuard, RankScope, RwLockReadGuard, RwLockWriteGuard};

/// A mutex of rank `R`.
pub struct Mutex<T, R: Rank> {
    inner: parking_lot::Mutex<T>,
    rank: PhantomData<fn() -> R>,
}

/// A read/write lock of rank `R`.
pub struct RwLock<T, R: Rank> {
    inner: parking_lot::RwLock<T>,
    rank: PhantomData<fn() -> R>,
}

impl<T, R: Rank> Mutex<T, R> {
    /// A new unlocked mutex.
    pub const fn new(value: T) -> Self {
        Self {
            inner: parking_lot::Mutex::new(value),
            rank: PhantomData,
        }
    }

    #[cfg(any(debug_assertions, feature = "lock-rank"))]
    fn addr(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}

impl<T, R: Rank> RwLock<T, R> {
    /// A new unlocked read/write lock.
    pub const fn new(value: T) -> Self {
        Self {
            inner: parking_lot::RwLock::new(value),
            rank: PhantomData,
        }
    }

    /// Whether some thread holds (or is about to hold, waiting for readers to leave) the
    /// lock exclusively. For tests that stage an interleaving.
    pub fn is_locked_exclusive(&self) -> bool {
        self.inner.is_locked_exclusive()
    }

    #[cfg(any(debug_assertions, feature = "lock-rank"))]
    fn addr(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}

impl<T: Default, R: Rank> Default for Mutex<T, R> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: Default, R: Rank> Default for RwLock<T, R> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: std::fmt::Debug, R: Rank> std::fmt::Debug for Mutex<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: std::fmt::Debug, R: Rank> std::fmt::Debug for RwLock<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

/// The unchecked build: the plain `parking_lot` lock and guards.
#[cfg(not(any(debug_assertions, feature = "lock-rank")))]
mod plain {
    use super::{Mutex, Rank, RwLock};

    pub use parking_lot::{Condvar, MutexGuard, RwLockReadGuard, RwLockWriteGuard};

    impl<T, R: Rank> Mutex<T, R> {
        /// Locks, waiting as long as it takes.
        #[inline]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.inner.lock()
        }

        /// Locks if free.
        #[inline]
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.inner.try_lock()
        }
    }

    impl<T, R: Rank> RwLock<T, R> {
        /// Locks shared.
        #[inline]
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.inner.read()
        }

        /// Locks exclusively.
        #[inline]
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.inner.write()
        }

        /// Locks exclusively if free.
        #[inline]
        pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
            self.inner.try_write()
        }
    }

    /// Marks a lock of rank `R` held that is not one of these wrappers (a
    /// `std::sync::Mutex`); nothing in this build.
    #[derive(Debug)]
    pub struct RankScope;

    /// Declares that the thread is about to take `lock`, of rank `R` (see the checked
    /// build); free here.
    #[inline]
    pub fn scope<R: Rank, L: ?Sized>(_lock: &L) -> RankScope {
        RankScope
    }
}

/// The checked build: a thread-local stack of held locks.
#[cfg(any(debug_assertions, feature = "lock-rank"))]
mod checked {
    use super::{Mutex, Rank, RwLock};
    use std::cell::RefCell;
    use std::ops::{Deref, DerefMut};
    use std::panic::Location;
    use std::time::{Duration, Instant};

    struct Held {
        rank: u8,
        name: &'static str,
        addr: usize,
        at: &'static Location<'static>,
    }

    thread_local! {
        static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
    }

    /// One entry of the held stack; popped when dropped (guards may drop in any order).
    #[derive(Debug)]
    struct Token {
        addr: usize,
    }

    impl Drop for Token {
        fn drop(&mut self) {
            let _ = HELD.try_with(|h| {
                if let Ok(mut h) = h.try_borrow_mut() {
                    if let Some(i) = h.iter().rposition(|x| x.addr == self.addr) {
                        h.remove(i);
                    }
                }
            });
        }
    }

    /// Checks that the thread may take the lock at `addr` of class `R` (unless `try_`),
    /// then records it as held.
    fn acquire<R: Rank>(addr: usize, at: &'static Location<'static>, try_: bool) -> Token {
        let violation = HELD.with(|h| {
            let h = h.borrow();
            // A destructor running while the thread unwinds (a transaction rolling back,
            // say) is not checked: a second panic would abort the process.
            if try_ || std::thread::panicking() {
                return None;
            }
            if let Some(x) = h.iter().find(|x| x.addr == addr) {
                return Some(format!(
                    "lock order violation: taking the {} (rank {}) at {at}, which this \
                     thread already holds (taken at {})",
                    R::NAME,
                    R::RANK,
                    x.at
                ));
            }
            h.iter()
                .filter(|x| x.rank > R::RANK || (x.rank == R::RANK && !R::MULTI))
                .max_by_key(|x| x.rank)
                .map(|x| {
                    format!(
                        "lock order violation: taking the {} (rank {}) at {at} while holding \
                         the {} (rank {}, taken at {}); a lock may only be taken while every \
                         lock held ranks lower (docs/ARCHITECTURE.md, \"Lock order\")",
                        R::NAME,
                        R::RANK,
                        x.name,
                        x.rank,
                        x.at
                    )
                })
        });
        if let Some(msg) = violation {
            panic!("{msg}");
        }
        HELD.with(|h| {
            h.borrow_mut().push(Held {
                rank: R::RANK,
                name: R::NAME,
                addr,
                at,
            })
        });
        Token { addr }
    }

    /// A held mutex.
    #[must_use = "the lock is released when the guard is dropped"]
    pub struct MutexGuard<'a, T> {
        inner: parking_lot::MutexGuard<'a, T>,
        _held: Token,
    }

    /// A read/write lock held shared.
    #[must_use = "the lock is released when the guard is dropped"]
    pub struct RwLockReadGuard<'a, T> {
        inner: parking_lot::RwLockReadGuard<'a, T>,
        _held: Token,
    }

    /// A read/write lock held exclusively.
    #[must_use = "the lock is released when the guard is dropped"]
    pub struct RwLockWriteGuard<'a, T> {
        inner: parking_lot::RwLockWriteGuard<'a, T>,
        _held: Token,
    }

    impl<T, R: Rank> Mutex<T, R> {
        /// Locks, waiting as long as it takes; panics if the lock order forbids it.
        #[track_caller]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            let held = acquire::<R>(self.addr(), Location::caller(), false);
            MutexGuard {
                inner: self.inner.lock(),
                _held: held,
            }
        }

        /// Locks if free.
        #[track_caller]
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            let inner = self.inner.try_lock()?;
            Some(MutexGuard {
                inner,
                _held: acquire::<R>(self.addr(), Location::caller(), true),
            })
        }
    }

    impl<T, R: Rank> RwLock<T, R> {
        /// Locks shared; panics if the lock order forbids it.
        #[track_caller]
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            let held = acquire::<R>(self.addr(), Location::caller(), false);
            RwLockReadGuard {
                inner: self.inner.read(),
                _held: held,
            }
        }

        /// Locks exclusively; panics if the lock order forbids it.
        #[track_caller]
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            let held = acquire::<R>(self.addr(), Location::caller(), false);
            RwLockWriteGuard {
                inner: self.inner.write(),
                _held: held,
            }
        }

        /// Locks exclusively if free.
        #[track_caller]
        pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
            let inner = self.inner.try_write()?;
            Some(RwLockWriteGuard {
                inner,
                _held: acquire::<R>(self.addr(), Location::caller(), true),
            })
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.inner
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.inner
        }
    }

    impl<T> Deref for RwLockReadGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.inner
        }
    }

    impl<T> Deref for RwLockWriteGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.inner
        }
    }

    impl<T> DerefMut for RwLockWriteGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.inner
        }
    }

    /// A condition variable for [`Mutex`] guards. The mutex stays on the held stack while
    /// the thread waits.
    #[derive(Debug, Default)]
    pub struct Condvar(parking_lot::Condvar);

    impl Condvar {
        /// A new condition variable.
        pub const fn new() -> Self {
            Self(parking_lot::Condvar::new())
        }

        /// Waits for a notification or `timeout`.
        pub fn wait_for<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            timeout: Duration,
        ) -> parking_lot::WaitTimeoutResult {
            self.0.wait_for(&mut guard.inner, timeout)
        }

        /// Waits for a notification or `deadline`.
        pub fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            deadline: Instant,
        ) -> parking_lot::WaitTimeoutResult {
            self.0.wait_until(&mut guard.inner, deadline)
        }

        /// Wakes every waiter.
        pub fn notify_all(&self) -> usize {
            self.0.notify_all()
        }
    }

    /// A lock of some rank held that is not one of these wrappers (the WAL's
    /// `std::sync::Mutex`); popped when dropped.
    #[derive(Debug)]
    pub struct RankScope {
        _held: Token,
    }

    /// Declares that the thread is about to take `lock`, of rank `R`: checks the order as
    /// a blocking acquisition would. Keep the scope alive for as long as the lock is held.
    #[track_caller]
    pub fn scope<R: Rank, L: ?Sized>(lock: &L) -> RankScope {
        RankScope {
            _held: acquire::<R>(
                std::ptr::from_ref(lock).cast::<()>() as usize,
                Location::caller(),
                false,
            ),
        }
    }
}

#[cfg(test)]
mod tests;
