//! `segexpand gpexpand` and `segexpand gpshrink`: Greenplum's operator workflow against
//! a running `segexpand serve`, as a client (all state lives in the node, in the
//! `gpexpand`/`gpshrink` schema's ordinary tables, so psql sees and changes it).
//!
//! - Setup (`-i FILE`): the input file is checked whole against the cluster
//!   (`segexpand-ops`), the schema and its status tables are made (`SETUP`), the new
//!   segments are added online (`segexpand_add_segment`, their data directories
//!   honoured) — or, for a shrink, the segments to remove are recorded —, one
//!   `status_detail` row per user table (rank 2, `NOT STARTED`), then `SETUP DONE`.
//! - Redistribution (no `-i`, or `-i` again after setup): tables in rank order, `-n` at
//!   once, each online (`ALTER TABLE … EXPAND TABLE` / `SHRINK TABLE TO n`), until the
//!   deadline of `-d`/`-e` (the server stops a table after its batches in flight and
//!   keeps the work); `EXPANSION STOPPED` or `COMPLETE` (`SHRINK …`). A rerun resumes,
//!   from the blocks already done. A shrink retires the emptied segments at the end.
//! - `-r` rolls back a setup that failed before it finished; `-c` drops the schema,
//!   offering to dump `status_detail` first; `--status` shows the queue and progress.

mod phase2;
mod plan;
mod show;

use crate::wire::{literal, Client, ConnParams, WireError};
use clap::Args;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Which workflow runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    /// gpexpand: segments are added, tables expand onto them.
    Expand,
    /// gpshrink: tables move off the highest segments, which are then retired.
    Shrink,
}

impl Workflow {
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
    fn tool(self) -> &'static str {
        match self {
            Self::Expand => "gpexpand",
            Self::Shrink => "gpshrink",
        }
    }
    fn view(self) -> &'static str {
        match self {
            Self::Expand => "expansion_progress",
            Self::Shrink => "shrink_progress",
        }
    }
}

/// gpexpand's options (gpshrink takes the same).
#[derive(Args, Debug, Clone)]
pub struct ExpandArgs {
    /// Input file: `hostname|address|port|datadir|dbid|content|preferred_role` per new
    /// segment (gpshrink: per segment to remove). Without it, gpexpand interviews you
    /// (before setup) or redistributes (after).
    #[arg(short = 'i', long = "input")]
    pub input: Option<PathBuf>,
    /// A file of new host names, one per line, for the interview.
    #[arg(short = 'f', long = "hosts-file")]
    pub hosts_file: Option<PathBuf>,
    /// Tables redistributed at once (1-96).
    #[arg(short = 'n', long = "parallel", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=96))]
    pub parallel: u16,
    /// Stop redistributing after this long: `[h][:m[:s]]`.
    #[arg(short = 'd', long = "duration")]
    pub duration: Option<String>,
    /// Stop redistributing at this time (UTC): `'YYYY-MM-DD hh:mm:ss'`.
    #[arg(short = 'e', long = "end")]
    pub end: Option<String>,
    /// ANALYZE each table after it is redistributed.
    #[arg(short = 'a', long = "analyze")]
    pub analyze: bool,
    /// Minimal progress output: one line per table.
    #[arg(short = 'S', long = "simple-progress")]
    pub simple_progress: bool,
    /// Roll back a setup that failed before it finished.
    #[arg(short = 'r', long = "rollback")]
    pub rollback: bool,
    /// Drop the workflow's schema (offering to dump status_detail first).
    #[arg(short = 'c', long = "clean")]
    pub clean: bool,
    /// No prompts (answer their defaults) and less output.
    #[arg(short = 's', long = "silent")]
    pub silent: bool,
    /// More output: every statement sent and the server's notices.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Show the queue, the tables in progress with their progress and the estimate.
    #[arg(long = "status")]
    pub status: bool,
    /// With --status: redraw every second until the run ends.
    #[arg(long = "watch", requires = "status")]
    pub watch: bool,
    /// Redistribute the gpexpand way (each table locked and rewritten), for comparison.
    #[arg(long = "offline")]
    pub offline: bool,
    /// Throttle each table's mover to this many rows per second (not in gpexpand: it
    /// keeps the redistribution's share of the disk bounded under a busy workload).
    #[arg(long = "max-rows-per-s")]
    pub max_rows_per_s: Option<f64>,
    /// Server host (`PGHOST`, else 127.0.0.1).
    #[arg(short = 'h', long = "host")]
    pub host: Option<String>,
    /// Server port (`PGPORT`, else 5432).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// User (`PGUSER`, else `USER`).
    #[arg(short = 'U', long = "user")]
    pub user: Option<String>,
    /// Database (`PGDATABASE`, else the user name).
    #[arg(short = 'D', long = "database")]
    pub database: Option<String>,
    /// Print help (`-h` is the host, as in gpexpand and psql).
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// An operator-facing failure: the message printed, and the exit code 1.
#[derive(Debug)]
pub struct Failure(pub String);

impl From<WireError> for Failure {
    fn from(e: WireError) -> Self {
        Failure(e.to_string())
    }
}

type Res<T> = Result<T, Failure>;

fn fail<T>(m: impl Into<String>) -> Res<T> {
    Err(Failure(m.into()))
}

impl ExpandArgs {
    fn conn(&self) -> ConnParams {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let user = self
            .user
            .clone()
            .or_else(|| env("PGUSER"))
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "gpadmin".into());
        ConnParams {
            host: self
                .host
                .clone()
                .or_else(|| env("PGHOST"))
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: self
                .port
                .or_else(|| env("PGPORT").and_then(|p| p.parse().ok()))
                .unwrap_or(5432),
            database: self
                .database
                .clone()
                .or_else(|| env("PGDATABASE"))
                .unwrap_or_else(|| user.clone()),
            user,
            password: env("PGPASSWORD"),
        }
    }
}

/// A connection that logs what it sends with `-v`.
pub(crate) struct Db {
    c: Client,
    verbose: bool,
}

impl Db {
    fn open(p: &ConnParams, verbose: bool) -> Res<Self> {
        Ok(Self {
            c: Client::connect_retrying(p, Duration::from_secs(5))?,
            verbose,
        })
    }
    fn q(&mut self, sql: &str) -> Result<crate::wire::Reply, WireError> {
        if self.verbose {
            eprintln!("[sql] {sql}");
        }
        let r = self.c.query(sql);
        if self.verbose {
            if let Ok(r) = &r {
                for n in &r.notices {
                    eprintln!("[notice] {n}");
                }
            }
        }
        r
    }
    fn exists(&mut self, table: &str) -> Res<bool> {
        Ok(self
            .q(&format!(
                "SELECT count(*) FROM segexpand_tables WHERE fq_name = {}",
                literal(table)
            ))?
            .scalar()
            != Some("0"))
    }
    /// The workflow's status words in order of their `updated` time.
    fn statuses(&mut self, w: Workflow) -> Res<Vec<String>> {
        if !self.exists(&format!("{}.status", w.schema()))? {
            return Ok(Vec::new());
        }
        Ok(self
            .q(&format!(
                "SELECT status FROM {}.status ORDER BY updated",
                w.schema()
            ))?
            .rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    }
    fn set_status(&mut self, w: Workflow, status: &str) -> Res<()> {
        self.q(&format!(
            "INSERT INTO {}.status VALUES ({}, now())",
            w.schema(),
            literal(status)
        ))?;
        Ok(())
    }
}

/// Runs `segexpand gpexpand` / `gpshrink`; the process's exit code.
pub fn run(w: Workflow, args: &ExpandArgs) -> std::process::ExitCode {
    match run_inner(w, args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Failure(m)) => {
            eprintln!("{}: error: {m}", w.tool());
            std::process::ExitCode::FAILURE
        }
    }
}

fn say(args: &ExpandArgs, m: impl std::fmt::Display) {
    if !args.silent {
        println!("{m}");
    }
}

fn run_inner(w: Workflow, args: &ExpandArgs) -> Res<()> {
    let conn = args.conn();
    // Options are checked before anything is read or changed.
    phase2::deadline(args)?;
    let mut db = Db::open(&conn, args.verbose)?;
    if args.status {
        return show::status(&mut db, w, args.watch);
    }
    // One run at a time: the lock is the session's, so it goes when this client does.
    if let Err(e) = db.q(&format!(
        "SELECT segexpand_operator_lock({})",
        literal(w.tool())
    )) {
        return fail(e.message);
    }
    let statuses = db.statuses(w)?;
    let setup_done = statuses.iter().any(|s| s == "SETUP DONE");
    if args.rollback {
        return rollback(&mut db, w, args, &statuses);
    }
    if args.clean {
        return clean(&mut db, w, args, &statuses);
    }
    if !statuses.is_empty() && !setup_done {
        return fail(format!(
            "A previous {} setup did not finish; run {} -r to roll it back",
            w.tool(),
            w.tool()
        ));
    }
    if setup_done && args.input.is_some() {
        return fail(format!(
            "{} is already set up ({}.status says SETUP DONE): run {} without -i to \
             redistribute, or -c to clean up first",
            w.tool(),
            w.schema(),
            w.tool()
        ));
    }
    if !setup_done {
        let input = match &args.input {
            Some(f) => f.clone(),
            None if w == Workflow::Shrink => {
                return fail("gpshrink needs -i FILE listing the segments to remove")
            }
            None => return plan::interview_to_file(&mut db, args),
        };
        plan::setup(&mut db, w, args, &input)?;
        say(args, format!("{} setup completed successfully.", w.tool()));
        say(
            args,
            format!(
                "Run {} again (without -i) to redistribute the tables; -d or -e bound it.",
                w.tool()
            ),
        );
        return Ok(());
    }
    if statuses.last().map(String::as_str) == Some(&format!("{} COMPLETE", w.word())) {
        return fail(format!(
            "{} has completed: run {} -c to clean up",
            match w {
                Workflow::Expand => "Expansion",
                Workflow::Shrink => "Shrink",
            },
            w.tool()
        ));
    }
    phase2::redistribute(&mut db, &conn, w, args)
}

/// `-r`: undoes a setup that did not reach `SETUP DONE`.
fn rollback(db: &mut Db, w: Workflow, args: &ExpandArgs, statuses: &[String]) -> Res<()> {
    if statuses.is_empty() {
        return fail(format!("No {} setup to roll back", w.tool()));
    }
    if statuses.iter().any(|s| s == "SETUP DONE") {
        return fail(format!(
            "{} is past the point of rollback. Any remaining issues must be addressed outside of {}.",
            match w {
                Workflow::Expand => "Expansion",
                Workflow::Shrink => "Shrink",
            },
            w.tool()
        ));
    }
    if w == Workflow::Expand {
        plan::remove_added_segments(db, args)?;
    }
    db.q(&format!("DROP SCHEMA {} CASCADE", w.schema()))?;
    say(args, format!("{} rollback complete.", w.tool()));
    Ok(())
}

/// `-c`: drops the schema, offering to dump `status_detail` first.
fn clean(db: &mut Db, w: Workflow, args: &ExpandArgs, statuses: &[String]) -> Res<()> {
    if statuses.is_empty() {
        return fail(format!("There is no {} schema to clean up", w.tool()));
    }
    let complete = statuses.last().map(String::as_str) == Some(&format!("{} COMPLETE", w.word()));
    let set_up = statuses.iter().any(|s| s == "SETUP DONE");
    if set_up && !complete {
        return fail(format!(
            "the {} has not completed (the last status is {}): tables may be part way; run \
             {} to finish it first (or -r before SETUP DONE)",
            match w {
                Workflow::Expand => "expansion",
                Workflow::Shrink => "shrink",
            },
            statuses.last().cloned().unwrap_or_default(),
            w.tool()
        ));
    }
    let dump = if args.silent {
        true
    } else {
        print!(
            "Do you want to dump the {}.status_detail table to file? Yy|Nn (default=Y):\n> ",
            w.schema()
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        !matches!(answer.trim(), "n" | "N")
    };
    if dump {
        let reply = db.q(&format!(
            "SELECT * FROM {}.status_detail ORDER BY rank, fq_name",
            w.schema()
        ))?;
        let file = format!("{}.status_detail", w.schema());
        let mut text = reply.columns.join("|");
        text.push('\n');
        for r in &reply.rows {
            let cells: Vec<&str> = r.iter().map(|c| c.as_deref().unwrap_or("")).collect();
            text.push_str(&cells.join("|"));
            text.push('\n');
        }
        std::fs::write(&file, text).map_err(|e| Failure(format!("writing {file}: {e}")))?;
        say(
            args,
            format!("Dumped {}.status_detail to {file}", w.schema()),
        );
    }
    db.q(&format!("DROP SCHEMA {} CASCADE", w.schema()))?;
    say(args, format!("Removed the {} schema.", w.schema()));
    Ok(())
}
