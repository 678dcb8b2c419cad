//! The commit log: two bits of status per transaction id.
//!
//! Kept in memory, persisted inside the control file at every checkpoint and rebuilt past
//! the checkpoint from Commit/Abort WAL records. Encoding in `docs/format.md`.

use crate::lock::{rank, RwLock};

/// Status of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XidStatus {
    /// Running, or unknown (and then aborted after recovery).
    InProgress,
    /// Committed.
    Committed,
    /// Aborted.
    Aborted,
}

/// The bootstrap transaction id: always committed.
pub const BOOTSTRAP_XID: u64 = 1;
/// The first id handed to a user transaction.
pub const FIRST_XID: u64 = 2;

/// Two bits per xid.
#[derive(Debug, Default)]
pub struct Clog {
    bits: RwLock<Vec<u8>, rank::Clog>,
}

impl Clog {
    /// A commit log from its persisted bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            bits: RwLock::new(bytes),
        }
    }

    /// Its bytes, for persisting.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bits.read().clone()
    }

    /// The status of `xid`.
    pub fn get(&self, xid: u64) -> XidStatus {
        if xid == BOOTSTRAP_XID {
            return XidStatus::Committed;
        }
        let b = self.bits.read();
        let byte = usize::try_from(xid / 4)
            .ok()
            .and_then(|i| b.get(i).copied())
            .unwrap_or(0);
        match (byte >> (2 * (xid % 4))) & 0b11 {
            0b01 => XidStatus::Committed,
            0b10 => XidStatus::Aborted,
            _ => XidStatus::InProgress,
        }
    }

    /// Records the final status of `xid`.
    pub fn set(&self, xid: u64, status: XidStatus) {
        let code: u8 = match status {
            XidStatus::InProgress => 0,
            XidStatus::Committed => 0b01,
            XidStatus::Aborted => 0b10,
        };
        let Ok(i) = usize::try_from(xid / 4) else {
            return;
        };
        let shift = 2 * (xid % 4);
        let mut b = self.bits.write();
        if b.len() <= i {
            b.resize(i + 1, 0);
        }
        if let Some(byte) = b.get_mut(i) {
            *byte = (*byte & !(0b11 << shift)) | (code << shift);
        }
    }

    /// Marks every xid in `[FIRST_XID, below)` still in progress as aborted: after a
    /// crash nothing is running. Returns how many were aborted.
    pub fn abort_in_progress(&self, below: u64) -> u64 {
        let mut n = 0;
        for x in FIRST_XID..below {
            if self.get(x) == XidStatus::InProgress {
                self.set(x, XidStatus::Aborted);
                n += 1;
            }
        }
        n
    }
}
