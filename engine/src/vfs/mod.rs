//! The I/O seam: every file operation of the engine goes through [`Vfs`] and [`VFile`].
//!
//! [`RealVfs`] is the operating system. `SimVfs` (with the `testing` feature) is an in-memory file system for tests
//! that models what survives a crash (only synced data and synced directory entries),
//! can tear the last write at a 512-byte boundary, fails a chosen operation with EIO or
//! ENOSPC, and counts operations so a test can crash after each one in turn.
//!
//! Architecture invariant: no other module of the engine touches `std::fs`.

mod real;
#[cfg(any(test, feature = "testing"))]
mod sim;

pub use real::RealVfs;
#[cfg(any(test, feature = "testing"))]
pub use sim::{CrashMode, FailKind, OpClass, SimVfs, SECTOR_BYTES};

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open file.
pub trait VFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns the count (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes everything written so far durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// True when the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Truncates or extends the file to `len` bytes (not durable until [`VFile::sync`]).
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// A lock held on a file: released when dropped, and by the operating system when the
/// process dies.
pub trait FileLock: Send + Sync {}

/// What [`Vfs::try_lock`] found.
pub enum LockOutcome {
    /// The lock is ours until the guard is dropped.
    Acquired(Box<dyn FileLock>),
    /// Another holder has it; the process id it wrote, if it could be read.
    Busy {
        /// The holder's process id.
        pid: Option<u32>,
    },
}

/// A file system.
pub trait Vfs: Send + Sync {
    /// Opens `path` for reading and writing; creates it (empty) when `create` is true and
    /// it does not exist. A new directory entry is durable only after [`Vfs::sync_dir`].
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>>;
    /// Opens an existing `path` for reading only (works on a read-only file system or a
    /// file of another user that we may read); writes through it fail.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn VFile>>;
    /// Tries to lock the file `path` without waiting: `exclusive`, the file is created
    /// when missing and this process's id written into it; shared, it is opened read-only
    /// and a missing file means nobody holds it (a lock that is never taken is granted).
    fn try_lock(&self, path: &Path, exclusive: bool) -> io::Result<LockOutcome>;
    /// Whether `path` exists (file or directory).
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Creates a directory and its parents (durable once the parent is synced).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries of a directory (not full paths), sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` atomically.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// Reads exactly `buf.len()` bytes at `offset`, or reports how many were there.
pub fn read_exact_at(file: &dyn VFile, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        let n = file.read_at(rest, offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// Reads a whole file.
pub fn read_all(file: &dyn VFile) -> io::Result<Vec<u8>> {
    let len = usize::try_from(file.len()?).map_err(io::Error::other)?;
    let mut buf = vec![0u8; len];
    let n = read_exact_at(file, &mut buf, 0)?;
    buf.truncate(n);
    Ok(buf)
}

/// Replaces `path` with `bytes` atomically: write `<path>.tmp`, sync it, rename it over
/// `path`, sync the directory. A crash at any step leaves the old or the new file whole
/// (plus, at worst, a stale `.tmp` that readers ignore).
pub fn replace_file(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> crate::Result<()> {
    use crate::Error;
    let tmp = tmp_path(path);
    let dir = path.parent().unwrap_or(Path::new("."));
    // 1. Write the new content under a temporary name. Crash: old file intact, junk tmp.
    let f = vfs
        .open(&tmp, true)
        .map_err(|e| Error::io("create", &tmp, e))?;
    f.set_len(0).map_err(|e| Error::io("truncate", &tmp, e))?;
    f.write_all_at(bytes, 0)
        .map_err(|e| Error::io("write", &tmp, e))?;
    // 2. Make it durable before it can become visible under the real name.
    f.sync().map_err(|e| Error::io("fsync", &tmp, e))?;
    // 3. Swap. Crash before the directory sync: either name may survive, both whole.
    vfs.rename(&tmp, path)
        .map_err(|e| Error::io("rename", path, e))?;
    // 4. Make the swap durable.
    vfs.sync_dir(dir)
        .map_err(|e| Error::io("fsync dir", dir, e))?;
    Ok(())
}

/// `<path>.tmp`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}
