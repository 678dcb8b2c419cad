//! A node's life cycle, second half: checkpoints (dirty pages and VMs written, the
//! control file replaced, old WAL files removed) and close.

use super::part::{Part, TableRt};
use super::{io, CheckpointStats, Node};

use crate::catalog::control::{Control, HeapLen, NodeState};
pub use crate::datadir::CONTROL_FILE;
use crate::error::{Error, Location, Result};
use crate::vfs::{read_all, replace_file};
use crate::wal::record::Body;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Node {
    /// Writes every dirty page and VM file, records a checkpoint in the WAL, replaces the
    /// control file, and removes WAL files no longer needed.
    ///
    /// Order, and what a crash after each step leaves:
    /// 1. redo point taken, with the commit log and catalog as of that instant (no commit
    ///    is between its WAL record and its commit-log update then). Crash: nothing changed.
    /// 2. WAL synced; dirty pages written (each after the WAL covering it) and synced.
    ///    Crash: the old control file's redo point still covers every change.
    /// 3. VM files replaced (each atomically). Crash: VMs are hints, newer is fine.
    /// 4. Checkpoint record appended and synced. Crash: control still names the old one.
    /// 5. Control file replaced atomically. Crash after: the new checkpoint is in force.
    /// 6. WAL files wholly before the redo point removed. Crash: leftovers, removed later.
    pub fn checkpoint(&self) -> Result<CheckpointStats> {
        let r = self.checkpoint_inner();
        self.poison_on_io(r)
    }

    pub(super) fn checkpoint_inner(&self) -> Result<CheckpointStats> {
        let _ck = self.checkpoint_lock.lock();
        self.poison.check()?;
        let (redo_lsn, clog, catalog, next_xid, next_table) = {
            let _gate = self.commit_gate.write();
            (
                self.wal.begin_checkpoint(),
                self.clog.to_bytes(),
                self.catalog.read().clone(),
                self.txns.next_xid(),
                self.next_table.load(Ordering::Acquire),
            )
        };
        self.wal.flush_all()?;
        let parts = self.all_parts();
        // Taken before the dirty pages are written: every block below each count is on
        // disk once this checkpoint completes (format.md, "Heap-length section").
        let heaps: Vec<HeapLen> = parts
            .iter()
            .map(|(_, p)| HeapLen {
                segment: p.heap.segment(),
                table: p.heap.table(),
                blocks: p.heap.nblocks(),
            })
            .collect();
        let mut pages_written = 0;
        for (_, part) in &parts {
            pages_written += part.heap.write_dirty(&self.wal, &self.poison)?;
            part.heap.sync(&self.poison)?;
        }
        self.write_vms(&parts)?;
        let ckpt_lsn = self.wal.append(
            0,
            &Body::Checkpoint {
                redo_lsn,
                next_xid,
                next_table,
            },
        )?;
        self.wal.flush_through(ckpt_lsn)?;
        let control = Control {
            state: NodeState::InProduction,
            checkpoint_lsn: ckpt_lsn,
            redo_lsn,
            next_xid,
            next_table,
            catalog,
            clog,
            heaps,
        };
        self.write_control(&control)?;
        let wal_files_removed = self.wal.remove_before(redo_lsn)?;
        Ok(CheckpointStats {
            redo_lsn,
            pages_written,
            wal_files_removed,
        })
    }

    pub(super) fn write_control(&self, control: &Control) -> Result<()> {
        let res = replace_file(&*self.vfs, &self.dir.join(CONTROL_FILE), &control.encode());
        if let Err(e) = &res {
            self.poison.set(e);
        }
        res
    }

    pub(super) fn write_vms(&self, parts: &[(Arc<TableRt>, Arc<Part>)]) -> Result<()> {
        // A VM bit is set after the commit of the mover batch that earned it, which
        // (under batched sync) may not be durable yet: make it so first.
        self.wal.flush_all()?;
        for (_, part) in parts {
            let (seg, table) = (part.heap.segment(), part.heap.table());
            let bytes = {
                let mut v = part.vm.lock();
                if !v.dirty {
                    continue;
                }
                v.dirty = false;
                v.vm.encode(seg, table)
            };
            let path = part
                .heap
                .seg_dir()
                .join(crate::storage::vm::vm_file_name(table));
            if let Err(e) = replace_file(&*self.vfs, &path, &bytes) {
                self.poison.set(&e);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Shuts down cleanly: a final checkpoint marked as a clean shutdown.
    pub fn close(&self) -> Result<()> {
        self.stop_flusher.store(true, Ordering::Release);
        if let Some(h) = self.flusher.lock().take() {
            let _ = h.join();
        }
        self.checkpoint()?;
        // Mark the clean shutdown in the control file.
        let path = self.dir.join(CONTROL_FILE);
        let f = self.vfs.open(&path, false).map_err(io("open", &path))?;
        let bytes = read_all(&*f).map_err(io("read", &path))?;
        let mut control =
            Control::decode(&bytes).map_err(|k| Error::corrupt(Location::file(CONTROL_FILE), k))?;
        control.state = NodeState::ShutDown;
        self.write_control(&control)?;
        Ok(())
    }
}
