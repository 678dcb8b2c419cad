//! The harness's latency recorder: an HDR histogram per operation type and interval
//! (nanoseconds, 3 significant digits, 1 ns to 1 hour), and the summaries a paper
//! reports (count, p50, p99, p99.9, max). Recording is one histogram increment; a value
//! beyond the range is clamped to it and counted, never dropped.

use hdrhistogram::Histogram;

/// Highest latency recorded exactly: one hour, in nanoseconds.
pub const MAX_NS: u64 = 3_600_000_000_000;

/// Latencies of one kind of operation.
#[derive(Debug, Clone)]
pub struct Recorder {
    h: Histogram<u64>,
    /// Values above [`MAX_NS`], recorded as `MAX_NS`.
    pub clamped: u64,
}

/// A recorder's non-empty buckets (see [`Recorder::compact`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compact {
    /// (a value of the bucket, count), by value.
    buckets: Vec<(u64, u64)>,
    clamped: u64,
}

impl Compact {
    /// Adds `o`'s buckets to these (both in value order; equal values add).
    pub fn merge(&mut self, o: &Compact) {
        let mut out = Vec::with_capacity(self.buckets.len() + o.buckets.len());
        let (mut a, mut b) = (self.buckets.iter().peekable(), o.buckets.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(va, na)), Some(&&(vb, nb))) => {
                    if va == vb {
                        out.push((va, na + nb));
                        a.next();
                        b.next();
                    } else if va < vb {
                        out.push((va, na));
                        a.next();
                    } else {
                        out.push((vb, nb));
                        b.next();
                    }
                }
                (Some(&&x), None) => {
                    out.push(x);
                    a.next();
                }
                (None, Some(&&y)) => {
                    out.push(y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.buckets = out;
        self.clamped += o.clamped;
    }

    /// Bytes its buckets take.
    pub fn bytes(&self) -> usize {
        self.buckets.len() * 16
    }
}

/// What a paper reports of a latency distribution (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder (3 significant digits: 0.1%; 256 KiB).
    pub fn new() -> Self {
        Self::with_digits(3)
    }

    /// An empty recorder of 2 significant digits (1%; 37 KiB): a timeline keeps one per
    /// interval and operation, so its size matters more than the last digit.
    pub fn coarse() -> Self {
        Self::with_digits(2)
    }

    fn with_digits(digits: u8) -> Self {
        #[expect(
            clippy::expect_used,
            reason = "constant bounds that hdrhistogram accepts (1 ≤ low, high ≥ 2·low, 2 or 3 digits)"
        )]
        let h = Histogram::new_with_bounds(1, MAX_NS, digits).expect("valid histogram bounds");
        Self { h, clamped: 0 }
    }

    /// Records one latency in nanoseconds (0 counts as 1 ns).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        let v = ns.clamp(1, MAX_NS);
        if ns > MAX_NS {
            self.clamped += 1;
        }
        self.h.saturating_record(v);
    }

    /// Adds another recorder's values (an interval into the whole run's).
    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides: `add` cannot fail; saturate if it ever did.
        if self.h.add(&other.h).is_err() {
            for v in other.h.iter_recorded() {
                self.h
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.clamped += other.clamped;
    }

    /// The non-empty buckets, as (a value of the bucket, count) in value order: the
    /// recorder without its empty buckets (a 100 ms interval fills a few hundred of
    /// its 4,608), from which [`Recorder::from_compact`] rebuilds it exactly.
    pub fn compact(&self) -> Compact {
        Compact {
            buckets: self
                .h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
            clamped: self.clamped,
        }
    }

    /// A 2-digit recorder holding what `c` holds.
    pub fn from_compact(c: &Compact) -> Self {
        let mut r = Self::coarse();
        for &(v, n) in &c.buckets {
            r.h.saturating_record_n(v, n);
        }
        r.clamped = c.clamped;
        r
    }

    /// Empties it (the start of the next interval).
    pub fn reset(&mut self) {
        self.h.reset();
        self.clamped = 0;
    }

    /// The summary (all zero when empty).
    pub fn summary(&self) -> Summary {
        if self.h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.h.len(),
            p50: self.h.value_at_quantile(0.50),
            p99: self.h.value_at_quantile(0.99),
            p999: self.h.value_at_quantile(0.999),
            max: self.h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// Within HDR's 3 significant digits (0.1%) of `want`.
    fn close(got: u64, want: u64) -> bool {
        (got as f64 - want as f64).abs() <= want as f64 * 0.001 + 1.0
    }

    #[test]
    fn known_inputs_give_known_percentiles() {
        let mut r = Recorder::new();
        // 1..=100,000 µs, each once: p50 = 50 ms, p99 = 99 ms, p99.9 = 99.9 ms.
        for us in 1..=100_000u64 {
            r.record(us * 1_000);
        }
        let s = r.summary();
        assert_eq!(s.count, 100_000);
        assert!(close(s.p50, 50_000_000), "{s:?}");
        assert!(close(s.p99, 99_000_000), "{s:?}");
        assert!(close(s.p999, 99_900_000), "{s:?}");
        assert!(close(s.max, 100_000_000), "{s:?}");
        // A bimodal input: 990 fast, 10 slow — p99 is fast, p99.9 slow.
        let mut b = Recorder::new();
        for _ in 0..990 {
            b.record(1_000);
        }
        for _ in 0..10 {
            b.record(5_000_000);
        }
        let s = b.summary();
        assert!(close(s.p50, 1_000) && close(s.p99, 1_000), "{s:?}");
        assert!(close(s.p999, 5_000_000) && close(s.max, 5_000_000), "{s:?}");
    }

    #[test]
    fn the_compact_form_rebuilds_the_same_recorder_and_merges() {
        let (mut a, mut b) = (Recorder::coarse(), Recorder::coarse());
        for us in 1..=5_000u64 {
            a.record(us * 997);
            if us % 3 == 0 {
                b.record(us * 1_013);
            }
        }
        let (ca, cb) = (a.compact(), b.compact());
        // 5,000 values spread over 1-5 ms fill 796 of the 4,608 buckets.
        assert!(ca.bytes() < 37_000 / 2, "{} bytes", ca.bytes());
        assert_eq!(Recorder::from_compact(&ca).summary(), a.summary());
        let mut m = ca.clone();
        m.merge(&cb);
        a.merge(&b);
        assert_eq!(Recorder::from_compact(&m).summary(), a.summary());
        assert_eq!(
            Recorder::from_compact(&Compact::default()).summary(),
            Summary::default()
        );
    }

    #[test]
    fn merge_reset_empty_and_clamping() {
        let (mut a, mut b) = (Recorder::new(), Recorder::new());
        a.record(10);
        b.record(20);
        b.record(u64::MAX);
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 3);
        assert_eq!(a.clamped, 1);
        assert!(close(s.max, MAX_NS));
        a.reset();
        assert_eq!(a.summary(), Summary::default());
        a.record(0);
        assert_eq!(a.summary().count, 1);
    }
}
