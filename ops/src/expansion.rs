//! The expansion half of gppylib's `GpArray`: new segments added one at a
//! time (`addExpansionSeg`) and the whole set checked against the existing
//! cluster (`validateExpansionSegs`). Both the input file and the interview
//! go through here, so the rules live in one place.
//!
//! The rules, from gpexpand: new content ids follow the cluster's highest
//! without a gap, each with one primary (and one mirror exactly when content 0
//! has a mirror); new dbids, sorted, run from the cluster's highest dbid
//! (coordinator and standby included) + 1 without a gap; no host uses a data
//! directory or a port twice, old segments included.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::cluster::{first_seen, Cluster, Role, Segment};

/// A rule the new segments break. `Display` is gpexpand's text.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpansionError {
    /// From `addExpansionSeg`: a content id not above the cluster's highest.
    InvalidContentForExpansion,
    /// From `addExpansionSeg`: two primaries with one content id.
    DuplicatePrimary,
    /// Not in gpexpand, which keeps the last of two mirrors silently.
    DuplicateMirror,
    NoSegments,
    NotContiguous,
    MissingMirror,
    UnexpectedMirror,
    IncorrectDbids,
    InvalidContentIds,
    DuplicateDatadir {
        datadir: String,
        host: String,
    },
    DuplicatePort {
        port: u16,
        host: String,
    },
}

impl fmt::Display for ExpansionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpansionError::InvalidContentForExpansion => {
                f.write_str("Invalid content ID for expansion segment")
            }
            ExpansionError::DuplicatePrimary => {
                f.write_str("Duplicate content id for primary segment")
            }
            ExpansionError::DuplicateMirror => {
                f.write_str("Duplicate content id for mirror segment")
            }
            ExpansionError::NoSegments => f.write_str("No expansion segments defined"),
            ExpansionError::NotContiguous => {
                f.write_str("Expansion segments do not have contiguous content ids.")
            }
            ExpansionError::MissingMirror => {
                f.write_str("Expansion segment has no mirror but mirroring is enabled.")
            }
            ExpansionError::UnexpectedMirror => f.write_str(
                "Expansion segment has a mirror segment defined but mirroring is not enabled.",
            ),
            ExpansionError::IncorrectDbids => {
                f.write_str("Expansion segments have incorrect dbids")
            }
            ExpansionError::InvalidContentIds => f.write_str("Invalid content ids"),
            ExpansionError::DuplicateDatadir { datadir, host } => {
                write!(
                    f,
                    "Data directory {datadir} used multiple times on host {host}"
                )
            }
            ExpansionError::DuplicatePort { port, host } => {
                write!(f, "Port {port} is used multiple times on host {host}")
            }
        }
    }
}

impl std::error::Error for ExpansionError {}

#[derive(Clone, Debug, Default)]
struct Pair {
    primary: Option<Segment>,
    mirror: Option<Segment>,
}

impl Pair {
    fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.primary.iter().chain(self.mirror.iter())
    }
}

/// The cluster plus the segments being added to it.
#[derive(Clone, Debug)]
pub(crate) struct Expansion<'c> {
    cluster: &'c Cluster,
    /// By content id. A map, not gpexpand's list with holes: a content id of
    /// two billion in a file must not allocate two billion slots.
    pairs: BTreeMap<i32, Pair>,
}

impl<'c> Expansion<'c> {
    pub(crate) fn new(cluster: &'c Cluster) -> Expansion<'c> {
        Expansion {
            cluster,
            pairs: BTreeMap::new(),
        }
    }

    pub(crate) fn cluster(&self) -> &'c Cluster {
        self.cluster
    }

    /// `addExpansionSeg`.
    pub(crate) fn add(&mut self, segment: Segment) -> Result<(), ExpansionError> {
        if segment.content < self.cluster.content_count() {
            return Err(ExpansionError::InvalidContentForExpansion);
        }
        let pair = self.pairs.entry(segment.content).or_default();
        let slot = match segment.role {
            Role::Primary => (&mut pair.primary, ExpansionError::DuplicatePrimary),
            Role::Mirror => (&mut pair.mirror, ExpansionError::DuplicateMirror),
        };
        if slot.0.is_some() {
            return Err(slot.1);
        }
        *slot.0 = Some(segment);
        Ok(())
    }

    /// The new segments in `getExpansionSegDbList()` order: by content, the
    /// primary before the mirror. This is the order of a generated input file.
    pub(crate) fn segments(&self) -> Vec<Segment> {
        self.pairs
            .values()
            .flat_map(Pair::segments)
            .cloned()
            .collect()
    }

    /// The highest dbid, new segments included (`get_max_dbid(True)`).
    pub(crate) fn max_dbid(&self) -> i32 {
        self.new_segments()
            .map(|s| s.dbid)
            .fold(self.cluster.max_dbid(), i32::max)
    }

    /// The highest content id, new segments included.
    pub(crate) fn max_content(&self) -> i32 {
        self.new_segments()
            .map(|s| s.content)
            .fold(self.cluster.max_content(), i32::max)
    }

    /// Hosts holding segments (not the coordinator's unless it holds some),
    /// old then new, in order of first appearance (`getSegDbList(True)`).
    pub(crate) fn segment_hosts(&self) -> Vec<String> {
        let all = self.cluster.qe_segments().chain(self.new_segments());
        first_seen(all.map(|s| s.hostname.as_str()))
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn new_segments(&self) -> impl Iterator<Item = &Segment> {
        self.pairs.values().flat_map(Pair::segments)
    }

    /// `validateExpansionSegs`, checks in gpexpand's order.
    pub(crate) fn validate(&self) -> Result<(), ExpansionError> {
        if self.pairs.is_empty() {
            return Err(ExpansionError::NoSegments);
        }
        let mirrored = self.cluster.mirroring_enabled();
        let first_content = self.cluster.content_count();
        let mut dbids = Vec::new();
        let mut contents = Vec::new();
        for (expected, (&content, pair)) in (first_content..).zip(&self.pairs) {
            if content != expected {
                return Err(ExpansionError::NotContiguous);
            }
            for seg in pair.segments() {
                dbids.push(seg.dbid);
                contents.push((seg.content, seg.role == Role::Primary));
            }
            if pair.mirror.is_none() && mirrored {
                return Err(ExpansionError::MissingMirror);
            }
            if pair.mirror.is_some() && !mirrored {
                return Err(ExpansionError::UnexpectedMirror);
            }
        }

        let mut dbids: Vec<i64> = dbids.into_iter().map(i64::from).collect();
        dbids.sort_unstable();
        if dbids.first() != Some(&(i64::from(self.cluster.max_dbid()) + 1))
            || dbids
                .windows(2)
                .any(|w| matches!(w, [a, b] if *a + 1 != *b))
        {
            return Err(ExpansionError::IncorrectDbids);
        }

        let mut valid = Vec::new();
        for content in (first_content..).take(self.pairs.len()) {
            valid.push((content, true));
            if mirrored {
                valid.push((content, false));
            }
        }
        valid.sort_unstable();
        contents.sort_unstable();
        if valid != contents {
            return Err(ExpansionError::InvalidContentIds);
        }

        let mut datadirs: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut ports: HashMap<&str, Vec<u16>> = HashMap::new();
        for seg in self.cluster.segments().iter().chain(self.new_segments()) {
            let host = seg.hostname.as_str();
            let dirs = datadirs.entry(host).or_default();
            if dirs.contains(&seg.datadir.as_str()) {
                return Err(ExpansionError::DuplicateDatadir {
                    datadir: seg.datadir.clone(),
                    host: host.to_string(),
                });
            }
            dirs.push(&seg.datadir);
            let used = ports.entry(host).or_default();
            if used.contains(&seg.port) {
                return Err(ExpansionError::DuplicatePort {
                    port: seg.port,
                    host: host.to_string(),
                });
            }
            used.push(seg.port);
        }
        Ok(())
    }
}
