//! Progress a person can watch: a bar per table in progress while gpexpand/gpshrink runs
//! (indicatif; hidden when stderr is not a terminal, and with `-s`/`-S`), and
//! `--status`: the queue in rank order, the tables in progress with their blocks, and the
//! progress view's rate and estimate.

use super::{Db, Res, Workflow};
use crate::wire::ConnParams;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The bars of the tables in progress.
pub(super) struct Bars {
    quiet: bool,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Set when every worker has returned.
    pub(super) finished: AtomicBool,
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:32!} [{bar:30}] {pos:>7}/{len:7} blocks {percent:>3}% {per_sec:>12} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

impl Bars {
    pub(super) fn new(quiet: bool) -> Self {
        Self {
            quiet,
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
            finished: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.bars.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A table's statement began.
    pub(super) fn started(&self, table: &str) {
        if self.quiet {
            return;
        }
        let bar = self.multi.add(ProgressBar::new(0));
        bar.set_style(style());
        bar.set_message(table.to_string());
        self.lock().insert(table.to_string(), bar);
    }

    /// A table's statement ended (`how`: done, stopped at the deadline, failed: …).
    pub(super) fn ended(&self, table: &str, how: &str) {
        if self.quiet {
            return;
        }
        if let Some(bar) = self.lock().remove(table) {
            bar.finish_and_clear();
        }
        let _ = self.multi.println(format!("{table}: {how}"));
    }

    /// Polls the server for the running tables' blocks until [`Bars::finished`].
    pub(super) fn follow(&self, conn: &ConnParams) {
        if self.quiet {
            return;
        }
        let Ok(mut c) = crate::wire::Client::connect(conn) else {
            return;
        };
        while !self.finished.load(Ordering::Acquire) {
            if let Ok(r) = c.query(
                "SELECT fq_name, blocks_total, blocks_done FROM segexpand_tables \
                 WHERE state = 'redistributing'",
            ) {
                let bars = self.lock();
                for row in &r.rows {
                    let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
                    if let Some(bar) = bars.get(&cell(0)) {
                        bar.set_length(cell(1).parse().unwrap_or(0));
                        bar.set_position(cell(2).parse().unwrap_or(0));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Clears what is left.
    pub(super) fn finish(&self) {
        for (_, bar) in self.lock().drain() {
            bar.finish_and_clear();
        }
    }
}

/// `--status`: the queue, the tables in progress and the estimate; with `watch`, again
/// every second while the run goes on.
pub(super) fn status(db: &mut Db, w: Workflow, watch: bool) -> Res<()> {
    if watch {
        return watch_bars(db, w);
    }
    loop {
        let statuses = db.statuses(w)?;
        if statuses.is_empty() {
            println!("No {} in progress (no {} schema).", w.tool(), w.schema());
            return Ok(());
        }
        let last = statuses.last().cloned().unwrap_or_default();
        println!("{} status: {last}", w.tool());
        let queue = db.q(&format!(
            "SELECT d.rank, d.fq_name, d.status, d.source_bytes, t.blocks_done, t.blocks_total \
             FROM {}.status_detail d LEFT JOIN segexpand_tables t ON t.table_oid = d.table_oid \
             ORDER BY d.status = 'COMPLETED', d.rank, d.fq_name",
            w.schema()
        ))?;
        println!(
            "{:>4}  {:<32} {:<16} {:>12}  progress",
            "rank", "table", "status", "bytes"
        );
        for r in &queue.rows {
            let cell = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let progress = match (cell(4).parse::<u64>(), cell(5).parse::<u64>()) {
                (Ok(d), Ok(t)) if t > 0 => {
                    let width = 30usize;
                    let filled = (d as usize * width) / t as usize;
                    format!(
                        "[{}{}] {d}/{t} blocks",
                        "=".repeat(filled),
                        " ".repeat(width.saturating_sub(filled))
                    )
                }
                _ if cell(2) == "COMPLETED" => "done".into(),
                _ => String::new(),
            };
            println!(
                "{:>4}  {:<32} {:<16} {:>12}  {progress}",
                cell(0),
                cell(1),
                cell(2),
                cell(3)
            );
        }
        let view = db.q(&format!(
            "SELECT name, value FROM {}.{}",
            w.schema(),
            w.view()
        ))?;
        for r in &view.rows {
            let cell = |i: usize| r.get(i).cloned().flatten().unwrap_or_else(|| "-".into());
            println!("{:<30} {}", cell(0), cell(1));
        }
        if !watch || last != format!("{} STARTED", w.word()) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
        println!();
    }
}

/// `--status --watch`: a line with the run's status, rate and estimate, and an
/// indicatif bar (blocks, rate, eta) for each table in progress, redrawn every half
/// second until the run is no longer `… STARTED`.
fn watch_bars(db: &mut Db, w: Workflow) -> Res<()> {
    let multi = MultiProgress::new();
    let head = multi.add(ProgressBar::new_spinner());
    head.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    loop {
        let statuses = db.statuses(w)?;
        let last = statuses.last().cloned().unwrap_or_default();
        let view = if statuses.is_empty() {
            Vec::new()
        } else {
            db.q(&format!(
                "SELECT name, value FROM {}.{}",
                w.schema(),
                w.view()
            ))?
            .rows
        };
        let value = |name: &str| {
            view.iter()
                .find(|r| r.first().cloned().flatten().as_deref() == Some(name))
                .and_then(|r| r.get(1).cloned().flatten())
                .unwrap_or_else(|| "-".into())
        };
        head.set_message(format!(
            "{}: {last}; tables left {}, in progress {}; rate {}; time to completion {}",
            w.tool(),
            value("Tables Left"),
            value("Tables In Progress"),
            value(match w {
                Workflow::Expand => "Estimated Expansion Rate",
                Workflow::Shrink => "Estimated Shrink Rate",
            }),
            value("Estimated Time to Completion")
        ));
        head.tick();
        let running = db.q(
            "SELECT fq_name, blocks_total, blocks_done FROM segexpand_tables \
             WHERE state = 'redistributing'",
        )?;
        let mut seen = Vec::new();
        for r in &running.rows {
            let cell = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let name = cell(0);
            let bar = bars.entry(name.clone()).or_insert_with(|| {
                let b = multi.add(ProgressBar::new(0));
                b.set_style(style());
                b.set_message(name.clone());
                b
            });
            bar.set_length(cell(1).parse().unwrap_or(0));
            bar.set_position(cell(2).parse().unwrap_or(0));
            seen.push(name);
        }
        bars.retain(|name, bar| {
            let keep = seen.contains(name);
            if !keep {
                bar.finish_and_clear();
            }
            keep
        });
        if last != format!("{} STARTED", w.word()) {
            head.finish();
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
