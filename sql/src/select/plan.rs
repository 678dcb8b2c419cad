//! Planning one SELECT block: names from the FROM list, expressions compiled against
//! them (subqueries see this block as their outer level), and the WHERE and ON
//! conjuncts placed where they first can run — one source's scan, a join step's keys or
//! condition, or the joined row.

use super::from::{self, JoinKind, Kind, Source};
use super::join::Step;
use super::{output, setop, QueryPlan, SelectPlan};
use crate::error::{SqlError, SqlResult};
use crate::expr::{ident, object_name, CmpOp, Compiler, Expr};
use crate::names::{Frame, Rel};
use crate::walk::conjuncts;
use crate::Session;
use sqlparser::ast;

/// Plans a query with the enclosing levels' names `outer`: the plan, the highest
/// parameter number, and the outermost enclosing level read.
pub(crate) fn plan_query(
    s: &Session,
    q: &ast::Query,
    outer: Vec<Frame<'_>>,
) -> SqlResult<(QueryPlan, usize, Option<usize>)> {
    if q.with.is_some() {
        return Err(SqlError::unsupported("WITH queries are not supported"));
    }
    if !q.locks.is_empty() {
        return Err(SqlError::unsupported(
            "SELECT … FOR UPDATE/SHARE is not supported",
        ));
    }
    if q.fetch.is_some() {
        return Err(SqlError::unsupported(
            "FETCH FIRST is not supported; use LIMIT",
        ));
    }
    plan_body(
        s,
        &q.body,
        q.order_by.as_ref(),
        q.limit_clause.as_ref(),
        outer,
    )
}

/// Plans a query body with its ORDER BY and LIMIT.
pub(crate) fn plan_body(
    s: &Session,
    body: &ast::SetExpr,
    order_by: Option<&ast::OrderBy>,
    limit: Option<&ast::LimitClause>,
    outer: Vec<Frame<'_>>,
) -> SqlResult<(QueryPlan, usize, Option<usize>)> {
    match body {
        ast::SetExpr::Select(sel) => plan_select(s, sel, order_by, limit, outer),
        ast::SetExpr::Query(q) if order_by.is_none() && limit.is_none() => plan_query(s, q, outer),
        ast::SetExpr::SetOperation { .. } => setop::plan(s, body, order_by, limit, outer),
        ast::SetExpr::Values(_) => Err(SqlError::unsupported("VALUES lists are not supported")),
        _ => Err(SqlError::unsupported(
            "only SELECT, UNION and subqueries are supported here",
        )),
    }
}

fn plan_select(
    s: &Session,
    sel: &ast::Select,
    order_by: Option<&ast::OrderBy>,
    limit: Option<&ast::LimitClause>,
    outer: Vec<Frame<'_>>,
) -> SqlResult<(QueryPlan, usize, Option<usize>)> {
    if sel.into.is_some() {
        return Err(SqlError::unsupported("SELECT INTO is not supported"));
    }
    if !sel.named_window.is_empty() {
        return Err(SqlError::unsupported("window functions are not supported"));
    }
    let fl = from::build(s, &sel.from, &outer)?;
    let mut c = Compiler::for_query(&fl.scope, &fl.rels, outer, s);
    c.params = fl.params;
    c.outer_used = fl.outer_used;
    // ON clauses and WHERE: no aggregates there.
    let mut on_conds: Vec<Vec<Expr>> = Vec::new();
    for (_, on, using) in &fl.joins {
        let mut cs = using.clone();
        if let Some(e) = on {
            conjuncts(c.compile(e)?, &mut cs);
        }
        on_conds.push(cs);
    }
    let mut where_conds = Vec::new();
    if let Some(w) = &sel.selection {
        conjuncts(c.compile(w)?, &mut where_conds);
    }
    c.aggs = Some(Vec::new());
    let items = select_items(&mut c, &sel.projection, &fl.rels)?;
    let mut group_by = Vec::new();
    if let ast::GroupByExpr::Expressions(exprs, _) = &sel.group_by {
        for e in exprs {
            group_by.push(resolve_ref(e, &items, &mut c, false)?);
        }
    } else {
        return Err(SqlError::unsupported("GROUP BY ALL"));
    }
    let having = sel.having.as_ref().map(|h| c.compile(h)).transpose()?;
    let mut order = Vec::new();
    if let Some(ob) = order_by {
        let ast::OrderByKind::Expressions(exprs) = &ob.kind else {
            return Err(SqlError::unsupported("ORDER BY ALL"));
        };
        for o in exprs {
            let x = resolve_ref(&o.expr, &items, &mut c, true)?;
            order.push((x, matches!(o.options.sort, Some(ast::OrderBySort::Desc))));
        }
    }
    let (limit, offset) = limit_offset(&mut c, limit)?;
    let distinct = match &sel.distinct {
        None => false,
        Some(ast::Distinct::Distinct) => true,
        Some(_) => return Err(SqlError::unsupported("DISTINCT ON")),
    };
    let aggs = c.aggs.take().unwrap_or_default();
    let (params, outer_used) = (c.params, c.outer_used);
    drop(c);
    let from::FromList {
        mut sources,
        rels,
        scope,
        joins,
        ..
    } = fl;
    let kinds: Vec<JoinKind> = joins.iter().map(|j| j.0).collect();
    let (steps, filter) = place(&mut sources, &rels, &kinds, on_conds, where_conds);
    let mut p = SelectPlan {
        sources,
        steps,
        scope,
        rels,
        filter,
        items,
        aggs,
        group_by,
        having,
        order,
        distinct,
        limit,
        offset,
        uses_segment_id: false,
    };
    p.uses_segment_id = mentions_segment_id(&p);
    project(&mut p);
    output::check_grouping(&p)?;
    Ok((QueryPlan::Select(Box::new(p)), params, outer_used))
}

/// Narrows each user table's scan to the columns the query reads (a subquery may read
/// any column of this level, so with one every column is read).
fn project(p: &mut SelectPlan) {
    let exprs: Vec<&Expr> = p
        .items
        .iter()
        .map(|(_, e)| e)
        .chain(&p.filter)
        .chain(p.steps.iter().flat_map(|s| s.keys.iter().map(|(l, _)| l)))
        .chain(p.steps.iter().flat_map(|s| s.on.iter().chain(&s.after)))
        .chain(&p.group_by)
        .chain(p.having.iter())
        .chain(p.order.iter().map(|(e, _)| e))
        .chain(p.aggs.iter().filter_map(|a| a.arg.as_ref()))
        .collect();
    // A step's right keys read its source's own row.
    let right_keys: Vec<(usize, &Expr)> = p
        .steps
        .iter()
        .zip(p.rels.iter().skip(1))
        .flat_map(|(s, r)| s.keys.iter().map(move |(_, k)| (r.start, k)))
        .collect();
    if exprs.iter().any(|e| e.has_subquery()) {
        return;
    }
    let mut needed = vec![false; p.scope.columns.len()];
    for e in exprs {
        e.visit_columns(&mut |i| {
            if let Some(n) = needed.get_mut(i) {
                *n = true;
            }
        });
    }
    for (start, k) in right_keys {
        k.visit_columns(&mut |i| {
            if let Some(n) = needed.get_mut(start + i) {
                *n = true;
            }
        });
    }
    for (src, rel) in p.sources.iter_mut().zip(&p.rels) {
        if !matches!(src.kind, Kind::Table(_)) || src.filter.iter().any(Expr::has_subquery) {
            continue;
        }
        let mut local: Vec<bool> = needed.get(rel.start..rel.end).unwrap_or(&[]).to_vec();
        for f in &src.filter {
            f.visit_columns(&mut |i| {
                if let Some(n) = local.get_mut(i) {
                    *n = true;
                }
            });
        }
        src.needed = Some(
            (0..local.len())
                .filter(|i| local.get(*i) == Some(&true))
                .collect(),
        );
    }
}

fn mentions_segment_id(p: &SelectPlan) -> bool {
    let seg = |e: &Expr| e.any(&|x| matches!(x, Expr::SegmentId));
    p.items.iter().any(|(_, e)| seg(e))
        || p.group_by.iter().any(seg)
        || p.order.iter().any(|(e, _)| seg(e))
        || p.filter.iter().any(seg)
        || p.sources.iter().flat_map(|s| &s.filter).any(seg)
}

/// LIMIT and OFFSET.
pub(crate) fn limit_offset(
    c: &mut Compiler<'_>,
    limit: Option<&ast::LimitClause>,
) -> SqlResult<(Option<Expr>, Option<Expr>)> {
    Ok(match limit {
        None => (None, None),
        Some(ast::LimitClause::LimitOffset { limit, offset, .. }) => (
            limit.as_ref().map(|l| c.compile(l)).transpose()?,
            offset.as_ref().map(|o| c.compile(&o.value)).transpose()?,
        ),
        Some(ast::LimitClause::OffsetCommaLimit { .. }) => {
            return Err(SqlError::unsupported("LIMIT offset, count"))
        }
    })
}

fn select_items(
    c: &mut Compiler<'_>,
    projection: &[ast::SelectItem],
    rels: &[Rel],
) -> SqlResult<Vec<(String, Expr)>> {
    let mut items = Vec::new();
    let star = |items: &mut Vec<(String, Expr)>, r: &Rel, c: &Compiler<'_>| {
        for i in r.start..r.end {
            if !r.hidden.contains(&i) {
                let name = c
                    .scope
                    .columns
                    .get(i)
                    .map(|x| x.0.clone())
                    .unwrap_or_default();
                items.push((name, Expr::Column(i)));
            }
        }
    };
    for it in projection {
        match it {
            ast::SelectItem::Wildcard(_) => {
                if rels.is_empty() {
                    return Err(SqlError::syntax(
                        "SELECT * with no tables specified is not valid",
                    ));
                }
                for r in rels {
                    star(&mut items, r, c);
                }
            }
            ast::SelectItem::QualifiedWildcard(kind, _) => {
                // `t.*` or `s.t.*`.
                let (schema, name) = match kind {
                    ast::SelectItemQualifiedWildcardKind::ObjectName(n) => {
                        let r = crate::schema::RelName::of(n)?;
                        (r.schema, r.name)
                    }
                    ast::SelectItemQualifiedWildcardKind::Expr(e) => (None, e.to_string()),
                };
                let r = rels
                    .iter()
                    .find(|r| {
                        r.names.contains(&name)
                            && schema
                                .as_ref()
                                .is_none_or(|s| r.schema.as_ref().is_none_or(|rs| rs == s))
                    })
                    .ok_or_else(|| {
                        SqlError::new(
                            "42P01",
                            format!("missing FROM-clause entry for table \"{name}\""),
                        )
                    })?;
                star(&mut items, r, c);
            }
            ast::SelectItem::UnnamedExpr(e) => {
                let x = c.compile(e)?;
                items.push((output_name(e), x));
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                items.push((ident(alias), c.compile(expr)?));
            }
            other => return Err(SqlError::unsupported(format!("select item {other}"))),
        }
    }
    Ok(items)
}

/// ORDER BY / GROUP BY items: an output ordinal (`1`), an output alias, or an
/// expression.
fn resolve_ref(
    e: &ast::Expr,
    items: &[(String, Expr)],
    c: &mut Compiler<'_>,
    aliases: bool,
) -> SqlResult<Expr> {
    if let ast::Expr::Value(v) = e {
        if let ast::Value::Number(n, _) = &v.value {
            let k: usize = n.parse().unwrap_or(0);
            return items
                .get(k.wrapping_sub(1))
                .map(|(_, x)| x.clone())
                .ok_or_else(|| {
                    SqlError::new("42P10", format!("position {n} is not in select list"))
                });
        }
    }
    if aliases {
        if let ast::Expr::Identifier(i) = e {
            let name = ident(i);
            if let Some((_, x)) = items.iter().find(|(n, _)| *n == name) {
                if c.scope.columns.iter().all(|(cn, _)| *cn != name) {
                    return Ok(x.clone());
                }
            }
        }
    }
    c.compile(e)
}

/// The name PostgreSQL gives an unnamed output column.
pub(crate) fn output_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(i) => ident(i),
        ast::Expr::CompoundIdentifier(p) => p.last().map(ident).unwrap_or_default(),
        ast::Expr::Function(f) => object_name(&f.name),
        ast::Expr::Cast { expr, .. } | ast::Expr::Collate { expr, .. } => {
            match output_name(expr).as_str() {
                "?column?" => "?column?".into(),
                n => n.into(),
            }
        }
        ast::Expr::Nested(x) => output_name(x),
        ast::Expr::Exists { .. } => "exists".into(),
        ast::Expr::Subquery(q) => match &*q.body {
            ast::SetExpr::Select(sel) => match sel.projection.first() {
                Some(ast::SelectItem::UnnamedExpr(e)) => output_name(e),
                Some(ast::SelectItem::ExprWithAlias { alias, .. }) => ident(alias),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        ast::Expr::Case { .. } => "case".into(),
        _ => "?column?".into(),
    }
}

/// The source holding column `i`.
fn source_of(rels: &[Rel], i: usize) -> usize {
    rels.iter()
        .position(|r| r.start <= i && i < r.end)
        .unwrap_or(0)
}

/// Places the ON and WHERE conjuncts: into a source's filter when they read only that
/// source (and may run there), into the join that first sees all their columns (as hash
/// keys when they are an equality between its two sides), or onto the joined row.
fn place(
    sources: &mut [Source],
    rels: &[Rel],
    kinds: &[JoinKind],
    on_conds: Vec<Vec<Expr>>,
    where_conds: Vec<Expr>,
) -> (Vec<Step>, Vec<Expr>) {
    let mut steps: Vec<Step> = kinds
        .iter()
        .map(|k| Step {
            left: *k == JoinKind::Left,
            ..Step::default()
        })
        .collect();
    let mut filter = Vec::new();
    // May `e`, reading only source k, run as that source is read? A scan worker runs a
    // user table's filters, so those must not need the executor.
    let pushable = |sources: &[Source], k: usize, e: &Expr| {
        let table = matches!(sources.get(k).map(|s| &s.kind), Some(Kind::Table(_)));
        let runs_in_worker = table && e.needs_env();
        !e.has_subquery() && !runs_in_worker
    };
    for (j, conds) in on_conds.into_iter().enumerate() {
        let k = j + 1;
        let Some(rel) = rels.get(k) else { continue };
        for e in conds {
            let span = e.column_span();
            let here = span.is_some_and(|(lo, hi)| lo >= rel.start && hi < rel.end);
            if here && pushable(sources, k, &e) {
                if let Some(src) = sources.get_mut(k) {
                    src.filter.push(e.shifted(rel.start));
                }
            } else if let Some(step) = steps.get_mut(j) {
                step.add_condition(e, rel.start, rel.end);
            }
        }
    }
    for e in where_conds {
        let Some((lo, hi)) = e.column_span().filter(|_| !e.has_subquery()) else {
            filter.push(e);
            continue;
        };
        let (klo, khi) = (source_of(rels, lo), source_of(rels, hi));
        let inner_side = khi == 0 || steps.get(khi - 1).is_some_and(|s| !s.left);
        if klo == khi && inner_side && pushable(sources, khi, &e) {
            let start = rels.get(khi).map_or(0, |r| r.start);
            if let Some(src) = sources.get_mut(khi) {
                src.filter.push(e.shifted(start));
            }
            continue;
        }
        match (khi.checked_sub(1), rels.get(khi)) {
            (Some(j), Some(rel)) => {
                if let Some(step) = steps.get_mut(j) {
                    if step.left {
                        step.after.push(e);
                    } else {
                        step.add_condition(e, rel.start, rel.end);
                    }
                }
            }
            _ => filter.push(e),
        }
    }
    (steps, filter)
}

impl Step {
    /// Adds a condition of the join of the relation at columns `start..end`: a hash key
    /// when it is an equality between the left side and this relation.
    fn add_condition(&mut self, e: Expr, start: usize, end: usize) {
        if let Expr::Cmp(CmpOp::Eq, a, b) = &e {
            let left = |x: &Expr| x.column_span().is_some_and(|(_, hi)| hi < start);
            let right = |x: &Expr| {
                x.column_span()
                    .is_some_and(|(lo, hi)| lo >= start && hi < end)
            };
            let plain = !e.has_subquery();
            if plain && left(a) && right(b) {
                self.keys.push(((**a).clone(), b.shifted(start)));
                return;
            }
            if plain && left(b) && right(a) {
                self.keys.push(((**b).clone(), a.shifted(start)));
                return;
            }
        }
        self.on.push(e);
    }
}
