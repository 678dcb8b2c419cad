//! A small synchronous PostgreSQL client for the operator tools (`gpexpand`,
//! `gpshrink`): they are clients of a running `segexpand serve`, as gpexpand is of
//! Greenplum. Startup with trust, cleartext or SCRAM-SHA-256 authentication and the
//! simple query protocol; rows come back as text. Message framing and SCRAM are
//! `postgres-protocol`'s (already built for the server's pgwire).

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Where and as whom to connect: gpexpand's `-h/-p/-U` and `PGHOST`/`PGPORT`/`PGUSER`/
/// `PGDATABASE`/`PGPASSWORD`.
#[derive(Debug, Clone)]
pub struct ConnParams {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Database name.
    pub database: String,
    /// Password, if the server asks for one.
    pub password: Option<String>,
}

/// An error from the server (with its SQLSTATE) or from the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// SQLSTATE (`08006` for a connection failure).
    pub code: String,
    /// The primary message.
    pub message: String,
    /// The detail, if any.
    pub detail: Option<String>,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)?;
        if let Some(d) = &self.detail {
            write!(f, "; {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WireError {}

fn conn_err(what: impl std::fmt::Display) -> WireError {
    WireError {
        code: "08006".into(),
        message: what.to_string(),
        detail: None,
    }
}

/// What one statement returned: its rows (text, NULL as `None`), its command tag and the
/// notices the server sent while it ran.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Option<String>>>,
    /// Command tag (`SELECT 3`, `ALTER TABLE`).
    pub tag: String,
    /// Notices, in order.
    pub notices: Vec<String>,
}

impl Reply {
    /// The first column of the first row, if any and not NULL.
    pub fn scalar(&self) -> Option<&str> {
        self.rows.first()?.first()?.as_deref()
    }
}

/// One connection.
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
    /// The server's process id for this session (for `pg_cancel_backend`).
    pub pid: i32,
}

impl Client {
    /// Connects and authenticates.
    pub fn connect(p: &ConnParams) -> Result<Self, WireError> {
        let stream = TcpStream::connect((p.host.as_str(), p.port))
            .map_err(|e| conn_err(format!("could not connect to {}:{}: {e}", p.host, p.port)))?;
        let _ = stream.set_nodelay(true);
        let mut c = Self {
            stream,
            buf: BytesMut::new(),
            pid: 0,
        };
        let mut out = BytesMut::new();
        frontend::startup_message(
            [
                ("user", p.user.as_str()),
                ("database", p.database.as_str()),
                ("application_name", "segexpand gpexpand"),
            ],
            &mut out,
        )
        .map_err(conn_err)?;
        c.send(&out)?;
        let mut scram: Option<ScramSha256> = None;
        let password = || {
            p.password
                .clone()
                .ok_or_else(|| conn_err("the server asks for a password: set PGPASSWORD"))
        };
        loop {
            match c.next()? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    let mut out = BytesMut::new();
                    frontend::password_message(password()?.as_bytes(), &mut out)
                        .map_err(conn_err)?;
                    c.send(&out)?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut mechs = body.mechanisms();
                    let mut ok = false;
                    while let Some(m) = mechs.next().map_err(conn_err)? {
                        ok |= m == SCRAM_SHA_256;
                    }
                    if !ok {
                        return Err(conn_err("the server offers no SASL mechanism we know"));
                    }
                    let s = ScramSha256::new(password()?.as_bytes(), ChannelBinding::unsupported());
                    let mut out = BytesMut::new();
                    frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out)
                        .map_err(conn_err)?;
                    c.send(&out)?;
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| conn_err("SASL continue before SASL start"))?;
                    s.update(body.data()).map_err(conn_err)?;
                    let mut out = BytesMut::new();
                    frontend::sasl_response(s.message(), &mut out).map_err(conn_err)?;
                    c.send(&out)?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| conn_err("SASL final before SASL start"))?;
                    s.finish(body.data()).map_err(conn_err)?;
                }
                Message::BackendKeyData(k) => c.pid = k.process_id(),
                Message::ParameterStatus(_) | Message::NoticeResponse(_) => {}
                Message::ErrorResponse(e) => return Err(server_error(&e)?),
                Message::ReadyForQuery(_) => return Ok(c),
                _ => return Err(conn_err("unexpected message during startup")),
            }
        }
    }

    /// Connects, retrying for up to `wait` while the server is not accepting
    /// connections yet (a server being restarted).
    pub fn connect_retrying(p: &ConnParams, wait: Duration) -> Result<Self, WireError> {
        let until = std::time::Instant::now() + wait;
        loop {
            match Self::connect(p) {
                Ok(c) => return Ok(c),
                Err(e) if e.code == "08006" && std::time::Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs one statement (simple protocol) and returns its reply, or the server's error.
    pub fn query(&mut self, sql: &str) -> Result<Reply, WireError> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).map_err(conn_err)?;
        self.send(&out)?;
        let mut reply = Reply::default();
        let mut failed = None;
        loop {
            match self.next()? {
                Message::RowDescription(d) => {
                    let mut f = d.fields();
                    while let Some(field) = f.next().map_err(conn_err)? {
                        reply.columns.push(field.name().to_string());
                    }
                }
                Message::DataRow(r) => {
                    let buf = r.buffer();
                    let mut row = Vec::new();
                    let mut ranges = r.ranges();
                    while let Some(range) = ranges.next().map_err(conn_err)? {
                        row.push(range.map(|r| {
                            String::from_utf8_lossy(buf.get(r).unwrap_or_default()).into_owned()
                        }));
                    }
                    reply.rows.push(row);
                }
                Message::CommandComplete(c) => {
                    reply.tag = c.tag().map_err(conn_err)?.to_string();
                }
                Message::NoticeResponse(n) => {
                    let mut f = n.fields();
                    while let Some(field) = f.next().map_err(conn_err)? {
                        if field.type_() == b'M' {
                            reply
                                .notices
                                .push(String::from_utf8_lossy(field.value_bytes()).into_owned());
                        }
                    }
                }
                Message::ErrorResponse(e) => failed = Some(server_error(&e)?),
                Message::ReadyForQuery(_) => {
                    return match failed {
                        Some(e) => Err(e),
                        None => Ok(reply),
                    }
                }
                Message::EmptyQueryResponse | Message::ParameterStatus(_) => {}
                _ => return Err(conn_err("unexpected message in a query's reply")),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.stream
            .write_all(bytes)
            .map_err(|e| conn_err(format!("connection lost: {e}")))
    }

    fn next(&mut self) -> Result<Message, WireError> {
        loop {
            if let Some(m) = Message::parse(&mut self.buf).map_err(conn_err)? {
                return Ok(m);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| conn_err(format!("connection lost: {e}")))?;
            if n == 0 {
                return Err(conn_err("the server closed the connection"));
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        let _ = self.stream.write_all(&out);
    }
}

fn server_error(
    e: &postgres_protocol::message::backend::ErrorResponseBody,
) -> Result<WireError, WireError> {
    let mut out = WireError {
        code: String::new(),
        message: String::new(),
        detail: None,
    };
    let mut f = e.fields();
    while let Some(field) = f.next().map_err(conn_err)? {
        let v = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'C' => out.code = v,
            b'M' => out.message = v,
            b'D' => out.detail = Some(v),
            _ => {}
        }
    }
    Ok(out)
}

/// `s` as a SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
