//! Arrays in their PostgreSQL text form (`{a,b,"c d",NULL}`): the catalog's array
//! columns (`polroles`, `stxkind`, `datacl`) and `ARRAY(…)` results are text values in
//! that form, and the array functions and operators parse it. Also the regular
//! expressions of `~`, `~*`, `!~` and `!~*`.

use crate::error::{SqlError, SqlResult};
use crate::value;
use segexpand_engine::Value;

/// Longest array literal parsed (a bound on work from user input).
const ARRAY_TEXT_MAX: usize = 1 << 20;

/// The elements of an array literal (NULL: `None`).
pub fn parse(s: &str) -> SqlResult<Vec<Option<String>>> {
    let bad = || SqlError::new("22P02", format!("malformed array literal: \"{s}\""));
    if s.len() > ARRAY_TEXT_MAX {
        return Err(bad());
    }
    let inner = s
        .trim()
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(bad)?;
    let mut out = Vec::new();
    if inner.trim().is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(bad()),
                    Some('"') => break,
                    Some('\\') => item.push(chars.next().ok_or_else(bad)?),
                    Some(c) => item.push(c),
                }
            }
            while chars.peek().is_some_and(|c| *c != ',') {
                chars.next();
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                if c == '{' || c == '}' || c == '"' {
                    return Err(SqlError::unsupported(
                        "multi-dimensional arrays are not supported",
                    ));
                }
                item.push(c);
                chars.next();
            }
            item = item.trim().to_string();
        }
        out.push(if !quoted && item.eq_ignore_ascii_case("null") {
            None
        } else {
            Some(item)
        });
        if chars.next().is_none() {
            return Ok(out);
        }
    }
}

/// The text form of an array of `items`.
pub fn format(items: &[Value]) -> String {
    let mut s = String::from("{");
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        match value::to_text(v) {
            None => s.push_str("NULL"),
            Some(t) => {
                let plain = !t.is_empty()
                    && !t.eq_ignore_ascii_case("null")
                    && !t
                        .chars()
                        .any(|c| matches!(c, ',' | '{' | '}' | '"' | '\\') || c.is_whitespace());
                if plain {
                    s.push_str(&t);
                } else {
                    s.push('"');
                    for c in t.chars() {
                        if c == '"' || c == '\\' {
                            s.push('\\');
                        }
                        s.push(c);
                    }
                    s.push('"');
                }
            }
        }
    }
    s.push('}');
    s
}

/// Longest pattern compiled (a bound on work from user input).
const PATTERN_MAX: usize = 4096;

/// Whether `s` matches regular expression `pat` (somewhere, as `~` does).
pub fn regex_match(s: &str, pat: &str, icase: bool) -> SqlResult<bool> {
    if pat.len() > PATTERN_MAX {
        return Err(SqlError::new(
            "54000",
            format!("regular expression longer than {PATTERN_MAX} bytes"),
        ));
    }
    let re = regex_lite::RegexBuilder::new(pat)
        .case_insensitive(icase)
        .build()
        .map_err(|e| {
            SqlError::new(
                "2201B",
                format!("invalid regular expression: {}", first_line(&e.to_string())),
            )
        })?;
    Ok(re.is_match(s))
}

fn first_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_round_trip_through_text() {
        let items = vec![
            Value::Text("a".into()),
            Value::Null,
            Value::Text("c d".into()),
            Value::Int4(3),
        ];
        let t = format(&items);
        assert_eq!(t, "{a,NULL,\"c d\",3}");
        assert_eq!(
            parse(&t).ok(),
            Some(vec![
                Some("a".into()),
                None,
                Some("c d".into()),
                Some("3".into())
            ])
        );
        assert_eq!(parse("{}").ok(), Some(Vec::new()));
        assert!(parse("nope").is_err());
    }

    #[test]
    fn regex_matches_as_postgres_tilde() {
        assert_eq!(regex_match("t", "^(t)$", false).ok(), Some(true));
        assert_eq!(regex_match("pg_toast", "^pg_toast", false).ok(), Some(true));
        assert_eq!(regex_match("ABC", "b", true).ok(), Some(true));
        assert!(regex_match("x", "(", false).is_err());
    }
}
