//! The write-ahead log: appending records, group commit, and removing old files.
//!
//! Appenders encode records into an in-memory buffer under a short mutex, which assigns
//! LSNs. Making records durable ([`Wal::flush_through`]) uses *leader-based group
//! commit*: a thread that needs a flush and finds none running takes the flush lock
//! (`try_lock`), writes everything buffered so far and fsyncs once; threads that arrive
//! meanwhile append their records and wait on a condition variable that the leader
//! signals to all of them at once. The next leader then flushes every record appended
//! during the previous fsync, so N concurrent commits share one fsync.
//!
//! Architecture invariant: the only thread that writes WAL files is the holder of the
//! flush lock, so bytes reach a file in LSN order, and `flushed` only moves forward.

pub mod file;
pub mod record;
pub mod scan;

use crate::error::{Error, Result};
use crate::lock::{rank, scope, Mutex};
use crate::poison::Poison;
use crate::vfs::{VFile, Vfs};
use file::{encode_header, file_name, FILE_HEADER_BYTES, WAL_FILE_BYTES_MAX, WAL_FILE_BYTES_MIN};
use record::{encode, Body};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Buffered WAL bytes above which an appender flushes before adding more (back-pressure).
pub const WAL_BUFFER_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Longest time a group-commit leader waits for sibling commits before it syncs.
pub const GROUP_WAIT_US_MAX: u64 = 1_000;

/// When a commit is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every commit waits until its record is synced (possibly sharing the fsync).
    EveryCommit,
    /// Commits return at once; a background flusher syncs at least every `delay_us_max`
    /// microseconds, so at most that much acknowledged work can be lost in a crash.
    Batched {
        /// Longest time a commit stays unsynced.
        delay_us_max: u64,
    },
}

struct Chunk {
    file_start: u64,
    start_lsn: u64,
    new_file: bool,
    bytes: Vec<u8>,
}

struct Inner {
    file_bytes_max: u64,
    insert_lsn: u64,
    file_start: u64,
    redo_lsn: u64,
    pending: Vec<Chunk>,
    pending_bytes: usize,
    /// Commit records in `pending` (the group a leader is waiting to fill).
    pending_commits: u64,
}

struct Flusher {
    current: Option<(u64, Arc<dyn VFile>)>,
}

/// The log of one node.
pub struct Wal {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    inner: Mutex<Inner, rank::WalInsert>,
    flush: Mutex<Flusher, rank::WalFlush>,
    flushed: AtomicU64,
    flushing: AtomicBool,
    /// Group-commit followers wait here. A `std` mutex and condvar (whose `notify_all`
    /// wakes every follower at once, where `parking_lot`'s requeues them onto the mutex
    /// and wakes one), so not a `crate::lock` wrapper: ranked through `crate::lock::scope`.
    waiters: std::sync::Mutex<()>,
    wake: std::sync::Condvar,
    flushes: AtomicU64,
    last_sync_ns: AtomicU64,
    poison: Arc<Poison>,
}

impl Wal {
    /// Holds the flush and insert locks, as a committing writer does, until the guard
    /// is dropped (tests of what waits on them).
    #[cfg(test)]
    pub(crate) fn hold(&self) -> impl Sized + '_ {
        let flush = self.flush.lock();
        (flush, self.inner.lock())
    }

    /// Starts a log whose next record goes at `end_lsn`, in the file starting at
    /// `file_start` (created by this log when `new_file`).
    #[expect(
        clippy::too_many_arguments,
        reason = "called from two places, each naming every field"
    )]
    pub fn new(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        end_lsn: u64,
        file_start: u64,
        new_file: bool,
        redo_lsn: u64,
        file_bytes_max: u64,
        poison: Arc<Poison>,
    ) -> Self {
        let mut pending = Vec::new();
        let mut insert_lsn = end_lsn;
        if new_file {
            pending.push(Chunk {
                file_start,
                start_lsn: file_start,
                new_file: true,
                bytes: encode_header(file_start).to_vec(),
            });
            insert_lsn = file_start + FILE_HEADER_BYTES as u64;
        }
        Self {
            dir: dir.to_path_buf(),
            vfs,
            inner: Mutex::new(Inner {
                file_bytes_max: file_bytes_max.clamp(WAL_FILE_BYTES_MIN, WAL_FILE_BYTES_MAX),
                insert_lsn,
                file_start,
                redo_lsn,
                pending,
                pending_bytes: 0,
                pending_commits: 0,
            }),
            flush: Mutex::new(Flusher { current: None }),
            flushed: AtomicU64::new(if new_file { file_start } else { end_lsn }),
            flushing: AtomicBool::new(false),
            waiters: std::sync::Mutex::new(()),
            wake: std::sync::Condvar::new(),
            flushes: AtomicU64::new(0),
            last_sync_ns: AtomicU64::new(0),
            poison,
        }
    }

    /// The LSN the next record will get.
    pub fn insert_lsn(&self) -> u64 {
        self.inner.lock().insert_lsn
    }

    /// Everything below this LSN is durable.
    pub fn flushed_lsn(&self) -> u64 {
        self.flushed.load(Ordering::Acquire)
    }

    /// The current redo point (pages last changed before it get a full-page image).
    pub fn redo_lsn(&self) -> u64 {
        self.inner.lock().redo_lsn
    }

    /// Starts a checkpoint: the redo point becomes the current insert position.
    pub fn begin_checkpoint(&self) -> u64 {
        let mut g = self.inner.lock();
        g.redo_lsn = g.insert_lsn;
        g.redo_lsn
    }

    /// Appends a record; returns its LSN.
    pub fn append(&self, xid: u64, body: &Body) -> Result<u64> {
        self.append_with(xid, |_| body.clone())
    }

    /// Appends a record describing a change to a page whose LSN *before* the change was
    /// `page_lsn_before`. `build(full_page)` makes the body: when the page has not been
    /// logged since the redo point, `full_page` is true and the body must be a
    /// `PageImage`. The decision is taken under the insert lock, so it cannot race with a
    /// checkpoint moving the redo point.
    pub fn append_page(
        &self,
        xid: u64,
        page_lsn_before: u64,
        build: impl FnOnce(bool) -> Body,
    ) -> Result<u64> {
        self.append_with(xid, |redo| build(page_lsn_before < redo))
    }

    fn append_with(&self, xid: u64, build: impl FnOnce(u64) -> Body) -> Result<u64> {
        self.poison.check()?;
        let over = {
            let g = self.inner.lock();
            g.pending_bytes > WAL_BUFFER_BYTES_MAX
        };
        if over {
            let upto = self.insert_lsn();
            self.flush_through(upto.saturating_sub(1))?;
        }
        let mut g = self.inner.lock();
        let body = build(g.redo_lsn);
        let mut bytes = Vec::new();
        let len = encode(0, xid, &body, &mut bytes) as u64;
        if g.insert_lsn + len > g.file_start + g.file_bytes_max {
            // Start a new file exactly where this one ends.
            let start = g.insert_lsn;
            g.file_start = start;
            g.pending.push(Chunk {
                file_start: start,
                start_lsn: start,
                new_file: true,
                bytes: encode_header(start).to_vec(),
            });
            g.insert_lsn += FILE_HEADER_BYTES as u64;
            g.pending_bytes += FILE_HEADER_BYTES;
        }
        let lsn = g.insert_lsn;
        bytes.clear();
        encode(lsn, xid, &body, &mut bytes);
        g.insert_lsn += len;
        g.pending_bytes += bytes.len();
        if matches!(body, Body::Commit) {
            g.pending_commits += 1;
        }
        let file_start = g.file_start;
        match g.pending.last_mut() {
            Some(c) if c.file_start == file_start => c.bytes.extend_from_slice(&bytes),
            _ => g.pending.push(Chunk {
                file_start,
                start_lsn: lsn,
                new_file: false,
                bytes,
            }),
        }
        Ok(lsn)
    }

    /// Waits until the record at `lsn` (and everything before it) is durable, writing
    /// and syncing the buffer if no other thread is already doing so.
    pub fn flush_through(&self, lsn: u64) -> Result<()> {
        self.flush_through_grouped(lsn, 0)
    }

    /// Like [`Wal::flush_through`], for a commit while `siblings` other transactions are
    /// open: a leader first waits, at most half as long as the last sync took (and never
    /// more than [`GROUP_WAIT_US_MAX`]), until their commit records join the group
    /// (PostgreSQL's `commit_delay`/`commit_siblings`, made adaptive).
    pub fn flush_through_grouped(&self, lsn: u64, siblings: u64) -> Result<()> {
        loop {
            if self.flushed.load(Ordering::Acquire) > lsn {
                return Ok(());
            }
            self.poison.check()?;
            if let Some(mut fl) = self.flush.try_lock() {
                // Leader: flush everything buffered so far, then wake every follower.
                self.flushing.store(true, Ordering::Release);
                let r = if self.flushed.load(Ordering::Acquire) > lsn {
                    Ok(())
                } else {
                    self.wait_for_group(siblings);
                    self.flush_buffered(&mut fl, lsn)
                };
                self.flushing.store(false, Ordering::Release);
                drop(fl);
                self.wake_followers();
                r?;
                continue;
            }
            // Follower: another thread is flushing. Wait for it to finish, all followers
            // at once (a mutex queue would wake them one by one, and on a busy machine
            // that chain takes as long as the fsync, so groups would stay small).
            let _rank = scope::<rank::WalWaiters, _>(&self.waiters);
            let g = self
                .waiters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if self.flushed.load(Ordering::Acquire) > lsn || !self.flushing.load(Ordering::Acquire)
            {
                continue;
            }
            // The leader clears `flushing` and then takes `waiters` to notify, so this
            // wait cannot miss its wake-up; the timeout is only a safety net.
            let _ = self
                .wake
                .wait_timeout(g, std::time::Duration::from_millis(10));
        }
    }

    fn wait_for_group(&self, siblings: u64) {
        if siblings == 0 {
            return;
        }
        let wait_ns = (self.last_sync_ns.load(Ordering::Relaxed) / 2).min(GROUP_WAIT_US_MAX * 1000);
        let deadline = std::time::Instant::now() + std::time::Duration::from_nanos(wait_ns);
        while self.inner.lock().pending_commits <= siblings && std::time::Instant::now() < deadline
        {
            std::thread::yield_now();
        }
    }

    fn wake_followers(&self) {
        let _rank = scope::<rank::WalWaiters, _>(&self.waiters);
        let _g = self
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.wake.notify_all();
    }

    /// Writes and syncs everything buffered (the caller holds the flush lock).
    fn flush_buffered(&self, fl: &mut Flusher, lsn: u64) -> Result<()> {
        let (chunks, end) = {
            let mut g = self.inner.lock();
            g.pending_bytes = 0;
            g.pending_commits = 0;
            (std::mem::take(&mut g.pending), g.insert_lsn)
        };
        if chunks.is_empty() {
            // Nothing buffered and not flushed: the caller asked beyond the log.
            return Err(Error::InvalidArgument(format!(
                "flush through LSN {lsn} beyond the end of the log {end}"
            )));
        }
        if let Err(e) = self.write_chunks(fl, &chunks) {
            self.poison.set(&e);
            return Err(e);
        }
        self.flushed.store(end, Ordering::Release);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// How many times the log has been written and synced (each sync may cover many
    /// commits: commits / flushes is the group-commit factor).
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Flushes everything appended so far.
    pub fn flush_all(&self) -> Result<()> {
        let end = self.insert_lsn();
        if end == 0 {
            return Ok(());
        }
        self.flush_through(end - 1)
    }

    /// Writes `chunks` in order and syncs them. A file is synced completely before the
    /// next one is created or written, so a record in a later file proves every byte of
    /// the earlier ones durable: recovery tells a torn tail from corruption by it
    /// (format.md, "Rules for a broken log").
    fn write_chunks(&self, fl: &mut Flusher, chunks: &[Chunk]) -> Result<()> {
        let mut created = false;
        let mut touched: Vec<(PathBuf, Arc<dyn VFile>)> = Vec::new();
        for c in chunks {
            let path = self.dir.join(file_name(c.file_start));
            let file = match &fl.current {
                Some((start, f)) if *start == c.file_start => f.clone(),
                _ => {
                    // The file this batch wrote before is made durable now (one written
                    // only by earlier batches already is).
                    if let Some((start, _)) = &fl.current {
                        let prev = self.dir.join(file_name(*start));
                        if let Some(i) = touched.iter().position(|(p, _)| *p == prev) {
                            let (p, f) = touched.swap_remove(i);
                            f.sync().map_err(|e| Error::io("fsync", &p, e))?;
                        }
                    }
                    let f = self
                        .vfs
                        .open(&path, c.new_file)
                        .map_err(|e| Error::io("open", &path, e))?;
                    created |= c.new_file;
                    fl.current = Some((c.file_start, f.clone()));
                    f
                }
            };
            file.write_all_at(&c.bytes, c.start_lsn - c.file_start)
                .map_err(|e| Error::io("write", &path, e))?;
            if !touched.iter().any(|(p, _)| *p == path) {
                touched.push((path, file));
            }
        }
        let start = std::time::Instant::now();
        for (path, f) in &touched {
            f.sync().map_err(|e| Error::io("fsync", path, e))?;
        }
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_sync_ns.store(ns, Ordering::Relaxed);
        if created {
            self.vfs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("fsync dir", &self.dir, e))?;
        }
        Ok(())
    }

    /// Removes WAL files that hold only records before `redo_lsn`. Returns how many.
    pub fn remove_before(&self, redo_lsn: u64) -> Result<usize> {
        let files = scan::list_files(&*self.vfs, &self.dir)?;
        let mut removed = 0;
        for pair in files.windows(2) {
            if let [a, b] = pair {
                if b.start <= redo_lsn {
                    let p = self.dir.join(&a.name);
                    self.vfs
                        .remove_file(&p)
                        .map_err(|e| Error::io("remove", &p, e))?;
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            self.vfs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("fsync dir", &self.dir, e))?;
        }
        Ok(removed)
    }
}
