//! Offline verification of a data directory, in the manner of `pg_checksums` and
//! `amcheck`: every page checksum and structure, every heap file's length, every WAL
//! record, every VM file and the control file. Nothing is modified: every file is opened
//! read-only (a read-only mount or a copy works), and the directory's lock is taken
//! shared, so a directory a node has open is refused rather than read mid-change.
//!
//! The tables and segments checked are the control file's catalog brought up to the end
//! of the WAL (tables created since the last checkpoint included), and the WAL is judged
//! by the rule recovery uses: a torn tail is not a problem (recovery cuts it; it is
//! noted), a bad record with valid log after it is.

use crate::catalog::control::{heaps_to_check, Catalog, Control};
use crate::datadir::{heap_file_name, lock_shared, vm_file_name, CONTROL_FILE, WAL_DIR};
use crate::error::{Error, Result};
use crate::storage::page::{Page, PageId, PAGE_BYTES};
use crate::storage::vm::VisibilityMap;
use crate::vfs::{read_all, Vfs};
use crate::wal::record::{Body, Record};
use crate::wal::scan::{list_files, scan};
use std::collections::HashSet;
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
        let mut at = String::new();
        if let Some(t) = self.table {
            match &self.table_name {
                Some(n) => at.push_str(&format!(" table {n:?} (id {t})")),
                None => at.push_str(&format!(" table id {t}")),
            }
        }
        if let Some(s) = self.segment {
            at.push_str(&format!(" segment {s}"));
        }
        if let Some(b) = self.block {
            at.push_str(&format!(" block {b}"));
        }
        if let Some(o) = self.offset {
            at.push_str(&format!(" offset {o}"));
        }
        if at.is_empty() {
            write!(f, "{}: {}", self.file, self.what)
        } else {
            write!(f, "{}:{at}: {}", self.file, self.what)
        }
    }
}

/// What [`verify_dir`] checked.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Problems, one per finding.
    pub problems: Vec<Problem>,
    /// Things worth knowing that are not problems (a torn WAL tail that recovery will cut,
    /// a node that was not shut down cleanly).
    pub notes: Vec<String>,
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

/// A path as problems name it: relative to the node's directory when inside it (an
/// external segment directory is named in full).
fn shown(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

/// Checks the data directory `dir`. Fails only if `dir` cannot be read at all, holds
/// no node, or is in use by a node ([`Error::DirInUse`]).
pub fn verify_dir(vfs: &dyn Vfs, dir: &Path) -> Result<Report> {
    let _lock = lock_shared(vfs, dir)?;
    let mut r = Report::default();
    let control = check_control(vfs, dir, &mut r)?;
    let records = check_wal(vfs, dir, control.as_ref(), &mut r)?;
    if let Some(c) = &control {
        let since_redo: Vec<&Record> = records.iter().filter(|x| x.lsn >= c.redo_lsn).collect();
        let catalog = catalog_at_end(&c.catalog, since_redo.iter().map(|x| &x.body));
        let lengths = heaps_to_check(&c.heaps, since_redo.iter().map(|x| &x.body));
        check_segments(vfs, dir, c, &catalog, &lengths, &mut r)?;
    }
    Ok(r)
}

fn check_control(vfs: &dyn Vfs, dir: &Path, r: &mut Report) -> Result<Option<Control>> {
    let path = dir.join(CONTROL_FILE);
    let f = match vfs.open_read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let state = crate::datadir::inspect(vfs, dir)?;
            return Err(match state {
                crate::datadir::DirState::Missing | crate::datadir::DirState::Empty => {
                    Error::NotInitialized(dir.to_path_buf())
                }
                s => Error::DirRefused {
                    dir: dir.to_path_buf(),
                    reason: s.refusal(),
                },
            });
        }
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    let bytes = read_all(&*f).map_err(|e| Error::io("read", &path, e))?;
    match Control::decode(&bytes) {
        Ok(c) => {
            if c.state != crate::catalog::control::NodeState::ShutDown {
                r.notes.push(
                    "the node was not shut down cleanly: opening it runs recovery".to_string(),
                );
            }
            Ok(Some(c))
        }
        Err(k) => {
            r.problems.push(problem(CONTROL_FILE, k.to_string()));
            Ok(None)
        }
    }
}

/// Scans the whole WAL (every file present) by recovery's rule; returns the valid
/// records read.
fn check_wal(
    vfs: &dyn Vfs,
    dir: &Path,
    control: Option<&Control>,
    r: &mut Report,
) -> Result<Vec<Record>> {
    let wal_dir = dir.join(WAL_DIR);
    if !vfs
        .exists(&wal_dir)
        .map_err(|e| Error::io("stat", &wal_dir, e))?
    {
        r.problems
            .push(problem(WAL_DIR, "the WAL directory is missing"));
        return Ok(Vec::new());
    }
    let files = list_files(vfs, &wal_dir)?;
    let from = match (files.first(), control) {
        (Some(f), Some(c)) if f.start > c.redo_lsn => {
            // Recovery needs the log from the redo point; name what is missing.
            let mut p = problem(
                format!("{WAL_DIR}/{}", f.name),
                format!(
                    "WAL files are missing: recovery must start at LSN {} (the control \
                     file's redo point), but the oldest file present, {}, starts at LSN {}",
                    c.redo_lsn, f.name, f.start
                ),
            );
            p.offset = Some(0);
            r.problems.push(p);
            f.start
        }
        (Some(f), _) => f.start,
        (None, Some(c)) => c.redo_lsn,
        (None, None) => return Ok(Vec::new()),
    };
    let records = match scan(vfs, &wal_dir, from) {
        Ok(s) => {
            if let Some(cut) = &s.cut {
                r.notes.push(format!(
                    "the WAL ends in a torn tail at LSN {} ({}): recovery cuts {} bytes that \
                     were never synced",
                    cut.lsn, cut.reason, cut.bytes_discarded
                ));
            }
            s.records
        }
        Err(Error::Corruption { location, kind }) => {
            let mut p = problem(location.file.display().to_string(), kind.to_string());
            p.offset = location.offset;
            r.problems.push(p);
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    r.wal_records = records.len() as u64;
    if let Some(c) = control {
        let found = records.iter().any(|x| {
            x.lsn == c.checkpoint_lsn
                && matches!(x.body, Body::Checkpoint { redo_lsn, .. } if redo_lsn == c.redo_lsn)
        });
        if !found && r.problems.is_empty() {
            r.problems.push(problem(
                WAL_DIR,
                format!(
                    "the checkpoint record at LSN {} that the control file names is not in \
                     the WAL (the log ends at LSN {})",
                    c.checkpoint_lsn,
                    records.last().map_or(from, |x| x.lsn)
                ),
            ));
        }
    }
    Ok(records)
}

/// The catalog after applying the catalog records `bodies` to `base`.
fn catalog_at_end<'a>(base: &Catalog, bodies: impl Iterator<Item = &'a Body>) -> Catalog {
    let mut c = base.clone();
    for b in bodies {
        match b {
            Body::CreateSegment { config } => c.put_segment(config.clone()),
            Body::CreateTable { def } | Body::PutTable { def } => c.put_table(def.clone()),
            Body::DropTable { table } => c.tables.retain(|t| t.id != *table),
            Body::RetireSegment { content } => c.segments.retain(|s| s.content != *content),
            _ => {}
        }
    }
    c
}

fn check_segments(
    vfs: &dyn Vfs,
    dir: &Path,
    control: &Control,
    catalog: &Catalog,
    lengths: &[crate::catalog::control::HeapLen],
    r: &mut Report,
) -> Result<()> {
    // Parts the checkpoint recorded must have their files; parts made since may not yet.
    let checkpointed: HashSet<(u16, u32)> = control
        .catalog
        .contents()
        .into_iter()
        .flat_map(|s| control.catalog.tables.iter().map(move |t| (s, t.id)))
        .collect();
    // Recovery opens every heap of the checkpoint's catalog before it replays the WAL,
    // also of tables dropped and segments retired since (whose files a later checkpoint
    // removes): each must be there.
    let at_end: HashSet<(u16, u32)> = catalog
        .contents()
        .into_iter()
        .flat_map(|s| catalog.tables.iter().map(move |t| (s, t.id)))
        .collect();
    let mut gone: Vec<&(u16, u32)> = checkpointed.difference(&at_end).collect();
    gone.sort_unstable();
    for (seg, table) in gone {
        let path = control
            .catalog
            .segment_dir(dir, *seg)
            .join(heap_file_name(*table));
        let name = shown(dir, &path);
        if !vfs.exists(&path).map_err(|e| Error::io("stat", &path, e))? {
            let mut p = problem(
                name,
                "heap file missing: the control file's catalog holds it and recovery opens \
                 it before replaying the WAL (is the control file older than the directory?)",
            );
            p.segment = Some(*seg);
            p.table = Some(*table);
            r.problems.push(p);
        }
    }
    for seg in &catalog.contents() {
        let seg_dir = catalog.segment_dir(dir, *seg);
        let seg_name = shown(dir, &seg_dir);
        if !vfs
            .exists(&seg_dir)
            .map_err(|e| Error::io("stat", &seg_dir, e))?
        {
            if control.catalog.contents().contains(seg) {
                let mut p = problem(&seg_name, "segment directory missing");
                p.segment = Some(*seg);
                r.problems.push(p);
            }
            continue;
        }
        for t in &catalog.tables {
            let recorded = checkpointed.contains(&(*seg, t.id));
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
            match vfs.open_read(&path) {
                Err(e) => {
                    if recorded || e.kind() != std::io::ErrorKind::NotFound {
                        r.problems
                            .push(at(&heap_name, format!("cannot open heap file: {e}"), None))
                    }
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
                    if let Some(h) = lengths
                        .iter()
                        .find(|h| h.segment == *seg && h.table == t.id)
                    {
                        let expected = u64::from(h.blocks) * PAGE_BYTES as u64;
                        if (bytes.len() as u64) < expected {
                            let k = crate::error::CorruptionKind::ShortFile {
                                expected_bytes: expected,
                                found_bytes: bytes.len() as u64,
                            };
                            r.problems.push(at(&heap_name, k.to_string(), None));
                        }
                    }
                    for (block, chunk) in bytes.chunks(PAGE_BYTES).enumerate() {
                        let block = block as u32;
                        r.pages += 1;
                        let id = PageId {
                            segment: *seg,
                            table: t.id,
                            block,
                        };
                        match Page::from_disk(chunk, id) {
                            Err(k) => r.problems.push(at(&heap_name, k.to_string(), Some(block))),
                            Ok(page) => {
                                let types: Vec<_> = t.column_types().collect();
                                for what in crate::storage::heapwalk::check_page(&page, &types) {
                                    r.problems.push(at(&heap_name, what, Some(block)));
                                }
                            }
                        }
                    }
                }
            }
            let vm_name = vm_file_name(t.id);
            let path = seg_dir.join(&vm_name);
            match vfs.open_read(&path) {
                Err(e) => {
                    if recorded || e.kind() != std::io::ErrorKind::NotFound {
                        r.problems
                            .push(at(&vm_name, format!("cannot open VM file: {e}"), None))
                    }
                }
                Ok(f) => {
                    r.vm_files += 1;
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
