//! [`SimVfs`]: an in-memory, fault-injecting file system for crash tests.
//!
//! The model of durability:
//! - file data written with `write_all_at`/`set_len` is durable only after that file's
//!   `sync`;
//! - a directory entry (file creation, rename, removal) is durable only after
//!   `sync_dir` of its parent directory; directories themselves are durable at once
//!   (a simplification: the engine creates them only at node creation and syncs the
//!   parent anyway).
//!
//! Every mutating operation (create, write, set_len, sync, sync_dir, rename, remove,
//! create_dir) is counted. A test may arm a crash *after* operation `n`: that operation
//! completes and every later call fails, as if the process had died. [`SimVfs::crash_image`]
//! then builds the file system a restarted process would find, either dropping every
//! unsynced write or keeping them all but tearing the last one at a 512-byte boundary.
//! A test may also fail the `n`-th write or sync with EIO or ENOSPC without crashing.

use super::{FileLock, LockOutcome, VFile, Vfs};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Sector size at which a torn write is cut.
pub const SECTOR_BYTES: usize = 512;

/// What survives a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Only synced data and synced directory entries survive.
    DropUnsynced,
    /// Every operation reached the disk, except that the last write is torn: only its
    /// first `sectors` 512-byte sectors landed.
    KeepUnsyncedTearLast {
        /// Sectors of the last write that landed.
        sectors: usize,
    },
}

/// The error an injected failure returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// EIO.
    Eio,
    /// ENOSPC.
    Enospc,
}

/// Which operations an injected failure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpClass {
    /// `write_all_at` and `set_len`.
    Write,
    /// `sync` and `sync_dir`.
    Sync,
}

#[derive(Clone)]
enum Pending {
    Write {
        seq: u64,
        offset: u64,
        bytes: Vec<u8>,
    },
    SetLen(u64),
}

#[derive(Clone, Default)]
struct FileData {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

#[derive(Clone, Default)]
struct State {
    files: HashMap<u64, FileData>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    next_inode: u64,
    ops: u64,
    writes: u64,
    syncs: u64,
    write_seq: u64,
    crash_after: Option<u64>,
    crashed: bool,
    fail: Option<(OpClass, u64, FailKind)>,
}

fn crashed_err() -> io::Error {
    io::Error::other("simulated crash: the process is dead")
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", p.display()),
    )
}

impl State {
    /// Counts a mutating operation; fails it if a failure or crash says so.
    fn begin(&mut self, class: Option<OpClass>) -> io::Result<u64> {
        if self.crashed {
            return Err(crashed_err());
        }
        let n = self.ops;
        self.ops += 1;
        let nth = match class {
            Some(OpClass::Write) => {
                self.writes += 1;
                Some((OpClass::Write, self.writes - 1))
            }
            Some(OpClass::Sync) => {
                self.syncs += 1;
                Some((OpClass::Sync, self.syncs - 1))
            }
            None => None,
        };
        if let (Some((c, i)), Some((fc, fi, kind))) = (nth, self.fail) {
            if c == fc && i == fi {
                self.end(n);
                return Err(match kind {
                    FailKind::Eio => io::Error::from_raw_os_error(5),
                    FailKind::Enospc => io::Error::from_raw_os_error(28),
                });
            }
        }
        Ok(n)
    }

    /// Marks operation `n` complete; arms the crash if it was the chosen one.
    fn end(&mut self, n: u64) {
        if self.crash_after == Some(n) {
            self.crashed = true;
        }
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.crashed {
            Err(crashed_err())
        } else {
            Ok(())
        }
    }

    fn file_mut(&mut self, ino: u64) -> io::Result<&mut FileData> {
        self.files
            .get_mut(&ino)
            .ok_or_else(|| io::Error::other("stale inode"))
    }
}

fn apply_write(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let off = offset as usize;
    let end = off + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    if let Some(dst) = data.get_mut(off..end) {
        dst.copy_from_slice(bytes);
    }
}

/// Locks held in one simulated process: path -> (exclusive, holders). A crash image is
/// a new process, so it starts with none.
type Locks = Arc<Mutex<HashMap<PathBuf, (bool, usize)>>>;

/// The in-memory file system. Clones share the same state.
#[derive(Clone, Default)]
pub struct SimVfs {
    state: Arc<Mutex<State>>,
    locks: Locks,
}

/// A lock held on a [`SimVfs`] path.
struct SimLock {
    locks: Locks,
    path: PathBuf,
}

impl FileLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut l = self.locks.lock();
        if let Some((_, n)) = l.get_mut(&self.path) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                l.remove(&self.path);
            }
        }
    }
}

impl std::fmt::Debug for SimVfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimVfs").field("ops", &self.ops()).finish()
    }
}

impl SimVfs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of mutating operations so far.
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// Crash after operation number `n` (0-based) completes.
    pub fn crash_after(&self, n: u64) {
        self.state.lock().crash_after = Some(n);
    }

    /// True once the armed crash has happened.
    pub fn has_crashed(&self) -> bool {
        self.state.lock().crashed
    }

    /// Fail the `nth` (0-based) operation of `class` with `kind`, once.
    pub fn fail_nth(&self, class: OpClass, nth: u64, kind: FailKind) {
        self.state.lock().fail = Some((class, nth, kind));
    }

    /// Operations counted so far in `class`.
    pub fn count(&self, class: OpClass) -> u64 {
        let s = self.state.lock();
        match class {
            OpClass::Write => s.writes,
            OpClass::Sync => s.syncs,
        }
    }

    /// The file system a restarted process finds after a crash now.
    pub fn crash_image(&self, mode: CrashMode) -> SimVfs {
        let s = self.state.lock();
        let mut new = State {
            dirs: s.dirs.clone(),
            ..State::default()
        };
        let names = match mode {
            CrashMode::DropUnsynced => &s.durable_names,
            CrashMode::KeepUnsyncedTearLast { .. } => &s.names,
        };
        let last_seq = s
            .files
            .values()
            .flat_map(|f| f.pending.iter())
            .filter_map(|p| match p {
                Pending::Write { seq, .. } => Some(*seq),
                Pending::SetLen(_) => None,
            })
            .max();
        for (path, ino) in names {
            let Some(f) = s.files.get(ino) else { continue };
            let data = match mode {
                CrashMode::DropUnsynced => f.durable.clone(),
                CrashMode::KeepUnsyncedTearLast { sectors } => {
                    let mut d = f.durable.clone();
                    for p in &f.pending {
                        match p {
                            Pending::Write { seq, offset, bytes } => {
                                let keep = if Some(*seq) == last_seq {
                                    (sectors * SECTOR_BYTES).min(bytes.len())
                                } else {
                                    bytes.len()
                                };
                                apply_write(&mut d, *offset, bytes.get(..keep).unwrap_or(&[]));
                            }
                            Pending::SetLen(len) => d.resize(*len as usize, 0),
                        }
                    }
                    d
                }
            };
            new.files.insert(
                *ino,
                FileData {
                    durable: data.clone(),
                    data,
                    pending: Vec::new(),
                },
            );
            new.names.insert(path.clone(), *ino);
            new.durable_names.insert(path.clone(), *ino);
        }
        new.next_inode = s.next_inode;
        SimVfs {
            state: Arc::new(Mutex::new(new)),
            locks: Locks::default(),
        }
    }

    /// A copy of the current state (as if every write had been synced), sharing nothing.
    pub fn snapshot(&self) -> SimVfs {
        self.crash_image(CrashMode::KeepUnsyncedTearLast {
            sectors: usize::MAX / SECTOR_BYTES,
        })
    }

    /// The current content of a file (for tests).
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.state.lock();
        let ino = s.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(s.files.get(ino).map(|f| f.data.clone()).unwrap_or_default())
    }

    /// Overwrites bytes of a file durably, bypassing counting and faults (to corrupt a
    /// file in a test).
    pub fn poke(&self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        let ino = *s.names.get(path).ok_or_else(|| not_found(path))?;
        let f = s.file_mut(ino)?;
        apply_write(&mut f.data, offset, bytes);
        apply_write(&mut f.durable, offset, bytes);
        Ok(())
    }
}

struct SimFile {
    state: Arc<Mutex<State>>,
    ino: u64,
}

impl VFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let s = self.state.lock();
        s.check_alive()?;
        let f = s
            .files
            .get(&self.ino)
            .ok_or_else(|| io::Error::other("stale inode"))?;
        let off = offset as usize;
        let Some(src) = f.data.get(off..) else {
            return Ok(0);
        };
        let n = src.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.state.lock();
        let n = s.begin(Some(OpClass::Write))?;
        s.write_seq += 1;
        let seq = s.write_seq;
        let f = s.file_mut(self.ino)?;
        apply_write(&mut f.data, offset, buf);
        f.pending.push(Pending::Write {
            seq,
            offset,
            bytes: buf.to_vec(),
        });
        s.end(n);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        let mut s = self.state.lock();
        let n = s.begin(Some(OpClass::Sync))?;
        let f = s.file_mut(self.ino)?;
        f.durable = f.data.clone();
        f.pending.clear();
        s.end(n);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        let s = self.state.lock();
        s.check_alive()?;
        Ok(s.files.get(&self.ino).map_or(0, |f| f.data.len() as u64))
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.state.lock();
        let n = s.begin(Some(OpClass::Write))?;
        let f = s.file_mut(self.ino)?;
        f.data.resize(len as usize, 0);
        f.pending.push(Pending::SetLen(len));
        s.end(n);
        Ok(())
    }
}

impl Vfs for SimVfs {
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        self.open(path, false)
    }
    fn try_lock(&self, path: &Path, exclusive: bool) -> io::Result<LockOutcome> {
        self.state.lock().check_alive()?;
        let mut l = self.locks.lock();
        let e = l.entry(path.to_path_buf()).or_insert((exclusive, 0));
        if e.1 > 0 && (exclusive || e.0) {
            return Ok(LockOutcome::Busy {
                pid: Some(std::process::id()),
            });
        }
        *e = (exclusive, e.1 + 1);
        Ok(LockOutcome::Acquired(Box::new(SimLock {
            locks: self.locks.clone(),
            path: path.to_path_buf(),
        })))
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        let mut s = self.state.lock();
        s.check_alive()?;
        let ino = match s.names.get(path) {
            Some(ino) => *ino,
            None if create => {
                let parent = path.parent().unwrap_or(Path::new(""));
                if !s.dirs.contains(parent) {
                    return Err(not_found(parent));
                }
                let n = s.begin(None)?;
                let ino = s.next_inode;
                s.next_inode += 1;
                s.files.insert(ino, FileData::default());
                s.names.insert(path.to_path_buf(), ino);
                s.end(n);
                ino
            }
            None => return Err(not_found(path)),
        };
        Ok(Arc::new(SimFile {
            state: self.state.clone(),
            ino,
        }))
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        let s = self.state.lock();
        s.check_alive()?;
        Ok(s.names.contains_key(path) || s.dirs.contains(path))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        let n = s.begin(None)?;
        for a in path.ancestors() {
            s.dirs.insert(a.to_path_buf());
        }
        s.end(n);
        Ok(())
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let s = self.state.lock();
        s.check_alive()?;
        if !s.dirs.contains(path) {
            return Err(not_found(path));
        }
        let mut out: Vec<String> = s
            .names
            .keys()
            .map(PathBuf::as_path)
            .chain(s.dirs.iter().map(PathBuf::as_path))
            .filter(|p| p.parent() == Some(path) && *p != path)
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        let n = s.begin(None)?;
        if s.names.remove(path).is_none() {
            s.end(n);
            return Err(not_found(path));
        }
        s.end(n);
        Ok(())
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        let n = s.begin(None)?;
        let busy = s
            .names
            .keys()
            .chain(s.dirs.iter())
            .any(|p| p.parent() == Some(path));
        if busy {
            s.end(n);
            return Err(io::Error::other(format!("{} is not empty", path.display())));
        }
        if !s.dirs.remove(path) {
            s.end(n);
            return Err(not_found(path));
        }
        s.end(n);
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        let n = s.begin(None)?;
        let Some(ino) = s.names.remove(from) else {
            s.end(n);
            return Err(not_found(from));
        };
        s.names.insert(to.to_path_buf(), ino);
        s.end(n);
        Ok(())
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        let n = s.begin(Some(OpClass::Sync))?;
        let in_dir = |p: &Path| p.parent() == Some(path);
        s.durable_names.retain(|p, _| !in_dir(p));
        let current: Vec<(PathBuf, u64)> = s
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        s.durable_names.extend(current);
        s.end(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_data_and_names_are_lost() {
        let v = SimVfs::new();
        let d = Path::new("/d");
        v.create_dir_all(d).unwrap();
        let f = v.open(&d.join("a"), true).unwrap();
        f.write_all_at(b"hello", 0).unwrap();
        f.sync().unwrap();
        // file synced, dir not synced: the name is lost
        let img = v.crash_image(CrashMode::DropUnsynced);
        assert!(!img.exists(&d.join("a")).unwrap());
        v.sync_dir(d).unwrap();
        f.write_all_at(b"HE", 0).unwrap();
        let img = v.crash_image(CrashMode::DropUnsynced);
        assert_eq!(img.read_file(&d.join("a")).unwrap(), b"hello");
        let img = v.crash_image(CrashMode::KeepUnsyncedTearLast { sectors: 1 });
        assert_eq!(img.read_file(&d.join("a")).unwrap(), b"HEllo");
    }

    #[test]
    fn torn_write_keeps_whole_sectors_only() {
        let v = SimVfs::new();
        let d = Path::new("/d");
        v.create_dir_all(d).unwrap();
        let f = v.open(&d.join("a"), true).unwrap();
        v.sync_dir(d).unwrap();
        f.write_all_at(&[7u8; 2048], 0).unwrap();
        let img = v.crash_image(CrashMode::KeepUnsyncedTearLast { sectors: 2 });
        assert_eq!(img.read_file(&d.join("a")).unwrap(), vec![7u8; 1024]);
    }

    #[test]
    fn crash_after_n_stops_everything() {
        let v = SimVfs::new();
        let d = Path::new("/d");
        v.create_dir_all(d).unwrap(); // op 0
        v.crash_after(1);
        let f = v.open(&d.join("a"), true).unwrap(); // op 1 completes
        assert!(f.write_all_at(b"x", 0).is_err());
        assert!(v.has_crashed());
    }

    #[test]
    fn nth_sync_fails_with_eio() {
        let v = SimVfs::new();
        let d = Path::new("/d");
        v.create_dir_all(d).unwrap();
        let f = v.open(&d.join("a"), true).unwrap();
        v.fail_nth(OpClass::Sync, 1, FailKind::Eio);
        f.sync().unwrap();
        let e = f.sync().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5));
        f.sync().unwrap();
    }
}
