//! The SQL layer of segexpand: parses SQL with `sqlparser`, plans it over the engine's
//! tables and runs it in a session's transactions. No sockets: the server crate speaks
//! the wire protocol and hands statements here; tests drive a [`Session`] directly.
//!
//! A [`Session`] is one client's state: its open transaction block (or none: each
//! statement commits on its own), its settings, and notices waiting to be sent. What
//! the executor supports and refuses is in `docs/ARCHITECTURE.md` ("SQL").

mod defaults;
pub mod error;
pub mod eval;
pub mod expr;
pub mod value;

mod admin;
mod array;
mod catalog;
mod compile;
mod copy;
mod ddl;
mod dml;
mod prepared;
mod progress;
pub(crate) use prepared::PlanSlot;
pub use prepared::Prepared;
mod names;
mod schema;
mod select;
mod split;
mod walk;

pub use error::{SqlError, SqlResult};
pub use expr::SessionInfo;

use segexpand_engine::{Node, Txn, Type};
use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What `SHOW server_version` and the startup parameters report: a version psql 15 and
/// pgbench 15 accept.
pub const SERVER_VERSION: &str = "15.0";
/// What `version()` returns.
pub const SERVER_VERSION_STRING: &str =
    "PostgreSQL 15.0 (segexpand 0.1: online redistribution for MPP segments)";

/// A result column: name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: Type,
}

/// What one statement produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Rows in text format (None: NULL), with their command tag (`SELECT n`).
    Rows {
        /// The columns.
        columns: Vec<Column>,
        /// The rows.
        rows: Vec<Vec<Option<String>>>,
    },
    /// A command tag (`INSERT 0 3`, `CREATE TABLE`, …).
    Command(String),
    /// An empty query string.
    Empty,
    /// A `COPY … FROM STDIN` waiting for its data ([`Session::copy_in`]).
    CopyIn {
        /// The table, by its engine name (`s.t` for table `t` of schema `s`), as
        /// [`Session::copy_in`] takes it.
        table: String,
        /// The columns the data gives, by position.
        columns: Vec<usize>,
    },
    /// A `COPY … TO STDOUT`'s data: text-format lines, each ending in a newline.
    CopyOut {
        /// Columns per line.
        columns: usize,
        /// The lines.
        lines: Vec<String>,
    },
}

impl Output {
    /// The command tag to send.
    pub fn tag(&self) -> String {
        match self {
            Output::Rows { rows, .. } => format!("SELECT {}", rows.len()),
            Output::Command(t) => t.clone(),
            Output::Empty | Output::CopyIn { .. } => String::new(),
            Output::CopyOut { lines, .. } => format!("COPY {}", lines.len()),
        }
    }
}

/// The transaction state a client is told after each query (ReadyForQuery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    /// Not in a transaction block.
    Idle,
    /// In a transaction block.
    InBlock,
    /// In a failed transaction block: only ROLLBACK (or COMMIT, which rolls back) works.
    Failed,
}

/// One client's session.
pub struct Session {
    node: Arc<Node>,
    /// The open transaction block's transaction.
    txn: Option<Txn>,
    status: TxnStatus,
    settings: BTreeMap<String, String>,
    notices: Vec<String>,
    info: SessionInfo,
    /// The open block is the implicit one of a multi-statement query string.
    implicit: bool,
    /// Set when the server shuts down: nothing commits any more.
    terminating: Option<Arc<AtomicBool>>,
    /// This session's process id, as the server numbers connections.
    pid: i32,
    /// Cancels the statement running in the session with this pid (`pg_cancel_backend`).
    canceller: Option<Canceller>,
    /// The plan slot of the prepared statement running now, if any.
    pub(crate) plan_slot: Option<PlanSlot>,
    /// Bumped by every SET: a cached plan made under other settings is made again.
    pub(crate) settings_version: u64,
}

/// Cancels the running statement of the session with a process id; false if none has it.
pub type Canceller = Arc<dyn Fn(i32) -> bool + Send + Sync>;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("status", &self.status)
            .finish()
    }
}

impl Session {
    /// A session of `user` on database `database`.
    pub fn new(node: Arc<Node>, user: &str, database: &str) -> Self {
        let mut settings = BTreeMap::new();
        for (k, v) in [
            ("server_version", SERVER_VERSION),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("datestyle", "ISO, MDY"),
            ("timezone", "UTC"),
            ("standard_conforming_strings", "on"),
            ("integer_datetimes", "on"),
            ("transaction_isolation", "read committed"),
            ("default_transaction_isolation", "read committed"),
            ("search_path", "\"$user\", public"),
            ("application_name", ""),
        ] {
            settings.insert(k.to_string(), v.to_string());
        }
        Session {
            node,
            txn: None,
            status: TxnStatus::Idle,
            settings,
            notices: Vec::new(),
            info: SessionInfo {
                user: user.to_string(),
                database: database.to_string(),
                now: 0,
                cancel: Arc::new(AtomicBool::new(false)),
            },
            implicit: false,
            terminating: None,
            pid: 0,
            canceller: None,
            plan_slot: None,
            settings_version: 0,
        }
    }

    /// The flag that cancels this session's running statement (a server's cancel
    /// request sets it): the statement stops with 57014 at its next check — a lock wait,
    /// a redistribution's next batch (the redistribution is cancelled online and the
    /// table stays on its old layout), the end of a statement (which then rolls back
    /// instead of committing) — and a block fails as after any error. Cleared when the
    /// next query starts.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.info.cancel.clone()
    }

    /// Gives the session its process id (`pg_backend_pid()`) and the means to cancel
    /// another session's statement (`pg_cancel_backend(pid)`).
    pub fn set_backend(&mut self, pid: i32, canceller: Canceller) {
        self.pid = pid;
        self.canceller = Some(canceller);
    }

    /// 57014 if a cancel request came for the running statement.
    pub(crate) fn check_cancel(&self) -> SqlResult<()> {
        self.info.check_cancel()
    }

    /// A new transaction whose lock waits the cancel flag can break.
    fn begin(&self) -> SqlResult<Txn> {
        let mut tx = self.node.begin()?;
        tx.set_cancel_flag(self.info.cancel.clone());
        Ok(tx)
    }

    /// Makes the session refuse every commit once `flag` is set (a server shutting
    /// down: a statement still running then must not commit behind its client's back;
    /// it rolls back with 57P01).
    pub fn set_terminate_flag(&mut self, flag: Arc<AtomicBool>) {
        self.terminating = Some(flag);
    }

    /// Commits `tx`, unless the server is shutting down (then it rolls back: 57P01).
    fn commit_txn(&self, tx: Txn) -> SqlResult<()> {
        if self
            .terminating
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Acquire))
        {
            let _ = tx.rollback();
            return Err(SqlError::new(
                "57P01",
                "terminating connection due to administrator command",
            ));
        }
        tx.commit()?;
        Ok(())
    }

    /// The node.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The transaction state.
    pub fn status(&self) -> TxnStatus {
        self.status
    }

    /// Notices raised since the last call (send them before the results).
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// Runs a simple-protocol query string: every statement in turn, stopping at the
    /// first error (whose statement's effects are rolled back; in a block, the block
    /// fails). Returns one result per statement run.
    pub fn execute(&mut self, sql: &str) -> Vec<SqlResult<Output>> {
        self.info.cancel.store(false, Ordering::Release);
        let out = self.execute_string(sql);
        self.after_error(out.iter().any(Result::is_err));
        out
    }

    /// PostgreSQL aborts a transaction block on any error, whatever raised it (a parse
    /// error or a refused statement as much as a failed row write).
    fn after_error(&mut self, failed: bool) {
        if failed && self.status == TxnStatus::InBlock && !self.implicit {
            self.status = TxnStatus::Failed;
        }
    }

    fn execute_string(&mut self, sql: &str) -> Vec<SqlResult<Output>> {
        let pieces = match split::split(sql) {
            Ok(p) => p,
            Err(e) => return vec![Err(e)],
        };
        if pieces.is_empty() {
            return vec![Ok(Output::Empty)];
        }
        // Every statement is parsed before any runs: a syntax error anywhere in the
        // string runs nothing, as in PostgreSQL.
        let mut parsed = Vec::with_capacity(pieces.len());
        for p in pieces {
            let stmt = match &p {
                split::Piece::Sql { text, .. } => match parse_one(text) {
                    Ok(st) => Some(st),
                    Err(e) if self.status == TxnStatus::Failed => {
                        let _ = e;
                        return vec![Err(SqlError::in_failed_transaction())];
                    }
                    Err(e) => return vec![Err(e)],
                },
                _ => None,
            };
            parsed.push((p, stmt));
        }
        // Several statements outside a block run in one implicit transaction, all or
        // nothing (DDL excepted: it takes effect when it runs), unless the string itself
        // opens or ends a block or copies.
        let controls = parsed.iter().any(|(p, st)| {
            matches!(p, split::Piece::Copy { .. })
                || matches!(
                    st,
                    Some(
                        Statement::StartTransaction { .. }
                            | Statement::Commit { .. }
                            | Statement::Rollback { .. }
                    )
                )
        });
        let implicit = parsed.len() > 1 && self.status == TxnStatus::Idle && !controls;
        if implicit {
            match self.begin() {
                Ok(tx) => {
                    self.txn = Some(tx);
                    self.status = TxnStatus::InBlock;
                    self.implicit = true;
                }
                Err(e) => return vec![Err(e)],
            }
        }
        let mut out = Vec::new();
        for (p, stmt) in parsed {
            let r = match (&p, stmt) {
                (split::Piece::Sql { distribution, .. }, Some(st)) => {
                    self.run_parsed(&st, distribution.clone(), &[])
                }
                _ => self.run_piece(p, &[]),
            };
            // An error ends the string; so does a COPY FROM STDIN (its data comes next).
            let stop = matches!(r, Err(_) | Ok(Output::CopyIn { .. }));
            out.push(r);
            if stop {
                break;
            }
        }
        if implicit {
            self.implicit = false;
            self.status = TxnStatus::Idle;
            if let Some(tx) = self.txn.take() {
                if out.iter().any(Result::is_err) {
                    let _ = tx.rollback();
                } else if let Err(e) = self.commit_txn(tx) {
                    out.push(Err(e));
                }
            }
        }
        out
    }

    fn run_piece(
        &mut self,
        p: split::Piece,
        params: &[segexpand_engine::Value],
    ) -> SqlResult<Output> {
        if let split::Piece::Sql { text, distribution } = &p {
            let stmt = match parse_one(text) {
                Ok(s) => s,
                Err(e) if self.status == TxnStatus::Failed => {
                    let _ = e;
                    return Err(SqlError::in_failed_transaction());
                }
                Err(e) => return Err(e),
            };
            return self.run_parsed(&stmt, distribution.clone(), params);
        }
        self.info.now = now_micros();
        if self.status == TxnStatus::Failed {
            return Err(SqlError::in_failed_transaction());
        }
        match p {
            split::Piece::Sql { .. } => Err(SqlError::syntax("unreachable: parsed above")),
            split::Piece::Vacuum(tables) => ddl::vacuum(self, &tables),
            split::Piece::Expand(t) => ddl::expand(self, &t),
            split::Piece::SetDistributed(t, d) => ddl::set_distributed(self, &t, d),
            split::Piece::Copy { table, columns, to } => copy::start(self, &table, &columns, to),
            split::Piece::AddSegments(n) => ddl::add_segments(self, n),
            split::Piece::Admin(f, args) => admin::call(self, &f, &args),
            split::Piece::Shrink(t, n) => admin::shrink(self, &t, n),
            split::Piece::BackendPid => Ok(one_value(
                "pg_backend_pid",
                Type::Int4,
                self.pid.to_string(),
            )),
            split::Piece::CancelBackend(pid) => {
                let found = match (&self.canceller, i32::try_from(pid)) {
                    (Some(c), Ok(pid)) => c(pid),
                    _ => false,
                };
                if !found {
                    self.notices
                        .push(format!("PID {pid} is not a segexpand server process"));
                }
                Ok(one_value(
                    "pg_cancel_backend",
                    Type::Bool,
                    if found { "t" } else { "f" }.into(),
                ))
            }
        }
    }

    /// Runs a parsed statement: in a failed block only its end is accepted.
    fn run_parsed(
        &mut self,
        stmt: &Statement,
        distribution: Option<split::Distribution>,
        params: &[segexpand_engine::Value],
    ) -> SqlResult<Output> {
        self.info.now = now_micros();
        if self.status == TxnStatus::Failed {
            if matches!(stmt, Statement::Rollback { .. } | Statement::Commit { .. }) {
                return self.end_block(false);
            }
            return Err(SqlError::in_failed_transaction());
        }
        self.run_statement(stmt.clone(), distribution, params)
    }

    fn run_statement(
        &mut self,
        stmt: Statement,
        distribution: Option<split::Distribution>,
        params: &[segexpand_engine::Value],
    ) -> SqlResult<Output> {
        match stmt {
            Statement::StartTransaction { ref modes, .. } if !modes_supported(modes) => {
                Err(unsupported_modes())
            }
            Statement::StartTransaction { .. } => {
                if self.status == TxnStatus::InBlock {
                    self.notices
                        .push("there is already a transaction in progress".into());
                } else {
                    self.txn = Some(self.begin()?);
                    self.status = TxnStatus::InBlock;
                }
                Ok(Output::Command("BEGIN".into()))
            }
            Statement::Commit { .. } => {
                if self.status == TxnStatus::Idle {
                    self.notices
                        .push("there is no transaction in progress".into());
                    return Ok(Output::Command("COMMIT".into()));
                }
                self.end_block(true)
            }
            Statement::Rollback {
                savepoint: Some(_), ..
            } => Err(SqlError::unsupported("savepoints are not supported")),
            Statement::Rollback { .. } => {
                if self.status == TxnStatus::Idle {
                    self.notices
                        .push("there is no transaction in progress".into());
                    return Ok(Output::Command("ROLLBACK".into()));
                }
                self.end_block(false)
            }
            Statement::CreateTable(_) | Statement::Drop { .. } | Statement::CreateSchema { .. }
                if self.status == TxnStatus::InBlock && !self.implicit =>
            {
                let what = match &stmt {
                    Statement::CreateTable(_) => "CREATE TABLE".to_string(),
                    Statement::CreateSchema { .. } => "CREATE SCHEMA".to_string(),
                    Statement::Drop { object_type, .. } => format!("DROP {object_type}"),
                    _ => "DDL".to_string(),
                };
                Err(SqlError::new(
                    "25001",
                    format!(
                        "{what} cannot run inside a transaction block: DDL takes effect at \
                         once here, and ROLLBACK could not undo it"
                    ),
                ))
            }
            Statement::CreateTable(ct) => ddl::create_table(self, &ct, distribution),
            Statement::CreateSchema { .. } => schema::ddl::create_schema(self, &stmt),
            Statement::Truncate(_) if self.status == TxnStatus::InBlock && !self.implicit => {
                self.notices.push(
                    "TRUNCATE inside a transaction block takes effect at once; ROLLBACK \
                     will not undo it"
                        .into(),
                );
                ddl::drop_or_truncate(self, &stmt)
            }
            Statement::Drop { .. } | Statement::Truncate(_) => ddl::drop_or_truncate(self, &stmt),
            Statement::AlterTable(_) if self.status == TxnStatus::InBlock && !self.implicit => {
                Err(SqlError::new(
                    "25001",
                    "ALTER TABLE cannot run inside a transaction block: DDL takes effect at \
                     once here, and ROLLBACK could not undo it",
                ))
            }
            Statement::AlterTable(at) => ddl::alter_table(self, &at),
            Statement::Set(s) => ddl::set(self, &s),
            Statement::ShowVariable { variable } => ddl::show(self, &variable),
            Statement::Query(q) => self.in_txn(|tx, s| select::run(s, tx, &q, params)),
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                self.in_txn(|tx, s| dml::run(s, tx, &stmt, params))
            }
            Statement::Explain { statement, .. } => select::explain(self, &statement),
            other => Err(SqlError::unsupported(format!(
                "statement not supported: {}",
                first_words(&other.to_string())
            ))),
        }
    }

    /// Ends the block: COMMIT (`commit`, unless it failed: then ROLLBACK) or ROLLBACK.
    fn end_block(&mut self, commit: bool) -> SqlResult<Output> {
        let failed = self.status == TxnStatus::Failed;
        self.status = TxnStatus::Idle;
        let Some(tx) = self.txn.take() else {
            return Ok(Output::Command(
                if commit { "COMMIT" } else { "ROLLBACK" }.into(),
            ));
        };
        if commit && !failed {
            self.commit_txn(tx)?;
            Ok(Output::Command("COMMIT".into()))
        } else {
            tx.rollback()?;
            Ok(Output::Command("ROLLBACK".into()))
        }
    }

    /// Runs `f` in the block's transaction, or in one of its own that commits after it
    /// (autocommit). An error fails the block, or rolls the statement's own back.
    fn in_txn<T>(
        &mut self,
        f: impl FnOnce(&mut Txn, &mut Session) -> SqlResult<T>,
    ) -> SqlResult<T> {
        match self.txn.take() {
            Some(mut tx) => {
                let r = f(&mut tx, self);
                self.txn = Some(tx);
                if r.is_err() {
                    self.status = TxnStatus::Failed;
                }
                r
            }
            None => {
                let mut tx = self.begin()?;
                // A statement that finished after its cancel request rolls back: the
                // client was told it was cancelled.
                match f(&mut tx, self).and_then(|v| self.check_cancel().map(|()| v)) {
                    Ok(v) => {
                        self.commit_txn(tx)?;
                        Ok(v)
                    }
                    Err(e) => {
                        // The statement's error is what the client needs; a failed
                        // rollback poisons the node, which later statements report.
                        let _ = tx.rollback();
                        Err(e)
                    }
                }
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        admin::release_locks(self);
        // A client that went away mid-transaction: its work rolls back.
        if let Some(tx) = self.txn.take() {
            let _ = tx.rollback();
        }
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Parses exactly one statement.
fn parse_one(text: &str) -> SqlResult<Statement> {
    let mut v = Parser::parse_sql(&PostgreSqlDialect {}, text)
        .map_err(|e| SqlError::syntax(parse_message(&e.to_string())))?;
    match (v.pop(), v.is_empty()) {
        (Some(s), true) => Ok(s),
        _ => Err(SqlError::syntax("expected one statement")),
    }
}

fn parse_message(m: &str) -> String {
    let m = m.strip_prefix("sql parser error: ").unwrap_or(m);
    format!("syntax error: {m}")
}

pub(crate) fn now_micros() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // 2000-01-01 is 946,684,800 s after the Unix epoch.
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX) - 946_684_800_000_000
}

/// A one-row, one-column result.
pub(crate) fn one_value(name: &str, ty: Type, v: String) -> Output {
    Output::Rows {
        columns: vec![Column {
            name: name.into(),
            ty,
        }],
        rows: vec![vec![Some(v)]],
    }
}

/// Whether transaction modes ask only for what the engine gives: read committed (READ
/// UNCOMMITTED runs as read committed, as in PostgreSQL) and READ WRITE.
pub(crate) fn modes_supported(modes: &[sqlparser::ast::TransactionMode]) -> bool {
    use sqlparser::ast::{
        TransactionAccessMode as A, TransactionIsolationLevel as L, TransactionMode as M,
    };
    modes.iter().all(|m| {
        matches!(
            m,
            M::IsolationLevel(L::ReadCommitted | L::ReadUncommitted) | M::AccessMode(A::ReadWrite)
        )
    })
}

/// 0A000 for a transaction mode the engine does not give.
pub(crate) fn unsupported_modes() -> SqlError {
    SqlError::unsupported(
        "only READ COMMITTED (and READ WRITE) transactions are supported: REPEATABLE READ, \
         SERIALIZABLE and READ ONLY would be accepted without the guarantees they name",
    )
}
