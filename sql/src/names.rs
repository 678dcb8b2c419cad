//! Name resolution over a query's FROM list: several relations side by side in one flat
//! row (each a range of columns under its name or alias), columns merged by `USING`
//! hidden on the right, and the enclosing queries' rows for correlated subqueries.

use crate::error::{SqlError, SqlResult};
use crate::expr::Scope;
use segexpand_engine::Type;

/// One relation of a FROM list: where its columns sit in the joined row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rel {
    /// The names `rel.col` may use: the alias if there is one, else the table's name.
    pub names: Vec<String>,
    /// Its schema (`pg_catalog`, `public`), for `schema.rel.col`.
    pub schema: Option<String>,
    /// First column (position in the joined row).
    pub start: usize,
    /// One past its last column.
    pub end: usize,
    /// Columns not visible unqualified nor in `*`: the right side of `USING (col)`.
    pub hidden: Vec<usize>,
}

/// One query level's names: its scope (all columns, flat) and its relations.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Columns of the joined row.
    pub scope: &'a Scope,
    /// The relations (empty: the scope's single table, resolved through `Scope`).
    pub rels: &'a [Rel],
}

/// What a name resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// A column of this level's row.
    Column(usize),
    /// The pseudo-column `gp_segment_id`.
    SegmentId,
}

impl Frame<'_> {
    /// Resolves `parts` (`col`, `rel.col`, `schema.rel.col`) at this level: `Ok(None)`
    /// when the name is not here (an enclosing level may have it).
    pub fn resolve(&self, parts: &[String]) -> SqlResult<Option<Resolved>> {
        let (schema, qual, name) = match parts {
            [c] => (None, None, c),
            [t, c] => (None, Some(t), c),
            [s, t, c] => (Some(s), Some(t), c),
            _ => return Err(SqlError::undefined_column(&parts.join("."))),
        };
        let rels: Vec<&Rel> = match qual {
            Some(q) => self
                .rels
                .iter()
                .filter(|r| {
                    r.names.contains(q)
                        && schema.is_none_or(|s| r.schema.as_ref().is_none_or(|rs| rs == s))
                })
                .collect(),
            None => self.rels.iter().collect(),
        };
        if qual.is_some() && rels.is_empty() {
            return Ok(None);
        }
        let mut found = None;
        for r in &rels {
            for i in r.start..r.end {
                let visible = qual.is_some() || !r.hidden.contains(&i);
                if visible && self.scope.columns.get(i).is_some_and(|(n, _)| n == name) {
                    if found.is_some() {
                        return Err(SqlError::new(
                            "42702",
                            format!("column reference \"{name}\" is ambiguous"),
                        ));
                    }
                    found = Some(i);
                }
            }
        }
        if let Some(i) = found {
            return Ok(Some(Resolved::Column(i)));
        }
        if self.scope.segment_id && name == "gp_segment_id" && self.rels.len() <= 1 {
            return Ok(Some(Resolved::SegmentId));
        }
        Ok(None)
    }

    /// Whether a qualifier (`rel`, or `schema.rel`) names a relation here.
    pub fn has_qualifier(&self, schema: Option<&str>, q: &str) -> bool {
        self.rels.iter().any(|r| {
            r.names.iter().any(|n| n == q)
                && schema.is_none_or(|s| r.schema.as_deref().is_none_or(|rs| rs == s))
        })
    }

    /// The type of column `i`.
    pub fn ty(&self, i: usize) -> Type {
        self.scope.columns.get(i).map_or(Type::Text, |c| c.1)
    }
}
