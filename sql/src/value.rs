//! Values as SQL sees them: PostgreSQL type OIDs, text input and output (the wire's text
//! format), arithmetic and comparison with PostgreSQL's errors.
//!
//! Runtime values are the engine's [`Value`]s; static types are the engine's [`Type`]s.
//! `numeric` arithmetic runs on a scaled 128-bit integer (38 significant digits; past
//! that it is "value out of range", where PostgreSQL would go on).

use crate::error::SqlError;
use segexpand_engine::{Type, Value};
use std::cmp::Ordering;

/// The PostgreSQL type OID of a column type (RowDescription, ParameterDescription).
pub fn type_oid(ty: Type) -> u32 {
    match ty {
        Type::Bool => 16,
        Type::Int8 => 20,
        Type::Int2 => 21,
        Type::Int4 => 23,
        Type::Text => 25,
        Type::Float8 => 701,
        Type::Char(_) => 1042,
        Type::Varchar(_) => 1043,
        Type::Date => 1082,
        Type::Timestamp => 1114,
        Type::Numeric => 1700,
    }
}

/// The type of a parameter OID a client sent (0 or an unknown OID: none).
pub fn type_of_oid(oid: u32) -> Option<Type> {
    Some(match oid {
        16 => Type::Bool,
        20 => Type::Int8,
        21 => Type::Int2,
        23 => Type::Int4,
        25 | 1043 | 1042 | 705 => Type::Text,
        701 | 700 => Type::Float8,
        1082 => Type::Date,
        1114 => Type::Timestamp,
        1700 => Type::Numeric,
        _ => return None,
    })
}

/// PostgreSQL's type name (format_type style, as psql shows it): the engine's own.
pub fn type_name(ty: Type) -> String {
    ty.sql_name()
}

/// The text form of `v` (NULL: `None`), as PostgreSQL prints it.
pub fn to_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => if *b { "t" } else { "f" }.to_string(),
        Value::Int2(i) => i.to_string(),
        Value::Int4(i) => i.to_string(),
        Value::Int8(i) => i.to_string(),
        Value::Float8(f) => float_text(*f),
        Value::Numeric(s) | Value::Text(s) => s.clone(),
        Value::Date(d) => date_text(*d),
        Value::Timestamp(t) => timestamp_text(*t),
    })
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        // Rust's shortest round-trip form, as PostgreSQL 12+ prints by default.
        let s = format!("{f}");
        s
    }
}

/// Days since 2000-01-01 → civil date (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days-from-civil inverse, shifted to the 2000 epoch.
    let z = days + 730_425; // days from 0000-03-01 to 2000-01-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 730_425
}

fn date_text(d: i32) -> String {
    let (y, m, dd) = civil(i64::from(d));
    format!("{y:04}-{m:02}-{dd:02}")
}

fn timestamp_text(t: i64) -> String {
    let days = t.div_euclid(86_400_000_000);
    let us = t.rem_euclid(86_400_000_000);
    let (h, rest) = (us / 3_600_000_000, us % 3_600_000_000);
    let (mi, rest) = (rest / 60_000_000, rest % 60_000_000);
    let (s, frac) = (rest / 1_000_000, rest % 1_000_000);
    let mut out = format!(
        "{} {h:02}:{mi:02}:{s:02}",
        date_text(i32::try_from(days).unwrap_or(i32::MAX))
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out
}

fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max = *dim.get(usize::try_from(m).ok()?.checked_sub(1)?)?;
    if d == 0 || d > max {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, t.trim()),
        None => (s, "00:00:00"),
    };
    let days = parse_date(date)?;
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, b),
        None => (time, ""),
    };
    let mut it = hms.split(':');
    let h: i64 = it.next()?.parse().ok()?;
    let mi: i64 = it.next().unwrap_or("0").parse().ok()?;
    let sec: i64 = it.next().unwrap_or("0").parse().ok()?;
    if it.next().is_some() || h > 24 || mi > 59 || sec > 60 {
        return None;
    }
    let mut us = 0i64;
    if !frac.is_empty() {
        if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        us = format!("{frac:0<6}").parse().ok()?;
    }
    Some(days * 86_400_000_000 + ((h * 60 + mi) * 60 + sec) * 1_000_000 + us)
}

/// Parses `s` as a value of type `ty`, as PostgreSQL's input functions do (COPY text,
/// parameters in text format, string literals assigned to typed columns).
pub fn from_text(ty: Type, s: &str) -> Result<Value, SqlError> {
    let bad = || SqlError::invalid_text(ty, s);
    Ok(match ty {
        Type::Bool => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" | "y" => Value::Bool(true),
            "f" | "false" | "no" | "off" | "0" | "n" => Value::Bool(false),
            _ => return Err(bad()),
        },
        Type::Int2 | Type::Int4 | Type::Int8 => {
            let t = s.trim();
            let i: i128 = t.parse().map_err(|_| bad())?;
            let (lo, hi) = match ty {
                Type::Int2 => (i128::from(i16::MIN), i128::from(i16::MAX)),
                Type::Int4 => (i128::from(i32::MIN), i128::from(i32::MAX)),
                _ => (i128::from(i64::MIN), i128::from(i64::MAX)),
            };
            if i < lo || i > hi {
                return Err(SqlError::out_of_range(ty));
            }
            match ty {
                Type::Int2 => Value::Int2(i as i16),
                Type::Int4 => Value::Int4(i as i32),
                _ => Value::Int8(i as i64),
            }
        }
        Type::Float8 => {
            let t = s.trim();
            let f = match t.to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "infinity" | "inf" | "+infinity" => f64::INFINITY,
                "-infinity" | "-inf" => f64::NEG_INFINITY,
                _ => t.parse().map_err(|_| bad())?,
            };
            Value::Float8(f)
        }
        Type::Numeric => {
            let d = Dec::parse(s.trim()).ok_or_else(bad)?;
            Value::Numeric(d.to_string())
        }
        Type::Text | Type::Varchar(_) | Type::Char(_) => Value::Text(s.to_string()),
        Type::Date => Value::Date(
            parse_date(s)
                .and_then(|d| i32::try_from(d).ok())
                .ok_or_else(bad)?,
        ),
        Type::Timestamp => Value::Timestamp(parse_timestamp(s).ok_or_else(bad)?),
    })
}

/// The static type of a runtime value (NULL: text, as PostgreSQL's unknown).
pub fn type_of_value(v: &Value) -> Type {
    match v {
        Value::Null | Value::Text(_) => Type::Text,
        Value::Bool(_) => Type::Bool,
        Value::Int2(_) => Type::Int2,
        Value::Int4(_) => Type::Int4,
        Value::Int8(_) => Type::Int8,
        Value::Float8(_) => Type::Float8,
        Value::Numeric(_) => Type::Numeric,
        Value::Date(_) => Type::Date,
        Value::Timestamp(_) => Type::Timestamp,
    }
}

/// A decimal: `mant / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dec {
    mant: i128,
    scale: u32,
}

const DEC_SCALE_MAX: u32 = 30;

impl Dec {
    /// Parses decimal text (`-12.50`, `3`, `.5`, `1e3`).
    pub fn parse(s: &str) -> Option<Dec> {
        let (s, exp) = match s.find(['e', 'E']) {
            Some(i) => (s.get(..i)?, s.get(i + 1..)?.parse::<i32>().ok()?),
            None => (s, 0),
        };
        let (neg, digits) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut mant: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mant = mant.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        let mut d = Dec {
            mant: if neg { -mant } else { mant },
            scale: u32::try_from(frac.len()).ok()?,
        };
        if exp > 0 {
            for _ in 0..exp {
                if d.scale > 0 {
                    d.scale -= 1;
                } else {
                    d.mant = d.mant.checked_mul(10)?;
                }
            }
        } else {
            d.scale = d.scale.checked_add(exp.unsigned_abs())?;
        }
        Some(d)
    }

    /// From an integer.
    pub fn from_int(i: i64) -> Dec {
        Dec {
            mant: i128::from(i),
            scale: 0,
        }
    }

    fn rescale(self, scale: u32) -> Option<Dec> {
        let mut m = self.mant;
        for _ in self.scale..scale {
            m = m.checked_mul(10)?;
        }
        Some(Dec { mant: m, scale })
    }

    fn align(a: Dec, b: Dec) -> Option<(i128, i128, u32)> {
        let s = a.scale.max(b.scale);
        Some((a.rescale(s)?.mant, b.rescale(s)?.mant, s))
    }

    /// a + b, a - b, a * b, a / b (None: overflow; division by zero is the caller's).
    pub fn arith(a: Dec, op: char, b: Dec) -> Option<Dec> {
        match op {
            '+' | '-' => {
                let (x, y, s) = Dec::align(a, b)?;
                let m = if op == '+' {
                    x.checked_add(y)?
                } else {
                    x.checked_sub(y)?
                };
                Some(Dec { mant: m, scale: s })
            }
            '*' => {
                let d = Dec {
                    mant: a.mant.checked_mul(b.mant)?,
                    scale: a.scale + b.scale,
                };
                Some(d.trim_to(DEC_SCALE_MAX))
            }
            '/' => {
                // PostgreSQL gives at least 16 significant fractional digits; so do we.
                let scale = a.scale.max(b.scale).clamp(16, DEC_SCALE_MAX);
                let num = a.rescale(scale + b.scale)?.mant;
                let q = num.checked_div(b.mant)?;
                let r = num.checked_rem(b.mant)?;
                // Round half away from zero.
                let q = if r.checked_mul(2)?.abs() >= b.mant.abs() {
                    q + if (num < 0) != (b.mant < 0) { -1 } else { 1 }
                } else {
                    q
                };
                Some(Dec { mant: q, scale })
            }
            _ => None,
        }
    }

    fn trim_to(self, scale: u32) -> Dec {
        let mut d = self;
        while d.scale > scale {
            d.mant /= 10;
            d.scale -= 1;
        }
        d
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.mant == 0
    }

    fn cmp(self, other: Dec) -> Ordering {
        match Dec::align(self, other) {
            Some((x, y, _)) => x.cmp(&y),
            None => self.to_f64().total_cmp(&other.to_f64()),
        }
    }

    /// As a float.
    pub fn to_f64(self) -> f64 {
        self.mant as f64 / 10f64.powi(self.scale as i32)
    }
}

impl std::fmt::Display for Dec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let neg = self.mant < 0;
        let digits = self.mant.unsigned_abs().to_string();
        let scale = self.scale as usize;
        let (int, frac) = if digits.len() > scale {
            let (i, fr) = digits.split_at(digits.len() - scale);
            (i.to_string(), fr.to_string())
        } else {
            ("0".to_string(), format!("{digits:0>scale$}"))
        };
        if neg && (int != "0" || frac.bytes().any(|b| b != b'0')) {
            f.write_str("-")?;
        }
        f.write_str(&int)?;
        if !frac.is_empty() {
            write!(f, ".{frac}")?;
        }
        Ok(())
    }
}

/// A number class for arithmetic and comparison.
enum Num {
    Int(i64, Type),
    Float(f64),
    Dec(Dec),
}

fn num(v: &Value) -> Option<Num> {
    Some(match v {
        Value::Int2(i) => Num::Int(i64::from(*i), Type::Int2),
        Value::Int4(i) => Num::Int(i64::from(*i), Type::Int4),
        Value::Int8(i) => Num::Int(*i, Type::Int8),
        Value::Float8(f) => Num::Float(*f),
        Value::Numeric(s) => Num::Dec(Dec::parse(s)?),
        _ => return None,
    })
}

fn int_width(a: Type, b: Type) -> Type {
    if a == Type::Int8 || b == Type::Int8 {
        Type::Int8
    } else if a == Type::Int4 || b == Type::Int4 {
        Type::Int4
    } else {
        Type::Int2
    }
}

fn int_value(i: i64, ty: Type) -> Result<Value, SqlError> {
    Ok(match ty {
        Type::Int2 => Value::Int2(i16::try_from(i).map_err(|_| SqlError::out_of_range(ty))?),
        Type::Int4 => Value::Int4(i32::try_from(i).map_err(|_| SqlError::out_of_range(ty))?),
        _ => Value::Int8(i),
    })
}

fn as_dec(n: &Num) -> Option<Dec> {
    match n {
        Num::Int(i, _) => Some(Dec::from_int(*i)),
        Num::Dec(d) => Some(*d),
        Num::Float(_) => None,
    }
}

fn as_f64(n: &Num) -> f64 {
    match n {
        Num::Int(i, _) => *i as f64,
        Num::Float(f) => *f,
        Num::Dec(d) => d.to_f64(),
    }
}

/// `a op b` for `+ - * / %` (NULL in, NULL out).
pub fn arith(a: &Value, op: char, b: &Value) -> Result<Value, SqlError> {
    if matches!(a, Value::Null) || matches!(b, Value::Null) {
        return Ok(Value::Null);
    }
    let (Some(x), Some(y)) = (num(a), num(b)) else {
        return Err(SqlError::undefined_operator(a, op, b));
    };
    match (&x, &y) {
        (Num::Int(i, ta), Num::Int(j, tb)) => {
            let ty = int_width(*ta, *tb);
            if matches!(op, '/' | '%') && *j == 0 {
                return Err(SqlError::division_by_zero());
            }
            let r = match op {
                '+' => i.checked_add(*j),
                '-' => i.checked_sub(*j),
                '*' => i.checked_mul(*j),
                '/' => i.checked_div(*j),
                '%' => i.checked_rem(*j),
                _ => None,
            }
            .ok_or_else(|| SqlError::out_of_range(ty))?;
            int_value(r, ty)
        }
        (Num::Float(_), _) | (_, Num::Float(_)) => {
            let (p, q) = (as_f64(&x), as_f64(&y));
            if matches!(op, '/' | '%') && q == 0.0 {
                return Err(SqlError::division_by_zero());
            }
            Ok(Value::Float8(match op {
                '+' => p + q,
                '-' => p - q,
                '*' => p * q,
                '/' => p / q,
                _ => p % q,
            }))
        }
        _ => {
            let (Some(p), Some(q)) = (as_dec(&x), as_dec(&y)) else {
                return Err(SqlError::undefined_operator(a, op, b));
            };
            if matches!(op, '/' | '%') && q.is_zero() {
                return Err(SqlError::division_by_zero());
            }
            let r = if op == '%' {
                let quot = Dec::arith(p, '/', q).map(|d| d.trim_to(0));
                quot.and_then(|t| Dec::arith(t, '*', q))
                    .and_then(|m| Dec::arith(p, '-', m))
            } else {
                Dec::arith(p, op, q)
            };
            r.map(|d| Value::Numeric(d.to_string()))
                .ok_or_else(|| SqlError::out_of_range(Type::Numeric))
        }
    }
}

/// Compares two non-NULL values of comparable types (numbers with numbers, strings
/// with strings, …); `None` when they cannot be compared.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return Some(match (&x, &y) {
            (Num::Int(i, _), Num::Int(j, _)) => i.cmp(j),
            (Num::Float(_), _) | (_, Num::Float(_)) => as_f64(&x).total_cmp(&as_f64(&y)),
            _ => as_dec(&x)?.cmp(as_dec(&y)?),
        });
    }
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => {
            Some(x.trim_end_matches(' ').cmp(y.trim_end_matches(' ')))
        }
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Timestamp(y)) => Some((i64::from(*x) * 86_400_000_000).cmp(y)),
        (Value::Timestamp(x), Value::Date(y)) => Some(x.cmp(&(i64::from(*y) * 86_400_000_000))),
        _ => None,
    }
}

/// Orders values for ORDER BY and GROUP BY: NULLs last, then [`compare`]; values that
/// do not compare fall back to their text.
pub fn sort_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        _ => compare(a, b).unwrap_or_else(|| to_text(a).cmp(&to_text(b))),
    }
}

/// An explicit cast (`CAST(x AS t)`, `x::t`): as [`cast`], and a string cast to
/// varchar(n) or char(n) is cut to n characters, as PostgreSQL does (an assignment of a
/// longer string is an error instead: 22001).
pub fn explicit_cast(v: Value, ty: Type) -> Result<Value, SqlError> {
    let out = cast(v, ty)?;
    match (out, ty) {
        (Value::Text(s), Type::Varchar(n) | Type::Char(n)) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            Ok(Value::Text(match s.char_indices().nth(n) {
                Some((at, _)) => s.get(..at).unwrap_or(&s).to_string(),
                None => s,
            }))
        }
        (out, _) => Ok(out),
    }
}

/// Converts `v` to type `ty` (CAST, `::`, and assigning an untyped literal).
pub fn cast(v: Value, ty: Type) -> Result<Value, SqlError> {
    if matches!(v, Value::Null) {
        return Ok(v);
    }
    match (&v, ty) {
        (Value::Text(s), _) => from_text(ty, s),
        (_, Type::Text | Type::Varchar(_) | Type::Char(_)) => {
            Ok(Value::Text(to_text(&v).unwrap_or_default()))
        }
        (
            Value::Int2(_) | Value::Int4(_) | Value::Int8(_),
            Type::Int2 | Type::Int4 | Type::Int8,
        ) => int_value(v.as_int().unwrap_or_default(), ty),
        (Value::Float8(f), Type::Int2 | Type::Int4 | Type::Int8) => {
            let r = f.round_ties_even();
            if !r.is_finite() || r < i64::MIN as f64 || r > i64::MAX as f64 {
                return Err(SqlError::out_of_range(ty));
            }
            int_value(r as i64, ty)
        }
        (Value::Numeric(s), Type::Int2 | Type::Int4 | Type::Int8) => {
            let d = Dec::parse(s).ok_or_else(|| SqlError::invalid_text(ty, s))?;
            // Round half away from zero.
            let half = Dec::arith(
                d,
                if d.mant < 0 { '-' } else { '+' },
                Dec { mant: 5, scale: 1 },
            );
            let t = half
                .map(|h| h.trim_to(0).mant)
                .and_then(|m| i64::try_from(m).ok())
                .ok_or_else(|| SqlError::out_of_range(ty))?;
            int_value(t, ty)
        }
        (Value::Numeric(s), Type::Float8) => Ok(Value::Float8(
            Dec::parse(s).map(Dec::to_f64).unwrap_or(f64::NAN),
        )),
        (Value::Float8(f), Type::Numeric) => Dec::parse(&format!("{f}"))
            .map(|d| Value::Numeric(d.to_string()))
            .ok_or_else(|| SqlError::out_of_range(ty)),
        (_, _) => {
            let out = ty
                .coerce(v.clone(), "?column?")
                .map_err(|_| SqlError::cannot_cast(&v, ty))?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_timestamps_round_trip_through_text() {
        for s in [
            "2000-01-01",
            "1999-12-31",
            "2024-02-29",
            "1970-01-01",
            "2300-07-04",
        ] {
            let v = from_text(Type::Date, s).unwrap();
            assert_eq!(to_text(&v).unwrap(), s);
        }
        assert_eq!(from_text(Type::Date, "2000-01-01").unwrap(), Value::Date(0));
        assert!(from_text(Type::Date, "2023-02-29").is_err());
        let t = from_text(Type::Timestamp, "2001-02-03 04:05:06.5").unwrap();
        assert_eq!(to_text(&t).unwrap(), "2001-02-03 04:05:06.5");
    }

    #[test]
    fn integer_arithmetic_keeps_width_and_reports_overflow() {
        let r = arith(&Value::Int4(i32::MAX), '+', &Value::Int4(1)).unwrap_err();
        assert_eq!(r.sqlstate, "22003");
        assert_eq!(
            arith(&Value::Int4(7), '/', &Value::Int4(2)).unwrap(),
            Value::Int4(3)
        );
        assert_eq!(
            arith(&Value::Int4(1), '/', &Value::Int4(0))
                .unwrap_err()
                .sqlstate,
            "22012"
        );
        assert_eq!(
            arith(&Value::Int4(i32::MAX), '+', &Value::Int8(1)).unwrap(),
            Value::Int8(i64::from(i32::MAX) + 1)
        );
    }

    #[test]
    fn numeric_arithmetic_is_exact() {
        let n = |s: &str| Value::Numeric(s.into());
        assert_eq!(arith(&n("0.1"), '+', &n("0.2")).unwrap(), n("0.3"));
        assert_eq!(
            arith(&n("10.50"), '-', &Value::Int4(11)).unwrap(),
            n("-0.50")
        );
        assert_eq!(arith(&n("1.5"), '*', &n("2")).unwrap(), n("3.0"));
        assert_eq!(
            arith(&n("1"), '/', &n("3")).unwrap(),
            n("0.3333333333333333")
        );
        assert_eq!(compare(&n("2.0"), &Value::Int8(2)), Some(Ordering::Equal));
    }

    #[test]
    fn bad_text_is_22p02_and_out_of_range_is_22003() {
        assert_eq!(from_text(Type::Int4, "12x").unwrap_err().sqlstate, "22P02");
        assert_eq!(
            from_text(Type::Int4, "99999999999").unwrap_err().sqlstate,
            "22003"
        );
        assert_eq!(from_text(Type::Int2, " 12 ").unwrap(), Value::Int2(12));
        assert_eq!(
            from_text(Type::Numeric, "-0012.50").unwrap(),
            Value::Numeric("-12.50".into())
        );
    }
}
