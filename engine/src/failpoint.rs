//! Named failpoints: places in the redistribution protocol where a test (or a fault
//! drill) can make the engine fail — with an error, or as if the process died there.
//!
//! A failpoint costs one atomic load when nothing is armed. `docs/redistribution.md`
//! lists every name with what a crash there leaves behind.

use crate::error::{Error, Result};
use crate::lock::{rank, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};

/// Every failpoint, in protocol order.
pub const FAILPOINTS: &[&str] = &[
    "start.dml_drained",
    "start.catalog_written",
    "move.old_version_claimed",
    "move.new_version_written",
    "move.old_version_ended",
    "move.bits_flipped",
    "move.batch_written",
    "move.batch_committed",
    "move.vm_set",
    "cancel.dml_drained",
    "cancel.catalog_written",
    "flip.dml_drained",
    "flip.catalog_written",
    "flip.applied",
    "cleanup.pruned",
];

/// What an armed failpoint does when reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailAction {
    /// Return [`Error::Failpoint`]; the operation must undo or finish what it started.
    Error,
    /// Return [`Error::Failpoint`] and poison the node: nothing more reaches the disk, as
    /// if the process had died here. The test then recovers from the durable state.
    Crash,
}

#[derive(Debug)]
struct Armed {
    name: &'static str,
    action: FailAction,
    /// Hits to let pass before firing.
    skip: u64,
}

/// The failpoints of one node.
#[derive(Debug, Default)]
pub struct Failpoints {
    any: AtomicBool,
    armed: Mutex<Vec<Armed>, rank::Failpoints>,
}

impl Failpoints {
    /// Arms `name` to fire `action` at its `skip + 1`-th hit (once).
    pub fn arm(&self, name: &str, action: FailAction, skip: u64) -> Result<()> {
        let Some(name) = FAILPOINTS.iter().copied().find(|n| *n == name) else {
            return Err(Error::InvalidArgument(format!(
                "no failpoint {name:?}; the failpoints are {FAILPOINTS:?}"
            )));
        };
        let mut armed = self.armed.lock();
        armed.retain(|a| a.name != name);
        armed.push(Armed { name, action, skip });
        self.any.store(true, Ordering::Release);
        Ok(())
    }

    /// Disarms every failpoint.
    pub fn clear(&self) {
        self.armed.lock().clear();
        self.any.store(false, Ordering::Release);
    }

    /// Reports whether `name` fires now (and disarms it if so).
    pub(crate) fn hit(&self, name: &'static str) -> Option<FailAction> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let mut armed = self.armed.lock();
        let i = armed.iter().position(|a| a.name == name)?;
        let a = armed.get_mut(i)?;
        if a.skip > 0 {
            a.skip -= 1;
            return None;
        }
        let action = a.action;
        armed.swap_remove(i);
        if armed.is_empty() {
            self.any.store(false, Ordering::Release);
        }
        Some(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_after_skips_and_rejects_unknown_names() {
        let f = Failpoints::default();
        assert!(f.arm("no.such", FailAction::Error, 0).is_err());
        f.arm("flip.applied", FailAction::Crash, 2).unwrap();
        assert_eq!(f.hit("flip.applied"), None);
        assert_eq!(f.hit("move.vm_set"), None);
        assert_eq!(f.hit("flip.applied"), None);
        assert_eq!(f.hit("flip.applied"), Some(FailAction::Crash));
        assert_eq!(f.hit("flip.applied"), None);
    }
}
