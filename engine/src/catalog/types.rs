//! Column types, values, and the row encoding (layout in `docs/format.md`, "Row
//! encoding").
//!
//! A row is a tuple payload: a null bitmap of `ceil(natts / 8)` bytes (bit `i` set = column
//! `i` is NULL), then each non-NULL value in column order. Fixed-width values are
//! little-endian; strings and numerics are a `u16` byte length and their bytes.

use crate::catalog::codec::{Reader, Writer};
use crate::catalog::hash::KeyHasher;
use crate::error::{Error, Result};

/// A column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// `bool`.
    Bool,
    /// `int2` (smallint).
    Int2,
    /// `int4` (integer).
    Int4,
    /// `int8` (bigint).
    Int8,
    /// `float8` (double precision).
    Float8,
    /// `numeric`: exact decimal of any precision, stored in canonical text form.
    Numeric,
    /// `text`.
    Text,
    /// `varchar(n)`: at most `n` characters.
    Varchar(u32),
    /// `char(n)`: exactly `n` characters, blank-padded.
    Char(u32),
    /// `date`: days since 2000-01-01.
    Date,
    /// `timestamp` (without time zone): microseconds since 2000-01-01 00:00:00.
    Timestamp,
}

/// Longest value of a string type, in bytes (a row must fit in a page).
pub const STRING_BYTES_MAX: usize = 4096;

impl Type {
    /// The on-disk type code (format.md, "Catalog").
    pub fn code(self) -> (u8, u32) {
        match self {
            Type::Bool => (1, 0),
            Type::Int2 => (2, 0),
            Type::Int4 => (3, 0),
            Type::Int8 => (4, 0),
            Type::Float8 => (5, 0),
            Type::Numeric => (6, 0),
            Type::Text => (7, 0),
            Type::Varchar(n) => (8, n),
            Type::Char(n) => (9, n),
            Type::Date => (10, 0),
            Type::Timestamp => (11, 0),
        }
    }

    /// The type of an on-disk code; `None` for an unknown code.
    pub fn from_code(code: u8, n: u32) -> Option<Type> {
        Some(match code {
            1 => Type::Bool,
            2 => Type::Int2,
            3 => Type::Int4,
            4 => Type::Int8,
            5 => Type::Float8,
            6 => Type::Numeric,
            7 => Type::Text,
            8 if n > 0 => Type::Varchar(n),
            9 if n > 0 => Type::Char(n),
            10 => Type::Date,
            11 => Type::Timestamp,
            _ => return None,
        })
    }

    /// The SQL name of the type.
    pub fn sql_name(self) -> String {
        match self {
            Type::Bool => "boolean".into(),
            Type::Int2 => "smallint".into(),
            Type::Int4 => "integer".into(),
            Type::Int8 => "bigint".into(),
            Type::Float8 => "double precision".into(),
            Type::Numeric => "numeric".into(),
            Type::Text => "text".into(),
            Type::Varchar(n) => format!("character varying({n})"),
            Type::Char(n) => format!("character({n})"),
            Type::Date => "date".into(),
            Type::Timestamp => "timestamp without time zone".into(),
        }
    }

    /// Converts `v` to a value of this type, or explains why it cannot be stored in
    /// column `column`. Integers of any width fit any integer column they are in range
    /// of; integers convert to float8 and numeric; char(n) is blank-padded to n.
    pub fn coerce(self, v: Value, column: &str) -> Result<Value> {
        let bad = |v: &Value| Error::DatatypeMismatch {
            column: column.to_string(),
            expected: self.sql_name(),
            found: v.kind_name().to_string(),
        };
        let range = || Error::ValueOutOfRange {
            column: column.to_string(),
            ty: self.sql_name(),
        };
        let too_long = |n: u32| Error::StringTooLong {
            column: column.to_string(),
            ty: self.sql_name(),
            limit: format!("{n} characters"),
        };
        if matches!(v, Value::Null) {
            return Ok(v);
        }
        let out = match (self, v) {
            (Type::Bool, v @ Value::Bool(_)) => v,
            (Type::Int2 | Type::Int4 | Type::Int8, v) => {
                let Some(i) = v.as_int() else {
                    return Err(bad(&v));
                };
                match self {
                    Type::Int2 => Value::Int2(i16::try_from(i).map_err(|_| range())?),
                    Type::Int4 => Value::Int4(i32::try_from(i).map_err(|_| range())?),
                    _ => Value::Int8(i),
                }
            }
            (Type::Float8, Value::Float8(f)) => Value::Float8(f),
            (Type::Float8, v) => match v.as_int() {
                Some(i) => Value::Float8(i as f64),
                None => return Err(bad(&v)),
            },
            (Type::Numeric, Value::Numeric(s)) => Value::Numeric(canonical_numeric(&s)?),
            (Type::Numeric, v) => match v.as_int() {
                Some(i) => Value::Numeric(i.to_string()),
                None => return Err(bad(&v)),
            },
            (Type::Text, Value::Text(s)) => Value::Text(s),
            (Type::Varchar(n), Value::Text(s)) => {
                if s.chars().count() > n as usize {
                    return Err(too_long(n));
                }
                Value::Text(s)
            }
            (Type::Char(n), Value::Text(s)) => {
                let trimmed = s.trim_end_matches(' ');
                let len = trimmed.chars().count();
                if len > n as usize {
                    return Err(too_long(n));
                }
                let mut padded = trimmed.to_string();
                padded.extend(std::iter::repeat_n(' ', n as usize - len));
                Value::Text(padded)
            }
            (Type::Date, v @ Value::Date(_)) => v,
            (Type::Timestamp, v @ Value::Timestamp(_)) => v,
            (_, v) => return Err(bad(&v)),
        };
        if let Value::Text(s) | Value::Numeric(s) = &out {
            if s.len() > STRING_BYTES_MAX {
                return Err(Error::StringTooLong {
                    column: column.to_string(),
                    ty: self.sql_name(),
                    limit: format!("{STRING_BYTES_MAX} bytes; the value has {}", s.len()),
                });
            }
        }
        Ok(out)
    }
}

/// A row: one value per column.
pub type Row = Vec<Value>;

/// A value of a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An int2.
    Int2(i16),
    /// An int4.
    Int4(i32),
    /// An int8.
    Int8(i64),
    /// A float8.
    Float8(f64),
    /// A numeric, as decimal text (canonicalized on insert: `-0012.50` becomes `-12.5`).
    Numeric(String),
    /// text, varchar(n) or char(n).
    Text(String),
    /// Days since 2000-01-01.
    Date(i32),
    /// Microseconds since 2000-01-01 00:00:00.
    Timestamp(i64),
}

impl Value {
    /// The integer inside an int2, int4 or int8.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int2(v) => Some(i64::from(*v)),
            Value::Int4(v) => Some(i64::from(*v)),
            Value::Int8(v) => Some(*v),
            _ => None,
        }
    }

    fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Bool(_) => "a boolean",
            Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => "an integer",
            Value::Float8(_) => "a float",
            Value::Numeric(_) => "a numeric",
            Value::Text(_) => "a string",
            Value::Date(_) => "a date",
            Value::Timestamp(_) => "a timestamp",
        }
    }

    /// Adds this value to a distribution-key hash, as a column of type `ty`.
    pub fn hash_into(&self, ty: Type, h: &mut KeyHasher) {
        match self {
            Value::Null => h.null(),
            Value::Bool(b) => h.bool(*b),
            Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => h.int(self.as_int().unwrap_or(0)),
            Value::Date(d) => h.int(i64::from(*d)),
            Value::Timestamp(t) => h.int(*t),
            Value::Float8(f) => h.float(*f),
            Value::Numeric(s) => h.bytes(s.as_bytes()),
            Value::Text(s) if matches!(ty, Type::Char(_)) => h.bpchar(s),
            Value::Text(s) => h.bytes(s.as_bytes()),
        };
    }

    /// Key equality, consistent with [`Value::hash_into`]: NULL equals NULL (a key lookup
    /// for NULL finds the NULL keys), -0.0 equals 0.0, NaN equals NaN, and char(n) ignores
    /// trailing blanks.
    pub fn key_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Float8(a), Value::Float8(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Value::Text(a), Value::Text(b)) => {
                a == b || a.trim_end_matches(' ') == b.trim_end_matches(' ')
            }
            (a, b) => match (a.as_int(), b.as_int()) {
                (Some(x), Some(y)) => x == y,
                _ => a == b,
            },
        }
    }
}

/// Canonical text of a numeric literal: optional sign, digits, optional fraction; no
/// leading zeros, no trailing fractional zeros, no `-0`.
pub fn canonical_numeric(s: &str) -> Result<String> {
    let bad = || Error::InvalidTextRepresentation {
        ty: "numeric".into(),
        input: s.to_string(),
    };
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let mut out = String::with_capacity(s.len());
    if neg && !(int.is_empty() && frac.is_empty()) {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Ok(out)
}

/// Encodes a row of values already coerced to their columns' types (one per column) as
/// a tuple payload.
pub fn encode_row(values: &[Value], out: &mut Vec<u8>) {
    let bitmap = values.len().div_ceil(8);
    let start = out.len();
    out.resize(start + bitmap, 0);
    let mut w = Writer {
        buf: std::mem::take(out),
    };
    for (i, v) in values.iter().enumerate() {
        match v {
            Value::Null => {
                if let Some(b) = w.buf.get_mut(start + i / 8) {
                    *b |= 1 << (i % 8);
                }
            }
            Value::Bool(b) => {
                w.u8(u8::from(*b));
            }
            Value::Int2(x) => {
                w.u16(*x as u16);
            }
            Value::Int4(x) => {
                w.u32(*x as u32);
            }
            Value::Date(x) => {
                w.u32(*x as u32);
            }
            Value::Int8(x) => {
                w.u64(*x as u64);
            }
            Value::Timestamp(x) => {
                w.u64(*x as u64);
            }
            Value::Float8(x) => {
                w.u64(x.to_bits());
            }
            Value::Numeric(s) | Value::Text(s) => {
                w.str16(s);
            }
        }
    }
    *out = w.buf;
}

/// Decodes a row payload written by [`encode_row`] for these column types; `None` if the
/// bytes do not decode (corruption).
pub fn decode_row<I>(types: I, payload: &[u8]) -> Option<Vec<Value>>
where
    I: IntoIterator<Item = Type>,
    I::IntoIter: ExactSizeIterator,
{
    let mut out = Vec::new();
    decode_row_into(types, payload, &mut out)?;
    Some(out)
}

/// Like [`decode_row`], into a reused vector.
pub fn decode_row_into<I>(types: I, payload: &[u8], out: &mut Vec<Value>) -> Option<()>
where
    I: IntoIterator<Item = Type>,
    I::IntoIter: ExactSizeIterator,
{
    let types = types.into_iter();
    out.clear();
    out.reserve(types.len());
    let bitmap = types.len().div_ceil(8);
    let nulls = payload.get(..bitmap)?;
    let mut r = Reader::new(payload.get(bitmap..)?);
    for (i, ty) in types.enumerate() {
        if nulls.get(i / 8)? & (1 << (i % 8)) != 0 {
            out.push(Value::Null);
            continue;
        }
        out.push(match ty {
            Type::Bool => match r.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return None,
            },
            Type::Int2 => Value::Int2(r.u16()? as i16),
            Type::Int4 => Value::Int4(r.u32()? as i32),
            Type::Int8 => Value::Int8(r.u64()? as i64),
            Type::Date => Value::Date(r.u32()? as i32),
            Type::Timestamp => Value::Timestamp(r.u64()? as i64),
            Type::Float8 => Value::Float8(f64::from_bits(r.u64()?)),
            Type::Numeric => Value::Numeric(r.str16()?),
            Type::Text | Type::Varchar(_) | Type::Char(_) => Value::Text(r.str16()?),
        });
    }
    r.is_empty().then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Type; 11] = [
        Type::Bool,
        Type::Int2,
        Type::Int4,
        Type::Int8,
        Type::Float8,
        Type::Numeric,
        Type::Text,
        Type::Varchar(5),
        Type::Char(4),
        Type::Date,
        Type::Timestamp,
    ];

    #[test]
    fn every_type_round_trips_with_and_without_nulls() {
        let values = vec![
            Value::Bool(true),
            Value::Int2(-7),
            Value::Int4(1 << 30),
            Value::Int8(-(1 << 60)),
            Value::Float8(-2.5),
            Value::Numeric("-12.5".into()),
            Value::Text("héllo wörld".into()),
            Value::Text("abc".into()),
            Value::Text("ab  ".into()),
            Value::Date(-365),
            Value::Timestamp(1_700_000_000_000_000),
        ];
        for nulls in [0u32, 0b101_0101_0101, 0b111_1111_1111, 1 << 10] {
            let row: Vec<Value> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if nulls & (1 << i) != 0 {
                        Value::Null
                    } else {
                        v.clone()
                    }
                })
                .collect();
            let mut buf = Vec::new();
            encode_row(&row, &mut buf);
            assert_eq!(decode_row(ALL, &buf).unwrap(), row);
            // Every strict prefix fails to decode instead of panicking.
            for cut in 0..buf.len() {
                assert!(decode_row(ALL, &buf[..cut]).is_none(), "prefix {cut}");
            }
        }
    }

    #[test]
    fn row_encoding_bytes_are_pinned() {
        let mut buf = Vec::new();
        encode_row(
            &[Value::Int4(258), Value::Null, Value::Bool(true)],
            &mut buf,
        );
        // bitmap 0b010 (column 1 NULL), int4 258 LE, bool 1.
        assert_eq!(buf, [0b010, 2, 1, 0, 0, 1]);
        buf.clear();
        encode_row(
            &[Value::Null, Value::Text("hi".into()), Value::Null],
            &mut buf,
        );
        assert_eq!(buf, [0b101, 2, 0, b'h', b'i']);
    }

    #[test]
    fn coercion_checks_ranges_lengths_and_kinds() {
        assert_eq!(
            Type::Int2.coerce(Value::Int8(5), "c").unwrap(),
            Value::Int2(5)
        );
        let e = Type::Int2.coerce(Value::Int8(70_000), "c").unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        let e = Type::Varchar(3)
            .coerce(Value::Text("abcd".into()), "name")
            .unwrap_err();
        assert!(e.to_string().contains("too long"), "{e}");
        assert_eq!(
            Type::Char(4).coerce(Value::Text("ab".into()), "c").unwrap(),
            Value::Text("ab  ".into())
        );
        assert_eq!(
            Type::Char(2)
                .coerce(Value::Text("ab   ".into()), "c")
                .unwrap(),
            Value::Text("ab".into())
        );
        let e = Type::Bool.coerce(Value::Int4(1), "flag").unwrap_err();
        assert_eq!(
            e.to_string(),
            "column \"flag\" is boolean but the value is an integer"
        );
        assert_eq!(
            Type::Float8.coerce(Value::Int4(3), "f").unwrap(),
            Value::Float8(3.0)
        );
        assert_eq!(Type::Date.coerce(Value::Null, "d").unwrap(), Value::Null);
    }

    #[test]
    fn numerics_are_canonical() {
        for (input, want) in [
            ("0", "0"),
            ("-0.000", "0"),
            ("+007.250", "7.25"),
            ("-12.5", "-12.5"),
            (".5", "0.5"),
            ("5.", "5"),
            (
                "123456789012345678901234567890.000000000000000000001",
                "123456789012345678901234567890.000000000000000000001",
            ),
        ] {
            assert_eq!(canonical_numeric(input).unwrap(), want, "{input}");
        }
        for bad in ["", ".", "-", "1e5", "1.2.3", "abc", "1 "] {
            assert!(canonical_numeric(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_equality_matches_key_hashing() {
        let pairs = [
            (Type::Float8, Value::Float8(0.0), Value::Float8(-0.0)),
            (
                Type::Float8,
                Value::Float8(f64::NAN),
                Value::Float8(-f64::NAN),
            ),
            (
                Type::Char(5),
                Value::Text("ab".into()),
                Value::Text("ab   ".into()),
            ),
            (Type::Int8, Value::Int2(9), Value::Int8(9)),
            (Type::Int4, Value::Null, Value::Null),
        ];
        for (ty, a, b) in pairs {
            assert!(a.key_eq(&b), "{a:?} {b:?}");
            let (mut ha, mut hb) = (KeyHasher::new(), KeyHasher::new());
            a.hash_into(ty, &mut ha);
            b.hash_into(ty, &mut hb);
            assert_eq!(ha.finish(), hb.finish(), "{a:?} {b:?}");
        }
        assert!(!Value::Text("a".into()).key_eq(&Value::Text("b".into())));
        assert!(!Value::Int4(1).key_eq(&Value::Null));
    }
}
