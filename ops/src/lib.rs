//! The planning half of `segexpand gpexpand`, a reimplementation of
//! Greenplum's gpexpand workflow: pure functions with no I/O of their own and
//! no dependencies.
//!
//! - the existing cluster and its checks ([`Cluster`]);
//! - the input file, `hostname|address|port|datadir|dbid|content|role`,
//!   parsed and checked whole against the cluster ([`parse_input_file`]);
//! - grouped and spread mirror placement ([`plan_segments`]);
//! - the interactive interview that writes an input file ([`interview`]);
//! - the `-d` duration and `-e` end time options ([`parse_duration`],
//!   [`parse_end_time`], [`expansion_deadline`]).
//!
//! Error texts are gpexpand's, word for word, so an operator's searches and
//! scripts keep working; each error type's docs say where a text is ours.
//!
//! Architecture invariant: this crate reads no files, starts no processes and
//! never looks at the clock; callers pass text, streams and `now`.

mod cluster;
mod expansion;
mod input;
mod interview;
mod mirrors;
mod pyfmt;
mod time;

pub use cluster::{Cluster, ClusterError, NewSegment, Role, Segment};
pub use expansion::ExpansionError;
pub use input::{format_input_file, parse_input_file, Field, InputError, InputFile, LineError};
pub use interview::{
    input_file_name, interview, interview_with_hosts, parse_hosts_file, GeneratedInputFile,
    InterviewError,
};
pub use mirrors::{plan_segments, MirrorError, MirrorStrategy, Placement, PlanRequest};
pub use time::{
    expansion_deadline, parse_duration, parse_end_time, Deadline, TimeError, Timestamp,
};
