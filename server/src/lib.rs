//! segexpand's PostgreSQL wire-protocol server: `pgwire` on tokio, one
//! [`segexpand_sql::Session`] per connection. The only crate that knows the protocol.
//!
//! - Startup: SSL requests are answered "no"; trust authentication, or SCRAM-SHA-256
//!   (the password never crosses the wire) when one is configured; the startup parameters psql 15 and pgbench 15
//!   expect (`server_version` 15.0). Connections past the limit get SQLSTATE 53300.
//! - Simple query: every statement of the string in turn, stopping at the first error;
//!   notices first; the transaction status in each ReadyForQuery.
//! - Extended query: Parse/Bind/Describe/Execute/Sync, named and unnamed statements and
//!   portals, parameters sent without type OIDs typed from context (pgbench does that).
//! - One thread per connection, with a single-threaded runtime, as PostgreSQL runs a
//!   process per connection: a statement runs where its message arrived (no hand-off
//!   between threads), and one that waits (a row lock, its commit's fsync) holds up
//!   only its own client.
//! - A client that goes away mid-transaction: its session is dropped, which rolls back.

use async_trait::async_trait;
use bytes::Bytes;
use futures::{stream, Sink, SinkExt};
use parking_lot::Mutex;
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::{AuthDriver, StartupHandler};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    CopyResponse, DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, DEFAULT_NAME,
};
use pgwire::error::{
    ErrorInfo, PgWireError, PgWireResult, SEVERITY_ERROR, SEVERITY_FATAL, SEVERITY_NOTICE,
};
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::{NoData, ParameterDescription};
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_STATEMENT};
use pgwire::messages::response::NoticeResponse;
use pgwire::messages::PgWireBackendMessage;
use segexpand_engine::{Node, Type, Value};
use segexpand_sql::{value, Column, Output, Session, SqlError};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod cancel;
mod copy;
mod startup;

/// How the server listens.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on.
    pub listen: String,
    /// Port (0: any free port).
    pub port: u16,
    /// Most client connections at once; more are refused with 53300.
    pub max_connections: usize,
    /// A password every client must prove it knows (SCRAM-SHA-256); `None`: trust.
    pub password: Option<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: "127.0.0.1".into(),
            port: 5432,
            max_connections: 100,
            password: None,
        }
    }
}

struct Shared {
    node: Arc<Node>,
    conns: Arc<ConnectionManager>,
    active: AtomicUsize,
    max: usize,
    /// Set at shutdown: sessions commit nothing more (57P01).
    terminating: Arc<std::sync::atomic::AtomicBool>,
    /// Each authenticated connection's pid → its secret key and its session's cancel
    /// flag.
    backends: Mutex<std::collections::HashMap<i32, (Bytes, Arc<std::sync::atomic::AtomicBool>)>>,
}

/// One connection: its session (created at startup) and its auth state.
struct Conn {
    shared: Arc<Shared>,
    session: Arc<Mutex<Option<Session>>>,
    /// A COPY FROM STDIN in progress: its table, columns and the data so far.
    copy: Mutex<Option<copy::CopyIn>>,
    slot: AtomicUsize,
    /// The pid the client was given (0 before authentication).
    pid: std::sync::atomic::AtomicI32,
    driver: AuthDriver<startup::Params>,
    auth: Option<Arc<dyn AuthMechanismFactory>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Dropping the session rolls back its open transaction.
        self.session.lock().take();
        if self.slot.load(Ordering::Acquire) == 1 {
            self.shared.active.fetch_sub(1, Ordering::AcqRel);
        }
        let pid = self.pid.load(Ordering::Acquire);
        if pid != 0 {
            self.shared.backends.lock().remove(&pid);
        }
    }
}

struct Handlers {
    conn: Arc<Conn>,
    cancel: Arc<cancel::Cancels>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.conn.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.conn.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.conn.clone()
    }
    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.conn.clone()
    }
    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}

fn user_error(e: &SqlError) -> Box<ErrorInfo> {
    let mut info = ErrorInfo::new(SEVERITY_ERROR.into(), e.sqlstate.into(), e.message.clone());
    info.detail = e.detail.clone();
    info.hint = e.hint.clone();
    Box::new(info)
}

fn pg_type(ty: Type) -> pgwire::api::Type {
    pgwire::api::Type::from_oid(value::type_oid(ty)).unwrap_or(pgwire::api::Type::TEXT)
}

fn fields(columns: &[Column], fmt: Option<&Format>) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let f = fmt.map_or(FieldFormat::Text, |f| f.format_for(i));
            FieldInfo::new(c.name.clone(), None, None, pg_type(c.ty), f)
        })
        .collect()
}

/// A command tag (`INSERT 0 3`) as pgwire's `Tag`.
fn tag(text: &str) -> Tag {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["INSERT", oid, n] => match (oid.parse::<u32>(), n.parse::<usize>()) {
            (Ok(o), Ok(n)) => Tag::new("INSERT").with_oid(o).with_rows(n),
            _ => Tag::new(text),
        },
        [cmd @ ("UPDATE" | "DELETE" | "SELECT" | "COPY"), n] => match n.parse::<usize>() {
            Ok(n) => Tag::new(cmd).with_rows(n),
            Err(_) => Tag::new(text),
        },
        _ => Tag::new(text),
    }
}

fn response(out: Output, fmt: Option<&Format>) -> PgWireResult<Response> {
    Ok(match out {
        Output::Rows { columns, rows } => {
            let schema = Arc::new(fields(&columns, fmt));
            let mut encoded = Vec::with_capacity(rows.len());
            for r in rows {
                let mut enc = DataRowEncoder::new(schema.clone());
                for v in &r {
                    enc.encode_field(v)?;
                }
                encoded.push(Ok(enc.take_row()));
            }
            Response::Query(QueryResponse::new(schema, stream::iter(encoded)))
        }
        Output::Command(t) if t == "BEGIN" => Response::TransactionStart(tag(&t)),
        Output::Command(t) if t == "COMMIT" || t == "ROLLBACK" => Response::TransactionEnd(tag(&t)),
        Output::Command(t) => Response::Execution(tag(&t)),
        Output::Empty => Response::EmptyQuery,
        Output::CopyIn { columns, .. } => {
            Response::CopyIn(CopyResponse::new(0, columns.len(), stream::empty()))
        }
        Output::CopyOut { columns, lines } => {
            let data: Vec<PgWireResult<CopyData>> = lines
                .into_iter()
                .map(|l| Ok(CopyData::new(Bytes::from(l))))
                .collect();
            Response::CopyOut(CopyResponse::new(0, columns, stream::iter(data)))
        }
    })
}

impl Conn {
    /// Runs `f` on the session, on this connection's own thread: each connection is
    /// served by a thread of its own (with a single-threaded runtime), as PostgreSQL
    /// serves each by a process, so a statement that waits — for a row lock, for its
    /// commit's fsync — holds up only its own client, and a statement costs no hand-off
    /// between threads.
    async fn with_session<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> T + Send + 'static,
    ) -> PgWireResult<T> {
        let mut g = self.session.lock();
        match g.as_mut() {
            Some(s) => Ok(f(s)),
            None => Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                SEVERITY_FATAL.into(),
                "08P01".into(),
                "no session: the startup did not complete".into(),
            )))),
        }
    }

    async fn send_notices<C>(&self, client: &mut C, notices: Vec<String>) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        for n in notices {
            client
                .send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
                    ErrorInfo::new(SEVERITY_NOTICE.into(), "00000".into(), n),
                )))
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl SimpleQueryHandler for Conn {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let q = query.to_string();
        let (results, notices) = self
            .with_session(move |s| {
                let r = s.execute(&q);
                (r, s.take_notices())
            })
            .await?;
        self.send_notices(client, notices).await?;
        let mut out = Vec::new();
        for r in results {
            match r {
                Ok(Output::CopyIn { table, columns }) => {
                    let n = columns.len();
                    *self.copy.lock() = Some(copy::CopyIn {
                        table,
                        columns,
                        data: Vec::new(),
                    });
                    out.push(Response::CopyIn(CopyResponse::new(0, n, stream::empty())));
                    break;
                }
                Ok(o) => out.push(response(o, None)?),
                Err(e) => {
                    out.push(Response::Error(user_error(&e)));
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// A prepared statement: its text, parameter types and result columns.
#[derive(Debug, Clone)]
pub struct Prepared {
    stmt: segexpand_sql::Prepared,
    params: Vec<Type>,
    columns: Vec<Column>,
}

struct Parser {
    session: Arc<Mutex<Option<Session>>>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _c: &C,
        sql: &str,
        types: &[Option<pgwire::api::Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let described = {
            let mut g = self.session.lock();
            match g.as_mut() {
                Some(s) => s.prepare(sql),
                None => Err(SqlError::new("08P01", "no session")),
            }
        };
        let (stmt, mut params, columns) =
            described.map_err(|e| PgWireError::UserError(user_error(&e)))?;
        for (i, t) in types.iter().enumerate() {
            if let Some(t) = t.as_ref().and_then(|t| value::type_of_oid(t.oid())) {
                if params.len() <= i {
                    params.resize(i + 1, Type::Text);
                }
                if let Some(slot) = params.get_mut(i) {
                    *slot = t;
                }
            }
        }
        Ok(Some(Prepared {
            stmt,
            params,
            columns,
        }))
    }

    fn get_parameter_types(&self, p: &Prepared) -> PgWireResult<Vec<pgwire::api::Type>> {
        Ok(p.params.iter().map(|t| pg_type(*t)).collect())
    }

    fn get_result_schema(
        &self,
        p: &Prepared,
        fmt: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(fields(&p.columns, fmt))
    }
}

#[async_trait]
impl ExtendedQueryHandler for Conn {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        Arc::new(Parser {
            session: self.session.clone(),
        })
    }

    /// pgwire answers Describe of a statement with parameters and no result columns
    /// with an empty RowDescription; PostgreSQL sends NoData, which clients expect.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
            if let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                if stmt.statement.columns.is_empty() {
                    let oids = stmt
                        .parameter_types
                        .iter()
                        .enumerate()
                        .map(|(i, t)| match t {
                            Some(t) => t.oid(),
                            None => stmt
                                .statement
                                .params
                                .get(i)
                                .map_or(25, |t| value::type_oid(*t)),
                        })
                        .collect();
                    client
                        .feed(PgWireBackendMessage::ParameterDescription(
                            ParameterDescription::new(oids),
                        ))
                        .await?;
                    client
                        .feed(PgWireBackendMessage::NoData(NoData::new()))
                        .await?;
                    return Ok(());
                }
            }
        }
        self._on_describe(client, message).await
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let stmt = &portal.statement.statement;
        let mut params = Vec::with_capacity(portal.parameters.len());
        for (i, p) in portal.parameters.iter().enumerate() {
            if portal.parameter_format.is_binary(i) {
                return Err(PgWireError::UserError(user_error(&SqlError::unsupported(
                    "binary parameters are not supported",
                ))));
            }
            let ty = stmt.params.get(i).copied().unwrap_or(Type::Text);
            let v = match p {
                None => Value::Null,
                Some(b) => {
                    let text = String::from_utf8_lossy(b);
                    value::from_text(ty, &text)
                        .map_err(|e| PgWireError::UserError(user_error(&e)))?
                }
            };
            params.push(v);
        }
        let prepared = stmt.stmt.clone();
        let (result, notices) = self
            .with_session(move |s| {
                let r = s.execute_prepared(&prepared, &params);
                (r, s.take_notices())
            })
            .await?;
        self.send_notices(client, notices).await?;
        match result {
            Ok(o) => response(o, Some(&portal.result_column_format)),
            Err(e) => Err(PgWireError::UserError(user_error(&e))),
        }
    }
}

/// Serves `node` on `listener` until `shutdown` completes; then stops accepting, ends
/// every connection (their sessions roll back) and returns.
pub async fn serve(
    node: Arc<Node>,
    opts: &ServerOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let conns = Arc::new(ConnectionManager::new());
    let shared = Arc::new(Shared {
        node,
        conns: conns.clone(),
        active: AtomicUsize::new(0),
        max: opts.max_connections,
        terminating: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        backends: Mutex::new(std::collections::HashMap::new()),
    });
    let cancel = Arc::new(cancel::Cancels(shared.clone()));
    // One generator for every connection: each gets its own pid (a generator per
    // connection gave them all the same one, and a cancel by pid reached the wrong one).
    let pids: Arc<dyn pgwire::api::PidSecretKeyGenerator> =
        Arc::new(pgwire::api::RandomPidSecretKeyGenerator::default());
    // SCRAM-SHA-256 when a password is set: its salted form is computed once.
    let scram: Option<Arc<dyn AuthMechanismFactory>> = opts.password.as_deref().map(|p| {
        let source: Arc<dyn pgwire::api::auth::AuthSource> =
            Arc::new(startup::ScramPassword::new(p));
        let scram = Arc::new(pgwire::api::auth::sasl::scram::ScramAuth::new(source))
            as Arc<dyn pgwire::api::auth::sasl::SaslMechanismFactory>;
        Arc::new(pgwire::api::auth::sasl::SaslMechanisms::new(vec![scram]))
            as Arc<dyn AuthMechanismFactory>
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut threads: Vec<std::thread::JoinHandle<()>> = Vec::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (sock, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        log::warn!("accept failed: {e}");
                        continue;
                    }
                };
                let _ = sock.set_nodelay(true);
                let conn = Arc::new(Conn {
                    shared: shared.clone(),
                    session: Arc::new(Mutex::new(None)),
                    copy: Mutex::new(None),
                    slot: AtomicUsize::new(0),
                    pid: std::sync::atomic::AtomicI32::new(0),
                    driver: AuthDriver::new(startup::Params)
                        .with_connection_manager(shared.conns.clone())
                        .with_pid_secret_key_generator(pids.clone()),
                    auth: scram.clone(),
                });
                let handlers = Handlers { conn, cancel: cancel.clone() };
                let sock = match sock.into_std() {
                    Ok(s) => s,
                    Err(e) => {
                        log::warn!("cannot hand the connection to its thread: {e}");
                        continue;
                    }
                };
                let mut stop = stop_rx.clone();
                let spawned = std::thread::Builder::new()
                    .name("segexpand-conn".into())
                    // Parsing and planning recurse with the statement's nesting (bounded
                    // by segexpand_sql::expr::EXPR_DEPTH_MAX).
                    .stack_size(8 << 20)
                    .spawn(move || {
                        let rt = match tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            Ok(rt) => rt,
                            Err(e) => {
                                log::warn!("cannot start a connection's runtime: {e}");
                                return;
                            }
                        };
                        rt.block_on(async move {
                            let sock = match tokio::net::TcpStream::from_std(sock) {
                                Ok(s) => s,
                                Err(e) => {
                                    log::warn!("connection lost at hand-off: {e}");
                                    return;
                                }
                            };
                            tokio::select! {
                                r = pgwire::tokio::process_socket(sock, None, handlers) => {
                                    if let Err(e) = r {
                                        log::debug!("connection ended: {e}");
                                    }
                                }
                                _ = stop.wait_for(|s| *s) => {}
                            }
                        });
                    });
                match spawned {
                    Ok(h) => threads.push(h),
                    Err(e) => log::warn!("cannot start a connection thread: {e}"),
                }
                threads.retain(|h| !h.is_finished());
            }
        }
    }
    // A statement still running (say, waiting for a row lock) finishes after its client
    // is gone: it must not commit then. Its wait is cancelled, and every connection is
    // told to end; their sessions roll back as they drop.
    shared.terminating.store(true, Ordering::Release);
    for (_, (_, flag)) in shared.backends.lock().iter() {
        flag.store(true, Ordering::Release);
    }
    let _ = stop_tx.send(true);
    let _ = tokio::task::spawn_blocking(move || {
        for h in threads {
            let _ = h.join();
        }
    })
    .await;
    Ok(())
}

/// Binds, calls `ready` with the address, and serves until SIGINT or SIGTERM.
pub fn run(
    node: Arc<Node>,
    opts: &ServerOptions,
    ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    // This runtime only accepts connections and waits for the signals: each
    // connection runs on a thread of its own (see `serve`).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind((opts.listen.as_str(), opts.port)).await?;
        ready(listener.local_addr()?);
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(e) => {
                        log::warn!("cannot watch SIGTERM: {e}");
                        let _ = tokio::signal::ctrl_c().await;
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        serve(node, opts, listener, shutdown).await
    })
}
