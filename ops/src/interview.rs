//! gpexpand's interactive mode (no `-i`): `interview_setup` with gppylib's
//! `userinput` prompts, `addExpansionHosts`, `addExpansionDatadirs` and
//! `generate_inputfile`. It asks the questions, plans the new segments and
//! returns the input file's name and text; writing the file is the caller's.
//!
//! The questions, in gpexpand's words and order: start a new expansion
//! (y/n); continue with a non-standard cluster (only when it is one); the new
//! hosts (comma-separated, blank for existing hosts only); the mirror strategy
//! (only when mirroring is enabled, which needs two or more new hosts); how
//! many new primaries per host (0-128); a parent directory for each new
//! primary, then for each new mirror.
//!
//! New hosts copy the prototype host (content 0's primary host): its data
//! directories' parents and ports from the cluster's lowest primary and mirror
//! ports. New directories go on every segment host, ports from the cluster's
//! highest primary (and mirror) port + 1. dbids and content ids continue past
//! the cluster's.
//!
//! An answer that does not fit is met with `Invalid input: '<answer>'` and the
//! question again, except a segment count that is not a number: gpexpand
//! stops there with Python's `int()` error, and so does this.

use std::fmt;
use std::io::{BufRead, Write};

use crate::cluster::{Cluster, Role};
use crate::expansion::{Expansion, ExpansionError};
use crate::input::format_input_file;
use crate::mirrors::{plan_segments, MirrorError, MirrorStrategy, Placement, PlanRequest};
use crate::pyfmt;
use crate::time::Timestamp;

const START_HELP: &str = "
System Expansion is used to add segments to an existing GPDB array.
gpexpand did not detect a System Expansion that is in progress.

Before initiating a System Expansion, you need to provision and burn-in
the new hardware.  Please be sure to run gpcheckperf to make sure the
new hardware is working properly.

Please refer to the Admin Guide for more information.";

const QUESTIONS_HELP: &str = "
This utility can handle some expansion scenarios by asking a few questions.
More complex expansions can be done by providing an input file with
the --input <file>.  Please see the docs for the format of this file. ";

const HOSTS_PROMPT: &str = "
Enter a comma separated list of new hosts you want
to add to your array.  Do not include interface hostnames.
**Enter a blank line to only add segments to existing hosts**";

const STRATEGY_HELP: &str = "
You must now specify a mirroring strategy for the new hosts.  Spread mirroring places
a given hosts mirrored segments each on a separate host.  You must be 
adding more hosts than the number of segments per host to use this. 
Grouped mirroring places all of a given hosts segments on a single 
mirrored host.  You must be adding at least 2 hosts in order to use this.

";

const COUNT_HELP: &str = "
    By default, new hosts are configured with the same number of primary
    segments as existing hosts.  Optionally, you can increase the number
    of segments per host.

    For example, if existing hosts have two primary segments, entering a value
    of 2 will initialize two additional segments on existing hosts, and four
    segments on new hosts.  In addition, mirror segments will be added for
    these new primary segments if mirroring is enabled.
    ";

const NO_NEW_HOSTS: &str = "
** No hostnames were given that do not already exist in the **
** array. Additional segments will be added existing hosts. **
";

/// The most new primaries per host the interview accepts.
const MAX_NEW_PER_HOST: i64 = 128;

/// Why the interview ended without a file. `Display` is gpexpand's text.
#[non_exhaustive]
#[derive(Debug)]
pub enum InterviewError {
    /// The user said no; gpexpand logs this and exits with status 0.
    Aborted,
    /// Input ended before the questions did.
    Eof,
    /// A segment count that is not a number (the answer as typed).
    NotANumber(String),
    MirroringNeedsTwoHosts,
    PortsContiguous,
    NothingToAdd,
    Expansion(ExpansionError),
    Mirror(MirrorError),
    Io(std::io::Error),
}

impl fmt::Display for InterviewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterviewError::Aborted => f.write_str("User Aborted. Exiting..."),
            InterviewError::Eof => f.write_str("EOF when reading a line"),
            InterviewError::NotANumber(answer) => write!(
                f,
                "invalid literal for int() with base 10: {}",
                pyfmt::py_repr(answer)
            ),
            InterviewError::MirroringNeedsTwoHosts => f.write_str(
                "You must be adding two or more hosts when expanding a system with mirroring enabled.",
            ),
            InterviewError::PortsContiguous => f.write_str(
                "Current primary and mirror ports are contiguous.  The input file for gpexpand will need to be created manually.",
            ),
            InterviewError::NothingToAdd => f.write_str("No new hosts or segments were entered."),
            InterviewError::Expansion(e) => write!(f, "{e}"),
            InterviewError::Mirror(e) => write!(f, "{e}"),
            InterviewError::Io(e) => write!(f, "cannot talk to the terminal: {e}"),
        }
    }
}

impl std::error::Error for InterviewError {}

impl From<std::io::Error> for InterviewError {
    fn from(e: std::io::Error) -> Self {
        InterviewError::Io(e)
    }
}

impl From<ExpansionError> for InterviewError {
    fn from(e: ExpansionError) -> Self {
        InterviewError::Expansion(e)
    }
}

impl From<MirrorError> for InterviewError {
    fn from(e: MirrorError) -> Self {
        InterviewError::Mirror(e)
    }
}

/// The input file the interview produced; the caller writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedInputFile {
    /// `gpexpand_inputfile_YYYYmmdd_HHMMSS`
    pub name: String,
    pub contents: String,
}

impl GeneratedInputFile {
    /// What gpexpand prints once the file is written.
    pub fn written_message(&self) -> String {
        format!(
            "\nInput configuration file was written to '{name}'.\n\nPlease review the file and make sure that it is correct then re-run\nwith: segexpand gpexpand -i {name}\n",
            name = self.name
        )
    }
}

/// gpexpand's input file name for a local time.
pub fn input_file_name(now: &Timestamp) -> String {
    format!("gpexpand_inputfile_{}", now.compact())
}

/// gpexpand's `read_hosts_file` (`-f`): one host a line, blank lines and `#`
/// comments skipped.
pub fn parse_hosts_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Runs the interview, asking for the new hosts.
pub fn interview(
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    cluster: &Cluster,
    now: Timestamp,
) -> Result<GeneratedInputFile, InterviewError> {
    Interview { input, output }.run(cluster, now, None)
}

/// Runs the interview with the new hosts taken from a hosts file (`-f`).
pub fn interview_with_hosts(
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    cluster: &Cluster,
    now: Timestamp,
    hosts: &[String],
) -> Result<GeneratedInputFile, InterviewError> {
    Interview { input, output }.run(cluster, now, Some(hosts))
}

/// The terminal: gppylib's `ask_input` and its validators.
struct Interview<'io> {
    input: &'io mut dyn BufRead,
    output: &'io mut dyn Write,
}

impl Interview<'_> {
    fn run(
        &mut self,
        cluster: &Cluster,
        now: Timestamp,
        hosts_file: Option<&[String]>,
    ) -> Result<GeneratedInputFile, InterviewError> {
        if !self.ask_yes_no(
            Some(START_HELP),
            "Would you like to initiate a new System Expansion",
            false,
        )? {
            return Err(InterviewError::Aborted);
        }
        if let Err(reason) = cluster.is_standard_array() {
            let help = format!(
                "{QUESTIONS_HELP}\n\n       The current system appears to be non-standard.\n       {reason}\n       gpexpand may not be able to symmetrically distribute the new segments appropriately.\n       It is recommended that you specify your own input file with appropriate values."
            );
            if !self.ask_yes_no(
                Some(&help),
                "Are you sure you want to continue with this gpexpand session?",
                false,
            )? {
                return Err(InterviewError::Aborted);
            }
        }
        let hosts: Vec<String> = match hosts_file {
            Some(hosts) => hosts.to_vec(),
            None => {
                let answer = self.ask(None, HOSTS_PROMPT, "[]")?;
                // gpexpand keeps an empty name from `a,,b`; it is dropped here.
                answer
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(str::to_string)
                    .collect()
            }
        };
        let mut strategy = None;
        if cluster.mirroring_enabled() {
            if hosts.len() < 2 {
                return Err(InterviewError::MirroringNeedsTwoHosts);
            }
            strategy = Some(self.ask_strategy()?);
        }

        let mut expansion = Expansion::new(cluster);
        let added_hosts = add_hosts(&mut expansion, &hosts, strategy)?;
        if added_hosts {
            expansion.validate()?;
        } else {
            self.say(NO_NEW_HOSTS)?;
        }

        let per_host = self.ask_count()?;
        if per_host > 0 {
            let primary_dirs = self.ask_dirs("primary", per_host)?;
            let mirror_dirs = match strategy {
                Some(_) => self.ask_dirs("mirror", per_host)?,
                None => Vec::new(),
            };
            add_dirs(&mut expansion, &primary_dirs, &mirror_dirs, strategy)?;
            // gpexpand stops only on a port clash here; other findings are
            // left for `-i` to report.
            if let Err(ExpansionError::DuplicatePort { .. }) = expansion.validate() {
                return Err(InterviewError::PortsContiguous);
            }
        } else if !added_hosts {
            return Err(InterviewError::NothingToAdd);
        }

        self.say("\nGenerating configuration file...\n\n")?;
        Ok(GeneratedInputFile {
            name: input_file_name(&now),
            contents: format_input_file(&expansion.segments()),
        })
    }

    fn say(&mut self, text: &str) -> Result<(), InterviewError> {
        self.output.write_all(text.as_bytes())?;
        self.output.flush()?;
        Ok(())
    }

    /// `ask_input`'s prompt and one answer, without its line end.
    fn ask(
        &mut self,
        help: Option<&str>,
        question: &str,
        hint: &str,
    ) -> Result<String, InterviewError> {
        if let Some(help) = help {
            self.say(&format!("{help}\n\n"))?;
        }
        self.say(&format!("{question}{hint}:\n> "))?;
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Err(InterviewError::Eof);
        }
        let answer = line.strip_suffix('\n').unwrap_or(&line);
        Ok(answer.strip_suffix('\r').unwrap_or(answer).to_string())
    }

    /// Asks until `check` accepts; help is shown once.
    fn ask_until<T>(
        &mut self,
        help: Option<&str>,
        question: &str,
        hint: &str,
        mut check: impl FnMut(&str) -> Result<Option<T>, InterviewError>,
    ) -> Result<T, InterviewError> {
        let mut help = help;
        loop {
            let answer = self.ask(help.take(), question, hint)?;
            match check(&answer)? {
                Some(value) => return Ok(value),
                None => self.say(&format!("Invalid input: '{answer}'\n\n"))?,
            }
        }
    }

    /// `ask_yesno`: y/yes/n/no in any case, trailing space allowed, blank for
    /// the default.
    fn ask_yes_no(
        &mut self,
        help: Option<&str>,
        question: &str,
        default: bool,
    ) -> Result<bool, InterviewError> {
        let hint = format!(" Yy|Nn (default={})", if default { 'Y' } else { 'N' });
        self.ask_until(help, question, &hint, |answer| {
            if answer.is_empty() {
                return Ok(Some(default));
            }
            Ok(match answer.to_uppercase().trim_end() {
                "Y" | "YES" => Some(true),
                "N" | "NO" => Some(false),
                _ => None,
            })
        })
    }

    fn ask_strategy(&mut self) -> Result<MirrorStrategy, InterviewError> {
        self.ask_until(
            Some(STRATEGY_HELP),
            "What type of mirroring strategy would you like?",
            "\n spread|grouped (default=grouped)",
            |answer| {
                if answer.is_empty() {
                    return Ok(Some(MirrorStrategy::Grouped));
                }
                Ok(MirrorStrategy::parse(answer).ok())
            },
        )
    }

    /// `ask_int(..., default 0, min 0, max 128)`.
    fn ask_count(&mut self) -> Result<usize, InterviewError> {
        self.ask_until(
            Some(COUNT_HELP),
            "How many new primary segments per host do you want to add?",
            " (default=0)",
            |answer| {
                if answer.is_empty() {
                    return Ok(Some(0));
                }
                match pyfmt::py_int(answer) {
                    Ok(n) if (0..=MAX_NEW_PER_HOST).contains(&n) => Ok(usize::try_from(n).ok()),
                    Ok(_) | Err(pyfmt::IntError::TooLarge) => Ok(None),
                    Err(pyfmt::IntError::Invalid) => {
                        Err(InterviewError::NotANumber(answer.to_string()))
                    }
                }
            },
        )
    }

    /// One parent directory per new segment: not blank, no space.
    fn ask_dirs(&mut self, kind: &str, count: usize) -> Result<Vec<String>, InterviewError> {
        let mut dirs = Vec::with_capacity(count);
        for i in 1..=count {
            let question = format!("Enter new {kind} data directory {i}");
            let dir =
                self.ask_until(None, &question, "", |answer| {
                    Ok((!answer.is_empty() && !answer.contains(' '))
                        .then(|| answer.trim().to_string()))
                })?;
            dirs.push(dir);
        }
        Ok(dirs)
    }
}

/// `addExpansionHosts`: the hosts not yet in the cluster, laid out like the
/// prototype host. `Ok(false)` when there are none.
fn add_hosts(
    expansion: &mut Expansion<'_>,
    hosts: &[String],
    strategy: Option<MirrorStrategy>,
) -> Result<bool, InterviewError> {
    let cluster = expansion.cluster();
    let existing = cluster.all_hosts();
    let mut new_hosts: Vec<String> = Vec::new();
    for host in hosts {
        if !existing.contains(&host.as_str()) && !new_hosts.contains(host) {
            new_hosts.push(host.clone());
        }
    }
    if new_hosts.is_empty() {
        return Ok(false);
    }
    let prototype = cluster.seg0_host();
    let parent = |role| -> Vec<String> {
        cluster
            .on_host(prototype, role)
            .into_iter()
            .map(|s| pyfmt::slice(&s.datadir, 0, pyfmt::rfind(&s.datadir, '/')))
            .collect()
    };
    let (primary_dirs, mirror_dirs) = (parent(Role::Primary), parent(Role::Mirror));
    let prefix = cluster.datadir_prefix();
    let interfaces = cluster.interface_numbers();
    let request = PlanRequest {
        placement: Placement::NewHosts,
        hosts: &new_hosts,
        primary_dirs: &primary_dirs,
        mirror_dirs: &mirror_dirs,
        mirroring: strategy,
        primary_port_base: cluster.min_port(Role::Primary),
        mirror_port_base: cluster.min_port(Role::Mirror),
        dir_prefix: &prefix,
        interfaces: &interfaces,
        first_dbid: expansion.max_dbid() + 1,
        first_content: expansion.max_content() + 1,
    };
    for segment in plan_segments(&request)? {
        expansion.add(segment)?;
    }
    Ok(true)
}

/// `addExpansionDatadirs`: the new directories on every segment host, new
/// hosts included.
fn add_dirs(
    expansion: &mut Expansion<'_>,
    primary_dirs: &[String],
    mirror_dirs: &[String],
    strategy: Option<MirrorStrategy>,
) -> Result<(), InterviewError> {
    let cluster = expansion.cluster();
    let hosts = expansion.segment_hosts();
    let prefix = cluster.datadir_prefix();
    let interfaces = cluster.interface_numbers();
    let next_port = |role| {
        cluster
            .max_port(role)
            .checked_add(1)
            .ok_or(MirrorError::PortOutOfRange { base: u16::MAX })
    };
    let request = PlanRequest {
        placement: Placement::AllHosts,
        hosts: &hosts,
        primary_dirs,
        mirror_dirs,
        mirroring: strategy,
        primary_port_base: next_port(Role::Primary)?,
        mirror_port_base: if strategy.is_some() {
            next_port(Role::Mirror)?
        } else {
            0
        },
        dir_prefix: &prefix,
        interfaces: &interfaces,
        first_dbid: expansion.max_dbid() + 1,
        first_content: expansion.max_content() + 1,
    };
    for segment in plan_segments(&request)? {
        expansion.add(segment)?;
    }
    Ok(())
}
