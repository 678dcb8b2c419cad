//! Named failpoints: places in the redistribution protocol where a test (or a fault
//! drill) can make the engine fail — with an error, or as if the process died there.
//!
//! A failpoint costs one atomic load when nothing is armed. They are an enum
//! ([`Failpoint`]), so a call site cannot name one that does not exist;
//! `docs/redistribution.md` lists every name with what a crash there leaves behind.

use crate::error::{Error, Result};
use crate::lock::{rank, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};

macro_rules! failpoints {
    ($($(#[$doc:meta])* $v:ident = $name:literal,)*) => {
        /// A place in the redistribution protocol where a test or a fault drill can make
        /// the engine fail. `docs/redistribution.md` says what a crash at each leaves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Failpoint {
            $($(#[$doc])* $v,)*
        }

        impl Failpoint {
            /// Every failpoint, in protocol order.
            pub const ALL: &'static [Failpoint] = &[$(Failpoint::$v),*];

            /// The failpoint's name, `phase.step` (as in `docs/redistribution.md`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Failpoint::$v => $name,)*
                }
            }
        }
    };
}

failpoints! {
    /// A start has drained DML and holds it off.
    StartDmlDrained = "start.dml_drained",
    /// A start's catalog record (the redistribution in progress) is written.
    StartCatalogWritten = "start.catalog_written",
    /// A mover has claimed the old version of a row.
    MoveOldVersionClaimed = "move.old_version_claimed",
    /// A mover has written the new version on the target segment.
    MoveNewVersionWritten = "move.new_version_written",
    /// A mover has ended the old version (xmax set, link to the new one).
    MoveOldVersionEnded = "move.old_version_ended",
    /// A mover has set the moved bits.
    MoveBitsFlipped = "move.bits_flipped",
    /// A mover's batch is written (not yet committed).
    MoveBatchWritten = "move.batch_written",
    /// A mover's batch is committed.
    MoveBatchCommitted = "move.batch_committed",
    /// A mover has set a block's visibility-map bit.
    MoveVmSet = "move.vm_set",
    /// A cancel has drained DML.
    CancelDmlDrained = "cancel.dml_drained",
    /// A cancel's catalog record is written.
    CancelCatalogWritten = "cancel.catalog_written",
    /// A flip has drained DML.
    FlipDmlDrained = "flip.dml_drained",
    /// A flip's catalog record (the new layout) is written.
    FlipCatalogWritten = "flip.catalog_written",
    /// A flip is applied in memory.
    FlipApplied = "flip.applied",
    /// Cleanup has pruned the versions the flip left behind.
    CleanupPruned = "cleanup.pruned",
}

impl std::fmt::Display for Failpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Failpoint {
    type Err = Error;

    /// Parses a failpoint's name (fault drills name them on a command line).
    fn from_str(s: &str) -> Result<Self> {
        Failpoint::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Failpoint::ALL.iter().map(|f| f.name()).collect();
                Error::InvalidArgument(format!("no failpoint {s:?}; the failpoints are {names:?}"))
            })
    }
}

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
    point: Failpoint,
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
    /// Arms `point` to fire `action` at its `skip + 1`-th hit (once).
    pub fn arm(&self, point: Failpoint, action: FailAction, skip: u64) {
        let mut armed = self.armed.lock();
        armed.retain(|a| a.point != point);
        armed.push(Armed {
            point,
            action,
            skip,
        });
        self.any.store(true, Ordering::Release);
    }

    /// Disarms every failpoint.
    pub fn clear(&self) {
        self.armed.lock().clear();
        self.any.store(false, Ordering::Release);
    }

    /// Reports whether `point` fires now (and disarms it if so).
    pub(crate) fn hit(&self, point: Failpoint) -> Option<FailAction> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let mut armed = self.armed.lock();
        let i = armed.iter().position(|a| a.point == point)?;
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
    fn fires_once_after_skips_and_names_parse_back() {
        let f = Failpoints::default();
        f.arm(Failpoint::FlipApplied, FailAction::Crash, 2);
        assert_eq!(f.hit(Failpoint::FlipApplied), None);
        assert_eq!(f.hit(Failpoint::MoveVmSet), None);
        assert_eq!(f.hit(Failpoint::FlipApplied), None);
        assert_eq!(f.hit(Failpoint::FlipApplied), Some(FailAction::Crash));
        assert_eq!(f.hit(Failpoint::FlipApplied), None);
        for p in Failpoint::ALL {
            assert_eq!(p.name().parse::<Failpoint>().ok(), Some(*p));
        }
        assert!("no.such".parse::<Failpoint>().is_err());
        assert_eq!(Failpoint::ALL.len(), 15);
    }
}
