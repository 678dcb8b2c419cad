//! The checking workload's client loop against a bare point read, in instructions
//! (repeatable where wall time on a shared machine is not):
//!
//! ```sh
//! cargo build --release -p segexpand-bench --example client_loop_cost
//! for m in bare loop; do for n in 100000 200000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/client_loop_cost $m $n 2>&1 | grep -E 'Collected'
//! done; done
//! ```
//!
//! `bare N`: N point reads of a 100,000-row table in one transaction. `loop N`: the
//! same reads as the checking workload's SELECT thread does them — one clock read per
//! read and a timeline record. (loop N − bare N) / N is the loop's cost per read, and
//! (bare 2N − bare N) / N a read's.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use segexpand_bench::timeline::{Op, Outcome, Timeline};
use segexpand_engine::Value;
use std::hint::black_box;

#[path = "../shared/point_table.rs"]
mod point_table;
use point_table::{point_table, ROWS};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("bare", String::as_str).to_string();
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let node = point_table(dir.path());
    // An interval longer than the run: under valgrind the program runs ~50x slower and
    // would cross 100 ms intervals (each a flush of the cells) 50x as often per read.
    let tl = Timeline::new(Duration::from_secs(3600));
    let mut tx = node.begin().unwrap();
    let mut k = 0u64;
    if mode == "loop" {
        let mut rec = tl.client();
        rec.restart(Instant::now());
        for _ in 0..n {
            k = (k + 7919) % ROWS;
            let r = tx.get("t", &[Value::Int8(k as i64)]);
            let end = Instant::now();
            black_box(r.unwrap());
            rec.record_next(Op::PointSelect, end, Outcome::Ok);
        }
    } else {
        for _ in 0..n {
            k = (k + 7919) % ROWS;
            black_box(tx.get("t", &[Value::Int8(k as i64)]).unwrap());
        }
    }
    tx.rollback().unwrap();
    println!("{mode} {n}");
}
