//! The per-segment index on the distribution key: key hash → tuple ids.
//!
//! It holds every tuple version of the segment's heap (live, dead, uncommitted), so a
//! lookup returns candidates that the caller filters by visibility and by comparing the
//! key columns (hashes collide). Entries are added on insert and removed when vacuum
//! prunes a version. It is not persisted: a node rebuilds it at open from the heap,
//! which `docs/BENCHMARKS.md` measures ("Index rebuild at open").

use crate::lock::{rank, Mutex};
use crate::storage::tuple::Tid;
use papaya::{Compute, Operation};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A hasher for integer keys (block numbers, key hashes): one multiply, which spreads
/// small integers over all 64 bits (hash tables index by the low bits and tag by the
/// high ones). SipHash's protection against chosen keys is not needed for keys the
/// engine makes itself.
#[derive(Default)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A `HashMap` with [`IntHasher`].
pub type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// The tuple ids under one key hash: almost always one, so that case needs no vector.
/// A value is never changed in place: an update replaces it whole (see [`KeyIndex`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tids {
    One(Tid),
    Many(Box<[Tid]>),
}

impl Tids {
    fn as_slice(&self) -> &[Tid] {
        match self {
            Tids::One(t) => std::slice::from_ref(t),
            Tids::Many(v) => v,
        }
    }

    fn from_vec(mut v: Vec<Tid>) -> Option<Tids> {
        match v.len() {
            0 => None,
            1 => v.pop().map(Tids::One),
            _ => Some(Tids::Many(v.into_boxed_slice())),
        }
    }
}

/// Key hash → tuple ids, for one table on one segment.
///
/// Readers take no lock: the map is a concurrent hash table (`papaya`) whose lookups
/// read through atomic pointers, and whose growth moves entries a few at a time, by the
/// writers, while lookups go on in the old and new tables. A value is replaced whole by
/// a compare-and-swap, so a lookup sees a key's tuple ids before or after a change,
/// never half of one, and no writer — not a preempted one, not one growing the table —
/// can hold a lookup up. (Before, the index sat under a read/write lock that every
/// insert took for writing; a writer preempted while holding or queued for it held
/// point reads for a scheduler tick, and doubling the table held them for up to 32 ms:
/// `docs/BENCHMARKS.md`, "Slow point SELECTs".)
pub struct KeyIndex {
    map: papaya::HashMap<u64, Tids, BuildHasherDefault<IntHasher>>,
    /// Number of entries (tuple ids, counted with repeats).
    entries: AtomicUsize,
    /// Set when the index may miss versions of its heap; the reason is in `why`.
    damaged: AtomicBool,
    why: Mutex<Option<String>, rank::IndexDamage>,
}

impl std::fmt::Debug for KeyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyIndex")
            .field("entries", &self.len())
            .field("damaged", &self.damaged())
            .finish()
    }
}

impl Default for KeyIndex {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl KeyIndex {
    /// An empty index with room for `capacity` key hashes before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            map: papaya::HashMap::builder()
                .capacity(capacity)
                .hasher(BuildHasherDefault::<IntHasher>::default())
                // Growth copies the whole table at once, by the writers; lookups never
                // wait for it (they read the old table until the new one is in place).
                // Incremental growth left lookups probing two tables until later writes
                // finished the copy, which halved point-get throughput after a bulk load.
                .resize_mode(papaya::ResizeMode::Blocking)
                .build(),
            entries: AtomicUsize::new(0),
            damaged: AtomicBool::new(false),
            why: Mutex::new(None),
        }
    }

    /// Makes room for `additional` more key hashes now, so that a bulk of inserts to
    /// come (a redistribution's rows arriving on a target segment) does not grow the
    /// table while lookups run. Growth would not block lookups either; this saves the
    /// writers the copying.
    pub fn reserve(&self, additional: usize) {
        self.map.pin().reserve(additional);
    }

    /// Adds `tid` under `hash`.
    ///
    /// The same tid may be under one hash twice, for a moment or for good, and must be:
    /// vacuum frees a slot under the page lock but removes the slot's entry only after
    /// releasing it, so a new version of the same key can take the slot (and add its
    /// entry) in between; vacuum's removal then takes one entry and the new version keeps
    /// the other. (Refusing the second entry here lost the new version's only entry: an
    /// UPDATE by key then missed the row. The online transfer test caught it.) A stale
    /// entry left by a vacuum racing an index build is a duplicate too. Lookups see each
    /// tid once: [`KeyIndex::for_each`] skips repeats.
    pub fn insert(&self, hash: u64, tid: Tid) {
        Self::add(&self.map.pin(), hash, tid);
        self.entries.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds every `(hash, tid)` of `entries` (as [`KeyIndex::insert`] each, under one
    /// guard): bulk loads and index builds.
    pub fn insert_many(&self, entries: &[(u64, Tid)]) {
        let map = self.map.pin();
        for &(hash, tid) in entries {
            Self::add(&map, hash, tid);
        }
        self.entries.fetch_add(entries.len(), Ordering::Relaxed);
    }

    fn add<G: papaya::Guard>(
        map: &papaya::HashMapRef<'_, u64, Tids, BuildHasherDefault<IntHasher>, G>,
        hash: u64,
        tid: Tid,
    ) {
        map.update_or_insert_with(
            hash,
            |old| {
                let mut v = Vec::with_capacity(old.as_slice().len() + 1);
                v.extend_from_slice(old.as_slice());
                v.push(tid);
                Tids::Many(v.into_boxed_slice())
            },
            || Tids::One(tid),
        );
    }

    /// Removes one entry of `tid` from under `hash` (no-op if absent).
    pub fn remove(&self, hash: u64, tid: Tid) {
        let map = self.map.pin();
        let removed = map.compute(hash, |entry| {
            let Some((_, old)) = entry else {
                return Operation::Abort(());
            };
            let tids = old.as_slice();
            let Some(i) = tids.iter().position(|t| *t == tid) else {
                return Operation::Abort(());
            };
            let mut v = tids.to_vec();
            v.swap_remove(i);
            match Tids::from_vec(v) {
                Some(t) => Operation::Insert(t),
                None => Operation::Remove,
            }
        });
        if !matches!(removed, Compute::Aborted(())) {
            self.entries.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Calls `f` once for every distinct tuple id under `hash` (an id entered twice is
    /// one version: see [`KeyIndex::insert`]). The ids are those under `hash` at one
    /// instant. `f` runs under an epoch guard, which is not a lock: it only keeps the
    /// value it reads from being freed, so `f` may read pages and writers go on.
    pub fn for_each(&self, hash: u64, mut f: impl FnMut(Tid)) {
        let map = self.map.pin();
        let Some(tids) = map.get(&hash) else {
            return;
        };
        let tids = tids.as_slice();
        for (i, t) in tids.iter().enumerate() {
            if !tids.get(..i).is_some_and(|seen| seen.contains(t)) {
                f(*t);
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry (the heap is empty: a damaged index is whole again). The
    /// caller keeps writers out (TRUNCATE holds the table's DDL lock).
    pub fn clear(&self) {
        self.map.pin().clear();
        self.entries.store(0, Ordering::Relaxed);
        *self.why.lock() = None;
        self.damaged.store(false, Ordering::Release);
    }

    /// Marks the index as possibly missing versions of its heap (an unreadable block or
    /// a tuple that does not decode stopped its build), saying why.
    pub fn mark_damaged(&self, why: String) {
        *self.why.lock() = Some(why);
        self.damaged.store(true, Ordering::Release);
    }

    /// Whether the index may miss versions: lookups must then read the heap instead.
    pub fn damaged(&self) -> bool {
        self.damaged.load(Ordering::Acquire)
    }

    /// Why the index may miss versions, if it may.
    pub fn damage(&self) -> Option<String> {
        self.why.lock().clone()
    }
}

/// A [`KeyIndex`] over one distribution key (column positions). A table has one per key
/// its rows are looked up by: the layout's, plus a redistribution target's when that
/// changes the key.
#[derive(Debug)]
pub struct KeyedIndex {
    /// The key columns the hashes are over.
    pub key: Vec<u16>,
    /// Key hash → tuple ids.
    pub map: KeyIndex,
}

impl KeyedIndex {
    /// An empty index over `key`.
    pub fn new(key: Vec<u16>) -> Self {
        Self {
            key,
            map: KeyIndex::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(block: u32, slot: u16) -> Tid {
        Tid { block, slot }
    }

    impl KeyIndex {
        fn get(&self, hash: u64) -> Vec<Tid> {
            let mut out = Vec::new();
            self.for_each(hash, |t| out.push(t));
            out
        }
    }

    #[test]
    fn a_tid_entered_twice_is_seen_once_and_survives_one_removal() {
        let ix = KeyIndex::default();
        // A version at (0,1), pruned, and a new version of the same key taking the slot
        // before the prune's removal of the old entry: two entries, one version.
        ix.insert(7, tid(0, 1));
        ix.insert(7, tid(0, 2));
        ix.insert(7, tid(0, 1));
        assert_eq!(ix.get(7), vec![tid(0, 1), tid(0, 2)]);
        // The prune's removal takes one entry; the new version keeps the other.
        ix.remove(7, tid(0, 1));
        let mut left = ix.get(7);
        left.sort_by_key(|t| (t.block, t.slot));
        assert_eq!(left, vec![tid(0, 1), tid(0, 2)]);
        ix.remove(7, tid(0, 1));
        assert_eq!(ix.get(7), vec![tid(0, 2)]);
    }

    #[test]
    fn insert_get_remove() {
        let ix = KeyIndex::default();
        ix.insert(7, tid(0, 1));
        ix.insert(7, tid(0, 2));
        ix.insert(7, tid(3, 0));
        ix.insert(9, tid(1, 1));
        assert_eq!(ix.len(), 4);
        assert_eq!(ix.get(7), vec![tid(0, 1), tid(0, 2), tid(3, 0)]);
        ix.remove(7, tid(0, 2));
        ix.remove(7, tid(5, 5));
        ix.remove(8, tid(0, 1));
        assert_eq!(ix.len(), 3);
        ix.remove(7, tid(0, 1));
        assert_eq!(ix.get(7), vec![tid(3, 0)]);
        ix.remove(7, tid(3, 0));
        assert!(ix.get(7).is_empty());
        ix.remove(9, tid(1, 1));
        assert!(ix.is_empty());
    }
}
