//! The handful of Python string rules that gpexpand's observable behaviour
//! rests on, written once: `int()` on a field, `os.path.abspath`,
//! `canonicalize_address`, `repr()` of a string in an error message, and
//! slicing with `rfind` results (where `-1` means "one from the end").
//!
//! Crate-private: callers see only the behaviour these produce.

/// Why a text did not read as a Python `int()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntError {
    /// Python would raise `ValueError`.
    Invalid,
    /// Python would accept it; it does not fit an `i64` here.
    TooLarge,
}

/// Python's `int(text)` for base 10: surrounding whitespace, an optional sign,
/// ASCII digits with single underscores between them.
pub(crate) fn py_int(text: &str) -> Result<i64, IntError> {
    let t = text.trim();
    let (negative, body) = if let Some(rest) = t.strip_prefix('-') {
        (true, rest)
    } else if let Some(rest) = t.strip_prefix('+') {
        (false, rest)
    } else {
        (false, t)
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return Err(IntError::Invalid);
    }
    let mut value: i64 = 0;
    let mut overflow = false;
    for ch in body.chars() {
        if ch == '_' {
            continue;
        }
        // `to_digit` takes ASCII digits only (Python would also take other
        // Unicode decimal digits; an input file never holds them).
        let Some(digit) = ch.to_digit(10) else {
            return Err(IntError::Invalid);
        };
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(digit)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
    }
    if overflow {
        return Err(IntError::TooLarge);
    }
    Ok(if negative { -value } else { value })
}

/// `str.isdigit()` for ASCII text: non-empty and every character a digit.
pub(crate) fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_digit())
}

/// `gppylib.parseutils.canonicalize_address`: an address holding `:` is put in
/// `[ ]` (RFC 2732) unless it already holds a `[`.
pub(crate) fn canonicalize_address(addr: &str) -> String {
    if !addr.contains(':') || addr.contains('[') {
        addr.to_string()
    } else {
        format!("[{addr}]")
    }
}

/// `posixpath.normpath`.
pub(crate) fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let initial = if path.starts_with("//") && !path.starts_with("///") {
        "//"
    } else if path.starts_with('/') {
        "/"
    } else {
        ""
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        if part.is_empty() || part == "." {
            continue;
        }
        let keep_dotdot = (initial.is_empty() && parts.is_empty()) || parts.last() == Some(&"..");
        if part != ".." || keep_dotdot {
            parts.push(part);
        } else if !parts.is_empty() {
            parts.pop();
        }
    }
    let joined = format!("{initial}{}", parts.join("/"));
    if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// `os.path.abspath(path)` with `cwd` standing for `os.getcwd()`.
pub(crate) fn abspath(path: &str, cwd: &str) -> String {
    if path.starts_with('/') {
        return normpath(path);
    }
    let joined = if cwd.is_empty() || cwd.ends_with('/') {
        format!("{cwd}{path}")
    } else {
        format!("{cwd}/{path}")
    };
    normpath(&joined)
}

/// `repr(text)` as Python 3 prints a `str` in an error message.
pub(crate) fn py_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `text.rfind(ch)` in characters, `-1` when absent.
pub(crate) fn rfind(text: &str, ch: char) -> isize {
    let count = text.chars().count();
    text.chars()
        .rev()
        .position(|c| c == ch)
        .map_or(-1, |from_end| {
            isize::try_from(count - 1 - from_end).unwrap_or(isize::MAX)
        })
}

/// `text[start:end]` with Python's rules for negative and out-of-range bounds.
pub(crate) fn slice(text: &str, start: isize, end: isize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let len = isize::try_from(chars.len()).unwrap_or(isize::MAX);
    let clamp = |i: isize| -> usize {
        let i = if i < 0 { (i + len).max(0) } else { i.min(len) };
        usize::try_from(i).unwrap_or(0)
    };
    let (s, e) = (clamp(start), clamp(end));
    if s >= e {
        return String::new();
    }
    chars
        .get(s..e)
        .map(|c| c.iter().collect())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn int_follows_python() {
        assert_eq!(py_int("42"), Ok(42));
        assert_eq!(py_int(" +7 "), Ok(7));
        assert_eq!(py_int("-1"), Ok(-1));
        assert_eq!(py_int("1_000"), Ok(1000));
        assert_eq!(py_int("007"), Ok(7));
        for bad in ["", " ", "x", "1x", "_1", "1_", "1__0", "--1", "1.0", "٣"] {
            assert_eq!(py_int(bad), Err(IntError::Invalid), "{bad:?}");
        }
        assert_eq!(py_int("99999999999999999999"), Err(IntError::TooLarge));
    }

    #[test]
    fn normpath_follows_posixpath() {
        assert_eq!(normpath("/data//p1/./x/"), "/data/p1/x");
        assert_eq!(normpath("/a/../../b"), "/b");
        assert_eq!(normpath("//a"), "//a");
        assert_eq!(normpath("///a"), "/a");
        assert_eq!(normpath("../a/.."), "..");
        assert_eq!(normpath(""), ".");
        assert_eq!(abspath("p1", "/home/gp"), "/home/gp/p1");
        assert_eq!(abspath("../p1", "/home/gp/"), "/home/p1");
        assert_eq!(abspath("/x/y/", "/ignored"), "/x/y");
    }

    #[test]
    fn small_rules() {
        assert_eq!(canonicalize_address("::1"), "[::1]");
        assert_eq!(canonicalize_address("[::1]"), "[::1]");
        assert_eq!(canonicalize_address("sdw1"), "sdw1");
        assert_eq!(py_repr("abc"), "'abc'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a\\b\t"), "'a\\\\b\\t'");
        assert_eq!(rfind("/a/b-1", '-'), 4);
        assert_eq!(rfind("abc", '-'), -1);
        assert_eq!(slice("coord", 0, -1), "coor");
        assert_eq!(slice("gpseg-1", 0, 5), "gpseg");
        assert_eq!(slice("abc", 5, 1), "");
    }
}
