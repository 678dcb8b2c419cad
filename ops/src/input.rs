//! The gpexpand input file: one new segment per line,
//! `hostname|address|port|datadir|dbid|content|preferred_role`, blank lines
//! and `#` comments skipped (gpexpand's `read_input_files`, `_getParsedRow`,
//! gppylib `parseutils.check_values` and `addNewSegments`).
//!
//! The whole file is read and checked before anything is returned, in
//! gpexpand's order and with its texts:
//! 1. every line's shape (wrapped as `Invalid input file on line N of file F: …`);
//! 2. each segment added in file order (bare: `Duplicate content id for
//!    primary segment`, `Invalid content ID for expansion segment`);
//! 3. the set against the cluster (wrapped as `Invalid input file: …`).
//!
//! Fields are not trimmed one by one, as in gpexpand; hostname, address and
//! data directory are trimmed when the segment is built, and the directory is
//! made absolute and normalised (`os.path.abspath`).

use std::fmt;

use crate::cluster::{Cluster, Role, Segment};
use crate::expansion::{Expansion, ExpansionError};
use crate::pyfmt;

/// An input file's text, the name it is reported under, and the directory a
/// relative data directory is taken from (gpexpand's working directory).
#[derive(Clone, Copy, Debug)]
pub struct InputFile<'a> {
    pub name: &'a str,
    pub text: &'a str,
    pub cwd: &'a str,
}

/// What is wrong with one line. `Display` is gpexpand's text.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineError {
    /// `expected 7 parts, obtained N`
    Parts { obtained: usize },
    /// `Invalid <field> on line N`
    Field { field: Field, line: usize },
}

/// The fields `check_values` names, in the order it checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Address,
    Port,
    Directory,
    Content,
    Hostname,
    Dbid,
    Role,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Address => "address",
            Field::Port => "port",
            Field::Directory => "directory",
            Field::Content => "content ID",
            Field::Hostname => "hostname",
            Field::Dbid => "dbid",
            Field::Role => "role",
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Parts { obtained } => write!(f, "expected 7 parts, obtained {obtained}"),
            LineError::Field { field, line } => {
                write!(f, "Invalid {} on line {line}", field.name())
            }
        }
    }
}

/// Why an input file was refused. `Display` is what gpexpand prints after
/// `gpexpand failed: `.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputError {
    /// A malformed line: `Invalid input file on line N of file F: <why>`.
    Line {
        line: usize,
        file: String,
        error: LineError,
    },
    /// A segment that cannot be added (reported bare, as gpexpand does).
    Segment(ExpansionError),
    /// The set breaks a rule: `Invalid input file: <why>`.
    Invalid(ExpansionError),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Line { line, file, error } => {
                write!(
                    f,
                    "Invalid input file on line {line} of file {file}: {error}"
                )
            }
            InputError::Segment(e) => write!(f, "{e}"),
            InputError::Invalid(e) => write!(f, "Invalid input file: {e}"),
        }
    }
}

impl std::error::Error for InputError {}

/// One line split into its seven fields, untrimmed.
struct Row<'a> {
    hostname: &'a str,
    address: &'a str,
    port: u16,
    datadir: &'a str,
    dbid: i32,
    content: i32,
    role: Role,
}

/// Reads and checks a whole input file against the cluster. The new segments
/// come back by content id, each primary before its mirror.
pub fn parse_input_file(
    file: &InputFile<'_>,
    cluster: &Cluster,
) -> Result<Vec<Segment>, InputError> {
    let mut rows = Vec::new();
    for (line, text) in lines(file.text) {
        let row = parse_row(line, text).map_err(|error| InputError::Line {
            line,
            file: file.name.to_string(),
            error,
        })?;
        rows.push(row);
    }
    let mut expansion = Expansion::new(cluster);
    for row in rows {
        let segment = Segment {
            hostname: row.hostname.trim().to_string(),
            address: row.address.trim().to_string(),
            port: row.port,
            datadir: pyfmt::abspath(row.datadir.trim(), file.cwd),
            dbid: row.dbid,
            content: row.content,
            role: row.role,
        };
        expansion.add(segment).map_err(InputError::Segment)?;
    }
    expansion.validate().map_err(InputError::Invalid)?;
    Ok(expansion.segments())
}

/// The text of an input file for these segments, one line each
/// (gpexpand's `generate_inputfile`; addresses with `:` go in `[ ]`).
pub fn format_input_file(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        out.push_str(&format!(
            "{}|{}|{}|{}|{}|{}|{}\n",
            pyfmt::canonicalize_address(&s.hostname),
            pyfmt::canonicalize_address(&s.address),
            s.port,
            s.datadir,
            s.dbid,
            s.content,
            s.role.as_char()
        ));
    }
    out
}

/// `parseutils.line_reader`: trimmed lines with their 1-based numbers,
/// blank lines and `#` comments left out. `\r\n` and a lone `\r` end a line,
/// as in Python's text mode.
fn lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let (line, tail) = rest.split_at(end);
        rest = tail
            .strip_prefix("\r\n")
            .or_else(|| tail.strip_prefix('\n'))
            .or_else(|| tail.strip_prefix('\r'))
            .unwrap_or(tail);
        let line = line.trim();
        if !line.is_empty() && !line.starts_with('#') {
            out.push((number, line));
        }
    }
    out
}

/// `_getParsedRow` and `check_values` for one line.
fn parse_row(line: usize, text: &str) -> Result<Row<'_>, LineError> {
    let parts: Vec<&str> = text.split('|').collect();
    let &[hostname, address, port, datadir, dbid, content, role] = parts.as_slice() else {
        return Err(LineError::Parts {
            obtained: parts.len(),
        });
    };
    let bad = |field| LineError::Field { field, line };
    if address.is_empty() {
        return Err(bad(Field::Address));
    }
    // gpexpand takes any port of 0 or more; one past 65535 cannot be a port.
    let port = int_at_least(port, 0)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| bad(Field::Port))?;
    if datadir.is_empty() {
        return Err(bad(Field::Directory));
    }
    let content = int_at_least(content, -1)
        .and_then(|c| i32::try_from(c).ok())
        .ok_or_else(|| bad(Field::Content))?;
    if hostname.is_empty() {
        return Err(bad(Field::Hostname));
    }
    let dbid = int_at_least(dbid, 1)
        .and_then(|d| i32::try_from(d).ok())
        .ok_or_else(|| bad(Field::Dbid))?;
    let role = Role::from_code(role).ok_or_else(|| bad(Field::Role))?;
    Ok(Row {
        hostname,
        address,
        port,
        datadir,
        dbid,
        content,
        role,
    })
}

/// `_is_valid_base10_int`: a Python `int()` at least `lower`.
fn int_at_least(text: &str, lower: i64) -> Option<i64> {
    pyfmt::py_int(text).ok().filter(|v| *v >= lower)
}
