//! The interview, driven by scripted answers; every file it writes must read
//! back through the input file parser.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::Cursor;

use common::{mirrored, plain, seg};
use segexpand_ops::{
    interview, interview_with_hosts, parse_hosts_file, parse_input_file, Cluster,
    GeneratedInputFile, InputFile, InterviewError, Role, Timestamp,
};

fn now() -> Timestamp {
    Timestamp::new(2024, 2, 29, 12, 34, 56).unwrap()
}

/// Runs the interview on `answers`; returns the result and the transcript.
fn run(cluster: &Cluster, answers: &str) -> (Result<GeneratedInputFile, InterviewError>, String) {
    let mut input = Cursor::new(answers.as_bytes().to_vec());
    let mut output = Vec::new();
    let result = interview(&mut input, &mut output, cluster, now());
    (result, String::from_utf8(output).unwrap())
}

fn file(cluster: &Cluster, answers: &str) -> (GeneratedInputFile, String) {
    let (result, transcript) = run(cluster, answers);
    let generated = result.unwrap_or_else(|e| panic!("{e}\n--- transcript ---\n{transcript}"));
    // Whatever the interview writes, `-i` accepts.
    let input = InputFile {
        name: &generated.name,
        text: &generated.contents,
        cwd: "/",
    };
    parse_input_file(&input, cluster).unwrap();
    (generated, transcript)
}

fn error(cluster: &Cluster, answers: &str) -> (String, String) {
    let (result, transcript) = run(cluster, answers);
    (
        result.expect_err("the interview should stop").to_string(),
        transcript,
    )
}

#[test]
fn existing_hosts_only() {
    let (generated, transcript) = file(&plain(), "y\n\n1\n/data/new1\n");
    assert_eq!(generated.name, "gpexpand_inputfile_20240229_123456");
    assert_eq!(
        generated.contents,
        "sdw1|sdw1|6002|/data/new1/gpseg4|6|4|p\nsdw2|sdw2|6002|/data/new1/gpseg5|7|5|p\n"
    );
    let expected = "
System Expansion is used to add segments to an existing GPDB array.
gpexpand did not detect a System Expansion that is in progress.

Before initiating a System Expansion, you need to provision and burn-in
the new hardware.  Please be sure to run gpcheckperf to make sure the
new hardware is working properly.

Please refer to the Admin Guide for more information.

Would you like to initiate a new System Expansion Yy|Nn (default=N):
> 
Enter a comma separated list of new hosts you want
to add to your array.  Do not include interface hostnames.
**Enter a blank line to only add segments to existing hosts**[]:
> 
** No hostnames were given that do not already exist in the **
** array. Additional segments will be added existing hosts. **

    By default, new hosts are configured with the same number of primary
    segments as existing hosts.  Optionally, you can increase the number
    of segments per host.

    For example, if existing hosts have two primary segments, entering a value
    of 2 will initialize two additional segments on existing hosts, and four
    segments on new hosts.  In addition, mirror segments will be added for
    these new primary segments if mirroring is enabled.
    

How many new primary segments per host do you want to add? (default=0):
> Enter new primary data directory 1:
> 
Generating configuration file...

";
    assert_eq!(transcript, expected);
    assert!(generated
        .written_message()
        .contains("with: segexpand gpexpand -i gpexpand_inputfile_20240229_123456"));
}

#[test]
fn new_hosts_grouped_mirrors() {
    let (generated, transcript) = file(&mirrored(), "yes\nsdw3, sdw4\n\n0\n");
    assert_eq!(
        generated.contents,
        "\
sdw3|sdw3|6000|/data/primary/gpseg4|10|4|p
sdw4|sdw4|7000|/data/mirror/gpseg4|16|4|m
sdw3|sdw3|6001|/data/primary/gpseg5|11|5|p
sdw4|sdw4|7001|/data/mirror/gpseg5|17|5|m
sdw4|sdw4|6000|/data/primary/gpseg6|12|6|p
sdw3|sdw3|7000|/data/mirror/gpseg6|14|6|m
sdw4|sdw4|6001|/data/primary/gpseg7|13|7|p
sdw3|sdw3|7001|/data/mirror/gpseg7|15|7|m
"
    );
    assert!(transcript.contains(
        "What type of mirroring strategy would you like?\n spread|grouped (default=grouped):\n> "
    ));
    assert!(!transcript.contains("No hostnames were given"));
}

#[test]
fn new_hosts_spread_and_new_directories_everywhere() {
    let answers = "y\nsdw3,sdw4,sdw5,sdw3\nbogus\n Spread\n1\n/data/p9\n/data/m9\n";
    let (generated, transcript) = file(&mirrored(), answers);
    assert!(transcript.contains("Invalid input: 'bogus'\n\n"));
    let lines: Vec<&str> = generated.contents.lines().collect();
    // 3 new hosts x 2 primaries, then 1 more on each of 5 hosts; each mirrored.
    assert_eq!(lines.len(), (3 * 2 + 5) * 2);
    // The new directories take ports past the cluster's highest.
    assert!(generated.contents.contains("sdw1|sdw1|6002|/data/p9/gpseg"));
    assert!(generated.contents.contains("|7002|/data/m9/gpseg"));
}

#[test]
fn interfaces_carry_over_to_new_hosts() {
    let mut segs = plain().segments().to_vec();
    for s in segs.iter_mut().filter(|s| s.content >= 0) {
        s.address = format!("{}-{}", s.hostname, s.content % 2 + 1);
    }
    let cluster = Cluster::new(segs).unwrap();
    let (generated, _) = file(&cluster, "y\nsdw3\n0\n");
    assert_eq!(
        generated.contents,
        "sdw3|sdw3-1|6000|/data/primary/gpseg4|6|4|p\nsdw3|sdw3-2|6001|/data/primary/gpseg5|7|5|p\n"
    );
}

#[test]
fn segment_count_that_is_not_a_number_stops() {
    let (why, _) = error(&plain(), "y\nsdw3\nabc\n");
    assert_eq!(why, "invalid literal for int() with base 10: 'abc'");
    let (why, _) = error(&plain(), "y\nsdw3\n 2x \n");
    assert_eq!(why, "invalid literal for int() with base 10: ' 2x '");
}

#[test]
fn segment_count_out_of_range_is_asked_again() {
    let (generated, transcript) = file(&plain(), "y\nsdw3\n200\n-1\n 0 \n");
    assert!(transcript.contains("Invalid input: '200'\n\n"));
    assert!(transcript.contains("Invalid input: '-1'\n\n"));
    assert_eq!(generated.contents.lines().count(), 2);
}

#[test]
fn nothing_to_add() {
    for answers in ["y\n\n0\n", "y\n\n\n", "y\nsdw1, mdw\n0\n"] {
        let (why, _) = error(&plain(), answers);
        assert_eq!(why, "No new hosts or segments were entered.", "{answers:?}");
    }
}

#[test]
fn answering_no_aborts() {
    for answers in ["n\n", "\n", "No\n", "maybe\nN \n"] {
        let (why, transcript) = error(&plain(), answers);
        assert_eq!(why, "User Aborted. Exiting...", "{answers:?}");
        if answers.starts_with("maybe") {
            assert!(transcript.contains("Invalid input: 'maybe'\n\n"));
        }
    }
}

#[test]
fn mirroring_needs_two_new_hosts() {
    for answers in ["y\nsdw3\n", "y\n\n"] {
        let (why, _) = error(&mirrored(), answers);
        assert_eq!(
            why,
            "You must be adding two or more hosts when expanding a system with mirroring enabled."
        );
    }
}

#[test]
fn spread_with_too_few_new_hosts() {
    let (why, _) = error(&mirrored(), "y\nsdw3,sdw4\nspread\n");
    assert_eq!(
        why,
        "Not enough hosts for spread mirroring.  You must have more hosts than primary segments per host"
    );
}

#[test]
fn contiguous_primary_and_mirror_ports() {
    let segs = vec![
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
        seg("sdw2", 6002, "/data/mirror/gpseg0", 6, 0, Role::Mirror),
        seg("sdw2", 6003, "/data/mirror/gpseg1", 7, 1, Role::Mirror),
        seg("sdw1", 6002, "/data/mirror/gpseg2", 8, 2, Role::Mirror),
        seg("sdw1", 6003, "/data/mirror/gpseg3", 9, 3, Role::Mirror),
    ];
    let cluster = Cluster::new(segs).unwrap();
    let (why, transcript) = error(&cluster, "y\nsdw1,sdw2\n\n1\n/data/p9\n/data/m9\n");
    assert_eq!(
        why,
        "Current primary and mirror ports are contiguous.  The input file for gpexpand will need to be created manually."
    );
    assert!(transcript.contains("Enter new mirror data directory 1:\n> "));
}

#[test]
fn bad_directories_are_asked_again() {
    let answers = "y\n\n1\n\n/data/has space\n /data/p9\n/data/p9\t\n";
    let (generated, transcript) = file(&plain(), answers);
    assert!(transcript.contains("Invalid input: ''\n\n"));
    assert!(transcript.contains("Invalid input: '/data/has space'\n\n"));
    // A leading space is a space, refused; a trailing tab is trimmed.
    assert!(transcript.contains("Invalid input: ' /data/p9'\n\n"));
    assert!(generated.contents.contains("|/data/p9/gpseg4|"));
}

#[test]
fn non_standard_cluster_asks_again() {
    let segs = vec![
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
    ];
    let cluster = Cluster::new(segs).unwrap();
    let (why, transcript) = error(&cluster, "y\nn\n");
    assert_eq!(why, "User Aborted. Exiting...");
    assert!(transcript.contains(
        "       The current system appears to be non-standard.\n       The number of primary segments is not consistent across all nodes: sdw2 != sdw1.\n"
    ));
    assert!(transcript.contains(
        "Are you sure you want to continue with this gpexpand session? Yy|Nn (default=N):\n> "
    ));
    let (generated, _) = file(&cluster, "y\ny\nsdw3\n0\n");
    assert_eq!(generated.contents.lines().count(), 2);
}

#[test]
fn input_ends_early() {
    let (why, _) = error(&plain(), "y\n");
    assert_eq!(why, "EOF when reading a line");
}

#[test]
fn hosts_from_a_file() {
    let hosts = parse_hosts_file("# new hardware\nsdw3\n\n  sdw4  \n");
    assert_eq!(hosts, vec!["sdw3".to_string(), "sdw4".to_string()]);
    let mut input = Cursor::new(b"y\n\n0\n".to_vec());
    let mut output = Vec::new();
    let generated =
        interview_with_hosts(&mut input, &mut output, &mirrored(), now(), &hosts).unwrap();
    let transcript = String::from_utf8(output).unwrap();
    assert!(!transcript.contains("comma separated list"));
    assert_eq!(generated.contents.lines().count(), 8);
}
