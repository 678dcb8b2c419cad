//! A table's declaration ([`TableSpec`]: columns, NOT NULL, distribution) and the
//! coercion of a row to its columns' types.

use super::Row;

use crate::catalog::hash::Placement;
use crate::catalog::types::{Type, Value};
use crate::catalog::{Column, TableDef};
use crate::error::{Error, Result};

/// How to create a table.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub(super) name: String,
    pub(super) columns: Vec<Column>,
    pub(super) key: Option<Vec<String>>,
    pub(super) placement: Placement,
    pub(super) segments: Option<u16>,
    /// PRIMARY KEY / UNIQUE constraints: (name, columns, primary).
    pub(super) unique: Vec<(Option<String>, Vec<String>, bool)>,
}

impl TableSpec {
    /// A table called `name`, with no columns yet.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            columns: Vec::new(),
            key: None,
            placement: Placement::Jump,
            segments: None,
            unique: Vec::new(),
        }
    }

    /// Adds a nullable column.
    pub fn column(mut self, name: &str, ty: Type) -> Self {
        self.columns.push(Column {
            name: name.to_string(),
            ty,
            not_null: false,
            default: None,
        });
        self
    }

    /// Adds a NOT NULL column.
    pub fn not_null(mut self, name: &str, ty: Type) -> Self {
        self.columns.push(Column {
            name: name.to_string(),
            ty,
            not_null: true,
            default: None,
        });
        self
    }

    /// Gives the column called `column` (added before) a DEFAULT expression, as SQL
    /// text: stored in the catalog for the SQL layer, which evaluates it. Ignored if no
    /// such column was added.
    pub fn default(mut self, column: &str, expr: &str) -> Self {
        if let Some(c) = self.columns.iter_mut().find(|c| c.name == column) {
            c.default = Some(expr.to_string());
        }
        self
    }

    /// `PRIMARY KEY (columns)`, named `name` or `<table>_pkey`; its columns become NOT
    /// NULL. It must contain the distribution key.
    pub fn primary_key(mut self, name: Option<&str>, columns: &[&str]) -> Self {
        self.unique.push((
            name.map(str::to_string),
            columns.iter().map(|c| c.to_string()).collect(),
            true,
        ));
        self
    }

    /// `UNIQUE (columns)`, named `name` or `<table>_<columns>_key`. It must contain the
    /// distribution key.
    pub fn unique(mut self, name: Option<&str>, columns: &[&str]) -> Self {
        self.unique.push((
            name.map(str::to_string),
            columns.iter().map(|c| c.to_string()).collect(),
            false,
        ));
        self
    }

    /// `DISTRIBUTED BY (columns)`. Without this or [`TableSpec::distributed_randomly`],
    /// the first column is the key (Greenplum's default).
    pub fn distributed_by(mut self, columns: &[&str]) -> Self {
        self.key = Some(columns.iter().map(|c| c.to_string()).collect());
        self
    }

    /// `DISTRIBUTED RANDOMLY`: rows are spread round-robin and there is no key lookup.
    pub fn distributed_randomly(mut self) -> Self {
        self.key = Some(Vec::new());
        self
    }

    /// Key-to-segment placement (jump consistent hash unless set).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// Spread over the first `n` segments instead of all of them.
    pub fn segments(mut self, n: u16) -> Self {
        self.segments = Some(n);
        self
    }
}

/// Checks and converts a row for `def`: one value per column, each of the column's type
/// (NOT NULL honoured).
pub(super) fn coerce_row(def: &TableDef, row: Row) -> Result<Row> {
    if row.len() != def.columns.len() {
        return Err(Error::ColumnCount {
            table: def.name.clone(),
            expected: def.columns.len(),
            got: row.len(),
        });
    }
    row.into_iter()
        .zip(&def.columns)
        .map(|(v, c)| {
            let v = c.ty.coerce(v, &c.name)?;
            if c.not_null && v == Value::Null {
                return Err(Error::NotNullViolation {
                    table: def.name.clone(),
                    column: c.name.clone(),
                });
            }
            Ok(v)
        })
        .collect()
}
