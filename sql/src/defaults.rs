//! Column DEFAULTs: checked and stored as SQL text at CREATE TABLE (the engine keeps the
//! text in its catalog), evaluated once per statement for the rows that leave the column
//! out or name it with the `DEFAULT` keyword.

use crate::dml::assign;
use crate::error::{SqlError, SqlResult};
use crate::expr::{Compiler, Ctx, Scope};
use segexpand_engine::{TableDef, Type, Value};
use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// A scope with no columns: a default may not refer to any.
fn no_columns() -> Scope {
    Scope::default()
}

/// Checks a column's DEFAULT at CREATE TABLE: it must compile without columns and give
/// a value of the column's type. Returns the text to store.
pub(crate) fn check(e: &ast::Expr, column: &str, ty: Type) -> SqlResult<String> {
    let compiled = Compiler::new(&no_columns()).compile(e).map_err(|err| {
        SqlError::new(
            if err.sqlstate == "42703" {
                "0A000"
            } else {
                err.sqlstate
            },
            format!("DEFAULT of column \"{column}\": {}", err.message),
        )
    })?;
    let v = compiled.eval(&Ctx::default())?;
    assign(v, ty)?;
    Ok(e.to_string())
}

/// The stored DEFAULT texts of `def`, evaluated: one value per column (NULL where the
/// column has none).
pub(crate) fn row(def: &TableDef, ctx: &Ctx<'_>) -> SqlResult<Vec<Value>> {
    def.columns
        .iter()
        .map(|c| match &c.default {
            None => Ok(Value::Null),
            Some(text) => {
                let e = Parser::new(&PostgreSqlDialect {})
                    .try_with_sql(text)
                    .and_then(|mut p| p.parse_expr())
                    .map_err(|e| {
                        SqlError::new(
                            "XX000",
                            format!(
                                "stored DEFAULT of column \"{}\" does not parse: {e}",
                                c.name
                            ),
                        )
                    })?;
                let ctx = Ctx {
                    session: ctx.session,
                    ..Ctx::default()
                };
                let v = Compiler::new(&no_columns()).compile(&e)?.eval(&ctx)?;
                assign(v, c.ty)
            }
        })
        .collect()
}

/// Whether `e` is the `DEFAULT` keyword in a VALUES list.
pub(crate) fn is_keyword(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}
