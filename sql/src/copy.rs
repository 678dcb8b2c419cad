//! COPY in PostgreSQL's text format: `COPY t [(cols)] FROM STDIN` (the rows arrive
//! afterwards, through [`Session::copy_in`], and go in as one statement) and `COPY t
//! [(cols)] TO STDOUT`. Fields are tab-separated, `\N` is NULL, and backslash escapes
//! (`\t`, `\n`, `\\`, …) are decoded.

use crate::dml::{assign, table_def};
use crate::error::{SqlError, SqlResult};
use crate::schema::{self, Missing, RelName};
use crate::value::to_text;
use crate::{Output, Session};
use segexpand_engine::{ScanOptions, Txn, Type, Value};

/// Starts a COPY: FROM STDIN answers [`Output::CopyIn`] (naming the engine's table);
/// TO STDOUT returns the data.
pub(crate) fn start(
    s: &mut Session,
    table: &RelName,
    columns: &[String],
    to: bool,
) -> SqlResult<Output> {
    let table = schema::table(s, table, Missing::SchemaFirst)?.engine;
    let (table, cols) = columns_of(s, &table, columns)?;
    if !to {
        return Ok(Output::CopyIn {
            table,
            columns: cols,
        });
    }
    let cols2 = cols.clone();
    let lines = s.in_txn(move |tx, s| copy_out(s, tx, &table, &cols2))?;
    Ok(Output::CopyOut {
        columns: cols.len(),
        lines,
    })
}

fn columns_of(s: &Session, table: &str, columns: &[String]) -> SqlResult<(String, Vec<usize>)> {
    let table = table.to_string();
    let def = table_def(s, &table)?;
    let cols = if columns.is_empty() {
        (0..def.columns.len()).collect()
    } else {
        columns
            .iter()
            .map(|n| {
                def.column_index(n)
                    .ok_or_else(|| SqlError::undefined_column(n))
            })
            .collect::<SqlResult<Vec<_>>>()?
    };
    Ok((table, cols))
}

fn copy_out(s: &Session, tx: &mut Txn, table: &str, cols: &[usize]) -> SqlResult<Vec<String>> {
    let handle = s.node.table(table)?;
    let opts = ScanOptions {
        columns: Some(cols.to_vec()),
        ..ScanOptions::default()
    };
    let mut cur = tx.scan_cursor(&handle, opts)?;
    let mut lines = Vec::new();
    while let Some(batch) = cur.next_batch()? {
        for row in batch {
            let fields: Vec<String> = row
                .iter()
                .map(|v| match to_text(v) {
                    None => "\\N".to_string(),
                    Some(t) => escape(&t),
                })
                .collect();
            lines.push(format!("{}\n", fields.join("\t")));
        }
    }
    Ok(lines)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(field: &str) -> Option<String> {
    if field == "\\N" {
        return None;
    }
    if !field.contains('\\') {
        return Some(field.to_string());
    }
    let mut out = String::with_capacity(field.len());
    let mut it = field.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(out)
}

impl Session {
    /// The client abandoned a COPY FROM STDIN (CopyFail, or it went away): the
    /// statement failed, and with it an open block.
    pub fn copy_failed(&mut self) {
        if self.status == crate::TxnStatus::InBlock {
            self.status = crate::TxnStatus::Failed;
        }
    }

    /// Loads the text-format `data` of a `COPY table (columns) FROM STDIN` as one
    /// statement (in the open block, or committed on its own). A line `\.` ends the
    /// data. Returns the `COPY n` output.
    pub fn copy_in(&mut self, table: &str, columns: &[usize], data: &[u8]) -> SqlResult<Output> {
        if self.status == crate::TxnStatus::Failed {
            return Err(SqlError::in_failed_transaction());
        }
        let text = std::str::from_utf8(data)
            .map_err(|_| SqlError::new("22021", "invalid byte sequence for encoding \"UTF8\""))?;
        let def = table_def(self, table)?;
        let types: Vec<Type> = def.columns.iter().map(|c| c.ty).collect();
        let defaults = crate::defaults::row(
            &def,
            &crate::expr::Ctx {
                session: Some(&self.info),
                ..Default::default()
            },
        )?;
        let mut rows = Vec::new();
        for (lineno, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line == "\\." {
                break;
            }
            if line.is_empty() && lineno + 1 == text.split('\n').count() {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() != columns.len() {
                return Err(SqlError::new(
                    "22P04",
                    format!(
                        "{} data for line {}: expected {} columns, got {}",
                        if fields.len() < columns.len() {
                            "missing"
                        } else {
                            "extra"
                        },
                        lineno + 1,
                        columns.len(),
                        fields.len()
                    ),
                ));
            }
            let mut row = defaults.clone();
            for (f, &c) in fields.iter().zip(columns) {
                let ty = types.get(c).copied().unwrap_or(Type::Text);
                let v = match unescape(f) {
                    None => Value::Null,
                    Some(t) => assign(Value::Text(t), ty)?,
                };
                if let Some(slot) = row.get_mut(c) {
                    *slot = v;
                }
            }
            rows.push(row);
        }
        let table = table.to_string();
        let n = rows.len();
        self.in_txn(move |tx, s| {
            let handle = s.node.table(&table)?;
            tx.insert_many(&handle, rows)?;
            Ok(())
        })?;
        Ok(Output::Command(format!("COPY {n}")))
    }
}
