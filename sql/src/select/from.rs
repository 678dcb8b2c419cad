//! The FROM list: each item resolved to a source of rows — a user table, a catalog
//! table, `generate_series(a, b)`, a subquery — and a relation naming its columns in
//! the joined row; the joins between them with their ON or USING conditions (compiled
//! later, once every name is known).

use super::plan::plan_query;
use super::QueryPlan;
use crate::error::{SqlError, SqlResult};
use crate::expr::{ident, CmpOp, Compiler, Expr, Scope};
use crate::names::{Frame, Rel};
use crate::schema::{Missing, RelName};
use crate::Session;
use segexpand_engine::{Type, Value};
use sqlparser::ast;

/// One source of rows.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) kind: Kind,
    /// Columns it gives.
    pub(crate) width: usize,
    /// Conditions on its own rows (positions in its row), applied as it is read.
    pub(crate) filter: Vec<Expr>,
    /// The columns the query reads (a user table's scan returns only those; the others
    /// are NULL); `None`: all.
    pub(crate) needed: Option<Vec<usize>>,
}

/// Where a source's rows come from.
#[derive(Debug)]
pub(crate) enum Kind {
    /// A user table, by its engine name (`s.t` for table t of schema s).
    Table(String),
    /// A catalog table's rows, built when the statement was planned.
    Rows(Vec<Vec<Value>>),
    /// `generate_series(from, to)`.
    Series(Expr, Expr),
    /// `unnest(array)`.
    Unnest(Expr),
    /// A subquery in FROM.
    Derived(QueryPlan),
    /// The one empty row a FROM-less SELECT reads.
    Unit,
}

/// How a source joins what is to its left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinKind {
    /// Comma, CROSS JOIN, [INNER] JOIN.
    Inner,
    /// LEFT [OUTER] JOIN.
    Left,
}

/// A FROM list, resolved.
pub(crate) struct FromList<'q> {
    pub(crate) sources: Vec<Source>,
    pub(crate) rels: Vec<Rel>,
    pub(crate) scope: Scope,
    /// For `sources[i + 1]`: the join kind, its ON clause and its USING equalities.
    pub(crate) joins: Vec<(JoinKind, Option<&'q ast::Expr>, Vec<Expr>)>,
    pub(crate) params: usize,
    pub(crate) outer_used: Option<usize>,
}

/// Resolves `from` (the enclosing levels' names in `outer`).
pub(crate) fn build<'q>(
    s: &Session,
    from: &'q [ast::TableWithJoins],
    outer: &[Frame<'_>],
) -> SqlResult<FromList<'q>> {
    let mut fl = FromList {
        sources: Vec::new(),
        rels: Vec::new(),
        scope: Scope::default(),
        joins: Vec::new(),
        params: 0,
        outer_used: None,
    };
    if from.is_empty() {
        fl.sources.push(Source {
            kind: Kind::Unit,
            width: 0,
            filter: Vec::new(),
            needed: None,
        });
        return Ok(fl);
    }
    for twj in from {
        if !fl.sources.is_empty() {
            fl.joins.push((JoinKind::Inner, None, Vec::new()));
        }
        fl.add(s, &twj.relation, outer)?;
        for j in &twj.joins {
            use ast::JoinOperator as J;
            let (kind, constraint) = match &j.join_operator {
                J::Join(c) | J::Inner(c) => (JoinKind::Inner, c),
                J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, c),
                J::CrossJoin(c) => (JoinKind::Inner, c),
                other => {
                    return Err(SqlError::unsupported(format!(
                        "this kind of join is not supported (only inner, LEFT and CROSS \
                         joins): {}",
                        first_words(&other_name(other))
                    )))
                }
            };
            fl.add(s, &j.relation, outer)?;
            let (on, using) = match constraint {
                ast::JoinConstraint::On(e) => (Some(e), Vec::new()),
                ast::JoinConstraint::Using(cols) => (None, fl.using(cols)?),
                ast::JoinConstraint::None => (None, Vec::new()),
                ast::JoinConstraint::Natural => {
                    return Err(SqlError::unsupported("NATURAL joins are not supported"))
                }
            };
            fl.joins.push((kind, on, using));
        }
    }
    // gp_segment_id names the segment of a single user table's row.
    fl.scope.segment_id = fl.sources.len() == 1
        && matches!(
            fl.sources.first(),
            Some(Source {
                kind: Kind::Table(_),
                ..
            })
        );
    Ok(fl)
}

fn other_name(j: &ast::JoinOperator) -> String {
    format!("{j:?}")
}

fn first_words(s: &str) -> String {
    s.split(['(', ' ']).next().unwrap_or(s).to_string()
}

impl FromList<'_> {
    /// Adds one FROM item.
    fn add(&mut self, s: &Session, f: &ast::TableFactor, outer: &[Frame<'_>]) -> SqlResult<()> {
        let (kind, cols, default_name, schema, alias) = match f {
            ast::TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => {
                let r = RelName::of(name)?;
                let (kind, cols, schema) = table_source(s, &r)?;
                (kind, cols, r.name, Some(schema), alias)
            }
            ast::TableFactor::Table {
                name,
                alias,
                args: Some(args),
                with_ordinality,
                ..
            } => {
                let fname = crate::expr::object_name(name);
                if !matches!(fname.as_str(), "generate_series" | "unnest") || *with_ordinality {
                    return Err(SqlError::unsupported(format!(
                        "function {fname} in FROM is not supported (only generate_series \
                         and unnest)"
                    )));
                }
                let empty = Scope::default();
                let mut c = Compiler::for_query(&empty, &[], outer.to_vec(), s);
                let mut exprs = Vec::new();
                for a in &args.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                            exprs.push(c.compile(e)?)
                        }
                        other => return Err(SqlError::unsupported(format!("argument {other}"))),
                    }
                }
                self.params = self.params.max(c.params);
                self.note_outer(c.outer_used);
                let ty = exprs
                    .first()
                    .map(|e| e.ty(&[], &[], &[]))
                    .filter(|t| *t == Type::Int8)
                    .unwrap_or(Type::Int4);
                let mut it = exprs.into_iter();
                let (kind, ty) = match (fname.as_str(), it.next(), it.next(), it.next()) {
                    ("generate_series", Some(a), Some(b), None) => (Kind::Series(a, b), ty),
                    ("unnest", Some(a), None, None) => (Kind::Unnest(a), Type::Text),
                    _ => {
                        return Err(SqlError::unsupported(format!(
                            "{fname} with these arguments (generate_series takes two, no step; \
                             unnest one array)"
                        )))
                    }
                };
                let col = alias.as_ref().map_or(fname.clone(), |a| ident(&a.name));
                (kind, vec![(col, ty)], fname, None, alias)
            }
            ast::TableFactor::Derived {
                lateral,
                subquery,
                alias,
                ..
            } => {
                if *lateral {
                    return Err(SqlError::unsupported(
                        "LATERAL subqueries are not supported",
                    ));
                }
                let (plan, params, used) = plan_query(s, subquery, outer.to_vec())?;
                self.params = self.params.max(params);
                self.note_outer(used);
                let cols = plan
                    .columns(&[])
                    .into_iter()
                    .map(|c| (c.name, c.ty))
                    .collect();
                (
                    Kind::Derived(plan),
                    cols,
                    "subquery".to_string(),
                    None,
                    alias,
                )
            }
            ast::TableFactor::NestedJoin { .. } => {
                return Err(SqlError::unsupported(
                    "parenthesized joins in FROM are not supported",
                ))
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "FROM item not supported: {}",
                    first_words(&other.to_string())
                )))
            }
        };
        let mut cols: Vec<(String, Type)> = cols;
        if let Some(a) = alias {
            for (c, name) in cols.iter_mut().zip(&a.columns) {
                c.0 = ident(&name.name);
            }
        }
        let names = vec![alias.as_ref().map_or(default_name, |a| ident(&a.name))];
        let start = self.scope.columns.len();
        let width = cols.len();
        self.scope.columns.extend(cols);
        self.rels.push(Rel {
            names,
            schema,
            start,
            end: start + width,
            hidden: Vec::new(),
        });
        self.sources.push(Source {
            kind,
            width,
            filter: Vec::new(),
            needed: None,
        });
        Ok(())
    }

    fn note_outer(&mut self, used: Option<usize>) {
        if let Some(u) = used {
            self.outer_used = Some(self.outer_used.map_or(u, |o| o.max(u)));
        }
    }

    /// `USING (a, b)` between the relations so far and the last one: the equalities,
    /// and the right side's columns hidden.
    fn using(&mut self, cols: &[ast::ObjectName]) -> SqlResult<Vec<Expr>> {
        let Some((right, left)) = self.rels.split_last_mut() else {
            return Ok(Vec::new());
        };
        let mut eqs = Vec::new();
        for c in cols {
            let name = crate::expr::object_name(c);
            let find = |r: &Rel| {
                (r.start..r.end).find(|i| {
                    !r.hidden.contains(i)
                        && self.scope.columns.get(*i).is_some_and(|(n, _)| *n == name)
                })
            };
            let l = left.iter().find_map(find);
            let r = find(right);
            let (Some(l), Some(r)) = (l, r) else {
                return Err(SqlError::new(
                    "42703",
                    format!("column \"{name}\" specified in USING clause does not exist"),
                ));
            };
            right.hidden.push(r);
            eqs.push(Expr::Cmp(
                CmpOp::Eq,
                Box::new(Expr::Column(l)),
                Box::new(Expr::Column(r)),
            ));
        }
        Ok(eqs)
    }
}

/// Columns: name and type.
type Columns = Vec<(String, Type)>;

/// A named table: a catalog table (in `pg_catalog`, or unqualified: `pg_catalog` comes
/// first on the search path) or a user table (unqualified or in `public`, or in another
/// schema). Its source, columns and schema. 42P01 if there is none, also when the schema
/// is missing (PostgreSQL's message for a FROM item).
fn table_source(s: &Session, r: &RelName) -> SqlResult<(Kind, Columns, String)> {
    crate::schema::check_database(s, r)?;
    if r.may_be_catalog() {
        if let Some((cols, rows)) = crate::catalog::virtual_table(s, &r.name) {
            return Ok((Kind::Rows(rows), cols, crate::schema::PG_CATALOG.into()));
        }
    }
    // The operator workflow's progress views, while their schema's tables exist.
    if let Some(w) = r
        .schema
        .as_deref()
        .and_then(|sch| crate::progress::Workflow::of_view(sch, &r.name))
    {
        let sch = r.schema.clone().unwrap_or_default();
        if s.node.table_id(&format!("{sch}.status_detail")).is_some() {
            let (cols, rows) = crate::progress::view(s, w)?;
            return Ok((Kind::Rows(rows), cols, sch));
        }
    }
    let def = crate::schema::table_def(s, r, Missing::Relation)?;
    let cols = def.columns.iter().map(|c| (c.name.clone(), c.ty)).collect();
    let schema = crate::schema::split_engine(&def.name).0.to_string();
    Ok((Kind::Table(def.name), cols, schema))
}
