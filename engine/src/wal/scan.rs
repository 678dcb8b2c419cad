//! Reading the log back: list WAL files and decode records in order until the first
//! invalid one, which is where the log ends.

use super::file::{check_header, file_name, parse_name, FILE_HEADER_BYTES};
use super::record::{decode, Record};
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

/// Reads every valid record with LSN >= `from_lsn`. Gaps between files, bad headers and
/// bad records end the log (recorded in [`Scan::cut`]). A missing start is corruption.
pub fn scan(vfs: &dyn Vfs, wal_dir: &Path, from_lsn: u64) -> Result<Scan> {
    let files = list_files(vfs, wal_dir)?;
    let mut out = Scan {
        files: files.clone(),
        ..Scan::default()
    };
    // The file holding from_lsn is the last one starting at or before it.
    let Some(first) = files.iter().rposition(|f| f.start <= from_lsn) else {
        return Err(Error::corrupt(
            Location::file(wal_dir.join(file_name(from_lsn))),
            CorruptionKind::Invalid(format!("no WAL file holds redo start LSN {from_lsn}")),
        ));
    };
    let mut expect = from_lsn;
    for (i, f) in files.iter().enumerate().skip(first) {
        let path = wal_dir.join(&f.name);
        let file = vfs
            .open(&path, false)
            .map_err(|e| Error::io("open", &path, e))?;
        let bytes = read_all(&*file).map_err(|e| Error::io("read", &path, e))?;
        let discard_rest = |from_off: u64| -> u64 {
            (bytes.len() as u64).saturating_sub(from_off) + files.iter().skip(i + 1).count() as u64
            // later files: counted as present
        };
        if i > first && f.start != expect {
            out.cut = Some(Cut {
                file_index: i,
                lsn: expect,
                reason: format!("gap: expected a file at LSN {expect}, found {}", f.start),
                bytes_discarded: discard_rest(0),
            });
            break;
        }
        if let Err(reason) = check_header(&bytes, f.start) {
            out.cut = Some(Cut {
                file_index: i,
                lsn: f.start,
                reason,
                bytes_discarded: discard_rest(0),
            });
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
                    cut = Some(Cut {
                        file_index: i,
                        lsn: expect,
                        reason: e.to_string(),
                        bytes_discarded: discard_rest(off),
                    });
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
