//! Cancel requests: a connection's pid and secret key name its session's cancel flag
//! (`Session::cancel_flag`); `pg_cancel_backend(pid)` sets it by pid alone.

use crate::Shared;
use bytes::Bytes;
use pgwire::api::cancel::CancelHandler;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Shared {
    /// Sets the cancel flag of the session with `pid` (if `secret` is given, only if it
    /// matches, as a cancel request must); whether one was found.
    pub(crate) fn cancel_backend(&self, pid: i32, secret: Option<&Bytes>) -> bool {
        match self.backends.lock().get(&pid) {
            Some((key, flag)) if secret.is_none_or(|s| s == key) => {
                flag.store(true, Ordering::Release);
                true
            }
            _ => false,
        }
    }
}

/// Answers cancel requests: sets the named session's cancel flag (its statement stops
/// with 57014 at its next check; see `Session::cancel_flag`).
pub(crate) struct Cancels(pub(crate) Arc<Shared>);

#[async_trait::async_trait]
impl CancelHandler for Cancels {
    async fn on_cancel_request(&self, req: pgwire::messages::cancel::CancelRequest) {
        if !self
            .0
            .cancel_backend(req.pid, Some(&req.secret_key.to_bytes()))
        {
            log::debug!("cancel request for unknown backend {}", req.pid);
        }
    }
}
