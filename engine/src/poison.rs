//! The poison flag: set when an fsync (or a write that was about to be synced) fails,
//! or a failpoint simulates a crash. [`Error::Poisoned`] then names what failed: the
//! operation and file of the first I/O error (`an earlier write on … failed (No space
//! left on device)`), not always "fsync".
//!
//! After such a failure the engine cannot know what reached the disk, and the kernel may
//! have dropped the dirty pages it failed to write, so a retried fsync could "succeed"
//! without the data. The only honest answer is to refuse every further write and let
//! recovery, on reopen, rebuild the state from what is durable.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared by every writer of one node.
#[derive(Debug, Default)]
pub struct Poison {
    set: AtomicBool,
    reason: Mutex<String>,
}

impl Poison {
    /// Fails with [`Error::Poisoned`] once poisoned.
    pub fn check(&self) -> Result<()> {
        if self.set.load(Ordering::Acquire) {
            Err(Error::Poisoned(self.reason.lock().clone()))
        } else {
            Ok(())
        }
    }

    /// Poisons the node (the first reason is kept).
    pub fn set(&self, cause: &Error) {
        let mut r = self.reason.lock();
        if !self.set.load(Ordering::Acquire) {
            *r = describe(cause);
            self.set.store(true, Ordering::Release);
        }
    }

    /// True once poisoned.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }
}

/// What failed, for [`Error::Poisoned`]'s message: "an earlier write on F failed (why)".
fn describe(cause: &Error) -> String {
    match cause {
        Error::Io { op, path, source } => {
            format!("an earlier {op} on {} failed ({source})", path.display())
        }
        Error::Failpoint(name) => format!("failpoint {name} simulated a crash"),
        Error::Poisoned(inner) => inner.clone(),
        other => format!("an earlier operation failed ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_operation_that_failed() {
        let p = Poison::default();
        assert!(p.check().is_ok());
        let e = Error::io(
            "write",
            "wal/0000000000000001.wal",
            std::io::Error::from_raw_os_error(28),
        );
        p.set(&e);
        // A later cause does not replace the first.
        p.set(&Error::io(
            "fsync",
            "x",
            std::io::Error::from_raw_os_error(5),
        ));
        let m = p.check().unwrap_err().to_string();
        assert!(
            m.starts_with(
                "node refuses writes: an earlier write on wal/0000000000000001.wal failed ("
            ),
            "{m}"
        );
        assert!(!m.contains("fsync"), "{m}");
        assert!(m.ends_with("; reopen to recover"), "{m}");
    }
}
