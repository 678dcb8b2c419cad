//! UNION and UNION ALL: both sides' rows (the same number of columns), duplicates
//! removed for UNION, then ORDER BY output columns (by position or name) and LIMIT.
//! INTERSECT and EXCEPT are refused.

use super::exec::Exec;
use super::output::{compare_keys, count};
use super::plan::{limit_offset, plan_body};
use super::QueryPlan;
use crate::error::{SqlError, SqlResult};
use crate::eval::OuterRow;
use crate::expr::{ident, Compiler, Ctx, Expr, Scope};
use crate::names::Frame;
use crate::Session;
use segexpand_engine::Value;
use sqlparser::ast;
use std::collections::HashSet;

/// `left UNION [ALL] right`, ordered and limited.
#[derive(Debug)]
pub(crate) struct UnionPlan {
    pub(crate) all: bool,
    pub(crate) left: QueryPlan,
    pub(crate) right: QueryPlan,
    /// Output column and whether descending.
    pub(crate) order: Vec<(usize, bool)>,
    pub(crate) limit: Option<Expr>,
    pub(crate) offset: Option<Expr>,
}

/// Plans a set operation with its ORDER BY and LIMIT.
pub(crate) fn plan(
    s: &Session,
    body: &ast::SetExpr,
    order_by: Option<&ast::OrderBy>,
    limit: Option<&ast::LimitClause>,
    outer: Vec<Frame<'_>>,
) -> SqlResult<(QueryPlan, usize, Option<usize>)> {
    let ast::SetExpr::SetOperation {
        op,
        set_quantifier,
        left,
        right,
    } = body
    else {
        return Err(SqlError::unsupported("expected a set operation"));
    };
    if *op != ast::SetOperator::Union {
        return Err(SqlError::unsupported(format!("{op} is not supported")));
    }
    let all = match set_quantifier {
        ast::SetQuantifier::All => true,
        ast::SetQuantifier::None | ast::SetQuantifier::Distinct => false,
        other => return Err(SqlError::unsupported(format!("UNION {other}"))),
    };
    let (l, lp, lu) = plan_body(s, left, None, None, outer.clone())?;
    let (r, rp, ru) = plan_body(s, right, None, None, outer.clone())?;
    let names: Vec<String> = l.columns(&[]).into_iter().map(|c| c.name).collect();
    if r.columns(&[]).len() != names.len() {
        return Err(SqlError::syntax(
            "each UNION query must have the same number of columns",
        ));
    }
    let mut order = Vec::new();
    if let Some(ob) = order_by {
        let ast::OrderByKind::Expressions(exprs) = &ob.kind else {
            return Err(SqlError::unsupported("ORDER BY ALL"));
        };
        for o in exprs {
            let col = match &o.expr {
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => {
                        n.parse::<usize>().ok().and_then(|k| k.checked_sub(1))
                    }
                    _ => None,
                },
                ast::Expr::Identifier(i) => names.iter().position(|n| *n == ident(i)),
                _ => None,
            }
            .filter(|k| *k < names.len())
            .ok_or_else(|| {
                SqlError::unsupported("ORDER BY of a UNION takes output column positions or names")
            })?;
            order.push((col, matches!(o.options.sort, Some(ast::OrderBySort::Desc))));
        }
    }
    let empty = Scope::default();
    let mut c = Compiler::for_query(&empty, &[], outer, s);
    let (limit, offset) = limit_offset(&mut c, limit)?;
    let params = lp.max(rp).max(c.params);
    let used = [lu, ru, c.outer_used].into_iter().flatten().max();
    drop(c);
    Ok((
        QueryPlan::Union(Box::new(UnionPlan {
            all,
            left: l,
            right: r,
            order,
            limit,
            offset,
        })),
        params,
        used,
    ))
}

/// The rows of a UNION.
pub(crate) fn run(
    ex: &Exec<'_>,
    u: &UnionPlan,
    outer: Option<&OuterRow<'_>>,
) -> SqlResult<Vec<Vec<Value>>> {
    let mut rows = ex.query(&u.left, outer)?;
    rows.extend(ex.query(&u.right, outer)?);
    if !u.all {
        let mut seen = HashSet::new();
        rows.retain(|r| seen.insert(super::agg::key_text(r)));
    }
    if !u.order.is_empty() {
        let desc: Vec<bool> = u.order.iter().map(|(_, d)| *d).collect();
        let key = |r: &Vec<Value>| -> Vec<Value> {
            u.order
                .iter()
                .map(|(k, _)| r.get(*k).cloned().unwrap_or(Value::Null))
                .collect()
        };
        rows.sort_by(|a, b| compare_keys(&key(a), &key(b), &desc));
    }
    let base = Ctx {
        params: ex.params(),
        session: Some(ex.info()),
        outer,
        ..Ctx::default()
    };
    let offset = count(u.offset.as_ref(), &base)?.unwrap_or(0);
    let limit = count(u.limit.as_ref(), &base)?;
    Ok(rows
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect())
}
