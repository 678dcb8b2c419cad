//! The input file: every gpexpand message, asserted whole, and valid files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{mirrored, plain, seg};
use segexpand_ops::{format_input_file, parse_input_file, Cluster, InputError, InputFile, Role};

const FILE: &str = "gpexpand_inputfile_20240229_123456";

fn parse(cluster: &Cluster, text: &str) -> Result<Vec<segexpand_ops::Segment>, InputError> {
    let file = InputFile {
        name: FILE,
        text,
        cwd: "/home/gpadmin",
    };
    parse_input_file(&file, cluster)
}

fn error(cluster: &Cluster, text: &str) -> String {
    parse(cluster, text)
        .expect_err("the file should be refused")
        .to_string()
}

#[test]
fn primaries_only() {
    let text = "# new host\n\nsdw3|sdw3|6000|/data/primary/gpseg4|6|4|p\r\n  sdw3|sdw3-1|6001|/data/primary/gpseg5|7|5|p  \n";
    let segs = parse(&plain(), text).unwrap();
    assert_eq!(
        segs,
        vec![
            seg("sdw3", 6000, "/data/primary/gpseg4", 6, 4, Role::Primary),
            {
                let mut s = seg("sdw3", 6001, "/data/primary/gpseg5", 7, 5, Role::Primary);
                s.address = "sdw3-1".to_string();
                s
            },
        ]
    );
}

#[test]
fn primaries_and_mirrors() {
    // Lines in any order; dbids need only be contiguous past 9 as a set.
    let text = "\
sdw4|sdw4|7000|/data/mirror/gpseg4|12|4|m
sdw3|sdw3|6000|/data/primary/gpseg4|10|4|p
sdw3|sdw3|6001|/data/primary/gpseg5|11|5|p
sdw4|sdw4|7001|/data/mirror/gpseg5|13|5|m
";
    let segs = parse(&mirrored(), text).unwrap();
    let got: Vec<(i32, Role, i32)> = segs.iter().map(|s| (s.content, s.role, s.dbid)).collect();
    assert_eq!(
        got,
        vec![
            (4, Role::Primary, 10),
            (4, Role::Mirror, 12),
            (5, Role::Primary, 11),
            (5, Role::Mirror, 13),
        ]
    );
    // What we write reads back the same.
    let again = parse(&mirrored(), &format_input_file(&segs)).unwrap();
    assert_eq!(again, segs);
}

#[test]
fn fields_are_read_as_gpexpand_reads_them() {
    // Python int(): spaces, a sign, underscores; names and directories
    // trimmed; a directory made absolute and normalised.
    let text = " sdw3 | sdw3 | +6_000 |data//p/./gpseg4/| 6 | 4 |p";
    let segs = parse(&plain(), text).unwrap();
    assert_eq!(
        segs,
        vec![seg(
            "sdw3",
            6000,
            "/home/gpadmin/data/p/gpseg4",
            6,
            4,
            Role::Primary
        )]
    );
}

#[test]
fn wrong_number_of_parts() {
    assert_eq!(
        error(&plain(), "sdw3|sdw3|6000|/data/p|6|4"),
        format!("Invalid input file on line 1 of file {FILE}: expected 7 parts, obtained 6")
    );
    // Line numbers count comments and blank lines; gpexpand's old `:` format is 1 part.
    assert_eq!(
        error(&plain(), "# c\n\nsdw3:6000:/data/p:6:4:p"),
        format!("Invalid input file on line 3 of file {FILE}: expected 7 parts, obtained 1")
    );
}

#[test]
fn invalid_fields() {
    let cases = [
        ("sdw3|sdw3|x|/d|6|4|p", "Invalid port on line 2"),
        ("sdw3|sdw3|-1|/d|6|4|p", "Invalid port on line 2"),
        ("sdw3|sdw3|70000|/d|6|4|p", "Invalid port on line 2"),
        ("sdw3|sdw3|6000||6|4|p", "Invalid directory on line 2"),
        ("sdw3|sdw3|6000|/d|6|-2|p", "Invalid content ID on line 2"),
        ("sdw3|sdw3|6000|/d|6|four|p", "Invalid content ID on line 2"),
        ("sdw3|sdw3|6000|/d|0|4|p", "Invalid dbid on line 2"),
        ("sdw3|sdw3|6000|/d|6|4|P", "Invalid role on line 2"),
        ("sdw3|sdw3|6000|/d|6|4|primary", "Invalid role on line 2"),
        ("sdw3||6000|/d|6|4|p", "Invalid address on line 2"),
        ("|sdw3|6000|/d|6|4|p", "Invalid hostname on line 2"),
        // check_values' order: the address before the port.
        ("sdw3||x|/d|6|4|p", "Invalid address on line 2"),
    ];
    for (line, why) in cases {
        let text = format!("# header\n{line}\n");
        assert_eq!(
            error(&plain(), &text),
            format!("Invalid input file on line 2 of file {FILE}: {why}"),
            "{line}"
        );
    }
}

#[test]
fn the_whole_file_is_read_before_any_segment_is_added() {
    // Line 1 and 2 clash, but line 3's shape is reported first.
    let text = "sdw3|sdw3|6000|/a|6|4|p\nsdw3|sdw3|6001|/b|7|4|p\nsdw3|sdw3|6002|/c|8|5\n";
    assert_eq!(
        error(&plain(), text),
        format!("Invalid input file on line 3 of file {FILE}: expected 7 parts, obtained 6")
    );
}

#[test]
fn no_segments() {
    assert_eq!(
        error(&plain(), "# nothing here\n\n   \n"),
        "Invalid input file: No expansion segments defined"
    );
}

#[test]
fn content_ids_with_a_gap() {
    let text = "sdw3|sdw3|6000|/a|6|4|p\nsdw3|sdw3|6001|/b|7|6|p\n";
    assert_eq!(
        error(&plain(), text),
        "Invalid input file: Expansion segments do not have contiguous content ids."
    );
    // Starting past the next content id is a gap too.
    assert_eq!(
        error(&plain(), "sdw3|sdw3|6000|/a|6|5|p\n"),
        "Invalid input file: Expansion segments do not have contiguous content ids."
    );
}

#[test]
fn content_id_of_an_existing_segment() {
    // Reported bare: gpexpand raises it outside its `Invalid input file` wrapper.
    assert_eq!(
        error(&plain(), "sdw3|sdw3|6000|/a|6|3|p\n"),
        "Invalid content ID for expansion segment"
    );
    assert_eq!(
        error(&plain(), "sdw3|sdw3|6000|/a|6|-1|p\n"),
        "Invalid content ID for expansion segment"
    );
}

#[test]
fn incorrect_dbids() {
    // Must start at the highest existing dbid + 1 (6 here)...
    assert_eq!(
        error(
            &plain(),
            "sdw3|sdw3|6000|/a|7|4|p\nsdw3|sdw3|6001|/b|8|5|p\n"
        ),
        "Invalid input file: Expansion segments have incorrect dbids"
    );
    // ...and have no gap or repeat.
    assert_eq!(
        error(
            &plain(),
            "sdw3|sdw3|6000|/a|6|4|p\nsdw3|sdw3|6001|/b|8|5|p\n"
        ),
        "Invalid input file: Expansion segments have incorrect dbids"
    );
    assert_eq!(
        error(
            &plain(),
            "sdw3|sdw3|6000|/a|6|4|p\nsdw3|sdw3|6001|/b|6|5|p\n"
        ),
        "Invalid input file: Expansion segments have incorrect dbids"
    );
}

#[test]
fn invalid_content_ids() {
    // A mirror with no primary, in a mirrored cluster.
    let text = "\
sdw3|sdw3|6000|/data/p4|10|4|p
sdw4|sdw4|7000|/data/m4|11|4|m
sdw4|sdw4|7001|/data/m5|12|5|m
";
    assert_eq!(
        error(&mirrored(), text),
        "Invalid input file: Invalid content ids"
    );
}

#[test]
fn data_directory_used_twice() {
    let text = "sdw3|sdw3|6000|/data/p|6|4|p\nsdw3|sdw3|6001|/data/p/|7|5|p\n";
    assert_eq!(
        error(&plain(), text),
        "Invalid input file: Data directory /data/p used multiple times on host sdw3"
    );
    // Against an existing segment on the same host.
    assert_eq!(
        error(&plain(), "sdw1|sdw1|6002|/data/primary/gpseg0|6|4|p\n"),
        "Invalid input file: Data directory /data/primary/gpseg0 used multiple times on host sdw1"
    );
    // The same directory on another host is fine.
    parse(&plain(), "sdw3|sdw3|6000|/data/primary/gpseg0|6|4|p\n").unwrap();
}

#[test]
fn port_used_twice() {
    assert_eq!(
        error(&plain(), "sdw1|sdw1|6000|/data/primary/gpseg4|6|4|p\n"),
        "Invalid input file: Port 6000 is used multiple times on host sdw1"
    );
    let text = "sdw3|sdw3|6000|/a|6|4|p\nsdw3|sdw3|6000|/b|7|5|p\n";
    assert_eq!(
        error(&plain(), text),
        "Invalid input file: Port 6000 is used multiple times on host sdw3"
    );
}

#[test]
fn mirror_without_mirroring() {
    let text = "sdw3|sdw3|6000|/a|6|4|p\nsdw4|sdw4|7000|/b|7|4|m\n";
    assert_eq!(
        error(&plain(), text),
        "Invalid input file: Expansion segment has a mirror segment defined but mirroring is not enabled."
    );
}

#[test]
fn no_mirror_with_mirroring() {
    assert_eq!(
        error(&mirrored(), "sdw3|sdw3|6000|/a|10|4|p\n"),
        "Invalid input file: Expansion segment has no mirror but mirroring is enabled."
    );
}

#[test]
fn duplicate_primary() {
    // Reported bare, as gpexpand's addExpansionSeg raises it.
    let text = "sdw3|sdw3|6000|/a|6|4|p\nsdw4|sdw4|6000|/b|7|4|p\n";
    assert_eq!(
        error(&plain(), text),
        "Duplicate content id for primary segment"
    );
}

#[test]
fn duplicate_mirror_is_refused_not_dropped() {
    let text = "\
sdw3|sdw3|6000|/a|10|4|p
sdw4|sdw4|7000|/b|11|4|m
sdw5|sdw5|7000|/c|12|4|m
";
    assert_eq!(
        error(&mirrored(), text),
        "Duplicate content id for mirror segment"
    );
}

#[test]
fn ipv6_addresses_are_bracketed_when_written() {
    let mut s = seg("sdw3", 6000, "/a/gpseg4", 6, 4, Role::Primary);
    s.address = "fe80::1".to_string();
    let text = format_input_file(&[s]);
    assert_eq!(text, "sdw3|[fe80::1]|6000|/a/gpseg4|6|4|p\n");
}
