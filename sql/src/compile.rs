//! The rest of expression compilation ([`Compiler`]): function calls (scalar, aggregate
//! and catalog functions), subqueries (scalar, `EXISTS`, `IN (SELECT …)`, `ARRAY(…)`,
//! planned by the SELECT planner with this level's names as their outer scope), casts to
//! catalog types, regular-expression operators, `ANY (array)`, subscripts and `COLLATE`
//! (ignored: one collation here).

use crate::error::{SqlError, SqlResult};
use crate::expr::{
    object_name, sql_type, AggCall, AggFunc, CmpOp, Compiler, Expr, Func, RegKind, SubKind, SubRef,
};
use crate::names::Frame;
use segexpand_engine::{Type, Value};
use sqlparser::ast::{self as ast, BinaryOperator};
use std::sync::Arc;

impl Compiler<'_> {
    /// Expressions beyond the basic ones (`compile` hands them here).
    pub(crate) fn compile_more(&mut self, e: &ast::Expr) -> SqlResult<Expr> {
        use ast::Expr as E;
        Ok(match e {
            E::Subquery(q) => self.subquery(q, SubKind::Scalar)?,
            E::Exists { subquery, negated } => {
                self.subquery(subquery, SubKind::Exists(*negated))?
            }
            E::InSubquery {
                expr,
                subquery,
                negated,
            } => {
                let x = self.compile(expr)?;
                let sub = self.plan_sub(subquery)?;
                Expr::InSub(Box::new(x), sub, *negated)
            }
            E::Collate { expr, .. } => self.compile(expr)?,
            E::AnyOp {
                left,
                compare_op,
                right,
                ..
            } => {
                let l = self.compile(left)?;
                let op = cmp_op(compare_op)
                    .ok_or_else(|| SqlError::unsupported(format!("operator {compare_op} ANY")))?;
                if let E::Subquery(q) = &**right {
                    if op != CmpOp::Eq {
                        return Err(SqlError::unsupported("op ANY (SELECT …) other than ="));
                    }
                    let sub = self.plan_sub(q)?;
                    return Ok(Expr::InSub(Box::new(l), sub, false));
                }
                Expr::AnyArray(op, Box::new(l), Box::new(self.compile(right)?))
            }
            E::CompoundFieldAccess { root, access_chain } => match access_chain.as_slice() {
                [ast::AccessExpr::Subscript(ast::Subscript::Index { index })] => Expr::Subscript(
                    Box::new(self.compile(root)?),
                    Box::new(self.compile(index)?),
                ),
                _ => return Err(SqlError::unsupported(format!("expression {e}"))),
            },
            E::Array(a) => Expr::Array(
                a.elem
                    .iter()
                    .map(|x| self.compile(x))
                    .collect::<SqlResult<_>>()?,
            ),
            E::IsTrue(x) | E::IsNotTrue(x) | E::IsFalse(x) | E::IsNotFalse(x) => {
                let want = matches!(e, E::IsTrue(_) | E::IsNotTrue(_));
                let is = Expr::Func(
                    Func::Coalesce,
                    vec![
                        Expr::Cmp(
                            CmpOp::Eq,
                            Box::new(self.compile(x)?),
                            Box::new(Expr::Const(Value::Bool(want))),
                        ),
                        Expr::Const(Value::Bool(false)),
                    ],
                );
                if matches!(e, E::IsNotTrue(_) | E::IsNotFalse(_)) {
                    Expr::Not(Box::new(is))
                } else {
                    is
                }
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "expression not supported: {other}"
                )))
            }
        })
    }

    /// Binary operators beyond arithmetic, comparison and logic: `~` and friends, and
    /// `OPERATOR(pg_catalog.op)`.
    pub(crate) fn binary_more(
        &mut self,
        op: &BinaryOperator,
        l: Box<Expr>,
        r: Box<Expr>,
    ) -> SqlResult<Expr> {
        let name = match op {
            BinaryOperator::PGRegexMatch => "~".to_string(),
            BinaryOperator::PGRegexIMatch => "~*".into(),
            BinaryOperator::PGRegexNotMatch => "!~".into(),
            BinaryOperator::PGRegexNotIMatch => "!~*".into(),
            BinaryOperator::PGLikeMatch => "~~".into(),
            BinaryOperator::PGNotLikeMatch => "!~~".into(),
            BinaryOperator::PGCustomBinaryOperator(parts) => match parts.as_slice() {
                [op] => op.clone(),
                [schema, op] if schema.eq_ignore_ascii_case("pg_catalog") => op.clone(),
                _ => return Err(SqlError::unsupported(format!("operator {op}"))),
            },
            other => return Err(SqlError::unsupported(format!("operator {other}"))),
        };
        Ok(match name.as_str() {
            "~" => Expr::Regex(l, r, false, false),
            "~*" => Expr::Regex(l, r, false, true),
            "!~" => Expr::Regex(l, r, true, false),
            "!~*" => Expr::Regex(l, r, true, true),
            "~~" => Expr::Like(l, r, false),
            "!~~" => Expr::Like(l, r, true),
            "=" => Expr::Cmp(CmpOp::Eq, l, r),
            "<>" | "!=" => Expr::Cmp(CmpOp::Ne, l, r),
            "<" => Expr::Cmp(CmpOp::Lt, l, r),
            "<=" => Expr::Cmp(CmpOp::Le, l, r),
            ">" => Expr::Cmp(CmpOp::Gt, l, r),
            ">=" => Expr::Cmp(CmpOp::Ge, l, r),
            "||" => Expr::Concat(l, r),
            op @ ("+" | "-" | "*" | "/" | "%") => {
                Expr::Arith(op.chars().next().unwrap_or('+'), l, r)
            }
            other => return Err(SqlError::unsupported(format!("operator {other}"))),
        })
    }

    /// `CAST(x AS t)` / `x::t`: engine types, catalog types (`regclass`, `regtype`,
    /// `regnamespace`; `oid`, `regproc` as integers, `name` as text) and arrays (kept as
    /// their text form).
    pub(crate) fn cast(&mut self, e: &ast::Expr, dt: &ast::DataType) -> SqlResult<Expr> {
        let x = Box::new(self.compile(e)?);
        let full = dt.to_string().to_lowercase().replace('"', "");
        let name = full.strip_prefix("pg_catalog.").unwrap_or(&full);
        Ok(match name {
            n if n.ends_with("[]") => *x,
            "regclass" => Expr::Reg(x, RegKind::Class),
            "regtype" => Expr::Reg(x, RegKind::Type),
            "regnamespace" => Expr::Reg(x, RegKind::Namespace),
            "oid" | "regproc" | "regprocedure" | "regrole" | "xid" => Expr::Cast(x, Type::Int8),
            "name" => Expr::Cast(x, Type::Text),
            _ => Expr::Cast(x, sql_type(dt)?),
        })
    }

    /// A subquery expression of kind `kind`.
    pub(crate) fn subquery(&mut self, q: &ast::Query, kind: SubKind) -> SqlResult<Expr> {
        let sub = self.plan_sub(q)?;
        Ok(Expr::Sub(kind, sub))
    }

    /// Plans a subquery with this level (and the enclosing ones) as its outer names.
    fn plan_sub(&mut self, q: &ast::Query) -> SqlResult<SubRef> {
        let Some(session) = self.session else {
            return Err(SqlError::unsupported("subqueries are not supported here"));
        };
        let mut outer = vec![Frame {
            scope: self.scope,
            rels: self.rels,
        }];
        outer.extend(self.outer.iter().copied());
        let planned = crate::select::plan_subquery(session, q, outer)?;
        self.params = self.params.max(planned.params);
        // The subquery's level 0 is this level; deeper references are ours too.
        if let Some(used) = planned.outer_used.and_then(|u| u.checked_sub(1)) {
            self.outer_used = Some(self.outer_used.map_or(used, |o| o.max(used)));
        }
        Ok(SubRef(Arc::new(planned.sub)))
    }

    pub(crate) fn function(&mut self, f: &ast::Function) -> SqlResult<Expr> {
        let name = object_name(&f.name);
        let (args, star, distinct) = match &f.args {
            ast::FunctionArguments::None => (Vec::new(), false, false),
            ast::FunctionArguments::List(l) => {
                let distinct = matches!(
                    l.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                );
                let mut args = Vec::new();
                let mut star = false;
                for a in &l.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => args.push(e),
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        other => return Err(SqlError::unsupported(format!("argument {other}"))),
                    }
                }
                (args, star, distinct)
            }
            ast::FunctionArguments::Subquery(q) if name == "array" => {
                return self.subquery(q, SubKind::Array);
            }
            ast::FunctionArguments::Subquery(_) => {
                return Err(SqlError::unsupported("subquery arguments"))
            }
        };
        if f.over.is_some() {
            return Err(SqlError::unsupported("window functions"));
        }
        let agg = match name.as_str() {
            "count" => Some(AggFunc::Count),
            "sum" => Some(AggFunc::Sum),
            "avg" => Some(AggFunc::Avg),
            "min" => Some(AggFunc::Min),
            "max" => Some(AggFunc::Max),
            "string_agg" => Some(AggFunc::StringAgg),
            _ => None,
        };
        if let Some(func) = agg {
            let mut sep = String::new();
            let arg = match (star, args.as_slice()) {
                (true, []) if func == AggFunc::Count => None,
                (false, [a, s]) if func == AggFunc::StringAgg => {
                    sep = match self.compile(s)? {
                        Expr::Unknown(t) | Expr::Const(Value::Text(t)) => t,
                        _ => {
                            return Err(SqlError::unsupported(
                                "string_agg with a separator that is not a constant",
                            ))
                        }
                    };
                    let saved = self.aggs.take();
                    let r = self.compile(a);
                    self.aggs = saved;
                    Some(r?)
                }
                (false, [a]) if func != AggFunc::StringAgg => {
                    // An aggregate's argument is evaluated per row: no nested aggregates.
                    let saved = self.aggs.take();
                    let r = self.compile(a);
                    self.aggs = saved;
                    Some(r?)
                }
                _ => {
                    return Err(SqlError::new(
                        "42883",
                        format!("function {name} with these arguments does not exist"),
                    ))
                }
            };
            let Some(aggs) = self.aggs.as_mut() else {
                return Err(SqlError::new(
                    "42803",
                    format!("aggregate functions are not allowed here ({name})"),
                ));
            };
            aggs.push(AggCall {
                func,
                arg,
                distinct,
                sep,
            });
            return Ok(Expr::Agg(aggs.len() - 1));
        }
        let func = match name.as_str() {
            "abs" => Func::Abs,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "length" | "char_length" => Func::Length,
            "coalesce" => Func::Coalesce,
            "version" => Func::Version,
            "now" | "current_timestamp" | "localtimestamp" => Func::Now,
            "current_database" => Func::CurrentDatabase,
            "current_user" | "session_user" | "user" => Func::CurrentUser,
            "current_schema" => Func::CurrentSchema,
            other => match crate::catalog::CatFunc::named(other) {
                Some(c) => Func::Cat(c),
                None => {
                    return Err(SqlError::new(
                        "42883",
                        format!("function {name}() does not exist"),
                    ))
                }
            },
        };
        let args = args
            .into_iter()
            .map(|a| self.compile(a))
            .collect::<SqlResult<Vec<_>>>()?;
        Ok(Expr::Func(func, args))
    }
}

fn cmp_op(op: &BinaryOperator) -> Option<CmpOp> {
    Some(match op {
        BinaryOperator::Eq => CmpOp::Eq,
        BinaryOperator::NotEq => CmpOp::Ne,
        BinaryOperator::Lt => CmpOp::Lt,
        BinaryOperator::LtEq => CmpOp::Le,
        BinaryOperator::Gt => CmpOp::Gt,
        BinaryOperator::GtEq => CmpOp::Ge,
        _ => return None,
    })
}
