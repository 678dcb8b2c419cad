//! Expressions: `sqlparser`'s AST compiled against a scope (a table's columns and the
//! pseudo-column `gp_segment_id`) into a small tree of resolved column positions,
//! parameters and operators, then evaluated on rows with PostgreSQL's three-valued
//! logic. Aggregate calls are lifted out by the SELECT planner and read back as
//! [`Expr::Agg`].

use crate::error::{SqlError, SqlResult};
use crate::value::{self, arith, cast, compare};
use segexpand_engine::{Type, Value};
use sqlparser::ast::{self as ast, BinaryOperator, UnaryOperator};
use std::cmp::Ordering;

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
}

/// What names resolve to while compiling.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The relation's name (and alias), for `t.col`.
    pub names: Vec<String>,
    /// Columns: name and type.
    pub columns: Vec<(String, Type)>,
    /// Whether `gp_segment_id` resolves (a user table).
    pub segment_id: bool,
}

impl Scope {
    fn column(&self, parts: &[ast::Ident]) -> SqlResult<Expr> {
        let (qual, name) = match parts {
            [c] => (None, c),
            [t, c] => (Some(t), c),
            [_, t, c] => (Some(t), c),
            _ => {
                let full: Vec<String> = parts.iter().map(|i| i.value.clone()).collect();
                return Err(SqlError::undefined_column(&full.join(".")));
            }
        };
        let name_s = ident(name);
        if let Some(t) = qual {
            let t = ident(t);
            if !self.names.contains(&t) {
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

/// The last part of an object name (`public.t` → `t`), folded.
pub fn object_name(n: &ast::ObjectName) -> String {
    n.0.last()
        .and_then(|p| p.as_ident())
        .map(ident)
        .unwrap_or_default()
}

/// The engine type of a SQL type name.
pub fn sql_type(dt: &ast::DataType) -> SqlResult<Type> {
    let s = dt.to_string().to_lowercase();
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
}

impl<'s> Compiler<'s> {
    /// A compiler over `scope`, without aggregates.
    pub fn new(scope: &'s Scope) -> Self {
        Compiler {
            scope,
            aggs: None,
            params: 0,
        }
    }

    /// Compiles `e`.
    pub fn compile(&mut self, e: &ast::Expr) -> SqlResult<Expr> {
        use ast::Expr as E;
        Ok(match e {
            E::Identifier(i) => self.scope.column(std::slice::from_ref(i))?,
            E::CompoundIdentifier(parts) => self.scope.column(parts)?,
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
                    other => return Err(SqlError::unsupported(format!("operator {other}"))),
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
            } => Expr::Cast(Box::new(self.compile(expr)?), sql_type(data_type)?),
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
            other => {
                return Err(SqlError::unsupported(format!(
                    "expression not supported: {other}"
                )))
            }
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
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| SqlError::syntax(format!("bad parameter {p}")))?;
                self.params = self.params.max(n);
                Expr::Param(n - 1)
            }
            other => return Err(SqlError::unsupported(format!("literal {other}"))),
        })
    }

    fn function(&mut self, f: &ast::Function) -> SqlResult<Expr> {
        let name = object_name(&f.name);
        let (args, star, distinct) = match &f.args {
            ast::FunctionArguments::None => (Vec::new(), false, false),
            ast::FunctionArguments::List(l) => {
                let distinct = matches!(
                    l.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                );
                let mut args = Vec::new();
                let mut star = false;
                for a in &l.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => args.push(e),
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        other => return Err(SqlError::unsupported(format!("argument {other}"))),
                    }
                }
                (args, star, distinct)
            }
            ast::FunctionArguments::Subquery(_) => {
                return Err(SqlError::unsupported("subquery arguments"))
            }
        };
        if f.over.is_some() {
            return Err(SqlError::unsupported("window functions"));
        }
        let agg = match name.as_str() {
            "count" => Some(AggFunc::Count),
            "sum" => Some(AggFunc::Sum),
            "avg" => Some(AggFunc::Avg),
            "min" => Some(AggFunc::Min),
            "max" => Some(AggFunc::Max),
            _ => None,
        };
        if let Some(func) = agg {
            let arg = match (star, args.as_slice()) {
                (true, []) if func == AggFunc::Count => None,
                (false, [a]) => {
                    // An aggregate's argument is evaluated per row: no nested aggregates.
                    let saved = self.aggs.take();
                    let r = self.compile(a);
                    self.aggs = saved;
                    Some(r?)
                }
                _ => {
                    return Err(SqlError::new(
                        "42883",
                        format!("function {name} with these arguments does not exist"),
                    ))
                }
            };
            let Some(aggs) = self.aggs.as_mut() else {
                return Err(SqlError::new(
                    "42803",
                    format!("aggregate functions are not allowed here ({name})"),
                ));
            };
            aggs.push(AggCall {
                func,
                arg,
                distinct,
            });
            return Ok(Expr::Agg(aggs.len() - 1));
        }
        let func = match name.as_str() {
            "abs" => Func::Abs,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "length" | "char_length" => Func::Length,
            "coalesce" => Func::Coalesce,
            "version" => Func::Version,
            "now" | "current_timestamp" | "localtimestamp" => Func::Now,
            "current_database" => Func::CurrentDatabase,
            "current_user" | "session_user" | "user" => Func::CurrentUser,
            "current_schema" => Func::CurrentSchema,
            _ => {
                return Err(SqlError::new(
                    "42883",
                    format!("function {name}() does not exist"),
                ))
            }
        };
        let args = args
            .into_iter()
            .map(|a| self.compile(a))
            .collect::<SqlResult<Vec<_>>>()?;
        Ok(Expr::Func(func, args))
    }
}

/// What evaluation reads: the row, its segment, the parameters and aggregate results.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ctx<'a> {
    /// The row (empty when there is none).
    pub row: &'a [Value],
    /// The segment it was read from.
    pub segment: Option<u16>,
    /// Parameter values.
    pub params: &'a [Value],
    /// Aggregate results of the current group.
    pub aggs: &'a [Value],
    /// The session's user and database.
    pub session: Option<&'a SessionInfo>,
}

/// Session facts some functions return.
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    /// The user.
    pub user: String,
    /// The database.
    pub database: String,
    /// The statement's start, microseconds since 2000-01-01.
    pub now: i64,
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

/// Brings an untyped text to the type of the value it meets (`col = '5'`).
fn unify(a: Value, b: Value) -> SqlResult<(Value, Value)> {
    match (&a, &b) {
        (Value::Text(s), other) if !matches!(other, Value::Text(_) | Value::Null) => {
            Ok((value::from_text(value::type_of_value(other), s)?, b))
        }
        (other, Value::Text(s)) if !matches!(other, Value::Text(_) | Value::Null) => {
            let t = value::from_text(value::type_of_value(other), s)?;
            Ok((a, t))
        }
        _ => Ok((a, b)),
    }
}

fn like(s: &str, p: &str) -> bool {
    fn go(s: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('%', rest)) => (0..=s.len()).any(|i| s.get(i..).is_some_and(|t| go(t, rest))),
            Some(('_', rest)) => s.split_first().is_some_and(|(_, t)| go(t, rest)),
            Some((c, rest)) => s.split_first().is_some_and(|(d, t)| d == c && go(t, rest)),
        }
    }
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = p.chars().collect();
    go(&s, &p)
}

impl Expr {
    /// Evaluates on `ctx`.
    pub fn eval(&self, ctx: &Ctx<'_>) -> SqlResult<Value> {
        Ok(match self {
            Expr::Const(v) => v.clone(),
            Expr::Unknown(s) => Value::Text(s.clone()),
            Expr::Param(i) => ctx.params.get(*i).cloned().ok_or_else(|| {
                SqlError::new("08P01", format!("there is no parameter ${}", i + 1))
            })?,
            Expr::Column(i) => ctx.row.get(*i).cloned().unwrap_or(Value::Null),
            Expr::SegmentId => ctx
                .segment
                .map_or(Value::Null, |s| Value::Int4(i32::from(s))),
            Expr::Agg(i) => ctx.aggs.get(*i).cloned().unwrap_or(Value::Null),
            Expr::Arith(op, a, b) => {
                let (x, y) = unify(a.eval(ctx)?, b.eval(ctx)?)?;
                arith(&x, *op, &y)?
            }
            Expr::Cmp(op, a, b) => {
                let (x, y) = unify(a.eval(ctx)?, b.eval(ctx)?)?;
                if matches!(x, Value::Null) || matches!(y, Value::Null) {
                    return Ok(Value::Null);
                }
                let Some(o) = compare(&x, &y) else {
                    return Err(SqlError::new(
                        "42883",
                        format!(
                            "operator does not exist: {} = {}",
                            value::type_name(value::type_of_value(&x)),
                            value::type_name(value::type_of_value(&y))
                        ),
                    ));
                };
                Value::Bool(match op {
                    CmpOp::Eq => o == Ordering::Equal,
                    CmpOp::Ne => o != Ordering::Equal,
                    CmpOp::Lt => o == Ordering::Less,
                    CmpOp::Le => o != Ordering::Greater,
                    CmpOp::Gt => o == Ordering::Greater,
                    CmpOp::Ge => o != Ordering::Less,
                })
            }
            Expr::And(a, b) => {
                let x = truth(&a.eval(ctx)?);
                if x == Some(false) {
                    return Ok(Value::Bool(false));
                }
                match (x, truth(&b.eval(ctx)?)) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                }
            }
            Expr::Or(a, b) => {
                let x = truth(&a.eval(ctx)?);
                if x == Some(true) {
                    return Ok(Value::Bool(true));
                }
                match (x, truth(&b.eval(ctx)?)) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                }
            }
            Expr::Not(a) => match truth(&a.eval(ctx)?) {
                Some(b) => Value::Bool(!b),
                None => Value::Null,
            },
            Expr::Neg(a) => arith(&Value::Int4(0), '-', &a.eval(ctx)?)?,
            Expr::IsNull(a, negated) => {
                Value::Bool(matches!(a.eval(ctx)?, Value::Null) != *negated)
            }
            Expr::InList(a, list, negated) => {
                let x = a.eval(ctx)?;
                if matches!(x, Value::Null) {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for item in list {
                    let (p, q) = unify(x.clone(), item.eval(ctx)?)?;
                    if matches!(q, Value::Null) {
                        saw_null = true;
                    } else if compare(&p, &q) == Some(Ordering::Equal) {
                        return Ok(Value::Bool(!negated));
                    }
                }
                if saw_null {
                    Value::Null
                } else {
                    Value::Bool(*negated)
                }
            }
            Expr::Cast(a, ty) => cast(a.eval(ctx)?, *ty)?,
            Expr::Concat(a, b) => match (a.eval(ctx)?, b.eval(ctx)?) {
                (Value::Null, _) | (_, Value::Null) => Value::Null,
                (x, y) => Value::Text(format!(
                    "{}{}",
                    value::to_text(&x).unwrap_or_default(),
                    value::to_text(&y).unwrap_or_default()
                )),
            },
            Expr::Like(a, p, negated) => match (a.eval(ctx)?, p.eval(ctx)?) {
                (Value::Null, _) | (_, Value::Null) => Value::Null,
                (x, y) => {
                    let s = value::to_text(&x).unwrap_or_default();
                    let pat = value::to_text(&y).unwrap_or_default();
                    Value::Bool(like(&s, &pat) != *negated)
                }
            },
            Expr::Case(arms, els) => {
                for (c, r) in arms {
                    if truth(&c.eval(ctx)?) == Some(true) {
                        return r.eval(ctx);
                    }
                }
                match els {
                    Some(e) => e.eval(ctx)?,
                    None => Value::Null,
                }
            }
            Expr::Func(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| a.eval(ctx))
                    .collect::<SqlResult<Vec<_>>>()?;
                eval_func(*f, vals, ctx)?
            }
        })
    }

    /// Whether the row passes this WHERE clause (NULL counts as false).
    pub fn passes(&self, ctx: &Ctx<'_>) -> SqlResult<bool> {
        Ok(truth(&self.eval(ctx)?) == Some(true))
    }

    /// The static type, given the scope's column types and the parameters' types.
    pub fn ty(&self, cols: &[(String, Type)], params: &[Type], aggs: &[Type]) -> Type {
        let t = |e: &Expr| e.ty(cols, params, aggs);
        match self {
            Expr::Const(v) => value::type_of_value(v),
            Expr::Unknown(_) => Type::Text,
            Expr::Param(i) => params.get(*i).copied().unwrap_or(Type::Text),
            Expr::Column(i) => cols.get(*i).map_or(Type::Text, |c| c.1),
            Expr::SegmentId => Type::Int4,
            Expr::Agg(i) => aggs.get(*i).copied().unwrap_or(Type::Int8),
            Expr::Arith(_, a, b) => {
                let (x, y) = (t(a), t(b));
                match (x, y) {
                    (Type::Float8, _) | (_, Type::Float8) => Type::Float8,
                    (Type::Numeric, _) | (_, Type::Numeric) => Type::Numeric,
                    (Type::Int8, _) | (_, Type::Int8) => Type::Int8,
                    (Type::Int4, _) | (_, Type::Int4) => Type::Int4,
                    (Type::Int2, _) => Type::Int2,
                    _ => x,
                }
            }
            Expr::Cmp(..)
            | Expr::And(..)
            | Expr::Or(..)
            | Expr::Not(_)
            | Expr::IsNull(..)
            | Expr::InList(..)
            | Expr::Like(..) => Type::Bool,
            Expr::Neg(a) => t(a),
            Expr::Cast(_, ty) => *ty,
            Expr::Concat(..) => Type::Text,
            Expr::Case(arms, els) => arms
                .first()
                .map(|(_, r)| t(r))
                .or_else(|| els.as_ref().map(|e| t(e)))
                .unwrap_or(Type::Text),
            Expr::Func(f, args) => match f {
                Func::Abs | Func::Coalesce => args.first().map_or(Type::Text, t),
                Func::Length => Type::Int4,
                Func::Now => Type::Timestamp,
                _ => Type::Text,
            },
        }
    }

    /// Infers parameter types from context: `col = $1`, `col + $1` and the like give
    /// `$1` the column's type. Unset entries of `out` are filled.
    pub fn infer_params(&self, cols: &[(String, Type)], out: &mut Vec<Option<Type>>) {
        let known: Vec<Type> = out.iter().map(|t| t.unwrap_or(Type::Text)).collect();
        let set = |i: usize, ty: Type, out: &mut Vec<Option<Type>>| {
            if out.len() <= i {
                out.resize(i + 1, None);
            }
            if let Some(slot) = out.get_mut(i) {
                if slot.is_none() {
                    *slot = Some(ty);
                }
            }
        };
        match self {
            Expr::Arith(_, a, b) | Expr::Cmp(_, a, b) => {
                if let Expr::Param(i) = **b {
                    if !matches!(**a, Expr::Param(_)) {
                        set(i, a.ty(cols, &known, &[]), out);
                    }
                }
                if let Expr::Param(i) = **a {
                    if !matches!(**b, Expr::Param(_)) {
                        set(i, b.ty(cols, &known, &[]), out);
                    }
                }
                a.infer_params(cols, out);
                b.infer_params(cols, out);
            }
            Expr::InList(a, list, _) => {
                for item in list {
                    if let Expr::Param(i) = item {
                        set(*i, a.ty(cols, &known, &[]), out);
                    }
                    item.infer_params(cols, out);
                }
                a.infer_params(cols, out);
            }
            Expr::Cast(a, ty) => {
                if let Expr::Param(i) = **a {
                    set(i, *ty, out);
                }
                a.infer_params(cols, out);
            }
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Concat(a, b) | Expr::Like(a, b, _) => {
                a.infer_params(cols, out);
                b.infer_params(cols, out);
            }
            Expr::Not(a) | Expr::Neg(a) | Expr::IsNull(a, _) => a.infer_params(cols, out),
            Expr::Case(arms, els) => {
                for (c, r) in arms {
                    c.infer_params(cols, out);
                    r.infer_params(cols, out);
                }
                if let Some(e) = els {
                    e.infer_params(cols, out);
                }
            }
            Expr::Func(_, args) => {
                for a in args {
                    a.infer_params(cols, out);
                }
            }
            Expr::Const(_)
            | Expr::Unknown(_)
            | Expr::Param(_)
            | Expr::Column(_)
            | Expr::SegmentId
            | Expr::Agg(_) => {}
        }
    }
}

fn eval_func(f: Func, vals: Vec<Value>, ctx: &Ctx<'_>) -> SqlResult<Value> {
    let first = vals.first().cloned().unwrap_or(Value::Null);
    let text = |v: &Value| value::to_text(v);
    Ok(match f {
        Func::Abs => match &first {
            Value::Null => Value::Null,
            v if compare(v, &Value::Int4(0)) == Some(Ordering::Less) => {
                arith(&Value::Int4(0), '-', v)?
            }
            v => v.clone(),
        },
        Func::Lower => text(&first).map_or(Value::Null, |s| Value::Text(s.to_lowercase())),
        Func::Upper => text(&first).map_or(Value::Null, |s| Value::Text(s.to_uppercase())),
        Func::Length => text(&first).map_or(Value::Null, |s| {
            Value::Int4(i32::try_from(s.chars().count()).unwrap_or(i32::MAX))
        }),
        Func::Coalesce => vals
            .into_iter()
            .find(|v| !matches!(v, Value::Null))
            .unwrap_or(Value::Null),
        Func::Version => Value::Text(crate::SERVER_VERSION_STRING.to_string()),
        Func::Now => Value::Timestamp(ctx.session.map_or(0, |s| s.now)),
        Func::CurrentDatabase => {
            Value::Text(ctx.session.map_or(String::new(), |s| s.database.clone()))
        }
        Func::CurrentUser => Value::Text(ctx.session.map_or(String::new(), |s| s.user.clone())),
        Func::CurrentSchema => Value::Text("public".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_percent_and_underscore() {
        assert!(like("hello", "h%o"));
        assert!(like("hello", "_ello"));
        assert!(!like("hello", "h_o"));
        assert!(like("", "%"));
    }
}
