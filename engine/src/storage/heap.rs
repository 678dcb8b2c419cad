//! Heap files: one table's pages on one segment, cached in memory, read with `pread`
//! and written under the WAL rule.
//!
//! Why `pread` and not `memmap2`: (1) every byte must pass through the [`Vfs`] seam so the
//! crash tests can drop and tear writes, and a mapping bypasses it; (2) with a writable
//! mapping the kernel may write a dirty page back at any moment, before the WAL record
//! describing it is durable, which breaks the WAL rule; (3) speed does not decide it: a read from disk
//! happens only on a page-cache miss, and although a read-only mapping of warm,
//! OS-cached pages is faster per page than `pread` (`docs/BENCHMARKS.md`, "pread vs
//! mmap", has the ratio), that cost is paid once per miss.
//!
//! The WAL rule: [`Heap::write_dirty`] flushes the WAL through a page's LSN before it
//! writes the page.

use crate::error::{CorruptionKind, Error, Location, Result};
use crate::lock::{rank, Mutex, RwLock};
use crate::poison::Poison;
use crate::storage::index::IntMap;
use crate::storage::page::{Page, PageId, PAGE_BYTES};
use crate::vfs::{read_exact_at, VFile, Vfs};
use crate::wal::Wal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// A page in the cache.
#[derive(Debug)]
pub struct CachedPage {
    /// The page.
    pub page: RwLock<Page, rank::HeapPage>,
    dirty: AtomicBool,
}

impl CachedPage {
    fn new(page: Page, dirty: bool) -> Self {
        Self {
            page: RwLock::new(page),
            dirty: AtomicBool::new(dirty),
        }
    }

    /// Marks the page changed since it was last written. Call while holding its write lock.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// True when the page has changes not yet written.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }
}

pub use crate::datadir::{heap_file_name, segment_dir_name};

/// One table's heap on one segment.
pub struct Heap {
    segment: u16,
    table: u32,
    rel_path: PathBuf,
    seg_dir: PathBuf,
    file: Arc<dyn VFile>,
    pages: RwLock<IntMap<u32, Arc<CachedPage>>, rank::PageCache>,
    nblocks: AtomicU32,
    /// Free bytes per block, as last seen; 0 for blocks that could not be read.
    fsm: Mutex<Vec<u16>, rank::Fsm>,
    needs_sync: AtomicBool,
    cache_pages_max: usize,
}

impl std::fmt::Debug for Heap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heap")
            .field("path", &self.rel_path)
            .finish()
    }
}

impl Heap {
    /// Holds the free-space map's lock, as an inserting writer does, until the guard is
    /// dropped (tests of what waits on it).
    #[cfg(test)]
    pub(crate) fn hold_fsm(&self) -> impl Sized + '_ {
        self.fsm.lock()
    }

    /// Opens (or, with `create`, creates empty) the heap file of `table` on `segment`,
    /// whose files are in `seg_dir` (`node_dir/segN`, or an external directory). Paths
    /// in errors are relative to `node_dir` when inside it, else absolute.
    pub fn open(
        vfs: &dyn Vfs,
        node_dir: &Path,
        seg_dir: &Path,
        segment: u16,
        table: u32,
        create: bool,
        cache_pages_max: usize,
    ) -> Result<Self> {
        let path = seg_dir.join(heap_file_name(table));
        let rel_path = path.strip_prefix(node_dir).unwrap_or(&path).to_path_buf();
        let file = vfs.open(&path, create).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::corrupt(
                    Location {
                        segment: Some(segment),
                        table: Some(table),
                        ..Location::file(&rel_path)
                    },
                    CorruptionKind::Missing,
                )
            } else {
                Error::io("open", &path, e)
            }
        })?;
        let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
        let nblocks = u32::try_from(len.div_ceil(PAGE_BYTES as u64)).map_err(|_| {
            Error::corrupt(
                Location::file(&rel_path),
                CorruptionKind::Invalid("heap too large".into()),
            )
        })?;
        Ok(Self {
            segment,
            table,
            rel_path,
            seg_dir: seg_dir.to_path_buf(),
            file,
            pages: RwLock::new(IntMap::default()),
            nblocks: AtomicU32::new(nblocks),
            fsm: Mutex::new(vec![0; nblocks as usize]),
            needs_sync: AtomicBool::new(false),
            cache_pages_max: cache_pages_max.max(16),
        })
    }

    /// Segment content id.
    pub fn segment(&self) -> u16 {
        self.segment
    }

    /// Table id.
    pub fn table(&self) -> u32 {
        self.table
    }

    /// Number of blocks (including new blocks not yet written).
    pub fn nblocks(&self) -> u32 {
        self.nblocks.load(Ordering::Acquire)
    }

    /// Path relative to the data directory.
    pub fn rel_path(&self) -> &Path {
        &self.rel_path
    }

    /// The directory of the heap's segment (`seg_dir` at open).
    pub fn seg_dir(&self) -> &Path {
        &self.seg_dir
    }

    /// Where block `block` is, for a corruption error.
    pub(crate) fn location(&self, block: u32) -> Location {
        Location {
            segment: Some(self.segment),
            table: Some(self.table),
            block: Some(block),
            ..Location::file(&self.rel_path)
        }
    }

    fn page_id(&self, block: u32) -> PageId {
        PageId {
            segment: self.segment,
            table: self.table,
            block,
        }
    }

    /// The page `block`, from the cache or read (and checked) from disk.
    pub fn page(&self, block: u32) -> Result<Arc<CachedPage>> {
        if let Some(p) = self.pages.read().get(&block) {
            return Ok(p.clone());
        }
        if block >= self.nblocks() {
            return Err(Error::NoSuchBlock {
                file: self.rel_path.clone(),
                block,
                nblocks: self.nblocks(),
            });
        }
        let page = self.read_from_disk(block)?;
        let mut map = self.pages.write();
        let entry = map
            .entry(block)
            .or_insert_with(|| Arc::new(CachedPage::new(page, false)))
            .clone();
        if map.len() > self.cache_pages_max {
            Self::evict_clean(&mut map, self.cache_pages_max / 2, block);
        }
        Ok(entry)
    }

    /// Reads and checks a page from disk, bypassing the cache.
    pub fn read_from_disk(&self, block: u32) -> Result<Page> {
        let mut buf = Box::new([0u8; PAGE_BYTES]);
        let n = read_exact_at(
            &*self.file,
            &mut buf[..],
            u64::from(block) * PAGE_BYTES as u64,
        )
        .map_err(|e| Error::io("read", &self.rel_path, e))?;
        if n < PAGE_BYTES {
            return Err(Error::corrupt(
                self.location(block),
                CorruptionKind::Truncated {
                    need: PAGE_BYTES,
                    have: n,
                },
            ));
        }
        Page::from_disk_buf(buf, self.page_id(block))
            .map_err(|k| Error::corrupt(self.location(block), k))
    }

    /// Drops clean pages nobody holds until at most `keep` remain (never `except`).
    fn evict_clean(map: &mut IntMap<u32, Arc<CachedPage>>, keep: usize, except: u32) {
        let victims: Vec<u32> = map
            .iter()
            .filter(|(b, p)| **b != except && !p.is_dirty() && Arc::strong_count(p) == 1)
            .map(|(b, _)| *b)
            .take(map.len().saturating_sub(keep))
            .collect();
        for b in victims {
            map.remove(&b);
        }
    }

    /// Installs a page in the cache as dirty (redo of a full-page image, or a new block),
    /// extending the heap if needed.
    pub fn install(&self, page: Page) -> Arc<CachedPage> {
        let block = page.id().block;
        let free = page.free_space();
        let mut map = self.pages.write();
        let (cp, replace) = match map.get(&block) {
            Some(cp) => (cp.clone(), Some(page)),
            None => {
                let cp = Arc::new(CachedPage::new(page, true));
                map.insert(block, cp.clone());
                (cp, None)
            }
        };
        drop(map);
        // The page lock is taken after the cache map's is released (lock order: heap
        // page, then page cache); the clone held here keeps the page from eviction.
        if let Some(page) = replace {
            *cp.page.write() = page;
            cp.mark_dirty();
        }
        self.nblocks.fetch_max(block + 1, Ordering::AcqRel);
        self.set_free(block, free);
        cp
    }

    /// Records how much space `block` has free.
    pub fn set_free(&self, block: u32, free: usize) {
        let mut fsm = self.fsm.lock();
        let i = block as usize;
        if fsm.len() <= i {
            fsm.resize(i + 1, 0);
        }
        if let Some(f) = fsm.get_mut(i) {
            *f = free.min(u16::MAX as usize) as u16;
        }
    }

    /// A block that seems to have room for `len` bytes, or a new empty block.
    pub fn block_for_insert(&self, len: usize) -> u32 {
        {
            let fsm = self.fsm.lock();
            // Search from the end: recent blocks are the likeliest to have room.
            if let Some(b) = fsm.iter().rposition(|f| usize::from(*f) >= len) {
                return b as u32;
            }
        }
        let mut fsm = self.fsm.lock();
        // New blocks are made only under the FSM lock. The page enters the cache before
        // `nblocks` counts it: a reader that sees the new count must find the page in the
        // cache, not read past the end of the file.
        let block = self.nblocks.load(Ordering::Acquire);
        let page = Page::new(self.page_id(block));
        let free = page.free_space();
        if fsm.len() <= block as usize {
            fsm.resize(block as usize + 1, 0);
        }
        if let Some(f) = fsm.get_mut(block as usize) {
            *f = free as u16;
        }
        // Dirty from birth so it cannot be evicted before its first insert; written
        // empty (LSN 0) it is still a valid page.
        self.pages
            .write()
            .insert(block, Arc::new(CachedPage::new(page, true)));
        self.nblocks.store(block + 1, Ordering::Release);
        block
    }

    /// Reads every page once to learn free space; unreadable pages get 0 free (their
    /// error surfaces when they are read). Returns the blocks that could not be read.
    pub fn build_fsm(&self) -> Vec<(u32, Error)> {
        let mut bad = Vec::new();
        for b in 0..self.nblocks() {
            match self.page(b) {
                Ok(p) => {
                    let free = p.page.read().free_space();
                    self.set_free(b, free);
                }
                Err(e) => {
                    self.set_free(b, 0);
                    bad.push((b, e));
                }
            }
        }
        bad
    }

    /// Writes every dirty page, each after the WAL is durable through its LSN.
    /// Returns the number of pages written.
    pub fn write_dirty(&self, wal: &Wal, poison: &Poison) -> Result<usize> {
        let dirty: Vec<(u32, Arc<CachedPage>)> = self
            .pages
            .read()
            .iter()
            .filter(|(_, p)| p.is_dirty())
            .map(|(b, p)| (*b, p.clone()))
            .collect();
        let mut written = 0;
        for (block, cp) in dirty {
            let (bytes, lsn) = {
                let g = cp.page.read();
                cp.dirty.store(false, Ordering::Release);
                (g.seal(), g.lsn())
            };
            poison.check()?;
            if lsn > 0 {
                wal.flush_through(lsn)?;
            }
            let res = self
                .file
                .write_all_at(&bytes[..], u64::from(block) * PAGE_BYTES as u64)
                .map_err(|e| Error::io("write", &self.rel_path, e));
            if let Err(e) = res {
                cp.mark_dirty();
                poison.set(&e);
                return Err(e);
            }
            self.needs_sync.store(true, Ordering::Release);
            written += 1;
        }
        Ok(written)
    }

    /// Empties the heap: drops every cached page, truncates the file to zero and syncs
    /// it. The caller excludes every other user of the heap (and checkpoints).
    pub fn truncate(&self) -> Result<()> {
        self.pages.write().clear();
        self.fsm.lock().clear();
        self.nblocks.store(0, Ordering::Release);
        self.file
            .set_len(0)
            .map_err(|e| Error::io("truncate", &self.rel_path, e))?;
        self.file
            .sync()
            .map_err(|e| Error::io("fsync", &self.rel_path, e))?;
        self.needs_sync.store(false, Ordering::Release);
        Ok(())
    }

    /// Reserves a new block for a bulk load: an empty dirty page is cached (so readers of
    /// the block see a valid empty page), and the free-space map says "full" so
    /// concurrent inserts stay away until [`Heap::install`] fills it.
    pub fn reserve_block(&self) -> u32 {
        let mut fsm = self.fsm.lock();
        let block = self.nblocks.load(Ordering::Acquire);
        if fsm.len() <= block as usize {
            fsm.resize(block as usize + 1, 0);
        }
        if let Some(f) = fsm.get_mut(block as usize) {
            *f = 0;
        }
        self.pages.write().insert(
            block,
            Arc::new(CachedPage::new(Page::new(self.page_id(block)), true)),
        );
        // Counted only once cached (see `block_for_insert`).
        self.nblocks.store(block + 1, Ordering::Release);
        block
    }

    /// Syncs the heap file if anything was written since the last sync.
    pub fn sync(&self, poison: &Poison) -> Result<()> {
        if self.needs_sync.swap(false, Ordering::AcqRel) {
            if let Err(e) = self
                .file
                .sync()
                .map_err(|e| Error::io("fsync", &self.rel_path, e))
            {
                poison.set(&e);
                return Err(e);
            }
        }
        Ok(())
    }
}
