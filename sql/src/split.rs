//! Splitting a query string into statements, and the clauses `sqlparser` does not know:
//! Greenplum's `DISTRIBUTED BY (…)` / `RANDOMLY` / `REPLICATED` at the end of CREATE
//! TABLE, `ALTER TABLE t EXPAND TABLE`, `ALTER TABLE t SET DISTRIBUTED BY (…)`, and
//! PostgreSQL's `VACUUM` / `ANALYZE` forms. They are recognised on the token stream (so
//! quoted strings and identifiers are never mistaken for them), cut out, and the rest
//! goes to the parser.

use crate::error::{SqlError, SqlResult};
use crate::expr::ident;
use crate::schema::RelName;
use sqlparser::ast::Ident;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// A Greenplum distribution clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distribution {
    /// `DISTRIBUTED BY (cols)`.
    By(Vec<String>),
    /// `DISTRIBUTED RANDOMLY`.
    Randomly,
    /// `DISTRIBUTED REPLICATED`.
    Replicated,
}

/// One statement of a query string, after the special forms are taken out.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Plain SQL for the parser, with the CREATE TABLE's distribution clause if any.
    Sql {
        /// The text.
        text: String,
        /// A cut `DISTRIBUTED …` clause.
        distribution: Option<Distribution>,
    },
    /// `ALTER TABLE t EXPAND TABLE`.
    Expand(RelName),
    /// `ALTER TABLE t SET DISTRIBUTED BY (cols)` / `RANDOMLY`.
    SetDistributed(RelName, Distribution),
    /// `VACUUM [FULL|ANALYZE|VERBOSE]* [t, …]` or `ANALYZE [t, …]`.
    Vacuum(Vec<RelName>),
    /// `SELECT segexpand_add_segments(n)`: adds `n` empty segments to the node, online.
    AddSegments(i64),
    /// `SELECT f(literal, …)` of one of the operator functions in [`ADMIN_FUNCTIONS`]
    /// (their arguments are literals: strings and integers).
    Admin(String, Vec<Literal>),
    /// `ALTER TABLE t SHRINK TABLE TO n` (Cloudberry's gpshrink): redistribute `t` onto
    /// segments `0..n`.
    Shrink(RelName, i64),
    /// `SELECT pg_backend_pid()`.
    BackendPid,
    /// `SELECT pg_cancel_backend(pid)`.
    CancelBackend(i64),
    /// `COPY t [(cols)] FROM STDIN | TO STDOUT [[WITH] (options)]`, text format.
    Copy {
        /// The table.
        table: RelName,
        /// The columns named (empty: all).
        columns: Vec<String>,
        /// TO STDOUT (else FROM STDIN).
        to: bool,
    },
}

/// Operator functions run as statements of their own (they change the segment
/// configuration, which no transaction can undo): `SELECT f(args)`.
pub const ADMIN_FUNCTIONS: &[&str] = &[
    "segexpand_add_segment",
    "segexpand_check_segment",
    "segexpand_retire_segments",
    "segexpand_operator_lock",
];

/// A literal argument of an operator function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// `'text'`.
    Text(String),
    /// An integer.
    Int(i64),
}

/// The literals between `(` and `)` of `toks` (which start at the `(`), comma-separated.
fn literal_args(toks: &[&Token]) -> Option<Vec<Literal>> {
    let (Some(Token::LParen), Some(Token::RParen)) = (toks.first(), toks.last()) else {
        return None;
    };
    let inner = toks.get(1..toks.len() - 1)?;
    let mut out = Vec::new();
    for arg in inner.split(|t| matches!(t, Token::Comma)) {
        out.push(match arg {
            [] if inner.is_empty() => break,
            [Token::SingleQuotedString(s)] => Literal::Text(s.clone()),
            [Token::Number(n, _)] => Literal::Int(n.parse().ok()?),
            [Token::Minus, Token::Number(n, _)] => Literal::Int(-n.parse::<i64>().ok()?),
            _ => return None,
        });
    }
    Some(out)
}

fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_lowercase()),
        _ => None,
    }
}

fn name_of(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) => Some(ident(&Ident {
            value: w.value.clone(),
            quote_style: w.quote_style,
            span: sqlparser::tokenizer::Span::empty(),
        })),
        _ => None,
    }
}

/// A possibly qualified name starting at `toks[0]` (`t`, `s.t`, `d.s.t`): its parts and
/// the tokens it takes; `None` if `toks[0]` is not a name.
fn dotted_name(toks: &[&Token]) -> Option<(Vec<String>, usize)> {
    let mut parts = vec![name_of(toks.first()?)?];
    let mut i = 1;
    while toks.get(i) == Some(&&Token::Period) {
        parts.push(name_of(toks.get(i + 1)?)?);
        i += 2;
    }
    Some((parts, i))
}

/// Splits `sql` into statements (empty ones dropped).
pub fn split(sql: &str) -> SqlResult<Vec<Piece>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| SqlError::syntax(e.to_string()))?;
    let mut out = Vec::new();
    let mut cur: Vec<Token> = Vec::new();
    let mut depth = 0i32;
    for t in tokens {
        match &t {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::SemiColon if depth <= 0 => {
                if let Some(p) = piece(std::mem::take(&mut cur))? {
                    out.push(p);
                }
                depth = 0;
                continue;
            }
            _ => {}
        }
        cur.push(t);
    }
    if let Some(p) = piece(cur)? {
        out.push(p);
    }
    Ok(out)
}

fn text(tokens: &[Token]) -> String {
    let mut out = String::new();
    for t in tokens {
        match t {
            // The tokenizer unescapes string literals and its Display does not escape
            // them again: `'it''s'` would come back as `'it's'`.
            Token::SingleQuotedString(v) => {
                out.push('\'');
                out.push_str(&v.replace('\'', "''"));
                out.push('\'');
            }
            Token::EscapedStringLiteral(v) => {
                out.push_str("E'");
                out.push_str(&v.replace('\\', "\\\\").replace('\'', "\\'"));
                out.push('\'');
            }
            t => out.push_str(&t.to_string()),
        }
    }
    out
}

/// The parenthesised column list starting at `toks[0]` (`(a, b)`), and the rest.
fn column_list(toks: &[&Token]) -> SqlResult<(Vec<String>, usize)> {
    let bad = || SqlError::syntax("expected a parenthesised column list after DISTRIBUTED BY");
    if toks.first() != Some(&&Token::LParen) {
        return Err(bad());
    }
    let mut cols = Vec::new();
    let mut i = 1;
    loop {
        let t = toks.get(i).ok_or_else(bad)?;
        match t {
            Token::RParen => return Ok((cols, i + 1)),
            Token::Comma => {}
            t => cols.push(name_of(t).ok_or_else(bad)?),
        }
        i += 1;
    }
}

fn distribution(toks: &[&Token]) -> SqlResult<(Distribution, usize)> {
    match toks.first().and_then(|t| word(t)).as_deref() {
        Some("by") => {
            let (cols, n) = column_list(toks.get(1..).unwrap_or_default())?;
            if cols.is_empty() {
                return Err(SqlError::syntax("DISTRIBUTED BY needs at least one column"));
            }
            Ok((Distribution::By(cols), n + 1))
        }
        Some("randomly") => Ok((Distribution::Randomly, 1)),
        Some("replicated") => Ok((Distribution::Replicated, 1)),
        _ => Err(SqlError::syntax(
            "expected BY (columns), RANDOMLY or REPLICATED after DISTRIBUTED",
        )),
    }
}

/// Most operators in one operand list (between commas, at one parenthesis level). A
/// long flat chain (`1+1+…`, `a AND b AND …`) parses into a tree as deep as it is
/// long, and dropping or walking that tree recursed off the end of a thread's stack
/// (2,000 terms were enough); statements past this are refused before parsing.
pub const OPERATORS_IN_A_ROW_MAX: usize = 1000;

fn check_operator_runs(tokens: &[Token]) -> SqlResult<()> {
    let mut runs: Vec<usize> = vec![0];
    for t in tokens {
        match t {
            Token::LParen => runs.push(0),
            Token::RParen if runs.len() > 1 => {
                runs.pop();
            }
            Token::Comma => {
                if let Some(r) = runs.last_mut() {
                    *r = 0;
                }
            }
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::StringConcat
            | Token::DoubleColon => {
                if let Some(r) = runs.last_mut() {
                    *r += 1;
                }
            }
            Token::Word(w) if matches!(w.value.to_lowercase().as_str(), "and" | "or" | "not") => {
                if let Some(r) = runs.last_mut() {
                    *r += 1;
                }
            }
            _ => {}
        }
        if runs.last().is_some_and(|r| *r > OPERATORS_IN_A_ROW_MAX) {
            return Err(SqlError::new(
                "54001",
                format!(
                    "statement too complex: more than {OPERATORS_IN_A_ROW_MAX} operators in one \
                     expression"
                ),
            ));
        }
    }
    Ok(())
}

fn piece(tokens: Vec<Token>) -> SqlResult<Option<Piece>> {
    check_operator_runs(&tokens)?;
    // Significant tokens (no whitespace or comments), with their positions.
    let sig: Vec<(usize, &Token)> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t, Token::Whitespace(_)))
        .collect();
    if sig.is_empty() {
        return Ok(None);
    }
    let words: Vec<Option<String>> = sig.iter().map(|(_, t)| word(t)).collect();
    let w = |i: usize| words.get(i).cloned().flatten();
    let toks: Vec<&Token> = sig.iter().map(|(_, t)| *t).collect();
    match w(0).as_deref() {
        Some("vacuum") | Some("analyze") | Some("analyse") => {
            let mut names = Vec::new();
            let mut i = 1;
            while let Some(t) = toks.get(i) {
                if let Some("full" | "analyze" | "analyse" | "verbose" | "freeze") =
                    word(t).as_deref()
                {
                    i += 1;
                    continue;
                }
                match dotted_name(toks.get(i..).unwrap_or_default()) {
                    Some((parts, n)) => {
                        names.push(RelName::from_parts(parts)?);
                        i += n;
                    }
                    None => i += 1,
                }
            }
            return Ok(Some(Piece::Vacuum(names)));
        }
        Some("copy") => return copy(&toks).map(Some),
        Some("select") if w(1).as_deref() == Some("segexpand_add_segments") => {
            let n = match (toks.get(2), toks.get(3), toks.get(4), toks.len()) {
                (Some(Token::LParen), Some(Token::Number(n, _)), Some(Token::RParen), 5) => {
                    n.parse::<i64>().ok()
                }
                _ => None,
            };
            return match n {
                Some(n) => Ok(Some(Piece::AddSegments(n))),
                None => Err(SqlError::syntax(
                    "segexpand_add_segments takes one integer: SELECT segexpand_add_segments(n)",
                )),
            };
        }
        Some("select") if w(1).is_some_and(|f| ADMIN_FUNCTIONS.contains(&f.as_str())) => {
            let f = w(1).unwrap_or_default();
            return match literal_args(toks.get(2..).unwrap_or_default()) {
                Some(args) => Ok(Some(Piece::Admin(f, args))),
                None => Err(SqlError::syntax(format!(
                    "{f} takes literal arguments: SELECT {f}('text', 1, …)"
                ))),
            };
        }
        Some("select") if w(1).as_deref() == Some("pg_backend_pid") => {
            if let (Some(Token::LParen), Some(Token::RParen), 4) =
                (toks.get(2), toks.get(3), toks.len())
            {
                return Ok(Some(Piece::BackendPid));
            }
        }
        Some("select") if w(1).as_deref() == Some("pg_cancel_backend") => {
            return match (toks.get(2), toks.get(3), toks.get(4), toks.len()) {
                (Some(Token::LParen), Some(Token::Number(n, _)), Some(Token::RParen), 5) => n
                    .parse::<i64>()
                    .map(|n| Some(Piece::CancelBackend(n)))
                    .map_err(|_| SqlError::new("22003", "integer out of range")),
                _ => Err(SqlError::unsupported(
                    "pg_cancel_backend takes one integer literal: SELECT pg_cancel_backend(pid)",
                )),
            };
        }
        Some("alter") if w(1).as_deref() == Some("table") => {
            // ALTER TABLE [ONLY] name EXPAND TABLE | SET DISTRIBUTED …
            let mut i = 2;
            if w(i).as_deref() == Some("only") {
                i += 1;
            }
            if let Some((parts, n)) = dotted_name(toks.get(i..).unwrap_or_default()) {
                let i = i + n - 1;
                match (w(i + 1).as_deref(), w(i + 2).as_deref()) {
                    (Some("expand"), Some("table")) if toks.len() == i + 3 => {
                        return Ok(Some(Piece::Expand(RelName::from_parts(parts)?)));
                    }
                    (Some("shrink"), Some("table")) => {
                        return match (w(i + 3).as_deref(), toks.get(i + 4), toks.len()) {
                            (Some("to"), Some(Token::Number(n, _)), k) if k == i + 5 => n
                                .parse::<i64>()
                                .map_err(|_| SqlError::new("22003", "integer out of range"))
                                .and_then(|n| {
                                    Ok(Some(Piece::Shrink(RelName::from_parts(parts)?, n)))
                                }),
                            _ => Err(SqlError::syntax(
                                "expected ALTER TABLE t SHRINK TABLE TO n (segments)",
                            )),
                        };
                    }
                    (Some("set"), Some("distributed")) => {
                        let name = RelName::from_parts(parts)?;
                        let rest = toks.get(i + 3..).unwrap_or_default();
                        let (d, n) = distribution(rest)?;
                        if n != rest.len() {
                            return Err(SqlError::syntax(
                                "unexpected text after the distribution clause",
                            ));
                        }
                        return Ok(Some(Piece::SetDistributed(name, d)));
                    }
                    _ => {}
                }
            }
        }
        Some("create") => {
            let mut depth = 0i32;
            for (k, (pos, t)) in sig.iter().enumerate() {
                match t {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ => {}
                }
                if depth == 0 && word(t).as_deref() == Some("distributed") {
                    let rest = toks.get(k + 1..).unwrap_or_default();
                    let (d, n) = distribution(rest)?;
                    if n != rest.len() {
                        return Err(SqlError::syntax(
                            "unexpected text after the distribution clause",
                        ));
                    }
                    let before = tokens.get(..*pos).unwrap_or_default();
                    return Ok(Some(Piece::Sql {
                        text: text(before),
                        distribution: Some(d),
                    }));
                }
            }
        }
        _ => {}
    }
    let only_comments = tokens.iter().all(|t| {
        matches!(
            t,
            Token::Whitespace(Whitespace::SingleLineComment { .. })
                | Token::Whitespace(Whitespace::MultiLineComment(_))
                | Token::Whitespace(_)
        )
    });
    if only_comments {
        return Ok(None);
    }
    Ok(Some(Piece::Sql {
        text: text(&tokens),
        distribution: None,
    }))
}

/// `COPY name [(cols)] FROM STDIN | TO STDOUT [[WITH] (option [value], …)]`. Options
/// accepted: `FREEZE [on|true|off|false]`, `FORMAT text`; others are refused.
fn copy(toks: &[&Token]) -> SqlResult<Piece> {
    let bad = |m: &str| SqlError::syntax(format!("COPY: {m}"));
    let (parts, n) = dotted_name(toks.get(1..).unwrap_or_default())
        .ok_or_else(|| bad("expected a table name"))?;
    let table = RelName::from_parts(parts)?;
    let mut i = 1 + n;
    let mut columns = Vec::new();
    if toks.get(i) == Some(&&Token::LParen) {
        let (cols, n) = column_list(toks.get(i..).unwrap_or_default())
            .map_err(|_| bad("expected a column list"))?;
        columns = cols;
        i += n;
    }
    let dir = toks.get(i).and_then(|t| word(t));
    let end = toks.get(i + 1).and_then(|t| word(t));
    let to = match (dir.as_deref(), end.as_deref()) {
        (Some("from"), Some("stdin")) => false,
        (Some("to"), Some("stdout")) => true,
        (Some("from" | "to"), _) => return Err(SqlError::unsupported(
            "COPY to or from a file or program is not supported: use STDIN/STDOUT (psql's \\copy)",
        )),
        _ => return Err(bad("expected FROM STDIN or TO STDOUT")),
    };
    i += 2;
    if toks.get(i).and_then(|t| word(t)).as_deref() == Some("with") {
        i += 1;
    }
    let rest: Vec<&Token> = toks.get(i..).unwrap_or_default().to_vec();
    let opts: Vec<String> = rest
        .iter()
        .filter(|t| !matches!(t, Token::LParen | Token::RParen | Token::Comma))
        .map(|t| word(t).unwrap_or_else(|| t.to_string().to_lowercase()))
        .collect();
    let mut k = 0;
    while let Some(o) = opts.get(k) {
        let v = opts.get(k + 1).map(String::as_str);
        match (o.as_str(), v) {
            ("freeze", Some("on" | "true" | "off" | "false")) => k += 2,
            ("freeze", _) => k += 1,
            ("format", Some("text")) => k += 2,
            _ => {
                return Err(SqlError::unsupported(format!(
                    "COPY option {o} is not supported (text format only)"
                )))
            }
        }
    }
    Ok(Piece::Copy { table, columns, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greenplum_clauses_are_cut_and_strings_are_not_mistaken_for_them() {
        let p = split(
            "create table t (a int, b text) distributed by (a); \
             insert into t values (1, 'distributed by (x); alter table t expand table');\
             ALTER TABLE t EXPAND TABLE; alter table \"T\" set distributed by (b);\
             create table r (a int) DISTRIBUTED RANDOMLY; vacuum analyze t; ;",
        )
        .unwrap();
        assert_eq!(p.len(), 6, "{p:?}");
        match &p[0] {
            Piece::Sql { text, distribution } => {
                assert_eq!(text.trim(), "create table t (a int, b text)");
                assert_eq!(distribution, &Some(Distribution::By(vec!["a".into()])));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&p[1], Piece::Sql { distribution: None, text } if text.contains("expand table')"))
        );
        assert!(matches!(&p[2], Piece::Expand(t) if *t == RelName::bare("t")));
        assert!(
            matches!(&p[3], Piece::SetDistributed(t, Distribution::By(c)) if *t == RelName::bare("T") && c == &["b"])
        );
        assert!(matches!(
            &p[4],
            Piece::Sql {
                distribution: Some(Distribution::Randomly),
                ..
            }
        ));
        assert!(matches!(&p[5], Piece::Vacuum(n) if n == &[RelName::bare("t")]));
        assert!(split("create table t (a int) distributed by a").is_err());
        let c = split("copy pgbench_accounts from stdin with (freeze on)").unwrap();
        assert!(
            matches!(&c[0], Piece::Copy { table, columns, to: false } if *table == RelName::bare("pgbench_accounts") && columns.is_empty())
        );
        let c = split("COPY public.t (b, a) TO STDOUT").unwrap();
        assert!(
            matches!(&c[0], Piece::Copy { table, columns, to: true } if table.schema.as_deref() == Some("public") && table.name == "t" && columns == &["b", "a"])
        );
        let p = split(
            "ALTER TABLE gpexpand.\"T\" EXPAND TABLE; alter table only s.t set distributed randomly;\
             vacuum analyze s.t, u; copy d.s.t from stdin",
        )
        .unwrap();
        let st = RelName {
            database: None,
            schema: Some("s".into()),
            name: "t".into(),
        };
        assert!(
            matches!(&p[0], Piece::Expand(t) if t.schema.as_deref() == Some("gpexpand") && t.name == "T")
        );
        assert!(matches!(&p[1], Piece::SetDistributed(t, Distribution::Randomly) if *t == st));
        assert!(matches!(&p[2], Piece::Vacuum(n) if n == &[st.clone(), RelName::bare("u")]));
        assert!(
            matches!(&p[3], Piece::Copy { table, .. } if table.database.as_deref() == Some("d") && table.schema == st.schema)
        );
        assert_eq!(
            split("alter table a.b.c.d expand table")
                .unwrap_err()
                .sqlstate,
            "42601"
        );
        assert!(split("copy t from '/etc/passwd'").is_err());
        assert!(split("copy t from stdin (format csv)").is_err());
        assert!(split("-- just a comment").unwrap().is_empty());
    }
}
