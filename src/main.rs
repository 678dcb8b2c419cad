//! `segexpand`: the command-line tool.
//!
//! - `segexpand demo` — the main job, on an embedded default data directory
//!   (`./segexpand-data`).
//! - `segexpand serve [--dir D] [--port P] …` — SQL over the PostgreSQL wire protocol.
//! - `segexpand gpexpand [-i FILE] [-n N] [-d H:M:S] …` / `segexpand gpshrink -i FILE …`
//!   — the operator's workflow, as a client of a running `serve`.
//! - `segexpand verify --dir D` — check every page, WAL record, VM file and the control
//!   file of a data directory; exit 0 when clean, 1 with one line per problem otherwise.

mod demo;
mod gpexpand;
mod serve;
mod wire;

use clap::{Parser, Subcommand};
use segexpand_bench::out;
use segexpand_engine::vfs::RealVfs;
use std::path::PathBuf;
use std::process::ExitCode;

/// Default data directory of the demo, relative to the current directory.
pub const DEFAULT_DIR: &str = "segexpand-data";

#[derive(Parser)]
#[command(
    name = "segexpand",
    version,
    about = "Online redistribution for MPP segment storage"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the demo on a data directory (created when missing).
    Demo(demo::DemoArgs),
    /// Serve SQL over the PostgreSQL wire protocol (psql, pgbench) on a data directory.
    Serve(serve::ServeArgs),
    /// Greenplum's gpexpand against a running `segexpand serve`: add segments (input
    /// file or interview), then redistribute every table online, in rank order.
    #[command(disable_help_flag = true)]
    Gpexpand(gpexpand::ExpandArgs),
    /// Cloudberry's gpshrink: move every table off the highest segments online, then
    /// retire them (input file: the segments to remove).
    #[command(disable_help_flag = true)]
    Gpshrink(gpexpand::ExpandArgs),
    /// Verify a data directory: page checksums, WAL records, VM files, control file.
    Verify {
        /// The data directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

struct StderrLogger;
impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!(
                "segexpand: {}: {}",
                r.level().as_str().to_lowercase(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}
static LOGGER: StderrLogger = StderrLogger;

fn main() -> ExitCode {
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Warn));
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Demo(args) => match demo::run_demo(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("segexpand demo: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Serve(args) => serve::run(&args),
        Cmd::Gpexpand(args) => gpexpand::run(gpexpand::Workflow::Expand, &args),
        Cmd::Gpshrink(args) => gpexpand::run(gpexpand::Workflow::Shrink, &args),
        Cmd::Verify { dir } => verify(&dir),
    }
}

/// `segexpand verify`: exit 0 when clean, 1 with one line per problem on stdout, 2 when
/// the directory cannot be verified at all (missing, not a node, in use by a node).
fn verify(dir: &std::path::Path) -> ExitCode {
    match segexpand_engine::verify::verify_dir(&RealVfs, dir) {
        Err(e) => {
            out::err_line(format_args!("segexpand verify: {e}"));
            ExitCode::from(2)
        }
        Ok(r) => {
            for p in &r.problems {
                out::line(format_args!("{p}"));
            }
            for n in &r.notes {
                out::err_line(format_args!("note: {n}"));
            }
            out::err_line(format_args!(
                "checked {} pages, {} WAL records, {} VM files: {} problem(s)",
                r.pages,
                r.wal_records,
                r.vm_files,
                r.problems.len()
            ));
            if r.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}
