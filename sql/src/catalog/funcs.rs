//! The functions psql's catalog queries call (`format_type`, `pg_get_userbyid`,
//! `pg_table_is_visible`, `pg_get_indexdef`, …), the array functions they use
//! (`array_to_string`, `array_upper`, `array_position`), and casts to `regclass`,
//! `regtype` and `regnamespace`.

use super::tables::type_name;
use super::{Catalog, ROLE_OID};
use crate::array;
use crate::error::{SqlError, SqlResult};
use crate::expr::{Ctx, RegKind};
use crate::schema::{self, quote_ident, RelName};
use crate::value::to_text;
use segexpand_engine::{Type, Value};

/// A catalog or array function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatFunc {
    /// `pg_table_is_visible(oid)`: those of `public` and `pg_catalog` are (the search
    /// path); those of other schemas are not.
    TableIsVisible,
    /// `pg_get_userbyid(oid)`.
    UserById,
    /// `format_type(type oid, typmod)`.
    FormatType,
    /// `pg_get_expr(text, relation[, pretty])`: the stored text itself.
    GetExpr,
    /// `pg_get_indexdef(oid, …)`.
    IndexDef,
    /// `pg_get_constraintdef(oid, …)`.
    ConstraintDef,
    /// `obj_description`, `col_description`, `shobj_description`, `pg_get_triggerdef`,
    /// `pg_get_statisticsobjdef_columns`, `pg_get_partkeydef`, `pg_get_viewdef`: none.
    NoText,
    /// `pg_encoding_to_char(int)`.
    EncodingToChar,
    /// `array_to_string(array, separator[, null text])`.
    ArrayToString,
    /// `array_upper(array, 1)` / `array_length(array, 1)`.
    ArrayUpper,
    /// `array_position(array, value)`.
    ArrayPosition,
    /// `current_schemas(implicit)`.
    CurrentSchemas,
    /// `pg_relation_size`, `pg_table_size`, `pg_total_relation_size`,
    /// `pg_indexes_size`: 0 (not measured).
    RelationSize,
    /// `pg_size_pretty(bytes)`.
    SizePretty,
    /// `has_table_privilege` and friends, `pg_relation_is_publishable`: true.
    True,
    /// `pg_is_in_recovery()`: false.
    False,
    /// `set_config(name, value, local)`: the value.
    SetConfig,
    /// `quote_ident(text)`.
    QuoteIdent,
}

impl CatFunc {
    /// The function called `name`, if it is one of these.
    pub fn named(name: &str) -> Option<CatFunc> {
        Some(match name {
            "pg_table_is_visible" => CatFunc::TableIsVisible,
            "pg_get_userbyid" => CatFunc::UserById,
            "format_type" => CatFunc::FormatType,
            "pg_get_expr" => CatFunc::GetExpr,
            "pg_get_indexdef" => CatFunc::IndexDef,
            "pg_get_constraintdef" => CatFunc::ConstraintDef,
            "obj_description"
            | "col_description"
            | "shobj_description"
            | "pg_get_triggerdef"
            | "pg_get_statisticsobjdef_columns"
            | "pg_get_partkeydef"
            | "pg_get_viewdef"
            | "pg_tablespace_location" => CatFunc::NoText,
            "pg_encoding_to_char" => CatFunc::EncodingToChar,
            "array_to_string" => CatFunc::ArrayToString,
            "array_upper" | "array_length" => CatFunc::ArrayUpper,
            "array_position" => CatFunc::ArrayPosition,
            "current_schemas" => CatFunc::CurrentSchemas,
            "pg_relation_size" | "pg_table_size" | "pg_total_relation_size" | "pg_indexes_size" => {
                CatFunc::RelationSize
            }
            "pg_size_pretty" => CatFunc::SizePretty,
            "has_table_privilege"
            | "has_schema_privilege"
            | "has_database_privilege"
            | "has_column_privilege"
            | "pg_has_role"
            | "pg_relation_is_publishable" => CatFunc::True,
            "pg_is_in_recovery" => CatFunc::False,
            "set_config" => CatFunc::SetConfig,
            "quote_ident" => CatFunc::QuoteIdent,
            _ => return None,
        })
    }

    /// The result type.
    pub fn ty(self) -> Type {
        match self {
            CatFunc::TableIsVisible | CatFunc::True | CatFunc::False => Type::Bool,
            CatFunc::ArrayUpper | CatFunc::ArrayPosition => Type::Int4,
            CatFunc::RelationSize => Type::Int8,
            _ => Type::Text,
        }
    }
}

fn arg(vals: &[Value], i: usize) -> &Value {
    vals.get(i).unwrap_or(&Value::Null)
}

fn oid_arg(vals: &[Value], i: usize) -> Option<i64> {
    match arg(vals, i) {
        Value::Text(s) => s.trim().parse().ok(),
        v => v.as_int(),
    }
}

/// Evaluates `f` on `vals`.
pub(crate) fn eval_func(f: CatFunc, vals: &[Value], ctx: &Ctx<'_>) -> SqlResult<Value> {
    let text = |i: usize| to_text(arg(vals, i));
    let null_in = matches!(arg(vals, 0), Value::Null);
    Ok(match f {
        CatFunc::NoText => Value::Null,
        CatFunc::True => Value::Bool(true),
        CatFunc::False => Value::Bool(false),
        _ if null_in && !matches!(f, CatFunc::CurrentSchemas | CatFunc::SetConfig) => Value::Null,
        CatFunc::TableIsVisible => Value::Bool(
            oid_arg(vals, 0)
                .and_then(|o| ctx.env().ok()?.catalog().rel_visible(o))
                .unwrap_or(true),
        ),
        CatFunc::UserById => match oid_arg(vals, 0) {
            Some(ROLE_OID) => Value::Text(ctx.env()?.catalog().user.clone()),
            Some(o) => Value::Text(format!("unknown (OID={o})")),
            None => Value::Null,
        },
        CatFunc::FormatType => {
            let typmod = match arg(vals, 1) {
                Value::Null => -1,
                v => v.as_int().unwrap_or(-1),
            };
            oid_arg(vals, 0).map_or(Value::Null, |o| Value::Text(format_type(o, typmod)))
        }
        CatFunc::GetExpr => arg(vals, 0).clone(),
        CatFunc::IndexDef | CatFunc::ConstraintDef => oid_arg(vals, 0)
            .and_then(|o| ctx.env().ok()?.catalog().definition(o))
            .map_or(Value::Null, Value::Text),
        CatFunc::EncodingToChar => Value::Text(
            match oid_arg(vals, 0) {
                Some(0) => "SQL_ASCII",
                Some(6) => "UTF8",
                _ => "",
            }
            .into(),
        ),
        CatFunc::ArrayToString => {
            let items = array::parse(&text(0).unwrap_or_default())?;
            let sep = text(1).unwrap_or_default();
            let null = text(2);
            let parts: Vec<String> = items
                .into_iter()
                .filter_map(|i| i.or_else(|| null.clone()))
                .collect();
            Value::Text(parts.join(&sep))
        }
        CatFunc::ArrayUpper => {
            let n = array::parse(&text(0).unwrap_or_default())?.len();
            if n == 0 {
                Value::Null
            } else {
                Value::Int4(i32::try_from(n).unwrap_or(i32::MAX))
            }
        }
        CatFunc::ArrayPosition => {
            let items = array::parse(&text(0).unwrap_or_default())?;
            let want = text(1);
            items
                .iter()
                .position(|i| i.is_some() && *i == want)
                .map_or(Value::Null, |p| {
                    Value::Int4(i32::try_from(p + 1).unwrap_or(i32::MAX))
                })
        }
        CatFunc::CurrentSchemas => Value::Text(
            if matches!(arg(vals, 0), Value::Bool(false)) {
                "{public}"
            } else {
                "{pg_catalog,public}"
            }
            .into(),
        ),
        CatFunc::RelationSize => Value::Int8(0),
        CatFunc::SizePretty => match arg(vals, 0).as_int() {
            Some(n) => Value::Text(size_pretty(n)),
            None => return Err(SqlError::unsupported("pg_size_pretty of a numeric")),
        },
        CatFunc::SetConfig => arg(vals, 1).clone(),
        CatFunc::QuoteIdent => Value::Text(quote_ident(&text(0).unwrap_or_default())),
    })
}

/// PostgreSQL's `pg_size_pretty`: bytes up to 10 kB, then kB, MB, GB, TB (halves
/// rounded away from zero).
fn size_pretty(n: i64) -> String {
    let mut v = n;
    for unit in ["bytes", "kB", "MB", "GB"] {
        if v.abs() < 10 * 1024 {
            return format!("{v} {unit}");
        }
        let half = v / 512;
        v = (half + half.signum()) / 2;
    }
    format!("{v} TB")
}

/// `format_type(oid, typmod)` as PostgreSQL prints it.
pub(crate) fn format_type(oid: i64, typmod: i64) -> String {
    let m = typmod - 4;
    let with_len = |base: &str| {
        if typmod >= 4 {
            format!("{base}({m})")
        } else {
            base.to_string()
        }
    };
    match oid {
        16 => "boolean".into(),
        18 => "\"char\"".into(),
        20 => "bigint".into(),
        21 => "smallint".into(),
        23 => "integer".into(),
        700 => "real".into(),
        701 => "double precision".into(),
        1009 => "text[]".into(),
        1042 => with_len("character"),
        1043 => with_len("character varying"),
        1114 => "timestamp without time zone".into(),
        1700 if typmod >= 4 => format!("numeric({},{})", (m >> 16) & 0xffff, m & 0xffff),
        o => type_name(o).map_or("???".into(), str::to_string),
    }
}

/// A value cast to a catalog type: an oid shows as its object's name (or its number
/// when there is none); a name becomes its object's oid.
pub(crate) fn reg_cast(v: Value, kind: RegKind, cat: &Catalog) -> SqlResult<Value> {
    let oid = match &v {
        Value::Null => return Ok(Value::Null),
        Value::Text(s) => match s.trim().parse::<i64>() {
            Ok(o) => return Ok(Value::Int8(o)),
            Err(_) => {
                let found = match kind {
                    RegKind::Class => {
                        let r = RelName::parse(s)?;
                        cat.rel_oid(&r)?
                            .ok_or_else(|| SqlError::undefined_table(&r.written()))?
                    }
                    RegKind::Namespace => {
                        let r = RelName::parse(s)?;
                        match (&r.schema, cat.namespace_oid(&r.name)) {
                            (None, Some(o)) => o,
                            (None, None) => return Err(schema::no_schema(&r.name)),
                            (Some(_), _) => {
                                return Err(SqlError::new("42601", "invalid name syntax"))
                            }
                        }
                    }
                    RegKind::Type => {
                        return Err(SqlError::new(
                            "42704",
                            format!("type \"{s}\" does not exist"),
                        ))
                    }
                };
                return Ok(Value::Int8(found));
            }
        },
        other => other.as_int().unwrap_or(0),
    };
    // A relation off the search path shows qualified (`gpexpand.status`).
    let name = match kind {
        RegKind::Class => cat.rel_name(oid).map(|(sch, n)| {
            if sch == schema::PUBLIC || sch == schema::PG_CATALOG {
                quote_ident(&n)
            } else {
                schema::qualified(&sch, &n)
            }
        }),
        RegKind::Type => Some(format_type(oid, -1)).filter(|n| n != "???"),
        RegKind::Namespace => cat.namespace_name(oid).map(quote_ident),
    };
    Ok(Value::Text(name.unwrap_or_else(|| oid.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_type_prints_as_postgres() {
        assert_eq!(format_type(23, -1), "integer");
        assert_eq!(format_type(1043, 14), "character varying(10)");
        assert_eq!(format_type(1042, 88), "character(84)");
        assert_eq!(format_type(1700, ((15 << 16) | 2) + 4), "numeric(15,2)");
        assert_eq!(format_type(1700, -1), "numeric");
        assert_eq!(format_type(1114, -1), "timestamp without time zone");
        assert_eq!(format_type(99_999, -1), "???");
    }

    #[test]
    fn size_pretty_rounds_as_postgres() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10_239), "10239 bytes");
        assert_eq!(size_pretty(10_240), "10 kB");
        assert_eq!(size_pretty(8_192 * 1_000_000), "7813 MB");
    }
}
