//! The poison flag: set when an fsync (or a write that was about to be synced) fails.
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
            *r = cause.to_string();
            self.set.store(true, Ordering::Release);
        }
    }

    /// True once poisoned.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }
}
