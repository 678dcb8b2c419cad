//! INSERT, UPDATE and DELETE. A WHERE clause that pins every distribution-key column to
//! a constant or a parameter (and nothing else) goes straight to the key's segment
//! (direct dispatch); any other WHERE reads every segment.

use crate::error::{SqlError, SqlResult};
use crate::expr::{ident, object_name, CmpOp, Compiler, Ctx, Expr, Scope};
use crate::schema::{self, Missing, RelName};
use crate::value::cast;
use crate::{Output, Session};
use segexpand_engine::{TableDef, Txn, Type, Value};
use sqlparser::ast::{self as ast, Statement};
use std::cell::RefCell;

/// The scope of table `def` (named `alias` too, if given): `col`, `t.col` and
/// `s.t.col`.
pub(crate) fn table_scope(def: &TableDef, alias: Option<String>) -> Scope {
    let (schema, bare) = schema::split_engine(&def.name);
    let mut names = vec![bare.to_string()];
    names.extend(alias);
    Scope {
        names,
        schema: Some(schema.to_string()),
        columns: def.columns.iter().map(|c| (c.name.clone(), c.ty)).collect(),
        segment_id: true,
    }
}

/// The definition of the engine's table `name`, or 42P01.
pub(crate) fn table_def(s: &Session, name: &str) -> SqlResult<TableDef> {
    s.node
        .table_def(name)
        .map_err(|_| SqlError::undefined_table(name))
}

/// The definition of the user table a DML statement names (42P01 if there is none,
/// also when its schema is missing, as in PostgreSQL).
fn target_def(s: &Session, r: &RelName) -> SqlResult<TableDef> {
    schema::table_def(s, r, Missing::Relation)
}

/// A value for a column of type `ty`: untyped text is parsed as that type, numbers of
/// another class are converted; the engine checks ranges and lengths.
pub(crate) fn assign(v: Value, ty: Type) -> SqlResult<Value> {
    match (&v, ty) {
        (Value::Null, _) => Ok(v),
        (Value::Text(_), Type::Text | Type::Varchar(_) | Type::Char(_)) => Ok(v),
        (Value::Text(_) | Value::Float8(_) | Value::Numeric(_), _) => cast(v, ty),
        (
            Value::Int2(_) | Value::Int4(_) | Value::Int8(_),
            Type::Text | Type::Varchar(_) | Type::Char(_),
        ) => cast(v, ty),
        _ => Ok(v),
    }
}

/// The conjuncts of a WHERE clause.
fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::And(a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        other => out.push(other.clone()),
    }
}

fn is_const(e: &Expr) -> bool {
    match e {
        Expr::Const(_) | Expr::Unknown(_) | Expr::Param(_) => true,
        Expr::Cast(x, _) | Expr::Neg(x) => is_const(x),
        Expr::Arith(_, a, b) => is_const(a) && is_const(b),
        _ => false,
    }
}

/// If `where_` pins every key column of `def` to a constant, the key values and whether
/// the clause is nothing but those equalities.
pub(crate) fn key_of(
    def: &TableDef,
    where_: Option<&Expr>,
    params: &[Value],
) -> Option<(Vec<Value>, bool)> {
    let w = where_?;
    if def.layout.is_random() {
        return None;
    }
    // The engine reads the table's definition again when the statement starts, and
    // takes the key values as the key of *that* definition. While a redistribution
    // changes the key, its flip can fall between the two reads, and the values would
    // then be taken for the new key's (a `WHERE tid = 6` looking up `bid = 6`: the
    // teller updates pgbench lost). So a table whose key is changing is read by scan.
    if def.target().is_some_and(|t| t.key != def.layout.key) {
        return None;
    }
    let mut cs = Vec::new();
    conjuncts(w, &mut cs);
    let mut key = Vec::new();
    let mut used = 0;
    for &k in &def.layout.key {
        let k = usize::from(k);
        let ty = def.columns.get(k)?.ty;
        let found = cs.iter().find_map(|c| match c {
            Expr::Cmp(CmpOp::Eq, a, b) => match (&**a, &**b) {
                (Expr::Column(i), e) | (e, Expr::Column(i)) if *i == k && is_const(e) => {
                    Some(e.clone())
                }
                _ => None,
            },
            _ => None,
        })?;
        let ctx = Ctx {
            params,
            ..Ctx::default()
        };
        // A value that does not fit the column (say 2^40 for an int4 key) matches no
        // row; the scan path compares it exactly, so leave it to that.
        let v = found.eval(&ctx).ok()?;
        let v = assign(v, ty).ok()?;
        let v = ty.coerce(v, "").ok()?;
        if matches!(v, Value::Null) {
            return None;
        }
        key.push(v);
        used += 1;
    }
    Some((key, used == cs.len()))
}

/// Parameter types of an INSERT, UPDATE or DELETE, from the columns they meet.
pub(crate) fn param_types(s: &mut Session, stmt: &Statement) -> SqlResult<Vec<Type>> {
    let mut out: Vec<Option<Type>> = Vec::new();
    let mut n = 0;
    match stmt {
        Statement::Insert(ins) => {
            let (def, cols) = insert_target(s, ins)?;
            let scope = table_scope(&def, None);
            let rows = insert_rows(ins)?;
            for row in rows {
                for (j, e) in row.iter().enumerate() {
                    let mut c = Compiler::new(&scope);
                    let x = c.compile(e)?;
                    n = n.max(c.params);
                    let ty = cols.get(j).and_then(|&i| def.columns.get(i)).map(|c| c.ty);
                    if let (Expr::Param(p), Some(ty)) = (&x, ty) {
                        if out.len() <= *p {
                            out.resize(p + 1, None);
                        }
                        if let Some(slot) = out.get_mut(*p) {
                            slot.get_or_insert(ty);
                        }
                    }
                    x.infer_params(&scope.columns, &mut out);
                }
            }
        }
        Statement::Update(u) => {
            let def = target_def(s, &relation_name(&u.table)?)?;
            let scope = table_scope(&def, None);
            for a in &u.assignments {
                let col = assignment_column(&def, a)?;
                let mut c = Compiler::new(&scope);
                let x = c.compile(&a.value)?;
                n = n.max(c.params);
                Expr::Cmp(CmpOp::Eq, Box::new(Expr::Column(col)), Box::new(x))
                    .infer_params(&scope.columns, &mut out);
            }
            if let Some(w) = &u.selection {
                let mut c = Compiler::new(&scope);
                c.compile(w)?.infer_params(&scope.columns, &mut out);
                n = n.max(c.params);
            }
        }
        Statement::Delete(d) => {
            let def = target_def(s, &delete_table(d)?)?;
            let scope = table_scope(&def, None);
            if let Some(w) = &d.selection {
                let mut c = Compiler::new(&scope);
                c.compile(w)?.infer_params(&scope.columns, &mut out);
                n = n.max(c.params);
            }
        }
        _ => {}
    }
    out.resize(n.max(out.len()), None);
    Ok(out.into_iter().map(|t| t.unwrap_or(Type::Text)).collect())
}

fn relation_name(t: &ast::TableWithJoins) -> SqlResult<RelName> {
    if !t.joins.is_empty() {
        return Err(SqlError::unsupported(
            "joins in UPDATE/DELETE are not supported",
        ));
    }
    match &t.relation {
        ast::TableFactor::Table { name, .. } => RelName::of(name),
        _ => Err(SqlError::unsupported(
            "UPDATE/DELETE of something other than a table",
        )),
    }
}

fn delete_table(d: &ast::Delete) -> SqlResult<RelName> {
    let (ast::FromTable::WithFromKeyword(ts) | ast::FromTable::WithoutKeyword(ts)) = &d.from;
    match ts.as_slice() {
        [t] => relation_name(t),
        _ => Err(SqlError::unsupported("DELETE from several tables")),
    }
}

fn assignment_column(def: &TableDef, a: &ast::Assignment) -> SqlResult<usize> {
    let ast::AssignmentTarget::ColumnName(n) = &a.target else {
        return Err(SqlError::unsupported("tuple assignment"));
    };
    let name = object_name(n);
    def.column_index(&name)
        .ok_or_else(|| SqlError::undefined_column(&name))
}

fn insert_target(s: &Session, ins: &ast::Insert) -> SqlResult<(TableDef, Vec<usize>)> {
    let ast::TableObject::TableName(name) = &ins.table else {
        return Err(SqlError::unsupported("INSERT into a table function"));
    };
    let def = target_def(s, &RelName::of(name)?)?;
    let cols: Vec<usize> = if ins.columns.is_empty() {
        (0..def.columns.len()).collect()
    } else {
        ins.columns
            .iter()
            .map(|c| {
                let n = object_name(c);
                def.column_index(&n)
                    .ok_or_else(|| SqlError::undefined_column(&n))
            })
            .collect::<SqlResult<_>>()?
    };
    Ok((def, cols))
}

fn insert_rows(ins: &ast::Insert) -> SqlResult<&[sqlparser::ast::Parens<Vec<ast::Expr>>]> {
    let Some(q) = &ins.source else {
        return Err(SqlError::unsupported("INSERT without VALUES"));
    };
    match &*q.body {
        ast::SetExpr::Values(v) => Ok(&v.rows),
        _ => Err(SqlError::unsupported(
            "INSERT … SELECT is not supported yet",
        )),
    }
}

/// Runs INSERT, UPDATE or DELETE in `tx`.
pub(crate) fn run(
    s: &mut Session,
    tx: &mut Txn,
    stmt: &Statement,
    params: &[Value],
) -> SqlResult<Output> {
    match stmt {
        Statement::Insert(ins) => insert(s, tx, ins, params),
        Statement::Update(u) => update(s, tx, u, params),
        Statement::Delete(d) => delete(s, tx, d, params),
        _ => Err(SqlError::unsupported("statement")),
    }
}

fn insert(s: &mut Session, tx: &mut Txn, ins: &ast::Insert, params: &[Value]) -> SqlResult<Output> {
    if ins.returning.is_some() || ins.on.is_some() {
        return Err(SqlError::unsupported("INSERT … RETURNING / ON CONFLICT"));
    }
    let (def, cols) = insert_target(s, ins)?;
    let scope = table_scope(&def, None);
    let handle = s.node.table(&def.name)?;
    let rows = insert_rows(ins)?;
    let ctx = Ctx {
        params,
        session: Some(&s.info),
        ..Ctx::default()
    };
    let defaults = crate::defaults::row(&def, &ctx)?;
    let mut n = 0u64;
    for r in rows {
        // Without a column list, a shorter row fills the leading columns (PostgreSQL).
        let cols = if ins.columns.is_empty() && r.content.len() < cols.len() {
            cols.get(..r.content.len()).unwrap_or(&cols)
        } else {
            cols.as_slice()
        };
        if r.content.len() != cols.len() {
            return Err(SqlError::syntax(if r.content.len() > cols.len() {
                "INSERT has more expressions than target columns"
            } else {
                "INSERT has more target columns than expressions"
            }));
        }
        let mut row = defaults.clone();
        for (e, &i) in r.content.iter().zip(cols) {
            if crate::defaults::is_keyword(e) {
                continue;
            }
            let v = Compiler::new(&scope).compile(e)?.eval(&ctx)?;
            let ty = def.columns.get(i).map_or(Type::Text, |c| c.ty);
            if let Some(slot) = row.get_mut(i) {
                *slot = assign(v, ty)?;
            }
        }
        tx.insert(&handle, row)?;
        n += 1;
    }
    Ok(Output::Command(format!("INSERT 0 {n}")))
}

fn update(s: &mut Session, tx: &mut Txn, u: &ast::Update, params: &[Value]) -> SqlResult<Output> {
    if u.from.is_some() || u.returning.is_some() {
        return Err(SqlError::unsupported("UPDATE … FROM / RETURNING"));
    }
    let alias = match &u.table.relation {
        ast::TableFactor::Table { alias, .. } => alias.as_ref().map(|a| ident(&a.name)),
        _ => None,
    };
    let def = target_def(s, &relation_name(&u.table)?)?;
    let scope = table_scope(&def, alias);
    let handle = s.node.table(&def.name)?;
    let mut sets = Vec::new();
    for a in &u.assignments {
        let col = assignment_column(&def, a)?;
        let ty = def.columns.get(col).map_or(Type::Text, |c| c.ty);
        sets.push((col, ty, Compiler::new(&scope).compile(&a.value)?));
    }
    let where_ = u
        .selection
        .as_ref()
        .map(|w| Compiler::new(&scope).compile(w))
        .transpose()?;
    let failed: RefCell<Option<SqlError>> = RefCell::new(None);
    let info = s.info.clone();
    let f = |old: &[Value]| -> Vec<Value> {
        let ctx = Ctx {
            row: old,
            params,
            session: Some(&info),
            ..Ctx::default()
        };
        let mut new = old.to_vec();
        for (col, ty, e) in &sets {
            match e.eval(&ctx).and_then(|v| assign(v, *ty)) {
                Ok(v) => {
                    if let Some(slot) = new.get_mut(*col) {
                        *slot = v;
                    }
                }
                Err(err) => {
                    failed.borrow_mut().get_or_insert(err);
                }
            }
        }
        new
    };
    let n = match key_of(&def, where_.as_ref(), params) {
        Some((key, true)) => tx.update(&handle, &key, f)?,
        _ => {
            let pred = predicate(where_.as_ref(), params, &failed);
            tx.update_where(&handle, &pred, f)?
        }
    };
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    Ok(Output::Command(format!("UPDATE {n}")))
}

/// A WHERE clause as the engine's row predicate; an evaluation error is kept in
/// `failed` (and the row counts as not matching).
fn predicate<'a>(
    where_: Option<&'a Expr>,
    params: &'a [Value],
    failed: &'a RefCell<Option<SqlError>>,
) -> impl Fn(&[Value]) -> bool + 'a {
    move |row: &[Value]| match where_ {
        None => true,
        Some(w) => {
            let ctx = Ctx {
                row,
                params,
                ..Ctx::default()
            };
            match w.passes(&ctx) {
                Ok(b) => b,
                Err(e) => {
                    failed.borrow_mut().get_or_insert(e);
                    false
                }
            }
        }
    }
}

fn delete(s: &mut Session, tx: &mut Txn, d: &ast::Delete, params: &[Value]) -> SqlResult<Output> {
    if d.using.is_some() || d.returning.is_some() {
        return Err(SqlError::unsupported("DELETE … USING / RETURNING"));
    }
    let def = target_def(s, &delete_table(d)?)?;
    let scope = table_scope(&def, None);
    let handle = s.node.table(&def.name)?;
    let where_ = d
        .selection
        .as_ref()
        .map(|w| Compiler::new(&scope).compile(w))
        .transpose()?;
    let failed: RefCell<Option<SqlError>> = RefCell::new(None);
    let n = match key_of(&def, where_.as_ref(), params) {
        Some((key, true)) => tx.delete(&handle, &key)?,
        _ => {
            let pred = predicate(where_.as_ref(), params, &failed);
            tx.delete_where(&handle, &pred)?
        }
    };
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    Ok(Output::Command(format!("DELETE {n}")))
}
