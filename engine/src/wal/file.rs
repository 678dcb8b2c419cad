//! WAL file naming and the 24-byte file header (`docs/format.md`, "WAL file").

use crate::catalog::codec::{get_u16, get_u32, get_u64, put_u16, put_u32, put_u64};

/// Size of a WAL file header.
pub const FILE_HEADER_BYTES: usize = 24;
/// A WAL file grows to at most this many bytes; a record that does not fit starts a new
/// one. The default and the largest allowed size ([`crate::NodeOptions::wal_file_bytes`]).
pub const WAL_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// The smallest WAL file size a node may be configured with: room for the largest record.
pub const WAL_FILE_BYTES_MIN: u64 = (FILE_HEADER_BYTES + super::record::RECORD_BYTES_MAX) as u64;
/// WAL file magic.
pub const WAL_MAGIC: [u8; 4] = *b"SGWL";
/// WAL format version.
pub const WAL_VERSION: u16 = 1;

/// The file name of the WAL file starting at `start_lsn`.
pub fn file_name(start_lsn: u64) -> String {
    format!("{start_lsn:016x}.wal")
}

/// Parses a WAL file name into its start LSN.
pub fn parse_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".wal")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16)
        .ok()
        .filter(|l| *l < super::record::LSN_MAX)
}

/// Encodes the header of a file starting at `start_lsn`.
pub fn encode_header(start_lsn: u64) -> [u8; FILE_HEADER_BYTES] {
    let mut h = [0u8; FILE_HEADER_BYTES];
    h[..4].copy_from_slice(&WAL_MAGIC);
    put_u16(&mut h, 4, WAL_VERSION);
    put_u64(&mut h, 8, start_lsn);
    let c = crc32fast::hash(&h[..16]);
    put_u32(&mut h, 16, c);
    h
}

/// Checks a file header; returns a reason when it is not a valid header for `start_lsn`.
pub fn check_header(buf: &[u8], start_lsn: u64) -> Result<(), String> {
    let Some(h) = buf.get(..FILE_HEADER_BYTES) else {
        return Err(format!("file header cut short ({} bytes)", buf.len()));
    };
    let crc = crc32fast::hash(h.get(..16).unwrap_or(&[]));
    if get_u32(h, 16) != Some(crc) {
        return Err("file header checksum mismatch".into());
    }
    if h.get(..4) != Some(&WAL_MAGIC[..]) || get_u16(h, 4) != Some(WAL_VERSION) {
        return Err("file header magic/version".into());
    }
    if get_u64(h, 8) != Some(start_lsn) {
        return Err(format!(
            "file header names LSN {:?}, file name {start_lsn}",
            get_u64(h, 8)
        ));
    }
    Ok(())
}
