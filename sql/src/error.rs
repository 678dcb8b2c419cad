//! SQL errors: a SQLSTATE, a message, and optionally a detail and a hint — what a
//! PostgreSQL-protocol server puts in an ErrorResponse. Engine errors map through their
//! own SQLSTATE (`docs/errors.md`).

use segexpand_engine::{Type, Value};

/// An error of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// The PostgreSQL SQLSTATE.
    pub sqlstate: &'static str,
    /// The primary message.
    pub message: String,
    /// Optional detail.
    pub detail: Option<String>,
    /// Optional hint.
    pub hint: Option<String>,
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.sqlstate)
    }
}

impl std::error::Error for SqlError {}

impl From<segexpand_engine::Error> for SqlError {
    fn from(e: segexpand_engine::Error) -> Self {
        match e {
            // PostgreSQL's wording, with the key in the detail.
            segexpand_engine::Error::UniqueViolation {
                constraint,
                columns,
                values,
            } => SqlError {
                detail: Some(format!("Key ({columns})=({values}) already exists.")),
                ..SqlError::new(
                    "23505",
                    format!("duplicate key value violates unique constraint \"{constraint}\""),
                )
            },
            segexpand_engine::Error::Canceled(_) => SqlError::canceled(),
            e => SqlError::new(e.sqlstate(), e.to_string()),
        }
    }
}

impl SqlError {
    /// An error with `sqlstate` and `message`.
    pub fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        SqlError {
            sqlstate,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// 42601: the statement does not parse.
    pub fn syntax(message: impl Into<String>) -> Self {
        SqlError::new("42601", message)
    }

    /// 0A000: valid SQL this server does not do.
    pub fn unsupported(what: impl Into<String>) -> Self {
        SqlError::new("0A000", what)
    }

    /// 57014: a cancel request stopped the statement.
    pub fn canceled() -> Self {
        SqlError::new("57014", "canceling statement due to user request")
    }

    /// 42P01.
    pub fn undefined_table(name: &str) -> Self {
        SqlError::new("42P01", format!("relation \"{name}\" does not exist"))
    }

    /// 42703.
    pub fn undefined_column(name: &str) -> Self {
        SqlError::new("42703", format!("column \"{name}\" does not exist"))
    }

    /// 22P02.
    pub fn invalid_text(ty: Type, input: &str) -> Self {
        SqlError::new(
            "22P02",
            format!(
                "invalid input syntax for type {}: \"{input}\"",
                crate::value::type_name(ty)
            ),
        )
    }

    /// 22003.
    pub fn out_of_range(ty: Type) -> Self {
        let what = match ty {
            Type::Int2 => "smallint out of range".to_string(),
            Type::Int4 => "integer out of range".to_string(),
            Type::Int8 => "bigint out of range".to_string(),
            _ => format!(
                "value out of range for type {}",
                crate::value::type_name(ty)
            ),
        };
        SqlError::new("22003", what)
    }

    /// 22012.
    pub fn division_by_zero() -> Self {
        SqlError::new("22012", "division by zero")
    }

    /// 42883.
    pub fn undefined_operator(a: &Value, op: char, b: &Value) -> Self {
        SqlError::new(
            "42883",
            format!(
                "operator does not exist: {} {op} {}",
                crate::value::type_name(crate::value::type_of_value(a)),
                crate::value::type_name(crate::value::type_of_value(b))
            ),
        )
    }

    /// 42846.
    pub fn cannot_cast(v: &Value, ty: Type) -> Self {
        SqlError::new(
            "42846",
            format!(
                "cannot cast type {} to {}",
                crate::value::type_name(crate::value::type_of_value(v)),
                crate::value::type_name(ty)
            ),
        )
    }

    /// 25P02.
    pub fn in_failed_transaction() -> Self {
        SqlError::new(
            "25P02",
            "current transaction is aborted, commands ignored until end of transaction block",
        )
    }
}

/// Result of the SQL layer.
pub type SqlResult<T> = Result<T, SqlError>;
