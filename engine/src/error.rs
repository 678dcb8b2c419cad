//! Errors of the storage engine, typed by layer.
//!
//! I/O failures (the operating system said no) are kept apart from corruption (the bytes
//! on disk are not what the engine wrote). After a failed fsync the node is *poisoned*:
//! every later write fails with [`Error::Poisoned`] instead of retrying in a way that could
//! pretend unsynced data is durable.

use std::fmt;
use std::path::PathBuf;

/// Where a piece of corrupt data lives, precise enough for an operator to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File, relative to the data directory.
    pub file: PathBuf,
    /// Segment content id, when the file belongs to a segment.
    pub segment: Option<u16>,
    /// Table id, when the file belongs to a table.
    pub table: Option<u32>,
    /// Heap block number, when the problem is in one page.
    pub block: Option<u32>,
    /// Byte offset in the file, when that is the most precise position.
    pub offset: Option<u64>,
}

impl Location {
    /// A location naming only a file.
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Self {
            file: file.into(),
            segment: None,
            table: None,
            block: None,
            offset: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(s) = self.segment {
            write!(f, ": segment {s}")?;
        }
        if let Some(t) = self.table {
            write!(f, ", table {t}")?;
        }
        if let Some(b) = self.block {
            write!(f, ", block {b}")?;
        }
        if let Some(o) = self.offset {
            write!(f, ", offset {o}")?;
        }
        Ok(())
    }
}

/// What is wrong with corrupt data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The stored checksum does not match the bytes.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// Checksum read from disk.
        stored: u32,
        /// Checksum computed over the bytes read.
        computed: u32,
    },
    /// A magic number or version is wrong: not a file of ours, or a newer format.
    #[error("bad magic or version: {0}")]
    BadHeader(String),
    /// A field is out of its allowed range or inconsistent with another.
    #[error("invalid structure: {0}")]
    Invalid(String),
    /// The data ends before a structure it must contain.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A page of zero bytes: space allocated in the file but never written.
    #[error("page is all zeros (never written)")]
    ZeroPage,
    /// A file the node's metadata says must exist is missing.
    #[error("file is missing")]
    Missing,
    /// A file is shorter than the node wrote it (cut short behind the node's back).
    #[error(
        "file is shorter than the node wrote it: {expected_bytes} bytes expected (by the \
         last checkpoint), {found_bytes} found"
    )]
    ShortFile {
        /// Bytes the node knows it wrote.
        expected_bytes: u64,
        /// Bytes found.
        found_bytes: u64,
    },
    /// An invalid WAL record with valid log after it: damage, not a torn tail.
    #[error("invalid WAL record at LSN {lsn} ({reason}), followed by {evidence}: not a torn tail")]
    WalNotTail {
        /// LSN of the invalid record.
        lsn: u64,
        /// Why it is invalid.
        reason: String,
        /// What valid log follows it.
        evidence: String,
    },
}

/// Errors of the storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system failed an I/O call.
    #[error("I/O error during {op} on {path}: {source}")]
    Io {
        /// What the engine was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Data on disk is not what the engine wrote.
    #[error("corruption in {location}: {kind}")]
    Corruption {
        /// Where.
        location: Location,
        /// What.
        kind: CorruptionKind,
    },
    /// An earlier fsync, or a write that was part of making data durable, failed (or a
    /// failpoint simulated a crash); the node refuses further writes. Reopen the node to
    /// run recovery. The text names the operation and file that failed and why, e.g.
    /// "an earlier write on wal/00000001.wal failed (No space left on device)".
    #[error("node refuses writes: {0}; reopen to recover")]
    Poisoned(String),
    /// The caller asked for something that does not exist or is not allowed (a usage
    /// error with no more specific variant).
    #[error("{0}")]
    InvalidArgument(String),
    /// A NULL for a NOT NULL column.
    #[error("null value in column {column:?} of table {table:?} violates not-null constraint")]
    NotNullViolation {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// A value of the wrong type for a column.
    #[error("column {column:?} is {expected} but the value is {found}")]
    DatatypeMismatch {
        /// The column.
        column: String,
        /// Its SQL type.
        expected: String,
        /// What the value is.
        found: String,
    },
    /// A number outside its column type's range.
    #[error("value out of range for column {column:?} of type {ty}")]
    ValueOutOfRange {
        /// The column.
        column: String,
        /// Its SQL type.
        ty: String,
    },
    /// A string longer than its column allows.
    #[error("value too long for column {column:?} of type {ty} (limit {limit})")]
    StringTooLong {
        /// The column.
        column: String,
        /// Its SQL type.
        ty: String,
        /// The limit, with its unit.
        limit: String,
    },
    /// Text that does not parse as a value of its type.
    #[error("invalid input syntax for type {ty}: {input:?}")]
    InvalidTextRepresentation {
        /// The SQL type.
        ty: String,
        /// The text.
        input: String,
    },
    /// A row another running transaction holds (an operation that does not wait).
    #[error("row {row} is locked by running transaction {holder}")]
    RowLocked {
        /// Where the row is.
        row: String,
        /// The transaction holding it.
        holder: u64,
    },
    /// A heap block number at or past the end of its heap.
    #[error("{}: block {block} beyond the end ({nblocks} blocks)", .file.display())]
    NoSuchBlock {
        /// The heap file, relative to the data directory.
        file: PathBuf,
        /// The block asked for.
        block: u32,
        /// Blocks the heap has.
        nblocks: u32,
    },
    /// A tuple does not fit in an empty page.
    #[error("tuple of {len} bytes exceeds the maximum of {max} bytes")]
    TupleTooLarge {
        /// Requested length.
        len: usize,
        /// Largest tuple a page can hold.
        max: usize,
    },
    /// The data directory holds no node (no control file).
    #[error("{0} is not a segexpand data directory (no control file)")]
    NotInitialized(PathBuf),
    /// Another process (or another node of this process) holds the data directory.
    #[error(
        "data directory {} is in use by {}",
        .dir.display(),
        .pid.map_or_else(
            || "another process (a reader such as `segexpand verify`, or an owner that \
                is starting)"
                .to_string(),
            |p| format!("process {p}")
        )
    )]
    DirInUse {
        /// The directory.
        dir: PathBuf,
        /// The holder's process id, as written in its lock file.
        pid: Option<u32>,
    },
    /// The directory is not in a state that allows the operation (foreign files, an
    /// interrupted creation or wipe, a node whose control file is missing); nothing was
    /// changed.
    #[error("{}: {reason}", .dir.display())]
    DirRefused {
        /// The directory.
        dir: PathBuf,
        /// What is there and why that refuses the operation.
        reason: String,
    },
    /// The data directory already holds a node.
    #[error("{0} already holds a segexpand node")]
    AlreadyExists(PathBuf),
    /// A table of this name exists already.
    #[error("table {0:?} already exists")]
    TableExists(String),
    /// No table has this name.
    #[error("table {0:?} does not exist")]
    NoSuchTable(String),
    /// A column that the table does not have (by name or position).
    #[error("column does not exist: {0}")]
    UndefinedColumn(String),
    /// A limit of the engine was reached (segments per node, transaction ids,
    /// statements in one transaction).
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// A name the engine cannot store (empty, or longer than its limit).
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// A row with more or fewer values than its table has columns.
    #[error("table {table:?} has {expected} columns but the row has {got} values")]
    ColumnCount {
        /// The table.
        table: String,
        /// Its number of columns.
        expected: usize,
        /// The row's number of values.
        got: usize,
    },
    /// The statement was cancelled (a client's cancel request) while it waited or ran.
    #[error("canceling statement due to user request ({0})")]
    Canceled(String),
    /// A write would give a PRIMARY KEY or UNIQUE constraint two rows with equal values.
    #[error("duplicate key value violates unique constraint {constraint:?}: Key ({columns})=({values}) already exists")]
    UniqueViolation {
        /// The constraint's name.
        constraint: String,
        /// Its columns, comma-separated.
        columns: String,
        /// The duplicate values, comma-separated, as text.
        values: String,
    },
    /// A table definition the engine cannot accept: a unique constraint without the
    /// distribution key, a key change to columns outside a unique constraint, two
    /// primary keys.
    #[error("invalid table definition: {0}")]
    InvalidTableDefinition(String),
    /// Waiting for a row lock would close a cycle of waits. Roll the transaction back.
    #[error(
        "deadlock detected: transaction {xid} waits for transaction {holder}, which waits \
         (directly or through others) for transaction {xid}; roll back and retry"
    )]
    Deadlock {
        /// The transaction that got the error.
        xid: u64,
        /// The transaction it would have waited for.
        holder: u64,
    },
    /// A lock was not granted within the lock timeout: a row another transaction
    /// holds, or (for DROP, TRUNCATE, ADD PRIMARY KEY) a table another transaction has
    /// written to. Roll the transaction back. (`xid` 0: the node's own API, outside a
    /// transaction; `holder` 0: a DDL statement held the table's new writers off.)
    #[error(
        "lock timeout: transaction {xid} waited {waited_ms} ms for transaction {holder} \
         (which holds a row it needs, or has written to a table it must change); roll \
         back and retry"
    )]
    LockTimeout {
        /// The transaction that got the error.
        xid: u64,
        /// The transaction holding the row or table.
        holder: u64,
        /// How long it waited.
        waited_ms: u64,
    },
    /// A named failpoint fired (tests and fault drills: `Node::arm_failpoint`).
    #[error("failpoint {0} fired")]
    Failpoint(crate::failpoint::Failpoint),
    /// The table's redistribution state does not allow the operation.
    #[error("{0}")]
    Redistribution(String),
    /// A redistribution step could not drain the running DML statements on the table
    /// within its cap, in any of its attempts; nothing changed. Retry later.
    #[error(
        "could not hold DML on table {table:?}: running statements did not finish within \
         {cap_us} us in {attempts} attempts; nothing changed, retry later"
    )]
    DmlDrainTimeout {
        /// The table.
        table: String,
        /// The cap per attempt (µs).
        cap_us: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// An earlier statement of this transaction failed; it can only roll back.
    #[error("transaction {xid} is aborted (an earlier statement failed: {cause}); roll back")]
    TxnAborted {
        /// The transaction.
        xid: u64,
        /// The first failure.
        cause: String,
    },
}

impl Error {
    /// Builds an I/O error.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Builds a corruption error.
    pub fn corrupt(location: Location, kind: CorruptionKind) -> Self {
        Error::Corruption { location, kind }
    }

    /// True when this is corruption (as opposed to an I/O failure or a usage error).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }

    /// The PostgreSQL SQLSTATE a server reports for this error (`docs/errors.md`).
    pub fn sqlstate(&self) -> &'static str {
        self.codes().1
    }

    /// A stable, lower-case name of the cause (`docs/errors.md`); PostgreSQL's condition
    /// name where one fits.
    pub fn code(&self) -> &'static str {
        self.codes().0
    }

    /// (code, SQLSTATE). One arm per variant: a new variant does not compile until it
    /// has its codes, and `errors_doc_lists_every_variant` checks the table in the docs.
    fn codes(&self) -> (&'static str, &'static str) {
        match self {
            Error::Io { source, .. } if source.raw_os_error() == Some(ENOSPC) => {
                ("disk_full", "53100")
            }
            Error::Io { .. } => ("io_error", "58030"),
            Error::Corruption { .. } => ("data_corrupted", "XX001"),
            Error::Poisoned(_) => ("poisoned", "58030"),
            Error::InvalidArgument(_) => ("invalid_parameter_value", "22023"),
            Error::NotNullViolation { .. } => ("not_null_violation", "23502"),
            Error::DatatypeMismatch { .. } => ("datatype_mismatch", "42804"),
            Error::ValueOutOfRange { .. } => ("numeric_value_out_of_range", "22003"),
            Error::StringTooLong { .. } => ("string_data_right_truncation", "22001"),
            Error::InvalidTextRepresentation { .. } => ("invalid_text_representation", "22P02"),
            Error::RowLocked { .. } => ("lock_not_available", "55P03"),
            Error::NoSuchBlock { .. } => ("no_such_block", "XX000"),
            Error::TupleTooLarge { .. } => ("program_limit_exceeded", "54000"),
            Error::NotInitialized(_) => ("undefined_file", "58P01"),
            Error::DirInUse { .. } => ("object_in_use", "55006"),
            Error::DirRefused { .. } => ("object_not_in_prerequisite_state", "55000"),
            Error::AlreadyExists(_) => ("duplicate_file", "58P02"),
            Error::TableExists(_) => ("duplicate_table", "42P07"),
            Error::NoSuchTable(_) => ("undefined_table", "42P01"),
            Error::UndefinedColumn(_) => ("undefined_column", "42703"),
            Error::LimitExceeded(_) => ("program_limit_exceeded", "54000"),
            Error::InvalidName(_) => ("invalid_name", "42602"),
            Error::ColumnCount { .. } => ("column_count_mismatch", "42601"),
            Error::UniqueViolation { .. } => ("unique_violation", "23505"),
            Error::Canceled(_) => ("query_canceled", "57014"),
            Error::InvalidTableDefinition(_) => ("invalid_table_definition", "42P16"),
            Error::Deadlock { .. } => ("deadlock_detected", "40P01"),
            Error::LockTimeout { .. } => ("lock_timeout", "55P03"),
            Error::Failpoint(_) => ("failpoint", "XX000"),
            Error::Redistribution(_) => ("redistribution_in_progress", "55000"),
            Error::DmlDrainTimeout { .. } => ("dml_drain_timeout", "55P03"),
            Error::TxnAborted { .. } => ("in_failed_sql_transaction", "25P02"),
        }
    }
}

/// `errno` of "no space left on device" (Linux).
const ENOSPC: i32 = 28;

/// Result type of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Variants, numbered; a new variant does not compile until it is numbered here.
    const VARIANTS: usize = 32;
    fn index(e: &Error) -> usize {
        match e {
            Error::Io { .. } => 0,
            Error::Corruption { .. } => 1,
            Error::Poisoned(_) => 2,
            Error::InvalidArgument(_) => 3,
            Error::NotNullViolation { .. } => 4,
            Error::DatatypeMismatch { .. } => 5,
            Error::ValueOutOfRange { .. } => 6,
            Error::StringTooLong { .. } => 7,
            Error::InvalidTextRepresentation { .. } => 8,
            Error::RowLocked { .. } => 9,
            Error::NoSuchBlock { .. } => 10,
            Error::TupleTooLarge { .. } => 11,
            Error::NotInitialized(_) => 12,
            Error::DirInUse { .. } => 13,
            Error::DirRefused { .. } => 14,
            Error::AlreadyExists(_) => 15,
            Error::TableExists(_) => 16,
            Error::NoSuchTable(_) => 17,
            Error::Deadlock { .. } => 18,
            Error::LockTimeout { .. } => 19,
            Error::Failpoint(_) => 20,
            Error::Redistribution(_) => 21,
            Error::DmlDrainTimeout { .. } => 22,
            Error::TxnAborted { .. } => 23,
            Error::UndefinedColumn(_) => 25,
            Error::LimitExceeded(_) => 26,
            Error::InvalidName(_) => 27,
            Error::ColumnCount { .. } => 28,
            Error::UniqueViolation { .. } => 29,
            Error::InvalidTableDefinition(_) => 30,
            Error::Canceled(_) => 31,
            // (24 is the full-disk flavour of Io, sampled below.)
        }
    }

    fn one_of_each() -> Vec<Error> {
        let s = || "x".to_string();
        vec![
            Error::io("write", "f", std::io::Error::from_raw_os_error(5)),
            Error::io("write", "f", std::io::Error::from_raw_os_error(ENOSPC)),
            Error::corrupt(Location::file("f"), CorruptionKind::Missing),
            Error::Poisoned(s()),
            Error::InvalidArgument(s()),
            Error::NotNullViolation {
                table: s(),
                column: s(),
            },
            Error::DatatypeMismatch {
                column: s(),
                expected: s(),
                found: s(),
            },
            Error::ValueOutOfRange {
                column: s(),
                ty: s(),
            },
            Error::StringTooLong {
                column: s(),
                ty: s(),
                limit: s(),
            },
            Error::InvalidTextRepresentation {
                ty: s(),
                input: s(),
            },
            Error::RowLocked {
                row: s(),
                holder: 1,
            },
            Error::NoSuchBlock {
                file: "f".into(),
                block: 1,
                nblocks: 1,
            },
            Error::TupleTooLarge { len: 1, max: 1 },
            Error::NotInitialized("d".into()),
            Error::DirInUse {
                dir: "d".into(),
                pid: Some(1),
            },
            Error::DirRefused {
                dir: "d".into(),
                reason: s(),
            },
            Error::AlreadyExists("d".into()),
            Error::TableExists(s()),
            Error::NoSuchTable(s()),
            Error::UndefinedColumn(s()),
            Error::LimitExceeded(s()),
            Error::InvalidName(s()),
            Error::ColumnCount {
                table: s(),
                expected: 2,
                got: 3,
            },
            Error::UniqueViolation {
                constraint: s(),
                columns: s(),
                values: s(),
            },
            Error::InvalidTableDefinition(s()),
            Error::Canceled(s()),
            Error::Deadlock { xid: 1, holder: 2 },
            Error::LockTimeout {
                xid: 1,
                holder: 2,
                waited_ms: 3,
            },
            Error::Failpoint(crate::failpoint::Failpoint::FlipApplied),
            Error::Redistribution(s()),
            Error::DmlDrainTimeout {
                table: s(),
                cap_us: 1,
                attempts: 1,
            },
            Error::TxnAborted { xid: 1, cause: s() },
        ]
    }

    /// Acceptance of issue 10 (item 4): every error variant maps to a code and a
    /// SQLSTATE, and `docs/errors.md` lists exactly those pairs.
    #[test]
    fn errors_doc_lists_every_variant() {
        let doc = include_str!("../../docs/errors.md");
        let rows: std::collections::BTreeSet<(String, String)> = doc
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let state = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
                Some((code.to_string(), state.to_string()))
            })
            .collect();
        let errors = one_of_each();
        let mut seen = [false; VARIANTS];
        let mut pairs = std::collections::BTreeSet::new();
        for e in &errors {
            let i = if e.code() == "disk_full" {
                24
            } else {
                index(e)
            };
            seen[i] = true;
            let state = e.sqlstate();
            assert!(
                state.len() == 5 && state.chars().all(|c| c.is_ascii_alphanumeric()),
                "{e:?}: {state}"
            );
            pairs.insert((e.code().to_string(), state.to_string()));
        }
        assert!(seen.iter().all(|s| *s), "a variant has no sample: {seen:?}");
        assert_eq!(pairs, rows, "docs/errors.md and Error::codes disagree");
    }
}
