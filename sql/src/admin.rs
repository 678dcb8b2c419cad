//! The operator's statements behind `segexpand gpexpand` / `gpshrink` (which are clients,
//! as gpexpand is): adding a segment from an input-file row, retiring segments,
//! `ALTER TABLE … SHRINK TABLE TO n`, the relation `segexpand_tables` (every table's
//! layout and its redistribution's progress), and the record of the redistributions
//! this server ran, from which the progress views estimate a rate.

use crate::catalog::TableRows;
use crate::error::{SqlError, SqlResult};
use crate::split::Literal;
use crate::{Output, Session};
use segexpand_engine::{Layout, SegmentConfig, Type, Value};
use std::sync::Mutex;

/// One redistribution statement this server process ran (or runs): when, and how far
/// the table's phase was at its start and is at its end, so a rate can be derived.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    node: usize,
    /// The engine's table name.
    pub table: String,
    /// Start (microseconds since 2000-01-01 UTC).
    pub started_us: i64,
    /// The end, once it returned.
    pub ended_us: Option<i64>,
    /// Fraction of the table's work done when it started (0 for a fresh start).
    pub done_at_start: f64,
}

static RUNS: Mutex<Vec<Run>> = Mutex::new(Vec::new());

fn node_id(s: &Session) -> usize {
    std::sync::Arc::as_ptr(&s.node) as usize
}

fn runs() -> std::sync::MutexGuard<'static, Vec<Run>> {
    RUNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the start of a redistribution statement on `table`.
pub(crate) fn run_started(s: &Session, table: &str, done_at_start: f64) {
    let node = node_id(s);
    let mut r = runs();
    r.retain(|x| !(x.node == node && x.table == table));
    r.push(Run {
        node,
        table: table.to_string(),
        started_us: crate::now_micros(),
        ended_us: None,
        done_at_start,
    });
}

/// Records the end of the statement [`run_started`] recorded.
pub(crate) fn run_ended(s: &Session, table: &str) {
    let node = node_id(s);
    if let Some(x) = runs()
        .iter_mut()
        .find(|x| x.node == node && x.table == table)
    {
        x.ended_us = Some(crate::now_micros());
    }
}

/// The redistribution runs of this session's node.
pub(crate) fn runs_of(s: &Session) -> Vec<Run> {
    let node = node_id(s);
    runs().iter().filter(|x| x.node == node).cloned().collect()
}

/// `SELECT segexpand_add_segment(hostname, address, port, datadir, dbid, content)` and
/// `SELECT segexpand_retire_segments(n)`.
pub(crate) fn call(s: &mut Session, f: &str, args: &[Literal]) -> SqlResult<Output> {
    if s.status != crate::TxnStatus::Idle {
        return Err(SqlError::new(
            "25001",
            format!("{f} cannot run inside a transaction block"),
        ));
    }
    let bad_args = |sig: &str| SqlError::new("42883", format!("function {f}({sig}) expected"));
    let ids: Vec<u16> = match f {
        "segexpand_operator_lock" => {
            let [Literal::Text(name)] = args else {
                return Err(bad_args("name text"));
            };
            operator_lock(s, name)?;
            return Ok(crate::one_value(f, Type::Bool, "t".into()));
        }
        "segexpand_add_segment" | "segexpand_check_segment" => {
            const SIG: &str = "hostname text, address text, port int, datadir text, dbid int, \
                               content int";
            let [Literal::Text(host), Literal::Text(addr), Literal::Int(port), Literal::Text(dir), Literal::Int(dbid), Literal::Int(content)] =
                args
            else {
                return Err(bad_args(SIG));
            };
            let range = |what: &str, v: i64, lo: i64, hi: i64| -> SqlResult<u16> {
                if (lo..=hi).contains(&v) {
                    u16::try_from(v).map_err(|_| SqlError::new("22003", "out of range"))
                } else {
                    Err(SqlError::new(
                        "22023",
                        format!("{f}: {what} must be {lo}..={hi}, got {v}"),
                    ))
                }
            };
            let config = SegmentConfig {
                dbid: range("dbid", *dbid, 1, i64::from(u16::MAX))?,
                port: range("port", *port, 1, 65_535)?,
                hostname: host.clone(),
                address: addr.clone(),
                ..SegmentConfig::local(range("content", *content, 0, 4095)?, dir.clone())
            };
            if f == "segexpand_check_segment" {
                s.node.check_new_segment(config)?;
                return Ok(crate::one_value(f, Type::Bool, "t".into()));
            }
            vec![s.node.add_segment_with(config)?]
        }
        "segexpand_retire_segments" => {
            let [Literal::Int(n)] = args else {
                return Err(bad_args("n int"));
            };
            let have = s.node.segments().len() as i64;
            if !(1..have).contains(n) {
                return Err(SqlError::new(
                    "22023",
                    format!(
                        "{f}: n must be 1..={} (the node has {have} segments and keeps one)",
                        have - 1
                    ),
                ));
            }
            let mut out = Vec::new();
            for _ in 0..*n {
                out.push(s.node.retire_segment()?);
            }
            out
        }
        _ => {
            return Err(SqlError::new(
                "42883",
                format!("function {f} does not exist"),
            ))
        }
    };
    Ok(Output::Rows {
        columns: vec![crate::Column {
            name: f.to_string(),
            ty: Type::Text,
        }],
        rows: vec![vec![Some(format!(
            "{{{}}}",
            ids.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
        ))]],
    })
}

/// Operator locks: (node, name, holding session), held until the session ends.
static LOCKS: Mutex<Vec<(usize, String, usize)>> = Mutex::new(Vec::new());

fn session_token(s: &Session) -> usize {
    std::sync::Arc::as_ptr(&s.info.cancel) as usize
}

/// `SELECT segexpand_operator_lock('gpexpand')`: one gpexpand (gpshrink) run at a time
/// per node. Held by the session until it ends (the client exits or dies); 55P03 while
/// another session holds it.
fn operator_lock(s: &Session, name: &str) -> SqlResult<()> {
    let (node, me) = (node_id(s), session_token(s));
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    match locks.iter().find(|(n, l, _)| *n == node && l == name) {
        Some((_, _, holder)) if *holder == me => Ok(()),
        Some(_) => Err(SqlError::new(
            "55P03",
            format!("another {name} is running on this node (its session holds the lock)"),
        )),
        None => {
            locks.push((node, name.to_string(), me));
            Ok(())
        }
    }
}

/// Releases the session's operator locks (it is ending).
pub(crate) fn release_locks(s: &Session) {
    let (node, me) = (node_id(s), session_token(s));
    LOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(n, _, h)| !(*n == node && *h == me));
}

/// `ALTER TABLE t SHRINK TABLE TO n`: redistributes `t` onto segments `0..n`, online.
pub(crate) fn shrink(s: &mut Session, table: &crate::schema::RelName, n: i64) -> SqlResult<Output> {
    let table = &crate::schema::table(s, table, crate::schema::Missing::SchemaFirst)?.engine;
    let def = s
        .node
        .table_def(table)
        .map_err(|_| SqlError::undefined_table(table))?;
    let have = i64::from(def.layout.segments);
    let target_now = def.target().map(|t| i64::from(t.segments));
    if n == have && def.redistribution.is_none() {
        s.notices
            .push(format!("table \"{table}\" is already on {n} segments"));
        return Ok(Output::Command("ALTER TABLE".into()));
    }
    if n > have && def.redistribution.is_none() {
        s.notices.push(format!(
            "table \"{table}\" is on {have} segments, already fewer than {n}"
        ));
        return Ok(Output::Command("ALTER TABLE".into()));
    }
    if n < 1 || (n > have && target_now != Some(n)) {
        return Err(SqlError::new(
            "22023",
            format!(
                "cannot shrink table \"{table}\" from {have} to {n} segments (use EXPAND \
                 TABLE to grow it)"
            ),
        ));
    }
    let target = Layout {
        segments: u16::try_from(n).map_err(|_| SqlError::new("22003", "out of range"))?,
        ..def.layout.clone()
    };
    crate::ddl::redistribute(s, table, target)
}

/// `segexpand_tables`: one row per user table — its name as `schema.table`, segments,
/// state (`stable`, `redistributing`, `cancelling`), target segments, the phase's
/// blocks and finished blocks, and its heap bytes.
pub(crate) fn tables_relation(s: &Session) -> TableRows {
    let cols = [
        ("fq_name", Type::Text),
        ("table_oid", Type::Int8),
        ("segments", Type::Int4),
        ("state", Type::Text),
        ("target_segments", Type::Int4),
        ("blocks_total", Type::Int8),
        ("blocks_done", Type::Int8),
        ("bytes", Type::Int8),
        ("distribution", Type::Text),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), *t))
    .collect();
    let mut rows = Vec::new();
    for def in s.node.tables() {
        let name = def.name.clone();
        let p = s.node.redistribution_progress(&name).ok().flatten();
        let state = match p {
            None => "stable",
            Some(p) if p.cancelling => "cancelling",
            Some(_) => "redistributing",
        };
        let (schema, bare) = crate::schema::split_engine(&name);
        let fq = format!("{schema}.{bare}");
        rows.push(vec![
            Value::Text(fq),
            Value::Int8(crate::catalog::table_oid(&def)),
            Value::Int4(i32::from(def.layout.segments)),
            Value::Text(state.into()),
            p.map_or(Value::Null, |p| Value::Int4(i32::from(p.target_segments))),
            p.map_or(Value::Null, |p| Value::Int8(p.blocks_total as i64)),
            p.map_or(Value::Null, |p| Value::Int8(p.blocks_done as i64)),
            Value::Int8(s.node.table_bytes(&name).unwrap_or(0) as i64),
            Value::Text(if def.layout.is_random() {
                "random".into()
            } else {
                "hash".into()
            }),
        ]);
    }
    (cols, rows)
}
