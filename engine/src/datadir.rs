//! The data directory as a whole: every name in it and its parser, what a directory is
//! ([`inspect`]), who owns it (the lock, [`DataDir`]) and the one way to empty it
//! ([`DataDir::wipe`]). `docs/format.md` ("Data directory") is the specification.
//!
//! Architecture invariant: the engine deletes only names this module recognises as its
//! own, and a directory only when nothing else is left in it.

use crate::error::{Error, Result};
use crate::vfs::{FileLock, LockOutcome, Vfs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The owner's lock file (flock) holding its process id.
pub const LOCK_FILE: &str = "lock";
/// The control file.
pub const CONTROL_FILE: &str = "control";
/// The WAL directory.
pub const WAL_DIR: &str = "wal";
/// Present only while a node is being created.
pub const CREATE_MARKER: &str = "create.incomplete";
/// Present only while a directory is being wiped.
pub const WIPE_MARKER: &str = "wipe.incomplete";
/// Suffix of a file being replaced atomically ([`crate::vfs::replace_file`]).
pub const TMP_SUFFIX: &str = ".tmp";

/// Segment directory name.
pub fn segment_dir_name(segment: u16) -> String {
    format!("seg{segment}")
}

/// The content id a segment directory name stands for (canonical names only:
/// `seg3`, not `seg03` or `seg+3`).
pub fn parse_segment_dir(name: &str) -> Option<u16> {
    let c: u16 = name.strip_prefix("seg")?.parse().ok()?;
    (segment_dir_name(c) == name).then_some(c)
}

/// File name of a table's heap file, relative to its segment directory.
pub fn heap_file_name(table: u32) -> String {
    format!("t{table}.heap")
}

/// File name of a table's visibility-map file, relative to its segment directory.
pub fn vm_file_name(table: u32) -> String {
    format!("t{table}.vm")
}

/// The table id a file of a segment directory belongs to, if the name is one the
/// engine makes there (`t<id>.heap`, `t<id>.vm`, or either with `.tmp`).
pub fn parse_part_file(name: &str) -> Option<u32> {
    let base = name.strip_suffix(TMP_SUFFIX).unwrap_or(name);
    let id: u32 = base
        .strip_prefix('t')?
        .strip_suffix(".heap")
        .or_else(|| base.strip_prefix('t')?.strip_suffix(".vm"))?
        .parse()
        .ok()?;
    let canonical = [heap_file_name(id), vm_file_name(id)];
    canonical.iter().any(|c| c == base).then_some(id)
}

/// Whether a name in `wal/` is one the engine makes.
pub fn is_wal_file(name: &str) -> bool {
    crate::wal::file::parse_name(name).is_some()
}

/// What a directory is, judged from its names alone (`docs/format.md` has the table of
/// what each state allows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirState {
    /// It does not exist.
    Missing,
    /// Nothing in it (or only a lock file).
    Empty,
    /// A node: it has a control file.
    Node,
    /// A node's creation was interrupted (nothing in it was ever acknowledged).
    CreateInterrupted,
    /// A wipe was interrupted.
    WipeInterrupted,
    /// It has a node's WAL or segment directories but no control file.
    Damaged {
        /// The names found.
        found: Vec<String>,
    },
    /// It holds names the engine does not make.
    Foreign {
        /// Those names.
        names: Vec<String>,
    },
}

impl DirState {
    /// Why an operation that needs a node (or an empty directory) refuses this state.
    pub(crate) fn refusal(&self) -> String {
        match self {
            DirState::Missing => "the directory does not exist".into(),
            DirState::Empty => "the directory is empty: no node to open".into(),
            DirState::Node => "the directory already holds a segexpand node".into(),
            DirState::CreateInterrupted => {
                "the creation of a node here was interrupted; create it again (the partial \
                 files are removed first) or remove the directory"
                    .into()
            }
            DirState::WipeInterrupted => {
                "a wipe of this directory was interrupted; run with --fresh to finish it".into()
            }
            DirState::Damaged { found } => format!(
                "no control file, but it holds {}: a segexpand data directory whose control \
                 file is missing or damaged; refusing to open it or to create a node on top \
                 of it (restore the control file, or remove the directory yourself if its \
                 data is not needed)",
                list(found)
            ),
            DirState::Foreign { names } => format!(
                "not a segexpand data directory: it holds {}; refusing to use or delete it",
                list(names)
            ),
        }
    }
}

fn list(names: &[String]) -> String {
    const SHOWN_MAX: usize = 8;
    let mut s: Vec<String> = names.iter().take(SHOWN_MAX).cloned().collect();
    if names.len() > SHOWN_MAX {
        s.push(format!("and {} more", names.len() - SHOWN_MAX));
    }
    s.join(", ")
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

/// Classifies `dir` from its names.
pub fn inspect(vfs: &dyn Vfs, dir: &Path) -> Result<DirState> {
    if !vfs.exists(dir).map_err(io("stat", dir))? {
        return Ok(DirState::Missing);
    }
    let names: Vec<String> = vfs
        .list_dir(dir)
        .map_err(io("list", dir))?
        .into_iter()
        .filter(|n| n != LOCK_FILE)
        .collect();
    let has = |n: &str| names.iter().any(|x| x == n);
    if has(WIPE_MARKER) {
        return Ok(DirState::WipeInterrupted);
    }
    if has(CONTROL_FILE) {
        return Ok(DirState::Node);
    }
    if has(CREATE_MARKER) {
        return Ok(DirState::CreateInterrupted);
    }
    let control_tmp = format!("{CONTROL_FILE}{TMP_SUFFIX}");
    let (ours, foreign): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|n| n == WAL_DIR || n == &control_tmp || parse_segment_dir(n).is_some());
    Ok(if !foreign.is_empty() {
        DirState::Foreign { names: foreign }
    } else if !ours.is_empty() {
        DirState::Damaged { found: ours }
    } else {
        DirState::Empty
    })
}

/// Refuses a path that names a file, not a directory, saying so.
fn check_is_dir(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    match vfs.list_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(Error::DirRefused {
            dir: dir.to_path_buf(),
            reason: "not a directory".into(),
        }),
        _ => Ok(()),
    }
}

/// Takes the lock of `dir` shared (for a reader such as `verify`): fails with
/// [`Error::DirInUse`] while a node holds it. The lock is released when the guard drops.
pub fn lock_shared(vfs: &dyn Vfs, dir: &Path) -> Result<Box<dyn FileLock>> {
    check_is_dir(vfs, dir)?;
    let path = dir.join(LOCK_FILE);
    match vfs.try_lock(&path, false).map_err(io("lock", &path))? {
        LockOutcome::Acquired(g) => Ok(g),
        LockOutcome::Busy { pid } => Err(Error::DirInUse {
            dir: dir.to_path_buf(),
            pid,
        }),
    }
}

/// What [`DataDir::wipe`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WipeReport {
    /// Files removed.
    pub files_removed: usize,
    /// Names left in place because the engine does not make them (relative paths).
    pub left: Vec<String>,
}

/// A data directory held exclusively by this process (the lock is released on drop).
pub struct DataDir {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    _lock: Box<dyn FileLock>,
}

impl std::fmt::Debug for DataDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataDir").field("dir", &self.dir).finish()
    }
}

impl DataDir {
    /// Locks `dir` exclusively; with `create`, the directory is made first when missing.
    /// Fails with [`Error::DirInUse`] (nothing touched) when another holder has it, and
    /// with [`Error::NotInitialized`] when it is missing and `create` is false.
    pub fn lock(vfs: Arc<dyn Vfs>, dir: &Path, create: bool) -> Result<DataDir> {
        if !vfs.exists(dir).map_err(io("stat", dir))? {
            if !create {
                return Err(Error::NotInitialized(dir.to_path_buf()));
            }
            vfs.create_dir_all(dir).map_err(io("mkdir", dir))?;
        }
        check_is_dir(&*vfs, dir)?;
        let path = dir.join(LOCK_FILE);
        match vfs.try_lock(&path, true).map_err(io("lock", &path))? {
            LockOutcome::Acquired(g) => Ok(DataDir {
                vfs,
                dir: dir.to_path_buf(),
                _lock: g,
            }),
            LockOutcome::Busy { pid } => Err(Error::DirInUse {
                dir: dir.to_path_buf(),
                pid,
            }),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file system it is on.
    pub fn vfs(&self) -> &Arc<dyn Vfs> {
        &self.vfs
    }

    /// What the directory is now.
    pub fn state(&self) -> Result<DirState> {
        inspect(&*self.vfs, &self.dir)
    }

    /// The error for an operation this state does not allow.
    pub(crate) fn refuse(&self, state: &DirState) -> Error {
        match state {
            DirState::Missing | DirState::Empty => Error::NotInitialized(self.dir.clone()),
            DirState::Node => Error::AlreadyExists(self.dir.clone()),
            s => Error::DirRefused {
                dir: self.dir.clone(),
                reason: s.refusal(),
            },
        }
    }

    fn create_marker(&self, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        self.vfs.open(&path, true).map_err(io("create", &path))?;
        self.sync()
    }

    fn remove_if_present(&self, path: &Path) -> Result<bool> {
        if self.vfs.exists(path).map_err(io("stat", path))? {
            self.vfs.remove_file(path).map_err(io("remove", path))?;
            return Ok(true);
        }
        Ok(false)
    }

    fn sync(&self) -> Result<()> {
        self.vfs
            .sync_dir(&self.dir)
            .map_err(io("fsync dir", &self.dir))
    }

    /// Marks the start of a node's creation (before anything else is written).
    pub(crate) fn begin_create(&self) -> Result<()> {
        self.create_marker(CREATE_MARKER)
    }

    /// Marks the end of a node's creation (after the control file is durable); also
    /// clears a marker left by a creation that crashed after writing its control file.
    pub(crate) fn end_create(&self) -> Result<()> {
        if self.remove_if_present(&self.dir.join(CREATE_MARKER))? {
            self.sync()?;
        }
        Ok(())
    }

    /// Empties a node's directory (or finishes an interrupted creation or wipe), removing
    /// only the names the engine makes; the directory itself and the lock stay. Refuses,
    /// changing nothing, a damaged or foreign directory, a `control` file that is not a
    /// control file, and a directory holding anything the engine did not make (at the top,
    /// in `wal/` or in a segment directory): the wipe would have to leave it behind, and a
    /// half-emptied directory is neither the node nor a new one.
    ///
    /// Order, and what a crash leaves: (1) `wipe.incomplete` is created and synced — from
    /// here on the directory is "wipe interrupted"; (2) the control file goes, so nothing
    /// can mistake the rest for a node; (3) WAL files, heap and VM files, then their
    /// directories when empty; (4) the marker goes: the directory is empty (or holds only
    /// names that are not ours).
    pub fn wipe(&self) -> Result<WipeReport> {
        let state = self.state()?;
        match state {
            DirState::Missing | DirState::Empty => return Ok(WipeReport::default()),
            DirState::Node | DirState::CreateInterrupted | DirState::WipeInterrupted => {}
            s => return Err(self.refuse(&s)),
        }
        self.check_all_ours()?;
        let mut report = WipeReport::default();
        if state != DirState::WipeInterrupted {
            self.create_marker(WIPE_MARKER)?;
        }
        for name in [
            CONTROL_FILE.to_string(),
            format!("{CONTROL_FILE}{TMP_SUFFIX}"),
            CREATE_MARKER.to_string(),
        ] {
            report.files_removed += usize::from(self.remove_if_present(&self.dir.join(name))?);
        }
        self.sync()?;
        for name in self
            .vfs
            .list_dir(&self.dir)
            .map_err(io("list", &self.dir))?
        {
            if name == WAL_DIR {
                self.remove_ours_in(&name, is_wal_file, &mut report)?;
            } else if parse_segment_dir(&name).is_some() {
                self.remove_ours_in(&name, |n| parse_part_file(n).is_some(), &mut report)?;
            } else if name != LOCK_FILE && name != WIPE_MARKER {
                report.left.push(name);
            }
        }
        self.sync()?;
        self.remove_if_present(&self.dir.join(WIPE_MARKER))?;
        self.sync()?;
        if !report.left.is_empty() {
            log::warn!(
                "{}: left in place (not made by segexpand): {}",
                self.dir.display(),
                list(&report.left)
            );
        }
        Ok(report)
    }

    /// Fails, naming them, if the directory holds names the engine does not make, or a
    /// `control` that does not start with the control file's magic.
    fn check_all_ours(&self) -> Result<()> {
        let mut foreign = Vec::new();
        let control_tmp = format!("{CONTROL_FILE}{TMP_SUFFIX}");
        for name in self
            .vfs
            .list_dir(&self.dir)
            .map_err(io("list", &self.dir))?
        {
            let inside: Option<fn(&str) -> bool> = if name == WAL_DIR {
                Some(is_wal_file)
            } else if parse_segment_dir(&name).is_some() {
                Some(|n| parse_part_file(n).is_some())
            } else {
                None
            };
            match inside {
                Some(ours) => match self.vfs.list_dir(&self.dir.join(&name)) {
                    Ok(names) => foreign.extend(
                        names
                            .into_iter()
                            .filter(|n| !ours(n))
                            .map(|n| format!("{name}/{n}")),
                    ),
                    Err(_) => foreign.push(name), // a file where our directory would be
                },
                None => {
                    let known = [LOCK_FILE, CONTROL_FILE, CREATE_MARKER, WIPE_MARKER];
                    if !known.contains(&name.as_str()) && name != control_tmp {
                        foreign.push(name);
                    }
                }
            }
        }
        let control = self.dir.join(CONTROL_FILE);
        if self.vfs.exists(&control).map_err(io("stat", &control))? {
            let f = self.vfs.open_read(&control).map_err(io("open", &control))?;
            let mut magic = [0u8; 4];
            let n = crate::vfs::read_exact_at(&*f, &mut magic, 0).map_err(io("read", &control))?;
            if n < magic.len() || magic != crate::catalog::control::CONTROL_MAGIC {
                foreign.push(format!("{CONTROL_FILE} (not a segexpand control file)"));
            }
        }
        if foreign.is_empty() {
            return Ok(());
        }
        Err(Error::DirRefused {
            dir: self.dir.clone(),
            reason: format!(
                "refusing to wipe it: it holds {} that segexpand did not make; move {} away \
                 and run again (nothing was deleted)",
                list(&foreign),
                if foreign.len() == 1 { "it" } else { "them" }
            ),
        })
    }

    /// Removes the files of subdirectory `sub` that `ours` recognises, then `sub` itself
    /// if that left it empty; names it does not recognise go to `report.left`.
    fn remove_ours_in(
        &self,
        sub: &str,
        ours: impl Fn(&str) -> bool,
        report: &mut WipeReport,
    ) -> Result<()> {
        let path = self.dir.join(sub);
        let Ok(names) = self.vfs.list_dir(&path) else {
            report.left.push(sub.to_string()); // a file, not a directory of ours
            return Ok(());
        };
        let mut kept = false;
        for n in names {
            if ours(&n) {
                let p = path.join(&n);
                self.vfs.remove_file(&p).map_err(io("remove", &p))?;
                report.files_removed += 1;
            } else {
                report.left.push(format!("{sub}/{n}"));
                kept = true;
            }
        }
        if kept {
            return Ok(());
        }
        self.vfs.sync_dir(&path).map_err(io("fsync dir", &path))?;
        self.vfs.remove_dir(&path).map_err(io("rmdir", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_only_in_canonical_form() {
        assert_eq!(parse_segment_dir("seg0"), Some(0));
        assert_eq!(parse_segment_dir("seg12"), Some(12));
        for bad in [
            "seg", "seg01", "seg+1", "seg-1", "seg1x", "Seg1", "seg70000",
        ] {
            assert_eq!(parse_segment_dir(bad), None, "{bad}");
        }
        assert_eq!(parse_part_file("t3.heap"), Some(3));
        assert_eq!(parse_part_file("t3.vm"), Some(3));
        assert_eq!(parse_part_file("t3.vm.tmp"), Some(3));
        for bad in [
            "t03.heap",
            "t3.heap.bak",
            "photo.jpg",
            "t.heap",
            "x3.vm",
            "t3.vmx",
        ] {
            assert_eq!(parse_part_file(bad), None, "{bad}");
        }
    }
}
