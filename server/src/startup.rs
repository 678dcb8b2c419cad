//! Connection startup: the parameters psql 15 and pgbench 15 expect, the connection
//! limit (53300), the session's creation, and trust or SCRAM-SHA-256 password auth.

use crate::Conn;
use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::driver::AuthOutcome;
use pgwire::api::auth::{AuthSource, LoginInfo, Password, ServerParameterProvider, StartupHandler};
use pgwire::api::ClientInfo;
use pgwire::error::{ErrorInfo, SEVERITY_FATAL};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::PgWireFrontendMessage;
use segexpand_sql::Session;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::Ordering;

pub(crate) struct Params;
impl ServerParameterProvider for Params {
    fn server_parameters<C: ClientInfo>(&self, c: &C) -> Option<HashMap<String, String>> {
        let user = c.metadata().get("user").cloned().unwrap_or_default();
        let app = c
            .metadata()
            .get("application_name")
            .cloned()
            .unwrap_or_default();
        let kv = [
            ("server_version", segexpand_sql::SERVER_VERSION.to_string()),
            ("server_encoding", "UTF8".into()),
            ("client_encoding", "UTF8".into()),
            ("DateStyle", "ISO, MDY".into()),
            ("IntervalStyle", "postgres".into()),
            ("TimeZone", "UTC".into()),
            ("integer_datetimes", "on".into()),
            ("standard_conforming_strings", "on".into()),
            ("is_superuser", "on".into()),
            ("session_authorization", user),
            ("application_name", app),
        ];
        Some(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

#[derive(Debug)]
/// The configured password, kept only as SCRAM-SHA-256's salted form: a random salt
/// per server start and `Hi(password, salt, 4096)`. Clients prove they know the
/// password without sending it.
pub(crate) struct ScramPassword {
    salt: Vec<u8>,
    salted: Vec<u8>,
}

impl ScramPassword {
    pub(crate) fn new(password: &str) -> ScramPassword {
        let salt = random_salt();
        let salted = pgwire::api::auth::sasl::scram::gen_salted_password(
            password,
            &salt,
            pgwire::api::auth::sasl::scram::SCRAM_ITERATIONS,
        );
        ScramPassword { salt, salted }
    }
}

#[async_trait]
impl AuthSource for ScramPassword {
    async fn get_password(&self, _l: &LoginInfo) -> PgWireResult<Password> {
        Ok(Password::new(Some(self.salt.clone()), self.salted.clone()))
    }
}

/// 16 bytes from the system's random source (the clock's nanoseconds mixed with the
/// process id if it cannot be read: a salt need not be secret, only unlikely to repeat).
fn random_salt() -> Vec<u8> {
    use std::io::Read;
    let mut salt = vec![0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut salt));
    if read.is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mixed = t ^ (u128::from(std::process::id()) << 64);
        salt = mixed.to_le_bytes().to_vec();
    }
    salt
}

#[async_trait]
impl StartupHandler for Conn {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                pgwire::api::auth::protocol_negotiation(client, startup).await?;
                pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                let n = self.shared.active.fetch_add(1, Ordering::AcqRel) + 1;
                if n > self.shared.max {
                    self.shared.active.fetch_sub(1, Ordering::AcqRel);
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        SEVERITY_FATAL.into(),
                        "53300".into(),
                        "sorry, too many clients already".into(),
                    ))));
                }
                self.slot.store(1, Ordering::Release);
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let db = client
                    .metadata()
                    .get("database")
                    .cloned()
                    .unwrap_or_else(|| user.clone());
                let mut session = Session::new(self.shared.node.clone(), &user, &db);
                session.set_terminate_flag(self.shared.terminating.clone());
                *self.session.lock() = Some(session);
                match &self.auth {
                    None => {
                        self.driver.complete_authentication(client, None).await?;
                        self.register_backend(client);
                    }
                    Some(f) => {
                        self.driver.begin_authentication(client, f.create()).await?;
                    }
                }
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(m) => {
                if let AuthOutcome::Authenticated { final_message, .. } =
                    self.driver.advance_authentication(client, m).await?
                {
                    self.driver
                        .complete_authentication(client, final_message)
                        .await?;
                    self.register_backend(client);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl Conn {
    /// Once the backend key data is sent: makes the session's statements cancellable by
    /// a cancel request with its pid and secret key, and by `pg_cancel_backend(pid)`.
    fn register_backend<C: ClientInfo>(&self, client: &C) {
        let (pid, key) = client.pid_and_secret_key();
        let mut g = self.session.lock();
        let Some(session) = g.as_mut() else { return };
        let weak = std::sync::Arc::downgrade(&self.shared);
        session.set_backend(
            pid,
            std::sync::Arc::new(move |target| {
                weak.upgrade()
                    .is_some_and(|shared| shared.cancel_backend(target, None))
            }),
        );
        self.shared
            .backends
            .lock()
            .insert(pid, (key.to_bytes(), session.cancel_flag()));
        self.pid.store(pid, Ordering::Release);
    }
}
