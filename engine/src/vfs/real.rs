//! [`RealVfs`]: the operating system's file system, through `pread`/`pwrite`.

use super::{FileLock, LockOutcome, VFile, Vfs};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealVfs;

struct RealFile(File);

impl VFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match self.0.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

/// An open file with `flock` held on it (released when the file is closed). An exclusive
/// holder wrote its pid into it and clears it when it lets go, so that the next busy
/// opener is not told about a process that is gone.
struct RealLock {
    file: File,
    exclusive: bool,
}
impl FileLock for RealLock {}
impl Drop for RealLock {
    fn drop(&mut self) {
        if self.exclusive {
            let _ = self.file.set_len(0); // best effort: the flock is what counts
        }
    }
}
/// Granted when there is no lock file: no process holds it.
struct NoLock;
impl FileLock for NoLock {}

/// The process id written in a lock file, if it parses and that process is alive.
fn read_live_pid(path: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    Path::new("/proc")
        .join(pid.to_string())
        .exists()
        .then_some(pid)
}

/// Who holds a busy lock: the pid an exclusive holder wrote, waiting briefly (bounded)
/// for one that is taking the lock right now to write it. A shared holder (`verify`)
/// writes none: then `None`.
fn busy_holder(path: &Path) -> Option<u32> {
    const TRIES_MAX: u32 = 20;
    for _ in 0..TRIES_MAX {
        if let Some(pid) = read_live_pid(path) {
            return Some(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

impl Vfs for RealVfs {
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        Ok(Arc::new(RealFile(File::open(path)?)))
    }
    fn try_lock(&self, path: &Path, exclusive: bool) -> io::Result<LockOutcome> {
        let f = if exclusive {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?
        } else {
            match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Ok(LockOutcome::Acquired(Box::new(NoLock)))
                }
                Err(e) => return Err(e),
            }
        };
        let r = if exclusive {
            f.try_lock()
        } else {
            f.try_lock_shared()
        };
        match r {
            Ok(()) => {
                if exclusive {
                    // The pid is for people and for the next opener's message; the lock
                    // itself is the flock, so this needs no sync.
                    f.set_len(0)?;
                    f.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)?;
                }
                Ok(LockOutcome::Acquired(Box::new(RealLock {
                    file: f,
                    exclusive,
                })))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(LockOutcome::Busy {
                pid: busy_holder(path),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(RealFile(f)))
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}
