//! SELECT: planning and running queries over the engine's tables, the catalog and
//! table functions.
//!
//! A query is a tree of SELECT blocks (`plan`), joined by UNION (`setop`). A block's
//! FROM list (`from`) is a row of sources — user tables, catalog tables,
//! `generate_series`, subqueries in FROM — joined left to right (`join`: a hash join on
//! the equalities between the two sides, a nested loop otherwise, LEFT joins padding
//! with NULLs). WHERE is cut into conjuncts that move as far down as they may: into one
//! source's scan, or into the join that first sees all their columns. Then grouping and
//! aggregates, HAVING, ordering, DISTINCT and LIMIT (`output`).
//!
//! A user table is read by `scan`: a WHERE that pins the whole distribution key reads
//! one segment (direct dispatch, as Greenplum); anything else reads every segment at one
//! snapshot, one worker thread per group of segments (Greenplum's slices). Subqueries
//! run through the executor (`exec`), once when uncorrelated, per outer row otherwise.

mod agg;
mod exec;
mod from;
mod join;
mod output;
mod plan;
mod scan;
mod setop;

use crate::error::{SqlError, SqlResult};
use crate::expr::{AggCall, Expr, Scope};
use crate::names::{Frame, Rel};
use crate::value::{self, to_text};
use crate::{Column, Output, Session};
use segexpand_engine::{Txn, Type, Value};
use sqlparser::ast::{self as ast, Statement};
use std::sync::Arc;

/// A subquery, planned: what an expression runs.
#[derive(Debug)]
pub struct SubQuery {
    pub(crate) plan: QueryPlan,
    /// Whether it reads an enclosing query's row (then it runs per row).
    pub(crate) correlated: bool,
    /// The type of its first column.
    pub(crate) ty: Type,
}

/// A subquery as planned, with what the enclosing level must know.
pub(crate) struct Planned {
    pub(crate) sub: SubQuery,
    /// Highest parameter number used.
    pub(crate) params: usize,
    /// The outermost enclosing level it reads, if any.
    pub(crate) outer_used: Option<usize>,
}

/// A planned query.
#[derive(Debug)]
pub(crate) enum QueryPlan {
    /// One SELECT block.
    Select(Box<SelectPlan>),
    /// `a UNION [ALL] b`, then ORDER BY output columns and LIMIT.
    Union(Box<setop::UnionPlan>),
}

/// One SELECT block.
#[derive(Debug)]
pub(crate) struct SelectPlan {
    /// The FROM list, left to right (a FROM-less SELECT reads one empty row).
    pub(crate) sources: Vec<from::Source>,
    /// How `sources[i + 1]` joins what is to its left.
    pub(crate) steps: Vec<join::Step>,
    /// Columns of the joined row.
    pub(crate) scope: Scope,
    /// The relations, for naming.
    pub(crate) rels: Vec<Rel>,
    /// WHERE conjuncts applied to the joined row.
    pub(crate) filter: Vec<Expr>,
    pub(crate) items: Vec<(String, Expr)>,
    pub(crate) aggs: Vec<AggCall>,
    pub(crate) group_by: Vec<Expr>,
    pub(crate) having: Option<Expr>,
    /// Sort keys: an expression and whether descending.
    pub(crate) order: Vec<(Expr, bool)>,
    pub(crate) distinct: bool,
    pub(crate) limit: Option<Expr>,
    pub(crate) offset: Option<Expr>,
    /// Whether the query reads `gp_segment_id` (no direct dispatch then).
    pub(crate) uses_segment_id: bool,
}

impl QueryPlan {
    /// Output column names and types.
    pub(crate) fn columns(&self, params: &[Type]) -> Vec<Column> {
        match self {
            QueryPlan::Select(p) => output::columns(p, params),
            QueryPlan::Union(u) => u.left.columns(params),
        }
    }
}

/// Plans a whole statement's query.
/// A prepared SELECT's plan, with the catalog version and settings it was made under.
#[derive(Debug)]
pub(crate) struct CachedPlan {
    made_under: (u64, u64),
    plan: Arc<(QueryPlan, usize)>,
}

/// The plan in `slot` if the catalog and settings are as it was made under; else a new
/// one, kept there. (The version is read before planning: a change while planning makes
/// the next execution plan again.)
fn cached_plan(
    s: &Session,
    slot: &crate::PlanSlot,
    q: &ast::Query,
) -> SqlResult<Arc<(QueryPlan, usize)>> {
    let now = (s.node.catalog_version(), s.settings_version);
    if let Some(c) = slot.lock().ok().and_then(|g| {
        g.as_ref()
            .filter(|c| c.made_under == now)
            .map(|c| c.plan.clone())
    }) {
        return Ok(c);
    }
    let plan = Arc::new(plan_top(s, q)?);
    if let Ok(mut g) = slot.lock() {
        *g = Some(CachedPlan {
            made_under: now,
            plan: plan.clone(),
        });
    }
    Ok(plan)
}

fn plan_top(s: &Session, q: &ast::Query) -> SqlResult<(QueryPlan, usize)> {
    let (plan, params, _) = plan::plan_query(s, q, Vec::new())?;
    Ok((plan, params))
}

/// Plans a subquery of an expression, with the enclosing levels' names.
pub(crate) fn plan_subquery(
    s: &Session,
    q: &ast::Query,
    outer: Vec<Frame<'_>>,
) -> SqlResult<Planned> {
    let (plan, params, outer_used) = plan::plan_query(s, q, outer)?;
    let ty = plan.columns(&[]).first().map_or(Type::Text, |c| c.ty);
    Ok(Planned {
        sub: SubQuery {
            plan,
            correlated: outer_used.is_some(),
            ty,
        },
        params,
        outer_used,
    })
}

/// Parameter types and result columns of a SELECT (extended protocol's Describe).
pub(crate) fn describe(s: &mut Session, q: &ast::Query) -> SqlResult<(Vec<Type>, Vec<Column>)> {
    let (p, nparams) = plan_top(s, q)?;
    let mut inferred: Vec<Option<Type>> = Vec::new();
    if let QueryPlan::Select(sp) = &p {
        for e in sp
            .filter
            .iter()
            .chain(sp.sources.iter().flat_map(|s| s.filter.iter()))
            .chain(sp.steps.iter().flat_map(join::Step::exprs))
            .chain(sp.items.iter().map(|(_, e)| e))
            .chain(sp.having.iter())
        {
            e.infer_params(&sp.scope.columns, &mut inferred);
        }
    }
    inferred.resize(nparams.max(inferred.len()), None);
    let params: Vec<Type> = inferred
        .into_iter()
        .map(|t| t.unwrap_or(Type::Text))
        .collect();
    let cols = p.columns(&params);
    Ok((params, cols))
}

/// Runs a SELECT in `tx`.
pub(crate) fn run(
    s: &mut Session,
    tx: &mut Txn,
    q: &ast::Query,
    params: &[Value],
) -> SqlResult<Output> {
    let planned = match s.plan_slot.clone() {
        Some(slot) => cached_plan(s, &slot, q)?,
        None => Arc::new(plan_top(s, q)?),
    };
    let (p, nparams) = (&planned.0, planned.1);
    if nparams > params.len() {
        return Err(SqlError::new(
            "08P01",
            format!(
                "the query has {nparams} parameters but {} were bound",
                params.len()
            ),
        ));
    }
    let ptypes: Vec<Type> = params.iter().map(value::type_of_value).collect();
    let columns = p.columns(&ptypes);
    let ex = exec::Exec::new(s, tx, params);
    let rows = ex.query(p, None)?;
    Ok(Output::Rows {
        columns,
        rows: rows
            .into_iter()
            .map(|r| r.iter().map(to_text).collect())
            .collect(),
    })
}

/// EXPLAIN: says whether the statement goes to one segment or to all, and how the
/// sources are joined.
pub(crate) fn explain(s: &mut Session, stmt: &Statement) -> SqlResult<Output> {
    let Statement::Query(q) = stmt else {
        return Err(SqlError::unsupported(
            "EXPLAIN of statements other than SELECT",
        ));
    };
    let (p, _) = plan_top(s, q)?;
    let lines = exec::explain(s, &p)?;
    Ok(Output::Rows {
        columns: vec![Column {
            name: "QUERY PLAN".into(),
            ty: Type::Text,
        }],
        rows: lines.into_iter().map(|l| vec![Some(l)]).collect(),
    })
}
