//! The reconfiguration itself: the plan (the checking table's segments and the ones to
//! go to), an interrupted redistribution finished first, segments added, the move of
//! every table — online (one redistributor per table, all at once), online over modulo
//! placement, or offline (each table locked and rewritten in turn) — the sampler that
//! records the mover's progress and the process's CPU and memory once per interval,
//! and, after it, the cleanup of old versions and the retirement of emptied segments.

use super::config::Method;
use super::schema::TABLE;
use super::workload::{Load, SetOnDrop};
use super::{
    bad, BatchLimits, Config, Error, Finish, Handle, Layout, MoveCounts, Node, Options, PruneStats,
    Redistributor,
};
use crate::timeline::{cpu_time, rss_mb, Sample, Timeline};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The checking table's segments now (after an interrupted redistribution finishes)
/// and the segments to go to; refuses, before anything changes, when they are the same.
pub(super) fn plan(a: &Config, node: &Arc<Node>) -> Result<(u16, u16), Error> {
    let from = match node.table_def(TABLE) {
        Ok(def) => def.write_layout().0.segments,
        Err(Error::NoSuchTable(_)) => a.from.min(node.segments().len() as u16),
        Err(e) => return Err(e),
    };
    let to = if from == a.to { a.from } else { a.to };
    if from == to {
        return Err(bad(format!(
            "the table already has {to} segments: nothing to redistribute, nothing was \
             changed (use --to)"
        )));
    }
    Ok((from, to))
}

/// Finishes every redistribution an earlier run left unfinished; returns the checking
/// table's layout, which must then have `from` segments.
pub(super) fn finish_interrupted(
    a: &Config,
    node: &Arc<Node>,
    from: u16,
    tables: &[String],
) -> Result<Layout, Error> {
    for t in tables {
        if node.table_def(t)?.redistribution.is_some() {
            say!(
                a,
                "an earlier run was interrupted while redistributing {t}: finishing it first"
            );
            let r = Redistributor::attach(node.clone(), t, Options::default())?;
            r.run()?;
            r.cleanup()?;
        }
    }
    let def = node.table_def(TABLE)?;
    if def.layout.segments != from {
        return Err(bad(format!(
            "the table has {} segments after finishing the earlier redistribution, {from} \
             were expected",
            def.layout.segments
        )));
    }
    Ok(def.layout)
}

/// Adds segments until the node has `to`.
pub(super) fn add_segments(a: &Config, node: &Arc<Node>, to: u16) -> Result<(), Error> {
    while (node.segments().len() as u16) < to {
        let c = node.add_new_segment()?;
        say!(a, "added segment {c}");
    }
    Ok(())
}

/// What the redistribution measured, for the summary (over every table).
#[derive(Default)]
pub(super) struct Summary {
    pub(super) counts: MoveCounts,
    /// The movers' time (the longest, online; the sum of the locked rewrites, offline).
    pub(super) mover_s: f64,
    pub(super) redistribute_s: f64,
    pub(super) start_stall_us: u64,
    pub(super) flip_stall_us: u64,
    pub(super) flip_attempts: u32,
}

/// The movers the sampler reads: the online ones' handles, and what finished offline
/// rewrites counted.
#[derive(Default)]
struct Watch {
    handles: parking_lot::Mutex<Vec<Handle>>,
    finished: parking_lot::Mutex<MoveCounts>,
}

impl Watch {
    /// Progress over every mover: counts, blocks done, blocks in all.
    fn progress(&self) -> (MoveCounts, u64, u64) {
        let mut c = *self.finished.lock();
        let (mut done, mut total) = (0, 0);
        for h in self.handles.lock().iter() {
            let p = h.progress();
            c.add(&p.counts);
            done += p.blocks_done;
            total += p.blocks_total;
        }
        (c, done, total)
    }
}

/// Redistributes every table to `segments` of `target`, by the scenario's method,
/// filling `out`; a sampler records the movers into the timeline meanwhile.
pub(super) fn redistribute(
    a: &Config,
    node: &Arc<Node>,
    tables: &[String],
    target: Layout,
    out: &mut Summary,
    load: &Load<'_>,
) -> Result<(), Error> {
    let t0 = Instant::now();
    let watch = Watch::default();
    let done = AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        s.spawn(|| sampler(load, &watch, &done));
        // The sampler ends however the run ends (a panic included).
        let _done = SetOnDrop(&done);
        match a.method {
            Method::Offline => offline(node, tables, target.segments, out, &watch),
            Method::Online | Method::Modulo => {
                online(a, node, tables, target.segments, out, &watch)
            }
        }
    });
    out.redistribute_s = t0.elapsed().as_secs_f64();
    r
}

/// The layout `table` goes to: its own key and placement, `segments` segments.
fn target_of(node: &Arc<Node>, table: &str, segments: u16) -> Result<Layout, Error> {
    let def = node.table_def(table)?;
    Ok(Layout {
        segments,
        ..def.layout
    })
}

/// The gpexpand way: each table in turn locked and rewritten; every statement on it
/// waits.
fn offline(
    node: &Arc<Node>,
    tables: &[String],
    segments: u16,
    out: &mut Summary,
    watch: &Watch,
) -> Result<(), Error> {
    for t in tables {
        let target = target_of(node, t, segments)?;
        let r = node.redistribute_offline(t, target, &BatchLimits::default())?;
        out.counts.add(&r.counts);
        watch.finished.lock().add(&r.counts);
        out.mover_s += r.locked_us as f64 / 1e6;
        // Every statement on the table was held for the whole rewrite.
        out.flip_stall_us = out.flip_stall_us.max(r.locked_us);
        out.start_stall_us = out.start_stall_us.max(r.locked_us);
        out.flip_attempts = out.flip_attempts.max(1);
    }
    Ok(())
}

/// Online: one redistributor per table, all running at once, each in a thread of its
/// own; every table must end flipped.
fn online(
    a: &Config,
    node: &Arc<Node>,
    tables: &[String],
    segments: u16,
    out: &mut Summary,
    watch: &Watch,
) -> Result<(), Error> {
    let opts = Options {
        workers: usize::try_from(a.workers).unwrap_or(1),
        rows_per_s: a.max_rows_per_s,
        mb_per_s: a.max_mb_per_s,
        ..Options::default()
    };
    let mut movers = Vec::new();
    for t in tables {
        let r = Redistributor::start(node.clone(), t, target_of(node, t, segments)?, opts.clone())?;
        watch.handles.lock().push(r.handle());
        movers.push((t, r));
    }
    let outcomes = std::thread::scope(|s| {
        let runs: Vec<_> = movers
            .iter()
            .map(|(t, r)| (t, s.spawn(move || r.run())))
            .collect();
        runs.into_iter()
            .map(|(t, h)| {
                h.join()
                    .unwrap_or_else(|_| Err(bad(format!("the mover of {t} panicked"))))
            })
            .collect::<Vec<_>>()
    });
    for ((t, r), outcome) in movers.iter().zip(outcomes) {
        let outcome = outcome?;
        if outcome.finish != Finish::Flipped {
            return Err(bad(format!(
                "the redistribution of {t} ended {:?} (the table is left redistributing; \
                 the next run finishes it)",
                outcome.finish
            )));
        }
        out.counts.add(&outcome.progress.counts);
        out.mover_s = out.mover_s.max(outcome.mover_s);
        let start = r.start_report().map_or(0, |s| s.dml_stall_us_max);
        out.start_stall_us = out.start_stall_us.max(start);
        let flip = outcome.flip.unwrap_or_default();
        out.flip_stall_us = out.flip_stall_us.max(flip.dml_stall_us_max);
        out.flip_attempts = out.flip_attempts.max(flip.attempts);
    }
    Ok(())
}

/// Once per interval until `done`: a sample of the movers and of the process into the
/// timeline; every 250 ms a progress line on stderr (redrawn in place on a terminal);
/// stops the movers when the workload stopped.
fn sampler(load: &Load<'_>, watch: &Watch, done: &AtomicBool) {
    let tl: &Timeline = load.timeline;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_cpu = (Instant::now(), cpu_time());
    let mut last_line = Instant::now();
    let mut next = Instant::now();
    loop {
        let stop = done.load(Ordering::Acquire);
        let now = Instant::now();
        if now >= next || stop {
            next = now + tl.interval();
            if load.stopped() {
                // The workload failed: stop the movers (the tables stay
                // redistributing; a later run resumes).
                for h in watch.handles.lock().iter() {
                    h.stop();
                }
            }
            let (c, done_blocks, total) = watch.progress();
            let cpu = cpu_time();
            let cpu_pct = match (last_cpu.1, cpu) {
                (Some(a), Some(b)) => {
                    let wall = now.duration_since(last_cpu.0).as_secs_f64().max(1e-9);
                    100.0 * b.saturating_sub(a).as_secs_f64() / wall
                }
                _ => 0.0,
            };
            last_cpu = (now, cpu);
            tl.sample(Sample {
                t_s: tl.secs(now),
                rows_moved: c.rows_relocated,
                bytes_moved: c.bytes_moved,
                blocks_done: done_blocks,
                blocks_total: total,
                cpu_pct,
                rss_mb: rss_mb().unwrap_or(0.0),
            });
            if now.duration_since(last_line) >= Duration::from_millis(250) || stop {
                last_line = now;
                let line = progress_line(done_blocks, total, &c);
                if tty {
                    crate::out::err_text(format_args!("\r{line}"));
                } else {
                    crate::out::err_line(format_args!("{line}"));
                }
            }
        }
        if stop {
            break;
        }
        std::thread::sleep(
            next.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20)),
        );
    }
    if tty {
        crate::out::err_line(format_args!(""));
    }
}

/// The progress line: a bar of 40, the percentage, blocks and rows.
fn progress_line(done: u64, total: u64, c: &MoveCounts) -> String {
    let frac = done as f64 / (total as f64).max(1.0);
    let bar: String = (0..40)
        .map(|i| if (i as f64) < frac * 40.0 { '#' } else { '.' })
        .collect();
    format!(
        "[{bar}] {:5.1}%  blocks {done}/{total}  moved {}  flipped {}  skipped {}",
        frac * 100.0,
        c.rows_moved,
        c.rows_flipped,
        c.rows_skipped
    )
}

/// Reclaims the row versions the redistribution left in every table, then retires the
/// segments past `to` (one that cannot be retired yet stays, with a message).
pub(super) fn clean_up(
    a: &Config,
    node: &Arc<Node>,
    to: u16,
    tables: &[String],
) -> Result<PruneStats, Error> {
    let mut all = PruneStats::default();
    for t in tables {
        let r = node.cleanup_redistribution(t)?;
        all.pages_scanned += r.pages_scanned;
        all.pages_pruned += r.pages_pruned;
        all.versions_removed += r.versions_removed;
        all.bytes_freed += r.bytes_freed;
    }
    while node.segments().len() as u16 > to {
        match node.retire_segment() {
            Ok(c) => say!(a, "retired segment {c}"),
            Err(e) => {
                say!(a, "segment not retired yet: {e}");
                break;
            }
        }
    }
    Ok(all)
}
