//! The per-segment index on the distribution key: key hash → tuple ids.
//!
//! It holds every tuple version of the segment's heap (live, dead, uncommitted), so a
//! lookup returns candidates that the caller filters by visibility and by comparing the
//! key columns (hashes collide). Entries are added on insert and removed when vacuum
//! prunes a version. It is not persisted: a node rebuilds it at open from the heap,
//! which `docs/BENCHMARKS.md` measures ("Index rebuild at open").

use crate::tuple::Tid;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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

#[derive(Debug, Clone)]
enum Tids {
    One(Tid),
    Many(Vec<Tid>),
}

/// Key hash → tuple ids, for one table on one segment.
#[derive(Debug, Default)]
pub struct KeyIndex {
    map: IntMap<u64, Tids>,
    entries: usize,
    /// Why the index may miss versions of its heap (it could not be built from every
    /// tuple); lookups must then read the heap instead.
    damaged: Option<String>,
}

impl KeyIndex {
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
    pub fn insert(&mut self, hash: u64, tid: Tid) {
        self.entries += 1;
        match self.map.get_mut(&hash) {
            None => {
                self.map.insert(hash, Tids::One(tid));
            }
            Some(Tids::One(t)) => {
                let first = *t;
                self.map.insert(hash, Tids::Many(vec![first, tid]));
            }
            Some(Tids::Many(v)) => v.push(tid),
        }
    }

    /// Removes `tid` from under `hash` (no-op if absent).
    pub fn remove(&mut self, hash: u64, tid: Tid) {
        let empty = match self.map.get_mut(&hash) {
            Some(Tids::One(t)) if *t == tid => true,
            Some(Tids::Many(v)) => {
                if let Some(i) = v.iter().position(|t| *t == tid) {
                    v.swap_remove(i);
                    self.entries -= 1;
                }
                if let [only] = v.as_slice() {
                    let only = *only;
                    self.map.insert(hash, Tids::One(only));
                }
                false
            }
            _ => false,
        };
        if empty {
            self.map.remove(&hash);
            self.entries -= 1;
        }
    }

    /// Calls `f` once for every distinct tuple id under `hash` (an id entered twice is
    /// one version: see [`KeyIndex::insert`]).
    pub fn for_each(&self, hash: u64, mut f: impl FnMut(Tid)) {
        match self.map.get(&hash) {
            None => {}
            Some(Tids::One(t)) => f(*t),
            Some(Tids::Many(v)) => {
                for (i, t) in v.iter().enumerate() {
                    if !v.get(..i).is_some_and(|seen| seen.contains(t)) {
                        f(*t);
                    }
                }
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Removes every entry (the heap is empty: a damaged index is whole again).
    pub fn clear(&mut self) {
        self.map.clear();
        self.entries = 0;
        self.damaged = None;
    }

    /// Marks the index as possibly missing versions of its heap (an unreadable block or
    /// a tuple that does not decode stopped its build), saying why.
    pub fn mark_damaged(&mut self, why: String) {
        self.damaged = Some(why);
    }

    /// Why the index may miss versions, if it may: lookups must read the heap instead.
    pub fn damaged(&self) -> Option<&str> {
        self.damaged.as_deref()
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
    pub map: crate::lock::RwLock<KeyIndex, crate::lock::rank::KeyIndex>,
}

impl KeyedIndex {
    /// An empty index over `key`.
    pub fn new(key: Vec<u16>) -> Self {
        Self {
            key,
            map: crate::lock::RwLock::new(KeyIndex::default()),
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
        let mut ix = KeyIndex::default();
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
        let mut ix = KeyIndex::default();
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
