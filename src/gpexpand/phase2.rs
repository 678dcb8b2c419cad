//! Phase 2 of gpexpand/gpshrink: the queue in rank order, `-n` worker connections, each
//! table's statement bounded by the `-d`/`-e` deadline (which the server enforces, keeping
//! the work), the status rows, and the end of the run (`… STOPPED` or `… COMPLETE`, a
//! shrink's retirement).

use super::{fail, plan, say, show, Db, ExpandArgs, Failure, Res, Workflow};
use crate::wire::{literal, ConnParams, WireError};

/// The deadline of `-d`/`-e` (the earlier wins), as a UTC `YYYY-MM-DD hh:mm:ss`.
pub(super) fn deadline(args: &ExpandArgs) -> Res<Option<String>> {
    let now = segexpand_ops::Timestamp::from_unix(unix_now());
    let end = match &args.end {
        Some(e) => {
            Some(segexpand_ops::parse_end_time(e).map_err(|x| Failure(x.option_message("-e", e)))?)
        }
        None => None,
    };
    let duration = match &args.duration {
        Some(d) => {
            Some(segexpand_ops::parse_duration(d).map_err(|x| Failure(x.option_message("-d", d)))?)
        }
        None => None,
    };
    let d = segexpand_ops::expansion_deadline(now, end, duration)
        .map_err(|e| Failure(e.to_string()))?;
    for warning in &d.warnings {
        eprintln!("{warning}");
    }
    Ok(d.end.map(|t| {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    }))
}

pub(super) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One table of the queue.
#[derive(Debug, Clone)]
struct Queued {
    fq_name: String,
    oid: String,
}

/// How one table's statement ended.
enum Outcome {
    Done,
    Stopped,
    Gone,
    Failed(String),
}

pub(super) fn redistribute(
    db: &mut Db,
    conn: &ConnParams,
    w: Workflow,
    args: &ExpandArgs,
) -> Res<()> {
    let schema = w.schema();
    let deadline = deadline(args)?;
    let target = match w {
        Workflow::Expand => None,
        Workflow::Shrink => Some(plan::shrink_target(db)?),
    };
    db.set_status(w, &format!("{} STARTED", w.word()))?;
    // A table left IN PROGRESS (the client or the server died) goes back in the queue;
    // its finished blocks stay finished.
    db.q(&format!(
        "UPDATE {schema}.status_detail SET status = 'NOT STARTED' WHERE status = 'IN PROGRESS'"
    ))?;
    let queue: Vec<Queued> = db
        .q(&format!(
            "SELECT fq_name, table_oid FROM {schema}.status_detail \
             WHERE status = 'NOT STARTED' ORDER BY rank, fq_name"
        ))?
        .rows
        .into_iter()
        .filter_map(|r| match r.as_slice() {
            [Some(f), Some(o)] => Some(Queued {
                fq_name: f.clone(),
                oid: o.clone(),
            }),
            _ => None,
        })
        .collect();
    say(
        args,
        format!(
            "{} {} tables, {} at once{}",
            match w {
                Workflow::Expand => "Expanding",
                Workflow::Shrink => "Shrinking",
            },
            queue.len(),
            args.parallel,
            deadline
                .as_ref()
                .map(|d| format!(", until {d} UTC"))
                .unwrap_or_default()
        ),
    );
    let queue = std::sync::Mutex::new(std::collections::VecDeque::from(queue));
    let results = std::sync::Mutex::new(Vec::<(String, Outcome)>::new());
    let bars = show::Bars::new(args.silent || args.simple_progress);
    std::thread::scope(|scope| {
        scope.spawn(|| bars.follow(conn));
        let mut workers = Vec::new();
        for _ in 0..args.parallel {
            workers.push(scope.spawn(|| {
                let mut db = match Db::open(conn, args.verbose) {
                    Ok(d) => d,
                    Err(Failure(m)) => {
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(("(connection)".into(), Outcome::Failed(m)));
                        return;
                    }
                };
                let setup = |db: &mut Db| -> Result<(), WireError> {
                    if let Some(d) = &deadline {
                        db.q(&format!(
                            "SET segexpand.redistribute_deadline = {}",
                            literal(d)
                        ))?;
                    }
                    if args.offline {
                        db.q("SET segexpand.redistribute_offline = on")?;
                    }
                    if let Some(r) = args.max_rows_per_s {
                        db.q(&format!("SET segexpand.redistribute_rows_per_second = {r}"))?;
                    }
                    Ok(())
                };
                if let Err(e) = setup(&mut db) {
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(("(session)".into(), Outcome::Failed(e.to_string())));
                    return;
                }
                loop {
                    if deadline_passed(&deadline) {
                        return;
                    }
                    let Some(t) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
                    else {
                        return;
                    };
                    let outcome = one_table(&mut db, w, args, &t, target, &bars);
                    let stop = matches!(outcome, Outcome::Stopped);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((t.fq_name.clone(), outcome));
                    if stop {
                        return;
                    }
                }
            }));
        }
        for w in workers {
            let _ = w.join();
        }
        bars.finished
            .store(true, std::sync::atomic::Ordering::Release);
    });
    bars.finish();
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(t, o)| match o {
            Outcome::Failed(m) => Some(format!("{t}: {m}")),
            _ => None,
        })
        .collect();
    let left = db
        .q(&format!(
            "SELECT count(*) FROM {schema}.status_detail \
             WHERE status IS NULL OR status NOT IN ('COMPLETED', 'NO LONGER EXISTS')"
        ))?
        .scalar()
        .unwrap_or("0")
        .to_string();
    let odd = db.q(&format!(
        "SELECT fq_name, status FROM {schema}.status_detail \
         WHERE status IS NULL OR status NOT IN ('COMPLETED', 'NO LONGER EXISTS', 'NOT STARTED', 'IN PROGRESS')"
    ))?;
    for r in &odd.rows {
        let cell = |i: usize| r.get(i).cloned().flatten().unwrap_or_else(|| "NULL".into());
        eprintln!(
            "{}: table {} has status {:?}, which {} does not queue: set it to 'NOT STARTED' to include it",
            w.tool(),
            cell(0),
            cell(1),
            w.tool()
        );
    }
    if left == "0" && failed.is_empty() {
        if let Some(n) = target {
            plan::retire(db, n, args)?;
        }
        db.set_status(w, &format!("{} COMPLETE", w.word()))?;
        say(
            args,
            format!(
                "{} complete: every table redistributed. Run {} -c to clean up.",
                match w {
                    Workflow::Expand => "Expansion",
                    Workflow::Shrink => "Shrink",
                },
                w.tool()
            ),
        );
    } else {
        db.set_status(w, &format!("{} STOPPED", w.word()))?;
        say(
            args,
            format!(
                "{} stopped with {left} tables left; run {} again to resume.",
                match w {
                    Workflow::Expand => "Expansion",
                    Workflow::Shrink => "Shrink",
                },
                w.tool()
            ),
        );
    }
    if !failed.is_empty() {
        return fail(format!("tables failed:\n  {}", failed.join("\n  ")));
    }
    Ok(())
}

/// `schema.table` as quoted identifiers (`"public"."T"`): names are kept exactly.
pub(super) fn quoted(fq: &str) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    match fq.split_once('.') {
        Some((schema, name)) => format!("{}.{}", q(schema), q(name)),
        None => q(fq),
    }
}

fn deadline_passed(d: &Option<String>) -> bool {
    let Some(d) = d else { return false };
    let now = segexpand_ops::Timestamp::from_unix(unix_now());
    let now = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        now.year, now.month, now.day, now.hour, now.minute, now.second
    );
    now.as_str() >= d.as_str()
}

fn one_table(
    db: &mut Db,
    w: Workflow,
    args: &ExpandArgs,
    t: &Queued,
    target: Option<u16>,
    bars: &show::Bars,
) -> Outcome {
    let schema = w.schema();
    let r = (|| -> Result<Outcome, WireError> {
        // The table is the one setup recorded, by oid: its name now (a row's fq_name may
        // have been edited; a table of that name may be another one).
        let name = db
            .q(&format!(
                "SELECT fq_name FROM segexpand_tables WHERE table_oid = {}",
                t.oid
            ))?
            .scalar()
            .map(str::to_string);
        let Some(name) = name else {
            db.q(&format!(
                "UPDATE {schema}.status_detail SET status = 'NO LONGER EXISTS' WHERE table_oid = {}",
                t.oid
            ))?;
            return Ok(Outcome::Gone);
        };
        db.q(&format!(
            "UPDATE {schema}.status_detail SET status = 'IN PROGRESS', expansion_started = now() \
             WHERE table_oid = {}",
            t.oid
        ))?;
        bars.started(&t.fq_name);
        let stmt = match target {
            None => format!("ALTER TABLE {} EXPAND TABLE", quoted(&name)),
            Some(n) => format!("ALTER TABLE {} SHRINK TABLE TO {n}", quoted(&name)),
        };
        let reply = db.q(&stmt)?;
        let stopped = reply
            .notices
            .iter()
            .any(|n| n.contains("stopped at the deadline"));
        if args.simple_progress && !args.silent {
            for n in &reply.notices {
                println!("{}: {n}", t.fq_name);
            }
        }
        if stopped {
            db.q(&format!(
                "UPDATE {schema}.status_detail SET status = 'NOT STARTED' WHERE table_oid = {}",
                t.oid
            ))?;
            bars.ended(&t.fq_name, "stopped at the deadline");
            return Ok(Outcome::Stopped);
        }
        if args.analyze {
            db.q(&format!("ANALYZE {}", quoted(&name)))?;
        }
        db.q(&format!(
            "UPDATE {schema}.status_detail SET status = 'COMPLETED', expansion_finished = now() \
             WHERE table_oid = {}",
            t.oid
        ))?;
        bars.ended(&t.fq_name, "done");
        Ok(Outcome::Done)
    })();
    match r {
        Ok(o) => o,
        Err(e) => {
            let _ = db.q(&format!(
                "UPDATE {schema}.status_detail SET status = 'NOT STARTED' WHERE table_oid = {}",
                t.oid
            ));
            bars.ended(&t.fq_name, &format!("failed: {e}"));
            Outcome::Failed(e.to_string())
        }
    }
}
