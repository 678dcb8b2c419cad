//! The executor: runs a planned query in a transaction. It reads each source (user
//! tables through `scan`), joins them left to right, filters, and hands the rows to
//! `output`. It is also the expressions' [`Env`]: it runs their subqueries (once and
//! cached when uncorrelated, per outer row otherwise) and holds the catalog snapshot
//! catalog functions read.

use super::from::{Kind, Source};
use super::output::{self, SegRow};
use super::scan::{self, Access};
use super::{join, setop, QueryPlan, SelectPlan, SubQuery};
use crate::catalog::Catalog;
use crate::error::{SqlError, SqlResult};
use crate::eval::{Env, OuterRow};
use crate::expr::{Ctx, SessionInfo};
use crate::Session;
use segexpand_engine::{Txn, Value};
use std::cell::{OnceCell, RefCell, RefMut};
use std::collections::HashMap;
use std::sync::Arc;

/// Most rows `generate_series` gives.
const SERIES_ROWS_MAX: i64 = 100_000_000;

/// One statement's execution.
pub(crate) struct Exec<'a> {
    session: &'a Session,
    txn: RefCell<&'a mut Txn>,
    params: &'a [Value],
    /// Results of uncorrelated subqueries, by the subquery's address in the plan.
    cache: RefCell<HashMap<usize, Arc<Vec<Vec<Value>>>>>,
    catalog: OnceCell<Catalog>,
}

impl std::fmt::Debug for Exec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exec")
    }
}

impl<'a> Exec<'a> {
    pub(crate) fn new(session: &'a Session, txn: &'a mut Txn, params: &'a [Value]) -> Self {
        Exec {
            session,
            txn: RefCell::new(txn),
            params,
            cache: RefCell::new(HashMap::new()),
            catalog: OnceCell::new(),
        }
    }

    pub(crate) fn session(&self) -> &'a Session {
        self.session
    }

    pub(crate) fn params(&self) -> &'a [Value] {
        self.params
    }

    pub(crate) fn info(&self) -> &'a SessionInfo {
        &self.session.info
    }

    /// The transaction, while a source is read (never while expressions run).
    pub(crate) fn txn(&self) -> SqlResult<RefMut<'_, &'a mut Txn>> {
        self.txn
            .try_borrow_mut()
            .map_err(|_| SqlError::new("XX000", "the transaction is already in use"))
    }

    fn base<'b>(&'b self, outer: Option<&'b OuterRow<'b>>) -> Ctx<'b> {
        Ctx {
            params: self.params,
            session: Some(&self.session.info),
            outer,
            env: Some(self),
            ..Ctx::default()
        }
    }

    /// The rows of query `p`, with `outer` the enclosing queries' rows.
    pub(crate) fn query(
        &self,
        p: &QueryPlan,
        outer: Option<&OuterRow<'_>>,
    ) -> SqlResult<Vec<Vec<Value>>> {
        match p {
            QueryPlan::Select(sp) => self.select(sp, outer),
            QueryPlan::Union(u) => setop::run(self, u, outer),
        }
    }

    fn select(&self, p: &SelectPlan, outer: Option<&OuterRow<'_>>) -> SqlResult<Vec<Vec<Value>>> {
        let base = self.base(outer);
        let mut sources = p.sources.iter();
        let mut rows = match sources.next() {
            Some(first) => self.source(first, p.uses_segment_id, &base)?,
            None => vec![(None, Vec::new())],
        };
        for (step, src) in p.steps.iter().zip(sources) {
            let right = self
                .source(src, false, &base)?
                .into_iter()
                .map(|(_, r)| r)
                .collect();
            rows = join::run(step, rows, right, src.width, &base)?;
        }
        if !p.filter.is_empty() {
            let mut kept = Vec::with_capacity(rows.len());
            for (seg, row) in rows {
                let ctx = Ctx {
                    row: &row,
                    segment: seg,
                    ..base
                };
                if passes(&p.filter, &ctx)? {
                    kept.push((seg, row));
                }
            }
            rows = kept;
        }
        output::finish(p, rows, &base)
    }

    /// One source's rows that pass its filter.
    fn source(
        &self,
        src: &Source,
        uses_segment_id: bool,
        base: &Ctx<'_>,
    ) -> SqlResult<Vec<SegRow>> {
        let owned: Vec<Vec<Value>> = match &src.kind {
            Kind::Table(name) => {
                return scan::read(self, name, src, uses_segment_id);
            }
            Kind::Rows(rows) => {
                let mut out = Vec::new();
                for r in rows {
                    let ctx = Ctx { row: r, ..*base };
                    if passes(&src.filter, &ctx)? {
                        out.push((None, r.clone()));
                    }
                }
                return Ok(out);
            }
            Kind::Unit => vec![Vec::new()],
            Kind::Series(a, b) => series(a.eval(base)?, b.eval(base)?)?,
            Kind::Unnest(a) => match crate::value::to_text(&a.eval(base)?) {
                None => Vec::new(),
                Some(t) => crate::array::parse(&t)?
                    .into_iter()
                    .map(|i| vec![i.map_or(Value::Null, Value::Text)])
                    .collect(),
            },
            Kind::Derived(plan) => self.query(plan, base.outer)?,
        };
        let mut out = Vec::with_capacity(owned.len());
        for r in owned {
            let ctx = Ctx { row: &r, ..*base };
            if passes(&src.filter, &ctx)? {
                out.push((None, r));
            }
        }
        Ok(out)
    }
}

fn passes(filter: &[crate::expr::Expr], ctx: &Ctx<'_>) -> SqlResult<bool> {
    for f in filter {
        if !f.passes(ctx)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `generate_series(a, b)`'s rows.
fn series(a: Value, b: Value) -> SqlResult<Vec<Vec<Value>>> {
    let (Some(lo), Some(hi)) = (a.as_int(), b.as_int()) else {
        return Ok(Vec::new());
    };
    if hi.saturating_sub(lo) >= SERIES_ROWS_MAX {
        return Err(SqlError::new(
            "54000",
            format!("generate_series of more than {SERIES_ROWS_MAX} rows"),
        ));
    }
    Ok((lo..=hi)
        .map(|i| {
            vec![match i32::try_from(i) {
                Ok(v) => Value::Int4(v),
                Err(_) => Value::Int8(i),
            }]
        })
        .collect())
}

impl Env for Exec<'_> {
    fn subquery(&self, sub: &SubQuery, ctx: &Ctx<'_>) -> SqlResult<Arc<Vec<Vec<Value>>>> {
        if sub.correlated {
            let outer = OuterRow {
                row: ctx.row,
                up: ctx.outer,
            };
            return Ok(Arc::new(self.query(&sub.plan, Some(&outer))?));
        }
        let key = std::ptr::from_ref(sub) as usize;
        if let Some(r) = self
            .cache
            .try_borrow()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Ok(r);
        }
        let rows = Arc::new(self.query(&sub.plan, None)?);
        if let Ok(mut c) = self.cache.try_borrow_mut() {
            c.insert(key, rows.clone());
        }
        Ok(rows)
    }

    fn catalog(&self) -> &Catalog {
        self.catalog.get_or_init(|| Catalog::build(self.session))
    }
}

/// EXPLAIN's lines for plan `p`.
pub(crate) fn explain(s: &Session, p: &QueryPlan) -> SqlResult<Vec<String>> {
    let QueryPlan::Select(sp) = p else {
        return Ok(vec!["Append (UNION)".into()]);
    };
    let mut lines = Vec::new();
    for (k, step) in sp.steps.iter().enumerate().rev() {
        lines.push(format!(
            "{}-> {}",
            "  ".repeat(sp.steps.len() - 1 - k),
            step.describe()
        ));
    }
    let indent = "  ".repeat(sp.steps.len());
    for (i, src) in sp.sources.iter().enumerate() {
        let name = sp
            .rels
            .get(i)
            .and_then(|r| r.names.first().cloned())
            .unwrap_or_default();
        let line = match &src.kind {
            Kind::Table(t) => match scan::access(s, t, &src.filter, sp.uses_segment_id, &[])? {
                Access::Direct(_) => {
                    let def = crate::dml::table_def(s, t)?;
                    format!(
                        "Direct dispatch: one segment of {} (distribution key pinned)",
                        def.layout.segments
                    )
                }
                Access::Scan { segments, workers } => {
                    let w = if workers > 1 {
                        format!(" ({workers} workers)")
                    } else {
                        String::new()
                    };
                    format!(
                        "Gather Motion {segments}:1 (slice{}; segments: {segments}) -> Seq \
                         Scan on {t}{w}",
                        i + 1
                    )
                }
            },
            Kind::Rows(_) => format!("Catalog Scan on {name}"),
            Kind::Series(..) | Kind::Unnest(_) => format!("Function Scan on {name}"),
            Kind::Derived(_) => format!("Subquery Scan on {name}"),
            Kind::Unit => "Result (no table)".into(),
        };
        if sp.sources.len() == 1 {
            lines.push(line);
        } else {
            lines.push(format!("{indent}-> {line}"));
        }
    }
    Ok(lines)
}
