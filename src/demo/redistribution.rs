//! The redistribution itself: the plan (the table's segments and the ones to go to), an
//! interrupted redistribution finished first, segments added, the move — online with a
//! progress bar, or offline (locked, full rewrite) — and, after it, the cleanup of old
//! versions and the retirement of emptied segments.

use super::schema::TABLE;
use super::workload::{Load, SetOnDrop};
use super::{
    bad, BatchLimits, DemoArgs, Error, Finish, Handle, Layout, MoveCounts, Node, Options, Progress,
    PruneStats, Redistributor,
};
use crate::out;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The table's segments now (after an interrupted redistribution finishes) and the
/// segments to go to; refuses, before anything changes, when they are the same.
pub(super) fn plan(a: &DemoArgs, node: &Arc<Node>) -> Result<(u16, u16), Error> {
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

/// Finishes a redistribution an earlier run left unfinished; returns the table's
/// layout, which must then have `from` segments.
pub(super) fn finish_interrupted(
    a: &DemoArgs,
    node: &Arc<Node>,
    from: u16,
) -> Result<Layout, Error> {
    if node.table_def(TABLE)?.redistribution.is_some() {
        say!(
            a,
            "an earlier run was interrupted while redistributing: finishing it first"
        );
        let r = Redistributor::attach(node.clone(), TABLE, Options::default())?;
        r.run()?;
        r.cleanup()?;
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
pub(super) fn add_segments(a: &DemoArgs, node: &Arc<Node>, to: u16) -> Result<(), Error> {
    while (node.segments().len() as u16) < to {
        let c = node.add_new_segment()?;
        say!(a, "added segment {c}");
    }
    Ok(())
}

/// What the redistribution measured, for the summary.
#[derive(Default)]
pub(super) struct Summary {
    pub(super) counts: MoveCounts,
    pub(super) mover_s: f64,
    pub(super) redistribute_s: f64,
    pub(super) start_stall_us: u64,
    pub(super) flip_stall_us: u64,
    pub(super) flip_attempts: u32,
}

/// Redistributes the table to `target`, online or (`--offline`) offline, filling `out`.
pub(super) fn redistribute(
    a: &DemoArgs,
    node: &Arc<Node>,
    target: Layout,
    out: &mut Summary,
    load: &Load,
) -> Result<(), Error> {
    let t0 = Instant::now();
    if a.offline {
        offline(node, target, out, t0)
    } else {
        online(a, node, target, out, load, t0)
    }
}

/// The gpexpand way: the table locked and rewritten; every DML statement waits.
fn offline(node: &Arc<Node>, target: Layout, out: &mut Summary, t0: Instant) -> Result<(), Error> {
    let r = node.redistribute_offline(TABLE, target, &BatchLimits::default())?;
    out.counts = r.counts;
    out.mover_s = r.locked_us as f64 / 1e6;
    out.redistribute_s = t0.elapsed().as_secs_f64();
    // Every DML statement was held for the whole rewrite.
    out.flip_stall_us = r.locked_us;
    out.start_stall_us = r.locked_us;
    out.flip_attempts = 1;
    Ok(())
}

/// Online: the redistributor runs here while a thread draws its progress bar (and
/// stops it when the workload failed); the table must end flipped.
fn online(
    a: &DemoArgs,
    node: &Arc<Node>,
    target: Layout,
    out: &mut Summary,
    load: &Load,
    t0: Instant,
) -> Result<(), Error> {
    let opts = Options {
        workers: a.workers,
        rows_per_s: a.max_rows_per_s,
        ..Options::default()
    };
    let r = Redistributor::start(node.clone(), TABLE, target, opts)?;
    let h = r.handle();
    let done = AtomicBool::new(false);
    let outcome = std::thread::scope(|s| {
        s.spawn(|| progress_bar(&h, load, &done));
        // The progress thread ends however the run ends (a panic included).
        let _done = SetOnDrop(&done);
        r.run()
    })?;
    if outcome.finish != Finish::Flipped {
        return Err(bad(format!(
            "redistribution ended {:?} (the table is left redistributing; the next run \
             finishes it)",
            outcome.finish
        )));
    }
    let p = outcome.progress;
    out.counts = p.counts;
    out.mover_s = outcome.mover_s;
    out.redistribute_s = t0.elapsed().as_secs_f64();
    out.start_stall_us = r.start_report().map_or(0, |s| s.dml_stall_us_max);
    let flip = outcome.flip.unwrap_or_default();
    out.flip_stall_us = flip.dml_stall_us_max;
    out.flip_attempts = flip.attempts;
    Ok(())
}

/// Redraws the progress line every 250 ms (one line each time when stderr is not a
/// terminal) until `done`; stops the mover when the workload stopped.
fn progress_bar(h: &Handle, load: &Load, done: &AtomicBool) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(250));
        if load.stopped() {
            // The workload failed: stop the mover (the table stays
            // redistributing; a later run resumes).
            h.stop();
        }
        let line = progress_line(&h.progress());
        if tty {
            out::err_text(format_args!("\r{line}"));
        } else {
            out::err_line(format_args!("{line}"));
        }
    }
    if tty {
        out::err_line(format_args!(""));
    }
}

/// The progress line: a bar of 40, the percentage, blocks and rows.
fn progress_line(p: &Progress) -> String {
    let frac = p.blocks_done as f64 / (p.blocks_total as f64).max(1.0);
    let bar: String = (0..40)
        .map(|i| if (i as f64) < frac * 40.0 { '#' } else { '.' })
        .collect();
    format!(
        "[{bar}] {:5.1}%  blocks {}/{}  moved {}  flipped {}  skipped {}",
        frac * 100.0,
        p.blocks_done,
        p.blocks_total,
        p.counts.rows_moved,
        p.counts.rows_flipped,
        p.counts.rows_skipped
    )
}

/// Reclaims the row versions the redistribution left, then retires the segments past
/// `to` (one that cannot be retired yet stays, with a message).
pub(super) fn clean_up(a: &DemoArgs, node: &Arc<Node>, to: u16) -> Result<PruneStats, Error> {
    let reclaimed = node.cleanup_redistribution(TABLE)?;
    while node.segments().len() as u16 > to {
        match node.retire_segment() {
            Ok(c) => say!(a, "retired segment {c}"),
            Err(e) => {
                say!(a, "segment not retired yet: {e}");
                break;
            }
        }
    }
    Ok(reclaimed)
}
