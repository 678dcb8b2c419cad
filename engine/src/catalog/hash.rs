//! Distribution hashing: a 64-bit hash per key value, combined across the key columns,
//! then mapped to a segment by **jump consistent hash** (Lamping & Veach 2014) — or, for
//! comparison, by the legacy `hash mod N`.
//!
//! Jump hash is why online expansion is cheap: growing from N to M segments moves exactly
//! the keys whose bucket changes, (M−N)/M of them in expectation, and every key that moves
//! lands on a *new* segment; none moves between old ones. Modulo placement, by contrast,
//! keeps a key in place only when `h mod N == h mod M`, so most keys move (4 → 6 moves
//! two thirds of them), many between old segments. The tests show both.
//!
//! Equal values hash equally across the integer widths (`int2 5`, `int4 5` and `int8 5`),
//! `char(n)` ignores trailing spaces, and `float8` treats `-0.0` as `0.0` and every NaN as
//! one NaN, so that values the SQL layer calls equal always land on one segment. Golden
//! values pin all of it (`tests` below): a change here would silently misplace rows.

/// How a key hash becomes a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// Jump consistent hash (Greenplum 6 and later; the default).
    Jump,
    /// `hash mod segments` (Greenplum before 6; kept as a baseline).
    Modulo,
}

/// The segment (`0..segments`) for a key hash. `segments` must be at least 1.
pub fn segment_for(hash: u64, segments: u32, placement: Placement) -> u32 {
    debug_assert!(segments >= 1, "a layout has at least one segment");
    let n = segments.max(1);
    match placement {
        Placement::Jump => jump_consistent_hash(hash, n),
        Placement::Modulo => (hash % u64::from(n)) as u32,
    }
}

/// Jump consistent hash: the bucket in `0..buckets` for `key`.
///
/// Each step draws the next bucket index at which the key would jump, using a 64-bit
/// linear congruential generator seeded by the key; the last jump below `buckets` wins.
pub fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let mut bucket: i64 = -1;
    let mut next: i64 = 0;
    while next < i64::from(buckets) {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let r = ((key >> 33) + 1) as f64;
        next = ((bucket + 1) as f64 * ((1u64 << 31) as f64 / r)) as i64;
    }
    bucket.max(0) as u32
}

/// Where a version of a randomly distributed table goes when the table moves from
/// `from` segments to `to` (both counts of the layouts' segments `0..n`). `identity` is
/// a stable number for the version (its place: segment, block, slot), so a revisit
/// decides the same. A version on a segment the target keeps stays unless the target
/// grows: then it moves to a new segment exactly when jump hashing over `to` buckets
/// puts its identity there, which happens for (to − from)/to of the versions, spread
/// evenly over the new segments — so every segment ends with 1/to of the rows, and no
/// row moves between two old segments. A version on a segment the target drops goes to
/// `jump(identity, to)`.
pub fn random_destination(segment: u16, from: u16, to: u16, identity: u64) -> u16 {
    let to32 = u32::from(to.max(1));
    let key = mix64(identity);
    if segment >= to {
        return jump_consistent_hash(key, to32) as u16;
    }
    if to > from {
        let j = jump_consistent_hash(key, to32) as u16;
        if j >= from {
            return j;
        }
    }
    segment
}

/// The identity [`random_destination`] uses for the version at (segment, block, slot)
/// in the phase of `epoch`. The epoch is part of it so each redistribution draws anew:
/// with the place alone, a row that stayed in one 4 → 5 expansion would stay in every
/// later one (the same jump), and an expansion after a shrink back moved only the rows
/// the shrink had moved (4% instead of 20%). Within a phase the epoch is fixed, so a
/// revisit decides the same.
pub fn version_identity(segment: u16, block: u32, slot: u16, epoch: u32) -> u64 {
    ((u64::from(segment) << 48) | (u64::from(block) << 16) | u64::from(slot))
        ^ u64::from(epoch).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The murmur3 64-bit finalizer: a bijective mix of all input bits into all output bits.
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

const NULL_HASH: u64 = 0x6e75_6c6c_6e75_6c6c; // "nullnull"
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Accumulates the hash of a distribution key, one column value at a time, in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHasher {
    h: u64,
    columns: u32,
}

impl Default for KeyHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyHasher {
    /// An empty key.
    pub fn new() -> Self {
        Self { h: 0, columns: 0 }
    }

    fn push(&mut self, v: u64) -> &mut Self {
        // Order-dependent combine: (a, b) and (b, a) hash differently.
        self.h = (self.h.rotate_left(5) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.columns += 1;
        self
    }

    /// A NULL value (of any type).
    pub fn null(&mut self) -> &mut Self {
        self.push(NULL_HASH)
    }

    /// An integer of any width (int2, int4, int8), a date (days) or a timestamp
    /// (microseconds): equal numbers hash equally whatever their width.
    pub fn int(&mut self, v: i64) -> &mut Self {
        self.push(mix64(v as u64))
    }

    /// A boolean.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.push(mix64(u64::from(v) ^ 0xb001))
    }

    /// A float8: `-0.0` hashes as `0.0`, and all NaNs as one NaN.
    pub fn float(&mut self, v: f64) -> &mut Self {
        let canonical = if v == 0.0 {
            0.0f64
        } else if v.is_nan() {
            f64::NAN
        } else {
            v
        };
        self.push(mix64(canonical.to_bits() ^ 0xf10a7))
    }

    /// Text or varchar: the UTF-8 bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let mut h = FNV_OFFSET;
        for b in v {
            h ^= u64::from(*b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        self.push(mix64(h))
    }

    /// char(n): trailing spaces do not count (SQL's blank-padded comparison).
    pub fn bpchar(&mut self, v: &str) -> &mut Self {
        self.bytes(v.trim_end_matches(' ').as_bytes())
    }

    /// The key's hash. A key of zero columns (random distribution) hashes as 0.
    pub fn finish(&self) -> u64 {
        if self.columns == 0 {
            0
        } else {
            mix64(self.h ^ u64::from(self.columns))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from an independent Python transcription of the paper's
    /// algorithm (Lamping & Veach 2014, Figure 1).
    #[test]
    fn jump_hash_golden_values() {
        let ns = [1, 2, 4, 6, 16, 100, 1024];
        let cases: [(u64, [u32; 7]); 6] = [
            (0x0, [0, 0, 0, 0, 0, 0, 0]),
            (0x1, [0, 0, 0, 0, 6, 55, 549]),
            (0x2, [0, 0, 3, 3, 15, 62, 338]),
            (0xdead_beef, [0, 1, 3, 5, 5, 87, 285]),
            (0x0123_4567_89ab_cdef, [0, 0, 0, 0, 13, 57, 194]),
            (u64::MAX, [0, 1, 2, 2, 10, 92, 313]),
        ];
        for (key, want) in cases {
            let got: Vec<u32> = ns.iter().map(|n| jump_consistent_hash(key, *n)).collect();
            assert_eq!(got, want, "key {key:#x}");
        }
    }

    /// The hash of the key that `f` builds.
    fn key_of(f: &dyn Fn(&mut KeyHasher)) -> u64 {
        let mut k = KeyHasher::new();
        f(&mut k);
        k.finish()
    }

    #[test]
    fn key_hash_golden_values() {
        let got = [
            key_of(&|k| {
                k.int(42);
            }),
            key_of(&|k| {
                k.bytes(b"alice");
            }),
            key_of(&|k| {
                k.int(7).bytes(b"x");
            }),
            key_of(&|k| {
                k.null();
            }),
            key_of(&|k| {
                k.float(1.5);
            }),
            key_of(&|k| {
                k.bool(true);
            }),
        ];
        let want: [u64; 6] = GOLDEN_KEY_HASHES;
        assert_eq!(got, want, "{got:#018x?}");
        // Placement of those keys on 4 segments, both ways.
        let jump: Vec<u32> = got
            .iter()
            .map(|h| segment_for(*h, 4, Placement::Jump))
            .collect();
        let modulo: Vec<u32> = got
            .iter()
            .map(|h| segment_for(*h, 4, Placement::Modulo))
            .collect();
        assert_eq!(jump, [0, 2, 2, 2, 3, 3]);
        assert_eq!(modulo, [0, 3, 1, 3, 3, 1]);
    }

    /// Cross-checked with an independent Python transcription of this module.
    const GOLDEN_KEY_HASHES: [u64; 6] = [
        0x2785_87ae_f5bc_2908, // int 42
        0x7127_26ad_3993_0a83, // text 'alice'
        0xb806_4108_4370_2d31, // (int 7, text 'x')
        0x58b7_79b8_46d2_fedb, // NULL
        0x8fda_0d54_36ac_584f, // float8 1.5
        0x4ad2_8183_7e9a_5db5, // true
    ];

    #[test]
    fn equal_values_hash_equally() {
        assert_eq!(
            key_of(&|k| {
                k.int(i64::from(5i16));
            }),
            key_of(&|k| {
                k.int(5);
            })
        );
        assert_eq!(
            key_of(&|k| {
                k.float(-0.0);
            }),
            key_of(&|k| {
                k.float(0.0);
            })
        );
        assert_eq!(
            key_of(&|k| {
                k.float(f64::NAN);
            }),
            key_of(&|k| {
                k.float(-f64::NAN);
            })
        );
        assert_eq!(
            key_of(&|k| {
                k.bpchar("ab  ");
            }),
            key_of(&|k| {
                k.bpchar("ab");
            })
        );
        assert_ne!(
            key_of(&|k| {
                k.int(1).int(2);
            }),
            key_of(&|k| {
                k.int(2).int(1);
            })
        );
        assert_ne!(
            key_of(&|k| {
                k.null();
            }),
            key_of(&|k| {
                k.int(0);
            })
        );
    }

    fn key(i: u64) -> u64 {
        let mut k = KeyHasher::new();
        k.int(i as i64);
        k.finish()
    }

    /// N → M with jump hash moves (M−N)/M of the keys within 1 %, and a key that moves
    /// always lands on a new segment — never from one old segment to another.
    #[test]
    fn jump_moves_only_the_expected_fraction_and_only_to_new_segments() {
        for (n, m) in [(4u32, 6u32), (4, 5), (8, 12), (16, 17), (6, 4), (3, 10)] {
            let keys = 100_000u64;
            let mut moved = 0u64;
            for i in 0..keys {
                let h = key(i);
                let (a, b) = (
                    segment_for(h, n, Placement::Jump),
                    segment_for(h, m, Placement::Jump),
                );
                if a != b {
                    moved += 1;
                    if m > n {
                        assert!(
                            b >= n,
                            "{n}->{m}: key {i} moved between old segments {a}->{b}"
                        );
                    } else {
                        assert!(
                            a >= m,
                            "{n}->{m}: key {i} left a surviving segment {a}->{b}"
                        );
                    }
                }
            }
            let frac = moved as f64 / keys as f64;
            let expect = f64::from(m.abs_diff(n)) / f64::from(m.max(n));
            assert!(
                (frac - expect).abs() <= 0.01,
                "{n}->{m}: moved {frac:.4}, expected {expect:.4}"
            );
        }
    }

    /// The baseline the product improves on: modulo placement moves far more.
    #[test]
    fn modulo_moves_most_keys() {
        let moved = (0..100_000u64)
            .filter(|i| {
                let h = key(*i);
                segment_for(h, 4, Placement::Modulo) != segment_for(h, 6, Placement::Modulo)
            })
            .count();
        assert!(moved > 60_000, "modulo 4->6 moved only {moved}");
    }
}
