//! Reading the log back: list WAL files and decode records in order until the first
//! invalid one, which is where the log ends.

use super::file::{check_header, parse_name, FILE_HEADER_BYTES};
use super::record::{decode, Record};
use crate::catalog::codec::get_u64;
use crate::error::{CorruptionKind, Error, Location, Result};
use crate::vfs::{read_all, Vfs};
use std::path::Path;

/// One WAL file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalFile {
    /// LSN of its first byte.
    pub start: u64,
    /// File name.
    pub name: String,
}

/// Lists the WAL files of `wal_dir`, in LSN order. Other names are ignored.
pub fn list_files(vfs: &dyn Vfs, wal_dir: &Path) -> Result<Vec<WalFile>> {
    let names = vfs
        .list_dir(wal_dir)
        .map_err(|e| Error::io("list", wal_dir, e))?;
    let mut files: Vec<WalFile> = names
        .into_iter()
        .filter_map(|n| parse_name(&n).map(|start| WalFile { start, name: n }))
        .collect();
    files.sort_by_key(|f| f.start);
    Ok(files)
}

/// Where and why the log ended before the end of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Index into the file list of the file holding the bad record.
    pub file_index: usize,
    /// LSN of the first invalid byte: everything from here on is discarded.
    pub lsn: u64,
    /// Why.
    pub reason: String,
    /// Bytes discarded from this file and the files after it.
    pub bytes_discarded: u64,
}

/// The result of scanning the log.
#[derive(Debug, Default)]
pub struct Scan {
    /// Valid records at or after the start LSN, in order.
    pub records: Vec<Record>,
    /// The LSN just past the last valid record (where appending continues).
    pub end_lsn: u64,
    /// Start LSN of the file holding `end_lsn`.
    pub end_file_start: u64,
    /// Set when the log ended at an invalid record rather than at the end of the files.
    pub cut: Option<Cut>,
    /// The files scanned.
    pub files: Vec<WalFile>,
}

/// Reads every valid record with LSN >= `from_lsn`, up to the end of the log.
///
/// The log ends at the end of the last file, or at a **torn tail**: an invalid record or
/// file header with nothing valid after it (no later WAL file, no valid record at any
/// later offset of its file), recorded in [`Scan::cut`]. An invalid record or header
/// with valid log after it, files that are not contiguous, or a redo point no file
/// holds are **corruption**: an error naming the file and offset (format.md, "Rules for
/// a broken log"). Nothing is changed on disk here.
pub fn scan(vfs: &dyn Vfs, wal_dir: &Path, from_lsn: u64) -> Result<Scan> {
    let files = list_files(vfs, wal_dir)?;
    let mut out = Scan {
        files: files.clone(),
        ..Scan::default()
    };
    // The file holding from_lsn is the last one starting at or before it.
    let Some(first) = files.iter().rposition(|f| f.start <= from_lsn) else {
        let what = match files.first() {
            None => format!("it holds no WAL files, but recovery must start at LSN {from_lsn}"),
            Some(f) => format!(
                "WAL files are missing: recovery must start at LSN {from_lsn}, but the oldest \
                 file present, {}, starts at LSN {}",
                f.name, f.start
            ),
        };
        return Err(Error::corrupt(
            Location::file(crate::datadir::WAL_DIR),
            CorruptionKind::Invalid(what),
        ));
    };
    let mut expect = from_lsn;
    for (i, f) in files.iter().enumerate().skip(first) {
        let path = wal_dir.join(&f.name);
        let file = vfs
            .open_read(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        let bytes = read_all(&*file).map_err(|e| Error::io("read", &path, e))?;
        if i > first && f.start != expect {
            let prev = files.get(i - 1).map_or("?", |p| p.name.as_str());
            return Err(Error::corrupt(
                Location {
                    offset: Some(0),
                    ..Location::file(rel(&f.name))
                },
                CorruptionKind::Invalid(format!(
                    "the log is not contiguous: {prev} ends at LSN {expect}, but {} starts at \
                     LSN {} ({})",
                    f.name,
                    f.start,
                    if f.start > expect {
                        format!(
                            "{} bytes of log are missing: a file cut short or removed",
                            f.start - expect
                        )
                    } else {
                        "the files overlap".to_string()
                    }
                )),
            ));
        }
        if let Err(reason) = check_header(&bytes, f.start) {
            let reason = format!("bad file header: {reason}");
            out.cut = Some(tail_or_corruption(&files, i, &bytes, 0, f.start, reason)?);
            expect = f.start;
            break;
        }
        // A redo point may sit exactly at a file's start: records begin after its header.
        let header = FILE_HEADER_BYTES as u64;
        let mut off = if i == first {
            (expect - f.start).max(header)
        } else {
            header
        };
        expect = f.start + off;
        out.end_file_start = f.start;
        let mut cut = None;
        while (off as usize) < bytes.len() {
            match decode(bytes.get(off as usize..).unwrap_or(&[]), expect) {
                Ok((rec, n)) => {
                    out.records.push(rec);
                    off += n as u64;
                    expect += n as u64;
                }
                Err(e) => {
                    cut = Some(tail_or_corruption(
                        &files,
                        i,
                        &bytes,
                        off,
                        expect,
                        e.to_string(),
                    )?);
                    break;
                }
            }
        }
        if cut.is_some() {
            out.cut = cut;
            break;
        }
    }
    out.end_lsn = expect;
    Ok(out)
}

/// A WAL file's path relative to the data directory (for messages).
fn rel(name: &str) -> std::path::PathBuf {
    Path::new(crate::datadir::WAL_DIR).join(name)
}

/// Decides what an invalid record (or header) at offset `off` of `files[i]`, whose
/// bytes are `bytes`, is: a torn tail when nothing valid follows it — then the [`Cut`]
/// to make — or corruption.
fn tail_or_corruption(
    files: &[WalFile],
    i: usize,
    bytes: &[u8],
    off: u64,
    lsn: u64,
    reason: String,
) -> Result<Cut> {
    let name = files.get(i).map_or("?", |f| f.name.as_str());
    let start = files.get(i).map_or(0, |f| f.start);
    let later = files.get(i + 1..).unwrap_or(&[]);
    let evidence = match (first_valid_after(bytes, off + 1, start), later.first()) {
        (Some((vlsn, voff)), _) => Some(format!(
            "a valid record at LSN {vlsn} (offset {voff}) of the same file"
        )),
        (None, Some(next)) => Some(format!(
            "{} later WAL file(s), from {} (a file is synced whole before the next is \
             written, so this one was complete)",
            later.len(),
            next.name
        )),
        (None, None) => None,
    };
    if let Some(evidence) = evidence {
        return Err(Error::corrupt(
            Location {
                offset: Some(off),
                ..Location::file(rel(name))
            },
            CorruptionKind::WalNotTail {
                lsn,
                reason,
                evidence,
            },
        ));
    }
    Ok(Cut {
        file_index: i,
        lsn,
        reason,
        bytes_discarded: (bytes.len() as u64).saturating_sub(off),
    })
}

/// The first offset at or after `from` of a WAL file starting at `file_start` where a
/// valid record begins, with its LSN. Records identify themselves by their LSN field,
/// so every offset is tried, the cheap LSN comparison first.
pub fn first_valid_after(bytes: &[u8], from: u64, file_start: u64) -> Option<(u64, u64)> {
    let from = usize::try_from(from).ok()?;
    let last = bytes.len().checked_sub(super::record::HEADER_BYTES)?;
    (from..=last).find_map(|off| {
        let lsn = file_start + off as u64;
        let rec = bytes.get(off..)?;
        if get_u64(rec, super::record::LSN_OFF)? != lsn {
            return None;
        }
        decode(rec, lsn).ok().map(|_| (lsn, off as u64))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::SimVfs;
    use crate::wal::file::{encode_header, file_name};
    use crate::wal::record::{encode, Body};

    /// Regression (found by the crash test): a redo point exactly at the start of a WAL
    /// file made recovery decode the file header as a record and lose the checkpoint.
    #[test]
    fn scan_from_the_first_byte_of_a_file_skips_its_header() {
        let vfs = SimVfs::new();
        let dir = Path::new("/w");
        vfs.create_dir_all(dir).unwrap();
        let start = 4096u64;
        let mut bytes = encode_header(start).to_vec();
        encode(
            start + FILE_HEADER_BYTES as u64,
            0,
            &Body::Commit,
            &mut bytes,
        );
        let f = vfs.open(&dir.join(file_name(start)), true).unwrap();
        f.write_all_at(&bytes, 0).unwrap();
        let s = scan(&vfs, dir, start).unwrap();
        assert_eq!(s.cut, None);
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.end_lsn, start + bytes.len() as u64);
    }
}
