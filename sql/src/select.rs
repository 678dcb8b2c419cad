//! SELECT: one table (or none, or a catalog table), WHERE, projection, aggregates
//! (`count/sum/avg/min/max`, DISTINCT), GROUP BY, HAVING, ORDER BY, LIMIT/OFFSET,
//! DISTINCT, and the pseudo-column `gp_segment_id`. A WHERE that pins the whole
//! distribution key reads one segment (direct dispatch, as Greenplum); anything else
//! reads every segment through scan cursors at one snapshot.

use crate::dml::{key_of, table_def, table_scope};
use crate::error::{SqlError, SqlResult};
use crate::expr::{ident, object_name, AggCall, AggFunc, Compiler, Ctx, Expr, Scope};
use crate::value::{self, arith, sort_cmp, to_text, Dec};
use crate::{Column, Output, Session};
use segexpand_engine::{ScanOptions, Txn, Type, Value};
use sqlparser::ast::{self as ast, Statement};
use std::cmp::Ordering;
use std::collections::HashMap;

/// A compiled SELECT.
struct Plan {
    /// The table read (None: no FROM, or a catalog table).
    table: Option<String>,
    /// A catalog table's rows.
    virtual_rows: Option<Vec<Vec<Value>>>,
    scope: Scope,
    where_: Option<Expr>,
    items: Vec<(String, Expr)>,
    aggs: Vec<AggCall>,
    group_by: Vec<Expr>,
    having: Option<Expr>,
    /// Sort keys: an expression and whether descending.
    order: Vec<(Expr, bool)>,
    distinct: bool,
    limit: Option<Expr>,
    offset: Option<Expr>,
    params: usize,
    /// Whether the query reads `gp_segment_id` (no direct dispatch then).
    uses_segment_id: bool,
}

fn is_aggregated(p: &Plan) -> bool {
    !p.aggs.is_empty() || !p.group_by.is_empty()
}

fn mentions_segment_id(e: &Expr) -> bool {
    let any = |xs: &[Expr]| xs.iter().any(mentions_segment_id);
    match e {
        Expr::SegmentId => true,
        Expr::Arith(_, a, b)
        | Expr::Cmp(_, a, b)
        | Expr::And(a, b)
        | Expr::Or(a, b)
        | Expr::Concat(a, b)
        | Expr::Like(a, b, _) => mentions_segment_id(a) || mentions_segment_id(b),
        Expr::Not(a) | Expr::Neg(a) | Expr::IsNull(a, _) | Expr::Cast(a, _) => {
            mentions_segment_id(a)
        }
        Expr::InList(a, l, _) => mentions_segment_id(a) || any(l),
        Expr::Case(arms, els) => {
            arms.iter()
                .any(|(c, r)| mentions_segment_id(c) || mentions_segment_id(r))
                || els.as_deref().is_some_and(mentions_segment_id)
        }
        Expr::Func(_, args) => any(args),
        Expr::Const(_) | Expr::Unknown(_) | Expr::Param(_) | Expr::Column(_) | Expr::Agg(_) => {
            false
        }
    }
}

fn plan(s: &Session, q: &ast::Query) -> SqlResult<Plan> {
    if q.with.is_some() {
        return Err(SqlError::unsupported("WITH queries are not supported"));
    }
    let ast::SetExpr::Select(sel) = &*q.body else {
        return Err(SqlError::unsupported(
            "only plain SELECT queries are supported (no UNION, VALUES, subqueries)",
        ));
    };
    let (table, virtual_rows, scope) = match sel.from.as_slice() {
        [] => (None, Some(vec![Vec::new()]), Scope::default()),
        [t] => {
            if !t.joins.is_empty() {
                return Err(SqlError::unsupported("joins are not supported yet"));
            }
            let ast::TableFactor::Table { name, alias, .. } = &t.relation else {
                return Err(SqlError::unsupported("FROM a subquery or function"));
            };
            let n = object_name(name);
            let alias = alias.as_ref().map(|a| ident(&a.name));
            if let Some((scope, rows)) = crate::catalog::virtual_table(s, &n, alias.clone()) {
                (None, Some(rows), scope)
            } else {
                let def = table_def(s, &n)?;
                (Some(n), None, table_scope(&def, alias))
            }
        }
        _ => return Err(SqlError::unsupported("joins are not supported yet")),
    };
    let mut c = Compiler::new(&scope);
    c.aggs = Some(Vec::new());
    let mut items = Vec::new();
    for it in &sel.projection {
        match it {
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                for (i, (name, _)) in scope.columns.iter().enumerate() {
                    items.push((name.clone(), Expr::Column(i)));
                }
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
    let mut where_c = Compiler::new(&scope);
    let where_ = sel
        .selection
        .as_ref()
        .map(|w| where_c.compile(w))
        .transpose()?;
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
    if let Some(ob) = &q.order_by {
        let ast::OrderByKind::Expressions(exprs) = &ob.kind else {
            return Err(SqlError::unsupported("ORDER BY ALL"));
        };
        for o in exprs {
            let x = resolve_ref(&o.expr, &items, &mut c, true)?;
            order.push((x, matches!(o.options.sort, Some(ast::OrderBySort::Desc))));
        }
    }
    let (limit, offset) = match &q.limit_clause {
        None => (None, None),
        Some(ast::LimitClause::LimitOffset { limit, offset, .. }) => (
            limit.as_ref().map(|l| c.compile(l)).transpose()?,
            offset.as_ref().map(|o| c.compile(&o.value)).transpose()?,
        ),
        Some(ast::LimitClause::OffsetCommaLimit { .. }) => {
            return Err(SqlError::unsupported("LIMIT offset, count"))
        }
    };
    let distinct = match &sel.distinct {
        None => false,
        Some(ast::Distinct::Distinct) => true,
        Some(_) => return Err(SqlError::unsupported("DISTINCT ON")),
    };
    let aggs = c.aggs.take().unwrap_or_default();
    let params = c.params.max(where_c.params);
    drop(c);
    drop(where_c);
    let uses_segment_id = items.iter().any(|(_, e)| mentions_segment_id(e))
        || group_by.iter().any(mentions_segment_id)
        || order.iter().any(|(e, _)| mentions_segment_id(e))
        || where_.as_ref().is_some_and(mentions_segment_id);
    let mut p = Plan {
        table,
        virtual_rows,
        scope,
        where_,
        items,
        aggs,
        group_by,
        having,
        order,
        distinct,
        limit,
        offset,
        params,
        uses_segment_id,
    };
    check_grouping(&mut p)?;
    Ok(p)
}

/// Aggregated queries: a column outside aggregates must be grouped by.
fn check_grouping(p: &mut Plan) -> SqlResult<()> {
    if !is_aggregated(p) {
        return Ok(());
    }
    fn check(e: &Expr, groups: &[Expr], scope: &Scope) -> SqlResult<()> {
        if groups.contains(e) {
            return Ok(());
        }
        match e {
            Expr::Column(i) => Err(SqlError::new(
                "42803",
                format!(
                    "column \"{}\" must appear in the GROUP BY clause or be used in an \
                     aggregate function",
                    scope.columns.get(*i).map_or("?", |c| c.0.as_str())
                ),
            )),
            Expr::SegmentId => Err(SqlError::new(
                "42803",
                "column \"gp_segment_id\" must appear in the GROUP BY clause or be used in \
                 an aggregate function",
            )),
            Expr::Arith(_, a, b)
            | Expr::Cmp(_, a, b)
            | Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Concat(a, b)
            | Expr::Like(a, b, _) => {
                check(a, groups, scope)?;
                check(b, groups, scope)
            }
            Expr::Not(a) | Expr::Neg(a) | Expr::IsNull(a, _) | Expr::Cast(a, _) => {
                check(a, groups, scope)
            }
            Expr::InList(a, l, _) => {
                check(a, groups, scope)?;
                l.iter().try_for_each(|x| check(x, groups, scope))
            }
            Expr::Case(arms, els) => {
                for (c, r) in arms {
                    check(c, groups, scope)?;
                    check(r, groups, scope)?;
                }
                els.as_ref().map_or(Ok(()), |x| check(x, groups, scope))
            }
            Expr::Func(_, args) => args.iter().try_for_each(|x| check(x, groups, scope)),
            _ => Ok(()),
        }
    }
    for (_, e) in &p.items {
        check(e, &p.group_by, &p.scope)?;
    }
    for (e, _) in &p.order {
        check(e, &p.group_by, &p.scope)?;
    }
    if let Some(h) = &p.having {
        check(h, &p.group_by, &p.scope)?;
    }
    Ok(())
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

fn output_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(i) => ident(i),
        ast::Expr::CompoundIdentifier(p) => p.last().map(ident).unwrap_or_default(),
        ast::Expr::Function(f) => object_name(&f.name),
        ast::Expr::Cast { expr, .. } => match output_name(expr).as_str() {
            "?column?" => "?column?".into(),
            n => n.into(),
        },
        ast::Expr::Nested(x) => output_name(x),
        _ => "?column?".into(),
    }
}

fn agg_type(a: &AggCall, cols: &[(String, Type)], params: &[Type]) -> Type {
    let arg = a.arg.as_ref().map(|x| x.ty(cols, params, &[]));
    match (a.func, arg) {
        (AggFunc::Count, _) => Type::Int8,
        (AggFunc::Sum, Some(Type::Int2 | Type::Int4)) => Type::Int8,
        (AggFunc::Sum | AggFunc::Avg, Some(Type::Float8)) => Type::Float8,
        (AggFunc::Sum | AggFunc::Avg, _) => Type::Numeric,
        (AggFunc::Min | AggFunc::Max, Some(t)) => t,
        (AggFunc::Min | AggFunc::Max, None) => Type::Text,
    }
}

fn columns(p: &Plan, params: &[Type]) -> Vec<Column> {
    let aggt: Vec<Type> = p
        .aggs
        .iter()
        .map(|a| agg_type(a, &p.scope.columns, params))
        .collect();
    p.items
        .iter()
        .map(|(n, e)| Column {
            name: n.clone(),
            ty: e.ty(&p.scope.columns, params, &aggt),
        })
        .collect()
}

/// Parameter types and result columns of a SELECT (extended protocol's Describe).
pub(crate) fn describe(s: &mut Session, q: &ast::Query) -> SqlResult<(Vec<Type>, Vec<Column>)> {
    let p = plan(s, q)?;
    let mut inferred: Vec<Option<Type>> = Vec::new();
    for e in p
        .where_
        .iter()
        .chain(p.items.iter().map(|(_, e)| e))
        .chain(p.having.iter())
    {
        e.infer_params(&p.scope.columns, &mut inferred);
    }
    inferred.resize(p.params.max(inferred.len()), None);
    let params: Vec<Type> = inferred
        .into_iter()
        .map(|t| t.unwrap_or(Type::Text))
        .collect();
    let cols = columns(&p, &params);
    Ok((params, cols))
}

/// An aggregate's running state.
#[derive(Clone)]
enum Acc {
    Count(i64),
    Sum(Value),
    Avg(Dec, i64, f64, bool),
    MinMax(Value),
}

fn acc_new(a: &AggCall) -> Acc {
    match a.func {
        AggFunc::Count => Acc::Count(0),
        AggFunc::Sum => Acc::Sum(Value::Null),
        AggFunc::Avg => Acc::Avg(Dec::from_int(0), 0, 0.0, false),
        AggFunc::Min | AggFunc::Max => Acc::MinMax(Value::Null),
    }
}

fn acc_add(acc: &mut Acc, a: &AggCall, v: Option<Value>) -> SqlResult<()> {
    match (acc, v) {
        (Acc::Count(n), None) => *n += 1,
        (_, None) => {}
        (_, Some(Value::Null)) => {}
        (Acc::Count(n), Some(_)) => *n += 1,
        (Acc::Sum(s), Some(v)) => {
            let v = match v {
                Value::Int2(i) => Value::Int8(i64::from(i)),
                Value::Int4(i) => Value::Int8(i64::from(i)),
                Value::Int8(i) => Value::Numeric(i.to_string()),
                other => other,
            };
            *s = if matches!(s, Value::Null) {
                v
            } else {
                arith(s, '+', &v)?
            };
        }
        (Acc::Avg(sum, n, fsum, is_float), Some(v)) => {
            *n += 1;
            match v {
                Value::Float8(f) => {
                    *is_float = true;
                    *fsum += f;
                }
                Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_) => {
                    let d = match &v {
                        Value::Numeric(t) => Dec::parse(t),
                        other => other.as_int().map(Dec::from_int),
                    }
                    .ok_or_else(|| SqlError::out_of_range(Type::Numeric))?;
                    *sum = Dec::arith(*sum, '+', d)
                        .ok_or_else(|| SqlError::out_of_range(Type::Numeric))?;
                }
                other => {
                    return Err(SqlError::new(
                        "42883",
                        format!(
                            "function avg({}) does not exist",
                            value::type_name(value::type_of_value(&other))
                        ),
                    ))
                }
            }
        }
        (Acc::MinMax(m), Some(v)) => {
            let better = matches!(m, Value::Null)
                || match a.func {
                    AggFunc::Min => sort_cmp(&v, m) == Ordering::Less,
                    _ => sort_cmp(&v, m) == Ordering::Greater,
                };
            if better {
                *m = v;
            }
        }
    }
    Ok(())
}

fn acc_result(acc: &Acc) -> Value {
    match acc {
        Acc::Count(n) => Value::Int8(*n),
        Acc::Sum(v) | Acc::MinMax(v) => v.clone(),
        Acc::Avg(_, 0, _, _) => Value::Null,
        Acc::Avg(_, n, f, true) => Value::Float8(*f / *n as f64),
        Acc::Avg(sum, n, _, false) => Dec::arith(*sum, '/', Dec::from_int(*n))
            .map_or(Value::Null, |d| Value::Numeric(d.to_string())),
    }
}

struct Group {
    first: Vec<Value>,
    segment: Option<u16>,
    accs: Vec<Acc>,
    seen: Vec<std::collections::HashSet<String>>,
}

fn key_text(vals: &[Value]) -> String {
    let mut k = String::new();
    for v in vals {
        match to_text(v) {
            None => k.push_str("\u{0}N"),
            Some(t) => {
                k.push_str("\u{0}V");
                k.push_str(&t);
            }
        }
    }
    k
}

/// Runs a SELECT in `tx`.
pub(crate) fn run(
    s: &mut Session,
    tx: &mut Txn,
    q: &ast::Query,
    params: &[Value],
) -> SqlResult<Output> {
    let p = plan(s, q)?;
    if p.params > params.len() {
        return Err(SqlError::new(
            "08P01",
            format!(
                "the query has {} parameters but {} were bound",
                p.params,
                params.len()
            ),
        ));
    }
    let ptypes: Vec<Type> = params.iter().map(value::type_of_value).collect();
    let cols = columns(&p, &ptypes);
    let info = s.info.clone();
    let base = Ctx {
        params,
        session: Some(&info),
        ..Ctx::default()
    };
    // Rows that pass WHERE, with their segments.
    let mut input: Vec<(Option<u16>, Vec<Value>)> = Vec::new();
    let mut take = |seg: Option<u16>, row: Vec<Value>| -> SqlResult<()> {
        let ctx = Ctx {
            row: &row,
            segment: seg,
            ..base
        };
        if p.where_.as_ref().map_or(Ok(true), |w| w.passes(&ctx))? {
            input.push((seg, row));
        }
        Ok(())
    };
    if let Some(rows) = &p.virtual_rows {
        for r in rows {
            take(None, r.clone())?;
        }
    } else if let Some(t) = &p.table {
        let def = table_def(s, t)?;
        let handle = s.node.table(t)?;
        match key_of(&def, p.where_.as_ref(), params).filter(|_| !p.uses_segment_id) {
            Some((key, _)) => {
                for r in tx.get(&handle, &key)? {
                    take(None, r)?;
                }
            }
            None => {
                let span = def
                    .layout
                    .segments
                    .max(def.target().map_or(0, |l| l.segments));
                let groups: Vec<Option<Vec<u16>>> = (0..span).map(|g| Some(vec![g])).collect();
                let mut cursors = tx.scan_cursors(&handle, ScanOptions::default(), &groups)?;
                for (seg, cur) in (0..span).zip(cursors.iter_mut()) {
                    while let Some(batch) = cur.next_batch()? {
                        for r in batch {
                            take(Some(seg), r)?;
                        }
                    }
                }
            }
        }
    }
    // Output rows (values) with their sort keys.
    let mut out: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    if is_aggregated(&p) {
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (seg, row) in &input {
            let ctx = Ctx {
                row,
                segment: *seg,
                ..base
            };
            let gk: Vec<Value> = p
                .group_by
                .iter()
                .map(|g| g.eval(&ctx))
                .collect::<SqlResult<_>>()?;
            let key = key_text(&gk);
            let gi = match index.get(&key) {
                Some(i) => *i,
                None => {
                    groups.push(Group {
                        first: row.clone(),
                        segment: *seg,
                        accs: p.aggs.iter().map(acc_new).collect(),
                        seen: vec![Default::default(); p.aggs.len()],
                    });
                    index.insert(key, groups.len() - 1);
                    groups.len() - 1
                }
            };
            let Some(g) = groups.get_mut(gi) else {
                continue;
            };
            for (k, a) in p.aggs.iter().enumerate() {
                let v = a.arg.as_ref().map(|x| x.eval(&ctx)).transpose()?;
                if a.distinct {
                    let t = v.as_ref().map(|v| key_text(std::slice::from_ref(v)));
                    if let (Some(t), Some(seen)) = (t, g.seen.get_mut(k)) {
                        if !seen.insert(t) {
                            continue;
                        }
                    }
                }
                if let Some(acc) = g.accs.get_mut(k) {
                    acc_add(acc, a, v)?;
                }
            }
        }
        if groups.is_empty() && p.group_by.is_empty() {
            // An aggregate over no rows still gives one row.
            groups.push(Group {
                first: vec![Value::Null; p.scope.columns.len()],
                segment: None,
                accs: p.aggs.iter().map(acc_new).collect(),
                seen: Vec::new(),
            });
        }
        for g in &groups {
            let aggs: Vec<Value> = g.accs.iter().map(acc_result).collect();
            let ctx = Ctx {
                row: &g.first,
                segment: g.segment,
                aggs: &aggs,
                ..base
            };
            if let Some(h) = &p.having {
                if !h.passes(&ctx)? {
                    continue;
                }
            }
            out.push(project(&p, &ctx)?);
        }
    } else {
        for (seg, row) in &input {
            let ctx = Ctx {
                row,
                segment: *seg,
                ..base
            };
            out.push(project(&p, &ctx)?);
        }
    }
    if p.distinct {
        let mut seen = std::collections::HashSet::new();
        out.retain(|(vals, _)| seen.insert(key_text(vals)));
    }
    if !p.order.is_empty() {
        out.sort_by(|a, b| {
            for (k, (_, desc)) in p.order.iter().enumerate() {
                let o = match (a.1.get(k), b.1.get(k)) {
                    (Some(x), Some(y)) => sort_cmp(x, y),
                    _ => Ordering::Equal,
                };
                let o = if *desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
    }
    let count = |e: &Option<Expr>| -> SqlResult<Option<usize>> {
        match e {
            None => Ok(None),
            Some(x) => match x.eval(&base)? {
                Value::Null => Ok(None),
                v => match v.as_int() {
                    Some(n) if n >= 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
                    _ => Err(SqlError::new(
                        "2201W",
                        "LIMIT and OFFSET must not be negative",
                    )),
                },
            },
        }
    };
    let offset = count(&p.offset)?.unwrap_or(0);
    let limit = count(&p.limit)?;
    let rows: Vec<Vec<Option<String>>> = out
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|(vals, _)| vals.iter().map(to_text).collect())
        .collect();
    Ok(Output::Rows {
        columns: cols,
        rows,
    })
}

fn project(p: &Plan, ctx: &Ctx<'_>) -> SqlResult<(Vec<Value>, Vec<Value>)> {
    let vals = p
        .items
        .iter()
        .map(|(_, e)| e.eval(ctx))
        .collect::<SqlResult<Vec<_>>>()?;
    let keys = p
        .order
        .iter()
        .map(|(e, _)| e.eval(ctx))
        .collect::<SqlResult<Vec<_>>>()?;
    Ok((vals, keys))
}

/// EXPLAIN: says whether the statement goes to one segment or to all.
pub(crate) fn explain(s: &mut Session, stmt: &Statement) -> SqlResult<Output> {
    let line = match stmt {
        Statement::Query(q) => {
            let p = plan(s, q)?;
            match &p.table {
                None => "Result (no table)".to_string(),
                Some(t) => {
                    let def = table_def(s, t)?;
                    match key_of(&def, p.where_.as_ref(), &[]).filter(|_| !p.uses_segment_id) {
                        Some(_) => format!(
                            "Direct dispatch: one segment of {} (distribution key pinned)",
                            def.layout.segments
                        ),
                        None => format!(
                            "Gather Motion {}:1 (slice1; segments: {}) -> Seq Scan on {t}",
                            def.layout.segments, def.layout.segments
                        ),
                    }
                }
            }
        }
        _ => {
            return Err(SqlError::unsupported(
                "EXPLAIN of statements other than SELECT",
            ))
        }
    };
    Ok(Output::Rows {
        columns: vec![Column {
            name: "QUERY PLAN".into(),
            ty: Type::Text,
        }],
        rows: vec![vec![Some(line)]],
    })
}
