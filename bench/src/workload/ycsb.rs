//! YCSB's core workloads as seeded operation streams: A (50/50 read/update), B (95/5),
//! C (read only), E (95% short scans, 5% inserts), F (50% read, 50% read-modify-write).
//! The stream depends only on the seed, the mix, the key distribution and the starting
//! key count, so a run's operation sequence can be replayed exactly.

use super::keys::{KeyChooser, KeyDist, Rng};

/// One operation of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read the row with this key.
    Read(u64),
    /// Update the row with this key.
    Update(u64),
    /// Insert a new row with this key (the next one past the keys so far).
    Insert(u64),
    /// Scan this many rows from this key.
    Scan(u64, u32),
    /// Read, then write back, the row with this key.
    ReadModifyWrite(u64),
}

/// A YCSB core workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// 50% read, 50% update.
    A,
    /// 95% read, 5% update.
    B,
    /// 100% read.
    C,
    /// 95% scan (1-100 rows, uniform), 5% insert.
    E,
    /// 50% read, 50% read-modify-write.
    F,
}

impl Mix {
    /// The mix named `a`…`f` (case-insensitive; D is `Latest` key choice on B here).
    pub fn parse(s: &str) -> Option<Mix> {
        Some(match s.to_ascii_lowercase().as_str() {
            "a" => Mix::A,
            "b" => Mix::B,
            "c" => Mix::C,
            "e" => Mix::E,
            "f" => Mix::F,
            _ => return None,
        })
    }
}

/// A seeded stream of operations.
#[derive(Debug, Clone)]
pub struct OpStream {
    mix: Mix,
    rng: Rng,
    keys: KeyChooser,
    /// Keys `0..count` exist (inserts extend it).
    count: u64,
}

impl OpStream {
    /// A stream over `rows` existing keys.
    pub fn new(mix: Mix, dist: KeyDist, rows: u64, seed: u64) -> Self {
        Self {
            mix,
            rng: Rng::new(seed),
            keys: KeyChooser::new(dist, rows),
            count: rows.max(1),
        }
    }

    /// Keys that exist now (the starting rows plus this stream's inserts).
    pub fn key_count(&self) -> u64 {
        self.count
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        let p = self.rng.below(100);
        let key = |s: &mut Self| s.keys.next(&mut s.rng, s.count);
        match self.mix {
            Mix::A if p < 50 => Op::Read(key(self)),
            Mix::A => Op::Update(key(self)),
            Mix::B if p < 95 => Op::Read(key(self)),
            Mix::B => Op::Update(key(self)),
            Mix::C => Op::Read(key(self)),
            Mix::E if p < 95 => {
                let k = key(self);
                Op::Scan(k, 1 + self.rng.below(100) as u32)
            }
            Mix::E => {
                let k = self.count;
                self.count += 1;
                Op::Insert(k)
            }
            Mix::F if p < 50 => Op::Read(key(self)),
            Mix::F => Op::ReadModifyWrite(key(self)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_operation_sequence() {
        let run = |seed| {
            let mut s = OpStream::new(Mix::E, KeyDist::Zipfian(0.99), 10_000, seed);
            (0..5_000).map(|_| s.next_op()).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    #[test]
    fn each_mix_has_its_proportions() {
        let share = |mix, pred: fn(&Op) -> bool| {
            let mut s = OpStream::new(mix, KeyDist::Uniform, 1000, 3);
            (0..100_000).filter(|_| pred(&s.next_op())).count() as f64 / 100_000.0
        };
        let near = |x: f64, want: f64| (x - want).abs() < 0.01;
        assert!(near(share(Mix::A, |o| matches!(o, Op::Read(_))), 0.50));
        assert!(near(share(Mix::B, |o| matches!(o, Op::Update(_))), 0.05));
        assert!(near(share(Mix::C, |o| matches!(o, Op::Read(_))), 1.0));
        assert!(near(share(Mix::E, |o| matches!(o, Op::Insert(_))), 0.05));
        assert!(near(
            share(Mix::F, |o| matches!(o, Op::ReadModifyWrite(_))),
            0.50
        ));
        // Inserts take the next key; scans are 1-100 rows.
        let mut s = OpStream::new(Mix::E, KeyDist::Uniform, 1000, 5);
        let mut next = 1000;
        for _ in 0..10_000 {
            match s.next_op() {
                Op::Insert(k) => {
                    assert_eq!(k, next);
                    next += 1;
                }
                Op::Scan(k, n) => assert!(k < s.key_count() && (1..=100).contains(&n)),
                other => panic!("{other:?}"),
            }
        }
    }
}
