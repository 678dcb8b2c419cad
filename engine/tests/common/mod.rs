//! Shared test support: a deterministic PRNG and a scripted storage workload checked
//! against a reference model of committed rows.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use segexpand_engine::storage::tuple::Tid;
use segexpand_engine::vfs::{SimVfs, Vfs};
use segexpand_engine::{Error, Node, NodeOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

/// splitmix64: small, deterministic, good enough for test scripts.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub const DIR: &str = "/db";
pub const SEGMENTS: u16 = 2;

/// A row's payload: its id, then filler whose length and bytes derive from the id, so a
/// reader can tell a real row from garbage.
pub fn payload(id: u64) -> Vec<u8> {
    let mut p = format!("row:{id}:").into_bytes();
    let fill = 20 + (id * 37 % 280) as usize;
    p.extend((0..fill).map(|i| b'a' + ((id as usize + i) % 26) as u8));
    p
}

pub fn parse_payload(p: &[u8]) -> u64 {
    let s = std::str::from_utf8(p).expect("payload is UTF-8");
    let id: u64 = s
        .split(':')
        .nth(1)
        .expect("payload has an id")
        .parse()
        .expect("id parses");
    assert_eq!(p, &payload(id)[..], "payload of row {id} is damaged");
    id
}

pub fn segment_of(id: u64) -> u16 {
    (id % u64::from(SEGMENTS)) as u16
}

/// Where a committed row lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowAt {
    pub table: u32,
    pub segment: u16,
    pub tid: Tid,
}

/// The effect of one transaction.
#[derive(Debug, Default, Clone)]
pub struct Effect {
    pub inserted: Vec<(u64, RowAt)>,
    pub deleted: Vec<u64>,
}

/// What the workload got acknowledged before it stopped.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The node was fully created (its create call returned Ok).
    pub created: bool,
    /// Committed, acknowledged live rows.
    pub live: BTreeMap<u64, RowAt>,
    /// A commit whose call failed: it may or may not have reached the disk.
    pub ambiguous: Option<Effect>,
    /// The error that stopped the workload, if any.
    pub error: Option<String>,
    /// Tables whose creation was acknowledged.
    pub tables: Vec<u32>,
}

pub fn small_opts() -> NodeOptions {
    // Small WAL files so the workload crosses file boundaries and checkpoints remove
    // old files: both are crash points too.
    NodeOptions {
        cache_pages_max: 16,
        wal_file_bytes: 40 * 1024,
        ..NodeOptions::default()
    }
}

/// A fresh in-memory file system holding a node of `segments` segments and one table "t".
pub fn node_with_table(segments: u16, opts: NodeOptions) -> (SimVfs, Arc<Node>, u32) {
    let vfs = SimVfs::new();
    let node = Node::create(Arc::new(vfs.clone()), Path::new(DIR), segments, opts).unwrap();
    let t = node.create_raw_table("t").unwrap();
    (vfs, node, t)
}

/// Runs the scripted workload on `vfs` until it finishes or an operation fails.
pub fn run_workload(vfs: &SimVfs, seed: u64, txns: usize) -> Outcome {
    let mut out = Outcome::default();
    if let Err(e) = workload_inner(vfs, seed, txns, &mut out) {
        out.error = Some(e.to_string());
    }
    out
}

fn workload_inner(vfs: &SimVfs, seed: u64, txns: usize, out: &mut Outcome) -> Result<(), Error> {
    let mut rng = Rng(seed);
    let vfs: Arc<dyn Vfs> = Arc::new(vfs.clone());
    let node = Node::create(vfs, Path::new(DIR), SEGMENTS, small_opts())?;
    out.created = true;
    for name in ["t1", "t2"] {
        out.tables.push(node.create_raw_table(name)?);
    }
    let mut next_id = 0u64;
    for i in 0..txns {
        let x = node.begin_xid()?;
        let mut eff = Effect::default();
        for _ in 0..1 + rng.below(6) {
            let id = next_id;
            next_id += 1;
            let table = out.tables[(id % 3 % 2) as usize];
            let segment = segment_of(id);
            let tid = node.insert(x, 0, segment, table, false, &payload(id))?;
            eff.inserted.push((
                id,
                RowAt {
                    table,
                    segment,
                    tid,
                },
            ));
        }
        for _ in 0..rng.below(3) {
            if out.live.is_empty() {
                break;
            }
            let k = rng.below(out.live.len() as u64) as usize;
            let (id, at) = out.live.iter().nth(k).map(|(i, a)| (*i, *a)).unwrap();
            if eff.deleted.contains(&id) {
                continue;
            }
            node.set_xmax(x, 0, at.segment, at.table, at.tid, 0)?;
            eff.deleted.push(id);
        }
        if rng.below(5) == 0 {
            node.abort_xid(x)?;
        } else {
            match node.commit_xid(x) {
                Ok(()) => apply(&mut out.live, &eff),
                Err(e) => {
                    out.ambiguous = Some(eff);
                    return Err(e);
                }
            }
        }
        if i % 10 == 9 {
            node.checkpoint()?;
        }
        if i % 15 == 14 {
            for t in out.tables.clone() {
                for s in 0..SEGMENTS {
                    node.prune(s, t, u64::MAX)?;
                }
            }
        }
    }
    node.close()?;
    Ok(())
}

pub fn apply(live: &mut BTreeMap<u64, RowAt>, eff: &Effect) {
    for (id, at) in &eff.inserted {
        live.insert(*id, *at);
    }
    for id in &eff.deleted {
        live.remove(id);
    }
}

/// Every live row of every table of the node, by id; panics on a duplicate.
pub fn live_rows(node: &Arc<Node>) -> BTreeMap<u64, RowAt> {
    let mut rows = BTreeMap::new();
    for t in node.tables() {
        for s in node.segments() {
            for (tid, p) in node.scan_committed(s, t.id).unwrap() {
                let id = parse_payload(&p);
                let at = RowAt {
                    table: t.id,
                    segment: s,
                    tid,
                };
                assert!(rows.insert(id, at).is_none(), "row {id} seen twice");
            }
        }
    }
    rows
}

/// Checks the recovered rows against the outcome: every acknowledged commit present,
/// nothing else except, possibly, the one ambiguous commit — whole or not at all.
pub fn check_against(outcome: &Outcome, rows: &BTreeMap<u64, RowAt>, ctx: &str) {
    let ids: BTreeSet<u64> = rows.keys().copied().collect();
    let acked: BTreeSet<u64> = outcome.live.keys().copied().collect();
    if ids == acked {
        return;
    }
    if let Some(eff) = &outcome.ambiguous {
        let mut with = outcome.live.clone();
        apply(&mut with, eff);
        let with: BTreeSet<u64> = with.keys().copied().collect();
        if ids == with {
            return;
        }
    }
    let missing: Vec<_> = acked.difference(&ids).collect();
    let extra: Vec<_> = ids.difference(&acked).collect();
    panic!("{ctx}: recovered rows differ from the model: missing {missing:?}, extra {extra:?}, outcome error {:?}", outcome.error);
}

/// A node whose creation failed part way left an empty directory or one marked as an
/// interrupted creation (never "damaged"), and creating the node again there works.
pub fn assert_creation_interrupted(img: &SimVfs, ctx: &str) {
    use segexpand_engine::datadir::{inspect, DirState};
    let state = inspect(img, Path::new(DIR)).unwrap();
    assert!(
        matches!(
            state,
            DirState::Empty | DirState::CreateInterrupted | DirState::Missing
        ),
        "{ctx}: a failed creation left {state:?}"
    );
    let again = img.snapshot();
    Node::create(Arc::new(again), Path::new(DIR), SEGMENTS, small_opts())
        .unwrap_or_else(|e| panic!("{ctx}: creating again after a failed creation: {e}"));
}
