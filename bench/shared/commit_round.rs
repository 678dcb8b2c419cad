//! `commit_round`, shared by the storage benchmark and the group-commit probe (included
//! by `#[path]`): it uses the engine's raw API, which only their `testing` build has, so
//! it is not part of the library.

use segexpand_engine::{Error, Node};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `threads` threads each commit `per_thread` small transactions (one insert, one durable
/// commit) on `node`'s `table`, spread over its first four segments; returns the wall time.
pub fn commit_round(
    node: &Arc<Node>,
    table: u32,
    threads: usize,
    per_thread: u64,
) -> Result<Duration, Error> {
    let start = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|th| {
                let node = node.clone();
                s.spawn(move || -> Result<(), Error> {
                    for _ in 0..per_thread {
                        let x = node.begin_xid()?;
                        node.insert(x, 0, (th % 4) as u16, table, false, b"commit-bench-row")?;
                        node.commit_xid(x)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(Error::InvalidArgument("bench thread panicked".into())))
        })
    })?;
    Ok(start.elapsed())
}
