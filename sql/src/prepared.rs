//! The extended protocol's side of a session: a statement parsed (and described) once,
//! then executed with parameters as often as the client binds it; a SELECT keeps its
//! plan while the catalog is unchanged.

use crate::error::{SqlError, SqlResult};
use crate::{dml, parse_one, select, split, Column, Output, Session};
use segexpand_engine::Type;
use sqlparser::ast::Statement;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A statement parsed once ([`Session::prepare`]).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(crate) piece: Option<split::Piece>,
    pub(crate) stmt: Option<Arc<Statement>>,
    /// A SELECT's plan, made at its first execution and kept while the catalog and the
    /// session's settings are unchanged (`select::run`).
    pub(crate) plan: PlanSlot,
}

/// Where a prepared SELECT keeps its plan.
pub(crate) type PlanSlot = Arc<std::sync::Mutex<Option<select::CachedPlan>>>;

impl Session {
    /// Parses one statement once, for the extended protocol's Parse: its parameter
    /// types (inferred from context where the client sent none) and result columns
    /// (empty for a command). Execute runs it with [`Session::execute_prepared`].
    pub fn prepare(&mut self, sql: &str) -> SqlResult<(Prepared, Vec<Type>, Vec<Column>)> {
        let mut pieces = split::split(sql)?;
        if pieces.len() > 1 {
            return Err(SqlError::syntax(
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let Some(piece) = pieces.pop() else {
            return Ok((
                Prepared {
                    piece: None,
                    stmt: None,
                    plan: PlanSlot::default(),
                },
                Vec::new(),
                Vec::new(),
            ));
        };
        let (stmt, types, cols) = match &piece {
            split::Piece::Sql { text, .. } => {
                let stmt = parse_one(text)?;
                let (types, cols) = match &stmt {
                    Statement::Query(q) => select::describe(self, q)?,
                    Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                        (dml::param_types(self, &stmt)?, Vec::new())
                    }
                    _ => (Vec::new(), Vec::new()),
                };
                (Some(Arc::new(stmt)), types, cols)
            }
            _ => (None, Vec::new(), Vec::new()),
        };
        Ok((
            Prepared {
                piece: Some(piece),
                stmt,
                plan: PlanSlot::default(),
            },
            types,
            cols,
        ))
    }

    /// Runs a prepared statement with parameters `params` (typed by the caller from
    /// [`Session::prepare`]'s types), without parsing it again.
    pub fn execute_prepared(
        &mut self,
        p: &Prepared,
        params: &[segexpand_engine::Value],
    ) -> SqlResult<Output> {
        self.info.cancel.store(false, Ordering::Release);
        let r = match (&p.piece, &p.stmt) {
            (None, _) => Ok(Output::Empty),
            (Some(split::Piece::Sql { distribution, .. }), Some(stmt)) => {
                self.plan_slot = Some(p.plan.clone());
                let r = self.run_parsed(stmt, distribution.clone(), params);
                self.plan_slot = None;
                r
            }
            (Some(piece), _) => self.run_piece(piece.clone(), params),
        };
        self.after_error(r.is_err());
        r
    }

    /// Runs one statement of `sql` with parameters `params` (parses it; see
    /// [`Session::prepare`] to parse once).
    pub fn execute_with(
        &mut self,
        sql: &str,
        params: &[segexpand_engine::Value],
    ) -> SqlResult<Output> {
        let (p, _, _) = self.prepare(sql)?;
        self.execute_prepared(&p, params)
    }

    /// Describes one statement: its parameter types and result columns.
    pub fn describe(&mut self, sql: &str) -> SqlResult<(Vec<Type>, Vec<Column>)> {
        let (_, types, cols) = self.prepare(sql)?;
        Ok((types, cols))
    }
}
