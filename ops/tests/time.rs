//! `-d` durations, `-e` end times, UTC seconds and the window rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_ops::{expansion_deadline, parse_duration, parse_end_time, Timestamp};

fn ts(y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> Timestamp {
    Timestamp::new(y, mo, d, h, mi, s).unwrap()
}

#[test]
fn durations() {
    let cases = [
        ("1", 3600),
        ("48", 48 * 3600),
        ("1:30", 5400),
        ("1:2:3", 3723),
        (":120", 7200),
        (":0:72", 72),
        (":1:30", 90),
        ("0:75", 75 * 60),
        ("  2  ", 7200),
        ("1:2:3.999", 3723),
        ("00:00:01", 1),
        ("0", 0),
    ];
    for (text, secs) in cases {
        assert_eq!(parse_duration(text).unwrap(), secs, "{text:?}");
    }
}

#[test]
fn bad_durations() {
    let syntax = "Specify duration as [+|-][hours][:minutes[:seconds[.fraction]]]";
    let cases = [
        ("", syntax),
        ("abc", syntax),
        (":", syntax),
        ("-", syntax),
        ("-1", "duration should be unsigned"),
        ("+1:30", "duration should be unsigned"),
        ("1:60", "minutes should be in 0..59"),
        ("100:200:300", "minutes should be in 0..59"),
        (":1:60", "seconds should be in 0..59"),
        ("1:2: 3", "duration is followed by unrecognized \": 3\""),
        ("1:", "duration is followed by unrecognized \":\""),
        ("2h", "duration is followed by unrecognized \"h\""),
        ("1:2:3:4", "duration is followed by unrecognized \":4\""),
        (
            "24000000000",
            "days=1000000000; must have magnitude <= 999999999",
        ),
        (
            "999999999999999",
            "Python int too large to convert to C int",
        ),
    ];
    for (text, why) in cases {
        assert_eq!(
            parse_duration(text).unwrap_err().to_string(),
            why,
            "{text:?}"
        );
    }
    assert_eq!(
        parse_duration("-1").unwrap_err().option_message("-d", "-1"),
        "\"-d -1\" ... duration should be unsigned"
    );
}

#[test]
fn end_times() {
    let cases = [
        ("2024-02-29 23:59:59", ts(2024, 2, 29, 23, 59, 59)),
        ("  2030-7-4 2:15  ", ts(2030, 7, 4, 2, 15, 0)),
        ("2030-07-04T02:15:16.5", ts(2030, 7, 4, 2, 15, 16)),
        ("2030-07-04", ts(2030, 7, 4, 0, 0, 0)),
        ("20300704 141516", ts(2030, 7, 4, 14, 15, 16)),
        ("20300704t1415", ts(2030, 7, 4, 14, 15, 0)),
        ("2000-02-29 00:00:00", ts(2000, 2, 29, 0, 0, 0)),
    ];
    for (text, want) in cases {
        assert_eq!(parse_end_time(text).unwrap(), want, "{text:?}");
    }
}

#[test]
fn bad_end_times() {
    let syntax = "Specify date and time as \"YYYY-MM-DD[ HH:MM[:SS[.S]]\" or \"YYYYMMDD[ HHMM[SS[.S]]]\".  If both date and time are given, a space or letter \"T\" must separate them.";
    let cases = [
        ("", syntax),
        ("tomorrow", syntax),
        ("24-01-01 10:00:00", syntax),
        ("2024-13-01 00:00:00", "month must be in 1..12"),
        ("2024-00-01", "month must be in 1..12"),
        ("2023-02-29 10:00:00", "day is out of range for month"),
        ("1900-02-29", "day is out of range for month"),
        ("2024-04-31", "day is out of range for month"),
        ("2024-01-00", "day is out of range for month"),
        ("2024-01-01 24:00:00", "hour must be in 0..23"),
        ("2024-01-01 10:60:00", "minute must be in 0..59"),
        ("2024-01-01 10:00:60", "second must be in 0..59"),
        ("0000-01-01", "year 0 is out of range"),
        ("2024-01-001", "day should have 1 or 2 digits"),
        ("2024-01-", "day should have 1 or 2 digits"),
        ("202401011", "date should have 8 digits (YYYYMMDD)"),
        ("2024-01-01 123:00", "hour should have 1 or 2 digits"),
        ("2024-01-01 14:5:16", "minute should have 2 digits"),
        ("2024-01-01 14:15:1", "second should have 2 digits"),
        (
            "20240101 14151",
            "time should have 4 or 6 digits (HHMM or HHMMSS)",
        ),
        (
            "20240101 1.234",
            "time should have 6 digits before decimal point (HHMMSS.sss)",
        ),
        (
            "2024-01-01 10:00:00 x",
            "date and time are followed by unrecognized \"x\"",
        ),
        (
            "2024-01-01 T10:00",
            "date is followed by unrecognized \"T10:00\"",
        ),
        (
            "2024-01-01 abcdefghijklmnop",
            "date is followed by unrecognized \"abcdefghi\"",
        ),
    ];
    for (text, why) in cases {
        assert_eq!(
            parse_end_time(text).unwrap_err().to_string(),
            why,
            "{text:?}"
        );
    }
    assert_eq!(
        parse_end_time("2024-13-01")
            .unwrap_err()
            .option_message("-e", "2024-13-01"),
        "\"-e 2024-13-01\" ... month must be in 1..12"
    );
}

#[test]
fn unix_seconds() {
    assert_eq!(ts(1970, 1, 1, 0, 0, 0).to_unix(), 0);
    assert_eq!(ts(1969, 12, 31, 23, 59, 59).to_unix(), -1);
    assert_eq!(ts(2000, 3, 1, 0, 0, 0).to_unix(), 951_868_800);
    assert_eq!(ts(2024, 1, 1, 0, 0, 0).to_unix(), 1_704_067_200);
    assert_eq!(ts(2024, 2, 29, 12, 34, 56).to_unix(), 1_709_210_096);
    assert_eq!(ts(1, 1, 1, 0, 0, 0).to_unix(), -62_135_596_800);
    assert_eq!(ts(9999, 12, 31, 23, 59, 59).to_unix(), 253_402_300_799);
    // Round trip over leap days, century years and the epoch.
    let mut t = -62_135_596_800i64;
    while t < 253_402_300_799 {
        let stamp = Timestamp::from_unix(t);
        assert_eq!(stamp.to_unix(), t);
        assert_eq!(
            Timestamp::new(
                stamp.year,
                stamp.month,
                stamp.day,
                stamp.hour,
                stamp.minute,
                stamp.second
            ),
            Ok(stamp)
        );
        t += 86_400 * 37 + 3_601;
    }
    assert_eq!(ts(2024, 2, 29, 12, 34, 56).compact(), "20240229_123456");
}

#[test]
fn window_from_end_and_duration() {
    let now = ts(2024, 5, 1, 12, 0, 0);
    let none = expansion_deadline(now, None, None).unwrap();
    assert_eq!((none.end, none.warnings.len()), (None, 0));

    let by_duration = expansion_deadline(now, None, Some(90 * 60)).unwrap();
    assert_eq!(by_duration.end, Some(ts(2024, 5, 1, 13, 30, 0)));

    // A zero duration is no duration (Python's timedelta(0) is false).
    assert_eq!(expansion_deadline(now, None, Some(0)).unwrap().end, None);

    let late_end = ts(2024, 5, 2, 0, 0, 0);
    let both = expansion_deadline(now, Some(late_end), Some(3600)).unwrap();
    assert_eq!(both.end, Some(ts(2024, 5, 1, 13, 0, 0)));
    assert_eq!(
        both.warnings,
        vec![
            "Both end and duration options were given.",
            "The duration argument will be used for the expansion end time."
        ]
    );
    let early_end = ts(2024, 5, 1, 12, 30, 0);
    let both = expansion_deadline(now, Some(early_end), Some(3600)).unwrap();
    assert_eq!(both.end, Some(early_end));
    assert_eq!(
        both.warnings[1],
        "The end argument will be used for the expansion end time."
    );

    let past = ts(2024, 4, 30, 0, 0, 0);
    assert_eq!(
        expansion_deadline(now, Some(past), None)
            .unwrap_err()
            .to_string(),
        "End time occurs in the past"
    );
    let far = expansion_deadline(ts(9999, 12, 31, 0, 0, 0), None, Some(86_400 * 2));
    assert_eq!(far.unwrap_err().to_string(), "date value out of range");
}
