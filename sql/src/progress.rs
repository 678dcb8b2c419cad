//! The progress views of the operator workflow: `gpexpand.expansion_progress` and
//! `gpshrink.shrink_progress` (`name`, `value`), computed at each read from the schema's
//! ordinary tables `status` and `status_detail` and the engine's redistribution state.
//!
//! gpexpand's view counts finished tables only; ours also counts the finished blocks of
//! tables in progress (and of tables a deadline stopped part way), so the rate and the
//! time to completion move as the work does. The rate is the bytes moved by the
//! redistribution statements of the current run (since the latest `… STARTED` status
//! row) over the run's time so far; the time to completion is the bytes left over it.

use crate::catalog::TableRows;
use crate::error::SqlResult;
use crate::Session;
use segexpand_engine::{Type, Value};

/// Which workflow a view belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Workflow {
    /// `gpexpand`: `expansion_progress`, `EXPANSION STARTED/STOPPED/COMPLETE`.
    Expand,
    /// `gpshrink`: `shrink_progress`, `SHRINK STARTED/STOPPED/COMPLETE`.
    Shrink,
}

impl Workflow {
    /// The workflow whose progress view is `schema.name`, if any.
    pub(crate) fn of_view(schema: &str, name: &str) -> Option<Self> {
        match (schema, name) {
            ("gpexpand", "expansion_progress") => Some(Self::Expand),
            ("gpshrink", "shrink_progress") => Some(Self::Shrink),
            _ => None,
        }
    }

    fn schema(self) -> &'static str {
        match self {
            Self::Expand => "gpexpand",
            Self::Shrink => "gpshrink",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Self::Expand => "EXPANSION",
            Self::Shrink => "SHRINK",
        }
    }
}

/// One row of `status_detail` as the view needs it.
struct Detail {
    table: String,
    status: String,
    bytes: f64,
}

/// Reads the rows of the engine table `table`, only the named columns, in that order.
fn read(s: &Session, table: &str, columns: &[&str]) -> SqlResult<Vec<Vec<Value>>> {
    let def = s
        .node
        .table_def(table)
        .map_err(|_| crate::error::SqlError::undefined_table(table))?;
    let idx: Vec<Option<usize>> = columns.iter().map(|c| def.column_index(c)).collect();
    let mut tx = s.node.begin()?;
    let rows = tx.scan(table, None)?;
    tx.rollback()?;
    Ok(rows
        .into_iter()
        .map(|r| {
            idx.iter()
                .map(|i| i.and_then(|i| r.get(i).cloned()).unwrap_or(Value::Null))
                .collect()
        })
        .collect())
}

fn text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        Value::Null => String::new(),
        other => format!("{other:?}"),
    }
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Int2(n) => f64::from(*n),
        Value::Int4(n) => f64::from(*n),
        Value::Int8(n) => *n as f64,
        Value::Float8(f) => *f,
        Value::Numeric(n) => n.to_string().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// The engine name of a `schema.table` name (`public.t` is `t`).
fn engine_name(fq: &str) -> String {
    let (schema, name) = fq.split_once('.').unwrap_or((crate::schema::PUBLIC, fq));
    crate::schema::engine_name(schema, name)
}

/// Fraction of a table's move done: 1 for a finished table, the phase's finished blocks
/// while it redistributes, else 0.
fn fraction(s: &Session, table: &str, completed: bool) -> f64 {
    if completed {
        return 1.0;
    }
    match s.node.redistribution_progress(table) {
        Ok(Some(p)) if !p.cancelling && p.blocks_total > 0 => {
            p.blocks_done as f64 / p.blocks_total as f64
        }
        _ => 0.0,
    }
}

/// `00:01:02.345678` from seconds (PostgreSQL's interval text).
fn interval(secs: f64) -> String {
    let us = (secs.max(0.0) * 1e6).round() as u64;
    let t = us / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        t / 3600,
        (t / 60) % 60,
        t % 60,
        us % 1_000_000
    )
}

/// The rows of the progress view of `w`.
pub(crate) fn view(s: &Session, w: Workflow) -> SqlResult<TableRows> {
    let schema = w.schema();
    let details: Vec<Detail> = read(
        s,
        &format!("{schema}.status_detail"),
        &["fq_name", "status", "source_bytes"],
    )?
    .into_iter()
    .map(|r| Detail {
        table: engine_name(&r.first().map(text).unwrap_or_default()),
        status: r.get(1).map(text).unwrap_or_default(),
        bytes: r.get(2).map(number).unwrap_or(0.0),
    })
    .collect();
    let statuses = read(s, &format!("{schema}.status"), &["status", "updated"])?;
    let at = |v: Option<&Value>| match v {
        Some(Value::Timestamp(t)) => Some(*t),
        _ => None,
    };
    let started = format!("{} STARTED", w.word());
    let run_start = statuses
        .iter()
        .filter(|r| r.first().map(text).as_deref() == Some(started.as_str()))
        .filter_map(|r| at(r.get(1)))
        .max();
    let run_end = run_start.and_then(|start| {
        statuses
            .iter()
            .filter(|r| {
                let st = r.first().map(text).unwrap_or_default();
                st == format!("{} STOPPED", w.word()) || st == format!("{} COMPLETE", w.word())
            })
            .filter_map(|r| at(r.get(1)))
            .filter(|t| *t >= start)
            .max()
    });

    let (mut done_tables, mut left_tables, mut running_tables) = (0i64, 0i64, 0i64);
    let (mut done, mut left, mut running) = (0f64, 0f64, 0f64);
    let mut fractions = std::collections::HashMap::new();
    for d in &details {
        let completed = d.status == "COMPLETED";
        let f = fraction(s, &d.table, completed);
        fractions.insert(d.table.clone(), f);
        done += d.bytes * f;
        match d.status.as_str() {
            "COMPLETED" => done_tables += 1,
            "NOT STARTED" => {
                left_tables += 1;
                left += d.bytes * (1.0 - f);
            }
            "IN PROGRESS" => {
                running_tables += 1;
                running += d.bytes * (1.0 - f);
            }
            _ => {}
        }
    }
    // The rate: bytes this run's statements moved over the run's time so far.
    let (mut rate, mut eta) = (None, None);
    if let Some(start) = run_start {
        let end = run_end.unwrap_or_else(crate::now_micros);
        let secs = (end - start) as f64 / 1e6;
        let bytes_of: std::collections::HashMap<&str, f64> = details
            .iter()
            .map(|d| (d.table.as_str(), d.bytes))
            .collect();
        let moved: f64 = crate::admin::runs_of(s)
            .iter()
            .filter(|r| r.started_us >= start)
            .filter_map(|r| {
                let b = bytes_of.get(r.table.as_str())?;
                let f = fractions.get(&r.table).copied().unwrap_or(0.0);
                Some(b * (f - r.done_at_start).max(0.0))
            })
            .sum();
        if secs > 0.0 && moved > 0.0 {
            let r = moved / secs;
            rate = Some(r);
            eta = Some((left + running) / r);
        }
    }
    let name_value = |n: &str, v: Option<String>| {
        vec![Value::Text(n.into()), v.map_or(Value::Null, Value::Text)]
    };
    let done_word = match w {
        Workflow::Expand => "Tables Expanded",
        Workflow::Shrink => "Tables Shrunk",
    };
    let rate_word = match w {
        Workflow::Expand => "Estimated Expansion Rate",
        Workflow::Shrink => "Estimated Shrink Rate",
    };
    let rows = vec![
        name_value(done_word, Some(done_tables.to_string())),
        name_value("Tables Left", Some(left_tables.to_string())),
        name_value("Tables In Progress", Some(running_tables.to_string())),
        name_value("Bytes Done", Some(format!("{}", done.round() as i64))),
        name_value("Bytes Left", Some(format!("{}", left.round() as i64))),
        name_value(
            "Bytes In Progress",
            Some(format!("{}", running.round() as i64)),
        ),
        name_value(
            rate_word,
            rate.map(|r| format!("{:.2} MB/s", r / 1024.0 / 1024.0)),
        ),
        name_value("Estimated Time to Completion", eta.map(interval)),
    ];
    Ok((
        vec![("name".into(), Type::Text), ("value".into(), Type::Text)],
        rows,
    ))
}
