//! DDL and utility statements: CREATE TABLE with Greenplum's distribution clause, DROP,
//! TRUNCATE, VACUUM, SET and SHOW, and redistribution through SQL (`ALTER TABLE …
//! EXPAND TABLE`, `ALTER TABLE … SET DISTRIBUTED BY`).
//!
//! DDL is not transactional here: it takes effect when it runs, also inside a
//! transaction block (PostgreSQL would roll it back with the block).

use crate::defaults;
use crate::error::{SqlError, SqlResult};
use crate::expr::{ident, sql_type};
use crate::schema::{self, Lookup, Missing, RelName};
use crate::split::Distribution;
use crate::{Output, Session};
use segexpand_engine::{Layout, TableSpec};
use segexpand_redistributor::{Finish, Options, Redistributor};
use sqlparser::ast::{self as ast, ColumnOption, Statement};

pub(crate) fn create_table(
    s: &mut Session,
    ct: &ast::CreateTable,
    distribution: Option<Distribution>,
) -> SqlResult<Output> {
    let target = schema::ddl::create_target(s, &RelName::of(&ct.name)?)?;
    let name = target.engine.clone();
    if ct.query.is_some() || ct.like.is_some() {
        return Err(SqlError::unsupported(
            "CREATE TABLE AS / LIKE is not supported",
        ));
    }
    if ct.temporary || ct.external {
        return Err(SqlError::unsupported(
            "TEMPORARY and EXTERNAL tables are not supported",
        ));
    }
    // (name, columns, primary) of each PRIMARY KEY / UNIQUE, inline or table constraint.
    let mut keys: Vec<(Option<String>, Vec<String>, bool)> = Vec::new();
    for c in &ct.constraints {
        keys.push(key_constraint(c)?);
    }
    if s.node.table_id(&name).is_some() {
        let bare = &target.name;
        if ct.if_not_exists {
            s.notices
                .push(format!("relation \"{bare}\" already exists, skipping"));
            return Ok(Output::Command("CREATE TABLE".into()));
        }
        return Err(SqlError::new(
            "42P07",
            format!("relation \"{bare}\" already exists"),
        ));
    }
    if ct.columns.is_empty() {
        return Err(SqlError::unsupported("a table needs at least one column"));
    }
    let mut spec = TableSpec::new(&name);
    let mut names: Vec<String> = Vec::new();
    for c in &ct.columns {
        let cname = ident(&c.name);
        if names.contains(&cname) {
            return Err(SqlError::new(
                "42701",
                format!("column \"{cname}\" specified more than once"),
            ));
        }
        let ty = sql_type(&c.data_type)?;
        let mut not_null = false;
        let mut default = None;
        for o in &c.options {
            let named = o.name.as_ref().map(ident);
            match &o.option {
                ColumnOption::NotNull => not_null = true,
                ColumnOption::Null => not_null = false,
                ColumnOption::Default(e) => default = Some(defaults::check(e, &cname, ty)?),
                ColumnOption::PrimaryKey(_) => keys.push((named, vec![cname.clone()], true)),
                ColumnOption::Unique(_) => keys.push((named, vec![cname.clone()], false)),
                other => {
                    return Err(SqlError::unsupported(format!(
                        "column option {other} is not supported"
                    )))
                }
            }
        }
        spec = if not_null {
            spec.not_null(&cname, ty)
        } else {
            spec.column(&cname, ty)
        };
        if let Some(d) = default {
            spec = spec.default(&cname, &d);
        }
        names.push(cname);
    }
    let mut named: Vec<String> = Vec::new();
    for (name, cols, primary) in &keys {
        let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
        // The engine names an unnamed key after the engine's table name, `s.t_pkey` in
        // schema s: a table outside public gets PostgreSQL's `t_pkey` from here.
        let name = match name {
            None if target.schema != schema::PUBLIC => {
                Some(schema::ddl::key_name(&target.name, cols, *primary, &named))
            }
            other => other.clone(),
        };
        named.extend(name.clone());
        spec = if *primary {
            spec.primary_key(name.as_deref(), &refs)
        } else {
            spec.unique(name.as_deref(), &refs)
        };
    }
    spec = match distribution {
        Some(Distribution::By(cols)) => {
            for c in &cols {
                if !names.contains(c) {
                    return Err(SqlError::new(
                        "42703",
                        format!("column \"{c}\" named in 'DISTRIBUTED BY' clause does not exist"),
                    ));
                }
            }
            let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
            spec.distributed_by(&refs)
        }
        Some(Distribution::Randomly) => spec.distributed_randomly(),
        Some(Distribution::Replicated) => {
            return Err(SqlError::unsupported(
                "DISTRIBUTED REPLICATED is not supported: tables are hash or randomly distributed",
            ))
        }
        None => {
            // Greenplum's default: the primary key's columns, else the first unique
            // constraint's, else the first column of a hashable type (every type here
            // hashes).
            let cols: Vec<String> = keys
                .iter()
                .find(|k| k.2)
                .or(keys.first())
                .map(|k| k.1.clone())
                .unwrap_or_else(|| names.iter().take(1).cloned().collect());
            s.notices.push(if keys.is_empty() {
                format!(
                    "Table doesn't have 'DISTRIBUTED BY' clause -- Using column named '{}' as \
                     the Greenplum Database data distribution key for this table.",
                    cols.join(", ")
                )
            } else {
                format!(
                    "Table doesn't have 'DISTRIBUTED BY' clause -- Using column(s) named \
                     '{}' as the Greenplum Database data distribution key for this table.",
                    cols.join(", ")
                )
            });
            let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
            spec.distributed_by(&refs)
        }
    };
    schema::ddl::while_schema_exists(s, &target, || Ok(s.node.create_table(&spec)?))?;
    Ok(Output::Command("CREATE TABLE".into()))
}

pub(crate) fn drop_or_truncate(s: &mut Session, stmt: &Statement) -> SqlResult<Output> {
    match stmt {
        Statement::Drop {
            object_type: ast::ObjectType::Table,
            if_exists,
            names,
            ..
        } => {
            // Every name is looked up before anything is dropped (PostgreSQL's
            // messages: the bare name of a missing table, a missing schema first).
            let mut tables = Vec::new();
            for n in names {
                let r = RelName::of(n)?;
                match schema::lookup(s, &r)? {
                    Lookup::Found(t) => tables.push(t),
                    Lookup::NoSchema(sch) if *if_exists => s
                        .notices
                        .push(format!("schema \"{sch}\" does not exist, skipping")),
                    Lookup::NoSchema(sch) => return Err(schema::no_schema(&sch)),
                    Lookup::NoTable if *if_exists => s
                        .notices
                        .push(format!("table \"{}\" does not exist, skipping", r.name)),
                    Lookup::NoTable => {
                        return Err(SqlError::new(
                            "42P01",
                            format!("table \"{}\" does not exist", r.name),
                        ))
                    }
                }
            }
            for t in &tables {
                schema::ddl::keep_schema_of(s, t);
                with_txn(s, |tx| tx.drop_table(&t.engine))?;
            }
            Ok(Output::Command("DROP TABLE".into()))
        }
        Statement::Drop {
            object_type: ast::ObjectType::Schema,
            if_exists,
            names,
            cascade,
            ..
        } => schema::ddl::drop_schema(s, names, *if_exists, *cascade),
        Statement::Drop { object_type, .. } => Err(SqlError::unsupported(format!(
            "DROP {object_type} is not supported"
        ))),
        Statement::Truncate(t) => {
            let tables: Vec<String> = t
                .table_names
                .iter()
                .map(|n| {
                    let r = RelName::of(&n.name)?;
                    Ok(schema::table(s, &r, Missing::SchemaFirst)?.engine)
                })
                .collect::<SqlResult<_>>()?;
            for name in &tables {
                // Inside a transaction that wrote to the table, TRUNCATE must not wait
                // for that very transaction.
                with_txn(s, |tx| tx.truncate(name))?;
            }
            Ok(Output::Command("TRUNCATE TABLE".into()))
        }
        _ => Err(SqlError::unsupported("statement not supported")),
    }
}

pub(crate) fn vacuum(s: &mut Session, tables: &[RelName]) -> SqlResult<Output> {
    let names: Vec<String> = if tables.is_empty() {
        s.node.tables().into_iter().map(|t| t.name).collect()
    } else {
        tables
            .iter()
            .map(|r| Ok(schema::table(s, r, Missing::SchemaFirst)?.engine))
            .collect::<SqlResult<_>>()?
    };
    for t in &names {
        s.node.vacuum(t)?;
    }
    Ok(Output::Command("VACUUM".into()))
}

pub(crate) fn set(s: &mut Session, set: &ast::Set) -> SqlResult<Output> {
    s.settings_version += 1;
    match set {
        ast::Set::SingleAssignment {
            variable, values, ..
        } => {
            let name = variable.to_string().to_lowercase();
            let value = values
                .iter()
                .map(|v| match v {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::SingleQuotedString(s) => s.clone(),
                        other => other.to_string(),
                    },
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            if name == ROWS_PER_S_SETTING {
                rows_per_s(&value)?;
            }
            if name == DEADLINE_SETTING {
                deadline(&value)?;
            }
            if name == "default_transaction_isolation" || name == "transaction_isolation" {
                let v = value.to_lowercase();
                if !matches!(
                    v.as_str(),
                    "read committed" | "read uncommitted" | "default"
                ) {
                    return Err(crate::unsupported_modes());
                }
            }
            s.settings.insert(name, value);
        }
        ast::Set::SetTransaction { modes, .. } if !crate::modes_supported(modes) => {
            return Err(crate::unsupported_modes());
        }
        ast::Set::SetTimeZone { value, .. } => {
            s.settings.insert("timezone".into(), value.to_string());
        }
        _ => {}
    }
    Ok(Output::Command("SET".into()))
}

pub(crate) fn show(s: &mut Session, variable: &[ast::Ident]) -> SqlResult<Output> {
    let name = variable.iter().map(ident).collect::<Vec<_>>().join(" ");
    let name = match name.as_str() {
        "transaction isolation level" => "transaction_isolation".to_string(),
        "time zone" => "timezone".to_string(),
        _ => name,
    };
    // `SHOW segexpand.x` arrives as two words.
    let dotted = variable.iter().map(ident).collect::<Vec<_>>().join(".");
    let name = if s.settings.contains_key(&name) || !s.settings.contains_key(&dotted) {
        name
    } else {
        dotted
    };
    let Some(v) = s.settings.get(&name) else {
        return Err(SqlError::new(
            "42704",
            format!("unrecognized configuration parameter \"{name}\""),
        ));
    };
    Ok(Output::Rows {
        columns: vec![crate::Column {
            name,
            ty: segexpand_engine::Type::Text,
        }],
        rows: vec![vec![Some(v.clone())]],
    })
}

/// The session setting that throttles this session's redistributions (rows moved per
/// second; `0` or `unlimited`: no throttle).
pub(crate) const ROWS_PER_S_SETTING: &str = "segexpand.redistribute_rows_per_second";

/// The session setting that makes this session's redistributions run offline, the
/// gpexpand way (`on`): the table is locked and every row rewritten.
pub(crate) const OFFLINE_SETTING: &str = "segexpand.redistribute_offline";

/// The session setting that stops this session's redistributions at a time (UTC,
/// `YYYY-MM-DD hh:mm:ss`; empty or `none`: no deadline) after the batches in flight,
/// keeping their work: gpexpand's `-d`/`-e`.
pub(crate) const DEADLINE_SETTING: &str = "segexpand.redistribute_deadline";

/// Parses [`DEADLINE_SETTING`]'s value into microseconds since 2000-01-01 UTC.
fn deadline(v: &str) -> SqlResult<Option<i64>> {
    let v = v.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match crate::value::from_text(segexpand_engine::Type::Timestamp, v) {
        Ok(segexpand_engine::Value::Timestamp(t)) => Ok(Some(t)),
        _ => Err(SqlError::new(
            "22023",
            format!(
                "invalid value for parameter \"{DEADLINE_SETTING}\": \"{v}\" (a UTC time \
                 YYYY-MM-DD hh:mm:ss, or none)"
            ),
        )),
    }
}

/// Parses [`ROWS_PER_S_SETTING`]'s value (22023 if it is not a number in range).
fn rows_per_s(v: &str) -> SqlResult<Option<f64>> {
    let v = v.trim();
    if v == "0" || v.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let (lo, hi) = segexpand_redistributor::ROWS_PER_S_RANGE;
    match v.parse::<f64>() {
        Ok(n) if n.is_finite() && (lo..=hi).contains(&n) => Ok(Some(n)),
        _ => Err(SqlError::new(
            "22023",
            format!(
                "invalid value for parameter \"{ROWS_PER_S_SETTING}\": \"{v}\" (a number of \
                 rows per second from {lo} to {hi}, or 0 for no limit)"
            ),
        )),
    }
}

pub(crate) fn redistribute(s: &mut Session, table: &str, target: Layout) -> SqlResult<Output> {
    if s.status != crate::TxnStatus::Idle {
        return Err(SqlError::new(
            "25001",
            "a redistribution cannot run inside a transaction block",
        ));
    }
    let opts = Options {
        rows_per_s: match s.settings.get(ROWS_PER_S_SETTING) {
            Some(v) => rows_per_s(v)?,
            None => None,
        },
        ..Options::default()
    };
    let deadline = match s.settings.get(DEADLINE_SETTING) {
        Some(v) => deadline(v)?,
        None => None,
    };
    let def = s
        .node
        .table_def(table)
        .map_err(|_| SqlError::undefined_table(table))?;
    // The gpexpand way, for comparison: the table locked (SELECT too) and rewritten.
    if def.redistribution.is_none()
        && s.settings
            .get(OFFLINE_SETTING)
            .is_some_and(|v| matches!(v.to_lowercase().as_str(), "on" | "true" | "1"))
    {
        let rep = s.node.redistribute_offline(
            table,
            target,
            &segexpand_engine::redistribute::BatchLimits::default(),
        )?;
        s.notices.push(format!(
            "redistributed \"{table}\" offline (locked and rewritten): moved {} rows",
            rep.counts.rows_moved
        ));
        return Ok(Output::Command("ALTER TABLE".into()));
    }
    // A redistribution left by a crash (or a stopped run) is resumed by the statement
    // that asks for its target, and a cancelled one is finished before a new one starts.
    let r = match &def.redistribution {
        None => Redistributor::start(s.node.clone(), table, target, opts)?,
        Some(red) if !red.cancelling && red.target == target => {
            s.notices.push(format!(
                "resuming the redistribution of \"{table}\" that was under way"
            ));
            Redistributor::attach(s.node.clone(), table, opts)?
        }
        Some(red) if red.cancelling => {
            s.notices.push(format!(
                "finishing the cancelled redistribution of \"{table}\" first"
            ));
            Redistributor::attach(s.node.clone(), table, opts.clone())?.run()?;
            Redistributor::start(s.node.clone(), table, target, opts)?
        }
        Some(red) => {
            return Err(SqlError::new(
                "55000",
                format!(
                    "table \"{table}\" is already redistributing, to {} segments{}; \
                     the statement that asks for that layout resumes it",
                    red.target.segments,
                    if red.target.key == def.layout.key {
                        " (ALTER TABLE … EXPAND TABLE)".to_string()
                    } else {
                        " by another key (ALTER TABLE … SET DISTRIBUTED BY)".to_string()
                    }
                ),
            ))
        }
    };
    // What the phase had finished before this statement (a resumed run's blocks that
    // are not visited again).
    let before = s.node.redistribution_progress(table).ok().flatten();
    let done_before = before.map_or(0, |p| p.blocks_done);
    let phase_blocks = before.map_or(0, |p| p.blocks_total);
    crate::admin::run_started(
        s,
        table,
        if phase_blocks == 0 {
            0.0
        } else {
            done_before as f64 / phase_blocks as f64
        },
    );
    // A cancel request cancels the redistribution online: the mover takes the moved
    // rows back, the table flips back to its old layout, and the statement fails with
    // 57014. A deadline (gpexpand's -d/-e) stops it after the batches in flight: the
    // work done stays, and the statement that asks for the same target resumes it.
    // Other sessions read and write throughout.
    let handle = r.handle();
    let flag = s.cancel_flag();
    let done = std::sync::atomic::AtomicBool::new(false);
    let stopped_at_deadline = std::sync::atomic::AtomicBool::new(false);
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                if flag.load(std::sync::atomic::Ordering::Acquire) {
                    handle.cancel();
                    return;
                }
                if deadline.is_some_and(|d| crate::now_micros() >= d) {
                    stopped_at_deadline.store(true, std::sync::atomic::Ordering::Release);
                    handle.stop();
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        let outcome = r.run();
        done.store(true, std::sync::atomic::Ordering::Release);
        outcome
    });
    crate::admin::run_ended(s, table);
    let outcome = outcome?;
    let c = outcome.progress.counts;
    let counts = format!(
        "moved {} rows ({} bytes) and kept {} in place; {} of the phase's {} blocks were \
         already done before this statement",
        c.rows_moved, c.bytes_moved, c.rows_flipped, done_before, phase_blocks
    );
    match outcome.finish {
        Finish::Flipped => {
            s.notices
                .push(format!("redistributed \"{table}\": {counts}"));
            // The moved rows' old versions are reclaimed now, as far as running snapshots
            // allow (VACUUM or a later redistribution takes the rest): after gpexpand the
            // old segments should not keep a copy of every row that left them.
            match s.node.cleanup_redistribution(table) {
                Ok(p) => s.notices.push(format!(
                    "cleanup of \"{table}\": {} old versions removed, {} bytes reclaimed",
                    p.versions_removed, p.bytes_freed
                )),
                Err(e) => s.notices.push(format!(
                    "cleanup of \"{table}\" after its flip failed ({e}); VACUUM reclaims \
                     the moved rows' old versions"
                )),
            }
            Ok(Output::Command("ALTER TABLE".into()))
        }
        Finish::Stopped if stopped_at_deadline.load(std::sync::atomic::Ordering::Acquire) => {
            let now = s.node.redistribution_progress(table).ok().flatten();
            s.notices.push(format!(
                "redistribution of \"{table}\" stopped at the deadline with {} of {} blocks \
                 done ({counts}); the statement that asks for the same layout resumes it",
                now.map_or(0, |p| p.blocks_done),
                now.map_or(0, |p| p.blocks_total),
            ));
            Ok(Output::Command("ALTER TABLE".into()))
        }
        Finish::Cancelled => Err(SqlError {
            detail: Some(format!(
                "The redistribution was cancelled; table \"{table}\" is whole on its old layout."
            )),
            ..SqlError::canceled()
        }),
        Finish::Stopped => Err(SqlError::new(
            "55000",
            format!("the redistribution of \"{table}\" stopped before its flip"),
        )),
    }
}

pub(crate) fn expand(s: &mut Session, table: &RelName) -> SqlResult<Output> {
    let table = &schema::table(s, table, Missing::SchemaFirst)?.engine;
    let def = s
        .node
        .table_def(table)
        .map_err(|_| SqlError::undefined_table(table))?;
    let all = u16::try_from(s.node.segments().len()).unwrap_or(u16::MAX);
    if def.layout.segments == all && def.redistribution.is_none() {
        s.notices.push(format!(
            "table \"{table}\" is already on all {all} segments"
        ));
        return Ok(Output::Command("ALTER TABLE".into()));
    }
    let target = Layout {
        segments: all,
        ..def.layout.clone()
    };
    redistribute(s, table, target)
}

pub(crate) fn set_distributed(
    s: &mut Session,
    table: &RelName,
    d: Distribution,
) -> SqlResult<Output> {
    let table = &schema::table(s, table, Missing::SchemaFirst)?.engine;
    let def = s
        .node
        .table_def(table)
        .map_err(|_| SqlError::undefined_table(table))?;
    let key = match d {
        Distribution::By(cols) => cols
            .iter()
            .map(|c| {
                def.column_index(c)
                    .and_then(|i| u16::try_from(i).ok())
                    .ok_or_else(|| SqlError::undefined_column(c))
            })
            .collect::<SqlResult<Vec<u16>>>()?,
        Distribution::Randomly => Vec::new(),
        Distribution::Replicated => {
            return Err(SqlError::unsupported(
                "DISTRIBUTED REPLICATED is not supported",
            ))
        }
    };
    let target = Layout {
        key,
        ..def.layout.clone()
    };
    if target == def.layout && def.redistribution.is_none() {
        return Ok(Output::Command("ALTER TABLE".into()));
    }
    redistribute(s, table, target)
}

/// Most segments one `segexpand_add_segments` call adds.
const ADD_SEGMENTS_MAX: i64 = 64;

/// `SELECT segexpand_add_segments(n)`: adds `n` empty segments to the node, online (no
/// table moves; `ALTER TABLE … EXPAND TABLE` moves one). Returns the new content ids.
pub(crate) fn add_segments(s: &mut Session, n: i64) -> SqlResult<Output> {
    if !(1..=ADD_SEGMENTS_MAX).contains(&n) {
        return Err(SqlError::new(
            "22023",
            format!("segexpand_add_segments: n must be 1..={ADD_SEGMENTS_MAX}, got {n}"),
        ));
    }
    if s.status != crate::TxnStatus::Idle {
        return Err(SqlError::new(
            "25001",
            "segexpand_add_segments cannot run inside a transaction block",
        ));
    }
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(s.node.add_new_segment()?.to_string());
    }
    Ok(Output::Rows {
        columns: vec![crate::Column {
            name: "segexpand_add_segments".into(),
            ty: segexpand_engine::Type::Text,
        }],
        rows: vec![vec![Some(format!("{{{}}}", ids.join(",")))]],
    })
}

/// (name, columns, primary) of a PRIMARY KEY or UNIQUE table constraint; 0A000 for the
/// others (CHECK, FOREIGN KEY, …) and for options this engine does not keep.
fn key_constraint(c: &ast::TableConstraint) -> SqlResult<(Option<String>, Vec<String>, bool)> {
    let columns = |cols: &[ast::IndexColumn]| -> SqlResult<Vec<String>> {
        cols.iter()
            .map(|c| match &c.column.expr {
                ast::Expr::Identifier(i) => Ok(ident(i)),
                other => Err(SqlError::unsupported(format!(
                    "a key over an expression ({other}) is not supported"
                ))),
            })
            .collect()
    };
    match c {
        ast::TableConstraint::PrimaryKey(p) => {
            Ok((p.name.as_ref().map(ident), columns(&p.columns)?, true))
        }
        ast::TableConstraint::Unique(u) => {
            if u.nulls_distinct == ast::NullsDistinctOption::NotDistinct {
                return Err(SqlError::unsupported(
                    "UNIQUE NULLS NOT DISTINCT is not supported",
                ));
            }
            Ok((u.name.as_ref().map(ident), columns(&u.columns)?, false))
        }
        other => Err(SqlError::unsupported(format!(
            "constraint {other} is not supported: only PRIMARY KEY and UNIQUE are enforced"
        ))),
    }
}

/// `ALTER TABLE t ADD [CONSTRAINT c] PRIMARY KEY | UNIQUE (cols)`, one operation per
/// statement (the others are refused with 0A000 before anything changes).
pub(crate) fn alter_table(s: &mut Session, at: &ast::AlterTable) -> SqlResult<Output> {
    let r = RelName::of(&at.name)?;
    let [op] = at.operations.as_slice() else {
        return Err(SqlError::unsupported(
            "ALTER TABLE with several operations is not supported; run them one by one",
        ));
    };
    let ast::AlterTableOperation::AddConstraint { constraint, .. } = op else {
        return Err(SqlError::unsupported(format!(
            "ALTER TABLE {op} is not supported (supported: ADD PRIMARY KEY, ADD UNIQUE, \
             EXPAND TABLE, SET DISTRIBUTED BY)"
        )));
    };
    let (name, cols, primary) = key_constraint(constraint)?;
    let t = match schema::lookup(s, &r)? {
        Lookup::Found(t) => t,
        // PostgreSQL names the bare relation, whatever is missing.
        Lookup::NoSchema(_) | Lookup::NoTable if at.if_exists => {
            s.notices
                .push(format!("relation \"{}\" does not exist, skipping", r.name));
            return Ok(Output::Command("ALTER TABLE".into()));
        }
        Lookup::NoSchema(sch) => return Err(schema::no_schema(&sch)),
        Lookup::NoTable => return Err(SqlError::undefined_table(&r.written())),
    };
    let name = match name {
        None if t.schema != schema::PUBLIC => {
            Some(schema::ddl::key_name(&t.name, &cols, primary, &[]))
        }
        other => other,
    };
    let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    with_txn(s, |tx| {
        tx.add_unique(&t.engine, name.as_deref(), &refs, primary)
    })?;
    Ok(Output::Command("ALTER TABLE".into()))
}

/// Runs a DDL step in the session's transaction, or in one of its own (which writes
/// nothing itself), so that its waits for the table's writers are cancellable and take
/// part in deadlock detection, and it never waits for the session's own transaction.
pub(crate) fn with_txn(
    s: &mut Session,
    f: impl FnOnce(&mut segexpand_engine::Txn) -> segexpand_engine::Result<()>,
) -> SqlResult<()> {
    if let Some(tx) = s.txn.as_mut() {
        return Ok(f(tx)?);
    }
    let mut tx = s.begin()?;
    match f(&mut tx) {
        Ok(()) => Ok(tx.commit()?),
        Err(e) => {
            let _ = tx.rollback();
            Err(e.into())
        }
    }
}
