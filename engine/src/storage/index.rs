//! The per-segment index on the distribution key: key hash → tuple ids.
//!
//! It holds every tuple version of the segment's heap (live, dead, uncommitted), so a
//! lookup returns candidates that the caller filters by visibility and by comparing the
//! key columns (hashes collide). Entries are added on insert and removed when vacuum
//! prunes a version. It is not persisted: a node rebuilds it at open from the heap,
//! which `docs/BENCHMARKS.md` measures ("Index rebuild at open").

use crate::lock::{rank, Mutex};
use crate::storage::tuple::Tid;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

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

/// A slot's tuple-id word when the slot was never used: a lookup's probe ends here.
const EMPTY: u64 = 0;
/// A slot's tuple-id word after its entry was removed: probes go past it.
const GONE: u64 = 1;

fn pack(tid: Tid) -> u64 {
    ((u64::from(tid.block) << 16) | u64::from(tid.slot)) + 2
}

fn unpack(word: u64) -> Tid {
    let v = word - 2;
    Tid {
        block: (v >> 16) as u32,
        slot: (v & 0xffff) as u16,
    }
}

/// One entry: a key hash and a packed tuple id ([`EMPTY`], [`GONE`] or the id + 2).
#[derive(Default)]
struct Slot {
    hash: AtomicU64,
    tid: AtomicU64,
}

/// One generation of the open-addressing table. Published whole; a slot, once used,
/// keeps its hash for the life of the table (a removal only sets its tuple id to
/// [`GONE`]), so a reader never sees a hash from one entry with the id of another.
struct Table {
    /// log2 of the number of slots.
    bits: u32,
    slots: Box<[Slot]>,
}

impl Table {
    /// A table with room for `entries` at most half full.
    fn for_entries(entries: usize) -> Table {
        let want = entries.saturating_mul(2).max(16).next_power_of_two();
        let bits = want.trailing_zeros();
        Table {
            bits,
            slots: (0..want).map(|_| Slot::default()).collect(),
        }
    }

    /// The most slots (live or removed) it holds before a writer replaces it.
    fn limit(&self) -> usize {
        self.slots.len() / 2
    }

    /// Where the probe for `hash` starts: Fibonacci hashing, the top bits of one
    /// multiply, so keys that differ only in high bits still spread.
    fn home(&self, hash: u64) -> usize {
        (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - self.bits)) as usize
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Writes an entry into the first never-used slot of `hash`'s probe. The id is
    /// stored last, with release order: a reader that sees it sees the hash.
    fn put(&self, hash: u64, word: u64) {
        let mut i = self.home(hash);
        // The mask keeps `i` in range, and a table is never more than half used, so the
        // probe finds a never-used slot.
        while let Some(s) = self.slots.get(i) {
            if s.tid.load(Ordering::Relaxed) == EMPTY {
                s.hash.store(hash, Ordering::Relaxed);
                s.tid.store(word, Ordering::Release);
                return;
            }
            i = (i + 1) & self.mask();
        }
    }

    /// Calls `f(slot)` for each used slot of `hash`'s probe whose hash matches, until
    /// `f` returns true (found) or the probe reaches a never-used slot.
    fn probe(&self, hash: u64, mut f: impl FnMut(&Slot, u64) -> bool) {
        let mut i = self.home(hash);
        while let Some(s) = self.slots.get(i) {
            let word = s.tid.load(Ordering::Acquire);
            if word == EMPTY {
                return;
            }
            if word != GONE && s.hash.load(Ordering::Relaxed) == hash && f(s, word) {
                return;
            }
            i = (i + 1) & self.mask();
        }
    }
}

/// Counts kept by the writers, under [`KeyIndex::writer`].
#[derive(Debug, Default)]
struct Fill {
    /// Slots of the current table that are used, removed ones included.
    used: usize,
}

/// Key hash → tuple ids, for one table on one segment.
///
/// Readers take no lock. The map is an open-addressing table of atomic words (a hash and
/// a packed tuple id per slot; several slots may share a hash), published through an
/// `ArcSwap`: a lookup loads the current table and probes it, reading each slot's id
/// with acquire order. Writers take [`KeyIndex::writer`] (a leaf lock; nothing waits on
/// it but other writers) to fill a never-used slot or mark one removed. When the used
/// slots (removed ones too) would pass half the table, the writer builds a new table
/// from the live entries, twice the size they need, and publishes it; lookups that
/// loaded the old one finish there, and it is freed when the last of them is done.
/// A lookup thus sees each entry as before or after a change, and no writer — not a
/// preempted one, not one growing the table — can hold it up.
///
/// (History: a read/write lock first, which a preempted or queued writer held point
/// reads behind and whose doubling held them for up to 32 ms; then the `papaya`
/// concurrent map, which read without waiting but allocated a node per entry and made
/// a bulk load 0.68x as fast: `docs/BENCHMARKS.md`, issue 10.)
pub struct KeyIndex {
    table: ArcSwap<Table>,
    writer: Mutex<Fill, rank::IndexWrite>,
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
    /// An empty index with room for `capacity` entries before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            table: ArcSwap::from_pointee(Table::for_entries(capacity)),
            writer: Mutex::new(Fill::default()),
            entries: AtomicUsize::new(0),
            damaged: AtomicBool::new(false),
            why: Mutex::new(None),
        }
    }

    /// Makes room for `additional` more entries now, so that a bulk of inserts to come
    /// (a redistribution's rows arriving on a target segment) does not grow the table
    /// while lookups run. Growth would not block lookups either; this saves the writers
    /// the copying.
    pub fn reserve(&self, additional: usize) {
        let mut fill = self.writer.lock();
        self.make_room(&mut fill, additional);
    }

    /// Holds the writers' lock until the guard is dropped (tests of what waits on it).
    #[cfg(test)]
    pub(crate) fn hold(&self) -> impl Sized + '_ {
        self.writer.lock()
    }

    /// Ensures `additional` more slots can be used without passing the table's limit:
    /// replaces the table by one sized for its live entries plus `additional` when not.
    /// Removed slots are not copied, so a table that filled with removals is swept.
    /// Returns the table to write to.
    fn make_room(&self, fill: &mut Fill, additional: usize) -> arc_swap::Guard<Arc<Table>> {
        let table = self.table.load();
        if fill.used.saturating_add(additional) <= table.limit() {
            return table;
        }
        let live = self.entries.load(Ordering::Relaxed);
        // Twice what is needed, so the next growth is as far away as this one was.
        let next = Table::for_entries(live.saturating_add(additional).saturating_mul(2));
        for s in table.slots.iter() {
            let word = s.tid.load(Ordering::Relaxed);
            if word != EMPTY && word != GONE {
                next.put(s.hash.load(Ordering::Relaxed), word);
            }
        }
        fill.used = live;
        self.table.store(Arc::new(next));
        self.table.load()
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
        self.insert_many(&[(hash, tid)]);
    }

    /// Adds every `(hash, tid)` of `entries` (as [`KeyIndex::insert`] each, under one
    /// acquisition of the writers' lock): bulk loads and index builds.
    pub fn insert_many(&self, entries: &[(u64, Tid)]) {
        let mut fill = self.writer.lock();
        let table = self.make_room(&mut fill, entries.len());
        for &(hash, tid) in entries {
            table.put(hash, pack(tid));
        }
        fill.used += entries.len();
        self.entries.fetch_add(entries.len(), Ordering::Relaxed);
    }

    /// Removes one entry of `tid` from under `hash` (no-op if absent).
    pub fn remove(&self, hash: u64, tid: Tid) {
        let word = pack(tid);
        let _fill = self.writer.lock();
        let mut removed = false;
        self.table.load().probe(hash, |s, w| {
            if w == word {
                s.tid.store(GONE, Ordering::Release);
                removed = true;
            }
            removed
        });
        if removed {
            self.entries.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Calls `f` once for every distinct tuple id under `hash` (an id entered twice is
    /// one version: see [`KeyIndex::insert`]). The ids are those of the table that was
    /// current when the lookup began, as each slot stood when the probe read it. `f`
    /// runs while the lookup keeps that table alive, which is not a lock: `f` may read
    /// pages, and writers go on.
    pub fn for_each(&self, hash: u64, mut f: impl FnMut(Tid)) {
        let table = self.table.load();
        // Ids already given, to skip repeats: almost always none or one.
        let mut seen: [u64; 4] = [0; 4];
        let mut n_seen = 0usize;
        let mut more: Vec<u64> = Vec::new();
        table.probe(hash, |_, word| {
            let repeat =
                seen.get(..n_seen).is_some_and(|s| s.contains(&word)) || more.contains(&word);
            if !repeat {
                if let Some(free) = seen.get_mut(n_seen) {
                    *free = word;
                    n_seen += 1;
                } else {
                    more.push(word);
                }
                f(unpack(word));
            }
            false
        });
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
        let mut fill = self.writer.lock();
        self.table.store(Arc::new(Table::for_entries(0)));
        fill.used = 0;
        self.entries.store(0, Ordering::Relaxed);
        drop(fill);
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

    #[test]
    fn lookups_find_every_entry_while_a_writer_grows_the_table() {
        // A writer inserts keys 0..N one at a time (the table doubles many times) and
        // removes every third after it; readers look up keys the writer has already
        // published and must find each one that was not removed, with its one tid.
        const N: u64 = 60_000;
        let ix = KeyIndex::default();
        let published = AtomicU64::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                for k in 0..N {
                    ix.insert(k, tid(k as u32, 0));
                    if k % 3 == 2 {
                        ix.remove(k, tid(k as u32, 0));
                    }
                    published.store(k + 1, Ordering::Release);
                }
            });
            for r in 0..2u64 {
                let (ix, published) = (&ix, &published);
                s.spawn(move || {
                    let mut checked = 0u64;
                    let mut k = r;
                    while checked < 20_000 {
                        let upto = published.load(Ordering::Acquire);
                        if upto == 0 {
                            std::hint::spin_loop();
                            continue;
                        }
                        k = (k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407)) % upto;
                        let got = ix.get(k);
                        if k % 3 == 2 {
                            assert!(got.is_empty(), "removed key {k} found: {got:?}");
                        } else {
                            assert_eq!(got, vec![tid(k as u32, 0)], "key {k}");
                        }
                        checked += 1;
                    }
                });
            }
        });
        assert_eq!(ix.len(), (N as usize) - (N as usize) / 3);
    }

    #[test]
    fn removals_are_swept_when_the_table_refills_and_reserve_keeps_entries() {
        let ix = KeyIndex::with_capacity(8);
        // Far more inserts and removals than the table has slots: the removed slots
        // must be reclaimed (or the probe would never end), and what is left found.
        for round in 0..50u32 {
            for k in 0..100u64 {
                ix.insert(k, tid(round, k as u16));
            }
            for k in 0..100u64 {
                ix.remove(k, tid(round, k as u16));
            }
        }
        assert!(ix.is_empty());
        ix.insert(5, tid(9, 9));
        ix.reserve(100_000);
        assert_eq!(ix.get(5), vec![tid(9, 9)]);
        let many: Vec<(u64, Tid)> = (0..1000u64).map(|k| (k % 10, tid(k as u32, 1))).collect();
        ix.insert_many(&many);
        assert_eq!(ix.len(), 1001);
        assert_eq!(ix.get(3).len(), 100);
        ix.clear();
        assert!(ix.is_empty() && ix.get(5).is_empty());
    }

    #[test]
    fn a_tid_packs_and_unpacks_at_the_limits() {
        for t in [tid(0, 0), tid(u32::MAX, u16::MAX), tid(1, u16::MAX), tid(u32::MAX, 0)] {
            let w = pack(t);
            assert!(w != EMPTY && w != GONE);
            assert_eq!(unpack(w), t);
        }
    }
}
