//! Placing new primaries and their mirrors on hosts: gppylib's
//! `createSegmentRowsFromSegmentList` (new hosts, copying the prototype host),
//! `createSegmentRows` (new data directories on every host) and
//! `GpArray._fixup_and_add_expansion_segments` (dbids, content ids and data
//! directory names).
//!
//! On each host the primaries take ports from the primary base up, one per
//! data directory. Mirrors then go:
//! - **grouped**: all of host *i*'s mirrors on host *i+1* (the last host's on
//!   the first), ports from the mirror base up. Needs at least 2 hosts.
//! - **spread**: host *i*'s *j*-th mirror on host *i+k+j* (mod the host
//!   count; *k* is 1 for new hosts, 2 for new directories; a mirror that would
//!   land on its own primary's host moves one host on). Each mirror host
//!   numbers its mirror ports from the mirror base in the order they arrive.
//!   Needs more hosts than primaries per host.
//!
//! Then the rows are ordered primaries first, each group by host name, and
//! numbered: dbids from `first_dbid`, primary content ids from
//! `first_content`, each mirror taking its primary's content id. A data
//! directory is `<dir>/<prefix><content>`.

use std::collections::HashMap;
use std::fmt;

use crate::cluster::{Role, Segment};

/// gpexpand's mirror strategies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorStrategy {
    Grouped,
    Spread,
}

impl MirrorStrategy {
    /// Reads `grouped` or `spread` as gpexpand does (case and surrounding
    /// space ignored).
    pub fn parse(text: &str) -> Result<MirrorStrategy, MirrorError> {
        match text.trim().to_lowercase().as_str() {
            "grouped" => Ok(MirrorStrategy::Grouped),
            "spread" => Ok(MirrorStrategy::Spread),
            _ => Err(MirrorError::InvalidType(text.to_string())),
        }
    }
}

/// Which of gpexpand's two layouts: they differ in where a spread mirror
/// starts and which interface a mirror's address uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// New hosts laid out like the prototype host (`addExpansionHosts`).
    NewHosts,
    /// New data directories on every segment host (`addExpansionDatadirs`).
    AllHosts,
}

/// What to place.
#[derive(Clone, Copy, Debug)]
pub struct PlanRequest<'a> {
    pub placement: Placement,
    /// The hosts, in order; the order decides the mirror hosts.
    pub hosts: &'a [String],
    /// One parent directory per primary on each host.
    pub primary_dirs: &'a [String],
    /// One parent directory per mirror on each host; as many as
    /// `primary_dirs` when `mirroring` is set, else ignored.
    pub mirror_dirs: &'a [String],
    pub mirroring: Option<MirrorStrategy>,
    pub primary_port_base: u16,
    pub mirror_port_base: u16,
    /// Prefix of a data directory's last component (`gpseg`).
    pub dir_prefix: &'a str,
    /// Interface numbers (`1` for `sdw1-1`), sorted; empty when addresses are
    /// host names.
    pub interfaces: &'a [String],
    pub first_dbid: i32,
    pub first_content: i32,
}

/// Why a placement cannot be made. `Display` is gpexpand's text where it has
/// one.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MirrorError {
    NotEnoughHostsForSpread,
    NotEnoughHostsForGrouped,
    InvalidType(String),
    /// Mirror and primary directory lists of different lengths.
    MirrorDirCount,
    /// Not in gpexpand: a port past 65535.
    PortOutOfRange {
        base: u16,
    },
}

impl fmt::Display for MirrorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorError::NotEnoughHostsForSpread => f.write_str(
                "Not enough hosts for spread mirroring.  You must have more hosts than primary segments per host",
            ),
            MirrorError::NotEnoughHostsForGrouped => f.write_str(
                "Not enough hosts for grouped mirroring.  You must have at least 2",
            ),
            MirrorError::InvalidType(t) => write!(f, "Invalid mirror type specified: {t}"),
            MirrorError::MirrorDirCount => f.write_str(
                "The number of new mirror data directories entered does not match the number of segments added",
            ),
            MirrorError::PortOutOfRange { base } => {
                write!(f, "Ports counted up from {base} go past 65535")
            }
        }
    }
}

impl std::error::Error for MirrorError {}

/// A placed segment before numbering; `slot` pairs a mirror with the primary
/// of the same slot.
struct Row {
    slot: usize,
    role: Role,
    host: String,
    address: String,
    port: u16,
    dir: String,
}

/// Places and numbers the new segments. They come back in dbid order.
pub fn plan_segments(req: &PlanRequest<'_>) -> Result<Vec<Segment>, MirrorError> {
    let mut rows = primary_rows(req)?;
    match req.mirroring {
        None => {}
        Some(strategy) => {
            if req.mirror_dirs.len() != req.primary_dirs.len() {
                return Err(MirrorError::MirrorDirCount);
            }
            match strategy {
                MirrorStrategy::Grouped => grouped_rows(req, &mut rows)?,
                MirrorStrategy::Spread => spread_rows(req, &mut rows)?,
            }
        }
    }
    number(rows, req)
}

/// `<host>-<interface>` for the `index`-th interface (wrapping), or the host.
fn address(req: &PlanRequest<'_>, host: &str, index: usize) -> String {
    match req.interfaces.get(index % req.interfaces.len().max(1)) {
        Some(number) => format!("{host}-{number}"),
        None => host.to_string(),
    }
}

/// Port `base + offset`, or an error past 65535.
fn port(base: u16, offset: usize) -> Result<u16, MirrorError> {
    u16::try_from(offset)
        .ok()
        .and_then(|o| base.checked_add(o))
        .ok_or(MirrorError::PortOutOfRange { base })
}

fn primary_rows(req: &PlanRequest<'_>) -> Result<Vec<Row>, MirrorError> {
    let mut rows = Vec::new();
    for host in req.hosts {
        for (index, dir) in req.primary_dirs.iter().enumerate() {
            rows.push(Row {
                slot: rows.len(),
                role: Role::Primary,
                host: host.clone(),
                address: address(req, host, index),
                port: port(req.primary_port_base, index)?,
                dir: dir.clone(),
            });
        }
    }
    Ok(rows)
}

fn grouped_rows(req: &PlanRequest<'_>, rows: &mut Vec<Row>) -> Result<(), MirrorError> {
    let hosts = req.hosts;
    if hosts.len() < 2 {
        return Err(MirrorError::NotEnoughHostsForGrouped);
    }
    let mut slot = 0;
    for i in 0..hosts.len() {
        let Some(mirror_host) = hosts.get((i + 1) % hosts.len()) else {
            continue;
        };
        for (index, dir) in req.mirror_dirs.iter().enumerate() {
            rows.push(Row {
                slot,
                role: Role::Mirror,
                host: mirror_host.clone(),
                address: address(req, mirror_host, index + 1),
                port: port(req.mirror_port_base, index)?,
                dir: dir.clone(),
            });
            slot += 1;
        }
    }
    Ok(())
}

fn spread_rows(req: &PlanRequest<'_>, rows: &mut Vec<Row>) -> Result<(), MirrorError> {
    let hosts = req.hosts;
    let n = hosts.len();
    if n <= req.primary_dirs.len() {
        return Err(MirrorError::NotEnoughHostsForSpread);
    }
    let first_step = match req.placement {
        Placement::NewHosts => 1,
        Placement::AllHosts => 2,
    };
    let mut next_port: HashMap<&str, usize> = HashMap::new();
    let mut slot = 0;
    for (i, host) in hosts.iter().enumerate() {
        let mut offset = i + first_step;
        for (index, dir) in req.mirror_dirs.iter().enumerate() {
            if hosts.get(offset % n) == Some(host) {
                offset += 1;
            }
            let Some(mirror_host) = hosts.get(offset % n) else {
                continue;
            };
            let interface = match req.placement {
                Placement::NewHosts => index + 1,
                Placement::AllHosts => offset,
            };
            let taken = next_port.entry(mirror_host.as_str()).or_insert(0);
            rows.push(Row {
                slot,
                role: Role::Mirror,
                host: mirror_host.clone(),
                address: address(req, mirror_host, interface),
                port: port(req.mirror_port_base, *taken)?,
                dir: dir.clone(),
            });
            *taken += 1;
            slot += 1;
            offset += 1;
        }
    }
    Ok(())
}

/// `_fixup_and_add_expansion_segments`: primaries first, by host name, then
/// mirrors by host name; dbids and content ids handed out in that order.
fn number(mut rows: Vec<Row>, req: &PlanRequest<'_>) -> Result<Vec<Segment>, MirrorError> {
    rows.sort_by(|a, b| (a.role, &a.host).cmp(&(b.role, &b.host)));
    let mut content_of_slot: HashMap<usize, i32> = HashMap::new();
    let mut next_content = req.first_content;
    let mut out = Vec::with_capacity(rows.len());
    for (dbid, row) in (req.first_dbid..).zip(rows) {
        let content = match row.role {
            Role::Primary => {
                content_of_slot.insert(row.slot, next_content);
                next_content += 1;
                next_content - 1
            }
            Role::Mirror => *content_of_slot
                .get(&row.slot)
                .ok_or(MirrorError::MirrorDirCount)?,
        };
        out.push(Segment {
            datadir: format!("{}/{}{}", row.dir, req.dir_prefix, content),
            hostname: row.host,
            address: row.address,
            port: row.port,
            dbid,
            content,
            role: row.role,
        });
    }
    Ok(out)
}
