//! segexpand-bench: the research harness (`harness` binary; [`harness`]) and its
//! building blocks — seeded workloads ([`workload`]), latency recording ([`latency`]),
//! per-interval timelines ([`timeline`]), plots ([`plot`]) — and the pieces shared by
//! the criterion benchmarks (`benches/`) and the probe examples (`examples/`).
//! `segexpand demo` is the harness's default scenario.

pub mod harness;
pub mod latency;
pub mod out;
pub mod plot;
pub mod timeline;
pub mod workload;
