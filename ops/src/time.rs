//! The time window options: `-d/--duration [h][:m[:s]]` and
//! `-e/--end 'YYYY-MM-DD hh:mm:ss'`, read as gppylib's `datetimeutils`
//! (`str_to_duration(signed=False)`, `str_to_datetime`) reads them, with its
//! messages; gpparseopts reports a bad value as `"<opt> <value>" ... <why>`
//! ([`TimeError::option_message`]). Then gpexpand's `validate_options` rule
//! for combining them ([`expansion_deadline`]).
//!
//! A [`Timestamp`] is a plain civil date and time with no zone; gpexpand
//! compares `-e` with the local clock, so the caller passes local time as
//! `now`. [`Timestamp::to_unix`] reads the fields as UTC.
//!
//! Fractions of a second are accepted where gpexpand accepts them and
//! dropped: the window is kept in whole seconds.

use std::fmt;

/// A civil date and time, no zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// A value that does not read. `Display` is datetimeutils' description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeError {
    description: String,
}

impl TimeError {
    fn new(description: impl Into<String>) -> TimeError {
        TimeError {
            description: description.into(),
        }
    }

    /// The whole option error as gpexpand prints it after `gpexpand: error: `,
    /// e.g. `"-d 1:60" ... minutes should be in 0..59`.
    pub fn option_message(&self, option: &str, value: &str) -> String {
        format!("\"{option} {value}\" ... {}", self.description)
    }
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

impl std::error::Error for TimeError {}

const DATETIME_SYNTAX: &str = "Specify date and time as \"YYYY-MM-DD[ HH:MM[:SS[.S]]\" or \"YYYYMMDD[ HHMM[SS[.S]]]\".  If both date and time are given, a space or letter \"T\" must separate them.";
/// datetimeutils swaps its two syntax messages: the unsigned reader (the one
/// gpexpand uses) names the sign. Kept as gpexpand prints it.
const DURATION_SYNTAX: &str = "Specify duration as [+|-][hours][:minutes[:seconds[.fraction]]]";
const MAX_DAYS: u128 = 999_999_999;

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Timestamp {
    /// A checked timestamp; the checks and texts of Python's `datetime()`.
    pub fn new(
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
    ) -> Result<Timestamp, TimeError> {
        if !(1..=9999).contains(&year) {
            return Err(TimeError::new(format!("year {year} is out of range")));
        }
        if !(1..=12).contains(&month) {
            return Err(TimeError::new("month must be in 1..12"));
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(TimeError::new("day is out of range for month"));
        }
        if hour > 23 {
            return Err(TimeError::new("hour must be in 0..23"));
        }
        if minute > 59 {
            return Err(TimeError::new("minute must be in 0..59"));
        }
        if second > 59 {
            return Err(TimeError::new("second must be in 0..59"));
        }
        Ok(Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// Seconds since 1970-01-01 00:00:00, the fields read as UTC.
    pub fn to_unix(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        days * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The timestamp `secs` seconds after 1970-01-01 00:00:00.
    pub fn from_unix(secs: i64) -> Timestamp {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let small = |v: i64| u8::try_from(v).unwrap_or(0);
        Timestamp {
            year: i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX }),
            month: small(month),
            day: small(day),
            hour: small(rem / 3_600),
            minute: small(rem % 3_600 / 60),
            second: small(rem % 60),
        }
    }

    /// `%Y%m%d_%H%M%S`, as in `gpexpand_inputfile_20240229_123456`.
    pub fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}_{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (the "days from civil"
/// method: count from 0000-03-01 in 400-year eras so leap days fall last).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A cursor over the characters of an option value.
struct Scan {
    chars: Vec<char>,
    pos: usize,
}

impl Scan {
    fn new(text: &str) -> Scan {
        Scan {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, want: impl Fn(char) -> bool) -> bool {
        match self.peek() {
            Some(c) if want(c) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// The run of ASCII digits at the cursor (possibly empty).
    fn digits(&mut self) -> String {
        let start = self.pos;
        while self.eat(|c| c.is_ascii_digit()) {}
        self.chars
            .get(start..self.pos)
            .unwrap_or_default()
            .iter()
            .collect()
    }

    fn skip_space(&mut self) -> bool {
        let start = self.pos;
        while self.eat(char::is_whitespace) {}
        self.pos > start
    }

    /// datetimeutils' check that only whitespace follows a value; `what` is
    /// `duration`, `date` or `date and time`.
    fn finish(&self, what: &str) -> Result<(), TimeError> {
        let rest = self.chars.get(self.pos..).unwrap_or_default();
        if rest.iter().all(|c| c.is_whitespace()) {
            return Ok(());
        }
        let shown: String = rest.iter().take(10).collect();
        Err(TimeError::new(format!(
            "{what} followed by unrecognized \"{}\"",
            shown.trim()
        )))
    }
}

/// Parses `-d/--duration`: `[hours][:minutes[:seconds[.fraction]]]`, e.g.
/// `2` (two hours), `1:30`, `:90` (ninety minutes), `0:0:45`. No sign.
/// Minutes past 59 only with no hours, seconds past 59 only with no hours or
/// minutes. Returns whole seconds.
pub fn parse_duration(text: &str) -> Result<u64, TimeError> {
    let mut s = Scan::new(text);
    s.skip_space();
    let signed = s.eat(|c| c == '+' || c == '-');
    let hours = s.digits();
    let (mut minutes, mut seconds) = (None, None);
    let mark = s.pos;
    if s.eat(|c| c == ':') && s.peek().is_some_and(|c| c.is_ascii_digit()) {
        minutes = Some(s.digits());
        let mark = s.pos;
        if s.eat(|c| c == ':') && s.peek().is_some_and(|c| c.is_ascii_digit()) {
            seconds = Some(s.digits());
            if s.eat(|c| c == '.') {
                s.digits();
            }
        } else {
            s.pos = mark;
        }
    } else {
        s.pos = mark;
    }
    if hours.is_empty() && minutes.is_none() {
        return Err(TimeError::new(DURATION_SYNTAX));
    }
    let value = |digits: Option<&str>| -> Option<u128> {
        match digits {
            None | Some("") => Some(0),
            Some(d) if d.len() > 30 => None,
            Some(d) => d.parse().ok(),
        }
    };
    let too_large = || TimeError::new("Python int too large to convert to C int");
    let h = value(Some(&hours)).ok_or_else(too_large)?;
    let mut m = value(minutes.as_deref()).ok_or_else(too_large)?;
    let mut sec = value(seconds.as_deref()).ok_or_else(too_large)?;
    if h > 0 && m > 59 {
        return Err(TimeError::new("minutes should be in 0..59"));
    }
    m += h * 60;
    if m > 0 && sec > 59 {
        return Err(TimeError::new("seconds should be in 0..59"));
    }
    sec += m * 60;
    let days = sec / 86_400;
    if days > MAX_DAYS {
        return Err(if days > u128::from(i32::MAX.unsigned_abs()) {
            too_large()
        } else {
            TimeError::new(format!("days={days}; must have magnitude <= 999999999"))
        });
    }
    if signed {
        return Err(TimeError::new("duration should be unsigned"));
    }
    s.finish("duration is")?;
    u64::try_from(sec).map_err(|_| too_large())
}

/// Parses `-e/--end`: `YYYY-MM-DD[ HH:MM[:SS[.S]]]` or
/// `YYYYMMDD[ HHMM[SS[.S]]]`, a space or `T` between date and time. A date
/// alone is midnight, as gpexpand makes it.
pub fn parse_end_time(text: &str) -> Result<Timestamp, TimeError> {
    let mut s = Scan::new(text);
    s.skip_space();
    let start = s.pos;
    for _ in 0..4 {
        if !s.eat(|c| c.is_ascii_digit()) {
            return Err(TimeError::new(DATETIME_SYNTAX));
        }
    }
    let year: String = s
        .chars
        .get(start..s.pos)
        .unwrap_or_default()
        .iter()
        .collect();
    let year = year.parse::<i32>().unwrap_or(0);

    let mark = s.pos;
    let delimited = delimited_date(&mut s);
    let is_delimited = delimited.is_some();
    let (month, day) = match delimited {
        Some((month, day)) => {
            if day.is_empty() || day.len() > 2 {
                return Err(TimeError::new("day should have 1 or 2 digits"));
            }
            (month, day)
        }
        None => {
            s.pos = mark;
            let run = s.digits();
            let (Some(month), Some(day)) = (run.get(..2), run.get(2..)) else {
                return Err(TimeError::new(DATETIME_SYNTAX));
            };
            if day.len() < 2 {
                return Err(TimeError::new(DATETIME_SYNTAX));
            }
            if day.len() > 2 {
                return Err(TimeError::new("date should have 8 digits (YYYYMMDD)"));
            }
            (month.to_string(), day.to_string())
        }
    };
    let (month, day) = (small(&month), small(&day));

    let mark = s.pos;
    let clock = if is_delimited {
        colon_time(&mut s)?
    } else {
        numeric_time(&mut s)?
    };
    let Some((hour, minute, second)) = clock else {
        s.pos = mark;
        let date = Timestamp::new(year, month, day, 0, 0, 0)?;
        s.finish("date is")?;
        return Ok(date);
    };
    let stamp = Timestamp::new(year, month, day, hour, minute, second)?;
    s.finish("date and time are")?;
    Ok(stamp)
}

/// A number of at most two digits.
fn small(digits: &str) -> u8 {
    digits.parse().unwrap_or(0)
}

/// `-M[M]-D…` after the year: (month, day digits), or `None` with the cursor
/// anywhere.
fn delimited_date(s: &mut Scan) -> Option<(String, String)> {
    if !s.eat(|c| c == '-') {
        return None;
    }
    let start = s.pos;
    if !s.eat(|c| c.is_ascii_digit()) {
        return None;
    }
    s.eat(|c| c.is_ascii_digit());
    let month: String = s
        .chars
        .get(start..s.pos)
        .unwrap_or_default()
        .iter()
        .collect();
    if !s.eat(|c| c == '-') {
        return None;
    }
    Some((month, s.digits()))
}

/// Whitespace or `T` before a time; `false` (cursor unmoved) when neither.
fn time_separator(s: &mut Scan) -> bool {
    s.skip_space() || s.eat(|c| c == 'T' || c == 't')
}

/// ` H[H]:MM[:SS[.frac]]` after a delimited date. `Ok(None)` when no time
/// follows (the caller rewinds).
fn colon_time(s: &mut Scan) -> Result<Option<(u8, u8, u8)>, TimeError> {
    if !time_separator(s) {
        return Ok(None);
    }
    let hour = s.digits();
    if hour.is_empty() || !s.eat(|c| c == ':') {
        return Ok(None);
    }
    let minute = s.digits();
    if minute.is_empty() {
        return Ok(None);
    }
    let second = if s.eat(|c| c == ':') {
        let second = s.digits();
        if s.eat(|c| c == '.') {
            s.digits();
        }
        Some(second)
    } else {
        None
    };
    if hour.len() > 2 {
        return Err(TimeError::new("hour should have 1 or 2 digits"));
    }
    if minute.len() != 2 {
        return Err(TimeError::new("minute should have 2 digits"));
    }
    if second.as_ref().is_some_and(|sec| sec.len() != 2) {
        return Err(TimeError::new("second should have 2 digits"));
    }
    let second = second.as_deref().map_or(0, small);
    Ok(Some((small(&hour), small(&minute), second)))
}

/// ` HHMM[SS[.frac]]` after a numeric date.
fn numeric_time(s: &mut Scan) -> Result<Option<(u8, u8, u8)>, TimeError> {
    if !time_separator(s) {
        return Ok(None);
    }
    let run = s.digits();
    if run.is_empty() {
        return Ok(None);
    }
    let fraction = s.eat(|c| c == '.');
    if fraction {
        s.digits();
    }
    let part = |r: std::ops::Range<usize>| run.get(r).map_or(0, small);
    match run.len() {
        6 => Ok(Some((part(0..2), part(2..4), part(4..6)))),
        _ if fraction => Err(TimeError::new(
            "time should have 6 digits before decimal point (HHMMSS.sss)",
        )),
        4 => Ok(Some((part(0..2), part(2..4), 0))),
        _ => Err(TimeError::new(
            "time should have 4 or 6 digits (HHMM or HHMMSS)",
        )),
    }
}

/// The end of the redistribution window, and gpexpand's warnings on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadline {
    pub end: Option<Timestamp>,
    pub warnings: Vec<&'static str>,
}

/// gpexpand's `validate_options` for `-e` and `-d`: an end in the past is
/// refused; with both, the earlier of the two wins; a zero duration counts as
/// none (Python's `timedelta(0)` is false).
pub fn expansion_deadline(
    now: Timestamp,
    end: Option<Timestamp>,
    duration_secs: Option<u64>,
) -> Result<Deadline, TimeError> {
    if end.is_some_and(|e| e < now) {
        return Err(TimeError::new("End time occurs in the past"));
    }
    let duration = duration_secs.filter(|d| *d > 0);
    let after = |secs: u64| -> Result<Timestamp, TimeError> {
        let out_of_range = || TimeError::new("date value out of range");
        let secs = i64::try_from(secs).map_err(|_| out_of_range())?;
        let t = Timestamp::from_unix(now.to_unix().checked_add(secs).ok_or_else(out_of_range)?);
        if t.year > 9999 {
            return Err(out_of_range());
        }
        Ok(t)
    };
    let mut warnings = Vec::new();
    let end = match (end, duration) {
        (Some(end), Some(d)) => {
            warnings.push("Both end and duration options were given.");
            let by_duration = after(d)?;
            if end > by_duration {
                warnings.push("The duration argument will be used for the expansion end time.");
                Some(by_duration)
            } else {
                warnings.push("The end argument will be used for the expansion end time.");
                Some(end)
            }
        }
        (None, Some(d)) => Some(after(d)?),
        (end, None) => end,
    };
    Ok(Deadline { end, warnings })
}
