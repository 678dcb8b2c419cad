//! Walks over compiled expressions: their children, the columns they read, whether they
//! need the executor (subqueries, catalog lookups, enclosing rows), and rewriting column
//! positions when a filter moves from the joined row to one relation's rows.

use crate::expr::{Expr, Func};

impl Expr {
    /// The direct sub-expressions (not those inside a subquery's own plan).
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Arith(_, a, b)
            | Expr::Cmp(_, a, b)
            | Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Concat(a, b)
            | Expr::Like(a, b, _)
            | Expr::Regex(a, b, ..)
            | Expr::AnyArray(_, a, b)
            | Expr::Subscript(a, b) => vec![a, b],
            Expr::Not(a)
            | Expr::Neg(a)
            | Expr::IsNull(a, _)
            | Expr::Cast(a, _)
            | Expr::Reg(a, _)
            | Expr::InSub(a, _, _) => vec![a],
            Expr::InList(a, l, _) => std::iter::once(&**a).chain(l.iter()).collect(),
            Expr::Case(arms, els) => arms
                .iter()
                .flat_map(|(c, r)| [c, r])
                .chain(els.as_deref())
                .collect(),
            Expr::Func(_, args) | Expr::Array(args) => args.iter().collect(),
            Expr::Const(_)
            | Expr::Unknown(_)
            | Expr::Param(_)
            | Expr::Column(_)
            | Expr::SegmentId
            | Expr::Agg(_)
            | Expr::Outer(..)
            | Expr::Sub(..) => Vec::new(),
        }
    }

    /// The direct sub-expressions, mutably.
    pub fn children_mut(&mut self) -> Vec<&mut Expr> {
        match self {
            Expr::Arith(_, a, b)
            | Expr::Cmp(_, a, b)
            | Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Concat(a, b)
            | Expr::Like(a, b, _)
            | Expr::Regex(a, b, ..)
            | Expr::AnyArray(_, a, b)
            | Expr::Subscript(a, b) => vec![a, b],
            Expr::Not(a)
            | Expr::Neg(a)
            | Expr::IsNull(a, _)
            | Expr::Cast(a, _)
            | Expr::Reg(a, _)
            | Expr::InSub(a, _, _) => vec![a],
            Expr::InList(a, l, _) => std::iter::once(&mut **a).chain(l.iter_mut()).collect(),
            Expr::Case(arms, els) => arms
                .iter_mut()
                .flat_map(|(c, r)| [c, r])
                .chain(els.as_deref_mut())
                .collect(),
            Expr::Func(_, args) | Expr::Array(args) => args.iter_mut().collect(),
            Expr::Const(_)
            | Expr::Unknown(_)
            | Expr::Param(_)
            | Expr::Column(_)
            | Expr::SegmentId
            | Expr::Agg(_)
            | Expr::Outer(..)
            | Expr::Sub(..) => Vec::new(),
        }
    }

    /// Whether `f` holds for this expression or any sub-expression.
    pub fn any(&self, f: &dyn Fn(&Expr) -> bool) -> bool {
        f(self) || self.children().into_iter().any(|c| c.any(f))
    }

    /// The lowest and highest column positions read, if any.
    pub fn column_span(&self) -> Option<(usize, usize)> {
        let mut span: Option<(usize, usize)> = None;
        self.visit(&mut |e| {
            if let Expr::Column(i) = e {
                span = Some(span.map_or((*i, *i), |(lo, hi)| (lo.min(*i), hi.max(*i))));
            }
        });
        span
    }

    /// Calls `f` with every column position read.
    pub fn visit_columns(&self, f: &mut dyn FnMut(usize)) {
        self.visit(&mut |e| {
            if let Expr::Column(i) = e {
                f(*i);
            }
        });
    }

    fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        for c in self.children() {
            c.visit(f);
        }
    }

    /// Whether evaluating it needs the executor or the enclosing rows: a subquery, a
    /// catalog function or cast, or a column of an enclosing query. Such an expression
    /// is never handed to a scan worker.
    pub fn needs_env(&self) -> bool {
        self.any(&|e| {
            matches!(
                e,
                Expr::Sub(..)
                    | Expr::InSub(..)
                    | Expr::Reg(..)
                    | Expr::Outer(..)
                    | Expr::Func(Func::Cat(_), _)
            )
        })
    }

    /// Whether it holds a subquery.
    pub fn has_subquery(&self) -> bool {
        self.any(&|e| matches!(e, Expr::Sub(..) | Expr::InSub(..)))
    }

    /// The same expression with every column position moved down by `by` (a filter on
    /// the joined row made a filter on one relation's rows).
    pub fn shifted(&self, by: usize) -> Expr {
        let mut e = self.clone();
        e.shift(by);
        e
    }

    fn shift(&mut self, by: usize) {
        if let Expr::Column(i) = self {
            *i = i.saturating_sub(by);
        }
        for c in self.children_mut() {
            c.shift(by);
        }
    }
}

/// The conjuncts of `e` (`a AND b AND c` → a, b, c).
pub fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::And(a, b) => {
            conjuncts(*a, out);
            conjuncts(*b, out);
        }
        other => out.push(other),
    }
}

/// The conjunction of `es` (None: no condition).
pub fn conjunction(es: &[Expr]) -> Option<Expr> {
    let mut it = es.iter().cloned();
    let first = it.next()?;
    Some(it.fold(first, |acc, e| Expr::And(Box::new(acc), Box::new(e))))
}
