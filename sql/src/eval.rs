//! Evaluation of compiled expressions ([`Expr`]) on a row: PostgreSQL's three-valued
//! logic, untyped literals meeting typed values, scalar functions, static types, and
//! parameter types inferred from context.

use crate::array;
use crate::error::{SqlError, SqlResult};
use crate::expr::{CmpOp, Expr, Func, SubKind};
use crate::value::{self, arith, compare};
use segexpand_engine::{Type, Value};
use std::cmp::Ordering;

/// What evaluation reads: the row, its segment, the parameters and aggregate results.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ctx<'a> {
    /// The enclosing queries' rows (correlated subqueries), innermost first.
    pub outer: Option<&'a OuterRow<'a>>,
    /// What runs subqueries and answers catalog lookups (None: neither is possible).
    pub env: Option<&'a dyn Env>,
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

/// An enclosing query's current row, and its own enclosing rows.
#[derive(Debug, Clone, Copy)]
pub struct OuterRow<'a> {
    /// The row.
    pub row: &'a [Value],
    /// The next level out.
    pub up: Option<&'a OuterRow<'a>>,
}

/// The executor's side of evaluation: subqueries and the catalog.
pub trait Env: std::fmt::Debug {
    /// The rows of subquery `sub`, evaluated with `ctx`'s row as its outer row.
    fn subquery(
        &self,
        sub: &crate::select::SubQuery,
        ctx: &Ctx<'_>,
    ) -> SqlResult<std::sync::Arc<Vec<Vec<Value>>>>;
    /// The catalog as this statement sees it.
    fn catalog(&self) -> &crate::catalog::Catalog;
}

impl<'a> Ctx<'a> {
    pub(crate) fn env(&self) -> SqlResult<&'a dyn Env> {
        self.env.ok_or_else(|| {
            SqlError::unsupported("subqueries and catalog functions are not supported here")
        })
    }
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
    /// The session's cancel flag (`Session::cancel_flag`): long loops (scans) stop
    /// with 57014 once it is set.
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SessionInfo {
    /// 57014 once a cancel request came for the running statement.
    pub fn check_cancel(&self) -> crate::error::SqlResult<()> {
        if self.cancel.load(std::sync::atomic::Ordering::Acquire) {
            return Err(crate::error::SqlError::canceled());
        }
        Ok(())
    }
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

/// `x [NOT] IN (values)` with SQL's NULL rules.
fn in_values(x: Value, items: impl Iterator<Item = Value>, negated: bool) -> SqlResult<Value> {
    if matches!(x, Value::Null) {
        return Ok(Value::Null);
    }
    let mut saw_null = false;
    for item in items {
        let (p, q) = unify(x.clone(), item)?;
        if matches!(q, Value::Null) {
            saw_null = true;
        } else if compare(&p, &q) == Some(Ordering::Equal) {
            return Ok(Value::Bool(!negated));
        }
    }
    Ok(if saw_null {
        Value::Null
    } else {
        Value::Bool(negated)
    })
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
                let items = list
                    .iter()
                    .map(|item| item.eval(ctx))
                    .collect::<SqlResult<Vec<_>>>()?;
                in_values(x, items.into_iter(), *negated)?
            }
            Expr::Cast(a, ty) => crate::value::explicit_cast(a.eval(ctx)?, *ty)?,
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
            Expr::Outer(level, i, _) => {
                let mut at = ctx.outer;
                for _ in 0..*level {
                    at = at.and_then(|o| o.up);
                }
                at.and_then(|o| o.row.get(*i))
                    .cloned()
                    .unwrap_or(Value::Null)
            }
            Expr::Sub(kind, sub) => {
                let rows = ctx.env()?.subquery(&sub.0, ctx)?;
                let first = |r: &Vec<Value>| r.first().cloned().unwrap_or(Value::Null);
                match kind {
                    SubKind::Exists(negated) => Value::Bool(rows.is_empty() == *negated),
                    SubKind::Array => {
                        Value::Text(array::format(&rows.iter().map(first).collect::<Vec<_>>()))
                    }
                    SubKind::Scalar => {
                        match rows.as_slice() {
                            [] => Value::Null,
                            [r] => first(r),
                            _ => return Err(SqlError::new(
                                "21000",
                                "more than one row returned by a subquery used as an expression",
                            )),
                        }
                    }
                }
            }
            Expr::InSub(a, sub, negated) => {
                let x = a.eval(ctx)?;
                let rows = ctx.env()?.subquery(&sub.0, ctx)?;
                let items = rows
                    .iter()
                    .map(|r| r.first().cloned().unwrap_or(Value::Null));
                in_values(x, items, *negated)?
            }
            Expr::AnyArray(op, a, arr) => {
                let x = a.eval(ctx)?;
                match arr.eval(ctx)? {
                    Value::Null => Value::Null,
                    v => {
                        let items = array::parse(&value::to_text(&v).unwrap_or_default())?;
                        let mut saw_null = false;
                        for item in items {
                            let Some(item) = item else {
                                saw_null = true;
                                continue;
                            };
                            let c = Expr::Cmp(
                                *op,
                                Box::new(Expr::Const(x.clone())),
                                Box::new(Expr::Unknown(item)),
                            );
                            match truth(&c.eval(ctx)?) {
                                Some(true) => return Ok(Value::Bool(true)),
                                Some(false) => {}
                                None => saw_null = true,
                            }
                        }
                        if saw_null {
                            Value::Null
                        } else {
                            Value::Bool(false)
                        }
                    }
                }
            }
            Expr::Regex(a, p, negated, icase) => match (a.eval(ctx)?, p.eval(ctx)?) {
                (Value::Null, _) | (_, Value::Null) => Value::Null,
                (x, y) => {
                    let s = value::to_text(&x).unwrap_or_default();
                    let pat = value::to_text(&y).unwrap_or_default();
                    Value::Bool(array::regex_match(&s, &pat, *icase)? != *negated)
                }
            },
            Expr::Reg(a, kind) => {
                let v = a.eval(ctx)?;
                crate::catalog::reg_cast(v, *kind, ctx.env()?.catalog())?
            }
            Expr::Subscript(a, i) => match (a.eval(ctx)?, i.eval(ctx)?) {
                (Value::Null, _) | (_, Value::Null) => Value::Null,
                (arr, i) => {
                    let items = array::parse(&value::to_text(&arr).unwrap_or_default())?;
                    let at = i.as_int().and_then(|i| usize::try_from(i).ok());
                    at.and_then(|i| i.checked_sub(1))
                        .and_then(|i| items.get(i).cloned().flatten())
                        .map_or(Value::Null, Value::Text)
                }
            },
            Expr::Array(items) => {
                let vals = items
                    .iter()
                    .map(|a| a.eval(ctx))
                    .collect::<SqlResult<Vec<_>>>()?;
                Value::Text(array::format(&vals))
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
            | Expr::Like(..)
            | Expr::InSub(..)
            | Expr::Regex(..)
            | Expr::AnyArray(..)
            | Expr::Sub(SubKind::Exists(_), _) => Type::Bool,
            Expr::Outer(_, _, ty) => *ty,
            Expr::Sub(SubKind::Scalar, sub) => sub.0.ty,
            Expr::Sub(SubKind::Array, _) | Expr::Reg(..) | Expr::Subscript(..) | Expr::Array(_) => {
                Type::Text
            }
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
                Func::Cat(c) => c.ty(),
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
            Expr::InSub(a, _, _) | Expr::Reg(a, _) => a.infer_params(cols, out),
            Expr::Regex(a, b, ..) | Expr::AnyArray(_, a, b) | Expr::Subscript(a, b) => {
                a.infer_params(cols, out);
                b.infer_params(cols, out);
            }
            Expr::Array(items) => {
                for a in items {
                    a.infer_params(cols, out);
                }
            }
            Expr::Const(_)
            | Expr::Unknown(_)
            | Expr::Param(_)
            | Expr::Column(_)
            | Expr::SegmentId
            | Expr::Agg(_)
            | Expr::Outer(..)
            | Expr::Sub(..) => {}
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
        Func::Cat(c) => crate::catalog::eval_func(c, &vals, ctx)?,
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
