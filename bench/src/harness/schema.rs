//! The checking workload's two tables and their rows: `demo_accounts`, the rows the workload reads
//! and changes and the redistribution moves, and `demo_meta`, one row (`Meta`) of what
//! `demo_accounts` must hold, written in the same transactions as the rows; and what a
//! scan of `demo_accounts` found (`Observed`), with how it differs from `Meta`.

use super::{bad, Error, Node, Row, Txn, Value};
use std::sync::Arc;

/// The table the demo loads, changes and redistributes.
pub(super) const TABLE: &str = "demo_accounts";
/// The one-row table of what `TABLE` must hold (see the module comment).
pub(super) const META: &str = "demo_meta";

/// The balance row `id` is loaded with.
fn balance(id: u64) -> i64 {
    (id.wrapping_mul(7919) % 100_000) as i64
}

/// Row `id` as the bulk load writes it: id, balance, and a deterministic note of
/// `note_len` characters (the demo's 70 make rows of about 100 bytes).
pub(super) fn row(id: u64, note_len: usize) -> Row {
    let note: String = (0..note_len as u64)
        .map(|i| (b'a' + ((id + i) % 26) as u8) as char)
        .collect();
    vec![
        Value::Int8(id as i64),
        Value::Int8(balance(id)),
        Value::Text(note),
    ]
}

/// Column `i` of `r` as an integer (`i64::MIN` when it is not one).
pub(super) fn int(r: &[Value], i: usize) -> i64 {
    r.get(i).and_then(Value::as_int).unwrap_or(i64::MIN)
}

/// The row of `META`: what `TABLE` must hold, kept in the same transactions as the rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Meta {
    /// Rows the load was asked for (`--rows` of the run that created the table).
    pub(super) requested: i64,
    /// Rows loaded, and recorded here, so far.
    pub(super) loaded: i64,
    /// End of the load batch in flight (`loaded` when none): its rows are ids
    /// `loaded..loading_to`, committed or not.
    pub(super) loading_to: i64,
    /// Rows the table must hold.
    pub(super) rows: i64,
    /// Sum of the balances (transfers keep it).
    pub(super) balance_sum: i64,
    /// Sum of the ids (wrapping; a DELETE + INSERT under a new id changes it).
    pub(super) id_sum: i64,
    /// Committed DML transactions (transfers), over every run.
    pub(super) transfers: i64,
    /// The next id a replaced row gets.
    pub(super) next_id: i64,
}

/// The columns of `META` after its key `id` (always 0), in `Meta`'s order.
pub(super) const META_COLUMNS: [&str; 8] = [
    "rows_requested",
    "rows_loaded",
    "loading_to",
    "rows",
    "balance_sum",
    "id_sum",
    "transfers",
    "next_id",
];

impl Meta {
    pub(super) fn to_row(self) -> Row {
        [
            0,
            self.requested,
            self.loaded,
            self.loading_to,
            self.rows,
            self.balance_sum,
            self.id_sum,
            self.transfers,
            self.next_id,
        ]
        .into_iter()
        .map(Value::Int8)
        .collect()
    }

    pub(super) fn from_row(r: &[Value]) -> Option<Meta> {
        if r.len() != META_COLUMNS.len() + 1 || int(r, 0) != 0 {
            return None;
        }
        let f = |i: usize| r.get(i).and_then(Value::as_int);
        Some(Meta {
            requested: f(1)?,
            loaded: f(2)?,
            loading_to: f(3)?,
            rows: f(4)?,
            balance_sum: f(5)?,
            id_sum: f(6)?,
            transfers: f(7)?,
            next_id: f(8)?,
        })
    }

    /// The meta row once ids `self.loaded..end` are loaded.
    pub(super) fn loaded_through(self, end: i64) -> Meta {
        let (mut b, mut i) = (self.balance_sum, self.id_sum);
        for id in self.loaded.max(0)..end.max(0) {
            b = b.wrapping_add(balance(id as u64));
            i = i.wrapping_add(id);
        }
        Meta {
            loaded: end,
            loading_to: end,
            rows: self.rows + (end - self.loaded),
            balance_sum: b,
            id_sum: i,
            next_id: self.next_id.max(end),
            ..self
        }
    }
}

/// What a scan of `TABLE` found.
#[derive(Debug, Default)]
pub(super) struct Observed {
    /// Every id, sorted (duplicates kept).
    pub(super) ids: Vec<i64>,
    pub(super) balance_sum: i64,
    pub(super) id_sum: i64,
}

impl Observed {
    fn rows(&self) -> i64 {
        self.ids.len() as i64
    }
    pub(super) fn matches(&self, m: &Meta) -> bool {
        self.rows() == m.rows && self.balance_sum == m.balance_sum && self.id_sum == m.id_sum
    }
    /// What differs from `m`, for a message.
    pub(super) fn differences(&self, m: &Meta) -> String {
        let mut d = Vec::new();
        let (have, want) = (self.rows(), m.rows);
        if have < want {
            d.push(format!(
                "{} rows lost: demo_accounts holds {have} rows, {want} were committed",
                want - have
            ));
        } else if have > want {
            d.push(format!(
                "{} rows more than were committed: demo_accounts holds {have} rows, {want} \
                 were committed",
                have - want
            ));
        }
        if self.balance_sum != m.balance_sum {
            d.push(format!(
                "the sum of balances is {}, {} was committed",
                self.balance_sum, m.balance_sum
            ));
        }
        if self.id_sum != m.id_sum && have == want {
            d.push(format!(
                "the rows' ids are not the committed ones (id sum {}, expected {})",
                self.id_sum, m.id_sum
            ));
        }
        d.join("; ")
    }
}

/// Scans every row of `TABLE` in `tx`.
pub(super) fn scan_table(tx: &mut Txn) -> Result<Observed, Error> {
    let mut o = Observed::default();
    tx.scan_with(TABLE, |r| {
        let id = int(r, 0);
        o.ids.push(id);
        o.balance_sum = o.balance_sum.wrapping_add(int(r, 1));
        o.id_sum = o.id_sum.wrapping_add(id);
    })?;
    o.ids.sort_unstable();
    Ok(o)
}

/// The `META` row, read in `tx`: exactly one well-formed row, or an error saying what
/// is there instead.
pub(super) fn read_meta(tx: &mut Txn) -> Result<Option<Meta>, Error> {
    let rows = tx.scan(META, None)?;
    match rows.as_slice() {
        [] => Ok(None),
        [r] => Meta::from_row(r).map(Some).ok_or_else(|| {
            bad(format!(
                "{META} holds a row that is not a demo_meta row ({r:?}): cannot check what \
                 the earlier runs committed; nothing was changed (start over with --fresh)"
            ))
        }),
        more => Err(bad(format!(
            "{META} holds {} rows, it must hold one: cannot check what the earlier runs \
             committed; nothing was changed (start over with --fresh)",
            more.len()
        ))),
    }
}

/// Writes the meta row in a transaction of its own.
pub(super) fn write_meta(node: &Arc<Node>, m: Meta) -> Result<(), Error> {
    let mut tx = node.begin()?;
    let n = tx.update(META, &[Value::Int8(0)], |_| m.to_row())?;
    if n != 1 {
        return Err(bad(format!(
            "the {META} row is missing (update found {n} rows)"
        )));
    }
    tx.commit()
}
