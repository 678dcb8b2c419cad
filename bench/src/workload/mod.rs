//! The harness's workloads: seeded key choice ([`keys`]) and YCSB's operation mixes
//! ([`ycsb`]). Everything here is deterministic from a seed.

pub mod keys;
pub mod ycsb;
