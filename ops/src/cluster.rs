//! The existing cluster as gpexpand sees it (gppylib's `GpArray` without the
//! expansion half): the coordinator (content -1, preferred role `p`), an
//! optional standby (content -1, `m`), and segments 0..=N, each with a
//! primary and, when mirroring is enabled, a mirror.
//!
//! Segments are kept in `GpArray.getDbList()` order (coordinator, standby,
//! then by content with the primary before the mirror), because gpexpand's
//! checks report the first clash in that order. Roles are preferred roles:
//! gpexpand expects a balanced cluster (it warns "One or more segments are
//! either down or not in preferred role." otherwise), so current roles are not
//! modelled.

use std::collections::BTreeSet;
use std::fmt;

use crate::pyfmt;

/// A segment's preferred role (`gp_segment_configuration.preferred_role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// `p`
    Primary,
    /// `m`
    Mirror,
}

impl Role {
    /// The catalog letter, `p` or `m`.
    pub fn as_char(self) -> char {
        match self {
            Role::Primary => 'p',
            Role::Mirror => 'm',
        }
    }

    /// Reads the catalog letter exactly as gpexpand does (`p` or `m`, no case
    /// folding, no surrounding space).
    pub fn from_code(code: &str) -> Option<Role> {
        match code {
            "p" => Some(Role::Primary),
            "m" => Some(Role::Mirror),
            _ => None,
        }
    }
}

/// One row of `gp_segment_configuration`, or one line of an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub hostname: String,
    pub address: String,
    pub port: u16,
    pub datadir: String,
    pub dbid: i32,
    pub content: i32,
    pub role: Role,
}

/// A segment the expansion adds; same shape as an existing one.
pub type NewSegment = Segment;

impl Segment {
    /// Coordinator or standby (content below 0).
    pub fn is_qd(&self) -> bool {
        self.content < 0
    }

    /// The coordinator: content below 0 and preferred role primary.
    pub fn is_coordinator(&self) -> bool {
        self.content < 0 && self.role == Role::Primary
    }

    /// A primary segment (content 0 or more).
    pub fn is_primary(&self) -> bool {
        self.content >= 0 && self.role == Role::Primary
    }

    /// A mirror segment (content 0 or more).
    pub fn is_mirror(&self) -> bool {
        self.content >= 0 && self.role == Role::Mirror
    }
}

/// Why a list of segments is not a cluster gpexpand could work on.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterError {
    NoCoordinator,
    MultipleCoordinators,
    MultipleStandbys,
    /// A content id below -1.
    InvalidSegment {
        dbid: i32,
    },
    /// Not in gpexpand, which would fail on a Python `IndexError`.
    MissingPrimary {
        content: i32,
    },
    /// Not in gpexpand, which keeps the last one silently.
    DuplicateSegment {
        content: i32,
        role: Role,
    },
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::NoCoordinator => {
                f.write_str("Error: GpArray() - no coordinator dbs defined")
            }
            ClusterError::MultipleCoordinators => {
                f.write_str("GpArray - multiple coordinator dbs defined")
            }
            ClusterError::MultipleStandbys => {
                f.write_str("GpArray - multiple standby coordinator dbs defined")
            }
            ClusterError::InvalidSegment { .. } => {
                f.write_str("Error: GpArray() - invalid dbs defined")
            }
            ClusterError::MissingPrimary { content } => {
                write!(f, "Content {content} has no primary segment")
            }
            ClusterError::DuplicateSegment { content, role } => {
                let kind = match role {
                    Role::Primary => "primary",
                    Role::Mirror => "mirror",
                };
                write!(f, "Content {content} has more than one {kind} segment")
            }
        }
    }
}

impl std::error::Error for ClusterError {}

/// The existing cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    segments: Vec<Segment>,
}

impl Cluster {
    /// Checks the shape gpexpand relies on and puts the segments in
    /// `getDbList()` order.
    pub fn new(mut segments: Vec<Segment>) -> Result<Cluster, ClusterError> {
        if let Some(bad) = segments.iter().find(|s| s.content < -1) {
            return Err(ClusterError::InvalidSegment { dbid: bad.dbid });
        }
        match segments.iter().filter(|s| s.is_coordinator()).count() {
            0 => return Err(ClusterError::NoCoordinator),
            1 => {}
            _ => return Err(ClusterError::MultipleCoordinators),
        }
        if segments
            .iter()
            .filter(|s| s.is_qd() && !s.is_coordinator())
            .count()
            > 1
        {
            return Err(ClusterError::MultipleStandbys);
        }
        segments.sort_by_key(|s| (s.content, s.role));
        let mut seen = BTreeSet::new();
        for s in segments.iter().filter(|s| !s.is_qd()) {
            if !seen.insert((s.content, s.role)) {
                return Err(ClusterError::DuplicateSegment {
                    content: s.content,
                    role: s.role,
                });
            }
        }
        let max_content = segments.iter().map(|s| s.content).max().unwrap_or(0).max(0);
        for content in 0..=max_content {
            if !seen.contains(&(content, Role::Primary)) {
                return Err(ClusterError::MissingPrimary { content });
            }
        }
        Ok(Cluster { segments })
    }

    /// All segments in `getDbList()` order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// gpexpand's `get_mirroring_enabled`: content 0 has a mirror.
    pub fn mirroring_enabled(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.content == 0 && s.role == Role::Mirror)
    }

    /// The highest dbid, coordinator and standby included (`get_max_dbid`).
    pub fn max_dbid(&self) -> i32 {
        self.segments.iter().map(|s| s.dbid).fold(0, i32::max)
    }

    /// The highest content id (`get_max_contentid`; 0 at least).
    pub fn max_content(&self) -> i32 {
        self.segments.iter().map(|s| s.content).fold(0, i32::max)
    }

    /// The number of contents (`len(segmentPairs)`).
    pub(crate) fn content_count(&self) -> i32 {
        self.max_content() + 1
    }

    /// Segments that are not the coordinator or standby, in content order.
    pub(crate) fn qe_segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().filter(|s| !s.is_qd())
    }

    /// Every host that holds anything, coordinator and standby included
    /// (`get_hostlist(True)`).
    pub(crate) fn all_hosts(&self) -> Vec<&str> {
        first_seen(self.segments.iter().map(|s| s.hostname.as_str()))
    }

    /// The host of content 0's primary: gpexpand's prototype host.
    pub(crate) fn seg0_host(&self) -> &str {
        self.segments
            .iter()
            .find(|s| s.content == 0 && s.role == Role::Primary)
            .map_or("", |s| s.hostname.as_str())
    }

    /// `get_list_of_primary_segments_on_host` / `..._mirror_...`.
    pub(crate) fn on_host(&self, host: &str, role: Role) -> Vec<&Segment> {
        self.qe_segments()
            .filter(|s| s.role == role && s.hostname == host)
            .collect()
    }

    /// Ports of the primaries (`get_primary_port_list`) or mirrors.
    fn ports(&self, role: Role) -> impl Iterator<Item = u16> + '_ {
        self.qe_segments()
            .filter(move |s| s.role == role)
            .map(|s| s.port)
    }

    pub(crate) fn min_port(&self, role: Role) -> u16 {
        self.ports(role).min().unwrap_or(0)
    }

    pub(crate) fn max_port(&self, role: Role) -> u16 {
        self.ports(role).max().unwrap_or(0)
    }

    /// `get_interface_numbers`, sorted as gpexpand sorts them (as strings):
    /// the `N` of addresses `<host>-N` on the prototype host, or nothing when
    /// any address there is not of that form.
    pub(crate) fn interface_numbers(&self) -> Vec<String> {
        let host = self.seg0_host();
        let addresses = first_seen(
            self.qe_segments()
                .filter(|s| s.hostname == host)
                .map(|s| s.address.as_str()),
        );
        let mut numbers = Vec::new();
        for address in addresses {
            let Some(suffix) = address.strip_prefix(host) else {
                return Vec::new();
            };
            match suffix.strip_prefix('-') {
                Some(number) if pyfmt::is_digits(number) => numbers.push(number.to_string()),
                _ => return Vec::new(),
            }
        }
        numbers.sort();
        numbers
    }

    /// `get_datadir_prefix`: the coordinator directory's last component up to
    /// its last `-` (`gpseg` from `/data/coordinator/gpseg-1`). With Python's
    /// slicing, a name without `-` loses its last character, as in gpexpand.
    pub(crate) fn datadir_prefix(&self) -> String {
        let dir = self
            .segments
            .iter()
            .find(|s| s.is_coordinator())
            .map_or("", |s| s.datadir.as_str());
        pyfmt::slice(dir, pyfmt::rfind(dir, '/') + 1, pyfmt::rfind(dir, '-'))
    }

    /// `GpArray.isStandardArray`: `Err(reason)` when the layout does not look
    /// like one gpexpand's interview can extend symmetrically.
    ///
    /// gpexpand's last check (every host's address suffixes follow the first
    /// host's pattern) compares a list with itself and never fails; it is left
    /// out. Its suffix list is shared by all hosts, which is kept.
    pub fn is_standard_array(&self) -> Result<(), String> {
        let hosts = self.all_hosts();
        let on = |host: &str| -> Vec<&Segment> {
            self.segments
                .iter()
                .filter(|s| s.hostname == host)
                .collect()
        };
        let mut first: Option<(usize, usize, &str)> = None;
        for host in &hosts {
            let list = on(host);
            if list.iter().all(|s| s.is_qd()) && list.len() <= 2 {
                continue;
            }
            let primaries = list.iter().filter(|s| s.is_primary()).count();
            let mirrors = list.iter().filter(|s| s.is_mirror()).count();
            let (p, m, first_host) = *first.get_or_insert((primaries, mirrors, host));
            if primaries != p {
                return Err(format!(
                    "The number of primary segments is not consistent across all nodes: {host} != {first_host}."
                ));
            }
            if mirrors != m {
                return Err(format!(
                    "The number of mirror segments is not consistent across all nodes. {host} != {first_host}."
                ));
            }
        }
        let mut suffixes = 0usize;
        for host in &hosts {
            for seg in on(host).into_iter().filter(|s| !s.is_coordinator()) {
                let address = seg.address.as_str();
                if address == *host {
                    if suffixes == 0 {
                        continue;
                    }
                    return Err(format!(
                        "The address value for {address} is the same as the host name, but other addresses on the host are not."
                    ));
                }
                let suffix = address.rsplit('-').next().unwrap_or(address);
                if !pyfmt::is_digits(suffix) {
                    return Err(format!(
                        "The address value for {address} does not correspond to a standard address."
                    ));
                }
                suffixes += 1;
            }
        }
        Ok(())
    }
}

/// The distinct items in order of first appearance.
pub(crate) fn first_seen<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}
