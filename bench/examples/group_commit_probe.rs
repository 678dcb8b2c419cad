//! Prints commits per second and commits per WAL sync for 1, 2 and 8 committing threads:
//! `cargo run --release -p segexpand-bench --example group_commit_probe`.
#![allow(clippy::unwrap_used)]
#[path = "../shared/commit_round.rs"]
mod commit;
use segexpand_engine::{Node, NodeOptions};

fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let node = Node::create_dir(dir.path(), 4, NodeOptions::default()).unwrap();
    let t = node.create_raw_table("c").unwrap();
    let mut base = 0.0;
    for threads in [1u64, 2, 8, 16] {
        let per = 2000 / threads;
        let f0 = node.wal().flush_count();
        let secs = commit::commit_round(&node, t, threads as usize, per)
            .unwrap()
            .as_secs_f64();
        let commits = threads * per;
        let rate = commits as f64 / secs;
        if threads == 1 {
            base = rate;
        }
        let flushes = node.wal().flush_count() - f0;
        println!(
            "threads {threads:2}: {rate:8.0} commits/s ({:.2}x of 1 thread), {:.2} commits per sync, {:.0} us per sync",
            rate / base,
            commits as f64 / flushes as f64,
            secs * 1e6 / flushes as f64
        );
    }
}
