//! A SELECT block's output from its joined, filtered rows: groups and aggregates
//! (hash on the group key), HAVING, the select list, DISTINCT, ORDER BY and
//! LIMIT/OFFSET; the output columns' names and types; and the grouping rule (a column
//! outside aggregates must be grouped by).

use super::agg::{acc_add, acc_new, acc_result, agg_type, key_text, Acc};
use super::SelectPlan;
use crate::error::{SqlError, SqlResult};
use crate::expr::{Ctx, Expr};
use crate::value::sort_cmp;
use crate::Column;
use segexpand_engine::{Type, Value};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// Rows as the executor carries them: the segment a user table's row was read from
/// (single-table queries), and the values.
pub(crate) type SegRow = (Option<u16>, Vec<Value>);

fn is_aggregated(p: &SelectPlan) -> bool {
    !p.aggs.is_empty() || !p.group_by.is_empty()
}

/// Output column names and types.
pub(crate) fn columns(p: &SelectPlan, params: &[Type]) -> Vec<Column> {
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

/// Aggregated queries: a column outside aggregates must be grouped by.
pub(crate) fn check_grouping(p: &SelectPlan) -> SqlResult<()> {
    if !is_aggregated(p) {
        return Ok(());
    }
    fn check(e: &Expr, groups: &[Expr], p: &SelectPlan) -> SqlResult<()> {
        if groups.contains(e) {
            return Ok(());
        }
        let name = match e {
            Expr::Column(i) => Some(p.scope.columns.get(*i).map_or("?", |c| c.0.as_str())),
            Expr::SegmentId => Some("gp_segment_id"),
            _ => None,
        };
        if let Some(name) = name {
            return Err(SqlError::new(
                "42803",
                format!(
                    "column \"{name}\" must appear in the GROUP BY clause or be used in an \
                     aggregate function"
                ),
            ));
        }
        e.children()
            .into_iter()
            .try_for_each(|c| check(c, groups, p))
    }
    for e in p
        .items
        .iter()
        .map(|(_, e)| e)
        .chain(p.order.iter().map(|(e, _)| e))
        .chain(p.having.iter())
    {
        check(e, &p.group_by, p)?;
    }
    Ok(())
}

struct Group {
    first: Vec<Value>,
    segment: Option<u16>,
    accs: Vec<Acc>,
    seen: Vec<HashSet<String>>,
}

/// The output rows of `p` from its input rows (joined and filtered).
pub(crate) fn finish(
    p: &SelectPlan,
    input: Vec<SegRow>,
    base: &Ctx<'_>,
) -> SqlResult<Vec<Vec<Value>>> {
    // Output rows (values) with their sort keys.
    let mut out: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    if is_aggregated(p) {
        for g in groups(p, &input, base)? {
            let aggs: Vec<Value> = g.accs.iter().map(acc_result).collect();
            let ctx = Ctx {
                row: &g.first,
                segment: g.segment,
                aggs: &aggs,
                ..*base
            };
            if let Some(h) = &p.having {
                if !h.passes(&ctx)? {
                    continue;
                }
            }
            out.push(project(p, &ctx)?);
        }
    } else {
        out.reserve(input.len());
        for (seg, row) in &input {
            let ctx = Ctx {
                row,
                segment: *seg,
                ..*base
            };
            out.push(project(p, &ctx)?);
        }
    }
    if p.distinct {
        let mut seen = HashSet::new();
        out.retain(|(vals, _)| seen.insert(key_text(vals)));
    }
    if !p.order.is_empty() {
        let desc: Vec<bool> = p.order.iter().map(|(_, d)| *d).collect();
        out.sort_by(|a, b| compare_keys(&a.1, &b.1, &desc));
    }
    let offset = count(p.offset.as_ref(), base)?.unwrap_or(0);
    let limit = count(p.limit.as_ref(), base)?;
    Ok(out
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|(vals, _)| vals)
        .collect())
}

fn groups(p: &SelectPlan, input: &[SegRow], base: &Ctx<'_>) -> SqlResult<Vec<Group>> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (seg, row) in input {
        let ctx = Ctx {
            row,
            segment: *seg,
            ..*base
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
                    seen: vec![HashSet::new(); p.aggs.len()],
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
    Ok(groups)
}

/// Compares sort keys, each ascending or descending (`desc`).
pub(crate) fn compare_keys(a: &[Value], b: &[Value], desc: &[bool]) -> Ordering {
    for (k, d) in desc.iter().enumerate() {
        let o = match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) => sort_cmp(x, y),
            _ => Ordering::Equal,
        };
        let o = if *d { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// A LIMIT or OFFSET count.
pub(crate) fn count(e: Option<&Expr>, base: &Ctx<'_>) -> SqlResult<Option<usize>> {
    match e {
        None => Ok(None),
        Some(x) => match crate::value::cast(x.eval(base)?, segexpand_engine::Type::Int8)? {
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
}

fn project(p: &SelectPlan, ctx: &Ctx<'_>) -> SqlResult<(Vec<Value>, Vec<Value>)> {
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
