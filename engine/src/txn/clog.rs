//! The commit log: two bits of status per transaction id.
//!
//! Kept in memory, persisted inside the control file at every checkpoint and rebuilt past
//! the checkpoint from Commit/Abort WAL records. Encoding in `docs/format.md`.
//!
//! Readers take no lock: the statuses live in atomic 64-bit words (32 transactions a
//! word), in chunks that are allocated once, on first use, and never move, so a status
//! read is one atomic load however many commits run (issue 10: point SELECTs waited on
//! the lock every commit took). A word's bits are the persisted bytes read as
//! little-endian: xid `x` is bits `2*(x%32)` of word `x/32`, which is bits `2*(x%4)` of
//! byte `x/4`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Status of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XidStatus {
    /// Running, or unknown (and then aborted after recovery).
    InProgress,
    /// Committed.
    Committed,
    /// Aborted.
    Aborted,
}

/// The bootstrap transaction id: always committed.
pub const BOOTSTRAP_XID: u64 = 1;
/// The first id handed to a user transaction.
pub const FIRST_XID: u64 = 2;

/// Transactions per word.
const XIDS_PER_WORD: u64 = 32;
/// Words per chunk (512 KiB, 2 M transactions).
const CHUNK_WORDS: usize = 1 << 16;
/// Chunks at most (the directory itself takes 24 bytes a chunk).
const CHUNKS_MAX: usize = 1 << 15;
/// The highest transaction id the commit log can hold, plus one (about 68.7 G).
pub const XID_LIMIT: u64 = (CHUNKS_MAX * CHUNK_WORDS) as u64 * XIDS_PER_WORD;

const _: () = assert!(XID_LIMIT > 60_000_000_000);

type Chunk = Box<[AtomicU64]>;

/// Two bits per xid.
pub struct Clog {
    chunks: Box<[OnceLock<Chunk>]>,
}

impl std::fmt::Debug for Clog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.chunks.iter().filter(|c| c.get().is_some()).count();
        f.debug_struct("Clog").field("chunks", &used).finish()
    }
}

impl Default for Clog {
    fn default() -> Self {
        Self {
            chunks: (0..CHUNKS_MAX).map(|_| OnceLock::new()).collect(),
        }
    }
}

/// (chunk, word in chunk, bit shift) of `xid`, if the log can hold it.
fn place(xid: u64) -> Option<(usize, usize, u64)> {
    let word = usize::try_from(xid / XIDS_PER_WORD).ok()?;
    let chunk = word / CHUNK_WORDS;
    (chunk < CHUNKS_MAX).then_some((chunk, word % CHUNK_WORDS, 2 * (xid % XIDS_PER_WORD)))
}

impl Clog {
    /// A commit log from its persisted bytes (bytes past what it can hold are ignored:
    /// they cannot be nonzero, since no such xid was ever handed out).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        let clog = Self::default();
        for (w, word) in bytes.chunks(8).enumerate() {
            let mut le = [0u8; 8];
            for (d, s) in le.iter_mut().zip(word) {
                *d = *s;
            }
            let v = u64::from_le_bytes(le);
            if v != 0 {
                if let Some(slot) = clog.word(w, true) {
                    slot.store(v, Ordering::Release);
                }
            }
        }
        clog
    }

    /// The word `w` (allocating its chunk when `alloc`).
    fn word(&self, w: usize, alloc: bool) -> Option<&AtomicU64> {
        let cell = self.chunks.get(w / CHUNK_WORDS)?;
        let chunk = if alloc {
            cell.get_or_init(|| (0..CHUNK_WORDS).map(|_| AtomicU64::new(0)).collect())
        } else {
            cell.get()?
        };
        chunk.get(w % CHUNK_WORDS)
    }

    /// Its bytes, for persisting (trailing zero bytes left out).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Chunks are allocated as statuses are set, not necessarily in order (a chunk
        // whose transactions are all still running has none): a gap is zeros.
        let last = self.chunks.iter().rposition(|c| c.get().is_some());
        let mut out = Vec::new();
        for cell in self.chunks.iter().take(last.map_or(0, |l| l + 1)) {
            match cell.get() {
                Some(chunk) => {
                    for w in chunk.iter() {
                        out.extend_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
                    }
                }
                None => out.resize(out.len() + CHUNK_WORDS * 8, 0),
            }
        }
        let len = out.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        out.truncate(len);
        out
    }

    /// The status of `xid` (one atomic load; no lock).
    pub fn get(&self, xid: u64) -> XidStatus {
        if xid == BOOTSTRAP_XID {
            return XidStatus::Committed;
        }
        let Some((c, w, shift)) = place(xid) else {
            return XidStatus::InProgress;
        };
        let word = self
            .chunks
            .get(c)
            .and_then(OnceLock::get)
            .and_then(|chunk| chunk.get(w))
            .map_or(0, |a| a.load(Ordering::Acquire));
        match (word >> shift) & 0b11 {
            0b01 => XidStatus::Committed,
            0b10 => XidStatus::Aborted,
            _ => XidStatus::InProgress,
        }
    }

    /// Records the final status of `xid`. Panics past [`XID_LIMIT`]: transaction ids are
    /// refused before that (`Node::begin_xid`), so reaching it is a broken invariant.
    pub fn set(&self, xid: u64, status: XidStatus) {
        let code: u64 = match status {
            XidStatus::InProgress => 0,
            XidStatus::Committed => 0b01,
            XidStatus::Aborted => 0b10,
        };
        let Some((c, w, shift)) = place(xid) else {
            panic!("transaction id {xid} beyond the commit log's limit {XID_LIMIT}");
        };
        let Some(word) = self.word(c * CHUNK_WORDS + w, true) else {
            panic!("transaction id {xid} beyond the commit log's limit {XID_LIMIT}");
        };
        // Other xids of the word change concurrently: update only ours.
        let mask = 0b11 << shift;
        let _ = word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            Some((v & !mask) | (code << shift))
        });
    }

    /// Marks every xid in `[FIRST_XID, below)` still in progress as aborted: after a
    /// crash nothing is running. Returns how many were aborted.
    pub fn abort_in_progress(&self, below: u64) -> u64 {
        let mut n = 0;
        for x in FIRST_XID..below {
            if self.get(x) == XidStatus::InProgress {
                self.set(x, XidStatus::Aborted);
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words are the persisted bytes read as little-endian, both ways.
    #[test]
    fn bytes_round_trip_in_the_persisted_layout() {
        let c = Clog::default();
        c.set(2, XidStatus::Committed);
        c.set(3, XidStatus::Aborted);
        c.set(33, XidStatus::Committed);
        // Byte 0: xid 2 at bits 4-5 (01), xid 3 at bits 6-7 (10); byte 8: xid 33 at 2-3.
        let b = c.to_bytes();
        assert_eq!(b.len(), 9);
        assert_eq!(b[0], 0b1001_0000);
        assert_eq!(b[8], 0b0000_0100);
        let d = Clog::from_bytes(b.clone());
        assert_eq!(d.to_bytes(), b);
        assert_eq!(d.get(2), XidStatus::Committed);
        assert_eq!(d.get(3), XidStatus::Aborted);
        assert_eq!(d.get(33), XidStatus::Committed);
        assert_eq!(d.get(4), XidStatus::InProgress);
        assert_eq!(d.get(1), XidStatus::Committed);
        assert_eq!(d.get(u64::MAX), XidStatus::InProgress);
    }

    /// A status in a later chunk persists even when an earlier chunk was never
    /// allocated (its transactions all running at the checkpoint).
    #[test]
    fn a_later_chunk_persists_across_a_gap() {
        let c = Clog::default();
        let far = 3 * CHUNK_WORDS as u64 * XIDS_PER_WORD + 5;
        c.set(far, XidStatus::Committed);
        let d = Clog::from_bytes(c.to_bytes());
        assert_eq!(d.get(far), XidStatus::Committed);
        assert_eq!(d.get(FIRST_XID), XidStatus::InProgress);
    }

    /// Neighbours in one word set from many threads at once keep every status.
    #[test]
    fn concurrent_sets_in_one_word_keep_every_status() {
        let c = Clog::default();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let c = &c;
                s.spawn(move || {
                    for x in (FIRST_XID..10_000).filter(|x| x % 4 == t) {
                        let st = if x % 3 == 0 {
                            XidStatus::Aborted
                        } else {
                            XidStatus::Committed
                        };
                        c.set(x, st);
                    }
                });
            }
        });
        for x in FIRST_XID..10_000 {
            let want = if x % 3 == 0 {
                XidStatus::Aborted
            } else {
                XidStatus::Committed
            };
            assert_eq!(c.get(x), want, "xid {x}");
        }
    }
}
