//! Offline verification of a data directory, in the manner of `pg_checksums` and
//! `amcheck`: every page checksum and structure, every WAL record, every VM file and the
//! control file. Nothing is modified.

use crate::control::{Catalog, Control};
use crate::error::{Error, Result};
use crate::heap::{heap_file_name, segment_dir_name};
use crate::node::{CONTROL_FILE, WAL_DIR};
use crate::page::{Page, PageId, PAGE_BYTES};
use crate::vfs::{read_all, Vfs};
use crate::vm::{vm_file_name, VisibilityMap};
use crate::wal::file::{check_header, FILE_HEADER_BYTES};
use crate::wal::record::{decode, Body};
use crate::wal::scan::list_files;
use std::fmt;
use std::path::Path;

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File, relative to the data directory.
    pub file: String,
    /// Segment, table (id and name) and block, where they apply.
    pub segment: Option<u16>,
    /// Table id.
    pub table: Option<u32>,
    /// Table name, when the catalog knows it.
    pub table_name: Option<String>,
    /// Block.
    pub block: Option<u32>,
    /// Byte offset, where that is the best position.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some(t) = self.table {
            match &self.table_name {
                Some(n) => write!(f, " table {n:?} (id {t})")?,
                None => write!(f, " table id {t}")?,
            }
        }
        if let Some(s) = self.segment {
            write!(f, " segment {s}")?;
        }
        if let Some(b) = self.block {
            write!(f, " block {b}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " offset {o}")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// What [`verify_dir`] checked.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Problems, one per finding.
    pub problems: Vec<Problem>,
    /// Heap pages checked.
    pub pages: u64,
    /// WAL records checked.
    pub wal_records: u64,
    /// VM files checked.
    pub vm_files: u64,
}

fn problem(file: impl Into<String>, what: impl Into<String>) -> Problem {
    Problem {
        file: file.into(),
        segment: None,
        table: None,
        table_name: None,
        block: None,
        offset: None,
        what: what.into(),
    }
}

/// Checks the data directory `dir`. Fails only if `dir` cannot be read at all.
pub fn verify_dir(vfs: &dyn Vfs, dir: &Path) -> Result<Report> {
    let mut r = Report::default();
    let control = check_control(vfs, dir, &mut r)?;
    check_wal(vfs, dir, control.as_ref(), &mut r)?;
    let catalog = control.map(|c| c.catalog).unwrap_or_default();
    check_segments(vfs, dir, &catalog, &mut r)?;
    Ok(r)
}

fn check_control(vfs: &dyn Vfs, dir: &Path, r: &mut Report) -> Result<Option<Control>> {
    let path = dir.join(CONTROL_FILE);
    if !vfs.exists(&path).map_err(|e| Error::io("stat", &path, e))? {
        return Err(Error::NotInitialized(dir.to_path_buf()));
    }
    let f = vfs
        .open(&path, false)
        .map_err(|e| Error::io("open", &path, e))?;
    let bytes = read_all(&*f).map_err(|e| Error::io("read", &path, e))?;
    match Control::decode(&bytes) {
        Ok(c) => Ok(Some(c)),
        Err(k) => {
            r.problems.push(problem(CONTROL_FILE, k.to_string()));
            Ok(None)
        }
    }
}

fn check_wal(vfs: &dyn Vfs, dir: &Path, control: Option<&Control>, r: &mut Report) -> Result<()> {
    let wal_dir = dir.join(WAL_DIR);
    let files = list_files(vfs, &wal_dir)?;
    let mut saw_checkpoint = false;
    let mut expect_start: Option<u64> = None;
    for f in &files {
        let name = format!("{WAL_DIR}/{}", f.name);
        if let Some(e) = expect_start {
            if e != f.start {
                r.problems.push(problem(
                    &name,
                    format!("gap in the log: previous file ends at LSN {e}"),
                ));
            }
        }
        let path = wal_dir.join(&f.name);
        let file = vfs
            .open(&path, false)
            .map_err(|e| Error::io("open", &path, e))?;
        let bytes = read_all(&*file).map_err(|e| Error::io("read", &path, e))?;
        if let Err(why) = check_header(&bytes, f.start) {
            r.problems.push(problem(&name, why));
            expect_start = None;
            continue;
        }
        let mut off = FILE_HEADER_BYTES;
        while off < bytes.len() {
            let lsn = f.start + off as u64;
            match decode(bytes.get(off..).unwrap_or(&[]), lsn) {
                Ok((rec, n)) => {
                    r.wal_records += 1;
                    if let (Body::Checkpoint { .. }, Some(c)) = (&rec.body, control) {
                        saw_checkpoint |= rec.lsn == c.checkpoint_lsn;
                    }
                    off += n;
                }
                Err(e) => {
                    let mut p = problem(&name, format!("invalid WAL record at LSN {lsn}: {e}"));
                    p.offset = Some(off as u64);
                    r.problems.push(p);
                    break;
                }
            }
        }
        expect_start = Some(f.start + off as u64);
    }
    if let Some(c) = control {
        if !saw_checkpoint {
            r.problems.push(problem(
                WAL_DIR,
                format!(
                    "checkpoint record at LSN {} (named by the control file) not found",
                    c.checkpoint_lsn
                ),
            ));
        }
    }
    Ok(())
}

fn check_segments(vfs: &dyn Vfs, dir: &Path, catalog: &Catalog, r: &mut Report) -> Result<()> {
    for seg in &catalog.contents() {
        let seg_name = segment_dir_name(*seg);
        let seg_dir = dir.join(&seg_name);
        if !vfs
            .exists(&seg_dir)
            .map_err(|e| Error::io("stat", &seg_dir, e))?
        {
            let mut p = problem(&seg_name, "segment directory missing");
            p.segment = Some(*seg);
            r.problems.push(p);
            continue;
        }
        for t in &catalog.tables {
            let at = |file: &str, what: String, block: Option<u32>| Problem {
                file: format!("{seg_name}/{file}"),
                segment: Some(*seg),
                table: Some(t.id),
                table_name: Some(t.name.clone()),
                block,
                offset: None,
                what,
            };
            let heap_name = heap_file_name(t.id);
            let path = seg_dir.join(&heap_name);
            match vfs.open(&path, false) {
                Err(e) => {
                    r.problems
                        .push(at(&heap_name, format!("cannot open heap file: {e}"), None))
                }
                Ok(f) => {
                    let bytes = read_all(&*f).map_err(|e| Error::io("read", &path, e))?;
                    if bytes.len() % PAGE_BYTES != 0 {
                        r.problems.push(at(
                            &heap_name,
                            format!("length {} is not a whole number of pages", bytes.len()),
                            Some((bytes.len() / PAGE_BYTES) as u32),
                        ));
                    }
                    for (block, chunk) in bytes.chunks(PAGE_BYTES).enumerate() {
                        let block = block as u32;
                        r.pages += 1;
                        let id = PageId {
                            segment: *seg,
                            table: t.id,
                            block,
                        };
                        if let Err(k) = Page::from_disk(chunk, id) {
                            r.problems.push(at(&heap_name, k.to_string(), Some(block)));
                        }
                    }
                }
            }
            let vm_name = vm_file_name(t.id);
            let path = seg_dir.join(&vm_name);
            r.vm_files += 1;
            match vfs.open(&path, false) {
                Err(e) => r
                    .problems
                    .push(at(&vm_name, format!("cannot open VM file: {e}"), None)),
                Ok(f) => {
                    let bytes = read_all(&*f).map_err(|e| Error::io("read", &path, e))?;
                    if let Err(k) = VisibilityMap::decode(&bytes, *seg, t.id) {
                        r.problems.push(at(&vm_name, k.to_string(), None));
                    }
                }
            }
        }
    }
    Ok(())
}
