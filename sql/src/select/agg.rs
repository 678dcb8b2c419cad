//! Aggregate functions' running states: `count`, `sum`, `avg`, `min`, `max`,
//! `string_agg` (DISTINCT handled by the caller), and the text key rows are grouped,
//! deduplicated and hash-joined by.

use crate::error::{SqlError, SqlResult};
use crate::expr::{AggCall, AggFunc};
use crate::value::{self, arith, sort_cmp, to_text, Dec};
use segexpand_engine::{Type, Value};
use std::cmp::Ordering;

/// The result type of aggregate `a` over columns `cols`.
pub(crate) fn agg_type(a: &AggCall, cols: &[(String, Type)], params: &[Type]) -> Type {
    let arg = a.arg.as_ref().map(|x| x.ty(cols, params, &[]));
    match (a.func, arg) {
        (AggFunc::Count, _) => Type::Int8,
        (AggFunc::Sum, Some(Type::Int2 | Type::Int4)) => Type::Int8,
        (AggFunc::Sum | AggFunc::Avg, Some(Type::Float8)) => Type::Float8,
        (AggFunc::Sum | AggFunc::Avg, _) => Type::Numeric,
        (AggFunc::Min | AggFunc::Max, Some(t)) => t,
        (AggFunc::Min | AggFunc::Max | AggFunc::StringAgg, _) => Type::Text,
    }
}

/// An aggregate's running state.
#[derive(Clone)]
pub(crate) enum Acc {
    Count(i64),
    Sum(Value),
    Avg(Dec, i64, f64, bool),
    MinMax(Value),
    /// `string_agg`: the text so far (None: no value yet).
    Str(Option<String>),
}

pub(crate) fn acc_new(a: &AggCall) -> Acc {
    match a.func {
        AggFunc::Count => Acc::Count(0),
        AggFunc::Sum => Acc::Sum(Value::Null),
        AggFunc::Avg => Acc::Avg(Dec::from_int(0), 0, 0.0, false),
        AggFunc::Min | AggFunc::Max => Acc::MinMax(Value::Null),
        AggFunc::StringAgg => Acc::Str(None),
    }
}

pub(crate) fn acc_add(acc: &mut Acc, a: &AggCall, v: Option<Value>) -> SqlResult<()> {
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
        (Acc::Str(s), Some(v)) => {
            let t = to_text(&v).unwrap_or_default();
            match s {
                None => *s = Some(t),
                Some(s) => {
                    s.push_str(&a.sep);
                    s.push_str(&t);
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

pub(crate) fn acc_result(acc: &Acc) -> Value {
    match acc {
        Acc::Count(n) => Value::Int8(*n),
        Acc::Sum(v) | Acc::MinMax(v) => v.clone(),
        Acc::Str(s) => s.clone().map_or(Value::Null, Value::Text),
        Acc::Avg(_, 0, _, _) => Value::Null,
        Acc::Avg(_, n, f, true) => Value::Float8(*f / *n as f64),
        Acc::Avg(sum, n, _, false) => Dec::arith(*sum, '/', Dec::from_int(*n))
            .map_or(Value::Null, |d| Value::Numeric(d.to_string())),
    }
}

pub(crate) fn key_text(vals: &[Value]) -> String {
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
