//! Expressions: `sqlparser`'s AST compiled against a scope (a table's columns and the
//! pseudo-column `gp_segment_id`) into a small tree of resolved column positions,
//! parameters and operators, then evaluated on rows with PostgreSQL's three-valued
//! logic (`eval.rs`). Aggregate calls are lifted out by the SELECT planner and read back
//! as [`Expr::Agg`].

use crate::error::{SqlError, SqlResult};
use crate::names::{Frame, Rel, Resolved};
use crate::value;
use segexpand_engine::{Type, Value};
use sqlparser::ast::{self as ast, BinaryOperator, UnaryOperator};
use std::sync::Arc;

pub use crate::eval::{Ctx, SessionInfo};

/// A compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant.
    Const(Value),
    /// An untyped literal (a quoted string): text until context gives it a type.
    Unknown(String),
    /// Parameter `$n` (0-based).
    Param(usize),
    /// A column of the row, by position.
    Column(usize),
    /// The segment the row was read from.
    SegmentId,
    /// The `i`-th aggregate's result (SELECT with aggregates).
    Agg(usize),
    /// Arithmetic: `+ - * / %`.
    Arith(char, Box<Expr>, Box<Expr>),
    /// Comparison.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// AND.
    And(Box<Expr>, Box<Expr>),
    /// OR.
    Or(Box<Expr>, Box<Expr>),
    /// NOT.
    Not(Box<Expr>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// IS [NOT] NULL (the flag: negated).
    IsNull(Box<Expr>, bool),
    /// [NOT] IN (list).
    InList(Box<Expr>, Vec<Expr>, bool),
    /// CAST / `::`.
    Cast(Box<Expr>, Type),
    /// String concatenation `||`.
    Concat(Box<Expr>, Box<Expr>),
    /// [NOT] LIKE (no escape character).
    Like(Box<Expr>, Box<Expr>, bool),
    /// CASE WHEN … THEN … [ELSE …] END.
    Case(Vec<(Expr, Expr)>, Option<Box<Expr>>),
    /// A scalar function.
    Func(Func, Vec<Expr>),
    /// A column of an enclosing query's row (a correlated subquery): levels up (0: the
    /// query just outside), position, type.
    Outer(usize, usize, Type),
    /// A subquery: a scalar, `[NOT] EXISTS`, or `ARRAY(…)`.
    Sub(SubKind, SubRef),
    /// `x [NOT] IN (SELECT …)`.
    InSub(Box<Expr>, SubRef, bool),
    /// Regular-expression match `~` (flags: negated, case-insensitive).
    Regex(Box<Expr>, Box<Expr>, bool, bool),
    /// `x op ANY (array)`.
    AnyArray(CmpOp, Box<Expr>, Box<Expr>),
    /// A cast to a catalog type (`::regclass`, `::regtype`, `::regnamespace`).
    Reg(Box<Expr>, RegKind),
    /// `array[i]` (1-based).
    Subscript(Box<Expr>, Box<Expr>),
    /// `ARRAY[a, b, …]`.
    Array(Vec<Expr>),
}

/// What a subquery computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubKind {
    /// Its single value (NULL without rows; more than one row is an error).
    Scalar,
    /// `EXISTS` (the flag: `NOT EXISTS`).
    Exists(bool),
    /// `ARRAY(SELECT …)`: its first column as an array.
    Array,
}

/// Catalog types a value can be cast to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegKind {
    /// `regclass`: a relation's name for its oid (and back).
    Class,
    /// `regtype`: a type's name for its oid.
    Type,
    /// `regnamespace`: a schema's name for its oid.
    Namespace,
}

/// A compiled subquery, shared by the expressions that run it (compared by identity).
#[derive(Clone)]
pub struct SubRef(pub Arc<crate::select::SubQuery>);

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for SubRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubRef(…)")
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// Scalar functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `abs(x)`
    Abs,
    /// `lower(s)`
    Lower,
    /// `upper(s)`
    Upper,
    /// `length(s)`
    Length,
    /// `coalesce(a, b, …)`
    Coalesce,
    /// `version()`
    Version,
    /// `now()` / `current_timestamp` (the statement's start)
    Now,
    /// `current_database()`
    CurrentDatabase,
    /// `current_user`, `session_user`, `current_user()`
    CurrentUser,
    /// `current_schema()`
    CurrentSchema,
    /// A catalog or array function (`format_type`, `pg_get_userbyid`, `array_to_string`, …).
    Cat(crate::catalog::CatFunc),
}

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// `count(*)` (no argument) or `count(x)`.
    Count,
    /// `sum(x)`
    Sum,
    /// `avg(x)`
    Avg,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
    /// `string_agg(x, separator)`
    StringAgg,
}

/// One aggregate call of a SELECT.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    /// Which.
    pub func: AggFunc,
    /// Its argument (`count(*)`: none).
    pub arg: Option<Expr>,
    /// DISTINCT.
    pub distinct: bool,
    /// `string_agg`'s separator.
    pub sep: String,
}

/// What names resolve to while compiling.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The relation's name (and alias), for `t.col`.
    pub names: Vec<String>,
    /// The relation's schema, for `s.t.col` (None: any).
    pub schema: Option<String>,
    /// Columns: name and type.
    pub columns: Vec<(String, Type)>,
    /// Whether `gp_segment_id` resolves (a user table).
    pub segment_id: bool,
}

impl Scope {
    fn column(&self, parts: &[ast::Ident]) -> SqlResult<Expr> {
        let (schema, qual, name) = match parts {
            [c] => (None, None, c),
            [t, c] => (None, Some(t), c),
            [s, t, c] => (Some(s), Some(t), c),
            _ => {
                let full: Vec<String> = parts.iter().map(|i| i.value.clone()).collect();
                return Err(SqlError::undefined_column(&full.join(".")));
            }
        };
        let name_s = ident(name);
        if let Some(t) = qual {
            let t = ident(t);
            let other_schema = match (schema, &self.schema) {
                (Some(s), Some(mine)) => ident(s) != *mine,
                _ => false,
            };
            if !self.names.contains(&t) || other_schema {
                return Err(SqlError::new(
                    "42P01",
                    format!("missing FROM-clause entry for table \"{t}\""),
                ));
            }
        }
        if let Some(i) = self.columns.iter().position(|(n, _)| *n == name_s) {
            return Ok(Expr::Column(i));
        }
        if self.segment_id && name_s == "gp_segment_id" {
            return Ok(Expr::SegmentId);
        }
        Err(SqlError::undefined_column(&name_s))
    }
}

/// An identifier as PostgreSQL folds it: lower case unless quoted.
pub fn ident(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The last part of an object name (`pg_catalog.lower` → `lower`), folded: for column
/// and function names. A relation's name keeps its schema: `schema::RelName`.
pub fn object_name(n: &ast::ObjectName) -> String {
    n.0.last()
        .and_then(|p| p.as_ident())
        .map(ident)
        .unwrap_or_default()
}

/// The engine type of a SQL type name.
pub fn sql_type(dt: &ast::DataType) -> SqlResult<Type> {
    let full = dt.to_string().to_lowercase();
    let s = full
        .strip_prefix("pg_catalog.")
        .unwrap_or(&full)
        .to_string();
    let len = || -> Option<u32> {
        let open = s.find('(')?;
        let close = s.find(')')?;
        s.get(open + 1..close)?.trim().parse().ok()
    };
    let base = s.split('(').next().unwrap_or("").trim().to_string();
    Ok(match base.as_str() {
        "int" | "integer" | "int4" => Type::Int4,
        "bigint" | "int8" => Type::Int8,
        "smallint" | "int2" => Type::Int2,
        "double precision" | "float8" | "float" | "real" | "float4" => Type::Float8,
        "numeric" | "decimal" => Type::Numeric,
        "text" | "string" => Type::Text,
        "varchar" | "character varying" => match len() {
            Some(n) => Type::Varchar(n),
            None => Type::Text,
        },
        "char" | "character" | "bpchar" => Type::Char(len().unwrap_or(1)),
        "bool" | "boolean" => Type::Bool,
        "date" => Type::Date,
        "timestamp" | "timestamp without time zone" => Type::Timestamp,
        _ => {
            return Err(SqlError::new(
                "42704",
                format!("type \"{s}\" does not exist"),
            ))
        }
    })
}

/// Compiles expressions; collects aggregate calls when `aggs` is set.
pub struct Compiler<'s> {
    /// Names in scope.
    pub scope: &'s Scope,
    /// Aggregate calls found (None: aggregates are not allowed here).
    pub aggs: Option<Vec<AggCall>>,
    /// Highest parameter number seen (1-based).
    pub params: usize,
    depth: usize,
    /// This level's relations (empty: `scope` is one table's, resolved by `Scope`).
    pub(crate) rels: &'s [Rel],
    /// The enclosing queries' names, innermost first (correlated subqueries).
    pub(crate) outer: Vec<Frame<'s>>,
    /// The session: subqueries and catalog names need it (None: no subqueries here).
    pub(crate) session: Option<&'s crate::Session>,
    /// The outermost enclosing level referenced, if any (the query is correlated).
    pub(crate) outer_used: Option<usize>,
}

/// Deepest expression tree compiled (PostgreSQL stops at its stack depth limit too).
pub const EXPR_DEPTH_MAX: usize = 200;

/// Highest parameter number, `$65535` (PostgreSQL's limit: the protocol counts them in
/// 16 bits).
pub const PARAMS_MAX: usize = 65_535;

impl<'s> Compiler<'s> {
    /// A compiler over `scope`, without aggregates.
    pub fn new(scope: &'s Scope) -> Self {
        Compiler {
            scope,
            aggs: None,
            params: 0,
            depth: 0,
            rels: &[],
            outer: Vec::new(),
            session: None,
            outer_used: None,
        }
    }

    /// A compiler for one level of a query: its relations, the enclosing levels'
    /// names (innermost first) and the session (subqueries are allowed).
    pub(crate) fn for_query(
        scope: &'s Scope,
        rels: &'s [Rel],
        outer: Vec<Frame<'s>>,
        session: &'s crate::Session,
    ) -> Self {
        Compiler {
            rels,
            outer,
            session: Some(session),
            ..Compiler::new(scope)
        }
    }

    /// Resolves a column name: this level first, then the enclosing ones.
    fn column(&mut self, parts: &[ast::Ident]) -> SqlResult<Expr> {
        if self.rels.is_empty() && self.outer.is_empty() {
            return self.scope.column(parts);
        }
        let names: Vec<String> = parts.iter().map(ident).collect();
        let here = Frame {
            scope: self.scope,
            rels: self.rels,
        };
        match here.resolve(&names)? {
            Some(Resolved::Column(i)) => return Ok(Expr::Column(i)),
            Some(Resolved::SegmentId) => return Ok(Expr::SegmentId),
            None => {}
        }
        for (level, f) in self.outer.iter().enumerate() {
            if let Some(Resolved::Column(i)) = f.resolve(&names)? {
                self.outer_used = Some(self.outer_used.map_or(level, |u| u.max(level)));
                return Ok(Expr::Outer(level, i, f.ty(i)));
            }
        }
        let (schema, qual) = match names.as_slice() {
            [sch, q, _] => (Some(sch.as_str()), Some(q)),
            [q, _] => (None, Some(q)),
            _ => (None, None),
        };
        match qual {
            Some(q)
                if !here.has_qualifier(schema, q)
                    && !self.outer.iter().any(|f| f.has_qualifier(schema, q)) =>
            {
                Err(SqlError::new(
                    "42P01",
                    format!("missing FROM-clause entry for table \"{q}\""),
                ))
            }
            _ => Err(SqlError::undefined_column(&names.join("."))),
        }
    }

    /// Compiles `e`.
    pub fn compile(&mut self, e: &ast::Expr) -> SqlResult<Expr> {
        // Every later walk of the tree (typing, evaluation) recurses as deep as this
        // one; a long flat chain (`1+1+…`, 2,000 terms) overflowed a thread's stack.
        if self.depth >= EXPR_DEPTH_MAX {
            return Err(SqlError::new(
                "54001",
                format!("expression too deeply nested (more than {EXPR_DEPTH_MAX} levels)"),
            ));
        }
        self.depth += 1;
        let r = self.compile_inner(e);
        self.depth -= 1;
        r
    }

    fn compile_inner(&mut self, e: &ast::Expr) -> SqlResult<Expr> {
        use ast::Expr as E;
        Ok(match e {
            E::Identifier(i) => self.column(std::slice::from_ref(i))?,
            E::CompoundIdentifier(parts) => self.column(parts)?,
            E::Value(v) => self.literal(&v.value)?,
            E::Nested(inner) => self.compile(inner)?,
            E::BinaryOp { left, op, right } => {
                let (l, r) = (self.compile(left)?, self.compile(right)?);
                let (l, r) = (Box::new(l), Box::new(r));
                match op {
                    BinaryOperator::Plus => Expr::Arith('+', l, r),
                    BinaryOperator::Minus => Expr::Arith('-', l, r),
                    BinaryOperator::Multiply => Expr::Arith('*', l, r),
                    BinaryOperator::Divide => Expr::Arith('/', l, r),
                    BinaryOperator::Modulo => Expr::Arith('%', l, r),
                    BinaryOperator::Eq => Expr::Cmp(CmpOp::Eq, l, r),
                    BinaryOperator::NotEq => Expr::Cmp(CmpOp::Ne, l, r),
                    BinaryOperator::Lt => Expr::Cmp(CmpOp::Lt, l, r),
                    BinaryOperator::LtEq => Expr::Cmp(CmpOp::Le, l, r),
                    BinaryOperator::Gt => Expr::Cmp(CmpOp::Gt, l, r),
                    BinaryOperator::GtEq => Expr::Cmp(CmpOp::Ge, l, r),
                    BinaryOperator::And => Expr::And(l, r),
                    BinaryOperator::Or => Expr::Or(l, r),
                    BinaryOperator::StringConcat => Expr::Concat(l, r),
                    other => self.binary_more(other, l, r)?,
                }
            }
            E::UnaryOp { op, expr } => {
                let x = Box::new(self.compile(expr)?);
                match op {
                    UnaryOperator::Not => Expr::Not(x),
                    UnaryOperator::Minus => match *x {
                        Expr::Const(Value::Int8(i)) => Expr::Const(Value::Int8(-i)),
                        Expr::Const(Value::Int4(i)) => Expr::Const(Value::Int4(-i)),
                        other => Expr::Neg(Box::new(other)),
                    },
                    UnaryOperator::Plus => *x,
                    other => return Err(SqlError::unsupported(format!("operator {other}"))),
                }
            }
            E::IsNull(x) => Expr::IsNull(Box::new(self.compile(x)?), false),
            E::IsNotNull(x) => Expr::IsNull(Box::new(self.compile(x)?), true),
            E::InList {
                expr,
                list,
                negated,
            } => Expr::InList(
                Box::new(self.compile(expr)?),
                list.iter()
                    .map(|x| self.compile(x))
                    .collect::<SqlResult<_>>()?,
                *negated,
            ),
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.compile(expr)?;
                let both = Expr::And(
                    Box::new(Expr::Cmp(
                        CmpOp::Ge,
                        Box::new(x.clone()),
                        Box::new(self.compile(low)?),
                    )),
                    Box::new(Expr::Cmp(
                        CmpOp::Le,
                        Box::new(x),
                        Box::new(self.compile(high)?),
                    )),
                );
                if *negated {
                    Expr::Not(Box::new(both))
                } else {
                    both
                }
            }
            E::Like {
                negated,
                expr,
                pattern,
                escape_char: None,
                any: false,
            } => Expr::Like(
                Box::new(self.compile(expr)?),
                Box::new(self.compile(pattern)?),
                *negated,
            ),
            E::Cast {
                expr, data_type, ..
            } => self.cast(expr, data_type)?,
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let op = operand.as_ref().map(|o| self.compile(o)).transpose()?;
                let mut arms = Vec::new();
                for w in conditions {
                    let c = self.compile(&w.condition)?;
                    let c = match &op {
                        Some(o) => Expr::Cmp(CmpOp::Eq, Box::new(o.clone()), Box::new(c)),
                        None => c,
                    };
                    arms.push((c, self.compile(&w.result)?));
                }
                let els = else_result
                    .as_ref()
                    .map(|x| self.compile(x).map(Box::new))
                    .transpose()?;
                Expr::Case(arms, els)
            }
            E::Function(f) => self.function(f)?,
            E::TypedString(ts) => {
                let ty = sql_type(&ts.data_type)?;
                let s = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                Expr::Const(value::from_text(ty, &s)?)
            }
            other => self.compile_more(other)?,
        })
    }

    fn literal(&mut self, v: &ast::Value) -> SqlResult<Expr> {
        Ok(match v {
            ast::Value::Number(s, _) => {
                if let Ok(i) = s.parse::<i64>() {
                    if let Ok(i4) = i32::try_from(i) {
                        Expr::Const(Value::Int4(i4))
                    } else {
                        Expr::Const(Value::Int8(i))
                    }
                } else {
                    Expr::Const(value::from_text(Type::Numeric, s)?)
                }
            }
            ast::Value::SingleQuotedString(s)
            | ast::Value::EscapedStringLiteral(s)
            | ast::Value::NationalStringLiteral(s) => Expr::Unknown(s.clone()),
            ast::Value::DollarQuotedString(d) => Expr::Unknown(d.value.clone()),
            ast::Value::Boolean(b) => Expr::Const(Value::Bool(*b)),
            ast::Value::Null => Expr::Const(Value::Null),
            ast::Value::Placeholder(p) => {
                let n: usize = p
                    .strip_prefix('$')
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=PARAMS_MAX).contains(n))
                    .ok_or_else(|| SqlError::new("42P02", format!("there is no parameter {p}")))?;
                self.params = self.params.max(n);
                Expr::Param(n - 1)
            }
            other => return Err(SqlError::unsupported(format!("literal {other}"))),
        })
    }
}
