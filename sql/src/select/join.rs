//! Joining a source's rows to the rows to its left: a hash join when the condition has
//! equalities between the two sides (the right side is built into a hash table on
//! those keys, the left probes it: linear in both inputs), a nested loop otherwise.
//! A LEFT join pads left rows without a match with NULLs.

use super::agg::key_text;
use super::output::SegRow;
use crate::error::SqlResult;
use crate::expr::{Ctx, Expr};
use crate::value::compare;
use segexpand_engine::Value;
use std::cmp::Ordering;
use std::collections::HashMap;

/// How one source joins the rows to its left.
#[derive(Debug, Default)]
pub(crate) struct Step {
    /// LEFT [OUTER] JOIN (else inner).
    pub(crate) left: bool,
    /// Equalities between the sides: an expression on the left (joined) row and one on
    /// the right source's row.
    pub(crate) keys: Vec<(Expr, Expr)>,
    /// The rest of the join condition, on the joined row.
    pub(crate) on: Vec<Expr>,
    /// WHERE conjuncts applied after this (LEFT) join, on the joined row.
    pub(crate) after: Vec<Expr>,
}

impl Step {
    /// Every expression of the step.
    pub(crate) fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.keys
            .iter()
            .flat_map(|(a, b)| [a, b])
            .chain(self.on.iter())
            .chain(self.after.iter())
    }

    /// How EXPLAIN names it.
    pub(crate) fn describe(&self) -> String {
        let kind = if self.left { "Left Join" } else { "Join" };
        if self.keys.is_empty() {
            format!("Nested Loop {kind}")
        } else {
            format!(
                "Hash {kind} ({} key{})",
                self.keys.len(),
                plural(self.keys.len())
            )
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn eval_all(es: &[&Expr], ctx: &Ctx<'_>) -> SqlResult<Vec<Value>> {
    es.iter().map(|e| e.eval(ctx)).collect()
}

fn passes_all(es: &[Expr], ctx: &Ctx<'_>) -> SqlResult<bool> {
    for e in es {
        if !e.passes(ctx)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Joins `right` (rows of `width` columns) to `left` under `step`.
pub(crate) fn run(
    step: &Step,
    left: Vec<SegRow>,
    right: Vec<Vec<Value>>,
    width: usize,
    base: &Ctx<'_>,
) -> SqlResult<Vec<SegRow>> {
    let lkeys: Vec<&Expr> = step.keys.iter().map(|(l, _)| l).collect();
    let rkeys: Vec<&Expr> = step.keys.iter().map(|(_, r)| r).collect();
    // The hash table: key text → right rows (rows with a NULL key never match).
    let mut table: HashMap<String, Vec<(usize, Vec<Value>)>> = HashMap::new();
    if !rkeys.is_empty() {
        for (i, r) in right.iter().enumerate() {
            let ctx = Ctx { row: r, ..*base };
            let k = eval_all(&rkeys, &ctx)?;
            if k.iter().any(|v| matches!(v, Value::Null)) {
                continue;
            }
            table.entry(key_text(&k)).or_default().push((i, k));
        }
    }
    let all: Vec<usize> = (0..right.len()).collect();
    let mut out = Vec::new();
    let mut joined: Vec<Value> = Vec::new();
    for (seg, l) in left {
        let candidates: Vec<usize> = if rkeys.is_empty() {
            all.clone()
        } else {
            let ctx = Ctx { row: &l, ..*base };
            let k = eval_all(&lkeys, &ctx)?;
            match table.get(&key_text(&k)) {
                // The text key groups; equal values decide (5 and '5' print alike).
                Some(rows) => rows
                    .iter()
                    .filter(|(_, rk)| {
                        rk.iter()
                            .zip(&k)
                            .all(|(a, b)| compare(a, b) == Some(Ordering::Equal))
                    })
                    .map(|(i, _)| *i)
                    .collect(),
                None => Vec::new(),
            }
        };
        let mut matched = false;
        for i in candidates {
            let Some(r) = right.get(i) else { continue };
            joined.clear();
            joined.extend(l.iter().cloned());
            joined.extend(r.iter().cloned());
            let ctx = Ctx {
                row: &joined,
                ..*base
            };
            if passes_all(&step.on, &ctx)? {
                matched = true;
                out.push((None, std::mem::take(&mut joined)));
            }
        }
        if step.left && !matched {
            let mut row = l;
            row.extend(std::iter::repeat_n(Value::Null, width));
            out.push((seg, row));
        }
    }
    if !step.after.is_empty() {
        let mut kept = Vec::with_capacity(out.len());
        for (seg, row) in out {
            let ctx = Ctx { row: &row, ..*base };
            if passes_all(&step.after, &ctx)? {
                kept.push((seg, row));
            }
        }
        out = kept;
    }
    Ok(out)
}
