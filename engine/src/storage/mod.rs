//! Storage: what one segment keeps of one table — 8 KiB pages of tuples, the heap file
//! they live in (with its page cache and free-space map), the visibility map, the key
//! index, and the one walk over a heap's tuples that every reader uses.
//!
//! Storage knows nothing of tables, transactions or the WAL's records: a heap holds
//! bytes, a tuple header holds xids, and whoever writes a page logs it first.

pub mod heap;
pub mod heapwalk;
pub mod index;
pub mod page;
pub mod tuple;
pub mod vm;
