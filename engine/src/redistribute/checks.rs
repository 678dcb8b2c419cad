//! The redistribution invariants checked on a live table (DESIGN.md, invariants 3 and 4):
//! for tests, the demo's verification and tools.

use super::mover::settled_dead;

use crate::error::Result;
use crate::node::{Node, Part};
use crate::storage::heapwalk;
use std::sync::Arc;

impl Node {
    /// Checks DESIGN.md's redistribution invariants on `table` and returns what is wrong
    /// (empty when all hold); for tests, the demo's verification and tools:
    /// - every committed live version carrying the bit new versions get lies on its
    ///   segment in the layout new versions go to, and every other committed live
    ///   version on its segment in the other layout (so when stable, invariant 4: every
    ///   live row on `h_L(key)` with the current bit);
    /// - a block whose VM bit is set holds no live version with the old bit (invariant 3).
    ///
    /// A tuple that does not decode is an [`crate::Error::Corruption`], as for every
    /// reader (the one heap walk), not a problem in the list.
    pub fn check_placement(&self, table: &str) -> Result<Vec<String>> {
        let rt = self.table_rt_by_name(table)?;
        let def = rt.def.read().clone();
        let (write, write_bit) = def.write_layout();
        let other = match &def.redistribution {
            Some(r) if !r.cancelling => &def.layout,
            Some(r) => &r.target,
            None => &def.layout,
        };
        let mut problems = Vec::new();
        let parts: Vec<(u16, Arc<Part>)> = rt
            .parts
            .read()
            .iter()
            .map(|(s, p)| (*s, p.clone()))
            .collect();
        let mut row = Vec::new();
        for (seg, part) in parts {
            let heap = part.heap().clone();
            for block in 0..heap.nblocks() {
                let vm_set = {
                    let v = part.vm.lock();
                    v.vm.epoch == def.epoch && v.vm.bits.contains(block)
                };
                let cp = heap.page(block)?;
                let p = cp.page.read();
                for t in heapwalk::tuples(&heap, &p) {
                    let t = t?;
                    let (h, slot) = (&t.header, t.tid.slot);
                    let old = h.migration_bit() != write_bit;
                    if vm_set && old && !settled_dead(self, h) {
                        problems.push(format!(
                            "seg {seg} block {block} slot {slot}: VM bit set but the version \
                             carries the old bit and may be live"
                        ));
                    }
                    if !self.is_live(h) || def.columns.is_empty() {
                        continue;
                    }
                    heapwalk::decode_row(&heap, &t, def.column_types(), &mut row)?;
                    if old && def.redistribution.is_none() {
                        problems.push(format!(
                            "seg {seg} block {block} slot {slot}: live row {row:?} of a stable \
                             table carries the old bit"
                        ));
                    }
                    let layout = if old { other } else { write };
                    if layout.is_random() {
                        continue;
                    }
                    let want = layout.segment_of(def.key_hash(&layout.key, &row));
                    if want != seg {
                        problems.push(format!(
                            "seg {seg} block {block} slot {slot}: live row {row:?} with bit {} \
                             belongs on segment {want}",
                            h.migration_bit()
                        ));
                    }
                }
            }
        }
        Ok(problems)
    }
}
