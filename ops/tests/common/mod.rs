//! Clusters the tests share: a coordinator on `mdw` and two segment hosts
//! with two primaries each, without mirrors or with grouped mirrors.
#![allow(dead_code)]

use segexpand_ops::{Cluster, Role, Segment};

pub fn seg(host: &str, port: u16, datadir: &str, dbid: i32, content: i32, role: Role) -> Segment {
    Segment {
        hostname: host.to_string(),
        address: host.to_string(),
        port,
        datadir: datadir.to_string(),
        dbid,
        content,
        role,
    }
}

fn base() -> Vec<Segment> {
    vec![
        seg(
            "mdw",
            5432,
            "/data/coordinator/gpseg-1",
            1,
            -1,
            Role::Primary,
        ),
        seg("sdw1", 6000, "/data/primary/gpseg0", 2, 0, Role::Primary),
        seg("sdw1", 6001, "/data/primary/gpseg1", 3, 1, Role::Primary),
        seg("sdw2", 6000, "/data/primary/gpseg2", 4, 2, Role::Primary),
        seg("sdw2", 6001, "/data/primary/gpseg3", 5, 3, Role::Primary),
    ]
}

/// Contents 0..=3, dbids 1..=5, no mirrors.
pub fn plain() -> Cluster {
    Cluster::new(base()).unwrap()
}

/// Contents 0..=3, dbids 1..=9; sdw1's mirrors on sdw2 and back, ports 7000+.
pub fn mirrored() -> Cluster {
    let mut s = base();
    s.extend([
        seg("sdw2", 7000, "/data/mirror/gpseg0", 6, 0, Role::Mirror),
        seg("sdw2", 7001, "/data/mirror/gpseg1", 7, 1, Role::Mirror),
        seg("sdw1", 7000, "/data/mirror/gpseg2", 8, 2, Role::Mirror),
        seg("sdw1", 7001, "/data/mirror/gpseg3", 9, 3, Role::Mirror),
    ]);
    Cluster::new(s).unwrap()
}
