//! Grouped and spread placement on several hosts, and their refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;

use segexpand_ops::{
    plan_segments, MirrorError, MirrorStrategy, Placement, PlanRequest, Role, Segment,
};

fn hosts(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("sdw{i}")).collect()
}

fn dirs(base: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{base}{i}")).collect()
}

fn request<'a>(
    placement: Placement,
    hosts: &'a [String],
    primary_dirs: &'a [String],
    mirror_dirs: &'a [String],
    mirroring: Option<MirrorStrategy>,
) -> PlanRequest<'a> {
    PlanRequest {
        placement,
        hosts,
        primary_dirs,
        mirror_dirs,
        mirroring,
        primary_port_base: 6000,
        mirror_port_base: 7000,
        dir_prefix: "gpseg",
        interfaces: &[],
        first_dbid: 10,
        first_content: 4,
    }
}

/// content -> (primary host, mirror host)
fn pairs(segs: &[Segment]) -> HashMap<i32, (String, String)> {
    let mut out: HashMap<i32, (String, String)> = HashMap::new();
    for s in segs {
        let e = out.entry(s.content).or_default();
        match s.role {
            Role::Primary => e.0 = s.hostname.clone(),
            Role::Mirror => e.1 = s.hostname.clone(),
        }
    }
    out
}

/// Shared checks: every primary has one mirror on another host; dbids run
/// without a gap from 10; no host repeats a port or a directory.
fn check_plan(segs: &[Segment], primaries: usize) {
    assert_eq!(segs.len(), primaries * 2);
    let dbids: Vec<i32> = segs.iter().map(|s| s.dbid).collect();
    assert_eq!(dbids, (10..10 + segs.len() as i32).collect::<Vec<_>>());
    for (content, (p, m)) in pairs(segs) {
        assert!(!p.is_empty() && !m.is_empty(), "content {content}");
        assert_ne!(p, m, "content {content}: mirror on its primary's host");
    }
    let mut ports = std::collections::HashSet::new();
    let mut dirs = std::collections::HashSet::new();
    for s in segs {
        assert!(
            ports.insert((s.hostname.clone(), s.port)),
            "port clash {s:?}"
        );
        assert!(
            dirs.insert((s.hostname.clone(), s.datadir.clone())),
            "dir clash {s:?}"
        );
        assert!(s.datadir.ends_with(&format!("/gpseg{}", s.content)));
    }
}

#[test]
fn grouped_four_hosts_two_primaries_each() {
    let (h, p, m) = (hosts(4), dirs("/data/p", 2), dirs("/data/m", 2));
    let segs = plan_segments(&request(
        Placement::NewHosts,
        &h,
        &p,
        &m,
        Some(MirrorStrategy::Grouped),
    ))
    .unwrap();
    check_plan(&segs, 8);
    // Host i's primaries (contents 4+2i, 5+2i) are mirrored on host i+1.
    let pairs = pairs(&segs);
    for (i, host) in h.iter().enumerate() {
        let next = &h[(i + 1) % 4];
        for content in [4 + 2 * i as i32, 5 + 2 * i as i32] {
            assert_eq!(pairs[&content], (host.clone(), next.clone()));
        }
    }
    // Primaries first by host, then mirrors by host; ports from each base.
    let first = &segs[0];
    assert_eq!(
        (
            first.hostname.as_str(),
            first.port,
            first.datadir.as_str(),
            first.dbid,
            first.content
        ),
        ("sdw1", 6000, "/data/p1/gpseg4", 10, 4)
    );
    let mirror_on_sdw1: Vec<(u16, &str, i32)> = segs
        .iter()
        .filter(|s| s.role == Role::Mirror && s.hostname == "sdw1")
        .map(|s| (s.port, s.datadir.as_str(), s.content))
        .collect();
    assert_eq!(
        mirror_on_sdw1,
        vec![
            (7000, "/data/m1/gpseg10", 10),
            (7001, "/data/m2/gpseg11", 11)
        ]
    );
    assert_eq!(segs[8].dbid, 18);
    assert_eq!(segs[8].hostname, "sdw1");
}

#[test]
fn spread_four_hosts_two_primaries_each() {
    let (h, p, m) = (hosts(4), dirs("/data/p", 2), dirs("/data/m", 2));
    let segs = plan_segments(&request(
        Placement::NewHosts,
        &h,
        &p,
        &m,
        Some(MirrorStrategy::Spread),
    ))
    .unwrap();
    check_plan(&segs, 8);
    // New hosts: host i's j-th mirror on host i+1+j.
    let pairs = pairs(&segs);
    for i in 0..4 {
        for j in 0..2 {
            let content = 4 + (2 * i + j) as i32;
            assert_eq!(pairs[&content], (h[i].clone(), h[(i + 1 + j) % 4].clone()));
        }
    }
    // Each host gets two mirrors, from two different hosts, ports 7000/7001
    // in the order they arrive (sdw1 takes sdw3's second mirror first).
    let on_sdw1: Vec<(u16, i32)> = segs
        .iter()
        .filter(|s| s.role == Role::Mirror && s.hostname == "sdw1")
        .map(|s| (s.port, s.content))
        .collect();
    assert_eq!(on_sdw1, vec![(7000, 9), (7001, 10)]);
}

#[test]
fn spread_on_all_hosts_starts_two_hosts_on() {
    let (h, p, m) = (hosts(3), dirs("/data/p", 2), dirs("/data/m", 2));
    let segs = plan_segments(&request(
        Placement::AllHosts,
        &h,
        &p,
        &m,
        Some(MirrorStrategy::Spread),
    ))
    .unwrap();
    check_plan(&segs, 6);
    // Host i's mirrors start at host i+2; landing on host i moves one on.
    let pairs = pairs(&segs);
    let expect = [(0, 2), (0, 1), (1, 0), (1, 2), (2, 1), (2, 0)];
    for (slot, (primary, mirror)) in expect.into_iter().enumerate() {
        assert_eq!(
            pairs[&(4 + slot as i32)],
            (h[primary].clone(), h[mirror].clone()),
            "slot {slot}"
        );
    }
}

#[test]
fn interfaces_name_the_addresses() {
    let (h, p, m) = (hosts(2), dirs("/data/p", 2), dirs("/data/m", 2));
    let interfaces = vec!["1".to_string(), "2".to_string()];
    let mut req = request(
        Placement::NewHosts,
        &h,
        &p,
        &m,
        Some(MirrorStrategy::Grouped),
    );
    req.interfaces = &interfaces;
    let segs = plan_segments(&req).unwrap();
    let addr: Vec<(&str, Role, &str)> = segs
        .iter()
        .filter(|s| s.hostname == "sdw1")
        .map(|s| (s.address.as_str(), s.role, s.datadir.as_str()))
        .collect();
    // Primaries take interfaces 1, 2; a mirror takes the next one (2, 1).
    assert_eq!(
        addr,
        vec![
            ("sdw1-1", Role::Primary, "/data/p1/gpseg4"),
            ("sdw1-2", Role::Primary, "/data/p2/gpseg5"),
            ("sdw1-2", Role::Mirror, "/data/m1/gpseg6"),
            ("sdw1-1", Role::Mirror, "/data/m2/gpseg7"),
        ]
    );
}

#[test]
fn primaries_only_without_mirroring() {
    let (h, p) = (hosts(2), dirs("/data/p", 3));
    let segs = plan_segments(&request(Placement::AllHosts, &h, &p, &[], None)).unwrap();
    let got: Vec<(&str, u16, i32, i32)> = segs
        .iter()
        .map(|s| (s.hostname.as_str(), s.port, s.dbid, s.content))
        .collect();
    assert_eq!(
        got,
        vec![
            ("sdw1", 6000, 10, 4),
            ("sdw1", 6001, 11, 5),
            ("sdw1", 6002, 12, 6),
            ("sdw2", 6000, 13, 7),
            ("sdw2", 6001, 14, 8),
            ("sdw2", 6002, 15, 9),
        ]
    );
}

#[test]
fn hosts_are_numbered_in_name_order() {
    let h = vec!["sdw9".to_string(), "sdw10".to_string()];
    let p = dirs("/data/p", 1);
    let segs = plan_segments(&request(Placement::NewHosts, &h, &p, &[], None)).unwrap();
    // "sdw10" sorts before "sdw9" as text, as in gpexpand.
    assert_eq!(segs[0].hostname, "sdw10");
    assert_eq!(segs[0].content, 4);
}

#[test]
fn grouped_needs_two_hosts() {
    let (h, p, m) = (hosts(1), dirs("/data/p", 2), dirs("/data/m", 2));
    let err = plan_segments(&request(
        Placement::NewHosts,
        &h,
        &p,
        &m,
        Some(MirrorStrategy::Grouped),
    ))
    .unwrap_err();
    assert_eq!(err, MirrorError::NotEnoughHostsForGrouped);
    assert_eq!(
        err.to_string(),
        "Not enough hosts for grouped mirroring.  You must have at least 2"
    );
}

#[test]
fn spread_needs_more_hosts_than_primaries_per_host() {
    let (h, p, m) = (hosts(2), dirs("/data/p", 2), dirs("/data/m", 2));
    for placement in [Placement::NewHosts, Placement::AllHosts] {
        let err = plan_segments(&request(
            placement,
            &h,
            &p,
            &m,
            Some(MirrorStrategy::Spread),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Not enough hosts for spread mirroring.  You must have more hosts than primary segments per host"
        );
    }
    // Three hosts for two primaries each is enough.
    let h = hosts(3);
    plan_segments(&request(
        Placement::NewHosts,
        &h,
        &p,
        &m,
        Some(MirrorStrategy::Spread),
    ))
    .unwrap();
}

#[test]
fn strategy_names() {
    assert_eq!(
        MirrorStrategy::parse(" Spread ").unwrap(),
        MirrorStrategy::Spread
    );
    assert_eq!(
        MirrorStrategy::parse("GROUPED").unwrap(),
        MirrorStrategy::Grouped
    );
    assert_eq!(
        MirrorStrategy::parse("ring").unwrap_err().to_string(),
        "Invalid mirror type specified: ring"
    );
}

#[test]
fn mismatched_directories_and_ports_past_65535() {
    let (h, p, m) = (hosts(2), dirs("/data/p", 2), dirs("/data/m", 1));
    let err = plan_segments(&request(
        Placement::NewHosts,
        &h,
        &p,
        &m,
        Some(MirrorStrategy::Grouped),
    ))
    .unwrap_err();
    assert_eq!(err, MirrorError::MirrorDirCount);
    let m = dirs("/data/m", 2);
    let mut req = request(Placement::NewHosts, &h, &p, &m, None);
    req.primary_port_base = 65535;
    assert_eq!(
        plan_segments(&req).unwrap_err().to_string(),
        "Ports counted up from 65535 go past 65535"
    );
}
