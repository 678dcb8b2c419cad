//! COPY FROM STDIN: the data is kept until CopyDone and loaded as one statement
//! (`Session::copy_in`); a CopyFail, or a client that goes away, loads nothing.

use crate::{tag, user_error, Conn};
use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::copy::CopyHandler;
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::PgWireBackendMessage;
use segexpand_sql::SqlError;
use std::fmt::Debug;

pub(crate) struct CopyIn {
    pub(crate) table: String,
    pub(crate) columns: Vec<usize>,
    pub(crate) data: Vec<u8>,
}

fn copy_error(message: &str) -> PgWireError {
    PgWireError::UserError(user_error(&SqlError::new("08P01", message)))
}

#[async_trait]
impl CopyHandler for Conn {
    async fn on_copy_data<C>(&self, _client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut g = self.copy.lock();
        let c = g
            .as_mut()
            .ok_or_else(|| copy_error("no COPY in progress"))?;
        c.data.extend_from_slice(&data.data);
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let c = self
            .copy
            .lock()
            .take()
            .ok_or_else(|| copy_error("no COPY in progress"))?;
        let result = self
            .with_session(move |s| s.copy_in(&c.table, &c.columns, &c.data))
            .await?;
        match result {
            Ok(o) => {
                client
                    .send(PgWireBackendMessage::CommandComplete(tag(&o.tag()).into()))
                    .await?;
                Ok(())
            }
            Err(e) => Err(PgWireError::UserError(user_error(&e))),
        }
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.copy.lock().take();
        if let Some(s) = self.session.lock().as_mut() {
            s.copy_failed();
        }
        PgWireError::UserError(user_error(&SqlError::new(
            "57014",
            format!("COPY from stdin failed: {}", fail.message),
        )))
    }
}
